//! Stripe Connect OAuth for a tenant, against the sandbox's OAuth pages.

use domain::auth::Role;
use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// Starts a connection as the owner (with `cookie`) and returns the Stripe URL.
async fn connect_url(app: &TestApp, cookie: &str) -> String {
    let (status, body) = app.json_with_cookie(Method::POST, "/api/v1/auth/tenants/stripe/connect/", cookie, None).await;
    assert_eq!(status, 200, "{body}");
    body["url"].as_str().unwrap().to_owned()
}

fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// Plays the owner on Stripe's consent page; returns the callback URL Stripe sends them to.
async fn consent(app: &TestApp, authorize_url: &str, decision: &str) -> String {
    assert!(authorize_url.starts_with(app.sandbox.url()), "{authorize_url}");
    let form = [
        ("decision", decision.to_owned()),
        ("state", query(authorize_url, "state").unwrap()),
        ("redirect_uri", query(authorize_url, "redirect_uri").unwrap()),
        ("email", "owner@northwind.example".to_owned()),
    ];
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/oauth/authorize", app.sandbox.url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    response.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

async fn callback(app: &TestApp, callback_url: &str, cookie: &str) -> (u16, Value) {
    let path = callback_url.strip_prefix(&app.address).expect("the callback comes back to Remit");
    app.json_with_cookie(Method::GET, path, cookie, None).await
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id").fetch_all(&app.services.pool).await.unwrap()
}

#[tokio::test]
async fn an_owner_connects_the_tenants_stripe_account_once() {
    let app = spawn_app().await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    let url = connect_url(&app, &owner).await;
    assert_eq!(query(&url, "client_id").as_deref(), Some("ca_sandbox"));
    assert_eq!(query(&url, "redirect_uri").unwrap(), app.url("/api/v1/auth/tenants/stripe/callback/"));
    let back = consent(&app, &url, "allow").await;
    let (status, body) = callback(&app, &back, &owner).await;
    assert_eq!(status, 200, "{body}");
    let account = body["account_id"].as_str().unwrap().to_owned();
    assert!(account.starts_with("acct_"));
    let tenant_status: String =
        sqlx::query_scalar("SELECT status FROM tenants").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!(tenant_status, "active");

    // The same state again is refused: states are single-use.
    let (status, _) = callback(&app, &back, &owner).await;
    assert_eq!(status, 403);

    let (status, body) = app
        .json_with_cookie(
            Method::GET,
            "/api/v1/auth/tenants/stripe/status/",
            &app.session_cookie(Role::TenantAdmin).await,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["connected"].clone(), body["account_id"].clone(), body["charges_enabled"].clone()),
        (json!(true), json!(account), json!(true))
    );
    assert_eq!(body["stale"], false);
    // Connecting again while connected is a conflict.
    let (status, _) = app.json_with_cookie(Method::POST, "/api/v1/auth/tenants/stripe/connect/", &owner, None).await;
    assert_eq!(status, 409);
    assert_eq!(audit_actions(&app).await, ["stripe.connect_started", "stripe.connected"]);
}

#[tokio::test]
async fn forged_foreign_expired_and_missing_states_are_403_and_a_missing_code_is_400() {
    let app = spawn_app().await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (status, _) =
        app.json_with_cookie(Method::GET, "/api/v1/auth/tenants/stripe/callback/?code=ac_x", &owner, None).await;
    assert_eq!(status, 403, "missing state");
    let (status, _) = app
        .json_with_cookie(Method::GET, "/api/v1/auth/tenants/stripe/callback/?code=ac_x&state=forged", &owner, None)
        .await;
    assert_eq!(status, 403, "forged state");

    let url = connect_url(&app, &owner).await;
    let back = consent(&app, &url, "allow").await;
    let other_session = app.session_cookie(Role::TenantOwner).await;
    let (status, _) = callback(&app, &back, &other_session).await;
    assert_eq!(status, 403, "a state bound to another session");
    let (status, _) = callback(&app, &back, &app.session_cookie(Role::TenantAdmin).await).await;
    assert_eq!(status, 403, "another user");

    let url = connect_url(&app, &owner).await;
    sqlx::query("UPDATE oauth_states SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        .execute(&app.services.pool)
        .await
        .unwrap();
    let back = consent(&app, &url, "allow").await;
    let (status, _) = callback(&app, &back, &owner).await;
    assert_eq!(status, 403, "an expired state");

    let url = connect_url(&app, &owner).await;
    let state = query(&url, "state").unwrap();
    let (status, body) = app
        .json_with_cookie(Method::GET, &format!("/api/v1/auth/tenants/stripe/callback/?state={state}"), &owner, None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(app.count("tenant_stripe_accounts").await, 0, "nothing was connected by any of these");

    // A person's browser gets a page that says what happened.
    let html = reqwest::Client::new()
        .get(app.url("/api/v1/auth/tenants/stripe/callback/?state=forged&code=ac_x"))
        .header(header::COOKIE, &owner)
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 403);
    assert!(html.text().await.unwrap().contains("not valid for you any more"));
}

#[tokio::test]
async fn only_the_owner_connects_or_disconnects() {
    let app = spawn_app().await;
    let admin = app.session_cookie(Role::TenantAdmin).await;
    for path in ["/api/v1/auth/tenants/stripe/connect/", "/api/v1/auth/tenants/stripe/disconnect/"] {
        let (status, _) = app.json_with_cookie(Method::POST, path, &admin, None).await;
        assert_eq!(status, 403, "{path}");
    }
}

#[tokio::test]
async fn declining_on_stripes_page_connects_nothing() {
    let app = spawn_app().await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    let url = connect_url(&app, &owner).await;
    let back = consent(&app, &url, "deny").await;
    let (status, body) = callback(&app, &back, &owner).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("cancelled"));
    assert_eq!(app.count("tenant_stripe_accounts").await, 0);
}

pub(crate) async fn connected(app: &TestApp) -> (String, String) {
    let owner = app.session_cookie(Role::TenantOwner).await;
    let url = connect_url(app, &owner).await;
    let back = consent(app, &url, "allow").await;
    let (_, body) = callback(app, &back, &owner).await;
    (owner, body["account_id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn account_updated_events_keep_the_stored_status_fresh() {
    let app = spawn_app().await;
    let (_, account) = connected(&app).await;
    // Held events are delivered when flushed, so the test knows when Remit has answered.
    app.sandbox.set_delivery_mode(stripe_sandbox::DeliveryMode::Reverse);
    let path = format!("/_sandbox/accounts/{account}/requirements");
    assert_eq!(app.sandbox_control(&path, json!({ "currently_due": ["external_account"], "past_due": ["external_account"], "disabled_reason": "requirements.past_due", "current_deadline": 1_900_000_000 })).await, 200);
    assert_eq!(app.sandbox.flush_deliveries().await, 1);
    app.wait_for_jobs().await;
    let stored = domain::tenant_stripe::connection(&app.services, app.tenant_id().await).await.unwrap().unwrap();
    assert_eq!(stored.requirements.past_due, ["external_account"]);
    assert!(!stored.charges_enabled && !stored.payouts_enabled);
    assert_eq!(stored.requirements.disabled_reason.as_deref(), Some("requirements.past_due"));
}

#[tokio::test]
async fn disconnecting_deauthorizes_first_and_changes_nothing_when_stripe_fails() {
    let app = spawn_app().await;
    let (owner, account) = connected(&app).await;
    app.sandbox.add_fault(stripe_sandbox::FaultRule {
        method: Some("POST".into()),
        path: "/oauth/deauthorize".into(),
        kind: stripe_sandbox::FaultKind::ServerError,
        count: 1,
        delay_ms: None,
    });
    let (status, body) =
        app.json_with_cookie(Method::POST, "/api/v1/auth/tenants/stripe/disconnect/", &owner, None).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(app.count("tenant_stripe_accounts").await, 1, "still connected after Stripe failed");

    let (status, _) = app.json_with_cookie(Method::POST, "/api/v1/auth/tenants/stripe/disconnect/", &owner, None).await;
    assert_eq!(status, 200);
    assert_eq!(app.count("tenant_stripe_accounts").await, 0);
    let (_, body) = app.json_with_cookie(Method::GET, "/api/v1/auth/tenants/stripe/status/", &owner, None).await;
    assert_eq!(body["connected"], false);
    let actions = audit_actions(&app).await;
    assert_eq!(actions.last().map(String::as_str), Some("stripe.disconnected"));
    let target: String = sqlx::query_scalar("SELECT target FROM audit_log WHERE action = 'stripe.disconnected'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(target, account);
}

/// The stored Stripe account of the demo tenant, if any.
async fn stored_account(app: &TestApp) -> Option<String> {
    domain::tenant_stripe::connection(&app.services, app.tenant_id().await).await.unwrap().map(|c| c.stripe_account_id)
}

/// What the owner was told and what the audit log says after Remit lost access.
async fn assert_owner_told_and_audited(app: &TestApp, cause: &str) {
    let told: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM emails WHERE to_address = 'owner@northwind.example'
         AND subject = 'Your Stripe account is no longer connected to Remit'",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(told, 1, "the owner is emailed once");
    let audited: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'stripe.access_lost'")
            .fetch_all(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(audited, [json!({ "cause": cause })]);
    let status: String = sqlx::query_scalar("SELECT status FROM tenants WHERE name = 'Northwind Auctions'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_ne!(status, "active", "the tenant is back to onboarding");
}

#[tokio::test]
async fn a_tenant_disconnecting_remit_inside_stripe_ends_the_connection_and_buyers_cannot_pay() {
    let app = spawn_app().await;
    let token = crate::checkout::won_lot(&app, 12_500).await;
    let account = stored_account(&app).await.expect("connected");
    // The holder presses "Disconnect" in their Stripe dashboard: Stripe sends the event.
    assert!(app.sandbox.deauthorize(&account));
    app.sandbox.settle_deliveries().await;
    app.wait_for_jobs().await;
    assert_eq!(stored_account(&app).await, None);
    assert_owner_told_and_audited(&app, "deauthorized").await;

    let page = reqwest::get(app.url(&format!("/pay/{token}"))).await.unwrap().text().await.unwrap();
    assert!(page.contains("its Stripe account is not connected to Remit"), "{page}");
    let (status, body) = crate::checkout::start(&app, &token).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("its Stripe account is not connected to Remit"), "{body}");
    assert_eq!(app.count("payment_sessions").await, 0, "no attempt was claimed");
}

#[tokio::test]
async fn stripe_refusing_access_to_a_tenants_account_ends_the_connection_as_the_event_would() {
    let app = spawn_app().await;
    let token = crate::checkout::won_lot(&app, 12_500).await;
    let account = stored_account(&app).await.expect("connected");
    // Disconnected inside Stripe, and the event is lost on the way: Remit learns it from the
    // refusal of the buyer's Checkout, whose destination is that account.
    app.sandbox.set_delivery_mode(stripe_sandbox::DeliveryMode::Lost);
    assert!(app.sandbox.deauthorize(&account));
    let (status, body) = crate::checkout::start(&app, &token).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("its Stripe account is not connected to Remit"), "{body}");
    assert_eq!(app.count("payment_sessions").await, 0, "the refused attempt is not counted");
    assert_eq!(stored_account(&app).await, None);
    assert_owner_told_and_audited(&app, "refused").await;
}

#[tokio::test]
async fn the_owner_reading_a_revoked_connection_sees_it_ended() {
    let app = spawn_app().await;
    let (owner, account) = connected(&app).await;
    app.sandbox.set_delivery_mode(stripe_sandbox::DeliveryMode::Lost);
    assert!(app.sandbox.deauthorize(&account));
    // The status is read live from Stripe, which refuses: the connection ends then and there.
    let (status, body) = app.json_with_cookie(Method::GET, "/api/v1/auth/tenants/stripe/status/", &owner, None).await;
    assert_eq!((status, &body["connected"]), (200, &json!(false)), "{body}");
    assert_eq!(stored_account(&app).await, None);
    assert_owner_told_and_audited(&app, "refused").await;
}
