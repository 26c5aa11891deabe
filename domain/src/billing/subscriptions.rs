//! A consultant's subscription: subscribing through Checkout, cancelling at period end,
//! resuming, changing plan, and what the billing page shows.

use chrono::{DateTime, Utc};
use stripe_billing::subscription::{RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
    ExpireCheckoutSession, RetrieveCheckoutSession,
};
use stripe_client_core::StripeRequest as _;
use stripe_shared::CheckoutSessionMode;
use uuid::Uuid;

use super::{current_subscription, customer_of, ensure_customer, not_yours, plans, store_subscription};
use crate::{
    Services,
    auth::Principal,
    error::{Error, Result},
    stripe::{idempotent, upstream},
};

/// Where Checkout sends the consultant back to; Stripe fills in the session id.
pub const RETURN_PATH: &str = "/billing";

/// Starts a subscription to `plan_id`: returns the Checkout URL the consultant pays on.
///
/// At most one subscription Checkout is pending per consultant (a unique row), so two tabs, or
/// two clicks, get the same page rather than two subscriptions: the row is claimed under the
/// consultant's lock, the session is made at Stripe after the transaction with an idempotency key
/// of that claim (a repeated or concurrent request sends the same request and gets the same
/// session), and an open page for another plan is expired at Stripe before a new one is made.
pub async fn start_checkout(services: &Services, consultant: &Principal, plan_id: Uuid) -> Result<String> {
    let plan = plans::get(services, plan_id).await?;
    if !plan.active {
        return Err(Error::invalid("plan", "This plan is no longer offered; choose another."));
    }
    let customer = ensure_customer(services, consultant).await?;
    // At most two rounds: a pending page for another plan is closed, then a new one claimed.
    for _ in 0..2 {
        match claim(services, consultant.user_id, plan_id).await? {
            Pending::Open(url) => return Ok(url),
            Pending::Claimed(claim_id) => {
                return create_session(services, consultant, &plan, &customer, claim_id).await;
            }
            Pending::Replace { stripe_session_id } => {
                if let Some(id) = stripe_session_id {
                    // Best effort: a page that already completed brings its subscription through the
                    // events, and the next request is then refused as "already subscribed".
                    if let Err(err) =
                        ExpireCheckoutSession::new(id.as_str()).send(services.stripe.platform().client()).await
                    {
                        tracing::info!(error = %err, "an earlier subscription page could not be expired");
                    }
                }
            }
        }
    }
    Err(Error::conflict("Another subscription page was just opened. Please try again."))
}

enum Pending {
    /// The open page for this plan.
    Open(String),
    /// A claim (new, or left by a request that did not finish) to make the page for.
    Claimed(Uuid),
    /// A pending page of another plan (or expired) was closed; expire it at Stripe, then claim again.
    Replace { stripe_session_id: Option<String> },
}

async fn claim(services: &Services, user_id: Uuid, plan_id: Uuid) -> Result<Pending> {
    let mut tx = services.pool.begin().await?;
    sqlx::query!("SELECT id FROM users WHERE id = $1 FOR UPDATE", user_id).fetch_one(&mut *tx).await?;
    if current_subscription(&mut tx, user_id).await?.is_some() {
        return Err(Error::conflict("You already have a subscription. Change its plan instead of subscribing again."));
    }
    let pending = sqlx::query!(
        r#"SELECT id, plan_id, status, url, stripe_checkout_session_id,
                  coalesce(expires_at > now() + interval '1 minute', false) AS "fresh!"
           FROM subscription_checkouts WHERE consultant_id = $1 AND status IN ('creating', 'open')"#,
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let decision = match pending {
        Some(p) if p.plan_id == plan_id && p.status == "open" && p.fresh => {
            Pending::Open(p.url.ok_or_else(|| anyhow::anyhow!("open subscription checkout {} has no URL", p.id))?)
        }
        Some(p) if p.plan_id == plan_id && p.status == "creating" => Pending::Claimed(p.id),
        Some(p) => {
            sqlx::query!("UPDATE subscription_checkouts SET status = 'closed' WHERE id = $1", p.id)
                .execute(&mut *tx)
                .await?;
            Pending::Replace { stripe_session_id: p.stripe_checkout_session_id }
        }
        None => {
            let id = Uuid::new_v4();
            sqlx::query!(
                "INSERT INTO subscription_checkouts (id, consultant_id, plan_id) VALUES ($1, $2, $3)",
                id,
                user_id,
                plan_id
            )
            .execute(&mut *tx)
            .await?;
            Pending::Claimed(id)
        }
    };
    tx.commit().await?;
    Ok(decision)
}

async fn create_session(
    services: &Services,
    consultant: &Principal,
    plan: &plans::Plan,
    customer: &super::Customer,
    claim_id: Uuid,
) -> Result<String> {
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(plan.stripe_price_id.clone());
    item.quantity = Some(1);
    let mut subscription = CreateCheckoutSessionSubscriptionData::new();
    if plan.trial_days > 0 {
        subscription.trial_period_days = u32::try_from(plan.trial_days).ok();
    }
    subscription.metadata = Some([("remit_user".to_owned(), consultant.user_id.to_string())].into_iter().collect());
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer.stripe_customer_id.as_str())
        .line_items(vec![item])
        .subscription_data(subscription)
        .client_reference_id(consultant.user_id.to_string())
        .success_url(services.settings.public_url(&format!("{RETURN_PATH}?checkout={{CHECKOUT_SESSION_ID}}")))
        .cancel_url(services.settings.public_url(RETURN_PATH))
        .customize()
        .request_strategy(idempotent(format!("remit-subscribe-{claim_id}"))?)
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "start the subscription"))?;
    let url = session.url.clone().ok_or_else(|| anyhow::anyhow!("Checkout session {} has no URL", session.id))?;
    let expires_at = chrono::DateTime::from_timestamp(session.expires_at, 0);
    sqlx::query!(
        "UPDATE subscription_checkouts SET status = 'open', stripe_checkout_session_id = $2, url = $3, expires_at = $4
         WHERE id = $1 AND status = 'creating'",
        claim_id,
        session.id.as_str(),
        url,
        expires_at,
    )
    .execute(&services.pool)
    .await?;
    Ok(url)
}

/// After Checkout: reads the session's subscription from Stripe and stores it, so the page shows
/// the result at once rather than when the webhook arrives. A session of someone else is 404.
pub async fn complete_checkout(services: &Services, consultant: &Principal, session_id: &str) -> Result<()> {
    if !session_id.starts_with("cs_") || session_id.len() > 255 {
        return Err(Error::NotFound("checkout session"));
    }
    let mut conn = services.pool.acquire().await?;
    let customer = customer_of(&mut conn, consultant.user_id).await?.ok_or(Error::NotFound("checkout session"))?;
    let session = RetrieveCheckoutSession::new(session_id)
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "confirm the subscription"))?;
    if session.customer.as_ref().map(|c| c.id().as_str()) != Some(customer.stripe_customer_id.as_str()) {
        return Err(Error::NotFound("checkout session"));
    }
    let Some(subscription) = session.subscription else { return Ok(()) };
    let sub = refresh(services, subscription.id().as_str()).await?;
    // The first invoice too, so the page is complete before its webhook arrives.
    if let Some(invoice) = sub.latest_invoice.as_ref().and_then(|i| i.id().clone()) {
        let as_of = Utc::now();
        let (invoice, intents) = super::read_invoice(services.stripe.platform(), invoice.as_str()).await?;
        let mut conn = services.pool.acquire().await?;
        super::store_invoice(&mut conn, &invoice, &intents, as_of).await?;
    }
    Ok(())
}

/// Reads a subscription from Stripe and stores it.
pub(super) async fn refresh(services: &Services, stripe_subscription_id: &str) -> Result<stripe_shared::Subscription> {
    let as_of = Utc::now();
    let sub = RetrieveSubscription::new(stripe_subscription_id)
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "read the subscription"))?;
    let mut conn = services.pool.acquire().await?;
    store_subscription(&mut conn, &sub, as_of).await?;
    Ok(sub)
}

/// The consultant's current subscription in Stripe, after checking it is theirs.
async fn own_subscription(services: &Services, consultant: &Principal) -> Result<String> {
    let mut conn = services.pool.acquire().await?;
    current_subscription(&mut conn, consultant.user_id).await?.map(|(_, stripe_id)| stripe_id).ok_or_else(not_yours)
}

async fn update(services: &Services, request: UpdateSubscription, what: &str) -> Result<()> {
    let as_of = Utc::now();
    let sub = request.send(services.stripe.platform().client()).await.map_err(|e| upstream(e, what))?;
    let mut conn = services.pool.acquire().await?;
    store_subscription(&mut conn, &sub, as_of).await?;
    Ok(())
}

/// Cancels at the end of the paid period (`cancel = true`) or undoes that (`false`).
pub async fn set_cancel_at_period_end(services: &Services, consultant: &Principal, cancel: bool) -> Result<()> {
    let id = own_subscription(services, consultant).await?;
    let what = if cancel { "cancel the subscription" } else { "resume the subscription" };
    update(services, UpdateSubscription::new(id.as_str()).cancel_at_period_end(cancel), what).await
}

/// Moves the subscription to another plan from now on; Stripe prorates the difference on the
/// next invoice.
pub async fn change_plan(services: &Services, consultant: &Principal, plan_id: Uuid) -> Result<()> {
    let plan = plans::get(services, plan_id).await?;
    if !plan.active {
        return Err(Error::invalid("plan", "This plan is no longer offered; choose another."));
    }
    let id = own_subscription(services, consultant).await?;
    let current = RetrieveSubscription::new(id.as_str())
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "read the subscription"))?;
    let item = current.items.data.first().ok_or_else(|| anyhow::anyhow!("subscription {id} has no items"))?;
    if item.price.id.as_str() == plan.stripe_price_id {
        return Err(Error::invalid("plan", "You are already on this plan."));
    }
    let mut change = UpdateSubscriptionItems::new();
    change.id = Some(item.id.to_string());
    change.price = Some(plan.stripe_price_id.clone());
    let request = UpdateSubscription::new(id.as_str())
        .items(vec![change])
        .proration_behavior(stripe_billing::subscription::UpdateSubscriptionProrationBehavior::CreateProrations);
    update(services, request, "change the plan").await
}

/// What the consultant's billing page shows.
#[derive(Debug, Clone)]
pub struct Overview {
    pub subscription: Option<SubscriptionView>,
    pub invoices: Vec<InvoiceView>,
}

#[derive(Debug, Clone)]
pub struct SubscriptionView {
    pub plan_id: Option<Uuid>,
    pub plan_name: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub interval: String,
    pub current_period_end: Option<DateTime<Utc>>,
    pub trial_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub ended_at: Option<DateTime<Utc>>,
}

impl SubscriptionView {
    /// When the next invoice is due and for how much; none when the subscription is ending.
    pub fn next_invoice(&self) -> Option<(DateTime<Utc>, i64)> {
        if self.cancel_at_period_end || !super::LIVE_STATUSES.contains(&self.status.as_str()) {
            return None;
        }
        self.current_period_end.map(|at| (at, self.amount))
    }
}

#[derive(Debug, Clone)]
pub struct InvoiceView {
    pub number: Option<String>,
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub created: DateTime<Utc>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
}

/// The consultant's latest subscription (live or ended) and their invoices, newest first.
pub async fn overview(services: &Services, consultant_id: Uuid) -> Result<Overview> {
    let subscription = sqlx::query!(
        r#"SELECT s.plan_id, COALESCE(p.name, 'Former plan') AS "plan_name!", s.status, s.amount, s.currency, s."interval",
                  s.current_period_end, s.trial_end, s.cancel_at_period_end, s.ended_at
           FROM subscriptions s LEFT JOIN plans p ON p.id = s.plan_id
           WHERE s.user_id = $1 ORDER BY (s.status = ANY($2)) DESC, s.started_at DESC LIMIT 1"#,
        consultant_id,
        &super::LIVE_STATUSES.map(str::to_owned)[..],
    )
    .fetch_optional(&services.pool)
    .await?
    .map(|r| SubscriptionView {
        plan_id: r.plan_id,
        plan_name: r.plan_name,
        status: r.status,
        amount: r.amount,
        currency: r.currency,
        interval: r.interval,
        current_period_end: r.current_period_end,
        trial_end: r.trial_end,
        cancel_at_period_end: r.cancel_at_period_end,
        ended_at: r.ended_at,
    });
    let invoices = sqlx::query_as!(
        InvoiceView,
        r#"SELECT i.number, i.status, i.amount_due, i.amount_paid, i.currency, i.stripe_created_at AS created,
                  i.hosted_invoice_url, i.invoice_pdf
           FROM invoices i JOIN stripe_customers c ON c.id = i.customer_id
           WHERE c.user_id = $1 ORDER BY i.stripe_created_at DESC, i.created_at DESC LIMIT 100"#,
        consultant_id
    )
    .fetch_all(&services.pool)
    .await?;
    Ok(Overview { subscription, invoices })
}
