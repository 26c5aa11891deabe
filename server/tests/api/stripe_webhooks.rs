//! The webhook intake, fed by the in-process Stripe sandbox exactly as Stripe would feed it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use domain::stripe::events::TOLERANCE_SECONDS;
use secrecy::ExposeSecret as _;

use crate::helpers::{SecondProcess, TestApp, spawn_app};

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

fn event_body(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","object":"event","type":"customer.created","created":1700000000,"livemode":false,"account":null,"api_version":null,"data":{{"object":{{"id":"cus_{id}"}}}}}}"#
    )
}

async fn post_event(client: &reqwest::Client, url: &str, secret: &str, body: String) -> Result<u16, reqwest::Error> {
    let header = signed(secret, chrono::Utc::now().timestamp(), &body);
    client.post(url).header("stripe-signature", header).body(body).send().await.map(|r| r.status().as_u16())
}

/// Of the events `ids`: how many are stored, and how many of those have their job, or were
/// applied already by it (the test app's own worker runs the jobs meanwhile).
async fn stored_with_jobs(app: &TestApp, ids: &[String]) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE e.applied_at IS NOT NULL OR EXISTS (
             SELECT 1 FROM graphile_worker._private_jobs j WHERE j.payload->>'event_id' = e.id))
         FROM stripe_events e WHERE e.id = ANY($1)",
    )
    .bind(ids)
    .fetch_one(&app.services.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_process_killed_under_load_has_stored_every_event_it_acknowledged() {
    let app = spawn_app().await;
    // A web-only replica: the events it takes stay in the table with their jobs for this test.
    let replica = SecondProcess::start_with(&app, &[("JOB_WORKERS", "0")]).await;
    let secret = app.services.stripe.mode(false).unwrap().keys().webhook_secrets[0].expose_secret().to_owned();
    let url = format!("{}/payments/webhooks/stripe", replica.address);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let (enough, mut enough_rx) = tokio::sync::watch::channel(false);
    let senders: Vec<_> = (0..16)
        .map(|sender| {
            let (url, secret, acknowledged, enough) =
                (url.clone(), secret.clone(), acknowledged.clone(), enough.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in 0.. {
                    let id = format!("evt_kill_{sender}_{n}");
                    match post_event(&client, &url, &secret, event_body(&id)).await {
                        Ok(200) => {
                            let mut acknowledged = acknowledged.lock().unwrap();
                            acknowledged.push(id);
                            if acknowledged.len() >= 300 {
                                let _ = enough.send(true);
                            }
                        }
                        Ok(status) => panic!("{id} answered {status} before the crash"),
                        // The process is gone: connections refused or cut.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(60), enough_rx.wait_for(|enough| *enough))
        .await
        .expect("300 events acknowledged within a minute")
        .unwrap();
    // Killed while requests are in flight: some were never answered, and those may or may not
    // be stored; every one answered 200 must be.
    replica.kill().await;
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let (events, jobs) = stored_with_jobs(&app, &acknowledged).await;
    assert_eq!(events, acknowledged.len() as i64, "every acknowledged event is stored");
    assert_eq!(jobs, acknowledged.len() as i64, "with its job (or applied by it)");
}

#[tokio::test]
async fn an_event_the_database_cannot_hold_fails_alone() {
    let app = spawn_app().await;
    let secret = app.services.stripe.mode(false).unwrap().keys().webhook_secrets[0].expose_secret().to_owned();
    let url = app.url("/payments/webhooks/stripe");
    let client = reqwest::Client::new();
    // PostgreSQL's jsonb holds no NUL character, which JSON itself allows.
    let bad = event_body("evt_nul").replace(r#""customer.created""#, r#""customer.created","note":"a\u0000b""#);
    let good: Vec<String> = (0..40).map(|n| format!("evt_beside_nul_{n}")).collect();
    let mut requests: Vec<_> = good
        .iter()
        .map(|id| tokio::spawn(post_event_owned(client.clone(), url.clone(), secret.clone(), event_body(id))))
        .collect();
    requests.insert(20, tokio::spawn(post_event_owned(client.clone(), url.clone(), secret.clone(), bad)));
    let statuses: Vec<u16> = futures_util::future::join_all(requests).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(statuses[20], 400, "the event that cannot be stored is refused");
    statuses
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 20)
        .for_each(|(i, status)| assert_eq!(*status, 200, "request {i}"));
    assert_eq!(stored_with_jobs(&app, &good).await, (40, 40));
    assert_eq!(stored_with_jobs(&app, &["evt_nul".to_owned()]).await, (0, 0));
}

async fn post_event_owned(client: reqwest::Client, url: String, secret: String, body: String) -> u16 {
    post_event(&client, &url, &secret, body).await.unwrap()
}
