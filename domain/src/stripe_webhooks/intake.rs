//! The intake: a delivery's signature is checked in its own request, then its event is stored
//! with every other one waiting at that moment, in one transaction, and the request is answered
//! after the commit. Storing an event is what queues it: the applier ([`super::applier`]) takes
//! due events from the table itself, so the intake writes one row per event and nothing else.

use std::{collections::HashSet, net::IpAddr, sync::Arc};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::applier;
use crate::{
    Services,
    error::{Error, Result},
    security,
    stripe::events::{event_time, verify},
};

/// The fields of an event the intake stores beside its payload. `data` is left for the applier
/// that applies the event, so the intake does not build it.
#[derive(Debug, Deserialize)]
struct Head {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    livemode: bool,
    account: Option<String>,
    api_version: Option<String>,
    /// Required (a payload without it is not an event), but not read here.
    #[serde(rename = "data")]
    _data: serde::de::IgnoredAny,
}

/// What the intake did with a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored; the applier applies it.
    Accepted,
    /// Seen before (a repeated or concurrent delivery): nothing changed.
    Duplicate,
}

/// One event that passed the signature check, waiting to be stored.
struct Arrived {
    head: Head,
    payload: String,
}

struct Pending {
    event: Arrived,
    answer: oneshot::Sender<Result<Received>>,
}

/// Events one transaction stores at most.
const MAX_BATCH: usize = 512;
/// Batches being written at once: while one commits, the next gathers the requests that keep
/// arriving, so the database's commits are shared rather than queued one per event.
const WRITERS: usize = 4;

/// The intake: checks each delivery's signature in its own request, then stores it together
/// with every other delivery waiting at that moment, in one transaction, and
/// answers each request only after that transaction committed. A request never hears 2xx for
/// an event that is not durably stored; a crash loses only events nobody was told were taken.
/// One per process (the server makes it at start); processes share nothing but the database.
#[derive(Clone)]
pub struct Intake {
    services: Services,
    pending: mpsc::Sender<Pending>,
}

impl Intake {
    /// Starts the batch writers; they end when the last handle is dropped.
    pub fn start(services: Services) -> Self {
        let (pending, arriving) = mpsc::channel(MAX_BATCH * WRITERS);
        let arriving = Arc::new(tokio::sync::Mutex::new(arriving));
        // One notification at a time, however many batches committed meanwhile: a transaction
        // that sends NOTIFY holds a lock through its commit that every other such commit waits
        // for, so the batches must not send it themselves.
        let (wake, woken) = mpsc::channel(1);
        tokio::spawn(wake_appliers(services.pool.clone(), woken));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(services.pool.clone(), arriving.clone(), wake.clone()));
        }
        Self { services, pending }
    }

    /// Verifies and stores one delivery, which queues it for the applier; answers without
    /// waiting for Stripe or for the change itself. A signature problem is `BadRequest` (400)
    /// and nothing is stored; it is recorded as a security event (once an hour per address),
    /// since it is either a misconfiguration or someone forging Stripe's events.
    pub async fn receive(
        &self,
        payload: &[u8],
        signature: Option<&str>,
        client_ip: Option<IpAddr>,
    ) -> Result<Received> {
        let secrets = self.services.stripe.webhook_secrets();
        if let Err(err) = verify(&secrets, payload, signature, Utc::now().timestamp()) {
            tracing::warn!(reason = ?err, "webhook refused");
            metrics::counter!("remit_stripe_intake_events_total", "outcome" => "refused").increment(1);
            security::bad_webhook_signature(&self.services.pool, client_ip, err.message()).await?;
            return Err(Error::BadRequest(err.message().into()));
        }
        let text =
            std::str::from_utf8(payload).map_err(|_| Error::BadRequest("The payload is not UTF-8 JSON.".into()))?;
        let head: Head =
            serde_json::from_str(text).map_err(|_| Error::BadRequest("The payload is not a Stripe event.".into()))?;
        let (answer, answered) = oneshot::channel();
        let event = Arrived { head, payload: text.to_owned() };
        self.pending
            .send(Pending { event, answer })
            .await
            .map_err(|_| anyhow::anyhow!("the webhook intake has stopped"))?;
        answered.await.map_err(|_| anyhow::anyhow!("the webhook intake stopped before storing the event"))?
    }
}

/// Takes every request waiting (up to [`MAX_BATCH`]) and stores their events in one
/// transaction, until the intake is dropped.
async fn write_batches(
    pool: PgPool,
    arriving: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
    wake: mpsc::Sender<()>,
) {
    loop {
        let batch = {
            let mut arriving = arriving.lock().await;
            let Some(first) = arriving.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match arriving.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        let events: Vec<&Arrived> = batch.iter().map(|p| &p.event).collect();
        match store(&pool, &events).await {
            Ok(outcomes) => {
                if outcomes.contains(&Received::Accepted) {
                    // Already due: a wake-up is pending, or on its way.
                    let _ = wake.try_send(());
                }
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = pending.answer.send(Ok(outcome));
                }
            }
            // An event the database refuses (say, a NUL character, which JSON allows and jsonb
            // does not: a 400) must not fail the others: each is stored alone and gets its own
            // answer.
            Err(err) if batch.len() > 1 => {
                tracing::warn!(error = %err, events = batch.len(), "a batch of events failed; storing them one by one");
                for pending in batch {
                    let outcome = store(&pool, &[&pending.event]).await.map(|mut o| o.remove(0));
                    let _ = pending.answer.send(outcome);
                }
            }
            Err(err) => {
                if let Some(pending) = batch.into_iter().next() {
                    let _ = pending.answer.send(Err(err));
                }
            }
        }
    }
}

/// Tells every process's applier that events are due, once per wake-up asked for while the
/// previous notification was being sent; ends with the intake. An applier that misses one (its
/// listening connection was down) finds the events at its next poll.
async fn wake_appliers(pool: PgPool, mut woken: mpsc::Receiver<()>) {
    while woken.recv().await.is_some() {
        if let Err(err) = applier::wake(&pool).await {
            tracing::debug!(error = %err, "could not wake the appliers; they poll");
        }
    }
}

/// Stores events read from Stripe's events list (the call that listed them authenticated
/// them: there is no signature to check) with the statement deliveries are stored with; how
/// many were new.
pub(super) async fn store_listed(pool: &PgPool, payloads: Vec<String>) -> Result<usize> {
    if payloads.is_empty() {
        return Ok(0);
    }
    let events = payloads
        .into_iter()
        .map(|payload| {
            let head: Head = serde_json::from_str(&payload)
                .map_err(|e| anyhow::anyhow!("a listed Stripe event could not be read: {e}"))?;
            Ok(Arrived { head, payload })
        })
        .collect::<Result<Vec<_>>>()?;
    let outcomes = store(pool, &events.iter().collect::<Vec<_>>()).await?;
    let accepted = outcomes.into_iter().filter(|o| *o == Received::Accepted).count();
    if accepted > 0 {
        applier::wake(pool).await?;
    }
    Ok(accepted)
}

/// Stores events (each once by id: a repeated or concurrent delivery changes nothing) in one
/// transaction; what happened to each, in order. Rows are inserted
/// in id order so that two batches holding the same events cannot deadlock.
async fn store(pool: &PgPool, events: &[&Arrived]) -> Result<Vec<Received>> {
    let mut unique: Vec<&Arrived> = events.to_vec();
    unique.sort_by(|a, b| a.head.id.cmp(&b.head.id));
    unique.dedup_by(|a, b| a.head.id == b.head.id);
    // Borrowed, not copied: a batch can hold hundreds of payloads.
    let ids: Vec<&str> = unique.iter().map(|e| e.head.id.as_str()).collect();
    let kinds: Vec<&str> = unique.iter().map(|e| e.head.kind.as_str()).collect();
    let accounts: Vec<Option<&str>> = unique.iter().map(|e| e.head.account.as_deref()).collect();
    let livemodes: Vec<bool> = unique.iter().map(|e| e.head.livemode).collect();
    let api_versions: Vec<Option<&str>> = unique.iter().map(|e| e.head.api_version.as_deref()).collect();
    let created: Vec<DateTime<Utc>> = unique.iter().map(|e| event_time(e.head.created)).collect();
    let payloads: Vec<&str> = unique.iter().map(|e| e.payload.as_str()).collect();

    let mut tx = pool.begin().await?;
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO stripe_events (id, type, account, livemode, api_version, created, payload)
           SELECT e.id, e.type, e.account, e.livemode, e.api_version, e.created, e.payload::jsonb
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::timestamptz[], $7::text[])
                WITH ORDINALITY AS e(id, type, account, livemode, api_version, created, payload, n)
           ORDER BY e.n
           ON CONFLICT (id, created) DO NOTHING
           RETURNING id"#,
        &ids as &[&str],
        &kinds as &[&str],
        &accounts as &[Option<&str>],
        &livemodes,
        &api_versions as &[Option<&str>],
        &created,
        &payloads as &[&str],
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    let mut fresh: HashSet<&str> = inserted.iter().map(String::as_str).collect();
    let outcomes: Vec<Received> = events
        .iter()
        .map(|e| {
            // The first copy of a new event is the one accepted; any other is a duplicate.
            if fresh.remove(e.head.id.as_str()) {
                tracing::debug!(event = %e.head.id, kind = %e.head.kind, "webhook accepted");
                Received::Accepted
            } else {
                tracing::debug!(event = %e.head.id, kind = %e.head.kind, "duplicate webhook ignored");
                Received::Duplicate
            }
        })
        .collect();
    // One line and one count per batch (each request has its own access log line).
    let accepted = outcomes.iter().filter(|o| **o == Received::Accepted).count();
    let duplicates = outcomes.len() - accepted;
    tracing::info!(accepted, duplicates, "Stripe events stored");
    metrics::counter!("remit_stripe_intake_events_total", "outcome" => "accepted").increment(accepted as u64);
    metrics::counter!("remit_stripe_intake_events_total", "outcome" => "duplicate").increment(duplicates as u64);
    Ok(outcomes)
}
