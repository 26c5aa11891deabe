//! Stripe's billing events, as the webhook intake hands them over. Each event names an object;
//! its current state is read from Stripe first ([`read_current`]), outside the intake's
//! transaction, and stored inside it ([`apply`]) with the time of that read. The dunning and
//! trial emails are queued in the same transaction, so each event sends at most one.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use stripe_billing::subscription::RetrieveSubscription;
use stripe_payment::payment_method::RetrievePaymentMethod;

use super::{payment_methods, store_invoice, store_subscription};
use crate::{
    Services,
    error::Result,
    mail::{self, OutgoingEmail},
    money::format_minor,
    stripe::{events::Envelope, upstream},
};

/// The billing event types Remit acts on.
pub const HANDLED: [&str; 7] = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "payment_method.attached",
];

/// The current state of the object an event is about, read from Stripe.
pub enum Current {
    Subscription(Box<stripe_shared::Subscription>),
    Invoice { invoice: Box<stripe_shared::Invoice>, intents: Vec<stripe_shared::PaymentIntent> },
    PaymentMethod(Box<stripe_shared::PaymentMethod>),
}

/// A read of an object and when it was made.
pub struct Read {
    pub current: Current,
    pub as_of: DateTime<Utc>,
}

/// Reads what a billing event (one of [`HANDLED`], routed here by
/// [`crate::stripe_webhooks::route`]) is about. `None` when it names no object.
pub async fn read_current(services: &Services, envelope: &Envelope) -> Result<Option<Read>> {
    let Some(id) = envelope.data.object.get("id").and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let stripe = services.stripe.mode(envelope.livemode)?;
    let client = stripe.client();
    let as_of = Utc::now();
    let current = match envelope.kind.split('.').next() {
        Some("customer") => Current::Subscription(Box::new(
            RetrieveSubscription::new(id).send(client).await.map_err(|e| upstream(e, "read a subscription"))?,
        )),
        Some("invoice") => {
            let (invoice, intents) = super::read_invoice(stripe, id).await?;
            Current::Invoice { invoice: Box::new(invoice), intents }
        }
        _ => Current::PaymentMethod(Box::new(
            RetrievePaymentMethod::new(id).send(client).await.map_err(|e| upstream(e, "read a payment method"))?,
        )),
    };
    Ok(Some(Read { current, as_of }))
}

/// Stores what was read, and queues the emails the event calls for.
pub async fn apply(conn: &mut PgConnection, services: &Services, envelope: &Envelope, read: &Read) -> Result<()> {
    match &read.current {
        Current::Subscription(sub) => {
            let stored = store_subscription(conn, sub, read.as_of).await?;
            if envelope.kind == "customer.subscription.trial_will_end"
                && stored.is_some()
                && sub.status == stripe_shared::SubscriptionStatus::Trialing
            {
                trial_ending_email(conn, services, sub).await?;
            }
        }
        Current::Invoice { invoice, intents } => {
            let stored = store_invoice(conn, invoice, intents, read.as_of).await?;
            let still_open = invoice.status == Some(stripe_shared::InvoiceStatus::Open);
            if envelope.kind == "invoice.payment_failed" && stored.is_some() && still_open {
                payment_failed_email(conn, services, invoice, intents).await?;
            }
        }
        Current::PaymentMethod(pm) => payment_methods::store(conn, pm).await?,
    }
    Ok(())
}

struct Recipient {
    email: String,
    display_name: String,
    tenant_id: Option<uuid::Uuid>,
}

async fn recipient(conn: &mut PgConnection, stripe_customer: &str) -> Result<Option<Recipient>> {
    Ok(sqlx::query_as!(
        Recipient,
        "SELECT u.email, u.display_name, u.tenant_id FROM stripe_customers c JOIN users u ON u.id = c.user_id
         WHERE c.stripe_customer_id = $1",
        stripe_customer
    )
    .fetch_optional(conn)
    .await?)
}

fn date(ts: i64) -> String {
    super::timestamp(ts).format("%-d %B %Y").to_string()
}

async fn trial_ending_email(
    conn: &mut PgConnection,
    services: &Services,
    sub: &stripe_shared::Subscription,
) -> Result<()> {
    let Some(to) = recipient(conn, sub.customer.id().as_str()).await? else { return Ok(()) };
    let Some(trial_end) = sub.trial_end else { return Ok(()) };
    let item = sub.items.data.first();
    let price =
        item.map(|i| format_minor(i.price.unit_amount.unwrap_or(0), &i.price.currency.to_string())).unwrap_or_default();
    let interval = item.and_then(|i| i.price.recurring.as_ref()).map_or("month", |r| r.interval.as_str());
    let has_card = sub.default_payment_method.is_some()
        || sqlx::query_scalar!(
            "SELECT default_payment_method IS NOT NULL FROM stripe_customers WHERE stripe_customer_id = $1",
            sub.customer.id().as_str()
        )
        .fetch_optional(&mut *conn)
        .await?
        .flatten()
        .unwrap_or(false);
    let card_line = if has_card {
        "Your saved card will be charged then; nothing else is needed.".to_owned()
    } else {
        format!(
            "Add a card before then to keep your subscription: {}",
            services.settings.public_url(payment_methods::RETURN_PATH)
        )
    };
    mail::enqueue(
        conn,
        OutgoingEmail {
            tenant_id: to.tenant_id,
            to: to.email,
            subject: "Your Remit trial ends in 3 days".into(),
            text_body: format!(
                "Hello {},\n\nYour free trial ends on {}. From then on your subscription costs {price} per {interval}.\n\n{card_line}\n\n\
                 You can change or cancel your plan at any time: {}\n",
                to.display_name,
                date(trial_end),
                services.settings.public_url(super::subscriptions::RETURN_PATH),
            ),
            attachments: vec![],
            links: None,
        },
    )
    .await?;
    Ok(())
}

async fn payment_failed_email(
    conn: &mut PgConnection,
    services: &Services,
    invoice: &stripe_shared::Invoice,
    intents: &[stripe_shared::PaymentIntent],
) -> Result<()> {
    let Some(customer) = invoice.customer.as_ref() else { return Ok(()) };
    let Some(to) = recipient(conn, customer.id().as_str()).await? else { return Ok(()) };
    let reason = intents
        .iter()
        .max_by_key(|pi| pi.created)
        .and_then(|pi| pi.last_payment_error.as_ref())
        .and_then(|e| e.message.clone())
        .unwrap_or_else(|| "The payment was not accepted.".into());
    let retry = invoice.next_payment_attempt.map(|t| format!("We will try again on {}. ", date(t))).unwrap_or_default();
    mail::enqueue(
        conn,
        OutgoingEmail {
            tenant_id: to.tenant_id,
            to: to.email,
            subject: "Your Remit subscription payment failed".into(),
            text_body: format!(
                "Hello {},\n\nWe could not collect {} for your Remit subscription (invoice {}).\nReason: {reason}\n\n\
                 {retry}To pay now, add or choose a working card here; the invoice is paid as soon as you do:\n{}\n\n\
                 Until it is paid, your subscription is past due and payouts are paused.\n",
                to.display_name,
                format_minor(invoice.amount_due, &invoice.currency.to_string()),
                invoice.number.as_deref().unwrap_or("without a number"),
                services.settings.public_url(payment_methods::RETURN_PATH),
            ),
            attachments: vec![],
            links: None,
        },
    )
    .await?;
    Ok(())
}
