//! Fees consultants bill the clients of their household: a fee request (one-off, or monthly
//! until the consultant stops it), paid by the client through Stripe Checkout as a destination
//! charge to the consultant's connected account, the platform's fee taken as the application fee.
//! A paid fee is an order like a paid lot, so its receipt is drawn by `receipts`; Stripe's events
//! about it are applied by [`events`]; [`report`] sums them per month.

pub mod events;
pub mod report;

use chrono::{DateTime, Duration, Months, NaiveDate, SubsecRound as _, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use sqlx::{PgConnection, PgPool};
use stripe_checkout::checkout_session::{CreateCheckoutSession, ExpireCheckoutSession};
use stripe_client_core::StripeRequest as _;
use uuid::Uuid;

use crate::{
    Services,
    accounts::{self, Invitation},
    audit::{self, Entry},
    auth::{Principal, Role},
    billing,
    checkout::DestinationCharge,
    error::{Error, Result},
    mail::{self, OutgoingEmail},
    money::{Currency, Money, format_minor},
    payment_terms, payouts, queue,
    refunds::{self, NewRefund, Refunded, Requester},
    security::{self, MailKind},
    states::{FeeRecurrence, FeeRequestStatus},
    stripe::{idempotent, upstream},
};

/// The fees page of consultants and their clients; Checkout returns to it.
pub const PATH: &str = "/fees";
const MAX_DESCRIPTION: usize = 200;
/// How far ahead a fee may fall due.
const MAX_DAYS_AHEAD: i64 = 366;
/// How long a fee's Checkout page stays open (Stripe allows up to 24 hours).
const CHECKOUT_LIFETIME: Duration = Duration::hours(23);
/// A Checkout claim older than this was left by a request that never finished.
const STALE_CLAIM: Duration = Duration::minutes(2);

/// Whom a new fee is for.
#[derive(Debug, Clone)]
pub enum Client {
    /// A member of the consultant's household.
    Member(Uuid),
    /// Someone new, invited into the household with the request.
    New { email: String, name: String },
}

/// A fee as the consultant types it: the amount in major units ("120.00"), the due date as
/// `YYYY-MM-DD`, the recurrence as `once` or `monthly`.
#[derive(Debug, Clone)]
pub struct NewFee {
    pub client: Client,
    pub description: String,
    pub amount: String,
    pub currency: String,
    pub due_on: String,
    pub recurrence: String,
}

/// A fee request as its consultant and its client see it.
#[derive(Debug, Clone)]
pub struct Fee {
    pub id: Uuid,
    pub consultant_name: String,
    pub client_name: String,
    pub client_email: String,
    pub description: String,
    pub amount: Money,
    pub due_on: NaiveDate,
    pub recurrence: FeeRecurrence,
    pub status: FeeRequestStatus,
    /// For a monthly fee: whether the consultant stopped the series.
    pub series_stopped: bool,
    pub paid_at: Option<DateTime<Utc>>,
    /// The paid fee's order state (`paid`, `refunded`, `disputed`, …).
    pub order_status: Option<String>,
    /// What can still be refunded of a paid fee (none while it is disputed).
    pub refundable: Option<Money>,
    /// The paid fee's refunds, oldest first.
    pub refunds: Vec<refunds::Refund>,
}

fn validate(new: &NewFee) -> Result<(String, Money, NaiveDate, FeeRecurrence)> {
    let description = new.description.trim();
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid(
            "description",
            format!("Say what the fee is for (up to {MAX_DESCRIPTION} characters)."),
        ));
    }
    crate::input::plain_text(description, "description", false)?;
    let currency = Currency::parse(&new.currency).ok_or_else(|| {
        Error::invalid("currency", format!("Use one of: {}.", Currency::supported().collect::<Vec<_>>().join(", ")))
    })?;
    let amount = Money::parse(&new.amount, currency, "amount")?;
    let amount = Money::chargeable(amount.amount, currency, "amount")?;
    let due_on = NaiveDate::parse_from_str(new.due_on.trim(), "%Y-%m-%d")
        .map_err(|_| Error::invalid("due_on", "Give the due date as a date, like 2026-12-31."))?;
    let today = Utc::now().date_naive();
    if due_on < today {
        return Err(Error::invalid("due_on", "The due date is in the past."));
    }
    if due_on > today + Duration::days(MAX_DAYS_AHEAD) {
        return Err(Error::invalid("due_on", "The due date must be within a year."));
    }
    let recurrence = FeeRecurrence::parse(new.recurrence.trim())
        .ok_or_else(|| Error::invalid("recurrence", "Choose whether the fee is billed once or monthly."))?;
    Ok((description.to_owned(), amount, due_on, recurrence))
}

/// A consultant bills a client of their household (or someone new, who is invited into it in
/// the same transaction). Needs an active subscription and payouts Stripe has enabled: the money
/// goes to the consultant's connected account. The client is emailed; the request is audited.
pub async fn request(services: &Services, consultant: &Principal, new: NewFee) -> Result<Fee> {
    if consultant.role != Role::Consultant {
        return Err(Error::Forbidden);
    }
    let tenant_id = consultant.tenant()?;
    let (description, amount, due_on, recurrence) = validate(&new)?;
    if !billing::is_subscribed(&services.pool, consultant.user_id).await? {
        return Err(Error::conflict(
            "Billing clients needs an active subscription. Subscribe to a plan under Billing first.",
        ));
    }
    let account = payouts::account_of(&services.pool, consultant.user_id).await?;
    if !account.is_some_and(|a| a.payouts_enabled) {
        return Err(Error::conflict(
            "Fees are paid into your payout account, and Stripe has not enabled payouts on it yet. Finish payout \
             setup first.",
        ));
    }
    let livemode = services.stripe.platform().livemode();

    let mut tx = services.pool.begin().await?;
    let client_id = match &new.client {
        Client::Member(id) => sqlx::query_scalar!(
            "SELECT id FROM users WHERE id = $1 AND consultant_id = $2 AND deactivated_at IS NULL",
            id,
            consultant.user_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("client"))?,
        Client::New { email, name } => new_client(&mut tx, services, consultant, email, name).await?,
    };
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO fee_requests (id, tenant_id, consultant_id, client_id, description, amount, currency, due_on,
             recurrence, series_id, period, livemode)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $1, 0, $10)",
        id,
        tenant_id,
        consultant.user_id,
        client_id,
        description,
        amount.amount,
        amount.currency.code(),
        due_on,
        recurrence as FeeRecurrence,
        livemode,
    )
    .execute(&mut *tx)
    .await?;
    tell_client(&mut tx, services, id).await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(consultant),
            action: "fee.requested",
            target: Some(id.to_string()),
            reason: None,
            details: serde_json::json!({
                "amount": amount.amount,
                "currency": amount.currency.code(),
                "recurrence": recurrence,
                "due_on": due_on,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    get(&services.pool, id).await
}

/// The client of a new address: a household member already, or invited now. An address with an
/// account outside the household cannot be billed (the consultant learns that it has one, as
/// any billing form must say why it refuses; invitations count against the tenant's mail limit).
async fn new_client(
    tx: &mut PgConnection,
    services: &Services,
    consultant: &Principal,
    email: &str,
    name: &str,
) -> Result<Uuid> {
    let email = email.trim();
    crate::auth::sign_in::validate_email(email)
        .map_err(|_| Error::invalid("client_email", "Give the client's email address, like name@example.com."))?;
    let existing = sqlx::query!(
        r#"SELECT id, consultant_id, deactivated_at IS NOT NULL AS "deactivated!" FROM users WHERE lower(email) = lower($1)"#,
        email
    )
    .fetch_optional(&mut *tx)
    .await?;
    match existing {
        Some(user) if user.consultant_id == Some(consultant.user_id) && !user.deactivated => Ok(user.id),
        Some(_) => {
            // The refusal counts against the tenant's invitation limit, in a transaction of its
            // own (the caller's rolls back), so the form cannot probe addresses without bound.
            let mut quota = services.pool.begin().await?;
            security::take_mail_quota(
                &mut quota,
                consultant.tenant()?,
                MailKind::Invitation,
                services.settings.mail_limits.invitations_per_hour,
            )
            .await?;
            quota.commit().await?;
            Err(Error::conflict(
                "That address has a Remit account outside your household (or a closed one), so it cannot be billed \
                 here.",
            ))
        }
        None => {
            let invitation =
                Invitation { email: email.to_owned(), display_name: name.to_owned(), role: Role::FamilyMember };
            // The invitation's fields are named as this form names them.
            let invited =
                accounts::invite_in(tx, services, consultant, &invitation).await.map_err(|err| match err {
                    Error::Invalid { field: Some("display_name"), message } => Error::invalid("client_name", message),
                    Error::Invalid { field: Some("email"), message } => Error::invalid("client_email", message),
                    other => other,
                })?;
            invited.ok_or_else(|| Error::conflict("That address was just registered by someone else. Try again."))
        }
    }
}

/// Emails the client about a new fee request.
async fn tell_client(conn: &mut PgConnection, services: &Services, id: Uuid) -> Result<()> {
    let fee = sqlx::query!(
        r#"SELECT f.tenant_id, f.description, f.amount, f.currency, f.due_on, f.recurrence AS "recurrence: FeeRecurrence",
                  c.display_name AS consultant, u.email AS client
           FROM fee_requests f JOIN users c ON c.id = f.consultant_id JOIN users u ON u.id = f.client_id
           WHERE f.id = $1"#,
        id
    )
    .fetch_one(&mut *conn)
    .await?;
    let monthly = if fee.recurrence == FeeRecurrence::Monthly {
        "\nThis fee is billed monthly until your consultant stops it; each month's request comes by email.\n"
    } else {
        ""
    };
    mail::enqueue(
        conn,
        OutgoingEmail {
            tenant_id: Some(fee.tenant_id),
            to: fee.client,
            subject: format!("{} sent you a fee request: {}", fee.consultant, fee.description),
            text_body: format!(
                "{consultant} sent you a fee request.\n\nFor: {description}\nAmount: {amount}\nDue: {due}\n{monthly}\n\
                 Sign in to Remit to pay it with a card on Stripe's secure page:\n{url}\n",
                consultant = fee.consultant,
                description = fee.description,
                amount = format_minor(fee.amount, &fee.currency),
                due = fee.due_on.format("%-d %B %Y"),
                url = services.settings.public_url(PATH),
            ),
            attachments: vec![],
            links: None,
        },
    )
    .await?;
    Ok(())
}

/// One fee request.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Fee> {
    list(pool, None, None, Some(id)).await?.pop().ok_or(Error::NotFound("fee"))
}

/// The fees a consultant billed, newest first.
pub async fn for_consultant(pool: &PgPool, consultant_id: Uuid) -> Result<Vec<Fee>> {
    list(pool, Some(consultant_id), None, None).await
}

/// The fees billed to a client, newest first.
pub async fn for_client(pool: &PgPool, client_id: Uuid) -> Result<Vec<Fee>> {
    list(pool, None, Some(client_id), None).await
}

async fn list(pool: &PgPool, consultant: Option<Uuid>, client: Option<Uuid>, id: Option<Uuid>) -> Result<Vec<Fee>> {
    let rows = sqlx::query!(
        r#"SELECT f.id, c.display_name AS consultant_name, u.display_name AS client_name,
                  u.email AS client_email, f.description, f.amount, f.currency, f.due_on,
                  f.recurrence AS "recurrence: FeeRecurrence", f.status AS "status: FeeRequestStatus",
                  s.series_cancelled_at IS NOT NULL AS "series_stopped!", f.paid_at,
                  o.status AS "order_status?", o.amount AS "paid_amount?", o.refunded_amount AS "refunded_amount?",
                  (SELECT coalesce(sum(r.amount), 0) FROM refunds r
                   WHERE r.order_id = o.id AND r.status IN ('requested', 'pending', 'succeeded'))::bigint AS "held!"
           FROM fee_requests f JOIN users c ON c.id = f.consultant_id JOIN users u ON u.id = f.client_id
           JOIN fee_requests s ON s.id = f.series_id
           LEFT JOIN orders o ON o.fee_request_id = f.id
           WHERE ($1::uuid IS NULL OR f.consultant_id = $1) AND ($2::uuid IS NULL OR f.client_id = $2)
             AND ($3::uuid IS NULL OR f.id = $3)
           ORDER BY f.created_at DESC, f.id LIMIT 500"#,
        consultant,
        client,
        id,
    )
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = rows.iter().filter(|r| r.paid_amount.is_some()).map(|r| r.id).collect();
    let mut refunds_of: std::collections::HashMap<Uuid, Vec<refunds::Refund>> = Default::default();
    for refund in refunds::of_fees(pool, &ids).await? {
        if let Some(fee) = refund.fee {
            refunds_of.entry(fee).or_default().push(refund);
        }
    }
    rows.into_iter()
        .map(|r| {
            let amount = Money::stored(r.amount, &r.currency)?;
            let refundable = match (r.paid_amount, r.refunded_amount, r.order_status.as_deref()) {
                (Some(paid), Some(refunded), Some(status)) if status != "disputed" => {
                    Some(Money { amount: refunds::refundable(paid, r.held, refunded), currency: amount.currency })
                }
                _ => None,
            };
            Ok(Fee {
                id: r.id,
                consultant_name: r.consultant_name,
                client_name: r.client_name,
                client_email: r.client_email,
                description: r.description,
                amount,
                due_on: r.due_on,
                recurrence: r.recurrence,
                status: r.status,
                series_stopped: r.series_stopped,
                paid_at: r.paid_at,
                order_status: r.order_status,
                refundable,
                refunds: refunds_of.remove(&r.id).unwrap_or_default(),
            })
        })
        .collect()
}

/// The consultant cancels an open fee (a monthly one's series stops with it), or stops the
/// monthly series of a paid one. The client is emailed; an open Checkout page is expired on
/// Stripe after the change is committed (a payment Stripe still takes is recorded all the same:
/// money received is never ignored).
pub async fn cancel(services: &Services, consultant: &Principal, id: Uuid) -> Result<Fee> {
    let mut tx = services.pool.begin().await?;
    let fee = sqlx::query!(
        r#"SELECT f.status AS "status: FeeRequestStatus", f.recurrence AS "recurrence: FeeRecurrence", f.series_id,
                  f.tenant_id, f.description, f.amount, f.currency, f.livemode, s.series_cancelled_at,
                  u.email AS client
           FROM fee_requests f JOIN fee_requests s ON s.id = f.series_id JOIN users u ON u.id = f.client_id
           WHERE f.id = $1 AND f.consultant_id = $2 FOR UPDATE OF f, s"#,
        id,
        consultant.user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("fee"))?;
    let monthly_running = fee.recurrence == FeeRecurrence::Monthly && fee.series_cancelled_at.is_none();
    let cancels = fee.status == FeeRequestStatus::Open;
    if !cancels && !monthly_running {
        return Err(Error::conflict(match fee.status {
            FeeRequestStatus::Paid => "This fee is paid; refund it instead of cancelling it.",
            _ => "This fee request is already cancelled.",
        }));
    }
    let mut open_pages = Vec::new();
    if cancels {
        sqlx::query!("UPDATE fee_requests SET status = 'cancelled', cancelled_at = now() WHERE id = $1", id)
            .execute(&mut *tx)
            .await?;
        open_pages = sqlx::query_scalar!(
            r#"UPDATE fee_checkouts SET status = 'expired' WHERE fee_request_id = $1 AND status IN ('creating', 'open')
               RETURNING stripe_checkout_session_id AS "session?""#,
            id
        )
        .fetch_all(&mut *tx)
        .await?;
    }
    if monthly_running {
        sqlx::query!("UPDATE fee_requests SET series_cancelled_at = now() WHERE id = $1", fee.series_id)
            .execute(&mut *tx)
            .await?;
    }
    let what = match (cancels, monthly_running) {
        (true, true) => "cancelled this fee request and stopped billing it monthly",
        (true, false) => "cancelled this fee request",
        _ => "stopped billing this fee monthly (what you already paid stays paid)",
    };
    mail::enqueue(
        &mut tx,
        OutgoingEmail {
            tenant_id: Some(fee.tenant_id),
            to: fee.client,
            subject: format!("Fee request cancelled: {}", fee.description),
            text_body: format!(
                "{} {what}: {} ({}).\n\nThere is nothing for you to do.\n",
                consultant.display_name,
                fee.description,
                format_minor(fee.amount, &fee.currency)
            ),
            attachments: vec![],
            links: None,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(fee.tenant_id),
            actor: Some(consultant),
            action: if cancels { "fee.cancelled" } else { "fee.series_stopped" },
            target: Some(id.to_string()),
            reason: None,
            details: serde_json::json!({ "series": fee.series_id }),
        },
    )
    .await?;
    tx.commit().await?;
    expire_pages(services, fee.livemode, open_pages.into_iter().flatten()).await;
    get(&services.pool, id).await
}

/// Expires Checkout pages of a cancelled fee on Stripe, best effort: a page that stays open and
/// is paid still records its payment.
async fn expire_pages(services: &Services, livemode: bool, sessions: impl Iterator<Item = String>) {
    let Ok(stripe) = services.stripe.mode(livemode) else { return };
    for session in sessions {
        let expired = ExpireCheckoutSession::new(session.as_str())
            .customize()
            .request_strategy(stripe_client_core::RequestStrategy::Once)
            .send(stripe.client())
            .await;
        if let Err(err) = expired {
            tracing::warn!(session, error = %err, "a cancelled fee's Checkout page could not be expired");
        }
    }
}

/// What [`claim`] decided.
enum Decision {
    /// A page Stripe can still take the payment on.
    Open(String),
    /// A new page to ask Stripe for.
    Claimed(Box<Claim>),
}

struct Claim {
    checkout_id: Uuid,
    fee_id: Uuid,
    tenant_id: Uuid,
    description: String,
    consultant_name: String,
    client_email: String,
    amount: Money,
    livemode: bool,
    destination: String,
    fee_bps: u32,
    three_d_secure_above: i64,
    expires_at: DateTime<Utc>,
}

/// The client pays a fee: the open Checkout page, or a new one. The claim is taken under the
/// fee's row lock in a short transaction (the unique index allows one open page per fee);
/// Stripe is asked after it commits, holding no lock; when Stripe fails, the claim is removed, so
/// nothing is stored and the answer is 502 in words.
pub async fn pay(services: &Services, client: &Principal, id: Uuid) -> Result<String> {
    let claim = match claim(services, client, id).await? {
        Decision::Open(url) => return Ok(url),
        Decision::Claimed(claim) => claim,
    };
    let stripe = services.stripe.mode(claim.livemode)?;
    let session = checkout_request(services, &claim)?
        .customize()
        .request_strategy(idempotent(format!("remit-fee-checkout-{}", claim.checkout_id))?)
        .send(stripe.client())
        .await;
    let session = match session {
        Ok(session) => session,
        Err(err) => {
            sqlx::query!("DELETE FROM fee_checkouts WHERE id = $1 AND status = 'creating'", claim.checkout_id)
                .execute(&services.pool)
                .await?;
            return Err(upstream(err, "open the payment page"));
        }
    };
    let url = session.url.clone().ok_or_else(|| anyhow::anyhow!("Checkout session {} has no URL", session.id))?;
    let opened = sqlx::query!(
        "UPDATE fee_checkouts SET status = 'open', stripe_checkout_session_id = $2, url = $3
         WHERE id = $1 AND status = 'creating'",
        claim.checkout_id,
        session.id.as_str(),
        url,
    )
    .execute(&services.pool)
    .await?
    .rows_affected();
    if opened == 0 {
        // The consultant cancelled the fee while Stripe was asked: the page is closed again.
        expire_pages(services, claim.livemode, std::iter::once(session.id.to_string())).await;
        return Err(Error::conflict(format!(
            "{} cancelled this fee request, so it cannot be paid.",
            claim.consultant_name
        )));
    }
    Ok(url)
}

async fn claim(services: &Services, client: &Principal, id: Uuid) -> Result<Decision> {
    let mut tx = services.pool.begin().await?;
    let fee = sqlx::query!(
        r#"SELECT f.tenant_id, f.client_id, f.description, f.amount, f.currency, f.status AS "status: FeeRequestStatus",
                  f.livemode, c.display_name AS consultant_name, u.email AS client_email,
                  a.stripe_account_id AS "destination?", coalesce(a.payouts_enabled, false) AS "payouts_enabled!",
                  t.status = 'suspended' AS "suspended!"
           FROM fee_requests f JOIN users c ON c.id = f.consultant_id JOIN users u ON u.id = f.client_id
           JOIN tenants t ON t.id = f.tenant_id LEFT JOIN consultant_accounts a ON a.user_id = f.consultant_id
           WHERE f.id = $1 FOR UPDATE OF f"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .filter(|f| f.client_id == client.user_id)
    .ok_or(Error::NotFound("fee"))?;
    match fee.status {
        FeeRequestStatus::Paid => return Err(Error::conflict("This fee is already paid. Thank you!")),
        FeeRequestStatus::Cancelled => {
            return Err(Error::conflict(format!(
                "{} cancelled this fee request, so it cannot be paid.",
                fee.consultant_name
            )));
        }
        FeeRequestStatus::Open => {}
    }
    if fee.suspended {
        return Err(Error::conflict("Payments through Remit are paused for now. Please contact your consultant."));
    }
    sqlx::query!(
        "UPDATE fee_checkouts SET status = 'expired' WHERE fee_request_id = $1 AND status = 'open' AND expires_at <= now()",
        id
    )
    .execute(&mut *tx)
    .await?;
    let current = sqlx::query!(
        "SELECT id, status, url, created_at FROM fee_checkouts WHERE fee_request_id = $1 AND status IN ('creating', 'open')",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(current) = current {
        match current.url {
            Some(url) if current.status == "open" => return Ok(Decision::Open(url)),
            _ if current.created_at > Utc::now() - STALE_CLAIM => {
                return Err(Error::conflict("The payment page is being opened. Try again in a moment."));
            }
            // Left by a request that never finished: Stripe made no page for it, or one nobody
            // has the address of (it expires by itself).
            _ => {
                sqlx::query!("DELETE FROM fee_checkouts WHERE id = $1", current.id).execute(&mut *tx).await?;
            }
        }
    }
    let destination = fee.destination.filter(|_| fee.payouts_enabled).ok_or_else(|| {
        Error::conflict(format!(
            "{} cannot take payments right now: their payout account is not ready. Please contact them.",
            fee.consultant_name
        ))
    })?;
    services.stripe.mode(fee.livemode)?;
    let amount = Money::stored(fee.amount, &fee.currency)?;
    let terms =
        payment_terms::for_payment(&mut tx, services.settings.platform_fee_bps, fee.tenant_id, amount.currency).await?;
    let checkout_id = Uuid::new_v4();
    // Whole seconds, as Stripe takes them.
    let expires_at = (Utc::now() + CHECKOUT_LIFETIME).trunc_subsecs(0);
    sqlx::query!(
        "INSERT INTO fee_checkouts (id, fee_request_id, expires_at) VALUES ($1, $2, $3)",
        checkout_id,
        id,
        expires_at
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Decision::Claimed(Box::new(Claim {
        checkout_id,
        fee_id: id,
        tenant_id: fee.tenant_id,
        description: fee.description,
        consultant_name: fee.consultant_name,
        client_email: fee.client_email,
        amount,
        livemode: fee.livemode,
        destination,
        fee_bps: terms.fee_bps,
        three_d_secure_above: terms.three_d_secure_above,
        expires_at,
    })))
}

/// The Checkout Session of a fee: a destination charge to the consultant's account less the
/// platform's fee, 3D Secure asked for above the tenant's threshold for the currency.
fn checkout_request(services: &Services, claim: &Claim) -> Result<CreateCheckoutSession> {
    let metadata = [
        (events::METADATA_KEY.to_owned(), claim.checkout_id.to_string()),
        ("fee_request".to_owned(), claim.fee_id.to_string()),
        ("tenant".to_owned(), claim.tenant_id.to_string()),
    ]
    .into_iter()
    .collect();
    DestinationCharge {
        name: claim.description.clone(),
        description: Some(format!("Fee of {}", claim.consultant_name)),
        amount: claim.amount,
        destination: &claim.destination,
        fee_bps: claim.fee_bps,
        three_d_secure_above: claim.three_d_secure_above,
        metadata,
        email: &claim.client_email,
        reference: claim.fee_id.to_string(),
        expires_at: claim.expires_at,
        success_url: services.settings.public_url(&format!("{PATH}?paid={{CHECKOUT_SESSION_ID}}")),
        cancel_url: services.settings.public_url(PATH),
    }
    .request()
}

/// The consultant refunds a paid fee, in full (`amount` empty) or in part (typed in major units),
/// with a reason the client reads on the credit note; the rules are the refunds of lots' (the
/// connected account's share and, per the tenant's terms, the platform's fee go back).
pub async fn refund(
    services: &Services,
    consultant: &Principal,
    fee_id: Uuid,
    amount: &str,
    reason: String,
    key: Option<&str>,
) -> Result<refunds::Refund> {
    let currency = sqlx::query_scalar!(
        "SELECT currency FROM fee_requests WHERE id = $1 AND consultant_id = $2",
        fee_id,
        consultant.user_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("fee"))?;
    let amount = refunds::typed_amount(amount, &currency)?;
    let refunded = Refunded::Fee { consultant_id: consultant.user_id, fee_id };
    let (refund, _) =
        refunds::create(services, refunded, Requester::Staff(consultant), &NewRefund { amount, reason }, key).await?;
    Ok(refund)
}

/// Every day: the month's requests of monthly fees (see [`due_periods`]).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct IssueMonthlyFees;

impl TaskHandler for IssueMonthlyFees {
    const IDENTIFIER: &'static str = "issue_monthly_fees";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        issue_monthly(services).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Makes each running monthly series' requests that are due by today and not made yet, each
/// once (the series and period are unique, so processes running this together make one), and
/// emails the client about each. A month in which a side is not active waits, and is passed
/// over once its window is over (see [`month_decision`]). The series' first request is read
/// `FOR SHARE`, so a stop being committed meanwhile (which locks it) is waited for and seen.
/// Returns how many were billed.
pub async fn issue_monthly(services: &Services) -> Result<u64> {
    let today = Utc::now().date_naive();
    let series = sqlx::query!(
        r#"SELECT h.id, h.created_at, h.due_on,
                  (SELECT max(period) FROM fee_requests p WHERE p.series_id = h.id) AS "last_period!"
           FROM fee_requests h
           WHERE h.recurrence = 'monthly' AND h.period = 0 AND h.series_cancelled_at IS NULL"#
    )
    .fetch_all(&services.pool)
    .await?;
    let mut made = 0;
    for head in series {
        let first_made = head.created_at.date_naive();
        for (period, due_on) in due_periods(first_made, head.due_on, head.last_period, today) {
            let next_month_made = first_made.checked_add_months(Months::new(period.unsigned_abs() + 1));
            let window_over = next_month_made.is_some_and(|next| next <= today);
            let mut tx = services.pool.begin().await?;
            let Some(parties) = sqlx::query_as!(
                Parties,
                r#"SELECT EXISTS (SELECT 1 FROM users c WHERE c.id = h.client_id AND c.deactivated_at IS NULL) AS "client_active!",
                          EXISTS (SELECT 1 FROM users k WHERE k.id = h.consultant_id AND k.deactivated_at IS NULL)
                              AS "consultant_active!",
                          EXISTS (SELECT 1 FROM subscriptions s
                                  WHERE s.user_id = h.consultant_id AND s.status IN ('trialing', 'active')) AS "subscribed!",
                          EXISTS (SELECT 1 FROM consultant_accounts a
                                  WHERE a.user_id = h.consultant_id AND a.payouts_enabled) AS "payouts_enabled!"
                   FROM fee_requests h WHERE h.id = $1 AND h.series_cancelled_at IS NULL FOR SHARE OF h"#,
                head.id,
            )
            .fetch_optional(&mut *tx)
            .await?
            else {
                break; // stopped meanwhile
            };
            let decision = month_decision(&parties, window_over);
            let status = match decision {
                // Later months are not due before this one's window is over.
                MonthDecision::Wait => break,
                MonthDecision::Bill => FeeRequestStatus::Open,
                MonthDecision::PassOver(_) => FeeRequestStatus::Cancelled,
            };
            let id = sqlx::query_scalar!(
                "INSERT INTO fee_requests (id, tenant_id, consultant_id, client_id, description, amount, currency,
                     due_on, recurrence, series_id, period, livemode, status, cancelled_at)
                 SELECT $1, tenant_id, consultant_id, client_id, description, amount, currency, $3, recurrence, id, $4,
                        livemode, $5, CASE WHEN $5 = 'cancelled'::fee_request_status THEN now() END
                 FROM fee_requests WHERE id = $2
                 ON CONFLICT (series_id, period) DO NOTHING RETURNING id",
                Uuid::new_v4(),
                head.id,
                due_on,
                period,
                status as FeeRequestStatus,
            )
            .fetch_optional(&mut *tx)
            .await?;
            match (id, decision) {
                (Some(id), MonthDecision::Bill) => {
                    tell_client(&mut tx, services, id).await?;
                    made += 1;
                }
                (Some(id), MonthDecision::PassOver(obstacle)) => passed_over(&mut tx, services, id, obstacle).await?,
                (None, _) | (_, MonthDecision::Wait) => {}
            }
            tx.commit().await?;
        }
    }
    Ok(made)
}

/// Who takes part in a month of a monthly series, as it stands when the month is due.
#[derive(Debug, Clone, Copy)]
pub struct Parties {
    pub client_active: bool,
    pub consultant_active: bool,
    pub subscribed: bool,
    pub payouts_enabled: bool,
}

impl Parties {
    /// What stands in the way of billing the month, in words; `None` when nothing does.
    pub fn obstacle(&self) -> Option<&'static str> {
        if !self.client_active {
            Some("the client's account is deactivated")
        } else if !self.consultant_active {
            Some("your account is deactivated")
        } else if !self.subscribed {
            Some("your Remit subscription is not active")
        } else if !self.payouts_enabled {
            Some("Stripe has not enabled payouts to your account")
        } else {
            None
        }
    }
}

/// What becomes of a month of a monthly series that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonthDecision {
    /// Both sides are active: the client is billed.
    Bill,
    /// A side is not active, and the month's window (until the next month's request) is not over:
    /// a day's lapse (a card Stripe retries, a document it asked for) costs nothing.
    Wait,
    /// A side stayed inactive all month, for this reason: the month is recorded cancelled and
    /// never billed.
    PassOver(&'static str),
}

pub fn month_decision(parties: &Parties, window_over: bool) -> MonthDecision {
    match (parties.obstacle(), window_over) {
        (None, _) => MonthDecision::Bill,
        (Some(_), false) => MonthDecision::Wait,
        (Some(obstacle), true) => MonthDecision::PassOver(obstacle),
    }
}

/// A month passed over: the consultant is told why and it is audited; the client hears nothing.
async fn passed_over(conn: &mut PgConnection, services: &Services, id: Uuid, obstacle: &str) -> Result<()> {
    let fee = sqlx::query!(
        "SELECT f.tenant_id, f.description, f.due_on, c.email AS consultant, u.display_name AS client
         FROM fee_requests f JOIN users c ON c.id = f.consultant_id JOIN users u ON u.id = f.client_id
         WHERE f.id = $1",
        id
    )
    .fetch_one(&mut *conn)
    .await?;
    let month = fee.due_on.format("%B %Y");
    tracing::info!(fee = %id, "a month of a monthly fee was passed over: {obstacle}");
    audit::record(
        conn,
        Entry {
            tenant_id: Some(fee.tenant_id),
            actor: None,
            action: "fee.month_passed_over",
            target: Some(id.to_string()),
            reason: Some(obstacle.to_owned()),
            details: serde_json::json!({ "description": fee.description, "due_on": fee.due_on }),
        },
    )
    .await?;
    mail::enqueue(
        conn,
        OutgoingEmail {
            tenant_id: Some(fee.tenant_id),
            to: fee.consultant,
            subject: format!("Not billed for {month}: {}", fee.description),
            text_body: format!(
                "{client} was not billed for {description} for {month}: {obstacle}, and stayed so all month.\n\n\
                 The monthly billing goes on: the next month is billed as usual once both of you are active. \
                 Your fees:\n{url}\n",
                client = fee.client,
                description = fee.description,
                url = services.settings.public_url(PATH),
            ),
            attachments: vec![],
            links: None,
        },
    )
    .await?;
    Ok(())
}

/// The periods of a monthly series that are due by `today` and not made yet: period `n` is
/// requested `n` months after the first request was made and falls due `n` months after its
/// due date (on a shorter month's last day when the day is not in it).
pub fn due_periods(
    first_made: NaiveDate,
    first_due: NaiveDate,
    last_period: i32,
    today: NaiveDate,
) -> Vec<(i32, NaiveDate)> {
    let mut out = Vec::new();
    let mut period = last_period.max(0) + 1;
    loop {
        let months = Months::new(period.unsigned_abs());
        let (Some(made), Some(due)) = (first_made.checked_add_months(months), first_due.checked_add_months(months))
        else {
            break;
        };
        if made > today {
            break;
        }
        out.push((period, due));
        period += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn a_monthly_fee_is_requested_each_month_on_the_day_it_was_first() {
        // Made on 15 January, due on the 31st: February's on the 15th, due on February's last day.
        assert_eq!(due_periods(d(2027, 1, 15), d(2027, 1, 31), 0, d(2027, 2, 14)), vec![]);
        assert_eq!(due_periods(d(2027, 1, 15), d(2027, 1, 31), 0, d(2027, 2, 15)), vec![(1, d(2027, 2, 28))]);
        assert_eq!(due_periods(d(2027, 1, 15), d(2027, 1, 31), 1, d(2027, 3, 1)), vec![]);
        // Months missed (no worker ran) are all made, each once.
        assert_eq!(
            due_periods(d(2027, 1, 15), d(2027, 1, 31), 1, d(2027, 4, 20)),
            vec![(2, d(2027, 3, 31)), (3, d(2027, 4, 30))]
        );
        assert_eq!(due_periods(d(2027, 1, 15), d(2027, 1, 31), 3, d(2027, 4, 20)), vec![]);
    }

    #[test]
    fn a_month_waits_for_an_inactive_side_until_its_window_is_over_then_is_passed_over() {
        let all = Parties { client_active: true, consultant_active: true, subscribed: true, payouts_enabled: true };
        assert_eq!(month_decision(&all, false), MonthDecision::Bill);
        assert_eq!(month_decision(&all, true), MonthDecision::Bill, "a late run still bills an active month");
        for lapsed in [
            Parties { client_active: false, ..all },
            Parties { consultant_active: false, ..all },
            Parties { subscribed: false, ..all },
            Parties { payouts_enabled: false, ..all },
        ] {
            assert!(lapsed.obstacle().is_some());
            assert_eq!(month_decision(&lapsed, false), MonthDecision::Wait);
            assert_eq!(month_decision(&lapsed, true), MonthDecision::PassOver(lapsed.obstacle().unwrap()));
        }
        assert_eq!(
            Parties { client_active: false, subscribed: false, ..all }.obstacle(),
            Some("the client's account is deactivated")
        );
    }

    fn new_fee(amount: &str, due_on: &str) -> NewFee {
        NewFee {
            client: Client::Member(Uuid::nil()),
            description: "Tax return 2026".into(),
            amount: amount.into(),
            currency: "usd".into(),
            due_on: due_on.into(),
            recurrence: "once".into(),
        }
    }

    #[test]
    fn a_fee_needs_a_chargeable_amount_a_due_date_ahead_and_a_known_recurrence() {
        let today = Utc::now().date_naive();
        let ok = validate(&new_fee("120.00", &today.to_string())).unwrap();
        assert_eq!((ok.1.amount, ok.3), (12_000, FeeRecurrence::Once));
        let field = |fee: &NewFee| match validate(fee) {
            Err(Error::Invalid { field: Some(field), .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&new_fee("0.20", &today.to_string())), "amount");
        assert_eq!(field(&new_fee("12,0.001", &today.to_string())), "amount");
        assert_eq!(field(&new_fee("120", &(today - Duration::days(1)).to_string())), "due_on");
        assert_eq!(field(&new_fee("120", &(today + Duration::days(400)).to_string())), "due_on");
        assert_eq!(field(&new_fee("120", "31/12/2026")), "due_on");
        assert_eq!(field(&NewFee { recurrence: "weekly".into(), ..new_fee("120", &today.to_string()) }), "recurrence");
        assert_eq!(field(&NewFee { description: " ".into(), ..new_fee("120", &today.to_string()) }), "description");
        assert_eq!(field(&NewFee { currency: "xyz".into(), ..new_fee("120", &today.to_string()) }), "currency");
    }
}
