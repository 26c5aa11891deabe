//! The daily reconciliation of Stripe's balance with Remit's books, against the sandbox: books
//! that agree show nothing; a charge made on Stripe outside Remit and a refund whose event was
//! lost are both reported, with an alert; the schedule runs it for yesterday.

use domain::auth::Role;
use reqwest::Method;
use serde_json::json;
use stripe_sandbox::DeliveryMode;

use crate::{
    billing::flush,
    helpers::{Options, SecondProcess, TestApp, schedule_last_ran, spawn_app_with, wait_until},
    refunds::{paid_lot, refund},
};

/// Every difference of the day's test-mode reconciliation: (kind, line, subject).
pub(crate) async fn differences(app: &TestApp, day: chrono::NaiveDate) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT d.kind::text, d.line, d.subject FROM reconciliation_differences d
         JOIN reconciliations r ON r.id = d.reconciliation_id
         WHERE r.day = $1 AND NOT r.livemode ORDER BY d.kind, d.line",
    )
    .bind(day)
    .fetch_all(&app.services.pool)
    .await
    .unwrap()
}

async fn ran(app: &TestApp, day: chrono::NaiveDate) -> Option<chrono::DateTime<chrono::Utc>> {
    sqlx::query_scalar("SELECT ran_at FROM reconciliations WHERE day = $1 AND NOT livemode")
        .bind(day)
        .fetch_optional(&app.services.pool)
        .await
        .unwrap()
}

/// A platform admin reconciles `day` from the reconciliation page; waits for the worker's run.
pub(crate) async fn reconcile(app: &TestApp, day: chrono::NaiveDate) {
    let before = ran(app, day).await;
    let admin = app.client();
    app.sign_in(&admin, Role::PlatformAdmin).await;
    let response = app.rpc(&admin, "reconcile_day", &[("day", &day.to_string()), ("mode", "test")]).await;
    assert_eq!(response.status(), 200);
    wait_until("the reconciliation", async || ran(app, day).await > before).await;
}

#[tokio::test]
async fn a_charge_outside_remit_and_a_refund_whose_event_was_lost_are_reported() {
    // No resync: the lost refund's event stays lost.
    let app = spawn_app_with(Options { env: vec![("STRIPE_RESYNC_MINUTES", "0".into())], ..Options::default() }).await;
    let today = chrono::Utc::now().date_naive();
    let (key, winning) = paid_lot(&app).await;
    let (status, body) =
        refund(&app, &key, winning, json!({ "amount": 2_500, "reason": "Scratched frame" }), None).await;
    assert_eq!(status, 201, "{body}");
    flush(&app).await;

    // Remit's own payment and refund agree with Stripe.
    reconcile(&app, today).await;
    assert_eq!(differences(&app, today).await, vec![], "books that agree show no difference");
    assert_eq!(app.count("alerts").await, 0);

    // A charge made on Stripe, not through Remit; and a refund made in Stripe's dashboard whose
    // events never arrive.
    let triggered = app.sandbox.trigger("payment_intent.succeeded", None).unwrap();
    let outside = triggered["charge"].as_str().unwrap().to_owned();
    flush(&app).await;
    app.sandbox.set_delivery_mode(DeliveryMode::Lost);
    let intent: String =
        sqlx::query_scalar("SELECT stripe_payment_intent_id FROM orders").fetch_one(&app.services.pool).await.unwrap();
    let (status, lost) = app
        .stripe(
            Method::POST,
            "/v1/refunds",
            &[("payment_intent", &intent), ("amount", "1000"), ("reverse_transfer", "true")],
        )
        .await;
    assert_eq!(status, 200, "{lost}");
    let lost = lost["id"].as_str().unwrap().to_owned();
    app.sandbox.flush_deliveries().await;
    assert_eq!(app.count("refunds").await, 1, "Remit never heard of the dashboard refund");

    reconcile(&app, today).await;
    let found = differences(&app, today).await;
    let about = |line: &str, subject: &str| {
        found.iter().any(|(kind, l, s)| kind == "missing_in_remit" && l == line && s == subject)
    };
    assert!(about("charge", &outside), "the charge outside Remit: {found:?}");
    assert!(about("refund", &lost), "the refund whose event was lost: {found:?}");
    assert!(
        found.iter().all(|(_, line, _)| ["charge", "refund", "transfer_refund"].contains(&line.as_str())),
        "nothing else differs: {found:?}"
    );
    // One alert for the day, emailed to platform admins; the page lists both.
    let alerts: Vec<String> = sqlx::query_scalar("SELECT message FROM alerts WHERE kind = 'reconciliation_difference'")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains(&today.to_string()), "{}", alerts[0]);
    let (status, html) = app.page(Some(Role::PlatformAdmin), "/admin/reconciliation").await;
    assert_eq!(status, 200);
    assert!(html.contains(&outside) && html.contains(&lost) && html.contains("In Stripe, not in Remit"));
}

#[tokio::test]
async fn the_schedule_reconciles_yesterday() {
    let app = spawn_app_with(Options::default()).await;
    // The reconciliation last ran a day ago: a worker that starts now runs it.
    schedule_last_ran(&app, "reconcile_stripe_balance", "1 day").await;
    let second = SecondProcess::start(&app).await;
    let yesterday = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    wait_until("yesterday's reconciliation", async || ran(&app, yesterday).await.is_some()).await;
    assert_eq!(differences(&app, yesterday).await, vec![], "nothing moved yesterday, on either side");
    second.kill().await;
}
