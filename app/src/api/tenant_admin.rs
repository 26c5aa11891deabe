//! A tenant's Stripe connection and API keys, for its owner and admins.

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
