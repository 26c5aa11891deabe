//! Subscription billing: plans, consultants' subscriptions, invoices, payment attempts, saved
//! cards, dunning emails and billing metrics.
//!
//! Stripe is the source of truth. Remit stores what it last read of each object together with
//! when it read it (`state_as_of`); webhook events only say *that* something changed, and the
//! intake reads the object's current state from Stripe before storing it. A repeated, late or
//! reordered event therefore stores the same state as an in-order one, and an older read never
//! overwrites a newer one.

pub mod events;
pub mod metrics;
pub mod payment_methods;
pub mod plans;
pub mod subscriptions;

use chrono::{DateTime, TimeZone as _, Utc};
use sqlx::PgConnection;
use stripe_billing::invoice::RetrieveInvoice;
use stripe_client_core::StripeRequest as _;
use stripe_core::{
    customer::{CreateCustomer, ListCustomer},
    payment_intent::RetrievePaymentIntent,
};
use uuid::Uuid;

use crate::{
    Services,
    auth::Principal,
    error::{Error, Result},
    stripe::{StripeMode, idempotent, upstream},
};

/// Subscription statuses that still bill (and so may need the customer's attention).
pub const LIVE_STATUSES: [&str; 4] = ["trialing", "active", "past_due", "incomplete"];

/// A consultant counts as subscribed (for payout onboarding and the dashboards) while trialing
/// or active. `past_due` is not: payouts wait until the payment problem is fixed.
pub async fn is_subscribed(pool: &sqlx::PgPool, user_id: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE user_id = $1 AND status IN ('trialing', 'active'))",
        user_id
    )
    .fetch_one(pool)
    .await?
    .unwrap_or(false))
}

fn timestamp(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
}

/// The local record of a user's Stripe customer.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: Uuid,
    pub user_id: Uuid,
    pub stripe_customer_id: String,
    pub default_payment_method: Option<String>,
}

pub async fn customer_of(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<Customer>> {
    Ok(sqlx::query_as!(
        Customer,
        "SELECT id, user_id, stripe_customer_id, default_payment_method FROM stripe_customers WHERE user_id = $1",
        user_id
    )
    .fetch_optional(conn)
    .await?)
}

/// The user's Stripe customer, created on first use. The idempotency key is the user's id, so
/// two concurrent first uses get the same customer from Stripe and store it once. A customer
/// Stripe already holds for the user (one whose creation was answered after Stripe's 24-hour
/// idempotency window, or one set up ahead, e.g. on a test clock) is adopted rather than
/// duplicated: it carries the user's email and Remit's `remit_user` metadata.
pub async fn ensure_customer(services: &Services, user: &Principal) -> Result<Customer> {
    let mut conn = services.pool.acquire().await?;
    if let Some(customer) = customer_of(&mut conn, user.user_id).await? {
        return Ok(customer);
    }
    drop(conn);
    let client = services.stripe.platform().client();
    let user_id = user.user_id.to_string();
    let existing = ListCustomer::new()
        .email(user.email.as_str())
        .limit(100)
        .send(client)
        .await
        .map_err(|e| upstream(e, "set up your billing profile"))?
        .data
        .into_iter()
        .find(|c| c.metadata.as_ref().and_then(|m| m.get("remit_user")) == Some(&user_id));
    let stripe_customer_id = match existing {
        Some(customer) => customer.id,
        None => {
            let mut metadata = vec![("remit_user".to_owned(), user_id.clone())];
            if let Some(tenant) = user.tenant_id {
                metadata.push(("remit_tenant".to_owned(), tenant.to_string()));
            }
            CreateCustomer::new()
                .email(user.email.as_str())
                .name(user.display_name.as_str())
                .metadata(metadata.into_iter().collect::<std::collections::HashMap<_, _>>())
                .customize()
                .request_strategy(idempotent(format!("remit-customer-{}", user.user_id))?)
                .send(client)
                .await
                .map_err(|e| upstream(e, "set up your billing profile"))?
                .id
        }
    };
    let mut conn = services.pool.acquire().await?;
    sqlx::query!(
        "INSERT INTO stripe_customers (id, user_id, stripe_customer_id, email) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO NOTHING",
        Uuid::new_v4(),
        user.user_id,
        stripe_customer_id.as_str(),
        user.email,
    )
    .execute(&mut *conn)
    .await?;
    customer_of(&mut conn, user.user_id).await?.ok_or_else(|| anyhow::anyhow!("customer vanished after insert").into())
}

/// Stores a subscription as read from Stripe at `as_of`, unless a later read is already stored.
/// Subscriptions of customers Remit did not create are ignored. Returns the local id.
pub async fn store_subscription(
    conn: &mut PgConnection,
    sub: &stripe_shared::Subscription,
    as_of: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    let stripe_customer = sub.customer.id().as_str();
    let Some(owner) = sqlx::query!(
        "SELECT c.id, c.user_id, u.tenant_id FROM stripe_customers c JOIN users u ON u.id = c.user_id
         WHERE c.stripe_customer_id = $1",
        stripe_customer
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        tracing::info!(subscription = %sub.id, customer = stripe_customer, "subscription of an unknown customer ignored");
        return Ok(None);
    };
    let item = sub.items.data.first().ok_or_else(|| anyhow::anyhow!("subscription {} has no items", sub.id))?;
    let price_id = item.price.id.as_str();
    let plan_id = sqlx::query_scalar!("SELECT id FROM plans WHERE stripe_price_id = $1", price_id)
        .fetch_optional(&mut *conn)
        .await?;
    let amount = item.price.unit_amount.unwrap_or(0) * i64::try_from(item.quantity.unwrap_or(1)).unwrap_or(1);
    let interval = item.price.recurring.as_ref().map_or("month", |r| r.interval.as_str()).to_owned();
    let id = sqlx::query_scalar!(
        r#"INSERT INTO subscriptions (id, stripe_subscription_id, customer_id, user_id, tenant_id, plan_id, stripe_price_id,
               amount, currency, "interval", status, current_period_start, current_period_end, trial_end,
               cancel_at_period_end, canceled_at, ended_at, started_at, latest_invoice, state_as_of)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
           ON CONFLICT (stripe_subscription_id) DO UPDATE SET
               plan_id = EXCLUDED.plan_id, stripe_price_id = EXCLUDED.stripe_price_id, amount = EXCLUDED.amount,
               currency = EXCLUDED.currency, "interval" = EXCLUDED."interval", status = EXCLUDED.status,
               current_period_start = EXCLUDED.current_period_start, current_period_end = EXCLUDED.current_period_end,
               trial_end = EXCLUDED.trial_end, cancel_at_period_end = EXCLUDED.cancel_at_period_end,
               canceled_at = EXCLUDED.canceled_at, ended_at = EXCLUDED.ended_at,
               latest_invoice = EXCLUDED.latest_invoice, state_as_of = EXCLUDED.state_as_of, updated_at = now()
           WHERE subscriptions.state_as_of <= EXCLUDED.state_as_of
           RETURNING id"#,
        Uuid::new_v4(),
        sub.id.as_str(),
        owner.id,
        owner.user_id,
        owner.tenant_id,
        plan_id,
        price_id,
        amount,
        sub.currency.to_string(),
        interval,
        sub.status.as_str(),
        timestamp(item.current_period_start),
        timestamp(item.current_period_end),
        sub.trial_end.map(timestamp),
        sub.cancel_at_period_end,
        sub.canceled_at.map(timestamp),
        sub.ended_at.map(timestamp),
        timestamp(sub.start_date),
        sub.latest_invoice.as_ref().and_then(|i| i.id().as_ref().map(|id| id.to_string())),
        as_of,
    )
    .fetch_optional(&mut *conn)
    .await?;
    // The consultant's subscription Checkout did its job: the next subscribe starts afresh.
    sqlx::query!(
        "UPDATE subscription_checkouts SET status = 'closed' WHERE consultant_id = $1 AND status <> 'closed'",
        owner.user_id
    )
    .execute(&mut *conn)
    .await?;
    match id {
        Some(id) => Ok(Some(id)),
        // A later read is stored: report the existing row.
        None => {
            Ok(sqlx::query_scalar!("SELECT id FROM subscriptions WHERE stripe_subscription_id = $1", sub.id.as_str())
                .fetch_optional(&mut *conn)
                .await?)
        }
    }
}

/// Stores an invoice and its payment attempts as read from Stripe at `as_of`. Returns the local
/// invoice id, or `None` for invoices of customers Remit did not create.
pub async fn store_invoice(
    conn: &mut PgConnection,
    invoice: &stripe_shared::Invoice,
    intents: &[stripe_shared::PaymentIntent],
    as_of: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    let invoice_id = invoice.id.as_ref().ok_or_else(|| anyhow::anyhow!("an invoice without an id"))?.as_str();
    let Some(stripe_customer) = invoice.customer.as_ref().map(|c| c.id().as_str().to_owned()) else {
        return Ok(None);
    };
    let Some(customer) = sqlx::query!(
        "SELECT c.id, u.tenant_id FROM stripe_customers c JOIN users u ON u.id = c.user_id WHERE c.stripe_customer_id = $1",
        stripe_customer
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let subscription = invoice
        .parent
        .as_ref()
        .and_then(|p| p.subscription_details.as_ref())
        .map(|d| d.subscription.id().as_str().to_owned());
    let subscription_id = match &subscription {
        Some(s) => {
            sqlx::query_scalar!("SELECT id FROM subscriptions WHERE stripe_subscription_id = $1", s)
                .fetch_optional(&mut *conn)
                .await?
        }
        None => None,
    };
    let status = invoice.status.as_ref().map_or("draft", |s| s.as_str());
    sqlx::query!(
        "INSERT INTO invoices (id, stripe_invoice_id, customer_id, subscription_id, number, status, amount_due, amount_paid,
             currency, attempt_count, hosted_invoice_url, invoice_pdf, period_start, period_end, due_date,
             next_payment_attempt, paid_at, stripe_created_at, state_as_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         ON CONFLICT (stripe_invoice_id) DO UPDATE SET
             subscription_id = COALESCE(EXCLUDED.subscription_id, invoices.subscription_id), number = EXCLUDED.number,
             status = EXCLUDED.status, amount_due = EXCLUDED.amount_due, amount_paid = EXCLUDED.amount_paid,
             attempt_count = EXCLUDED.attempt_count, hosted_invoice_url = EXCLUDED.hosted_invoice_url,
             invoice_pdf = EXCLUDED.invoice_pdf, due_date = EXCLUDED.due_date,
             next_payment_attempt = EXCLUDED.next_payment_attempt, paid_at = EXCLUDED.paid_at,
             state_as_of = EXCLUDED.state_as_of
         WHERE invoices.state_as_of <= EXCLUDED.state_as_of",
        Uuid::new_v4(),
        invoice_id,
        customer.id,
        subscription_id,
        invoice.number,
        status,
        invoice.amount_due,
        invoice.amount_paid,
        invoice.currency.to_string(),
        i32::try_from(invoice.attempt_count).unwrap_or(i32::MAX),
        invoice.hosted_invoice_url,
        invoice.invoice_pdf,
        timestamp(invoice.period_start),
        timestamp(invoice.period_end),
        invoice.due_date.map(timestamp),
        invoice.next_payment_attempt.map(timestamp),
        invoice.status_transitions.paid_at.map(timestamp),
        timestamp(invoice.created),
        as_of,
    )
    .execute(&mut *conn)
    .await?;
    let local_invoice = sqlx::query_scalar!("SELECT id FROM invoices WHERE stripe_invoice_id = $1", invoice_id)
        .fetch_one(&mut *conn)
        .await?;
    for intent in intents {
        store_payment_attempt(conn, customer.id, customer.tenant_id, subscription_id, local_invoice, intent).await?;
    }
    Ok(Some(local_invoice))
}

/// One attempt to collect an invoice; its outcome also feeds the payment dashboards.
async fn store_payment_attempt(
    conn: &mut PgConnection,
    customer_id: Uuid,
    tenant_id: Option<Uuid>,
    subscription_id: Option<Uuid>,
    invoice_id: Uuid,
    intent: &stripe_shared::PaymentIntent,
) -> Result<()> {
    use stripe_shared::PaymentIntentStatus as S;
    let error = intent.last_payment_error.as_deref();
    let failure_code =
        error.and_then(|e| e.decline_code.clone().or_else(|| e.code.as_ref().map(|c| c.as_str().to_owned())));
    let failure_message = error.and_then(|e| e.message.clone());
    let status = intent.status.as_str();
    sqlx::query!(
        "INSERT INTO payment_transactions (id, stripe_payment_intent_id, customer_id, subscription_id, invoice_id, amount,
             currency, status, payment_method_id, failure_code, failure_message, stripe_created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (stripe_payment_intent_id) DO UPDATE SET status = EXCLUDED.status,
             payment_method_id = EXCLUDED.payment_method_id, failure_code = EXCLUDED.failure_code,
             failure_message = EXCLUDED.failure_message, updated_at = now()",
        Uuid::new_v4(),
        intent.id.as_str(),
        customer_id,
        subscription_id,
        invoice_id,
        intent.amount,
        intent.currency.to_string(),
        status,
        intent.payment_method.as_ref().map(|p| p.id().to_string()),
        failure_code,
        failure_message,
        timestamp(intent.created),
    )
    .execute(&mut *conn)
    .await?;
    let succeeded = match intent.status {
        S::Succeeded => true,
        S::RequiresPaymentMethod | S::Canceled if error.is_some() => false,
        // Still in progress: no outcome yet.
        _ => return Ok(()),
    };
    sqlx::query!(
        "INSERT INTO payment_outcomes (id, tenant_id, livemode, source, succeeded, amount, currency, reference, failure_code, occurred_at)
         VALUES ($1, $2, $3, 'subscription', $4, $5, $6, $7, $8, $9)
         ON CONFLICT (reference) DO UPDATE SET succeeded = EXCLUDED.succeeded, failure_code = EXCLUDED.failure_code",
        Uuid::new_v4(),
        tenant_id,
        intent.livemode,
        succeeded,
        intent.amount,
        intent.currency.to_string(),
        intent.id.as_str(),
        failure_code,
        timestamp(intent.created),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The subscription the user is billed for now (the newest that still bills), if any.
pub async fn current_subscription(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<(Uuid, String)>> {
    Ok(sqlx::query!(
        "SELECT id, stripe_subscription_id FROM subscriptions
         WHERE user_id = $1 AND status = ANY($2) ORDER BY started_at DESC LIMIT 1",
        user_id,
        &LIVE_STATUSES.map(str::to_owned)[..],
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.id, r.stripe_subscription_id)))
}

fn not_yours() -> Error {
    Error::NotFound("subscription")
}

/// An invoice and the PaymentIntents of its payment attempts.
async fn read_invoice(
    stripe: &StripeMode,
    id: &str,
) -> Result<(stripe_shared::Invoice, Vec<stripe_shared::PaymentIntent>)> {
    let client = stripe.client();
    let invoice = RetrieveInvoice::new(id)
        .expand(vec!["payments".to_owned()])
        .send(client)
        .await
        .map_err(|e| upstream(e, "read an invoice"))?;
    let mut intents = Vec::new();
    for payment in invoice.payments.as_ref().map(|p| p.data.as_slice()).unwrap_or_default() {
        if let Some(pi) = &payment.payment.payment_intent {
            intents.push(
                RetrievePaymentIntent::new(pi.id().clone())
                    .send(client)
                    .await
                    .map_err(|e| upstream(e, "read an invoice payment"))?,
            );
        }
    }
    Ok((invoice, intents))
}
