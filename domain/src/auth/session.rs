//! Server-side sessions in PostgreSQL. The browser holds a random id; the database holds only
//! its SHA-256, so neither a database dump nor a log line can be replayed as a session.

use chrono::{Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Principal, Role};
use crate::{crypto, error::Result};

pub const COOKIE_NAME: &str = "remit_session";
/// A session ends after this long without a request.
pub const IDLE_LIFETIME: Duration = Duration::hours(12);
/// Expiry is pushed forward at most this often, to avoid a write on every request.
const REFRESH_AFTER: Duration = Duration::minutes(5);

/// A freshly issued session id, for the cookie only.
pub struct SessionToken(SecretString);

impl SessionToken {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Starts a session for `user_id` and returns the id to put in the cookie.
pub async fn create(conn: &mut PgConnection, user_id: Uuid) -> Result<SessionToken> {
    let token = crypto::random_token();
    sqlx::query!(
        "INSERT INTO sessions (id_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        crypto::token_hash(&token),
        user_id,
        Utc::now() + IDLE_LIFETIME,
    )
    .execute(conn)
    .await?;
    Ok(SessionToken(SecretString::from(token)))
}

/// The principal behind a session id, if the session exists and has not expired.
pub async fn resolve(pool: &PgPool, token: &str) -> Result<Option<Principal>> {
    let hash = crypto::token_hash(token);
    let row = sqlx::query!(
        r#"SELECT u.id, u.email, u.display_name, u.role, u.tenant_id, u.consultant_id, s.last_seen_at
           FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.id_hash = $1 AND s.expires_at > now()"#,
        hash,
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    if Utc::now() - row.last_seen_at > REFRESH_AFTER {
        sqlx::query!(
            "UPDATE sessions SET last_seen_at = now(), expires_at = $2 WHERE id_hash = $1",
            hash,
            Utc::now() + IDLE_LIFETIME,
        )
        .execute(pool)
        .await?;
    }
    let Some(role) = Role::parse(&row.role) else {
        return Err(anyhow::anyhow!("user {} has an unknown role", row.id).into());
    };
    Ok(Some(Principal {
        user_id: row.id,
        email: row.email,
        display_name: row.display_name,
        role,
        tenant_id: row.tenant_id,
        consultant_id: row.consultant_id,
    }))
}

/// Ends the session with this id (sign-out, or the old id at sign-in).
pub async fn destroy(pool: &PgPool, token: &str) -> Result<()> {
    sqlx::query!("DELETE FROM sessions WHERE id_hash = $1", crypto::token_hash(token)).execute(pool).await?;
    Ok(())
}

/// Ends every session of a user (after a password change).
pub async fn destroy_all_for_user(conn: &mut PgConnection, user_id: Uuid) -> Result<()> {
    sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user_id).execute(conn).await?;
    Ok(())
}

/// The `Set-Cookie` value that stores `token`: HttpOnly, SameSite=Lax, Secure over https.
pub fn cookie(token: &SessionToken, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        token.expose(),
        IDLE_LIFETIME.num_seconds(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clearing_cookie(secure: bool) -> String {
    format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}", if secure { "; Secure" } else { "" })
}

/// Finds the session id in a `Cookie` header value.
pub fn token_from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Deletes sessions that expired (run by a periodic job).
pub async fn purge_expired(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query!("DELETE FROM sessions WHERE expires_at <= now()").execute(pool).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_has_the_protective_attributes() {
        let token = SessionToken(SecretString::from("abc".to_string()));
        let c = cookie(&token, false);
        assert!(c.starts_with("remit_session=abc;"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && !c.contains("Secure"));
        assert!(cookie(&token, true).ends_with("; Secure"));
        assert!(clearing_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn finds_the_session_among_other_cookies() {
        assert_eq!(token_from_cookie_header("a=1; remit_session=xyz; b=2"), Some("xyz"));
        assert_eq!(token_from_cookie_header("remit_session="), None);
        assert_eq!(token_from_cookie_header("other=1"), None);
    }
}
