//! `/metrics`: Prometheus' text format, for whoever holds `METRICS_TOKEN` (as a bearer token);
//! 404 when no token is configured, 401 for a missing or wrong one. What is recorded: HTTP
//! requests by route, method and status with their latency ([`record`]); the intake's
//! accepted, duplicate and refused events; events applied, failed and how long applying took;
//! jobs by task and outcome with their latency; outbound webhook deliveries. Read at each
//! scrape: jobs waiting per task, Stripe events due, and the database pool's connections.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret as _;
use subtle::ConstantTimeEq as _;

use crate::state::AppState;

/// Latency buckets, in seconds: from a fast page to the request timeout.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The process's recorder, installed with the first server that serves metrics (every server
/// of a test process shares it). Without it the recording macros do nothing. Histograms are
/// folded into their buckets every few seconds, scraped or not, so memory stays flat.
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder =
            PrometheusBuilder::new().set_buckets(&BUCKETS).expect("the latency buckets are not empty").build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder was installed first; /metrics will be empty");
        }
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("the metrics upkeep thread starts");
        handle
    })
}

/// Counts each request by the route it matched (not its path: ids would make a series each),
/// method and status, and records how long it took.
pub async fn record(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("remit_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("remit_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = &state.services.settings.metrics_token else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(token.expose_secret().as_bytes())) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "A metrics token is required.")
            .into_response();
    }
    let pool = &state.services.pool;
    match domain::queue::queue_depth(pool).await {
        Ok(depth) => {
            for (task, count) in depth {
                metrics::gauge!("remit_queue_depth", "task" => task).set(count as f64);
            }
        }
        Err(err) => err.log(),
    }
    match domain::stripe_webhooks::applier::due_now(pool).await {
        Ok(due) => metrics::gauge!("remit_stripe_events_due").set(due as f64),
        Err(err) => err.log(),
    }
    let idle = pool.num_idle() as f64;
    metrics::gauge!("remit_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("remit_db_pool_connections", "state" => "busy").set(f64::from(pool.size()) - idle);
    let handle = install();
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}
