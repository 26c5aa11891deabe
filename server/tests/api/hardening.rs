//! Nothing a request sends can crash, hang or starve the server: panics, amounts, NUL bytes,
//! oversized bodies, forged signature headers, slow clients, sign-in floods, slow Stripe, and
//! scheduled jobs that must actually run.

use std::time::Duration;

use domain::auth::Role;
use reqwest::{Method, header};
use serde_json::json;
use stripe_sandbox::{FaultKind, FaultRule};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{
    checkout::{api_key, start, winning},
    helpers::{Options, SecondProcess, TestApp, spawn_app, spawn_app_with, wait_until},
    tenant_stripe::connected,
};

fn with_env(env: &[(&'static str, &str)]) -> Options {
    Options { env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(), ..Options::default() }
}

/// `GET /readyz` answers 200 within a second.
async fn ready_within_a_second(app: &TestApp) -> bool {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
    client.get(app.url("/readyz")).send().await.is_ok_and(|r| r.status() == 200)
}

#[tokio::test]
async fn a_next_value_with_a_control_character_is_ignored_and_the_connection_kept() {
    let app = spawn_app().await;
    let user = app.user(Role::Consultant);
    for next in ["/\u{7f}", "/a\u{7f}b", "/\u{1b}[31m", "/\r\nSet-Cookie: x=1"] {
        let client = app.client();
        let response =
            app.rpc(&client, "sign_in", &[("email", &user.email), ("password", &user.password), ("next", next)]).await;
        assert_eq!(response.status(), 200, "{next:?}: answered, not dropped");
        assert_eq!(response.headers()[header::LOCATION], "/dashboard", "{next:?} is not followed");
    }
}

#[tokio::test]
async fn an_open_redirect_through_next_is_refused() {
    let app = spawn_app().await;
    let user = app.user(Role::Consultant);
    for next in ["/\t/evil.example", "/\\evil.example", "//evil.example", "/\n/evil.example", "https://evil.example"] {
        let client = app.client();
        let response =
            app.rpc(&client, "sign_in", &[("email", &user.email), ("password", &user.password), ("next", next)]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::LOCATION], "/dashboard", "{next:?} must not be followed");
    }
    let client = app.client();
    let response = app
        .rpc(&client, "sign_in", &[("email", &user.email), ("password", &user.password), ("next", "/billing?x=1")])
        .await;
    assert_eq!(response.headers()[header::LOCATION], "/billing?x=1", "a path on Remit is followed");
}

#[tokio::test]
async fn an_amount_of_9e18_minor_units_is_refused_at_registration_and_cannot_overflow_the_fee() {
    let app = spawn_app().await;
    let key = api_key(&app).await;
    let (status, body) = app
        .json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("HUGE-1", 9_000_000_000_000_000_000)))
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("amount")), "{body}");
    // A bid stored before amounts were bounded still cannot crash checkout.
    connected(&app).await;
    let (status, body) =
        app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("HUGE-2", 5_000))).await;
    assert_eq!(status, 201, "{body}");
    sqlx::query("UPDATE winning_bids SET amount = 9000000000000000000 WHERE reference = 'HUGE-2'")
        .execute(&app.services.pool)
        .await
        .unwrap();
    let token = crate::checkout::payment_token(&app).await;
    let (status, body) = start(&app, &token).await;
    assert_ne!(status, 0);
    assert!(status < 500 || status == 502, "answered with a status, not a dropped connection: {status} {body}");
}

#[tokio::test]
async fn amounts_are_bounded_per_currency_at_every_entry() {
    let app = spawn_app().await;
    let key = api_key(&app).await;
    for (amount, currency, expected) in [
        (49, "usd", 422),
        (50, "usd", 201),
        (29, "gbp", 422),
        (30, "gbp", 201),
        (99_999_999, "eur", 201),
        (100_000_000, "eur", 422),
    ] {
        let mut win = winning(&format!("BOUND-{amount}-{currency}"), amount);
        win["currency"] = json!(currency);
        let (status, body) = app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(win)).await;
        assert_eq!(status, expected, "{amount} {currency}: {body}");
        if expected == 422 {
            assert_eq!(body["field"], "amount", "{body}");
        }
    }
    // The Winnings page (amounts typed in major units).
    let owner = crate::billing::signed_in(&app, Role::TenantOwner).await;
    let form = |reference: &'static str, amount: &'static str| {
        [
            ("reference", reference),
            ("auction", "Bounds sale"),
            ("lot", "1"),
            ("buyer_email", "bounds@example.com"),
            ("amount", amount),
            ("currency", "usd"),
        ]
    };
    for (reference, amount, expected) in
        [("UI-1", "0.49", 422), ("UI-2", "1000000.00", 422), ("UI-3", "999999.99", 200)]
    {
        let response = app.rpc(&owner, "register_winning", &form(reference, amount)).await;
        assert_eq!(response.status(), expected, "{amount}");
    }
    // Plans.
    let admin = crate::billing::signed_in(&app, Role::PlatformAdmin).await;
    for (price, expected) in [("0.49", 422), ("1000000", 422)] {
        let plan = [
            ("name", "Bounded"),
            ("description", ""),
            ("price", price),
            ("currency", "usd"),
            ("interval", "month"),
            ("trial_days", "0"),
        ];
        let response = app.rpc(&admin, "create_plan", &plan).await;
        assert_eq!(response.status(), expected, "plan price {price}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["field"], "price");
    }
}

#[tokio::test]
async fn nul_bytes_in_text_inputs_are_refused_with_a_message() {
    let app = spawn_app().await;
    let owner = crate::billing::signed_in(&app, Role::TenantOwner).await;
    // A server function's form.
    let response = app
        .rpc(
            &owner,
            "invite_member",
            &[("email", "nul@example.com"), ("display_name", "Nul\0Person"), ("role", "consultant")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("NUL"), "the message says what is wrong");
    // The REST API's JSON.
    let key = api_key(&app).await;
    let mut win = winning("NUL-1", 5_000);
    win["lot"] = json!("4\u{0}2");
    let (status, body) = app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(win)).await;
    assert_eq!(status, 400, "{body}");
    // A path and a query.
    for path in ["/pay/abc%00def", "/reset-password?token=a%00b"] {
        let status = reqwest::get(app.url(path)).await.unwrap().status();
        assert_eq!(status, 400, "{path}");
    }
    // Nothing was stored.
    assert_eq!(app.count("winning_bids").await, 0);
    let invited: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'nul@example.com'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(invited, 0);
}

#[tokio::test]
async fn oversized_server_function_bodies_get_413() {
    let app = spawn_app().await;
    let client = app.client();
    let big = "x".repeat(3 * 1024 * 1024);
    let response = app.rpc(&client, "request_password_reset", &[("email", &big)]).await;
    assert_eq!(response.status(), 413);
    // Without a Content-Length (chunked), the limit holds while reading.
    let chunks =
        futures_util::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 64 * 1024]))));
    let response = client
        .post(app.url("/rpc/request_password_reset"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // The REST API too.
    let key = api_key(&app).await;
    let mut win = winning("BIG-1", 5_000);
    win["description"] = json!("y".repeat(2 * 1024 * 1024));
    let (status, _) = app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(win)).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_signature_header_with_10000_v1_values_is_refused_without_hashing_each() {
    let app = spawn_app().await;
    let t = chrono::Utc::now().timestamp();
    let header = format!("t={t},{}", vec!["v1=00"; 10_000].join(","));
    let response = reqwest::Client::new()
        .post(app.url("/payments/webhooks/stripe"))
        .header("stripe-signature", header)
        .body(r#"{"id":"evt_many","type":"charge.succeeded","created":1,"livemode":false,"data":{"object":{}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(app.count("stripe_events").await, 0);
    // A body over the route's limit is refused before its signature is looked at.
    let response = reqwest::Client::new()
        .post(app.url("/payments/webhooks/stripe"))
        .header("stripe-signature", format!("t={t},v1=00"))
        .body(vec![b' '; domain::stripe::events::MAX_EVENT_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

/// Reads from `stream` until the server closes it (or `within` passes: then `false`).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_cut_off() {
    let app = spawn_app_with(with_env(&[("HTTP_HEADER_TIMEOUT_SECONDS", "1")])).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    // Headers that never finish.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: remit\r\n").await.unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(15)).await,
        "a client that never finishes its headers is cut off"
    );
    // A connection that says nothing at all.
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(15)).await, "a silent connection is closed");
    // A keep-alive connection left idle after its answer.
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: remit\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"), "answered first");
    assert!(closed_within(&mut idle, Duration::from_secs(15)).await, "an idle keep-alive connection is closed");
    // Meanwhile the server serves everyone else.
    assert!(ready_within_a_second(&app).await);
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_answered_503() {
    let app = spawn_app_with(with_env(&[("HTTP_REQUEST_TIMEOUT_SECONDS", "2")])).await;
    let token = crate::checkout::won_lot(&app, 5_000).await;
    app.sandbox.add_fault(FaultRule {
        method: Some("POST".into()),
        path: "/v1/checkout/sessions".into(),
        kind: FaultKind::Latency,
        count: 1,
        delay_ms: Some(10_000),
    });
    let response = reqwest::Client::new()
        .post(app.url("/payments/checkout/create"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(ready_within_a_second(&app).await);
}

#[tokio::test]
async fn sign_in_never_starves_the_pool() {
    let app = spawn_app_with(with_env(&[("CLIENT_IP_HEADER", "X-Forwarded-For")])).await;
    let email = app.user(Role::Consultant).email.clone();
    let attempts: Vec<_> = (0..200)
        .map(|i| {
            let (url, origin, email) = (app.url("/rpc/sign_in"), app.address.clone(), email.clone());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .header(header::ORIGIN, origin)
                    .header(header::ACCEPT, "application/json")
                    .header("x-forwarded-for", format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256))
                    .form(&[("email", email.as_str()), ("password", "wrong password, try again")])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    // While they are checked, the server stays ready.
    let mut probes = 0;
    while attempts.iter().any(|a| !a.is_finished()) {
        assert!(ready_within_a_second(&app).await, "readyz answered within a second during the sign-in flood");
        probes += 1;
    }
    let statuses: Vec<u16> =
        futures_util::future::join_all(attempts).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 401), "every wrong password is refused: {statuses:?}");
    assert!(probes > 0, "the flood was probed while it ran");
}

#[tokio::test]
async fn fifty_concurrent_buyers_against_a_slow_stripe_leave_readyz_at_200() {
    let app = spawn_app().await;
    connected(&app).await;
    let key = api_key(&app).await;
    let mut tokens = Vec::new();
    for i in 0..50 {
        let mut win = winning(&format!("SLOW-{i}"), 5_000);
        win["buyer_email"] = json!(format!("buyer{i}@example.com"));
        let (status, body) = app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(win)).await;
        assert_eq!(status, 201, "{body}");
        let link = app.latest_link(&format!("buyer{i}@example.com"), &app.url("/pay/")).await;
        tokens.push(link.rsplit('/').next().unwrap().to_owned());
    }
    app.sandbox.add_fault(FaultRule {
        method: Some("POST".into()),
        path: "/v1/checkout/sessions".into(),
        kind: FaultKind::Latency,
        count: 50,
        delay_ms: Some(3_000),
    });
    let buyers: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let url = app.url("/payments/checkout/create");
            tokio::spawn(async move {
                let response = reqwest::Client::new().post(url).json(&json!({ "token": token })).send().await.unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    let mut probes = 0;
    while buyers.iter().any(|b| !b.is_finished()) {
        assert!(ready_within_a_second(&app).await, "readyz answered within a second while Stripe was slow");
        probes += 1;
    }
    let statuses: Vec<u16> = futures_util::future::join_all(buyers).await.into_iter().map(Result::unwrap).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(probes > 0);
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_sessions WHERE status = 'open'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(open, 50, "one Checkout page per buyer");
}

#[tokio::test]
async fn concurrent_clicks_on_pay_make_one_checkout_session() {
    let app = spawn_app().await;
    let token = crate::checkout::won_lot(&app, 5_000).await;
    app.sandbox.add_fault(FaultRule {
        method: Some("POST".into()),
        path: "/v1/checkout/sessions".into(),
        kind: FaultKind::Latency,
        count: 10,
        delay_ms: Some(500),
    });
    let clicks: Vec<_> = (0..5)
        .map(|_| {
            let (url, token) = (app.url("/payments/checkout/create"), token.clone());
            tokio::spawn(async move {
                let response = reqwest::Client::new().post(url).json(&json!({ "token": token })).send().await.unwrap();
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap();
                (status, body["url"].as_str().map(str::to_owned))
            })
        })
        .collect();
    let answers: Vec<_> = futures_util::future::join_all(clicks).await.into_iter().map(Result::unwrap).collect();
    let urls: std::collections::BTreeSet<_> = answers.iter().filter_map(|(_, url)| url.clone()).collect();
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    assert_eq!(urls.len(), 1, "every click gets the same page: {answers:?}");
    let (_, sessions) = app.stripe(Method::GET, "/v1/checkout/sessions?limit=100", &[]).await;
    assert_eq!(sessions["data"].as_array().unwrap().len(), 1, "Stripe made one session");
    let (_, attempts, _) = crate::checkout::bid(&app).await;
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn a_failed_stripe_call_moves_nothing_forward_and_the_retry_gets_one_session() {
    let app = spawn_app().await;
    let token = crate::checkout::won_lot(&app, 5_000).await;
    app.sandbox.add_fault(FaultRule {
        method: Some("POST".into()),
        path: "/v1/checkout/sessions".into(),
        kind: FaultKind::ServerError,
        count: 1,
        delay_ms: None,
    });
    let (status, _) = start(&app, &token).await;
    assert_eq!(status, 502);
    let (_, attempts, _) = crate::checkout::bid(&app).await;
    assert_eq!(attempts, 0, "no attempt is counted while Stripe failed");
    let (status, body) = start(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    let (_, attempts, _) = crate::checkout::bid(&app).await;
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn scheduled_jobs_run_through_the_worker_and_its_schedule() {
    let app = spawn_app().await;
    let pool = app.services.pool.clone();
    wait_until("the schedule's registration", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM graphile_worker._private_known_crontabs
             WHERE identifier IN ('check_payment_health', 'purge_expired')",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            == 2
    })
    .await;
    // What the jobs act on: an expired session, and a tenant whose payments fail too often.
    app.session_cookie(Role::Consultant).await;
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE user_id = $1")
        .bind(app.user(Role::Consultant).id)
        .execute(&pool)
        .await
        .unwrap();
    let tenant = app.tenant_id().await;
    for i in 0..10 {
        sqlx::query(
            "INSERT INTO payment_outcomes (id, tenant_id, livemode, source, succeeded, amount, currency, reference, occurred_at)
             VALUES ($1, $2, true, 'checkout', $3, 5000, 'usd', $4, now() - interval '1 hour')",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(tenant)
        .bind(i >= 2)
        .bind(format!("schedule-test-{i}"))
        .execute(&pool)
        .await
        .unwrap();
    }
    // Both schedules last ran one period ago; a worker that starts now catches up on them.
    sqlx::query(
        "UPDATE graphile_worker._private_known_crontabs SET last_execution = now() - CASE identifier
             WHEN 'check_payment_health' THEN interval '15 minutes' ELSE interval '1 hour' END
         WHERE identifier IN ('check_payment_health', 'purge_expired')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let second = SecondProcess::start(&app).await;
    wait_until("the expired session's purge", async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sessions WHERE expires_at <= now()")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    wait_until("the failure-rate alert", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM alerts WHERE kind = 'payment_failure_rate' AND tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(&pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM graphile_worker.jobs WHERE task_identifier IN ('check_payment_health', 'purge_expired')
         AND last_error IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(failed, 0, "no scheduled job failed");
    second.kill().await;
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_shown_to_platform_admins() {
    let app = spawn_app().await;
    let pool = app.services.pool.clone();
    // A receipt for an order that does not exist: the job fails every time.
    let mut conn = pool.acquire().await.unwrap();
    domain::queue::enqueue_with(
        &mut conn,
        domain::receipts::IssueReceipt { order_id: uuid::Uuid::new_v4() },
        graphile_worker::JobSpec::builder().max_attempts(3).build(),
    )
    .await
    .unwrap();
    drop(conn);
    // Its retries are due at once rather than after the backoff.
    wait_until("the job to be given up", async || {
        sqlx::query("UPDATE graphile_worker._private_jobs SET run_at = now() WHERE attempts < max_attempts AND locked_at IS NULL")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM alerts WHERE kind = 'job_failing'").fetch_one(&pool).await.unwrap()
            >= 1
    })
    .await;
    let (status, page) = app.page(Some(Role::PlatformAdmin), "/admin/jobs").await;
    assert_eq!(status, 200);
    assert!(page.contains("issue_receipt") && page.contains("Given up"), "{page}");
    let (status, dashboard) = app.page(Some(Role::PlatformAdmin), "/admin").await;
    assert_eq!(status, 200);
    assert!(dashboard.contains("issue_receipt"), "the alert is on the admin dashboard");
    // "Retry now" puts it back in the queue.
    let id: i64 = sqlx::query_scalar("SELECT id FROM graphile_worker.jobs WHERE task_identifier = 'issue_receipt'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let admin = crate::billing::signed_in(&app, Role::PlatformAdmin).await;
    assert_eq!(app.rpc(&admin, "retry_job", &[("id", &id.to_string())]).await.status(), 200);
    let attempts: i16 = sqlx::query_scalar("SELECT attempts FROM graphile_worker._private_jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(attempts < 3, "the job is due again");
}

#[tokio::test]
async fn a_stripe_event_that_keeps_failing_is_shown_to_platform_admins_and_can_be_retried() {
    let app = spawn_app().await;
    let pool = app.services.pool.clone();
    // Signed and an event to the intake, but without the object the applier needs: every try fails.
    let body = r#"{"id":"evt_unappliable","object":"event","type":"checkout.session.completed","created":1764547200,"livemode":false,"account":null,"api_version":null,"data":{}}"#;
    assert_eq!(app.post_stripe_event(body).await, 200);
    let state = async || -> (i32, Option<String>, bool) {
        sqlx::query_as(
            "SELECT attempts, last_error, next_attempt_at IS NULL FROM stripe_events WHERE id = 'evt_unappliable'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    // Each retry is made due at once rather than after the backoff, until the third failure.
    wait_until("three failed tries", async || {
        sqlx::query(
            "UPDATE stripe_events SET next_attempt_at = now() WHERE id = 'evt_unappliable' AND claimed_until IS NULL",
        )
        .execute(&pool)
        .await
        .unwrap();
        state().await.0 >= 3 && state().await.1.is_some() && {
            let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE kind = 'stripe_event_failed'")
                .fetch_one(&pool)
                .await
                .unwrap();
            alerts == 1
        }
    })
    .await;
    let (attempts, error, given_up) = state().await;
    assert!(error.unwrap().contains("malformed"), "the error says what is wrong");
    assert!(!given_up && attempts < domain::stripe_webhooks::applier::MAX_ATTEMPTS);
    let (status, page) = app.page(Some(Role::PlatformAdmin), "/admin/jobs").await;
    assert_eq!(status, 200);
    assert!(page.contains("evt_unappliable") && page.contains("malformed"), "{page}");
    assert!(page.contains(&format!("of {}", domain::stripe_webhooks::applier::MAX_ATTEMPTS)), "{page}");

    // On its last try it is given up, and the admins are told again.
    sqlx::query("UPDATE stripe_events SET attempts = $1, next_attempt_at = now() WHERE id = 'evt_unappliable'")
        .bind(domain::stripe_webhooks::applier::MAX_ATTEMPTS - 1)
        .execute(&pool)
        .await
        .unwrap();
    wait_until("the event to be given up", async || state().await.2).await;
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE kind = 'stripe_event_failed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(alerts, 2, "failing, then given up");
    let (_, page) = app.page(Some(Role::PlatformAdmin), "/admin/jobs").await;
    assert!(page.contains("Given up"), "{page}");

    // "Retry now" makes it due again with its attempts counted afresh; an event that is not
    // failing cannot be retried.
    let admin = crate::billing::signed_in(&app, Role::PlatformAdmin).await;
    assert_eq!(app.rpc(&admin, "retry_stripe_event", &[("id", "evt_unappliable")]).await.status(), 200);
    wait_until("the retried event to be tried again", async || {
        let (attempts, _, given_up) = state().await;
        (1..5).contains(&attempts) && !given_up
    })
    .await;
    assert_eq!(app.rpc(&admin, "retry_stripe_event", &[("id", "evt_not_stored")]).await.status(), 404);
}
