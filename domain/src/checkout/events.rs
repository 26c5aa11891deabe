//! Stripe's events about buyers' payments, as the webhook intake hands them over. As for
//! billing, the object's current state is read from Stripe first (outside the transaction), so
//! repeated, concurrent and reordered events end in the same state; the order is unique per bid.

use chrono::{Duration, Utc};
use sqlx::PgConnection;
use stripe_checkout::checkout_session::RetrieveCheckoutSession;
use stripe_core::{charge::RetrieveCharge, payment_intent::RetrievePaymentIntent};
use stripe_shared::{CheckoutSessionPaymentStatus, CheckoutSessionStatus, PaymentIntentStatus};
use uuid::Uuid;

use super::MAX_ATTEMPTS;
use crate::{Services, alerts, error::Result, stripe::upstream, stripe_webhooks::Envelope, tenant_webhooks};

pub const HANDLED: [&str; 8] = [
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
];

pub enum Current {
    Session(Box<stripe_shared::CheckoutSession>),
    Intent(Box<stripe_shared::PaymentIntent>),
    Charge(Box<stripe_shared::Charge>),
    /// A dispute is a fact, not a state to catch up with: the event's copy is used.
    Dispute(serde_json::Value),
}

/// Reads what a payment event is about. `None` for other events.
pub async fn read_current(services: &Services, envelope: &Envelope) -> Result<Option<Current>> {
    if envelope.account.is_some() || !HANDLED.contains(&envelope.kind.as_str()) {
        return Ok(None);
    }
    let object = &envelope.data.object;
    let Some(id) = object["id"].as_str() else { return Ok(None) };
    // Only buyers' payments are read (other Checkout Sessions are subscriptions' and cards').
    let ours = match envelope.kind.split('.').next() {
        Some("checkout") => sqlx::query_scalar!(
            "SELECT EXISTS (SELECT 1 FROM payment_sessions WHERE stripe_checkout_session_id = $1)",
            id
        )
        .fetch_one(&services.pool)
        .await?
        .unwrap_or(false),
        Some("payment_intent") => object["metadata"]["payment_session"].is_string(),
        _ => {
            let intent = object["payment_intent"].as_str().unwrap_or_default();
            sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM orders WHERE stripe_payment_intent_id = $1)", intent)
                .fetch_one(&services.pool)
                .await?
                .unwrap_or(false)
        }
    };
    if !ours {
        return Ok(None);
    }
    let client = services.stripe.client();
    Ok(Some(match envelope.kind.split('.').next() {
        Some("checkout") => Current::Session(Box::new(
            RetrieveCheckoutSession::new(id)
                .expand(vec!["payment_intent".to_owned()])
                .send(client)
                .await
                .map_err(|e| upstream(e, "read a checkout session"))?,
        )),
        Some("payment_intent") => Current::Intent(Box::new(
            RetrievePaymentIntent::new(id).send(client).await.map_err(|e| upstream(e, "read a payment"))?,
        )),
        _ if envelope.kind == "charge.refunded" => Current::Charge(Box::new(
            RetrieveCharge::new(id).send(client).await.map_err(|e| upstream(e, "read a charge"))?,
        )),
        _ => Current::Dispute(object.clone()),
    }))
}

struct SessionRow {
    id: Uuid,
    bid_id: Uuid,
    tenant_id: Uuid,
    livemode: bool,
}

async fn session_by_stripe_id(conn: &mut PgConnection, id: &str) -> Result<Option<SessionRow>> {
    Ok(sqlx::query_as!(
        SessionRow,
        "SELECT s.id, s.bid_id, b.tenant_id, b.livemode FROM payment_sessions s JOIN winning_bids b ON b.id = s.bid_id
         WHERE s.stripe_checkout_session_id = $1",
        id
    )
    .fetch_optional(conn)
    .await?)
}

async fn session_by_metadata(
    conn: &mut PgConnection,
    intent: &stripe_shared::PaymentIntent,
) -> Result<Option<SessionRow>> {
    let Some(id) = intent.metadata.get("payment_session").and_then(|s| s.parse::<Uuid>().ok()) else { return Ok(None) };
    Ok(sqlx::query_as!(
        SessionRow,
        "SELECT s.id, s.bid_id, b.tenant_id, b.livemode FROM payment_sessions s JOIN winning_bids b ON b.id = s.bid_id
         WHERE s.id = $1",
        id
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn apply(conn: &mut PgConnection, envelope: &Envelope, current: &Current) -> Result<()> {
    match current {
        Current::Session(session) => {
            let Some(row) = session_by_stripe_id(conn, session.id.as_str()).await? else { return Ok(()) };
            let intent = session.payment_intent.as_ref().and_then(|p| p.as_object());
            if session.payment_status == CheckoutSessionPaymentStatus::Paid
                && let Some(intent) = intent
            {
                paid(conn, &row, intent).await?;
            } else if session.status == Some(CheckoutSessionStatus::Expired) {
                sqlx::query!(
                    "UPDATE payment_sessions SET status = 'expired' WHERE id = $1 AND status = 'open'",
                    row.id
                )
                .execute(&mut *conn)
                .await?;
            } else if envelope.kind == "checkout.session.async_payment_failed" {
                let message = intent.map_or_else(|| "The payment did not go through.".to_owned(), failure_message);
                failed(conn, &row, &envelope.id, intent, &message).await?;
            }
        }
        Current::Intent(intent) => {
            let Some(row) = session_by_metadata(conn, intent).await? else { return Ok(()) };
            match intent.status {
                PaymentIntentStatus::Succeeded => paid(conn, &row, intent).await?,
                _ if envelope.kind == "payment_intent.payment_failed" => {
                    failed(conn, &row, &envelope.id, Some(intent), &failure_message(intent)).await?
                }
                _ => {}
            }
        }
        Current::Charge(charge) => {
            let Some(intent) = charge.payment_intent.as_ref().map(|p| p.id().to_string()) else { return Ok(()) };
            let refunded = charge.amount_refunded;
            sqlx::query!(
                "UPDATE orders SET refunded_amount = $2,
                     status = CASE WHEN status = 'disputed' THEN status
                                   WHEN $2 >= amount THEN 'refunded' WHEN $2 > 0 THEN 'partially_refunded' ELSE status END
                 WHERE stripe_payment_intent_id = $1",
                intent,
                refunded,
            )
            .execute(&mut *conn)
            .await?;
        }
        Current::Dispute(dispute) => {
            let Some(intent) = dispute["payment_intent"].as_str() else { return Ok(()) };
            let order = sqlx::query!(
                "UPDATE orders SET status = 'disputed' WHERE stripe_payment_intent_id = $1 RETURNING tenant_id, amount, currency",
                intent
            )
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(order) = order {
                let reason = dispute["reason"].as_str().unwrap_or("unspecified");
                alerts::raise(
                    conn,
                    Some(order.tenant_id),
                    "dispute",
                    &format!(
                        "A buyer disputed a payment of {} ({reason}).",
                        crate::money::format_minor(order.amount, &order.currency)
                    ),
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// The buyer's payment went through: the order, exactly once per bid.
async fn paid(conn: &mut PgConnection, row: &SessionRow, intent: &stripe_shared::PaymentIntent) -> Result<()> {
    sqlx::query!("SELECT id FROM winning_bids WHERE id = $1 FOR UPDATE", row.bid_id).fetch_one(&mut *conn).await?;
    let order = sqlx::query_scalar!(
        "INSERT INTO orders (id, bid_id, tenant_id, payment_session_id, stripe_payment_intent_id, amount, currency)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (bid_id) DO NOTHING RETURNING id",
        Uuid::new_v4(),
        row.bid_id,
        row.tenant_id,
        row.id,
        intent.id.as_str(),
        intent.amount,
        intent.currency.to_string(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(order_id) = order else { return Ok(()) };
    sqlx::query!("UPDATE winning_bids SET status = 'paid', next_attempt_at = NULL WHERE id = $1", row.bid_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("UPDATE payment_sessions SET status = 'complete' WHERE id = $1", row.id).execute(&mut *conn).await?;
    record_outcome(conn, row, intent.id.as_str(), true, intent.amount, &intent.currency.to_string(), None).await?;
    let bid = sqlx::query!("SELECT reference, auction, lot FROM winning_bids WHERE id = $1", row.bid_id)
        .fetch_one(&mut *conn)
        .await?;
    let data = serde_json::json!({
        "order": order_id,
        "winning": row.bid_id,
        "reference": bid.reference,
        "auction": bid.auction,
        "lot": bid.lot,
        "amount": intent.amount,
        "currency": intent.currency.to_string(),
        "payment_intent": intent.id.as_str(),
    });
    tenant_webhooks::emit(conn, row.tenant_id, row.livemode, "payment.succeeded", data.clone()).await?;
    tenant_webhooks::emit(conn, row.tenant_id, row.livemode, "order.created", data).await?;
    Ok(())
}

/// A failed payment attempt: its reason on the session, backoff before the next attempt, and
/// the bid closed after the third failure.
async fn failed(
    conn: &mut PgConnection,
    row: &SessionRow,
    reference: &str,
    intent: Option<&stripe_shared::PaymentIntent>,
    message: &str,
) -> Result<()> {
    let bid = sqlx::query!(
        "SELECT status, failures, amount, currency FROM winning_bids WHERE id = $1 FOR UPDATE",
        row.bid_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if bid.status != "awaiting_payment" {
        return Ok(());
    }
    let recorded = record_outcome(
        conn,
        row,
        reference,
        false,
        bid.amount,
        &bid.currency,
        intent
            .and_then(|i| i.last_payment_error.as_ref())
            .and_then(|e| e.decline_code.clone().or_else(|| e.code.as_ref().map(|c| c.as_str().to_owned()))),
    )
    .await?;
    if !recorded {
        return Ok(());
    }
    let failures = bid.failures + 1;
    // 1, 2, 4 … minutes before another Checkout page may be opened.
    let backoff = Duration::minutes(1 << (failures - 1).clamp(0, 6));
    let status = if failures >= MAX_ATTEMPTS { "failed" } else { "awaiting_payment" };
    sqlx::query!(
        "UPDATE winning_bids SET failures = $2, status = $3, next_attempt_at = $4 WHERE id = $1",
        row.bid_id,
        failures,
        status,
        Utc::now() + backoff,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("UPDATE payment_sessions SET failure_message = $2 WHERE id = $1", row.id, message)
        .execute(&mut *conn)
        .await?;
    if status == "failed" {
        sqlx::query!("UPDATE payment_sessions SET status = 'failed' WHERE bid_id = $1 AND status = 'open'", row.bid_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// One row per attempt in `payment_outcomes` (the dashboards); false when already recorded.
async fn record_outcome(
    conn: &mut PgConnection,
    row: &SessionRow,
    reference: &str,
    succeeded: bool,
    amount: i64,
    currency: &str,
    failure_code: Option<String>,
) -> Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO payment_outcomes (id, tenant_id, livemode, source, succeeded, amount, currency, reference, failure_code, occurred_at)
         VALUES ($1, $2, $3, 'checkout', $4, $5, $6, $7, $8, now()) ON CONFLICT (reference) DO NOTHING",
        Uuid::new_v4(),
        row.tenant_id,
        row.livemode,
        succeeded,
        amount,
        currency,
        reference,
        failure_code,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// The bank's reason in words the buyer can act on.
pub fn failure_message(intent: &stripe_shared::PaymentIntent) -> String {
    let Some(error) = intent.last_payment_error.as_ref() else {
        return "The payment did not go through. Please try again.".into();
    };
    let code = error.decline_code.clone().or_else(|| error.code.as_ref().map(|c| c.as_str().to_owned()));
    match code.as_deref() {
        Some("insufficient_funds") => "Your card has insufficient funds. Try another card.".into(),
        Some("expired_card") => "Your card has expired. Try another card.".into(),
        Some("incorrect_cvc") => "The card's security code is incorrect.".into(),
        Some("payment_intent_authentication_failure" | "authentication_required") => {
            "Your bank could not confirm the payment (3D Secure). Try again or use another card.".into()
        }
        Some("generic_decline" | "card_declined" | "do_not_honor") => {
            "Your card was declined. Try another card.".into()
        }
        _ => error.message.clone().unwrap_or_else(|| "The payment did not go through. Please try again.".into()),
    }
}
