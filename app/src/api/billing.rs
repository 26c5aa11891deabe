//! Subscription billing: a consultant's subscription, invoices and cards; plans and billing
//! metrics for platform admins.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{api::overview::DayView, error::AppError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    pub description: String,
    /// "$49.00 / month"
    pub price: String,
    pub trial_days: i32,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionView {
    pub plan_id: Option<String>,
    pub plan_name: String,
    pub status: String,
    pub status_label: String,
    pub price: String,
    pub trial_end: Option<String>,
    pub period_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub ended: Option<String>,
    /// "$49.00 on 22 December 2026"
    pub next_invoice: Option<String>,
    pub live: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceRow {
    pub number: String,
    pub date: String,
    pub amount: String,
    pub status: String,
    pub hosted_url: Option<String>,
    pub pdf_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Billing {
    pub subscription: Option<SubscriptionView>,
    pub invoices: Vec<InvoiceRow>,
    pub plans: Vec<PlanView>,
    /// Family members see the page without its controls.
    pub can_manage: bool,
    pub notice: Option<String>,
    /// Stripe could not confirm a just-finished Checkout.
    pub problem: Option<String>,
}

#[cfg(feature = "ssr")]
fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%-d %B %Y").to_string()
}

#[cfg(feature = "ssr")]
fn plan_view(p: domain::billing::plans::Plan) -> PlanView {
    PlanView {
        id: p.id.to_string(),
        price: format!("{} / {}", domain::money::format_minor(p.amount, &p.currency), p.interval),
        name: p.name,
        description: p.description,
        trial_days: p.trial_days,
        active: p.active,
    }
}

#[cfg(feature = "ssr")]
fn status_label(status: &str) -> &'static str {
    match status {
        "trialing" => "Trial",
        "active" => "Active",
        "past_due" => "Payment failed — past due",
        "unpaid" => "Unpaid",
        "canceled" => "Canceled",
        "incomplete" => "Waiting for the first payment",
        "incomplete_expired" => "First payment never completed",
        "paused" => "Paused",
        _ => "Unknown",
    }
}

#[cfg(feature = "ssr")]
const NOTICE_FLASH: &str = "billing_notice";

/// Leaves a message for the next page load (so it shows with or without JavaScript).
#[cfg(feature = "ssr")]
async fn notice(message: &str) -> Result<(), AppError> {
    crate::server::put_flash(NOTICE_FLASH, message).await
}

#[cfg(feature = "ssr")]
async fn take_notice() -> Result<Option<String>, AppError> {
    Ok(crate::server::take_flash(NOTICE_FLASH).await?.pop())
}

#[cfg(feature = "ssr")]
fn parse_id(id: &str, what: &'static str) -> Result<uuid::Uuid, AppError> {
    id.parse().map_err(|_| domain::Error::NotFound(what).into())
}

/// The billing page; `checkout` is the Checkout session Stripe sent the consultant back with.
#[server(prefix = "/rpc", endpoint = "billing")]
pub async fn load_billing(checkout: Option<String>) -> Result<Billing, AppError> {
    use domain::{
        auth::{Role, policy},
        billing::{plans, subscriptions},
        money::format_minor,
    };
    let viewer = crate::server::authorize(policy::CONSULTANT_HOUSEHOLD)?;
    let services = crate::server::services()?;
    let can_manage = viewer.role == Role::Consultant;
    let mut problem = None;
    if let (Some(session), true) = (checkout.filter(|s| !s.is_empty()), can_manage) {
        // The page still shows what is stored if Stripe cannot confirm the session now; the
        // webhook brings the subscription in any case.
        match subscriptions::complete_checkout(&services, &viewer, &session).await {
            Ok(()) | Err(domain::Error::NotFound(_)) => {}
            Err(err @ domain::Error::Upstream(_)) => {
                problem = Some(format!(
                    "{} Your subscription appears here as soon as Stripe confirms it.",
                    err.public_message()
                ))
            }
            Err(err) => return Err(err.into()),
        }
    }
    let overview = subscriptions::overview(&services, viewer.consultant_scope()?).await?;
    let subscription = overview.subscription.map(|s| SubscriptionView {
        plan_id: s.plan_id.map(|id| id.to_string()),
        plan_name: s.plan_name.clone(),
        status_label: status_label(&s.status).to_owned(),
        price: format!("{} / {}", format_minor(s.amount, &s.currency), s.interval),
        trial_end: s.trial_end.filter(|_| s.status == "trialing").map(day),
        period_end: s.current_period_end.map(day),
        cancel_at_period_end: s.cancel_at_period_end,
        ended: s.ended_at.map(day),
        next_invoice: s
            .next_invoice()
            .map(|(at, amount)| format!("{} on {}", format_minor(amount, &s.currency), day(at))),
        live: domain::billing::LIVE_STATUSES.contains(&s.status.as_str()),
        status: s.status,
    });
    let invoices = overview
        .invoices
        .into_iter()
        .map(|i| InvoiceRow {
            number: i.number.unwrap_or_else(|| "—".into()),
            date: day(i.created),
            amount: format_minor(if i.status == "paid" { i.amount_paid } else { i.amount_due }, &i.currency),
            status: i.status,
            hosted_url: i.hosted_invoice_url,
            pdf_url: i.invoice_pdf,
        })
        .collect();
    let plans = plans::list(&services, true).await?.into_iter().map(plan_view).collect();
    Ok(Billing { subscription, invoices, plans, can_manage, notice: take_notice().await?, problem })
}

#[server(prefix = "/rpc", endpoint = "subscribe")]
pub async fn subscribe(plan_id: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let url =
        domain::billing::subscriptions::start_checkout(&services, &consultant, parse_id(&plan_id, "plan")?).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "cancel_subscription")]
pub async fn cancel_subscription() -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    domain::billing::subscriptions::set_cancel_at_period_end(&services, &consultant, true).await?;
    notice("Your subscription will end at the close of the current period. You can resume it until then.").await
}

#[server(prefix = "/rpc", endpoint = "resume_subscription")]
pub async fn resume_subscription() -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    domain::billing::subscriptions::set_cancel_at_period_end(&services, &consultant, false).await?;
    notice("Your subscription continues; it will renew as usual.").await
}

#[server(prefix = "/rpc", endpoint = "change_plan")]
pub async fn change_plan(plan_id: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    domain::billing::subscriptions::change_plan(&services, &consultant, parse_id(&plan_id, "plan")?).await?;
    notice("Your plan was changed. The difference is settled on your next invoice.").await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardView {
    pub id: String,
    pub label: String,
    pub expires: String,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentMethods {
    pub cards: Vec<CardView>,
    pub can_manage: bool,
    pub notice: Option<String>,
    pub problem: Option<String>,
}

#[cfg(feature = "ssr")]
fn recovery_message(recovery: &domain::billing::payment_methods::Recovery) -> (Option<String>, Option<String>) {
    use domain::billing::payment_methods::Recovery;
    match recovery {
        Recovery::NothingDue => (Some("Your default card was updated.".into()), None),
        Recovery::Paid { .. } => {
            (Some("Your default card was updated and your unpaid invoice is now paid.".into()), None)
        }
        Recovery::Declined(reason) => (
            None,
            Some(format!(
                "Your default card was updated, but paying the unpaid invoice with it failed: {reason} Try another card."
            )),
        ),
    }
}

/// The cards page; `setup` is the setup session Stripe sent the consultant back with.
#[server(prefix = "/rpc", endpoint = "payment_methods")]
pub async fn load_payment_methods(setup: Option<String>) -> Result<PaymentMethods, AppError> {
    use domain::{
        auth::{Role, policy},
        billing::payment_methods::{self, CardAdded},
    };
    let viewer = crate::server::authorize(policy::CONSULTANT_HOUSEHOLD)?;
    let services = crate::server::services()?;
    let can_manage = viewer.role == Role::Consultant;
    let (mut notice, mut problem) = (None, None);
    if let (Some(session), true) = (setup.filter(|s| !s.is_empty()), can_manage) {
        match payment_methods::complete_adding(&services, &viewer, &session).await {
            Ok(CardAdded::SavedAsDefault(recovery)) => (notice, problem) = recovery_message(&recovery),
            Ok(CardAdded::Saved) => notice = Some("Your card was saved.".into()),
            Ok(CardAdded::NotSaved) => problem = Some("No card was saved. Add it again when you are ready.".into()),
            Err(domain::Error::NotFound(_)) => {}
            Err(err @ domain::Error::Upstream(_)) => {
                problem =
                    Some(format!("{} Your card appears here as soon as Stripe confirms it.", err.public_message()))
            }
            Err(err) => return Err(err.into()),
        }
    }
    let notice = notice.or(take_notice().await?);
    let cards = payment_methods::list(&services, viewer.consultant_scope()?)
        .await?
        .into_iter()
        .map(|c| CardView {
            id: c.id.to_string(),
            label: format!("{} •••• {}", c.brand.to_uppercase(), c.last4),
            expires: format!("{:02}/{}", c.exp_month, c.exp_year),
            is_default: c.is_default,
        })
        .collect();
    Ok(PaymentMethods { cards, can_manage, notice, problem })
}

#[server(prefix = "/rpc", endpoint = "add_card")]
pub async fn add_card() -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let url = domain::billing::payment_methods::start_adding(&services, &consultant).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "set_default_card")]
pub async fn set_default_card(card_id: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let recovery =
        domain::billing::payment_methods::set_default(&services, &consultant, parse_id(&card_id, "card")?).await?;
    match recovery_message(&recovery) {
        (Some(ok), _) => notice(&ok).await,
        (_, Some(problem)) => Err(domain::Error::conflict(problem).into()),
        (None, None) => Ok(()),
    }
}

#[server(prefix = "/rpc", endpoint = "remove_card")]
pub async fn remove_card(card_id: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    domain::billing::payment_methods::remove(&services, &consultant, parse_id(&card_id, "card")?).await?;
    notice("The card was removed.").await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plans {
    pub plans: Vec<PlanView>,
    pub currencies: Vec<String>,
}

#[server(prefix = "/rpc", endpoint = "plans")]
pub async fn load_plans() -> Result<Plans, AppError> {
    use domain::auth::policy;
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let plans = domain::billing::plans::list(&services, false).await?.into_iter().map(plan_view).collect();
    Ok(Plans { plans, currencies: domain::money::Currency::supported().map(str::to_owned).collect() })
}

#[server(prefix = "/rpc", endpoint = "create_plan")]
pub async fn create_plan(
    name: String,
    description: String,
    price: String,
    currency: String,
    interval: String,
    trial_days: String,
) -> Result<(), AppError> {
    use domain::{auth::policy, billing::plans};
    let admin = crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    plans::create(&services, &admin, &plans::NewPlan { name, description, price, currency, interval, trial_days })
        .await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "archive_plan")]
pub async fn archive_plan(plan_id: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let admin = crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    domain::billing::plans::archive(&services, &admin, parse_id(&plan_id, "plan")?).await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsView {
    /// "$1,234.00" per currency, largest first.
    pub mrr: Vec<String>,
    pub trialing: i64,
    pub active: i64,
    pub past_due: i64,
    pub canceled_30d: i64,
    pub payment_success: String,
    pub payments_30d: i64,
    pub churn: String,
    pub mrr_currency: String,
    /// (day, MRR in minor units, label)
    pub mrr_history: Vec<(String, i64, String)>,
    pub outcomes: Vec<DayView>,
}

#[server(prefix = "/rpc", endpoint = "billing_metrics")]
pub async fn load_billing_metrics() -> Result<MetricsView, AppError> {
    use domain::{auth::policy, money::format_minor};
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let m = domain::billing::metrics::billing_metrics(&services.pool, services.stripe.platform().livemode()).await?;
    let percent = |share: Option<f64>| share.map_or_else(|| "—".to_owned(), |s| format!("{:.1} %", s * 100.0));
    let mrr_currency = m.mrr.first().map_or_else(|| "usd".to_owned(), |x| x.currency.clone());
    Ok(MetricsView {
        mrr: m.mrr.iter().map(|x| format_minor(x.amount, &x.currency)).collect(),
        trialing: m.counts.trialing,
        active: m.counts.active,
        past_due: m.counts.past_due,
        canceled_30d: m.counts.canceled_30d,
        payment_success: percent(m.payments_30d.success_rate()),
        payments_30d: m.payments_30d.total,
        churn: percent(m.churn_30d.rate()),
        mrr_history: m
            .mrr_history
            .iter()
            .map(|d| (d.day.format("%m-%d").to_string(), d.amount, format_minor(d.amount, &mrr_currency)))
            .collect(),
        mrr_currency: mrr_currency.to_uppercase(),
        outcomes: m
            .outcomes
            .into_iter()
            .map(|d| DayView { day: d.day.format("%m-%d").to_string(), succeeded: d.succeeded, failed: d.failed })
            .collect(),
    })
}
