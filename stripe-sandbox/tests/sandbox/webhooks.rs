//! Events are signed as Stripe signs them, retried on failure, and can be delivered twice,
//! twice at once, or out of order.

use std::sync::atomic::Ordering;

use reqwest::Method;
use stripe_sandbox::DeliveryMode;

use crate::support::{self, SECRET_KEY};

#[tokio::test]
async fn events_arrive_signed_and_in_stripes_shape() {
    let t = support::start().await;
    t.sandbox.trigger("payment_intent.succeeded", None).unwrap();
    let event = t.receiver.wait_for("payment_intent.succeeded", 1).await.remove(0);
    assert_eq!(t.receiver.rejected.load(Ordering::SeqCst), 0, "every signature verified independently");
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["data"]["object"]["object"], "payment_intent");
    assert_eq!(event["livemode"], false);
    assert_eq!(event["api_version"], stripe_sandbox::DEFAULT_API_VERSION);
    assert!(event["created"].is_i64());
    let updates = t.receiver.wait_for("checkout.session.completed", 1).await;
    assert_eq!(updates[0]["data"]["object"]["payment_status"], "paid");
    // The event can be fetched back through the API.
    let (status, fetched) = t.call(Method::GET, &format!("/v1/events/{}", event["id"].as_str().unwrap()), "").await;
    assert_eq!(status, 200);
    assert_eq!(fetched["type"], "payment_intent.succeeded");
}

#[tokio::test]
async fn connected_account_events_carry_the_account_and_previous_attributes() {
    let t = support::start().await;
    let (_, account) = t.call(Method::POST, "/v1/accounts", "type=express").await;
    let id = account["id"].as_str().unwrap();
    t.call(Method::POST, &format!("/v1/accounts/{id}"), "email=new%40example.com").await;
    let event = t.receiver.wait_for("account.updated", 1).await.remove(0);
    assert_eq!(event["account"], id);
    assert_eq!(event["data"]["previous_attributes"]["email"], serde_json::Value::Null);
    assert_eq!(event["data"]["object"]["email"], "new@example.com");
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff() {
    let t = support::start().await;
    t.receiver.fail_first.store(2, Ordering::SeqCst);
    t.sandbox.trigger("customer.subscription.deleted", None).unwrap();
    t.receiver.wait_for("customer.subscription.deleted", 1).await;
    // The two refused deliveries were the first events; wait until they arrive after all.
    t.receiver.wait_for("customer.created", 1).await;
    t.receiver.wait_for("payment_method.attached", 1).await;
    // The sandbox logs an attempt when the answer is back, a moment after the receiver has
    // recorded the event: wait until every refused event has a later, accepted attempt.
    let retried_all = |log: &[stripe_sandbox::DeliveryRecord]| {
        log.iter().filter(|d| d.status == Some(500)).all(|failure| {
            log.iter().any(|d| {
                d.event_id == failure.event_id
                    && d.endpoint_id == failure.endpoint_id
                    && d.status == Some(200)
                    && d.attempt > failure.attempt
            })
        })
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut log = t.sandbox.deliveries();
    while !retried_all(&log) {
        assert!(tokio::time::Instant::now() < deadline, "a refused event was not retried: {log:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        log = t.sandbox.deliveries();
    }
    assert_eq!(log.iter().filter(|d| d.status == Some(500)).count(), 2, "{log:?}");
}

#[tokio::test]
async fn duplicate_and_concurrent_modes_deliver_each_event_twice() {
    for mode in ["duplicate", "concurrent"] {
        let t = support::start().await;
        let response = t
            .http
            .post(t.url("/_sandbox/webhooks/mode"))
            .bearer_auth(SECRET_KEY)
            .json(&serde_json::json!({ "mode": mode }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        t.sandbox.trigger("checkout.session.expired", None).unwrap();
        let copies = t.receiver.wait_for("checkout.session.expired", 2).await;
        assert_eq!(copies[0]["id"], copies[1]["id"], "{mode}: the same event twice");
    }
}

#[tokio::test]
async fn reverse_mode_holds_events_and_delivers_newest_first() {
    let t = support::start().await;
    t.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let (_, account) = t.call(Method::POST, "/v1/accounts", "type=express").await;
    let id = account["id"].as_str().unwrap();
    for email in ["first", "second", "third"] {
        t.call(Method::POST, &format!("/v1/accounts/{id}"), &format!("email={email}%40example.com")).await;
    }
    assert!(t.receiver.of_type("account.updated").is_empty(), "held until flushed");
    assert_eq!(t.sandbox.flush_deliveries().await, 3, "creating an account sends no event");
    let events = t.receiver.wait_for("account.updated", 3).await;
    let order: Vec<_> = events.iter().map(|e| e["data"]["object"]["email"].as_str().unwrap()).collect();
    assert_eq!(order, ["third@example.com", "second@example.com", "first@example.com"]);
}
