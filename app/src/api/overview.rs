//! Health dashboards (platform-wide for admins, one tenant for its staff) and the audit log.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateView {
    pub total: i64,
    pub failed: i64,
    pub alarming: bool,
}

impl RateView {
    /// "98.0 %", or a dash when there was nothing.
    pub fn success_label(&self) -> String {
        if self.total == 0 {
            "—".into()
        } else {
            format!("{:.1} %", (self.total - self.failed) as f64 * 100.0 / self.total as f64)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantHealthView {
    pub name: String,
    pub status: String,
    pub stripe_account: Option<String>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub open_requirements: usize,
    pub payments_24h: RateView,
    pub payments_30d: RateView,
    pub webhooks_24h: RateView,
    pub webhook_endpoint: Option<bool>,
    /// Consultants' subscriptions that are trialing or active, and past due.
    pub subscriptions_paying: i64,
    pub subscriptions_past_due: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayView {
    pub day: String,
    pub succeeded: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub tenant: Option<String>,
    pub kind: String,
    pub message: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub tenants: Vec<TenantHealthView>,
    pub days: Vec<DayView>,
    pub alerts: Vec<AlertView>,
    /// The mode the payment figures are of: live and test data are never added up.
    pub livemode: bool,
}

impl Overview {
    /// The query value that shows the other mode.
    pub fn other_mode(&self) -> (&'static str, &'static str) {
        if self.livemode { ("test", "Show test data") } else { ("live", "Show live data") }
    }
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;

    pub fn rate(r: domain::dashboard::Rate) -> RateView {
        RateView { total: r.total, failed: r.failed, alarming: r.alarming() }
    }

    pub fn health(h: domain::dashboard::TenantHealth) -> TenantHealthView {
        TenantHealthView {
            name: h.name,
            status: h.status,
            stripe_account: h.connection.as_ref().map(|c| c.stripe_account_id.clone()),
            charges_enabled: h.connection.as_ref().is_some_and(|c| c.charges_enabled),
            payouts_enabled: h.connection.as_ref().is_some_and(|c| c.payouts_enabled),
            open_requirements: h.connection.as_ref().map(|c| c.open_requirements).unwrap_or(0),
            payments_24h: rate(h.payments_24h),
            payments_30d: rate(h.payments_30d),
            webhooks_24h: rate(h.webhooks_24h),
            webhook_endpoint: h.webhook_endpoint_enabled,
            subscriptions_paying: h.subscriptions.paying,
            subscriptions_past_due: h.subscriptions.past_due,
        }
    }

    /// The mode asked for (`live` or `test`), else the platform's.
    pub fn livemode(services: &domain::Services, mode: Option<&str>) -> bool {
        match mode {
            Some("test") => false,
            Some("live") => true,
            _ => services.stripe.platform().livemode(),
        }
    }

    pub async fn overview(
        services: &domain::Services,
        tenant: Option<uuid::Uuid>,
        mode: Option<&str>,
    ) -> Result<Overview, AppError> {
        let livemode = livemode(services, mode);
        let tenants = domain::dashboard::tenants(&services.pool, tenant, livemode).await?;
        let days = domain::dashboard::daily_outcomes(&services.pool, tenant, None, livemode, 30).await?;
        let alerts = domain::alerts::recent(&services.pool, tenant, 20).await?;
        Ok(Overview {
            tenants: tenants.into_iter().map(health).collect(),
            days: days
                .into_iter()
                .map(|d| DayView { day: d.day.format("%m-%d").to_string(), succeeded: d.succeeded, failed: d.failed })
                .collect(),
            alerts: alerts
                .into_iter()
                .map(|a| AlertView {
                    tenant: a.tenant_name,
                    kind: a.kind.replace('_', " "),
                    message: a.message,
                    at: a.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                })
                .collect(),
            livemode,
        })
    }
}

#[server(prefix = "/rpc", endpoint = "admin_dashboard")]
pub async fn load_admin_dashboard(mode: Option<String>) -> Result<Overview, AppError> {
    use domain::auth::policy;
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    convert::overview(&services, None, mode.as_deref()).await
}

#[server(prefix = "/rpc", endpoint = "tenant_overview")]
pub async fn load_tenant_overview(mode: Option<String>) -> Result<Overview, AppError> {
    use domain::auth::policy;
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    convert::overview(&services, Some(staff.tenant()?), mode.as_deref()).await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub at: String,
    pub tenant: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub reason: Option<String>,
}

/// The audit log, newest first: with `platform`, every tenant's (optionally one, by name) for
/// platform admins; otherwise the caller's own tenant, for its staff. Dates are `YYYY-MM-DD`;
/// empty filters do not filter.
#[server(prefix = "/rpc", endpoint = "audit_log")]
pub async fn load_audit_log(
    platform: bool,
    tenant: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    until: Option<String>,
) -> Result<Vec<AuditRow>, AppError> {
    use domain::{
        Error,
        audit::{self, Filter},
        auth::policy,
    };
    let principal = crate::server::authorize(if platform { policy::PLATFORM_ADMIN } else { policy::TENANT_STAFF })?;
    let services = crate::server::services()?;
    let nonempty = |s: Option<String>| s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let tenant_id = if platform {
        match nonempty(tenant) {
            None => None,
            Some(name) => Some(
                domain::accounts::list_tenants(&services.pool)
                    .await?
                    .into_iter()
                    .find(|t| t.name.eq_ignore_ascii_case(&name))
                    .ok_or_else(|| Error::invalid("tenant", format!("No tenant is called {name}.")))?
                    .id,
            ),
        }
    } else {
        Some(principal.tenant()?)
    };
    let filter = Filter {
        tenant_id,
        action: nonempty(action),
        actor: nonempty(actor),
        since: crate::server::day(nonempty(since), "since")?,
        until: crate::server::day(nonempty(until), "until")?.map(|d| d + chrono::Duration::days(1)),
        limit: 200,
    };
    let entries = audit::list(&services.pool, &filter).await?;
    Ok(entries
        .into_iter()
        .map(|e| AuditRow {
            at: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            tenant: e.tenant_name,
            actor: e.actor,
            action: e.action,
            target: e.target,
            reason: e.reason,
        })
        .collect())
}
