//! Auction winnings: the buyer's payment pages (no account: the link's token is the key) and
//! the tenant staff's list of winnings.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayView {
    pub tenant: String,
    pub auction: String,
    pub lot: String,
    pub description: String,
    pub amount: String,
    pub status: String,
    pub pay_by: String,
    /// Seconds left in the payment window when the page was made (the page counts down).
    pub seconds_left: i64,
    pub can_pay: bool,
    /// Why the lot cannot be paid for now (payments paused).
    pub unavailable: Option<String>,
    pub last_failure: Option<String>,
    /// Where the buyer downloads the receipt, once the lot is paid.
    pub receipt_url: Option<String>,
}

#[server(prefix = "/rpc", endpoint = "pay_page")]
pub async fn load_pay_page(token: String) -> Result<PayView, AppError> {
    let services = crate::server::services()?;
    let page = domain::checkout::pay_page(&services, &token, crate::server::client_ip()?).await?;
    let w = page.winning;
    let receipt_url = w.order_id.map(|_| format!("/pay/{token}/receipt.pdf"));
    Ok(PayView {
        tenant: page.tenant,
        auction: w.auction,
        lot: w.lot,
        description: w.description,
        amount: domain::money::format_minor(w.amount, &w.currency),
        status: w.status,
        pay_by: w.pay_by.format("%-d %B %Y, %H:%M UTC").to_string(),
        seconds_left: (w.pay_by - chrono::Utc::now()).num_seconds().max(0),
        can_pay: page.can_pay,
        unavailable: page.unavailable,
        last_failure: page.last_failure,
        receipt_url,
    })
}

/// The buyer's "Pay" button: on to Stripe's hosted Checkout.
#[server(prefix = "/rpc", endpoint = "pay_winning")]
pub async fn pay_winning(token: String) -> Result<(), AppError> {
    let services = crate::server::services()?;
    let url = domain::checkout::start(&services, &token, crate::server::client_ip()?).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

/// After Checkout (paid or cancelled): where the payment stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AfterCheckout {
    pub lot: String,
    pub amount: String,
    pub paid: bool,
    pub bid_status: String,
    pub attempts_left: i32,
    pub failure: Option<String>,
}

#[server(prefix = "/rpc", endpoint = "payment_result")]
pub async fn load_payment_result(session: String) -> Result<AfterCheckout, AppError> {
    let services = crate::server::services()?;
    // Stripe's events may not have been applied yet when the buyer is sent back: ask Stripe.
    domain::checkout::confirm_return(&services, &session).await?;
    let s = domain::checkout::status(&services, &session).await?;
    Ok(AfterCheckout {
        amount: domain::money::format_minor(s.amount, &s.currency),
        lot: s.lot,
        paid: s.bid_status == "paid",
        bid_status: s.bid_status,
        attempts_left: s.attempts_left,
        failure: s.failure_message,
    })
}

/// "Try again" after a cancelled or failed attempt.
#[server(prefix = "/rpc", endpoint = "retry_payment")]
pub async fn retry_payment(session: String) -> Result<(), AppError> {
    let services = crate::server::services()?;
    let url = domain::checkout::retry(&services, &session, crate::server::client_ip()?).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinningRow {
    pub id: String,
    pub reference: String,
    pub lot: String,
    pub buyer: String,
    pub amount: String,
    pub status: String,
    pub pay_by: String,
    /// The order's state once paid (`paid`, `refunded`, `disputed`, …); its receipt can be downloaded.
    pub order_status: Option<String>,
}

/// A page of the staff's list, with the next page's cursor and the export link for the same filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinningsList {
    pub rows: Vec<WinningRow>,
    pub next_cursor: Option<String>,
    /// `/winnings/export.csv?…` with the same filter.
    pub export_url: String,
}

/// The list's filter as the page's query string carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListQuery {
    pub q: Option<String>,
    pub status: Option<String>,
    pub mode: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The filter as a query string (without the cursor), for links.
    pub fn query_string(&self) -> String {
        let pairs =
            [("q", &self.q), ("status", &self.status), ("mode", &self.mode), ("from", &self.from), ("to", &self.to)];
        pairs
            .iter()
            .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| format!("{k}={}", urlencoding(v))))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn urlencoding(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[server(prefix = "/rpc", endpoint = "winnings")]
pub async fn load_winnings(
    q: Option<String>,
    status: Option<String>,
    mode: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
) -> Result<WinningsList, AppError> {
    let query = ListQuery { q, status, mode, from, to, cursor };
    use domain::auth::policy;
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let filter = domain::checkout::Filter {
        q: query.q.clone(),
        status: query.status.clone(),
        mode: query.mode.clone(),
        from: query.from.clone(),
        to: query.to.clone(),
    };
    let (rows, next_cursor) =
        domain::checkout::search(&services.pool, staff.tenant()?, &filter, query.cursor.as_deref(), 50).await?;
    let zone = domain::time_zone::of_tenant(&services.pool, staff.tenant()?).await?;
    let filter_query = query.query_string();
    Ok(WinningsList {
        rows: rows
            .into_iter()
            .map(|w| WinningRow {
                id: w.id.to_string(),
                reference: w.reference,
                lot: format!("{} · {}", w.auction, w.lot),
                buyer: w.buyer_email,
                amount: domain::money::format_minor(w.amount, &w.currency),
                status: w.status,
                pay_by: domain::time_zone::show(w.pay_by, zone),
                order_status: w.order_status,
            })
            .collect(),
        next_cursor,
        export_url: if filter_query.is_empty() {
            "/winnings/export.csv".to_owned()
        } else {
            format!("/winnings/export.csv?{filter_query}")
        },
    })
}

/// A tenant admin registers a win by hand (live data; the amount is typed in major units).
#[server(prefix = "/rpc", endpoint = "register_winning")]
pub async fn register_winning(
    reference: String,
    auction: String,
    lot: String,
    buyer_email: String,
    amount: String,
    currency: String,
) -> Result<(), AppError> {
    use domain::{
        auth::policy,
        money::{Currency, Money},
    };
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let currency_code =
        Currency::parse(&currency).ok_or_else(|| domain::Error::invalid("currency", "Choose a currency."))?;
    let amount = Money::parse(&amount, currency_code, "amount")?;
    let input = domain::checkout::NewWinning {
        reference,
        auction,
        lot,
        description: String::new(),
        buyer_email,
        amount: amount.amount,
        currency: currency_code.code().to_owned(),
        runners_up: vec![],
    };
    let livemode = services.stripe.platform().livemode();
    domain::checkout::register(&services, staff.tenant()?, livemode, Some(staff.user_id), &input).await?;
    Ok(())
}

/// A refund as the winning's page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundRow {
    pub amount: String,
    pub status: String,
    pub reason: String,
    pub at: String,
    pub failure: Option<String>,
    /// The credit note's number and where staff download it, once issued.
    pub credit_note: Option<(String, String)>,
}

/// A dispute as the winning's page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisputeRow {
    pub amount: String,
    pub reason: String,
    pub status: String,
    pub evidence_due_by: Option<String>,
    pub opened: String,
}

/// One line of a winning's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    pub at: String,
    pub what: String,
    pub detail: Option<String>,
}

/// One winning for its tenant's staff: the bid, its payment, refunds and disputes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinningDetail {
    pub id: String,
    pub reference: String,
    pub auction: String,
    pub lot: String,
    pub description: String,
    pub buyer: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub livemode: bool,
    pub won_at: String,
    pub pay_by: String,
    pub order_status: Option<String>,
    /// What can still be refunded (formatted), when the lot is paid.
    pub refundable: Option<String>,
    pub refunds: Vec<RefundRow>,
    pub disputes: Vec<DisputeRow>,
    /// A fresh Idempotency-Key for the refund form: posting the same form twice refunds once.
    pub refund_key: String,
    /// Everything that happened to it, oldest first.
    pub timeline: Vec<TimelineRow>,
    pub can_cancel: bool,
    pub can_resend: bool,
    /// The latest deadline an extension may set (`datetime-local`, UTC), while one is allowed.
    pub extend_until: Option<String>,
}

#[server(prefix = "/rpc", endpoint = "winning")]
pub async fn load_winning(id: String) -> Result<WinningDetail, AppError> {
    use domain::{auth::policy, money::format_minor};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let tenant = staff.tenant()?;
    let id: uuid::Uuid = id.parse().map_err(|_| domain::Error::NotFound("winning bid"))?;
    let w = domain::checkout::for_tenant(&services, tenant, None, id).await?;
    let refundable = domain::refunds::left_to_refund(&services, tenant, id).await?;
    let refunds = domain::refunds::of_winning(&services, tenant, id).await?;
    let disputes = domain::checkout::disputes(&services, tenant, id).await?;
    let timeline = domain::checkout::timeline::of_winning(&services, tenant, id).await?;
    // Shown in the tenant's time zone.
    let zone = domain::time_zone::of_tenant(&services.pool, tenant).await?;
    let time = |t: chrono::DateTime<chrono::Utc>| domain::time_zone::show(t, zone);
    let awaiting = w.status == "awaiting_payment";
    let latest = w.won_at + domain::checkout::lifecycle::LONGEST_WINDOW;
    let extend_until = (matches!(w.status.as_str(), "awaiting_payment" | "expired")
        && w.extended_at.is_none()
        && latest > chrono::Utc::now().max(w.pay_by))
    .then(|| latest.format("%Y-%m-%dT%H:%M").to_string());
    Ok(WinningDetail {
        id: w.id.to_string(),
        reference: w.reference,
        auction: w.auction,
        lot: w.lot,
        description: w.description,
        buyer: w.buyer_email,
        amount: format_minor(w.amount, &w.currency),
        currency: w.currency.to_uppercase(),
        status: w.status,
        livemode: w.livemode,
        won_at: time(w.won_at),
        pay_by: time(w.pay_by),
        order_status: w.order_status,
        refundable: refundable.filter(|m| m.amount > 0).map(|m| m.display()),
        refunds: refunds
            .into_iter()
            .map(|r| RefundRow {
                amount: r.amount.display(),
                status: r.status.as_str().to_owned(),
                credit_note: r
                    .credit_note
                    .map(|number| (number, format!("/winnings/{id}/refunds/{}/credit-note.pdf", r.id))),
                reason: r.reason,
                at: time(r.created_at),
                failure: r.failure_reason,
            })
            .collect(),
        disputes: disputes
            .into_iter()
            .map(|d| DisputeRow {
                amount: d.amount.display(),
                reason: d.reason.replace('_', " "),
                status: d.status.replace('_', " "),
                evidence_due_by: d.evidence_due_by.map(time),
                opened: time(d.created_at),
            })
            .collect(),
        refund_key: domain::crypto::random_token(),
        timeline: timeline
            .into_iter()
            .map(|e| TimelineRow { at: domain::time_zone::show_precisely(e.at, zone), what: e.what, detail: e.detail })
            .collect(),
        can_cancel: awaiting,
        can_resend: awaiting,
        extend_until,
    })
}

/// Staff cancel an unpaid winning (the buyer is told why).
#[server(prefix = "/rpc", endpoint = "cancel_winning")]
pub async fn cancel_winning(winning_id: String, reason: String) -> Result<(), AppError> {
    use domain::{auth::policy, checkout::lifecycle};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let id = winning_id.parse().map_err(|_| domain::Error::NotFound("winning bid"))?;
    lifecycle::cancel(&services, staff.tenant()?, lifecycle::Actor::Staff(&staff), id, &reason).await?;
    Ok(())
}

/// Staff extend a winning's window once; `pay_by` is the form's `datetime-local` value, in UTC.
#[server(prefix = "/rpc", endpoint = "extend_winning")]
pub async fn extend_winning(winning_id: String, pay_by: String) -> Result<(), AppError> {
    use domain::{auth::policy, checkout::lifecycle};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let id = winning_id.parse().map_err(|_| domain::Error::NotFound("winning bid"))?;
    let pay_by = chrono::NaiveDateTime::parse_from_str(pay_by.trim(), "%Y-%m-%dT%H:%M")
        .map_err(|_| domain::Error::invalid("pay_by", "Give the new deadline as a date and time (UTC)."))?
        .and_utc();
    lifecycle::extend(&services, staff.tenant()?, lifecycle::Actor::Staff(&staff), id, pay_by).await?;
    Ok(())
}

/// Staff send the buyer a new payment link (the old one stops working).
#[server(prefix = "/rpc", endpoint = "resend_payment_link")]
pub async fn resend_payment_link(winning_id: String) -> Result<(), AppError> {
    use domain::{auth::policy, checkout::lifecycle};
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let id = winning_id.parse().map_err(|_| domain::Error::NotFound("winning bid"))?;
    lifecycle::resend_link(&services, staff.tenant()?, lifecycle::Actor::Staff(&staff), id).await?;
    Ok(())
}
