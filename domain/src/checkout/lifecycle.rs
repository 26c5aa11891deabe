//! What happens to a winning besides its payment: the buyer's reminders before the window
//! closes, the window closing, and what the tenant's staff (or system) does to an unpaid winning
//! (cancel it, extend its window once, send a new link). Each change tells the tenant
//! (`winning.*`) and the buyer, in the transaction of the change.

use chrono::{DateTime, Duration, Utc};
use graphile_worker::{IntoTaskHandlerResult, JobSpec, TaskHandler, WorkerContext};
use sqlx::PgConnection;
use stripe_checkout::checkout_session::ExpireCheckoutSession;
use uuid::Uuid;

use crate::{
    Services, audit,
    auth::Principal,
    buyer_mail,
    config::EncryptionKey,
    crypto,
    error::{Error, Result},
    mail::{OneTimeLinks, OutgoingEmail},
    money::{Money, format_minor},
    queue,
    states::BuyerEmail,
    stripe::upstream,
    tenant_webhooks::{
        self,
        events::{RunnerUpOffered, TenantEvent, WinningChanged},
    },
};

/// Reminders go this many hours before the window closes.
pub const REMINDERS_HOURS_BEFORE: [i64; 2] = [12, 2];
/// A window can be extended once, to at most this long after the win.
pub const LONGEST_WINDOW: Duration = Duration::hours(72);

/// When each reminder for a window ending at `pay_by` is due; those already past (a window
/// extended late, say) are left out.
pub fn reminder_times(pay_by: DateTime<Utc>, now: DateTime<Utc>) -> Vec<(i64, DateTime<Utc>)> {
    REMINDERS_HOURS_BEFORE
        .iter()
        .map(|hours| (*hours, pay_by - Duration::hours(*hours)))
        .filter(|(_, at)| *at > now)
        .collect()
}

/// Whether a window may be extended from `pay_by` to `new_pay_by` for a win at `won_at`.
pub fn extension_allowed(
    won_at: DateTime<Utc>,
    pay_by: DateTime<Utc>,
    new_pay_by: DateTime<Utc>,
    now: DateTime<Utc>,
) -> std::result::Result<(), String> {
    if new_pay_by <= pay_by.max(now) {
        return Err("Choose a deadline later than the current one (and in the future).".into());
    }
    if new_pay_by > won_at + LONGEST_WINDOW {
        return Err(format!(
            "A window can be extended to at most 72 hours after the win: {}.",
            (won_at + LONGEST_WINDOW).format("%-d %B %Y, %H:%M UTC")
        ));
    }
    Ok(())
}

/// Opens (or moves) a winning's payment window to end at `pay_by`, on the caller's transaction:
/// the job that closes it then, unless it was paid, and the buyer's reminders before it.
/// Registration, an extension and a runner-up's offer all open theirs here.
pub(crate) async fn open_window(conn: &mut PgConnection, bid_id: Uuid, pay_by: DateTime<Utc>) -> Result<()> {
    queue::enqueue_with(
        &mut *conn,
        super::ExpireWinning { bid_id },
        JobSpec::builder().run_at(pay_by).max_attempts(12).build(),
    )
    .await?;
    for (hours_before, at) in reminder_times(pay_by, Utc::now()) {
        let job = RemindBuyer { bid_id, hours_before, pay_by };
        queue::enqueue_with(conn, job, JobSpec::builder().run_at(at).max_attempts(12).build()).await?;
    }
    Ok(())
}

/// The buyer's payment link, from the sealed token kept while the winning awaits payment.
pub(crate) fn payment_link(services: &Services, sealed: Option<&[u8]>) -> Result<Option<String>> {
    let Some(sealed) = sealed else { return Ok(None) };
    let token = crypto::decrypt_string(&services.settings.encryption_key, sealed)?;
    Ok(Some(services.settings.public_url(&format!("/pay/{token}"))))
}

/// The link's token sealed for storage.
pub(crate) fn seal_token(key: &EncryptionKey, token: &str) -> Result<Vec<u8>> {
    Ok(crypto::encrypt(key, token.as_bytes())?)
}

/// A winning as its emails and events need it, read under its row lock.
pub(crate) struct Bid {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant: String,
    pub livemode: bool,
    pub reference: String,
    pub auction: String,
    pub lot: String,
    pub buyer_email: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub won_at: DateTime<Utc>,
    pub pay_by: DateTime<Utc>,
    pub extended_at: Option<DateTime<Utc>>,
    pub token_sealed: Option<Vec<u8>>,
    /// Failed Checkout attempts so far.
    pub failures: i32,
}

pub(crate) async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Bid> {
    sqlx::query_as!(
        Bid,
        "SELECT b.id, b.tenant_id, t.name AS tenant, b.livemode, b.reference, b.auction, b.lot, b.buyer_email, b.amount,
                b.currency, b.status, b.won_at, b.pay_by, b.extended_at, b.token_sealed, b.failures
         FROM winning_bids b JOIN tenants t ON t.id = b.tenant_id WHERE b.id = $1 FOR UPDATE OF b",
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("winning bid"))
}

impl Bid {
    fn amount_text(&self) -> String {
        format_minor(self.amount, &self.currency)
    }

    pub(crate) fn changed(&self, status: &str, reason: Option<String>) -> Result<WinningChanged> {
        Ok(WinningChanged {
            winning: self.id,
            reference: self.reference.clone(),
            auction: self.auction.clone(),
            lot: self.lot.clone(),
            amount: Money::stored(self.amount, &self.currency)?,
            status: status.to_owned(),
            pay_by: self.pay_by,
            reason,
        })
    }

    /// An email to the buyer; `link` is carried as a one-time link (not kept in the stored body).
    pub(crate) fn email(
        &self,
        key: &EncryptionKey,
        subject: String,
        body: String,
        link: Option<&str>,
    ) -> Result<OutgoingEmail> {
        Ok(OutgoingEmail {
            tenant_id: Some(self.tenant_id),
            to: self.buyer_email.clone(),
            subject,
            text_body: body,
            attachments: vec![],
            links: link.map(|l| OneTimeLinks::one(key, l)).transpose()?.flatten(),
        })
    }
}

/// Reminds the buyer `hours_before` the window ending at `pay_by` closes, unless the winning
/// was paid, cancelled or its window moved meanwhile (then another reminder is due, if any).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RemindBuyer {
    pub bid_id: Uuid,
    pub hours_before: i64,
    pub pay_by: DateTime<Utc>,
}

impl TaskHandler for RemindBuyer {
    const IDENTIFIER: &'static str = "remind_buyer";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        remind(services, &self).await.map(|_| ()).map_err(|err| {
            err.log();
            err.to_string()
        })
    }
}

/// Sends one reminder, once (see [`RemindBuyer`]); `false` when none was due.
pub async fn remind(services: &Services, job: &RemindBuyer) -> Result<bool> {
    let mut tx = services.pool.begin().await?;
    let bid = lock(&mut tx, job.bid_id).await?;
    if bid.status != "awaiting_payment" || bid.pay_by != job.pay_by || bid.pay_by <= Utc::now() {
        return Ok(false);
    }
    let Some(link) = payment_link(services, bid.token_sealed.as_deref())? else { return Ok(false) };
    let body = format!(
        "A reminder from {tenant}: lot {lot} ({auction}) is still waiting for payment.\n\n\
         Amount due: {amount}\nPay by {deadline} — about {hours} hours from now — on Stripe's secure page:\n{link}\n\n\
         After that the lot may be offered to someone else.\n",
        tenant = bid.tenant,
        lot = bid.lot,
        auction = bid.auction,
        amount = bid.amount_text(),
        deadline = bid.pay_by.format("%-d %B %Y, %H:%M UTC"),
        hours = job.hours_before,
    );
    let email = bid.email(
        &services.settings.encryption_key,
        format!("Reminder: pay for lot {} by {} — {}", bid.lot, bid.pay_by.format("%H:%M UTC"), bid.tenant),
        body,
        Some(&link),
    )?;
    let key = format!("reminder:{}:{}:{}", bid.id, job.hours_before, bid.pay_by.timestamp());
    let sent = buyer_mail::send(&mut tx, bid.id, BuyerEmail::Reminder, Some(key), email).await?;
    tx.commit().await?;
    Ok(sent)
}

/// Closes an unpaid bid whose window has passed (the `expire_winning` job): the tenant is told
/// (`winning.expired`) and the buyer emailed, once.
pub async fn expire(services: &Services, bid_id: Uuid) -> Result<bool> {
    let mut tx = services.pool.begin().await?;
    let bid = lock(&mut tx, bid_id).await?;
    if bid.status != "awaiting_payment" || bid.pay_by > Utc::now() {
        return Ok(false);
    }
    sqlx::query!("UPDATE winning_bids SET status = 'expired', token_sealed = NULL WHERE id = $1", bid_id)
        .execute(&mut *tx)
        .await?;
    let body = format!(
        "The 24-hour window to pay for lot {lot} ({auction}) at {tenant} closed on {deadline} without a payment, \
         so the payment link no longer works and nothing was charged.\n\n\
         If you still want the lot, please contact {tenant}.\n",
        lot = bid.lot,
        auction = bid.auction,
        tenant = bid.tenant,
        deadline = bid.pay_by.format("%-d %B %Y, %H:%M UTC"),
    );
    let subject = format!("The payment window for lot {} has closed — {}", bid.lot, bid.tenant);
    let email = bid.email(&services.settings.encryption_key, subject, body, None)?;
    buyer_mail::send(&mut tx, bid.id, BuyerEmail::WindowClosed, None, email).await?;
    let event = TenantEvent::WinningExpired(bid.changed("expired", None)?);
    tenant_webhooks::events::emit(&mut tx, bid.tenant_id, bid.livemode, event).await?;
    offer_next(&mut tx, services, &bid).await?;
    tx.commit().await?;
    Ok(true)
}

/// Second chance: after `bid` closed unpaid (expired, or its third attempt failed), offers the
/// lot to the next runner-up of its first winning, if its tenant turned second chance on. The
/// offer is a winning of its own (reference `<first>-R<position>`) with a fresh 24-hour window,
/// the same rules, reminders and events; `winning.offered_to_runner_up` tells the tenant. Runs in
/// the transaction that closed `bid`, under its lock; the unique index on a lot's live offer
/// makes a second concurrent offer impossible. `None` when nobody was offered the lot.
pub(crate) async fn offer_next(conn: &mut PgConnection, services: &Services, bid: &Bid) -> Result<Option<Uuid>> {
    let root = sqlx::query!(
        "SELECT b.root_bid_id, r.reference, r.description, t.second_chance
         FROM winning_bids b JOIN winning_bids r ON r.id = b.root_bid_id JOIN tenants t ON t.id = b.tenant_id
         WHERE b.id = $1",
        bid.id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !root.second_chance {
        return Ok(None);
    }
    let Some(next) = sqlx::query!(
        "SELECT position, buyer_email, amount FROM runner_up_bids
         WHERE root_bid_id = $1 AND offered_bid_id IS NULL ORDER BY position LIMIT 1 FOR UPDATE",
        root.root_bid_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let id = Uuid::new_v4();
    let token = crypto::random_token();
    let offered = sqlx::query_scalar!(
        "INSERT INTO winning_bids (id, root_bid_id, runner_up_position, tenant_id, livemode, reference, auction, lot,
             description, buyer_email, amount, currency, token_hash, token_sealed, pay_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now() + interval '24 hours')
         ON CONFLICT DO NOTHING RETURNING pay_by",
        id,
        root.root_bid_id,
        next.position,
        bid.tenant_id,
        bid.livemode,
        format!("{}-R{}", root.reference, next.position),
        bid.auction,
        bid.lot,
        root.description,
        next.buyer_email,
        next.amount,
        bid.currency,
        crypto::token_hash(&token),
        seal_token(&services.settings.encryption_key, &token)?,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(pay_by) = offered else { return Ok(None) };
    sqlx::query!(
        "UPDATE runner_up_bids SET offered_bid_id = $3 WHERE root_bid_id = $1 AND position = $2",
        root.root_bid_id,
        next.position,
        id
    )
    .execute(&mut *conn)
    .await?;
    open_window(conn, id, pay_by).await?;
    let offer = lock(conn, id).await?;
    let link = services.settings.public_url(&format!("/pay/{token}"));
    let body = format!(
        "Good news from {tenant}: lot {lot} ({auction}) is offered to you at your bid of {amount}, because the \
         winning bidder did not pay.\n\nIt is yours if you pay by {deadline} (24 hours) on Stripe's secure page:\n{link}\n\n\
         If you no longer want it, just let the link expire.\n",
        tenant = offer.tenant,
        lot = offer.lot,
        auction = offer.auction,
        amount = offer.amount_text(),
        deadline = pay_by.format("%-d %B %Y, %H:%M UTC"),
    );
    let subject = format!("Lot {} is offered to you — {}", offer.lot, offer.tenant);
    let email = offer.email(&services.settings.encryption_key, subject, body, Some(&link))?;
    buyer_mail::send(conn, id, BuyerEmail::PaymentLink, None, email).await?;
    let event = TenantEvent::WinningOfferedToRunnerUp(RunnerUpOffered {
        winning: id,
        previous_winning: bid.id,
        reference: offer.reference.clone(),
        auction: offer.auction.clone(),
        lot: offer.lot.clone(),
        amount: Money::stored(offer.amount, &offer.currency)?,
        position: next.position,
        pay_by,
    });
    tenant_webhooks::events::emit(conn, bid.tenant_id, bid.livemode, event).await?;
    Ok(Some(id))
}

/// Who acts on a winning: its tenant's staff, or its system with an API key of its mode.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Staff(&'a Principal),
    ApiKey { livemode: bool },
}

impl Actor<'_> {
    fn principal(&self) -> Option<&Principal> {
        match self {
            Self::Staff(p) => Some(p),
            Self::ApiKey { .. } => None,
        }
    }

    fn livemode(&self) -> Option<bool> {
        match self {
            Self::Staff(_) => None,
            Self::ApiKey { livemode } => Some(*livemode),
        }
    }
}

/// The tenant's bid, locked; another tenant's (or mode's) is not found.
async fn lock_own(conn: &mut PgConnection, tenant_id: Uuid, actor: Actor<'_>, bid_id: Uuid) -> Result<Bid> {
    let bid = lock(conn, bid_id).await?;
    if bid.tenant_id != tenant_id || actor.livemode().is_some_and(|mode| mode != bid.livemode) {
        return Err(Error::NotFound("winning bid"));
    }
    Ok(bid)
}

fn not_awaiting(bid: &Bid, what: &str) -> Error {
    Error::conflict(format!("Lot {} is {}, so it cannot be {what}.", bid.lot, bid.status.replace('_', " ")))
}

async fn record(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    actor: Actor<'_>,
    action: &str,
    bid: &Bid,
    reason: Option<String>,
    details: serde_json::Value,
) -> Result<()> {
    let entry = audit::Entry {
        tenant_id: Some(tenant_id),
        actor: actor.principal(),
        action,
        target: Some(format!("{} (lot {})", bid.reference, bid.lot)),
        reason,
        details,
    };
    audit::record(conn, entry).await
}

/// Cancels an unpaid winning: its open Checkout pages are expired at Stripe first (holding no
/// lock), then, if it still awaits payment, it is cancelled, the buyer told and the tenant's
/// endpoints sent `winning.cancelled`. A page Stripe says was paid meanwhile stops the cancel.
pub async fn cancel(services: &Services, tenant_id: Uuid, actor: Actor<'_>, bid_id: Uuid, reason: &str) -> Result<()> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid("reason", "Say why the winning is cancelled (up to 500 characters)."));
    }
    crate::input::plain_text(reason, "reason", false)?;
    // What is open now, read without holding the lock across Stripe's answers.
    let (livemode, open) = {
        let mut tx = services.pool.begin().await?;
        let bid = lock_own(&mut tx, tenant_id, actor, bid_id).await?;
        if bid.status != "awaiting_payment" {
            return Err(not_awaiting(&bid, "cancelled"));
        }
        let open: Vec<String> = sqlx::query_scalar!(
            r#"SELECT stripe_checkout_session_id AS "id!" FROM payment_sessions
               WHERE bid_id = $1 AND status = 'open' AND stripe_checkout_session_id IS NOT NULL"#,
            bid_id
        )
        .fetch_all(&mut *tx)
        .await?;
        (bid.livemode, open)
    };
    if !open.is_empty() {
        let stripe = services.stripe.mode(livemode)?;
        for session in &open {
            if let Err(err) = ExpireCheckoutSession::new(session.as_str()).send(stripe.client()).await {
                // A page that is no longer open (paid, or expired by Stripe) is left to its events.
                if !matches!(&err, stripe::StripeError::Stripe(_, 400)) {
                    return Err(upstream(err, "close the buyer's open payment page"));
                }
            }
        }
    }
    let mut tx = services.pool.begin().await?;
    let bid = lock_own(&mut tx, tenant_id, actor, bid_id).await?;
    if bid.status != "awaiting_payment" {
        return Err(not_awaiting(&bid, "cancelled"));
    }
    sqlx::query!(
        "UPDATE winning_bids SET status = 'cancelled', cancelled_at = now(), cancel_reason = $2, token_sealed = NULL
         WHERE id = $1",
        bid_id,
        reason
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE payment_sessions SET status = 'expired' WHERE bid_id = $1 AND status = 'open'", bid_id)
        .execute(&mut *tx)
        .await?;
    let body = format!(
        "{tenant} has cancelled your win of lot {lot} ({auction}): {reason}\n\n\
         The payment link no longer works and nothing was charged. Please contact {tenant} with any questions.\n",
        tenant = bid.tenant,
        lot = bid.lot,
        auction = bid.auction,
    );
    let subject = format!("Lot {} is cancelled — {}", bid.lot, bid.tenant);
    let email = bid.email(&services.settings.encryption_key, subject, body, None)?;
    buyer_mail::send(&mut tx, bid.id, BuyerEmail::Cancelled, None, email).await?;
    let event = TenantEvent::WinningCancelled(bid.changed("cancelled", Some(reason.to_owned()))?);
    tenant_webhooks::events::emit(&mut tx, tenant_id, bid.livemode, event).await?;
    record(
        &mut tx,
        tenant_id,
        actor,
        "winning.cancelled",
        &bid,
        Some(reason.to_owned()),
        serde_json::json!({ "winning": bid.id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Extends an unpaid (or just expired) winning's window, once, to at most 72 hours after the
/// win; the buyer is emailed the new deadline with the link, reminders follow the new deadline.
pub async fn extend(
    services: &Services,
    tenant_id: Uuid,
    actor: Actor<'_>,
    bid_id: Uuid,
    new_pay_by: DateTime<Utc>,
) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    let bid = lock_own(&mut tx, tenant_id, actor, bid_id).await?;
    if !matches!(bid.status.as_str(), "awaiting_payment" | "expired") {
        return Err(not_awaiting(&bid, "extended"));
    }
    if bid.extended_at.is_some() {
        return Err(Error::conflict("This winning's window was extended once already."));
    }
    let offered = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM winning_bids o JOIN winning_bids b ON b.root_bid_id = o.root_bid_id
                          WHERE b.id = $1 AND o.id <> b.id AND o.won_at > b.won_at) AS "offered!""#,
        bid_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if offered {
        return Err(Error::conflict("The lot was offered to a runner-up after this window closed."));
    }
    extension_allowed(bid.won_at, bid.pay_by, new_pay_by, Utc::now()).map_err(|m| Error::invalid("pay_by", m))?;
    // An expired winning's link was dropped: it gets a new one.
    let (token_sealed, new_token) = match &bid.token_sealed {
        Some(sealed) => (sealed.clone(), None),
        None => {
            let token = crypto::random_token();
            (seal_token(&services.settings.encryption_key, &token)?, Some(token))
        }
    };
    let new_pay_by = chrono::SubsecRound::trunc_subsecs(new_pay_by, 0);
    sqlx::query!(
        "UPDATE winning_bids SET pay_by = $2, extended_at = now(), status = 'awaiting_payment', token_sealed = $3,
             token_hash = coalesce($4, token_hash)
         WHERE id = $1",
        bid_id,
        new_pay_by,
        token_sealed,
        new_token.as_deref().map(crypto::token_hash),
    )
    .execute(&mut *tx)
    .await?;
    open_window(&mut tx, bid_id, new_pay_by).await?;
    let link = payment_link(services, Some(&token_sealed))?.unwrap_or_default();
    let body = format!(
        "{tenant} has given you more time to pay for lot {lot} ({auction}).\n\n\
         Amount due: {amount}\nNew deadline: {deadline}\nPay on Stripe's secure page:\n{link}\n",
        tenant = bid.tenant,
        lot = bid.lot,
        auction = bid.auction,
        amount = bid.amount_text(),
        deadline = new_pay_by.format("%-d %B %Y, %H:%M UTC"),
    );
    let subject = format!("More time to pay for lot {} — {}", bid.lot, bid.tenant);
    let email = bid.email(&services.settings.encryption_key, subject, body, Some(&link))?;
    buyer_mail::send(&mut tx, bid.id, BuyerEmail::WindowExtended, None, email).await?;
    let details = serde_json::json!({ "from": bid.pay_by, "to": new_pay_by });
    record(&mut tx, tenant_id, actor, "winning.extended", &bid, None, details).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends the buyer a new payment link: a new token, so the old link stops working.
pub async fn resend_link(services: &Services, tenant_id: Uuid, actor: Actor<'_>, bid_id: Uuid) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    let bid = lock_own(&mut tx, tenant_id, actor, bid_id).await?;
    if bid.status != "awaiting_payment" {
        return Err(not_awaiting(&bid, "sent a new link"));
    }
    let token = crypto::random_token();
    let sealed = seal_token(&services.settings.encryption_key, &token)?;
    sqlx::query!(
        "UPDATE winning_bids SET token_hash = $2, token_sealed = $3 WHERE id = $1",
        bid_id,
        crypto::token_hash(&token),
        sealed
    )
    .execute(&mut *tx)
    .await?;
    let link = services.settings.public_url(&format!("/pay/{token}"));
    let body = format!(
        "Here is a new link to pay for lot {lot} ({auction}) at {tenant}; the link we sent before no longer works.\n\n\
         Amount due: {amount}\nPay by {deadline} on Stripe's secure page:\n{link}\n",
        tenant = bid.tenant,
        lot = bid.lot,
        auction = bid.auction,
        amount = bid.amount_text(),
        deadline = bid.pay_by.format("%-d %B %Y, %H:%M UTC"),
    );
    let subject = format!("Your new payment link for lot {} — {}", bid.lot, bid.tenant);
    let email = bid.email(&services.settings.encryption_key, subject, body, Some(&link))?;
    buyer_mail::send(&mut tx, bid.id, BuyerEmail::LinkResent, None, email).await?;
    record(&mut tx, tenant_id, actor, "winning.link_resent", &bid, None, serde_json::json!({ "winning": bid.id }))
        .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn reminders_fall_12_and_2_hours_before_the_end_and_never_in_the_past() {
        let pay_by = at("2026-12-07T12:00:00Z");
        let times = reminder_times(pay_by, at("2026-12-06T12:00:00Z"));
        assert_eq!(times, [(12, at("2026-12-07T00:00:00Z")), (2, at("2026-12-07T10:00:00Z"))]);
        assert_eq!(reminder_times(pay_by, at("2026-12-07T05:00:00Z")), [(2, at("2026-12-07T10:00:00Z"))]);
        assert!(reminder_times(pay_by, at("2026-12-07T11:00:00Z")).is_empty());
    }

    #[test]
    fn a_window_extends_forward_to_at_most_72_hours_after_the_win() {
        let won = at("2026-12-06T12:00:00Z");
        let pay_by = won + Duration::hours(24);
        let now = won + Duration::hours(1);
        assert!(extension_allowed(won, pay_by, won + Duration::hours(72), now).is_ok());
        assert!(extension_allowed(won, pay_by, won + Duration::hours(73), now).is_err());
        assert!(extension_allowed(won, pay_by, pay_by, now).is_err(), "not later");
        // An expired window: the new end must be in the future.
        let late = won + Duration::hours(30);
        assert!(extension_allowed(won, pay_by, won + Duration::hours(29), late).is_err());
        assert!(extension_allowed(won, pay_by, won + Duration::hours(48), late).is_ok());
    }
}
