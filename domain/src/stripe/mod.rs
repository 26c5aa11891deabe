//! Remit's connection to Stripe. Every Stripe call goes through async-stripe with these clients;
//! in development and tests they point at the Stripe sandbox, and only the URLs and keys differ.
//!
//! Live and test data never mix: each mode has its own keys and client, and data of a mode
//! without keys is refused (409) rather than paid through the other mode's key.

pub mod events;
pub mod requirements;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::config::{Settings, StripeKeys, StripeSettings};

/// How long one call to Stripe may take (connecting, sending and reading the answer). Nothing
/// Remit does waits on Stripe for longer; a POST that timed out is retried with the same
/// idempotency key, so it cannot act twice.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Where Stripe is and how Remit authenticates to it, per mode.
pub struct StripeConfig {
    /// The REST API, e.g. `https://api.stripe.com/`.
    pub api_base: String,
    /// Connect OAuth (`/oauth/authorize`, `/oauth/token`), e.g. `https://connect.stripe.com`.
    pub connect_base: String,
    /// The Connect.js script that renders embedded onboarding in the browser.
    pub connect_js_url: String,
    pub live: Option<ModeKeys>,
    pub test: Option<ModeKeys>,
}

/// The keys of one mode.
pub struct ModeKeys {
    pub secret_key: SecretString,
    pub publishable_key: String,
    /// Secrets of the webhook endpoints Stripe signs this mode's events with (platform and Connect).
    pub webhook_secrets: Vec<SecretString>,
    pub connect_client_id: String,
}

impl ModeKeys {
    fn from_settings(keys: &StripeKeys) -> Self {
        Self {
            secret_key: keys.secret_key.clone(),
            publishable_key: keys.publishable_key.clone(),
            webhook_secrets: keys
                .webhook_secret
                .expose_secret()
                .split(',')
                .map(|s| SecretString::from(s.trim().to_owned()))
                .collect(),
            connect_client_id: keys.connect_client_id.clone(),
        }
    }
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("connect_base", &self.connect_base)
            .field("live", &self.live.is_some())
            .field("test", &self.test.is_some())
            .finish_non_exhaustive()
    }
}

impl StripeConfig {
    /// The configuration for Stripe from settings; `None` when the sandbox is to be used.
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        match &settings.stripe {
            StripeSettings::Sandbox { .. } => None,
            StripeSettings::Keys { live, test, api_base } => Some(Self {
                api_base: api_base.as_ref().map(|u| u.to_string()).unwrap_or_else(|| "https://api.stripe.com/".into()),
                connect_base: "https://connect.stripe.com".into(),
                connect_js_url: "https://connect-js.stripe.com/v1.0/connect.js".into(),
                live: live.as_deref().map(ModeKeys::from_settings),
                test: test.as_deref().map(ModeKeys::from_settings),
            }),
        }
    }
}

/// One mode's client and keys.
#[derive(Clone)]
pub struct StripeMode {
    client: stripe::Client,
    keys: Arc<ModeKeys>,
    livemode: bool,
}

impl StripeMode {
    pub fn client(&self) -> &stripe::Client {
        &self.client
    }

    pub fn keys(&self) -> &ModeKeys {
        &self.keys
    }

    pub fn livemode(&self) -> bool {
        self.livemode
    }
}

/// The Stripe clients and their configuration, shared by every request and job.
#[derive(Clone)]
pub struct Stripe {
    live: Option<StripeMode>,
    test: Option<StripeMode>,
    config: Arc<StripeConfig>,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Stripe {
    pub fn new(mut config: StripeConfig) -> anyhow::Result<Self> {
        let base =
            if config.api_base.ends_with('/') { config.api_base.clone() } else { format!("{}/", config.api_base) };
        let mode = |keys: ModeKeys, livemode: bool| -> anyhow::Result<StripeMode> {
            let client = stripe::ClientBuilder::new(keys.secret_key.expose_secret())
                .url(base.clone())
                .timeout(CALL_TIMEOUT)
                .app_info("Remit", Some(env!("CARGO_PKG_VERSION").to_owned()), None)
                .build()
                .context("the Stripe client could not be configured")?;
            Ok(StripeMode { client, keys: Arc::new(keys), livemode })
        };
        let live = config.live.take().map(|k| mode(k, true)).transpose()?;
        let test = config.test.take().map(|k| mode(k, false)).transpose()?;
        anyhow::ensure!(live.is_some() || test.is_some(), "Stripe needs the keys of at least one mode");
        Ok(Self { live, test, config: Arc::new(config) })
    }

    /// The client and keys for data of `livemode`; 409 when that mode has no keys here.
    pub fn mode(&self, livemode: bool) -> crate::Result<&StripeMode> {
        let (mode, message) = if livemode {
            (&self.live, "Live payments are not set up on this Remit yet (it has no live Stripe key).")
        } else {
            (&self.test, "Test payments are not set up on this Remit (it has no test Stripe key).")
        };
        mode.as_ref().ok_or_else(|| crate::Error::conflict(message))
    }

    /// Whether data of `livemode` can be paid here.
    pub fn serves(&self, livemode: bool) -> bool {
        if livemode { self.live.is_some() } else { self.test.is_some() }
    }

    /// The mode Remit's own business runs in (consultants' subscriptions, payout accounts,
    /// tenants' Connect OAuth): live when there is a live key, else test.
    pub fn platform(&self) -> &StripeMode {
        self.live.as_ref().or(self.test.as_ref()).expect("Stripe::new requires one mode")
    }

    /// Every webhook secret of every mode: an event is accepted when any of them signed it.
    pub fn webhook_secrets(&self) -> Vec<SecretString> {
        [&self.live, &self.test].into_iter().flatten().flat_map(|m| m.keys.webhook_secrets.iter().cloned()).collect()
    }

    pub fn config(&self) -> &StripeConfig {
        &self.config
    }
}

/// Sends a POST with `key` as its `Idempotency-Key`, so a retried request cannot act twice.
pub fn idempotent(key: impl AsRef<str>) -> crate::Result<stripe_client_core::RequestStrategy> {
    let key = stripe_client_core::IdempotencyKey::new(key).context("an idempotency key was empty or too long")?;
    Ok(stripe_client_core::RequestStrategy::Idempotent(key))
}

/// A card declined by Stripe, phrased for the cardholder; `None` for any other failure.
pub fn card_decline(err: &stripe::StripeError) -> Option<String> {
    match err {
        stripe::StripeError::Stripe(api, 402) => {
            Some(api.message.clone().unwrap_or_else(|| "Your card was declined.".to_owned()))
        }
        _ => None,
    }
}

/// Whether Stripe refused a call because the platform no longer has access to the connected
/// account it names: the account holder disconnected the platform (`account_invalid`, 403, for
/// a call made as the account), or the account is no longer there for the platform (a transfer
/// destination Stripe says does not exist).
pub fn access_lost(status: u16, code: Option<&str>, param: Option<&str>) -> bool {
    match (status, code) {
        (403, Some("account_invalid")) => true,
        (400 | 404, Some("resource_missing")) => param.is_some_and(|p| p.contains("destination")),
        _ => false,
    }
}

/// [`access_lost`] for an error of async-stripe.
pub fn lost_access_error(err: &stripe::StripeError) -> bool {
    match err {
        stripe::StripeError::Stripe(api, status) => {
            access_lost(*status, api.code.as_ref().map(|c| c.as_str()), api.param.as_deref())
        }
        _ => false,
    }
}

/// Logs a failed Stripe call and returns an error safe to show: `what` says what could not be done.
pub fn upstream(err: stripe::StripeError, what: &str) -> crate::Error {
    match &err {
        stripe::StripeError::Stripe(api, status) => {
            tracing::warn!(status, code = ?api.code, message = ?api.message, "Stripe refused a request: {what}");
        }
        other => tracing::warn!(error = %other, "Stripe could not be reached: {what}"),
    }
    crate::Error::Upstream(format!("Stripe could not {what} just now. Please try again in a moment."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_account_or_a_vanished_destination_is_lost_access() {
        assert!(access_lost(403, Some("account_invalid"), None));
        assert!(access_lost(400, Some("resource_missing"), Some("payment_intent_data[transfer_data][destination]")));
        // Other refusals are not about access to the account.
        assert!(!access_lost(400, Some("resource_missing"), Some("customer")));
        assert!(!access_lost(400, Some("account_invalid"), None));
        assert!(!access_lost(402, Some("card_declined"), None));
        assert!(!access_lost(500, None, None));
    }
}
