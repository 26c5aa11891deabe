//! Payment security for those who watch over it: security events (velocity limits, guessed
//! payment links, forged webhooks, Radar's verdicts, disputes) and payments Stripe Radar rated
//! above normal risk. Platform admins see every tenant; a tenant's owner and admins see theirs.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityEventRow {
    pub at: String,
    pub tenant: Option<String>,
    pub kind: String,
    pub severity: String,
    pub message: String,
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskyPaymentRow {
    pub paid_at: String,
    pub tenant: String,
    pub lot: String,
    pub buyer: String,
    pub amount: String,
    pub risk: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityView {
    pub high_last_day: i64,
    pub warning_last_day: i64,
    pub info_last_day: i64,
    pub events: Vec<SecurityEventRow>,
    pub risky_payments: Vec<RiskyPaymentRow>,
}

/// `platform` is the admin's page (every tenant); otherwise the signed-in staff's own tenant.
#[server(prefix = "/rpc", endpoint = "security_overview")]
pub async fn load_security(platform: bool, severity: Option<String>) -> Result<SecurityView, AppError> {
    use domain::{
        auth::policy,
        money::format_minor,
        security::{self, Filter, Severity},
    };
    let principal = crate::server::authorize(if platform { policy::PLATFORM_ADMIN } else { policy::TENANT_STAFF })?;
    let services = crate::server::services()?;
    let tenant_id = if platform { None } else { Some(principal.tenant()?) };
    let severity = match severity.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            Severity::parse(s).ok_or_else(|| domain::Error::invalid("severity", "Choose info, warning or high."))?,
        ),
    };
    let counts = security::last_day(&services.pool, tenant_id).await?;
    let events = security::recent(&services.pool, &Filter { tenant_id, severity }, 200).await?;
    let risky = security::risky_payments(&services.pool, tenant_id, 50).await?;
    Ok(SecurityView {
        high_last_day: counts.high,
        warning_last_day: counts.warning,
        info_last_day: counts.info,
        events: events
            .into_iter()
            .map(|e| SecurityEventRow {
                at: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                tenant: e.tenant_name,
                kind: e.kind,
                severity: e.severity,
                message: e.message,
                client_ip: e.client_ip,
            })
            .collect(),
        risky_payments: risky
            .into_iter()
            .map(|p| RiskyPaymentRow {
                paid_at: p.paid_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                tenant: p.tenant_name,
                lot: p.lot,
                buyer: p.buyer_email,
                amount: format_minor(p.amount, &p.currency),
                risk: match p.risk_score {
                    Some(score) => format!("{} ({score})", p.risk_level),
                    None => p.risk_level,
                },
                status: p.status,
            })
            .collect(),
    })
}
