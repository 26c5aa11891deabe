//! Outbound webhooks: URL rules, signed deliveries, test deliveries, retries, disabling.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use domain::auth::Role;
use hmac::{Hmac, Mac as _};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{Options, TestApp, spawn_app_with, spawn_dev_app};

const CONFIG: &str = "/api/v1/auth/tenants/webhooks/config/";

/// A tenant's endpoint as a tenant would write it: it checks `Remit-Signature` using only the
/// documented scheme, with the secret Remit showed once.
#[derive(Clone)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    received: Arc<Mutex<Vec<(bool, Value)>>>,
    answer: Arc<AtomicU16>,
}

fn documented_check(secret: &str, header: &str, body: &[u8]) -> bool {
    let parts: std::collections::HashMap<&str, &str> = header.split(',').filter_map(|p| p.split_once('=')).collect();
    let (Some(t), Some(v1)) = (parts.get("t"), parts.get("v1")) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let fresh = (chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap_or(0)).abs() <= 300;
    fresh && mac.verify_slice(&hex::decode(v1).unwrap_or_default()).is_ok()
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> axum::http::StatusCode {
    let header = headers.get("remit-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let verified = documented_check(&r.secret.lock().unwrap(), header, &body);
    r.received.lock().unwrap().push((verified, serde_json::from_slice(&body).unwrap_or(Value::Null)));
    axum::http::StatusCode::from_u16(r.answer.load(Ordering::SeqCst)).unwrap()
}

impl Receiver {
    async fn start() -> (Self, String) {
        let r = Receiver { secret: Arc::default(), received: Arc::default(), answer: Arc::new(AtomicU16::new(200)) };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let app = Router::new().route("/hooks", post(receive)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    async fn wait_for(&self, kind: &str) -> (bool, Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = self.received.lock().unwrap().iter().find(|(_, e)| e["type"] == kind).cloned() {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "{kind} never arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn configure(app: &TestApp, url: &str) -> (Receiver, String) {
    let (receiver, receiver_url) = Receiver::start().await;
    let target = if url.is_empty() { receiver_url } else { url.to_owned() };
    // Only the owner sets the endpoint.
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (status, body) = app.json_with_cookie(Method::POST, CONFIG, &owner, Some(json!({ "url": target }))).await;
    assert_eq!(status, 200, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    *receiver.secret.lock().unwrap() = secret.clone();
    (receiver, secret)
}

#[tokio::test]
async fn plain_http_and_internal_addresses_are_refused_outside_development() {
    let app = spawn_app_with(Options { public_base_url_scheme: "https", ..Options::default() }).await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    let origin = app.address.replace("http://", "https://");
    for (url, expected) in [
        ("http://example.com/hooks", "must use https"),
        ("https://10.0.0.1/hooks", "private or loopback"),
        ("https://127.0.0.1/hooks", "private or loopback"),
        ("https://[::1]/hooks", "private or loopback"),
        ("https://169.254.169.254/latest", "never sends to"),
        ("not a url", "Enter a full URL"),
    ] {
        let response = reqwest::Client::new()
            .post(app.url(CONFIG))
            .header("cookie", &owner)
            .header("origin", &origin)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{url}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains(expected), "{url}: {body}");
        assert_eq!(body["field"], "url");
    }
    assert_eq!(app.count("webhook_endpoints").await, 0);
}

#[tokio::test]
async fn the_secret_is_shown_once_then_masked_and_stored_encrypted() {
    let app = spawn_dev_app().await;
    let (_, secret) = configure(&app, "").await;
    assert!(secret.starts_with("whsec_"));
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (_, config) = app.json_with_cookie(Method::GET, CONFIG, &owner, None).await;
    assert_eq!(config["secret"], format!("whsec_••••••••{}", &secret[secret.len() - 4..]));
    assert!(!config.to_string().contains(&secret));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_encrypted FROM webhook_endpoints")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is stored in the clear");
    assert!(!crate::helpers::captured_logs().contains(&secret));
}

#[tokio::test]
async fn a_test_delivery_reports_status_and_time_and_verifies_with_the_documented_scheme() {
    let app = spawn_dev_app().await;
    let (receiver, _) = configure(&app, "").await;
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let (status, result) =
        app.json_with_cookie(Method::POST, "/api/v1/auth/tenants/webhooks/test/", &admin, None).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!((result["ok"].clone(), result["status_code"].clone()), (json!(true), json!(200)));
    assert!(result["response_time_ms"].as_u64().unwrap() < 10_000);
    let (verified, event) = receiver.wait_for("remit.test").await;
    assert!(verified, "the receiver could not verify the signature with the documented scheme");
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));

    receiver.answer.store(503, Ordering::SeqCst);
    let (_, result) = app.json_with_cookie(Method::POST, "/api/v1/auth/tenants/webhooks/test/", &admin, None).await;
    assert_eq!((result["ok"].clone(), result["status_code"].clone()), (json!(false), json!(503)));
    let (_, log) = app.json_with_cookie(Method::GET, "/api/v1/auth/tenants/webhooks/deliveries/", &admin, None).await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_test_delivery_explains_refusals_timeouts_and_tls_failures() {
    let app = spawn_dev_app().await;
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let test = || app.json_with_cookie(Method::POST, "/api/v1/auth/tenants/webhooks/test/", &admin, None);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    configure(&app, &format!("http://127.0.0.1:{closed}/hooks")).await;
    let (_, result) = test().await;
    assert!(result["error"].as_str().unwrap().contains("refused the connection"), "{result}");

    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    configure(&app, &format!("http://127.0.0.1:{silent_port}/hooks")).await;
    let (_, result) = test().await;
    assert!(result["error"].as_str().unwrap().contains("did not answer within 10 seconds"), "{result}");
    assert!(result["response_time_ms"].as_u64().unwrap() >= 10_000);

    // https:// to a server that speaks plain HTTP: the TLS handshake fails.
    let (_, plain_url) = Receiver::start().await;
    configure(&app, &plain_url.replace("http://", "https://")).await;
    let (_, result) = test().await;
    assert!(result["error"].as_str().unwrap().contains("TLS"), "{result}");
}

#[tokio::test]
async fn real_events_are_delivered_through_the_job_queue_and_can_be_redelivered() {
    let app = spawn_dev_app().await;
    let (receiver, _) = configure(&app, "").await;
    let mut tx = app.services.pool.begin().await.unwrap();
    domain::tenant_webhooks::emit(
        &mut tx,
        app.tenant_id().await,
        false,
        "payment.succeeded",
        json!({ "amount": 1200, "currency": "usd" }),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (verified, event) = receiver.wait_for("payment.succeeded").await;
    assert!(verified);
    assert_eq!(event["data"]["amount"], 1200);
    assert_eq!(event["livemode"], false);

    let admin = app.session_cookie(Role::TenantAdmin).await;
    let (_, log) = app.json_with_cookie(Method::GET, "/api/v1/auth/tenants/webhooks/deliveries/", &admin, None).await;
    let delivery = log["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .json_with_cookie(
            Method::POST,
            &format!("/api/v1/auth/tenants/webhooks/deliveries/{delivery}/redeliver/"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 202);
    app.wait_for_jobs().await;
    let copies = receiver.received.lock().unwrap().iter().filter(|(_, e)| e["type"] == "payment.succeeded").count();
    assert_eq!(copies, 2);
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_disabled_and_the_owner_told() {
    let app = spawn_dev_app().await;
    let (receiver, _) = configure(&app, "").await;
    receiver.answer.store(500, Ordering::SeqCst);
    let event_id = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO webhook_events (id, tenant_id, type, livemode, payload) VALUES ($1, $2, 'payment.succeeded', false, '{\"id\":\"evt_x\"}')")
        .bind(event_id)
        .bind(app.tenant_id().await)
        .execute(&app.services.pool)
        .await
        .unwrap();
    // Each attempt as the job would make it (the job's own backoff would spread these over hours).
    for attempt in 1..=domain::tenant_webhooks::DISABLE_AFTER_FAILURES {
        let result = domain::tenant_webhooks::deliver(&app.services, event_id, attempt).await;
        assert!(result.is_err(), "attempt {attempt} should fail");
    }
    let (enabled, reason): (bool, Option<String>) =
        sqlx::query_as("SELECT enabled, disabled_reason FROM webhook_endpoints")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!((enabled, reason.as_deref()), (false, Some("failing")));
    let subject: String = sqlx::query_scalar(
        "SELECT subject FROM emails WHERE to_address = 'owner@northwind.example' AND subject LIKE '%webhook%'",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(subject, "Your Remit webhook endpoint was disabled");
    assert_eq!(app.count("alerts").await, 1);
    // Once disabled, nothing more is sent; saving the endpoint again turns it back on.
    let before = receiver.received.lock().unwrap().len();
    assert!(domain::tenant_webhooks::deliver(&app.services, event_id, 11).await.is_ok());
    assert_eq!(receiver.received.lock().unwrap().len(), before);
}

#[tokio::test]
async fn removing_keeps_the_secret_and_only_the_owner_may() {
    let app = spawn_dev_app().await;
    let (_, secret) = configure(&app, "").await;
    let admin = app.session_cookie(Role::TenantAdmin).await;
    assert_eq!(app.json_with_cookie(Method::DELETE, CONFIG, &admin, None).await.0, 403);
    let owner = app.session_cookie(Role::TenantOwner).await;
    assert_eq!(app.json_with_cookie(Method::DELETE, CONFIG, &owner, None).await.0, 204);
    let (_, config) = app.json_with_cookie(Method::GET, CONFIG, &owner, None).await;
    assert_eq!(config["url"], Value::Null);
    let (_, url) = Receiver::start().await;
    let (_, again) = app.json_with_cookie(Method::POST, CONFIG, &owner, Some(json!({ "url": url }))).await;
    assert_eq!(
        again["secret"],
        format!("whsec_••••••••{}", &secret[secret.len() - 4..]),
        "the old secret is reused, not shown"
    );
}
