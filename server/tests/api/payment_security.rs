//! Fraud and security around buyers' payments: velocity limits (shared by every process),
//! guessed payment links, Stripe Radar's verdicts, and what admins and tenant staff see of them.

use domain::{
    auth::Role,
    security::{CHECKOUT_REQUESTS_PER_EMAIL_HOUR, UNKNOWN_LINKS_PER_IP_HOUR},
};
use reqwest::header;
use serde_json::json;
use stripe_sandbox::DeliveryMode;

use crate::{
    billing::{flush, pay},
    checkout::{bid, start, won_lot},
    helpers::{SecondProcess, TestApp, spawn_app},
};

async fn events(app: &TestApp, kind: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT severity, message FROM security_events WHERE kind = $1 ORDER BY created_at")
        .bind(kind)
        .fetch_all(&app.services.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_hourly_limit_per_buyer_email_holds_across_two_server_processes() {
    let app = spawn_app().await;
    let token = won_lot(&app, 12_500).await;
    let second = SecondProcess::start(&app).await;
    let total = CHECKOUT_REQUESTS_PER_EMAIL_HOUR + 5;
    // All in flight at once, half to each process, so the two really race for the limit.
    let handles: Vec<_> = (0..total)
        .map(|i| {
            let base = if i % 2 == 0 { app.address.clone() } else { second.address.clone() };
            let token = token.clone();
            tokio::spawn(async move {
                let response = reqwest::Client::new()
                    .post(format!("{base}/payments/checkout/create"))
                    .json(&json!({ "token": token }))
                    .send()
                    .await
                    .unwrap();
                (response.status().as_u16(), response.headers().contains_key(header::RETRY_AFTER))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.unwrap());
    }
    let admitted = answers.iter().filter(|(s, _)| *s == 200).count() as i64;
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(admitted, CHECKOUT_REQUESTS_PER_EMAIL_HOUR, "{answers:?}");
    assert_eq!(refused.len() as i64, total - CHECKOUT_REQUESTS_PER_EMAIL_HOUR, "{answers:?}");
    assert!(refused.iter().all(|(_, retry_after)| *retry_after), "a 429 says when to retry");
    assert_eq!(bid(&app).await.1, 1, "the admitted requests share one Checkout page");
    let reported = events(&app, "velocity.buyer_email").await;
    assert_eq!(reported.len(), 1, "reported once per hour, not per refusal");
    assert_eq!(reported[0].0, "warning");
    assert!(reported[0].1.contains("buyer@example.com"));
}

#[tokio::test]
async fn guessing_payment_links_is_refused_for_the_hour_and_alerts_admins() {
    let app = spawn_app().await;
    let token = won_lot(&app, 12_500).await;
    for i in 0..UNKNOWN_LINKS_PER_IP_HOUR {
        let response = reqwest::get(app.url(&format!("/pay/guess-{i}"))).await.unwrap();
        assert_eq!(response.status(), 404);
    }
    let reported = events(&app, "payment_link.guessing").await;
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].0, "high");
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE kind = 'payment_link.guessing'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(alerts, 1, "a high-severity event alerts platform admins");
    let emailed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM emails WHERE to_address = 'admin@remit.localhost' AND subject LIKE 'Remit alert:%'",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(emailed, 1);

    // From that address, even a real link is refused for the rest of the hour.
    let response = reqwest::get(app.url(&format!("/pay/{token}"))).await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.text().await.unwrap().contains("Too many payment links that do not exist"));
    let (status, body) = start(&app, &token).await;
    assert_eq!(status, 429, "{body}");
}

#[tokio::test]
async fn a_payment_radar_rates_elevated_risk_is_alerted_and_listed_for_admins_and_the_tenant() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Duplicate);
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    assert_eq!(pay(body["url"].as_str().unwrap(), "4000000000009235").await.0, 303);
    flush(&app).await;

    let order: (String, Option<String>, Option<i32>) =
        sqlx::query_as("SELECT status, risk_level, risk_score FROM orders")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(order, ("paid".to_owned(), Some("elevated".to_owned()), Some(75)));
    let reported = events(&app, "payment.high_risk").await;
    assert_eq!(reported.len(), 1, "once, though every event arrived twice");
    assert!(reported[0].1.contains("elevated risk (score 75)"), "{}", reported[0].1);
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE kind = 'payment.high_risk'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(alerts, 1);

    let (status, admin) = app.page(Some(Role::PlatformAdmin), "/admin/security").await;
    assert_eq!(status, 200);
    assert!(admin.contains("data-testid=\"risky-payments\"") && admin.contains("elevated (75)"), "{admin}");
    assert!(admin.contains("payment.high_risk"));
    let (status, tenant) = app.page(Some(Role::TenantOwner), "/security").await;
    assert_eq!(status, 200);
    assert!(tenant.contains("elevated (75)"));
    assert_eq!(app.page(Some(Role::Consultant), "/security").await.0, 403);
    assert_eq!(app.page(Some(Role::TenantOwner), "/admin/security").await.0, 403);
    let (status, filtered) = app.page(Some(Role::PlatformAdmin), "/admin/security?severity=info").await;
    assert_eq!(status, 200);
    assert!(!filtered.contains("payment.high_risk"), "the severity filter applies");
}

#[tokio::test]
async fn a_payment_radar_blocks_is_a_high_severity_event_and_a_failed_attempt() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    assert_eq!(pay(body["url"].as_str().unwrap(), "4000000000004954").await.0, 402);
    flush(&app).await;
    assert_eq!(bid(&app).await, ("awaiting_payment".into(), 1, 1));
    let reported = events(&app, "payment.blocked_by_radar").await;
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].0, "high");
    assert_eq!(app.count("orders").await, 0);
}
