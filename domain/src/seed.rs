//! Demo data for development: the tenant "Northwind Auctions", one user per role, and the
//! pieces the living demo (the server's `demo` module) builds its month of lots from.
//!
//! Passwords and payment link tokens are derived from `REMIT_ENCRYPTION_KEY`, so every
//! installation has its own, the seeding is repeatable, and the credentials can be printed
//! again at each start.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::{
    Services,
    auth::{Principal, Role, password},
    checkout::{self, NewWinning, Winning},
    crypto,
    error::Result,
    stripe::upstream,
};

pub const DEMO_TENANT: &str = "Northwind Auctions";

pub struct DemoUser {
    pub role: Role,
    pub email: &'static str,
    pub display_name: &'static str,
}

pub const DEMO_USERS: [DemoUser; 5] = [
    DemoUser { role: Role::PlatformAdmin, email: "admin@remit.localhost", display_name: "Pat Platform" },
    DemoUser { role: Role::TenantOwner, email: "owner@northwind.example", display_name: "Olivia Owner" },
    DemoUser { role: Role::TenantAdmin, email: "admin@northwind.example", display_name: "Adam Admin" },
    DemoUser { role: Role::Consultant, email: "consultant@northwind.example", display_name: "Casey Consultant" },
    DemoUser { role: Role::FamilyMember, email: "family@northwind.example", display_name: "Frankie Family" },
];

/// The demo password of `email` on this installation.
pub fn demo_password(services: &Services, email: &str) -> SecretString {
    let derived = crypto::derived(&services.settings.encryption_key, &format!("remit demo password:{email}"));
    SecretString::from(format!("demo-{}", &derived[..16]))
}

/// Creates whatever part of the demo data is missing. Safe to run at every start, and from
/// several processes at once.
pub async fn ensure_demo_data(services: &Services) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended('remit:seed', 0))").execute(&mut *tx).await?;

    let tenant_id = match sqlx::query_scalar!("SELECT id FROM tenants WHERE lower(name) = lower($1)", DEMO_TENANT)
        .fetch_optional(&mut *tx)
        .await?
    {
        Some(id) => id,
        None => {
            let id = Uuid::new_v4();
            sqlx::query!("INSERT INTO tenants (id, name) VALUES ($1, $2)", id, DEMO_TENANT).execute(&mut *tx).await?;
            id
        }
    };

    let mut consultant_id: Option<Uuid> = None;
    for user in &DEMO_USERS {
        let existing = sqlx::query_scalar!("SELECT id FROM users WHERE lower(email) = lower($1)", user.email)
            .fetch_optional(&mut *tx)
            .await?;
        let id = match existing {
            Some(id) => id,
            None => {
                let id = Uuid::new_v4();
                let hash = password::hash(demo_password(services, user.email)).await?;
                let user_tenant = (user.role != Role::PlatformAdmin).then_some(tenant_id);
                let attached_to = if user.role == Role::FamilyMember { consultant_id } else { None };
                sqlx::query!(
                    "INSERT INTO users (id, tenant_id, email, display_name, role, consultant_id, password_hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    id,
                    user_tenant,
                    user.email,
                    user.display_name,
                    user.role.as_str(),
                    attached_to,
                    hash,
                )
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        if user.role == Role::Consultant {
            consultant_id = Some(id);
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The demo lot's buyer.
pub const DEMO_BUYER: &str = "buyer@example.com";

/// The payment link token of the demo lot `reference`, derived from the installation's key.
pub fn demo_lot_token(key: &crate::config::EncryptionKey, reference: &str) -> String {
    crypto::derived(key, &format!("remit demo lot:{reference}"))
}

/// The demo tenant's id, once `ensure_demo_data` made it.
pub async fn demo_tenant(services: &Services) -> Result<Uuid> {
    Ok(sqlx::query_scalar!("SELECT id FROM tenants WHERE lower(name) = lower($1)", DEMO_TENANT)
        .fetch_one(&services.pool)
        .await?)
}

/// Registers a demo lot as the tenant's system does (the buyer is emailed the payment link),
/// with a link token derived from the installation's key; returns the bid and that token.
/// Registering a reference again returns the bid it already has.
pub async fn register_demo_lot(services: &Services, tenant_id: Uuid, lot: &NewWinning) -> Result<(Winning, String)> {
    let token = demo_lot_token(&services.settings.encryption_key, &lot.reference);
    let livemode = services.stripe.platform().livemode();
    let (winning, _) = checkout::register_with_token(services, tenant_id, livemode, None, lot, &token).await?;
    Ok((winning, token))
}

/// The demo lot `reference` of the tenant, if it was registered.
pub async fn demo_lot(services: &Services, tenant_id: Uuid, reference: &str) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM winning_bids WHERE tenant_id = $1 AND reference = $2 AND NOT livemode",
        tenant_id,
        reference
    )
    .fetch_optional(&services.pool)
    .await?)
}

/// How far a lot's story has come in Remit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotProgress {
    pub status: String,
    pub order_status: Option<String>,
    pub receipt_issued: bool,
    /// Payment attempts recorded for the dashboards (failures and the payment).
    pub outcomes: i64,
    /// Mail to the buyer not yet sent.
    pub mail_pending: i64,
}

pub async fn lot_progress(services: &Services, bid_id: Uuid) -> Result<LotProgress> {
    Ok(sqlx::query_as!(
        LotProgress,
        r#"SELECT b.status, o.status AS "order_status?",
                  EXISTS (SELECT 1 FROM receipts r WHERE r.order_id = o.id) AS "receipt_issued!",
                  (SELECT count(*) FROM payment_outcomes p
                    WHERE p.reference IN (SELECT e.id FROM stripe_events e
                                           WHERE e.payload->'data'->'object'->'metadata'->>'bid' = b.id::text)
                       OR p.reference = o.stripe_payment_intent_id) AS "outcomes!",
                  (SELECT count(*) FROM emails m WHERE m.to_address = b.buyer_email AND m.status <> 'sent') AS "mail_pending!"
           FROM winning_bids b LEFT JOIN orders o ON o.bid_id = b.id WHERE b.id = $1"#,
        bid_id
    )
    .fetch_one(&services.pool)
    .await?)
}

/// Moves Remit's own records of a demo lot (its registration, payment pages, order, receipt,
/// security events, and the mail to its buyer since `since`) by `by`, to the day the demo's
/// story puts it. Remit has no clock of its own to set back; what Stripe reported (payment times,
/// outcomes) is already dated by the sandbox's clock.
pub async fn backdate_lot(services: &Services, bid_id: Uuid, since: DateTime<Utc>, by: chrono::Duration) -> Result<()> {
    // Whole seconds: an interval holds no nanoseconds.
    let by = std::time::Duration::from_secs(u64::try_from(by.num_seconds()).unwrap_or(0));
    let by = sqlx::postgres::types::PgInterval::try_from(by).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tx = services.pool.begin().await?;
    let bid = sqlx::query!(
        "UPDATE winning_bids SET won_at = won_at - $2::interval, pay_by = pay_by - $2::interval, created_at = created_at - $2::interval,
                next_attempt_at = next_attempt_at - $2::interval
         WHERE id = $1 RETURNING buyer_email, tenant_id",
        bid_id,
        by
    )
    .fetch_one(&mut *tx)
    .await?;
    // The alerts its story raised for the tenant's admins (the demo plays one lot at a time).
    sqlx::query!(
        "UPDATE alerts SET created_at = created_at - $2::interval WHERE tenant_id = $1 AND created_at >= $3",
        bid.tenant_id,
        by,
        since
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE payment_sessions SET created_at = created_at - $2::interval, expires_at = expires_at - $2::interval WHERE bid_id = $1",
        bid_id,
        by
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE orders SET created_at = created_at - $2::interval WHERE bid_id = $1", bid_id, by)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "UPDATE receipts SET created_at = created_at - $2::interval WHERE order_id IN (SELECT id FROM orders WHERE bid_id = $1)",
        bid_id,
        by
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE security_events SET created_at = created_at - $2::interval WHERE bid_id = $1", bid_id, by)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "UPDATE refunds SET created_at = created_at - $2::interval, updated_at = updated_at - $2::interval
         WHERE order_id IN (SELECT id FROM orders WHERE bid_id = $1)",
        bid_id,
        by
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE credit_notes SET created_at = created_at - $2::interval
         WHERE refund_id IN (SELECT r.id FROM refunds r JOIN orders o ON o.id = r.order_id WHERE o.bid_id = $1)",
        bid_id,
        by
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE emails SET created_at = created_at - $2::interval, sent_at = sent_at - $2::interval WHERE to_address = $1 AND created_at >= $3",
        bid.buyer_email,
        by,
        since
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Makes sure a demo lot is waiting for payment, with more than an hour of its window left (a
/// new one replaces one that was paid or ran out), and returns its payment link.
pub async fn ensure_demo_lot(services: &Services) -> Result<String> {
    let current = sqlx::query!(
        "SELECT b.reference, b.status, b.pay_by > now() + interval '1 hour' AS \"open!\"
         FROM winning_bids b JOIN tenants t ON t.id = b.tenant_id
         WHERE lower(t.name) = lower($1) AND b.reference LIKE 'DEMO-%'
         ORDER BY b.won_at DESC LIMIT 1",
        DEMO_TENANT
    )
    .fetch_optional(&services.pool)
    .await?;
    let reference = match &current {
        Some(lot) if lot.status == "awaiting_payment" && lot.open => lot.reference.clone(),
        _ => {
            let tenant_id = sqlx::query_scalar!("SELECT id FROM tenants WHERE lower(name) = lower($1)", DEMO_TENANT)
                .fetch_one(&services.pool)
                .await?;
            let reference = format!("DEMO-LOT-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
            let lot = NewWinning {
                reference: reference.clone(),
                auction: "Autumn fine art and antiques".into(),
                lot: "17".into(),
                description: "Victorian walnut mantel clock, c. 1880".into(),
                buyer_email: DEMO_BUYER.into(),
                amount: 42_500,
                currency: "usd".into(),
                runners_up: vec![],
            };
            let livemode = services.stripe.platform().livemode();
            let token = demo_lot_token(&services.settings.encryption_key, &reference);
            checkout::register_with_token(services, tenant_id, livemode, None, &lot, &token).await?;
            reference
        }
    };
    Ok(services.settings.public_url(&format!("/pay/{}", demo_lot_token(&services.settings.encryption_key, &reference))))
}

/// Puts a user's billing on a new Stripe test clock set `days_back` days in the past: their
/// Stripe customer is made on it, with the email and `remit_user` metadata that Remit's
/// `ensure_customer` adopts. Returns the clock's id.
pub async fn customer_on_test_clock(services: &Services, user: &Principal, days_back: i64) -> Result<String> {
    use stripe_billing::test_helpers_test_clock::CreateTestHelpersTestClock;
    use stripe_core::customer::CreateCustomer;
    let client = services.stripe.platform().client();
    let clock = CreateTestHelpersTestClock::new(Utc::now().timestamp() - days_back * 86_400)
        .name("Remit demo")
        .send(client)
        .await
        .map_err(|e| upstream(e, "create a test clock"))?;
    let mut metadata = std::collections::HashMap::from([("remit_user".to_owned(), user.user_id.to_string())]);
    if let Some(tenant) = user.tenant_id {
        metadata.insert("remit_tenant".to_owned(), tenant.to_string());
    }
    CreateCustomer::new()
        .email(user.email.as_str())
        .name(user.display_name.as_str())
        .test_clock(clock.id.as_str())
        .metadata(metadata)
        .send(client)
        .await
        .map_err(|e| upstream(e, "create a customer on the test clock"))?;
    Ok(clock.id.to_string())
}

/// Moves a test clock to now and waits (up to a minute) until Stripe has run what fell due.
pub async fn advance_test_clock_to_now(services: &Services, clock: &str) -> Result<()> {
    use stripe_billing::test_helpers_test_clock::{AdvanceTestHelpersTestClock, RetrieveTestHelpersTestClock};
    let client = services.stripe.platform().client();
    AdvanceTestHelpersTestClock::new(clock, Utc::now().timestamp())
        .send(client)
        .await
        .map_err(|e| upstream(e, "advance the test clock"))?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = RetrieveTestHelpersTestClock::new(clock)
            .send(client)
            .await
            .map_err(|e| upstream(e, "read the clock"))?
            .status;
        if status == stripe_shared::TestHelpersTestClockStatus::Ready {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(anyhow::anyhow!("the test clock is still {status:?} after a minute").into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
