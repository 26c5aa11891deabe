//! The sandbox's answers against Stripe's published OpenAPI spec: a tour of every endpoint
//! Remit uses (successes and errors), then every answer and delivered event is checked by
//! `tests/conformance/check.py` (field types, nullability, required fields, enum values; fields
//! and values newer than the spec only where stripe-python's typed model has them).

use std::{path::PathBuf, process::Command, time::Duration};

use reqwest::Method;
use serde_json::Value;

use crate::support::{self, TestSandbox};

async fn post(t: &TestSandbox, path: &str, form: &str) -> Value {
    let (status, body) = t.call(Method::POST, path, form).await;
    assert_eq!(status, 200, "POST {path}: {body}");
    body
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

/// Where Stripe's spec is: `REMIT_STRIPE_OPENAPI` (the Makefile sets it), else beside the
/// checkout as the workplace keeps it.
fn spec_path() -> PathBuf {
    std::env::var_os("REMIT_STRIPE_OPENAPI").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/stripe-openapi/spec3.2023-08-16.json")
    })
}

async fn tour(t: &TestSandbox) {
    // Catalogue and customers.
    let product = post(t, "/v1/products", "name=Consultant%20Pro&metadata[plan]=pro").await;
    let price = post(
        t,
        "/v1/prices",
        &format!("currency=usd&unit_amount=2900&recurring[interval]=month&product={}", id(&product)),
    )
    .await;
    post(t, &format!("/v1/products/{}", id(&product)), "description=Monthly").await;
    post(t, &format!("/v1/prices/{}", id(&price)), "metadata[tier]=1").await;
    t.get(&format!("/v1/products/{}", id(&product))).await;
    t.get(&format!("/v1/prices/{}", id(&price))).await;
    t.get("/v1/products?active=true").await;
    t.get("/v1/prices").await;
    let customer = post(t, "/v1/customers", "email=ada%40example.com&name=Ada&metadata[remit_user]=u1").await;
    let customer_id = id(&customer);
    post(t, &format!("/v1/customers/{customer_id}"), "name=Ada%20Lovelace").await;
    t.get(&format!("/v1/customers/{customer_id}")).await;
    t.get("/v1/customers?email=ada%40example.com").await;

    // A saved card, a subscription, its invoices; a declined payment of an open invoice.
    let card = t.saved_card(&customer_id, "4242424242424242").await;
    t.get(&format!("/v1/payment_methods/{card}")).await;
    t.get(&format!("/v1/customers/{customer_id}/payment_methods")).await;
    t.get(&format!("/v1/payment_methods?customer={customer_id}")).await;
    post(t, &format!("/v1/customers/{customer_id}"), &format!("invoice_settings[default_payment_method]={card}")).await;
    let sub = post(
        t,
        "/v1/subscriptions",
        &format!("customer={customer_id}&items[0][price]={}&trial_period_days=3", id(&price)),
    )
    .await;
    post(t, &format!("/v1/subscriptions/{}", id(&sub)), "cancel_at_period_end=true").await;
    t.get(&format!("/v1/subscriptions/{}?expand[]=latest_invoice", id(&sub))).await;
    t.get(&format!("/v1/subscriptions?customer={customer_id}")).await;
    let invoices = t.get(&format!("/v1/invoices?subscription={}", id(&sub))).await;
    t.get(&format!("/v1/invoices/{}", id(&invoices["data"][0]))).await;
    t.call(Method::DELETE, &format!("/v1/subscriptions/{}", id(&sub)), "").await;

    let declining = post(t, "/v1/customers", "email=bob%40example.com").await;
    let bad_card = t.saved_card(&id(&declining), "4000000000000341").await;
    let unpaid = post(
        t,
        "/v1/subscriptions",
        &format!(
            "customer={}&items[0][price]={}&default_payment_method={bad_card}&payment_behavior=default_incomplete",
            id(&declining),
            id(&price)
        ),
    )
    .await;
    let (status, _) =
        t.call(Method::POST, &format!("/v1/invoices/{}/pay", unpaid["latest_invoice"].as_str().unwrap()), "").await;
    assert_eq!(status, 402);
    let setup = post(t, "/v1/setup_intents", &format!("customer={customer_id}&usage=off_session")).await;
    t.get(&format!("/v1/setup_intents/{}", id(&setup))).await;
    let spare = t.saved_card(&customer_id, "5555555555554444").await;
    post(t, &format!("/v1/payment_methods/{spare}/detach"), "").await;
    post(t, &format!("/v1/payment_methods/{spare}/attach"), &format!("customer={customer_id}")).await;

    // Connect: an Express account, its onboarding, a destination charge, refunds and money.
    let account = post(t, "/v1/accounts", "type=express&country=US&email=c%40example.com").await;
    let account_id = id(&account);
    post(
        t,
        "/v1/account_links",
        &format!("account={account_id}&type=account_onboarding&refresh_url=https://r.example/a&return_url=https://r.example/b"),
    )
    .await;
    post(
        t,
        "/v1/account_sessions",
        &format!("account={account_id}&components[account_onboarding][enabled]=true&components[payouts][enabled]=true"),
    )
    .await;
    post(t, &format!("/v1/accounts/{account_id}"), "metadata[tenant]=t1").await;
    t.get(&format!("/v1/accounts/{account_id}")).await;
    t.get("/v1/accounts").await;
    // Refused before onboarding is complete: an error's shape.
    t.call(Method::POST, &format!("/v1/accounts/{account_id}/login_links"), "").await;

    let session = post(
        t,
        "/v1/checkout/sessions",
        &format!(
            "mode=payment&success_url=https://x.example/ok&cancel_url=https://x.example/no&customer_email=buyer%40example.com\
             &line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=10000\
             &line_items[0][price_data][product_data][name]=Lot%207&line_items[0][quantity]=1\
             &payment_intent_data[application_fee_amount]=1000&payment_intent_data[transfer_data][destination]={account_id}\
             &metadata[order]=o1"
        ),
    )
    .await;
    assert_eq!(t.pay(session["url"].as_str().unwrap(), "4242424242424242").await.0, 303);
    let session = t.get(&format!("/v1/checkout/sessions/{}?expand[]=payment_intent", id(&session))).await;
    t.get(&format!("/v1/checkout/sessions/{}/line_items", id(&session))).await;
    t.get("/v1/checkout/sessions?limit=3").await;
    let pi = t.get(&format!("/v1/payment_intents/{}", id(&session["payment_intent"]))).await;
    t.get("/v1/payment_intents?limit=2").await;
    let charge = t.get(&format!("/v1/charges/{}", pi["latest_charge"].as_str().unwrap())).await;
    t.get(&format!("/v1/charges?payment_intent={}", id(&pi))).await;
    t.get(&format!("/v1/balance_transactions/{}", charge["balance_transaction"].as_str().unwrap())).await;
    t.get("/v1/balance_transactions").await;
    let refund = post(
        t,
        "/v1/refunds",
        &format!(
            "charge={}&amount=2500&reverse_transfer=true&refund_application_fee=true&reason=requested_by_customer",
            id(&charge)
        ),
    )
    .await;
    t.get(&format!("/v1/refunds/{}", id(&refund))).await;
    t.get(&format!("/v1/refunds?charge={}", id(&charge))).await;
    let transfer = t.get(&format!("/v1/transfers/{}", charge["transfer"].as_str().unwrap())).await;
    t.get(&format!("/v1/transfers/{}/reversals", id(&transfer))).await;
    t.get("/v1/transfers").await;
    let direct = post(
        t,
        "/v1/transfers",
        &format!("amount=500&currency=usd&destination={account_id}&source_transaction={}", id(&charge)),
    )
    .await;
    post(t, &format!("/v1/transfers/{}/reversals", id(&direct)), "amount=200").await;
    let fee_id = charge["application_fee"].as_str().unwrap();
    post(t, &format!("/v1/application_fees/{fee_id}/refunds"), "amount=100").await;
    t.get(&format!("/v1/application_fees/{fee_id}")).await;
    t.get(&format!("/v1/application_fees/{fee_id}/refunds")).await;
    t.get("/v1/application_fees").await;
    t.get("/v1/balance").await;
    t.get("/v1/payouts").await;

    // A disputed payment; an expired session; a rejected account.
    let disputed = post(
        t,
        "/v1/checkout/sessions",
        "mode=payment&success_url=https://x.example&line_items[0][price_data][currency]=eur\
         &line_items[0][price_data][unit_amount]=5000&line_items[0][price_data][product_data][name]=Lot",
    )
    .await;
    t.pay(disputed["url"].as_str().unwrap(), "4000000000000259").await;
    let dispute = t.receiver.wait_for("charge.dispute.created", 1).await.remove(0);
    t.get(&format!("/v1/disputes/{}", id(&dispute["data"]["object"]))).await;
    t.get("/v1/disputes").await;
    let expiring = post(
        t,
        "/v1/checkout/sessions",
        "mode=payment&success_url=https://x.example&line_items[0][price_data][currency]=usd\
         &line_items[0][price_data][unit_amount]=700&line_items[0][price_data][product_data][name]=Lot",
    )
    .await;
    post(t, &format!("/v1/checkout/sessions/{}/expire", id(&expiring)), "").await;
    post(t, &format!("/v1/accounts/{account_id}/reject"), "reason=other").await;

    // Subscriptions through Checkout, paused and resumed; test clocks.
    let subscribe = post(
        t,
        "/v1/checkout/sessions",
        &format!("mode=subscription&customer={customer_id}&success_url=https://x.example&line_items[0][price]={}&line_items[0][quantity]=1", id(&price)),
    )
    .await;
    t.pay(subscribe["url"].as_str().unwrap(), "4242424242424242").await;
    let clock =
        post(t, "/v1/test_helpers/test_clocks", &format!("frozen_time={}&name=Renewals", t.sandbox.now())).await;
    let on_clock = post(t, "/v1/customers", &format!("email=clock%40example.com&test_clock={}", id(&clock))).await;
    let paused = post(
        t,
        "/v1/subscriptions",
        &format!(
            "customer={}&items[0][price]={}&trial_period_days=1&trial_settings[end_behavior][missing_payment_method]=pause",
            id(&on_clock),
            id(&price)
        ),
    )
    .await;
    post(
        t,
        &format!("/v1/test_helpers/test_clocks/{}/advance", id(&clock)),
        &format!("frozen_time={}", t.sandbox.now() + 2 * 86_400),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while t.get(&format!("/v1/test_helpers/test_clocks/{}", id(&clock))).await["status"] != "ready" {
        assert!(tokio::time::Instant::now() < deadline, "the clock never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let clock_card = t.saved_card(&id(&on_clock), "4242424242424242").await;
    post(
        t,
        &format!("/v1/customers/{}", id(&on_clock)),
        &format!("invoice_settings[default_payment_method]={clock_card}"),
    )
    .await;
    post(t, &format!("/v1/subscriptions/{}/resume", id(&paused)), "billing_cycle_anchor=now").await;
    t.get("/v1/test_helpers/test_clocks").await;
    t.call(Method::DELETE, &format!("/v1/test_helpers/test_clocks/{}", id(&clock)), "").await;

    // Webhook endpoints, events, deletions, and the errors Remit handles.
    let endpoint = post(t, "/v1/webhook_endpoints", "url=https://remit.example/hooks&enabled_events[]=*").await;
    post(t, &format!("/v1/webhook_endpoints/{}", id(&endpoint)), "disabled=true").await;
    t.get(&format!("/v1/webhook_endpoints/{}", id(&endpoint))).await;
    t.get("/v1/webhook_endpoints").await;
    t.call(Method::DELETE, &format!("/v1/webhook_endpoints/{}", id(&endpoint)), "").await;
    let events = t.get("/v1/events?limit=100").await;
    t.get(&format!("/v1/events/{}", id(&events["data"][0]))).await;
    let gone = post(t, "/v1/customers", "email=gone%40example.com").await;
    t.call(Method::DELETE, &format!("/v1/customers/{}", id(&gone)), "").await;
    t.get(&format!("/v1/customers/{}", id(&gone))).await;
    let other = post(t, "/v1/accounts", "type=express").await;
    t.call(Method::DELETE, &format!("/v1/accounts/{}", id(&other)), "").await;
    for (method, path, form, status) in [
        (Method::GET, "/v1/customers/cus_missing", "", 404),
        (
            Method::POST,
            "/v1/checkout/sessions",
            "mode=payment&success_url=https://x.example&line_items[0][price]=price_missing&line_items[0][quantity]=1",
            400,
        ),
        (Method::POST, "/v1/prices", "currency=usd", 400),
        (Method::POST, "/v1/refunds", &format!("charge={}&amount=99999999", id(&charge)), 400),
    ] {
        let (got, body) = t.call(method, path, form).await;
        assert_eq!(got, status, "{path}: {body}");
    }
}

#[tokio::test]
async fn every_answer_and_event_has_the_shape_stripe_publishes() {
    let spec = spec_path();
    assert!(spec.is_file(), "Stripe's OpenAPI spec is not at {} (set REMIT_STRIPE_OPENAPI)", spec.display());
    let python = std::env::var("REMIT_TEST_PYTHON")
        .expect("REMIT_TEST_PYTHON names the test tools' Python, with stripe-python installed (make test sets it)");

    let t = support::start().await;
    tour(&t).await;
    t.receiver.wait_for("customer.subscription.resumed", 1).await;
    t.receiver.wait_for("test_helpers.test_clock.deleted", 1).await;

    let mut recording = t.answers.lock().unwrap().clone();
    let answers = recording.len();
    recording.extend(t.receiver.events.lock().unwrap().iter().map(|e| serde_json::json!({ "event": e })));
    let file = std::env::temp_dir().join(format!("stripe-sandbox-conformance-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&recording).unwrap()).unwrap();
    let checker = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/check.py");
    let output = Command::new(python).arg(checker).arg(&spec).arg(&file).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{summary}\n{report}\n(the answers are kept in {})", file.display());
    std::fs::remove_file(&file).unwrap();
    assert!(answers >= 90 && recording.len() > answers + 40, "the tour covers too little: {summary}");
}
