//! What the tenant sees of deliveries and does with them: the log per endpoint with filters,
//! one delivery with its payload and every attempt, redelivering one, replaying every event since
//! a time to one endpoint, and a test delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use url::Url;
use uuid::Uuid;

use super::{
    address,
    delivery::{self, Attempt, Message},
    endpoints,
    events::{Envelope, ObjectKind, ObjectPosition, TenantEvent, TestMessage},
    signing,
    timing::{self, Timings},
};
use crate::{
    Services,
    audit::{self, Entry},
    auth::Principal,
    error::{Error, Result},
};

/// How far back a replay may reach.
pub const REPLAY_WINDOW: chrono::Duration = chrono::Duration::days(30);
/// Events one replay may send at most.
pub const MAX_REPLAY: i64 = 10_000;
/// Deliveries one page of the log shows at most.
pub const MAX_PAGE: i64 = 200;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "webhook_delivery_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet taken by the receiver; tried again at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// The schedule ran out (or the endpoint was disabled); it can be redelivered.
    Failed,
}

/// Which deliveries the log shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub endpoint: Option<Uuid>,
    pub event_type: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A row of the deliveries log.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub endpoint_url: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The tenant's deliveries, newest first, as `filter` chooses.
pub async fn list(pool: &PgPool, tenant_id: Uuid, filter: &Filter, limit: i64) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as!(
        Delivery,
        r#"SELECT d.id, d.endpoint_id, e.url AS endpoint_url, 'evt_' || replace(d.event_id::text, '-', '') AS "event_id!",
                  ev.type AS event_type, d.status AS "status: DeliveryStatus", d.attempts, d.last_status, d.last_error,
                  d.next_attempt_at, d.created_at, d.delivered_at
           FROM webhook_deliveries d
           JOIN webhook_endpoints e ON e.id = d.endpoint_id
           JOIN webhook_events ev ON ev.id = d.event_id
           WHERE e.tenant_id = $1
             AND ($2::uuid IS NULL OR d.endpoint_id = $2)
             AND ($3::text IS NULL OR ev.type = $3)
             AND ($4::webhook_delivery_status IS NULL OR d.status = $4)
             AND ($5::timestamptz IS NULL OR d.created_at >= $5)
             AND ($6::timestamptz IS NULL OR d.created_at < $6)
           ORDER BY d.created_at DESC, d.id
           LIMIT $7"#,
        tenant_id,
        filter.endpoint,
        filter.event_type,
        filter.status as Option<DeliveryStatus>,
        filter.since,
        filter.until,
        limit.clamp(1, MAX_PAGE),
    )
    .fetch_all(pool)
    .await?)
}

/// One HTTP attempt of a delivery, with the receiver's answer.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub response_time_ms: Option<i32>,
    pub error: Option<String>,
    pub succeeded: bool,
    pub response_body: Option<String>,
    pub response_headers: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// A delivery with the payload sent and every attempt, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub payload: serde_json::Value,
    pub attempts_log: Vec<AttemptRow>,
}

pub async fn detail(pool: &PgPool, tenant_id: Uuid, id: Uuid) -> Result<DeliveryDetail> {
    let delivery = sqlx::query_as!(
        Delivery,
        r#"SELECT d.id, d.endpoint_id, e.url AS endpoint_url, 'evt_' || replace(d.event_id::text, '-', '') AS "event_id!",
                  ev.type AS event_type, d.status AS "status: DeliveryStatus", d.attempts, d.last_status, d.last_error,
                  d.next_attempt_at, d.created_at, d.delivered_at
           FROM webhook_deliveries d
           JOIN webhook_endpoints e ON e.id = d.endpoint_id
           JOIN webhook_events ev ON ev.id = d.event_id
           WHERE e.tenant_id = $1 AND d.id = $2"#,
        tenant_id,
        id,
    )
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("webhook delivery"))?;
    let payload = sqlx::query_scalar!(
        "SELECT ev.payload FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id WHERE d.id = $1",
        id
    )
    .fetch_one(pool)
    .await?;
    let attempts_log = sqlx::query_as!(
        AttemptRow,
        "SELECT attempt, status_code, response_time_ms, error, succeeded, response_body, response_headers, created_at
         FROM webhook_attempts WHERE delivery_id = $1 ORDER BY created_at, id",
        id
    )
    .fetch_all(pool)
    .await?;
    Ok(DeliveryDetail { delivery, payload, attempts_log })
}

/// Sends a delivery again now, on a fresh schedule (tenant staff). The endpoint must be enabled.
pub async fn redeliver(services: &Services, actor: &Principal, id: Uuid) -> Result<()> {
    let tenant_id = actor.tenant()?;
    let mut tx = services.pool.begin().await?;
    let delivery = sqlx::query!(
        "SELECT d.id, e.enabled FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
         WHERE d.id = $1 AND e.tenant_id = $2 FOR UPDATE OF d",
        id,
        tenant_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("webhook delivery"))?;
    if !delivery.enabled {
        return Err(Error::conflict("The endpoint is disabled. Turn it on first, then redeliver."));
    }
    sqlx::query!(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), claimed_until = NULL
         WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(actor),
            action: "webhook.redelivered",
            target: Some(id.to_string()),
            reason: None,
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    delivery::wake(&services.pool).await
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Replayed {
    /// Events owed to the endpoint for the first time (it did not exist or want them then).
    pub added: i64,
    /// Failed deliveries sent again.
    pub retried: i64,
}

/// Sends every event of the endpoint's mode and types recorded since `since` (at most 30 days
/// back, at most 10,000 events) that the endpoint has not taken: new deliveries for events it
/// never had, a fresh schedule for failed ones. Delivered and pending ones are left alone, so
/// replaying twice sends nothing twice (tenant staff).
pub async fn replay(
    services: &Services,
    actor: &Principal,
    endpoint_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Replayed> {
    let tenant_id = actor.tenant()?;
    if since < Utc::now() - REPLAY_WINDOW {
        return Err(Error::invalid("since", "A replay can reach at most 30 days back."));
    }
    let endpoint = endpoints::get(&services.pool, tenant_id, endpoint_id).await?;
    if !endpoint.enabled {
        return Err(Error::conflict("The endpoint is disabled. Turn it on first, then replay."));
    }
    let mut tx = services.pool.begin().await?;
    let counts = sqlx::query!(
        r#"WITH wanted AS (
               SELECT ev.id FROM webhook_events ev
               WHERE ev.tenant_id = $1 AND ev.livemode = $2 AND ev.created_at >= $3
                 AND ($4::text[] IS NULL OR ev.type = ANY ($4))
               ORDER BY ev.created_at
               LIMIT $6
           ), owed AS (
               INSERT INTO webhook_deliveries (id, event_id, endpoint_id)
               SELECT gen_random_uuid(), wanted.id, $5 FROM wanted
               ON CONFLICT (event_id, endpoint_id) DO UPDATE
                   SET status = 'pending', attempts = 0, next_attempt_at = now(), claimed_until = NULL
                   WHERE webhook_deliveries.status = 'failed'
               RETURNING (xmax = 0) AS added
           )
           SELECT count(*) FILTER (WHERE added) AS "added!", count(*) FILTER (WHERE NOT added) AS "retried!" FROM owed"#,
        tenant_id,
        endpoint.livemode,
        since,
        endpoint.event_types.as_deref(),
        endpoint_id,
        MAX_REPLAY,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(actor),
            action: "webhook.replayed",
            target: Some(endpoint_id.to_string()),
            reason: None,
            details: serde_json::json!({ "since": since, "added": counts.added, "retried": counts.retried }),
        },
    )
    .await?;
    tx.commit().await?;
    delivery::wake(&services.pool).await?;
    Ok(Replayed { added: counts.added, retried: counts.retried })
}

/// What a test delivery found.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    #[serde(flatten)]
    pub attempt: Attempt,
    pub timings: Timings,
    /// Whether the receiver refused the same test signed with a wrong secret (sent right after):
    /// `Some(false)` when it accepted that too, `None` when the test itself was not accepted.
    pub verifies_signatures: Option<bool>,
}

fn test_envelope(endpoint_id: Uuid, livemode: bool, message: String) -> Envelope {
    Envelope {
        id: format!("evt_test_{}", Uuid::new_v4().simple()),
        created: Utc::now().timestamp(),
        livemode,
        object: ObjectPosition {
            kind: ObjectKind::WebhookEndpoint,
            id: endpoint_id.to_string(),
            sequence: 0,
            previous_event: None,
        },
        event: TenantEvent::Test(TestMessage { endpoint: endpoint_id, message }),
    }
}

/// Posts `envelope` signed with `secrets`, timing each phase.
async fn timed(services: &Services, url: &Url, secrets: &[String], envelope: &Envelope) -> Result<(Attempt, Timings)> {
    let body = serde_json::to_vec(envelope).map_err(|e| anyhow::anyhow!("the test event: {e}"))?;
    let headers = delivery::signed_headers(secrets, &Message { id: &envelope.id, kind: "remit.test", body: &body });
    Ok(timing::post(url, services.settings.is_development(), &headers, body).await)
}

/// Sends a `remit.test` event to one endpoint now and reports what happened (tenant staff): the
/// answer, how long each phase took, and whether the receiver checks signatures (a second test,
/// signed with a wrong secret, should be refused). The attempt is logged; the events are not
/// recorded.
pub async fn send_test(services: &Services, actor: &Principal, endpoint_id: Uuid) -> Result<TestResult> {
    let tenant_id = actor.tenant()?;
    let row = sqlx::query!(
        "SELECT url, livemode, secret_encrypted, previous_secret_encrypted, previous_secret_expires_at
         FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        endpoint_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("webhook endpoint"))?;
    let url: Url = address::check_url(services, &row.url).await?;
    let secrets = endpoints::signing_secrets(
        services,
        &row.secret_encrypted,
        row.previous_secret_encrypted.as_deref(),
        row.previous_secret_expires_at,
    )?;
    let test = test_envelope(endpoint_id, row.livemode, format!("A test event sent by {}.", actor.display_name));
    let (attempt, timings) = timed(services, &url, &secrets, &test).await?;
    let verifies_signatures = if attempt.succeeded() {
        let forged = test_envelope(
            endpoint_id,
            row.livemode,
            "Signed with a wrong secret on purpose: a receiver that checks signatures refuses this one.".into(),
        );
        let (answer, _) = timed(services, &url, &[signing::new_secret()], &forged).await?;
        Some(!answer.succeeded())
    } else {
        None
    };
    let mut conn = services.pool.acquire().await?;
    let logged = delivery::Logged { delivery: None, endpoint_id, kind: "remit.test", number: 1 };
    delivery::log_attempt(&mut conn, logged, &attempt).await?;
    tracing::info!(%tenant_id, endpoint = %endpoint_id, status = ?attempt.status_code, ms = attempt.response_time_ms, ?verifies_signatures, "test webhook sent");
    Ok(TestResult { attempt, timings, verifies_signatures })
}
