//! The one intake for Stripe's webhook events: the signature is checked over the raw body and
//! the event is stored once by id, with the job that applies it; the job applies what it
//! changes in one transaction and marks it applied, so each event takes effect exactly once.

use std::net::IpAddr;

use chrono::{DateTime, TimeZone as _, Utc};
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use sqlx::PgConnection;
use subtle::ConstantTimeEq as _;

use crate::{
    Services,
    error::{Error, Result},
    jobs,
};

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
fn event_time(created: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(created, 0).single().unwrap_or_else(Utc::now)
}

impl Envelope {
    /// When what the event reports happened, by Stripe's clock.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        event_time(self.created)
    }
}

/// The fields of an event the intake stores beside its payload. `data` is left for the job
/// that applies the event, so the intake does not build it.
#[derive(Debug, Deserialize)]
struct Head {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    livemode: bool,
    account: Option<String>,
    api_version: Option<String>,
    /// Required (a payload without it is not an event), but not read here.
    #[serde(rename = "data")]
    _data: serde::de::IgnoredAny,
}

/// What the intake did with a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored; a job applies it.
    Accepted,
    /// Seen before (a repeated or concurrent delivery): nothing changed.
    Duplicate,
}

/// Verifies and stores one delivery, and queues the job that applies it, in one transaction;
/// answers without waiting for Stripe or for the change itself. A signature problem is
/// `BadRequest` (400) and nothing is stored; it is recorded as a security event (once an hour
/// per address), since it is either a misconfiguration or someone forging Stripe's events.
pub async fn receive(
    services: &Services,
    payload: &[u8],
    signature: Option<&str>,
    client_ip: Option<IpAddr>,
) -> Result<Received> {
    let secrets = services.stripe.webhook_secrets();
    if let Err(err) = verify(&secrets, payload, signature, Utc::now().timestamp()) {
        tracing::warn!(reason = ?err, "webhook refused");
        crate::security::bad_webhook_signature(&services.pool, client_ip, err.message()).await?;
        return Err(Error::BadRequest(err.message().into()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| Error::BadRequest("The payload is not UTF-8 JSON.".into()))?;
    let head: Head =
        serde_json::from_str(text).map_err(|_| Error::BadRequest("The payload is not a Stripe event.".into()))?;

    let mut tx = services.pool.begin().await?;
    let inserted = sqlx::query!(
        "INSERT INTO stripe_events (id, type, account, livemode, api_version, created, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb) ON CONFLICT (id) DO NOTHING",
        head.id,
        head.kind,
        head.account,
        head.livemode,
        head.api_version,
        event_time(head.created),
        text,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        tracing::info!(event = %head.id, kind = %head.kind, "duplicate webhook ignored");
        return Ok(Received::Duplicate);
    }
    jobs::enqueue(&mut tx, jobs::ApplyStripeEvent { event_id: head.id.clone() }).await?;
    tx.commit().await?;
    tracing::info!(event = %head.id, kind = %head.kind, "webhook accepted");
    Ok(Received::Accepted)
}

/// Applies a stored event (the `apply_stripe_event` job): what it is about is read from Stripe
/// first, outside any transaction, then the changes, the jobs they cause and the event's
/// `applied_at` are written in one transaction. `false` when the event was applied before.
pub async fn apply_stored(services: &Services, event_id: &str) -> Result<bool> {
    let Some(stored) = sqlx::query!("SELECT payload, applied_at FROM stripe_events WHERE id = $1", event_id)
        .fetch_optional(&services.pool)
        .await?
    else {
        return Err(anyhow::anyhow!("Stripe event {event_id} is not stored").into());
    };
    if stored.applied_at.is_some() {
        return Ok(false);
    }
    let envelope: Envelope = serde_json::from_value(stored.payload)
        .map_err(|e| anyhow::anyhow!("stored Stripe event {event_id} is malformed: {e}"))?;
    let billing = crate::billing::events::read_current(services, &envelope).await?;
    let payment = crate::checkout::events::read_current(services, &envelope).await?;

    let mut tx = services.pool.begin().await?;
    // The row lock makes a second job for the same event (there should be none) wait, then skip.
    let unapplied = sqlx::query_scalar!(
        "SELECT applied_at IS NULL AS \"unapplied!\" FROM stripe_events WHERE id = $1 FOR UPDATE",
        event_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if !unapplied {
        return Ok(false);
    }
    apply(&mut tx, services, &envelope).await?;
    if let Some(read) = &billing {
        crate::billing::events::apply(&mut tx, services, &envelope, read).await?;
    }
    if let Some(current) = &payment {
        crate::checkout::events::apply(&mut tx, &envelope, current).await?;
    }
    sqlx::query!("UPDATE stripe_events SET applied_at = now() WHERE id = $1", event_id).execute(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(event = %envelope.id, kind = %envelope.kind, "webhook applied");
    Ok(true)
}

/// Applies an event's changes on the intake's transaction. Types Remit does not act on are
/// kept (in `stripe_events`) and acknowledged.
async fn apply(conn: &mut PgConnection, services: &Services, envelope: &Envelope) -> Result<()> {
    match envelope.kind.as_str() {
        "account.updated" => {
            let (account, created, livemode) = (&envelope.data.object, event_time(envelope.created), envelope.livemode);
            crate::tenant_stripe::apply_account_updated(conn, account, created, livemode).await?;
            crate::payouts::apply_account_updated(conn, services, account, created, livemode).await
        }
        _ => {
            tracing::debug!(kind = %envelope.kind, "no handler for this event type");
            Ok(())
        }
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
