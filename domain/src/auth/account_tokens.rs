//! Single-use links that let a person choose a password: "forgot password" and invitations.
//! Only the token's SHA-256 is stored; the token itself travels in the email (and is kept out
//! of the stored body, see `mail`).

use chrono::{Duration, Utc};
use secrecy::SecretString;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{password, session, sign_in};
use crate::{
    Services, crypto,
    error::{Error, Result},
    mail::{self, OneTimeLinks, OutgoingEmail},
};

pub const RESET_LIFETIME: Duration = Duration::hours(1);
pub const INVITATION_LIFETIME: Duration = Duration::days(7);
/// Reset emails per account per hour; more requests are accepted but send nothing.
const MAX_RESETS_PER_HOUR: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    Invitation,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "password_reset",
            Purpose::Invitation => "invitation",
        }
    }
}

/// Handles "forgot password": when the address belongs to an account that may sign in, a reset
/// link is emailed. The answer is the same either way, so the form cannot be used to find accounts.
pub async fn request_password_reset(services: &Services, email: &str) -> Result<()> {
    sign_in::validate_email(email)?;
    let key = sign_in::email_key(email);
    let mut tx = services.pool.begin().await?;
    let Some(user) = sqlx::query!(
        r#"SELECT u.id, u.email, u.tenant_id FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id
           WHERE lower(u.email) = $1 AND u.deactivated_at IS NULL AND t.status IS DISTINCT FROM 'suspended'"#,
        key
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        tracing::info!("password reset requested for an unknown or inactive account");
        return Ok(());
    };
    // Serialise requests for one account so the hourly cap holds under concurrency.
    sqlx::query!("SELECT id FROM users WHERE id = $1 FOR UPDATE", user.id).fetch_one(&mut *tx).await?;
    let recent = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM account_tokens
           WHERE user_id = $1 AND purpose = 'password_reset' AND created_at > now() - interval '1 hour'"#,
        user.id
    )
    .fetch_one(&mut *tx)
    .await?;
    if recent >= MAX_RESETS_PER_HOUR {
        tracing::info!(user_id = %user.id, "password reset not sent: hourly cap reached");
        return Ok(());
    }
    let token = issue(&mut tx, user.id, Purpose::PasswordReset).await?;
    let link = services.settings.public_url(&format!("/reset-password?token={token}"));
    mail::enqueue(
        &mut tx,
        OutgoingEmail {
            tenant_id: user.tenant_id,
            to: user.email,
            subject: "Reset your Remit password".into(),
            text_body: format!(
                "Someone asked to reset the password of your Remit account.\n\n\
                 To choose a new password, open this link within the next hour:\n{link}\n\n\
                 If it was not you, ignore this email: your password stays as it is."
            ),
            attachments: vec![],
            links: OneTimeLinks::one(&services.settings.encryption_key, &link)?,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "password reset email queued");
    Ok(())
}

/// Creates a token of `purpose` for `user_id` on the caller's transaction and returns it.
pub async fn issue(conn: &mut PgConnection, user_id: Uuid, purpose: Purpose) -> Result<String> {
    let token = crypto::random_token();
    let lifetime = match purpose {
        Purpose::PasswordReset => RESET_LIFETIME,
        Purpose::Invitation => INVITATION_LIFETIME,
    };
    sqlx::query!(
        "INSERT INTO account_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
        crypto::token_hash(&token),
        user_id,
        purpose.as_str(),
        Utc::now() + lifetime,
    )
    .execute(conn)
    .await?;
    Ok(token)
}

/// Revokes every link of `user_id` not used yet (a newer invitation, a password changed).
pub async fn revoke_all(conn: &mut PgConnection, user_id: Uuid) -> Result<u64> {
    Ok(sqlx::query!(
        "UPDATE account_tokens SET revoked_at = now() WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        user_id
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// What a still-usable token is for, shown on the page before the form.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub email: String,
    pub purpose: Purpose,
}

const EXPIRED_LINK: &str = "This link has expired or was already used. Ask for a new one from the sign-in page.";

/// A usable token's account, or the "expired" refusal.
struct Usable {
    email: String,
    display_name: String,
    tenant_id: Option<Uuid>,
    purpose: Purpose,
}

async fn usable(conn: &mut PgConnection, token: &str) -> Result<Usable> {
    let row = sqlx::query!(
        r#"SELECT u.email, u.display_name, u.tenant_id, t.purpose FROM account_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > now()
             AND u.deactivated_at IS NULL"#,
        crypto::token_hash(token)
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::invalid("token", EXPIRED_LINK))?;
    let purpose = if row.purpose == "invitation" { Purpose::Invitation } else { Purpose::PasswordReset };
    Ok(Usable { email: row.email, display_name: row.display_name, tenant_id: row.tenant_id, purpose })
}

pub async fn inspect(services: &Services, token: &str) -> Result<TokenInfo> {
    let mut conn = services.pool.acquire().await?;
    let found = usable(&mut conn, token).await?;
    Ok(TokenInfo { email: found.email, purpose: found.purpose })
}

/// Uses a token to set a new password: the token and every other outstanding link of the
/// account stop working, every session of the account ends, and after a reset the person is
/// told by email that their password changed.
pub async fn set_password(services: &Services, token: &str, new_password: SecretString) -> Result<()> {
    let account = {
        let mut conn = services.pool.acquire().await?;
        usable(&mut conn, token).await?
    };
    password::validate_new(&new_password, &[&account.email, &account.display_name])?;
    // Hashed before the transaction: no connection is held while Argon2 runs.
    let hash = password::hash(new_password).await?;
    let mut tx = services.pool.begin().await?;
    // The conditional update is what makes the token single-use, even under concurrent use.
    let user_id = sqlx::query_scalar!(
        "UPDATE account_tokens SET used_at = now()
         WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now() RETURNING user_id",
        crypto::token_hash(token)
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::invalid("token", EXPIRED_LINK))?;
    sqlx::query!("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", user_id, hash)
        .execute(&mut *tx)
        .await?;
    revoke_all(&mut tx, user_id).await?;
    session::destroy_all_for_user(&mut tx, user_id).await?;
    if account.purpose == Purpose::PasswordReset {
        password_changed_email(&mut tx, services, &account.email, account.tenant_id).await?;
    }
    tx.commit().await?;
    tracing::info!(%user_id, "password set through a one-time link");
    Ok(())
}

/// Tells a person their password was changed (after a reset or on their account page).
pub async fn password_changed_email(
    conn: &mut PgConnection,
    services: &Services,
    to: &str,
    tenant_id: Option<Uuid>,
) -> Result<()> {
    mail::enqueue(
        conn,
        OutgoingEmail {
            tenant_id,
            to: to.to_owned(),
            subject: "Your Remit password was changed".into(),
            text_body: format!(
                "The password of your Remit account was just changed, and every session of the account was signed out.\n\n\
                 If it was you, there is nothing more to do.\n\
                 If it was not, reset your password at once from the sign-in page ({}) and tell your organisation's \
                 owner or Remit's support.\n",
                services.settings.public_url("/forgot-password")
            ),
            attachments: vec![],
            links: None,
        },
    )
    .await?;
    Ok(())
}
