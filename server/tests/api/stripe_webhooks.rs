//! The webhook intake, fed by the in-process Stripe sandbox exactly as Stripe would feed it.

use std::time::Duration;

use domain::stripe::events::TOLERANCE_SECONDS;
use secrecy::ExposeSecret as _;

use crate::helpers::{TestApp, spawn_app};

async fn stored(app: &TestApp, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM stripe_events WHERE type = $1")
        .bind(kind)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

async fn wait_stored(app: &TestApp, kind: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while stored(app, kind).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "{kind} never reached the intake");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn events_from_the_sandbox_arrive_signed_and_are_stored_once() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(stripe_sandbox::DeliveryMode::Concurrent);
    app.sandbox.trigger("checkout.session.completed", None).unwrap();
    wait_stored(&app, "checkout.session.completed").await;
    // Both concurrent copies have been answered once the log shows two 200s for the event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answered = app
            .sandbox
            .deliveries()
            .iter()
            .filter(|d| d.event_type == "checkout.session.completed" && d.status == Some(200))
            .count();
        if answered == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the second copy was not answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored(&app, "checkout.session.completed").await, 1, "delivered twice, stored once");
}

fn signed(secret: &str, t: i64, body: &str) -> String {
    stripe_sandbox::signature_header(secret, body, t)
}

#[tokio::test]
async fn forged_stale_or_unsigned_deliveries_get_400_and_store_nothing() {
    let app = spawn_app().await;
    let secret = app.services.stripe.mode(false).unwrap().keys().webhook_secrets[0].expose_secret().to_owned();
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"id":"evt_forged","object":"event","type":"checkout.session.completed","created":1,"livemode":false,"account":null,"api_version":null,"data":{"object":{}}}"#;
    let url = app.url("/payments/webhooks/stripe");
    let client = reqwest::Client::new();
    for header in [
        None,
        Some(signed("whsec_someone_else", now, body)),
        Some(signed(&secret, now - TOLERANCE_SECONDS - 5, body)),
        Some("t=abc,v1=zz".to_owned()),
    ] {
        let mut request = client.post(&url).body(body);
        if let Some(h) = &header {
            request = request.header("stripe-signature", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{header:?}");
    }
    assert_eq!(app.count("stripe_events").await, 0);
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM graphile_worker.jobs WHERE task_identifier = 'apply_stripe_event'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(jobs, 0, "nothing to apply");
    let reported: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT severity, host(client_ip) FROM security_events WHERE kind = 'webhook.bad_signature'")
            .fetch_all(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(reported, [("warning".to_owned(), Some("127.0.0.1".to_owned()))], "reported once per address and hour");
    let accepted =
        client.post(&url).header("stripe-signature", signed(&secret, now, body)).body(body).send().await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(app.count("stripe_events").await, 1);
}
