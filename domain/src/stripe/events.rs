//! Stripe's events as they arrive: the signature over the raw body (`Stripe-Signature`) and the
//! envelope every event shares. The intake that stores them and the routing of each event to
//! the code it concerns are in [`crate::stripe_webhooks`].

use chrono::{DateTime, TimeZone as _, Utc};
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// How old a signature may be, in seconds (Stripe's default tolerance).
pub const TOLERANCE_SECONDS: i64 = 300;
/// A `Stripe-Signature` header with more elements than this, or longer than
/// [`MAX_SIGNATURE_HEADER`], is refused unread: Stripe sends a timestamp and a signature per
/// endpoint secret (two while a secret is rolled), so a few dozen leaves room to spare.
pub const MAX_SIGNATURE_ELEMENTS: usize = 32;
pub const MAX_SIGNATURE_HEADER: usize = 4096;
/// The largest event body the intake reads (Stripe's events are well under this).
pub const MAX_EVENT_BYTES: usize = 512 * 1024;

/// Why a delivery was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    TooLarge,
    Stale,
    Mismatch,
}

impl SignatureError {
    pub fn message(&self) -> &'static str {
        match self {
            SignatureError::Missing => "Missing Stripe-Signature header.",
            SignatureError::Malformed => "Malformed Stripe-Signature header.",
            SignatureError::TooLarge => "The Stripe-Signature header has too many elements or is too long.",
            SignatureError::Stale => "The signature's timestamp is outside the tolerance.",
            SignatureError::Mismatch => "No signature matches the payload.",
        }
    }
}

/// Checks `Stripe-Signature: t=…,v1=…[,v1=…]` against the raw payload: valid when the
/// timestamp is within the tolerance and any `v1` equals the HMAC of any secret. The HMAC is
/// computed once per secret (the payload is hashed as many times as there are secrets, never
/// once per `v1`), and each comparison takes constant time.
pub fn verify(secrets: &[SecretString], payload: &[u8], header: Option<&str>, now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > MAX_SIGNATURE_HEADER {
        return Err(SignatureError::TooLarge);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for (index, part) in header.split(',').enumerate() {
        if index >= MAX_SIGNATURE_ELEMENTS {
            return Err(SignatureError::TooLarge);
        }
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", sig)) => signatures.push(hex::decode(sig).map_err(|_| SignatureError::Malformed)?),
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let signed_prefix = format!("{timestamp}.");
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key");
        mac.update(signed_prefix.as_bytes());
        mac.update(payload);
        let expected = mac.finalize().into_bytes();
        // Compare against every v1 without stopping early, so timing tells nothing.
        let matched = signatures.iter().fold(subtle::Choice::from(0), |any, sig| any | expected.as_slice().ct_eq(sig));
        if bool::from(matched) {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The envelope every event has; `data.object` is read by each event's handler.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub livemode: bool,
    pub account: Option<String>,
    pub api_version: Option<String>,
    pub data: EnvelopeData,
}

#[derive(Debug, Deserialize)]
pub struct EnvelopeData {
    pub object: serde_json::Value,
    pub previous_attributes: Option<serde_json::Value>,
}

/// When Stripe made an event (its `created`, in Unix seconds).
pub fn event_time(created: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(created, 0).single().unwrap_or_else(Utc::now)
}

impl Envelope {
    /// When what the event reports happened, by Stripe's clock.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        event_time(self.created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn a_known_vector_verifies() {
        // The sandbox's test vector, computed independently with Python's hmac module.
        let header = "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
        let secrets = [SecretString::from("whsec_test_secret")];
        assert_eq!(verify(&secrets, br#"{"id":"evt_1"}"#, Some(header), 1_700_000_100), Ok(()));
    }

    #[test]
    fn any_matching_v1_and_any_secret_is_enough() {
        let payload = b"{}";
        let good = sign("whsec_b", 100, payload);
        let header = format!("t=100,v1={},v1={good}", sign("whsec_x", 100, payload));
        let secrets = [SecretString::from("whsec_a"), SecretString::from("whsec_b")];
        assert_eq!(verify(&secrets, payload, Some(&header), 100), Ok(()));
    }

    #[test]
    fn forged_stale_and_malformed_signatures_are_refused() {
        let payload = b"{\"id\":\"evt\"}";
        let secrets = [SecretString::from("whsec_a")];
        let sig = sign("whsec_a", 1000, payload);
        assert_eq!(verify(&secrets, payload, None, 1000), Err(SignatureError::Missing));
        assert_eq!(verify(&secrets, payload, Some("garbage"), 1000), Err(SignatureError::Malformed));
        assert_eq!(verify(&secrets, payload, Some("t=1000"), 1000), Err(SignatureError::Malformed));
        assert_eq!(verify(&secrets, payload, Some(&format!("t=1000,v1={sig}")), 1301), Err(SignatureError::Stale));
        assert_eq!(verify(&secrets, payload, Some(&format!("t=1000,v1={sig}")), 1300), Ok(()));
        assert_eq!(
            verify(&secrets, b"{\"id\":\"evu\"}", Some(&format!("t=1000,v1={sig}")), 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(&secrets, payload, Some(&format!("t=999,v1={sig}")), 1000), Err(SignatureError::Mismatch));
        assert_eq!(verify(&secrets, payload, Some("t=1000,v1=abcd"), 1000), Err(SignatureError::Mismatch));
    }

    #[test]
    fn headers_with_too_many_elements_or_bytes_are_refused_unread() {
        let payload = b"{}";
        let secrets = [SecretString::from("whsec_a")];
        let good = sign("whsec_a", 1000, payload);
        let many = format!("t=1000,{}v1={good}", "v1=00,".repeat(MAX_SIGNATURE_ELEMENTS));
        assert!(many.len() < MAX_SIGNATURE_HEADER);
        assert_eq!(verify(&secrets, payload, Some(&many), 1000), Err(SignatureError::TooLarge));
        let long = format!("t=1000,v1={good},x={}", "a".repeat(MAX_SIGNATURE_HEADER));
        assert_eq!(verify(&secrets, payload, Some(&long), 1000), Err(SignatureError::TooLarge));
        let fits = format!("t=1000,{}v1={good}", "v1=00,".repeat(MAX_SIGNATURE_ELEMENTS - 3));
        assert_eq!(verify(&secrets, payload, Some(&fits), 1000), Ok(()));
    }
}
