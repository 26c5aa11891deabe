//! Password sign-in, throttled per (email, client address) and per client address across
//! every server process, in a way that cannot be turned against the account's owner.
//!
//! - 5 failures for one email from one address within 15 minutes refuse that pair until the
//!   oldest leaves the window: someone guessing one account is slowed.
//! - 20 failures from one address within 15 minutes, whatever the emails, refuse that address:
//!   someone trying one password against many accounts is slowed.
//! - Failures from other addresses never lock the owner out; instead, when an account gathers
//!   5 failures within an hour, its owner is told by email (at most once a day).
//!
//! An attempt is recorded (as pending) under a lock on the address before the password is
//! checked, so concurrent attempts count against the limits; the Argon2 check itself runs with
//! no database connection or lock held, a few at a time per process, so sign-ins can never take
//! the pool from other requests.

use std::{sync::LazyLock, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgConnection;
use tokio::sync::Semaphore;

use super::{
    Role, password,
    session::{self, Client, SessionToken},
};
use crate::{
    Services,
    error::{Error, Result, human_duration},
    mail::{self, OutgoingEmail},
};

/// Failures for one email from one address within the window.
pub const MAX_PAIR_FAILURES: i64 = 5;
/// Failures from one address within the window, whatever the emails.
pub const MAX_ADDRESS_FAILURES: i64 = 20;
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
/// Failures for one account within an hour, from anywhere, that make Remit tell its owner.
pub const NOTIFY_AFTER_FAILURES: i64 = 5;
pub const MAX_EMAIL_LENGTH: usize = 254;

/// Password checks running at once in this process: Argon2 is CPU- and memory-bound (19 MiB
/// each), so more than a few at a time only queue on the cores; waiting here holds nothing.
static CHECKS: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Semaphore::new(cores.clamp(2, 8))
});

/// The normalised form under which an email is looked up and throttled.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Checks the shape of an email address well enough to give a useful message.
pub fn validate_email(email: &str) -> Result<()> {
    let email = email.trim();
    if email.is_empty() {
        return Err(Error::invalid("email", "Enter your email address."));
    }
    if email.chars().count() > MAX_EMAIL_LENGTH {
        return Err(Error::invalid("email", format!("Email addresses can be at most {MAX_EMAIL_LENGTH} characters.")));
    }
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    }) && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(Error::invalid("email", "Enter an email address like name@example.com."));
    }
    Ok(())
}

/// A successful sign-in: the new session id and the role it was opened for.
pub struct SignedIn {
    pub token: SessionToken,
    pub role: Role,
}

/// What the throttle decides before a password is checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Throttle {
    Allow,
    /// Too many failures for this email from this address; retry after the wait.
    Pair(StdDuration),
    /// Too many failures from this address.
    Address(StdDuration),
}

/// Failures (and pending attempts) in the window, and when the oldest of them leaves it.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    pub count: i64,
    pub oldest: Option<DateTime<Utc>>,
}

impl Count {
    fn wait(&self, now: DateTime<Utc>) -> StdDuration {
        let frees = self.oldest.unwrap_or(now) + FAILURE_WINDOW;
        (frees - now).to_std().unwrap_or(StdDuration::from_secs(1)).max(StdDuration::from_secs(1))
    }
}

/// The throttle's rule, given the counts for the (email, address) pair and for the address.
pub fn throttle(pair: Count, address: Count, now: DateTime<Utc>) -> Throttle {
    if address.count >= MAX_ADDRESS_FAILURES {
        Throttle::Address(address.wait(now))
    } else if pair.count >= MAX_PAIR_FAILURES {
        Throttle::Pair(pair.wait(now))
    } else {
        Throttle::Allow
    }
}

/// Signs in with email and password, returning a new session id.
pub async fn sign_in(services: &Services, email: &str, password: SecretString, client: &Client) -> Result<SignedIn> {
    validate_email(email)?;
    if password.expose_secret().is_empty() {
        return Err(Error::invalid("password", "Enter your password."));
    }
    if password.expose_secret().chars().count() > password::MAX_LENGTH {
        return Err(Error::invalid(
            "password",
            format!("Passwords can be at most {} characters.", password::MAX_LENGTH),
        ));
    }
    let key = email_key(email);
    let _check = CHECKS.acquire().await.map_err(|_| anyhow::anyhow!("the sign-in queue closed"))?;

    let attempt = claim_attempt(services, &key, client).await?;
    let user = sqlx::query!(
        r#"SELECT u.id, u.role, u.password_hash, u.deactivated_at IS NOT NULL AS "deactivated!",
                  t.status = 'suspended' AS "suspended?"
           FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE lower(u.email) = $1"#,
        key
    )
    .fetch_optional(&services.pool)
    .await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    // No connection is held here: the pool serves other requests while Argon2 runs.
    let matched = password::verify(password, stored).await?;
    let Some(user) = user.filter(|_| matched) else {
        record_failure(services, attempt, &key).await?;
        tracing::info!("sign-in refused: wrong email or password");
        return Err(Error::WrongCredentials);
    };
    // The password was right: whatever follows is not a failure to count.
    let mut tx = services.pool.begin().await?;
    sqlx::query!(
        "DELETE FROM sign_in_failures WHERE email_key = $1 AND client_ip IS NOT DISTINCT FROM $2::text::inet",
        key,
        client.ip.map(|ip| ip.to_string())
    )
    .execute(&mut *tx)
    .await?;
    if user.deactivated {
        tx.commit().await?;
        return Err(Error::AccountClosed(
            "This account has been deactivated. Ask your organisation's owner to reactivate it.",
        ));
    }
    if user.suspended == Some(true) {
        tx.commit().await?;
        return Err(Error::AccountClosed(
            "Your organisation's Remit account is suspended. Contact Remit's support for details.",
        ));
    }
    let role = Role::parse(&user.role).ok_or_else(|| anyhow::anyhow!("user {} has an unknown role", user.id))?;
    let token = session::create(&mut tx, user.id, client).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "signed in");
    Ok(SignedIn { token, role })
}

/// Checks a signed-in person's current password (before it is changed): a wrong one counts as a
/// failed sign-in, under the same limits, so a stolen session cannot be used to guess it.
pub async fn confirm_password(services: &Services, email: &str, password: SecretString, client: &Client) -> Result<()> {
    if password.expose_secret().is_empty() || password.expose_secret().chars().count() > password::MAX_LENGTH {
        return Err(Error::invalid("current_password", "Enter your current password."));
    }
    let key = email_key(email);
    let _check = CHECKS.acquire().await.map_err(|_| anyhow::anyhow!("the sign-in queue closed"))?;
    let attempt = claim_attempt(services, &key, client).await?;
    let stored = sqlx::query_scalar!("SELECT password_hash FROM users WHERE lower(email) = $1", key)
        .fetch_optional(&services.pool)
        .await?
        .flatten();
    if password::verify(password, stored).await? {
        sqlx::query!("DELETE FROM sign_in_failures WHERE id = $1", attempt).execute(&services.pool).await?;
        return Ok(());
    }
    record_failure(services, attempt, &key).await?;
    Err(Error::invalid("current_password", "Your current password is not right."))
}

/// Counts the attempt against the limits (under the address's lock, so concurrent attempts
/// cannot slip past them) and records it as pending; 429 when a limit is reached.
async fn claim_attempt(services: &Services, key: &str, client: &Client) -> Result<i64> {
    let ip = client.ip.map(|ip| ip.to_string());
    let mut tx = services.pool.begin().await?;
    let lock = match &ip {
        Some(ip) => format!("sign_in:ip:{ip}"),
        None => format!("sign_in:email:{key}"),
    };
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", lock).execute(&mut *tx).await?;
    let now = Utc::now();
    let since = now - FAILURE_WINDOW;
    let pair = sqlx::query!(
        r#"SELECT count(*) AS "count!", min(failed_at) AS oldest FROM sign_in_failures
           WHERE email_key = $1 AND client_ip IS NOT DISTINCT FROM $2::text::inet AND failed_at > $3"#,
        key,
        ip,
        since
    )
    .fetch_one(&mut *tx)
    .await?;
    let address = match &ip {
        Some(ip) => {
            let row = sqlx::query!(
                r#"SELECT count(*) AS "count!", min(failed_at) AS oldest FROM sign_in_failures
                   WHERE client_ip = $1::text::inet AND failed_at > $2"#,
                ip,
                since
            )
            .fetch_one(&mut *tx)
            .await?;
            Count { count: row.count, oldest: row.oldest }
        }
        None => Count { count: 0, oldest: None },
    };
    match throttle(Count { count: pair.count, oldest: pair.oldest }, address, now) {
        Throttle::Allow => {}
        Throttle::Pair(retry_after) => {
            return Err(Error::RateLimited {
                message: format!(
                    "Too many failed sign-in attempts for this email. Try again in {}, or reset your password.",
                    human_duration(retry_after)
                ),
                retry_after,
            });
        }
        Throttle::Address(retry_after) => {
            return Err(Error::RateLimited {
                message: format!(
                    "Too many failed sign-in attempts from your network. Try again in {}.",
                    human_duration(retry_after)
                ),
                retry_after,
            });
        }
    }
    let id = sqlx::query_scalar!(
        "INSERT INTO sign_in_failures (email_key, client_ip, pending) VALUES ($1, $2::text::inet, true) RETURNING id",
        key,
        ip
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Makes the pending attempt a failure, and tells the account's owner when failures pile up.
async fn record_failure(services: &Services, attempt: i64, key: &str) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    sqlx::query!("UPDATE sign_in_failures SET pending = false, failed_at = now() WHERE id = $1", attempt)
        .execute(&mut *tx)
        .await?;
    notify_owner_if_unusual(&mut tx, services, key).await?;
    tx.commit().await?;
    Ok(())
}

async fn notify_owner_if_unusual(conn: &mut PgConnection, services: &Services, key: &str) -> Result<()> {
    let recent = sqlx::query!(
        r#"SELECT count(*) AS "count!", count(DISTINCT client_ip) AS "addresses!",
                  string_agg(DISTINCT host(client_ip), ', ') AS list
           FROM sign_in_failures WHERE email_key = $1 AND NOT pending AND failed_at > now() - interval '1 hour'"#,
        key
    )
    .fetch_one(&mut *conn)
    .await?;
    if recent.count < NOTIFY_AFTER_FAILURES {
        return Ok(());
    }
    // Claims the day's notification: only the attempt that flips the mark sends it.
    let Some(owner) = sqlx::query!(
        "UPDATE users SET failed_sign_ins_notified_at = now()
         WHERE lower(email) = $1 AND deactivated_at IS NULL
           AND (failed_sign_ins_notified_at IS NULL OR failed_sign_ins_notified_at < now() - interval '1 day')
         RETURNING email, tenant_id",
        key
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(());
    };
    let addresses = recent.list.unwrap_or_else(|| "unknown addresses".into());
    mail::enqueue(
        conn,
        OutgoingEmail {
            tenant_id: owner.tenant_id,
            to: owner.email,
            subject: "Failed sign-ins to your Remit account".into(),
            text_body: format!(
                "Someone tried to sign in to your Remit account with a wrong password {} times in the last hour, \
                 from {} address(es): {addresses}.\n\n\
                 If it was you, there is nothing to do. If not, your account stays open to you: those addresses \
                 are slowed down, not you. To be safe, choose a new password at {}.\n",
                recent.count,
                recent.addresses,
                services.settings.public_url("/forgot-password"),
            ),
            attachments: vec![],
            links: None,
        },
    )
    .await?;
    tracing::warn!("unusual failed sign-ins: the account's owner was told");
    Ok(())
}

/// Deletes attempts that no longer count towards the limits.
pub async fn purge_old_failures(pool: &sqlx::PgPool) -> Result<u64> {
    Ok(sqlx::query!("DELETE FROM sign_in_failures WHERE failed_at <= $1", Utc::now() - Duration::hours(2))
        .execute(pool)
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_validation_explains_itself() {
        assert_eq!(validate_email("").unwrap_err().public_message(), "Enter your email address.");
        assert!(validate_email("no-at-sign").is_err());
        assert!(validate_email("a@b").is_err());
        assert!(validate_email("with space@example.com").is_err());
        assert!(validate_email("nul\0@example.com").is_err());
        assert!(validate_email(&format!("{}@example.com", "x".repeat(250))).is_err());
        assert!(validate_email(" Consultant@Northwind.Example ").is_ok());
        assert_eq!(email_key(" Consultant@Northwind.Example "), "consultant@northwind.example");
    }

    #[test]
    fn the_throttle_limits_pairs_and_addresses_separately() {
        let now = Utc::now();
        let count = |count, minutes_ago: i64| Count { count, oldest: Some(now - Duration::minutes(minutes_ago)) };
        assert_eq!(throttle(count(4, 10), count(19, 10), now), Throttle::Allow);
        assert_eq!(throttle(count(5, 10), count(5, 10), now), Throttle::Pair(StdDuration::from_secs(300)));
        assert_eq!(throttle(count(0, 0), count(20, 14), now), Throttle::Address(StdDuration::from_secs(60)));
        // The address limit is told first: it is the one that also covers other emails.
        assert!(matches!(throttle(count(5, 1), count(20, 1), now), Throttle::Address(_)));
    }
}
