//! Buyer checkout against the sandbox: winnings registered with an API key, the payment link,
//! Checkout attempts, and the order that events create exactly once.

use domain::auth::Role;
use reqwest::{Method, header};
use serde_json::{Value, json};
use stripe_sandbox::DeliveryMode;

use crate::{
    billing::{flush, pay},
    helpers::{TestApp, spawn_app},
    tenant_stripe::connected,
};

/// A test API key of the demo tenant.
pub(crate) async fn api_key(app: &TestApp) -> String {
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (status, body) = app
        .json_with_cookie(Method::POST, "/api/v1/auth/tenants/api-keys/", &owner, Some(json!({ "mode": "test" })))
        .await;
    assert_eq!(status, 201, "{body}");
    body["key"]["secret"].as_str().unwrap().to_owned()
}

pub(crate) fn winning(reference: &str, amount: i64) -> Value {
    json!({ "reference": reference, "auction": "Spring sale", "lot": "42", "description": "Victorian clock",
            "buyer_email": "buyer@example.com", "amount": amount, "currency": "usd" })
}

/// The payment link token from the buyer's latest email, as the buyer received it.
pub(crate) async fn payment_token(app: &TestApp) -> String {
    let link = app.latest_link("buyer@example.com", &app.url("/pay/")).await;
    link.rsplit('/').next().unwrap().to_owned()
}

/// A connected tenant with one registered win of `amount` cents; returns the buyer's token.
pub(crate) async fn won_lot(app: &TestApp, amount: i64) -> String {
    connected(app).await;
    let key = api_key(app).await;
    let (status, body) =
        app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("AUC-1-L42", amount))).await;
    assert_eq!(status, 201, "{body}");
    payment_token(app).await
}

pub(crate) async fn start(app: &TestApp, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("/payments/checkout/create"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

pub(crate) fn session_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

pub(crate) async fn bid(app: &TestApp) -> (String, i32, i32) {
    sqlx::query_as("SELECT status, attempts, failures FROM winning_bids").fetch_one(&app.services.pool).await.unwrap()
}

#[tokio::test]
async fn a_win_registered_by_api_key_emails_the_buyer_once_and_is_idempotent_on_the_reference() {
    let app = spawn_app().await;
    connected(&app).await;
    let key = api_key(&app).await;
    let (status, first) =
        app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("AUC-1-L42", 12_500))).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!((first["status"].as_str(), first["livemode"].as_bool()), (Some("awaiting_payment"), Some(false)));
    let window = chrono::DateTime::parse_from_rfc3339(first["pay_by"].as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(first["won_at"].as_str().unwrap()).unwrap();
    assert_eq!(window.num_hours(), 24);
    let (status, again) =
        app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("AUC-1-L42", 12_500))).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]), "the same reference is the same win");
    let (status, _) =
        app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("AUC-1-L42", 99_900))).await;
    assert_eq!(status, 409, "a reference cannot change its amount");
    let emails: i64 = sqlx::query_scalar("SELECT count(*) FROM emails WHERE to_address = 'buyer@example.com'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(emails, 1);
    let token = payment_token(&app).await;
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT token_hash FROM winning_bids").fetch_one(&app.services.pool).await.unwrap();
    assert_ne!(stored, token.as_bytes(), "only a hash of the link token is kept");
    let page = reqwest::get(app.url(&format!("/pay/{token}"))).await.unwrap().text().await.unwrap();
    assert!(page.contains("$125.00") && page.contains("left to pay"), "{page}");

    let (status, body) =
        app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(json!({ "reference": "x" }))).await;
    assert_eq!(status, 400, "{body}");
    let mut bad = winning("AUC-2", 10);
    bad["buyer_email"] = json!("nobody");
    let (status, body) = app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(bad)).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("buyer_email")));
}

#[tokio::test]
async fn a_bid_of_another_tenant_or_mode_is_not_found() {
    let app = spawn_app().await;
    let key = api_key(&app).await;
    let (_, win) = app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("AUC-1", 5_000))).await;
    let id = win["id"].as_str().unwrap();
    assert_eq!(app.json_with_key(Method::GET, &format!("/api/v1/winnings/{id}"), &key, None).await.0, 200);
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (_, live) = app
        .json_with_cookie(Method::POST, "/api/v1/auth/tenants/api-keys/", &owner, Some(json!({ "mode": "live" })))
        .await;
    let live_key = live["key"]["secret"].as_str().unwrap();
    let (status, body) = app.json_with_key(Method::GET, &format!("/api/v1/winnings/{id}"), live_key, None).await;
    assert_eq!(status, 404, "a live key does not see test data: {body}");
    assert!(!body.to_string().contains("buyer@example.com"), "nothing is revealed");
    let (status, _) =
        app.json_with_key(Method::GET, &format!("/api/v1/winnings/{}", uuid::Uuid::new_v4()), &key, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_full_payment_with_4242_creates_one_order_and_tells_the_tenant() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Duplicate);
    let token = won_lot(&app, 12_500).await;
    let (status, body) = start(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    let url = body["url"].as_str().unwrap().to_owned();
    assert_eq!(start(&app, &token).await.1["url"], url, "the open session is reused");
    let (status, back) = pay(&url, "4242424242424242").await;
    assert_eq!(status, 303);
    assert!(back.unwrap().starts_with(&app.url("/pay/complete?session=cs_")));
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    flush(&app).await;
    app.wait_for_jobs().await;

    let session = session_of(&url);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while bid(&app).await.0 != "paid" {
        assert!(tokio::time::Instant::now() < deadline, "the payment events were not applied");
        tokio::task::yield_now().await;
        app.wait_for_jobs().await;
    }
    assert_eq!(app.count("orders").await, 1, "one order, however often the events arrive");
    let (amount, status): (i64, String) =
        sqlx::query_as("SELECT amount, status FROM orders").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!((amount, status.as_str()), (12_500, "paid"));
    let events: Vec<String> = sqlx::query_scalar("SELECT type FROM webhook_events ORDER BY type")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(events, ["order.created", "payment.succeeded", "receipt.sent"]);
    let status: Value =
        reqwest::get(app.url(&format!("/payments/checkout/{session}/status"))).await.unwrap().json().await.unwrap();
    assert_eq!((status["bid_status"].as_str(), status["session_status"].as_str()), (Some("paid"), Some("complete")));
    let page = reqwest::get(app.url(&format!("/pay/complete?session={session}"))).await.unwrap().text().await.unwrap();
    assert!(page.contains("Payment received"), "{page}");
    let (status, body) = start(&app, &token).await;
    assert_eq!(status, 409, "{body}");

    // The tenant's account received the funds, less the platform fee.
    let intent: String =
        sqlx::query_scalar("SELECT stripe_payment_intent_id FROM orders").fetch_one(&app.services.pool).await.unwrap();
    let (_, pi) = app.stripe(Method::GET, &format!("/v1/payment_intents/{intent}"), &[]).await;
    assert_eq!(pi["application_fee_amount"], 625, "5 % of $125.00");
    assert!(pi["transfer_data"]["destination"].as_str().unwrap().starts_with("acct_"));
    assert_eq!(pi["metadata"]["lot"], "42");
}

#[tokio::test]
async fn a_declined_card_is_explained_and_a_retry_with_a_good_card_pays() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    let url = body["url"].as_str().unwrap().to_owned();
    assert_eq!(pay(&url, "4000000000000002").await.0, 402);
    flush(&app).await;
    assert_eq!(bid(&app).await, ("awaiting_payment".into(), 1, 1));
    let status: Value = reqwest::get(app.url(&format!("/payments/checkout/{}/status", session_of(&url))))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["failure_message"], "Your card was declined. Try another card.");
    assert_eq!(pay(&url, "4242424242424242").await.0, 303, "the same page takes another card");
    flush(&app).await;
    assert_eq!(bid(&app).await.0, "paid");
    assert_eq!(app.count("orders").await, 1);
}

#[tokio::test]
async fn amounts_over_500_usd_ask_for_3d_secure_which_can_fail_and_then_succeed() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let token = won_lot(&app, 125_000).await;
    let (_, body) = start(&app, &token).await;
    let url = body["url"].as_str().unwrap().to_owned();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (status, challenge) = pay(&url, "4242424242424242").await;
    assert_eq!(status, 303);
    let challenge = challenge.unwrap();
    assert!(challenge.starts_with("/3ds/"), "even a 4242 card is challenged above $500: {challenge}");
    http.post(format!("{}{challenge}", app.sandbox.url())).form(&[("decision", "fail")]).send().await.unwrap();
    flush(&app).await;
    assert_eq!(bid(&app).await.2, 1, "the failed authentication counts as a failed attempt");
    let reported: i64 =
        sqlx::query_scalar("SELECT count(*) FROM security_events WHERE kind = 'payment.authentication_failed'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(reported, 1);
    let (_, challenge) = pay(&url, "4242424242424242").await;
    http.post(format!("{}{}", app.sandbox.url(), challenge.unwrap()))
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    flush(&app).await;
    assert_eq!(bid(&app).await.0, "paid");
}

#[tokio::test]
async fn the_third_failure_ends_the_bid() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    let url = body["url"].as_str().unwrap().to_owned();
    for card in ["4000000000000002", "4000000000009995", "4000000000000002"] {
        assert_eq!(pay(&url, card).await.0, 402);
        flush(&app).await;
    }
    assert_eq!(bid(&app).await, ("failed".into(), 1, 3));
    let reported: Vec<String> =
        sqlx::query_scalar("SELECT severity FROM security_events WHERE kind = 'payment.failed_three_times'")
            .fetch_all(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(reported, ["warning"], "the closed bid is a security event");
    let (status, body) = start(&app, &token).await;
    assert_eq!(status, 409);
    assert!(body["message"].as_str().unwrap().contains("failed three times"), "{body}");
    let retry =
        reqwest::Client::new().post(app.url(&format!("/payments/retry/{}", session_of(&url)))).send().await.unwrap();
    assert_eq!(retry.status(), 409);
}

#[tokio::test]
async fn after_the_window_the_page_says_closed_and_the_job_marks_the_bid_expired() {
    let app = spawn_app().await;
    let token = won_lot(&app, 12_500).await;
    // As if the 24 hours had passed: the expiry job was scheduled for the window's end.
    sqlx::query("UPDATE winning_bids SET pay_by = now() - interval '1 second', won_at = now() - interval '24 hours'")
        .execute(&app.services.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE graphile_worker._private_jobs SET run_at = now() WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'expire_winning')")
        .execute(&app.services.pool)
        .await
        .unwrap();
    app.wait_for_jobs().await;
    assert_eq!(bid(&app).await.0, "expired");
    let page = reqwest::get(app.url(&format!("/pay/{token}"))).await.unwrap().text().await.unwrap();
    assert!(page.contains("Payment window closed"), "{page}");
    let (status, body) = start(&app, &token).await;
    assert_eq!((status, body["message"].as_str()), (409, Some("The 24-hour payment window has closed.")));
}

#[tokio::test]
async fn a_retry_opens_a_new_attempt_after_the_backoff_and_only_three_attempts() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    let first = body["url"].as_str().unwrap().to_owned();
    assert_eq!(pay(&first, "4000000000000002").await.0, 402);
    flush(&app).await;
    // The buyer abandons that page; it expires.
    app.stripe(Method::POST, &format!("/v1/checkout/sessions/{}/expire", session_of(&first)), &[]).await;
    flush(&app).await;
    let retry = |session: String| {
        let url = app.url(&format!("/payments/retry/{session}"));
        async move { reqwest::Client::new().post(url).send().await.unwrap() }
    };
    let waiting = retry(session_of(&first)).await;
    assert_eq!(waiting.status(), 429, "backoff after a failure");
    assert!(waiting.headers().contains_key(header::RETRY_AFTER));
    sqlx::query("UPDATE winning_bids SET next_attempt_at = now()").execute(&app.services.pool).await.unwrap();
    let second = retry(session_of(&first)).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_ne!(second["url"], first.as_str(), "a new Checkout Session");
    assert_eq!(bid(&app).await.1, 2);
}

#[tokio::test]
async fn refunds_and_disputes_are_reflected_on_the_order() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    // This test card pays, then the buyer's bank opens a dispute.
    assert_eq!(pay(body["url"].as_str().unwrap(), "4000000000000259").await.0, 303);
    flush(&app).await;
    // An event whose application failed (and says why in `last_error`) is retried 5 s later.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status: String =
            sqlx::query_scalar("SELECT status FROM orders").fetch_one(&app.services.pool).await.unwrap();
        if status == "disputed" {
            break;
        }
        let errors: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT type, last_error FROM stripe_events WHERE last_error IS NOT NULL")
                .fetch_all(&app.services.pool)
                .await
                .unwrap();
        assert!(
            tokio::time::Instant::now() < deadline,
            "the order is {status}, not disputed; failed events: {errors:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.wait_for_jobs().await;
    }
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE kind = 'payment.disputed'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(alerts, 1, "admins are alerted");

    let second = {
        // Another win, paid and then partly refunded by the tenant in Stripe.
        let key_api = api_key(&app).await;
        app.json_with_key(Method::POST, "/api/v1/winnings", &key_api, Some(winning("AUC-1-L43", 20_000))).await;
        let token = payment_token(&app).await;
        let (_, body) = start(&app, &token).await;
        pay(body["url"].as_str().unwrap(), "4242424242424242").await;
        flush(&app).await;
        sqlx::query_scalar::<_, String>("SELECT o.stripe_payment_intent_id FROM orders o JOIN winning_bids b ON b.id = o.bid_id WHERE b.reference = 'AUC-1-L43'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap()
    };
    let (status, _) =
        app.stripe(Method::POST, "/v1/refunds", &[("payment_intent", second.as_str()), ("amount", "5000")]).await;
    assert_eq!(status, 200);
    flush(&app).await;
    let (status, refunded): (String, i64) =
        sqlx::query_as("SELECT status, refunded_amount FROM orders WHERE stripe_payment_intent_id = $1")
            .bind(&second)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), refunded), ("partially_refunded", 5_000));

    // The tenant's system is told of each change once, however often Stripe repeats itself.
    app.sandbox.set_delivery_mode(DeliveryMode::Duplicate);
    let (status, _) = app.stripe(Method::POST, "/v1/refunds", &[("payment_intent", second.as_str())]).await;
    assert_eq!(status, 200, "the rest is refunded");
    flush(&app).await;
    let updates: Vec<Value> = sqlx::query_scalar(
        "SELECT payload->'data' FROM webhook_events WHERE type = 'order.updated' ORDER BY created_at, payload->'data'->>'refunded_amount'",
    )
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    let told: Vec<(&str, &str, i64)> = updates
        .iter()
        .map(|d| {
            (d["reference"].as_str().unwrap(), d["status"].as_str().unwrap(), d["refunded_amount"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(
        told,
        [("AUC-1-L42", "disputed", 0), ("AUC-1-L43", "partially_refunded", 5_000), ("AUC-1-L43", "refunded", 20_000)]
    );
    assert_eq!(updates[2]["payment_intent"], second.as_str());
}

#[tokio::test]
async fn concurrent_and_reordered_deliveries_apply_each_event_exactly_once() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Concurrent);
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    let url = body["url"].as_str().unwrap().to_owned();
    // A decline first, then the payment: every event of both is delivered twice at once.
    assert_eq!(pay(&url, "4000000000000002").await.0, 402);
    assert_eq!(pay(&url, "4242424242424242").await.0, 303);
    // Both copies of the events that settle the payment have been answered.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let answered = |kind: &str| {
            app.sandbox.deliveries().iter().filter(|d| d.event_type == kind && d.status == Some(200)).count()
        };
        if answered("checkout.session.completed") == 2 && answered("payment_intent.succeeded") == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the payment's events were not delivered twice");
        tokio::task::yield_now().await;
    }
    app.wait_for_jobs().await;
    let (stored, applied): (i64, i64) = sqlx::query_as("SELECT count(*), count(applied_at) FROM stripe_events")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(stored, applied, "every stored event was applied");
    assert_eq!(bid(&app).await.0, "paid");
    assert_eq!(app.count("orders").await, 1);
    assert_eq!(app.count("receipts").await, 1);
    let outcomes: Vec<bool> = sqlx::query_scalar("SELECT succeeded FROM payment_outcomes ORDER BY succeeded")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(outcomes, [false, true]);
    let tenant_events: Vec<String> = sqlx::query_scalar("SELECT type FROM webhook_events ORDER BY type")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(tenant_events, ["order.created", "payment.failed", "payment.succeeded", "receipt.sent"], "each once");
}
