//! Random tokens, their hashes, and encryption of secrets at rest.

use aes_gcm::{
    Aes256Gcm, KeyInit as _, Nonce,
    aead::{Aead as _, AeadCore as _, OsRng},
};
use anyhow::{Context as _, anyhow};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::config::EncryptionKey;

/// A new unguessable token: 32 random bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a token: what Remit stores instead of the token itself.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Hex SHA-256 of arbitrary bytes (receipts, fingerprints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Encrypts `plaintext` with AES-256-GCM; the output is nonce (12 bytes) followed by ciphertext.
pub fn encrypt(key: &EncryptionKey, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
    let cipher = Aes256Gcm::new(key.expose().into());
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = cipher.encrypt(&nonce, plaintext).map_err(|_| anyhow!("encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

pub fn decrypt(key: &EncryptionKey, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
    if sealed.len() < 12 {
        return Err(anyhow!("sealed secret is too short"));
    }
    let (nonce, ciphertext) = sealed.split_at(12);
    Aes256Gcm::new(key.expose().into())
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .map_err(|_| anyhow!("sealed secret could not be decrypted (wrong REMIT_ENCRYPTION_KEY?)"))
}

pub fn decrypt_string(key: &EncryptionKey, sealed: &[u8]) -> anyhow::Result<String> {
    String::from_utf8(decrypt(key, sealed)?).context("sealed secret is not UTF-8")
}

/// A value derived from the installation's key for `purpose` (HMAC-SHA256, base64url): the same
/// on every start, different on every installation, and telling nothing of the key. Demo
/// passwords, the demo lot's link and the development sandbox's keys come from it.
pub fn derived(key: &EncryptionKey, purpose: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).expect("HMAC accepts any key length");
    mac.update(purpose.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn derived_values_are_stable_per_key_and_purpose() {
        let key = EncryptionKey::from_bytes([7; 32]);
        assert_eq!(derived(&key, "a"), derived(&key, "a"));
        assert_ne!(derived(&key, "a"), derived(&key, "b"));
        assert_ne!(derived(&key, "a"), derived(&EncryptionKey::from_bytes([8; 32]), "a"));
        assert_eq!(derived(&key, "a").len(), 43);
    }

    #[test]
    fn encryption_round_trips_and_detects_tampering() {
        let key = EncryptionKey::from_bytes([7; 32]);
        let sealed = encrypt(&key, b"whsec_abc").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
        assert_eq!(decrypt_string(&key, &sealed).unwrap(), "whsec_abc");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(decrypt(&key, &tampered).is_err());
        assert!(decrypt(&EncryptionKey::from_bytes([8; 32]), &sealed).is_err());
    }
}
