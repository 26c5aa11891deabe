//! The applier: the `stripe_events` table is its own queue. Each process takes due events in
//! batches (one statement claims as many as it has free slots, `FOR UPDATE SKIP LOCKED`, so
//! processes never take the same event), applies them concurrently on the pool's connections,
//! and retries a failed one later with a growing pause. Nothing else is written per event: the
//! intake's row is the queue entry, its `applied_at` the completion.
//!
//! A claim lasts a lease (`JOB_RECOVERY_SECONDS`): an event claimed by a process that died is
//! taken again when the lease has run out, and applying is safe twice over (the event's row is
//! locked and `applied_at` checked in the transaction that applies it).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::{
    Services, alerts,
    error::{Error, Result},
    queue,
    table_queue::{self, Runner, TableQueue},
};

/// The notification sent after a commit that stored new events (or made one due again).
pub const CHANNEL: &str = "remit_stripe_events";
/// Tries before an event is given up: with [`backoff`], the last is about a day after the first
/// failure (Stripe or the database away for that long).
pub const MAX_ATTEMPTS: i32 = 20;

/// The pause after the `attempts`-th failed try: 5 s, doubling, at most 2 h.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
    Duration::from_secs(5u64.saturating_mul(1 << doublings).min(2 * 60 * 60))
}

/// When an event that failed its `attempts`-th try is tried again; `None`: given up.
pub fn next_attempt(attempts: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (attempts < MAX_ATTEMPTS).then(|| now + backoff(attempts))
}

/// An event claimed for applying.
struct Claimed {
    id: String,
    created: DateTime<Utc>,
    attempts: i32,
    payload: serde_json::Value,
}

/// Tells every process's applier that events are due (after the commit that stored them).
pub async fn wake(pool: &PgPool) -> Result<()> {
    table_queue::wake(pool, CHANNEL).await
}

/// Claims up to `limit` due events for `lease`.
async fn claim(pool: &PgPool, limit: usize, lease: Duration) -> Result<Vec<Claimed>> {
    let lease_seconds = lease.as_secs_f64();
    Ok(sqlx::query_as!(
        Claimed,
        r#"WITH due AS (
               SELECT id, created FROM stripe_events
               WHERE applied_at IS NULL AND next_attempt_at <= now()
                 AND (claimed_until IS NULL OR claimed_until < now())
               ORDER BY next_attempt_at
               LIMIT $1
               FOR UPDATE SKIP LOCKED
           )
           UPDATE stripe_events e
           SET claimed_until = now() + make_interval(secs => $2), attempts = e.attempts + 1
           FROM due WHERE e.id = due.id AND e.created = due.created
           RETURNING e.id, e.created, e.attempts, e.payload"#,
        limit as i64,
        lease_seconds,
    )
    .fetch_all(pool)
    .await?)
}

/// Applies one claimed event; a failure is written down with the next try.
async fn apply_one(services: &Services, event: Claimed) {
    let Claimed { id, created, attempts, payload } = event;
    let started = std::time::Instant::now();
    let result = super::apply(services, &id, created, payload).await;
    metrics::histogram!("remit_stripe_event_apply_seconds").record(started.elapsed().as_secs_f64());
    let Err(err) = result else {
        metrics::counter!("remit_stripe_events_applied_total").increment(1);
        return;
    };
    metrics::counter!("remit_stripe_event_failures_total").increment(1);
    err.log();
    if let Err(err) = record_failure(&services.pool, &id, created, attempts, &err).await {
        err.log();
    }
}

async fn record_failure(pool: &PgPool, id: &str, created: DateTime<Utc>, attempts: i32, error: &Error) -> Result<()> {
    let message: String = error.to_string().chars().take(500).collect();
    let next = next_attempt(attempts, Utc::now());
    let mut tx = pool.begin().await?;
    let recorded = sqlx::query!(
        "UPDATE stripe_events SET last_error = $2, next_attempt_at = $3, claimed_until = NULL
         WHERE id = $1 AND created = $4 AND applied_at IS NULL",
        id,
        message,
        next,
        created,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    // Told to platform admins as a job would be: at its third failure, and when given up.
    if recorded && (attempts == i32::from(queue::ALERT_AFTER_FAILURES) || next.is_none()) {
        let (text, key) = match next {
            None => (
                format!("Stripe event {id} failed {attempts} times and was given up: {message}"),
                format!("stripe_event:{id}:given_up"),
            ),
            Some(_) => (
                format!("Stripe event {id} has failed {attempts} times in a row and will be retried: {message}"),
                format!("stripe_event:{id}:failing"),
            ),
        };
        alerts::raise_keyed(&mut tx, None, "stripe_event_failed", &text, &key).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Puts claimed events that were not started back, due now (a stopping process).
async fn release(pool: &PgPool, ids: &[String]) -> Result<()> {
    sqlx::query!(
        "UPDATE stripe_events SET claimed_until = NULL, attempts = attempts - 1
         WHERE id = ANY($1) AND applied_at IS NULL",
        ids
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The applier of one process: `concurrency` events at a time, each claim lasting `lease`.
pub struct Applier(Runner);

impl Applier {
    pub fn start(services: Services, concurrency: usize, lease: Duration) -> Self {
        let pool = services.pool.clone();
        Self(Runner::start(Events { services, lease }, pool, concurrency))
    }

    /// Stops claiming and waits up to `grace` for the events being applied; `false` when some
    /// were still running (their claims run out and another process applies them).
    pub async fn stop(self, grace: Duration) -> bool {
        self.0.stop(grace).await
    }
}

/// The `stripe_events` table as a queue.
struct Events {
    services: Services,
    lease: Duration,
}

impl TableQueue for Events {
    type Item = Claimed;
    const CHANNEL: &'static str = CHANNEL;

    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>> {
        claim(&self.services.pool, limit, self.lease).await
    }

    async fn process(&self, event: Claimed) {
        apply_one(&self.services, event).await;
    }

    async fn release(&self, unstarted: Vec<Claimed>) -> Result<()> {
        let ids: Vec<String> = unstarted.into_iter().map(|e| e.id).collect();
        release(&self.services.pool, &ids).await
    }
}

/// An event that failed to apply and has not been applied since, for platform admins.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailingEvent {
    pub id: String,
    pub kind: String,
    pub account: Option<String>,
    pub attempts: i32,
    pub last_error: String,
    /// The next try; `None` when it was given up.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
}

/// Events that failed and are not applied, most recently received first.
pub async fn failing(pool: &PgPool, limit: i64) -> Result<Vec<FailingEvent>> {
    Ok(sqlx::query_as!(
        FailingEvent,
        r#"SELECT id, type AS kind, account, attempts, last_error AS "last_error!", next_attempt_at, received_at
           FROM stripe_events
           WHERE applied_at IS NULL AND last_error IS NOT NULL
           ORDER BY received_at DESC
           LIMIT $1"#,
        limit,
    )
    .fetch_all(pool)
    .await?)
}

/// Tries a failing (or given-up) event again now, with its attempts counted from zero.
pub async fn retry_now(pool: &PgPool, id: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    let rescheduled = sqlx::query!(
        "UPDATE stripe_events SET next_attempt_at = now(), claimed_until = NULL, attempts = 0
         WHERE id = $1 AND applied_at IS NULL AND last_error IS NOT NULL",
        id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if rescheduled == 0 {
        return Err(Error::NotFound("failing Stripe event"));
    }
    tx.commit().await?;
    wake(pool).await
}

/// Events due now or being applied: zero when every event received so far has taken effect (or
/// waits for a later retry).
pub async fn due_now(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM stripe_events
           WHERE applied_at IS NULL AND (next_attempt_at <= now() OR claimed_until > now())"#
    )
    .fetch_one(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_from_five_seconds_up_to_two_hours() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(5), Duration::from_secs(80));
        assert_eq!(backoff(12), Duration::from_secs(2 * 60 * 60));
        assert_eq!(backoff(i32::MAX), Duration::from_secs(2 * 60 * 60));
        assert_eq!(backoff(0), Duration::from_secs(5));
    }

    #[test]
    fn the_last_try_is_about_a_day_after_the_first_failure() {
        let waited: Duration = (1..MAX_ATTEMPTS).map(backoff).sum();
        assert!(waited > Duration::from_secs(18 * 3600) && waited < Duration::from_secs(30 * 3600), "{waited:?}");
    }

    #[test]
    fn an_event_is_given_up_after_its_last_attempt() {
        let now = Utc::now();
        assert_eq!(next_attempt(1, now), Some(now + Duration::from_secs(5)));
        assert_eq!(next_attempt(MAX_ATTEMPTS - 1, now), Some(now + backoff(MAX_ATTEMPTS - 1)));
        assert_eq!(next_attempt(MAX_ATTEMPTS, now), None);
    }
}
