//! Stripe's wire format over raw HTTP: authentication, errors, idempotency, expansion,
//! pagination, unknown parameters, fault injection.

use reqwest::Method;
use serde_json::json;
use stripe_client_core::{RequestStrategy, StripeRequest as _};
use stripe_core::customer::{CreateCustomer, RetrieveCustomer};

use crate::support::{self, SECRET_KEY};

#[tokio::test]
async fn a_missing_or_wrong_key_gets_401_in_stripes_shape() {
    let t = support::start().await;
    let none = t.http.get(t.url("/v1/customers")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("did not provide an API key"));
    let wrong = t.http.get(t.url("/v1/customers")).bearer_auth("sk_test_wrong_key_123456").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let body: serde_json::Value = wrong.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("sk_test_****3456") && !message.contains("wrong_key"), "{message}");
}

#[tokio::test]
async fn bad_input_gets_stripes_errors_never_a_500() {
    let t = support::start().await;
    let cases = [
        (Method::POST, "/v1/customers", "nickname=x", 400, "parameter_unknown"),
        (Method::POST, "/v1/customers", "email[=broken", 400, "parameter_invalid_string"),
        (
            Method::POST,
            "/v1/prices",
            "currency=usd&unit_amount=ten&product_data[name]=x",
            400,
            "parameter_invalid_integer",
        ),
        (Method::POST, "/v1/prices", "currency=usd&product_data[name]=x", 400, "parameter_missing"),
        (Method::POST, "/v1/checkout/sessions", "success_url=https://x.example", 400, "parameter_missing"),
        (
            Method::POST,
            "/v1/checkout/sessions",
            "mode=payment&success_url=https://x.example&line_items[0][price]=price_nope",
            400,
            "resource_missing",
        ),
        (
            Method::POST,
            "/v1/checkout/sessions",
            "mode=payment&success_url=https://x.example&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=10&line_items[0][price_data][product_data][name]=x",
            400,
            "amount_too_small",
        ),
        (
            Method::POST,
            "/v1/account_links",
            "account=acct_nope&type=account_onboarding&refresh_url=https://a.example&return_url=https://a.example",
            400,
            "resource_missing",
        ),
        (Method::GET, "/v1/customers/cus_doesnotexist", "", 404, "resource_missing"),
        (Method::GET, "/v1/customers?limit=1000", "", 400, "parameter_invalid_integer"),
        (Method::GET, "/v1/customers?colour=red", "", 400, "parameter_unknown"),
    ];
    for (method, path, form, status, code) in cases {
        let (got, body) = t.call(method.clone(), path, form).await;
        assert_eq!(got, status, "{method} {path} {form}: {body}");
        assert_eq!(body["error"]["code"], code, "{method} {path} {form}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, body) = t.call(Method::GET, "/v1/no_such_resource", "").await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("Unrecognized request URL"));
    // Nothing was created by the refused calls.
    let (_, list) = t.call(Method::GET, "/v1/customers", "").await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer_and_refuse_other_parameters() {
    let t = support::start().await;
    let strategy = RequestStrategy::Idempotent(stripe_client_core::IdempotencyKey::new("key-1").unwrap());
    let first = CreateCustomer::new()
        .email("a@example.com")
        .customize()
        .request_strategy(strategy.clone())
        .send(&t.client)
        .await
        .unwrap();
    let again = CreateCustomer::new()
        .email("a@example.com")
        .customize()
        .request_strategy(strategy.clone())
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(first.id, again.id, "the replay returns the first customer");
    let other = CreateCustomer::new()
        .email("b@example.com")
        .customize()
        .request_strategy(strategy)
        .send(&t.client)
        .await
        .unwrap_err();
    assert!(
        format!("{other:?}").contains("idempotency_error") || format!("{other:?}").contains("IdempotencyError"),
        "{other:?}"
    );
    let (_, list) = t.call(Method::GET, "/v1/customers", "").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let replay = t
        .http
        .post(t.url("/v1/customers"))
        .bearer_auth(SECRET_KEY)
        .header("idempotency-key", "key-1")
        .form(&[("email", "a@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
}

#[tokio::test]
async fn lists_paginate_and_expand() {
    let t = support::start().await;
    for i in 0..5 {
        t.call(Method::POST, "/v1/customers", &format!("email=c{i}%40example.com")).await;
    }
    let (_, page1) = t.call(Method::GET, "/v1/customers?limit=2", "").await;
    assert_eq!(page1["object"], "list");
    assert_eq!(page1["has_more"], true);
    assert_eq!(page1["data"][0]["email"], "c4@example.com");
    let last = page1["data"][1]["id"].as_str().unwrap();
    let (_, page2) = t.call(Method::GET, &format!("/v1/customers?limit=2&starting_after={last}"), "").await;
    assert_eq!(page2["data"][0]["email"], "c2@example.com");
    let first = page2["data"][0]["id"].as_str().unwrap();
    let (_, back) = t.call(Method::GET, &format!("/v1/customers?limit=2&ending_before={first}"), "").await;
    assert_eq!(back["data"][1]["id"], page1["data"][1]["id"]);

    let (_, price) =
        t.call(Method::POST, "/v1/prices", "currency=usd&unit_amount=500&product_data[name]=Lot%2012").await;
    let (_, expanded) =
        t.call(Method::GET, &format!("/v1/prices/{}?expand[]=product", price["id"].as_str().unwrap()), "").await;
    assert_eq!(expanded["product"]["name"], "Lot 12");
    let (_, list) = t.call(Method::GET, "/v1/prices?expand[]=data.product", "").await;
    assert_eq!(list["data"][0]["product"]["object"], "product");
}

#[tokio::test]
async fn stripe_account_scopes_objects_to_the_connected_account() {
    let t = support::start().await;
    let (_, account) = t.call(Method::POST, "/v1/accounts", "type=express").await;
    let id = account["id"].as_str().unwrap();
    let created = t
        .http
        .post(t.url("/v1/customers"))
        .bearer_auth(SECRET_KEY)
        .header("stripe-account", id)
        .form(&[("email", "x@example.com")])
        .send()
        .await
        .unwrap();
    let customer: serde_json::Value = created.json().await.unwrap();
    let (platform, _) = t.call(Method::GET, &format!("/v1/customers/{}", customer["id"].as_str().unwrap()), "").await;
    assert_eq!(platform, 404, "the platform does not see the connected account's customer");
    let unknown = t
        .http
        .get(t.url("/v1/customers"))
        .bearer_auth(SECRET_KEY)
        .header("stripe-account", "acct_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 403);
}

async fn add_fault(t: &support::TestSandbox, rule: serde_json::Value) {
    let response = t.http.post(t.url("/_sandbox/faults")).bearer_auth(SECRET_KEY).json(&rule).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn faults_fail_the_next_calls_then_stop() {
    let t = support::start().await;
    let customer = CreateCustomer::new().send(&t.client).await.unwrap();
    let path = format!("/v1/customers/{}", customer.id);
    add_fault(&t, json!({ "method": "GET", "path": path, "kind": "server_error", "count": 2 })).await;
    for _ in 0..2 {
        let err = RetrieveCustomer::new(customer.id.clone()).send(&t.client).await.unwrap_err();
        assert!(matches!(err, stripe::StripeError::Stripe(_, 500)), "{err:?}");
    }
    assert!(RetrieveCustomer::new(customer.id.clone()).send(&t.client).await.is_ok());

    add_fault(&t, json!({ "path": "/v1/customers*", "kind": "rate_limit" })).await;
    let err = RetrieveCustomer::new(customer.id.clone()).send(&t.client).await.unwrap_err();
    assert!(matches!(err, stripe::StripeError::Stripe(_, 429)), "{err:?}");

    add_fault(&t, json!({ "path": path, "kind": "timeout", "delay_ms": 2000 })).await;
    let err = RetrieveCustomer::new(customer.id.clone())
        .customize()
        .timeout(std::time::Duration::from_millis(300))
        .send(&t.client)
        .await
        .unwrap_err();
    assert!(matches!(err, stripe::StripeError::Timeout), "{err:?}");

    add_fault(&t, json!({ "path": path, "kind": "disconnect" })).await;
    let err = RetrieveCustomer::new(customer.id.clone()).send(&t.client).await.unwrap_err();
    assert!(matches!(err, stripe::StripeError::ClientError(_) | stripe::StripeError::JSONDeserialize(_)), "{err:?}");
    assert!(RetrieveCustomer::new(customer.id.clone()).send(&t.client).await.is_ok());
}
