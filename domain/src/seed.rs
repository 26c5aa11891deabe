//! Demo data for development: the tenant "Northwind Auctions", one user per role, and a won
//! auction lot waiting for its buyer's payment.
//!
//! Passwords are derived from `REMIT_ENCRYPTION_KEY`, so every installation has its own, the
//! seeding is repeatable, and the credentials can be printed again at each start.

use secrecy::SecretString;
use uuid::Uuid;

use crate::{
    Services,
    auth::{Role, password},
    checkout::{self, NewWinning},
    crypto,
    error::Result,
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
fn demo_lot_token(services: &Services, reference: &str) -> String {
    crypto::derived(&services.settings.encryption_key, &format!("remit demo lot:{reference}"))
}

/// Makes sure a demo lot is waiting for payment, with more than an hour of its window left (a
/// new one replaces one that was paid or ran out), and returns its payment link.
pub async fn ensure_demo_lot(services: &Services) -> Result<String> {
    let current = sqlx::query!(
        "SELECT b.reference, b.status, b.pay_by > now() + interval '1 hour' AS \"open!\"
         FROM winning_bids b JOIN tenants t ON t.id = b.tenant_id
         WHERE lower(t.name) = lower($1) AND b.reference LIKE 'DEMO-LOT-%'
         ORDER BY b.created_at DESC LIMIT 1",
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
            };
            let livemode = services.stripe.platform().livemode();
            let token = demo_lot_token(services, &reference);
            checkout::register_with_token(services, tenant_id, livemode, None, &lot, &token).await?;
            reference
        }
    };
    Ok(services.settings.public_url(&format!("/pay/{}", demo_lot_token(services, &reference))))
}
