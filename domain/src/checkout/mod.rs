//! Buyer checkout of auction winnings: a winning bid with its 24-hour payment window, Stripe
//! Checkout attempts (at most three, with backoff after a failure), and the order a payment
//! creates exactly once (see `events`).

pub mod events;
pub mod lifecycle;
pub mod timeline;

use std::net::IpAddr;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use sqlx::PgConnection;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionPaymentIntentDataTransferData,
    CreateCheckoutSessionPaymentMethodOptions, CreateCheckoutSessionPaymentMethodOptionsCard,
    CreateCheckoutSessionPaymentMethodOptionsCardRequestThreeDSecure, ProductData,
};
use stripe_client_core::StripeRequest as _;
use stripe_shared::CheckoutSessionMode;
use uuid::Uuid;

use crate::{
    Services, buyer_mail, crypto,
    error::{Error, Result},
    mail::{OneTimeLinks, OutgoingEmail},
    money::{Currency, Money, format_minor},
    payment_terms, queue,
    security::{self, MailKind, Payer},
    states::BuyerEmail,
    stripe::{idempotent, upstream},
    tenant_stripe::{self, AccessLost},
};

/// How long a buyer has to pay, from the win.
pub const PAYMENT_WINDOW: Duration = Duration::hours(24);
/// Checkout attempts per bid.
pub const MAX_ATTEMPTS: i32 = 3;
/// Stripe keeps a Checkout Session open for at least this long.
const STRIPE_MIN_SESSION: Duration = Duration::minutes(30);
const MAX_TEXT: usize = 200;

/// What a tenant registers when an auction lot is won.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NewWinning {
    pub reference: String,
    pub auction: String,
    pub lot: String,
    #[serde(default)]
    pub description: String,
    pub buyer_email: String,
    /// Minor units (cents for USD).
    pub amount: i64,
    pub currency: String,
    /// The next-highest bids, best first: if the winner does not pay and the tenant turned
    /// second chance on, the lot is offered to them in turn.
    #[serde(default)]
    pub runners_up: Vec<RunnerUp>,
}

/// A runner-up bid: who, and for how much (minor units of the win's currency).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RunnerUp {
    pub buyer_email: String,
    pub amount: i64,
}

/// At most this many runners-up per win.
pub const MAX_RUNNERS_UP: usize = 10;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Winning {
    pub id: Uuid,
    pub reference: String,
    pub auction: String,
    pub lot: String,
    pub description: String,
    pub buyer_email: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub livemode: bool,
    pub won_at: DateTime<Utc>,
    pub pay_by: DateTime<Utc>,
    pub attempts: i32,
    /// When the window was extended (once at most).
    pub extended_at: Option<DateTime<Utc>>,
    /// Why the tenant cancelled it.
    pub cancel_reason: Option<String>,
    /// The order a payment made, and its state (`paid`, `refunded`, `disputed`, …); the API
    /// shows them as its own `order` object.
    #[serde(skip)]
    pub order_id: Option<Uuid>,
    #[serde(skip)]
    pub order_status: Option<String>,
}

fn text(value: &str, field: &'static str, what: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_TEXT {
        return Err(Error::invalid(field, format!("Give the {what} (up to {MAX_TEXT} characters).")));
    }
    crate::input::plain_text(value, field, false)?;
    Ok(value.to_owned())
}

/// Registers a won lot and emails the buyer their payment link. Registering the same reference
/// again returns the existing bid (`false`) and sends nothing; with different details it is a 409.
pub async fn register(
    services: &Services,
    tenant_id: Uuid,
    livemode: bool,
    created_by: Option<Uuid>,
    input: &NewWinning,
) -> Result<(Winning, bool)> {
    register_with_token(services, tenant_id, livemode, created_by, input, &crypto::random_token()).await
}

/// `register` with a link token chosen by the caller (the demo lot's is derived from the
/// installation's key, so its link can be printed at every start).
pub(crate) async fn register_with_token(
    services: &Services,
    tenant_id: Uuid,
    livemode: bool,
    created_by: Option<Uuid>,
    input: &NewWinning,
    token: &str,
) -> Result<(Winning, bool)> {
    let reference = text(&input.reference, "reference", "your reference for this win")?;
    let auction = text(&input.auction, "auction", "auction")?;
    let lot = text(&input.lot, "lot", "lot")?;
    let description = input.description.trim().to_owned();
    if description.chars().count() > 500 {
        return Err(Error::invalid("description", "Keep the description under 500 characters."));
    }
    crate::input::plain_text(&description, "description", true)?;
    crate::auth::sign_in::validate_email(&input.buyer_email)
        .map_err(|_| Error::invalid("buyer_email", "Give the buyer's email address, like name@example.com."))?;
    let buyer_email = input.buyer_email.trim().to_owned();
    let currency = Currency::parse(&input.currency).ok_or_else(|| {
        Error::invalid("currency", format!("Use one of: {}.", Currency::supported().collect::<Vec<_>>().join(", ")))
    })?;
    Money::chargeable(input.amount, currency, "amount")?;
    if input.runners_up.len() > MAX_RUNNERS_UP {
        return Err(Error::invalid("runners_up", format!("Give at most {MAX_RUNNERS_UP} runners-up.")));
    }
    for runner_up in &input.runners_up {
        crate::auth::sign_in::validate_email(&runner_up.buyer_email)
            .map_err(|_| Error::invalid("runners_up", "Give each runner-up's email address, like name@example.com."))?;
        Money::chargeable(runner_up.amount, currency, "runners_up")?;
    }

    let mut tx = services.pool.begin().await?;
    let inserted = sqlx::query_scalar!(
        "INSERT INTO winning_bids (id, root_bid_id, tenant_id, livemode, reference, auction, lot, description,
             buyer_email, amount, currency, token_hash, pay_by, created_by, token_sealed)
         VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now() + $12::interval, $13, $14)
         ON CONFLICT (tenant_id, livemode, reference) DO NOTHING RETURNING id",
        Uuid::new_v4(),
        tenant_id,
        livemode,
        reference,
        auction,
        lot,
        description,
        buyer_email,
        input.amount,
        currency.code(),
        crypto::token_hash(token),
        sqlx::postgres::types::PgInterval::try_from(PAYMENT_WINDOW.to_std().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        created_by,
        lifecycle::seal_token(&services.settings.encryption_key, token)?,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = inserted else {
        let existing = by_reference(&mut tx, tenant_id, livemode, &reference).await?;
        let same = (
            existing.auction.as_str(),
            existing.lot.as_str(),
            existing.buyer_email.as_str(),
            existing.amount,
            existing.currency.as_str(),
        ) == (auction.as_str(), lot.as_str(), buyer_email.as_str(), input.amount, currency.code());
        if !same {
            return Err(Error::conflict(format!(
                "The reference {reference} is already registered for a different win."
            )));
        }
        return Ok((existing, false));
    };
    // Wins registered by a tenant's system (not by its staff) count against its hourly mail limit.
    if created_by.is_none() {
        security::take_mail_quota(
            &mut tx,
            tenant_id,
            MailKind::Winning,
            services.settings.mail_limits.winnings_per_hour,
        )
        .await?;
    }
    for (position, runner_up) in (1..).zip(&input.runners_up) {
        sqlx::query!(
            "INSERT INTO runner_up_bids (root_bid_id, position, buyer_email, amount) VALUES ($1, $2, $3, $4)",
            id,
            position,
            runner_up.buyer_email.trim(),
            runner_up.amount
        )
        .execute(&mut *tx)
        .await?;
    }
    let winning = get(&mut tx, id).await?;
    let tenant = sqlx::query_scalar!("SELECT name FROM tenants WHERE id = $1", tenant_id).fetch_one(&mut *tx).await?;
    let link = services.settings.public_url(&format!("/pay/{token}"));
    buyer_mail::send(
        &mut tx,
        id,
        BuyerEmail::PaymentLink,
        None,
        OutgoingEmail {
            tenant_id: Some(tenant_id),
            to: buyer_email.clone(),
            subject: format!("Pay for lot {lot} — {tenant}"),
            text_body: format!(
                "Congratulations on winning lot {lot} ({auction}) at {tenant}.\n\nAmount due: {}\n\
                 Pay by {} (24 hours from the win) on Stripe's secure page:\n{}\n\n\
                 Keep this link to yourself: anyone with it can see the lot and pay for it.\n",
                format_minor(input.amount, currency.code()),
                winning.pay_by.format("%-d %B %Y, %H:%M UTC"),
                link,
            ),
            attachments: vec![],
            links: OneTimeLinks::one(&services.settings.encryption_key, &link)?,
        },
    )
    .await?;
    lifecycle::open_window(&mut tx, id, winning.pay_by).await?;
    tx.commit().await?;
    Ok((winning, true))
}

async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Winning> {
    sqlx::query_as!(
        Winning,
        r#"SELECT b.id, b.reference, b.auction, b.lot, b.description, b.buyer_email, b.amount, b.currency, b.status,
                b.livemode, b.won_at, b.pay_by, b.attempts, b.extended_at, b.cancel_reason, o.id AS "order_id?",
                o.status AS "order_status?"
         FROM winning_bids b LEFT JOIN orders o ON o.bid_id = b.id WHERE b.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("winning bid"))
}

async fn by_reference(conn: &mut PgConnection, tenant_id: Uuid, livemode: bool, reference: &str) -> Result<Winning> {
    sqlx::query_as!(
        Winning,
        r#"SELECT b.id, b.reference, b.auction, b.lot, b.description, b.buyer_email, b.amount, b.currency, b.status,
                b.livemode, b.won_at, b.pay_by, b.attempts, b.extended_at, b.cancel_reason, o.id AS "order_id?",
                o.status AS "order_status?"
         FROM winning_bids b LEFT JOIN orders o ON o.bid_id = b.id WHERE b.tenant_id = $1 AND b.livemode = $2 AND b.reference = $3"#,
        tenant_id,
        livemode,
        reference
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("winning bid"))
}

/// A tenant's bid by id; another tenant's (or, given a mode, the other mode's) bid is not found.
pub async fn for_tenant(services: &Services, tenant_id: Uuid, livemode: Option<bool>, id: Uuid) -> Result<Winning> {
    let mut conn = services.pool.acquire().await?;
    let winning = get(&mut conn, id).await?;
    let owner =
        sqlx::query_scalar!("SELECT tenant_id FROM winning_bids WHERE id = $1", id).fetch_one(&mut *conn).await?;
    if owner != tenant_id || livemode.is_some_and(|mode| mode != winning.livemode) {
        return Err(Error::NotFound("winning bid"));
    }
    Ok(winning)
}

/// A dispute of a winning's payment, as Stripe reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Dispute {
    /// Stripe's `dp_…` id.
    pub stripe_dispute: String,
    #[serde(flatten)]
    pub amount: Money,
    /// Stripe's reason (`fraudulent`, `product_not_received`, …).
    pub reason: String,
    /// Stripe's status (`needs_response`, `under_review`, `won`, `lost`, …).
    pub status: String,
    /// When Stripe must have the evidence.
    pub evidence_due_by: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The disputes of a tenant's bid, oldest first.
pub async fn disputes(services: &Services, tenant_id: Uuid, bid_id: Uuid) -> Result<Vec<Dispute>> {
    sqlx::query!(
        "SELECT d.stripe_dispute_id, d.amount, d.currency, d.reason, d.status, d.evidence_due_by, d.created_at
         FROM disputes d JOIN orders o ON o.id = d.order_id WHERE o.bid_id = $1 AND d.tenant_id = $2
         ORDER BY d.created_at",
        bid_id,
        tenant_id
    )
    .fetch_all(&services.pool)
    .await?
    .into_iter()
    .map(|d| {
        Ok(Dispute {
            stripe_dispute: d.stripe_dispute_id,
            amount: Money::stored(d.amount, &d.currency)?,
            reason: d.reason,
            status: d.status,
            evidence_due_by: d.evidence_due_by,
            created_at: d.created_at,
        })
    })
    .collect()
}

/// What the buyer's payment page shows.
#[derive(Debug, Clone)]
pub struct PayPage {
    pub winning: Winning,
    pub tenant: String,
    /// A message about the last attempt, when it failed.
    pub last_failure: Option<String>,
    /// Why the lot cannot be paid for now although it waits for payment (payments paused, or
    /// its mode not set up).
    pub unavailable: Option<String>,
    pub can_pay: bool,
}

/// The bid behind a payment link. A link that matches none is counted against the client's
/// address (someone may be guessing links), and an address that has guessed too many this hour
/// is refused before the lookup.
async fn bid_id_by_token(services: &Services, token: &str, client_ip: Option<IpAddr>) -> Result<Uuid> {
    security::refuse_link_guessing(&services.pool, client_ip).await?;
    let found = sqlx::query_scalar!("SELECT id FROM winning_bids WHERE token_hash = $1", crypto::token_hash(token))
        .fetch_optional(&services.pool)
        .await?;
    match found {
        Some(id) => Ok(id),
        None => {
            security::unknown_link(&services.pool, client_ip).await?;
            Err(Error::NotFound("payment link"))
        }
    }
}

pub async fn pay_page(services: &Services, token: &str, client_ip: Option<IpAddr>) -> Result<PayPage> {
    let id = bid_id_by_token(services, token, client_ip).await?;
    let mut conn = services.pool.acquire().await?;
    let winning = get(&mut conn, id).await?;
    let tenant = sqlx::query!(
        r#"SELECT t.name, t.status = 'suspended' AS "suspended!",
                  EXISTS (SELECT 1 FROM tenant_stripe_accounts s WHERE s.tenant_id = t.id) AS "connected!"
           FROM tenants t JOIN winning_bids b ON b.tenant_id = t.id
           WHERE b.id = $1"#,
        id
    )
    .fetch_one(&mut *conn)
    .await?;
    let last_failure = sqlx::query_scalar!(
        "SELECT failure_message FROM payment_sessions WHERE bid_id = $1 AND status = 'failed' ORDER BY attempt DESC LIMIT 1",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    let unavailable = if tenant.suspended {
        Some(PAYMENTS_PAUSED.to_owned())
    } else if !tenant.connected {
        Some(NOT_CONNECTED.to_owned())
    } else {
        services.stripe.mode(winning.livemode).err().map(|_| {
            "This auction house cannot take this payment yet: its payments are not set up. Please contact the auction house."
                .to_owned()
        })
    };
    let can_pay = winning.status == "awaiting_payment" && winning.pay_by > Utc::now() && unavailable.is_none();
    Ok(PayPage { winning, tenant: tenant.name, last_failure, unavailable, can_pay })
}

/// Checks the velocity limits for a request to pay for `bid_id` (see [`security::admit_checkout`]).
async fn admit(services: &Services, bid_id: Uuid, client_ip: Option<IpAddr>) -> Result<()> {
    let bid = sqlx::query!("SELECT tenant_id, buyer_email FROM winning_bids WHERE id = $1", bid_id)
        .fetch_one(&services.pool)
        .await?;
    let payer = Payer { tenant_id: bid.tenant_id, bid_id, buyer_email: &bid.buyer_email };
    security::admit_checkout(&services.pool, &payer, client_ip).await
}

/// Starts (or resumes) paying for the bid behind `token`; returns the Checkout URL.
pub async fn start(services: &Services, token: &str, client_ip: Option<IpAddr>) -> Result<String> {
    let id = bid_id_by_token(services, token, client_ip).await?;
    admit(services, id, client_ip).await?;
    checkout(services, id).await
}

/// A new Checkout attempt after a failed or expired one (`POST /payments/retry/{session}`).
pub async fn retry(services: &Services, stripe_session_id: &str, client_ip: Option<IpAddr>) -> Result<String> {
    let id = sqlx::query_scalar!(
        "SELECT bid_id FROM payment_sessions WHERE stripe_checkout_session_id = $1",
        stripe_session_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("payment session"))?;
    security::refuse_link_guessing(&services.pool, client_ip).await?;
    admit(services, id, client_ip).await?;
    checkout(services, id).await
}

/// When the buyer comes back from Checkout before Stripe's events have been applied, asks
/// Stripe how the session stands and, if it is paid, settles it now (the events will find the
/// order already made). A Stripe failure here only means the page shows "confirming".
pub async fn confirm_return(services: &Services, stripe_session_id: &str) -> Result<()> {
    let mut conn = services.pool.acquire().await?;
    let Some(row) = events::session_by_stripe_id(&mut conn, stripe_session_id).await? else {
        return Err(Error::NotFound("payment session"));
    };
    let waiting = sqlx::query_scalar!(
        "SELECT status = 'awaiting_payment' AS \"waiting!\" FROM winning_bids WHERE id = $1",
        row.bid_id
    )
    .fetch_one(&mut *conn)
    .await?;
    drop(conn);
    if !waiting {
        return Ok(());
    }
    let session = match events::retrieve_session(services.stripe.mode(row.livemode)?, stripe_session_id).await {
        Ok(session) => session,
        Err(err) => {
            err.log();
            return Ok(());
        }
    };
    let mut tx = services.pool.begin().await?;
    events::settle_paid_session(&mut tx, &row, &session).await?;
    tx.commit().await?;
    Ok(())
}

/// What a request to pay holds after the decision: either the open page to reuse, or a claimed
/// attempt whose Checkout Session is still to be made at Stripe.
enum Decision {
    Open(String),
    Claimed(Box<Claim>),
}

/// A claimed attempt: a `payment_sessions` row in state `creating`, with everything the Stripe
/// request is built from, so that repeating it (a concurrent click, a retry after a timeout)
/// sends the same parameters under the same idempotency key and gets the same session.
struct Claim {
    payment_session: Uuid,
    bid_id: Uuid,
    attempt: i32,
    expires_at: DateTime<Utc>,
    tenant_id: Uuid,
    reference: String,
    auction: String,
    lot: String,
    description: String,
    buyer_email: String,
    amount: i64,
    currency: String,
    livemode: bool,
    destination: String,
    fee_bps: u32,
    three_d_secure_above: i64,
}

/// The Checkout URL for a bid: the open session's, or a new attempt's.
///
/// Deciding and claiming happen under the bid's row lock, in a short transaction; the call to
/// Stripe happens after it commits, holding no lock and no connection; the session is recorded
/// when Stripe has answered. A failed or timed-out call leaves the claim, and the next request
/// repeats it with the same idempotency key, so Stripe never makes two sessions for one attempt.
async fn checkout(services: &Services, bid_id: Uuid) -> Result<String> {
    let claim = match decide(services, bid_id).await? {
        Decision::Open(url) => return Ok(url),
        Decision::Claimed(claim) => claim,
    };
    let stripe = services.stripe.mode(claim.livemode)?;
    let session = checkout_request(services, &claim)?
        .customize()
        .request_strategy(idempotent(format!("remit-checkout-{}", claim.payment_session))?)
        .send(stripe.client())
        .await;
    let session = match session {
        Ok(session) => session,
        // The tenant's Stripe account is no longer Remit's to pay into: the connection ends
        // (the owner is told) and this attempt's claim goes, so it is not counted.
        Err(err) if crate::stripe::lost_access_error(&err) => {
            let mut tx = services.pool.begin().await?;
            sqlx::query!("DELETE FROM payment_sessions WHERE id = $1 AND status = 'creating'", claim.payment_session)
                .execute(&mut *tx)
                .await?;
            tenant_stripe::lost_access(&mut tx, &claim.destination, None, AccessLost::Refused).await?;
            tx.commit().await?;
            return Err(Error::conflict(NOT_CONNECTED));
        }
        Err(err) => return Err(upstream(err, "open the payment page")),
    };
    let url = session.url.clone().ok_or_else(|| anyhow::anyhow!("Checkout session {} has no URL", session.id))?;
    let mut tx = services.pool.begin().await?;
    let opened = sqlx::query!(
        "UPDATE payment_sessions SET stripe_checkout_session_id = $2, url = $3, status = 'open'
         WHERE id = $1 AND status = 'creating'",
        claim.payment_session,
        session.id.as_str(),
        url,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if opened > 0 {
        sqlx::query!(
            "UPDATE winning_bids SET attempts = $2 WHERE id = $1 AND attempts < $2",
            claim.bid_id,
            claim.attempt
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(url)
}

/// Under the bid's lock: refuses what cannot be paid, returns the open page, or claims the next
/// attempt (or takes over a claim another request made and did not finish).
async fn decide(services: &Services, bid_id: Uuid) -> Result<Decision> {
    let mut tx = services.pool.begin().await?;
    let bid = sqlx::query!(
        r#"SELECT b.tenant_id, b.reference, b.auction, b.lot, b.description, b.buyer_email, b.amount, b.currency, b.status,
                b.pay_by, b.attempts, b.next_attempt_at, b.livemode, s.stripe_account_id AS "destination?",
                t.status = 'suspended' AS "suspended!"
         FROM winning_bids b JOIN tenants t ON t.id = b.tenant_id
         LEFT JOIN tenant_stripe_accounts s ON s.tenant_id = b.tenant_id
         WHERE b.id = $1 FOR UPDATE OF b"#,
        bid_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let now = Utc::now();
    match bid.status.as_str() {
        "paid" => return Err(Error::conflict("This lot is already paid. Thank you!")),
        "failed" => {
            return Err(Error::conflict(
                "Payment failed three times, so this payment link is closed. Please contact the auction house.",
            ));
        }
        "expired" => return Err(Error::conflict("The 24-hour payment window has closed.")),
        "cancelled" => {
            return Err(Error::conflict(
                "The auction house cancelled this win, so it cannot be paid. Please contact them.",
            ));
        }
        _ => {}
    }
    if bid.pay_by <= now {
        return Err(Error::conflict("The 24-hour payment window has closed."));
    }
    if bid.suspended {
        return Err(Error::conflict(PAYMENTS_PAUSED));
    }
    if let Some(open) = sqlx::query_scalar!(
        r#"SELECT url AS "url!" FROM payment_sessions
           WHERE bid_id = $1 AND status = 'open' AND expires_at > now() ORDER BY attempt DESC LIMIT 1"#,
        bid_id
    )
    .fetch_optional(&mut *tx)
    .await?
    {
        return Ok(Decision::Open(open));
    }
    // The mode is checked before anything is claimed: a bid of a mode without Stripe keys is
    // refused here, never paid through the other mode's key.
    services.stripe.mode(bid.livemode)?;
    let destination = bid.destination.ok_or_else(|| Error::conflict(NOT_CONNECTED))?;
    // The tenant's terms as they stand now: a changed fee applies from the next attempt.
    let currency = Currency::parse(&bid.currency).ok_or_else(|| anyhow::anyhow!("unsupported currency"))?;
    let terms =
        payment_terms::for_payment(&mut tx, services.settings.platform_fee_bps, bid.tenant_id, currency).await?;
    let claim = |payment_session, attempt, expires_at| Claim {
        payment_session,
        bid_id,
        attempt,
        expires_at,
        tenant_id: bid.tenant_id,
        reference: bid.reference.clone(),
        auction: bid.auction.clone(),
        lot: bid.lot.clone(),
        description: bid.description.clone(),
        buyer_email: bid.buyer_email.clone(),
        amount: bid.amount,
        currency: bid.currency.clone(),
        livemode: bid.livemode,
        destination: destination.clone(),
        fee_bps: terms.fee_bps,
        three_d_secure_above: terms.three_d_secure_above,
    };
    // A claim another request made and did not finish is repeated as it was, while Stripe can
    // still open a page until its expiry; a claim too close to its expiry is dropped.
    if let Some(pending) = sqlx::query!(
        "SELECT id, attempt, expires_at FROM payment_sessions WHERE bid_id = $1 AND status = 'creating'",
        bid_id
    )
    .fetch_optional(&mut *tx)
    .await?
    {
        if pending.expires_at - now >= STRIPE_MIN_SESSION {
            tx.commit().await?;
            return Ok(Decision::Claimed(Box::new(claim(pending.id, pending.attempt, pending.expires_at))));
        }
        sqlx::query!("DELETE FROM payment_sessions WHERE id = $1 AND status = 'creating'", pending.id)
            .execute(&mut *tx)
            .await?;
    }
    if bid.attempts >= MAX_ATTEMPTS {
        return Err(Error::conflict("All three payment attempts have been used. Please contact the auction house."));
    }
    if let Some(wait) = bid.next_attempt_at.filter(|t| *t > now) {
        let retry_after = (wait - now).to_std().unwrap_or_default();
        return Err(Error::RateLimited {
            message: format!("Please wait {} before trying again.", crate::error::human_duration(retry_after)),
            retry_after,
        });
    }
    if bid.pay_by - now < STRIPE_MIN_SESSION {
        return Err(Error::conflict(
            "The payment window closes in under 30 minutes, too soon for Stripe to open a new payment page. Please contact the auction house.",
        ));
    }
    let attempt = bid.attempts + 1;
    let payment_session = Uuid::new_v4();
    // Whole seconds, as Stripe takes them, so a repeated request sends the same value.
    let expires_at = bid.pay_by.min(now + Duration::hours(24)).trunc_subsecs(0);
    sqlx::query!(
        "INSERT INTO payment_sessions (id, bid_id, attempt, status, expires_at) VALUES ($1, $2, $3, 'creating', $4)",
        payment_session,
        bid_id,
        attempt,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Decision::Claimed(Box::new(claim(payment_session, attempt, expires_at))))
}

/// The Checkout Session a claim asks Stripe for: a destination charge to the tenant's account
/// less Remit's fee, with 3D Secure asked for above the tenant's threshold for the currency.
fn checkout_request(services: &Services, claim: &Claim) -> Result<CreateCheckoutSession> {
    let metadata = [
        ("payment_session".to_owned(), claim.payment_session.to_string()),
        ("bid".to_owned(), claim.bid_id.to_string()),
        ("tenant".to_owned(), claim.tenant_id.to_string()),
        ("auction".to_owned(), claim.auction.clone()),
        ("lot".to_owned(), claim.lot.clone()),
        ("reference".to_owned(), claim.reference.clone()),
    ]
    .into_iter()
    .collect();
    DestinationCharge {
        name: format!("Lot {} — {}", claim.lot, claim.auction),
        description: Some(claim.description.clone()).filter(|d| !d.is_empty()),
        amount: Money::stored(claim.amount, &claim.currency)?,
        destination: &claim.destination,
        fee_bps: claim.fee_bps,
        three_d_secure_above: claim.three_d_secure_above,
        metadata,
        email: &claim.buyer_email,
        reference: claim.bid_id.to_string(),
        expires_at: claim.expires_at,
        success_url: services.settings.public_url("/pay/complete?session={CHECKOUT_SESSION_ID}"),
        cancel_url: services.settings.public_url("/pay/cancelled?session={CHECKOUT_SESSION_ID}"),
    }
    .request()
}

/// One item paid through hosted Checkout as a destination charge: the amount goes to
/// `destination` (a tenant's or a consultant's connected account) less the platform's fee of
/// `fee_bps`, with 3D Secure asked for above `three_d_secure_above`. Lots and fees are both paid
/// this way; the metadata (on the session and its payment) says which, for the events' routing.
pub(crate) struct DestinationCharge<'a> {
    pub name: String,
    pub description: Option<String>,
    pub amount: Money,
    pub destination: &'a str,
    pub fee_bps: u32,
    pub three_d_secure_above: i64,
    pub metadata: std::collections::HashMap<String, String>,
    /// The payer's, prefilled on Stripe's page.
    pub email: &'a str,
    /// Stripe's `client_reference_id`.
    pub reference: String,
    pub expires_at: DateTime<Utc>,
    pub success_url: String,
    pub cancel_url: String,
}

impl DestinationCharge<'_> {
    pub(crate) fn request(self) -> Result<CreateCheckoutSession> {
        let currency: stripe_types::Currency =
            self.amount.currency.code().parse().map_err(|_| anyhow::anyhow!("unknown currency"))?;
        let mut product = ProductData::new(self.name);
        product.description = self.description;
        let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency);
        price.unit_amount = Some(self.amount.amount);
        price.product_data = Some(product);
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price_data = Some(price);
        item.quantity = Some(1);
        let mut intent = CreateCheckoutSessionPaymentIntentData::new();
        intent.metadata = Some(self.metadata.clone());
        intent.transfer_data = Some(CreateCheckoutSessionPaymentIntentDataTransferData::new(self.destination));
        intent.application_fee_amount = Some(application_fee(self.amount.amount, self.fee_bps));
        let mut request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .line_items(vec![item])
            .payment_intent_data(intent)
            .customer_email(self.email)
            .client_reference_id(self.reference)
            .metadata(self.metadata)
            .expires_at(self.expires_at.timestamp())
            .success_url(self.success_url)
            .cancel_url(self.cancel_url);
        if payment_terms::asks_three_d_secure(self.amount.amount, self.three_d_secure_above) {
            let mut card = CreateCheckoutSessionPaymentMethodOptionsCard::new();
            card.request_three_d_secure = Some(CreateCheckoutSessionPaymentMethodOptionsCardRequestThreeDSecure::Any);
            let mut options = CreateCheckoutSessionPaymentMethodOptions::new();
            options.card = Some(card);
            request = request.payment_method_options(options);
        }
        Ok(request)
    }
}

/// Remit's application fee on `amount`: `bps` basis points, rounded down. Computed in 128 bits,
/// so no amount can overflow it, and never more than the amount itself.
pub fn application_fee(amount: i64, bps: u32) -> i64 {
    let fee = i128::from(amount.max(0)) * i128::from(bps.min(10_000)) / 10_000;
    i64::try_from(fee).unwrap_or(amount)
}

/// What buyers are told when the tenant has no Stripe account connected (never connected, or
/// disconnected from inside Stripe).
pub const NOT_CONNECTED: &str = "This auction house cannot take payments right now: its Stripe account is not \
                                 connected to Remit. Please contact the auction house.";

/// What buyers of a suspended tenant are told.
pub const PAYMENTS_PAUSED: &str =
    "Payments to this auction house are paused for now. Please contact the auction house.";

/// `GET /payments/checkout/{session}/status`: where a payment stands, for whoever holds the
/// session id (it is unguessable, and only the buyer's browser is sent to it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PaymentStatus {
    pub session_status: String,
    pub bid_status: String,
    pub attempt: i32,
    pub attempts_left: i32,
    pub amount: i64,
    pub currency: String,
    pub lot: String,
    pub failure_message: Option<String>,
    pub pay_by: DateTime<Utc>,
}

pub async fn status(services: &Services, stripe_session_id: &str) -> Result<PaymentStatus> {
    sqlx::query_as!(
        PaymentStatus,
        r#"SELECT s.status AS session_status, b.status AS bid_status, s.attempt, ($2::int - b.attempts) AS "attempts_left!",
                  b.amount, b.currency, b.lot, s.failure_message, b.pay_by
           FROM payment_sessions s JOIN winning_bids b ON b.id = s.bid_id WHERE s.stripe_checkout_session_id = $1"#,
        stripe_session_id,
        MAX_ATTEMPTS,
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("payment session"))
}

/// The buyer's link token is not kept, so pages after Checkout find the bid by session.
pub async fn bid_of_session(services: &Services, stripe_session_id: &str) -> Result<Uuid> {
    sqlx::query_scalar!("SELECT bid_id FROM payment_sessions WHERE stripe_checkout_session_id = $1", stripe_session_id)
        .fetch_optional(&services.pool)
        .await?
        .ok_or(Error::NotFound("payment session"))
}

/// When a bid's payment window closes: marks it expired unless it was paid (see [`expire`]).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ExpireWinning {
    pub bid_id: Uuid,
}

impl TaskHandler for ExpireWinning {
    const IDENTIFIER: &'static str = "expire_winning";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        let expired = lifecycle::expire(services, self.bid_id).await.map_err(|e| e.to_string())?;
        tracing::info!(bid = %self.bid_id, expired, "payment window closed");
        Ok::<(), String>(())
    }
}

/// Which winnings a list or an export shows. Every field narrows; none shows all.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Filter {
    /// Part of the reference, the buyer's email or the lot.
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// `live` or `test`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Won on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Won on or before this day.
    #[serde(default)]
    pub to: Option<String>,
}

/// A filter checked and in the types the query takes.
pub struct Checked {
    pattern: Option<String>,
    status: Option<String>,
    livemode: Option<bool>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

const STATUSES: [&str; 5] = ["awaiting_payment", "paid", "expired", "failed", "cancelled"];

impl Filter {
    pub fn check(&self) -> Result<Checked> {
        let blank = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let day = |v: Option<String>, field: &'static str| {
            v.map(|d| {
                chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                    .map_err(|_| Error::invalid(field, "Give a day as YYYY-MM-DD."))
            })
            .transpose()
        };
        let status = blank(&self.status);
        if let Some(s) = &status
            && !STATUSES.contains(&s.as_str())
        {
            return Err(Error::invalid("status", format!("Use one of: {}.", STATUSES.join(", "))));
        }
        let livemode = match blank(&self.mode).as_deref() {
            None => None,
            Some("live") => Some(true),
            Some("test") => Some(false),
            Some(_) => return Err(Error::invalid("mode", "Use live or test.")),
        };
        let q = blank(&self.q);
        if q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(Error::invalid("q", "Search for at most 200 characters."));
        }
        // LIKE's wildcards in what was typed are matched as themselves.
        let pattern = q.map(|q| format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
        Ok(Checked {
            pattern,
            status,
            livemode,
            from: day(blank(&self.from), "from")?,
            until: day(blank(&self.to), "to")?.map(|d| d + Duration::days(1)),
        })
    }
}

/// Where the next page starts: the last row's win time and id, opaque to callers.
fn cursor_of(w: &Winning) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{}", w.won_at.timestamp_micros(), w.id))
}

fn parse_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid)> {
    use base64::Engine as _;
    let invalid = || Error::invalid("cursor", "This cursor is not one Remit gave out.");
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(text).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('|').ok_or_else(invalid)?;
    let at = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(invalid)?;
    Ok((at, id.parse().map_err(|_| invalid())?))
}

/// Longest page a list returns.
pub const MAX_PAGE: i64 = 200;

/// One page of a tenant's winnings, newest first, and the cursor of the next page (if any).
pub async fn search(
    pool: &sqlx::PgPool,
    tenant_id: Uuid,
    filter: &Filter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<(Vec<Winning>, Option<String>)> {
    let f = filter.check()?;
    let after = cursor.filter(|c| !c.is_empty()).map(parse_cursor).transpose()?;
    let limit = limit.clamp(1, MAX_PAGE);
    let mut rows = sqlx::query_as!(
        Winning,
        r#"SELECT b.id AS "id!", b.reference AS "reference!", b.auction AS "auction!", b.lot AS "lot!",
                b.description AS "description!", b.buyer_email AS "buyer_email!", b.amount AS "amount!",
                b.currency AS "currency!", b.status AS "status!", b.livemode AS "livemode!", b.won_at AS "won_at!",
                b.pay_by AS "pay_by!", b.attempts AS "attempts!", b.extended_at, b.cancel_reason,
                o.id AS "order_id?", o.status AS "order_status?"
         FROM winnings_matching($1, $2, $3, $4, $5, $6) b LEFT JOIN orders o ON o.bid_id = b.id
         WHERE ($7::timestamptz IS NULL OR (b.won_at, b.id) < ($7, $8::uuid))
         ORDER BY b.won_at DESC, b.id DESC LIMIT $9"#,
        tenant_id,
        f.pattern,
        f.status,
        f.livemode,
        f.from,
        f.until,
        after.map(|(at, _)| at),
        after.map(|(_, id)| id),
        limit + 1,
    )
    .fetch_all(pool)
    .await?;
    let next = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(cursor_of)
    });
    Ok((rows, next.flatten()))
}

/// Every winning the filter shows, as CSV lines (a header first), read from the database as they
/// are sent: a task reads the rows one by one into a small channel that the response drains, so
/// an export of any size holds a few rows in memory at a time (and stops when the reader goes).
pub fn export_csv(
    pool: sqlx::PgPool,
    tenant_id: Uuid,
    filter: Checked,
) -> impl futures_util::Stream<Item = Result<String>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String>>(64);
    tokio::spawn(async move {
        let header = "id,reference,auction,lot,buyer_email,amount,currency,status,mode,won_at,pay_by,order_status,\
                      refunded\n";
        if tx.send(Ok(header.to_owned())).await.is_err() {
            return;
        }
        let mut rows = sqlx::query!(
            r#"SELECT b.id AS "id!", b.reference AS "reference!", b.auction AS "auction!", b.lot AS "lot!",
                      b.buyer_email AS "buyer_email!", b.amount AS "amount!", b.currency AS "currency!",
                      b.status AS "status!", b.livemode AS "livemode!", b.won_at AS "won_at!", b.pay_by AS "pay_by!",
                      o.status AS "order_status?", o.refunded_amount AS "refunded?"
               FROM winnings_matching($1, $2, $3, $4, $5, $6) b LEFT JOIN orders o ON o.bid_id = b.id
               ORDER BY b.won_at DESC, b.id DESC"#,
            tenant_id,
            filter.pattern,
            filter.status,
            filter.livemode,
            filter.from,
            filter.until,
        )
        .fetch(&pool);
        loop {
            let line = match futures_util::TryStreamExt::try_next(&mut rows).await {
                Ok(Some(r)) => Ok(csv_line(&[
                    r.id.to_string(),
                    r.reference,
                    r.auction,
                    r.lot,
                    r.buyer_email,
                    r.amount.to_string(),
                    r.currency,
                    r.status,
                    (if r.livemode { "live" } else { "test" }).to_owned(),
                    r.won_at.to_rfc3339(),
                    r.pay_by.to_rfc3339(),
                    r.order_status.unwrap_or_default(),
                    r.refunded.map(|a| a.to_string()).unwrap_or_default(),
                ])),
                Ok(None) => return,
                Err(err) => Err(Error::from(err)),
            };
            let failed = line.is_err();
            if tx.send(line).await.is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|line| (line, rx)) })
}

/// One CSV line (RFC 4180): fields with a comma, quote or line break are quoted; a field a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`) is prefixed with `'`.
pub fn csv_line(fields: &[String]) -> String {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let guarded = if field.starts_with(['=', '+', '-', '@']) { format!("'{field}") } else { field.clone() };
        if guarded.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&guarded.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&guarded);
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let line = csv_line(&["a,b".into(), "say \"hi\"".into(), "=SUM(A1)".into(), "plain".into()]);
        assert_eq!(line, "\"a,b\",\"say \"\"hi\"\"\",'=SUM(A1),plain\n");
    }

    #[test]
    fn a_cursor_reads_back_and_a_forged_one_is_refused() {
        let w = Winning {
            id: Uuid::new_v4(),
            reference: String::new(),
            auction: String::new(),
            lot: String::new(),
            description: String::new(),
            buyer_email: String::new(),
            amount: 1,
            currency: "usd".into(),
            status: "paid".into(),
            livemode: false,
            won_at: Utc::now().trunc_subsecs(6),
            pay_by: Utc::now(),
            attempts: 0,
            extended_at: None,
            cancel_reason: None,
            order_id: None,
            order_status: None,
        };
        assert_eq!(parse_cursor(&cursor_of(&w)).unwrap(), (w.won_at, w.id));
        assert!(parse_cursor("not-a-cursor").is_err());
    }

    #[test]
    fn a_filter_checks_what_it_is_given() {
        let f = Filter { q: Some(" 50%_off ".into()), ..Filter::default() }.check().unwrap();
        assert_eq!(f.pattern.as_deref(), Some("%50\\%\\_off%"));
        assert!(Filter { status: Some("lost".into()), ..Filter::default() }.check().is_err());
        assert!(Filter { mode: Some("sandbox".into()), ..Filter::default() }.check().is_err());
        assert!(Filter { from: Some("06/12/2026".into()), ..Filter::default() }.check().is_err());
        let f =
            Filter { to: Some("2026-12-06".into()), mode: Some("test".into()), ..Filter::default() }.check().unwrap();
        assert_eq!(f.until.unwrap().to_rfc3339(), "2026-12-07T00:00:00+00:00");
        assert_eq!(f.livemode, Some(false));
    }

    #[test]
    fn the_application_fee_never_overflows_and_never_exceeds_the_amount() {
        assert_eq!(application_fee(12_500, 500), 625);
        assert_eq!(application_fee(99, 500), 4, "rounded down");
        assert_eq!(application_fee(9_000_000_000_000_000_000, 500), 450_000_000_000_000_000);
        assert_eq!(application_fee(i64::MAX, 10_000), i64::MAX);
        assert_eq!(application_fee(1_000, 20_000), 1_000, "at most the amount");
        assert_eq!(application_fee(-5, 500), 0);
    }
}
