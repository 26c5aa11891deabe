//! A tenant's Stripe connection, API keys and webhook endpoint, for its owner and admins.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequirementsView {
    /// What Stripe needs, in words, overdue first: (task, overdue).
    pub tasks: Vec<(String, bool)>,
    pub disabled_reason: Option<String>,
    pub current_deadline: Option<String>,
}

#[cfg(feature = "ssr")]
impl From<domain::tenant_stripe::Requirements> for RequirementsView {
    fn from(r: domain::tenant_stripe::Requirements) -> Self {
        Self {
            tasks: r.tasks(),
            disabled_reason: r.disabled_reason.map(|d| d.replace(['.', '_'], " ")),
            current_deadline: r.current_deadline.map(date),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub account_id: String,
    pub connected: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub requirements: RequirementsView,
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeSettings {
    pub connection: Option<ConnectionView>,
    pub can_manage: bool,
}

#[cfg(feature = "ssr")]
pub(crate) fn date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

#[server(prefix = "/rpc", endpoint = "stripe_settings")]
pub async fn load_stripe_settings() -> Result<StripeSettings, AppError> {
    use domain::auth::{Role, policy};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let connection = domain::tenant_stripe::status(&services, staff.tenant()?).await?;
    Ok(StripeSettings {
        connection: connection.map(|c| ConnectionView {
            account_id: c.stripe_account_id,
            connected: c.connected_at.format("%Y-%m-%d").to_string(),
            charges_enabled: c.charges_enabled,
            payouts_enabled: c.payouts_enabled,
            details_submitted: c.details_submitted,
            requirements: c.requirements.into(),
            stale: c.stale,
        }),
        can_manage: staff.role == Role::TenantOwner,
    })
}

#[server(prefix = "/rpc", endpoint = "start_stripe_connect")]
pub async fn start_stripe_connect() -> Result<(), AppError> {
    use domain::auth::policy;
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    let token = crate::server::session_token()?.ok_or_else(|| AppError::from(domain::Error::Unauthenticated))?;
    let url = domain::tenant_stripe::connect_url(&services, &owner, &token).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "disconnect_stripe")]
pub async fn disconnect_stripe() -> Result<(), AppError> {
    use domain::auth::policy;
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    domain::tenant_stripe::disconnect(&services, &owner).await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRow {
    pub id: String,
    pub mode: String,
    pub masked: String,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
    pub revoke_reason: Option<String>,
}

/// A key's secret, shown once right after it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSecret {
    pub mode: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeys {
    pub keys: Vec<KeyRow>,
    pub new_secrets: Vec<NewSecret>,
    pub can_manage: bool,
}

#[cfg(feature = "ssr")]
const NEW_KEY_FLASH: &str = "new_api_key";

#[server(prefix = "/rpc", endpoint = "api_keys")]
pub async fn load_api_keys() -> Result<ApiKeys, AppError> {
    use domain::auth::{Role, policy};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let keys = domain::api_keys::list(&services.pool, staff.tenant()?).await?;
    let new_secrets = crate::server::take_flash(NEW_KEY_FLASH)
        .await?
        .into_iter()
        .filter_map(|v| serde_json::from_str(&v).ok())
        .collect();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    Ok(ApiKeys {
        keys: keys
            .into_iter()
            .map(|k| KeyRow {
                id: k.id.to_string(),
                mode: k.mode.as_str().to_owned(),
                masked: format!("{}_…{}", k.prefix, k.last4),
                created: fmt(k.created_at),
                last_used: k.last_used_at.map(fmt),
                revoked: k.revoked_at.map(fmt),
                revoke_reason: k.revoke_reason,
            })
            .collect(),
        new_secrets,
        can_manage: staff.role == Role::TenantOwner,
    })
}

/// Leaves new secrets for the next page load of this session (shown once, with or without
/// JavaScript).
#[cfg(feature = "ssr")]
async fn flash_new_keys(keys: &[domain::api_keys::NewKey]) -> Result<(), AppError> {
    use secrecy::ExposeSecret as _;
    for key in keys {
        let value = serde_json::to_string(&NewSecret {
            mode: key.summary.mode.as_str().to_owned(),
            secret: key.secret.expose_secret().to_owned(),
        })
        .map_err(|e| domain::Error::Internal(e.into()))?;
        crate::server::put_flash(NEW_KEY_FLASH, &value).await?;
    }
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "create_api_key")]
pub async fn create_api_key(mode: String) -> Result<(), AppError> {
    use domain::{Error, api_keys, auth::policy};
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let mode = api_keys::Mode::parse(&mode).ok_or_else(|| Error::invalid("mode", "Choose live or test."))?;
    let services = crate::server::services()?;
    let key = api_keys::create(&services, &owner, mode).await?;
    flash_new_keys(&[key]).await
}

#[server(prefix = "/rpc", endpoint = "regenerate_api_keys")]
pub async fn regenerate_api_keys(key_type: String, confirm: Option<String>) -> Result<(), AppError> {
    use domain::{api_keys, auth::policy};
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let selection = api_keys::Selection::parse(&key_type)?;
    let services = crate::server::services()?;
    let keys = api_keys::regenerate(&services, &owner, selection, confirm.is_some()).await?;
    flash_new_keys(&keys).await
}

#[server(prefix = "/rpc", endpoint = "revoke_api_key")]
pub async fn revoke_api_key(key_id: String, reason: String) -> Result<(), AppError> {
    use domain::{Error, api_keys, auth::policy};
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let id = key_id.parse().map_err(|_| Error::NotFound("API key"))?;
    let services = crate::server::services()?;
    api_keys::revoke(&services, &owner, api_keys::RevokeTarget::Key(id), &reason).await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointView {
    pub url: Option<String>,
    pub secret_masked: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: String,
    pub event_type: String,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub response_time_ms: Option<i32>,
    pub error: Option<String>,
    pub succeeded: bool,
    pub at: String,
    pub can_redeliver: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResultView {
    pub ok: bool,
    pub status_code: Option<u16>,
    pub response_time_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhooks {
    pub endpoint: Option<EndpointView>,
    pub deliveries: Vec<DeliveryView>,
    /// A secret made by the last save, shown once.
    pub new_secret: Option<String>,
    pub test_result: Option<TestResultView>,
    /// The owner changes the URL, the secret, or removes the endpoint; admins look and test.
    pub can_remove: bool,
}

#[cfg(feature = "ssr")]
const NEW_WEBHOOK_SECRET_FLASH: &str = "new_webhook_secret";
#[cfg(feature = "ssr")]
const WEBHOOK_TEST_FLASH: &str = "webhook_test";

#[server(prefix = "/rpc", endpoint = "webhooks")]
pub async fn load_webhooks() -> Result<Webhooks, AppError> {
    use domain::{
        auth::{Role, policy},
        tenant_webhooks,
    };
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let tenant = staff.tenant()?;
    let endpoint = tenant_webhooks::endpoint(&services.pool, tenant).await?;
    let deliveries = tenant_webhooks::deliveries(&services.pool, tenant, 50).await?;
    let new_secret = crate::server::take_flash(NEW_WEBHOOK_SECRET_FLASH).await?.pop();
    let test_result =
        crate::server::take_flash(WEBHOOK_TEST_FLASH).await?.pop().and_then(|v| serde_json::from_str(&v).ok());
    Ok(Webhooks {
        endpoint: endpoint.map(|e| EndpointView {
            url: e.url,
            secret_masked: e.secret_masked,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
        }),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryView {
                id: d.id.to_string(),
                event_type: d.event_type,
                attempt: d.attempt,
                status_code: d.status_code,
                response_time_ms: d.response_time_ms,
                error: d.error,
                succeeded: d.succeeded,
                at: d.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                can_redeliver: d.event_id.is_some(),
            })
            .collect(),
        new_secret,
        test_result,
        can_remove: staff.role == Role::TenantOwner,
    })
}

#[server(prefix = "/rpc", endpoint = "save_webhook")]
pub async fn save_webhook(url: String, regenerate_secret: Option<String>) -> Result<(), AppError> {
    use domain::{auth::policy, tenant_webhooks};
    use secrecy::ExposeSecret as _;
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    let configured = tenant_webhooks::configure(&services, &owner, &url, regenerate_secret.is_some()).await?;
    if let Some(secret) = configured.new_secret {
        crate::server::put_flash(NEW_WEBHOOK_SECRET_FLASH, secret.expose_secret()).await?;
    }
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "remove_webhook")]
pub async fn remove_webhook() -> Result<(), AppError> {
    use domain::auth::policy;
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    domain::tenant_webhooks::remove(&services, &owner).await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "send_test_webhook")]
pub async fn send_test_webhook() -> Result<(), AppError> {
    use domain::{auth::policy, tenant_webhooks};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let result = tenant_webhooks::send_test(&services, &staff).await?;
    let view = TestResultView {
        ok: result.succeeded(),
        status_code: result.status_code,
        response_time_ms: result.response_time_ms,
        error: result.error,
    };
    let value = serde_json::to_string(&view).map_err(|e| domain::Error::Internal(e.into()))?;
    crate::server::put_flash(WEBHOOK_TEST_FLASH, &value).await
}

#[server(prefix = "/rpc", endpoint = "redeliver_webhook")]
pub async fn redeliver_webhook(delivery_id: String) -> Result<(), AppError> {
    use domain::{Error, auth::policy};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let id = delivery_id.parse().map_err(|_| Error::NotFound("delivery"))?;
    let services = crate::server::services()?;
    domain::tenant_webhooks::redeliver(&services, &staff, id).await?;
    Ok(())
}
