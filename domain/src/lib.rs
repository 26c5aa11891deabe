//! Remit's domain: everything the web layer calls, and nothing about the web layer itself.
//!
//! Database access, authentication and authorisation, configuration, errors, mail and jobs
//! live here, each module importing only those below it: `queue`, `error`, `config` at the
//! bottom, `worker` (which lists every job) at the top; the Leptos app and the axum server only translate between HTTP and these calls.

pub mod accounts;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod buyer_mail;
pub mod checkout;
pub mod config;
pub mod crypto;
pub mod dashboard;
pub mod db;
pub mod error;
pub mod fees;
pub mod flash;
pub mod housekeeping;
pub mod input;
pub mod key_rotation;
pub mod mail;
pub mod money;
pub mod payment_terms;
pub mod payouts;
pub mod queue;
pub mod receipts;
pub mod reconciliation;
pub mod refunds;
pub mod reports;
pub mod security;
pub mod seed;
pub mod states;
pub mod stripe;
pub mod stripe_webhooks;
pub mod table_queue;
pub mod tenant_stripe;
pub mod tenant_webhooks;
pub mod time_zone;
pub mod worker;

use std::sync::Arc;

use anyhow::Context as _;
use sqlx::PgPool;

pub use error::{Error, Result};

/// The shared handles every request and job works with. Cloned per request by every layer and
/// extractor that takes it, so a clone is one reference count: the handles sit behind an `Arc`
/// and are reached through `Deref` (`services.pool`).
#[derive(Clone)]
pub struct Services(Arc<Handles>);

/// What [`Services`] holds.
pub struct Handles {
    pub pool: PgPool,
    pub settings: Arc<config::Settings>,
    pub mailer: mail::Mailer,
    pub stripe: stripe::Stripe,
    pub receipt_fonts: receipts::pdf::Fonts,
}

impl std::ops::Deref for Services {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("mailer", &self.mailer).field("stripe", &self.stripe).finish_non_exhaustive()
    }
}

impl Services {
    /// Connects to (and if needed creates and migrates) the database and sets up the mailer
    /// and the Stripe client.
    pub async fn start(settings: config::Settings, stripe: stripe::StripeConfig) -> anyhow::Result<Self> {
        let receipt_fonts = receipts::pdf::Fonts::load(&settings.receipt_font_dir)
            .context("could not load the receipt fonts (install fonts-dejavu-core, or set RECEIPT_FONT_DIR)")?;
        let pool = db::connect_and_migrate(settings.database_url()).await?;
        let mailer = mail::Mailer::from_settings(&settings).context("could not set up email")?;
        let stripe = stripe::Stripe::new(stripe)?;
        Ok(Self(Arc::new(Handles { pool, settings: Arc::new(settings), mailer, stripe, receipt_fonts })))
    }
}
