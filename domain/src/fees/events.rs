//! Stripe's events about fee payments, routed here by the metadata Remit gives a fee's Checkout
//! Session and payment (refunds and disputes once their payment is read). As for lots, the
//! object's current state is read from Stripe first (outside the transaction), so repeated,
//! concurrent and reordered events end in the same state: the order is unique per fee request,
//! and only the event that makes it tells anyone; refunds are the `refunds` module's, as lots'.

use sqlx::PgConnection;
use stripe_shared::{CheckoutSessionPaymentStatus, CheckoutSessionStatus, PaymentIntentStatus};
use uuid::Uuid;

use crate::{
    Services,
    checkout::events::{
        ChargeState, Failure, OrderCharge, Settlement, follow_charge, record_dispute, retrieve_intent, retrieve_session,
    },
    error::Result,
    mail::{self, OutgoingEmail},
    money::{Money, format_minor},
    receipts::IssueReceipt,
    refunds,
    security::{self, NewEvent, Severity},
    stripe::events::Envelope,
    tenant_webhooks::{
        self,
        events::{FeeFailed, FeePaid, TenantEvent},
    },
};

/// The metadata key (on the Checkout Session and its payment) naming the fee's Checkout page.
pub const METADATA_KEY: &str = "fee_checkout";

/// The types a fee's payment is followed through.
pub const HANDLED: [&str; 6] = [
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
];

/// Whether an event's object (a Checkout Session or a PaymentIntent) is a fee's.
pub fn is_fee(object: &serde_json::Value) -> bool {
    object["metadata"][METADATA_KEY].is_string()
}

/// Whether a payment read from Stripe is a fee's.
pub fn is_fee_payment(intent: &stripe_shared::PaymentIntent) -> bool {
    intent.metadata.contains_key(METADATA_KEY)
}

pub enum Current {
    Session(Box<stripe_shared::CheckoutSession>),
    /// A payment, and for `payment_intent.payment_failed` the failure the event reports.
    Intent {
        intent: Box<stripe_shared::PaymentIntent>,
        failure: Option<Failure>,
    },
    /// A refund or dispute of a fee's payment.
    Charge(ChargeState),
}

/// Reads what a fee's event is about.
pub async fn read_current(services: &Services, envelope: &Envelope) -> Result<Option<Current>> {
    let object = &envelope.data.object;
    let Some(id) = object["id"].as_str() else { return Ok(None) };
    let stripe = services.stripe.mode(envelope.livemode)?;
    Ok(Some(if envelope.kind.starts_with("checkout.") {
        Current::Session(Box::new(retrieve_session(stripe, id).await?))
    } else {
        let failure = (envelope.kind == "payment_intent.payment_failed").then(|| Failure::from_event_object(object));
        Current::Intent { intent: Box::new(retrieve_intent(stripe, id).await?), failure }
    }))
}

fn checkout_of(metadata: &std::collections::HashMap<String, String>) -> Option<Uuid> {
    metadata.get(METADATA_KEY).and_then(|id| id.parse().ok())
}

pub async fn apply(conn: &mut PgConnection, services: &Services, envelope: &Envelope, current: &Current) -> Result<()> {
    match current {
        Current::Session(session) => {
            let Some(checkout) = session.metadata.as_ref().and_then(checkout_of) else { return Ok(()) };
            let intent = session.payment_intent.as_ref().and_then(|p| p.as_object());
            match intent {
                Some(intent) if session.payment_status == CheckoutSessionPaymentStatus::Paid => {
                    paid(conn, services, checkout, intent).await?;
                }
                _ if session.status == Some(CheckoutSessionStatus::Expired) => {
                    sqlx::query!(
                        "UPDATE fee_checkouts SET status = 'expired' WHERE id = $1 AND status = 'open'",
                        checkout
                    )
                    .execute(&mut *conn)
                    .await?;
                }
                _ if envelope.kind == "checkout.session.async_payment_failed" => {
                    let failure = intent.map(Failure::from_intent).unwrap_or_default();
                    failed(conn, checkout, &failure).await?;
                }
                _ => {}
            }
        }
        Current::Intent { intent, failure } => {
            let Some(checkout) = checkout_of(&intent.metadata) else { return Ok(()) };
            if let Some(failure) = failure {
                failed(conn, checkout, failure).await?;
            }
            if intent.status == PaymentIntentStatus::Succeeded {
                paid(conn, services, checkout, intent).await?;
            }
        }
        Current::Charge(state) => charged_back(conn, services, state).await?,
    }
    Ok(())
}

/// A refund or dispute of a fee's payment: the order follows the charge (however the events were
/// ordered, it exists first), every refund the charge lists is recorded (so a lost refund event
/// is made good by any later one), and a new dispute alerts the platform's and tenant's admins.
async fn charged_back(conn: &mut PgConnection, services: &Services, state: &ChargeState) -> Result<()> {
    let ChargeState { intent, charge, dispute } = state;
    let Some(checkout) = checkout_of(&intent.metadata) else { return Ok(()) };
    if intent.status == PaymentIntentStatus::Succeeded {
        paid(conn, services, checkout, intent).await?;
    }
    let Some(order) = sqlx::query!(
        "SELECT o.id, o.status, o.refunded_amount, o.tenant_id, o.amount, o.currency, f.description,
                u.display_name AS client_name
         FROM orders o JOIN fee_requests f ON f.id = o.fee_request_id JOIN users u ON u.id = f.client_id
         WHERE o.stripe_payment_intent_id = $1 FOR UPDATE OF o",
        intent.id.as_str(),
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(());
    };
    let followed =
        OrderCharge { id: order.id, amount: order.amount, status: &order.status, refunded: order.refunded_amount };
    follow_charge(conn, followed, charge).await?;
    for refund in charge.refunds.iter().flat_map(|list| list.data.iter()) {
        refunds::record_stripe_refund(conn, order.id, refund).await?;
    }
    if let Some((dispute, created)) = dispute {
        record_dispute(conn, order.id, order.tenant_id, dispute).await?;
        if *created {
            let event = NewEvent {
                tenant_id: Some(order.tenant_id),
                dedupe_key: Some(format!("payment.disputed:{}", dispute.id)),
                ..NewEvent::new(
                    "payment.disputed",
                    Severity::High,
                    format!(
                        "{} disputed their payment of {} for the fee \"{}\" ({}).",
                        order.client_name,
                        format_minor(order.amount, &order.currency),
                        order.description,
                        dispute.reason
                    ),
                )
            };
            security::record(conn, event).await?;
        }
    }
    Ok(())
}

/// The client's payment went through: the order, exactly once per fee request, its receipt
/// queued, the consultant emailed and the tenant told (`fee.paid`). A fee cancelled while its page
/// was open is recorded as paid all the same: the money was taken.
async fn paid(
    conn: &mut PgConnection,
    services: &Services,
    checkout: Uuid,
    intent: &stripe_shared::PaymentIntent,
) -> Result<()> {
    let Some(fee) = sqlx::query!(
        "SELECT f.id, f.tenant_id, f.livemode, f.consultant_id, f.description, f.due_on, c.email AS consultant_email,
                u.display_name AS client_name
         FROM fee_checkouts k JOIN fee_requests f ON f.id = k.fee_request_id
         JOIN users c ON c.id = f.consultant_id JOIN users u ON u.id = f.client_id
         WHERE k.id = $1 FOR UPDATE OF f",
        checkout
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(());
    };
    let Settlement { paid_at, risk_level, risk_score, charge, application_fee_id, application_fee } =
        Settlement::of(intent);
    let order = sqlx::query_scalar!(
        "INSERT INTO orders (id, fee_request_id, fee_checkout_id, tenant_id, stripe_payment_intent_id, amount, currency,
             risk_level, risk_score, paid_at, stripe_charge_id, stripe_application_fee_id, application_fee)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (fee_request_id) DO NOTHING RETURNING id",
        Uuid::new_v4(),
        fee.id,
        checkout,
        fee.tenant_id,
        intent.id.as_str(),
        intent.amount,
        intent.currency.to_string(),
        risk_level,
        risk_score,
        paid_at,
        charge,
        application_fee_id,
        application_fee,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(order) = order else {
        // The fee was paid before, through another page: a second payment Stripe took (a page
        // paid as an earlier one's late event was still on its way) is never dropped silently.
        let first =
            sqlx::query_scalar!("SELECT stripe_payment_intent_id FROM orders WHERE fee_request_id = $1", fee.id)
                .fetch_one(&mut *conn)
                .await?;
        if first != intent.id.as_str() {
            let event = NewEvent {
                tenant_id: Some(fee.tenant_id),
                dedupe_key: Some(format!("fee.paid_twice:{}", intent.id)),
                ..NewEvent::new(
                    "fee.paid_twice",
                    Severity::High,
                    format!(
                        "{} paid the fee \"{}\" a second time ({}, payment {}; the first was {first}). Refund the \
                         second payment in Stripe.",
                        fee.client_name,
                        fee.description,
                        format_minor(intent.amount, &intent.currency.to_string()),
                        intent.id
                    ),
                )
            };
            security::record(conn, event).await?;
        }
        return Ok(());
    };
    sqlx::query!("UPDATE fee_requests SET status = 'paid', paid_at = $2 WHERE id = $1", fee.id, paid_at)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("UPDATE fee_checkouts SET status = 'complete' WHERE id = $1", checkout).execute(&mut *conn).await?;
    // Its other pages can no longer be used: the fee is paid.
    sqlx::query!(
        "UPDATE fee_checkouts SET status = 'expired' WHERE fee_request_id = $1 AND id <> $2 AND status = 'open'",
        fee.id,
        checkout
    )
    .execute(&mut *conn)
    .await?;
    crate::queue::enqueue(conn, IssueReceipt { order_id: order }).await?;
    let amount = Money::stored(intent.amount, &intent.currency.to_string())?;
    if let Some(level) = risk_level.as_deref().filter(|l| matches!(*l, "elevated" | "highest")) {
        let event = NewEvent {
            tenant_id: Some(fee.tenant_id),
            dedupe_key: Some(format!("payment.high_risk:{}", intent.id)),
            ..NewEvent::new(
                "payment.high_risk",
                Severity::High,
                format!(
                    "{} paid the fee \"{}\" ({}), but Stripe Radar rated the payment {level} risk. Review it in \
                     Stripe.",
                    fee.client_name,
                    fee.description,
                    amount.display()
                ),
            )
        };
        security::record(conn, event).await?;
    }
    mail::enqueue(
        conn,
        OutgoingEmail {
            tenant_id: Some(fee.tenant_id),
            to: fee.consultant_email,
            subject: format!("{} paid your fee: {}", fee.client_name, fee.description),
            text_body: format!(
                "{} paid {} for {}.\n\nThe money goes to your payout account, less the platform's fee; see it under \
                 Fees:\n{}\n",
                fee.client_name,
                amount.display(),
                fee.description,
                services.settings.public_url(super::PATH),
            ),
            attachments: vec![],
            links: None,
        },
    )
    .await?;
    let event = TenantEvent::FeePaid(FeePaid {
        fee: fee.id,
        order,
        consultant: fee.consultant_id,
        description: fee.description,
        amount,
        due_on: fee.due_on,
        payment_intent: intent.id.as_str().to_owned(),
        risk_level,
    });
    tenant_webhooks::events::emit(conn, fee.tenant_id, fee.livemode, event).await?;
    Ok(())
}

/// A failed attempt to pay a fee: recorded on its page and told to the tenant (`fee.failed`).
/// The client saw the reason on Stripe's page and may try again there.
async fn failed(conn: &mut PgConnection, checkout: Uuid, failure: &Failure) -> Result<()> {
    let Some(fee) = sqlx::query!(
        "SELECT f.id, f.tenant_id, f.livemode, f.consultant_id, f.description, f.amount, f.currency
         FROM fee_checkouts k JOIN fee_requests f ON f.id = k.fee_request_id WHERE k.id = $1",
        checkout
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(());
    };
    let reason = failure.explain();
    sqlx::query!("UPDATE fee_checkouts SET failure_message = $2 WHERE id = $1", checkout, reason)
        .execute(&mut *conn)
        .await?;
    tracing::info!(fee = %fee.id, amount = %format_minor(fee.amount, &fee.currency), "a fee payment failed");
    let event = TenantEvent::FeeFailed(FeeFailed {
        fee: fee.id,
        consultant: fee.consultant_id,
        description: fee.description,
        amount: Money::stored(fee.amount, &fee.currency)?,
        failure_code: failure.code.clone(),
        reason,
    });
    tenant_webhooks::events::emit(conn, fee.tenant_id, fee.livemode, event).await?;
    Ok(())
}
