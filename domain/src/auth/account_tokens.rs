//! Single-use links that let a person choose a password: "forgot password" and invitations.
//! Only the token's SHA-256 is stored; the token itself travels in the email.

use chrono::{Duration, Utc};
use secrecy::SecretString;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{password, session, sign_in};
use crate::{
    Services, crypto,
    error::{Error, Result},
    mail::{self, OutgoingEmail},
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

/// Handles "forgot password": when the address belongs to an account, a reset link is
/// emailed. The answer is the same either way, so the form cannot be used to find accounts.
pub async fn request_password_reset(services: &Services, email: &str) -> Result<()> {
    sign_in::validate_email(email)?;
    let key = sign_in::email_key(email);
    let mut tx = services.pool.begin().await?;
    let Some(user) = sqlx::query!("SELECT id, email, tenant_id FROM users WHERE lower(email) = $1", key)
        .fetch_optional(&mut *tx)
        .await?
    else {
        tracing::info!("password reset requested for an unknown email");
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

/// What a still-usable token is for, shown on the page before the form.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub email: String,
    pub purpose: Purpose,
}

const EXPIRED_LINK: &str = "This link has expired or was already used. Ask for a new one from the sign-in page.";

pub async fn inspect(pool: &PgPool, token: &str) -> Result<TokenInfo> {
    let row = sqlx::query!(
        r#"SELECT u.email, t.purpose FROM account_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()"#,
        crypto::token_hash(token)
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::invalid("token", EXPIRED_LINK))?;
    let purpose = if row.purpose == "invitation" { Purpose::Invitation } else { Purpose::PasswordReset };
    Ok(TokenInfo { email: row.email, purpose })
}

/// Uses a token to set a new password. Every existing session of the account ends.
pub async fn set_password(pool: &PgPool, token: &str, new_password: SecretString) -> Result<()> {
    password::validate_new(&new_password)?;
    let hash = password::hash(new_password).await?;
    let mut tx = pool.begin().await?;
    // The conditional update is what makes the token single-use, even under concurrent use.
    let user_id = sqlx::query_scalar!(
        "UPDATE account_tokens SET used_at = now()
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
        crypto::token_hash(token)
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::invalid("token", EXPIRED_LINK))?;
    sqlx::query!("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", user_id, hash)
        .execute(&mut *tx)
        .await?;
    session::destroy_all_for_user(&mut tx, user_id).await?;
    tx.commit().await?;
    tracing::info!(%user_id, "password set through a one-time link");
    Ok(())
}
