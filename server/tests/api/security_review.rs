//! The security review's findings, each closed: CSP and HSTS, sign-in throttling that cannot be
//! turned against users, password rules, reset links, one-time links at rest, payout links,
//! test and live modes, invitations that reveal nothing, tokens kept out of logs, webhook
//! targets, mail limits, subscribing twice, and session lifetimes.

use std::collections::BTreeSet;

use domain::auth::Role;
use reqwest::{Method, header};
use serde_json::json;

use crate::{
    billing::{plan, signed_in},
    checkout::{api_key, start, winning},
    helpers::{Options, TestApp, captured_logs, spawn_app, spawn_app_with},
    tenant_stripe::connected,
};

fn with_env(env: &[(&'static str, &str)]) -> Options {
    Options { env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(), ..Options::default() }
}

#[tokio::test]
async fn every_page_carries_a_content_security_policy_with_its_nonce() {
    let app = spawn_app().await;
    // A page with the wasm app, whose hydration scripts are inline.
    let response = reqwest::get(app.url("/forgot-password")).await.unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    let html = response.text().await.unwrap();
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_owned();
    for directive in ["frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'", "'wasm-unsafe-eval'"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(!scripts.is_empty());
    for script in &scripts {
        let tag = script.split('>').next().unwrap();
        assert!(
            tag.contains(" src=") || tag.contains(&format!("nonce=\"{nonce}\"")),
            "an inline script without the nonce: <script{tag}>"
        );
    }
    assert!(!html.contains(" style=\""), "no inline style attributes, which the policy would block");
    let other = reqwest::get(app.url("/forgot-password")).await.unwrap();
    let other_csp = other.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(!other_csp.contains(&nonce), "each response has its own nonce");
    assert!(!other.headers().contains_key(header::STRICT_TRANSPORT_SECURITY), "no HSTS over http");
    // Stripe's Connect.js only where it is embedded.
    let cookie = app.session_cookie(Role::Consultant).await;
    let setup =
        reqwest::Client::new().get(app.url("/payment-setup")).header(header::COOKIE, cookie).send().await.unwrap();
    let setup_csp = setup.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(setup_csp.contains(&format!("frame-src {}", app.sandbox.url())), "{setup_csp}");
    assert!(csp.contains("frame-src 'none'"), "{csp}");
}

#[tokio::test]
async fn over_https_responses_carry_hsts_and_the_host_prefixed_cookie() {
    let app = spawn_app_with(Options { public_base_url_scheme: "https", ..Options::default() }).await;
    let response = reqwest::get(app.url("/sign-in")).await.unwrap();
    assert!(response.headers()[header::STRICT_TRANSPORT_SECURITY].to_str().unwrap().contains("max-age="));
    let user = app.user(Role::Consultant);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client
        .post(app.url("/rpc/sign_in"))
        .header(header::ORIGIN, app.address.replace("http://", "https://"))
        .header(header::ACCEPT, "application/json")
        .form(&[("email", user.email.as_str()), ("password", user.password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-remit_session=") && cookie.contains("; Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain="), "{cookie}");
}

/// Signs in as `email` from `address` (the app trusts X-Forwarded-For).
async fn attempt(app: &TestApp, email: &str, password: &str, address: &str) -> u16 {
    app.attempt_sign_in(email, password, Some(address)).await.0
}

#[tokio::test]
async fn wrong_passwords_for_many_emails_from_one_address_are_slowed() {
    let app = spawn_app_with(with_env(&[("CLIENT_IP_HEADER", "X-Forwarded-For")])).await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        statuses
            .push(attempt(&app, &format!("someone{i}@example.com"), "not the password at all", "203.0.113.7").await);
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "the address is slowed after 20 failures: {statuses:?}");
    // Another address is not slowed.
    let user = app.user(Role::Consultant);
    assert_eq!(attempt(&app, &user.email, &user.password, "198.51.100.2").await, 200);
}

#[tokio::test]
async fn someone_elses_failures_do_not_lock_the_owner_out() {
    let app = spawn_app_with(with_env(&[("CLIENT_IP_HEADER", "X-Forwarded-For")])).await;
    let user = app.user(Role::Consultant);
    for _ in 0..6 {
        attempt(&app, &user.email, "a guess that is wrong", "203.0.113.9").await;
    }
    assert_eq!(attempt(&app, &user.email, "a guess that is wrong", "203.0.113.9").await, 429, "the guesser is slowed");
    assert_eq!(
        attempt(&app, &user.email, &user.password, "198.51.100.20").await,
        200,
        "the owner signs in from elsewhere"
    );
    // The owner is told once about the unusual failures.
    let told = app.mailbox.wait_for_subject(&user.email, "Failed sign-ins").await;
    assert!(told.text().contains("203.0.113.9"), "{}", told.text());
    for _ in 0..6 {
        attempt(&app, &user.email, "another wrong guess", "203.0.113.10").await;
    }
    app.wait_for_jobs().await;
    let notices = app.mailbox.to(&user.email).into_iter().filter(|m| m.subject().contains("Failed sign-ins")).count();
    assert_eq!(notices, 1, "told at most once a day");
}

#[tokio::test]
async fn weak_and_short_passwords_are_refused_with_a_clear_message() {
    let app = spawn_app().await;
    let client = app.client();
    let user = app.user(Role::Consultant);
    app.rpc(&client, "request_password_reset", &[("email", &user.email)]).await;
    let link = app.latest_link(&user.email, &app.url("/reset-password?token=")).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    for (password, says) in
        [("shortpw123", "at least 12"), ("password1234", "too easy to guess"), ("qwertyuiop123", "too easy to guess")]
    {
        let response = app
            .rpc(&client, "choose_password", &[("token", &token), ("password", password), ("confirmation", password)])
            .await;
        assert_eq!(response.status(), 422, "{password}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains(says), "{password}: {body}");
        assert_eq!(body["field"], "password");
    }
    let good = "violet-harbour-tractor-1987";
    let response =
        app.rpc(&client, "choose_password", &[("token", &token), ("password", good), ("confirmation", good)]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn using_a_reset_link_revokes_the_others_ends_sessions_and_tells_the_owner() {
    let app = spawn_app().await;
    let client = app.client();
    let user = app.user(Role::Consultant);
    let session = app.session_cookie(Role::Consultant).await;
    app.rpc(&client, "request_password_reset", &[("email", &user.email)]).await;
    let first = app.latest_link(&user.email, &app.url("/reset-password?token=")).await;
    app.rpc(&client, "request_password_reset", &[("email", &user.email)]).await;
    let second = app.latest_link(&user.email, &app.url("/reset-password?token=")).await;
    assert_ne!(first, second);
    let token = |link: &str| link.split("token=").nth(1).unwrap().to_owned();
    let good = "violet-harbour-tractor-1987";
    let response = app
        .rpc(&client, "choose_password", &[("token", &token(&second)), ("password", good), ("confirmation", good)])
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .rpc(&client, "choose_password", &[("token", &token(&first)), ("password", good), ("confirmation", good)])
        .await;
    assert_eq!(response.status(), 422, "the other outstanding link no longer works");
    let (status, _) = app.json_with_cookie(Method::GET, "/api/v1/auth/tenants/api-keys/", &session, None).await;
    assert_eq!(status, 401, "the old session ended");
    let told = app.mailbox.wait_for_subject(&user.email, "password was changed").await;
    assert!(told.text().contains("signed out"));
}

#[tokio::test]
async fn one_time_links_are_not_kept_in_stored_emails_once_sent() {
    let app = spawn_app().await;
    let client = app.client();
    let user = app.user(Role::Consultant);
    app.rpc(&client, "request_password_reset", &[("email", &user.email)]).await;
    let link = app.latest_link(&user.email, &app.url("/reset-password?token=")).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    app.wait_for_jobs().await;
    let (body, secrets): (String, Option<Vec<u8>>) =
        sqlx::query_as("SELECT text_body, secrets FROM emails WHERE to_address = $1 ORDER BY created_at DESC LIMIT 1")
            .bind(&user.email)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert!(!body.contains(&token), "the stored body has no link: {body}");
    assert!(secrets.is_none(), "the sealed link is dropped once sent");
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM emails WHERE to_address = $1")
        .bind(&user.email)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    let (status, page) = app.page(Some(Role::PlatformAdmin), &format!("/admin/outbox/{id}")).await;
    assert_eq!(status, 200);
    assert!(!page.contains(&token) && page.contains("removed once the email was sent"), "{page}");
    // A payment link too.
    let key = api_key(&app).await;
    app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("LINK-1", 5_000))).await;
    let pay = app.latest_link("buyer@example.com", &app.url("/pay/")).await;
    app.wait_for_jobs().await;
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT text_body FROM emails").fetch_all(&app.services.pool).await.unwrap();
    let pay_token = pay.rsplit('/').next().unwrap();
    assert!(stored.iter().all(|b| !b.contains(pay_token)));
}

#[tokio::test]
async fn a_development_outbox_shows_one_time_links_in_full() {
    let app = spawn_app_with(Options {
        smtp_url: Some(String::new()),
        env: vec![("APP_ENV", "development".into())],
        ..Options::default()
    })
    .await;
    let client = app.client();
    let user = app.user(Role::Consultant);
    app.rpc(&client, "request_password_reset", &[("email", &user.email)]).await;
    app.wait_for_jobs().await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM emails WHERE to_address = $1")
        .bind(&user.email)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    let (_, page) = app.page(Some(Role::PlatformAdmin), &format!("/admin/outbox/{id}")).await;
    assert!(page.contains(&app.url("/reset-password?token=")), "{page}");
}

#[tokio::test]
async fn payout_links_go_to_the_consultant_or_an_approved_address_and_the_consultant_is_told() {
    let app = spawn_app().await;
    let owner = signed_in(&app, Role::TenantOwner).await;
    let consultant = app.user(Role::Consultant);
    // Subscribed, so links may be sent at all.
    let plan_id = plan(&app, "Payout plan", "10", "0").await;
    let consultant_client = signed_in(&app, Role::Consultant).await;
    crate::billing::subscribe(&app, &consultant_client, plan_id, "4242424242424242").await;
    crate::billing::flush(&app).await;
    let send = |to: &'static str| {
        let id = consultant.id.to_string();
        let (app, owner) = (&app, &owner);
        async move { app.rpc(owner, "send_onboarding_link", &[("consultant_id", id.as_str()), ("email", to)]).await }
    };
    let refused = send("attacker@example.com").await;
    assert_eq!(refused.status(), 422, "another address needs the consultant's approval");
    assert_eq!(app.mailbox.to("attacker@example.com").len(), 0);
    assert_eq!(send("").await.status(), 200, "empty means the consultant's own address");
    app.mailbox.wait_for_subject(&consultant.email, "Set up payouts").await;
    app.mailbox.wait_for_subject(&consultant.email, "payout setup link was sent").await;
    // The consultant approves their bookkeeper; then a link may go there.
    let response = app.rpc(&consultant_client, "set_payout_link_recipient", &[("email", "books@example.com")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(send("books@example.com").await.status(), 200);
    app.mailbox.wait_for_subject("books@example.com", "Set up payouts").await;
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'payouts.onboarding_link_sent'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn a_mode_without_stripe_keys_refuses_its_payments_with_409() {
    let app = spawn_app().await;
    connected(&app).await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (_, live) = app
        .json_with_cookie(Method::POST, "/api/v1/auth/tenants/api-keys/", &owner, Some(json!({ "mode": "live" })))
        .await;
    let live_key = live["key"]["secret"].as_str().unwrap().to_owned();
    let (status, body) =
        app.json_with_key(Method::POST, "/api/v1/winnings", &live_key, Some(winning("LIVE-1", 5_000))).await;
    assert_eq!(status, 201, "{body}");
    let token = crate::checkout::payment_token(&app).await;
    let (status, body) = start(&app, &token).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("not set up"), "{body}");
    let page = reqwest::get(app.url(&format!("/pay/{token}"))).await.unwrap().text().await.unwrap();
    assert!(page.contains("payments-paused"), "the buyer's page says so");
    let (_, sessions) = app.stripe(Method::GET, "/v1/checkout/sessions", &[]).await;
    assert!(sessions["data"].as_array().unwrap().is_empty(), "nothing was paid through the test key");
}

#[tokio::test]
async fn test_and_live_bids_are_paid_through_their_own_stripe_keys() {
    // A separately started sandbox that takes both keys, as Stripe does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = stripe_sandbox::Options {
        secret_key: "sk_test_modes".into(),
        live_secret_key: Some("sk_live_modes".into()),
        ..stripe_sandbox::Options::default()
    };
    let stripe = stripe_sandbox::Sandbox::start(listener, options).await.unwrap();
    let app = spawn_app_with(Options {
        stripe: Some(stripe.clone()),
        ..with_env(&[
            ("STRIPE_SECRET_KEY", "sk_live_modes"),
            ("STRIPE_PUBLISHABLE_KEY", "pk_live_modes"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_live_modes"),
            ("STRIPE_CONNECT_CLIENT_ID", "ca_modes"),
            ("STRIPE_TEST_SECRET_KEY", "sk_test_modes"),
            ("STRIPE_TEST_PUBLISHABLE_KEY", "pk_test_modes"),
            ("STRIPE_TEST_WEBHOOK_SECRET", "whsec_test_modes"),
            ("STRIPE_API_BASE", stripe.url()),
        ])
    })
    .await;
    let tenant = app.tenant_id().await;
    let (status, account) = app.stripe(Method::POST, "/v1/accounts", &[("type", "express")]).await;
    assert_eq!(status, 200, "{account}");
    let account_id = account["id"].as_str().unwrap().to_owned();
    sqlx::query(
        "INSERT INTO tenant_stripe_accounts (tenant_id, stripe_account_id, charges_enabled) VALUES ($1, $2, true)",
    )
    .bind(tenant)
    .bind(&account_id)
    .execute(&app.services.pool)
    .await
    .unwrap();
    let mut sessions = Vec::new();
    for (mode, reference) in [(true, "MODE-LIVE"), (false, "MODE-TEST")] {
        let win = domain::checkout::NewWinning {
            reference: reference.into(),
            auction: "Modes".into(),
            lot: "1".into(),
            description: String::new(),
            buyer_email: format!("{reference}@example.com").to_lowercase(),
            amount: 5_000,
            currency: "usd".into(),
            runners_up: vec![],
        };
        domain::checkout::register(&app.services, tenant, mode, None, &win).await.unwrap();
        let link = app.latest_link(&win.buyer_email, &app.url("/pay/")).await;
        let (status, body) = start(&app, link.rsplit('/').next().unwrap()).await;
        assert_eq!(status, 200, "{mode}: {body}");
        sessions.push((mode, crate::checkout::session_of(body["url"].as_str().unwrap())));
    }
    for (mode, session) in sessions {
        let read = reqwest::Client::new()
            .get(format!("{}/v1/checkout/sessions/{session}", stripe.url()))
            .bearer_auth("sk_test_modes")
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        assert_eq!(
            read["livemode"],
            json!(mode),
            "the {} bid's session was made with the {} key",
            if mode { "live" } else { "test" },
            if mode { "live" } else { "test" }
        );
    }
}

#[tokio::test]
async fn inviting_an_existing_address_answers_like_any_other_and_emails_its_owner() {
    let app = spawn_app().await;
    // boss@elsewhere.example gets an account in another tenant.
    app.other_tenant_owner_cookie().await;
    let owner = signed_in(&app, Role::TenantOwner).await;
    let fresh = app
        .rpc(
            &owner,
            "invite_member",
            &[("email", "new.person@example.com"), ("display_name", "New"), ("role", "consultant")],
        )
        .await;
    let fresh = (fresh.status().as_u16(), fresh.text().await.unwrap());
    // boss@elsewhere.example has an account in another tenant.
    let existing = app
        .rpc(
            &owner,
            "invite_member",
            &[("email", "boss@elsewhere.example"), ("display_name", "Boss"), ("role", "consultant")],
        )
        .await;
    let existing = (existing.status().as_u16(), existing.text().await.unwrap());
    assert_eq!(fresh, existing, "the same answer whether or not the address has an account");
    let told = app.mailbox.wait_for_subject("boss@elsewhere.example", "tried to invite you").await;
    assert!(told.text().contains("already has a Remit account"));
    assert!(told.link("http").is_none(), "no link to take anything over");
    let tenant: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT tenant_id FROM users WHERE email = 'boss@elsewhere.example'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_ne!(tenant, Some(app.tenant_id().await), "the existing account did not move");
}

#[tokio::test]
async fn payment_link_tokens_are_redacted_from_request_logs() {
    let app = spawn_app().await;
    let key = api_key(&app).await;
    app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("LOG-1", 5_000))).await;
    let token = crate::checkout::payment_token(&app).await;
    assert_eq!(reqwest::get(app.url(&format!("/pay/{token}"))).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(app.url(&format!("/pay/{token}/receipt.pdf"))).await.unwrap().status(), 404);
    let logs = captured_logs();
    assert!(logs.contains("/pay/[redacted]"), "the requests were logged");
    assert!(!logs.contains(&token), "the payment link's token is never logged");
}

#[tokio::test]
async fn webhook_urls_on_private_networks_are_refused_outside_development() {
    // PUBLIC_BASE_URL is http://127.0.0.1 here: only APP_ENV decides.
    let app = spawn_app().await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    for url in ["http://127.0.0.1:9/hooks", "https://10.0.0.1/hooks", "https://169.254.169.254/latest/meta-data"] {
        let (status, body) = app
            .json_with_cookie(
                Method::POST,
                "/api/v1/auth/tenants/webhooks/endpoints/",
                &owner,
                Some(json!({ "url": url, "livemode": true })),
            )
            .await;
        assert_eq!((status, body["field"].as_str()), (422, Some("url")), "{url}: {body}");
    }
    let dev = spawn_app_with(with_env(&[("APP_ENV", "development")])).await;
    let owner = dev.session_cookie(Role::TenantOwner).await;
    let (status, body) = dev
        .json_with_cookie(
            Method::POST,
            "/api/v1/auth/tenants/webhooks/endpoints/",
            &owner,
            Some(json!({ "url": "https://169.254.169.254/x", "livemode": true })),
        )
        .await;
    assert_eq!(status, 422, "metadata addresses are refused even in development: {body}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}/hooks", listener.local_addr().unwrap());
    let (status, body) = dev
        .json_with_cookie(
            Method::POST,
            "/api/v1/auth/tenants/webhooks/endpoints/",
            &owner,
            Some(json!({ "url": local, "livemode": false })),
        )
        .await;
    assert_eq!(status, 201, "a developer's own receiver: {body}");
}

#[tokio::test]
async fn only_the_owner_adds_webhook_endpoints_or_rotates_their_secrets() {
    let app = spawn_app_with(with_env(&[("APP_ENV", "development")])).await;
    let admin = app.session_cookie(Role::TenantAdmin).await;
    let (status, _) = app
        .json_with_cookie(
            Method::POST,
            "/api/v1/auth/tenants/webhooks/endpoints/",
            &admin,
            Some(json!({ "url": "http://127.0.0.1:9/x", "livemode": true })),
        )
        .await;
    assert_eq!(status, 403);
    let admin_client = signed_in(&app, Role::TenantAdmin).await;
    let form = [("url", "http://127.0.0.1:9/x"), ("description", ""), ("mode", "live")];
    assert_eq!(app.rpc(&admin_client, "create_webhook_endpoint", &form).await.status(), 403);
    assert_eq!(app.count("webhook_endpoints").await, 0);
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (_, endpoint) = app
        .json_with_cookie(
            Method::POST,
            "/api/v1/auth/tenants/webhooks/endpoints/",
            &owner,
            Some(json!({ "url": "http://127.0.0.1:9/x", "livemode": true })),
        )
        .await;
    let rotate = format!("/api/v1/auth/tenants/webhooks/endpoints/{}/rotate-secret/", endpoint["id"].as_str().unwrap());
    assert_eq!(app.json_with_cookie(Method::POST, &rotate, &admin, Some(json!({}))).await.0, 403);
}

#[tokio::test]
async fn invitations_and_api_winnings_are_limited_per_tenant_per_hour() {
    let app =
        spawn_app_with(with_env(&[("INVITATIONS_PER_TENANT_HOUR", "3"), ("WINNINGS_PER_TENANT_HOUR", "3")])).await;
    let owner = signed_in(&app, Role::TenantOwner).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let email = format!("invitee{i}@example.com");
        let response = app
            .rpc(&owner, "invite_member", &[("email", &email), ("display_name", "Invitee"), ("role", "consultant")])
            .await;
        statuses.push((response.status().as_u16(), response.headers().contains_key(header::RETRY_AFTER)));
    }
    assert_eq!(statuses, vec![(200, false), (200, false), (200, false), (429, true)]);
    let key = api_key(&app).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let (status, _) =
            app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning(&format!("Q-{i}"), 5_000))).await;
        statuses.push(status);
    }
    assert_eq!(statuses, vec![201, 201, 201, 429]);
    // The same win registered again sends nothing, so it is not limited.
    let (status, _) = app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("Q-0", 5_000))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn subscribing_from_two_tabs_makes_one_checkout() {
    let app = spawn_app().await;
    let plan_id = plan(&app, "Twice", "10", "0").await.to_string();
    let consultant = signed_in(&app, Role::Consultant).await;
    let tabs: Vec<_> = (0..5)
        .map(|_| {
            let (app_url, origin, plan_id, client) =
                (app.url("/rpc/subscribe"), app.address.clone(), plan_id.clone(), consultant.clone());
            tokio::spawn(async move {
                let response = client
                    .post(app_url)
                    .header(header::ORIGIN, origin)
                    .header(header::ACCEPT, "application/json")
                    .form(&[("plan_id", plan_id.as_str())])
                    .send()
                    .await
                    .unwrap();
                (
                    response.status().as_u16(),
                    response.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_owned()),
                )
            })
        })
        .collect();
    let answers: Vec<_> = futures_util::future::join_all(tabs).await.into_iter().map(Result::unwrap).collect();
    let urls: BTreeSet<_> = answers.iter().filter_map(|(_, url)| url.clone()).collect();
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(urls.len(), 1, "every tab gets the same Checkout page: {answers:?}");
    let (_, sessions) = app.stripe(Method::GET, "/v1/checkout/sessions?limit=100", &[]).await;
    let subscription_sessions =
        sessions["data"].as_array().unwrap().iter().filter(|s| s["mode"] == "subscription").count();
    assert_eq!(subscription_sessions, 1);
}

#[tokio::test]
async fn sessions_end_after_an_absolute_lifetime() {
    let app = spawn_app().await;
    let cookie = app.session_cookie(Role::Consultant).await;
    let see = |cookie: String| {
        let url = app.url("/account");
        async move { reqwest::Client::new().get(url).header(header::COOKIE, cookie).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(see(cookie.clone()).await, 200);
    // Active all along (last seen just now), but signed in 7 days ago.
    sqlx::query(
        "UPDATE sessions SET created_at = now() - interval '7 days', absolute_expires_at = now() - interval '1 second',
                last_seen_at = now() WHERE user_id = $1",
    )
    .bind(app.user(Role::Consultant).id)
    .execute(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(see(cookie).await, 401);
}
