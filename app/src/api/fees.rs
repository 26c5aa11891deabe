//! Fees: a consultant bills the clients of their household, and a client pays (and downloads the
//! receipt of) what they were billed.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One fee request as a row of the fees page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeRow {
    pub id: String,
    pub client: String,
    pub consultant: String,
    pub description: String,
    pub amount: String,
    pub due_on: String,
    /// "Monthly", "Monthly (stopped)" or "Once".
    pub recurrence: String,
    /// `open`, `paid`, `cancelled`, or the paid fee's order state (`refunded`, `disputed`, …).
    pub status: String,
    pub overdue: bool,
    pub paid_at: Option<String>,
    pub receipt_url: Option<String>,
    /// For the client: the fee can be paid now.
    pub can_pay: bool,
    /// For the consultant: an open fee can be cancelled, a running monthly one stopped.
    pub cancel_label: Option<String>,
    /// For the consultant: what can still be refunded of a paid fee ("$120.00"), if anything.
    pub refundable: Option<String>,
    /// A fresh key for the refund form, so a form sent twice refunds once.
    pub refund_key: String,
    pub refunds: Vec<FeeRefundRow>,
}

/// A refund of a paid fee, with its credit note once issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeRefundRow {
    pub amount: String,
    /// `pending`, `succeeded`, `failed`, …
    pub status: String,
    pub reason: String,
    pub failure_reason: Option<String>,
    pub credit_note_url: Option<String>,
}

/// A client the consultant can bill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientOption {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeesPage {
    /// The consultant's view (billing) rather than a client's (paying).
    pub billing: bool,
    pub fees: Vec<FeeRow>,
    pub clients: Vec<ClientOption>,
    pub currencies: Vec<String>,
    pub today: String,
    /// For a client: what they owe in all, per currency ("$120.00").
    pub outstanding: Vec<String>,
    /// Back from Stripe Checkout.
    pub returned_from_checkout: bool,
}

#[cfg(feature = "ssr")]
fn row(fee: domain::fees::Fee, billing: bool) -> FeeRow {
    use domain::states::{FeeRecurrence, FeeRequestStatus};
    let today = chrono::Utc::now().date_naive();
    let open = fee.status == FeeRequestStatus::Open;
    let monthly_running = fee.recurrence == FeeRecurrence::Monthly && !fee.series_stopped;
    FeeRow {
        id: fee.id.to_string(),
        client: format!("{} <{}>", fee.client_name, fee.client_email),
        consultant: fee.consultant_name,
        description: fee.description,
        amount: fee.amount.display(),
        due_on: fee.due_on.format("%-d %B %Y").to_string(),
        recurrence: match (fee.recurrence, fee.series_stopped) {
            (FeeRecurrence::Once, _) => "Once".into(),
            (FeeRecurrence::Monthly, false) => "Monthly".into(),
            (FeeRecurrence::Monthly, true) => "Monthly (stopped)".into(),
        },
        status: fee.order_status.unwrap_or_else(|| fee.status.as_str().to_owned()),
        overdue: open && fee.due_on < today,
        paid_at: fee.paid_at.map(|t| t.format("%-d %B %Y").to_string()),
        receipt_url: (fee.status == FeeRequestStatus::Paid).then(|| format!("/fees/{}/receipt.pdf", fee.id)),
        can_pay: !billing && open,
        cancel_label: match (billing, open, monthly_running) {
            (false, ..) | (true, false, false) => None,
            (true, true, true) => Some("Cancel and stop monthly billing".to_owned()),
            (true, true, false) => Some("Cancel".to_owned()),
            (true, false, true) => Some("Stop monthly billing".to_owned()),
        },
        refundable: fee.refundable.filter(|m| billing && m.amount > 0).map(|m| m.display()),
        refund_key: uuid::Uuid::new_v4().to_string(),
        refunds: fee
            .refunds
            .into_iter()
            .map(|r| FeeRefundRow {
                amount: r.amount.display(),
                status: r.status.as_str().to_owned(),
                reason: r.reason,
                failure_reason: r.failure_reason,
                credit_note_url: r
                    .credit_note
                    .is_some()
                    .then(|| format!("/fees/{}/refunds/{}/credit-note.pdf", fee.id, r.id)),
            })
            .collect(),
    }
}

#[server(prefix = "/rpc", endpoint = "fees")]
pub async fn load_fees(paid: Option<String>) -> Result<FeesPage, AppError> {
    use domain::auth::{Role, policy};
    let principal = crate::server::authorize(policy::CONSULTANT_HOUSEHOLD)?;
    let services = crate::server::services()?;
    let billing = principal.role == Role::Consultant;
    let fees = if billing {
        domain::fees::for_consultant(&services.pool, principal.user_id).await?
    } else {
        domain::fees::for_client(&services.pool, principal.user_id).await?
    };
    let mut owed: std::collections::BTreeMap<&'static str, i64> = Default::default();
    for fee in fees.iter().filter(|f| f.status == domain::states::FeeRequestStatus::Open) {
        *owed.entry(fee.amount.currency.code()).or_default() += fee.amount.amount;
    }
    let outstanding =
        owed.into_iter().map(|(currency, amount)| domain::money::format_minor(amount, currency)).collect();
    let clients = if billing {
        domain::accounts::household(&services.pool, principal.user_id)
            .await?
            .into_iter()
            .filter(|u| !u.deactivated)
            .map(|u| ClientOption { id: u.id.to_string(), name: format!("{} <{}>", u.display_name, u.email) })
            .collect()
    } else {
        Vec::new()
    };
    Ok(FeesPage {
        billing,
        fees: fees.into_iter().map(|f| row(f, billing)).collect(),
        clients,
        currencies: domain::money::Currency::supported().map(str::to_owned).collect(),
        today: chrono::Utc::now().date_naive().to_string(),
        outstanding,
        returned_from_checkout: paid.is_some(),
    })
}

/// The consultant's "Send fee request": `client` is a household member's id, or `new` with the
/// new client's email and name (they are invited).
#[server(prefix = "/rpc", endpoint = "request_fee")]
pub async fn request_fee(
    client: String,
    client_email: Option<String>,
    client_name: Option<String>,
    description: String,
    amount: String,
    currency: String,
    due_on: String,
    recurrence: String,
) -> Result<(), AppError> {
    use domain::{auth::policy, fees};
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let client = if client == "new" {
        fees::Client::New { email: client_email.unwrap_or_default(), name: client_name.unwrap_or_default() }
    } else {
        fees::Client::Member(client.parse().map_err(|_| domain::Error::invalid("client", "Choose a client."))?)
    };
    let new = fees::NewFee { client, description, amount, currency, due_on, recurrence };
    fees::request(&services, &consultant, new).await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "cancel_fee")]
pub async fn cancel_fee(fee: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let id = fee.parse().map_err(|_| domain::Error::NotFound("fee"))?;
    domain::fees::cancel(&services, &consultant, id).await?;
    Ok(())
}

/// The consultant refunds a paid fee, in full (amount left empty) or in part (typed in major
/// units), with a reason for the client's credit note.
#[server(prefix = "/rpc", endpoint = "refund_fee")]
pub async fn refund_fee(fee: String, amount: String, reason: String, idempotency_key: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let id = fee.parse().map_err(|_| domain::Error::NotFound("fee"))?;
    let key = Some(idempotency_key.as_str()).filter(|k| !k.is_empty());
    domain::fees::refund(&services, &consultant, id, &amount, reason, key).await?;
    Ok(())
}

/// The client's "Pay": on to Stripe's hosted Checkout.
#[server(prefix = "/rpc", endpoint = "pay_fee")]
pub async fn pay_fee(fee: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let client = crate::server::authorize(policy::FAMILY_MEMBER)?;
    let services = crate::server::services()?;
    let id = fee.parse().map_err(|_| domain::Error::NotFound("fee"))?;
    let url = domain::fees::pay(&services, &client, id).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

/// One month of a fee report, formatted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeMonthView {
    /// "2026-03"
    pub month: String,
    pub invoiced: String,
    pub paid: String,
    pub outstanding: String,
    pub refunded: String,
    /// For the chart: paid, in minor units.
    pub paid_minor: i64,
}

/// A consultant's fees in one currency over the last twelve months.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeReportView {
    pub consultant: String,
    pub currency: String,
    pub months: Vec<FeeMonthView>,
    pub totals: FeeMonthView,
}

#[cfg(feature = "ssr")]
fn report_view(report: domain::fees::report::Report) -> FeeReportView {
    use domain::money::Money;
    let sum = |f: fn(&domain::fees::report::Month) -> Money| Money {
        amount: report.months.iter().map(|m| f(m).amount).sum(),
        currency: report.currency,
    };
    let totals = FeeMonthView {
        month: "Total".to_owned(),
        invoiced: sum(|m| m.invoiced).display(),
        paid: sum(|m| m.paid).display(),
        outstanding: sum(|m| m.outstanding).display(),
        refunded: sum(|m| m.refunded).display(),
        paid_minor: sum(|m| m.paid).amount,
    };
    FeeReportView {
        consultant: report.consultant,
        currency: report.currency.code().to_uppercase(),
        months: report
            .months
            .into_iter()
            .map(|m| FeeMonthView {
                month: m.month.format("%Y-%m").to_string(),
                invoiced: m.invoiced.display(),
                paid: m.paid.display(),
                outstanding: m.outstanding.display(),
                refunded: m.refunded.display(),
                paid_minor: m.paid.amount,
            })
            .collect(),
        totals,
    }
}

/// The signed-in consultant's fees per month (their dashboard).
#[server(prefix = "/rpc", endpoint = "fee_report")]
pub async fn load_fee_report() -> Result<Vec<FeeReportView>, AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let livemode = services.stripe.platform().livemode();
    let today = chrono::Utc::now().date_naive();
    let reports = domain::fees::report::for_consultant(&services.pool, consultant.user_id, livemode, today).await?;
    Ok(reports.into_iter().map(report_view).collect())
}

/// Every consultant's fees per month (the tenant's reports).
#[server(prefix = "/rpc", endpoint = "consultant_fee_reports")]
pub async fn load_consultant_fee_reports() -> Result<Vec<FeeReportView>, AppError> {
    use domain::auth::policy;
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let livemode = services.stripe.platform().livemode();
    let today = chrono::Utc::now().date_naive();
    let reports = domain::fees::report::for_tenant(&services.pool, staff.tenant()?, livemode, today).await?;
    Ok(reports.into_iter().map(report_view).collect())
}
