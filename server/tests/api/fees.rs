//! Consultants bill their clients (fees): a request to a household member or a new client, paid
//! through Stripe Checkout as a destination charge to the consultant's account, applied once
//! from Stripe's events however they are delivered, with a receipt for the client.

use domain::auth::Role;
use reqwest::{Method, header};
use serde_json::Value;
use stripe_sandbox::{DeliveryMode, FaultKind, FaultRule};
use uuid::Uuid;

use crate::{
    billing::{flush, pay, plan, signed_in, subscribe},
    helpers::{SecondProcess, TestApp, schedule_last_ran, spawn_app, wait_until},
    reconciliation::{differences, reconcile},
};

/// The seeded consultant, subscribed and with a payout account Stripe has enabled; their client.
pub(crate) async fn ready_consultant(app: &TestApp) -> reqwest::Client {
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let pro = plan(app, "Pro", "49.00", "0").await;
    let client = signed_in(app, Role::Consultant).await;
    subscribe(app, &client, pro, "4242424242424242").await;
    flush(app).await;
    app.sandbox.set_delivery_mode(DeliveryMode::Normal);
    let cookie = app.session_cookie(Role::Consultant).await;
    let (status, body) =
        app.json_with_cookie(Method::POST, "/api/v1/consultants/me/payment-account", &cookie, None).await;
    assert!(status == 200 || status == 201, "{body}");
    sqlx::query(
        "UPDATE consultant_accounts SET details_submitted = true, charges_enabled = true, payouts_enabled = true",
    )
    .execute(&app.services.pool)
    .await
    .unwrap();
    client
}

pub(crate) fn family(app: &TestApp) -> String {
    app.user(Role::FamilyMember).id.to_string()
}

pub(crate) async fn request_fee(app: &TestApp, consultant: &reqwest::Client, form: &[(&str, &str)]) -> (u16, Value) {
    let response = app.rpc(consultant, "request_fee", form).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) fn fee_form<'a>(
    client: &'a str,
    amount: &'a str,
    due_on: &'a str,
    recurrence: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client", client),
        ("description", "Tax return 2026"),
        ("amount", amount),
        ("currency", "usd"),
        ("due_on", due_on),
        ("recurrence", recurrence),
    ]
}

pub(crate) fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

pub(crate) async fn fee_ids(app: &TestApp) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM fee_requests ORDER BY period").fetch_all(&app.services.pool).await.unwrap()
}

pub(crate) async fn fee_status(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM fee_requests WHERE id = $1")
        .bind(id)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

/// The client's "Pay": where the server function sends the browser, or its error.
pub(crate) async fn pay_fee(app: &TestApp, client: &reqwest::Client, id: Uuid) -> (u16, String) {
    let response = app.rpc(client, "pay_fee", &[("fee", &id.to_string())]).await;
    let status = response.status().as_u16();
    match response.headers().get(header::LOCATION) {
        Some(location) => (status, location.to_str().unwrap().to_owned()),
        None => (status, response.text().await.unwrap()),
    }
}

async fn webhook_types(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT type FROM webhook_events ORDER BY created_at, type")
        .fetch_all(&app.services.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_pays_a_fee_with_4242_once_whatever_the_deliveries_and_gets_the_receipt() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    let (status, body) = request_fee(&app, &consultant, &fee_form(&family(&app), "120.00", &today(), "once")).await;
    assert_eq!(status, 200, "{body}");
    let fee = fee_ids(&app).await[0];
    let to_client: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM emails WHERE to_address = $1 AND subject LIKE '%sent you a fee request: Tax return 2026'",
    )
    .bind(&app.user(Role::FamilyMember).email)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(to_client, 1, "the client is told");

    let client = signed_in(&app, Role::FamilyMember).await;
    let (status, url) = pay_fee(&app, &client, fee).await;
    assert!(url.starts_with(app.sandbox.url()), "{status} {url}");
    assert_eq!(pay_fee(&app, &client, fee).await.1, url, "one open Checkout per fee request");
    assert_eq!(app.count("fee_checkouts").await, 1);

    // Every event twice, then held and delivered newest first.
    app.sandbox.set_delivery_mode(DeliveryMode::Duplicate);
    let (status, back) = pay(&url, "4242424242424242").await;
    assert_eq!(status, 303);
    assert!(back.unwrap().starts_with(&app.url("/fees?paid=cs_")));
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    flush(&app).await;
    wait_until("the fee is paid", async || fee_status(&app, fee).await == "paid").await;
    app.wait_for_jobs().await;

    assert_eq!(app.count("orders").await, 1, "one order, however often the events arrive");
    let (amount, fee_of_order): (i64, Option<Uuid>) =
        sqlx::query_as("SELECT amount, fee_request_id FROM orders").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!((amount, fee_of_order), (12_000, Some(fee)));
    assert_eq!(
        webhook_types(&app).await.iter().filter(|t| t.as_str() == "fee.paid").count(),
        1,
        "the tenant is told once"
    );
    // The money went to the consultant's account, less the platform's 5 %.
    let intent: String =
        sqlx::query_scalar("SELECT stripe_payment_intent_id FROM orders").fetch_one(&app.services.pool).await.unwrap();
    let account: String = sqlx::query_scalar("SELECT stripe_account_id FROM consultant_accounts")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    let (_, pi) = app.stripe(Method::GET, &format!("/v1/payment_intents/{intent}"), &[]).await;
    assert_eq!(
        (pi["application_fee_amount"].as_i64(), pi["transfer_data"]["destination"].as_str()),
        (Some(600), Some(account.as_str()))
    );

    // Stripe's balance agrees with Remit's books: the charge, its application fee and the
    // transfer to the consultant are the order's (and the subscription payment the consultant's).
    let day = chrono::Utc::now().date_naive();
    reconcile(&app, day).await;
    assert_eq!(differences(&app, day).await, vec![], "a paid fee reconciles");

    // The receipt: emailed to the client as a PDF, downloadable by the client and the consultant.
    let receipts: Vec<(String, String)> = sqlx::query_as(
        "SELECT e.subject, a.filename FROM emails e JOIN email_attachments a ON a.email_id = e.id WHERE e.to_address = $1",
    )
    .bind(&app.user(Role::FamilyMember).email)
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert!(receipts[0].0.starts_with("Your receipt: Tax return 2026"), "{receipts:?}");
    let consultant_told: i64 =
        sqlx::query_scalar("SELECT count(*) FROM emails WHERE to_address = $1 AND subject LIKE '%paid your fee%'")
            .bind(&app.user(Role::Consultant).email)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(consultant_told, 1);
    for who in [&client, &consultant] {
        let pdf = who.get(app.url(&format!("/fees/{fee}/receipt.pdf"))).send().await.unwrap();
        assert_eq!(pdf.status(), 200);
        assert_eq!(pdf.headers()[header::CONTENT_TYPE], "application/pdf");
        assert!(pdf.headers().contains_key("repr-digest"));
        assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    }
    let owner = signed_in(&app, Role::TenantOwner).await;
    assert_eq!(owner.get(app.url(&format!("/fees/{fee}/receipt.pdf"))).send().await.unwrap().status(), 403);
    // The page shows it paid, with the receipt; paying again is refused in words.
    let page = client.get(app.url("/fees")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Tax return 2026") && page.contains("Receipt (PDF)"), "{page}");
    let (status, body) = pay_fee(&app, &client, fee).await;
    assert_eq!(status, 409);
    assert!(body.contains("already paid"), "{body}");
}

#[tokio::test]
async fn a_declined_card_tells_the_tenant_and_the_fee_stays_open() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    request_fee(&app, &consultant, &fee_form(&family(&app), "80", &today(), "once")).await;
    let fee = fee_ids(&app).await[0];
    let client = signed_in(&app, Role::FamilyMember).await;
    let (_, url) = pay_fee(&app, &client, fee).await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let (status, _) = pay(&url, "4000000000000002").await;
    assert_ne!(status, 303, "the declined card stays on Stripe's page");
    flush(&app).await;
    wait_until("the failure is told", async || webhook_types(&app).await.contains(&"fee.failed".to_owned())).await;
    let payload: Value = sqlx::query_scalar("SELECT payload FROM webhook_events WHERE type = 'fee.failed'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(payload["data"]["fee"], fee.to_string());
    assert!(payload["data"]["reason"].as_str().unwrap().contains("declined"), "{payload}");
    assert_eq!(fee_status(&app, fee).await, "open");
    assert_eq!(app.count("orders").await, 0);
}

#[tokio::test]
async fn a_new_client_is_invited_with_the_request_and_refused_input_stores_nothing() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    let counts = async || (app.count("fee_requests").await, app.count("users").await, app.count("emails").await);
    let before = counts().await;

    // Input a person can fix: 422 naming the field, nothing stored, nobody emailed.
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    for (form, field) in [
        (fee_form(&family(&app), "0.20", &today(), "once"), "amount"),
        (fee_form(&family(&app), "120", &yesterday, "once"), "due_on"),
        (fee_form(&family(&app), "120", &today(), "weekly"), "recurrence"),
        (fee_form("new", "120", &today(), "once"), "client_email"),
    ] {
        let (status, body) = request_fee(&app, &consultant, &form).await;
        assert_eq!((status, body["field"].as_str()), (422, Some(field)), "{body}");
    }
    let today = today();
    let mut unnamed = fee_form("new", "120", &today, "once");
    unnamed.push(("client_email", "new.client@example.com"));
    let (status, body) = request_fee(&app, &consultant, &unnamed).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("client_name")), "{body}");
    // Someone outside the household (here the tenant's owner) cannot be billed.
    let mut outsider = fee_form("new", "120", &today, "once");
    let owner_email = app.user(Role::TenantOwner).email.clone();
    outsider.extend([("client_email", owner_email.as_str()), ("client_name", "Owner")]);
    let (status, body) = request_fee(&app, &consultant, &outsider).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("outside your household"), "{body}");
    assert_eq!(counts().await, before, "nothing stored, nobody emailed");

    let mut new = fee_form("new", "120", &today, "once");
    new.extend([("client_email", "new.client@example.com"), ("client_name", "Nia New")]);
    let (status, body) = request_fee(&app, &consultant, &new).await;
    assert_eq!(status, 200, "{body}");
    let consultant_id: Option<Uuid> =
        sqlx::query_scalar("SELECT consultant_id FROM users WHERE email = 'new.client@example.com'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(consultant_id, Some(app.user(Role::Consultant).id), "invited into the household");
    let subjects: Vec<String> =
        sqlx::query_scalar("SELECT subject FROM emails WHERE to_address = 'new.client@example.com' ORDER BY subject")
            .fetch_all(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(subjects.len(), 2, "the invitation and the request: {subjects:?}");

    // Revoking the invitation would lose the open request with it: refused until it is cancelled.
    let new_client: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'new.client@example.com'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    let response = app.rpc(&consultant, "revoke_invitation", &[("user_id", &new_client.to_string())]).await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("Cancel those on the Fees page first"), "{body}");
    let billed: Uuid = sqlx::query_scalar("SELECT id FROM fee_requests WHERE client_id = $1")
        .bind(new_client)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(app.rpc(&consultant, "cancel_fee", &[("fee", &billed.to_string())]).await.status(), 200);
    let response = app.rpc(&consultant, "revoke_invitation", &[("user_id", &new_client.to_string())]).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_stripe_failure_while_opening_checkout_stores_nothing_and_answers_502_in_words() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    request_fee(&app, &consultant, &fee_form(&family(&app), "45", &today(), "once")).await;
    let fee = fee_ids(&app).await[0];
    let client = signed_in(&app, Role::FamilyMember).await;
    app.sandbox.add_fault(FaultRule {
        method: Some("POST".into()),
        path: "/v1/checkout/sessions".into(),
        kind: FaultKind::ServerError,
        count: 1,
        delay_ms: None,
    });
    let (status, body) = pay_fee(&app, &client, fee).await;
    assert_eq!(status, 502, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["message"], "Stripe could not open the payment page just now. Please try again in a moment.");
    assert_eq!(app.count("fee_checkouts").await, 0, "nothing stored");
    assert_eq!(fee_status(&app, fee).await, "open");
    let (_, url) = pay_fee(&app, &client, fee).await;
    assert!(url.starts_with(app.sandbox.url()), "the next try works: {url}");
}

#[tokio::test]
async fn only_the_consultant_bills_and_only_their_client_pays() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    request_fee(&app, &consultant, &fee_form(&family(&app), "45", &today(), "once")).await;
    let fee = fee_ids(&app).await[0];
    let client = signed_in(&app, Role::FamilyMember).await;
    let (status, _) = request_fee(&app, &client, &fee_form(&family(&app), "45", &today(), "once")).await;
    assert_eq!(status, 403, "a family member cannot bill");
    assert_eq!(pay_fee(&app, &consultant, fee).await.0, 403, "the consultant does not pay their own fee");
    let owner = signed_in(&app, Role::TenantOwner).await;
    assert_eq!(owner.get(app.url("/fees")).send().await.unwrap().status(), 403);
    assert_eq!(pay_fee(&app, &client, Uuid::new_v4()).await.0, 404);
    // A client who is not the fee's: another household's member of the same tenant.
    sqlx::query("UPDATE fee_requests SET client_id = $1")
        .bind(app.user(Role::Consultant).id)
        .execute(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(pay_fee(&app, &client, fee).await.0, 404, "someone else's fee is not found");
}

#[tokio::test]
async fn a_monthly_fee_is_billed_by_the_schedule_until_the_consultant_stops_it() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    let (status, body) = request_fee(&app, &consultant, &fee_form(&family(&app), "60", &today(), "monthly")).await;
    assert_eq!(status, 200, "{body}");
    let first = fee_ids(&app).await[0];
    // Made a month (and a day) ago: the next month's request is due.
    sqlx::query("UPDATE fee_requests SET created_at = now() - interval '1 month 1 day', due_on = due_on - interval '1 month 1 day'")
        .execute(&app.services.pool)
        .await
        .unwrap();
    schedule_last_ran(&app, "issue_monthly_fees", "1 day").await;
    let second = SecondProcess::start(&app).await;
    wait_until("the month's request", async || fee_ids(&app).await.len() == 2).await;
    second.kill().await;
    let periods: Vec<(i32, String)> = sqlx::query_as("SELECT period, status::text FROM fee_requests ORDER BY period")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(periods, [(0, "open".to_owned()), (1, "open".to_owned())]);

    // Stopping: the open request is cancelled and no further month is made.
    let response = app.rpc(&consultant, "cancel_fee", &[("fee", &first.to_string())]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(fee_status(&app, first).await, "cancelled");
    sqlx::query("UPDATE fee_requests SET created_at = created_at - interval '2 months' WHERE period = 0")
        .execute(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(domain::fees::issue_monthly(&app.services).await.unwrap(), 0, "a stopped series makes no more");
    let response = app.rpc(&consultant, "cancel_fee", &[("fee", &first.to_string())]).await;
    assert_eq!(response.status(), 409, "already cancelled");
}

#[tokio::test]
async fn a_month_in_which_the_client_stays_deactivated_is_passed_over_and_the_series_goes_on() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    request_fee(&app, &consultant, &fee_form(&family(&app), "60", &today(), "monthly")).await;
    let client = app.user(Role::FamilyMember).id;
    let a_month_back = async || {
        sqlx::query(
            "UPDATE fee_requests SET created_at = created_at - interval '1 month', due_on = due_on - interval '1 month'
             WHERE period = 0",
        )
        .execute(&app.services.pool)
        .await
        .unwrap();
    };
    // Made a month (and a day) ago: the next month's request is due.
    sqlx::query(
        "UPDATE fee_requests SET created_at = created_at - interval '1 day', due_on = due_on - interval '1 day'",
    )
    .execute(&app.services.pool)
    .await
    .unwrap();
    a_month_back().await;
    let to_client = async || -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM emails WHERE to_address = $1 AND subject LIKE '%sent you a fee request%'",
        )
        .bind(&app.user(Role::FamilyMember).email)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
    };
    let periods = async || -> Vec<(i32, String)> {
        sqlx::query_as("SELECT period, status::text FROM fee_requests ORDER BY period")
            .fetch_all(&app.services.pool)
            .await
            .unwrap()
    };
    let emailed = to_client().await;
    let set_active = async |active: bool| {
        sqlx::query("UPDATE users SET deactivated_at = CASE WHEN $2 THEN NULL ELSE now() END WHERE id = $1")
            .bind(client)
            .bind(active)
            .execute(&app.services.pool)
            .await
            .unwrap();
    };

    // Deactivated while the month is due: it waits (a day's lapse costs nothing).
    set_active(false).await;
    assert_eq!(domain::fees::issue_monthly(&app.services).await.unwrap(), 0, "nothing billed");
    assert_eq!(periods().await, [(0, "open".to_owned())], "the month waits");

    // Still deactivated when the next month comes: that month is passed over, the consultant told.
    a_month_back().await;
    assert_eq!(domain::fees::issue_monthly(&app.services).await.unwrap(), 0);
    assert_eq!(periods().await, [(0, "open".to_owned()), (1, "cancelled".to_owned())]);
    assert_eq!(to_client().await, emailed, "the client is not emailed");
    let told: Vec<String> =
        sqlx::query_scalar("SELECT text_body FROM emails WHERE to_address = $1 AND subject LIKE 'Not billed for %'")
            .bind(&app.user(Role::Consultant).email)
            .fetch_all(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("the client's account is deactivated"), "{told:?}");
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'fee.month_passed_over'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(audited, 1);

    // Back within the next month: that month is billed, the passed-over one never is.
    set_active(true).await;
    assert_eq!(domain::fees::issue_monthly(&app.services).await.unwrap(), 1);
    assert_eq!(
        periods().await,
        [(0, "open".to_owned()), (1, "cancelled".to_owned()), (2, "open".to_owned())],
        "one request for the month the client is back"
    );
    assert_eq!(to_client().await, emailed + 1);
}

#[tokio::test]
async fn a_second_payment_of_a_paid_fee_is_raised_for_a_refund_never_dropped() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    request_fee(&app, &consultant, &fee_form(&family(&app), "70", &today(), "once")).await;
    let fee = fee_ids(&app).await[0];
    let client = signed_in(&app, Role::FamilyMember).await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let (_, first) = pay_fee(&app, &client, fee).await;
    assert_eq!(pay(&first, "4242424242424242").await.0, 303);
    // The payment's events are late, and by Remit's clock the page has run out: the client pays
    // again on a new page.
    sqlx::query("UPDATE fee_checkouts SET expires_at = now() - interval '1 minute'")
        .execute(&app.services.pool)
        .await
        .unwrap();
    let (_, second) = pay_fee(&app, &client, fee).await;
    assert!(second.starts_with(app.sandbox.url()) && second != first, "{second}");
    assert_eq!(pay(&second, "4242424242424242").await.0, 303);
    flush(&app).await;
    wait_until("the fee is paid", async || fee_status(&app, fee).await == "paid").await;
    let raised = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM security_events WHERE kind = 'fee.paid_twice'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap()
    };
    wait_until("the second payment is raised", async || raised().await == 1).await;
    app.wait_for_jobs().await;
    assert_eq!(app.count("orders").await, 1, "one order: the fee was paid once");
    assert_eq!(webhook_types(&app).await.iter().filter(|t| t.as_str() == "fee.paid").count(), 1);
    assert_eq!(raised().await, 1, "raised once, however often the events come");
}

#[tokio::test]
async fn fees_are_summed_per_month_for_the_consultant_and_per_consultant_for_the_tenant() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    for amount in ["120.00", "80.00", "50.00"] {
        let (status, body) = request_fee(&app, &consultant, &fee_form(&family(&app), amount, &today(), "once")).await;
        assert_eq!(status, 200, "{body}");
    }
    let fee_of = async |amount: i64| -> Uuid {
        sqlx::query_scalar("SELECT id FROM fee_requests WHERE amount = $1")
            .bind(amount)
            .fetch_one(&app.services.pool)
            .await
            .unwrap()
    };
    // $120.00 paid, $80.00 billed last month and still open, $50.00 cancelled.
    let (paid, open, cancelled) = (fee_of(12_000).await, fee_of(8_000).await, fee_of(5_000).await);
    let client = signed_in(&app, Role::FamilyMember).await;
    let (_, url) = pay_fee(&app, &client, paid).await;
    assert_eq!(crate::billing::pay(&url, "4242424242424242").await.0, 303);
    flush(&app).await;
    wait_until("the fee is paid", async || fee_status(&app, paid).await == "paid").await;
    assert_eq!(app.rpc(&consultant, "cancel_fee", &[("fee", &cancelled.to_string())]).await.status(), 200);
    sqlx::query("UPDATE fee_requests SET created_at = created_at - interval '1 month' WHERE id = $1")
        .bind(open)
        .execute(&app.services.pool)
        .await
        .unwrap();

    let response = app.rpc(&consultant, "fee_report", &[]).await;
    assert_eq!(response.status(), 200);
    let reports: Value = response.json().await.unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 1, "one currency: {reports}");
    let report = &reports[0];
    assert_eq!((report["currency"].as_str(), report["months"].as_array().unwrap().len()), (Some("USD"), 12));
    let month = |offset: u32| {
        let first = chrono::Datelike::with_day(&chrono::Utc::now().date_naive(), 1).unwrap();
        first.checked_sub_months(chrono::Months::new(offset)).unwrap().format("%Y-%m").to_string()
    };
    let row = |m: &str| report["months"].as_array().unwrap().iter().find(|r| r["month"] == m).unwrap().clone();
    let this = row(&month(0));
    assert_eq!(
        [&this["invoiced"], &this["paid"], &this["outstanding"], &this["refunded"]],
        ["$120.00", "$120.00", "$0.00", "$0.00"],
        "the cancelled request was not invoiced: {this}"
    );
    let last = row(&month(1));
    assert_eq!([&last["invoiced"], &last["paid"], &last["outstanding"]], ["$80.00", "$0.00", "$80.00"], "{last}");
    assert_eq!(report["totals"]["invoiced"], "$200.00");
    assert_eq!(report["totals"]["outstanding"], "$80.00");

    // The tenant's staff see the same per consultant; the family member sees none of it.
    let owner = signed_in(&app, Role::TenantOwner).await;
    let reports: Value = app.rpc(&owner, "consultant_fee_reports", &[]).await.json().await.unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 1, "{reports}");
    let name: String = sqlx::query_scalar("SELECT display_name FROM users WHERE id = $1")
        .bind(app.user(Role::Consultant).id)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(reports[0]["consultant"], name.as_str());
    assert_eq!(reports[0]["totals"], report["totals"]);
    assert_eq!(app.rpc(&client, "fee_report", &[]).await.status(), 403);
    let (_, dashboard) = app.page(Some(Role::Consultant), "/dashboard").await;
    assert!(dashboard.contains("Your fees by month") && dashboard.contains("$200.00"), "{dashboard}");
    let (_, family_dashboard) = app.page(Some(Role::FamilyMember), "/dashboard").await;
    assert!(!family_dashboard.contains("Your fees by month"));
    let (_, reports_page) = app.page(Some(Role::TenantOwner), "/reports").await;
    assert!(reports_page.contains("Consultants&#x27; fees") || reports_page.contains("Consultants' fees"));
}

#[tokio::test]
async fn the_consultant_refunds_a_fee_in_parts_each_once_with_a_credit_note_for_the_client() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    request_fee(&app, &consultant, &fee_form(&family(&app), "120.00", &today(), "once")).await;
    let fee = fee_ids(&app).await[0];
    let client = signed_in(&app, Role::FamilyMember).await;
    let (_, url) = pay_fee(&app, &client, fee).await;
    assert_eq!(crate::billing::pay(&url, "4242424242424242").await.0, 303);
    flush(&app).await;
    wait_until("the fee is paid", async || fee_status(&app, fee).await == "paid").await;

    // Stripe repeats every event from here on; the refund form may be sent twice.
    app.sandbox.set_delivery_mode(DeliveryMode::Duplicate);
    let refund = async |amount: &str, key: &str| {
        let form = [
            ("fee", fee.to_string()),
            ("amount", amount.into()),
            ("reason", "Overbilled two hours".into()),
            ("idempotency_key", key.into()),
        ];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = app.rpc(&consultant, "refund_fee", &form).await;
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap_or(Value::Null))
    };
    assert_eq!(refund("50.00", "k1").await.0, 200);
    assert_eq!(refund("50.00", "k1").await.0, 200, "the same form again");
    let (status, body) = refund("100.00", "k2").await;
    assert_eq!((status, body["field"].as_str()), (422, Some("amount")), "more than is left: {body}");
    assert!(body["message"].as_str().unwrap().contains("at most $70.00"), "{body}");
    let (status, _) = refund("10.00", "").await;
    assert_eq!(status, 200);
    // Only the consultant who billed it refunds it.
    let owner = signed_in(&app, Role::TenantOwner).await;
    assert_eq!(
        app.rpc(
            &owner,
            "refund_fee",
            &[("fee", &fee.to_string()), ("amount", ""), ("reason", "x"), ("idempotency_key", "")]
        )
        .await
        .status(),
        403
    );
    assert_eq!(
        app.rpc(
            &client,
            "refund_fee",
            &[("fee", &fee.to_string()), ("amount", ""), ("reason", "x"), ("idempotency_key", "")]
        )
        .await
        .status(),
        403
    );

    flush(&app).await;
    let order = async || -> (String, i64) {
        sqlx::query_as("SELECT status, refunded_amount FROM orders").fetch_one(&app.services.pool).await.unwrap()
    };
    wait_until("Stripe's events are applied", async || order().await == ("partially_refunded".to_owned(), 6_000)).await;
    app.wait_for_jobs().await;
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT amount, status::text FROM refunds ORDER BY amount")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(rows, [(1_000, "succeeded".to_owned()), (5_000, "succeeded".to_owned())], "one per request");
    // On Stripe: the consultant's share came back from their account, and the platform's 5 % in
    // proportion (the tenant's default).
    let account: String = sqlx::query_scalar("SELECT stripe_account_id FROM consultant_accounts")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    let (_, refunds) = app.stripe(Method::GET, "/v1/refunds", &[]).await;
    assert_eq!(refunds["data"].as_array().unwrap().len(), 2, "{refunds}");
    let (_, fees) = app.stripe(Method::GET, "/v1/application_fees", &[]).await;
    assert_eq!(fees["data"][0]["amount_refunded"], 300, "5 % of $60.00 back: {fees}");
    assert_eq!(fees["data"][0]["account"], account.as_str());

    // The tenant hears of each refund once, as `fee.refunded` (not as a winning's refund).
    assert_eq!(webhook_types(&app).await.iter().filter(|t| t.as_str() == "fee.refunded").count(), 2);
    assert!(!webhook_types(&app).await.iter().any(|t| t.starts_with("refund.")));

    // The client gets a credit note per refund; both sides can download it.
    let notes: Vec<String> = sqlx::query_scalar(
        "SELECT a.filename FROM emails e JOIN email_attachments a ON a.email_id = e.id
         WHERE e.to_address = $1 AND e.subject LIKE 'Refund: Tax return 2026%' ORDER BY a.filename",
    )
    .bind(&app.user(Role::FamilyMember).email)
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().all(|n| n.starts_with("credit-note-CN-")), "{notes:?}");
    let page = client.get(app.url("/fees")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Refund of $50.00 (succeeded): Overbilled two hours"), "{page}");
    let href = page.split("href=\"").find(|p| p.contains("/credit-note.pdf")).unwrap().split('"').next().unwrap();
    for who in [&client, &consultant] {
        let pdf = who.get(app.url(href)).send().await.unwrap();
        assert_eq!(pdf.status(), 200);
        assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    }
    assert_eq!(owner.get(app.url(href)).send().await.unwrap().status(), 403);

    // All that is left: the order is refunded, and the month's report says so.
    assert_eq!(refund("", "k3").await.0, 200);
    flush(&app).await;
    wait_until("the order is refunded", async || order().await == ("refunded".to_owned(), 12_000)).await;
    assert_eq!(refund("", "k4").await.0, 409, "nothing left");
    let reports: Value = app.rpc(&consultant, "fee_report", &[]).await.json().await.unwrap();
    assert_eq!(reports[0]["totals"]["refunded"], "$120.00", "{reports}");
    // The tenant's money report is about lots: a fee and its refunds are the consultant's money.
    let cookie = app.session_cookie(Role::TenantOwner).await;
    let (status, body) = app.json_with_cookie(Method::GET, "/reports/export.csv?period=month", &cookie, None).await;
    assert_eq!(status, 200);
    let csv = body.as_str().map(str::to_owned).unwrap_or_else(|| body.to_string());
    assert_eq!(csv.lines().count(), 1, "no lot was paid or refunded: {csv}");
}

#[tokio::test]
async fn a_disputed_fee_payment_is_recorded_once_whatever_the_deliveries_and_cannot_be_refunded() {
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    request_fee(&app, &consultant, &fee_form(&family(&app), "90.00", &today(), "once")).await;
    let fee = fee_ids(&app).await[0];
    let client = signed_in(&app, Role::FamilyMember).await;
    let (_, url) = pay_fee(&app, &client, fee).await;
    // Every event twice, then held and delivered newest first: the dispute's before the payment's.
    app.sandbox.set_delivery_mode(DeliveryMode::Duplicate);
    // This test card pays, then the client's bank opens a dispute.
    assert_eq!(crate::billing::pay(&url, "4000000000000259").await.0, 303);
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    flush(&app).await;
    wait_until("the dispute is recorded", async || app.count("disputes").await == 1).await;
    app.wait_for_jobs().await;

    assert_eq!(fee_status(&app, fee).await, "paid", "the order exists before its dispute");
    let order: (String, i64) =
        sqlx::query_as("SELECT status, amount FROM orders").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!(order, ("disputed".to_owned(), 9_000));
    let (reason, amount): (String, i64) =
        sqlx::query_as("SELECT reason, amount FROM disputes").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!((reason.as_str(), amount), ("fraudulent", 9_000));
    let alerts: Vec<String> = sqlx::query_scalar("SELECT message FROM security_events WHERE kind = 'payment.disputed'")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1, "one alert however often the events came: {alerts:?}");
    assert!(alerts[0].contains("Tax return 2026") && alerts[0].contains("$90.00"), "{alerts:?}");
    assert_eq!(webhook_types(&app).await.iter().filter(|t| t.as_str() == "fee.paid").count(), 1);

    // A disputed payment is not refunded on top: the bank decides.
    let page = consultant.get(app.url("/fees")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("disputed") && !page.contains("data-testid=\"refund-fee\""), "{page}");
    let form = [
        ("fee", fee.to_string()),
        ("amount", String::new()),
        ("reason", "Sorry".into()),
        ("idempotency_key", String::new()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = app.rpc(&consultant, "refund_fee", &form).await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("disputed"), "{body}");
}
