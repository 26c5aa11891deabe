//! Tenants and their users: listings for the dashboards, and invitations.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    Services,
    audit::{self, Entry},
    auth::{
        Principal, Role,
        account_tokens::{self, Purpose},
        password,
        session::{self, Client},
        sign_in,
    },
    db,
    error::{Error, Result},
    mail::{self, OneTimeLinks, OutgoingEmail},
    security::{self, MailKind},
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
    pub suspended: bool,
    pub suspended_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub tenant_id: Option<Uuid>,
    pub consultant_id: Option<Uuid>,
    pub tenant_name: Option<String>,
    pub consultant_name: Option<String>,
    /// False while an invitation is still open.
    pub active: bool,
    /// Deactivated by the tenant's owner or an admin: may not sign in.
    pub deactivated: bool,
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
        r#"SELECT t.id, t.name, t.created_at, count(u.id) AS "user_count!", t.status = 'suspended' AS "suspended!",
                  t.suspended_reason
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
                  u.deactivated_at IS NOT NULL AS "deactivated!", u.tenant_id, u.consultant_id,
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
                tenant_id: r.tenant_id,
                consultant_id: r.consultant_id,
                tenant_name: r.tenant_name,
                consultant_name: r.consultant_name,
                active: r.active,
                deactivated: r.deactivated,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// The family members attached to a consultant.
pub async fn household(pool: &PgPool, consultant_id: Uuid) -> Result<Vec<UserSummary>> {
    let rows = sqlx::query!(
        r#"SELECT id, email, display_name, created_at, password_hash IS NOT NULL AS "active!",
                  deactivated_at IS NOT NULL AS "deactivated!", tenant_id, consultant_id
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
            tenant_id: r.tenant_id,
            consultant_id: r.consultant_id,
            tenant_name: None,
            consultant_name: None,
            active: r.active,
            deactivated: r.deactivated,
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
    crate::input::plain_text(name, field, false)?;
    Ok(name.to_owned())
}

/// Invites someone into the inviter's tenant: a new account (without a password) and an email
/// with a link to choose one; a family member is attached to the consultant who invites them.
///
/// The answer is the same whether or not the address already has a Remit account, so the form
/// cannot be used to find out who uses Remit: an existing account is left as it is and its
/// owner is emailed that someone tried to invite them. Invitations count against the tenant's
/// hourly mail limit (429 beyond it).
pub async fn invite(services: &Services, inviter: &Principal, invitation: Invitation) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    invite_in(&mut tx, services, inviter, &invitation).await?;
    tx.commit().await?;
    tracing::info!(role = invitation.role.as_str(), "invitation handled");
    Ok(())
}

/// [`invite`] within the caller's transaction (a consultant billing a new client invites them
/// in the transaction that records the fee). The new account's id, or `None` when the address
/// already had one (its owner was emailed).
pub async fn invite_in(
    tx: &mut PgConnection,
    services: &Services,
    inviter: &Principal,
    invitation: &Invitation,
) -> Result<Option<Uuid>> {
    if !may_invite(inviter.role, invitation.role) {
        return Err(Error::Forbidden);
    }
    let tenant_id = inviter.tenant()?;
    sign_in::validate_email(&invitation.email)?;
    let display_name = validate_name("display_name", &invitation.display_name)?;
    let email = invitation.email.trim().to_owned();
    let consultant_id = (invitation.role == Role::FamilyMember).then_some(inviter.user_id);
    let tenant = sqlx::query!("SELECT name FROM tenants WHERE id = $1", tenant_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("tenant"))?;

    security::take_mail_quota(
        &mut *tx,
        tenant_id,
        MailKind::Invitation,
        services.settings.mail_limits.invitations_per_hour,
    )
    .await?;
    let user_id = Uuid::new_v4();
    let created = sqlx::query!(
        "INSERT INTO users (id, tenant_id, email, display_name, role, consultant_id) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ((lower(email))) DO NOTHING",
        user_id,
        tenant_id,
        email,
        display_name,
        invitation.role.as_str(),
        consultant_id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if created {
        let invite = InvitationEmail {
            user_id,
            email: &email,
            tenant_id,
            tenant_name: &tenant.name,
            inviter_name: &inviter.display_name,
            role: invitation.role,
        };
        send_invitation(&mut *tx, services, invite).await?;
    } else {
        already_has_account(&mut *tx, &email, &tenant.name, &inviter.display_name, invitation.role).await?;
    }
    audit::record(
        &mut *tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(inviter),
            action: "user.invited",
            target: Some(email.clone()),
            reason: None,
            details: serde_json::json!({ "role": invitation.role.as_str() }),
        },
    )
    .await?;
    Ok(created.then_some(user_id))
}

/// Tells the owner of an existing account that someone tried to invite their address.
async fn already_has_account(
    conn: &mut PgConnection,
    email: &str,
    tenant_name: &str,
    inviter_name: &str,
    role: Role,
) -> Result<()> {
    mail::enqueue(
        conn,
        OutgoingEmail {
            tenant_id: None,
            to: email.to_owned(),
            subject: format!("{inviter_name} tried to invite you to Remit"),
            text_body: format!(
                "{inviter_name} tried to invite this address to join {tenant_name} on Remit as {}.\n\n\
                 This address already has a Remit account, so nothing was changed. If you expected the invitation, \
                 ask {inviter_name} to invite another address of yours; if not, you can ignore this email.\n",
                role.label().to_lowercase()
            ),
            attachments: vec![],
            links: None,
        },
    )
    .await?;
    Ok(())
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
            links: OneTimeLinks::one(&services.settings.encryption_key, &link)?,
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

/// A user as the management actions see them.
struct Target {
    id: Uuid,
    email: String,
    display_name: String,
    role: Role,
    tenant_id: Option<Uuid>,
    consultant_id: Option<Uuid>,
    pending: bool,
    deactivated: bool,
}

async fn target(conn: &mut PgConnection, id: Uuid) -> Result<Target> {
    let row = sqlx::query!(
        r#"SELECT id, email, display_name, role, tenant_id, consultant_id, password_hash IS NULL AS "pending!",
                  deactivated_at IS NOT NULL AS "deactivated!"
           FROM users WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("user"))?;
    Ok(Target {
        role: Role::parse(&row.role).ok_or_else(|| anyhow::anyhow!("user {} has an unknown role", row.id))?,
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        tenant_id: row.tenant_id,
        consultant_id: row.consultant_id,
        pending: row.pending,
        deactivated: row.deactivated,
    })
}

/// Whom `actor` may deactivate, reactivate and whose invitations they may resend or revoke:
/// the owner anyone else of the tenant, an admin its consultants and family members, a
/// consultant the invitations of their own household. Someone of another tenant is not found.
fn may_manage_user(
    actor: &Principal,
    (id, role, tenant_id, consultant_id): (Uuid, Role, Option<Uuid>, Option<Uuid>),
    invitations_only: bool,
) -> Result<()> {
    if tenant_id.is_none() || tenant_id != actor.tenant_id {
        return Err(Error::NotFound("user"));
    }
    if id == actor.user_id {
        return Err(Error::conflict("You cannot do this to your own account."));
    }
    let allowed = match actor.role {
        Role::TenantOwner => role != Role::TenantOwner,
        Role::TenantAdmin => matches!(role, Role::Consultant | Role::FamilyMember),
        Role::Consultant => invitations_only && consultant_id == Some(actor.user_id),
        _ => false,
    };
    if allowed { Ok(()) } else { Err(Error::Forbidden) }
}

fn may_manage(actor: &Principal, target: &Target, invitations_only: bool) -> Result<()> {
    may_manage_user(actor, (target.id, target.role, target.tenant_id, target.consultant_id), invitations_only)
}

/// What `actor` may do to `user`, for the buttons of the people tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actions {
    pub deactivate: bool,
    pub reactivate: bool,
    pub resend_invitation: bool,
    pub revoke_invitation: bool,
    /// The other role the owner may give (tenant admin ↔ consultant).
    pub change_role_to: Option<Role>,
}

pub fn actions(actor: &Principal, user: &UserSummary) -> Actions {
    let subject = (user.id, user.role, user.tenant_id, user.consultant_id);
    let manage = may_manage_user(actor, subject, false).is_ok();
    let invitations = may_manage_user(actor, subject, true).is_ok();
    let pending = !user.active;
    Actions {
        deactivate: manage && !pending && !user.deactivated,
        reactivate: manage && user.deactivated,
        resend_invitation: invitations && pending && !user.deactivated,
        revoke_invitation: invitations && pending,
        change_role_to: match (actor.role, user.role) {
            (Role::TenantOwner, Role::TenantAdmin) if manage => Some(Role::Consultant),
            (Role::TenantOwner, Role::Consultant) if manage => Some(Role::TenantAdmin),
            _ => None,
        },
    }
}

async fn record(
    conn: &mut PgConnection,
    actor: &Principal,
    action: &str,
    target: &Target,
    details: serde_json::Value,
) -> Result<()> {
    audit::record(
        conn,
        Entry {
            tenant_id: target.tenant_id,
            actor: Some(actor),
            action,
            target: Some(format!("{} <{}>", target.display_name, target.email)),
            reason: None,
            details,
        },
    )
    .await
}

/// Deactivates (`active = false`) or reactivates a user. Deactivation ends their sessions at
/// once and refuses their sign-in with a plain message; nothing of theirs is deleted.
pub async fn set_active(services: &Services, actor: &Principal, user_id: Uuid, active: bool) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    let target = target(&mut tx, user_id).await?;
    may_manage(actor, &target, false)?;
    if target.deactivated != active {
        return Err(Error::conflict(if active {
            "This user is already active."
        } else {
            "This user is already deactivated."
        }));
    }
    sqlx::query!(
        "UPDATE users SET deactivated_at = CASE WHEN $2 THEN NULL ELSE now() END, updated_at = now() WHERE id = $1",
        user_id,
        active
    )
    .execute(&mut *tx)
    .await?;
    if !active {
        session::destroy_all_for_user(&mut tx, user_id).await?;
    }
    let action = if active { "user.reactivated" } else { "user.deactivated" };
    record(&mut tx, actor, action, &target, serde_json::json!({ "role": target.role.as_str() })).await?;
    tx.commit().await?;
    tracing::info!(%user_id, active, "user active state changed");
    Ok(())
}

/// Changes a user's role between tenant admin and consultant (the tenant's owner only). A
/// consultant with a household or a subscription stays a consultant: those would be orphaned.
pub async fn change_role(services: &Services, owner: &Principal, user_id: Uuid, role: Role) -> Result<()> {
    if owner.role != Role::TenantOwner {
        return Err(Error::Forbidden);
    }
    if !matches!(role, Role::TenantAdmin | Role::Consultant) {
        return Err(Error::invalid("role", "Choose tenant admin or consultant."));
    }
    let mut tx = services.pool.begin().await?;
    let target = target(&mut tx, user_id).await?;
    may_manage(owner, &target, false)?;
    if !matches!(target.role, Role::TenantAdmin | Role::Consultant) {
        return Err(Error::conflict("Only tenant admins and consultants can change role."));
    }
    if target.role == role {
        return Err(Error::conflict(format!("This user is already a {}.", role.label().to_lowercase())));
    }
    if target.role == Role::Consultant {
        let ties = sqlx::query!(
            r#"SELECT EXISTS (SELECT 1 FROM users WHERE consultant_id = $1) AS "household!",
                      EXISTS (SELECT 1 FROM subscriptions WHERE user_id = $1
                              AND status IN ('trialing', 'active', 'past_due', 'incomplete')) AS "subscribed!""#,
            user_id
        )
        .fetch_one(&mut *tx)
        .await?;
        if ties.household || ties.subscribed {
            return Err(Error::conflict(
                "This consultant has family members or a subscription, so they stay a consultant.",
            ));
        }
    }
    sqlx::query!("UPDATE users SET role = $2, updated_at = now() WHERE id = $1", user_id, role.as_str())
        .execute(&mut *tx)
        .await?;
    record(
        &mut tx,
        owner,
        "user.role_changed",
        &target,
        serde_json::json!({ "from": target.role.as_str(), "to": role.as_str() }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a pending invitation again with a new link; the old link stops working.
pub async fn resend_invitation(services: &Services, actor: &Principal, user_id: Uuid) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    let target = target(&mut tx, user_id).await?;
    may_manage(actor, &target, true)?;
    if !target.pending || target.deactivated {
        return Err(Error::conflict("This invitation was already accepted, so there is nothing to resend."));
    }
    let tenant_id = target.tenant_id.ok_or(Error::NotFound("user"))?;
    security::take_mail_quota(
        &mut tx,
        tenant_id,
        MailKind::Invitation,
        services.settings.mail_limits.invitations_per_hour,
    )
    .await?;
    account_tokens::revoke_all(&mut tx, user_id).await?;
    let tenant_name =
        sqlx::query_scalar!("SELECT name FROM tenants WHERE id = $1", tenant_id).fetch_one(&mut *tx).await?;
    let invite = InvitationEmail {
        user_id,
        email: &target.email,
        tenant_id,
        tenant_name: &tenant_name,
        inviter_name: &actor.display_name,
        role: target.role,
    };
    send_invitation(&mut tx, services, invite).await?;
    record(&mut tx, actor, "invitation.resent", &target, serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(())
}

/// Withdraws a pending invitation: the invited account (which has no data yet) is removed.
pub async fn revoke_invitation(services: &Services, actor: &Principal, user_id: Uuid) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    let target = target(&mut tx, user_id).await?;
    may_manage(actor, &target, true)?;
    if !target.pending {
        return Err(Error::conflict("This invitation was already accepted; deactivate the user instead."));
    }
    // A client invited with a fee request would lose it with the invitation: the consultant
    // cancels what they billed first. (The user's row is locked, so no request slips in.)
    let billed = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM fee_requests WHERE client_id = $1 AND status = 'open') AS "billed!""#,
        user_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if billed {
        return Err(Error::conflict(
            "Their consultant has sent them fee requests that are still open. Cancel those on the Fees page first, then revoke the invitation.",
        ));
    }
    record(&mut tx, actor, "invitation.revoked", &target, serde_json::json!({ "role": target.role.as_str() })).await?;
    sqlx::query!("DELETE FROM users WHERE id = $1 AND password_hash IS NULL", user_id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

async fn record_tenant(
    conn: &mut PgConnection,
    admin: &Principal,
    action: &str,
    tenant_id: Uuid,
    name: String,
    reason: Option<&str>,
) -> Result<()> {
    let entry = Entry {
        tenant_id: Some(tenant_id),
        actor: Some(admin),
        action,
        target: Some(name),
        reason: reason.map(str::to_owned),
        details: serde_json::json!({}),
    };
    audit::record(conn, entry).await
}

/// Suspends a tenant (platform admins): its users cannot sign in and their sessions end, its API
/// keys are refused, its buyers' payment pages say payments are paused. Nothing is deleted.
pub async fn suspend_tenant(services: &Services, admin: &Principal, tenant_id: Uuid, reason: &str) -> Result<()> {
    let reason = reason.trim();
    if reason.chars().count() < 3 || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(Error::invalid("reason", "Give the reason in 3 to 500 characters."));
    }
    let mut tx = services.pool.begin().await?;
    let name = sqlx::query_scalar!(
        "UPDATE tenants SET status = 'suspended', suspended_reason = $2 WHERE id = $1 AND status <> 'suspended' RETURNING name",
        tenant_id,
        reason
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(name) = name else {
        sqlx::query_scalar!("SELECT id FROM tenants WHERE id = $1", tenant_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("tenant"))?;
        return Err(Error::conflict("This tenant is already suspended."));
    };
    sqlx::query!("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE tenant_id = $1)", tenant_id)
        .execute(&mut *tx)
        .await?;
    for owner in owner_emails(&mut tx, tenant_id).await? {
        mail::enqueue(
            &mut tx,
            OutgoingEmail {
                tenant_id: Some(tenant_id),
                to: owner,
                subject: format!("{name} is suspended on Remit"),
                text_body: format!(
                    "Remit suspended {name}'s account: {reason}\n\n\
                     Until it is reactivated, nobody of {name} can sign in, its API keys are refused and buyers \
                     cannot pay. Nothing was deleted. Contact Remit's support to have it reactivated.\n"
                ),
                attachments: vec![],
                links: None,
            },
        )
        .await?;
    }
    record_tenant(&mut tx, admin, "tenant.suspended", tenant_id, name, Some(reason)).await?;
    tx.commit().await?;
    Ok(())
}

/// Lifts a suspension: the tenant is active again (or onboarding, without a Stripe account).
pub async fn reactivate_tenant(services: &Services, admin: &Principal, tenant_id: Uuid) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    sqlx::query_scalar!("SELECT id FROM tenants WHERE id = $1", tenant_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("tenant"))?;
    let name = sqlx::query_scalar!(
        "UPDATE tenants SET suspended_reason = NULL,
                status = CASE WHEN EXISTS (SELECT 1 FROM tenant_stripe_accounts s WHERE s.tenant_id = tenants.id)
                              THEN 'active' ELSE 'onboarding' END
         WHERE id = $1 AND status = 'suspended' RETURNING name",
        tenant_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::conflict("This tenant is not suspended."))?;
    record_tenant(&mut tx, admin, "tenant.reactivated", tenant_id, name, None).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the signed-in person's password: the current one is checked (and a wrong one counts
/// as a failed sign-in), the new one must pass the rules; every other session ends, outstanding
/// reset links stop working, and the person is emailed.
pub async fn change_password(
    services: &Services,
    principal: &Principal,
    current_token: &str,
    current: SecretString,
    new: SecretString,
    client: &Client,
) -> Result<()> {
    sign_in::confirm_password(services, &principal.email, current, client).await?;
    password::validate_new(&new, &[&principal.email, &principal.display_name]).map_err(|err| match err {
        Error::Invalid { message, .. } => Error::Invalid { field: Some("new_password"), message },
        other => other,
    })?;
    let hash = password::hash(new).await?;
    let mut tx = services.pool.begin().await?;
    sqlx::query!("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", principal.user_id, hash)
        .execute(&mut *tx)
        .await?;
    account_tokens::revoke_all(&mut tx, principal.user_id).await?;
    sqlx::query!(
        "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2",
        principal.user_id,
        crate::crypto::token_hash(current_token)
    )
    .execute(&mut *tx)
    .await?;
    account_tokens::password_changed_email(&mut tx, services, &principal.email, principal.tenant_id).await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: principal.tenant_id,
            actor: Some(principal),
            action: "user.password_changed",
            target: Some(principal.email.clone()),
            reason: None,
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The addresses of a tenant's owners who can still sign in: whom Remit tells about their tenant.
pub async fn owner_emails(conn: &mut PgConnection, tenant_id: Uuid) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT email FROM users WHERE tenant_id = $1 AND role = 'tenant_owner' AND deactivated_at IS NULL",
        tenant_id
    )
    .fetch_all(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, tenant: Uuid) -> Principal {
        Principal {
            user_id: Uuid::new_v4(),
            email: "someone@example.com".into(),
            display_name: "Someone".into(),
            role,
            tenant_id: Some(tenant),
            consultant_id: None,
        }
    }

    fn user(role: Role, tenant: Uuid, consultant: Option<Uuid>, active: bool, deactivated: bool) -> UserSummary {
        UserSummary {
            id: Uuid::new_v4(),
            email: "x@example.com".into(),
            display_name: "X".into(),
            role,
            tenant_id: Some(tenant),
            consultant_id: consultant,
            tenant_name: None,
            consultant_name: None,
            active,
            deactivated,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn owners_manage_everyone_admins_manage_consultants_and_families() {
        let tenant = Uuid::new_v4();
        let owner = principal(Role::TenantOwner, tenant);
        let admin = principal(Role::TenantAdmin, tenant);
        let other_admin = user(Role::TenantAdmin, tenant, None, true, false);
        let consultant = user(Role::Consultant, tenant, None, true, false);
        let a = actions(&owner, &other_admin);
        assert!(a.deactivate && !a.reactivate && a.change_role_to == Some(Role::Consultant));
        assert_eq!(actions(&owner, &consultant).change_role_to, Some(Role::TenantAdmin));
        assert_eq!(actions(&admin, &other_admin), Actions::default(), "admins do not manage admins");
        let a = actions(&admin, &consultant);
        assert!(a.deactivate && a.change_role_to.is_none(), "only the owner changes roles");
        let deactivated = user(Role::Consultant, tenant, None, true, true);
        let a = actions(&admin, &deactivated);
        assert!(a.reactivate && !a.deactivate);
        let elsewhere = user(Role::Consultant, Uuid::new_v4(), None, true, false);
        assert_eq!(actions(&owner, &elsewhere), Actions::default());
    }

    #[test]
    fn consultants_manage_only_their_households_invitations() {
        let tenant = Uuid::new_v4();
        let consultant = principal(Role::Consultant, tenant);
        let invited = user(Role::FamilyMember, tenant, Some(consultant.user_id), false, false);
        let a = actions(&consultant, &invited);
        assert!(a.resend_invitation && a.revoke_invitation && !a.deactivate);
        let joined = user(Role::FamilyMember, tenant, Some(consultant.user_id), true, false);
        assert_eq!(actions(&consultant, &joined), Actions::default());
        let someone_elses = user(Role::FamilyMember, tenant, Some(Uuid::new_v4()), false, false);
        assert_eq!(actions(&consultant, &someone_elses), Actions::default());
    }
}
