//! Server-side sessions in PostgreSQL. The browser holds a random id; the database holds only
//! its SHA-256, so neither a database dump nor a log line can be replayed as a session.
//!
//! A session ends after 12 hours without a request, and in any case 7 days after sign-in. It
//! also ends at once when its user is deactivated or its tenant suspended (it no longer
//! resolves), or when the person signs it out from their account page.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Principal, Role};
use crate::{
    crypto,
    error::{Error, Result},
};

/// The cookie over plain http (development).
pub const COOKIE_NAME: &str = "remit_session";
/// The cookie over https: the `__Host-` prefix makes the browser refuse it unless it is Secure,
/// for this host only (no Domain) and for every path, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE_NAME: &str = "__Host-remit_session";
/// A session ends after this long without a request.
pub const IDLE_LIFETIME: Duration = Duration::hours(12);
/// ... and this long after sign-in, however active.
pub const ABSOLUTE_LIFETIME: Duration = Duration::days(7);
/// Expiry is pushed forward at most this often, to avoid a write on every request.
const REFRESH_AFTER: Duration = Duration::minutes(5);
/// How much of a browser's `User-Agent` is kept, to show the device.
const MAX_USER_AGENT: usize = 300;

/// A freshly issued session id, for the cookie only.
pub struct SessionToken(SecretString);

impl SessionToken {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Where a request comes from: shown to the person with their sessions, and counted by the
/// sign-in throttle.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// Starts a session for `user_id` and returns the id to put in the cookie.
pub async fn create(conn: &mut PgConnection, user_id: Uuid, client: &Client) -> Result<SessionToken> {
    let token = crypto::random_token();
    let now = Utc::now();
    let user_agent = client.user_agent.as_deref().map(|ua| ua.chars().take(MAX_USER_AGENT).collect::<String>());
    sqlx::query!(
        "INSERT INTO sessions (id_hash, user_id, expires_at, absolute_expires_at, user_agent, client_ip)
         VALUES ($1, $2, $3, $4, $5, $6::text::inet)",
        crypto::token_hash(&token),
        user_id,
        now + IDLE_LIFETIME,
        now + ABSOLUTE_LIFETIME,
        user_agent,
        client.ip.map(|ip| ip.to_string()),
    )
    .execute(conn)
    .await?;
    Ok(SessionToken(SecretString::from(token)))
}

/// The principal behind a session id, if the session exists and has not expired, its user is
/// active and its tenant is not suspended.
pub async fn resolve(pool: &PgPool, token: &str) -> Result<Option<Principal>> {
    let hash = crypto::token_hash(token);
    let row = sqlx::query!(
        r#"SELECT u.id, u.email, u.display_name, u.role, u.tenant_id, u.consultant_id, s.last_seen_at,
                  s.absolute_expires_at
           FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN tenants t ON t.id = u.tenant_id
           WHERE s.id_hash = $1 AND s.expires_at > now() AND s.absolute_expires_at > now()
             AND u.deactivated_at IS NULL AND t.status IS DISTINCT FROM 'suspended'"#,
        hash,
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    if Utc::now() - row.last_seen_at > REFRESH_AFTER {
        sqlx::query!(
            "UPDATE sessions SET last_seen_at = now(), expires_at = least($2, absolute_expires_at) WHERE id_hash = $1",
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

/// Ends every session of a user (a password change, deactivation).
pub async fn destroy_all_for_user(conn: &mut PgConnection, user_id: Uuid) -> Result<()> {
    sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user_id).execute(conn).await?;
    Ok(())
}

/// One of a person's sessions, as their account page lists it. `id` names it without being it
/// (the session id itself is never stored).
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: Uuid,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The session the list was asked for from.
    pub current: bool,
}

/// The live sessions of the signed-in person, newest first.
pub async fn list(pool: &PgPool, user_id: Uuid, current_token: &str) -> Result<Vec<SessionInfo>> {
    Ok(sqlx::query_as!(
        SessionInfo,
        r#"SELECT public_id AS id, user_agent, host(client_ip) AS client_ip, created_at, last_seen_at,
                  id_hash = $2 AS "current!"
           FROM sessions WHERE user_id = $1 AND expires_at > now() AND absolute_expires_at > now()
           ORDER BY last_seen_at DESC, created_at DESC"#,
        user_id,
        crypto::token_hash(current_token),
    )
    .fetch_all(pool)
    .await?)
}

/// Signs out one session of the person (not found when it is not theirs).
pub async fn sign_out_one(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<()> {
    let ended = sqlx::query!("DELETE FROM sessions WHERE user_id = $1 AND public_id = $2", user_id, id)
        .execute(pool)
        .await?
        .rows_affected();
    if ended == 0 {
        return Err(Error::NotFound("session"));
    }
    Ok(())
}

/// Signs out every session of the person but the one asking; returns how many ended.
pub async fn sign_out_others(pool: &PgPool, user_id: Uuid, current_token: &str) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2",
        user_id,
        crypto::token_hash(current_token)
    )
    .execute(pool)
    .await?
    .rows_affected())
}

fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE_NAME } else { COOKIE_NAME }
}

/// The `Set-Cookie` value that stores `token`: HttpOnly, SameSite=Lax, and over https Secure
/// with the `__Host-` prefix. It lasts as long as a session can; the server ends it sooner when
/// it sits idle.
pub fn cookie(token: &SessionToken, secure: bool) -> String {
    format!(
        "{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        cookie_name(secure),
        token.expose(),
        ABSOLUTE_LIFETIME.num_seconds(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clearing_cookie(secure: bool) -> String {
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// Finds the session id in a `Cookie` header value (under either name).
pub fn token_from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME || *name == SECURE_COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Deletes sessions that expired (run by a periodic job).
pub async fn purge_expired(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query!("DELETE FROM sessions WHERE expires_at <= now() OR absolute_expires_at <= now()")
        .execute(pool)
        .await?
        .rows_affected())
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
        assert!(c.contains(&format!("Max-Age={}", 7 * 24 * 3600)));
        let secure = cookie(&token, true);
        assert!(secure.starts_with("__Host-remit_session=abc; Path=/;") && secure.ends_with("; Secure"));
        assert!(!secure.contains("Domain"), "__Host- cookies have no Domain");
        assert!(clearing_cookie(false).contains("Max-Age=0"));
        assert!(clearing_cookie(true).starts_with("__Host-remit_session=;"));
    }

    #[test]
    fn finds_the_session_among_other_cookies() {
        assert_eq!(token_from_cookie_header("a=1; remit_session=xyz; b=2"), Some("xyz"));
        assert_eq!(token_from_cookie_header("a=1; __Host-remit_session=xyz"), Some("xyz"));
        assert_eq!(token_from_cookie_header("remit_session="), None);
        assert_eq!(token_from_cookie_header("other=1"), None);
    }
}
