//! Builds the whole application: database, job worker, routes, and the HTTP listener.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context as _;
use app::{App, shell};
use axum::{Router, extract::DefaultBodyLimit, middleware, routing::get};
use domain::{
    Services,
    config::{DemoData, Settings, StripeSettings},
    crypto, seed,
    stripe::{ModeKeys, StripeConfig},
    worker,
};
use leptos::prelude::*;
use leptos_axum::{AxumRouteListing, LeptosRoutes as _, generate_route_list};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

use crate::{
    api, demo,
    middleware::{client_ip, csrf, guard, request_id, rpc_status, security_headers, session},
    routes,
    routes::stripe_webhook::STRIPE_WEBHOOK_PATH,
    serve,
    state::{AppState, Parts},
};
use security_headers::CspNonce;

pub struct Application {
    listener: TcpListener,
    router: Router,
    services: Services,
    /// `None` in a web-only process (`JOB_WORKERS=0`).
    worker: Option<graphile_worker::Worker>,
    sandbox: Option<stripe_sandbox::Sandbox>,
}

/// The database the development sandbox keeps its state in: beside Remit's, on the same server
/// (`remit` → `remit_stripe_sandbox`).
pub fn sandbox_database_url(settings: &Settings) -> anyhow::Result<String> {
    let mut url = url::Url::parse(settings.database_url()).context("DATABASE_URL")?;
    let name = format!("{}_stripe_sandbox", url.path().trim_start_matches('/'));
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// The Stripe configuration: real Stripe from settings, or an in-process sandbox started here,
/// with Remit's webhook endpoint registered on it (platform and Connect events alike).
///
/// In development the sandbox keeps its state in PostgreSQL and its keys are derived from
/// `REMIT_ENCRYPTION_KEY`, so after a restart every Stripe id Remit stored still works and
/// events emitted before the stop are delivered after it. Elsewhere (tests) it is in memory with
/// fresh keys.
async fn stripe(settings: &Settings) -> anyhow::Result<(StripeConfig, Option<stripe_sandbox::Sandbox>)> {
    if let Some(config) = StripeConfig::from_settings(settings) {
        return Ok((config, None));
    }
    let StripeSettings::Sandbox { addr } = settings.stripe else { unreachable!("from_settings covers live Stripe") };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not start the Stripe sandbox on {addr} (STRIPE_SANDBOX_ADDR)"))?;
    let key = &settings.encryption_key;
    let (secret_key, webhook_secret, storage) = if settings.is_development() {
        (
            format!("sk_test_{}", crypto::derived(key, "remit stripe sandbox secret key")),
            format!("whsec_{}", crypto::derived(key, "remit stripe sandbox webhook secret")),
            stripe_sandbox::Storage::Postgres(sandbox_database_url(settings)?),
        )
    } else {
        (
            format!("sk_test_sandbox_{}", crypto::random_token()),
            format!("whsec_{}", crypto::random_token()),
            stripe_sandbox::Storage::Memory,
        )
    };
    let options =
        stripe_sandbox::Options { secret_key: secret_key.clone(), storage, ..stripe_sandbox::Options::default() };
    let sandbox = stripe_sandbox::Sandbox::start(listener, options.clone())
        .await
        .context("could not start the Stripe sandbox")?;
    let webhook_url = settings.public_url(STRIPE_WEBHOOK_PATH);
    sandbox.register_webhook_endpoint(&webhook_url, &webhook_secret, false);
    sandbox.register_webhook_endpoint(&webhook_url, &webhook_secret, true);
    tracing::info!(url = sandbox.url(), "Stripe sandbox started (no STRIPE_SECRET_KEY set)");
    // The sandbox is Stripe's test mode: live data has no keys here and is refused.
    let config = StripeConfig {
        api_base: format!("{}/", sandbox.url()),
        connect_base: sandbox.url().to_owned(),
        connect_js_url: format!("{}/connect.js", sandbox.url()),
        live: None,
        test: Some(ModeKeys {
            secret_key: SecretString::from(secret_key),
            publishable_key: options.publishable_key,
            webhook_secrets: vec![SecretString::from(webhook_secret)],
            connect_client_id: options.connect_client_id,
        }),
    };
    Ok((config, Some(sandbox)))
}

/// How long a stopping process waits for running jobs before leaving them to another process.
const JOB_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a stopping process waits for its database connections to be handed back. Work left
/// running past `JOB_SHUTDOWN_GRACE` still holds its connection, and the pool's close waits for
/// every one: unbounded, one stuck outbound call would keep the process from ever exiting.
const POOL_CLOSE_GRACE: Duration = Duration::from_secs(5);

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind_addr)
            .await
            .with_context(|| format!("could not listen on {} (BIND_ADDR)", settings.bind_addr))?;
        Self::build_on(listener, settings).await
    }

    /// Builds the application on a listener the caller has bound (tests bind port 0 first, so
    /// that `PUBLIC_BASE_URL` can name the port).
    pub async fn build_on(listener: TcpListener, settings: Settings) -> anyhow::Result<Self> {
        let (stripe, sandbox) = stripe(&settings).await?;
        let services = Services::start(settings, stripe).await?;
        if services.settings.is_development() {
            seed::ensure_demo_data(&services).await.map_err(|e| anyhow::anyhow!("{e}")).context("seeding demo data")?;
        }
        let worker = match services.settings.job_workers {
            0 => None,
            _ => {
                let running = worker::worker(services.clone()).await?;
                worker::on_start(&services).await?;
                Some(running)
            }
        };
        let router = router(services.clone(), listener.local_addr()?);
        Ok(Self { listener, router, services, worker, sandbox })
    }

    /// True when this server makes the demo month (development, `DEMO_DATA=full`, with the
    /// in-process sandbox the demo's people pay on).
    fn makes_demo_month(&self) -> bool {
        self.services.settings.is_development()
            && self.services.settings.demo == DemoData::Full
            && self.sandbox.is_some()
            && self.worker.is_some()
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The in-process Stripe sandbox, when Remit runs without a Stripe key.
    pub fn sandbox(&self) -> Option<&stripe_sandbox::Sandbox> {
        self.sandbox.as_ref()
    }

    /// Prints the demo accounts and their passwords (development mode only).
    pub fn print_demo_credentials(&self) {
        println!("\nRemit demo accounts (development mode; passwords unless changed since):");
        for user in &seed::DEMO_USERS {
            let password = seed::demo_password(&self.services, user.email);
            println!(
                "  {:<15} {:<30} {}",
                user.role.label(),
                user.email,
                secrecy::ExposeSecret::expose_secret(&password)
            );
        }
        if self.makes_demo_month() {
            println!(
                "Northwind's last month (plans, Stripe connection, subscription, payouts, 30 won lots) is being made in \
                 the background; a payment link follows when it is ready. `make demo-reset` starts it afresh."
            );
        }
        if let (Some(sandbox), Ok(stripe)) = (&self.sandbox, self.services.stripe.mode(false)) {
            println!("Stripe sandbox: {} (test card 4242 4242 4242 4242, any future expiry)", sandbox.url());
            println!(
                "  its test secret key, for curl or an official SDK: {}",
                secrecy::ExposeSecret::expose_secret(&stripe.keys().secret_key)
            );
        }
        println!("Open {}\n", self.services.settings.public_base_url);
    }

    /// Serves requests and runs jobs until `shutdown` resolves, then stops gracefully.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        if self.makes_demo_month()
            && let Some(sandbox) = &self.sandbox
        {
            demo::spawn(self.services.clone(), sandbox.clone());
        }
        let jobs = self.worker.map(|running| worker::Supervisor::start(self.services.clone(), running));
        tracing::info!(address = %self.listener.local_addr()?, "remit is listening");
        let timeouts = serve::Timeouts {
            header_read: self.services.settings.http_header_timeout,
            drain: self.services.settings.http_request_timeout + Duration::from_secs(5),
        };
        serve::serve(self.listener, self.router, timeouts, shutdown).await;
        if let Some(jobs) = jobs
            && !jobs.stop(JOB_SHUTDOWN_GRACE).await
        {
            tracing::warn!("jobs still running at shutdown are left for another process to retry");
        }
        if tokio::time::timeout(POOL_CLOSE_GRACE, self.services.pool.close()).await.is_err() {
            tracing::warn!("database connections still in use at shutdown were dropped");
        }
        tracing::info!("remit stopped");
        Ok(())
    }
}

fn leptos_options(settings: &Settings, addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("remit")
        .site_root(settings.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// The app's page routes, generated once per process: generating them sets a process-wide flag
/// that makes any resource first polled meanwhile (by a page rendering in another server in the
/// same process, as in the tests) wait forever (leptos-rs/leptos#4773).
pub fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(services: Services, addr: SocketAddr) -> Router {
    if services.settings.metrics_token.is_some() {
        routes::metrics::install();
    }
    let leptos_options = leptos_options(&services.settings, addr);
    let state = AppState::new(Parts {
        leptos_options,
        services: services.clone(),
        intake: domain::stripe_webhooks::Intake::start(services.clone()),
    });
    let routes = page_routes();
    // Every render gets the services, and the nonce the security headers put in this response's
    // Content-Security-Policy, for the inline scripts Leptos writes.
    let context = {
        let services = services.clone();
        move || {
            provide_context(services.clone());
            if let Some(nonce) =
                use_context::<http::request::Parts>().and_then(|parts| parts.extensions.get::<CspNonce>().cloned())
            {
                provide_context(leptos::nonce::Nonce::from_value(nonce.0));
            }
        }
    };
    let allowed_origin = csrf::AllowedOrigin::from_url(&services.settings.public_base_url);
    let client_ip_source = client_ip::ClientIpSource(services.settings.client_ip_header.clone());
    let policy = security_headers::Policy::new(&services.settings.public_base_url, services.stripe.config());
    let request_timeout = services.settings.http_request_timeout;

    // Stripe's deliveries are the one route under sustained machine load: they skip what only
    // people's requests need (sessions, the same-origin check, the input guard, security headers
    // for pages), which was a tenth of the intake's CPU, and keep the rest.
    let stripe_webhook = Router::new()
        .route(
            STRIPE_WEBHOOK_PATH,
            axum::routing::post(routes::stripe_webhook::receive)
                .layer(DefaultBodyLimit::max(domain::stripe::events::MAX_EVENT_BYTES)),
        )
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(client_ip_source.clone(), client_ip::resolve))
        .layer(TimeoutLayer::with_status_code(http::StatusCode::SERVICE_UNAVAILABLE, request_timeout))
        .layer(middleware::from_fn(guard::catch_panic));

    let router = Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::metrics::scrape))
        .route("/admin/outbox/{email_id}/attachments/{attachment_id}", get(routes::outbox::attachment))
        .route("/pay/{token}/receipt.pdf", get(routes::receipts::buyer))
        .route("/winnings/export.csv", get(routes::winnings::export))
        .route("/reports/export.csv", get(routes::reports::tenant))
        .route("/admin/reports/export.csv", get(routes::reports::platform))
        .route("/winnings/{id}/receipt.pdf", get(routes::receipts::staff))
        .route("/fees/{id}/receipt.pdf", get(routes::receipts::fee))
        .route("/fees/{id}/refunds/{refund}/credit-note.pdf", get(routes::receipts::fee_credit_note))
        .route("/winnings/{id}/refunds/{refund}/credit-note.pdf", get(routes::receipts::credit_note))
        .merge(api::routes())
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        .with_state(state)
        // Layers wrap what is above them: the last one added runs first.
        .layer(middleware::from_fn(rpc_status::apply))
        .layer(middleware::from_fn_with_state(services, session::resolve))
        .layer(middleware::from_fn_with_state(client_ip_source, client_ip::resolve))
        .layer(middleware::from_fn_with_state(allowed_origin, csrf::check_origin))
        .layer(middleware::from_fn(guard::check_input))
        .layer(TimeoutLayer::with_status_code(http::StatusCode::SERVICE_UNAVAILABLE, request_timeout))
        .layer(middleware::from_fn(guard::catch_panic))
        .layer(middleware::from_fn_with_state(policy, security_headers::apply))
        .merge(stripe_webhook)
        .layer(middleware::from_fn(routes::metrics::record));
    request_id::layer(router)
}
