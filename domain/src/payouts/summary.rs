//! What a consultant's Payouts page shows without JavaScript: the connected account's balance
//! and latest payouts, read from Stripe when the page is asked for (Stripe keeps them; Remit
//! stores neither), and a login link to the Stripe Express dashboard, made on demand and never
//! stored or logged (it signs its holder in).

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use stripe_client_core::StripeRequest as _;
use stripe_connect::login_link::CreateAccountLoginLink;
use stripe_core::{balance::RetrieveForMyAccountBalance, payout::ListPayout};
use stripe_shared::AccountId;

use super::{PayoutAccount, account_of};
use crate::{
    Services,
    audit::{self, Entry},
    auth::Principal,
    error::{Error, Result},
    money::Money,
    stripe::upstream,
};

/// How many payouts the summary lists, newest first.
pub const PAYOUTS_LISTED: i64 = 5;

/// Where a payout stands, as Stripe reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutState {
    Pending,
    InTransit,
    Paid,
    Failed,
    Canceled,
}

impl PayoutState {
    pub fn parse(status: &str) -> Option<Self> {
        Some(match status {
            "pending" => Self::Pending,
            "in_transit" => Self::InTransit,
            "paid" => Self::Paid,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::InTransit => "On its way",
            Self::Paid => "Paid",
            Self::Failed => "Failed",
            Self::Canceled => "Canceled",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Payout {
    pub amount: Money,
    pub state: PayoutState,
    /// When it reaches (or reached) the bank account.
    pub arrival: DateTime<Utc>,
    /// Made by the payout schedule, not asked for.
    pub automatic: bool,
}

/// The balance per currency and the latest payouts, or why they are missing.
#[derive(Debug, Clone)]
pub enum Summary {
    Read {
        available: Vec<Money>,
        pending: Vec<Money>,
        payouts: Vec<Payout>,
    },
    /// Stripe could not be reached or refused; the page says so rather than showing stale money.
    Unavailable,
}

/// Reads the connected account's balance and latest payouts from Stripe (two calls at once,
/// each within Stripe's call timeout).
pub async fn summary(services: &Services, account: &PayoutAccount) -> Summary {
    let client = services.stripe.platform().client();
    let id = AccountId::from(account.stripe_account_id.as_str());
    let balance = RetrieveForMyAccountBalance::new().customize().account_id(id.clone()).send(client);
    let payouts = ListPayout::new().limit(PAYOUTS_LISTED).customize().account_id(id).send(client);
    let (balance, payouts) = tokio::join!(balance, payouts);
    let (balance, payouts) = match (balance, payouts) {
        (Ok(balance), Ok(payouts)) => (balance, payouts),
        (Err(err), _) | (_, Err(err)) => {
            tracing::warn!(account = %account.stripe_account_id, error = %err, "Stripe did not give the payout summary");
            return Summary::Unavailable;
        }
    };
    let amounts = |list: &[stripe_core::BalanceAmount]| -> Vec<Money> {
        list.iter().filter_map(|a| Money::stored(a.amount, &a.currency.to_string()).ok()).collect()
    };
    Summary::Read {
        available: amounts(&balance.available),
        pending: amounts(&balance.pending),
        payouts: payouts
            .data
            .iter()
            .filter_map(|p| {
                Some(Payout {
                    amount: Money::stored(p.amount, &p.currency.to_string()).ok()?,
                    state: PayoutState::parse(&p.status)?,
                    arrival: DateTime::from_timestamp(p.arrival_date, 0)?,
                    automatic: p.automatic,
                })
            })
            .collect(),
    }
}

/// A one-time link into the consultant's Stripe Express dashboard. It is handed to the browser
/// as a redirect and kept nowhere; opening it is audited.
pub async fn express_dashboard_link(services: &Services, consultant: &Principal) -> Result<SecretString> {
    let account = account_of(&services.pool, consultant.user_id).await?.ok_or_else(|| {
        Error::conflict("Set up payouts first: Stripe's dashboard opens once you have a payout account.")
    })?;
    if !account.details_submitted {
        return Err(Error::conflict(
            "Stripe's dashboard opens once your payout details are submitted. Finish payment setup first.",
        ));
    }
    let link = CreateAccountLoginLink::new(account.stripe_account_id.as_str())
        .send(services.stripe.platform().client())
        .await
        .map_err(|err| upstream(err, "open your Stripe dashboard"))?;
    let mut conn = services.pool.acquire().await?;
    audit::record(
        &mut conn,
        Entry {
            tenant_id: consultant.tenant_id,
            actor: Some(consultant),
            action: "payouts.dashboard_opened",
            target: Some(account.stripe_account_id.clone()),
            reason: None,
            details: serde_json::Value::Null,
        },
    )
    .await?;
    Ok(SecretString::from(link.url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_payout_statuses_are_read_and_named() {
        for (status, label) in [
            ("pending", "Pending"),
            ("in_transit", "On its way"),
            ("paid", "Paid"),
            ("failed", "Failed"),
            ("canceled", "Canceled"),
        ] {
            assert_eq!(PayoutState::parse(status).map(PayoutState::label), Some(label));
        }
        assert_eq!(PayoutState::parse("reversed"), None, "a status Stripe may add is left out, not guessed");
    }
}
