//! Password sign-in, throttled per email address across every server process.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgPool;

use super::{Role, password, session, session::SessionToken};
use crate::error::{Error, Result, human_duration};

pub const MAX_FAILURES: i64 = 5;
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
pub const MAX_EMAIL_LENGTH: usize = 254;

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
    }) && !email.chars().any(char::is_whitespace);
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

/// Signs in with email and password, returning a new session id. After [`MAX_FAILURES`]
/// failures for an email within [`FAILURE_WINDOW`], every further try is refused with 429
/// until the oldest failure leaves the window.
pub async fn sign_in(pool: &PgPool, email: &str, password: SecretString) -> Result<SignedIn> {
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

    let mut tx = pool.begin().await?;
    // Serialise attempts for one email so concurrent tries cannot slip past the limit.
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended('sign_in:' || $1, 0))", key).execute(&mut *tx).await?;
    let window_start = Utc::now() - FAILURE_WINDOW;
    let failures = sqlx::query!(
        r#"SELECT count(*) AS "count!", min(failed_at) AS oldest
           FROM sign_in_failures WHERE email_key = $1 AND failed_at > $2"#,
        key,
        window_start,
    )
    .fetch_one(&mut *tx)
    .await?;
    if failures.count >= MAX_FAILURES {
        let oldest = failures.oldest.unwrap_or_else(Utc::now);
        let retry_after = (oldest + FAILURE_WINDOW - Utc::now()).to_std().unwrap_or(StdDuration::from_secs(1));
        return Err(Error::RateLimited {
            message: format!(
                "Too many failed sign-in attempts for this email. Try again in {}, or reset your password.",
                human_duration(retry_after)
            ),
            retry_after,
        });
    }

    let user = sqlx::query!("SELECT id, role, password_hash FROM users WHERE lower(email) = $1", key)
        .fetch_optional(&mut *tx)
        .await?;
    let (account, stored) = match user {
        Some(u) => (Some((u.id, u.role)), u.password_hash),
        None => (None, None),
    };
    let matched = password::verify(password, stored).await?;
    let Some((user_id, role)) = account.filter(|_| matched) else {
        sqlx::query!("INSERT INTO sign_in_failures (email_key) VALUES ($1)", key).execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!("sign-in refused: wrong email or password");
        return Err(Error::WrongCredentials);
    };

    sqlx::query!("DELETE FROM sign_in_failures WHERE email_key = $1", key).execute(&mut *tx).await?;
    let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("user {user_id} has an unknown role"))?;
    let token = session::create(&mut tx, user_id).await?;
    tx.commit().await?;
    tracing::info!(%user_id, "signed in");
    Ok(SignedIn { token, role })
}

/// Deletes failures that no longer count towards the limit.
pub async fn purge_old_failures(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query!("DELETE FROM sign_in_failures WHERE failed_at <= $1", Utc::now() - FAILURE_WINDOW)
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
        assert!(validate_email(&format!("{}@example.com", "x".repeat(250))).is_err());
        assert!(validate_email(" Consultant@Northwind.Example ").is_ok());
        assert_eq!(email_key(" Consultant@Northwind.Example "), "consultant@northwind.example");
    }
}
