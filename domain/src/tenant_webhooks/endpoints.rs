//! A tenant's webhook endpoints: up to ten per mode, each with its URL, description, the event
//! types it wants and its own secret. The owner manages them, the tenant's admins read them;
//! every change is audited.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::{address, events::TenantEvent, signing};
use crate::{
    Services,
    audit::{self, Entry},
    auth::{Principal, Role},
    crypto,
    error::{Error, Result},
};

/// Endpoints a tenant may have in each mode.
pub const MAX_PER_MODE: i64 = 10;
/// How long the previous secret keeps signing after a rotation, unless the owner chooses.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest overlap an owner may choose.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const MAX_DESCRIPTION: usize = 200;
/// The highest rate limit a tenant may set, in deliveries a second.
pub const MAX_RATE_LIMIT: i32 = 1000;

/// Why an endpoint receives nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// Every attempt failed for five days.
    Failing,
    /// The receiver answered 410 Gone.
    Gone,
    /// The owner turned it off.
    ByOwner,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failing => "failing",
            Self::Gone => "gone",
            Self::ByOwner => "by_owner",
        }
    }

    fn from_db(value: &str) -> Option<Self> {
        match value {
            "failing" => Some(Self::Failing),
            "gone" => Some(Self::Gone),
            "by_owner" => Some(Self::ByOwner),
            _ => None,
        }
    }

    /// In words, for the pages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Failing => "every delivery failed for five days",
            Self::Gone => "the endpoint answered 410 Gone",
            Self::ByOwner => "turned off by the owner",
        }
    }
}

/// An endpoint as the pages and the API show it (the secret masked).
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub id: Uuid,
    pub livemode: bool,
    pub url: String,
    pub description: String,
    /// `None`: every event type.
    pub event_types: Option<Vec<String>>,
    pub secret: String,
    /// Until then the previous secret signs beside the current one.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub disabled_reason: Option<DisabledReason>,
    /// Since when every attempt has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Deliveries a second at most; `None`: no limit.
    pub rate_limit: Option<i32>,
    /// Its circuit is open (it failed every attempt): nothing is sent until then, when one
    /// delivery probes it.
    pub paused_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct NewEndpoint {
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// `None` (or absent): every event type.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Live events (true) or test-mode events (false).
    pub livemode: bool,
    /// Deliveries a second at most (1 to 1000); absent: no limit.
    #[serde(default)]
    pub rate_limit: Option<i32>,
}

/// Changes to an endpoint; what is absent stays.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    /// `Some(None)`: every event type from now on.
    #[serde(default, with = "double_option")]
    pub event_types: Option<Option<Vec<String>>>,
    /// Turning an endpoint on starts its failure count afresh.
    pub enabled: Option<bool>,
    /// `Some(None)`: no limit from now on.
    #[serde(default, with = "double_option")]
    pub rate_limit: Option<Option<i32>>,
}

/// `null` (every type, no limit) told apart from the field being absent (unchanged).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// An endpoint and a secret shown this once.
pub struct WithSecret {
    pub endpoint: Endpoint,
    pub secret: SecretString,
}

/// The event types an endpoint may ask for: known ones, at least one; `None` is every type.
pub fn check_event_types(types: Option<Vec<String>>) -> Result<Option<Vec<String>>> {
    let Some(mut types) = types else { return Ok(None) };
    types.iter_mut().for_each(|t| *t = t.trim().to_owned());
    types.retain(|t| !t.is_empty());
    types.sort();
    types.dedup();
    if types.is_empty() {
        return Err(Error::invalid("event_types", "Choose at least one event type, or every type."));
    }
    if let Some(unknown) = types.iter().find(|t| !TenantEvent::TYPES.contains(&t.as_str())) {
        return Err(Error::invalid("event_types", format!("Remit sends no event of type {unknown}.")));
    }
    if types.iter().any(|t| t == "remit.test") {
        return Err(Error::invalid(
            "event_types",
            "remit.test is sent by test deliveries, to the endpoint tested only.",
        ));
    }
    Ok(Some(types))
}

fn check_rate_limit(rate_limit: Option<i32>) -> Result<Option<i32>> {
    match rate_limit {
        Some(n) if !(1..=MAX_RATE_LIMIT).contains(&n) => Err(Error::invalid(
            "rate_limit",
            format!("The rate limit is from 1 to {MAX_RATE_LIMIT} deliveries a second, or none."),
        )),
        other => Ok(other),
    }
}

fn check_description(description: &str) -> Result<String> {
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid(
            "description",
            format!("The description can be at most {MAX_DESCRIPTION} characters."),
        ));
    }
    Ok(description.to_owned())
}

/// The owner decides where the tenant's data goes and who can forge it.
fn owner(actor: &Principal) -> Result<Uuid> {
    if actor.role != Role::TenantOwner {
        return Err(Error::Forbidden);
    }
    actor.tenant()
}

struct Row {
    id: Uuid,
    livemode: bool,
    url: String,
    description: String,
    event_types: Option<Vec<String>>,
    secret_last4: String,
    previous_secret_expires_at: Option<DateTime<Utc>>,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<DateTime<Utc>>,
    rate_limit: Option<i32>,
    paused_until: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Endpoint {
    fn from(r: Row) -> Self {
        Endpoint {
            id: r.id,
            livemode: r.livemode,
            url: r.url,
            description: r.description,
            event_types: r.event_types,
            secret: signing::masked(&r.secret_last4),
            // An overlap that has ended is no longer one.
            previous_secret_expires_at: r.previous_secret_expires_at.filter(|t| *t > Utc::now()),
            enabled: r.enabled,
            disabled_reason: r.disabled_reason.as_deref().and_then(DisabledReason::from_db),
            failing_since: r.failing_since,
            rate_limit: r.rate_limit,
            paused_until: r.paused_until.filter(|t| *t > Utc::now()),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The tenant's endpoints, live ones first, oldest first.
pub async fn list(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<Endpoint>> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, livemode, url, description, event_types, secret_last4, previous_secret_expires_at, enabled,
                disabled_reason, failing_since, rate_limit, paused_until, created_at, updated_at
         FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY livemode DESC, created_at, id",
        tenant_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Endpoint::from).collect())
}

/// One of the tenant's endpoints (another tenant's is not found).
pub async fn get(pool: &PgPool, tenant_id: Uuid, id: Uuid) -> Result<Endpoint> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, livemode, url, description, event_types, secret_last4, previous_secret_expires_at, enabled,
                disabled_reason, failing_since, rate_limit, paused_until, created_at, updated_at
         FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        id
    )
    .fetch_optional(pool)
    .await?;
    row.map(Endpoint::from).ok_or(Error::NotFound("webhook endpoint"))
}

/// Adds an endpoint (the owner); its secret is shown this once.
pub async fn create(services: &Services, actor: &Principal, new: NewEndpoint) -> Result<WithSecret> {
    let tenant_id = owner(actor)?;
    let url = address::check_url(services, &new.url).await?;
    let description = check_description(&new.description)?;
    let event_types = check_event_types(new.event_types)?;
    let rate_limit = check_rate_limit(new.rate_limit)?;
    let secret = signing::new_secret();
    let sealed = crypto::encrypt(&services.settings.encryption_key, secret.as_bytes())?;
    let id = Uuid::new_v4();
    let mut tx = services.pool.begin().await?;
    // The tenant's row serialises endpoint additions, so two at once cannot pass the limit.
    sqlx::query!("SELECT id FROM tenants WHERE id = $1 FOR UPDATE", tenant_id).fetch_one(&mut *tx).await?;
    let existing = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM webhook_endpoints WHERE tenant_id = $1 AND livemode = $2"#,
        tenant_id,
        new.livemode
    )
    .fetch_one(&mut *tx)
    .await?;
    if existing >= MAX_PER_MODE {
        let mode = if new.livemode { "live" } else { "test" };
        return Err(Error::conflict(format!(
            "A tenant can have at most {MAX_PER_MODE} {mode}-mode endpoints; delete one to add another."
        )));
    }
    sqlx::query!(
        "INSERT INTO webhook_endpoints (id, tenant_id, livemode, url, description, event_types, secret_encrypted,
             secret_last4, rate_limit)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        tenant_id,
        new.livemode,
        url.as_str(),
        description,
        event_types.as_deref(),
        sealed,
        signing::last4(&secret),
        rate_limit,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(actor),
            action: "webhook.endpoint_created",
            target: Some(id.to_string()),
            reason: None,
            details: serde_json::json!({
                "url": url.as_str(),
                "livemode": new.livemode,
                "event_types": event_types,
                "rate_limit": rate_limit,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(WithSecret { endpoint: get(&services.pool, tenant_id, id).await?, secret: SecretString::from(secret) })
}

/// Changes an endpoint (the owner). Turning it on clears its failure count and reason.
pub async fn update(services: &Services, actor: &Principal, id: Uuid, change: EndpointChange) -> Result<Endpoint> {
    let tenant_id = owner(actor)?;
    let url = match &change.url {
        Some(url) => Some(address::check_url(services, url).await?.to_string()),
        None => None,
    };
    let description = change.description.as_deref().map(check_description).transpose()?;
    let event_types = change.event_types.clone().map(check_event_types).transpose()?;
    let new_types = event_types.clone().flatten();
    let rate_limit = change.rate_limit.map(check_rate_limit).transpose()?;
    let mut tx = services.pool.begin().await?;
    let updated = sqlx::query_scalar!(
        "UPDATE webhook_endpoints SET
             url = COALESCE($3, url),
             description = COALESCE($4, description),
             event_types = CASE WHEN $5 THEN $6 ELSE event_types END,
             enabled = COALESCE($7, enabled),
             disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason
                                    WHEN $7 THEN NULL ELSE 'by_owner' END,
             failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END,
             failure_warned_at = CASE WHEN $7 THEN NULL ELSE failure_warned_at END,
             consecutive_failures = CASE WHEN $7 THEN 0 ELSE consecutive_failures END,
             paused_until = CASE WHEN $7 THEN NULL ELSE paused_until END,
             pause_seconds = CASE WHEN $7 THEN NULL ELSE pause_seconds END,
             rate_limit = CASE WHEN $8 THEN $9 ELSE rate_limit END,
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2
         RETURNING id",
        tenant_id,
        id,
        url,
        description,
        event_types.is_some(),
        new_types.as_deref(),
        change.enabled,
        rate_limit.is_some(),
        rate_limit.flatten(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    if updated.is_none() {
        return Err(Error::NotFound("webhook endpoint"));
    }
    let action = match change.enabled {
        Some(true) => "webhook.endpoint_enabled",
        Some(false) => "webhook.endpoint_disabled",
        None => "webhook.endpoint_updated",
    };
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(actor),
            action,
            target: Some(id.to_string()),
            reason: None,
            details: serde_json::json!({
                "url": url,
                "description": description,
                "event_types": event_types,
                "enabled": change.enabled,
                "rate_limit": rate_limit,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    get(&services.pool, tenant_id, id).await
}

/// Makes a new secret, which signs at once; the current one keeps signing beside it for
/// `overlap` (default a day, at most a week; zero ends it at once). The new secret is shown this
/// once.
pub async fn rotate_secret(
    services: &Services,
    actor: &Principal,
    id: Uuid,
    overlap: Option<Duration>,
) -> Result<WithSecret> {
    let tenant_id = owner(actor)?;
    let overlap = overlap.unwrap_or(DEFAULT_OVERLAP);
    if overlap > MAX_OVERLAP {
        return Err(Error::invalid("overlap_hours", "The old secret can keep signing for at most 7 days (168 hours)."));
    }
    let secret = signing::new_secret();
    let sealed = crypto::encrypt(&services.settings.encryption_key, secret.as_bytes())?;
    let overlap_seconds = overlap.as_secs() as i32;
    let mut tx = services.pool.begin().await?;
    let rotated = sqlx::query_scalar!(
        "UPDATE webhook_endpoints SET
             previous_secret_encrypted = CASE WHEN $5 > 0 THEN secret_encrypted END,
             previous_secret_expires_at = CASE WHEN $5 > 0 THEN now() + make_interval(secs => $5::int) END,
             secret_encrypted = $3, secret_last4 = $4, updated_at = now()
         WHERE tenant_id = $1 AND id = $2
         RETURNING id",
        tenant_id,
        id,
        sealed,
        signing::last4(&secret),
        overlap_seconds,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if rotated.is_none() {
        return Err(Error::NotFound("webhook endpoint"));
    }
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(actor),
            action: "webhook.secret_rotated",
            target: Some(id.to_string()),
            reason: None,
            details: serde_json::json!({ "overlap_seconds": overlap.as_secs() }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(WithSecret { endpoint: get(&services.pool, tenant_id, id).await?, secret: SecretString::from(secret) })
}

/// Deletes an endpoint with its deliveries (the owner). The events stay, for other endpoints and
/// replays.
pub async fn delete(services: &Services, actor: &Principal, id: Uuid) -> Result<()> {
    let tenant_id = owner(actor)?;
    let mut tx = services.pool.begin().await?;
    let url = sqlx::query_scalar!(
        "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2 RETURNING url",
        tenant_id,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("webhook endpoint"))?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(actor),
            action: "webhook.endpoint_deleted",
            target: Some(id.to_string()),
            reason: None,
            details: serde_json::json!({ "url": url }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The secrets that sign an endpoint's deliveries now: the current one, and the previous one
/// while its overlap lasts.
pub(super) fn signing_secrets(
    services: &Services,
    current: &[u8],
    previous: Option<&[u8]>,
    previous_expires_at: Option<DateTime<Utc>>,
) -> Result<Vec<String>> {
    let key = &services.settings.encryption_key;
    let mut secrets = vec![crypto::decrypt_string(key, current)?];
    if let (Some(previous), Some(expires)) = (previous, previous_expires_at)
        && expires > Utc::now()
    {
        secrets.push(crypto::decrypt_string(key, previous)?);
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_known_sorted_and_never_empty() {
        assert_eq!(check_event_types(None).unwrap(), None);
        assert_eq!(
            check_event_types(Some(vec!["order.updated".into(), " payment.succeeded".into(), "order.updated".into()]))
                .unwrap(),
            Some(vec!["order.updated".to_owned(), "payment.succeeded".to_owned()])
        );
        assert!(check_event_types(Some(vec![])).is_err());
        assert!(check_event_types(Some(vec!["order.exploded".into()])).is_err());
        assert!(check_event_types(Some(vec!["remit.test".into()])).is_err());
    }

    #[test]
    fn a_rate_limit_is_from_one_to_a_thousand_a_second() {
        assert_eq!(check_rate_limit(None).unwrap(), None);
        assert_eq!(check_rate_limit(Some(1)).unwrap(), Some(1));
        assert_eq!(check_rate_limit(Some(MAX_RATE_LIMIT)).unwrap(), Some(MAX_RATE_LIMIT));
        assert!(check_rate_limit(Some(0)).is_err());
        assert!(check_rate_limit(Some(MAX_RATE_LIMIT + 1)).is_err());
    }
}
