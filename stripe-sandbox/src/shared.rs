//! What every handler of the sandbox shares: the state behind its lock (stored and delivered
//! as it changes), the check of the caller's key, and the shape of its answers (errors and
//! injected faults). Below the API, the pages and the control endpoints, which all use it.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::{
    Json,
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde_json::Value;

use crate::{
    faults::{FaultKind, FaultRule, Faults},
    flows,
    persist::Persist,
    state::State,
    webhooks::{Delivery, RetryPolicy},
    wire::{ApiError, new_id},
};

/// Everything the sandbox's handlers share.
pub struct Shared {
    state: Mutex<State>,
    pub faults: Faults,
    pub delivery: Arc<Delivery>,
    /// Where the state is kept, when not in memory only.
    pub persist: Option<Arc<Persist>>,
}

impl Shared {
    pub fn new(state: State, retry: RetryPolicy, persist: Option<Arc<Persist>>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(state),
            faults: Faults::default(),
            delivery: Arc::new(Delivery::new(retry, persist.clone())),
            persist,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the state, stores what it changed (with the deliveries its events call for),
    /// then delivers those events. Changes are submitted under the lock, so they are stored in
    /// the order they were made.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.lock();
        let out = f(&mut state);
        let jobs = self.delivery.prepare(&mut state);
        match &self.persist {
            Some(persist) => {
                let mut changes = state.take_changes();
                changes.extend(jobs.iter().map(|job| job.change(true)));
                persist.submit(changes);
            }
            None => state.forget_changes(),
        }
        drop(state);
        self.delivery.start(jobs);
        out
    }

    /// Waits until everything changed so far is stored (a no-op in memory).
    pub async fn stored(&self) {
        if let Some(persist) = &self.persist {
            persist.flushed().await;
        }
    }

    /// Runs the time-driven processes (Checkout expiry, subscription renewals, trial notices,
    /// connected accounts' payouts).
    pub fn tick(&self) {
        self.with_state(|state| {
            flows::run_checkout_clock(state);
            flows::run_billing_clock(state);
            flows::run_payout_clock(state);
        });
    }
}

pub fn json_response(status: u16, body: &Value) -> Response {
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response();
    response.headers_mut().insert("request-id", HeaderValue::from_str(&new_id("req_")).expect("ids are ASCII"));
    response
}

pub fn error_response(err: &ApiError) -> Response {
    json_response(err.status, &err.body())
}

/// Checks the request's secret key; the error is the 401 to answer.
pub fn authenticate(state: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    // Bearer, as the libraries send it, or Basic with the key as user name, as `curl -u sk_…:` does.
    let supplied =
        value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::to_owned).or_else(|| {
            let decoded = base64::engine::general_purpose::STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
            String::from_utf8(decoded).ok()?.split(':').next().map(str::to_owned)
        });
    let Some(key) = supplied.as_deref().filter(|k| !k.is_empty()) else {
        return Err(ApiError::new(
            401,
            "invalid_request_error",
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    if state.config.secret_keys.iter().any(|k| k == key) {
        return Ok(());
    }
    // Like Stripe, show only enough of the key to recognise it.
    let shown = if key.len() > 12 { format!("{}****{}", &key[..8], &key[key.len() - 4..]) } else { "****".into() };
    Err(ApiError::new(
        401,
        "invalid_request_error",
        Some("api_key_invalid"),
        format!("Invalid API Key provided: {shown}"),
    ))
}

/// Answers a call that a fault rule caught (after the delay, for timeouts).
pub async fn fault(rule: &FaultRule) -> Response {
    if rule.kind == FaultKind::Timeout {
        tokio::time::sleep(rule.delay()).await;
    }
    fault_response(rule)
}

fn fault_response(rule: &FaultRule) -> Response {
    match rule.kind {
        FaultKind::ServerError | FaultKind::Timeout | FaultKind::Latency => {
            let mut r = error_response(&ApiError::new(
                500,
                "api_error",
                None,
                "An unknown error occurred (injected by the sandbox).",
            ));
            r.headers_mut().insert("stripe-should-retry", HeaderValue::from_static("true"));
            r
        }
        FaultKind::RateLimit => {
            let mut r = error_response(&ApiError::new(
                429,
                "invalid_request_error",
                Some("rate_limit"),
                "Too many requests hit the API too quickly (injected by the sandbox).",
            ));
            r.headers_mut().insert("stripe-should-retry", HeaderValue::from_static("true"));
            r
        }
        FaultKind::Disconnect => {
            // The body fails after the headers: the client sees the connection drop.
            let stream = futures_util::stream::iter([Err::<Bytes, _>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "dropped by the sandbox",
            ))]);
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .expect("static response")
        }
    }
}
