//! A consultant's saved cards: added through a setup-mode Checkout session (no card data ever
//! reaches Remit), made the default, removed. Making a card the default also retries a
//! subscription's unpaid invoice at once, which is how a failed payment is recovered.

use stripe_billing::{
    invoice::{ListInvoice, PayInvoice},
    subscription::UpdateSubscription,
};
use stripe_checkout::checkout_session::{CreateCheckoutSession, RetrieveCheckoutSession};
use stripe_client_core::StripeRequest as _;
use stripe_core::customer::{UpdateCustomer, UpdateCustomerInvoiceSettings};
use stripe_payment::payment_method::{DetachPaymentMethod, RetrievePaymentMethod};
use stripe_shared::CheckoutSessionMode;
use uuid::Uuid;

use super::{Customer, current_subscription, customer_of, ensure_customer, store_invoice, subscriptions};
use crate::{
    Services,
    auth::Principal,
    error::{Error, Result},
    stripe::{card_decline, idempotent, upstream},
};

pub const RETURN_PATH: &str = "/billing/payment-methods";

#[derive(Debug, Clone)]
pub struct SavedCard {
    pub id: Uuid,
    pub brand: String,
    pub last4: String,
    pub exp_month: i32,
    pub exp_year: i32,
    pub is_default: bool,
}

pub async fn list(services: &Services, user_id: Uuid) -> Result<Vec<SavedCard>> {
    Ok(sqlx::query_as!(
        SavedCard,
        r#"SELECT p.id, p.brand, p.last4, p.exp_month, p.exp_year,
                  (p.stripe_payment_method_id = c.default_payment_method) AS "is_default!"
           FROM payment_methods p JOIN stripe_customers c ON c.id = p.customer_id
           WHERE c.user_id = $1 ORDER BY p.created_at"#,
        user_id
    )
    .fetch_all(&services.pool)
    .await?)
}

/// A setup-mode Checkout session for adding a card; returns its URL.
pub async fn start_adding(services: &Services, consultant: &Principal) -> Result<String> {
    let customer = ensure_customer(services, consultant).await?;
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Setup)
        .customer(customer.stripe_customer_id.as_str())
        .currency(stripe_types::Currency::USD)
        .success_url(services.settings.public_url(&format!("{RETURN_PATH}?setup={{CHECKOUT_SESSION_ID}}")))
        .cancel_url(services.settings.public_url(RETURN_PATH))
        .customize()
        .request_strategy(idempotent(format!("remit-add-card-{}", Uuid::new_v4()))?)
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "start adding a card"))?;
    session.url.ok_or_else(|| anyhow::anyhow!("Checkout session {} has no URL", session.id).into())
}

/// Stores a card as Stripe reports it, if it is attached to one of Remit's customers; a card
/// no longer attached is removed.
pub(super) async fn store(conn: &mut sqlx::PgConnection, pm: &stripe_shared::PaymentMethod) -> Result<()> {
    let customer = pm.customer.as_ref().map(|c| c.id().as_str().to_owned());
    let (Some(customer), Some(card)) = (customer, pm.card.as_ref()) else {
        sqlx::query!("DELETE FROM payment_methods WHERE stripe_payment_method_id = $1", pm.id.as_str())
            .execute(&mut *conn)
            .await?;
        return Ok(());
    };
    sqlx::query!(
        "INSERT INTO payment_methods (id, customer_id, stripe_payment_method_id, brand, last4, exp_month, exp_year)
         SELECT $1, c.id, $3, $4, $5, $6, $7 FROM stripe_customers c WHERE c.stripe_customer_id = $2
         ON CONFLICT (stripe_payment_method_id) DO UPDATE SET customer_id = EXCLUDED.customer_id,
             exp_month = EXCLUDED.exp_month, exp_year = EXCLUDED.exp_year",
        Uuid::new_v4(),
        customer,
        pm.id.as_str(),
        card.display_brand.clone().unwrap_or_else(|| card.brand.clone()),
        card.last4,
        i32::try_from(card.exp_month).unwrap_or_default(),
        i32::try_from(card.exp_year).unwrap_or_default(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What came of a setup session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardAdded {
    /// The session was left before a card was saved.
    NotSaved,
    Saved,
    /// Saved and made the default; an unpaid invoice was retried with it.
    SavedAsDefault(Recovery),
}

/// After the setup session: stores the new card, and makes it the default when there is none
/// (or when an invoice is waiting for a working card).
pub async fn complete_adding(services: &Services, consultant: &Principal, session_id: &str) -> Result<CardAdded> {
    if !session_id.starts_with("cs_") || session_id.len() > 255 {
        return Err(Error::NotFound("checkout session"));
    }
    let mut conn = services.pool.acquire().await?;
    let customer = customer_of(&mut conn, consultant.user_id).await?.ok_or(Error::NotFound("checkout session"))?;
    let session = RetrieveCheckoutSession::new(session_id)
        .expand(vec!["setup_intent".to_owned()])
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "confirm the new card"))?;
    if session.customer.as_ref().map(|c| c.id().as_str()) != Some(customer.stripe_customer_id.as_str()) {
        return Err(Error::NotFound("checkout session"));
    }
    let Some(pm_id) = session
        .setup_intent
        .as_ref()
        .and_then(|si| si.as_object())
        .and_then(|si| si.payment_method.as_ref())
        .map(|pm| pm.id().to_string())
    else {
        return Ok(CardAdded::NotSaved);
    };
    let pm = RetrievePaymentMethod::new(pm_id.as_str())
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "read the new card"))?;
    store(&mut conn, &pm).await?;
    let waiting = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE customer_id = $1 AND status IN ('past_due', 'unpaid', 'incomplete'))",
        customer.id
    )
    .fetch_one(&mut *conn)
    .await?
    .unwrap_or(false);
    drop(conn);
    if customer.default_payment_method.is_none() || waiting {
        return make_default_card(services, consultant, &customer, &pm_id).await.map(CardAdded::SavedAsDefault);
    }
    Ok(CardAdded::Saved)
}

/// What happened to an unpaid invoice after the default card changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing was waiting to be paid.
    NothingDue,
    Paid {
        invoices: usize,
    },
    /// The new card was declined too; the message is the bank's reason.
    Declined(String),
}

/// The consultant's customer and one of their saved cards (its Stripe id); another's card is 404.
async fn own_card(services: &Services, consultant: &Principal, card_id: Uuid) -> Result<(Customer, String)> {
    let mut conn = services.pool.acquire().await?;
    let customer = customer_of(&mut conn, consultant.user_id).await?.ok_or(Error::NotFound("card"))?;
    let pm = sqlx::query_scalar!(
        "SELECT stripe_payment_method_id FROM payment_methods WHERE id = $1 AND customer_id = $2",
        card_id,
        customer.id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound("card"))?;
    Ok((customer, pm))
}

/// Makes a saved card the one invoices are charged to.
pub async fn set_default(services: &Services, consultant: &Principal, card_id: Uuid) -> Result<Recovery> {
    let (customer, pm) = own_card(services, consultant, card_id).await?;
    make_default_card(services, consultant, &customer, &pm).await
}

async fn make_default_card(
    services: &Services,
    consultant: &Principal,
    customer: &Customer,
    pm: &str,
) -> Result<Recovery> {
    let client = services.stripe.platform().client();
    let mut settings = UpdateCustomerInvoiceSettings::new();
    settings.default_payment_method = Some(pm.to_owned());
    UpdateCustomer::new(customer.stripe_customer_id.as_str())
        .invoice_settings(settings)
        .send(client)
        .await
        .map_err(|e| upstream(e, "change the default card"))?;
    sqlx::query!(
        "UPDATE stripe_customers SET default_payment_method = $2, updated_at = now() WHERE id = $1",
        customer.id,
        pm
    )
    .execute(&services.pool)
    .await?;
    let mut conn = services.pool.acquire().await?;
    let Some((_, subscription)) = current_subscription(&mut conn, consultant.user_id).await? else {
        return Ok(Recovery::NothingDue);
    };
    drop(conn);
    // A subscription's own default card outranks the customer's, so both are set.
    UpdateSubscription::new(subscription.as_str())
        .default_payment_method(pm)
        .send(client)
        .await
        .map_err(|e| upstream(e, "change the subscription's card"))?;
    let recovery = pay_open_invoices(services, customer).await?;
    subscriptions::refresh(services, &subscription).await?;
    Ok(recovery)
}

/// Pays the customer's open subscription invoices now with the default card, rather than
/// waiting for Stripe's next automatic retry.
async fn pay_open_invoices(services: &Services, customer: &Customer) -> Result<Recovery> {
    let client = services.stripe.platform().client();
    let open = ListInvoice::new()
        .customer(customer.stripe_customer_id.as_str())
        .status(stripe_shared::InvoiceStatus::Open)
        .send(client)
        .await
        .map_err(|e| upstream(e, "look up unpaid invoices"))?;
    let mut paid = 0;
    for invoice in open.data {
        let Some(id) = invoice.id.clone() else { continue };
        let as_of = chrono::Utc::now();
        match PayInvoice::new(id.as_str()).send(client).await {
            Ok(invoice) => {
                let mut conn = services.pool.acquire().await?;
                store_invoice(&mut conn, &invoice, &[], as_of).await?;
                paid += 1;
            }
            Err(err) => {
                if let Some(message) = card_decline(&err) {
                    return Ok(Recovery::Declined(message));
                }
                return Err(upstream(err, "pay the unpaid invoice"));
            }
        }
    }
    Ok(if paid == 0 { Recovery::NothingDue } else { Recovery::Paid { invoices: paid } })
}

/// Removes a saved card. The default card cannot be removed while a subscription bills.
pub async fn remove(services: &Services, consultant: &Principal, card_id: Uuid) -> Result<()> {
    let (customer, pm) = own_card(services, consultant, card_id).await?;
    let mut conn = services.pool.acquire().await?;
    if customer.default_payment_method.as_deref() == Some(pm.as_str())
        && current_subscription(&mut conn, consultant.user_id).await?.is_some()
    {
        return Err(Error::conflict("This card pays your subscription. Make another card the default first."));
    }
    drop(conn);
    DetachPaymentMethod::new(pm.as_str())
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "remove the card"))?;
    sqlx::query!("DELETE FROM payment_methods WHERE id = $1", card_id).execute(&services.pool).await?;
    sqlx::query!(
        "UPDATE stripe_customers SET default_payment_method = NULL, updated_at = now()
         WHERE id = $1 AND default_payment_method = $2",
        customer.id,
        pm
    )
    .execute(&services.pool)
    .await?;
    Ok(())
}
