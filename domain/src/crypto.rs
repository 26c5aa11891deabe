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

/// What starts a sealed value that names its key: then the key's id (8 bytes), the nonce (12)
/// and the ciphertext. Values sealed before keys had ids are the nonce and ciphertext alone.
const MARKER: [u8; 2] = [0xff, b'K'];
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;

/// A key's id: the start of its SHA-256, which tells nothing of the key.
fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::digest(key);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

/// Encrypts `plaintext` with AES-256-GCM under the current key, naming the key.
pub fn encrypt(key: &EncryptionKey, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
    let cipher = Aes256Gcm::new(key.expose().into());
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = cipher.encrypt(&nonce, plaintext).map_err(|_| anyhow!("encryption failed"))?;
    let mut out = MARKER.to_vec();
    out.extend_from_slice(&key_id(key.expose()));
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

fn open(key: &[u8; 32], nonce_and_ciphertext: &[u8]) -> Option<Vec<u8>> {
    if nonce_and_ciphertext.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = nonce_and_ciphertext.split_at(NONCE_LEN);
    Aes256Gcm::new(key.into()).decrypt(Nonce::from_slice(nonce), ciphertext).ok()
}

/// Opens a sealed value with the key it names, or (sealed before keys had ids) with whichever of
/// the current and previous keys opens it.
pub fn decrypt(key: &EncryptionKey, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
    let keys: Vec<&[u8; 32]> = std::iter::once(key.expose()).chain(key.previous()).collect();
    if sealed.len() >= MARKER.len() + KEY_ID_LEN && sealed[..MARKER.len()] == MARKER {
        let id = &sealed[MARKER.len()..MARKER.len() + KEY_ID_LEN];
        if let Some(named) = keys.iter().find(|k| key_id(k) == id)
            && let Some(plain) = open(named, &sealed[MARKER.len() + KEY_ID_LEN..])
        {
            return Ok(plain);
        }
    }
    keys.iter()
        .find_map(|k| open(k, sealed))
        .ok_or_else(|| anyhow!("sealed secret could not be decrypted (wrong REMIT_ENCRYPTION_KEY?)"))
}

/// Whether a sealed value names the current key (so re-encrypting it would change nothing).
pub fn sealed_with_current(key: &EncryptionKey, sealed: &[u8]) -> bool {
    sealed.len() > MARKER.len() + KEY_ID_LEN
        && sealed[..MARKER.len()] == MARKER
        && sealed[MARKER.len()..MARKER.len() + KEY_ID_LEN] == key_id(key.expose())
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

    #[test]
    fn a_new_key_opens_what_the_previous_one_sealed_and_seals_under_its_own_id() {
        let old = EncryptionKey::from_bytes([1; 32]);
        let sealed_before = encrypt(&old, b"whsec_old").unwrap();
        let rotated = EncryptionKey::from_bytes([2; 32]).with_previous([1; 32]);
        assert_eq!(decrypt_string(&rotated, &sealed_before).unwrap(), "whsec_old");
        assert!(!sealed_with_current(&rotated, &sealed_before));
        let sealed_now = encrypt(&rotated, b"whsec_new").unwrap();
        assert!(sealed_with_current(&rotated, &sealed_now));
        // Once the previous key is gone, only what the new one sealed opens.
        let alone = EncryptionKey::from_bytes([2; 32]);
        assert_eq!(decrypt_string(&alone, &sealed_now).unwrap(), "whsec_new");
        assert!(decrypt(&alone, &sealed_before).is_err());
    }

    #[test]
    fn values_sealed_before_keys_had_ids_still_open() {
        // nonce || ciphertext, as Remit sealed values before.
        let key = EncryptionKey::from_bytes([3; 32]);
        let cipher = Aes256Gcm::new(key.expose().into());
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut legacy = nonce.to_vec();
        legacy.extend_from_slice(&cipher.encrypt(&nonce, b"links".as_slice()).unwrap());
        assert_eq!(decrypt(&key, &legacy).unwrap(), b"links");
        let rotated = EncryptionKey::from_bytes([4; 32]).with_previous([3; 32]);
        assert_eq!(decrypt(&rotated, &legacy).unwrap(), b"links");
        assert!(!sealed_with_current(&rotated, &legacy));
    }
}
