//! Stripe's events, from the webhook to their effect, in one line: the [`intake`] checks a
//! delivery's signature and stores the event once by id; storing it is what queues it; the
//! [`applier`] takes due events from that table, routes each once ([`route`]) to the flow it
//! concerns and applies what it changes in one transaction with the event's `applied_at`, so
//! each event takes effect exactly once.

pub mod applier;
pub mod intake;
pub mod partitions;
pub mod resync;

pub use intake::{Intake, Received};

use chrono::{DateTime, Utc};

use crate::{
    Services, billing, checkout,
    error::Result,
    fees, payouts,
    stripe::events::{Envelope, event_time},
    tenant_stripe::{self, AccessLost},
};

/// The flow an event belongs to. Each event goes to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Subscriptions, invoices and saved cards of the platform's customers.
    Billing,
    /// A buyer paying for a won lot: Checkout, the payment, refunds and disputes.
    BuyerPayment,
    /// A client paying a consultant's fee: its Checkout and payment (told apart from a lot's by
    /// the metadata Remit gave them).
    FeePayment,
    /// A refund or dispute of a payment: a lot's or a fee's, told apart once the payment is read
    /// from Stripe (a charge's, refund's or dispute's object carries no Remit metadata).
    RefundOrDispute,
    /// A connected account changed: a tenant's Stripe, or a consultant's payouts.
    ConnectedAccount,
    /// A connected account's holder disconnected Remit from inside Stripe.
    AccessRevoked,
    /// Kept in `stripe_events` and acknowledged; Remit does not act on it.
    Ignored,
}

/// Where an event goes, by its type, the account it comes from and its object's metadata.
/// Subscriptions and payments live on the platform account, so a connected account's event is
/// about the account itself or nothing Remit acts on.
pub fn route(kind: &str, account: Option<&str>, object: &serde_json::Value) -> Flow {
    match (kind, account) {
        ("account.updated", _) => Flow::ConnectedAccount,
        ("account.application.deauthorized", Some(_)) => Flow::AccessRevoked,
        (_, Some(_)) => Flow::Ignored,
        (kind, None) if billing::events::HANDLED.contains(&kind) => Flow::Billing,
        (kind, None) if checkout::events::CHARGE_KINDS.contains(&kind) => Flow::RefundOrDispute,
        (kind, None) if fees::events::HANDLED.contains(&kind) && fees::events::is_fee(object) => Flow::FeePayment,
        (kind, None) if checkout::events::HANDLED.contains(&kind) => Flow::BuyerPayment,
        _ => Flow::Ignored,
    }
}

/// What an event is about, read from Stripe before the transaction that applies it.
enum Read {
    Billing(Option<billing::events::Read>),
    BuyerPayment(Option<checkout::events::Current>),
    FeePayment(Option<fees::events::Current>),
    ConnectedAccount,
    AccessRevoked(String),
    Ignored,
}

/// Applies a stored event the applier claimed: what it is about is read from Stripe first,
/// outside any transaction, then the changes, the jobs they cause and the event's `applied_at`
/// are written in one transaction. `false` when the event was applied before.
pub async fn apply(
    services: &Services,
    event_id: &str,
    created: DateTime<Utc>,
    payload: serde_json::Value,
) -> Result<bool> {
    let envelope: Envelope = serde_json::from_value(payload)
        .map_err(|e| anyhow::anyhow!("stored Stripe event {event_id} is malformed: {e}"))?;
    let read = match route(&envelope.kind, envelope.account.as_deref(), &envelope.data.object) {
        Flow::Billing => Read::Billing(billing::events::read_current(services, &envelope).await?),
        Flow::BuyerPayment => Read::BuyerPayment(checkout::events::read_current(services, &envelope).await?),
        Flow::FeePayment => Read::FeePayment(fees::events::read_current(services, &envelope).await?),
        Flow::RefundOrDispute => {
            let ours = |intent: &stripe_shared::PaymentIntent| {
                checkout::events::is_buyers(intent) || fees::events::is_fee_payment(intent)
            };
            match checkout::events::read_charge(services, &envelope, ours).await? {
                Some(state) if fees::events::is_fee_payment(&state.intent) => {
                    Read::FeePayment(Some(fees::events::Current::Charge(state)))
                }
                Some(state) => Read::BuyerPayment(Some(checkout::events::Current::Charge(state))),
                None => Read::Ignored,
            }
        }
        Flow::ConnectedAccount => Read::ConnectedAccount,
        Flow::AccessRevoked => Read::AccessRevoked(envelope.account.clone().unwrap_or_default()),
        Flow::Ignored => Read::Ignored,
    };

    let mut tx = services.pool.begin().await?;
    // The row lock makes a second applier of the same event (one whose claim ran out while this
    // one was still reading Stripe) wait, then skip.
    let unapplied = sqlx::query_scalar!(
        "SELECT applied_at IS NULL AS \"unapplied!\" FROM stripe_events WHERE id = $1 AND created = $2 FOR UPDATE",
        event_id,
        created,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !unapplied {
        return Ok(false);
    }
    match &read {
        Read::Billing(Some(read)) => billing::events::apply(&mut tx, services, &envelope, read).await?,
        Read::BuyerPayment(Some(current)) => checkout::events::apply(&mut tx, services, &envelope, current).await?,
        Read::FeePayment(Some(current)) => fees::events::apply(&mut tx, services, &envelope, current).await?,
        Read::ConnectedAccount => {
            let (account, created, livemode) = (&envelope.data.object, event_time(envelope.created), envelope.livemode);
            tenant_stripe::apply_account_updated(&mut tx, account, created, livemode).await?;
            payouts::apply_account_updated(&mut tx, services, account, created, livemode).await?;
        }
        Read::AccessRevoked(account) => {
            let as_of = event_time(envelope.created);
            tenant_stripe::lost_access(&mut tx, account, Some(as_of), AccessLost::Deauthorized).await?;
        }
        // Nothing to act on: an object that is not Remit's (e.g. a subscription's payment), or
        // a type Remit keeps without acting.
        Read::Billing(None) | Read::BuyerPayment(None) | Read::FeePayment(None) | Read::Ignored => {
            tracing::debug!(kind = %envelope.kind, "no change for this event");
        }
    }
    sqlx::query!(
        "UPDATE stripe_events SET applied_at = now(), next_attempt_at = NULL, claimed_until = NULL, last_error = NULL
         WHERE id = $1 AND created = $2",
        event_id,
        created,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(event = %envelope.id, kind = %envelope.kind, "webhook applied");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_goes_to_one_flow() {
        let none = serde_json::json!({});
        assert_eq!(route("invoice.payment_failed", None, &none), Flow::Billing);
        assert_eq!(route("customer.subscription.updated", None, &none), Flow::Billing);
        assert_eq!(route("payment_method.attached", None, &none), Flow::Billing);
        assert_eq!(route("checkout.session.completed", None, &none), Flow::BuyerPayment);
        assert_eq!(route("charge.dispute.created", None, &none), Flow::RefundOrDispute);
        assert_eq!(route("refund.updated", None, &none), Flow::RefundOrDispute);
        assert_eq!(route("charge.refunded", Some("acct_1"), &none), Flow::Ignored);
        assert_eq!(route("account.updated", Some("acct_1"), &none), Flow::ConnectedAccount);
        assert_eq!(route("account.updated", None, &none), Flow::ConnectedAccount);
        assert_eq!(route("account.application.deauthorized", Some("acct_1"), &none), Flow::AccessRevoked);
        assert_eq!(route("account.application.deauthorized", None, &none), Flow::Ignored);
        // Subscriptions and payments live on the platform: a connected account's are not Remit's.
        assert_eq!(route("checkout.session.completed", Some("acct_1"), &none), Flow::Ignored);
        assert_eq!(route("invoice.payment_failed", Some("acct_1"), &none), Flow::Ignored);
        assert_eq!(route("customer.created", None, &none), Flow::Ignored);
    }

    #[test]
    fn a_fees_checkout_and_payment_go_to_the_fee_flow_by_their_metadata() {
        let fee = serde_json::json!({ "metadata": { "fee_checkout": "6f1c7c50-0b4e-4f57-9f53-8a1d6f1f5a11" } });
        let lot = serde_json::json!({ "metadata": { "payment_session": "6f1c7c50-0b4e-4f57-9f53-8a1d6f1f5a11" } });
        for kind in fees::events::HANDLED {
            assert_eq!(route(kind, None, &fee), Flow::FeePayment, "{kind}");
            assert_eq!(route(kind, None, &lot), Flow::BuyerPayment, "{kind}");
            assert_eq!(route(kind, Some("acct_1"), &fee), Flow::Ignored, "{kind}");
        }
    }

    #[test]
    fn the_flows_handle_disjoint_types() {
        for kind in billing::events::HANDLED {
            assert!(!checkout::events::HANDLED.contains(&kind), "{kind} in two flows");
            assert!(!fees::events::HANDLED.contains(&kind), "{kind} in two flows");
        }
    }
}
