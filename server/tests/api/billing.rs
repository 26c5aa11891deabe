//! Subscription billing end to end against the sandbox: every state change reaches Remit
//! through its webhook intake. Deliveries are held and then flushed (newest first), so each
//! test knows when every event has been applied.

use domain::auth::Role;
use reqwest::{Method, header};
use serde_json::Value;
use stripe_sandbox::DeliveryMode;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app};

const DAY: i64 = 86_400;

pub(crate) async fn signed_in(app: &TestApp, role: Role) -> reqwest::Client {
    let client = app.client();
    assert_eq!(app.sign_in(&client, role).await.status(), 200);
    client
}

/// A plan made through the admin UI's server function; returns its id.
pub(crate) async fn plan(app: &TestApp, name: &str, price: &str, trial_days: &str) -> Uuid {
    let admin = signed_in(app, Role::PlatformAdmin).await;
    let form = [
        ("name", name),
        ("description", ""),
        ("price", price),
        ("currency", "usd"),
        ("interval", "month"),
        ("trial_days", trial_days),
    ];
    let response = app.rpc(&admin, "create_plan", &form).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    sqlx::query_scalar("SELECT id FROM plans WHERE name = $1").bind(name).fetch_one(&app.services.pool).await.unwrap()
}

/// Follows the server function's redirect to Stripe and returns where it points.
fn redirect_target(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

/// Pays on a hosted Checkout page as a browser would; returns the status and where it leads.
pub(crate) async fn pay(url: &str, card: &str) -> (u16, Option<String>) {
    let form = [
        ("email", "casey@example.com"),
        ("card_number", card),
        ("expiry", "12 / 34"),
        ("cvc", "123"),
        ("name", "Casey"),
    ];
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(url)
        .form(&form)
        .send()
        .await
        .unwrap();
    let location = response.headers().get(header::LOCATION).map(|l| l.to_str().unwrap().to_owned());
    (response.status().as_u16(), location)
}

/// Subscribes the consultant to `plan_id`, paying with `card`; returns the Checkout URL.
pub(crate) async fn subscribe(app: &TestApp, consultant: &reqwest::Client, plan_id: Uuid, card: &str) -> (u16, String) {
    let response = app.rpc(consultant, "subscribe", &[("plan_id", &plan_id.to_string())]).await;
    let checkout = redirect_target(&response);
    assert!(checkout.starts_with(app.sandbox.url()), "{checkout}");
    let (status, _) = pay(&checkout, card).await;
    (status, checkout)
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct SubscriptionState {
    status: String,
    cancel_at_period_end: bool,
    amount: i64,
    plan_name: Option<String>,
}

async fn subscription(app: &TestApp) -> Option<SubscriptionState> {
    sqlx::query_as(
        "SELECT s.status, s.cancel_at_period_end, s.amount, p.name AS plan_name
         FROM subscriptions s LEFT JOIN plans p ON p.id = s.plan_id ORDER BY s.started_at DESC LIMIT 1",
    )
    .fetch_optional(&app.services.pool)
    .await
    .unwrap()
}

async fn subscribed(app: &TestApp) -> bool {
    domain::billing::is_subscribed(&app.services.pool, app.user(Role::Consultant).id).await.unwrap()
}

async fn email_subjects(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT subject FROM emails ORDER BY created_at").fetch_all(&app.services.pool).await.unwrap()
}

/// Delivers the events the sandbox holds, waits for those under way, and then for the jobs
/// that apply them.
pub(crate) async fn flush(app: &TestApp) -> usize {
    let delivered = app.sandbox.flush_deliveries().await;
    app.sandbox.settle_deliveries().await;
    let failed: Vec<_> = app.sandbox.deliveries().into_iter().filter(|d| d.status != Some(200)).collect();
    assert!(failed.is_empty(), "every delivery is accepted: {failed:?}");
    app.wait_for_jobs().await;
    delivered
}

#[tokio::test]
async fn a_consultant_subscribes_with_a_good_card_and_the_webhooks_make_them_active() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let pro = plan(&app, "Pro", "49.00", "0").await;
    let consultant = signed_in(&app, Role::Consultant).await;
    assert!(!subscribed(&app).await);

    let (status, _) = subscribe(&app, &consultant, pro, "4242424242424242").await;
    assert_eq!(status, 303);
    assert_eq!(subscription(&app).await, None, "nothing is stored before Stripe's events arrive");
    assert!(flush(&app).await >= 5);

    assert_eq!(
        subscription(&app).await,
        Some(SubscriptionState {
            status: "active".into(),
            cancel_at_period_end: false,
            amount: 4900,
            plan_name: Some("Pro".into())
        })
    );
    assert!(subscribed(&app).await);
    let (status, amount_paid): (String, i64) =
        sqlx::query_as("SELECT status, amount_paid FROM invoices").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!((status.as_str(), amount_paid), ("paid", 4900));
    let (tx_status, tx_amount): (String, i64) =
        sqlx::query_as("SELECT status, amount FROM payment_transactions").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!((tx_status.as_str(), tx_amount), ("succeeded", 4900));
    let card: String =
        sqlx::query_scalar("SELECT last4 FROM payment_methods").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!(card, "4242", "payment_method.attached stored the card");
    let outcome: bool = sqlx::query_scalar("SELECT succeeded FROM payment_outcomes WHERE source = 'subscription'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert!(outcome);

    // The billing page shows it, with the invoice and its PDF link.
    let page = consultant.get(app.url("/billing")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-testid=\"subscription-status\"") && page.contains(">Active</span>"), "{page}");
    assert!(page.contains("$49.00 / month"));
    assert!(page.contains("/pdf\""), "the invoice PDF is linked");

    // Subscribing twice is refused.
    let again = app.rpc(&consultant, "subscribe", &[("plan_id", &pro.to_string())]).await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn the_return_page_shows_what_is_stored_when_stripe_cannot_confirm_the_checkout() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let pro = plan(&app, "Pro", "49.00", "0").await;
    let consultant = signed_in(&app, Role::Consultant).await;
    let response = app.rpc(&consultant, "subscribe", &[("plan_id", &pro.to_string())]).await;
    let (status, back) = pay(&redirect_target(&response), "4242424242424242").await;
    assert_eq!(status, 303);
    app.sandbox.add_fault(stripe_sandbox::FaultRule {
        method: Some("GET".into()),
        path: "/v1/checkout/sessions/*".into(),
        kind: stripe_sandbox::FaultKind::ServerError,
        count: 5,
        delay_ms: None,
    });
    let page = consultant.get(back.unwrap()).send().await.unwrap();
    assert_eq!(page.status(), 200, "the page is not lost to Stripe's failure");
    let page = page.text().await.unwrap();
    assert!(page.contains("appears here as soon as Stripe confirms it"), "{page}");
    assert_eq!(subscription(&app).await, None);
    flush(&app).await;
    assert_eq!(subscription(&app).await.unwrap().status, "active", "the webhooks bring it in");
}

/// The card page after Stripe sends the consultant back from saving `card`.
async fn save_card(app: &TestApp, consultant: &reqwest::Client, card: &str) -> String {
    let add = app.rpc(consultant, "add_card", &[]).await;
    let setup = redirect_target(&add);
    let (status, back) = pay(&setup, card).await;
    assert_eq!(status, 303);
    let back = back.unwrap();
    assert!(back.starts_with(&app.url("/billing/payment-methods?setup=cs_")), "{back}");
    consultant.get(&back).send().await.unwrap().text().await.unwrap()
}

async fn open_invoices(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM invoices WHERE status = 'open'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_declined_card_subscribes_nobody_and_a_failed_renewal_is_recovered_with_a_new_card() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let mut clock = app.test_clock(Role::Consultant).await;
    let pro = plan(&app, "Pro", "49.00", "7").await;
    let consultant = signed_in(&app, Role::Consultant).await;

    let (status, checkout) = subscribe(&app, &consultant, pro, "4000000000000002").await;
    assert_eq!(status, 402, "the hosted page shows the decline");
    flush(&app).await;
    assert_eq!(subscription(&app).await, None);
    assert!(!subscribed(&app).await);

    // The same Checkout page takes a card that saves but fails every later charge.
    assert_eq!(pay(&checkout, "4000000000000341").await.0, 303);
    flush(&app).await;
    assert_eq!(subscription(&app).await.unwrap().status, "trialing");

    // Past the trial and the renewal invoice's draft hour, on the consultant's test clock.
    clock.advance(&app, 7 * DAY + 2 * 3600).await;
    flush(&app).await;
    assert_eq!(subscription(&app).await.unwrap().status, "past_due");
    assert!(!subscribed(&app).await, "past due does not count as subscribed");
    assert!(email_subjects(&app).await.contains(&"Your Remit subscription payment failed".to_owned()));
    let body: String = sqlx::query_scalar("SELECT text_body FROM emails WHERE subject LIKE '%payment failed'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert!(body.contains(&app.url("/billing/payment-methods")), "the email links to the card page: {body}");
    let failure: Option<String> =
        sqlx::query_scalar("SELECT failure_code FROM payment_transactions WHERE status <> 'succeeded'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert!(failure.is_some());
    let page = consultant.get(app.url("/billing")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Your last payment failed."), "{page}");

    // A recovery with another card that is declined says so; nothing counts as paid.
    let page = save_card(&app, &consultant, "4000000000000341").await;
    assert!(page.contains("paying the unpaid invoice with it failed: Your card was declined."), "{page}");
    flush(&app).await;
    assert_eq!(subscription(&app).await.unwrap().status, "past_due");
    assert_eq!(open_invoices(&app).await, 1);

    // Recovery: add a working card through setup-mode Checkout; coming back makes it the
    // default and pays the open invoice at once.
    let page = save_card(&app, &consultant, "4242424242424242").await;
    assert!(page.contains("unpaid invoice is now paid"), "{page}");
    flush(&app).await;
    assert_eq!(subscription(&app).await.unwrap().status, "active");
    assert!(subscribed(&app).await);
    assert_eq!(open_invoices(&app).await, 0);
}

#[tokio::test]
async fn a_trial_announces_its_end_three_days_ahead_and_then_bills() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let mut clock = app.test_clock(Role::Consultant).await;
    let start = clock.frozen_time;
    let pro = plan(&app, "Pro", "49.00", "7").await;
    let consultant = signed_in(&app, Role::Consultant).await;
    subscribe(&app, &consultant, pro, "4242424242424242").await;
    flush(&app).await;
    assert_eq!(subscription(&app).await.unwrap().status, "trialing");
    assert!(subscribed(&app).await, "a trial counts as subscribed");
    assert!(!email_subjects(&app).await.iter().any(|s| s.contains("trial")));

    clock.advance(&app, 4 * DAY + 60).await;
    flush(&app).await;
    assert_eq!(email_subjects(&app).await, vec!["Your Remit trial ends in 3 days".to_owned()]);
    let body: String = sqlx::query_scalar("SELECT text_body FROM emails").fetch_one(&app.services.pool).await.unwrap();
    assert!(body.contains("$49.00 per month") && body.contains("saved card will be charged"), "{body}");

    // The renewal invoice is made when the trial ends and paid an hour later, both on the clock.
    clock.advance(&app, 3 * DAY + 3600).await;
    flush(&app).await;
    assert_eq!(subscription(&app).await.unwrap().status, "active");
    let paid: Vec<i64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM stripe_created_at)::bigint FROM invoices WHERE status = 'paid' AND amount_paid = 4900",
    )
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(paid, vec![start + 7 * DAY], "the first paid invoice follows the trial, dated by the clock");
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn cancelling_at_period_end_keeps_access_until_the_period_ends_and_can_be_undone() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let pro = plan(&app, "Pro", "49.00", "0").await;
    let consultant = signed_in(&app, Role::Consultant).await;
    subscribe(&app, &consultant, pro, "4242424242424242").await;
    flush(&app).await;

    assert_eq!(app.rpc(&consultant, "cancel_subscription", &[]).await.status(), 200);
    let state = subscription(&app).await.unwrap();
    assert!(state.cancel_at_period_end && state.status == "active", "{state:?}");
    let page = consultant.get(app.url("/billing")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-testid=\"ends\""), "the page says when it ends");
    assert!(page.contains("Resume subscription"));

    assert_eq!(app.rpc(&consultant, "resume_subscription", &[]).await.status(), 200);
    assert!(!subscription(&app).await.unwrap().cancel_at_period_end);
    assert_eq!(app.rpc(&consultant, "cancel_subscription", &[]).await.status(), 200);
    flush(&app).await;
    assert!(subscribed(&app).await, "still subscribed until the period ends");

    app.sandbox.advance_clock(31 * DAY);
    flush(&app).await;
    let state = subscription(&app).await.unwrap();
    assert_eq!(state.status, "canceled");
    assert!(!subscribed(&app).await);
    let ended: bool = sqlx::query_scalar("SELECT ended_at IS NOT NULL FROM subscriptions")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert!(ended);
    let invoices: i64 = app.count("invoices").await;
    assert_eq!(invoices, 1, "nothing was billed after the end");
}

#[tokio::test]
async fn changing_plan_moves_the_subscription_to_the_new_price() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let basic = plan(&app, "Basic", "19.00", "0").await;
    let pro = plan(&app, "Pro", "49.00", "0").await;
    let consultant = signed_in(&app, Role::Consultant).await;
    subscribe(&app, &consultant, basic, "4242424242424242").await;
    flush(&app).await;
    assert_eq!(subscription(&app).await.unwrap().plan_name.as_deref(), Some("Basic"));

    let same = app.rpc(&consultant, "change_plan", &[("plan_id", &basic.to_string())]).await;
    assert_eq!(same.status(), 422, "already on it");
    assert_eq!(app.rpc(&consultant, "change_plan", &[("plan_id", &pro.to_string())]).await.status(), 200);
    flush(&app).await;
    let state = subscription(&app).await.unwrap();
    assert_eq!((state.plan_name.as_deref(), state.amount, state.status.as_str()), (Some("Pro"), 4900, "active"));

    app.sandbox.advance_clock(31 * DAY);
    flush(&app).await;
    let renewal: i64 = sqlx::query_scalar("SELECT amount_paid FROM invoices ORDER BY stripe_created_at DESC LIMIT 1")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(renewal, 4900, "the renewal bills the new plan");
}

#[tokio::test]
async fn only_consultants_subscribe_and_only_platform_admins_define_plans() {
    let app = spawn_app().await;
    let pro = plan(&app, "Pro", "49.00", "0").await;
    let family = signed_in(&app, Role::FamilyMember).await;
    assert_eq!(app.rpc(&family, "subscribe", &[("plan_id", &pro.to_string())]).await.status(), 403);
    assert_eq!(app.rpc(&family, "add_card", &[]).await.status(), 403);
    let page = family.get(app.url("/billing")).send().await.unwrap();
    assert_eq!(page.status(), 200, "a family member may look");
    assert!(!page.text().await.unwrap().contains("Subscribe to Pro"), "but sees no controls");

    let consultant = signed_in(&app, Role::Consultant).await;
    let form = [
        ("name", "Mine"),
        ("description", ""),
        ("price", "1"),
        ("currency", "usd"),
        ("interval", "month"),
        ("trial_days", "0"),
    ];
    assert_eq!(app.rpc(&consultant, "create_plan", &form).await.status(), 403);
    assert_eq!(app.rpc(&consultant, "subscribe", &[("plan_id", &Uuid::new_v4().to_string())]).await.status(), 404);
}

#[tokio::test]
async fn a_bad_plan_is_refused_and_a_stripe_failure_stores_no_plan() {
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::PlatformAdmin).await;
    let form = |price: &'static str, interval: &'static str| {
        [
            ("name", "Pro"),
            ("description", ""),
            ("price", price),
            ("currency", "usd"),
            ("interval", interval),
            ("trial_days", "0"),
        ]
    };
    for (price, interval, field) in
        [("49.999", "month", "price"), ("abc", "month", "price"), ("49", "fortnight", "interval")]
    {
        let response = app.rpc(&admin, "create_plan", &form(price, interval)).await;
        assert_eq!(response.status(), 422);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["field"], field, "{body}");
    }
    app.sandbox.add_fault(stripe_sandbox::FaultRule {
        method: Some("POST".into()),
        path: "/v1/prices".into(),
        kind: stripe_sandbox::FaultKind::ServerError,
        count: 1,
        delay_ms: None,
    });
    let response = app.rpc(&admin, "create_plan", &form("49", "month")).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("try again"), "{body}");
    assert_eq!(app.count("plans").await, 0, "nothing stored when Stripe failed");
    assert_eq!(app.rpc(&admin, "create_plan", &form("49", "month")).await.status(), 200, "a retry works");
    assert_eq!(app.count("plans").await, 1);
}

/// Everything billing stores, without ids and read times, in a stable order.
async fn billing_state(app: &TestApp) -> Vec<String> {
    let queries = [
        "SELECT concat_ws('|', stripe_subscription_id, status, cancel_at_period_end, amount, current_period_end, trial_end, canceled_at, ended_at, latest_invoice) FROM subscriptions",
        "SELECT concat_ws('|', stripe_invoice_id, status, amount_due, amount_paid, attempt_count, paid_at, next_payment_attempt) FROM invoices",
        "SELECT concat_ws('|', stripe_payment_intent_id, status, amount, failure_code, failure_message) FROM payment_transactions",
        "SELECT concat_ws('|', stripe_payment_method_id, last4) FROM payment_methods",
        "SELECT concat_ws('|', reference, succeeded, failure_code) FROM payment_outcomes",
        "SELECT concat_ws('|', to_address, subject) FROM emails",
    ];
    let mut state = Vec::new();
    for query in queries {
        let mut rows: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(query)).fetch_all(&app.services.pool).await.unwrap();
        rows.sort();
        state.push(rows.join("\n"));
    }
    state
}

/// Signs and posts one event to Remit's intake, as Stripe does.
async fn deliver(app: &TestApp, event: &Value) -> u16 {
    use secrecy::ExposeSecret as _;
    let payload = event.to_string();
    let secret = app.services.stripe.mode(false).unwrap().keys().webhook_secrets[0].expose_secret().to_owned();
    let now = chrono::Utc::now().timestamp();
    reqwest::Client::new()
        .post(app.url("/payments/webhooks/stripe"))
        .header("Stripe-Signature", stripe_sandbox::signature_header(&secret, &payload, now))
        .header(header::CONTENT_TYPE, "application/json")
        .body(payload)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A repeatable shuffle (no randomness in assertions): Fisher–Yates driven by an LCG.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut items = items.to_vec();
    let mut x = seed;
    for i in (1..items.len()).rev() {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        items.swap(i, (x >> 33) as usize % (i + 1));
    }
    items
}

#[tokio::test]
async fn duplicated_and_reordered_events_leave_the_state_in_order_delivery_leaves() {
    let app = spawn_app().await;
    // Hold every delivery: the test delivers the recorded events itself.
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let pro = plan(&app, "Pro", "49.00", "7").await;
    let consultant = signed_in(&app, Role::Consultant).await;
    let (_, checkout) = subscribe(&app, &consultant, pro, "4000000000000002").await;
    pay(&checkout, "4000000000000341").await;
    app.sandbox.advance_clock(5 * DAY);
    app.sandbox.advance_clock(3 * DAY);
    let (_, subscriptions) = app.stripe(Method::GET, "/v1/subscriptions", &[]).await;
    let subscription_id = subscriptions["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/subscriptions/{subscription_id}");
    app.stripe(Method::POST, &path, &[("cancel_at_period_end", "true")]).await;
    let mut events: Vec<Value> =
        app.stripe(Method::GET, "/v1/events?limit=100", &[]).await.1["data"].as_array().unwrap().clone();
    events.reverse();
    let handled =
        events.iter().filter(|e| domain::billing::events::HANDLED.contains(&e["type"].as_str().unwrap())).count();
    assert!(handled >= 8, "the flow produced the billing events: {handled}");

    for event in &events {
        assert_eq!(deliver(&app, event).await, 200);
    }
    app.wait_for_jobs().await;
    let in_order = billing_state(&app).await;
    assert!(in_order[0].contains("past_due|t"), "past due and cancelling: {}", in_order[0]);
    assert!(in_order[5].contains("payment failed"), "the dunning email was queued: {}", in_order[5]);

    for seed in [1, 7, 42] {
        sqlx::query("TRUNCATE stripe_events, payment_outcomes, payment_transactions, invoices, subscriptions, payment_methods, email_attachments, winning_emails, emails")
            .execute(&app.services.pool)
            .await
            .unwrap();
        let mut twice = events.clone();
        twice.extend(events.iter().cloned());
        let order = shuffled(&twice, seed);
        // Neighbours go concurrently, so a duplicate may race its twin.
        for pair in order.chunks(2) {
            let statuses = match pair {
                [a, b] => {
                    let (a, b) = tokio::join!(deliver(&app, a), deliver(&app, b));
                    vec![a, b]
                }
                _ => vec![deliver(&app, &pair[0]).await],
            };
            assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        }
        app.wait_for_jobs().await;
        assert_eq!(billing_state(&app).await, in_order, "shuffle {seed}");
    }
}
