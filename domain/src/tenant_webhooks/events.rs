//! The events Remit sends to tenants: one typed enum, the envelope every delivery carries, and
//! [`emit`], which records an event once (whatever endpoints exist) and owes it to every enabled
//! endpoint of its tenant and mode that wants its type, in the caller's transaction.
//!
//! `docs/webhooks.md` and the OpenAPI document's `webhooks` section describe these types; a test
//! holds both to this enum.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{error::Result, money::Money, states::RefundStatus, stripe::requirements::Requirements, table_queue};

/// The channel the dispatchers listen on for deliveries that became due.
pub const DELIVERIES_CHANNEL: &str = "remit_webhook_deliveries";

/// Every event Remit sends to a tenant's endpoints. Serialised as `"type"` (the event type) and
/// `"data"` (its fields) beside the envelope's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TenantEvent {
    /// Sent only by a test delivery, never recorded.
    #[serde(rename = "remit.test")]
    Test(TestMessage),
    /// The tenant's own Stripe account changed: charges, payouts or requirements.
    #[serde(rename = "stripe_account.updated")]
    StripeAccountUpdated(StripeAccountUpdated),
    /// A buyer paid for a winning.
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded(OrderPaid),
    /// The order a buyer's payment made (sent with `payment.succeeded`).
    #[serde(rename = "order.created")]
    OrderCreated(OrderPaid),
    /// An order was refunded (partly or wholly) or disputed.
    #[serde(rename = "order.updated")]
    OrderUpdated(OrderUpdated),
    /// The buyer was emailed the receipt.
    #[serde(rename = "receipt.sent")]
    ReceiptSent(ReceiptSent),
    /// A consultant's payout setup changed.
    #[serde(rename = "onboarding.updated")]
    OnboardingUpdated(OnboardingUpdated),
    /// A refund was made (by the tenant through Remit, or in Stripe's dashboard).
    #[serde(rename = "refund.created")]
    RefundCreated(RefundChanged),
    /// A refund's state changed (it succeeded, failed or was canceled).
    #[serde(rename = "refund.updated")]
    RefundUpdated(RefundChanged),
    /// A payment attempt failed (each one, with the reason).
    #[serde(rename = "payment.failed")]
    PaymentFailed(PaymentFailed),
    /// A winning's payment window closed unpaid.
    #[serde(rename = "winning.expired")]
    WinningExpired(WinningChanged),
    /// A winning's third payment attempt failed: its link is closed.
    #[serde(rename = "winning.failed")]
    WinningFailed(WinningChanged),
    /// The tenant cancelled an unpaid winning.
    #[serde(rename = "winning.cancelled")]
    WinningCancelled(WinningChanged),
    /// Second chance: the lot was offered to the next runner-up, as a winning of its own.
    #[serde(rename = "winning.offered_to_runner_up")]
    WinningOfferedToRunnerUp(RunnerUpOffered),
    /// A client paid a consultant's fee.
    #[serde(rename = "fee.paid")]
    FeePaid(FeePaid),
    /// An attempt to pay a consultant's fee failed (each one, with the reason).
    #[serde(rename = "fee.failed")]
    FeeFailed(FeeFailed),
    /// A fee payment's refund went through (each refund, once).
    #[serde(rename = "fee.refunded")]
    FeeRefunded(FeeRefunded),
}

impl TenantEvent {
    /// Every event type, as endpoints subscribe to them and the documents list them.
    pub const TYPES: [&'static str; 17] = [
        "remit.test",
        "stripe_account.updated",
        "payment.succeeded",
        "order.created",
        "order.updated",
        "receipt.sent",
        "onboarding.updated",
        "refund.created",
        "refund.updated",
        "payment.failed",
        "winning.expired",
        "winning.failed",
        "winning.cancelled",
        "winning.offered_to_runner_up",
        "fee.paid",
        "fee.failed",
        "fee.refunded",
    ];

    /// The event's type (`"payment.succeeded"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Test(_) => "remit.test",
            Self::StripeAccountUpdated(_) => "stripe_account.updated",
            Self::PaymentSucceeded(_) => "payment.succeeded",
            Self::OrderCreated(_) => "order.created",
            Self::OrderUpdated(_) => "order.updated",
            Self::ReceiptSent(_) => "receipt.sent",
            Self::OnboardingUpdated(_) => "onboarding.updated",
            Self::RefundCreated(_) => "refund.created",
            Self::RefundUpdated(_) => "refund.updated",
            Self::PaymentFailed(_) => "payment.failed",
            Self::WinningExpired(_) => "winning.expired",
            Self::WinningFailed(_) => "winning.failed",
            Self::WinningCancelled(_) => "winning.cancelled",
            Self::WinningOfferedToRunnerUp(_) => "winning.offered_to_runner_up",
            Self::FeePaid(_) => "fee.paid",
            Self::FeeFailed(_) => "fee.failed",
            Self::FeeRefunded(_) => "fee.refunded",
        }
    }

    /// The object the event is about, whose sequence it continues.
    pub fn object(&self) -> (ObjectKind, String) {
        match self {
            Self::Test(t) => (ObjectKind::WebhookEndpoint, t.endpoint.to_string()),
            Self::StripeAccountUpdated(a) => (ObjectKind::StripeAccount, a.stripe_account.clone()),
            Self::PaymentSucceeded(o) | Self::OrderCreated(o) => (ObjectKind::Order, o.order.to_string()),
            Self::OrderUpdated(o) => (ObjectKind::Order, o.order.to_string()),
            Self::ReceiptSent(r) => (ObjectKind::Order, r.order.to_string()),
            Self::OnboardingUpdated(o) => (ObjectKind::Consultant, o.consultant.to_string()),
            Self::RefundCreated(r) | Self::RefundUpdated(r) => (ObjectKind::Refund, r.refund.to_string()),
            Self::PaymentFailed(p) => (ObjectKind::Winning, p.winning.to_string()),
            Self::WinningExpired(w) | Self::WinningFailed(w) | Self::WinningCancelled(w) => {
                (ObjectKind::Winning, w.winning.to_string())
            }
            Self::WinningOfferedToRunnerUp(o) => (ObjectKind::Winning, o.winning.to_string()),
            Self::FeePaid(f) => (ObjectKind::Fee, f.fee.to_string()),
            Self::FeeFailed(f) => (ObjectKind::Fee, f.fee.to_string()),
            Self::FeeRefunded(f) => (ObjectKind::Fee, f.fee.to_string()),
        }
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Order,
    StripeAccount,
    Consultant,
    WebhookEndpoint,
    Refund,
    Winning,
    /// A consultant's fee request.
    Fee,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::StripeAccount => "stripe_account",
            Self::Consultant => "consultant",
            Self::WebhookEndpoint => "webhook_endpoint",
            Self::Refund => "refund",
            Self::Winning => "winning",
            Self::Fee => "fee",
        }
    }
}

/// `remit.test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMessage {
    pub endpoint: Uuid,
    pub message: String,
}

/// `stripe_account.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeAccountUpdated {
    pub stripe_account: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub requirements: Requirements,
}

/// `payment.succeeded` and `order.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub order: Uuid,
    pub winning: Uuid,
    pub reference: String,
    pub auction: String,
    pub lot: String,
    #[serde(flatten)]
    pub amount: Money,
    /// Stripe's PaymentIntent id.
    pub payment_intent: String,
    /// Stripe Radar's: `normal`, `elevated` or `highest`; review the last two before handing the
    /// lot over.
    pub risk_level: Option<String>,
}

/// `order.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderUpdated {
    pub order: Uuid,
    pub winning: Uuid,
    pub reference: String,
    pub lot: String,
    /// `partially_refunded`, `refunded` or `disputed` (a dispute outweighs a refund).
    pub status: String,
    #[serde(flatten)]
    pub amount: Money,
    /// Minor units of the order's currency.
    pub refunded_amount: i64,
    pub payment_intent: String,
}

/// `receipt.sent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptSent {
    pub order: Uuid,
    pub winning: Uuid,
    pub reference: String,
    pub receipt_number: String,
    /// Of the PDF.
    pub sha256: String,
    /// Fetch it with the tenant's API key.
    pub receipt_url: String,
}

/// `onboarding.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardingUpdated {
    pub consultant: Uuid,
    pub stripe_account: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub requirements_due: usize,
}

/// `refund.created` and `refund.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundChanged {
    pub refund: Uuid,
    pub winning: Uuid,
    pub order: Uuid,
    pub reference: String,
    pub lot: String,
    /// The refund's amount (minor units) and currency.
    #[serde(flatten)]
    pub amount: Money,
    pub status: RefundStatus,
    /// The tenant's words, or "Refunded in Stripe" for a refund made there.
    pub reason: String,
    /// Stripe's refund id.
    pub stripe_refund: String,
    /// Why the money could not be returned, for a failed refund.
    pub failure_reason: Option<String>,
}

/// `payment.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub winning: Uuid,
    pub reference: String,
    pub lot: String,
    #[serde(flatten)]
    pub amount: Money,
    /// Stripe's decline or error code, when it gave one.
    pub failure_code: Option<String>,
    /// What the buyer was told, in words.
    pub reason: String,
    /// Payment attempts left (0 after the third failure, which closes the link).
    pub attempts_left: i32,
}

/// `winning.expired`, `winning.failed` and `winning.cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinningChanged {
    pub winning: Uuid,
    pub reference: String,
    pub auction: String,
    pub lot: String,
    #[serde(flatten)]
    pub amount: Money,
    /// `expired`, `failed` or `cancelled`.
    pub status: String,
    /// The payment window's end.
    pub pay_by: chrono::DateTime<Utc>,
    /// Why, for a cancelled winning.
    pub reason: Option<String>,
}

/// `winning.offered_to_runner_up`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerUpOffered {
    /// The offer: a winning of its own, with its own payment link.
    pub winning: Uuid,
    /// The winning that closed unpaid.
    pub previous_winning: Uuid,
    /// `<first reference>-R<position>`.
    pub reference: String,
    pub auction: String,
    pub lot: String,
    /// The runner-up's bid.
    #[serde(flatten)]
    pub amount: Money,
    /// 1 for the best runner-up, then 2, …
    pub position: i32,
    pub pay_by: chrono::DateTime<Utc>,
}

/// `fee.paid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeePaid {
    /// The fee request.
    pub fee: Uuid,
    /// The order the payment made (its receipt, refunds and disputes are the order's).
    pub order: Uuid,
    /// The consultant who billed it (the user's id).
    pub consultant: Uuid,
    pub description: String,
    #[serde(flatten)]
    pub amount: Money,
    pub due_on: chrono::NaiveDate,
    /// Stripe's PaymentIntent id.
    pub payment_intent: String,
    /// Stripe Radar's: `normal`, `elevated` or `highest`.
    pub risk_level: Option<String>,
}

/// `fee.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeFailed {
    pub fee: Uuid,
    pub consultant: Uuid,
    pub description: String,
    #[serde(flatten)]
    pub amount: Money,
    /// Stripe's decline or error code, when it gave one.
    pub failure_code: Option<String>,
    /// The reason in words.
    pub reason: String,
}

/// `fee.refunded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeeRefunded {
    pub fee: Uuid,
    /// The order the fee's payment made.
    pub order: Uuid,
    /// Remit's refund id.
    pub refund: Uuid,
    pub consultant: Uuid,
    pub description: String,
    /// What this refund gave back.
    #[serde(flatten)]
    pub amount: Money,
    /// The consultant's words (also on the credit note).
    pub reason: String,
    /// Stripe's refund id.
    pub stripe_refund: String,
}

/// Where an event stands among its object's events: a receiver that sees a sequence number
/// more than one past the last it has, or a `previous_event` it never received, knows it missed
/// or reordered something (and can replay from Remit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectPosition {
    #[serde(rename = "type")]
    pub kind: ObjectKind,
    pub id: String,
    /// 1 for the object's first event, then one more for each; 0 for test events, which are
    /// outside every sequence.
    pub sequence: i64,
    pub previous_event: Option<String>,
}

/// What every delivery's body is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// `evt_…`, the same for every delivery and retry of the event (and the `webhook-id` header).
    pub id: String,
    /// Unix time the event was recorded.
    pub created: i64,
    /// False for events about data made with a test API key.
    pub livemode: bool,
    pub object: ObjectPosition,
    #[serde(flatten)]
    pub event: TenantEvent,
}

/// The public id of the event recorded as `id`.
pub fn public_id(id: Uuid) -> String {
    format!("evt_{}", id.simple())
}

/// Records `event` for the tenant, continuing its object's sequence, and owes it to every enabled
/// endpoint of the tenant and mode that wants its type, all in the caller's transaction: the
/// event exists exactly when the change that caused it does.
pub async fn emit(conn: &mut PgConnection, tenant_id: Uuid, livemode: bool, event: TenantEvent) -> Result<()> {
    let id = Uuid::new_v4();
    let (object_kind, object_id) = event.object();
    // The object's row is locked until the caller commits, so events for one object are numbered
    // in the order their transactions commit; the insert makes sure there is a row to lock.
    sqlx::query!(
        "INSERT INTO webhook_object_sequences (tenant_id, object_type, object_id, last_sequence)
         VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
        tenant_id,
        object_kind.as_str(),
        object_id,
    )
    .execute(&mut *conn)
    .await?;
    let previous = sqlx::query!(
        "SELECT last_sequence, last_event_id FROM webhook_object_sequences
         WHERE tenant_id = $1 AND object_type = $2 AND object_id = $3 FOR UPDATE",
        tenant_id,
        object_kind.as_str(),
        object_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    let sequence = previous.last_sequence + 1;
    sqlx::query!(
        "UPDATE webhook_object_sequences SET last_sequence = $4, last_event_id = $5
         WHERE tenant_id = $1 AND object_type = $2 AND object_id = $3",
        tenant_id,
        object_kind.as_str(),
        object_id,
        sequence,
        id,
    )
    .execute(&mut *conn)
    .await?;

    let kind = event.kind();
    let envelope = Envelope {
        id: public_id(id),
        created: Utc::now().timestamp(),
        livemode,
        object: ObjectPosition {
            kind: object_kind,
            id: object_id.clone(),
            sequence,
            previous_event: previous.last_event_id.map(public_id),
        },
        event,
    };
    let payload = serde_json::to_value(&envelope).map_err(|e| anyhow::anyhow!("an event payload: {e}"))?;
    sqlx::query!(
        "INSERT INTO webhook_events (id, tenant_id, type, livemode, payload, object_type, object_id, sequence,
             previous_event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        tenant_id,
        kind,
        livemode,
        payload,
        object_kind.as_str(),
        object_id,
        sequence,
        previous.last_event_id,
    )
    .execute(&mut *conn)
    .await?;
    let owed = sqlx::query!(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id)
         SELECT gen_random_uuid(), $1, e.id FROM webhook_endpoints e
         WHERE e.tenant_id = $2 AND e.livemode = $3 AND e.enabled
           AND (e.event_types IS NULL OR $4 = ANY (e.event_types))",
        id,
        tenant_id,
        livemode,
        kind,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if owed > 0 {
        // Told once per transaction however many events it records (PostgreSQL folds equal
        // notifications), and only when it commits.
        table_queue::wake_on_commit(&mut *conn, DELIVERIES_CHANNEL).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn paid() -> OrderPaid {
        OrderPaid {
            order: Uuid::nil(),
            winning: Uuid::nil(),
            reference: "INV-1".into(),
            auction: "Spring".into(),
            lot: "12".into(),
            amount: Money { amount: 4900, currency: Currency::parse("usd").unwrap() },
            payment_intent: "pi_1".into(),
            risk_level: Some("normal".into()),
        }
    }

    #[test]
    fn the_envelope_carries_type_data_and_the_objects_position() {
        let envelope = Envelope {
            id: "evt_1".into(),
            created: 1_700_000_000,
            livemode: false,
            object: ObjectPosition {
                kind: ObjectKind::Order,
                id: Uuid::nil().to_string(),
                sequence: 2,
                previous_event: Some("evt_0".into()),
            },
            event: TenantEvent::PaymentSucceeded(paid()),
        };
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["type"], "payment.succeeded");
        assert_eq!(json["data"]["amount"], 4900);
        assert_eq!(json["data"]["currency"], "usd");
        assert_eq!(json["object"]["type"], "order");
        assert_eq!(json["object"]["sequence"], 2);
        assert_eq!(json["object"]["previous_event"], "evt_0");
        assert_eq!(serde_json::from_value::<Envelope>(json).unwrap(), envelope);
    }

    #[test]
    fn each_variant_serialises_as_its_listed_type() {
        let events = [
            TenantEvent::Test(TestMessage { endpoint: Uuid::nil(), message: "hi".into() }),
            TenantEvent::PaymentSucceeded(paid()),
            TenantEvent::OrderCreated(paid()),
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.kind());
            assert!(TenantEvent::TYPES.contains(&event.kind()));
        }
    }
}
