//! Stripe's events about buyers' payments, as the intake's job hands them over. As for
//! billing, the object's current state is read from Stripe first (outside the transaction), so
//! repeated, concurrent and reordered events end in the same state; the order is unique per bid.
//! Failed attempts and disputes are facts, taken from the event itself.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use sqlx::PgConnection;
use stripe_checkout::checkout_session::RetrieveCheckoutSession;
use stripe_core::{charge::RetrieveCharge, dispute::RetrieveDispute, payment_intent::RetrievePaymentIntent};
use stripe_shared::{CheckoutSessionPaymentStatus, CheckoutSessionStatus, PaymentIntentStatus};
use uuid::Uuid;

use super::{MAX_ATTEMPTS, lifecycle};
use crate::{
    Services, buyer_mail,
    error::Result,
    money::{Money, format_minor},
    receipts::IssueReceipt,
    refunds,
    security::{self, NewEvent, Severity},
    states::BuyerEmail,
    stripe::events::Envelope,
    stripe::{StripeMode, upstream},
    tenant_webhooks::{
        self,
        events::{OrderPaid, OrderUpdated, PaymentFailed, TenantEvent},
    },
};

/// Refunds are followed through `refund.created` / `refund.updated` (Stripe sends them with the
/// older `charge.refund.updated` and `refund.failed` too; listing those as well would exceed the
/// 20 types a resync can ask Stripe for at once, and any of the refund's events brings its state).
pub const HANDLED: [&str; 12] = [
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
];

pub enum Current {
    Session(Box<stripe_shared::CheckoutSession>),
    /// A payment, and for `payment_intent.payment_failed` the failure the event reports: a
    /// failed attempt is a fact, even when a later card has paid by the time it is applied.
    Intent {
        intent: Box<stripe_shared::PaymentIntent>,
        failure: Option<Failure>,
    },
    /// A refund or dispute of the payment.
    Charge(ChargeState),
}

/// The types about a payment's charge (its refunds and disputes), whether a lot's or a fee's:
/// their objects name no Remit metadata, so which payment they are about is read from Stripe.
pub const CHARGE_KINDS: [&str; 6] = [
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
];

/// A refund's or dispute's event as Stripe has it now: the charge with its refunds, its
/// payment, and the dispute as it stands for a dispute's event (`created` tells whether it is
/// the first).
pub struct ChargeState {
    pub intent: Box<stripe_shared::PaymentIntent>,
    pub charge: Box<stripe_shared::Charge>,
    pub dispute: Option<(Box<stripe_shared::Dispute>, bool)>,
}

/// Whether a payment is a buyer's (the metadata names its payment session).
pub fn is_buyers(intent: &stripe_shared::PaymentIntent) -> bool {
    intent.metadata.contains_key("payment_session")
}

/// Why a payment attempt failed, as Stripe reported it.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    /// The decline code, else the error code.
    pub code: Option<String>,
    pub message: Option<String>,
}

impl Failure {
    /// From a PaymentIntent as an event carries it (`last_payment_error`).
    pub(crate) fn from_event_object(object: &serde_json::Value) -> Self {
        let error = &object["last_payment_error"];
        Self {
            code: error["decline_code"].as_str().or_else(|| error["code"].as_str()).map(str::to_owned),
            message: error["message"].as_str().map(str::to_owned),
        }
    }

    pub(crate) fn from_intent(intent: &stripe_shared::PaymentIntent) -> Self {
        let error = intent.last_payment_error.as_ref();
        Self {
            code: error.and_then(|e| e.decline_code.clone().or_else(|| e.code.as_ref().map(|c| c.as_str().to_owned()))),
            message: error.and_then(|e| e.message.clone()),
        }
    }

    /// The bank's reason in words the buyer can act on.
    pub fn explain(&self) -> String {
        match self.code.as_deref() {
            Some("insufficient_funds") => "Your card has insufficient funds. Try another card.".into(),
            Some("expired_card") => "Your card has expired. Try another card.".into(),
            Some("incorrect_cvc") => "The card's security code is incorrect.".into(),
            Some("payment_intent_authentication_failure" | "authentication_required") => {
                "Your bank could not confirm the payment (3D Secure). Try again or use another card.".into()
            }
            Some("generic_decline" | "card_declined" | "do_not_honor" | "fraudulent") => {
                "Your card was declined. Try another card.".into()
            }
            _ => self.message.clone().unwrap_or_else(|| "The payment did not go through. Please try again.".into()),
        }
    }
}

pub(crate) async fn retrieve_intent(stripe: &StripeMode, id: &str) -> Result<stripe_shared::PaymentIntent> {
    RetrievePaymentIntent::new(id)
        .expand(vec!["latest_charge".to_owned()])
        .send(stripe.client())
        .await
        .map_err(|e| upstream(e, "read a payment"))
}

/// Reads what a payment event (one of [`HANDLED`], routed here by
/// [`crate::stripe_webhooks::route`]) is about. `None` for payments that are not buyers'
/// (subscriptions' Checkout Sessions and charges go through billing).
pub async fn read_current(services: &Services, envelope: &Envelope) -> Result<Option<Current>> {
    let object = &envelope.data.object;
    let Some(id) = object["id"].as_str() else { return Ok(None) };
    let stripe = services.stripe.mode(envelope.livemode)?;
    let current = match envelope.kind.as_str() {
        kind if kind.starts_with("checkout.") => {
            let ours = sqlx::query_scalar!(
                "SELECT EXISTS (SELECT 1 FROM payment_sessions WHERE stripe_checkout_session_id = $1)",
                id
            )
            .fetch_one(&services.pool)
            .await?
            .unwrap_or(false);
            if !ours {
                return Ok(None);
            }
            Current::Session(Box::new(retrieve_session(stripe, id).await?))
        }
        kind if kind.starts_with("payment_intent.") => {
            if !object["metadata"]["payment_session"].is_string() {
                return Ok(None);
            }
            let failure = (kind == "payment_intent.payment_failed").then(|| Failure::from_event_object(object));
            Current::Intent { intent: Box::new(retrieve_intent(stripe, id).await?), failure }
        }
        // Refunds and disputes are read by `read_charge`, once it is known whose payment it is.
        _ => return Ok(None),
    };
    Ok(Some(current))
}

/// Reads what a refund's or dispute's event (one of [`CHARGE_KINDS`]) is about, when its payment
/// is one `ours` recognises: the payment, the charge with its refunds, and the dispute.
pub async fn read_charge(
    services: &Services,
    envelope: &Envelope,
    ours: fn(&stripe_shared::PaymentIntent) -> bool,
) -> Result<Option<ChargeState>> {
    let object = &envelope.data.object;
    let Some(id) = object["id"].as_str() else { return Ok(None) };
    let stripe = services.stripe.mode(envelope.livemode)?;
    let kind = envelope.kind.as_str();
    // A refund's or a dispute's event names its charge; a charge's event is the charge.
    let about_charge = kind == "charge.refunded";
    let charge_id = if about_charge { Some(id) } else { object["charge"].as_str() };
    let (Some(charge_id), Some(intent_id)) = (charge_id, object["payment_intent"].as_str()) else {
        return Ok(None);
    };
    let intent = retrieve_intent(stripe, intent_id).await?;
    if !ours(&intent) {
        return Ok(None);
    }
    let charge = RetrieveCharge::new(charge_id)
        .expand(vec!["refunds".to_owned()])
        .send(stripe.client())
        .await
        .map_err(|e| upstream(e, "read a charge"))?;
    let dispute = if kind.starts_with("charge.dispute.") {
        let dispute =
            RetrieveDispute::new(id).send(stripe.client()).await.map_err(|e| upstream(e, "read a dispute"))?;
        Some((Box::new(dispute), kind == "charge.dispute.created"))
    } else {
        None
    };
    Ok(Some(ChargeState { intent: Box::new(intent), charge: Box::new(charge), dispute }))
}

/// A Checkout Session with its payment and that payment's latest charge (for Radar's verdict).
pub(crate) async fn retrieve_session(stripe: &StripeMode, id: &str) -> Result<stripe_shared::CheckoutSession> {
    RetrieveCheckoutSession::new(id)
        .expand(vec!["payment_intent.latest_charge".to_owned()])
        .send(stripe.client())
        .await
        .map_err(|e| upstream(e, "read a checkout session"))
}

pub(super) struct SessionRow {
    id: Uuid,
    pub(super) bid_id: Uuid,
    tenant_id: Uuid,
    pub(super) livemode: bool,
}

pub(super) async fn session_by_stripe_id(conn: &mut PgConnection, id: &str) -> Result<Option<SessionRow>> {
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

pub async fn apply(conn: &mut PgConnection, services: &Services, envelope: &Envelope, current: &Current) -> Result<()> {
    match current {
        Current::Session(session) => {
            let Some(row) = session_by_stripe_id(conn, session.id.as_str()).await? else { return Ok(()) };
            if settle_paid_session(conn, &row, session).await? {
                return Ok(());
            }
            if session.status == Some(CheckoutSessionStatus::Expired) {
                sqlx::query!(
                    "UPDATE payment_sessions SET status = 'expired' WHERE id = $1 AND status = 'open'",
                    row.id
                )
                .execute(&mut *conn)
                .await?;
            } else if envelope.kind == "checkout.session.async_payment_failed" {
                let intent = session.payment_intent.as_ref().and_then(|p| p.as_object());
                let failure = intent.map(Failure::from_intent).unwrap_or_default();
                failed(conn, services, &row, envelope, &failure).await?;
            }
        }
        Current::Intent { intent, failure } => {
            let Some(row) = session_by_metadata(conn, intent).await? else { return Ok(()) };
            if let Some(failure) = failure {
                failed(conn, services, &row, envelope, failure).await?;
            }
            if intent.status == PaymentIntentStatus::Succeeded {
                paid(conn, &row, intent).await?;
            }
        }
        Current::Charge(ChargeState { intent, charge, dispute }) => {
            let Some(row) = session_by_metadata(conn, intent).await? else { return Ok(()) };
            // However the events were ordered, the order exists before a refund or dispute
            // is recorded on it.
            if intent.status == PaymentIntentStatus::Succeeded {
                paid(conn, &row, intent).await?;
            }
            let Some(order) = sqlx::query!(
                "SELECT o.id, o.status, o.refunded_amount, o.tenant_id, o.amount, o.currency, b.id AS bid_id,
                        b.reference, b.lot, b.buyer_email
                 FROM orders o JOIN winning_bids b ON b.id = o.bid_id
                 WHERE o.stripe_payment_intent_id = $1 FOR UPDATE OF o",
                intent.id.as_str(),
            )
            .fetch_optional(&mut *conn)
            .await?
            else {
                return Ok(());
            };
            // Only a change is written and told to the tenant, so repeated events tell it once.
            let followed = OrderCharge {
                id: order.id,
                amount: order.amount,
                status: &order.status,
                refunded: order.refunded_amount,
            };
            if let Some(status) = follow_charge(conn, followed, charge).await? {
                let event = TenantEvent::OrderUpdated(OrderUpdated {
                    order: order.id,
                    winning: order.bid_id,
                    reference: order.reference.clone(),
                    lot: order.lot.clone(),
                    status: status.to_owned(),
                    amount: Money::stored(order.amount, &order.currency)?,
                    refunded_amount: charge.amount_refunded,
                    payment_intent: intent.id.as_str().to_owned(),
                });
                tenant_webhooks::events::emit(conn, order.tenant_id, row.livemode, event).await?;
            }
            // Every refund the charge lists, so a lost or late refund event is made good by
            // any later event about the charge.
            for refund in charge.refunds.iter().flat_map(|list| list.data.iter()) {
                refunds::record_stripe_refund(conn, order.id, refund).await?;
            }
            if let Some((dispute, created)) = dispute {
                record_dispute(conn, order.id, order.tenant_id, dispute).await?;
                if *created {
                    let event = NewEvent {
                        tenant_id: Some(order.tenant_id),
                        buyer_email: Some(&order.buyer_email),
                        bid_id: Some(order.bid_id),
                        dedupe_key: Some(format!("payment.disputed:{}", dispute.id)),
                        ..NewEvent::new(
                            "payment.disputed",
                            Severity::High,
                            format!(
                                "The buyer of lot {} disputed their payment of {} ({}).",
                                order.lot,
                                format_minor(order.amount, &order.currency),
                                dispute.reason
                            ),
                        )
                    };
                    security::record(conn, event).await?;
                }
            }
        }
    }
    Ok(())
}

/// An order (its row locked by the caller) as it stands, before its charge is followed.
pub(crate) struct OrderCharge<'a> {
    pub id: Uuid,
    pub amount: i64,
    pub status: &'a str,
    pub refunded: i64,
}

/// Moves an order to what its charge says (refunded in part or in full, disputed); the new state
/// when it changed, so repeated events change it (and tell of it) once.
pub(crate) async fn follow_charge(
    conn: &mut PgConnection,
    order: OrderCharge<'_>,
    charge: &stripe_shared::Charge,
) -> Result<Option<&'static str>> {
    let status = order_status(order.amount, charge.amount_refunded, charge.disputed);
    if (status, charge.amount_refunded) == (order.status, order.refunded) {
        return Ok(None);
    }
    sqlx::query!(
        "UPDATE orders SET status = $2, refunded_amount = $3 WHERE id = $1",
        order.id,
        status,
        charge.amount_refunded,
    )
    .execute(&mut *conn)
    .await?;
    Ok(Some(status))
}

/// Keeps a dispute of an order as Stripe reports it now (its status and evidence deadline move).
pub(crate) async fn record_dispute(
    conn: &mut PgConnection,
    order_id: Uuid,
    tenant_id: Uuid,
    dispute: &stripe_shared::Dispute,
) -> Result<()> {
    let due_by = dispute.evidence_details.due_by.and_then(|t| Utc.timestamp_opt(t, 0).single());
    sqlx::query!(
        "INSERT INTO disputes (stripe_dispute_id, order_id, tenant_id, amount, currency, reason, status,
             evidence_due_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (stripe_dispute_id) DO UPDATE SET status = EXCLUDED.status,
             evidence_due_by = EXCLUDED.evidence_due_by, updated_at = now()",
        dispute.id.as_str(),
        order_id,
        tenant_id,
        dispute.amount,
        dispute.currency.to_string(),
        dispute.reason,
        dispute.status.as_str(),
        due_by,
        Utc.timestamp_opt(dispute.created, 0).single().unwrap_or_else(Utc::now),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An order's state from its charge: a dispute outweighs a refund.
fn order_status(amount: i64, refunded: i64, disputed: bool) -> &'static str {
    if disputed {
        "disputed"
    } else if refunded >= amount {
        "refunded"
    } else if refunded > 0 {
        "partially_refunded"
    } else {
        "paid"
    }
}

/// Settles a Checkout Session that Stripe reports paid (from an event, or from the buyer's
/// return to Remit). `false` when it is not paid.
pub(super) async fn settle_paid_session(
    conn: &mut PgConnection,
    row: &SessionRow,
    session: &stripe_shared::CheckoutSession,
) -> Result<bool> {
    let intent = session.payment_intent.as_ref().and_then(|p| p.as_object());
    match intent {
        Some(intent) if session.payment_status == CheckoutSessionPaymentStatus::Paid => {
            paid(conn, row, intent).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// What an order keeps of a succeeded payment, read from its PaymentIntent (with its latest
/// charge expanded): when it was paid by Stripe's clock (the successful charge's time, the
/// payment's own when the charge is not at hand, so a late or replayed event dates the order
/// when it was paid), Stripe Radar's verdict, and the charge and application fee that the reports
/// and the reconciliation follow. Lots and fees are settled alike.
pub(crate) struct Settlement {
    pub paid_at: DateTime<Utc>,
    pub risk_level: Option<String>,
    pub risk_score: Option<i32>,
    pub charge: Option<String>,
    pub application_fee_id: Option<String>,
    pub application_fee: i64,
}

impl Settlement {
    pub(crate) fn of(intent: &stripe_shared::PaymentIntent) -> Self {
        let charge = intent.latest_charge.as_ref();
        let expanded = charge.and_then(|c| c.as_object());
        let created = expanded.map_or(intent.created, |c| c.created);
        let outcome = expanded.and_then(|c| c.outcome.as_ref());
        Settlement {
            paid_at: Utc.timestamp_opt(created, 0).single().unwrap_or_else(Utc::now),
            risk_level: outcome.and_then(|o| o.risk_level.clone()),
            risk_score: outcome.and_then(|o| o.risk_score).and_then(|s| i32::try_from(s).ok()),
            charge: charge.map(|c| c.id().to_string()),
            application_fee_id: expanded.and_then(|c| c.application_fee.as_ref()).map(|f| f.id().to_string()),
            application_fee: intent.application_fee_amount.unwrap_or(0),
        }
    }
}

/// The buyer's payment went through: the order, exactly once per bid, with its receipt queued
/// and, when Radar rated the payment above normal risk, a security event that alerts admins.
async fn paid(conn: &mut PgConnection, row: &SessionRow, intent: &stripe_shared::PaymentIntent) -> Result<()> {
    sqlx::query!("SELECT id FROM winning_bids WHERE id = $1 FOR UPDATE", row.bid_id).fetch_one(&mut *conn).await?;
    let Settlement { paid_at, risk_level, risk_score, charge, application_fee_id, application_fee } =
        Settlement::of(intent);
    let order = sqlx::query_scalar!(
        "INSERT INTO orders (id, bid_id, tenant_id, payment_session_id, stripe_payment_intent_id, amount, currency,
             risk_level, risk_score, paid_at, stripe_charge_id, stripe_application_fee_id, application_fee)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (bid_id) DO NOTHING RETURNING id",
        Uuid::new_v4(),
        row.bid_id,
        row.tenant_id,
        row.id,
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
    let Some(order_id) = order else { return Ok(()) };
    sqlx::query!(
        "UPDATE winning_bids SET status = 'paid', next_attempt_at = NULL, token_sealed = NULL WHERE id = $1",
        row.bid_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("UPDATE payment_sessions SET status = 'complete' WHERE id = $1", row.id).execute(&mut *conn).await?;
    let outcome = Outcome { succeeded: true, amount: intent.amount, failure_code: None, at: paid_at };
    record_outcome(conn, row, intent.id.as_str(), &intent.currency.to_string(), outcome).await?;
    crate::queue::enqueue(conn, IssueReceipt { order_id }).await?;
    let bid = sqlx::query!("SELECT reference, auction, lot, buyer_email FROM winning_bids WHERE id = $1", row.bid_id)
        .fetch_one(&mut *conn)
        .await?;
    if let Some(level) = risk_level.as_deref().filter(|l| matches!(*l, "elevated" | "highest")) {
        let event = NewEvent {
            tenant_id: Some(row.tenant_id),
            buyer_email: Some(&bid.buyer_email),
            bid_id: Some(row.bid_id),
            dedupe_key: Some(format!("payment.high_risk:{}", intent.id)),
            ..NewEvent::new(
                "payment.high_risk",
                Severity::High,
                format!(
                    "A payment of {} for lot {} by {} succeeded, but Stripe Radar rated it {level} risk{}. \
                     Review it in Stripe before the lot is handed over.",
                    format_minor(intent.amount, &intent.currency.to_string()),
                    bid.lot,
                    bid.buyer_email,
                    risk_score.map(|s| format!(" (score {s})")).unwrap_or_default(),
                ),
            )
        };
        security::record(conn, event).await?;
    }
    let paid = OrderPaid {
        order: order_id,
        winning: row.bid_id,
        reference: bid.reference,
        auction: bid.auction,
        lot: bid.lot,
        amount: Money::stored(intent.amount, &intent.currency.to_string())?,
        payment_intent: intent.id.as_str().to_owned(),
        risk_level,
    };
    tenant_webhooks::events::emit(conn, row.tenant_id, row.livemode, TenantEvent::PaymentSucceeded(paid.clone()))
        .await?;
    tenant_webhooks::events::emit(conn, row.tenant_id, row.livemode, TenantEvent::OrderCreated(paid)).await?;
    Ok(())
}

/// A failed payment attempt: the outcome for the dashboards and, where the attempt looks
/// suspicious, a security event, whatever the bid's state; while the bid still awaits payment,
/// also its reason on the session, backoff before the next attempt, and the bid closed after
/// the third failure.
async fn failed(
    conn: &mut PgConnection,
    services: &Services,
    row: &SessionRow,
    event: &Envelope,
    failure: &Failure,
) -> Result<()> {
    let reference = event.id.as_str();
    // One read of the winning under its row lock serves the outcome, the emails and the events.
    let bid = lifecycle::lock(conn, row.bid_id).await?;
    let explained = failure.explain();
    let outcome =
        Outcome { succeeded: false, amount: bid.amount, failure_code: failure.code.clone(), at: event.occurred_at() };
    let recorded = record_outcome(conn, row, reference, &bid.currency, outcome).await?;
    if !recorded {
        return Ok(());
    }
    let amount = format_minor(bid.amount, &bid.currency);
    let suspicious = |kind, severity, message: String| NewEvent {
        tenant_id: Some(row.tenant_id),
        buyer_email: Some(&bid.buyer_email),
        bid_id: Some(row.bid_id),
        dedupe_key: Some(format!("{kind}:{reference}")),
        ..NewEvent::new(kind, severity, message)
    };
    match failure.code.as_deref() {
        // Stripe's decline code when Radar blocks a payment as likely fraud.
        Some("fraudulent") => {
            let message = format!(
                "Stripe Radar blocked a payment of {amount} for lot {} by {} as likely fraud.",
                bid.lot, bid.buyer_email
            );
            security::record(conn, suspicious("payment.blocked_by_radar", Severity::High, message)).await?;
        }
        Some("payment_intent_authentication_failure") => {
            let message = format!("3D Secure authentication failed for a payment of {amount} for lot {}.", bid.lot);
            security::record(conn, suspicious("payment.authentication_failed", Severity::Info, message)).await?;
        }
        _ => {}
    }
    // The tenant hears of every failed attempt, whenever its event is applied; the buyer and
    // the bid's state only while it awaits payment (never after it was paid).
    let failures = bid.failures + 1;
    let attempts_left = (MAX_ATTEMPTS - failures).max(0);
    let told = TenantEvent::PaymentFailed(PaymentFailed {
        winning: row.bid_id,
        reference: bid.reference.clone(),
        lot: bid.lot.clone(),
        amount: Money::stored(bid.amount, &bid.currency)?,
        failure_code: failure.code.clone(),
        reason: explained.clone(),
        attempts_left,
    });
    tenant_webhooks::events::emit(conn, row.tenant_id, row.livemode, told).await?;
    if bid.status != "awaiting_payment" {
        return Ok(());
    }
    // The buyer hears what happened and where to try again: the page after Checkout, which
    // opens a new attempt (the session id is as unguessable as the link).
    let session = sqlx::query_scalar!("SELECT stripe_checkout_session_id FROM payment_sessions WHERE id = $1", row.id)
        .fetch_one(&mut *conn)
        .await?;
    let retry = session.map(|s| services.settings.public_url(&format!("/pay/complete?session={s}")));
    let next = if attempts_left == 0 {
        format!(
            "That was the last of {MAX_ATTEMPTS} attempts, so the payment link is closed and nothing was charged. \
             Please contact {} if you still want the lot.\n",
            bid.tenant
        )
    } else {
        format!(
            "You have {attempts_left} attempt{} left before {}. Try again here:\n{}\n",
            if attempts_left == 1 { "" } else { "s" },
            bid.pay_by.format("%-d %B %Y, %H:%M UTC"),
            retry.clone().unwrap_or_default()
        )
    };
    let body = format!(
        "Your payment of {amount} for lot {} ({}) at {} did not go through: {}\n\n{next}",
        bid.lot, bid.auction, bid.tenant, explained,
    );
    let subject = format!("Your payment for lot {} did not go through — {}", bid.lot, bid.tenant);
    let link = retry.filter(|_| attempts_left > 0);
    let email = bid.email(&services.settings.encryption_key, subject, body, link.as_deref())?;
    buyer_mail::send(conn, row.bid_id, BuyerEmail::PaymentFailed, None, email).await?;
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
    sqlx::query!("UPDATE payment_sessions SET failure_message = $2 WHERE id = $1", row.id, &explained)
        .execute(&mut *conn)
        .await?;
    if status == "failed" {
        sqlx::query!("UPDATE payment_sessions SET status = 'failed' WHERE bid_id = $1 AND status = 'open'", row.bid_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query!("UPDATE winning_bids SET token_sealed = NULL WHERE id = $1", row.bid_id)
            .execute(&mut *conn)
            .await?;
        let event = TenantEvent::WinningFailed(bid.changed("failed", Some(explained))?);
        tenant_webhooks::events::emit(conn, row.tenant_id, row.livemode, event).await?;
        lifecycle::offer_next(conn, services, &bid).await?;
        let message = format!(
            "Payment for lot {} ({amount}) by {} failed {MAX_ATTEMPTS} times; the payment link is closed.",
            bid.lot, bid.buyer_email
        );
        security::record(conn, suspicious("payment.failed_three_times", Severity::Warning, message)).await?;
    }
    Ok(())
}

/// A payment attempt's result, dated by Stripe.
struct Outcome {
    succeeded: bool,
    amount: i64,
    failure_code: Option<String>,
    at: DateTime<Utc>,
}

/// One row per attempt in `payment_outcomes` (the dashboards); false when already recorded.
async fn record_outcome(
    conn: &mut PgConnection,
    row: &SessionRow,
    reference: &str,
    currency: &str,
    outcome: Outcome,
) -> Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO payment_outcomes (id, tenant_id, livemode, source, succeeded, amount, currency, reference, failure_code, occurred_at)
         VALUES ($1, $2, $3, 'checkout', $4, $5, $6, $7, $8, $9) ON CONFLICT (reference) DO NOTHING",
        Uuid::new_v4(),
        row.tenant_id,
        row.livemode,
        outcome.succeeded,
        outcome.amount,
        currency,
        reference,
        outcome.failure_code,
        outcome.at,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_read_from_the_events_copy_and_explained_in_words() {
        let declined = Failure::from_event_object(&serde_json::json!({
            "last_payment_error": { "code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds." }
        }));
        assert_eq!(declined.code.as_deref(), Some("insufficient_funds"), "the decline code wins over the error code");
        assert_eq!(declined.explain(), "Your card has insufficient funds. Try another card.");
        let authentication = Failure::from_event_object(&serde_json::json!({
            "last_payment_error": { "code": "payment_intent_authentication_failure", "message": "…" }
        }));
        assert!(authentication.explain().contains("3D Secure"));
        let radar = Failure { code: Some("fraudulent".into()), message: None };
        assert_eq!(radar.explain(), "Your card was declined. Try another card.", "the buyer is not told about Radar");
        let unknown = Failure { code: Some("processing_error".into()), message: Some("An error occurred.".into()) };
        assert_eq!(unknown.explain(), "An error occurred.");
        assert_eq!(Failure::default().explain(), "The payment did not go through. Please try again.");
    }

    #[test]
    fn an_orders_state_follows_its_charge_and_a_dispute_outweighs_a_refund() {
        assert_eq!(order_status(10_000, 0, false), "paid");
        assert_eq!(order_status(10_000, 2_500, false), "partially_refunded");
        assert_eq!(order_status(10_000, 10_000, false), "refunded");
        assert_eq!(order_status(10_000, 10_000, true), "disputed");
    }
}
