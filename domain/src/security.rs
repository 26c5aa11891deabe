//! Payment fraud and security: velocity checks on requests to pay, and the security events
//! (suspicious activity) that platform admins, and each tenant's staff for their tenant, review.
//! A high-severity event also alerts platform admins.
//!
//! Counts live in PostgreSQL and are taken under advisory locks, so every server process
//! enforces the same limits.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    alerts,
    error::{Error, Result, human_duration},
};

/// Requests to pay (opening or reopening a Checkout page) one buyer email may make per hour,
/// across all their lots.
pub const CHECKOUT_REQUESTS_PER_EMAIL_HOUR: i64 = 20;
/// Requests to pay from one client address per hour (a saleroom's shared network included).
pub const CHECKOUT_REQUESTS_PER_IP_HOUR: i64 = 60;
/// Payment links that match no bid, tried from one address per hour, before that address is
/// refused: someone guessing links.
pub const UNKNOWN_LINKS_PER_IP_HOUR: i64 = 20;
/// Checkout requests are kept this long, for review.
const CHECKOUT_REQUESTS_KEPT_DAYS: i32 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Severity::Info, Severity::Warning, Severity::High].into_iter().find(|v| v.as_str() == s)
    }
}

/// Something suspicious, as it is recorded.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub tenant_id: Option<Uuid>,
    pub kind: &'a str,
    pub severity: Severity,
    pub message: String,
    pub client_ip: Option<IpAddr>,
    pub buyer_email: Option<&'a str>,
    pub bid_id: Option<Uuid>,
    /// Events with the same key are recorded once (a repeated Stripe event, or one report per
    /// address and hour rather than one per request).
    pub dedupe_key: Option<String>,
}

impl<'a> NewEvent<'a> {
    pub fn new(kind: &'a str, severity: Severity, message: String) -> Self {
        Self {
            tenant_id: None,
            kind,
            severity,
            message,
            client_ip: None,
            buyer_email: None,
            bid_id: None,
            dedupe_key: None,
        }
    }
}

/// The current hour, for "once per hour" keys.
fn hour() -> String {
    Utc::now().format("%Y-%m-%dT%H").to_string()
}

/// Records `event` on `conn` (the caller's transaction, when the event follows from a change).
/// A high-severity event alerts platform admins. `false` when its key was recorded before.
pub async fn record(conn: &mut PgConnection, event: NewEvent<'_>) -> Result<bool> {
    let id = Uuid::new_v4();
    let inserted = sqlx::query!(
        "INSERT INTO security_events (id, tenant_id, kind, severity, message, client_ip, buyer_email, bid_id, dedupe_key)
         VALUES ($1, $2, $3, $4, $5, $6::text::inet, $7, $8, $9) ON CONFLICT (dedupe_key) DO NOTHING",
        id,
        event.tenant_id,
        event.kind,
        event.severity.as_str(),
        event.message,
        event.client_ip.map(|ip| ip.to_string()),
        event.buyer_email,
        event.bid_id,
        event.dedupe_key,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if inserted {
        tracing::warn!(kind = event.kind, severity = event.severity.as_str(), tenant = ?event.tenant_id, "security event");
        if event.severity == Severity::High {
            alerts::raise_keyed(conn, event.tenant_id, event.kind, &event.message, &format!("security:{id}")).await?;
        }
    }
    Ok(inserted)
}

/// A bid as the velocity checks see it.
#[derive(Debug, Clone)]
pub struct Payer<'a> {
    pub tenant_id: Uuid,
    pub bid_id: Uuid,
    pub buyer_email: &'a str,
}

/// Serialises counting for one key across every process, until the transaction ends.
async fn lock(conn: &mut PgConnection, key: &str) -> Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key).execute(&mut *conn).await?;
    Ok(())
}

/// How many matching requests the last hour holds, and when the `limit`-th newest of them
/// leaves the hour (from then on another request fits).
struct Window {
    count: i64,
    frees_at: Option<DateTime<Utc>>,
}

impl Window {
    fn retry_after(&self) -> Duration {
        self.frees_at.map(|t| (t - Utc::now()).to_std().unwrap_or_default()).unwrap_or(Duration::from_secs(3600))
    }
}

async fn email_window(conn: &mut PgConnection, email: &str, limit: i64) -> Result<Window> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "count!", (array_agg(created_at ORDER BY created_at DESC))[$2] + interval '1 hour' AS frees_at
           FROM checkout_requests
           WHERE lower(buyer_email) = lower($1) AND outcome = 'accepted' AND created_at > now() - interval '1 hour'"#,
        email,
        limit as i32,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Window { count: row.count, frees_at: row.frees_at })
}

async fn ip_window(conn: &mut PgConnection, ip: IpAddr, outcome: &str, limit: i64) -> Result<Window> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "count!", (array_agg(created_at ORDER BY created_at DESC))[$3] + interval '1 hour' AS frees_at
           FROM checkout_requests
           WHERE client_ip = $1::text::inet AND outcome = $2 AND created_at > now() - interval '1 hour'"#,
        ip.to_string(),
        outcome,
        limit as i32,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Window { count: row.count, frees_at: row.frees_at })
}

fn too_many(what: &str, wait: Duration) -> Error {
    Error::RateLimited { message: format!("{what} Please try again in {}.", human_duration(wait)), retry_after: wait }
}

/// Why a request to pay is refused: the wait, the message, and the event to record.
type Refusal<'a> = (Duration, &'static str, NewEvent<'a>);

async fn refusal<'a>(
    conn: &mut PgConnection,
    payer: &Payer<'a>,
    client_ip: Option<IpAddr>,
) -> Result<Option<Refusal<'a>>> {
    let by_email = email_window(conn, payer.buyer_email, CHECKOUT_REQUESTS_PER_EMAIL_HOUR).await?;
    if by_email.count >= CHECKOUT_REQUESTS_PER_EMAIL_HOUR {
        let event = NewEvent {
            tenant_id: Some(payer.tenant_id),
            client_ip,
            buyer_email: Some(payer.buyer_email),
            bid_id: Some(payer.bid_id),
            dedupe_key: Some(format!("velocity.buyer_email:{}:{}", payer.buyer_email.to_lowercase(), hour())),
            ..NewEvent::new(
                "velocity.buyer_email",
                Severity::Warning,
                format!(
                    "{} asked to pay {CHECKOUT_REQUESTS_PER_EMAIL_HOUR} times within an hour; further requests are refused for now.",
                    payer.buyer_email
                ),
            )
        };
        return Ok(Some((by_email.retry_after(), "Too many payment attempts for this email address.", event)));
    }
    if let Some(ip) = client_ip {
        let by_ip = ip_window(conn, ip, "accepted", CHECKOUT_REQUESTS_PER_IP_HOUR).await?;
        if by_ip.count >= CHECKOUT_REQUESTS_PER_IP_HOUR {
            let event = NewEvent {
                tenant_id: Some(payer.tenant_id),
                client_ip,
                buyer_email: Some(payer.buyer_email),
                bid_id: Some(payer.bid_id),
                dedupe_key: Some(format!("velocity.client_ip:{ip}:{}", hour())),
                ..NewEvent::new(
                    "velocity.client_ip",
                    Severity::Warning,
                    format!(
                        "{ip} asked to pay {CHECKOUT_REQUESTS_PER_IP_HOUR} times within an hour; further requests from it are refused for now."
                    ),
                )
            };
            return Ok(Some((by_ip.retry_after(), "Too many payment attempts from your network.", event)));
        }
    }
    Ok(None)
}

/// Admits one request to pay for a bid, or refuses it with 429 when the buyer's email or the
/// client's address has made too many within the hour. A refusal is recorded as a security
/// event (once per hour and cause). Callers first refuse an address guessing payment links
/// ([`refuse_link_guessing`]).
pub async fn admit_checkout(pool: &PgPool, payer: &Payer<'_>, client_ip: Option<IpAddr>) -> Result<()> {
    let mut tx = pool.begin().await?;
    // Always the email's lock first, then the address's: no two requests wait on each other in
    // opposite orders.
    lock(&mut tx, &format!("checkout:email:{}", payer.buyer_email.to_lowercase())).await?;
    if let Some(ip) = client_ip {
        lock(&mut tx, &format!("checkout:ip:{ip}")).await?;
    }
    let refusal = refusal(&mut tx, payer, client_ip).await?;
    if let Some((wait, message, event)) = refusal {
        record(&mut tx, event).await?;
        tx.commit().await?;
        return Err(too_many(message, wait));
    }
    sqlx::query!(
        "INSERT INTO checkout_requests (id, bid_id, buyer_email, client_ip, outcome) VALUES ($1, $2, $3, $4::text::inet, 'accepted')",
        Uuid::new_v4(),
        payer.bid_id,
        payer.buyer_email,
        client_ip.map(|ip| ip.to_string()),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Refuses an address that has been guessing payment links this hour (429), before a
/// payment link is even looked up.
pub async fn refuse_link_guessing(pool: &PgPool, client_ip: Option<IpAddr>) -> Result<()> {
    let Some(ip) = client_ip else { return Ok(()) };
    let mut conn = pool.acquire().await?;
    let window = ip_window(&mut conn, ip, "unknown_link", UNKNOWN_LINKS_PER_IP_HOUR).await?;
    if window.count >= UNKNOWN_LINKS_PER_IP_HOUR {
        return Err(too_many(
            "Too many payment links that do not exist were tried from your network.",
            window.retry_after(),
        ));
    }
    Ok(())
}

/// Notes a payment link that matches no bid. The address that reaches the hourly limit is
/// reported as guessing links (high severity: someone may be looking for other buyers' lots).
pub async fn unknown_link(pool: &PgPool, client_ip: Option<IpAddr>) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "INSERT INTO checkout_requests (id, client_ip, outcome) VALUES ($1, $2::text::inet, 'unknown_link')",
        Uuid::new_v4(),
        client_ip.map(|ip| ip.to_string()),
    )
    .execute(&mut *tx)
    .await?;
    if let Some(ip) = client_ip {
        let window = ip_window(&mut tx, ip, "unknown_link", UNKNOWN_LINKS_PER_IP_HOUR).await?;
        if window.count >= UNKNOWN_LINKS_PER_IP_HOUR {
            let event = NewEvent {
                client_ip: Some(ip),
                dedupe_key: Some(format!("payment_link.guessing:{ip}:{}", hour())),
                ..NewEvent::new(
                    "payment_link.guessing",
                    Severity::High,
                    format!(
                        "{ip} tried {UNKNOWN_LINKS_PER_IP_HOUR} payment links that do not exist within an hour; it is refused for the rest of the hour."
                    ),
                )
            };
            record(&mut tx, event).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A webhook delivery with a bad signature: a misconfigured secret, or someone forging
/// Stripe's events. Recorded once per address and hour.
pub async fn bad_webhook_signature(pool: &PgPool, client_ip: Option<IpAddr>, reason: &str) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let from = client_ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
    let event = NewEvent {
        client_ip,
        dedupe_key: Some(format!("webhook.bad_signature:{from}:{}", hour())),
        ..NewEvent::new(
            "webhook.bad_signature",
            Severity::Warning,
            format!("A Stripe webhook delivery from {from} was refused: {reason}"),
        )
    };
    record(&mut conn, event).await?;
    Ok(())
}

/// Mail Remit sends to other people on a tenant's behalf, limited per tenant and hour so a
/// tenant (or a leaked API key) cannot use Remit to send mail in bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Invitation,
    /// A won lot registered through the API emails its buyer a payment link.
    Winning,
}

impl MailKind {
    fn as_str(self) -> &'static str {
        match self {
            MailKind::Invitation => "invitation",
            MailKind::Winning => "winning",
        }
    }
}

/// Counts one email of `kind` for the tenant on the caller's transaction, or refuses with 429
/// when the last hour already holds `limit` (counted under a lock, so every process shares it).
pub async fn take_mail_quota(conn: &mut PgConnection, tenant_id: Uuid, kind: MailKind, limit: u32) -> Result<()> {
    lock(conn, &format!("mail_quota:{tenant_id}:{}", kind.as_str())).await?;
    let window = sqlx::query!(
        r#"SELECT count(*) AS "count!", (array_agg(created_at ORDER BY created_at DESC))[$3] + interval '1 hour' AS frees_at
           FROM tenant_mail_sends WHERE tenant_id = $1 AND kind = $2 AND created_at > now() - interval '1 hour'"#,
        tenant_id,
        kind.as_str(),
        i32::try_from(limit).unwrap_or(i32::MAX),
    )
    .fetch_one(&mut *conn)
    .await?;
    if window.count >= i64::from(limit) {
        let wait = Window { count: window.count, frees_at: window.frees_at }.retry_after();
        let what = match kind {
            MailKind::Invitation => format!("This organisation has sent {limit} invitations in the last hour."),
            MailKind::Winning => format!("This organisation has registered {limit} won lots in the last hour."),
        };
        return Err(too_many(&what, wait));
    }
    sqlx::query!("INSERT INTO tenant_mail_sends (tenant_id, kind) VALUES ($1, $2)", tenant_id, kind.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn purge_old_checkout_requests(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM checkout_requests WHERE created_at < now() - make_interval(days => $1)",
        CHECKOUT_REQUESTS_KEPT_DAYS
    )
    .execute(pool)
    .await?
    .rows_affected())
}

#[derive(Debug, Clone, Serialize)]
pub struct SecurityEvent {
    pub id: Uuid,
    pub tenant_name: Option<String>,
    pub kind: String,
    pub severity: String,
    pub message: String,
    pub client_ip: Option<String>,
    pub buyer_email: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What the security page lists: of one tenant (its staff) or of all (platform admins).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tenant_id: Option<Uuid>,
    pub severity: Option<Severity>,
}

pub async fn recent(pool: &PgPool, filter: &Filter, limit: i64) -> Result<Vec<SecurityEvent>> {
    Ok(sqlx::query_as!(
        SecurityEvent,
        r#"SELECT e.id, t.name AS "tenant_name?", e.kind, e.severity, e.message, host(e.client_ip) AS client_ip,
                  e.buyer_email, e.created_at
           FROM security_events e LEFT JOIN tenants t ON t.id = e.tenant_id
           WHERE ($1::uuid IS NULL OR e.tenant_id = $1) AND ($2::text IS NULL OR e.severity = $2)
           ORDER BY e.created_at DESC, e.id LIMIT $3"#,
        filter.tenant_id,
        filter.severity.map(Severity::as_str),
        limit,
    )
    .fetch_all(pool)
    .await?)
}

/// Events per severity over the last 24 hours.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DayCounts {
    pub info: i64,
    pub warning: i64,
    pub high: i64,
}

pub async fn last_day(pool: &PgPool, tenant_id: Option<Uuid>) -> Result<DayCounts> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE severity = 'info') AS "info!",
                  count(*) FILTER (WHERE severity = 'warning') AS "warning!",
                  count(*) FILTER (WHERE severity = 'high') AS "high!"
           FROM security_events WHERE created_at > now() - interval '24 hours' AND ($1::uuid IS NULL OR tenant_id = $1)"#,
        tenant_id
    )
    .fetch_one(pool)
    .await?;
    Ok(DayCounts { info: row.info, warning: row.warning, high: row.high })
}

/// A paid order Stripe Radar rated above normal risk.
#[derive(Debug, Clone, Serialize)]
pub struct RiskyPayment {
    pub order_id: Uuid,
    pub tenant_name: String,
    pub lot: String,
    pub buyer_email: String,
    pub amount: i64,
    pub currency: String,
    pub risk_level: String,
    pub risk_score: Option<i32>,
    pub status: String,
    pub paid_at: DateTime<Utc>,
}

pub async fn risky_payments(pool: &PgPool, tenant_id: Option<Uuid>, limit: i64) -> Result<Vec<RiskyPayment>> {
    Ok(sqlx::query_as!(
        RiskyPayment,
        r#"SELECT o.id AS order_id, t.name AS tenant_name, b.lot, b.buyer_email, o.amount, o.currency,
                  o.risk_level AS "risk_level!", o.risk_score, o.status, o.paid_at
           FROM orders o JOIN winning_bids b ON b.id = o.bid_id JOIN tenants t ON t.id = o.tenant_id
           WHERE o.risk_level IN ('elevated', 'highest') AND ($1::uuid IS NULL OR o.tenant_id = $1)
           ORDER BY o.paid_at DESC LIMIT $2"#,
        tenant_id,
        limit,
    )
    .fetch_all(pool)
    .await?)
}
