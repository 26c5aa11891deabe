//! Consultants' payouts (Stripe Connect): setup (status, embedded onboarding, onboarding links),
//! the Payouts page (balance, payouts and payments in Stripe's embedded components, with a
//! summary rendered by the server and a link into Stripe's Express dashboard), and the tenant
//! staff's view of their consultants' setup.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{api::tenant_admin::RequirementsView, error::AppError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayoutAccountView {
    pub account_id: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub requirements: RequirementsView,
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentSetup {
    pub subscribed: bool,
    pub account: Option<PayoutAccountView>,
    /// The consultant (not a family member) may act.
    pub can_manage: bool,
    pub email: String,
    /// For Stripe's Connect.js in the browser (public values).
    pub publishable_key: String,
    pub connect_js_url: String,
    pub notice: Option<String>,
    /// The other address the consultant approved for payout links, if any.
    pub link_recipient: Option<String>,
}

#[cfg(feature = "ssr")]
const NOTICE_FLASH: &str = "payout_notice";

#[cfg(feature = "ssr")]
fn account_view(s: domain::payouts::PayoutStatus) -> PayoutAccountView {
    PayoutAccountView {
        account_id: s.account.stripe_account_id,
        charges_enabled: s.account.charges_enabled,
        payouts_enabled: s.account.payouts_enabled,
        details_submitted: s.account.details_submitted,
        requirements: s.requirements.into(),
        stale: s.stale,
    }
}

#[server(prefix = "/rpc", endpoint = "payment_setup")]
pub async fn load_payment_setup() -> Result<PaymentSetup, AppError> {
    use domain::auth::{Role, policy};
    let viewer = crate::server::authorize(policy::CONSULTANT_HOUSEHOLD)?;
    let services = crate::server::services()?;
    let consultant = viewer.consultant_scope()?;
    let notice = crate::server::take_flash(NOTICE_FLASH).await?.pop();
    Ok(PaymentSetup {
        subscribed: domain::billing::is_subscribed(&services.pool, consultant).await?,
        account: domain::payouts::status(&services, consultant).await?.map(account_view),
        can_manage: viewer.role == Role::Consultant,
        email: viewer.email.clone(),
        publishable_key: services.stripe.platform().keys().publishable_key.clone(),
        connect_js_url: services.stripe.config().connect_js_url.clone(),
        notice,
        link_recipient: domain::payouts::onboarding_links::recipient(&services, consultant).await?,
    })
}

#[server(prefix = "/rpc", endpoint = "start_payout_setup")]
pub async fn start_payout_setup() -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    if !domain::billing::is_subscribed(&services.pool, consultant.user_id).await? {
        return Err(domain::Error::conflict(
            "Payout setup needs an active subscription. Subscribe to a plan under Billing first.",
        )
        .into());
    }
    domain::payouts::create_account(&services, &consultant).await?;
    Ok(())
}

/// The client secret of a fresh Account Session, for Connect.js in the consultant's browser.
#[server(prefix = "/rpc", endpoint = "account_session")]
pub async fn account_session() -> Result<String, AppError> {
    use domain::auth::policy;
    use secrecy::ExposeSecret as _;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let session =
        domain::payouts::account_session(&services, &consultant, domain::payouts::SessionPurpose::Setup).await?;
    Ok(session.client_secret.expose_secret().to_owned())
}

/// A balance, payout or amount as the Payouts page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayoutRow {
    pub arrival: String,
    pub state: String,
    pub amount: String,
    pub automatic: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceView {
    pub available: Vec<String>,
    pub pending: Vec<String>,
    pub payouts: Vec<PayoutRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayoutsView {
    pub subscribed: bool,
    pub account: Option<PayoutAccountView>,
    /// `None` when there is no account yet, or Stripe could not be read just now (`unavailable`).
    pub balance: Option<BalanceView>,
    pub unavailable: bool,
    pub publishable_key: String,
    pub connect_js_url: String,
}

/// The consultant's Payouts page: their account's state, and its balance and latest payouts as
/// Stripe reports them now.
#[server(prefix = "/rpc", endpoint = "payouts")]
pub async fn load_payouts() -> Result<PayoutsView, AppError> {
    use domain::{auth::policy, payouts::summary::Summary};
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let status = domain::payouts::status(&services, consultant.user_id).await?;
    let summary = match &status {
        Some(s) => Some(domain::payouts::summary::summary(&services, &s.account).await),
        None => None,
    };
    let balance = match &summary {
        Some(Summary::Read { available, pending, payouts }) => Some(BalanceView {
            available: available.iter().map(|m| m.display()).collect(),
            pending: pending.iter().map(|m| m.display()).collect(),
            payouts: payouts
                .iter()
                .map(|p| PayoutRow {
                    arrival: p.arrival.format("%Y-%m-%d").to_string(),
                    state: p.state.label().to_owned(),
                    amount: p.amount.display(),
                    automatic: p.automatic,
                })
                .collect(),
        }),
        _ => None,
    };
    Ok(PayoutsView {
        subscribed: domain::billing::is_subscribed(&services.pool, consultant.user_id).await?,
        account: status.map(account_view),
        balance,
        unavailable: matches!(summary, Some(Summary::Unavailable)),
        publishable_key: services.stripe.platform().keys().publishable_key.clone(),
        connect_js_url: services.stripe.config().connect_js_url.clone(),
    })
}

/// The client secret of a fresh Account Session for the Payouts page's components.
#[server(prefix = "/rpc", endpoint = "payouts_session")]
pub async fn payouts_session() -> Result<String, AppError> {
    use domain::auth::policy;
    use secrecy::ExposeSecret as _;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let session =
        domain::payouts::account_session(&services, &consultant, domain::payouts::SessionPurpose::Payouts).await?;
    Ok(session.client_secret.expose_secret().to_owned())
}

/// Sends the consultant into their Stripe Express dashboard through a fresh login link.
#[server(prefix = "/rpc", endpoint = "express_dashboard")]
pub async fn open_express_dashboard() -> Result<(), AppError> {
    use domain::auth::policy;
    use secrecy::ExposeSecret as _;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let link = domain::payouts::summary::express_dashboard_link(&services, &consultant).await?;
    leptos_axum::redirect(link.expose_secret());
    Ok(())
}

/// A consultant approves one other address for their payout links (empty removes it).
#[server(prefix = "/rpc", endpoint = "set_payout_link_recipient")]
pub async fn set_payout_link_recipient(email: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let consultant = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    let recipient = Some(email.trim()).filter(|e| !e.is_empty());
    domain::payouts::onboarding_links::set_recipient(&services, &consultant, recipient).await?;
    let message = match recipient {
        Some(r) => format!("Payout links may now also go to {r}."),
        None => "Payout links now go only to your own address.".to_owned(),
    };
    crate::server::put_flash(NOTICE_FLASH, &message).await
}

/// Sends a one-time onboarding link. `consultant_id` is empty for the signed-in consultant.
#[server(prefix = "/rpc", endpoint = "send_onboarding_link")]
pub async fn send_onboarding_link(consultant_id: String, email: String) -> Result<(), AppError> {
    use domain::auth::{Role, policy};
    let issuer = crate::server::authorize(policy::ONBOARDING_LINK_ISSUERS)?;
    let services = crate::server::services()?;
    let consultant = if issuer.role == Role::Consultant {
        issuer.user_id
    } else {
        consultant_id.parse().map_err(|_| domain::Error::NotFound("consultant"))?
    };
    domain::payouts::onboarding_links::issue(&services, &issuer, consultant, &email).await?;
    let message = format!("An onboarding link was sent to {}. It works once, for 7 days.", email.trim());
    crate::server::put_flash(NOTICE_FLASH, &message).await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsultantPayoutRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub subscribed: bool,
    /// "Payouts enabled", "Details missing", "Not started"
    pub state: String,
    pub open_tasks: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantPayouts {
    pub consultants: Vec<ConsultantPayoutRow>,
    pub notice: Option<String>,
}

#[server(prefix = "/rpc", endpoint = "tenant_payouts")]
pub async fn load_tenant_payouts() -> Result<TenantPayouts, AppError> {
    use domain::auth::policy;
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let rows = domain::payouts::tenant_overview(&services.pool, staff.tenant()?).await?;
    let notice = crate::server::take_flash(NOTICE_FLASH).await?.pop();
    Ok(TenantPayouts {
        consultants: rows
            .into_iter()
            .map(|r| ConsultantPayoutRow {
                id: r.user_id.to_string(),
                name: r.display_name,
                email: r.email,
                subscribed: r.subscribed,
                state: match (r.has_account, r.payouts_enabled, r.details_submitted) {
                    (false, ..) => "Not started".into(),
                    (true, true, _) => "Payouts enabled".into(),
                    (true, false, true) => "Waiting for Stripe".into(),
                    (true, false, false) => "Details missing".into(),
                },
                open_tasks: r.open_tasks,
            })
            .collect(),
        notice,
    })
}
