//! A tenant's webhook endpoints and deliveries: the owner manages endpoints, the owner and
//! admins read them, test, replay and redeliver.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointView {
    pub id: String,
    pub livemode: bool,
    pub url: String,
    pub description: String,
    /// `None`: every type.
    pub event_types: Option<Vec<String>>,
    pub secret_masked: String,
    /// When the previous secret stops signing, during a rotation's overlap.
    pub rotation_ends: Option<String>,
    pub enabled: bool,
    /// Why it is off, in words.
    pub disabled: Option<String>,
    pub failing_since: Option<String>,
    /// Deliveries a second at most.
    pub rate_limit: Option<i32>,
    /// Its circuit is open until then.
    pub paused_until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: String,
    pub endpoint_url: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// The last attempt's outcome in words.
    pub result: String,
    pub at: String,
    pub next_attempt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResultView {
    pub ok: bool,
    pub status_code: Option<u16>,
    pub response_time_ms: u64,
    pub error: Option<String>,
    /// "DNS 2 ms · connect 1 ms · TLS 30 ms · first byte 12 ms · total 45 ms".
    pub phases: String,
    pub verifies_signatures: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhooks {
    pub endpoints: Vec<EndpointView>,
    pub deliveries: Vec<DeliveryView>,
    /// The types an endpoint can subscribe to.
    pub event_types: Vec<String>,
    /// A secret made by the last creation or rotation, shown once.
    pub new_secret: Option<String>,
    pub test_result: Option<TestResultView>,
    /// The owner manages endpoints; admins look, test, replay and redeliver.
    pub is_owner: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptView {
    pub attempt: i32,
    pub at: String,
    pub result: String,
    pub response_body: Option<String>,
    pub response_headers: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryDetailView {
    pub delivery: DeliveryView,
    /// The body sent, pretty-printed.
    pub payload: String,
    pub attempts: Vec<AttemptView>,
}

#[cfg(feature = "ssr")]
const NEW_SECRET_FLASH: &str = "new_webhook_secret";
#[cfg(feature = "ssr")]
const TEST_FLASH: &str = "webhook_test";

#[cfg(feature = "ssr")]
fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(feature = "ssr")]
fn endpoint_view(e: domain::tenant_webhooks::endpoints::Endpoint) -> EndpointView {
    EndpointView {
        id: e.id.to_string(),
        livemode: e.livemode,
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        secret_masked: e.secret,
        rotation_ends: e.previous_secret_expires_at.map(when),
        enabled: e.enabled,
        disabled: (!e.enabled).then(|| e.disabled_reason.map_or("turned off", |r| r.describe()).to_owned()),
        failing_since: e.failing_since.map(when),
        rate_limit: e.rate_limit,
        paused_until: e.paused_until.map(when),
    }
}

#[cfg(feature = "ssr")]
fn outcome(status: Option<i32>, error: Option<String>, succeeded: bool) -> String {
    match (status, error) {
        (Some(code), _) if succeeded => format!("HTTP {code}"),
        (_, Some(error)) => error,
        (Some(code), None) => format!("HTTP {code}"),
        (None, None) => "not tried yet".into(),
    }
}

#[cfg(feature = "ssr")]
fn delivery_view(d: domain::tenant_webhooks::log::Delivery) -> DeliveryView {
    use domain::tenant_webhooks::log::DeliveryStatus;
    let succeeded = d.status == DeliveryStatus::Succeeded;
    DeliveryView {
        id: d.id.to_string(),
        endpoint_url: d.endpoint_url,
        event_id: d.event_id,
        event_type: d.event_type,
        status: match d.status {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
        .into(),
        attempts: d.attempts,
        result: outcome(d.last_status, d.last_error, succeeded),
        at: when(d.created_at),
        next_attempt: d.next_attempt_at.map(when),
    }
}

/// A rate limit as typed: empty for none.
#[cfg(feature = "ssr")]
fn rate_limit(value: Option<String>) -> Result<Option<i32>, domain::Error> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            domain::Error::invalid(
                "rate_limit",
                "Give the most deliveries a second as a whole number, or leave it empty.",
            )
        }),
    }
}

#[cfg(feature = "ssr")]
fn id(value: &str, what: &'static str) -> Result<uuid::Uuid, domain::Error> {
    value.trim().parse().map_err(|_| domain::Error::NotFound(what))
}

/// The endpoints and the deliveries log, filtered by endpoint, event type, status and day.
#[server(prefix = "/rpc", endpoint = "webhooks")]
pub async fn load_webhooks(
    endpoint: Option<String>,
    event_type: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
) -> Result<Webhooks, AppError> {
    use domain::{
        Error,
        auth::{Role, policy},
        tenant_webhooks::{endpoints, events::TenantEvent, log},
    };
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let tenant = staff.tenant()?;
    let nonempty = |s: Option<String>| s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let filter = log::Filter {
        endpoint: nonempty(endpoint).map(|e| id(&e, "webhook endpoint")).transpose()?,
        event_type: nonempty(event_type),
        status: nonempty(status)
            .map(|s| {
                serde_json::from_value(serde_json::Value::String(s))
                    .map_err(|_| Error::invalid("status", "Choose pending, succeeded or failed."))
            })
            .transpose()?,
        since: crate::server::day(nonempty(since), "since")?,
        // The day chosen is included.
        until: crate::server::day(nonempty(until), "until")?.map(|d| d + chrono::Duration::days(1)),
    };
    let endpoints = endpoints::list(&services.pool, tenant).await?;
    let deliveries = log::list(&services.pool, tenant, &filter, 100).await?;
    let new_secret = crate::server::take_flash(NEW_SECRET_FLASH).await?.pop();
    let test_result = crate::server::take_flash(TEST_FLASH).await?.pop().and_then(|v| serde_json::from_str(&v).ok());
    Ok(Webhooks {
        endpoints: endpoints.into_iter().map(endpoint_view).collect(),
        deliveries: deliveries.into_iter().map(delivery_view).collect(),
        event_types: TenantEvent::TYPES.iter().filter(|t| **t != "remit.test").map(|t| (*t).to_owned()).collect(),
        new_secret,
        test_result,
        is_owner: staff.role == Role::TenantOwner,
    })
}

/// One delivery with its payload and every attempt.
#[server(prefix = "/rpc", endpoint = "webhook_delivery")]
pub async fn load_webhook_delivery(delivery_id: String) -> Result<DeliveryDetailView, AppError> {
    use domain::{auth::policy, tenant_webhooks::log};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let detail = log::detail(&services.pool, staff.tenant()?, id(&delivery_id, "webhook delivery")?).await?;
    Ok(DeliveryDetailView {
        payload: serde_json::to_string_pretty(&detail.payload).unwrap_or_default(),
        attempts: detail
            .attempts_log
            .into_iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                at: when(a.created_at),
                result: match a.response_time_ms {
                    Some(ms) => format!("{} in {ms} ms", outcome(a.status_code, a.error, a.succeeded)),
                    None => outcome(a.status_code, a.error, a.succeeded),
                },
                response_body: a.response_body.filter(|b| !b.is_empty()),
                response_headers: a.response_headers.map(|h| serde_json::to_string_pretty(&h).unwrap_or_default()),
            })
            .collect(),
        delivery: delivery_view(detail.delivery),
    })
}

/// Adds an endpoint (the owner); `mode` is `live` or `test`, no `event_types` means every type.
#[server(prefix = "/rpc", endpoint = "create_webhook_endpoint")]
pub async fn create_webhook_endpoint(
    url: String,
    description: String,
    mode: String,
    event_types: Option<Vec<String>>,
    rate_limit: Option<String>,
) -> Result<(), AppError> {
    use domain::{
        Error,
        auth::policy,
        tenant_webhooks::endpoints::{self, NewEndpoint},
    };
    use secrecy::ExposeSecret as _;
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let livemode = match mode.as_str() {
        "live" => true,
        "test" => false,
        _ => return Err(Error::invalid("mode", "Choose live or test mode.").into()),
    };
    let services = crate::server::services()?;
    let rate_limit = self::rate_limit(rate_limit)?;
    let new = NewEndpoint { url, description, event_types, livemode, rate_limit };
    let created = endpoints::create(&services, &owner, new).await?;
    crate::server::put_flash(NEW_SECRET_FLASH, created.secret.expose_secret()).await
}

/// Changes an endpoint's URL, description and event types (the owner).
#[server(prefix = "/rpc", endpoint = "update_webhook_endpoint")]
pub async fn update_webhook_endpoint(
    endpoint_id: String,
    url: String,
    description: String,
    event_types: Option<Vec<String>>,
    rate_limit: Option<String>,
) -> Result<(), AppError> {
    use domain::{
        auth::policy,
        tenant_webhooks::endpoints::{self, EndpointChange},
    };
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    let change = EndpointChange {
        url: Some(url),
        description: Some(description),
        event_types: Some(event_types),
        enabled: None,
        rate_limit: Some(self::rate_limit(rate_limit)?),
    };
    endpoints::update(&services, &owner, id(&endpoint_id, "webhook endpoint")?, change).await?;
    Ok(())
}

/// Turns an endpoint on (`enabled` = "yes") or off (the owner).
#[server(prefix = "/rpc", endpoint = "switch_webhook_endpoint")]
pub async fn switch_webhook_endpoint(endpoint_id: String, enabled: String) -> Result<(), AppError> {
    use domain::{
        auth::policy,
        tenant_webhooks::endpoints::{self, EndpointChange},
    };
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    let change = EndpointChange { enabled: Some(enabled == "yes"), ..EndpointChange::default() };
    endpoints::update(&services, &owner, id(&endpoint_id, "webhook endpoint")?, change).await?;
    Ok(())
}

/// A new secret; the old one keeps signing for `overlap_hours` (the owner).
#[server(prefix = "/rpc", endpoint = "rotate_webhook_secret")]
pub async fn rotate_webhook_secret(endpoint_id: String, overlap_hours: String) -> Result<(), AppError> {
    use domain::{Error, auth::policy, tenant_webhooks::endpoints};
    use secrecy::ExposeSecret as _;
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let hours: u64 = overlap_hours
        .trim()
        .parse()
        .map_err(|_| Error::invalid("overlap_hours", "Give the overlap in whole hours, from 0 to 168."))?;
    let services = crate::server::services()?;
    let rotated = endpoints::rotate_secret(
        &services,
        &owner,
        id(&endpoint_id, "webhook endpoint")?,
        Some(std::time::Duration::from_secs(hours.saturating_mul(3600))),
    )
    .await?;
    crate::server::put_flash(NEW_SECRET_FLASH, rotated.secret.expose_secret()).await
}

#[server(prefix = "/rpc", endpoint = "delete_webhook_endpoint")]
pub async fn delete_webhook_endpoint(endpoint_id: String) -> Result<(), AppError> {
    use domain::{auth::policy, tenant_webhooks::endpoints};
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    endpoints::delete(&services, &owner, id(&endpoint_id, "webhook endpoint")?).await?;
    Ok(())
}

/// Posts a `remit.test` event to one endpoint now; the outcome is shown on the next load.
#[server(prefix = "/rpc", endpoint = "send_test_webhook")]
pub async fn send_test_webhook(endpoint_id: String) -> Result<(), AppError> {
    use domain::{auth::policy, tenant_webhooks::log};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let result = log::send_test(&services, &staff, id(&endpoint_id, "webhook endpoint")?).await?;
    let t = &result.timings;
    let phases = [("DNS", t.dns_ms), ("connect", t.connect_ms), ("TLS", t.tls_ms), ("first byte", t.first_byte_ms)]
        .into_iter()
        .filter_map(|(name, ms)| ms.map(|ms| format!("{name} {ms} ms")))
        .chain(std::iter::once(format!("total {} ms", t.total_ms)))
        .collect::<Vec<_>>()
        .join(" · ");
    let view = TestResultView {
        ok: result.attempt.succeeded(),
        status_code: result.attempt.status_code,
        response_time_ms: result.attempt.response_time_ms,
        error: result.attempt.error,
        phases,
        verifies_signatures: result.verifies_signatures,
    };
    let value = serde_json::to_string(&view).map_err(|e| domain::Error::Internal(e.into()))?;
    crate::server::put_flash(TEST_FLASH, &value).await
}

/// Sends an endpoint every event since a day (UTC) it has not taken.
#[server(prefix = "/rpc", endpoint = "replay_webhooks")]
pub async fn replay_webhooks(endpoint_id: String, since: String) -> Result<(), AppError> {
    use domain::{Error, auth::policy, tenant_webhooks::log};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let since = crate::server::day(Some(since.trim().to_owned()), "since")?
        .ok_or_else(|| Error::invalid("since", "Use a date like 2026-11-22."))?;
    let services = crate::server::services()?;
    log::replay(&services, &staff, id(&endpoint_id, "webhook endpoint")?, since).await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "redeliver_webhook")]
pub async fn redeliver_webhook(delivery_id: String) -> Result<(), AppError> {
    use domain::{auth::policy, tenant_webhooks::log};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    log::redeliver(&services, &staff, id(&delivery_id, "webhook delivery")?).await?;
    Ok(())
}
