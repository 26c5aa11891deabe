//! Outbound webhooks: endpoints per mode with event filters, Standard Webhooks signatures
//! (checked by the official libraries), rotation with overlap, per-object sequences, test
//! deliveries, retries, 410 and five days of failure, replay and redelivery.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU16, Ordering},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use domain::{
    auth::Role,
    money::{Currency, Money},
    tenant_webhooks::events::{OrderPaid, TenantEvent, emit},
};
use hmac::{Hmac, Mac as _};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::helpers::{Options, SecondProcess, TestApp, spawn_app_with, spawn_dev_app, wait_until};

const ENDPOINTS: &str = "/api/v1/auth/tenants/webhooks/endpoints/";
const DELIVERIES: &str = "/api/v1/auth/tenants/webhooks/deliveries/";

/// One delivery as the receiver got it.
#[derive(Clone, Debug)]
struct Received {
    at: std::time::Instant,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    event: Value,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
    }
}

/// A tenant's endpoint: records every delivery and answers with the status it is told to; once
/// given the secret, it refuses (401) deliveries whose signature does not verify.
#[derive(Clone)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<AtomicU16>,
    secret: Arc<Mutex<Option<String>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> axum::http::StatusCode {
    let headers =
        headers.iter().map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let event = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let received = Received { at: std::time::Instant::now(), headers, body: body.to_vec(), event };
    let forged = r.secret.lock().unwrap().as_ref().is_some_and(|secret| !standard_check(secret, &received));
    r.received.lock().unwrap().push(received);
    if forged {
        return axum::http::StatusCode::UNAUTHORIZED;
    }
    axum::http::StatusCode::from_u16(r.answer.load(Ordering::SeqCst)).unwrap()
}

impl Receiver {
    async fn start() -> (Self, String) {
        let r = Receiver { received: Arc::default(), answer: Arc::new(AtomicU16::new(200)), secret: Arc::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let app = Router::new().route("/hooks", post(receive)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    fn of_type(&self, kind: &str) -> Vec<Received> {
        self.received.lock().unwrap().iter().filter(|r| r.event["type"] == kind).cloned().collect()
    }

    async fn wait_for(&self, kind: &str) -> Received {
        wait_until(&format!("a {kind} delivery"), async || !self.of_type(kind).is_empty()).await;
        self.of_type(kind).remove(0)
    }
}

/// Checks a delivery per the Standard Webhooks specification, written from it alone.
fn standard_check(secret: &str, r: &Received) -> bool {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let (id, timestamp) = (r.header("webhook-id"), r.header("webhook-timestamp"));
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let fresh = (chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap_or(0)).abs() <= 300;
    fresh && r.header("webhook-signature").split(' ').any(|s| s == expected)
}

/// Adds an endpoint as the owner; its id and the secret shown once.
async fn add_endpoint(app: &TestApp, url: &str, livemode: bool, event_types: Option<Vec<&str>>) -> (String, String) {
    let owner = app.session_cookie(Role::TenantOwner).await;
    let body = json!({ "url": url, "livemode": livemode, "event_types": event_types, "description": "orders system" });
    let (status, body) = app.json_with_cookie(Method::POST, ENDPOINTS, &owner, Some(body)).await;
    assert_eq!(status, 201, "{body}");
    (body["id"].as_str().unwrap().to_owned(), body["secret"].as_str().unwrap().to_owned())
}

fn paid(order: Uuid) -> TenantEvent {
    TenantEvent::PaymentSucceeded(OrderPaid {
        order,
        winning: Uuid::new_v4(),
        reference: "INV-1".into(),
        auction: "Spring sale".into(),
        lot: "12".into(),
        amount: Money { amount: 1200, currency: Currency::parse("usd").unwrap() },
        payment_intent: "pi_test".into(),
        risk_level: Some("normal".into()),
    })
}

async fn emit_one(app: &TestApp, livemode: bool, event: TenantEvent) {
    let mut tx = app.services.pool.begin().await.unwrap();
    emit(&mut tx, app.tenant_id().await, livemode, event).await.unwrap();
    tx.commit().await.unwrap();
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
            .post(app.url(ENDPOINTS))
            .header("cookie", &owner)
            .header("origin", &origin)
            .json(&json!({ "url": url, "livemode": true }))
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
    let (_, url) = Receiver::start().await;
    let (id, secret) = add_endpoint(&app, &url, true, None).await;
    assert!(secret.starts_with("whsec_") && STANDARD.decode(&secret[6..]).unwrap().len() == 24, "{secret}");
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let (_, endpoint) = app.json_with_cookie(Method::GET, &format!("{ENDPOINTS}{id}"), &admin, None).await;
    assert_eq!(endpoint["secret"], format!("whsec_••••••••{}", &secret[secret.len() - 4..]));
    let (_, list) = app.json_with_cookie(Method::GET, ENDPOINTS, &admin, None).await;
    assert!(!list.to_string().contains(&secret));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_encrypted FROM webhook_endpoints")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is stored in the clear");
    assert!(!crate::helpers::captured_logs().contains(&secret));
}

#[tokio::test]
async fn only_the_owner_manages_endpoints_and_each_mode_holds_ten() {
    let app = spawn_dev_app().await;
    let (_, url) = Receiver::start().await;
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let body = json!({ "url": url, "livemode": true });
    assert_eq!(app.json_with_cookie(Method::POST, ENDPOINTS, &admin, Some(body)).await.0, 403);
    for _ in 0..10 {
        add_endpoint(&app, &url, true, None).await;
    }
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (status, refused) =
        app.json_with_cookie(Method::POST, ENDPOINTS, &owner, Some(json!({ "url": url, "livemode": true }))).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("at most 10 live-mode endpoints"), "{refused}");
    // Test mode has its own ten.
    let (id, _) = add_endpoint(&app, &url, false, Some(vec!["order.updated"])).await;
    let unknown = json!({ "event_types": ["order.exploded"] });
    let (status, body) = app.json_with_cookie(Method::PATCH, &format!("{ENDPOINTS}{id}"), &owner, Some(unknown)).await;
    assert_eq!((status, body["field"].clone()), (422, json!("event_types")), "{body}");
    assert_eq!(app.json_with_cookie(Method::DELETE, &format!("{ENDPOINTS}{id}"), &admin, None).await.0, 403);
    assert_eq!(app.json_with_cookie(Method::DELETE, &format!("{ENDPOINTS}{id}"), &owner, None).await.0, 204);
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY created_at")
            .fetch_all(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(actions.iter().filter(|a| *a == "webhook.endpoint_created").count(), 11);
    assert!(actions.contains(&"webhook.endpoint_deleted".to_owned()));
}

#[tokio::test]
async fn events_reach_each_endpoint_of_their_mode_that_wants_them_once_signed_per_standard_webhooks() {
    let app = spawn_dev_app().await;
    let (everything, everything_url) = Receiver::start().await;
    let (orders_only, orders_url) = Receiver::start().await;
    let (test_mode, test_url) = Receiver::start().await;
    let (_, secret) = add_endpoint(&app, &everything_url, true, None).await;
    add_endpoint(&app, &orders_url, true, Some(vec!["order.updated"])).await;
    add_endpoint(&app, &test_url, false, None).await;

    emit_one(&app, true, paid(Uuid::new_v4())).await;
    let delivered = everything.wait_for("payment.succeeded").await;
    app.wait_for_jobs().await;
    assert!(standard_check(&secret, &delivered), "the Standard Webhooks signature does not verify");
    assert_eq!(delivered.header("webhook-id"), delivered.event["id"].as_str().unwrap());
    assert!(delivered.header("remit-signature").starts_with("t="));
    assert_eq!(delivered.event["data"]["amount"], 1200);
    assert_eq!(delivered.event["data"]["currency"], "usd");
    assert_eq!(delivered.event["livemode"], true);
    assert!(orders_only.received.lock().unwrap().is_empty(), "an endpoint got a type it did not ask for");
    assert!(test_mode.received.lock().unwrap().is_empty(), "a test-mode endpoint got a live event");
    assert_eq!(everything.received.lock().unwrap().len(), 1);

    // The log shows the delivery with the receiver's answer; redelivering sends it again.
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let (_, log) =
        app.json_with_cookie(Method::GET, &format!("{DELIVERIES}?type=payment.succeeded"), &admin, None).await;
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{log}");
    assert_eq!(deliveries[0]["status"], "succeeded");
    let id = deliveries[0]["id"].as_str().unwrap();
    let (_, detail) = app.json_with_cookie(Method::GET, &format!("{DELIVERIES}{id}"), &admin, None).await;
    assert_eq!(detail["attempts_log"][0]["status_code"], 200);
    assert!(detail["attempts_log"][0]["response_headers"]["content-length"].is_string(), "{detail}");
    assert_eq!(detail["payload"]["type"], "payment.succeeded");
    let (_, none) = app.json_with_cookie(Method::GET, &format!("{DELIVERIES}?status=failed"), &admin, None).await;
    assert_eq!(none["deliveries"], json!([]));
    let (status, _) = app.json_with_cookie(Method::POST, &format!("{DELIVERIES}{id}/redeliver"), &admin, None).await;
    assert_eq!(status, 202);
    wait_until("the redelivery", async || everything.of_type("payment.succeeded").len() == 2).await;
}

#[tokio::test]
async fn the_official_standard_webhooks_libraries_verify_deliveries() {
    let app = spawn_dev_app().await;
    let (receiver, url) = Receiver::start().await;
    let (_, secret) = add_endpoint(&app, &url, true, None).await;
    emit_one(&app, true, paid(Uuid::new_v4())).await;
    let delivered = receiver.wait_for("payment.succeeded").await;
    let headers: serde_json::Map<String, Value> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .iter()
        .map(|h| ((*h).to_owned(), Value::String(delivered.header(h).to_owned())))
        .collect();
    let input =
        json!({ "secret": secret, "headers": headers, "body": String::from_utf8(delivered.body.clone()).unwrap() });
    let tampered = json!({ "secret": secret, "headers": headers, "body": String::from_utf8(delivered.body).unwrap().replace("1200", "1") });

    let python = std::env::var("REMIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let python_check = "import json, sys\nfrom standardwebhooks.webhooks import Webhook\nd = json.load(sys.stdin)\n\
                        try:\n    Webhook(d['secret']).verify(d['body'], d['headers'])\n    print('verified')\n\
                        except Exception as e:\n    print('refused', type(e).__name__)\n";
    let node_check = "const { Webhook } = require('standardwebhooks');\nlet s = '';\nprocess.stdin.on('data', (c) => (s += c));\n\
                      process.stdin.on('end', () => {\n  const d = JSON.parse(s);\n  try { new Webhook(d.secret).verify(d.body, d.headers); console.log('verified'); }\n\
                      catch (e) { console.log('refused', e.name); }\n});\n";
    let modules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end/node_modules");
    for (input, expected) in [(&input, "verified"), (&tampered, "refused")] {
        for (program, args) in [(python.as_str(), vec!["-c", python_check]), ("node", vec!["-e", node_check])] {
            let mut child = tokio::process::Command::new(program)
                .args(&args)
                .env("NODE_PATH", &modules)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{program} runs: {e}"));
            use tokio::io::AsyncWriteExt as _;
            child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).await.unwrap();
            let output = child.wait_with_output().await.unwrap();
            let said = String::from_utf8_lossy(&output.stdout);
            assert!(said.starts_with(expected), "{program}: {said} {}", String::from_utf8_lossy(&output.stderr));
        }
    }
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_the_overlap_chosen() {
    let app = spawn_dev_app().await;
    let (receiver, url) = Receiver::start().await;
    let (id, old) = add_endpoint(&app, &url, true, None).await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    let rotate_path = format!("{ENDPOINTS}{id}/rotate-secret");
    let rotate =
        |hours: u64| app.json_with_cookie(Method::POST, &rotate_path, &owner, Some(json!({ "overlap_hours": hours })));
    let (status, body) = rotate(169).await;
    assert_eq!((status, body["field"].clone()), (422, json!("overlap_hours")), "{body}");
    let (status, rotated) = rotate(24).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string());

    emit_one(&app, true, paid(Uuid::new_v4())).await;
    let first = receiver.wait_for("payment.succeeded").await;
    assert!(standard_check(&new, &first) && standard_check(&old, &first), "both secrets verify during the overlap");
    assert_eq!(first.header("webhook-signature").split(' ').count(), 2);

    // No overlap: only the newest secret signs.
    let (_, rotated) = rotate(0).await;
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    emit_one(&app, true, paid(Uuid::new_v4())).await;
    wait_until("a second delivery", async || receiver.of_type("payment.succeeded").len() == 2).await;
    let second = receiver.of_type("payment.succeeded").pop().unwrap();
    assert!(standard_check(&newest, &second));
    assert!(!standard_check(&new, &second), "the replaced secret still verifies");
}

#[tokio::test]
async fn concurrent_events_for_one_object_are_numbered_in_order_and_linked() {
    let app = spawn_dev_app().await;
    let tenant = app.tenant_id().await;
    let order = Uuid::new_v4();
    let writers = (0..12).map(|_| {
        let pool = app.services.pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            emit(&mut tx, tenant, true, paid(order)).await.unwrap();
            tx.commit().await.unwrap();
        })
    });
    for writer in writers {
        writer.await.unwrap();
    }
    let rows: Vec<(Uuid, i64, Option<Uuid>)> = sqlx::query_as(
        "SELECT id, sequence, previous_event_id FROM webhook_events WHERE object_id = $1 ORDER BY sequence",
    )
    .bind(order.to_string())
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
    assert_eq!(rows[0].2, None);
    for pair in rows.windows(2) {
        assert_eq!(pair[1].2, Some(pair[0].0), "event {} does not point at the one before", pair[1].1);
    }
    let payload: Value = sqlx::query_scalar("SELECT payload FROM webhook_events WHERE object_id = $1 AND sequence = 2")
        .bind(order.to_string())
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(payload["object"]["type"], "order");
    assert_eq!(payload["object"]["previous_event"], format!("evt_{}", rows[0].0.simple()));
}

#[tokio::test]
async fn a_test_delivery_reports_each_phase_and_whether_the_receiver_checks_signatures() {
    let app = spawn_dev_app().await;
    let (receiver, url) = Receiver::start().await;
    let (id, secret) = add_endpoint(&app, &url, false, None).await;
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let test = format!("{ENDPOINTS}{id}/test");
    let (status, result) = app.json_with_cookie(Method::POST, &test, &admin, None).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!((result["ok"].clone(), result["status_code"].clone()), (json!(true), json!(200)));
    let timings = &result["timings"];
    // http:// to an address in the URL: no lookup, no TLS.
    assert_eq!((timings["dns_ms"].clone(), timings["tls_ms"].clone()), (Value::Null, Value::Null), "{result}");
    assert!(timings["connect_ms"].is_u64() && timings["first_byte_ms"].is_u64(), "{result}");
    assert!(timings["total_ms"].as_u64().unwrap() >= timings["first_byte_ms"].as_u64().unwrap());
    let delivered = receiver.wait_for("remit.test").await;
    assert!(standard_check(&secret, &delivered));
    assert_eq!(delivered.event["object"]["sequence"], 0);
    // This receiver answers 200 to anything, so the copy signed with a wrong secret passed too.
    assert_eq!(result["verifies_signatures"], false, "{result}");
    assert_eq!(receiver.of_type("remit.test").len(), 2);

    *receiver.secret.lock().unwrap() = Some(secret);
    let (_, result) = app.json_with_cookie(Method::POST, &test, &admin, None).await;
    assert_eq!((result["ok"].clone(), result["verifies_signatures"].clone()), (json!(true), json!(true)), "{result}");

    receiver.answer.store(503, Ordering::SeqCst);
    let (_, result) = app.json_with_cookie(Method::POST, &test, &admin, None).await;
    assert_eq!((result["ok"].clone(), result["status_code"].clone()), (json!(false), json!(503)));
    assert_eq!(result["verifies_signatures"], Value::Null);
    assert_eq!(app.count("webhook_attempts").await, 3);
}

#[tokio::test]
async fn a_test_delivery_explains_refusals_timeouts_and_tls_failures() {
    let app = spawn_dev_app().await;
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let test =
        async |id: String| app.json_with_cookie(Method::POST, &format!("{ENDPOINTS}{id}/test"), &admin, None).await.1;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (id, _) = add_endpoint(&app, &format!("http://127.0.0.1:{closed}/hooks"), true, None).await;
    let result = test(id).await;
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
    let (id, _) = add_endpoint(&app, &format!("http://127.0.0.1:{silent_port}/hooks"), true, None).await;
    let result = test(id).await;
    assert!(result["error"].as_str().unwrap().contains("did not answer within 15 seconds"), "{result}");
    assert!(result["response_time_ms"].as_u64().unwrap() >= 15_000);

    // https:// to a server that speaks plain HTTP: the TLS handshake fails.
    let (_, plain_url) = Receiver::start().await;
    let (id, _) = add_endpoint(&app, &plain_url.replace("http://", "https://"), true, None).await;
    let result = test(id).await;
    assert!(result["error"].as_str().unwrap().contains("TLS"), "{result}");
}

#[tokio::test]
async fn gone_disables_an_endpoint_at_once_and_tells_the_owner() {
    let app = spawn_dev_app().await;
    let (receiver, url) = Receiver::start().await;
    receiver.answer.store(410, Ordering::SeqCst);
    let (id, _) = add_endpoint(&app, &url, true, None).await;
    emit_one(&app, true, paid(Uuid::new_v4())).await;
    receiver.wait_for("payment.succeeded").await;
    app.wait_for_jobs().await;
    let (enabled, reason): (bool, Option<String>) =
        sqlx::query_as("SELECT enabled, disabled_reason FROM webhook_endpoints WHERE id = $1")
            .bind(Uuid::parse_str(&id).unwrap())
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!((enabled, reason.as_deref()), (false, Some("gone")));
    let status: String =
        sqlx::query_scalar("SELECT status::text FROM webhook_deliveries").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!(status, "failed", "a 410 is not retried");
    let subject: String = sqlx::query_scalar(
        "SELECT subject FROM emails WHERE to_address = 'owner@northwind.example' AND subject LIKE '%webhook%'",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(subject, "Your Remit webhook endpoint was disabled");
    // A disabled endpoint is owed nothing new.
    emit_one(&app, true, paid(Uuid::new_v4())).await;
    assert_eq!(app.count("webhook_deliveries").await, 1);
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_after_a_warning_the_day_before() {
    let app = spawn_dev_app().await;
    let (receiver, url) = Receiver::start().await;
    receiver.answer.store(500, Ordering::SeqCst);
    let (id, _) = add_endpoint(&app, &url, true, None).await;
    let id = Uuid::parse_str(&id).unwrap();
    let failing = |days: i32| {
        let pool = app.services.pool.clone();
        async move {
            // The endpoint's failing spell began `days` ago (the clock the rule reads).
            sqlx::query("UPDATE webhook_endpoints SET failing_since = now() - make_interval(days => $2) WHERE id = $1")
                .bind(id)
                .bind(days)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let owner_emails = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT subject FROM emails WHERE to_address = 'owner@northwind.example' AND subject LIKE '%webhook%' ORDER BY created_at",
        )
        .fetch_all(&app.services.pool)
        .await
        .unwrap()
    };

    emit_one(&app, true, paid(Uuid::new_v4())).await;
    receiver.wait_for("payment.succeeded").await;
    app.wait_for_jobs().await;
    let next: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT next_attempt_at FROM webhook_deliveries")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    let pause = next.unwrap() - chrono::Utc::now();
    assert!(pause > chrono::Duration::seconds(3) && pause <= chrono::Duration::seconds(6), "{pause}");
    assert!(owner_emails().await.is_empty());

    failing(4).await;
    emit_one(&app, true, paid(Uuid::new_v4())).await;
    wait_until("the warning", async || owner_emails().await.len() == 1).await;
    assert_eq!(owner_emails().await, ["Your Remit webhook endpoint is failing"]);

    failing(5).await;
    emit_one(&app, true, paid(Uuid::new_v4())).await;
    wait_until("the endpoint disabled", async || {
        let enabled: bool = sqlx::query_scalar("SELECT enabled FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
        !enabled
    })
    .await;
    assert_eq!(
        owner_emails().await,
        ["Your Remit webhook endpoint is failing", "Your Remit webhook endpoint was disabled"]
    );
    assert_eq!(app.count("alerts").await, 1);
}

#[tokio::test]
async fn a_replay_sends_what_an_endpoint_missed_once() {
    let app = spawn_dev_app().await;
    // Recorded while the tenant had no endpoint at all.
    emit_one(&app, true, paid(Uuid::new_v4())).await;
    emit_one(&app, true, paid(Uuid::new_v4())).await;
    emit_one(&app, false, paid(Uuid::new_v4())).await;
    let (receiver, url) = Receiver::start().await;
    let (id, _) = add_endpoint(&app, &url, true, None).await;
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let replay_path = format!("{ENDPOINTS}{id}/replay");
    let replay = |since: chrono::DateTime<chrono::Utc>| {
        app.json_with_cookie(Method::POST, &replay_path, &admin, Some(json!({ "since": since })))
    };
    let (status, body) = replay(chrono::Utc::now() - chrono::Duration::days(31)).await;
    assert_eq!((status, body["field"].clone()), (422, json!("since")), "{body}");
    let (status, replayed) = replay(chrono::Utc::now() - chrono::Duration::hours(1)).await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed, json!({ "added": 2, "retried": 0 }));
    wait_until("the replayed events", async || receiver.of_type("payment.succeeded").len() == 2).await;
    app.wait_for_jobs().await;
    let (_, again) = replay(chrono::Utc::now() - chrono::Duration::hours(1)).await;
    assert_eq!(again, json!({ "added": 0, "retried": 0 }));
    app.wait_for_jobs().await;
    assert_eq!(receiver.received.lock().unwrap().len(), 2, "a replay sent something twice");
}

#[tokio::test]
async fn a_rate_limit_holds_across_two_processes() {
    let app = spawn_dev_app().await;
    let _second = SecondProcess::start_with(&app, &[("APP_ENV", "development")]).await;
    let (receiver, url) = Receiver::start().await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    let body = json!({ "url": url, "livemode": true, "rate_limit": 5 });
    let (status, endpoint) = app.json_with_cookie(Method::POST, ENDPOINTS, &owner, Some(body)).await;
    assert_eq!((status, endpoint["rate_limit"].clone()), (201, json!(5)), "{endpoint}");
    // Twenty-five events due at once, for both processes' dispatchers to claim.
    let mut tx = app.services.pool.begin().await.unwrap();
    for _ in 0..25 {
        emit(&mut tx, app.tenant_id().await, true, paid(Uuid::new_v4())).await.unwrap();
    }
    tx.commit().await.unwrap();
    wait_until("twenty-five deliveries", async || receiver.of_type("payment.succeeded").len() == 25).await;
    let arrivals: Vec<std::time::Instant> = receiver.of_type("payment.succeeded").iter().map(|r| r.at).collect();
    // Five may go at once (a second's worth), then one every fifth of a second: the last is sent
    // four seconds after the first. Unlimited, all 25 arrive within a fraction of a second; the
    // bound leaves 1.5 s for a busy machine delaying the first arrivals more than the last.
    let spread = *arrivals.last().unwrap() - arrivals[0];
    assert!(spread >= std::time::Duration::from_millis(2_500), "25 deliveries in {spread:?} at 5 a second");
    let ids: std::collections::BTreeSet<String> =
        receiver.of_type("payment.succeeded").iter().map(|r| r.event["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 25, "an event was delivered twice");
    let (status, body) = app
        .json_with_cookie(
            Method::PATCH,
            &format!("{ENDPOINTS}{}", endpoint["id"].as_str().unwrap()),
            &owner,
            Some(json!({ "rate_limit": 0 })),
        )
        .await;
    assert_eq!((status, body["field"].clone()), (422, json!("rate_limit")), "{body}");
}

#[tokio::test]
async fn an_endpoint_failing_every_attempt_is_paused_then_probed_and_resumed() {
    let app = spawn_dev_app().await;
    let (receiver, url) = Receiver::start().await;
    receiver.answer.store(500, Ordering::SeqCst);
    let (id, _) = add_endpoint(&app, &url, true, None).await;
    let id = Uuid::parse_str(&id).unwrap();
    for _ in 0..domain::tenant_webhooks::delivery::CIRCUIT_AFTER {
        emit_one(&app, true, paid(Uuid::new_v4())).await;
    }
    wait_until("five failed attempts", async || receiver.received.lock().unwrap().len() == 5).await;
    app.wait_for_jobs().await;
    let paused: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT paused_until FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    let pause = paused.expect("the circuit opened") - chrono::Utc::now();
    assert!(pause > chrono::Duration::seconds(50) && pause <= chrono::Duration::seconds(60), "{pause}");
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let (_, endpoint) = app.json_with_cookie(Method::GET, &format!("{ENDPOINTS}{id}"), &admin, None).await;
    assert!(endpoint["paused_until"].is_string(), "{endpoint}");

    // While paused nothing is sent: a new event waits, its attempt not counted.
    emit_one(&app, true, paid(Uuid::new_v4())).await;
    app.wait_for_jobs().await;
    assert_eq!(receiver.received.lock().unwrap().len(), 5);
    let waiting: (i32, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT attempts, next_attempt_at FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(id)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(waiting.0, 0);
    assert!(waiting.1.unwrap() >= paused.unwrap() - chrono::Duration::milliseconds(1));

    // The pause runs out (the clock moved on) and the receiver is fixed: one probe, then the rest.
    receiver.answer.store(200, Ordering::SeqCst);
    sqlx::query("UPDATE webhook_endpoints SET paused_until = now() WHERE id = $1")
        .bind(id)
        .execute(&app.services.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE endpoint_id = $1 AND status = 'pending'")
        .bind(id)
        .execute(&app.services.pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('remit_webhook_deliveries', '')").execute(&app.services.pool).await.unwrap();
    wait_until("every event delivered", async || {
        let delivered: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'succeeded'",
        )
        .bind(id)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
        delivered == 6
    })
    .await;
    let (failures, paused): (i32, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT consecutive_failures, paused_until FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!((failures, paused), (0, None), "a success closes the circuit");
}

/// One event of every type, as Remit would send it.
fn one_of_each() -> Vec<TenantEvent> {
    use domain::{
        refunds::RefundStatus,
        stripe::requirements::Requirements,
        tenant_webhooks::events::{OnboardingUpdated, OrderUpdated, ReceiptSent, StripeAccountUpdated, TestMessage},
    };
    let order = Uuid::new_v4();
    vec![
        TenantEvent::Test(TestMessage { endpoint: Uuid::new_v4(), message: "hello".into() }),
        TenantEvent::StripeAccountUpdated(StripeAccountUpdated {
            stripe_account: "acct_1".into(),
            charges_enabled: true,
            payouts_enabled: false,
            requirements: Requirements::from_stripe(&Value::Null),
        }),
        paid(order),
        TenantEvent::OrderCreated(match paid(order) {
            TenantEvent::PaymentSucceeded(p) => p,
            _ => unreachable!(),
        }),
        TenantEvent::OrderUpdated(OrderUpdated {
            order,
            winning: Uuid::new_v4(),
            reference: "INV-1".into(),
            lot: "12".into(),
            status: "refunded".into(),
            amount: Money { amount: 1200, currency: Currency::parse("usd").unwrap() },
            refunded_amount: 1200,
            payment_intent: "pi_test".into(),
        }),
        TenantEvent::ReceiptSent(ReceiptSent {
            order,
            winning: Uuid::new_v4(),
            reference: "INV-1".into(),
            receipt_number: "R-1".into(),
            sha256: "ab".into(),
            receipt_url: "/api/v1/winnings/x/receipt".into(),
        }),
        TenantEvent::OnboardingUpdated(OnboardingUpdated {
            consultant: Uuid::new_v4(),
            stripe_account: "acct_2".into(),
            charges_enabled: true,
            payouts_enabled: true,
            details_submitted: true,
            requirements_due: 0,
        }),
        TenantEvent::RefundCreated(refund(RefundStatus::Pending)),
        TenantEvent::RefundUpdated(refund(RefundStatus::Failed)),
        TenantEvent::PaymentFailed(domain::tenant_webhooks::events::PaymentFailed {
            winning: Uuid::new_v4(),
            reference: "AUC-1".into(),
            lot: "42".into(),
            amount: domain::money::Money::stored(5_000, "usd").unwrap(),
            failure_code: Some("card_declined".into()),
            reason: "Your card was declined. Try another card.".into(),
            attempts_left: 2,
        }),
        TenantEvent::WinningExpired(winning("expired")),
        TenantEvent::WinningFailed(winning("failed")),
        TenantEvent::WinningCancelled(winning("cancelled")),
        TenantEvent::WinningOfferedToRunnerUp(domain::tenant_webhooks::events::RunnerUpOffered {
            winning: Uuid::new_v4(),
            previous_winning: Uuid::new_v4(),
            reference: "AUC-1-R1".into(),
            auction: "Spring sale".into(),
            lot: "42".into(),
            amount: domain::money::Money::stored(4_500, "usd").unwrap(),
            position: 1,
            pay_by: chrono::Utc::now(),
        }),
        TenantEvent::FeePaid(domain::tenant_webhooks::events::FeePaid {
            fee: Uuid::new_v4(),
            order: Uuid::new_v4(),
            consultant: Uuid::new_v4(),
            description: "Tax return 2026".into(),
            amount: domain::money::Money::stored(12_000, "usd").unwrap(),
            due_on: chrono::Utc::now().date_naive(),
            payment_intent: "pi_1".into(),
            risk_level: Some("normal".into()),
        }),
        TenantEvent::FeeFailed(domain::tenant_webhooks::events::FeeFailed {
            fee: Uuid::new_v4(),
            consultant: Uuid::new_v4(),
            description: "Tax return 2026".into(),
            amount: domain::money::Money::stored(12_000, "usd").unwrap(),
            failure_code: Some("card_declined".into()),
            reason: "Your card was declined. Try another card.".into(),
        }),
        TenantEvent::FeeRefunded(domain::tenant_webhooks::events::FeeRefunded {
            fee: Uuid::new_v4(),
            order: Uuid::new_v4(),
            refund: Uuid::new_v4(),
            consultant: Uuid::new_v4(),
            description: "Tax return 2026".into(),
            amount: domain::money::Money::stored(5_000, "usd").unwrap(),
            reason: "Overbilled two hours".into(),
            stripe_refund: "re_123".into(),
        }),
    ]
}

fn winning(status: &str) -> domain::tenant_webhooks::events::WinningChanged {
    domain::tenant_webhooks::events::WinningChanged {
        winning: Uuid::new_v4(),
        reference: "AUC-1".into(),
        auction: "Spring sale".into(),
        lot: "42".into(),
        amount: domain::money::Money::stored(5_000, "usd").unwrap(),
        status: status.into(),
        pay_by: chrono::Utc::now(),
        reason: None,
    }
}

fn refund(status: domain::refunds::RefundStatus) -> domain::tenant_webhooks::events::RefundChanged {
    domain::tenant_webhooks::events::RefundChanged {
        refund: Uuid::new_v4(),
        winning: Uuid::new_v4(),
        order: Uuid::new_v4(),
        reference: "AUC-1".into(),
        lot: "42".into(),
        amount: domain::money::Money::stored(5_000, "usd").unwrap(),
        status,
        reason: "Damaged".into(),
        stripe_refund: "re_1".into(),
        failure_reason: None,
    }
}

#[test]
fn the_documents_describe_every_event_type_and_every_field_sent() {
    let spec: Value = serde_json::from_str(include_str!("../../src/api/openapi.json")).unwrap();
    let docs = include_str!("../../../docs/webhooks.md");
    let events = one_of_each();
    let kinds: std::collections::BTreeSet<&str> = events.iter().map(TenantEvent::kind).collect();
    assert_eq!(kinds, TenantEvent::TYPES.into_iter().collect(), "a type without an example here");
    let documented_types: std::collections::BTreeSet<&str> =
        spec["webhooks"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(documented_types, kinds, "the OpenAPI document's webhooks and Remit's events differ");
    for event in events {
        let kind = event.kind();
        let sent = serde_json::to_value(&event).unwrap();
        assert!(docs.contains(&format!("`{kind}`")), "docs/webhooks.md does not name {kind}");
        let body = &spec["webhooks"][kind]["post"]["requestBody"]["content"]["application/json"]["schema"];
        let schema_name = body["properties"]["data"]["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
        let schema = &spec["components"]["schemas"][schema_name];
        let documented: std::collections::BTreeSet<&String> =
            schema["properties"].as_object().unwrap().keys().collect();
        let fields: std::collections::BTreeSet<&String> = sent["data"].as_object().unwrap().keys().collect();
        assert_eq!(fields, documented, "{kind}: the fields sent and the OpenAPI schema {schema_name} differ");
        for field in fields {
            assert!(docs.contains(&format!("`{field}`")), "docs/webhooks.md does not describe {kind}'s {field}");
        }
    }
}

#[tokio::test]
async fn the_master_key_changes_without_losing_a_secret() {
    use domain::{config::EncryptionKey, crypto};
    let app = spawn_dev_app().await;
    let (_, url) = Receiver::start().await;
    let (id, secret) = add_endpoint(&app, &url, true, None).await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    // A rotation leaves two sealed secrets on the endpoint.
    let (_, rotated) =
        app.json_with_cookie(Method::POST, &format!("{ENDPOINTS}{id}/rotate-secret"), &owner, Some(json!({}))).await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    let old_key: [u8; 32] = STANDARD.decode(crate::helpers::TEST_KEY).unwrap().try_into().unwrap();
    let new_key = [9u8; 32];
    let rotate = || async {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_remit"))
            .arg("rotate-encryption-key")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:5432/{}", app.db_name))
            .env("REMIT_ENCRYPTION_KEY", STANDARD.encode(new_key))
            .env("REMIT_ENCRYPTION_KEY_PREVIOUS", crate::helpers::TEST_KEY)
            .env("RUST_LOG", "warn")
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let said = rotate().await;
    assert!(said.starts_with("re-encrypted "), "{said}");
    assert!(said.contains("2 webhook secrets"), "{said}");
    assert!(!said.contains(&secret) && !said.contains(&new_secret));

    let (current, previous): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT secret_encrypted, previous_secret_encrypted FROM webhook_endpoints WHERE id = $1")
            .bind(Uuid::parse_str(&id).unwrap())
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    // The new key alone opens both; the old one no longer opens either.
    let alone = EncryptionKey::from_bytes(new_key);
    assert_eq!(crypto::decrypt_string(&alone, &current).unwrap(), new_secret);
    assert_eq!(crypto::decrypt_string(&alone, &previous).unwrap(), secret);
    assert!(crypto::decrypt(&EncryptionKey::from_bytes(old_key), &current).is_err());
    // Running it again changes nothing.
    assert!(rotate().await.starts_with("re-encrypted 0 "));
}
