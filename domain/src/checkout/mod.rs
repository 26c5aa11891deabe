//! Buyer checkout of auction winnings: a winning bid with its 24-hour payment window, Stripe
//! Checkout attempts (at most three, with backoff after a failure), and the order a payment
//! creates exactly once (see `events`).

pub mod events;

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
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
    Services, crypto,
    error::{Error, Result},
    jobs,
    mail::{self, OutgoingEmail},
    money::{Currency, format_minor},
    security::{self, Payer},
    stripe::{idempotent, upstream},
};

/// How long a buyer has to pay, from the win.
pub const PAYMENT_WINDOW: Duration = Duration::hours(24);
/// Checkout attempts per bid.
pub const MAX_ATTEMPTS: i32 = 3;
/// Amounts above this (in US cents) ask the card issuer for 3D Secure.
const THREE_D_SECURE_ABOVE_USD: i64 = 50_000;
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
}

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
    /// The order a payment made, and its state (`paid`, `refunded`, `disputed`, …).
    pub order_id: Option<Uuid>,
    pub order_status: Option<String>,
}

fn text(value: &str, field: &'static str, what: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_TEXT {
        return Err(Error::invalid(field, format!("Give the {what} (up to {MAX_TEXT} characters).")));
    }
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
    crate::auth::sign_in::validate_email(&input.buyer_email)
        .map_err(|_| Error::invalid("buyer_email", "Give the buyer's email address, like name@example.com."))?;
    let buyer_email = input.buyer_email.trim().to_owned();
    let currency = Currency::parse(&input.currency).ok_or_else(|| {
        Error::invalid("currency", format!("Use one of: {}.", Currency::supported().collect::<Vec<_>>().join(", ")))
    })?;
    if input.amount < 50 {
        return Err(Error::invalid("amount", "The amount is in minor units (cents) and must be at least 50."));
    }

    let mut tx = services.pool.begin().await?;
    let inserted = sqlx::query_scalar!(
        "INSERT INTO winning_bids (id, tenant_id, livemode, reference, auction, lot, description, buyer_email, amount,
             currency, token_hash, pay_by, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now() + $12::interval, $13)
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
    let winning = get(&mut tx, id).await?;
    let tenant = sqlx::query_scalar!("SELECT name FROM tenants WHERE id = $1", tenant_id).fetch_one(&mut *tx).await?;
    mail::enqueue(
        &mut tx,
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
                services.settings.public_url(&format!("/pay/{token}")),
            ),
            attachments: vec![],
        },
    )
    .await?;
    // Marks the bid expired when the window closes, unless it was paid.
    jobs::enqueue_with(
        &mut tx,
        jobs::ExpireWinning { bid_id: id },
        graphile_worker::JobSpec::builder().run_at(winning.pay_by).max_attempts(12).build(),
    )
    .await?;
    tx.commit().await?;
    Ok((winning, true))
}

async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Winning> {
    sqlx::query_as!(
        Winning,
        r#"SELECT b.id, b.reference, b.auction, b.lot, b.description, b.buyer_email, b.amount, b.currency, b.status,
                b.livemode, b.won_at, b.pay_by, b.attempts, o.id AS "order_id?", o.status AS "order_status?"
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
                b.livemode, b.won_at, b.pay_by, b.attempts, o.id AS "order_id?", o.status AS "order_status?"
         FROM winning_bids b LEFT JOIN orders o ON o.bid_id = b.id WHERE b.tenant_id = $1 AND b.livemode = $2 AND b.reference = $3"#,
        tenant_id,
        livemode,
        reference
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("winning bid"))
}

/// A tenant's bid by id; another tenant's (or the other mode's) bid is not found.
pub async fn for_tenant(services: &Services, tenant_id: Uuid, livemode: bool, id: Uuid) -> Result<Winning> {
    let mut conn = services.pool.acquire().await?;
    let winning = get(&mut conn, id).await?;
    let owner =
        sqlx::query_scalar!("SELECT tenant_id FROM winning_bids WHERE id = $1", id).fetch_one(&mut *conn).await?;
    if owner != tenant_id || winning.livemode != livemode {
        return Err(Error::NotFound("winning bid"));
    }
    Ok(winning)
}

/// What the buyer's payment page shows.
#[derive(Debug, Clone)]
pub struct PayPage {
    pub winning: Winning,
    pub tenant: String,
    /// A message about the last attempt, when it failed.
    pub last_failure: Option<String>,
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
    let tenant = sqlx::query_scalar!(
        "SELECT t.name FROM tenants t JOIN winning_bids b ON b.tenant_id = t.id WHERE b.id = $1",
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
    let can_pay = winning.status == "awaiting_payment" && winning.pay_by > Utc::now();
    Ok(PayPage { winning, tenant, last_failure, can_pay })
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
    let session = match events::retrieve_session(services, stripe_session_id).await {
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

/// The Checkout URL for a bid: the open session's, or a new attempt's. The bid row is locked
/// for the whole decision, so two clicks cannot make two attempts.
async fn checkout(services: &Services, bid_id: Uuid) -> Result<String> {
    let mut tx = services.pool.begin().await?;
    let bid = sqlx::query!(
        "SELECT b.tenant_id, b.reference, b.auction, b.lot, b.description, b.buyer_email, b.amount, b.currency, b.status,
                b.pay_by, b.attempts, b.next_attempt_at, b.livemode, s.stripe_account_id AS \"destination?\"
         FROM winning_bids b LEFT JOIN tenant_stripe_accounts s ON s.tenant_id = b.tenant_id
         WHERE b.id = $1 FOR UPDATE OF b",
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
        _ => {}
    }
    if bid.pay_by <= now {
        return Err(Error::conflict("The 24-hour payment window has closed."));
    }
    if let Some(open) = sqlx::query_scalar!(
        "SELECT url FROM payment_sessions WHERE bid_id = $1 AND status = 'open' AND expires_at > now() ORDER BY attempt DESC LIMIT 1",
        bid_id
    )
    .fetch_optional(&mut *tx)
    .await?
    {
        return Ok(open);
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
    let destination = bid.destination.ok_or_else(|| {
        Error::conflict("The auction house cannot take payments yet (its Stripe account is not connected).")
    })?;

    let attempt = bid.attempts + 1;
    let payment_session = Uuid::new_v4();
    let expires_at = bid.pay_by.min(now + Duration::hours(24));
    let metadata: std::collections::HashMap<String, String> = [
        ("payment_session".to_owned(), payment_session.to_string()),
        ("bid".to_owned(), bid_id.to_string()),
        ("tenant".to_owned(), bid.tenant_id.to_string()),
        ("auction".to_owned(), bid.auction.clone()),
        ("lot".to_owned(), bid.lot.clone()),
        ("reference".to_owned(), bid.reference.clone()),
    ]
    .into_iter()
    .collect();
    let currency: stripe_types::Currency = bid.currency.parse().map_err(|_| anyhow::anyhow!("unknown currency"))?;
    let mut product = ProductData::new(format!("Lot {} — {}", bid.lot, bid.auction));
    if !bid.description.is_empty() {
        product.description = Some(bid.description.clone());
    }
    let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency);
    price.unit_amount = Some(bid.amount);
    price.product_data = Some(product);
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price_data = Some(price);
    item.quantity = Some(1);
    let mut intent = CreateCheckoutSessionPaymentIntentData::new();
    intent.metadata = Some(metadata.clone());
    intent.transfer_data = Some(CreateCheckoutSessionPaymentIntentDataTransferData::new(destination));
    intent.application_fee_amount = Some(bid.amount * i64::from(services.settings.platform_fee_bps) / 10_000);
    let mut request = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![item])
        .payment_intent_data(intent)
        .customer_email(bid.buyer_email.as_str())
        .client_reference_id(bid_id.to_string())
        .metadata(metadata)
        .expires_at(expires_at.timestamp())
        .success_url(services.settings.public_url("/pay/complete?session={CHECKOUT_SESSION_ID}"))
        .cancel_url(services.settings.public_url("/pay/cancelled?session={CHECKOUT_SESSION_ID}"));
    if bid.currency == "usd" && bid.amount > THREE_D_SECURE_ABOVE_USD {
        let mut card = CreateCheckoutSessionPaymentMethodOptionsCard::new();
        card.request_three_d_secure = Some(CreateCheckoutSessionPaymentMethodOptionsCardRequestThreeDSecure::Any);
        let mut options = CreateCheckoutSessionPaymentMethodOptions::new();
        options.card = Some(card);
        request = request.payment_method_options(options);
    }
    let session = request
        .customize()
        .request_strategy(idempotent(format!("remit-checkout-{bid_id}-{attempt}"))?)
        .send(services.stripe.client())
        .await
        .map_err(|e| upstream(e, "open the payment page"))?;
    let url = session.url.clone().ok_or_else(|| anyhow::anyhow!("Checkout session {} has no URL", session.id))?;
    sqlx::query!(
        "INSERT INTO payment_sessions (id, bid_id, attempt, stripe_checkout_session_id, url, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        payment_session,
        bid_id,
        attempt,
        session.id.as_str(),
        url,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE winning_bids SET attempts = $2 WHERE id = $1", bid_id, attempt).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(url)
}

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

/// Closes an unpaid bid whose window has passed (the `expire_winning` job).
pub async fn expire(pool: &sqlx::PgPool, bid_id: Uuid) -> Result<bool> {
    let expired = sqlx::query!(
        "UPDATE winning_bids SET status = 'expired' WHERE id = $1 AND status = 'awaiting_payment' AND pay_by <= now()",
        bid_id
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(expired > 0)
}

/// A tenant's winnings, newest first (for its staff).
pub async fn list(pool: &sqlx::PgPool, tenant_id: Uuid) -> Result<Vec<Winning>> {
    Ok(sqlx::query_as!(
        Winning,
        r#"SELECT b.id, b.reference, b.auction, b.lot, b.description, b.buyer_email, b.amount, b.currency, b.status,
                b.livemode, b.won_at, b.pay_by, b.attempts, o.id AS "order_id?", o.status AS "order_status?"
         FROM winning_bids b LEFT JOIN orders o ON o.bid_id = b.id WHERE b.tenant_id = $1 ORDER BY b.won_at DESC LIMIT 200"#,
        tenant_id
    )
    .fetch_all(pool)
    .await?)
}
