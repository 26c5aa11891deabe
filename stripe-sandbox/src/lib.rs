//! A local, stateful, Stripe-compatible API server.
//!
//! It speaks Stripe's wire format for the endpoints Remit uses (form-encoded parameters,
//! Stripe's JSON objects and errors, idempotency keys, `expand[]`, list pagination, the
//! `Stripe-Account` header), keeps state in memory, signs and delivers webhook events as Stripe
//! does, serves stand-ins for Stripe's hosted pages (Checkout with the test cards, 3D Secure,
//! Connect onboarding, OAuth), and can be told to fail, to advance its clock, or to bring about
//! an event. Any Stripe client library pointed at its URL works against it.

#![recursion_limit = "256"]

mod api;
mod embedded;
pub mod faults;
mod flows;
mod objects;
mod pages;
pub mod persist;
mod server;
mod shared;
mod state;
mod triggers;
pub mod webhooks;
mod wire;

use std::{net::SocketAddr, sync::Arc};

use serde_json::Value;

pub use faults::{FaultKind, FaultRule};
pub use state::DEFAULT_API_VERSION;
pub use webhooks::{DeliveryRecord, Mode as DeliveryMode, RetryPolicy, signature_header};

/// Where a sandbox keeps its state.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// In memory only: gone when the sandbox stops (tests).
    #[default]
    Memory,
    /// In this PostgreSQL database (created if missing): a restarted sandbox continues where it
    /// stopped.
    Postgres(String),
}

/// How to run a sandbox.
#[derive(Debug, Clone)]
pub struct Options {
    /// The secret key clients must present (`sk_test_…`).
    pub secret_key: String,
    /// A live-mode key it also takes (`sk_live_…`): objects made with it have `livemode: true`.
    pub live_secret_key: Option<String>,
    pub publishable_key: String,
    /// The platform's Connect OAuth client id (`ca_…`).
    pub connect_client_id: String,
    /// Where browsers reach the sandbox, if not at the address it listens on.
    pub public_url: Option<String>,
    pub retry: RetryPolicy,
    pub storage: Storage,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            secret_key: "sk_test_sandbox".into(),
            live_secret_key: None,
            publishable_key: "pk_test_sandbox".into(),
            connect_client_id: "ca_sandbox".into(),
            public_url: None,
            retry: RetryPolicy::default(),
            storage: Storage::Memory,
        }
    }
}

/// A running sandbox.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<shared::Shared>,
    addr: SocketAddr,
    url: String,
}

impl Sandbox {
    /// Serves a sandbox on `listener` (in a background task) and returns its handle. With
    /// `Storage::Postgres`, what a previous run stored is taken up again, pending webhook
    /// deliveries included; a second sandbox on the same database is refused.
    pub async fn start(listener: tokio::net::TcpListener, options: Options) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let url = options.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let config = state::Config {
            secret_keys: std::iter::once(options.secret_key).chain(options.live_secret_key).collect(),
            publishable_key: options.publishable_key,
            connect_client_id: options.connect_client_id,
            public_url: url.clone(),
        };
        let (state, persist, stored_deliveries) = match &options.storage {
            Storage::Memory => (state::State::new(config), None, Vec::new()),
            Storage::Postgres(database_url) => {
                let (persist, snapshot) = persist::Persist::open(database_url).await?;
                let deliveries = snapshot
                    .deliveries
                    .iter()
                    .filter_map(|(_, value)| serde_json::from_value::<webhooks::Job>(value.clone()).ok())
                    .collect();
                tracing::info!(objects = snapshot.objects.len(), "the Stripe sandbox took up its stored state");
                (state::State::restore(config, &snapshot), Some(persist), deliveries)
            }
        };
        let shared = shared::Shared::new(state, options.retry, persist);
        shared.delivery.resume(stored_deliveries);
        let serving = shared.clone();
        tokio::spawn(async move {
            if let Err(err) = server::serve(listener, serving).await {
                tracing::error!(error = %err, "the Stripe sandbox stopped");
            }
        });
        Ok(Self { shared, addr, url })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL: API calls go to `{url}/v1/…`, OAuth to `{url}/oauth/…`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Registers a webhook endpoint signed with `secret` (events of connected accounts go to
    /// `connect` endpoints) and returns its id. An endpoint of the same URL and kind that is
    /// already there (a restarted sandbox) is kept, with this secret.
    pub fn register_webhook_endpoint(&self, url: &str, secret: &str, connect: bool) -> String {
        self.shared.with_state(|s| {
            let existing = s
                .all("webhook_endpoint", None)
                .into_iter()
                .find(|e| e["url"] == url && e["application"].is_null() != connect && e["status"] == "enabled");
            if let Some(id) = existing.and_then(|e| e["id"].as_str().map(str::to_owned)) {
                s.webhook_secrets.insert(id.clone(), secret.to_owned());
                return id;
            }
            let endpoint = objects::NewWebhookEndpoint {
                id: wire::new_id("we_"),
                url: url.to_owned(),
                enabled_events: vec!["*".into()],
                connect,
                api_version: None,
                description: Some("Registered by the embedding application".into()),
                metadata: Default::default(),
                created: s.now(),
            };
            api::events::register_endpoint(s, endpoint, Some(secret.to_owned()))["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
    }

    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.faults.add(rule);
    }

    pub fn set_delivery_mode(&self, mode: DeliveryMode) {
        self.shared.delivery.set_mode(mode);
    }

    /// Delivers events held in `Reverse` mode, newest first; returns how many.
    pub async fn flush_deliveries(&self) -> usize {
        self.shared.delivery.flush().await
    }

    /// Waits until every delivery under way has been answered (or has given up).
    pub async fn settle_deliveries(&self) {
        self.shared.delivery.settle().await;
    }

    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.delivery.log()
    }

    /// Waits until everything the sandbox changed is stored (a no-op in memory).
    pub async fn stored(&self) {
        self.shared.stored().await;
    }

    /// Moves the sandbox's clock forward and runs what became due.
    pub fn advance_clock(&self, seconds: i64) {
        self.shared.with_state(|s| s.advance_clock(seconds));
        self.shared.tick();
    }

    pub fn now(&self) -> i64 {
        self.shared.lock().now()
    }

    /// How far the sandbox's clock is from real time, in seconds.
    pub fn clock_offset(&self) -> i64 {
        self.shared.lock().clock_offset()
    }

    /// Puts the sandbox's clock `seconds` from real time, backwards too (a demo dating what it
    /// makes in the past); moving forward runs what became due.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.shared.with_state(|s| s.set_clock_offset(seconds));
        self.shared.tick();
    }

    /// The holder of a Standard account disconnects the platform from inside Stripe; `false`
    /// when it was not connected through OAuth.
    pub fn deauthorize(&self, account: &str) -> bool {
        self.shared.with_state(|s| api::connect::revoke_access(s, account))
    }

    /// Brings about `event` as `stripe trigger` does; returns the objects involved.
    pub fn trigger(&self, event: &str, account: Option<&str>) -> Result<Value, String> {
        self.shared.with_state(|s| triggers::trigger(s, event, account)).map_err(|e| e.message)
    }
}
