//! Password hashing with Argon2id (OWASP's parameters: 19 MiB, 2 passes, 1 lane).

use std::sync::LazyLock;

use anyhow::Context as _;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
    password_hash::SaltString,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::{Error, Result};

/// ASVS 2.1.1: at least 12 characters.
pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 1024;
/// zxcvbn's score a new password must reach: 3 means about 10^10 guesses, "safely unguessable:
/// moderate protection from offline slow-hash scenario".
const MIN_STRENGTH: zxcvbn::Score = zxcvbn::Score::Three;
/// Only this much of a password is judged for strength: zxcvbn's matching grows quickly with
/// length, and any password this long that passed the length rule is long enough anyway.
const STRENGTH_CHECKED_CHARS: usize = 100;

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

/// Rules for a new password; the message says what to change. `personal` holds what a guesser
/// would try first (the person's email and name), which the password must not lean on.
pub fn validate_new(password: &SecretString, personal: &[&str]) -> Result<()> {
    let secret = password.expose_secret();
    let len = secret.chars().count();
    if len < MIN_LENGTH {
        return Err(Error::invalid("password", format!("Choose a password of at least {MIN_LENGTH} characters.")));
    }
    if len > MAX_LENGTH {
        return Err(Error::invalid("password", format!("Passwords can be at most {MAX_LENGTH} characters.")));
    }
    if secret.contains('\0') {
        return Err(Error::invalid("password", "Passwords cannot contain the NUL character."));
    }
    let judged: String = secret.chars().take(STRENGTH_CHECKED_CHARS).collect();
    let mut inputs: Vec<&str> = personal.to_vec();
    let parts: Vec<&str> = personal.iter().flat_map(|p| p.split(|c: char| !c.is_alphanumeric())).collect();
    inputs.extend(parts.into_iter().filter(|p| p.len() >= 3));
    inputs.push("remit");
    let strength = zxcvbn::zxcvbn(&judged, &inputs);
    if strength.score() < MIN_STRENGTH {
        let hint = strength
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "It would be guessed too easily.".to_owned());
        return Err(Error::invalid(
            "password",
            format!(
                "This password is too easy to guess. {hint} Add more words or characters that are not a \
                 common pattern, for example three or four unrelated words."
            ),
        ));
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
        let check = |p: &str| validate_new(&SecretString::from(p.to_owned()), &[]);
        assert!(check("short").is_err());
        assert!(check("tenletters").is_err(), "ASVS 2.1.1: at least 12 characters");
        assert!(check(&"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(check("correct horse battery staple").is_ok());
        assert!(check("carbon-violet-harbour-94").is_ok());
    }

    #[test]
    fn common_and_personal_passwords_are_refused() {
        for weak in ["password1234", "Password1234", "qwertyuiop123", "123456789012", "aaaaaaaaaaaa", "iloveyou2024!"] {
            let err = validate_new(&SecretString::from(weak.to_owned()), &[]).unwrap_err();
            assert_eq!(err.field(), Some("password"), "{weak}");
            assert!(err.public_message().contains("too easy to guess"), "{weak}: {}", err.public_message());
        }
        let personal = ["casey.consultant@northwind.example", "Casey Consultant"];
        for guessable in ["casey.consultant@northwind.example", "caseyconsultant", "consultantcasey"] {
            assert!(validate_new(&SecretString::from(guessable.to_owned()), &personal).is_err(), "{guessable}");
        }
    }
}
