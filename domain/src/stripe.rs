//! Remit's connection to Stripe. Every Stripe call goes through async-stripe with this client;
//! in development and tests it points at the Stripe sandbox, and only the URLs and keys differ.

use std::sync::Arc;

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::config::{Settings, StripeSettings};

/// Where Stripe is and how Remit authenticates to it.
pub struct StripeConfig {
    /// The REST API, e.g. `https://api.stripe.com/`.
    pub api_base: String,
    /// Connect OAuth (`/oauth/authorize`, `/oauth/token`), e.g. `https://connect.stripe.com`.
    pub connect_base: String,
    /// The Connect.js script that renders embedded onboarding in the browser.
    pub connect_js_url: String,
    pub secret_key: SecretString,
    pub publishable_key: String,
    /// Secrets of the webhook endpoints Stripe signs events with (platform and Connect).
    pub webhook_secrets: Vec<SecretString>,
    pub connect_client_id: String,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("connect_base", &self.connect_base)
            .field("publishable_key", &self.publishable_key)
            .finish_non_exhaustive()
    }
}

impl StripeConfig {
    /// Whether Remit runs against Stripe's live mode (a live secret key).
    pub fn livemode(&self) -> bool {
        let key = self.secret_key.expose_secret();
        key.starts_with("sk_live_") || key.starts_with("rk_live_")
    }

    /// The configuration for real Stripe, from settings; `None` when the sandbox is to be used.
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        match &settings.stripe {
            StripeSettings::Sandbox { .. } => None,
            StripeSettings::Live { secret_key, publishable_key, webhook_secret, connect_client_id, api_base } => {
                Some(Self {
                    api_base: api_base
                        .as_ref()
                        .map(|u| u.to_string())
                        .unwrap_or_else(|| "https://api.stripe.com/".into()),
                    connect_base: "https://connect.stripe.com".into(),
                    connect_js_url: "https://connect-js.stripe.com/v1.0/connect.js".into(),
                    secret_key: secret_key.clone(),
                    publishable_key: publishable_key.clone(),
                    // Platform and Connect endpoints have a secret each: STRIPE_WEBHOOK_SECRET may list both.
                    webhook_secrets: webhook_secret
                        .expose_secret()
                        .split(',')
                        .map(|s| SecretString::from(s.trim().to_owned()))
                        .collect(),
                    connect_client_id: connect_client_id.clone(),
                })
            }
        }
    }
}

/// The Stripe client and its configuration, shared by every request and job.
#[derive(Clone)]
pub struct Stripe {
    client: stripe::Client,
    config: Arc<StripeConfig>,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Stripe {
    pub fn new(config: StripeConfig) -> anyhow::Result<Self> {
        let base =
            if config.api_base.ends_with('/') { config.api_base.clone() } else { format!("{}/", config.api_base) };
        let client = stripe::ClientBuilder::new(config.secret_key.expose_secret())
            .url(base)
            .app_info("Remit", Some(env!("CARGO_PKG_VERSION").to_owned()), None)
            .build()
            .context("the Stripe client could not be configured")?;
        Ok(Self { client, config: Arc::new(config) })
    }

    pub fn client(&self) -> &stripe::Client {
        &self.client
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
