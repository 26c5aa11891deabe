//! Consultant payout setup: the connected account (FG-002) and Account Sessions (FG-003),
//! against the sandbox and its fault injection. Tests are named after the criterion they prove.

use std::time::Duration;

use domain::auth::Role;
use reqwest::{Method, header};
use serde_json::Value;
use stripe_sandbox::{DeliveryMode, FaultKind, FaultRule};

use crate::{
    billing::{flush, plan, signed_in, subscribe},
    helpers::{ErrorBody, TestApp, captured_logs, spawn_app},
};

const SESSION: &str = "/api/v1/consultants/me/account-session";
const ACCOUNT: &str = "/api/v1/consultants/me/payment-account";

/// A consultant with an active subscription; returns their session cookie.
async fn subscribed_consultant(app: &TestApp) -> String {
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let pro = plan(app, "Pro", "49.00", "0").await;
    let client = signed_in(app, Role::Consultant).await;
    subscribe(app, &client, pro, "4242424242424242").await;
    flush(app).await;
    app.sandbox.set_delivery_mode(DeliveryMode::Normal);
    app.session_cookie(Role::Consultant).await
}

async fn post(app: &TestApp, path: &str, cookie: &str) -> (u16, Value) {
    app.json_with_cookie(Method::POST, path, cookie, None).await
}

async fn stored_account(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT stripe_account_id FROM consultant_accounts").fetch_all(&app.services.pool).await.unwrap()
}

/// Stripe's onboarding form, filled in completely (bank account included).
pub(crate) const ONBOARDING_FORM: [(&str, &str); 10] = [
    ("business_type", "individual"),
    ("first_name", "Casey"),
    ("last_name", "Consultant"),
    ("dob", "01/02/1985"),
    ("address_line1", "1 Main St"),
    ("city", "Springfield"),
    ("postal_code", "12345"),
    ("routing_number", "110000000"),
    ("account_number", "000123456789"),
    ("accept_tos", "yes"),
];

fn fault(path: &str, kind: FaultKind, count: u32) -> FaultRule {
    FaultRule { method: Some("POST".into()), path: path.into(), kind, count, delay_ms: None }
}

#[tokio::test]
async fn fg002_one_account_per_consultant_whatever_the_double_clicks() {
    let app = spawn_app().await;
    let cookie = app.session_cookie(Role::Consultant).await;
    let (a, b, c) =
        tokio::join!(post(&app, ACCOUNT, &cookie), post(&app, ACCOUNT, &cookie), post(&app, ACCOUNT, &cookie));
    for (status, body) in [&a, &b, &c] {
        assert_eq!(*status, 201, "{body}");
        assert_eq!(body["account_id"], a.1["account_id"], "every click gets the same account");
    }
    assert_eq!(stored_account(&app).await.len(), 1);
    let (status, again) = post(&app, ACCOUNT, &cookie).await;
    assert_eq!((status, &again["account_id"]), (201, &a.1["account_id"]));
    let (_, accounts) = app.stripe(Method::GET, "/v1/accounts?limit=100", &[]).await;
    assert_eq!(accounts["data"].as_array().unwrap().len(), 1, "Stripe holds one account too");
}

#[tokio::test]
async fn fg002_a_crash_between_stripe_and_the_database_still_ends_with_one_account() {
    let app = spawn_app().await;
    let cookie = app.session_cookie(Role::Consultant).await;
    let (_, first) = post(&app, ACCOUNT, &cookie).await;
    // As if the process died after Stripe answered but before the row was written.
    sqlx::query("DELETE FROM consultant_accounts").execute(&app.services.pool).await.unwrap();
    let (status, second) = post(&app, ACCOUNT, &cookie).await;
    assert_eq!(status, 201);
    assert_eq!(second["account_id"], first["account_id"], "the idempotency key returns the same account");
    assert_eq!(stored_account(&app).await, vec![first["account_id"].as_str().unwrap().to_owned()]);
}

#[tokio::test]
async fn fg003_ac1_ac3_a_consultant_with_an_account_gets_a_client_secret_valid_for_an_hour() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;
    let (status, body) = post(&app, SESSION, &cookie).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["client_secret"].as_str().unwrap().starts_with("accs_secret_"));
    let expires_in = body["expires_at"].as_i64().unwrap() - app.sandbox.now();
    assert!((3590..=3600).contains(&expires_in), "expires in about an hour: {expires_in}");
    assert_eq!(body["return_url"], app.url("/payment-setup/complete"), "the return URL comes from configuration");
    assert_eq!(body["allows_updates"], false);
}

#[tokio::test]
async fn fg003_ac2_the_session_opens_account_onboarding_with_bank_account_collection() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    let (_, account) = post(&app, ACCOUNT, &cookie).await;
    let (_, session) = post(&app, SESSION, &cookie).await;
    let mut form = vec![("client_secret", session["client_secret"].as_str().unwrap())];
    form.extend_from_slice(&ONBOARDING_FORM);
    let submitted = reqwest::Client::new()
        .post(format!("{}/connect/embedded", app.sandbox.url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 200, "the onboarding component accepted the session");
    let path = format!("/v1/accounts/{}", account["account_id"].as_str().unwrap());
    let (_, stripe_account) = app.stripe(Method::GET, &path, &[]).await;
    assert_eq!(stripe_account["payouts_enabled"], true, "the bank account was collected in the component");
}

#[tokio::test]
async fn fg003_ac4_a_stripe_500_is_retried_once_and_a_second_failure_reads_unable_to_generate_session() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;

    app.sandbox.add_fault(fault("/v1/account_sessions", FaultKind::ServerError, 1));
    let (status, body) = post(&app, SESSION, &cookie).await;
    assert_eq!(status, 200, "one failure is retried: {body}");

    app.sandbox.add_fault(fault("/v1/account_sessions", FaultKind::ServerError, 2));
    let (status, body) = post(&app, SESSION, &cookie).await;
    assert_eq!(status, 502);
    assert_eq!(body["message"], "Unable to generate session.");
    let consultant = app.user(Role::Consultant).id.to_string();
    let logs = captured_logs();
    assert!(
        logs.lines().any(|l| l.contains("Unable to generate an Account Session") && l.contains(&consultant)),
        "the failure is logged with the consultant reference"
    );
    let (status, _) = post(&app, SESSION, &cookie).await;
    assert_eq!(status, 200, "the next request works again");
}

#[tokio::test]
async fn fg003_ac4_a_stripe_timeout_gives_up_within_twenty_seconds() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;
    app.sandbox.add_fault(FaultRule {
        method: Some("POST".into()),
        path: "/v1/account_sessions".into(),
        kind: FaultKind::Timeout,
        count: 2,
        delay_ms: Some(60_000),
    });
    let started = tokio::time::Instant::now();
    let (status, body) = post(&app, SESSION, &cookie).await;
    assert_eq!((status, body["message"].as_str()), (502, Some("Unable to generate session.")));
    // Two attempts of 9 s within the 20 s limit, not the two minutes the hanging calls would take.
    assert!(started.elapsed() < Duration::from_secs(30), "gave up after {:?}", started.elapsed());
}

#[tokio::test]
async fn fg003_ac5_a_consultant_who_finished_onboarding_gets_a_session_that_allows_updates() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;
    sqlx::query(
        "UPDATE consultant_accounts SET details_submitted = true, charges_enabled = true, payouts_enabled = true",
    )
    .execute(&app.services.pool)
    .await
    .unwrap();
    let (status, body) = post(&app, SESSION, &cookie).await;
    assert_eq!((status, body["allows_updates"].as_bool()), (200, Some(true)), "{body}");
}

#[tokio::test]
async fn fg003_negative_1_no_stripe_account_reads_payment_account_not_initialized() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    let (status, body) = post(&app, SESSION, &cookie).await;
    assert_eq!((status, body["message"].as_str()), (409, Some("Payment account not initialized.")));
}

#[tokio::test]
async fn fg003_rule_the_consultant_subscription_must_be_active() {
    let app = spawn_app().await;
    let cookie = app.session_cookie(Role::Consultant).await;
    post(&app, ACCOUNT, &cookie).await;
    let (status, body) = post(&app, SESSION, &cookie).await;
    assert_eq!(status, 409);
    assert!(body["message"].as_str().unwrap().contains("active subscription"), "{body}");
    assert_eq!(app.count("account_session_grants").await, 0, "a refusal does not count against the limit");
}

#[tokio::test]
async fn fg003_negative_3_a_family_member_or_any_other_role_gets_403() {
    let app = spawn_app().await;
    for role in [Role::FamilyMember, Role::TenantOwner, Role::TenantAdmin, Role::PlatformAdmin] {
        let cookie = app.session_cookie(role).await;
        assert_eq!(post(&app, SESSION, &cookie).await.0, 403, "{role:?}");
        assert_eq!(post(&app, ACCOUNT, &cookie).await.0, 403, "{role:?}");
    }
    let anonymous = app.client().post(app.url(SESSION)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn fg003_negative_4_the_eleventh_session_within_an_hour_gets_429_with_the_wait() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;
    for i in 0..10 {
        assert_eq!(post(&app, SESSION, &cookie).await.0, 200, "session {}", i + 1);
    }
    let response = app.client().post(app.url(SESSION)).header(header::COOKIE, &cookie).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    let body: ErrorBody = response.json().await.unwrap();
    assert!(body.message.contains("at most 10 times an hour"), "{}", body.message);
}

/// FG-003's last criterion: every request's outcome is recorded, and more than 5 % failures
/// among at least 20 requests of the last hour raise one alert (page and email) per hour.
#[tokio::test]
async fn fg003_more_than_five_percent_failed_sessions_within_an_hour_raise_one_alert() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;
    let alerts = async || -> Vec<String> {
        sqlx::query_scalar("SELECT message FROM alerts WHERE kind = 'account_session_failure_rate'")
            .fetch_all(&app.services.pool)
            .await
            .unwrap()
    };
    // A Stripe failure on both attempts, then the ten sessions the hour allows.
    app.sandbox.add_fault(fault("/v1/account_sessions", FaultKind::ServerError, 2));
    assert_eq!(post(&app, SESSION, &cookie).await.0, 502);
    for i in 0..10 {
        assert_eq!(post(&app, SESSION, &cookie).await.0, 200, "session {}", i + 1);
    }
    // Eight refusals by the limit make 19 requests: still too few to say anything.
    for _ in 0..8 {
        assert_eq!(post(&app, SESSION, &cookie).await.0, 429);
    }
    assert_eq!(app.count("account_session_requests").await, 19);
    assert_eq!(alerts().await, Vec::<String>::new(), "fewer than 20 requests raise nothing");

    // The twentieth: 10 of 20 failed.
    assert_eq!(post(&app, SESSION, &cookie).await.0, 429);
    let raised = alerts().await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(
        raised[0].starts_with("10 of 20 Account Session requests failed in the last hour (50.0 %)")
            && raised[0].contains("9 × refused by the hourly limit")
            && raised[0].contains("1 × Stripe error (HTTP 500"),
        "the reasons are counted: {}",
        raised[0]
    );
    // Further failures within the hour raise no second alert.
    assert_eq!(post(&app, SESSION, &cookie).await.0, 429);
    assert_eq!(alerts().await.len(), 1);
    let outcomes: Vec<(String, i64)> =
        sqlx::query_as("SELECT outcome::text, count(*) FROM account_session_requests GROUP BY 1 ORDER BY 1")
            .fetch_all(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        [("rate_limited".to_owned(), 10), ("stripe_error".to_owned(), 1), ("succeeded".to_owned(), 10)]
    );
    // Platform admins are emailed; their dashboard shows it.
    let admin = &app.user(Role::PlatformAdmin).email;
    let emailed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM emails WHERE to_address = $1 AND subject = 'Remit alert: account session failure rate'",
    )
    .bind(admin)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(emailed, 1);
    let (status, html) = app.page(Some(Role::PlatformAdmin), "/admin").await;
    assert_eq!(status, 200);
    assert!(html.contains("10 of 20 Account Session requests failed"), "the admin dashboard lists it");
    // Nothing secret is kept with an outcome.
    let reasons: Vec<Option<String>> =
        sqlx::query_scalar("SELECT reason FROM account_session_requests").fetch_all(&app.services.pool).await.unwrap();
    assert!(reasons.iter().flatten().all(|r| !r.contains("secret")), "{reasons:?}");
}

#[tokio::test]
async fn fg003_edge_2_concurrent_requests_get_different_client_secrets() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;
    let (a, b) = tokio::join!(post(&app, SESSION, &cookie), post(&app, SESSION, &cookie));
    assert_eq!((a.0, b.0), (200, 200));
    assert_ne!(a.1["client_secret"], b.1["client_secret"], "never cached");
}

#[tokio::test]
async fn fg003_security_the_client_secret_is_never_logged_or_stored() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;
    let (_, body) = post(&app, SESSION, &cookie).await;
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    assert!(!captured_logs().contains(&secret), "the client secret appears in the (trace-level) logs");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
         WHERE table_schema IN ('public', 'graphile_worker') AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    assert!(tables.len() > 20, "{tables:?}");
    for table in tables {
        let query = format!("SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'");
        let hits: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(query)).bind(&secret).fetch_one(&app.services.pool).await.unwrap();
        assert_eq!(hits, 0, "the client secret is stored in {table}");
    }
}

#[tokio::test]
async fn fg003_the_hourly_limit_holds_for_simultaneous_requests() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let (url, cookie, origin) = (app.url(SESSION), cookie.clone(), app.address.clone());
            tokio::spawn(async move {
                let request =
                    reqwest::Client::new().post(url).header(header::COOKIE, cookie).header(header::ORIGIN, origin);
                request.send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [vec![200; 10], vec![429; 2]].concat());
}

/// Issues an onboarding link as `issuer` (session cookie) for the demo consultant; returns the token.
async fn issue_link(app: &TestApp, issuer: Role, email: &str) -> (u16, Option<String>) {
    let client = signed_in(app, issuer).await;
    let consultant = if issuer == Role::Consultant { String::new() } else { app.user(Role::Consultant).id.to_string() };
    let response = app.rpc(&client, "send_onboarding_link", &[("consultant_id", &consultant), ("email", email)]).await;
    let status = response.status().as_u16();
    let token = match status {
        200 => {
            let link = app.latest_link_about(email, "Set up payouts", &app.url("/api/v1/onboard-client?token=")).await;
            Some(link.split("token=").nth(1).unwrap().to_owned())
        }
        _ => None,
    };
    (status, token)
}

async fn token_state(app: &TestApp) -> (String, bool) {
    sqlx::query_as("SELECT status, state_hash IS NOT NULL FROM onboarding_tokens")
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

async fn open_link(app: &TestApp, token: &str) -> (u16, Value) {
    let response = reqwest::get(app.url(&format!("/api/v1/onboard-client?token={token}"))).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn query_param(url: &str, key: &str) -> String {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == key).unwrap().1.into_owned()
}

#[tokio::test]
async fn seed001_opening_a_link_moves_it_to_in_progress_only_after_stripe_answers() {
    let app = spawn_app().await;
    subscribed_consultant(&app).await;
    let (status, token) = issue_link(&app, Role::Consultant, "consultant@northwind.example").await;
    assert_eq!(status, 200);
    let token = token.expect("the link was emailed");
    assert_eq!(token_state(&app).await, ("pending".into(), false));
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT token_hash FROM onboarding_tokens").fetch_all(&app.services.pool).await.unwrap();
    assert_ne!(stored[0], token.as_bytes(), "only a hash of the token is stored");

    let (status, body) = open_link(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    let stripe_url = body["url"].as_str().unwrap();
    assert!(stripe_url.starts_with(app.sandbox.url()), "{stripe_url}");
    assert_eq!(token_state(&app).await, ("in_progress".into(), true), "state and status written together");
    let (status, body) = open_link(&app, &token).await;
    assert_eq!(status, 409, "single use: {body}");
    assert!(body["message"].as_str().unwrap().contains("already used"));
}

#[tokio::test]
async fn seed001_on_stripe_failure_the_answer_is_502_the_token_stays_pending_and_a_retry_succeeds() {
    let app = spawn_app().await;
    subscribed_consultant(&app).await;
    let (_, token) = issue_link(&app, Role::Consultant, "consultant@northwind.example").await;
    let token = token.unwrap();
    app.sandbox.add_fault(fault("/v1/account_links", FaultKind::ServerError, 1));
    let (status, body) = open_link(&app, &token).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(token_state(&app).await, ("pending".into(), false), "nothing moved forward");
    let (status, body) = open_link(&app, &token).await;
    assert_eq!(status, 200, "the retry works: {body}");
    assert_eq!(token_state(&app).await, ("in_progress".into(), true));
}

#[tokio::test]
async fn seed001_unknown_and_expired_links_are_refused() {
    let app = spawn_app().await;
    subscribed_consultant(&app).await;
    assert_eq!(open_link(&app, "not-a-token").await.0, 404);
    assert_eq!(reqwest::get(app.url("/api/v1/onboard-client")).await.unwrap().status(), 400, "a missing token");
    let (_, token) = issue_link(&app, Role::Consultant, "consultant@northwind.example").await;
    sqlx::query("UPDATE onboarding_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.services.pool)
        .await
        .unwrap();
    let (status, body) = open_link(&app, &token.unwrap()).await;
    assert_eq!(status, 409);
    assert!(body["message"].as_str().unwrap().contains("expired"));
    assert_eq!(token_state(&app).await.0, "pending");
}

#[tokio::test]
async fn seed001_the_return_callback_checks_the_state_and_the_refresh_url_issues_a_new_link() {
    let app = spawn_app().await;
    subscribed_consultant(&app).await;
    let (_, token) = issue_link(&app, Role::Consultant, "consultant@northwind.example").await;
    let (_, body) = open_link(&app, &token.unwrap()).await;
    let stripe_url = body["url"].as_str().unwrap().to_owned();

    for forged in ["", "forged"] {
        let response = reqwest::get(app.url(&format!("/api/v1/onboard-client/return?state={forged}"))).await.unwrap();
        assert_eq!(response.status(), 403, "state {forged:?}");
    }
    // Finish Stripe's hosted onboarding; Stripe sends the person to the return URL.
    let page = reqwest::get(&stripe_url).await.unwrap().text().await.unwrap();
    let action = page.split("action=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let form = ONBOARDING_FORM;
    let done = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}{action}", app.sandbox.url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let back = done.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(back.starts_with(&app.url("/api/v1/onboard-client/return?state=")), "{back}");
    let finished: Value = reqwest::get(&back).await.unwrap().json().await.unwrap();
    assert_eq!(finished["payouts_enabled"], true, "{finished}");
    assert_eq!(token_state(&app).await.0, "completed");

    // The refresh URL (Stripe's link expired) makes a new link and replaces the state.
    let state = query_param(&back, "state");
    let refreshed: Value = reqwest::get(app.url(&format!("/api/v1/onboard-client/refresh?state={state}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(refreshed["url"].as_str().unwrap().starts_with(app.sandbox.url()), "{refreshed}");
    assert_ne!(refreshed["url"].as_str().unwrap(), stripe_url);
    let old = reqwest::get(app.url(&format!("/api/v1/onboard-client/refresh?state={state}"))).await.unwrap();
    assert_eq!(old.status(), 403, "the old state is spent");
}

#[tokio::test]
async fn seed001_who_may_send_an_onboarding_link() {
    let app = spawn_app().await;
    let cookie_less = issue_link(&app, Role::Consultant, "consultant@northwind.example").await;
    assert_eq!(cookie_less.0, 409, "no subscription, no payout setup");
    subscribed_consultant(&app).await;
    assert_eq!(issue_link(&app, Role::TenantAdmin, "consultant@northwind.example").await.0, 200);
    assert_eq!(issue_link(&app, Role::TenantOwner, "consultant@northwind.example").await.0, 200);
    assert_eq!(issue_link(&app, Role::FamilyMember, "x@example.com").await.0, 403);
    assert_eq!(issue_link(&app, Role::PlatformAdmin, "x@example.com").await.0, 403);
    let consultant = signed_in(&app, Role::Consultant).await;
    let bad = app.rpc(&consultant, "send_onboarding_link", &[("consultant_id", ""), ("email", "not an email")]).await;
    assert_eq!(bad.status(), 422);
    // Another tenant's staff cannot reach this consultant.
    let other = signed_in(&app, Role::PlatformAdmin).await;
    let created = app
        .rpc(
            &other,
            "create_tenant",
            &[("name", "Elsewhere"), ("owner_email", "boss@elsewhere.example"), ("owner_name", "Boss")],
        )
        .await;
    assert_eq!(created.status(), 200);
    let boss: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'boss@elsewhere.example'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    let mut conn = app.services.pool.acquire().await.unwrap();
    let token = domain::auth::session::create(&mut conn, boss, &Default::default()).await.unwrap();
    let cookie = format!("{}={}", domain::auth::session::COOKIE_NAME, token.expose());
    let response = app
        .client()
        .post(app.url("/rpc/send_onboarding_link"))
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT, "application/json")
        .form(&[("consultant_id", app.user(Role::Consultant).id.to_string()), ("email", "x@example.com".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "another tenant's consultant is not found");
}

#[tokio::test]
async fn status_follows_account_updated_and_newly_due_requirements_are_emailed() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    let (_, account) = post(&app, ACCOUNT, &cookie).await;
    let account_id = account["account_id"].as_str().unwrap();
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let path = format!("/_sandbox/accounts/{account_id}/requirements");
    assert_eq!(app.sandbox_control(&path, serde_json::json!({ "currently_due": ["external_account", "individual.dob.day"], "past_due": ["individual.id_number"], "disabled_reason": null, "current_deadline": 1_900_000_000 })).await, 200);
    flush(&app).await;
    let (due, deadline): (Value, Option<i64>) =
        sqlx::query_as("SELECT requirements -> 'currently_due', (requirements ->> 'current_deadline')::bigint FROM consultant_accounts")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(due, serde_json::json!(["external_account", "individual.dob.day"]));
    assert_eq!(deadline, Some(1_900_000_000));
    let body: String = sqlx::query_scalar(
        "SELECT text_body FROM emails WHERE subject = 'Stripe needs more information for your payouts'",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    for task in ["Add a bank account for payouts", "date of birth", "tax ID (overdue)"] {
        assert!(body.contains(task), "{task} missing from {body}");
    }
    assert!(body.contains(&app.url("/payment-setup")));
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE type = 'onboarding.updated'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(events, 1, "the tenant's systems are told");

    // The page turns the codes into tasks.
    let page = app
        .client()
        .get(app.url("/payment-setup"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tasks =
        page.split("data-testid=\"payout-tasks\"").nth(1).expect("the task list").split("</ul>").next().unwrap();
    for task in ["Give the account holder's tax ID", "(overdue)", "Add a bank account for payouts", "date of birth"] {
        assert!(tasks.contains(task), "{task} missing from {tasks}");
    }
}

#[tokio::test]
async fn fg003_the_hourly_limit_holds_across_two_server_processes() {
    let app = spawn_app().await;
    let cookie = subscribed_consultant(&app).await;
    post(&app, ACCOUNT, &cookie).await;
    let second = crate::helpers::SecondProcess::start(&app).await;
    // Alternate between the two processes, as a load balancer would, all at once.
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let address = if i % 2 == 0 { app.address.clone() } else { second.address.clone() };
            let (cookie, origin) = (cookie.clone(), app.address.clone());
            tokio::spawn(async move {
                // The browser's origin is the site's, whichever process answers.
                let request = reqwest::Client::new()
                    .post(format!("{address}{SESSION}"))
                    .header(header::COOKIE, cookie)
                    .header(header::ORIGIN, origin);
                request.send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [vec![200; 10], vec![429; 2]].concat());
}

/// The text of the element with this `data-testid` (one without children) in server-rendered HTML.
fn shown<'a>(html: &'a str, testid: &str) -> Option<&'a str> {
    let start = html.find(&format!("data-testid=\"{testid}\""))?;
    let text = &html[start..];
    let text = &text[text.find('>')? + 1..];
    Some(&text[..text.find('<')?])
}

/// What the sandbox's embedded component shows for a client secret.
async fn component(app: &TestApp, name: &str, secret: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("{}/connect/embedded/{name}?client_secret={secret}", app.sandbox.url()))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_paid_fee_shows_on_the_consultants_payouts_page_with_and_without_javascript() {
    use crate::fees::{family, fee_form, fee_ids, fee_status, pay_fee, ready_consultant, request_fee, today};
    let app = spawn_app().await;
    let consultant = ready_consultant(&app).await;
    // Onboarded in Stripe's own form too, so Stripe's dashboard opens for the account.
    let cookie = app.session_cookie(Role::Consultant).await;
    let (_, session) = post(&app, SESSION, &cookie).await;
    let mut form = vec![("client_secret", session["client_secret"].as_str().unwrap())];
    form.extend_from_slice(&ONBOARDING_FORM);
    let submitted =
        reqwest::Client::new().post(format!("{}/connect/embedded", app.sandbox.url())).form(&form).send().await;
    assert_eq!(submitted.unwrap().status(), 200);

    let (status, html) = app.page(Some(Role::Consultant), "/payouts").await;
    assert_eq!(status, 200);
    assert!(html.contains("No payouts yet"), "nothing paid yet: {html}");

    // The client pays a $120.00 fee; the consultant's account gets it less the platform's 5 %.
    let (status, body) = request_fee(&app, &consultant, &fee_form(&family(&app), "120.00", &today(), "once")).await;
    assert_eq!(status, 200, "{body}");
    let fee = fee_ids(&app).await[0];
    let client = signed_in(&app, Role::FamilyMember).await;
    let (_, url) = pay_fee(&app, &client, fee).await;
    assert_eq!(crate::billing::pay(&url, "4242424242424242").await.0, 303);
    flush(&app).await;
    crate::helpers::wait_until("the fee is paid", async || fee_status(&app, fee).await == "paid").await;

    // Without JavaScript: the server's summary, read from Stripe for this request.
    let (status, html) = app.page(Some(Role::Consultant), "/payouts").await;
    assert_eq!(status, 200);
    assert_eq!(shown(&html, "balance-pending"), Some("$114.00"), "pending until Stripe releases it");
    assert_eq!(shown(&html, "balance-available"), Some("$0.00"));
    assert!(html.contains("Open your Stripe Express dashboard"));
    for component_name in ["notification-banner", "payouts", "payments", "account-management"] {
        assert!(html.contains(&format!("data-stripe-component=\"{component_name}\"")), "{component_name}");
    }

    // With JavaScript: one session for the page's components, through the same limit as setup.
    let response = app.rpc(&consultant, "payouts_session", &[]).await;
    assert_eq!(response.status(), 200);
    let secret: String = response.json().await.unwrap();
    assert_eq!(app.count("account_session_grants").await, 2, "setup's and the Payouts page's sessions count alike");
    let (status, payouts) = component(&app, "payouts", &secret).await;
    assert!(status == 200 && payouts.contains("$114.00"), "{payouts}");
    let (_, payments) = component(&app, "payments", &secret).await;
    assert!(payments.contains("$120.00") && payments.contains("Succeeded"), "the fee received: {payments}");
    assert!(!captured_logs().contains(&secret), "the client secret is never logged");

    // Stripe's dashboard: a fresh login link as a redirect, audited, kept nowhere.
    let response = app.rpc(&consultant, "express_dashboard", &[]).await;
    let link = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}/express/", app.sandbox.url())), "{link}");
    let opened = reqwest::Client::new().get(&link).send().await.unwrap().text().await.unwrap();
    assert!(opened.contains("Express dashboard"), "{opened}");
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'payouts.dashboard_opened' AND details::text NOT LIKE '%express%'",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(stored, 1, "audited without the link");
    assert!(!captured_logs().contains(&link), "the login link is never logged");

    // Stripe not answering: the page says so instead of showing money it could not read.
    app.sandbox.add_fault(FaultRule {
        method: Some("GET".into()),
        path: "/v1/balance".into(),
        kind: FaultKind::ServerError,
        count: 3,
        delay_ms: None,
    });
    let (status, html) = app.page(Some(Role::Consultant), "/payouts").await;
    assert_eq!(status, 200);
    assert!(html.contains("Stripe could not be reached just now") && !html.contains("$114.00"), "{html}");

    // The family member never sees the consultant's money.
    assert_eq!(app.page(Some(Role::FamilyMember), "/payouts").await.0, 403);
    assert_eq!(app.rpc(&client, "payouts_session", &[]).await.status(), 403);
}
