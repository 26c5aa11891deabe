//! Password hashing with Argon2id (OWASP's parameters: 19 MiB, 2 passes, 1 lane).

use std::sync::LazyLock;

use anyhow::Context as _;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
    password_hash::SaltString,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::{Error, Result};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 1024;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash to verify against when the account does not exist, so that unknown emails take as
/// long as wrong passwords.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher().hash_password(b"remit-dummy-password", &salt).expect("hashing a constant works").to_string()
});

/// Rules for a new password; the message says what to change.
pub fn validate_new(password: &SecretString) -> Result<()> {
    let len = password.expose_secret().chars().count();
    if len < MIN_LENGTH {
        return Err(Error::invalid("password", format!("Choose a password of at least {MIN_LENGTH} characters.")));
    }
    if len > MAX_LENGTH {
        return Err(Error::invalid("password", format!("Passwords can be at most {MAX_LENGTH} characters.")));
    }
    Ok(())
}

pub async fn hash(password: SecretString) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        hasher()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
    })
    .await
    .context("password hashing task failed")?
    .map_err(Error::Internal)
}

/// Verifies `password` against `stored` (or against a dummy hash when there is no account).
pub async fn verify(password: SecretString, stored: Option<String>) -> Result<bool> {
    let matched = tokio::task::spawn_blocking(move || {
        let exists = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored password hash is malformed: {e}"))?;
        let ok = hasher().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok();
        anyhow::Ok(exists && ok)
    })
    .await
    .context("password verification task failed")??;
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id() {
        let h = hash(SecretString::from("correct horse battery")).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(SecretString::from("correct horse battery"), Some(h.clone())).await.unwrap());
        assert!(!verify(SecretString::from("wrong horse battery"), Some(h)).await.unwrap());
        assert!(!verify(SecretString::from("remit-dummy-password"), None).await.unwrap());
    }

    #[test]
    fn new_passwords_have_bounds() {
        assert!(validate_new(&SecretString::from("short")).is_err());
        assert!(validate_new(&SecretString::from("x".repeat(MAX_LENGTH + 1))).is_err());
        assert!(validate_new(&SecretString::from("long enough pw")).is_ok());
    }
}
