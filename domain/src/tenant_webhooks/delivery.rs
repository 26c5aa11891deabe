//! Posting events to endpoints. A delivery (one event owed to one endpoint) is its own queue
//! entry: each process's [`Dispatcher`] claims due deliveries, posts them signed through one
//! shared client (15 s timeout, no redirects, addresses checked at each connection), logs every
//! attempt with the receiver's answer, and schedules the next try with jitter over about a day.
//! `410 Gone` disables the endpoint at once; an endpoint whose every attempt fails for five days
//! is disabled, its owners told a day before and when it happens.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde::Serialize;
use sqlx::PgConnection;
use url::Url;
use uuid::Uuid;

use super::{
    address,
    endpoints::{self, DisabledReason},
    events, signing,
};
use crate::{
    Services, accounts, alerts,
    audit::{self, Entry},
    error::Result,
    mail::{self, OutgoingEmail},
    table_queue::{self, Runner, TableQueue},
};

/// Notified after a commit that made deliveries due.
pub const CHANNEL: &str = events::DELIVERIES_CHANNEL;
/// How Remit's deliveries introduce themselves.
const USER_AGENT: &str = "Remit-Webhooks/2.0";
/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Deliveries one process posts at once (waiting on receivers, not on the CPU).
const CONCURRENCY: usize = 32;
/// The pause before each attempt: the first at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
/// 10 h (about 28 h in all), each but the first give or take a tenth at random so that many
/// deliveries failing together do not return together.
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// An endpoint failing every attempt for this long is disabled.
pub const DISABLE_AFTER: chrono::Duration = chrono::Duration::days(5);
/// Its owners are warned this long before.
pub const WARN_BEFORE: chrono::Duration = chrono::Duration::days(1);
/// Failed attempts in a row after which an endpoint's circuit opens (nothing is sent to it).
pub const CIRCUIT_AFTER: i32 = 5;
/// The first pause of an open circuit; each failed probe doubles it, up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_secs(60);
pub const MAX_PAUSE: Duration = Duration::from_secs(60 * 60);
/// How long a probe holds the circuit for itself (its answer takes at most [`TIMEOUT`]).
const PROBE_LEASE: Duration = Duration::from_secs(20);
/// What is kept of a receiver's answer.
pub(super) const MAX_RESPONSE_BODY: usize = 1024;
const MAX_RESPONSE_HEADERS: usize = 40;

/// The pause before the next attempt after `attempts` have failed, `jitter` in [0, 1) moving it
/// by up to a tenth either way; `None` once the schedule has run out.
pub fn retry_delay(attempts: i32, jitter: f64) -> Option<Duration> {
    let pause = SCHEDULE.get(usize::try_from(attempts).ok()?)?;
    Some(pause.mul_f64(0.9 + 0.2 * jitter.clamp(0.0, 1.0)))
}

/// What a failed attempt means for its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureStep {
    /// Keep trying.
    Keep,
    /// Tell the owners it will be disabled in a day.
    Warn,
    /// Disable it.
    Disable,
}

/// The endpoint has failed every attempt since `failing_since`; `warned` whether its owners were
/// told in this failing spell.
pub fn after_failure(failing_since: DateTime<Utc>, now: DateTime<Utc>, warned: bool) -> FailureStep {
    let failing = now - failing_since;
    if failing >= DISABLE_AFTER {
        FailureStep::Disable
    } else if failing >= DISABLE_AFTER - WARN_BEFORE && !warned {
        FailureStep::Warn
    } else {
        FailureStep::Keep
    }
}

/// After a failed attempt: how long the endpoint's circuit stays open, if it opens (or stays
/// open): at the [`CIRCUIT_AFTER`]-th failure in a row for [`FIRST_PAUSE`], after a failed probe
/// for twice the last pause (at most [`MAX_PAUSE`]).
pub fn pause_after_failure(consecutive_failures: i32, last_pause: Option<Duration>, probing: bool) -> Option<Duration> {
    if probing {
        Some(last_pause.map_or(FIRST_PAUSE, |p| (p * 2).min(MAX_PAUSE)))
    } else if consecutive_failures == CIRCUIT_AFTER {
        Some(FIRST_PAUSE)
    } else {
        None
    }
}

/// How one HTTP attempt went.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub status_code: Option<u16>,
    pub response_time_ms: u64,
    pub error: Option<String>,
    /// The first KiB of the receiver's answer.
    pub response_body: Option<String>,
    pub response_headers: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }

    pub(super) fn failed(error: String) -> Self {
        Attempt {
            status_code: None,
            response_time_ms: 0,
            error: Some(error),
            response_body: None,
            response_headers: None,
        }
    }
}

/// Why an attempt got no answer, in the one set of words both ways of posting use.
pub(super) enum Failure {
    Timeout,
    NotFound,
    Refused,
    Forbidden,
    Tls,
    Other(Option<String>),
}

impl Failure {
    /// In words that name the host, never the path or query (which may carry a token).
    pub(super) fn describe(self, host: &str) -> String {
        match self {
            Failure::Timeout => format!("{host} did not answer within {} seconds.", TIMEOUT.as_secs()),
            Failure::NotFound => format!("The host {host} could not be found."),
            Failure::Refused => format!("{host} refused the connection."),
            Failure::Forbidden => format!("{host} resolves to an address Remit does not send to."),
            Failure::Tls => format!("The TLS connection to {host} failed (check its certificate)."),
            Failure::Other(Some(cause)) => format!("Could not deliver to {host}: {cause}."),
            Failure::Other(None) => format!("Could not deliver to {host}."),
        }
    }
}

/// What a reqwest error means.
fn classify(err: &reqwest::Error) -> Failure {
    // reqwest's own message names the whole URL (which may carry a token); the causes below it do not.
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let chain = causes.join(" ").to_lowercase();
    // rustls reports a peer that does not speak TLS as a "corrupt message".
    const TLS_MARKERS: [&str; 7] =
        ["certificate", "tls", "handshake", "ssl", "corrupt message", "fatal alert", "peer is incompatible"];
    if err.is_timeout() {
        Failure::Timeout
    } else if chain.contains("does not send to") {
        Failure::Forbidden
    } else if TLS_MARKERS.iter().any(|m| chain.contains(m)) {
        Failure::Tls
    } else if chain.contains("refused") {
        Failure::Refused
    } else if chain.contains("dns") || chain.contains("resolve") {
        Failure::NotFound
    } else {
        Failure::Other(causes.pop())
    }
}

/// What a delivery sends: the event's id and type, and the body exactly as signed.
pub(super) struct Message<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub body: &'a [u8],
}

/// The headers of a delivery signed with `secrets`: Standard Webhooks (a signature per secret)
/// and the older `Remit-Signature`.
pub(super) fn signed_headers(secrets: &[String], message: &Message<'_>) -> Vec<(&'static str, String)> {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let timestamp = Utc::now().timestamp();
    vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", USER_AGENT.to_owned()),
        ("webhook-id", message.id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signing::standard_signature(&secrets, message.id, timestamp, message.body)),
        (signing::LEGACY_HEADER, signing::legacy_signature(&secrets, timestamp, message.body)),
        ("Remit-Event-Id", message.id.to_owned()),
        ("Remit-Event-Type", message.kind.to_owned()),
    ]
}

/// What is kept of an answer's headers: the first 40, each value cut at 256 characters.
pub(super) fn kept_headers(headers: &http::HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    headers
        .iter()
        .take(MAX_RESPONSE_HEADERS)
        .map(|(name, value)| {
            let value: String = String::from_utf8_lossy(value.as_bytes()).chars().take(256).collect();
            (name.as_str().to_owned(), serde_json::Value::String(value))
        })
        .collect()
}

/// One signed POST through the dispatcher's client.
pub(super) async fn post(client: &reqwest::Client, url: &Url, secrets: &[String], message: Message<'_>) -> Attempt {
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut request = client.post(url.clone());
    for (name, value) in signed_headers(secrets, &message) {
        request = request.header(name, value);
    }
    let started = Instant::now();
    let result = request.body(message.body.to_vec()).send().await;
    let mut response = match result {
        Ok(response) => response,
        Err(err) => {
            return Attempt {
                response_time_ms: started.elapsed().as_millis() as u64,
                ..Attempt::failed(classify(&err).describe(&host))
            };
        }
    };
    let status = response.status().as_u16();
    let headers = kept_headers(response.headers());
    // Only the start of the answer is kept; the rest is not read.
    let mut body = Vec::new();
    while body.len() < MAX_RESPONSE_BODY {
        match tokio::time::timeout(TIMEOUT, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_RESPONSE_BODY);
    let error = (!(200..300).contains(&status)).then(|| format!("{host} answered {status}."));
    Attempt {
        status_code: Some(status),
        response_time_ms: started.elapsed().as_millis() as u64,
        error,
        response_body: Some(String::from_utf8_lossy(&body).into_owned()),
        response_headers: Some(headers),
    }
}

/// Tells every process's dispatcher that deliveries are due (outside a transaction).
pub(super) async fn wake(pool: &sqlx::PgPool) -> Result<()> {
    table_queue::wake(pool, CHANNEL).await
}

/// Deliveries due now or being posted: zero when every event so far has reached its endpoints
/// (or waits for a later retry).
pub async fn due_now(pool: &sqlx::PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM webhook_deliveries
           WHERE next_attempt_at IS NOT NULL AND (next_attempt_at <= now() OR claimed_until > now())"#
    )
    .fetch_one(pool)
    .await?)
}

/// The dispatcher of one process.
pub struct Dispatcher(Runner);

impl Dispatcher {
    pub fn start(services: Services) -> Self {
        let pool = services.pool.clone();
        let client = address::client(services.settings.is_development(), TIMEOUT);
        Self(Runner::start(Deliveries { services, client }, pool, CONCURRENCY))
    }

    /// Stops claiming and waits up to `grace` for the deliveries being posted.
    pub async fn stop(self, grace: Duration) -> bool {
        self.0.stop(grace).await
    }
}

/// A delivery claimed for an attempt, with what the attempt needs.
struct Claimed {
    id: Uuid,
    attempts: i32,
    event_id: Uuid,
    kind: String,
    payload: serde_json::Value,
    endpoint_id: Uuid,
    tenant_id: Uuid,
    url: String,
    enabled: bool,
    secret_encrypted: Vec<u8>,
    previous_secret_encrypted: Option<Vec<u8>>,
    previous_secret_expires_at: Option<DateTime<Utc>>,
    rate_limit: Option<i32>,
    paused_until: Option<DateTime<Utc>>,
}

/// Whether a claimed delivery may be posted now.
enum Permit {
    /// Yes; `probing` when it is the one delivery that tests an open circuit.
    Go { probing: bool },
    /// Not before then (the endpoint's rate limit, or its open circuit).
    Wait(DateTime<Utc>),
}

/// The `webhook_deliveries` table as a queue.
struct Deliveries {
    services: Services,
    client: reqwest::Client,
}

impl TableQueue for Deliveries {
    type Item = Claimed;
    const CHANNEL: &'static str = CHANNEL;

    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>> {
        let lease_seconds = self.services.settings.job_recovery.as_secs_f64();
        Ok(sqlx::query_as!(
            Claimed,
            r#"WITH due AS (
                   SELECT id FROM webhook_deliveries
                   WHERE next_attempt_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
                   ORDER BY next_attempt_at
                   LIMIT $1
                   FOR UPDATE SKIP LOCKED
               )
               UPDATE webhook_deliveries d
               SET claimed_until = now() + make_interval(secs => $2), attempts = d.attempts + 1
               FROM due, webhook_events ev, webhook_endpoints e
               WHERE d.id = due.id AND ev.id = d.event_id AND e.id = d.endpoint_id
               RETURNING d.id, d.attempts, ev.id AS event_id, ev.type AS kind, ev.payload, e.id AS endpoint_id,
                         e.tenant_id, e.url, e.enabled, e.secret_encrypted, e.previous_secret_encrypted,
                         e.previous_secret_expires_at, e.rate_limit, e.paused_until"#,
            limit as i64,
            lease_seconds,
        )
        .fetch_all(&self.services.pool)
        .await?)
    }

    async fn process(&self, delivery: Claimed) {
        let mut probing = false;
        // Only an endpoint with a rate limit or an open circuit costs a permit.
        if delivery.enabled && (delivery.rate_limit.is_some() || delivery.paused_until.is_some()) {
            match permit(&self.services.pool, delivery.endpoint_id).await {
                Ok(Permit::Go { probing: p }) => probing = p,
                Ok(Permit::Wait(until)) => {
                    if let Err(err) = defer(&self.services.pool, delivery.id, until).await {
                        err.log();
                    }
                    return;
                }
                Err(err) => {
                    // The claim runs out and the delivery is tried again.
                    err.log();
                    return;
                }
            }
        }
        let started = Instant::now();
        let attempt = self.attempt(&delivery).await;
        metrics::histogram!("remit_webhook_delivery_seconds").record(started.elapsed().as_secs_f64());
        let outcome = if attempt.succeeded() { "delivered" } else { "failed" };
        metrics::counter!("remit_webhook_deliveries_total", "outcome" => outcome).increment(1);
        if let Err(err) = record(&self.services, &delivery, &attempt, probing).await {
            // The claim runs out and the delivery is tried again.
            err.log();
        }
    }

    async fn release(&self, unstarted: Vec<Claimed>) -> Result<()> {
        let ids: Vec<Uuid> = unstarted.iter().map(|d| d.id).collect();
        sqlx::query!(
            "UPDATE webhook_deliveries SET claimed_until = NULL, attempts = attempts - 1 WHERE id = ANY($1)",
            &ids
        )
        .execute(&self.services.pool)
        .await?;
        Ok(())
    }
}

impl Deliveries {
    async fn attempt(&self, d: &Claimed) -> Attempt {
        if !d.enabled {
            return Attempt::failed("The endpoint is disabled.".into());
        }
        let development = self.services.settings.is_development();
        let url = match Url::parse(&d.url)
            .map_err(|_| "The saved URL is not valid.".to_owned())
            .and_then(|url| address::check_literal(&url, development).map(|()| url).map_err(|e| e.public_message()))
        {
            Ok(url) => url,
            Err(error) => return Attempt::failed(error),
        };
        let secrets = match endpoints::signing_secrets(
            &self.services,
            &d.secret_encrypted,
            d.previous_secret_encrypted.as_deref(),
            d.previous_secret_expires_at,
        ) {
            Ok(secrets) => secrets,
            Err(err) => {
                err.log();
                return Attempt::failed("The endpoint's secret could not be read.".into());
            }
        };
        let body = serde_json::to_vec(&d.payload).expect("JSON values serialise");
        let id = d.payload["id"].as_str().unwrap_or_default();
        post(&self.client, &url, &secrets, Message { id, kind: &d.kind, body: &body }).await
    }
}

/// Takes a send from the endpoint's allowance, shared by every process through its row: the rate
/// limit's next slot, and the probe of an open circuit whose pause has run out (the process that
/// takes it holds the circuit for [`PROBE_LEASE`]; the others wait).
async fn permit(pool: &sqlx::PgPool, endpoint_id: Uuid) -> Result<Permit> {
    let taken = sqlx::query_scalar!(
        r#"UPDATE webhook_endpoints SET
               rate_tat = CASE WHEN rate_limit IS NULL THEN NULL
                               ELSE GREATEST(rate_tat, now()) + make_interval(secs => 1.0 / rate_limit) END,
               paused_until = CASE WHEN paused_until IS NULL THEN NULL ELSE now() + make_interval(secs => $2) END
           WHERE id = $1
             AND (rate_limit IS NULL OR rate_tat IS NULL OR rate_tat < now() + interval '1 second')
             AND (paused_until IS NULL OR paused_until <= now())
           RETURNING paused_until IS NOT NULL AS "probing!""#,
        endpoint_id,
        PROBE_LEASE.as_secs_f64(),
    )
    .fetch_optional(pool)
    .await?;
    if let Some(probing) = taken {
        return Ok(Permit::Go { probing });
    }
    let until = sqlx::query_scalar!(
        "SELECT GREATEST(paused_until, rate_tat - interval '1 second') FROM webhook_endpoints WHERE id = $1",
        endpoint_id
    )
    .fetch_optional(pool)
    .await?
    .flatten();
    Ok(Permit::Wait(until.unwrap_or_else(Utc::now).max(Utc::now())))
}

/// Puts a claimed delivery back, due at `until`, its attempt not counted.
async fn defer(pool: &sqlx::PgPool, id: Uuid, until: DateTime<Utc>) -> Result<()> {
    sqlx::query!(
        "UPDATE webhook_deliveries SET claimed_until = NULL, attempts = attempts - 1, next_attempt_at = $2
         WHERE id = $1",
        id,
        until
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Which attempt a log row is about.
pub(super) struct Logged<'a> {
    /// The delivery and its event; `None` for a test delivery.
    pub delivery: Option<(Uuid, Uuid)>,
    pub endpoint_id: Uuid,
    pub kind: &'a str,
    /// The attempt's number on its delivery's schedule.
    pub number: i32,
}

/// Writes one attempt in the endpoint's log, with the receiver's answer.
pub(super) async fn log_attempt(conn: &mut PgConnection, logged: Logged<'_>, attempt: &Attempt) -> Result<()> {
    sqlx::query!(
        "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, event_id, event_type, attempt, status_code,
             response_time_ms, error, succeeded, response_body, response_headers)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        Uuid::new_v4(),
        logged.delivery.map(|(delivery, _)| delivery),
        logged.endpoint_id,
        logged.delivery.map(|(_, event)| event),
        logged.kind,
        logged.number,
        attempt.status_code.map(i32::from),
        attempt.response_time_ms.min(i32::MAX as u64) as i32,
        attempt.error,
        attempt.succeeded(),
        attempt.response_body,
        attempt.response_headers.clone().map(serde_json::Value::Object),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes an attempt down: the log row, the delivery's state and next try, and what it means for
/// the endpoint; in one transaction.
async fn record(services: &Services, d: &Claimed, attempt: &Attempt, probing: bool) -> Result<()> {
    let succeeded = attempt.succeeded();
    let gone = attempt.status_code == Some(410);
    let next = if succeeded || gone || !d.enabled {
        None
    } else {
        retry_delay(d.attempts, rand::thread_rng().r#gen()).map(|pause| Utc::now() + pause)
    };
    let mut tx = services.pool.begin().await?;
    let logged =
        Logged { delivery: Some((d.id, d.event_id)), endpoint_id: d.endpoint_id, kind: &d.kind, number: d.attempts };
    log_attempt(&mut tx, logged, attempt).await?;
    sqlx::query!(
        "UPDATE webhook_deliveries SET
             status = CASE WHEN $2 THEN 'succeeded' WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END::webhook_delivery_status,
             next_attempt_at = $3, claimed_until = NULL, last_status = $4, last_error = $5,
             delivered_at = CASE WHEN $2 THEN now() ELSE delivered_at END
         WHERE id = $1",
        d.id,
        succeeded,
        next,
        attempt.status_code.map(i32::from),
        attempt.error,
    )
    .execute(&mut *tx)
    .await?;
    if succeeded {
        // A success closes the circuit and ends the failing spell.
        sqlx::query!(
            "UPDATE webhook_endpoints SET failing_since = NULL, failure_warned_at = NULL, consecutive_failures = 0,
                 paused_until = NULL, pause_seconds = NULL
             WHERE id = $1 AND (failing_since IS NOT NULL OR consecutive_failures > 0 OR paused_until IS NOT NULL)",
            d.endpoint_id
        )
        .execute(&mut *tx)
        .await?;
    } else if d.enabled {
        endpoint_failed(&mut tx, d, gone, probing).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A failed attempt: the endpoint's failing spell starts or goes on and its circuit may open (or,
/// after a failed probe, stay open longer); 410, or five days of failing, disables the endpoint; a
/// day before that its owners are warned.
async fn endpoint_failed(tx: &mut PgConnection, d: &Claimed, gone: bool, probing: bool) -> Result<()> {
    let endpoint = sqlx::query!(
        r#"UPDATE webhook_endpoints
           SET failing_since = COALESCE(failing_since, now()), consecutive_failures = consecutive_failures + 1
           WHERE id = $1
           RETURNING failing_since AS "failing_since!", failure_warned_at IS NOT NULL AS "warned!",
                     consecutive_failures, pause_seconds"#,
        d.endpoint_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let last_pause = endpoint.pause_seconds.map(|s| Duration::from_secs(s.max(0) as u64));
    if let Some(pause) = pause_after_failure(endpoint.consecutive_failures, last_pause, probing) {
        sqlx::query!(
            "UPDATE webhook_endpoints SET paused_until = now() + make_interval(secs => $2), pause_seconds = $3
             WHERE id = $1",
            d.endpoint_id,
            pause.as_secs_f64(),
            pause.as_secs() as i32,
        )
        .execute(&mut *tx)
        .await?;
        tracing::info!(endpoint = %d.endpoint_id, seconds = pause.as_secs(), "webhook endpoint paused");
    }
    let step =
        if gone { FailureStep::Disable } else { after_failure(endpoint.failing_since, Utc::now(), endpoint.warned) };
    match step {
        FailureStep::Keep => {}
        FailureStep::Warn => {
            let first = sqlx::query!(
                "UPDATE webhook_endpoints SET failure_warned_at = now() WHERE id = $1 AND failure_warned_at IS NULL",
                d.endpoint_id
            )
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if first {
                let text = format!(
                    "Every delivery of Remit's webhooks to {} has failed since {}. If it keeps failing, Remit disables \
                     the endpoint tomorrow and stops sending to it.\n\nThe endpoint's delivery log in Remit's webhook \
                     settings shows each failure and the answer your system gave.",
                    d.url,
                    endpoint.failing_since.format("%-d %B %Y, %H:%M UTC"),
                );
                tell_owners(tx, d.tenant_id, "Your Remit webhook endpoint is failing", &text).await?;
            }
        }
        FailureStep::Disable => {
            let reason = if gone { DisabledReason::Gone } else { DisabledReason::Failing };
            disable(tx, d, reason).await?;
        }
    }
    Ok(())
}

async fn disable(tx: &mut PgConnection, d: &Claimed, reason: DisabledReason) -> Result<()> {
    let disabled = sqlx::query!(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now()
         WHERE id = $1 AND enabled",
        d.endpoint_id,
        reason.as_str(),
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if !disabled {
        return Ok(());
    }
    let text = format!(
        "Remit stopped sending webhooks to {} because {}.\n\nFix the endpoint, then turn it on again in Remit's webhook \
         settings; events recorded meanwhile can be replayed to it from there.",
        d.url,
        reason.describe(),
    );
    tell_owners(tx, d.tenant_id, "Your Remit webhook endpoint was disabled", &text).await?;
    alerts::raise(
        tx,
        Some(d.tenant_id),
        "webhook_endpoint_disabled",
        &format!("A webhook endpoint was disabled ({}): {}", reason.describe(), d.url),
    )
    .await?;
    audit::record(
        tx,
        Entry {
            tenant_id: Some(d.tenant_id),
            actor: None,
            action: "webhook.endpoint_disabled",
            target: Some(d.endpoint_id.to_string()),
            reason: Some(reason.as_str().into()),
            details: serde_json::json!({ "url": d.url }),
        },
    )
    .await?;
    Ok(())
}

async fn tell_owners(tx: &mut PgConnection, tenant_id: Uuid, subject: &str, text: &str) -> Result<()> {
    for to in accounts::owner_emails(&mut *tx, tenant_id).await? {
        mail::enqueue(
            &mut *tx,
            OutgoingEmail {
                tenant_id: Some(tenant_id),
                to,
                subject: subject.into(),
                text_body: text.into(),
                attachments: vec![],
                links: None,
            },
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spreads_eight_attempts_over_about_a_day() {
        assert_eq!(retry_delay(0, 0.5), Some(Duration::ZERO));
        assert_eq!(retry_delay(1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(2, 0.5), Some(Duration::from_secs(300)));
        assert_eq!(retry_delay(8, 0.5), None);
        assert_eq!(retry_delay(-1, 0.5), None);
        let total: Duration = (1..8).map(|n| retry_delay(n, 0.5).unwrap()).sum();
        assert!(total > Duration::from_secs(24 * 3600) && total < Duration::from_secs(30 * 3600), "{total:?}");
    }

    #[test]
    fn jitter_moves_a_pause_by_at_most_a_tenth() {
        assert_eq!(retry_delay(4, 0.0), Some(Duration::from_secs(2 * 3600).mul_f64(0.9)));
        assert_eq!(retry_delay(4, 1.0), Some(Duration::from_secs(2 * 3600).mul_f64(1.1)));
        assert_ne!(retry_delay(4, 0.1), retry_delay(4, 0.9));
    }

    #[test]
    fn the_circuit_opens_at_the_fifth_failure_and_failed_probes_double_the_pause() {
        assert_eq!(pause_after_failure(4, None, false), None);
        assert_eq!(pause_after_failure(CIRCUIT_AFTER, None, false), Some(FIRST_PAUSE));
        // Deliveries already posted when it opened fail without reopening it.
        assert_eq!(pause_after_failure(CIRCUIT_AFTER + 3, Some(FIRST_PAUSE), false), None);
        assert_eq!(pause_after_failure(9, Some(FIRST_PAUSE), true), Some(FIRST_PAUSE * 2));
        assert_eq!(pause_after_failure(30, Some(Duration::from_secs(50 * 60)), true), Some(MAX_PAUSE));
    }

    #[test]
    fn five_days_of_failure_disable_after_a_warning_the_day_before() {
        let start = Utc::now();
        assert_eq!(after_failure(start, start + chrono::Duration::hours(1), false), FailureStep::Keep);
        assert_eq!(after_failure(start, start + chrono::Duration::days(4), false), FailureStep::Warn);
        assert_eq!(after_failure(start, start + chrono::Duration::days(4), true), FailureStep::Keep);
        assert_eq!(after_failure(start, start + chrono::Duration::days(5), true), FailureStep::Disable);
        assert_eq!(after_failure(start, start + chrono::Duration::days(6), false), FailureStep::Disable);
    }
}
