//! Alerts for platform admins: a payment failure rate over 5 %, a disabled webhook endpoint,
//! suspicious payments. One alert of a kind per tenant per day, emailed to platform admins.

use chrono::{DateTime, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    Services,
    error::Result,
    mail::{self, OutgoingEmail},
    queue,
};

/// The failure rate above which payments are alerted on.
pub const FAILURE_RATE_THRESHOLD: f64 = 0.05;
/// Fewer payments than this in a day say too little to alert on.
pub const MIN_PAYMENTS_FOR_RATE: i64 = 10;

/// Raises an alert (once per tenant, kind and day) and emails platform admins about it.
pub async fn raise(conn: &mut PgConnection, tenant_id: Option<Uuid>, kind: &str, message: &str) -> Result<bool> {
    let dedupe = format!(
        "{kind}:{}:{}",
        tenant_id.map(|t| t.to_string()).unwrap_or_else(|| "platform".into()),
        Utc::now().date_naive()
    );
    raise_keyed(conn, tenant_id, kind, message, &dedupe).await
}

/// Raises an alert once per `dedupe_key` (e.g. once per high-risk payment) and emails platform
/// admins about it.
pub async fn raise_keyed(
    conn: &mut PgConnection,
    tenant_id: Option<Uuid>,
    kind: &str,
    message: &str,
    dedupe_key: &str,
) -> Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO alerts (id, tenant_id, kind, message, dedupe_key) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dedupe_key) DO NOTHING",
        Uuid::new_v4(),
        tenant_id,
        kind,
        message,
        dedupe_key,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if inserted {
        let admins =
            sqlx::query_scalar!("SELECT email FROM users WHERE role = 'platform_admin'").fetch_all(&mut *conn).await?;
        for to in admins {
            mail::enqueue(
                conn,
                OutgoingEmail {
                    tenant_id,
                    to,
                    subject: format!("Remit alert: {}", kind.replace(['_', '.'], " ")),
                    text_body: format!("{message}\n\nSee the admin dashboard for details."),
                    attachments: vec![],
                    links: None,
                },
            )
            .await?;
        }
        tracing::warn!(kind, ?tenant_id, "alert raised");
    }
    Ok(inserted)
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub id: Uuid,
    pub tenant_name: Option<String>,
    pub kind: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

/// Recent alerts, of one tenant or of all.
pub async fn recent(pool: &PgPool, tenant_id: Option<Uuid>, limit: i64) -> Result<Vec<Alert>> {
    Ok(sqlx::query_as!(
        Alert,
        r#"SELECT a.id, t.name AS "tenant_name?", a.kind, a.message, a.created_at
           FROM alerts a LEFT JOIN tenants t ON t.id = a.tenant_id
           WHERE $1::uuid IS NULL OR a.tenant_id = $1
           ORDER BY a.created_at DESC LIMIT $2"#,
        tenant_id,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Every 15 minutes: alert on tenants whose payments fail too often (see
/// [`check_payment_health`]). A unit struct: the schedule enqueues it with a `null` payload.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CheckPaymentHealth;

impl TaskHandler for CheckPaymentHealth {
    const IDENTIFIER: &'static str = "check_payment_health";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        check_payment_health(services).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Looks at the last 24 hours of payments of every tenant, live and test apart, and alerts
/// where more than 5 % failed (run every 15 minutes by a job, and after each failed payment).
pub async fn check_payment_health(services: &Services) -> Result<u64> {
    let rows = sqlx::query!(
        r#"SELECT p.tenant_id, p.livemode, t.name AS "tenant_name?", count(*) AS "total!",
                  count(*) FILTER (WHERE NOT p.succeeded) AS "failed!"
           FROM payment_outcomes p LEFT JOIN tenants t ON t.id = p.tenant_id
           WHERE p.occurred_at > now() - interval '24 hours'
           GROUP BY p.tenant_id, p.livemode, t.name"#
    )
    .fetch_all(&services.pool)
    .await?;
    let mut raised = 0;
    for row in rows {
        let rate = row.failed as f64 / row.total as f64;
        if row.total >= MIN_PAYMENTS_FOR_RATE && rate > FAILURE_RATE_THRESHOLD {
            let mut conn = services.pool.acquire().await?;
            let message = format!(
                "{} of {} {}payments failed in the last 24 hours ({:.1} %) for {}.",
                row.failed,
                row.total,
                if row.livemode { "" } else { "test " },
                rate * 100.0,
                row.tenant_name.as_deref().unwrap_or("the platform")
            );
            let dedupe = format!(
                "payment_failure_rate:{}:{}:{}",
                row.tenant_id.map_or_else(|| "platform".to_owned(), |t| t.to_string()),
                if row.livemode { "live" } else { "test" },
                Utc::now().date_naive()
            );
            if raise_keyed(&mut conn, row.tenant_id, "payment_failure_rate", &message, &dedupe).await? {
                raised += 1;
            }
        }
    }
    Ok(raised)
}
