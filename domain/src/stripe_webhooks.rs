//! The one intake for Stripe's webhook events, and where each goes: the signature is checked
//! over the raw body and the event is stored once by id, with the job that applies it; the job
//! routes it once ([`route`]) to the flow it concerns, applies what it changes in one
//! transaction and marks it applied, so each event takes effect exactly once.

use std::net::IpAddr;

use chrono::Utc;
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};

use crate::{
    Services, alerts, billing, checkout,
    error::{Error, Result},
    payouts, queue, security,
    stripe::events::{Envelope, event_time, verify},
    tenant_stripe,
};

/// The flow an event belongs to. Each event goes to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Subscriptions, invoices and saved cards of the platform's customers.
    Billing,
    /// A buyer paying for a won lot: Checkout, the payment, refunds and disputes.
    BuyerPayment,
    /// A connected account changed: a tenant's Stripe, or a consultant's payouts.
    ConnectedAccount,
    /// Kept in `stripe_events` and acknowledged; Remit does not act on it.
    Ignored,
}

/// Where an event goes, by its type and the account it comes from. Subscriptions and buyers'
/// payments live on the platform account, so a connected account's event is about the account
/// itself or nothing Remit acts on.
pub fn route(kind: &str, account: Option<&str>) -> Flow {
    match (kind, account) {
        ("account.updated", _) => Flow::ConnectedAccount,
        (_, Some(_)) => Flow::Ignored,
        (kind, None) if billing::events::HANDLED.contains(&kind) => Flow::Billing,
        (kind, None) if checkout::events::HANDLED.contains(&kind) => Flow::BuyerPayment,
        _ => Flow::Ignored,
    }
}

/// The fields of an event the intake stores beside its payload. `data` is left for the job
/// that applies the event, so the intake does not build it.
#[derive(Debug, Deserialize)]
struct Head {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    livemode: bool,
    account: Option<String>,
    api_version: Option<String>,
    /// Required (a payload without it is not an event), but not read here.
    #[serde(rename = "data")]
    _data: serde::de::IgnoredAny,
}

/// What the intake did with a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored; a job applies it.
    Accepted,
    /// Seen before (a repeated or concurrent delivery): nothing changed.
    Duplicate,
}

/// Verifies and stores one delivery, and queues the job that applies it, in one transaction;
/// answers without waiting for Stripe or for the change itself. A signature problem is
/// `BadRequest` (400) and nothing is stored; it is recorded as a security event (once an hour
/// per address), since it is either a misconfiguration or someone forging Stripe's events.
pub async fn receive(
    services: &Services,
    payload: &[u8],
    signature: Option<&str>,
    client_ip: Option<IpAddr>,
) -> Result<Received> {
    let secrets = services.stripe.webhook_secrets();
    if let Err(err) = verify(&secrets, payload, signature, Utc::now().timestamp()) {
        tracing::warn!(reason = ?err, "webhook refused");
        security::bad_webhook_signature(&services.pool, client_ip, err.message()).await?;
        return Err(Error::BadRequest(err.message().into()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| Error::BadRequest("The payload is not UTF-8 JSON.".into()))?;
    let head: Head =
        serde_json::from_str(text).map_err(|_| Error::BadRequest("The payload is not a Stripe event.".into()))?;

    let mut tx = services.pool.begin().await?;
    let inserted = sqlx::query!(
        "INSERT INTO stripe_events (id, type, account, livemode, api_version, created, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb) ON CONFLICT (id) DO NOTHING",
        head.id,
        head.kind,
        head.account,
        head.livemode,
        head.api_version,
        event_time(head.created),
        text,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        tracing::info!(event = %head.id, kind = %head.kind, "duplicate webhook ignored");
        return Ok(Received::Duplicate);
    }
    queue::enqueue(&mut tx, ApplyStripeEvent { event_id: head.id.clone() }).await?;
    tx.commit().await?;
    tracing::info!(event = %head.id, kind = %head.kind, "webhook accepted");
    Ok(Received::Accepted)
}

/// Applies one stored Stripe event (see [`apply_stored`]). When it keeps failing (Stripe
/// unreachable for a day), platform admins are alerted.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplyStripeEvent {
    pub event_id: String,
}

impl TaskHandler for ApplyStripeEvent {
    const IDENTIFIER: &'static str = "apply_stripe_event";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        match apply_stored(services, &self.event_id).await {
            Ok(_) => Ok(()),
            Err(err) => {
                err.log();
                if queue::is_last_attempt(&ctx) {
                    let mut conn = services.pool.acquire().await.map_err(|e| e.to_string())?;
                    let message =
                        format!("Stripe event {} could not be applied: {}", self.event_id, err.public_message());
                    alerts::raise(&mut conn, None, "stripe_event_failed", &message).await.map_err(|e| e.to_string())?;
                }
                Err(err.to_string())
            }
        }
    }
}

/// What an event is about, read from Stripe before the transaction that applies it.
enum Read {
    Billing(Option<billing::events::Read>),
    BuyerPayment(Option<checkout::events::Current>),
    ConnectedAccount,
    Ignored,
}

/// Applies a stored event (the `apply_stripe_event` job): what it is about is read from Stripe
/// first, outside any transaction, then the changes, the jobs they cause and the event's
/// `applied_at` are written in one transaction. `false` when the event was applied before.
pub async fn apply_stored(services: &Services, event_id: &str) -> Result<bool> {
    let Some(stored) = sqlx::query!("SELECT payload, applied_at FROM stripe_events WHERE id = $1", event_id)
        .fetch_optional(&services.pool)
        .await?
    else {
        return Err(anyhow::anyhow!("Stripe event {event_id} is not stored").into());
    };
    if stored.applied_at.is_some() {
        return Ok(false);
    }
    let envelope: Envelope = serde_json::from_value(stored.payload)
        .map_err(|e| anyhow::anyhow!("stored Stripe event {event_id} is malformed: {e}"))?;
    let read = match route(&envelope.kind, envelope.account.as_deref()) {
        Flow::Billing => Read::Billing(billing::events::read_current(services, &envelope).await?),
        Flow::BuyerPayment => Read::BuyerPayment(checkout::events::read_current(services, &envelope).await?),
        Flow::ConnectedAccount => Read::ConnectedAccount,
        Flow::Ignored => Read::Ignored,
    };

    let mut tx = services.pool.begin().await?;
    // The row lock makes a second job for the same event (there should be none) wait, then skip.
    let unapplied = sqlx::query_scalar!(
        "SELECT applied_at IS NULL AS \"unapplied!\" FROM stripe_events WHERE id = $1 FOR UPDATE",
        event_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if !unapplied {
        return Ok(false);
    }
    match &read {
        Read::Billing(Some(read)) => billing::events::apply(&mut tx, services, &envelope, read).await?,
        Read::BuyerPayment(Some(current)) => checkout::events::apply(&mut tx, &envelope, current).await?,
        Read::ConnectedAccount => {
            let (account, created, livemode) = (&envelope.data.object, event_time(envelope.created), envelope.livemode);
            tenant_stripe::apply_account_updated(&mut tx, account, created, livemode).await?;
            payouts::apply_account_updated(&mut tx, services, account, created, livemode).await?;
        }
        // Nothing to act on: an object that is not Remit's (e.g. a subscription's payment), or
        // a type Remit keeps without acting.
        Read::Billing(None) | Read::BuyerPayment(None) | Read::Ignored => {
            tracing::debug!(kind = %envelope.kind, "no change for this event");
        }
    }
    sqlx::query!("UPDATE stripe_events SET applied_at = now() WHERE id = $1", event_id).execute(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(event = %envelope.id, kind = %envelope.kind, "webhook applied");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_goes_to_one_flow() {
        assert_eq!(route("invoice.payment_failed", None), Flow::Billing);
        assert_eq!(route("customer.subscription.updated", None), Flow::Billing);
        assert_eq!(route("payment_method.attached", None), Flow::Billing);
        assert_eq!(route("checkout.session.completed", None), Flow::BuyerPayment);
        assert_eq!(route("charge.dispute.created", None), Flow::BuyerPayment);
        assert_eq!(route("account.updated", Some("acct_1")), Flow::ConnectedAccount);
        assert_eq!(route("account.updated", None), Flow::ConnectedAccount);
        // Subscriptions and buyers' payments live on the platform: a connected account's are not Remit's.
        assert_eq!(route("checkout.session.completed", Some("acct_1")), Flow::Ignored);
        assert_eq!(route("invoice.payment_failed", Some("acct_1")), Flow::Ignored);
        assert_eq!(route("customer.created", None), Flow::Ignored);
    }

    #[test]
    fn the_flows_handle_disjoint_types() {
        for kind in billing::events::HANDLED {
            assert!(!checkout::events::HANDLED.contains(&kind), "{kind} in two flows");
        }
    }
}
