//! Tenants and their users: listings for the dashboards, and invitations.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    Services,
    auth::{
        Principal, Role,
        account_tokens::{self, Purpose},
        sign_in,
    },
    db,
    error::{Error, Result},
    mail::{self, OutgoingEmail},
};

pub const MAX_NAME_LENGTH: usize = 120;

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct TenantSummary {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub user_count: i64,
}

#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub tenant_name: Option<String>,
    pub consultant_name: Option<String>,
    /// False while an invitation is still open.
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

pub async fn tenant(pool: &PgPool, id: Uuid) -> Result<Tenant> {
    sqlx::query_as!(Tenant, "SELECT id, name, created_at FROM tenants WHERE id = $1", id)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::NotFound("tenant"))
}

pub async fn list_tenants(pool: &PgPool) -> Result<Vec<TenantSummary>> {
    Ok(sqlx::query_as!(
        TenantSummary,
        r#"SELECT t.id, t.name, t.created_at, count(u.id) AS "user_count!"
           FROM tenants t LEFT JOIN users u ON u.tenant_id = t.id
           GROUP BY t.id ORDER BY lower(t.name)"#
    )
    .fetch_all(pool)
    .await?)
}

/// Users of one tenant, or of every tenant (and the platform admins) when `tenant` is `None`.
pub async fn list_users(pool: &PgPool, tenant: Option<Uuid>) -> Result<Vec<UserSummary>> {
    let rows = sqlx::query!(
        r#"SELECT u.id, u.email, u.display_name, u.role, u.created_at, u.password_hash IS NOT NULL AS "active!",
                  t.name AS "tenant_name?", c.display_name AS "consultant_name?"
           FROM users u
           LEFT JOIN tenants t ON t.id = u.tenant_id
           LEFT JOIN users c ON c.id = u.consultant_id
           WHERE $1::uuid IS NULL OR u.tenant_id = $1
           ORDER BY t.name NULLS FIRST, u.role, lower(u.display_name)"#,
        tenant
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(UserSummary {
                role: Role::parse(&r.role).ok_or_else(|| anyhow::anyhow!("user {} has an unknown role", r.id))?,
                id: r.id,
                email: r.email,
                display_name: r.display_name,
                tenant_name: r.tenant_name,
                consultant_name: r.consultant_name,
                active: r.active,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// The family members attached to a consultant.
pub async fn household(pool: &PgPool, consultant_id: Uuid) -> Result<Vec<UserSummary>> {
    let rows = sqlx::query!(
        r#"SELECT id, email, display_name, created_at, password_hash IS NOT NULL AS "active!"
           FROM users WHERE consultant_id = $1 ORDER BY lower(display_name)"#,
        consultant_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| UserSummary {
            id: r.id,
            email: r.email,
            display_name: r.display_name,
            role: Role::FamilyMember,
            tenant_name: None,
            consultant_name: None,
            active: r.active,
            created_at: r.created_at,
        })
        .collect())
}

/// A tenant and its people, for the tenant settings page.
#[derive(Debug, Clone)]
pub struct TenantOverview {
    pub tenant: Tenant,
    pub users: Vec<UserSummary>,
}

pub async fn tenant_overview(pool: &PgPool, tenant_id: Uuid) -> Result<TenantOverview> {
    Ok(TenantOverview { tenant: tenant(pool, tenant_id).await?, users: list_users(pool, Some(tenant_id)).await? })
}

/// Every tenant and every user, for the platform admin page.
#[derive(Debug, Clone)]
pub struct PlatformOverview {
    pub tenants: Vec<TenantSummary>,
    pub users: Vec<UserSummary>,
}

pub async fn platform_overview(pool: &PgPool) -> Result<PlatformOverview> {
    Ok(PlatformOverview { tenants: list_tenants(pool).await?, users: list_users(pool, None).await? })
}

/// A consultant's household as seen by the consultant or one of its members.
#[derive(Debug, Clone)]
pub struct HouseholdOverview {
    pub tenant: Tenant,
    pub consultant_name: String,
    pub members: Vec<UserSummary>,
}

pub async fn household_overview(pool: &PgPool, principal: &Principal) -> Result<HouseholdOverview> {
    let consultant_id = principal.consultant_scope()?;
    let consultant_name = sqlx::query_scalar!("SELECT display_name FROM users WHERE id = $1", consultant_id)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::NotFound("consultant"))?;
    Ok(HouseholdOverview {
        tenant: tenant(pool, principal.tenant()?).await?,
        consultant_name,
        members: household(pool, consultant_id).await?,
    })
}

/// Who may invite whom: owners invite admins and consultants, admins invite consultants,
/// consultants invite members of their own household.
fn may_invite(inviter: Role, invitee: Role) -> bool {
    matches!(
        (inviter, invitee),
        (Role::TenantOwner, Role::TenantAdmin | Role::Consultant)
            | (Role::TenantAdmin, Role::Consultant)
            | (Role::Consultant, Role::FamilyMember)
    )
}

pub struct Invitation {
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

fn validate_name(field: &'static str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, "Enter a name."));
    }
    if name.chars().count() > MAX_NAME_LENGTH {
        return Err(Error::invalid(field, format!("Names can be at most {MAX_NAME_LENGTH} characters.")));
    }
    Ok(name.to_owned())
}

/// Creates the invited user (without a password) in the inviter's tenant and emails them a
/// link to choose one. A family member is attached to the consultant who invites them.
pub async fn invite(services: &Services, inviter: &Principal, invitation: Invitation) -> Result<Uuid> {
    if !may_invite(inviter.role, invitation.role) {
        return Err(Error::Forbidden);
    }
    let tenant_id = inviter.tenant()?;
    sign_in::validate_email(&invitation.email)?;
    let display_name = validate_name("display_name", &invitation.display_name)?;
    let email = invitation.email.trim().to_owned();
    let consultant_id = (invitation.role == Role::FamilyMember).then_some(inviter.user_id);
    let tenant = tenant(&services.pool, tenant_id).await?;

    let mut tx = services.pool.begin().await?;
    let user_id = Uuid::new_v4();
    let inserted = sqlx::query!(
        "INSERT INTO users (id, tenant_id, email, display_name, role, consultant_id) VALUES ($1, $2, $3, $4, $5, $6)",
        user_id,
        tenant_id,
        email,
        display_name,
        invitation.role.as_str(),
        consultant_id,
    )
    .execute(&mut *tx)
    .await;
    if let Err(err) = inserted {
        return Err(if db::violates(&err, "users_email_key") {
            Error::conflict("Someone with this email address already has a Remit account.")
        } else {
            err.into()
        });
    }
    let invite = InvitationEmail {
        user_id,
        email: &email,
        tenant_id,
        tenant_name: &tenant.name,
        inviter_name: &inviter.display_name,
        role: invitation.role,
    };
    send_invitation(&mut tx, services, invite).await?;
    tx.commit().await?;
    tracing::info!(%user_id, role = invitation.role.as_str(), "user invited");
    Ok(user_id)
}

/// Creates a tenant and invites its owner (platform admins only; checked by the caller).
pub async fn create_tenant(services: &Services, name: &str, owner_email: &str, owner_name: &str) -> Result<Uuid> {
    let name = validate_name("name", name)?;
    sign_in::validate_email(owner_email).map_err(|err| match err {
        Error::Invalid { message, .. } => Error::Invalid { field: Some("owner_email"), message },
        other => other,
    })?;
    let owner_name = validate_name("owner_name", owner_name)?;
    let owner_email = owner_email.trim().to_owned();

    let mut tx = services.pool.begin().await?;
    let tenant_id = Uuid::new_v4();
    if let Err(err) =
        sqlx::query!("INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant_id, name).execute(&mut *tx).await
    {
        return Err(if db::violates(&err, "tenants_name_key") {
            Error::conflict("A tenant with this name already exists.")
        } else {
            err.into()
        });
    }
    let owner_id = Uuid::new_v4();
    if let Err(err) = sqlx::query!(
        "INSERT INTO users (id, tenant_id, email, display_name, role) VALUES ($1, $2, $3, $4, 'tenant_owner')",
        owner_id,
        tenant_id,
        owner_email,
        owner_name,
    )
    .execute(&mut *tx)
    .await
    {
        return Err(if db::violates(&err, "users_email_key") {
            Error::Invalid {
                field: Some("owner_email"),
                message: "Someone with this email address already has a Remit account.".into(),
            }
        } else {
            err.into()
        });
    }
    let invite = InvitationEmail {
        user_id: owner_id,
        email: &owner_email,
        tenant_id,
        tenant_name: &name,
        inviter_name: "The Remit team",
        role: Role::TenantOwner,
    };
    send_invitation(&mut tx, services, invite).await?;
    tx.commit().await?;
    tracing::info!(%tenant_id, "tenant created");
    Ok(tenant_id)
}

/// Who is invited where, for the invitation email.
struct InvitationEmail<'a> {
    user_id: Uuid,
    email: &'a str,
    tenant_id: Uuid,
    tenant_name: &'a str,
    inviter_name: &'a str,
    role: Role,
}

/// Issues an invitation token and queues the email that carries it, on the caller's transaction.
async fn send_invitation(
    conn: &mut sqlx::PgConnection,
    services: &Services,
    invite: InvitationEmail<'_>,
) -> Result<()> {
    let token = account_tokens::issue(conn, invite.user_id, Purpose::Invitation).await?;
    let link = services.settings.public_url(&format!("/reset-password?token={token}"));
    mail::enqueue(
        conn,
        OutgoingEmail {
            tenant_id: Some(invite.tenant_id),
            to: invite.email.to_owned(),
            subject: format!("{} invited you to Remit", invite.inviter_name),
            text_body: format!(
                "{} invited you to join {} on Remit as {}.\n\n\
                 To accept, choose your password within 7 days:\n{link}\n",
                invite.inviter_name,
                invite.tenant_name,
                invite.role.label().to_lowercase(),
            ),
            attachments: vec![],
        },
    )
    .await?;
    Ok(())
}

/// Renames the principal's tenant (owners only; checked by the caller's policy).
pub async fn rename_tenant(pool: &PgPool, principal: &Principal, name: &str) -> Result<()> {
    let name = validate_name("name", name)?;
    let tenant_id = principal.tenant()?;
    let result = sqlx::query!("UPDATE tenants SET name = $2 WHERE id = $1", tenant_id, name).execute(pool).await;
    match result {
        Err(err) if db::violates(&err, "tenants_name_key") => {
            Err(Error::conflict("Another tenant already uses this name."))
        }
        Err(err) => Err(err.into()),
        Ok(_) => Ok(()),
    }
}
