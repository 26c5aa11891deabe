//! Endpoint secrets and the signatures made with them.
//!
//! Deliveries are signed per the Standard Webhooks specification (standardwebhooks.com), so a
//! tenant verifies them with the official `standardwebhooks` libraries: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//! keyed with the secret's bytes (`whsec_` + base64). While a rotation's overlap lasts, the
//! header carries one signature per secret, space-separated, and a receiver holding either secret
//! accepts the delivery.
//!
//! `Remit-Signature` (`t=<time>,v1=<hex HMAC-SHA256 of "t.body">`, keyed with the whole secret
//! text) is still sent for receivers written before; docs/webhooks.md tells them to switch.

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

/// The header of Remit's own signature scheme.
pub const LEGACY_HEADER: &str = "Remit-Signature";

const PREFIX: &str = "whsec_";

/// A new endpoint secret: `whsec_` and 24 random bytes in base64 (the Standard Webhooks form).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The HMAC key of a secret: its base64 part decoded. Secrets made before Remit signed per
/// Standard Webhooks are URL-safe base64; they are read that way.
fn key(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix(PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(encoded))
        .unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key")
}

/// The `webhook-signature` value for a delivery of message `id` at Unix time `timestamp`: one
/// `v1,<base64>` per secret (the current one first).
pub fn standard_signature(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            let mut mac = mac(&key(secret));
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `Remit-Signature` value: `t=<timestamp>` and one `v1=<hex>` per secret.
pub fn legacy_signature(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let mut mac = mac(secret.as_bytes());
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    header
}

/// The last four characters of a secret, which is all Remit shows of it after the first time.
pub fn last4(secret: &str) -> String {
    secret.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect()
}

/// A secret as the pages show it.
pub fn masked(last4: &str) -> String {
    format!("{PREFIX}••••••••{last4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_reference_vector() {
        // The example in the Standard Webhooks specification and its libraries' tests.
        let signature = standard_signature(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn an_overlapping_rotation_signs_with_both_secrets() {
        let (new, old) = (new_secret(), new_secret());
        let both = standard_signature(&[&new, &old], "msg_1", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(
            parts,
            [standard_signature(&[&new], "msg_1", 1, b"{}"), standard_signature(&[&old], "msg_1", 1, b"{}")]
        );
        let legacy = legacy_signature(&[&new, &old], 7, b"{}");
        assert!(legacy.starts_with("t=7,v1="));
        assert_eq!(legacy.matches(",v1=").count(), 2);
    }

    #[test]
    fn the_legacy_scheme_is_unchanged() {
        // HMAC-SHA256("whsec_test_secret", "1700000000.{\"id\":\"evt_1\"}"), computed with Python.
        assert_eq!(
            legacy_signature(&["whsec_test_secret"], 1_700_000_000, br#"{"id":"evt_1"}"#),
            "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
        );
    }

    #[test]
    fn new_secrets_are_standard_base64_of_24_bytes() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 24);
        assert_ne!(secret, new_secret());
        assert_eq!(last4("whsec_abcdefgh"), "efgh");
    }
}
