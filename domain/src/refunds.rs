//! Refunds of payments: a tenant's staff (or its system, with an API key) refunds a paid winning,
//! and a consultant a fee their client paid, in full or in parts. Stripe refunds the destination
//! charge, takes the connected account's share back (`reverse_transfer`) and, when the tenant's
//! terms say so, the platform's fee in proportion (`refund_application_fee`). Each refund is a row
//! that follows Stripe's state through the one event intake ([`record_stripe_refund`]), tells the
//! tenant (`refund.created` and `refund.updated` for winnings, `fee.refunded` for fees), and, once
//! it succeeded, gets a credit note emailed to whoever paid ([`IssueCreditNote`]).
//!
//! Asking Stripe follows the checkout's pattern: the amount is claimed under the order's row lock
//! in a short transaction (a `requested` row, so concurrent refunds can never add up to more than
//! was paid), Stripe is called holding no lock, and the answer is recorded after. A refusal
//! deletes the claim: nothing is stored.

use chrono::{DateTime, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sqlx::PgConnection;
use stripe_client_core::StripeRequest as _;
use stripe_core::refund::CreateRefund;
use uuid::Uuid;

use crate::states::BuyerEmail;
pub use crate::states::RefundStatus;

use crate::{
    Services, audit,
    auth::Principal,
    buyer_mail,
    error::{Error, Result},
    mail::{self, Attachment, OutgoingEmail},
    money::{Currency, Money, format_minor},
    queue,
    receipts::{self, pdf},
    stripe::idempotent,
    tenant_webhooks::{
        self,
        events::{FeeRefunded, RefundChanged, TenantEvent},
    },
};

/// The answer to an Idempotency-Key used before for another refund.
const KEY_REUSED: &str =
    "This Idempotency-Key was already used for a different refund. Use a new key for a new refund.";

/// Longest reason a refund takes (it is printed on the credit note and sent to Stripe as metadata,
/// whose values Stripe caps at 500 characters).
const MAX_REASON: usize = 500;

/// What a refund request asks for.
#[derive(Debug, Clone, Deserialize)]
pub struct NewRefund {
    /// Minor units; absent for all that is left.
    #[serde(default)]
    pub amount: Option<i64>,
    pub reason: String,
}

/// A refund's amount as a person types it on a form, in major units of the payment's currency:
/// empty for all that is left.
pub fn typed_amount(typed: &str, currency: &str) -> Result<Option<i64>> {
    match typed.trim() {
        "" => Ok(None),
        typed => {
            let currency = Currency::parse(currency).ok_or(Error::NotFound("currency"))?;
            Ok(Some(Money::parse(typed, currency, "amount")?.amount))
        }
    }
}

/// What is refunded: a tenant's paid winning, or a fee a consultant billed (refunded only by
/// that consultant).
#[derive(Debug, Clone, Copy)]
pub enum Refunded {
    Winning { tenant_id: Uuid, bid_id: Uuid },
    Fee { consultant_id: Uuid, fee_id: Uuid },
}

/// Who asked for a refund.
#[derive(Debug, Clone, Copy)]
pub enum Requester<'a> {
    /// Someone signed in: the tenant's staff, or the consultant who billed the fee.
    Staff(&'a Principal),
    /// The tenant's system, with an API key of the bid's mode.
    ApiKey { livemode: bool },
}

/// A refund as the tenant sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refund {
    pub id: Uuid,
    /// The winning refunded (absent for a fee's refund).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winning: Option<Uuid>,
    /// The fee request refunded (absent for a winning's refund).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<Uuid>,
    pub order: Uuid,
    #[serde(flatten)]
    pub amount: Money,
    pub status: RefundStatus,
    pub reason: String,
    /// Stripe's `re_…` id, once Stripe has made it.
    pub stripe_refund: Option<String>,
    /// Why Stripe could not return the money (`failed` refunds).
    pub failure_reason: Option<String>,
    /// The credit note's number, once it is issued.
    pub credit_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

struct RefundRow {
    id: Uuid,
    bid_id: Option<Uuid>,
    fee_request_id: Option<Uuid>,
    order_id: Uuid,
    amount: i64,
    currency: String,
    status: RefundStatus,
    reason: String,
    stripe_refund_id: Option<String>,
    failure_reason: Option<String>,
    credit_note: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl RefundRow {
    fn into_refund(self) -> Result<Refund> {
        Ok(Refund {
            id: self.id,
            winning: self.bid_id,
            fee: self.fee_request_id,
            order: self.order_id,
            amount: Money::stored(self.amount, &self.currency)?,
            status: self.status,
            reason: self.reason,
            stripe_refund: self.stripe_refund_id,
            failure_reason: self.failure_reason,
            credit_note: self.credit_note,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

async fn row(conn: &mut PgConnection, id: Uuid) -> Result<Option<RefundRow>> {
    Ok(sqlx::query_as!(
        RefundRow,
        r#"SELECT r.id, o.bid_id, o.fee_request_id, r.order_id, r.amount, r.currency, r.status AS "status: RefundStatus", r.reason,
                  r.stripe_refund_id, r.failure_reason, c.number AS "credit_note?", r.created_at, r.updated_at
           FROM refunds r JOIN orders o ON o.id = r.order_id LEFT JOIN credit_notes c ON c.refund_id = r.id
           WHERE r.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// The refunds of a tenant's bid, oldest first (another tenant's bid has none).
pub async fn of_winning(services: &Services, tenant_id: Uuid, bid_id: Uuid) -> Result<Vec<Refund>> {
    sqlx::query_as!(
        RefundRow,
        r#"SELECT r.id, o.bid_id, o.fee_request_id, r.order_id, r.amount, r.currency, r.status AS "status: RefundStatus", r.reason,
                  r.stripe_refund_id, r.failure_reason, c.number AS "credit_note?", r.created_at, r.updated_at
           FROM refunds r JOIN orders o ON o.id = r.order_id LEFT JOIN credit_notes c ON c.refund_id = r.id
           WHERE o.bid_id = $1 AND r.tenant_id = $2 ORDER BY r.created_at, r.id"#,
        bid_id,
        tenant_id
    )
    .fetch_all(&services.pool)
    .await?
    .into_iter()
    .map(RefundRow::into_refund)
    .collect()
}

/// What can still be refunded of a tenant's paid bid; `None` before it is paid.
pub async fn left_to_refund(services: &Services, tenant_id: Uuid, bid_id: Uuid) -> Result<Option<Money>> {
    let order = sqlx::query!(
        r#"SELECT o.amount, o.currency, o.refunded_amount,
                  (SELECT coalesce(sum(r.amount), 0) FROM refunds r
                   WHERE r.order_id = o.id AND r.status IN ('requested', 'pending', 'succeeded'))::bigint AS "held!"
           FROM orders o WHERE o.bid_id = $1 AND o.tenant_id = $2"#,
        bid_id,
        tenant_id
    )
    .fetch_optional(&services.pool)
    .await?;
    order.map(|o| Money::stored(refundable(o.amount, o.held, o.refunded_amount), &o.currency)).transpose()
}

/// A request's fingerprint, so a repeated Idempotency-Key with another body is told apart.
fn request_hash(amount: Option<i64>, reason: &str) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(amount.map(|a| a.to_string()).unwrap_or_default());
    hash.update([0]);
    hash.update(reason);
    hash.finalize().to_vec()
}

/// The refund's id: for a request with an Idempotency-Key, derived from the tenant and the key,
/// so a repeat after a lost answer names the same refund, and Stripe (asked with the same
/// idempotency key) makes it once; otherwise random.
fn refund_id(tenant_id: Uuid, key: Option<&str>) -> Uuid {
    match key {
        Some(key) => {
            let digest = Sha256::new().chain_update(tenant_id.as_bytes()).chain_update(key.as_bytes()).finalize();
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_sha1_bytes(bytes).into_uuid()
        }
        None => Uuid::new_v4(),
    }
}

/// What can still be refunded of `paid` when `held` is already refunded or being refunded.
/// Stripe's own count of what it refunded (a refund made in its dashboard and not yet seen by
/// Remit) is taken when it is larger.
pub fn refundable(paid: i64, held_by_refunds: i64, refunded_by_stripe: i64) -> i64 {
    (paid - held_by_refunds.max(refunded_by_stripe)).max(0)
}

/// The share of `total` (the platform's fee, or the transfer to the tenant) that a refund of
/// `part` out of a payment of `whole` moves back, as Stripe shares it: in proportion, rounded to
/// the nearest minor unit, with the refund that leaves nothing of the payment taking whatever of
/// `total` is left, so no cent stays behind. `refunded_before` and `done` are what earlier
/// refunds took of the payment and of `total`.
pub fn proportional(total: i64, part: i64, whole: i64, refunded_before: i64, done: i64) -> i64 {
    if whole <= 0 || total <= done {
        return 0;
    }
    if refunded_before + part >= whole {
        return total - done;
    }
    let share = (i128::from(total) * i128::from(part) + i128::from(whole) / 2) / i128::from(whole);
    i64::try_from(share).unwrap_or(0).min(total - done)
}

struct Claim {
    id: Uuid,
    livemode: bool,
    payment_intent: String,
    amount: i64,
    reverse_fee: bool,
    tenant_id: Uuid,
    refunded: Refunded,
    order_id: Uuid,
    reason: String,
}

/// What a claim reads of the paid winning or fee, before its order.
struct Subject {
    tenant_id: Uuid,
    livemode: bool,
    refund_application_fee: bool,
    /// "Lot 12" or "The fee “Tax return 2026”", for messages.
    name: String,
    bid_id: Option<Uuid>,
    fee_id: Option<Uuid>,
}

/// The winning of the tenant (of the API key's mode, when a key asks), or the consultant's fee.
async fn subject(conn: &mut PgConnection, refunded: Refunded, livemode: Option<bool>) -> Result<Subject> {
    Ok(match refunded {
        Refunded::Winning { tenant_id, bid_id } => {
            let bid = sqlx::query!(
                "SELECT b.id, b.lot, b.livemode, t.refund_application_fee FROM winning_bids b
                 JOIN tenants t ON t.id = b.tenant_id
                 WHERE b.id = $1 AND b.tenant_id = $2 AND ($3::boolean IS NULL OR b.livemode = $3)",
                bid_id,
                tenant_id,
                livemode,
            )
            .fetch_optional(conn)
            .await?
            .ok_or(Error::NotFound("winning bid"))?;
            Subject {
                tenant_id,
                livemode: bid.livemode,
                refund_application_fee: bid.refund_application_fee,
                name: format!("Lot {}", bid.lot),
                bid_id: Some(bid.id),
                fee_id: None,
            }
        }
        Refunded::Fee { consultant_id, fee_id } => {
            let fee = sqlx::query!(
                "SELECT f.id, f.tenant_id, f.description, f.livemode, t.refund_application_fee FROM fee_requests f
                 JOIN tenants t ON t.id = f.tenant_id WHERE f.id = $1 AND f.consultant_id = $2",
                fee_id,
                consultant_id,
            )
            .fetch_optional(conn)
            .await?
            .ok_or(Error::NotFound("fee"))?;
            Subject {
                tenant_id: fee.tenant_id,
                livemode: fee.livemode,
                refund_application_fee: fee.refund_application_fee,
                name: format!("The fee “{}”", fee.description),
                bid_id: None,
                fee_id: Some(fee.id),
            }
        }
    })
}

enum Claimed {
    New(Claim),
    Existing(Uuid),
}

/// Refunds a paid winning of a tenant or a paid fee of a consultant, fully or in part. Returns
/// the refund and whether this request made it (`false`: an earlier request with the same
/// Idempotency-Key did).
pub async fn create(
    services: &Services,
    refunded: Refunded,
    requester: Requester<'_>,
    request: &NewRefund,
    idempotency_key: Option<&str>,
) -> Result<(Refund, bool)> {
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(Error::invalid("reason", format!("Say why you refund (up to {MAX_REASON} characters).")));
    }
    crate::input::plain_text(reason, "reason", false)?;
    if request.amount.is_some_and(|a| a <= 0) {
        return Err(Error::invalid("amount", "Give an amount above zero, or leave it out to refund all that is left."));
    }
    if let Some(key) = idempotency_key
        && (key.is_empty() || key.len() > 255 || key.chars().any(char::is_control))
    {
        return Err(Error::BadRequest("An Idempotency-Key is 1 to 255 printable characters.".into()));
    }
    let claim = match claim(services, refunded, requester, request, reason, idempotency_key).await? {
        Claimed::Existing(id) => {
            let mut conn = services.pool.acquire().await?;
            let refund = row(&mut conn, id).await?.ok_or(Error::NotFound("refund"))?.into_refund()?;
            return Ok((refund, false));
        }
        Claimed::New(claim) => claim,
    };
    let stripe = services.stripe.mode(claim.livemode)?;
    let about = match claim.refunded {
        Refunded::Winning { bid_id, .. } => ("bid".to_owned(), bid_id.to_string()),
        Refunded::Fee { fee_id, .. } => ("fee_request".to_owned(), fee_id.to_string()),
    };
    let metadata: std::collections::HashMap<String, String> = [
        ("refund".to_owned(), claim.id.to_string()),
        ("tenant".to_owned(), claim.tenant_id.to_string()),
        about,
        ("order".to_owned(), claim.order_id.to_string()),
        ("reason".to_owned(), claim.reason.clone()),
    ]
    .into_iter()
    .collect();
    let answer = CreateRefund::new()
        .payment_intent(claim.payment_intent.as_str())
        .amount(claim.amount)
        .reverse_transfer(true)
        .refund_application_fee(claim.reverse_fee)
        .metadata(metadata)
        .customize()
        .request_strategy(idempotent(format!("remit-refund-{}", claim.id))?)
        .send(stripe.client())
        .await;
    let stripe_refund = match answer {
        Ok(refund) => refund,
        Err(err) => {
            // Nothing is kept of a refund Stripe did not make. Had Stripe made it after all (an
            // answer lost on the way), its events bring it in by the id in its metadata.
            sqlx::query!("DELETE FROM refunds WHERE id = $1 AND status = 'requested'", claim.id)
                .execute(&services.pool)
                .await?;
            return Err(refused(err));
        }
    };
    let mut tx = services.pool.begin().await?;
    sqlx::query!("SELECT id FROM orders WHERE id = $1 FOR UPDATE", claim.order_id).fetch_one(&mut *tx).await?;
    let actor = match requester {
        Requester::Staff(principal) => Some(principal),
        Requester::ApiKey { .. } => None,
    };
    record_stripe_refund(&mut tx, claim.order_id, &stripe_refund).await?;
    audit::record(
        &mut tx,
        audit::Entry {
            tenant_id: Some(claim.tenant_id),
            actor,
            action: "refund.created",
            target: Some(claim.id.to_string()),
            reason: Some(claim.reason.clone()),
            details: match claim.refunded {
                Refunded::Winning { bid_id, .. } => serde_json::json!({
                    "winning": bid_id,
                    "amount": claim.amount,
                    "stripe_refund": stripe_refund.id.as_str(),
                    "by": if actor.is_some() { "staff" } else { "api_key" },
                }),
                Refunded::Fee { fee_id, .. } => serde_json::json!({
                    "fee": fee_id,
                    "amount": claim.amount,
                    "stripe_refund": stripe_refund.id.as_str(),
                    "by": "consultant",
                }),
            },
        },
    )
    .await?;
    let refund = row(&mut tx, claim.id).await?.ok_or(Error::NotFound("refund"))?.into_refund()?;
    tx.commit().await?;
    tracing::info!(refund = %claim.id, stripe_refund = %stripe_refund.id, "refund made");
    Ok((refund, true))
}

/// Under the order's row lock: checks the request against what was paid and already refunded,
/// and claims the amount with a `requested` row (or finds the refund an earlier request with the
/// same key made).
async fn claim(
    services: &Services,
    refunded: Refunded,
    requester: Requester<'_>,
    request: &NewRefund,
    reason: &str,
    idempotency_key: Option<&str>,
) -> Result<Claimed> {
    let hash = request_hash(request.amount, reason);
    let mut tx = services.pool.begin().await?;
    let livemode = match requester {
        Requester::ApiKey { livemode } => Some(livemode),
        Requester::Staff(_) => None,
    };
    let subject = subject(&mut tx, refunded, livemode).await?;
    let tenant_id = subject.tenant_id;
    let id = refund_id(tenant_id, idempotency_key);
    let order = sqlx::query!(
        "SELECT id, amount, currency, status, refunded_amount, stripe_payment_intent_id, application_fee FROM orders
         WHERE bid_id = $1 OR fee_request_id = $2 FOR UPDATE",
        subject.bid_id,
        subject.fee_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::conflict(format!("{} is not paid, so there is nothing to refund.", subject.name)))?;
    if let Some(key) = idempotency_key {
        let earlier = sqlx::query!(
            "SELECT id, order_id, request_hash FROM refunds WHERE tenant_id = $1 AND idempotency_key = $2",
            tenant_id,
            key
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(earlier) = earlier {
            // A tenant's keys are one space for all its payments (winnings and fees): the same
            // key and words for another payment are another refund.
            if earlier.order_id != order.id || earlier.request_hash.as_deref() != Some(hash.as_slice()) {
                return Err(Error::conflict(KEY_REUSED));
            }
            return Ok(Claimed::Existing(earlier.id));
        }
        // Stripe made this refund after an earlier request's answer was lost, and its event
        // recorded it (without the key).
        let recorded =
            sqlx::query_scalar!("SELECT order_id FROM refunds WHERE id = $1", id).fetch_optional(&mut *tx).await?;
        match recorded {
            Some(order_id) if order_id == order.id => return Ok(Claimed::Existing(id)),
            Some(_) => return Err(Error::conflict(KEY_REUSED)),
            None => {}
        }
    }
    if order.status == "disputed" {
        return Err(Error::conflict("The payment is disputed, so it cannot be refunded while the dispute is open."));
    }
    // A mode without Stripe keys is refused before anything is claimed, so no claim is left
    // waiting for a call that cannot be made.
    services.stripe.mode(subject.livemode)?;
    let held = sqlx::query!(
        r#"SELECT coalesce(sum(amount), 0)::bigint AS "amount!", coalesce(sum(application_fee_refunded), 0)::bigint AS "fee!"
           FROM refunds WHERE order_id = $1 AND status IN ('requested', 'pending', 'succeeded')"#,
        order.id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (held, fee_held) = (held.amount, held.fee);
    let left = refundable(order.amount, held, order.refunded_amount);
    let paid = format_minor(order.amount, &order.currency);
    if left == 0 {
        return Err(Error::conflict(format!("The payment of {paid} is already refunded in full.")));
    }
    let amount = request.amount.unwrap_or(left);
    if amount > left {
        return Err(Error::invalid(
            "amount",
            format!(
                "You can refund at most {} of the {paid} paid ({} is refunded or being refunded).",
                format_minor(left, &order.currency),
                format_minor(order.amount - left, &order.currency)
            ),
        ));
    }
    let created_by = match requester {
        Requester::Staff(principal) => Some(principal.user_id),
        Requester::ApiKey { .. } => None,
    };
    let fee_back = if subject.refund_application_fee {
        proportional(order.application_fee, amount, order.amount, held.max(order.refunded_amount), fee_held)
    } else {
        0
    };
    sqlx::query!(
        "INSERT INTO refunds (id, tenant_id, order_id, livemode, amount, currency, reason, status, idempotency_key,
             request_hash, created_by, application_fee_refunded)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'requested', $8, $9, $10, $11)",
        id,
        tenant_id,
        order.id,
        subject.livemode,
        amount,
        order.currency,
        reason,
        idempotency_key,
        hash,
        created_by,
        fee_back,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Claimed::New(Claim {
        id,
        livemode: subject.livemode,
        payment_intent: order.stripe_payment_intent_id,
        amount,
        reverse_fee: subject.refund_application_fee,
        tenant_id,
        refunded,
        order_id: order.id,
        reason: reason.to_owned(),
    }))
}

/// Stripe's refusal of a refund, in words for the tenant: funds short → 402; a refusal about the
/// charge's state → 409; Stripe unreachable → 502.
fn refused(err: stripe::StripeError) -> Error {
    match &err {
        stripe::StripeError::Stripe(api, status) if (400..500).contains(status) && *status != 429 => {
            let code = api.code.as_ref().map(|c| c.as_str().to_owned());
            tracing::info!(status, code = ?code, "Stripe refused a refund");
            let said = api.message.clone().unwrap_or_else(|| "no reason given".to_owned());
            match code.as_deref() {
                Some("balance_insufficient" | "insufficient_funds") => Error::Declined(format!(
                    "Stripe refused the refund: the Stripe balance it would come from is too low ({said}). \
                     Add funds to the Stripe account, or wait for incoming payments, then try again."
                )),
                _ if *status == 402 => Error::Declined(format!("Stripe refused the refund: {said}")),
                _ => Error::conflict(format!("Stripe refused the refund: {said}")),
            }
        }
        _ => {
            crate::stripe::upstream(err, "make the refund").log();
            Error::Upstream(
                "Stripe did not answer, so the refund may not have been made. Try again: a request with the \
                 same Idempotency-Key is never refunded twice."
                    .into(),
            )
        }
    }
}

/// Records Stripe's refund on its order (whose row the caller holds locked): the `requested`
/// claim it answers, the refund Stripe reports again, or one made outside Remit (in Stripe's
/// dashboard). Tells the tenant of a new refund or a changed state, and queues the credit note
/// when it succeeded. Repeated and reordered events change nothing twice.
pub async fn record_stripe_refund(
    conn: &mut PgConnection,
    order_id: Uuid,
    refund: &stripe_shared::Refund,
) -> Result<()> {
    let status = RefundStatus::from_stripe(refund.status.as_deref());
    let stripe_id = refund.id.as_str();
    let ours = refund.metadata.as_ref().and_then(|m| m.get("refund")).and_then(|id| id.parse::<Uuid>().ok());
    let existing = sqlx::query!(
        r#"SELECT id, status AS "status: RefundStatus" FROM refunds
           WHERE order_id = $1 AND (stripe_refund_id = $2 OR (id = $3 AND stripe_refund_id IS NULL))
           ORDER BY stripe_refund_id NULLS LAST LIMIT 1"#,
        order_id,
        stripe_id,
        ours,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let failure = refund.failure_reason.clone();
    let created = crate::stripe::events::event_time(refund.created);
    let (id, told) = match existing {
        Some(found) if found.status == RefundStatus::Requested => {
            sqlx::query!(
                "UPDATE refunds SET status = $2, stripe_refund_id = $3, failure_reason = $4, stripe_created_at = $5,
                     updated_at = now()
                 WHERE id = $1",
                found.id,
                status as RefundStatus,
                stripe_id,
                failure,
                created,
            )
            .execute(&mut *conn)
            .await?;
            (found.id, Some("refund.created"))
        }
        Some(found) if status.rank() > found.status.rank() => {
            sqlx::query!(
                "UPDATE refunds SET status = $2, failure_reason = $3, updated_at = now() WHERE id = $1",
                found.id,
                status as RefundStatus,
                failure,
            )
            .execute(&mut *conn)
            .await?;
            (found.id, Some("refund.updated"))
        }
        Some(found) => (found.id, None),
        None => {
            // Made outside Remit: kept under the id its metadata names, if any, else a new one.
            let id = ours.unwrap_or_else(Uuid::new_v4);
            let reason = refund
                .metadata
                .as_ref()
                .and_then(|m| m.get("reason"))
                .cloned()
                .or_else(|| refund.reason.as_ref().map(|r| format!("Refunded in Stripe ({})", r.as_str())))
                .unwrap_or_else(|| "Refunded in Stripe".to_owned());
            let inserted = sqlx::query!(
                "INSERT INTO refunds (id, tenant_id, order_id, livemode, amount, currency, reason, stripe_reason, status,
                     stripe_refund_id, failure_reason, stripe_created_at)
                 SELECT $1, o.tenant_id, o.id,
                        coalesce((SELECT b.livemode FROM winning_bids b WHERE b.id = o.bid_id),
                                 (SELECT f.livemode FROM fee_requests f WHERE f.id = o.fee_request_id)),
                        $3, $4, $5, $6, $7, $8, $9, $10
                 FROM orders o WHERE o.id = $2
                 ON CONFLICT DO NOTHING",
                id,
                order_id,
                refund.amount,
                refund.currency.to_string(),
                reason,
                refund.reason.as_ref().map(|r| r.as_str().to_owned()),
                status as RefundStatus,
                stripe_id,
                failure,
                created,
            )
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Ok(());
            }
            (id, Some("refund.created"))
        }
    };
    let Some(kind) = told else { return Ok(()) };
    let refund = row(conn, id).await?.ok_or(Error::NotFound("refund"))?;
    if refund.status == RefundStatus::Succeeded {
        queue::enqueue(conn, IssueCreditNote { refund_id: id }).await?;
    }
    let amount = Money::stored(refund.amount, &refund.currency)?;
    let event = match (refund.bid_id, refund.fee_request_id) {
        (Some(bid_id), _) => {
            let bid = sqlx::query!("SELECT reference, lot FROM winning_bids WHERE id = $1", bid_id)
                .fetch_one(&mut *conn)
                .await?;
            let changed = RefundChanged {
                refund: id,
                winning: bid_id,
                order: refund.order_id,
                reference: bid.reference,
                lot: bid.lot,
                amount,
                status: refund.status,
                reason: refund.reason,
                stripe_refund: stripe_id.to_owned(),
                failure_reason: refund.failure_reason,
            };
            if kind == "refund.created" {
                TenantEvent::RefundCreated(changed)
            } else {
                TenantEvent::RefundUpdated(changed)
            }
        }
        // A fee's refund is told once, when the money went back.
        (None, Some(fee_id)) if refund.status == RefundStatus::Succeeded => {
            let fee = sqlx::query!("SELECT consultant_id, description FROM fee_requests WHERE id = $1", fee_id)
                .fetch_one(&mut *conn)
                .await?;
            TenantEvent::FeeRefunded(FeeRefunded {
                fee: fee_id,
                order: refund.order_id,
                refund: id,
                consultant: fee.consultant_id,
                description: fee.description,
                amount,
                reason: refund.reason,
                stripe_refund: stripe_id.to_owned(),
            })
        }
        _ => return Ok(()),
    };
    let owner = sqlx::query!("SELECT tenant_id, livemode FROM refunds WHERE id = $1", id).fetch_one(&mut *conn).await?;
    tenant_webhooks::events::emit(conn, owner.tenant_id, owner.livemode, event).await
}

/// Makes a succeeded refund's credit note and emails it to whoever paid (see [`issue_credit_note`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct IssueCreditNote {
    pub refund_id: Uuid,
}

impl TaskHandler for IssueCreditNote {
    const IDENTIFIER: &'static str = "issue_credit_note";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        issue_credit_note(services, self.refund_id).await.map(|_| ()).map_err(|err| {
            err.log();
            err.to_string()
        })
    }
}

/// Makes the refund's credit note (a PDF from the receipts' renderer, referring to the receipt)
/// and queues the email that carries it, once: the note is unique per refund and numbered from
/// the tenant's own counter in the transaction that stores it, so numbers have no gaps. `None`
/// when the refund has not succeeded.
pub async fn issue_credit_note(services: &Services, refund_id: Uuid) -> Result<Option<Uuid>> {
    if let Some(id) = sqlx::query_scalar!("SELECT id FROM credit_notes WHERE refund_id = $1", refund_id)
        .fetch_optional(&services.pool)
        .await?
    {
        return Ok(Some(id));
    }
    let refund = sqlx::query!(
        r#"SELECT r.tenant_id, r.order_id, r.amount, r.currency, r.reason, r.status AS "status: RefundStatus",
                  r.stripe_refund_id, r.updated_at
           FROM refunds r WHERE r.id = $1"#,
        refund_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("refund"))?;
    if refund.status != RefundStatus::Succeeded {
        return Ok(None);
    }
    let order = receipts::describe(&services.pool, refund.order_id).await?;
    // The credit note names the receipt it corrects, so the receipt is made first.
    let receipt = receipts::issue(services, refund.order_id).await?;
    let receipt_number = sqlx::query_scalar!("SELECT number FROM receipts WHERE id = $1", receipt.receipt_id)
        .fetch_one(&services.pool)
        .await?;

    let mut tx = services.pool.begin().await?;
    let issued_at = Utc::now();
    let sequence = sqlx::query_scalar!(
        "INSERT INTO credit_note_counters (tenant_id, last_number) VALUES ($1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET last_number = credit_note_counters.last_number + 1
         RETURNING last_number",
        refund.tenant_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let number = format!("CN-{}-{sequence:06}", issued_at.format("%Y"));
    let verification_code = receipts::new_verification_code();
    let (seller, items) = order.paid_for.seller_and_items(&order.tenant);
    let content = pdf::ReceiptContent {
        kind: pdf::Kind::CreditNote { receipt_number: receipt_number.clone(), reason: refund.reason.clone() },
        number: number.clone(),
        seller,
        items,
        amount: refund.amount,
        currency: refund.currency.clone(),
        paid_at: refund.updated_at,
        issued_at,
        payment_reference: refund.stripe_refund_id.clone().unwrap_or_default(),
        verification_code: verification_code.clone(),
        verify_url: services.settings.public_url("/receipts/verify"),
        livemode: order.livemode,
    };
    let document = pdf::render(&services.receipt_fonts, &content)?;
    let digest = Sha256::digest(&document).to_vec();
    let id = Uuid::new_v4();
    let inserted = sqlx::query!(
        "INSERT INTO credit_notes (id, refund_id, tenant_id, number, verification_code, sha256, pdf)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (refund_id) DO NOTHING",
        id,
        refund_id,
        refund.tenant_id,
        number,
        verification_code,
        digest,
        document,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        // Another run stored it meanwhile; this one's number goes back with the rollback.
        drop(tx);
        return Ok(sqlx::query_scalar!("SELECT id FROM credit_notes WHERE refund_id = $1", refund_id)
            .fetch_optional(&services.pool)
            .await?);
    }
    let amount = format_minor(refund.amount, &refund.currency);
    let attachments = vec![Attachment {
        filename: format!("credit-note-{number}.pdf"),
        content_type: "application/pdf".into(),
        content: document,
    }];
    let back = "The money goes back to the card you paid with; your bank usually shows it within 5 to 10 business \
                days. The credit note is attached as a PDF; anyone can check it is genuine at";
    match order.paid_for {
        receipts::PaidFor::Lot { bid_id, auction, lot, buyer_email, .. } => {
            buyer_mail::send(
                &mut tx,
                bid_id,
                BuyerEmail::CreditNote,
                None,
                OutgoingEmail {
                    tenant_id: Some(refund.tenant_id),
                    to: buyer_email,
                    subject: format!("Refund for lot {lot} — {}", order.tenant),
                    text_body: format!(
                        "{tenant} has refunded {amount} of your payment for lot {lot} ({auction}).\n\n\
                         Reason: {reason}\nCredit note number: {number} (for receipt {receipt_number})\n\
                         Verification code: {verification_code}\n\n{back} {verify}.\n",
                        tenant = order.tenant,
                        reason = refund.reason,
                        verify = content.verify_url,
                    ),
                    attachments,
                    links: None,
                },
            )
            .await?;
        }
        receipts::PaidFor::Fee { description, consultant, client_email, .. } => {
            mail::enqueue(
                &mut tx,
                OutgoingEmail {
                    tenant_id: Some(refund.tenant_id),
                    to: client_email,
                    subject: format!("Refund: {description} — {consultant}"),
                    text_body: format!(
                        "{consultant} has refunded {amount} of your payment for {description}.\n\n\
                         Reason: {reason}\nCredit note number: {number} (for receipt {receipt_number})\n\
                         Verification code: {verification_code}\n\n{back} {verify}.\n",
                        reason = refund.reason,
                        verify = content.verify_url,
                    ),
                    attachments,
                    links: None,
                },
            )
            .await?;
        }
    }
    tx.commit().await?;
    tracing::info!(%refund_id, credit_note = %id, "credit note issued");
    Ok(Some(id))
}

/// A credit note of a tenant's bid as it is downloaded, checked against its stored SHA-256.
pub async fn credit_note_file(
    services: &Services,
    tenant_id: Uuid,
    bid_id: Uuid,
    refund_id: Uuid,
) -> Result<receipts::ReceiptFile> {
    let row = sqlx::query!(
        "SELECT c.number, c.sha256, c.pdf FROM credit_notes c JOIN refunds r ON r.id = c.refund_id
         JOIN orders o ON o.id = r.order_id WHERE c.refund_id = $1 AND c.tenant_id = $2 AND o.bid_id = $3",
        refund_id,
        tenant_id,
        bid_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("credit note"))?;
    receipts::checked_file(format!("credit-note-{}.pdf", row.number), &row.sha256, row.pdf)
}

/// A fee refund's credit note, for the client who paid or the consultant who billed the fee.
pub async fn fee_credit_note_file(
    services: &Services,
    user_id: Uuid,
    fee_id: Uuid,
    refund_id: Uuid,
) -> Result<receipts::ReceiptFile> {
    let row = sqlx::query!(
        "SELECT c.number, c.sha256, c.pdf FROM credit_notes c JOIN refunds r ON r.id = c.refund_id
         JOIN orders o ON o.id = r.order_id JOIN fee_requests f ON f.id = o.fee_request_id
         WHERE c.refund_id = $1 AND f.id = $2 AND (f.client_id = $3 OR f.consultant_id = $3)",
        refund_id,
        fee_id,
        user_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("credit note"))?;
    receipts::checked_file(format!("credit-note-{}.pdf", row.number), &row.sha256, row.pdf)
}

/// The refunds of these fees (Stripe's or being made), oldest first; the caller has checked who
/// may see the fees.
pub async fn of_fees(pool: &sqlx::PgPool, fee_ids: &[Uuid]) -> Result<Vec<Refund>> {
    sqlx::query_as!(
        RefundRow,
        r#"SELECT r.id, o.bid_id, o.fee_request_id, r.order_id, r.amount, r.currency, r.status AS "status: RefundStatus", r.reason,
                  r.stripe_refund_id, r.failure_reason, c.number AS "credit_note?", r.created_at, r.updated_at
           FROM refunds r JOIN orders o ON o.id = r.order_id LEFT JOIN credit_notes c ON c.refund_id = r.id
           WHERE o.fee_request_id = ANY($1) AND r.status <> 'requested'
           ORDER BY r.created_at, r.id"#,
        fee_ids
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(RefundRow::into_refund)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_to_refund_counts_every_refund_held_and_stripes_own_count() {
        assert_eq!(refundable(10_000, 0, 0), 10_000);
        assert_eq!(refundable(10_000, 2_500, 0), 7_500);
        assert_eq!(refundable(10_000, 2_500, 4_000), 6_000, "Stripe knows of more: a refund made in its dashboard");
        assert_eq!(refundable(10_000, 10_000, 10_000), 0);
        assert_eq!(refundable(10_000, 12_000, 0), 0, "never below zero");
    }

    #[test]
    fn the_fee_goes_back_in_proportion_and_the_last_refund_takes_what_is_left() {
        // 3.33 of fee on 100.00: a third back, then another third, then the rest.
        assert_eq!(proportional(333, 3_333, 10_000, 0, 0), 111);
        assert_eq!(proportional(333, 3_333, 10_000, 3_333, 111), 111);
        assert_eq!(proportional(333, 3_334, 10_000, 6_666, 222), 111);
        assert_eq!(proportional(333, 5_000, 10_000, 0, 0), 167, "half rounds to the nearest cent");
        assert_eq!(proportional(0, 5_000, 10_000, 0, 0), 0);
        assert_eq!(proportional(500, 100, 10_000, 0, 500), 0, "nothing is left to give back");
    }

    #[test]
    fn a_key_names_the_same_refund_for_its_tenant_only() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(refund_id(a, Some("k1")), refund_id(a, Some("k1")));
        assert_ne!(refund_id(a, Some("k1")), refund_id(b, Some("k1")));
        assert_ne!(refund_id(a, Some("k1")), refund_id(a, Some("k2")));
        assert_ne!(refund_id(a, None), refund_id(a, None));
        assert_ne!(request_hash(Some(5), "x"), request_hash(None, "x"));
        assert_ne!(request_hash(Some(5), "x"), request_hash(Some(5), "y"));
    }
}
