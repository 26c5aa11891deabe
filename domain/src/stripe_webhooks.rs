//! The one intake for Stripe's webhook events: the signature is checked over the raw body, the
//! event is stored once by id, and what it changes is applied in the same transaction.

use chrono::{DateTime, TimeZone as _, Utc};
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use sqlx::PgConnection;

use crate::{
    Services,
    error::{Error, Result},
};

/// How old a signature may be, in seconds (Stripe's default tolerance).
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a delivery was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    Stale,
    Mismatch,
}

impl SignatureError {
    pub fn message(&self) -> &'static str {
        match self {
            SignatureError::Missing => "Missing Stripe-Signature header.",
            SignatureError::Malformed => "Malformed Stripe-Signature header.",
            SignatureError::Stale => "The signature's timestamp is outside the tolerance.",
            SignatureError::Mismatch => "No signature matches the payload.",
        }
    }
}

/// Checks `Stripe-Signature: t=…,v1=…[,v1=…]` against the raw payload with each secret:
/// valid when the timestamp is within the tolerance and any `v1` matches (compared in constant time).
pub fn verify(secrets: &[SecretString], payload: &[u8], header: Option<&str>, now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
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
    for secret in secrets {
        for signature in &signatures {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(payload);
            // verify_slice compares in constant time.
            if mac.verify_slice(signature).is_ok() {
                return Ok(());
            }
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

impl Envelope {
    pub fn created_at(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.created, 0).single().unwrap_or_else(Utc::now)
    }
}

/// What the intake did with a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Applied,
    /// Seen before (a repeated or concurrent delivery): nothing changed.
    Duplicate,
}

/// Verifies, stores and applies one delivery. A signature problem is `Invalid` (400) and
/// nothing is stored.
pub async fn receive(services: &Services, payload: &[u8], signature: Option<&str>) -> Result<Received> {
    let secrets = &services.stripe.config().webhook_secrets;
    if let Err(err) = verify(secrets, payload, signature, Utc::now().timestamp()) {
        tracing::warn!(reason = ?err, "webhook refused");
        return Err(Error::BadRequest(err.message().into()));
    }
    let envelope: Envelope =
        serde_json::from_slice(payload).map_err(|_| Error::BadRequest("The payload is not a Stripe event.".into()))?;
    let raw: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| Error::BadRequest("The payload is not JSON.".into()))?;

    // What the event is about is read from Stripe before the transaction, so no database
    // transaction waits on the network. A delivery already stored skips the read.
    let seen = sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM stripe_events WHERE id = $1)", envelope.id)
        .fetch_one(&services.pool)
        .await?
        .unwrap_or(false);
    if seen {
        tracing::info!(event = %envelope.id, kind = %envelope.kind, "duplicate webhook ignored");
        return Ok(Received::Duplicate);
    }
    let billing = crate::billing::events::read_current(services, &envelope).await?;
    let payment = crate::checkout::events::read_current(services, &envelope).await?;

    let mut tx = services.pool.begin().await?;
    let inserted = sqlx::query!(
        "INSERT INTO stripe_events (id, type, account, livemode, api_version, created, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        envelope.id,
        envelope.kind,
        envelope.account,
        envelope.livemode,
        envelope.api_version,
        envelope.created_at(),
        raw,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        tracing::info!(event = %envelope.id, kind = %envelope.kind, "duplicate webhook ignored");
        return Ok(Received::Duplicate);
    }
    apply(&mut tx, services, &envelope).await?;
    if let Some(read) = &billing {
        crate::billing::events::apply(&mut tx, services, &envelope, read).await?;
    }
    if let Some(current) = &payment {
        crate::checkout::events::apply(&mut tx, &envelope, current).await?;
    }
    tx.commit().await?;
    tracing::info!(event = %envelope.id, kind = %envelope.kind, "webhook applied");
    Ok(Received::Applied)
}

/// Applies an event's changes on the intake's transaction. Types Remit does not act on are
/// kept (in `stripe_events`) and acknowledged.
async fn apply(conn: &mut PgConnection, services: &Services, envelope: &Envelope) -> Result<()> {
    match envelope.kind.as_str() {
        "account.updated" => {
            let (account, created, livemode) = (&envelope.data.object, envelope.created, envelope.livemode);
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
    }
}
