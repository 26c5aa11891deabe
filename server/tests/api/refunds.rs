//! Refunds against the sandbox: by API key (with Idempotency-Key) and from the winning's page,
//! the destination charge's transfer and fee moving back, credit notes numbered without gaps and
//! verifiable, Stripe's refusal storing nothing, refunds made in Stripe's dashboard, repeated and
//! reordered events, concurrent requests, and disputes as Stripe reports them.

use domain::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use stripe_sandbox::DeliveryMode;
use uuid::Uuid;

use crate::{
    billing::{flush, pay},
    checkout::{api_key, start, won_lot},
    helpers::{TestApp, spawn_app, wait_until},
    receipts::{assert_well_formed, paid, pdf_tool},
};

/// The id of the only winning of this test's app.
async fn winning_id(app: &TestApp) -> Uuid {
    sqlx::query_scalar("SELECT id FROM winning_bids").fetch_one(&app.services.pool).await.unwrap()
}

/// `POST /api/v1/winnings/{id}/refunds` with an API key and, when given, an Idempotency-Key.
pub(crate) async fn refund(
    app: &TestApp,
    key: &str,
    winning: Uuid,
    body: Value,
    idempotency: Option<&str>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/winnings/{winning}/refunds")))
        .bearer_auth(key)
        .json(&body);
    if let Some(idempotency) = idempotency {
        request = request.header("Idempotency-Key", idempotency);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// A paid $125.00 lot and a test API key.
pub(crate) async fn paid_lot(app: &TestApp) -> (String, Uuid) {
    let token = won_lot(app, 12_500).await;
    paid(app, &token).await;
    (api_key(app).await, winning_id(app).await)
}

async fn refund_rows(app: &TestApp) -> Vec<(i64, String, Option<String>)> {
    sqlx::query_as("SELECT amount, status::text, stripe_refund_id FROM refunds ORDER BY created_at, id")
        .fetch_all(&app.services.pool)
        .await
        .unwrap()
}

fn types(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(t, _)| t.as_str()).collect()
}

async fn tenant_events(app: &TestApp, prefix: &str) -> Vec<(String, Value)> {
    sqlx::query_as("SELECT type, payload->'data' FROM webhook_events WHERE type LIKE $1 || '%' ORDER BY created_at, id")
        .bind(prefix)
        .fetch_all(&app.services.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tenant_refunds_half_then_the_rest_and_the_buyer_gets_a_verifiable_credit_note_for_each() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Duplicate);
    let (key, winning) = paid_lot(&app).await;

    let half = json!({ "amount": 6_250, "reason": "Frame damaged in transit" });
    let (status, first) = refund(&app, &key, winning, half.clone(), Some("rf-1")).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!((first["amount"].as_i64(), first["currency"].as_str()), (Some(6_250), Some("usd")));
    let (status, again) = refund(&app, &key, winning, half, Some("rf-1")).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]), "the same key and body: the same refund");
    let (status, body) = refund(&app, &key, winning, json!({ "amount": 100, "reason": "Another" }), Some("rf-1")).await;
    assert_eq!(status, 409, "the same key with another body: {body}");
    let (status, body) = refund(&app, &key, winning, json!({ "amount": 6_251, "reason": "Too much" }), None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("at most $62.50"), "{body}");
    flush(&app).await;

    // On Stripe: one refund, the connected account's share and the platform's fee back in proportion.
    let (_, refunds) = app.stripe(Method::GET, "/v1/refunds", &[]).await;
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1, "Stripe made one refund for the repeated request");
    let stripe_refund = &refunds["data"][0];
    assert_eq!(stripe_refund["metadata"]["refund"], first["id"]);
    let intent: String =
        sqlx::query_scalar("SELECT stripe_payment_intent_id FROM orders").fetch_one(&app.services.pool).await.unwrap();
    let (_, pi) = app.stripe(Method::GET, &format!("/v1/payment_intents/{intent}"), &[]).await;
    let charge = pi["latest_charge"].as_str().unwrap().to_owned();
    let (_, charge) = app.stripe(Method::GET, &format!("/v1/charges/{charge}"), &[]).await;
    let (_, transfer) =
        app.stripe(Method::GET, &format!("/v1/transfers/{}", charge["transfer"].as_str().unwrap()), &[]).await;
    assert_eq!(transfer["amount_reversed"], transfer["amount"].as_i64().unwrap() / 2, "half the transfer reversed");
    let (_, fee) = app
        .stripe(Method::GET, &format!("/v1/application_fees/{}", charge["application_fee"].as_str().unwrap()), &[])
        .await;
    assert!((312..=313).contains(&fee["amount_refunded"].as_i64().unwrap()), "half of the $6.25 fee: {fee}");

    // The rest, with no amount: all that is left.
    let (status, rest) = refund(&app, &key, winning, json!({ "reason": "Lot withdrawn" }), Some("rf-2")).await;
    assert_eq!((status, rest["amount"].as_i64()), (201, Some(6_250)), "{rest}");
    let (status, body) = refund(&app, &key, winning, json!({ "reason": "Again" }), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("already refunded in full"), "{body}");
    flush(&app).await;

    let rows = refund_rows(&app).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|(_, status, id)| status == "succeeded" && id.is_some()), "{rows:?}");
    let order: (String, i64) =
        sqlx::query_as("SELECT status, refunded_amount FROM orders").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!(order, ("refunded".to_owned(), 12_500));

    // The tenant is told of each refund once, however often Stripe repeated itself.
    let events = tenant_events(&app, "refund.").await;
    assert_eq!(types(&events), ["refund.created", "refund.created"], "{events:?}");
    assert_eq!(events[0].1["reason"], "Frame damaged in transit");
    assert_eq!(events[0].1["status"], "succeeded");
    assert_eq!(events[0].1["stripe_refund"], stripe_refund["id"]);

    // Two credit notes, numbered one after the other, each naming the receipt, emailed as PDFs.
    let receipt: String =
        sqlx::query_scalar("SELECT number FROM receipts").fetch_one(&app.services.pool).await.unwrap();
    let notes: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT c.number, c.verification_code, c.pdf FROM credit_notes c JOIN refunds r ON r.id = c.refund_id
         ORDER BY c.number",
    )
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(notes.len(), 2);
    assert!(notes[0].0.starts_with("CN-") && notes[0].0.ends_with("-000001"), "{}", notes[0].0);
    assert!(notes[1].0.ends_with("-000002"), "no gap: {}", notes[1].0);
    notes.iter().for_each(|(_, _, pdf)| assert_well_formed(pdf));
    let texts: Vec<String> = notes.iter().map(|(_, _, pdf)| pdf_tool("pdftotext", &["-layout"], pdf)).collect();
    let first_note = texts.iter().find(|t| t.contains("Frame damaged in transit")).expect("the first refund's note");
    for expected in ["Credit note", "$62.50", receipt.as_str(), "TEST REFUND", "Northwind Auctions"] {
        assert!(first_note.contains(expected), "{expected:?} is missing from the credit note:\n{first_note}");
    }
    let emailed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM emails e JOIN email_attachments a ON a.email_id = e.id
         WHERE e.to_address = 'buyer@example.com' AND e.subject LIKE 'Refund for lot 42%' AND a.filename LIKE 'credit-note-CN-%.pdf'",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(emailed, 2, "one email with its credit note per refund");

    // Anyone holding the credit note can check it.
    let page =
        reqwest::get(app.url(&format!("/receipts/verify?code={}", notes[0].1))).await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("Genuine: credit note {} issued by Northwind Auctions", notes[0].0)), "{page}");
    assert!(page.contains(&receipt), "it names the receipt it corrects");

    // The tenant's system reads the refunds and downloads a credit note.
    let (status, detail) = app.json_with_key(Method::GET, &format!("/api/v1/winnings/{winning}"), &key, None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(detail["order"]["status"], "refunded");
    let response = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/winnings/{winning}/refunds/{}/credit-note", first["id"].as_str().unwrap())))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().starts_with(b"%PDF-"));
}

#[tokio::test]
async fn a_refund_stripe_refuses_stores_nothing_and_says_why() {
    let app = spawn_app().await;
    let (key, winning) = paid_lot(&app).await;
    // The tenant's Stripe account pays its whole balance out once the funds are available, so
    // nothing is left to take the refund's share from.
    app.sandbox.advance_clock(3 * 86_400);
    let account: String = sqlx::query_scalar("SELECT stripe_account_id FROM tenant_stripe_accounts")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    let balance: Value = reqwest::Client::new()
        .get(format!("{}/v1/balance", app.sandbox.url()))
        .bearer_auth(app.stripe_key())
        .header("Stripe-Account", &account)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let available = balance["available"][0]["amount"].as_i64().unwrap();
    assert!(available > 0, "{balance}");
    let payout = reqwest::Client::new()
        .post(format!("{}/v1/payouts", app.sandbox.url()))
        .bearer_auth(app.stripe_key())
        .header("Stripe-Account", &account)
        .form(&[("amount", available.to_string()), ("currency", "usd".to_owned())])
        .send()
        .await
        .unwrap();
    assert_eq!(payout.status(), 200);

    let (status, body) =
        refund(&app, &key, winning, json!({ "amount": 5_000, "reason": "Buyer changed their mind" }), Some("k")).await;
    assert_eq!(status, 402, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("Stripe refused the refund") && message.contains("balance"), "{message}");
    assert!(refund_rows(&app).await.is_empty(), "nothing stored");
    let (_, refunds) = app.stripe(Method::GET, "/v1/refunds", &[]).await;
    assert!(refunds["data"].as_array().unwrap().is_empty());
    flush(&app).await;
    assert!(tenant_events(&app, "refund.").await.is_empty(), "the tenant is told of nothing");
    let order: String = sqlx::query_scalar("SELECT status FROM orders").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!(order, "paid", "the order did not move");

    // Stripe unreachable: a 502 in words, nothing stored, and the same key works afterwards.
    app.sandbox.add_fault(stripe_sandbox::FaultRule {
        method: Some("POST".into()),
        path: "/v1/refunds".into(),
        kind: stripe_sandbox::FaultKind::ServerError,
        count: 5,
        delay_ms: None,
    });
    let (status, body) = refund(&app, &key, winning, json!({ "amount": 1_000, "reason": "Late" }), Some("k2")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Stripe did not answer"), "{body}");
    assert!(refund_rows(&app).await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn refunds_made_in_stripe_and_repeated_or_reordered_events_are_recorded_once() {
    let app = spawn_app().await;
    let (key, winning) = paid_lot(&app).await;
    let intent: String =
        sqlx::query_scalar("SELECT stripe_payment_intent_id FROM orders").fetch_one(&app.services.pool).await.unwrap();

    // The tenant refunds $20 in Stripe's dashboard; its events arrive twice, newest first.
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let (status, made) =
        app.stripe(Method::POST, "/v1/refunds", &[("payment_intent", intent.as_str()), ("amount", "2000")]).await;
    assert_eq!(status, 200, "{made}");
    flush(&app).await;
    app.sandbox.set_delivery_mode(DeliveryMode::Duplicate);
    let (status, _) =
        refund(&app, &key, winning, json!({ "amount": 3_000, "reason": "Scratch on the case" }), None).await;
    assert_eq!(status, 201);
    flush(&app).await;

    let rows = refund_rows(&app).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0], (2_000, "succeeded".to_owned(), made["id"].as_str().map(str::to_owned)));
    assert_eq!((rows[1].0, rows[1].1.as_str()), (3_000, "succeeded"));
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM refunds ORDER BY created_at")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(reasons, ["Refunded in Stripe", "Scratch on the case"]);
    assert_eq!(app.count("credit_notes").await, 2, "each refund has its credit note");
    let events = tenant_events(&app, "refund.").await;
    assert_eq!(types(&events), ["refund.created", "refund.created"], "{events:?}");

    // What is left counts the dashboard's refund: $125 - $20 - $30.
    let (status, body) = refund(&app, &key, winning, json!({ "amount": 7_501, "reason": "x" }), None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("at most $75.00"), "{body}");

    // Every event again, in any order, changes nothing.
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let resent: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM stripe_events WHERE type LIKE '%refund%'")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert!(!resent.is_empty());
    sqlx::query("UPDATE stripe_events SET applied_at = NULL, next_attempt_at = now() WHERE type LIKE '%refund%'")
        .execute(&app.services.pool)
        .await
        .unwrap();
    domain::stripe_webhooks::applier::wake(&app.services.pool).await.unwrap();
    app.wait_for_jobs().await;
    assert_eq!(refund_rows(&app).await.len(), 2);
    assert_eq!(app.count("credit_notes").await, 2);
    assert_eq!(tenant_events(&app, "refund.").await.len(), 2, "nothing told twice");
}

#[tokio::test]
async fn concurrent_refunds_never_add_up_to_more_than_was_paid() {
    let app = spawn_app().await;
    let (key, winning) = paid_lot(&app).await;
    let requests = (0..4).map(|i| {
        let (app, key) = (&app, key.clone());
        async move { refund(app, &key, winning, json!({ "amount": 5_000, "reason": format!("Part {i}") }), None).await }
    });
    let answers = futures_util::future::join_all(requests).await;
    let made = answers.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(made, 2, "two of $50 fit in $125, not four: {answers:?}");
    assert!(answers.iter().all(|(status, _)| matches!(status, 201 | 422)), "{answers:?}");
    flush(&app).await;
    let total: i64 = refund_rows(&app).await.iter().map(|(amount, ..)| amount).sum();
    assert_eq!(total, 10_000);
    let (_, charge_refunds) = app.stripe(Method::GET, "/v1/refunds", &[]).await;
    assert_eq!(charge_refunds["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_owner_refunds_from_the_winnings_page_and_other_people_cannot() {
    let app = spawn_app().await;
    let (_, winning) = paid_lot(&app).await;
    let page = app.page(Some(Role::TenantOwner), &format!("/winnings/{winning}")).await;
    assert_eq!(page.0, 200, "{}", page.1);
    assert!(page.1.contains("Up to $125.00 can be refunded"), "{}", page.1);

    let owner = app.client();
    app.sign_in(&owner, Role::TenantOwner).await;
    let form = [
        ("winning_id", winning.to_string()),
        ("amount", "62.50".to_owned()),
        ("reason", "Half the set was missing".to_owned()),
        ("idempotency_key", "form-1".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = app.rpc(&owner, "refund_winning", &form).await;
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    let response = app.rpc(&owner, "refund_winning", &form).await;
    assert!(response.status().is_success(), "a second post of the same form refunds nothing more");
    flush(&app).await;
    assert_eq!(refund_rows(&app).await.len(), 1);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'refund.created' AND reason = 'Half the set was missing'",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let page = app.page(Some(Role::TenantOwner), &format!("/winnings/{winning}")).await.1;
    assert!(page.contains("Half the set was missing") && page.contains("CN-"), "{page}");
    assert!(page.contains("Up to $62.50 can be refunded"), "{page}");

    // A consultant of the same tenant may not; another tenant's owner does not find it.
    let consultant = app.client();
    app.sign_in(&consultant, Role::Consultant).await;
    assert_eq!(app.rpc(&consultant, "refund_winning", &form).await.status(), 403);
    let other = app.other_tenant_owner_cookie().await;
    let response = reqwest::Client::new()
        .post(app.url("/rpc/refund_winning"))
        .header(reqwest::header::COOKIE, other)
        .header(reqwest::header::ORIGIN, &app.address)
        .form(&[
            ("winning_id", winning.to_string().as_str()),
            ("amount", "1"),
            ("reason", "x"),
            ("idempotency_key", "o"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(refund_rows(&app).await.len(), 1);
}

#[tokio::test]
async fn a_disputed_payment_shows_its_dispute_and_cannot_be_refunded() {
    let app = spawn_app().await;
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    // This test card pays, then the buyer's bank opens a dispute.
    assert_eq!(pay(body["url"].as_str().unwrap(), "4000000000000259").await.0, 303);
    flush(&app).await;
    // An event whose first try failed on a busy machine is tried again 5 s later: wait for the
    // dispute rather than for the queue, which counts only what is due now.
    wait_until("the dispute is recorded", async || app.count("disputes").await == 1).await;
    let key = api_key(&app).await;
    let winning = winning_id(&app).await;
    let (status, detail) = app.json_with_key(Method::GET, &format!("/api/v1/winnings/{winning}"), &key, None).await;
    assert_eq!(status, 200);
    let dispute = &detail["disputes"][0];
    assert_eq!((dispute["reason"].as_str(), dispute["status"].as_str()), (Some("fraudulent"), Some("needs_response")));
    assert!(dispute["evidence_due_by"].is_string(), "{dispute}");
    assert_eq!(dispute["amount"], 12_500);
    let page = app.page(Some(Role::TenantOwner), &format!("/winnings/{winning}")).await.1;
    assert!(page.contains("needs response") && page.contains("evidence due by"), "{page}");

    let (status, body) = refund(&app, &key, winning, json!({ "reason": "Sorry" }), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("disputed"), "{body}");
}
