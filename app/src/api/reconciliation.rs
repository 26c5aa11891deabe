//! The daily reconciliation of Stripe's balance with Remit's books, for platform admins: each
//! day's result with its differences, and asking for a day again.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DifferenceView {
    /// "In Stripe, not in Remit", …
    pub kind: String,
    /// Stripe's balance transaction type: charge, refund, transfer, …
    pub line: String,
    pub subject: String,
    pub tenant: String,
    pub stripe_amount: String,
    pub remit_amount: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub day: String,
    pub mode: String,
    pub lines: i32,
    pub ran_at: String,
    pub differences: Vec<DifferenceView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconciliationView {
    pub runs: Vec<RunView>,
    /// The modes Remit has Stripe keys for (`live`, `test`).
    pub modes: Vec<String>,
    /// Yesterday, the form's default day.
    pub yesterday: String,
}

/// The latest reconciled days (two weeks of both modes).
#[server(prefix = "/rpc", endpoint = "reconciliation")]
pub async fn load_reconciliation() -> Result<ReconciliationView, AppError> {
    use domain::{auth::policy, money::format_minor, reconciliation};
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let runs = reconciliation::recent(&services.pool, 28).await?;
    let amount = |a: Option<i64>, currency: &str| a.map(|a| format_minor(a, currency)).unwrap_or_else(|| "—".into());
    Ok(ReconciliationView {
        runs: runs
            .into_iter()
            .map(|(run, differences)| RunView {
                day: run.day.to_string(),
                mode: if run.livemode { "live" } else { "test" }.to_owned(),
                lines: run.lines,
                ran_at: run.ran_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                differences: differences
                    .into_iter()
                    .map(|d| DifferenceView {
                        kind: d.kind.describe().to_owned(),
                        line: d.line,
                        subject: d.subject,
                        tenant: d.tenant.unwrap_or_else(|| "—".into()),
                        stripe_amount: amount(d.stripe_amount, &d.currency),
                        remit_amount: amount(d.remit_amount, &d.currency),
                    })
                    .collect(),
            })
            .collect(),
        modes: [(true, "live"), (false, "test")]
            .into_iter()
            .filter(|(m, _)| services.stripe.serves(*m))
            .map(|(_, name)| name.to_owned())
            .collect(),
        yesterday: (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string(),
    })
}

/// A platform admin asks for a day to be reconciled (again): queued for the worker.
#[server(prefix = "/rpc", endpoint = "reconcile_day")]
pub async fn reconcile_day(day: String, mode: String) -> Result<(), AppError> {
    use domain::{auth::policy, reconciliation};
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let day = chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
        .map_err(|_| domain::Error::invalid("day", "Give a day as YYYY-MM-DD."))?;
    let livemode = match mode.as_str() {
        "live" => true,
        "test" => false,
        _ => return Err(domain::Error::invalid("mode", "Choose live or test.").into()),
    };
    reconciliation::request(&services, day, livemode).await?;
    Ok(())
}
