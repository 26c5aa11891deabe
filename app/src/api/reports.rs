//! Reports of the money buyers moved: for the tenant's owner and admins (their own), and for
//! platform admins (the whole platform, or one tenant).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One line of the report's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportLine {
    /// "2026-12-06" by day, "2026-12" by month; "Total" for a total.
    pub period: String,
    pub mode: String,
    pub currency: String,
    pub payments: i64,
    pub gross: String,
    pub refunds: String,
    pub disputes: String,
    pub fees: String,
    pub net: String,
}

/// One bar pair of the chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartBar {
    pub label: String,
    pub gross: String,
    pub net: String,
    pub gross_percent: u32,
    pub net_percent: u32,
}

/// The chart of one currency and mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartView {
    /// "USD, live".
    pub title: String,
    pub bars: Vec<ChartBar>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportView {
    /// "Acme Auctions" or "All tenants".
    pub whose: String,
    /// The filter as checked, for the form: `day`/`month`, first and last day, `live`/`test`/"".
    pub period: String,
    pub from: String,
    pub to: String,
    pub mode: String,
    pub lines: Vec<ReportLine>,
    pub totals: Vec<ReportLine>,
    pub charts: Vec<ChartView>,
    /// The same report as CSV.
    pub export_url: String,
}

#[cfg(feature = "ssr")]
fn view_of(
    whose: String,
    filter: &domain::reports::Checked,
    rows: &[domain::reports::Row],
    export_path: &str,
    tenant: Option<&str>,
) -> ReportView {
    use domain::reports::{self, Period};
    let label = |period: chrono::NaiveDate| match filter.period {
        Period::Day => period.to_string(),
        Period::Month => period.format("%Y-%m").to_string(),
    };
    let line = |period: String, r: &reports::Row| ReportLine {
        period,
        mode: if r.livemode { "live" } else { "test" }.to_owned(),
        currency: r.gross.currency.code().to_uppercase(),
        payments: r.payments,
        gross: r.gross.display(),
        refunds: r.refunds.display(),
        disputes: r.disputes.display(),
        fees: r.fees.display(),
        net: r.net.display(),
    };
    let totals = reports::totals(rows);
    let charts = totals
        .iter()
        .map(|t| ChartView {
            title: format!("{}, {}", t.gross.currency.code().to_uppercase(), if t.livemode { "live" } else { "test" }),
            bars: reports::chart(rows, filter, t.gross.currency, t.livemode)
                .into_iter()
                .map(|b| ChartBar {
                    label: label(b.period),
                    gross: b.gross.display(),
                    net: b.net.display(),
                    gross_percent: b.gross_percent,
                    net_percent: b.net_percent,
                })
                .collect(),
        })
        .collect();
    let period = match filter.period {
        Period::Day => "day",
        Period::Month => "month",
    };
    let mode = match filter.livemode {
        Some(true) => "live",
        Some(false) => "test",
        None => "",
    };
    let mut query = format!("period={period}&from={}&to={}&mode={mode}", filter.from, filter.to);
    if let Some(tenant) = tenant {
        query.push_str(&format!("&tenant={tenant}"));
    }
    ReportView {
        whose,
        period: period.to_owned(),
        from: filter.from.to_string(),
        to: filter.to.to_string(),
        mode: mode.to_owned(),
        lines: rows.iter().map(|r| line(label(r.period), r)).collect(),
        totals: totals.iter().map(|t| line("Total".to_owned(), t)).collect(),
        charts,
        export_url: format!("{export_path}?{query}"),
    }
}

#[cfg(feature = "ssr")]
fn filter(
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    mode: Option<String>,
) -> domain::reports::Filter {
    domain::reports::Filter { period, from, to, mode }
}

/// The tenant's report, for its owner and admins.
#[server(prefix = "/rpc", endpoint = "report")]
pub async fn load_report(
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    mode: Option<String>,
) -> Result<ReportView, AppError> {
    use domain::{auth::policy, reports};
    let principal = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let tenant_id = principal.tenant()?;
    let checked = filter(period, from, to, mode).check(chrono::Utc::now().date_naive())?;
    let rows = reports::report(&services.pool, reports::Scope::Tenant(tenant_id), &checked).await?;
    let tenant = domain::accounts::tenant(&services.pool, tenant_id).await?;
    Ok(view_of(tenant.name, &checked, &rows, "/reports/export.csv", None))
}

/// The platform's report (or one tenant's), for platform admins.
#[server(prefix = "/rpc", endpoint = "platform_report")]
pub async fn load_platform_report(
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    mode: Option<String>,
    tenant: Option<String>,
) -> Result<ReportView, AppError> {
    use domain::{auth::policy, reports};
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let checked = filter(period, from, to, mode).check(chrono::Utc::now().date_naive())?;
    let tenant = tenant.filter(|t| !t.trim().is_empty());
    let (scope, whose) = match &tenant {
        Some(id) => {
            let id = id.trim().parse().map_err(|_| domain::Error::NotFound("tenant"))?;
            (reports::Scope::Tenant(id), domain::accounts::tenant(&services.pool, id).await?.name)
        }
        None => (reports::Scope::Platform, "All tenants".to_owned()),
    };
    let rows = reports::report(&services.pool, scope, &checked).await?;
    Ok(view_of(whose, &checked, &rows, "/admin/reports/export.csv", tenant.as_deref().map(str::trim)))
}
