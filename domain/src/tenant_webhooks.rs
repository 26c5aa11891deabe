//! Webhooks Remit sends to a tenant's endpoint.
//!
//! Every delivery is signed: `Remit-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
//! with the endpoint's secret (never the secret itself). Events are written in the caller's
//! transaction and delivered by a job, retried with backoff; an endpoint that keeps failing is
//! disabled and its owner told by email.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use hmac::{Hmac, Mac as _};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::{PgConnection, PgPool};
use url::Url;
use uuid::Uuid;

use crate::{
    Services,
    audit::{self, Entry},
    auth::Principal,
    crypto,
    error::{Error, Result},
    mail::{self, OutgoingEmail},
    queue,
};

pub const SIGNATURE_HEADER: &str = "Remit-Signature";
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Consecutive failed attempts after which an endpoint is disabled.
pub const DISABLE_AFTER_FAILURES: i32 = 10;
const MAX_URL_LENGTH: usize = 2048;

/// The `Remit-Signature` value for `body` sent at Unix time `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Where an address leads, for deciding whether Remit may post a tenant's events to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The public internet.
    Public,
    /// Loopback and private networks (RFC 1918, IPv6 unique-local): only in development
    /// (`APP_ENV=development`), where a developer's receiver runs on their own machine.
    Local,
    /// Never: link-local and cloud metadata (169.254.0.0/16, fe80::/10, fd00:ec2::254), NAT64
    /// (64:ff9b::/96), 6to4 (2002::/16), Teredo, carrier-grade NAT, unspecified, broadcast,
    /// multicast, documentation, benchmarking and other reserved ranges.
    Refused,
}

pub fn reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() || v4.is_private() {
                Reach::Local
            } else if v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (64..=127).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 192 && o[1] == 88 && o[2] == 99)
            {
                Reach::Refused
            } else {
                Reach::Public
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return reach(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Reach::Local
            } else if v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || s[0] == 0x2002
                || (s[0] == 0x2001 && s[1] == 0)
                || (s[0] == 0x2001 && s[1] == 0xdb8)
                || (s[0] == 0x2001 && s[1] < 0x200)
                || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
                || (s[0..6] == [0, 0, 0, 0, 0, 0])
            {
                Reach::Refused
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Reach::Local
            } else {
                Reach::Public
            }
        }
    }
}

/// Checks an endpoint URL and resolves it to the addresses Remit may connect to.
pub async fn check_url(services: &Services, raw: &str) -> Result<(Url, Vec<SocketAddr>)> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LENGTH {
        return Err(Error::invalid("url", format!("The URL can be at most {MAX_URL_LENGTH} characters.")));
    }
    let url = Url::parse(raw)
        .map_err(|_| Error::invalid("url", "Enter a full URL, such as https://example.com/webhooks/remit."))?;
    let development = services.settings.is_development();
    match url.scheme() {
        "https" => {}
        "http" if development => {}
        _ => return Err(Error::invalid("url", "The webhook URL must use https://.")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid("url", "Put no user name or password in the URL; verify the signature instead."));
    }
    let host = url.host_str().ok_or_else(|| Error::invalid("url", "The URL needs a host name."))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|_| Error::invalid("url", format!("The host {host} could not be found.")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::invalid("url", format!("The host {host} could not be found.")));
    }
    if addrs.iter().any(|a| reach(a.ip()) == Reach::Refused) {
        return Err(Error::invalid(
            "url",
            "The webhook URL points to a link-local, metadata, translated or reserved address, which Remit never sends to.",
        ));
    }
    if !development && addrs.iter().any(|a| reach(a.ip()) == Reach::Local) {
        return Err(Error::invalid(
            "url",
            "The webhook URL points to a private or loopback address, which Remit does not send to.",
        ));
    }
    Ok((url, addrs))
}

fn new_secret() -> String {
    format!("whsec_{}", crypto::random_token())
}

fn masked(last4: &str) -> String {
    format!("whsec_••••••••{last4}")
}

/// The endpoint as the settings page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: Option<String>,
    pub secret_masked: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub updated_at: DateTime<Utc>,
}

pub async fn endpoint(pool: &PgPool, tenant_id: Uuid) -> Result<Option<EndpointView>> {
    let row = sqlx::query!(
        "SELECT id, url, secret_last4, enabled, disabled_reason, consecutive_failures, updated_at FROM webhook_endpoints WHERE tenant_id = $1",
        tenant_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| EndpointView {
        id: r.id,
        url: r.url,
        secret_masked: masked(&r.secret_last4),
        enabled: r.enabled,
        disabled_reason: r.disabled_reason,
        consecutive_failures: r.consecutive_failures,
        updated_at: r.updated_at,
    }))
}

/// The result of saving the endpoint: the new secret when one was made (shown once).
pub struct Configured {
    pub endpoint: EndpointView,
    pub new_secret: Option<SecretString>,
}

/// Sets the endpoint URL (the tenant's owner only). A first configuration, or `regenerate_secret`, makes
/// a new secret; saving re-enables a disabled endpoint.
pub async fn configure(
    services: &Services,
    actor: &Principal,
    url: &str,
    regenerate_secret: bool,
) -> Result<Configured> {
    // The URL decides where tenants' data goes and the secret who can forge it: the owner's call.
    if actor.role != crate::auth::Role::TenantOwner {
        return Err(Error::Forbidden);
    }
    let tenant_id = actor.tenant()?;
    let (url, _) = check_url(services, url).await?;
    let existing = sqlx::query!("SELECT id FROM webhook_endpoints WHERE tenant_id = $1", tenant_id)
        .fetch_optional(&services.pool)
        .await?;
    let new_secret = (existing.is_none() || regenerate_secret).then(new_secret);
    let sealed =
        new_secret.as_ref().map(|s| crypto::encrypt(&services.settings.encryption_key, s.as_bytes())).transpose()?;
    let last4 = new_secret.as_ref().map(|s| s[s.len() - 4..].to_owned());
    let mut tx = services.pool.begin().await?;
    match (existing, sealed, last4) {
        (None, Some(sealed), Some(last4)) => {
            sqlx::query!(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, secret_encrypted, secret_last4) VALUES ($1, $2, $3, $4, $5)",
                Uuid::new_v4(),
                tenant_id,
                url.as_str(),
                sealed,
                last4,
            )
            .execute(&mut *tx)
            .await?;
        }
        (Some(e), sealed, last4) => {
            sqlx::query!(
                "UPDATE webhook_endpoints SET url = $2, secret_encrypted = COALESCE($3, secret_encrypted),
                   secret_last4 = COALESCE($4, secret_last4), enabled = true, disabled_reason = NULL,
                   consecutive_failures = 0, updated_at = now()
                 WHERE id = $1",
                e.id,
                url.as_str(),
                sealed,
                last4,
            )
            .execute(&mut *tx)
            .await?;
        }
        (None, _, _) => unreachable!("a first configuration always makes a secret"),
    }
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(actor),
            action: if regenerate_secret { "webhook.secret_regenerated" } else { "webhook.configured" },
            target: Some(url.to_string()),
            reason: None,
            details: serde_json::json!({ "new_secret": new_secret.is_some() }),
        },
    )
    .await?;
    tx.commit().await?;
    let endpoint = endpoint(&services.pool, tenant_id).await?.ok_or_else(|| anyhow::anyhow!("endpoint vanished"))?;
    Ok(Configured { endpoint, new_secret: new_secret.map(SecretString::from) })
}

/// Removes the URL (tenant owners); the secret stays for when a URL is set again.
pub async fn remove(services: &Services, owner: &Principal) -> Result<()> {
    let tenant_id = owner.tenant()?;
    let mut tx = services.pool.begin().await?;
    let removed = sqlx::query_scalar!(
        "UPDATE webhook_endpoints SET url = NULL, enabled = false, disabled_reason = 'removed', updated_at = now()
         WHERE tenant_id = $1 AND url IS NOT NULL RETURNING id",
        tenant_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if removed.is_none() {
        return Err(Error::NotFound("webhook endpoint"));
    }
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(owner),
            action: "webhook.removed",
            target: None,
            reason: None,
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records an event for the tenant and schedules its delivery, in the caller's transaction.
pub async fn emit(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    livemode: bool,
    kind: &str,
    data: serde_json::Value,
) -> Result<()> {
    let id = Uuid::new_v4();
    let payload = serde_json::json!({
        "id": format!("evt_{}", id.simple()),
        "type": kind,
        "created": Utc::now().timestamp(),
        "livemode": livemode,
        "data": data,
    });
    sqlx::query!(
        "INSERT INTO webhook_events (id, tenant_id, type, livemode, payload) VALUES ($1, $2, $3, $4, $5)",
        id,
        tenant_id,
        kind,
        livemode,
        payload,
    )
    .execute(&mut *conn)
    .await?;
    let has_endpoint = sqlx::query_scalar!(
        "SELECT id FROM webhook_endpoints WHERE tenant_id = $1 AND enabled AND url IS NOT NULL",
        tenant_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if has_endpoint.is_some() {
        queue::enqueue(conn, DeliverWebhook { event_id: id }).await?;
    }
    Ok(())
}

/// How one HTTP attempt went.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptResult {
    pub status_code: Option<u16>,
    pub response_time_ms: u64,
    pub error: Option<String>,
}

impl AttemptResult {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A plain account of why a request failed.
fn describe(err: &reqwest::Error, host: &str) -> String {
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
        format!("{host} did not answer within {} seconds.", DELIVERY_TIMEOUT.as_secs())
    } else if TLS_MARKERS.iter().any(|m| chain.contains(m)) {
        format!("The TLS connection to {host} failed (check its certificate).")
    } else if chain.contains("refused") {
        format!("{host} refused the connection.")
    } else if chain.contains("dns") || chain.contains("resolve") {
        format!("The host {host} could not be found.")
    } else {
        match causes.last() {
            Some(cause) => format!("Could not deliver to {host}: {cause}."),
            None => format!("Could not deliver to {host}."),
        }
    }
}

/// One signed POST to `url` (connecting only to `addrs`, the addresses that were checked).
async fn post(url: &Url, addrs: &[SocketAddr], secret: &str, event_id: &str, kind: &str, body: &[u8]) -> AttemptResult {
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut builder = reqwest::Client::builder().timeout(DELIVERY_TIMEOUT).redirect(reqwest::redirect::Policy::none());
    if url.domain().is_some() {
        builder = builder.resolve_to_addrs(&host, addrs);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            return AttemptResult { status_code: None, response_time_ms: 0, error: Some(format!("HTTP client: {e}")) };
        }
    };
    let started = Instant::now();
    let result = client
        .post(url.clone())
        .header("Content-Type", "application/json")
        .header("User-Agent", "Remit-Webhooks/1.0")
        .header("Remit-Event-Id", event_id)
        .header("Remit-Event-Type", kind)
        .header(SIGNATURE_HEADER, signature(secret, Utc::now().timestamp(), body))
        .body(body.to_vec())
        .send()
        .await;
    let response_time_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let error = (!(200..300).contains(&status)).then(|| format!("{host} answered {status}."));
            AttemptResult { status_code: Some(status), response_time_ms, error }
        }
        Err(err) => AttemptResult { status_code: None, response_time_ms, error: Some(describe(&err, &host)) },
    }
}

struct Target {
    endpoint_id: Uuid,
    tenant_id: Uuid,
    url: String,
    secret: String,
}

async fn target(services: &Services, tenant_id: Uuid) -> Result<Target> {
    let row = sqlx::query!(
        "SELECT id, url, secret_encrypted FROM webhook_endpoints WHERE tenant_id = $1 AND url IS NOT NULL",
        tenant_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or_else(|| Error::conflict("Set a webhook URL first."))?;
    let secret = crypto::decrypt_string(&services.settings.encryption_key, &row.secret_encrypted)?;
    Ok(Target { endpoint_id: row.id, tenant_id, url: row.url.unwrap_or_default(), secret })
}

async fn log_attempt(
    pool: &PgPool,
    endpoint_id: Uuid,
    event_id: Option<Uuid>,
    kind: &str,
    attempt: i32,
    result: &AttemptResult,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, attempt, status_code, response_time_ms, error, succeeded)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        Uuid::new_v4(),
        endpoint_id,
        event_id,
        kind,
        attempt,
        result.status_code.map(i32::from),
        result.response_time_ms as i32,
        result.error,
        result.succeeded(),
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Sends a `remit.test` event now and reports what happened (tenant staff).
pub async fn send_test(services: &Services, actor: &Principal) -> Result<AttemptResult> {
    let target = target(services, actor.tenant()?).await?;
    let (url, addrs) = check_url(services, &target.url).await?;
    let event_id = format!("evt_test_{}", Uuid::new_v4().simple());
    let body = serde_json::to_vec(&serde_json::json!({
        "id": event_id,
        "type": "remit.test",
        "created": Utc::now().timestamp(),
        "livemode": false,
        "data": { "message": format!("A test event sent by {}.", actor.display_name) },
    }))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = post(&url, &addrs, &target.secret, &event_id, "remit.test", &body).await;
    log_attempt(&services.pool, target.endpoint_id, None, "remit.test", 1, &result).await?;
    tracing::info!(tenant = %target.tenant_id, status = ?result.status_code, ms = result.response_time_ms, "test webhook sent");
    Ok(result)
}

/// Delivers one event to its tenant's webhook endpoint (see [`deliver`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub event_id: Uuid,
}

impl TaskHandler for DeliverWebhook {
    const IDENTIFIER: &'static str = "deliver_webhook";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        let attempt = i32::from(*ctx.job().attempts());
        deliver(services, self.event_id, attempt).await.map_err(|err| {
            err.log();
            err.to_string()
        })
    }
}

/// Delivers one event (the `deliver_webhook` job). An `Err` makes the job retry with backoff.
pub async fn deliver(services: &Services, event_id: Uuid, attempt: i32) -> Result<()> {
    let event = sqlx::query!("SELECT tenant_id, type, payload FROM webhook_events WHERE id = $1", event_id)
        .fetch_optional(&services.pool)
        .await?
        .ok_or(Error::NotFound("webhook event"))?;
    let endpoint =
        sqlx::query!("SELECT enabled FROM webhook_endpoints WHERE tenant_id = $1 AND url IS NOT NULL", event.tenant_id)
            .fetch_optional(&services.pool)
            .await?;
    if !endpoint.is_some_and(|e| e.enabled) {
        tracing::info!(event = %event_id, "webhook not delivered: the endpoint is disabled or removed");
        return Ok(());
    }
    let target = target(services, event.tenant_id).await?;
    let body = serde_json::to_vec(&event.payload).map_err(|e| anyhow::anyhow!("{e}"))?;
    let public_id = event.payload["id"].as_str().unwrap_or_default().to_owned();
    let result = match check_url(services, &target.url).await {
        Ok((url, addrs)) => post(&url, &addrs, &target.secret, &public_id, &event.r#type, &body).await,
        Err(err) => AttemptResult { status_code: None, response_time_ms: 0, error: Some(err.public_message()) },
    };
    log_attempt(&services.pool, target.endpoint_id, Some(event_id), &event.r#type, attempt, &result).await?;
    let outcome = if result.succeeded() { "delivered" } else { "failed" };
    metrics::counter!("remit_webhook_deliveries_total", "outcome" => outcome).increment(1);
    if result.succeeded() {
        sqlx::query!("UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = $1", target.endpoint_id)
            .execute(&services.pool)
            .await?;
        return Ok(());
    }
    record_failure(services, &target).await?;
    Err(Error::Upstream(result.error.unwrap_or_else(|| "delivery failed".into())))
}

/// Counts a failed attempt; at the threshold the endpoint is disabled, its owners emailed and
/// platform admins alerted, all in one transaction.
async fn record_failure(services: &Services, target: &Target) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    let disabled = sqlx::query!(
        "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1,
           enabled = CASE WHEN consecutive_failures + 1 >= $2 THEN false ELSE enabled END,
           disabled_reason = CASE WHEN consecutive_failures + 1 >= $2 AND enabled THEN 'failing' ELSE disabled_reason END
         WHERE id = $1 RETURNING enabled, consecutive_failures",
        target.endpoint_id,
        DISABLE_AFTER_FAILURES,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !disabled.enabled && disabled.consecutive_failures == DISABLE_AFTER_FAILURES {
        let owners =
            sqlx::query!("SELECT email FROM users WHERE tenant_id = $1 AND role = 'tenant_owner'", target.tenant_id)
                .fetch_all(&mut *tx)
                .await?;
        for owner in owners {
            mail::enqueue(
                &mut tx,
                OutgoingEmail {
                    tenant_id: Some(target.tenant_id),
                    to: owner.email,
                    subject: "Your Remit webhook endpoint was disabled".into(),
                    text_body: format!(
                        "Remit could not deliver webhooks to {} {DISABLE_AFTER_FAILURES} times in a row, so it stopped sending to it.\n\n\
                         Fix the endpoint, then save it again in Remit's webhook settings to start receiving events again. \
                         The delivery log there shows each failure.",
                        target.url
                    ),
                    attachments: vec![],
                    links: None,
                },
            )
            .await?;
        }
        crate::alerts::raise(
            &mut tx,
            Some(target.tenant_id),
            "webhook_endpoint_disabled",
            &format!(
                "A webhook endpoint was disabled after {DISABLE_AFTER_FAILURES} failed deliveries: {}",
                target.url
            ),
        )
        .await?;
        audit::record(
            &mut tx,
            Entry {
                tenant_id: Some(target.tenant_id),
                actor: None,
                action: "webhook.disabled",
                target: Some(target.url.clone()),
                reason: Some("failing".into()),
                details: serde_json::json!({}),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub event_id: Option<Uuid>,
    pub event_type: String,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub response_time_ms: Option<i32>,
    pub error: Option<String>,
    pub succeeded: bool,
    pub created_at: DateTime<Utc>,
}

pub async fn deliveries(pool: &PgPool, tenant_id: Uuid, limit: i64) -> Result<Vec<DeliveryRow>> {
    Ok(sqlx::query_as!(
        DeliveryRow,
        "SELECT d.id, d.event_id, d.event_type, d.attempt, d.status_code, d.response_time_ms, d.error, d.succeeded, d.created_at
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
         WHERE e.tenant_id = $1 ORDER BY d.created_at DESC LIMIT $2",
        tenant_id,
        limit.clamp(1, 200),
    )
    .fetch_all(pool)
    .await?)
}

/// Sends an event again (tenant staff), through the job queue like the first time.
pub async fn redeliver(services: &Services, actor: &Principal, delivery_id: Uuid) -> Result<()> {
    let tenant_id = actor.tenant()?;
    let event_id = sqlx::query_scalar!(
        "SELECT d.event_id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1 AND e.tenant_id = $2",
        delivery_id,
        tenant_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("delivery"))?
    .ok_or_else(|| Error::conflict("Test deliveries cannot be sent again; send a new test event instead."))?;
    let enabled = sqlx::query_scalar!(
        "SELECT enabled FROM webhook_endpoints WHERE tenant_id = $1 AND url IS NOT NULL",
        tenant_id
    )
    .fetch_optional(&services.pool)
    .await?;
    if enabled != Some(true) {
        return Err(Error::conflict("The endpoint is disabled. Save it again to enable it, then redeliver."));
    }
    let mut tx = services.pool.begin().await?;
    queue::enqueue(&mut tx, DeliverWebhook { event_id }).await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(actor),
            action: "webhook.redelivered",
            target: Some(event_id.to_string()),
            reason: None,
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_private_addresses_are_local() {
        for ip in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "::1", "fd12:3456::1", "::ffff:10.0.0.1"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Local, "{ip}");
        }
    }

    #[test]
    fn link_local_and_cloud_metadata_addresses_are_refused() {
        for ip in ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Refused, "{ip}");
        }
    }

    #[test]
    fn nat64_addresses_are_refused() {
        for ip in ["64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b::808:808"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Refused, "{ip}");
        }
    }

    #[test]
    fn six_to_four_addresses_are_refused() {
        for ip in ["2002:a9fe:a9fe::1", "2002:7f00:1::", "2002:0808:0808::1"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Refused, "{ip}");
        }
    }

    #[test]
    fn other_reserved_ranges_are_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::7f00:1",
            "2001::1",
            "2001:db8::1",
            "ff02::1",
            "fec0::1",
            "100::1",
        ] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Refused, "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_reached() {
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::1"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Public, "{ip}");
        }
    }

    #[test]
    fn signatures_follow_the_documented_scheme() {
        // HMAC-SHA256("whsec_test_secret", "1700000000.{\"id\":\"evt_1\"}"), computed with Python.
        assert_eq!(
            signature("whsec_test_secret", 1_700_000_000, br#"{"id":"evt_1"}"#),
            "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
        );
    }
}
