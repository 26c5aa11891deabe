//! The one intake for Stripe's webhook events, and where each goes: the signature is checked
//! over the raw body and the event is stored once by id, with the job that applies it; the job
//! routes it once ([`route`]) to the flow it concerns, applies what it changes in one
//! transaction and marks it applied, so each event takes effect exactly once.

use std::{collections::HashSet, net::IpAddr, sync::Arc};

use chrono::{DateTime, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::{
    Services, alerts, billing, checkout,
    error::{Error, Result},
    payouts, queue, security,
    stripe::events::{Envelope, event_time, verify},
    tenant_stripe,
};

/// The flow an event belongs to. Each event goes to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Subscriptions, invoices and saved cards of the platform's customers.
    Billing,
    /// A buyer paying for a won lot: Checkout, the payment, refunds and disputes.
    BuyerPayment,
    /// A connected account changed: a tenant's Stripe, or a consultant's payouts.
    ConnectedAccount,
    /// Kept in `stripe_events` and acknowledged; Remit does not act on it.
    Ignored,
}

/// Where an event goes, by its type and the account it comes from. Subscriptions and buyers'
/// payments live on the platform account, so a connected account's event is about the account
/// itself or nothing Remit acts on.
pub fn route(kind: &str, account: Option<&str>) -> Flow {
    match (kind, account) {
        ("account.updated", _) => Flow::ConnectedAccount,
        (_, Some(_)) => Flow::Ignored,
        (kind, None) if billing::events::HANDLED.contains(&kind) => Flow::Billing,
        (kind, None) if checkout::events::HANDLED.contains(&kind) => Flow::BuyerPayment,
        _ => Flow::Ignored,
    }
}

/// The fields of an event the intake stores beside its payload. `data` is left for the job
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
    /// Stored; a job applies it.
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
const WRITERS: usize = 3;

/// The intake: checks each delivery's signature in its own request, then stores it together
/// with every other delivery waiting at that moment, in one transaction with their jobs, and
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
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(services.pool.clone(), arriving.clone()));
        }
        Self { services, pending }
    }

    /// Verifies and stores one delivery, and queues the job that applies it; answers without
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
async fn write_batches(pool: PgPool, arriving: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>) {
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

/// Stores events (each once by id: a repeated or concurrent delivery changes nothing) and the
/// jobs of the new ones, in one transaction; what happened to each, in order. Rows are inserted
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
           ON CONFLICT (id) DO NOTHING
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
    queue::enqueue_many(&mut tx, inserted.iter().map(|id| ApplyStripeEvent { event_id: id.clone() })).await?;
    tx.commit().await?;

    let mut fresh: HashSet<&str> = inserted.iter().map(String::as_str).collect();
    Ok(events
        .iter()
        .map(|e| {
            // The first copy of a new event is the one accepted; any other is a duplicate.
            if fresh.remove(e.head.id.as_str()) {
                tracing::info!(event = %e.head.id, kind = %e.head.kind, "webhook accepted");
                Received::Accepted
            } else {
                tracing::info!(event = %e.head.id, kind = %e.head.kind, "duplicate webhook ignored");
                Received::Duplicate
            }
        })
        .collect())
}

/// Applies one stored Stripe event (see [`apply_stored`]). When it keeps failing (Stripe
/// unreachable for a day), platform admins are alerted.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplyStripeEvent {
    pub event_id: String,
}

impl TaskHandler for ApplyStripeEvent {
    const IDENTIFIER: &'static str = "apply_stripe_event";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        match apply_stored(services, &self.event_id).await {
            Ok(_) => Ok(()),
            Err(err) => {
                err.log();
                if queue::is_last_attempt(&ctx) {
                    let mut conn = services.pool.acquire().await.map_err(|e| e.to_string())?;
                    let message =
                        format!("Stripe event {} could not be applied: {}", self.event_id, err.public_message());
                    alerts::raise(&mut conn, None, "stripe_event_failed", &message).await.map_err(|e| e.to_string())?;
                }
                Err(err.to_string())
            }
        }
    }
}

/// What an event is about, read from Stripe before the transaction that applies it.
enum Read {
    Billing(Option<billing::events::Read>),
    BuyerPayment(Option<checkout::events::Current>),
    ConnectedAccount,
    Ignored,
}

/// Applies a stored event (the `apply_stripe_event` job): what it is about is read from Stripe
/// first, outside any transaction, then the changes, the jobs they cause and the event's
/// `applied_at` are written in one transaction. `false` when the event was applied before.
pub async fn apply_stored(services: &Services, event_id: &str) -> Result<bool> {
    let Some(stored) = sqlx::query!("SELECT payload, applied_at FROM stripe_events WHERE id = $1", event_id)
        .fetch_optional(&services.pool)
        .await?
    else {
        return Err(anyhow::anyhow!("Stripe event {event_id} is not stored").into());
    };
    if stored.applied_at.is_some() {
        return Ok(false);
    }
    let envelope: Envelope = serde_json::from_value(stored.payload)
        .map_err(|e| anyhow::anyhow!("stored Stripe event {event_id} is malformed: {e}"))?;
    let read = match route(&envelope.kind, envelope.account.as_deref()) {
        Flow::Billing => Read::Billing(billing::events::read_current(services, &envelope).await?),
        Flow::BuyerPayment => Read::BuyerPayment(checkout::events::read_current(services, &envelope).await?),
        Flow::ConnectedAccount => Read::ConnectedAccount,
        Flow::Ignored => Read::Ignored,
    };

    let mut tx = services.pool.begin().await?;
    // The row lock makes a second job for the same event (there should be none) wait, then skip.
    let unapplied = sqlx::query_scalar!(
        "SELECT applied_at IS NULL AS \"unapplied!\" FROM stripe_events WHERE id = $1 FOR UPDATE",
        event_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if !unapplied {
        return Ok(false);
    }
    match &read {
        Read::Billing(Some(read)) => billing::events::apply(&mut tx, services, &envelope, read).await?,
        Read::BuyerPayment(Some(current)) => checkout::events::apply(&mut tx, &envelope, current).await?,
        Read::ConnectedAccount => {
            let (account, created, livemode) = (&envelope.data.object, event_time(envelope.created), envelope.livemode);
            tenant_stripe::apply_account_updated(&mut tx, account, created, livemode).await?;
            payouts::apply_account_updated(&mut tx, services, account, created, livemode).await?;
        }
        // Nothing to act on: an object that is not Remit's (e.g. a subscription's payment), or
        // a type Remit keeps without acting.
        Read::Billing(None) | Read::BuyerPayment(None) | Read::Ignored => {
            tracing::debug!(kind = %envelope.kind, "no change for this event");
        }
    }
    sqlx::query!("UPDATE stripe_events SET applied_at = now() WHERE id = $1", event_id).execute(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(event = %envelope.id, kind = %envelope.kind, "webhook applied");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_goes_to_one_flow() {
        assert_eq!(route("invoice.payment_failed", None), Flow::Billing);
        assert_eq!(route("customer.subscription.updated", None), Flow::Billing);
        assert_eq!(route("payment_method.attached", None), Flow::Billing);
        assert_eq!(route("checkout.session.completed", None), Flow::BuyerPayment);
        assert_eq!(route("charge.dispute.created", None), Flow::BuyerPayment);
        assert_eq!(route("account.updated", Some("acct_1")), Flow::ConnectedAccount);
        assert_eq!(route("account.updated", None), Flow::ConnectedAccount);
        // Subscriptions and buyers' payments live on the platform: a connected account's are not Remit's.
        assert_eq!(route("checkout.session.completed", Some("acct_1")), Flow::Ignored);
        assert_eq!(route("invoice.payment_failed", Some("acct_1")), Flow::Ignored);
        assert_eq!(route("customer.created", None), Flow::Ignored);
    }

    #[test]
    fn the_flows_handle_disjoint_types() {
        for kind in billing::events::HANDLED {
            assert!(!checkout::events::HANDLED.contains(&kind), "{kind} in two flows");
        }
    }
}
