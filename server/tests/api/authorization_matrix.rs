//! Every page, server function and route that exists × every role (and no session) → the
//! expected status. A page, server function or REST route without a row here fails the test.

use std::collections::BTreeSet;

use domain::{
    auth::{
        Role,
        account_tokens::{self, Purpose},
        policy::{
            CONSULTANT, CONSULTANT_HOUSEHOLD, FAMILY_MEMBER, INVITERS, ONBOARDING_LINK_ISSUERS, PLATFORM_ADMIN,
            SIGNED_IN, TENANT_OWNER, TENANT_STAFF,
        },
    },
    mail,
    tenant_webhooks::{
        self,
        events::{OnboardingUpdated, TenantEvent},
    },
};
use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, spawn_app_with};

#[derive(Clone, Copy, Debug)]
enum Access {
    /// Public: everyone, signed in or not, gets the success status.
    Everyone,
    /// Only these roles; no session is 401, another role is 403.
    Roles(&'static [Role]),
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A Leptos page (GET, HTML).
    Page,
    /// A server function (POST form, as the hydrated app calls it).
    Rpc,
    /// A plain route, with its method (REST routes take JSON).
    Route(&'static str),
}

struct Case {
    kind: Kind,
    /// The path as registered (with `{param}` placeholders).
    pattern: &'static str,
    access: Access,
    /// The status an allowed caller gets.
    success: u16,
}

const fn page(pattern: &'static str, access: Access) -> Case {
    Case { kind: Kind::Page, pattern, access, success: 200 }
}

const fn rpc(pattern: &'static str, access: Access) -> Case {
    Case { kind: Kind::Rpc, pattern, access, success: 200 }
}

const fn route(method: &'static str, pattern: &'static str, access: Access, success: u16) -> Case {
    Case { kind: Kind::Route(method), pattern, access, success }
}

/// In the order they run: cases that change state come after those that need it.
const CASES: &[Case] = &[
    Case { kind: Kind::Page, pattern: "/", access: Access::Everyone, success: 302 },
    page("/sign-in", Access::Everyone),
    page("/forgot-password", Access::Everyone),
    page("/reset-password", Access::Everyone),
    page("/dashboard", Access::Roles(CONSULTANT_HOUSEHOLD)),
    page("/account", Access::Roles(SIGNED_IN)),
    page("/admin/jobs", Access::Roles(PLATFORM_ADMIN)),
    page("/tenant", Access::Roles(TENANT_STAFF)),
    page("/settings", Access::Roles(TENANT_STAFF)),
    page("/settings/stripe", Access::Roles(TENANT_STAFF)),
    page("/settings/api-keys", Access::Roles(TENANT_STAFF)),
    page("/settings/webhooks", Access::Roles(TENANT_STAFF)),
    page("/settings/webhooks/deliveries/{id}", Access::Roles(TENANT_STAFF)),
    page("/audit", Access::Roles(TENANT_STAFF)),
    page("/admin", Access::Roles(PLATFORM_ADMIN)),
    page("/admin/people", Access::Roles(PLATFORM_ADMIN)),
    // No such tenant: authorised, then not found.
    Case {
        kind: Kind::Page,
        pattern: "/admin/tenants/{id}/terms",
        access: Access::Roles(PLATFORM_ADMIN),
        success: 404,
    },
    page("/admin/audit", Access::Roles(PLATFORM_ADMIN)),
    page("/admin/outbox", Access::Roles(PLATFORM_ADMIN)),
    page("/admin/outbox/{id}", Access::Roles(PLATFORM_ADMIN)),
    page("/billing", Access::Roles(CONSULTANT_HOUSEHOLD)),
    page("/fees", Access::Roles(CONSULTANT_HOUSEHOLD)),
    page("/payouts", Access::Roles(CONSULTANT)),
    page("/billing/payment-methods", Access::Roles(CONSULTANT_HOUSEHOLD)),
    page("/admin/plans", Access::Roles(PLATFORM_ADMIN)),
    page("/payment-setup", Access::Roles(CONSULTANT_HOUSEHOLD)),
    page("/payment-setup/complete", Access::Roles(CONSULTANT_HOUSEHOLD)),
    page("/settings/payouts", Access::Roles(TENANT_STAFF)),
    page("/winnings", Access::Roles(TENANT_STAFF)),
    page("/reports", Access::Roles(TENANT_STAFF)),
    page("/admin/reports", Access::Roles(PLATFORM_ADMIN)),
    page("/admin/reconciliation", Access::Roles(PLATFORM_ADMIN)),
    // Another tenant's (here: no one's) winning: authorised, then not found.
    Case { kind: Kind::Page, pattern: "/winnings/{id}", access: Access::Roles(TENANT_STAFF), success: 404 },
    // The buyer's pages: the payment link's token is the key, whoever holds it.
    page("/pay/{token}", Access::Everyone),
    // Without a Checkout Session id there is nothing to show.
    Case { kind: Kind::Page, pattern: "/pay/complete", access: Access::Everyone, success: 404 },
    Case { kind: Kind::Page, pattern: "/pay/cancelled", access: Access::Everyone, success: 404 },
    page("/admin/billing", Access::Roles(PLATFORM_ADMIN)),
    page("/admin/security", Access::Roles(PLATFORM_ADMIN)),
    page("/security", Access::Roles(TENANT_STAFF)),
    // Anyone holding a receipt can check its code.
    page("/receipts/verify", Access::Everyone),
    rpc("/rpc/current_user", Access::Everyone),
    rpc("/rpc/sign_in", Access::Everyone),
    rpc("/rpc/sign_out", Access::Everyone),
    rpc("/rpc/request_password_reset", Access::Everyone),
    rpc("/rpc/inspect_link", Access::Everyone),
    rpc("/rpc/choose_password", Access::Everyone),
    rpc("/rpc/consultant_dashboard", Access::Roles(CONSULTANT_HOUSEHOLD)),
    rpc("/rpc/invite_family_member", Access::Roles(CONSULTANT)),
    rpc("/rpc/tenant_settings", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/rename_tenant", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/invite_member", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/admin_overview", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/create_tenant", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/outbox", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/outbox_email", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/admin_dashboard", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/tenant_overview", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/audit_log", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/stripe_settings", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/api_keys", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/create_api_key", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/regenerate_api_keys", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/revoke_api_key", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/webhooks", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/webhook_delivery", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/create_webhook_endpoint", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/update_webhook_endpoint", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/switch_webhook_endpoint", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/rotate_webhook_secret", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/send_test_webhook", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/replay_webhooks", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/redeliver_webhook", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/delete_webhook_endpoint", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/billing", Access::Roles(CONSULTANT_HOUSEHOLD)),
    rpc("/rpc/payment_methods", Access::Roles(CONSULTANT_HOUSEHOLD)),
    rpc("/rpc/plans", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/billing_metrics", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/create_plan", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/subscribe", Access::Roles(CONSULTANT)),
    // Fees: the fixture's consultant has no subscription (authorised, then refused: 409); unknown
    // fees are not found.
    rpc("/rpc/fees", Access::Roles(CONSULTANT_HOUSEHOLD)),
    rpc_with("/rpc/request_fee", Access::Roles(CONSULTANT), 409),
    rpc_with("/rpc/cancel_fee", Access::Roles(CONSULTANT), 404),
    rpc_with("/rpc/pay_fee", Access::Roles(FAMILY_MEMBER), 404),
    rpc("/rpc/fee_report", Access::Roles(CONSULTANT)),
    rpc_with("/rpc/refund_fee", Access::Roles(CONSULTANT), 404),
    rpc("/rpc/consultant_fee_reports", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/add_card", Access::Roles(CONSULTANT)),
    // The consultant has no subscription or card yet: authorised, then not found.
    rpc_with("/rpc/cancel_subscription", Access::Roles(CONSULTANT), 404),
    rpc_with("/rpc/resume_subscription", Access::Roles(CONSULTANT), 404),
    rpc_with("/rpc/change_plan", Access::Roles(CONSULTANT), 404),
    rpc_with("/rpc/set_default_card", Access::Roles(CONSULTANT), 404),
    rpc_with("/rpc/remove_card", Access::Roles(CONSULTANT), 404),
    rpc("/rpc/archive_plan", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/winnings", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/register_winning", Access::Roles(TENANT_STAFF)),
    rpc_with("/rpc/winning", Access::Roles(TENANT_STAFF), 404),
    rpc_with("/rpc/refund_winning", Access::Roles(TENANT_STAFF), 404),
    rpc_with("/rpc/cancel_winning", Access::Roles(TENANT_STAFF), 404),
    rpc_with("/rpc/extend_winning", Access::Roles(TENANT_STAFF), 404),
    rpc_with("/rpc/resend_payment_link", Access::Roles(TENANT_STAFF), 404),
    rpc("/rpc/pay_page", Access::Everyone),
    rpc("/rpc/pay_winning", Access::Everyone),
    rpc_with("/rpc/payment_result", Access::Everyone, 404),
    rpc_with("/rpc/retry_payment", Access::Everyone, 404),
    rpc("/rpc/payment_setup", Access::Roles(CONSULTANT_HOUSEHOLD)),
    rpc("/rpc/tenant_payouts", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/security_overview", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/verify_receipt", Access::Everyone),
    // Without a subscription payout setup is refused (409) once the role is allowed.
    rpc_with("/rpc/start_payout_setup", Access::Roles(CONSULTANT), 409),
    rpc_with("/rpc/account_session", Access::Roles(CONSULTANT), 409),
    // The Payouts page: the fixture's consultant has no payout account yet (so no session and no
    // dashboard link: 409); the family member never sees the consultant's money.
    rpc("/rpc/payouts", Access::Roles(CONSULTANT)),
    rpc_with("/rpc/payouts_session", Access::Roles(CONSULTANT), 409),
    rpc_with("/rpc/express_dashboard", Access::Roles(CONSULTANT), 409),
    rpc_with("/rpc/send_onboarding_link", Access::Roles(ONBOARDING_LINK_ISSUERS), 409),
    rpc("/rpc/set_payout_link_recipient", Access::Roles(CONSULTANT)),
    // Accounts: everyone signed in manages their own; a wrong current password is refused (422).
    rpc("/rpc/load_account", Access::Roles(SIGNED_IN)),
    rpc("/rpc/account_notice", Access::Roles(SIGNED_IN)),
    rpc_with("/rpc/change_password", Access::Roles(SIGNED_IN), 422),
    rpc_with("/rpc/sign_out_session", Access::Roles(SIGNED_IN), 404),
    rpc("/rpc/sign_out_other_sessions", Access::Roles(SIGNED_IN)),
    // Managing people: authorised, then the (unknown) user is not found.
    rpc_with("/rpc/set_user_active", Access::Roles(TENANT_STAFF), 404),
    rpc_with("/rpc/change_user_role", Access::Roles(TENANT_OWNER), 404),
    rpc_with("/rpc/resend_invitation", Access::Roles(INVITERS), 404),
    rpc_with("/rpc/revoke_invitation", Access::Roles(INVITERS), 404),
    rpc_with("/rpc/suspend_tenant", Access::Roles(PLATFORM_ADMIN), 404),
    rpc_with("/rpc/reactivate_tenant", Access::Roles(PLATFORM_ADMIN), 404),
    rpc_with("/rpc/tenant_terms", Access::Roles(PLATFORM_ADMIN), 404),
    rpc_with("/rpc/set_tenant_fee", Access::Roles(PLATFORM_ADMIN), 404),
    rpc_with("/rpc/set_three_d_secure", Access::Roles(PLATFORM_ADMIN), 404),
    rpc("/rpc/set_second_chance", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/set_time_zone", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/jobs_overview", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/report", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/platform_report", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/reconciliation", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/reconcile_day", Access::Roles(PLATFORM_ADMIN)),
    rpc_with("/rpc/retry_job", Access::Roles(PLATFORM_ADMIN), 404),
    rpc_with("/rpc/retry_stripe_event", Access::Roles(PLATFORM_ADMIN), 404),
    route("GET", "/healthz", Access::Everyone, 200),
    route("GET", "/readyz", Access::Everyone, 200),
    // Served only with METRICS_TOKEN set (then to its holder alone): the tests' apps have none.
    route("GET", "/metrics", Access::Everyone, 404),
    route("GET", "/admin/outbox/{email_id}/attachments/{attachment_id}", Access::Roles(PLATFORM_ADMIN), 200),
    route("GET", "/api/v1/openapi.json", Access::Everyone, 200),
    // Key-authenticated: a session is not a key, whoever holds it.
    route("GET", "/api/v1/tenant", Access::Everyone, 401),
    route("POST", "/api/v1/consultants/me/payment-account/", Access::Roles(CONSULTANT), 201),
    // The consultant has no subscription in the fixtures: authorised, then refused (409).
    route("POST", "/api/v1/consultants/me/account-session/", Access::Roles(CONSULTANT), 409),
    // Key-authenticated: a session is not a key.
    route("POST", "/api/v1/winnings/", Access::Everyone, 401),
    route("GET", "/api/v1/winnings/", Access::Everyone, 401),
    route("GET", "/api/v1/winnings/{winning}/", Access::Everyone, 401),
    route("GET", "/api/v1/winnings/{winning}/receipt/", Access::Everyone, 401),
    route("GET", "/api/v1/winnings/{winning}/refunds/", Access::Everyone, 401),
    route("POST", "/api/v1/winnings/{winning}/refunds/", Access::Everyone, 401),
    route("POST", "/api/v1/winnings/{winning}/cancel/", Access::Everyone, 401),
    route("GET", "/api/v1/winnings/{winning}/refunds/{refund}/credit-note/", Access::Everyone, 401),
    // Receipts: by the buyer's link (the lot is not paid yet: not found, for everyone), and for
    // the tenant's staff (this bid is not theirs: authorised, then not found).
    route("GET", "/pay/{token}/receipt.pdf", Access::Everyone, 404),
    route("GET", "/winnings/{winning}/receipt.pdf", Access::Roles(TENANT_STAFF), 404),
    route("GET", "/winnings/export.csv", Access::Roles(TENANT_STAFF), 200),
    route("GET", "/fees/{fee}/receipt.pdf", Access::Roles(CONSULTANT_HOUSEHOLD), 404),
    route("GET", "/fees/{fee}/refunds/{refund}/credit-note.pdf", Access::Roles(CONSULTANT_HOUSEHOLD), 404),
    route("GET", "/reports/export.csv", Access::Roles(TENANT_STAFF), 200),
    route("GET", "/admin/reports/export.csv", Access::Roles(PLATFORM_ADMIN), 200),
    route("GET", "/winnings/{winning}/refunds/{refund}/credit-note.pdf", Access::Roles(TENANT_STAFF), 404),
    // The buyer's payment routes: unknown links and sessions are not found, for everyone.
    route("POST", "/payments/checkout/create/", Access::Everyone, 404),
    route("GET", "/payments/checkout/{session}/status/", Access::Everyone, 404),
    route("POST", "/payments/retry/{session}/", Access::Everyone, 404),
    // Token- and state-authorised: nobody gets further without them.
    route("GET", "/api/v1/onboard-client/", Access::Everyone, 400),
    route("GET", "/api/v1/onboard-client/return/", Access::Everyone, 403),
    route("GET", "/api/v1/onboard-client/refresh/", Access::Everyone, 403),
    route("GET", "/api/v1/auth/tenants/stripe/status/", Access::Roles(TENANT_STAFF), 200),
    route("GET", "/api/v1/auth/tenants/api-keys/", Access::Roles(TENANT_STAFF), 200),
    route("POST", "/api/v1/auth/tenants/api-keys/", Access::Roles(TENANT_OWNER), 201),
    route("POST", "/api/v1/auth/tenants/api-keys/regenerate/", Access::Roles(TENANT_OWNER), 200),
    route("POST", "/api/v1/auth/tenants/api-keys/revoke/", Access::Roles(TENANT_OWNER), 200),
    route("GET", "/api/v1/auth/tenants/webhooks/endpoints/", Access::Roles(TENANT_STAFF), 200),
    route("POST", "/api/v1/auth/tenants/webhooks/endpoints/", Access::Roles(TENANT_OWNER), 201),
    route("GET", "/api/v1/auth/tenants/webhooks/endpoints/{endpoint}/", Access::Roles(TENANT_STAFF), 200),
    route("PATCH", "/api/v1/auth/tenants/webhooks/endpoints/{endpoint}/", Access::Roles(TENANT_OWNER), 200),
    route(
        "POST",
        "/api/v1/auth/tenants/webhooks/endpoints/{endpoint}/rotate-secret/",
        Access::Roles(TENANT_OWNER),
        200,
    ),
    route("POST", "/api/v1/auth/tenants/webhooks/endpoints/{endpoint}/test/", Access::Roles(TENANT_STAFF), 200),
    route("POST", "/api/v1/auth/tenants/webhooks/endpoints/{endpoint}/replay/", Access::Roles(TENANT_STAFF), 202),
    route("GET", "/api/v1/auth/tenants/webhooks/deliveries/", Access::Roles(TENANT_STAFF), 200),
    route("GET", "/api/v1/auth/tenants/webhooks/deliveries/{delivery}/", Access::Roles(TENANT_STAFF), 200),
    route("POST", "/api/v1/auth/tenants/webhooks/deliveries/{delivery}/redeliver/", Access::Roles(TENANT_STAFF), 202),
    route("DELETE", "/api/v1/auth/tenants/webhooks/endpoints/{spare_endpoint}/", Access::Roles(TENANT_OWNER), 204),
    // The owner disconnects the fixture's connection here; starting a new connection then works,
    // and the server function that disconnects finds nothing connected (409): the authorisation
    // passed either way.
    route("POST", "/api/v1/auth/tenants/stripe/disconnect/", Access::Roles(TENANT_OWNER), 200),
    route("POST", "/api/v1/auth/tenants/stripe/connect/", Access::Roles(TENANT_OWNER), 200),
    rpc("/rpc/start_stripe_connect", Access::Roles(TENANT_OWNER)),
    rpc_with("/rpc/disconnect_stripe", Access::Roles(TENANT_OWNER), 409),
    // Without a state bound to the caller's session, every caller is refused.
    route("GET", "/api/v1/auth/tenants/stripe/callback/", Access::Everyone, 403),
];

const fn rpc_with(pattern: &'static str, access: Access, success: u16) -> Case {
    Case { kind: Kind::Rpc, pattern, access, success }
}

struct Fixtures {
    email_id: String,
    attachment_id: String,
    link_token: String,
    throwaway_user: uuid::Uuid,
    receiver_url: String,
    endpoint_id: String,
    spare_endpoint_id: String,
    delivery_id: String,
    plan_id: String,
    pay_token: String,
}

/// A webhook receiver that accepts everything.
async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hooks", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let mut tx = app.services.pool.begin().await.unwrap();
    let email_id = mail::enqueue(
        &mut tx,
        mail::OutgoingEmail {
            tenant_id: None,
            to: "someone@example.com".into(),
            subject: "Fixture".into(),
            text_body: "x".into(),
            attachments: vec![mail::Attachment {
                filename: "a.txt".into(),
                content_type: "text/plain".into(),
                content: b"a".to_vec(),
            }],
            links: None,
        },
    )
    .await
    .unwrap();
    let throwaway_user = uuid::Uuid::new_v4();
    let tenant = app.tenant_id().await;
    sqlx::query("INSERT INTO users (id, tenant_id, email, display_name, role) VALUES ($1, $2, 'throwaway@example.com', 'Throwaway', 'consultant')")
        .bind(throwaway_user)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    let link_token = account_tokens::issue(&mut tx, throwaway_user, Purpose::Invitation).await.unwrap();
    tx.commit().await.unwrap();
    let attachment_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM email_attachments").fetch_one(&app.services.pool).await.unwrap();

    // A webhook endpoint with one real delivery in its log.
    let receiver_url = receiver().await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    let mut endpoint_ids = Vec::new();
    for _ in 0..2 {
        let (_, endpoint) = app
            .json_with_cookie(
                Method::POST,
                "/api/v1/auth/tenants/webhooks/endpoints/",
                &owner,
                Some(json!({ "url": receiver_url, "livemode": false })),
            )
            .await;
        endpoint_ids.push(endpoint["id"].as_str().unwrap().to_owned());
    }
    let mut tx = app.services.pool.begin().await.unwrap();
    let event = TenantEvent::OnboardingUpdated(OnboardingUpdated {
        consultant: uuid::Uuid::new_v4(),
        stripe_account: "acct_matrix".into(),
        charges_enabled: true,
        payouts_enabled: true,
        details_submitted: true,
        requirements_due: 0,
    });
    tenant_webhooks::events::emit(&mut tx, tenant, false, event).await.unwrap();
    tx.commit().await.unwrap();
    app.wait_for_jobs().await;
    let delivery_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(uuid::Uuid::parse_str(&endpoint_ids[0]).unwrap())
        .fetch_one(&app.services.pool)
        .await
        .unwrap();

    // A connected Stripe account, for the disconnect route.
    let (_, start) = app.json_with_cookie(Method::POST, "/api/v1/auth/tenants/stripe/connect/", &owner, None).await;
    let url = url::Url::parse(start["url"].as_str().unwrap()).unwrap();
    let param = |k: &str| url.query_pairs().find(|(n, _)| n == k).unwrap().1.into_owned();
    let consent = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/oauth/authorize", app.sandbox.url()))
        .form(&[("decision", "allow".to_owned()), ("state", param("state")), ("redirect_uri", param("redirect_uri"))])
        .send()
        .await
        .unwrap();
    let back = consent.headers()[header::LOCATION].to_str().unwrap().strip_prefix(&app.address).unwrap().to_owned();
    let (status, _) = app.json_with_cookie(Method::GET, &back, &owner, None).await;
    assert_eq!(status, 200, "the fixture connection");

    // A plan to subscribe to.
    let admin = app.client();
    app.sign_in(&admin, Role::PlatformAdmin).await;
    let plan = [
        ("name", "Fixture plan"),
        ("description", ""),
        ("price", "10"),
        ("currency", "usd"),
        ("interval", "month"),
        ("trial_days", "0"),
    ];
    assert_eq!(app.rpc(&admin, "create_plan", &plan).await.status(), 200, "the fixture plan");
    let plan_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM plans WHERE name = 'Fixture plan'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();

    // A won lot and its buyer's payment link.
    let win = domain::checkout::NewWinning {
        reference: "MATRIX-1".into(),
        auction: "Matrix sale".into(),
        lot: "1".into(),
        description: String::new(),
        buyer_email: "matrix-buyer@example.com".into(),
        amount: 5_000,
        currency: "usd".into(),
        runners_up: vec![],
    };
    domain::checkout::register(&app.services, tenant, false, None, &win).await.unwrap();
    let link = app.latest_link("matrix-buyer@example.com", &app.url("/pay/")).await;
    let pay_token = link.rsplit('/').next().unwrap().to_owned();

    Fixtures {
        pay_token,
        email_id: email_id.to_string(),
        attachment_id: attachment_id.to_string(),
        link_token,
        throwaway_user,
        receiver_url,
        endpoint_id: endpoint_ids[0].clone(),
        spare_endpoint_id: endpoint_ids[1].clone(),
        delivery_id: delivery_id.to_string(),
        plan_id: plan_id.to_string(),
    }
}

/// The form a server function is called with: valid input, fresh where the call changes state.
async fn form_for(app: &TestApp, f: &Fixtures, path: &str, who: Option<Role>, n: usize) -> Vec<(String, String)> {
    let pairs = |p: &[(&str, String)]| p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>();
    match path {
        "/rpc/sign_in" => {
            let user = app.user(who.unwrap_or(Role::Consultant));
            pairs(&[("email", user.email.clone()), ("password", user.password.clone())])
        }
        "/rpc/request_password_reset" => pairs(&[("email", "nobody@example.com".into())]),
        "/rpc/inspect_link" => pairs(&[("token", f.link_token.clone())]),
        "/rpc/choose_password" => {
            let mut conn = app.services.pool.acquire().await.unwrap();
            let token = account_tokens::issue(&mut conn, f.throwaway_user, Purpose::PasswordReset).await.unwrap();
            pairs(&[
                ("token", token),
                ("password", "plum-orbit-canvas-meadow".into()),
                ("confirmation", "plum-orbit-canvas-meadow".into()),
            ])
        }
        "/rpc/invite_family_member" => {
            pairs(&[("email", format!("family{n}@example.com")), ("display_name", format!("Family {n}"))])
        }
        "/rpc/rename_tenant" => pairs(&[("name", format!("Northwind Auctions {n}"))]),
        "/rpc/invite_member" => pairs(&[
            ("email", format!("member{n}@example.com")),
            ("display_name", format!("Member {n}")),
            ("role", "consultant".into()),
        ]),
        "/rpc/create_tenant" => pairs(&[
            ("name", format!("Tenant {n}")),
            ("owner_email", format!("owner{n}@example.com")),
            ("owner_name", format!("Owner {n}")),
        ]),
        "/rpc/outbox_email" => pairs(&[("id", f.email_id.clone())]),
        "/rpc/audit_log" | "/rpc/security_overview" => pairs(&[("platform", "false".into())]),
        "/rpc/create_api_key" => pairs(&[("mode", "test".into())]),
        "/rpc/regenerate_api_keys" => pairs(&[("key_type", "test".into()), ("confirm", "yes".into())]),
        "/rpc/revoke_api_key" => {
            let owner = app.session_cookie(Role::TenantOwner).await;
            let (_, key) = app
                .json_with_cookie(
                    Method::POST,
                    "/api/v1/auth/tenants/api-keys/",
                    &owner,
                    Some(json!({ "mode": "live" })),
                )
                .await;
            pairs(&[("key_id", key["key"]["id"].as_str().unwrap().to_owned()), ("reason", "matrix test".into())])
        }
        "/rpc/create_webhook_endpoint" => {
            pairs(&[("url", f.receiver_url.clone()), ("description", String::new()), ("mode", "test".into())])
        }
        "/rpc/update_webhook_endpoint" => pairs(&[
            ("endpoint_id", f.endpoint_id.clone()),
            ("url", f.receiver_url.clone()),
            ("description", format!("Described {n}")),
        ]),
        "/rpc/switch_webhook_endpoint" => pairs(&[("endpoint_id", f.endpoint_id.clone()), ("enabled", "yes".into())]),
        "/rpc/rotate_webhook_secret" => {
            pairs(&[("endpoint_id", f.endpoint_id.clone()), ("overlap_hours", "24".into())])
        }
        "/rpc/send_test_webhook" => pairs(&[("endpoint_id", f.endpoint_id.clone())]),
        "/rpc/replay_webhooks" => pairs(&[
            ("endpoint_id", f.endpoint_id.clone()),
            ("since", chrono::Utc::now().format("%Y-%m-%d").to_string()),
        ]),
        "/rpc/delete_webhook_endpoint" => {
            // A fresh endpoint each time: the one the other cases use stays.
            let owner = app.session_cookie(Role::TenantOwner).await;
            let (_, endpoint) = app
                .json_with_cookie(
                    Method::POST,
                    "/api/v1/auth/tenants/webhooks/endpoints/",
                    &owner,
                    Some(json!({ "url": f.receiver_url, "livemode": true })),
                )
                .await;
            pairs(&[("endpoint_id", endpoint["id"].as_str().unwrap().to_owned())])
        }
        "/rpc/webhook_delivery" | "/rpc/redeliver_webhook" => pairs(&[("delivery_id", f.delivery_id.clone())]),
        "/rpc/create_plan" => pairs(&[
            ("name", format!("Plan {n}")),
            ("description", String::new()),
            ("price", "10".into()),
            ("currency", "usd".into()),
            ("interval", "month".into()),
            ("trial_days", "0".into()),
        ]),
        "/rpc/subscribe" | "/rpc/change_plan" | "/rpc/archive_plan" => pairs(&[("plan_id", f.plan_id.clone())]),
        "/rpc/set_default_card" | "/rpc/remove_card" => pairs(&[("card_id", uuid::Uuid::new_v4().to_string())]),
        "/rpc/pay_page" | "/rpc/pay_winning" => pairs(&[("token", f.pay_token.clone())]),
        "/rpc/payment_result" | "/rpc/retry_payment" => pairs(&[("session", "cs_unknown".into())]),
        "/rpc/register_winning" => pairs(&[
            ("reference", format!("MATRIX-UI-{n}")),
            ("auction", "Matrix sale".into()),
            ("lot", format!("{n}")),
            ("buyer_email", "matrix-buyer@example.com".into()),
            ("amount", "25.00".into()),
            ("currency", "usd".into()),
        ]),
        "/rpc/winning" => pairs(&[("id", uuid::Uuid::new_v4().to_string())]),
        "/rpc/request_fee" => pairs(&[
            ("client", app.user(Role::FamilyMember).id.to_string()),
            ("description", "Matrix fee".into()),
            ("amount", "25.00".into()),
            ("currency", "usd".into()),
            ("due_on", chrono::Utc::now().date_naive().to_string()),
            ("recurrence", "once".into()),
        ]),
        "/rpc/cancel_fee" | "/rpc/pay_fee" => pairs(&[("fee", uuid::Uuid::new_v4().to_string())]),
        "/rpc/refund_fee" => pairs(&[
            ("fee", uuid::Uuid::new_v4().to_string()),
            ("amount", "1.00".into()),
            ("reason", "Matrix".into()),
            ("idempotency_key", String::new()),
        ]),
        "/rpc/cancel_winning" => {
            pairs(&[("winning_id", uuid::Uuid::new_v4().to_string()), ("reason", "matrix".into())])
        }
        "/rpc/extend_winning" => pairs(&[
            ("winning_id", uuid::Uuid::new_v4().to_string()),
            ("pay_by", (chrono::Utc::now() + chrono::Duration::hours(30)).format("%Y-%m-%dT%H:%M").to_string()),
        ]),
        "/rpc/resend_payment_link" => pairs(&[("winning_id", uuid::Uuid::new_v4().to_string())]),
        "/rpc/refund_winning" => pairs(&[
            ("winning_id", uuid::Uuid::new_v4().to_string()),
            ("amount", "1.00".into()),
            ("reason", "matrix test".into()),
            ("idempotency_key", format!("matrix-{n}")),
        ]),
        "/rpc/set_payout_link_recipient" => pairs(&[("email", "books@example.com".into())]),
        "/rpc/change_password" => pairs(&[
            ("current_password", "not-the-current-password".into()),
            ("new_password", "plum-orbit-canvas-meadow".into()),
            ("confirmation", "plum-orbit-canvas-meadow".into()),
        ]),
        "/rpc/sign_out_session" => pairs(&[("id", uuid::Uuid::new_v4().to_string())]),
        "/rpc/set_user_active" => pairs(&[("user_id", uuid::Uuid::new_v4().to_string()), ("active", "false".into())]),
        "/rpc/change_user_role" => {
            pairs(&[("user_id", uuid::Uuid::new_v4().to_string()), ("role", "consultant".into())])
        }
        "/rpc/resend_invitation" | "/rpc/revoke_invitation" => pairs(&[("user_id", uuid::Uuid::new_v4().to_string())]),
        "/rpc/suspend_tenant" => {
            pairs(&[("tenant_id", uuid::Uuid::new_v4().to_string()), ("reason", "matrix test".into())])
        }
        "/rpc/reactivate_tenant" | "/rpc/tenant_terms" => pairs(&[("tenant_id", uuid::Uuid::new_v4().to_string())]),
        "/rpc/set_tenant_fee" => pairs(&[("tenant_id", uuid::Uuid::new_v4().to_string()), ("fee", "2.5".into())]),
        "/rpc/set_three_d_secure" => pairs(&[
            ("tenant_id", uuid::Uuid::new_v4().to_string()),
            ("currency", "usd".into()),
            ("above", "100".into()),
        ]),
        "/rpc/retry_job" => pairs(&[("id", "999999999".into())]),
        "/rpc/set_time_zone" => pairs(&[("time_zone", "Europe/London".into())]),
        "/rpc/reconcile_day" => pairs(&[
            ("day", (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string()),
            ("mode", "test".into()),
        ]),
        "/rpc/retry_stripe_event" => pairs(&[("id", "evt_not_stored".into())]),
        "/rpc/send_onboarding_link" => pairs(&[
            ("consultant_id", app.user(Role::Consultant).id.to_string()),
            ("email", "books@example.com".into()),
        ]),
        _ => vec![],
    }
}

/// The JSON body a REST route is called with.
async fn body_for(app: &TestApp, f: &Fixtures, method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/api/v1/auth/tenants/api-keys/") => Some(json!({ "mode": "test" })),
        ("POST", "/api/v1/auth/tenants/api-keys/regenerate/") => Some(json!({ "key_type": "test", "confirm": true })),
        ("POST", "/api/v1/auth/tenants/api-keys/revoke/") => {
            let owner = app.session_cookie(Role::TenantOwner).await;
            let (_, key) = app
                .json_with_cookie(
                    Method::POST,
                    "/api/v1/auth/tenants/api-keys/",
                    &owner,
                    Some(json!({ "mode": "live" })),
                )
                .await;
            Some(json!({ "key_id": key["key"]["id"], "reason": "matrix test" }))
        }
        ("POST", "/api/v1/auth/tenants/webhooks/endpoints/") => {
            Some(json!({ "url": f.receiver_url, "livemode": true }))
        }
        ("PATCH", "/api/v1/auth/tenants/webhooks/endpoints/{endpoint}/") => Some(json!({ "description": "matrix" })),
        ("POST", "/api/v1/auth/tenants/webhooks/endpoints/{endpoint}/rotate-secret/") => Some(json!({})),
        ("POST", "/api/v1/auth/tenants/webhooks/endpoints/{endpoint}/replay/") => {
            Some(json!({ "since": chrono::Utc::now() - chrono::Duration::hours(1) }))
        }
        ("POST", "/payments/checkout/create/") => Some(json!({ "token": "not-a-token" })),
        _ => None,
    }
}

fn concrete(pattern: &str, f: &Fixtures) -> String {
    let path = pattern
        .replace("/settings/webhooks/deliveries/{id}", &format!("/settings/webhooks/deliveries/{}", f.delivery_id))
        .replace("{email_id}", &f.email_id)
        .replace("{attachment_id}", &f.attachment_id)
        .replace("{id}", &f.email_id)
        .replace("{delivery}", &f.delivery_id)
        .replace("{spare_endpoint}", &f.spare_endpoint_id)
        .replace("{endpoint}", &f.endpoint_id)
        .replace("{token}", &f.pay_token)
        .replace("{winning}", &uuid::Uuid::new_v4().to_string())
        .replace("{fee}", &uuid::Uuid::new_v4().to_string())
        .replace("{refund}", &uuid::Uuid::new_v4().to_string())
        .replace("{session}", "cs_unknown");
    if path == "/reset-password" { format!("{path}?token={}", f.link_token) } else { path }
}

/// Method and path of every operation the OpenAPI document describes.
fn documented_routes() -> BTreeSet<(String, String)> {
    let spec: Value = serde_json::from_str(include_str!("../../src/api/openapi.json")).unwrap();
    spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone())))
        .collect()
}

#[tokio::test]
async fn every_route_and_server_function_answers_each_role_as_expected() {
    // Development mode: the fixture's webhook receiver listens on loopback.
    let app = spawn_app_with(Options { env: vec![("APP_ENV", "development".into())], ..Options::default() }).await;
    let f = fixtures(&app).await;

    // Everything that exists has a row here.
    let listed: BTreeSet<&str> = CASES.iter().map(|c| c.pattern).collect();
    let pages: BTreeSet<String> = server::startup::page_routes().iter().map(|r| r.path().to_owned()).collect();
    let rpcs: BTreeSet<String> = server_fn::axum::server_fn_paths().map(|(p, _)| p.to_owned()).collect();
    let missing: Vec<_> = pages.iter().chain(rpcs.iter()).filter(|p| !listed.contains(p.as_str())).collect();
    assert!(missing.is_empty(), "no expectation for {missing:?}");
    let listed_routes: BTreeSet<(String, String)> = CASES
        .iter()
        .filter_map(|c| match c.kind {
            Kind::Route(m) => Some((
                m.to_owned(),
                c.pattern
                    .replace("{delivery}", "{id}")
                    .replace("{spare_endpoint}", "{id}")
                    .replace("{endpoint}", "{id}"),
            )),
            _ => None,
        })
        .collect();
    let undocumented: Vec<_> = documented_routes().into_iter().filter(|r| !listed_routes.contains(r)).collect();
    assert!(undocumented.is_empty(), "no expectation for the documented {undocumented:?}");

    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut failures = Vec::new();
    let mut n = 0;
    for case in CASES {
        for who in [
            None,
            Some(Role::PlatformAdmin),
            Some(Role::TenantOwner),
            Some(Role::TenantAdmin),
            Some(Role::Consultant),
            Some(Role::FamilyMember),
        ] {
            n += 1;
            let expected = match (case.access, who) {
                (Access::Everyone, _) => case.success,
                (Access::Roles(_), None) => 401,
                (Access::Roles(roles), Some(role)) if roles.contains(&role) => case.success,
                (Access::Roles(_), Some(_)) => 403,
            };
            let url = app.url(&concrete(case.pattern, &f));
            let mut request = match case.kind {
                Kind::Rpc => client
                    .post(&url)
                    .header(header::ACCEPT, "application/json")
                    .form(&form_for(&app, &f, case.pattern, who, n).await),
                Kind::Page => client.get(&url).header(header::ACCEPT, "text/html"),
                Kind::Route(method) => {
                    let request = client
                        .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
                        .header(header::ACCEPT, "application/json");
                    match body_for(&app, &f, method, case.pattern).await {
                        Some(body) => request.json(&body),
                        None => request,
                    }
                }
            }
            .header(header::ORIGIN, &app.address);
            if let Some(role) = who {
                request = request.header(header::COOKIE, app.session_cookie(role).await);
            }
            let status = request.send().await.unwrap().status().as_u16();
            if status != expected {
                failures.push(format!("{} as {who:?}: expected {expected}, got {status}", case.pattern));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
