//! The HTTP side: authentication, fault injection, idempotency keys and expansion around the
//! API, the control endpoints under `/_sandbox`, and the hosted pages.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State as AxumState},
    http::{HeaderMap, HeaderValue, Method, Uri, header},
    response::Response,
    routing::{any, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    api::{self, Call},
    embedded,
    faults::{FaultKind, FaultRule},
    flows, pages,
    shared::{Shared, authenticate, error_response, fault, json_response},
    state::{DEFAULT_API_VERSION, IdempotentResponse, State, expand},
    triggers,
    webhooks::Mode,
    wire::{ApiError, Params, new_id, parse_form},
};

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/{*path}", any(api_call))
        .route("/oauth/token", post(pages::oauth_token))
        .route("/oauth/deauthorize", post(pages::oauth_deauthorize))
        .route("/_sandbox/faults", post(add_fault).delete(clear_faults))
        .route("/_sandbox/clock", get(clock))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route("/_sandbox/trigger", post(trigger))
        .route("/_sandbox/webhooks/mode", post(set_delivery_mode))
        .route("/_sandbox/webhooks/flush", post(flush_deliveries))
        .route("/_sandbox/webhooks/deliveries", get(deliveries))
        .route("/_sandbox/webhook_endpoints", post(register_endpoint))
        .route("/_sandbox/accounts/{id}/requirements", post(set_requirements))
        .route("/_sandbox/accounts/{id}/deauthorize", post(deauthorize_account))
        .merge(pages::routes())
        .merge(embedded::routes())
        .layer(axum::middleware::from_fn_with_state(shared.clone(), answer_once_stored))
        .with_state(shared)
}

/// A client is answered only once what its call changed is stored: a sandbox killed at any
/// moment has kept everything it told anyone.
async fn answer_once_stored(
    AxumState(shared): AxumState<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    shared.stored().await;
    response
}

/// Whether the request's key is a live-mode key (`sk_live_…`, `rk_live_…`).
fn is_live_key(headers: &HeaderMap) -> bool {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or_default();
    key.starts_with("sk_live_") || key.starts_with("rk_live_")
}

/// Marks an object a live key made (and its stored copy) as live.
fn mark_live(state: &mut State, value: &mut Value) {
    if value.get("livemode").is_none() {
        return;
    }
    value["livemode"] = Value::Bool(true);
    if let Some(id) = value.get("id").and_then(Value::as_str).map(str::to_owned)
        && let Some(stored) = state.get_mut(&id)
    {
        stored["livemode"] = Value::Bool(true);
    }
}

/// Everything under `/v1`.
async fn api_call(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if let Err(err) = authenticate(&shared.lock(), &headers) {
        return error_response(&err);
    }
    if let Some(rule) = shared.faults.take(method.as_str(), &path) {
        if rule.kind == FaultKind::Latency {
            tokio::time::sleep(rule.delay()).await;
        } else {
            return fault(&rule).await;
        }
    }
    // Objects made with a live key are live-mode objects, as at Stripe.
    let live_key = is_live_key(&headers);
    let raw = if method == Method::POST { body.to_vec() } else { uri.query().unwrap_or_default().as_bytes().to_vec() };
    let mut map = match parse_form(&raw) {
        Ok(map) => map,
        Err(err) => return error_response(&err),
    };
    let expand_paths = match map.remove("expand") {
        None => vec![],
        Some(Value::Array(items)) => items.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(Value::String(one)) => vec![one],
        Some(_) => {
            return error_response(&ApiError::invalid("parameter_invalid_array", "Invalid array: expand", "expand"));
        }
    };
    let account = headers.get("stripe-account").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|_| method == Method::POST);
    let version = headers.get("stripe-version").and_then(|v| v.to_str().ok()).unwrap_or(DEFAULT_API_VERSION).to_owned();

    let (status, body, replayed) = shared.with_state(|state| {
        if let Some(a) = &account
            && (state.get("account", a, None).is_none() || state.access_revoked(a))
        {
            let err = ApiError::new(403, "invalid_request_error", Some("account_invalid"), format!("The provided key does not have access to account '{a}' (or that account does not exist). Application access may have been revoked."));
            return (err.status, err.body(), false);
        }
        // Parameters in canonical form: the same parameters encoded differently are the same request.
        let canonical = serde_json::to_vec(&(&map, &expand_paths)).unwrap_or_default();
        let fingerprint = hex::encode(Sha256::digest([method.as_str().as_bytes(), path.as_bytes(), &canonical].concat()));
        if let Some(key) = &idempotency_key
            && let Some(previous) = state.idempotency.get(&(account.clone(), key.clone()))
        {
            if previous.fingerprint != fingerprint {
                let err = ApiError::new(400, "idempotency_error", Some("idempotency_key_in_use"), format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."));
                return (err.status, err.body(), false);
            }
            return (previous.status, previous.body.clone(), true);
        }
        let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').filter(|s| !s.is_empty()).collect();
        let call = Call { method: method.as_str(), segments, account: account.clone(), params: Params::new(map) };
        let (status, body, save) = match api::dispatch(state, call) {
            Ok(mut value) => {
                if live_key && method == Method::POST {
                    mark_live(state, &mut value);
                }
                expand(state, &mut value, &expand_paths);
                (200, value, true)
            }
            // Card errors happened (a payment was attempted); validation errors did not.
            Err(err) => (err.status, err.body(), err.status == 402),
        };
        if save && let Some(key) = &idempotency_key {
            let created = state.now();
            state.idempotency.insert((account.clone(), key.clone()), IdempotentResponse { fingerprint, status, body: body.clone(), created });
        }
        (status, body, false)
    });
    let mut response = json_response(status, &body);
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&version) {
        headers.insert("stripe-version", v);
    }
    if let Some(key) = idempotency_key.and_then(|k| HeaderValue::from_str(&k).ok()) {
        headers.insert("idempotency-key", key);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Control endpoints need the secret key too.
fn control_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    authenticate(&shared.lock(), headers).map_err(|err| Box::new(error_response(&err)))
}

async fn add_fault(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    Json(rule): Json<FaultRule>,
) -> Response {
    if let Err(r) = control_auth(&shared, &headers) {
        return *r;
    }
    shared.faults.add(rule.clone());
    json_response(200, &json!({ "added": rule }))
}

async fn clear_faults(AxumState(shared): AxumState<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = control_auth(&shared, &headers) {
        return *r;
    }
    shared.faults.clear();
    json_response(200, &json!({ "cleared": true }))
}

async fn clock(AxumState(shared): AxumState<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = control_auth(&shared, &headers) {
        return *r;
    }
    json_response(200, &json!({ "now": shared.lock().now() }))
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    Json(a): Json<Advance>,
) -> Response {
    if let Err(r) = control_auth(&shared, &headers) {
        return *r;
    }
    if a.seconds < 0 {
        return error_response(&ApiError::invalid(
            "parameter_invalid_integer",
            "The clock only moves forward.",
            "seconds",
        ));
    }
    shared.with_state(|s| s.advance_clock(a.seconds));
    shared.tick();
    json_response(200, &json!({ "now": shared.lock().now() }))
}

#[derive(Deserialize)]
struct Trigger {
    event: String,
    account: Option<String>,
}

async fn trigger(AxumState(shared): AxumState<Arc<Shared>>, headers: HeaderMap, Json(t): Json<Trigger>) -> Response {
    if let Err(r) = control_auth(&shared, &headers) {
        return *r;
    }
    match shared.with_state(|s| triggers::trigger(s, &t.event, t.account.as_deref())) {
        Ok(objects) => json_response(200, &json!({ "triggered": t.event, "objects": objects })),
        Err(err) => error_response(&err),
    }
}

#[derive(Deserialize)]
struct SetMode {
    mode: Mode,
}

async fn set_delivery_mode(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    Json(m): Json<SetMode>,
) -> Response {
    if let Err(r) = control_auth(&shared, &headers) {
        return *r;
    }
    shared.delivery.set_mode(m.mode);
    json_response(200, &json!({ "mode": m.mode }))
}

async fn flush_deliveries(AxumState(shared): AxumState<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = control_auth(&shared, &headers) {
        return *r;
    }
    let delivered = shared.delivery.flush().await;
    json_response(200, &json!({ "delivered": delivered }))
}

async fn deliveries(AxumState(shared): AxumState<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = control_auth(&shared, &headers) {
        return *r;
    }
    json_response(200, &json!({ "data": shared.delivery.log() }))
}

#[derive(Deserialize)]
struct RegisterEndpoint {
    url: String,
    secret: Option<String>,
    #[serde(default)]
    connect: bool,
    #[serde(default = "all_events")]
    enabled_events: Vec<String>,
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}

async fn register_endpoint(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    Json(r): Json<RegisterEndpoint>,
) -> Response {
    if let Err(resp) = control_auth(&shared, &headers) {
        return *resp;
    }
    let endpoint = shared.with_state(|s| {
        let new = crate::objects::NewWebhookEndpoint {
            id: new_id("we_"),
            url: r.url,
            enabled_events: r.enabled_events,
            connect: r.connect,
            api_version: None,
            description: Some("Registered through the sandbox control API".into()),
            metadata: Default::default(),
            created: s.now(),
        };
        api::events::register_endpoint(s, new, r.secret)
    });
    json_response(200, &endpoint)
}

#[derive(Deserialize)]
struct Requirements {
    #[serde(default)]
    currently_due: Vec<String>,
    #[serde(default)]
    past_due: Vec<String>,
    disabled_reason: Option<String>,
    current_deadline: Option<i64>,
}

async fn set_requirements(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(r): Json<Requirements>,
) -> Response {
    if let Err(resp) = control_auth(&shared, &headers) {
        return *resp;
    }
    match shared.with_state(|s| {
        flows::set_requirements(s, &id, r.currently_due, r.past_due, r.disabled_reason, r.current_deadline)
    }) {
        Ok(account) => json_response(200, &account),
        Err(err) => error_response(&err),
    }
}

/// The account holder disconnects the platform from inside Stripe.
async fn deauthorize_account(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(resp) = control_auth(&shared, &headers) {
        return *resp;
    }
    if shared.with_state(|s| crate::api::connect::revoke_access(s, &id)) {
        json_response(200, &json!({ "id": id, "deauthorized": true }))
    } else {
        error_response(&ApiError::state(
            "account_invalid",
            "The account is not connected to the platform through OAuth.",
        ))
    }
}

/// Serves the sandbox on `listener` until the process ends, with a clock tick every second.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    let ticker = shared.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        loop {
            interval.tick().await;
            ticker.tick();
        }
    });
    axum::serve(listener, router(shared).into_make_service_with_connect_info::<SocketAddr>()).await
}
