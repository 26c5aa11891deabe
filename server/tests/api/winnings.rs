//! Winnings a tenant manages and buyers who are told: reminders from the worker's schedule
//! (never after payment), failed attempts explained, the window closing, cancelling (by API and
//! page), extending once, a new link, the tenant's `winning.*` and `payment.failed` events, and
//! the winning's timeline.

use domain::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    billing::{flush, pay},
    checkout::{api_key, payment_token, start, won_lot},
    helpers::{TestApp, spawn_app},
};

async fn winning_id(app: &TestApp) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM winning_bids").fetch_one(&app.services.pool).await.unwrap()
}

async fn events(app: &TestApp, kind: &str) -> Vec<Value> {
    sqlx::query_scalar("SELECT payload->'data' FROM webhook_events WHERE type = $1 ORDER BY created_at")
        .bind(kind)
        .fetch_all(&app.services.pool)
        .await
        .unwrap()
}

/// Subjects of the emails to the buyer recorded against the winning, oldest first.
async fn buyer_emails(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT w.kind::text, e.subject FROM winning_emails w JOIN emails e ON e.id = w.email_id ORDER BY e.created_at",
    )
    .fetch_all(&app.services.pool)
    .await
    .unwrap()
}

/// Brings the due time of the worker's `task` jobs (only the reminder `hours_before` when given)
/// to now, as if that time had come, and waits for the worker to run them.
async fn run_due(app: &TestApp, task: &str, hours_before: Option<&str>) {
    sqlx::query(
        "UPDATE graphile_worker._private_jobs SET run_at = now() WHERE task_id = \
         (SELECT id FROM graphile_worker._private_tasks WHERE identifier = $1) \
         AND ($2::text IS NULL OR payload->>'hours_before' = $2)",
    )
    .bind(task)
    .bind(hours_before)
    .execute(&app.services.pool)
    .await
    .unwrap();
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn reminders_come_from_the_workers_schedule_with_a_working_link_and_never_after_payment() {
    let app = spawn_app().await;
    let token = won_lot(&app, 12_500).await;
    let scheduled: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT (j.payload->>'hours_before')::bigint, extract(epoch FROM (b.pay_by - j.run_at))::float8
         FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
         JOIN winning_bids b ON b.id = (j.payload->>'bid_id')::uuid
         WHERE t.identifier = 'remind_buyer' ORDER BY 1 DESC",
    )
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(scheduled, [(12, 12.0 * 3600.0), (2, 2.0 * 3600.0)], "12 h and 2 h before the window closes");

    run_due(&app, "remind_buyer", Some("12")).await;
    let link = app.latest_link_about("buyer@example.com", "Reminder: pay for lot 42", &app.url("/pay/")).await;
    assert_eq!(link.rsplit('/').next().unwrap(), token, "the reminder carries the buyer's own link");
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), 200);

    // The same reminder again (a job run twice) sends nothing more.
    let bid = winning_id(&app).await;
    let pay_by: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT pay_by FROM winning_bids").fetch_one(&app.services.pool).await.unwrap();
    let again = domain::checkout::lifecycle::RemindBuyer { bid_id: bid, hours_before: 12, pay_by };
    assert!(!domain::checkout::lifecycle::remind(&app.services, &again).await.unwrap());

    // Paid: the 2-hour reminder finds nothing to remind.
    let (_, body) = start(&app, &token).await;
    assert_eq!(pay(body["url"].as_str().unwrap(), "4242424242424242").await.0, 303);
    flush(&app).await;
    run_due(&app, "remind_buyer", None).await;
    let kinds: Vec<String> = buyer_emails(&app).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["payment_link", "reminder", "receipt"], "no email after the payment but its receipt");
}

#[tokio::test]
async fn a_failed_attempt_is_explained_to_the_buyer_and_told_to_the_tenant() {
    let app = spawn_app().await;
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    let url = body["url"].as_str().unwrap().to_owned();
    assert_eq!(pay(&url, "4000000000009995").await.0, 402, "declined: insufficient funds");
    flush(&app).await;
    let failed = events(&app, "payment.failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["failure_code"], "insufficient_funds");
    assert_eq!(failed[0]["attempts_left"], 2);
    assert!(failed[0]["reason"].as_str().unwrap().contains("insufficient funds"));
    let retry =
        app.latest_link_about("buyer@example.com", "did not go through", &app.url("/pay/complete?session=")).await;
    let email: String = sqlx::query_scalar(
        "SELECT text_body FROM emails WHERE subject LIKE '%did not go through%' ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert!(email.contains("2 attempts left") && email.contains("insufficient funds"), "{email}");
    assert!(retry.ends_with(url.rsplit('/').next().unwrap()), "the link opens the page to try again");
}

#[tokio::test]
async fn the_window_closing_tells_the_buyer_and_the_tenant_once() {
    let app = spawn_app().await;
    won_lot(&app, 12_500).await;
    sqlx::query("UPDATE winning_bids SET pay_by = now() - interval '1 second', won_at = now() - interval '24 hours'")
        .execute(&app.services.pool)
        .await
        .unwrap();
    run_due(&app, "expire_winning", None).await;
    let expired = events(&app, "winning.expired").await;
    assert_eq!(expired.len(), 1);
    assert_eq!((expired[0]["status"].as_str(), expired[0]["lot"].as_str()), (Some("expired"), Some("42")));
    let kinds: Vec<String> = buyer_emails(&app).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["payment_link", "window_closed"]);
    assert!(!domain::checkout::lifecycle::expire(&app.services, winning_id(&app).await).await.unwrap(), "once");
}

#[tokio::test]
async fn cancelling_closes_the_open_checkout_page_and_tells_everyone() {
    let app = spawn_app().await;
    let token = won_lot(&app, 12_500).await;
    let key = api_key(&app).await;
    let id = winning_id(&app).await;
    let (_, body) = start(&app, &token).await;
    let session = body["url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();

    let path = format!("/api/v1/winnings/{id}/cancel");
    let (status, body) = app.json_with_key(Method::POST, &path, &key, Some(json!({ "reason": "" }))).await;
    assert_eq!(status, 422, "a reason is needed: {body}");
    let reason = json!({ "reason": "The consignor withdrew the lot" });
    let (status, body) = app.json_with_key(Method::POST, &path, &key, Some(reason.clone())).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")), "{body}");
    let (_, stripe_session) = app.stripe(Method::GET, &format!("/v1/checkout/sessions/{session}"), &[]).await;
    assert_eq!(stripe_session["status"], "expired", "the open page can no longer be paid");
    let cancelled = events(&app, "winning.cancelled").await;
    assert_eq!(cancelled[0]["reason"], "The consignor withdrew the lot");
    let page = reqwest::get(app.url(&format!("/pay/{token}"))).await.unwrap().text().await.unwrap();
    assert!(page.contains("cancelled"), "{page}");
    let (status, body) = start(&app, &token).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = app.json_with_key(Method::POST, &path, &key, Some(reason)).await;
    assert_eq!(status, 409, "cancelled already");
    let kinds: Vec<String> = buyer_emails(&app).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["payment_link", "cancelled"]);
}

#[tokio::test]
async fn staff_extend_the_window_once_and_send_a_new_link() {
    let app = spawn_app().await;
    let old_token = won_lot(&app, 12_500).await;
    let id = winning_id(&app).await;
    let owner = app.client();
    app.sign_in(&owner, Role::TenantOwner).await;
    let won_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT won_at FROM winning_bids").fetch_one(&app.services.pool).await.unwrap();
    let at = |hours: i64| (won_at + chrono::Duration::hours(hours)).format("%Y-%m-%dT%H:%M").to_string();
    let form = |pay_by: String| vec![("winning_id".to_owned(), id.to_string()), ("pay_by".to_owned(), pay_by)];
    let post = |form: Vec<(String, String)>| {
        let (app, owner) = (&app, &owner);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            app.rpc(owner, "extend_winning", &form).await.status().as_u16()
        }
    };
    assert_eq!(post(form(at(80))).await, 422, "beyond 72 hours after the win");
    assert_eq!(post(form(at(48))).await, 200);
    let pay_by: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT pay_by FROM winning_bids").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!(pay_by.format("%Y-%m-%dT%H:%M").to_string(), at(48));
    assert_eq!(post(form(at(60))).await, 409, "once only");
    let link = app.latest_link_about("buyer@example.com", "More time to pay", &app.url("/pay/")).await;
    assert!(link.ends_with(&old_token), "the same link, a later deadline");

    let response = app.rpc(&owner, "resend_payment_link", &[("winning_id", &id.to_string())]).await;
    assert_eq!(response.status(), 200);
    let new_token = payment_token(&app).await;
    assert_ne!(new_token, old_token);
    assert_eq!(
        reqwest::get(app.url(&format!("/pay/{old_token}"))).await.unwrap().status(),
        404,
        "the old link stops working"
    );
    assert_eq!(reqwest::get(app.url(&format!("/pay/{new_token}"))).await.unwrap().status(), 200);

    let page = app.page(Some(Role::TenantOwner), &format!("/winnings/{id}")).await.1;
    for expected in
        ["Won and registered", "New deadline emailed", "Payment window extended", "New payment link emailed"]
    {
        assert!(page.contains(expected), "{expected:?} is missing from the timeline:\n{page}");
    }
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('winning.extended', 'winning.link_resent')",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn the_list_searches_filters_and_pages_and_the_export_streams_a_hundred_thousand_rows() {
    let app = spawn_app().await;
    won_lot(&app, 12_500).await;
    let key = api_key(&app).await;
    let tenant = app.tenant_id().await;
    sqlx::query(
        "INSERT INTO winning_bids (id, root_bid_id, tenant_id, livemode, reference, auction, lot, buyer_email, amount,
             currency, token_hash, pay_by, won_at)
         SELECT id, id, $1, false, 'BULK-' || i, 'Bulk sale', i::text, 'bulk' || i || '@example.com',
                1000 + i, 'usd', decode(md5('bulk' || i), 'hex'), now() + interval '1 day',
                now() - make_interval(secs => i)
         FROM (SELECT gen_random_uuid() AS id, i FROM generate_series(1, 100000) i) bulk",
    )
    .bind(tenant)
    .execute(&app.services.pool)
    .await
    .unwrap();

    // Search, then page with the cursor: BULK-4242 and BULK-42420 … BULK-42429.
    let (status, first) = app.json_with_key(Method::GET, "/api/v1/winnings?q=bulk-4242&limit=10", &key, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"].as_array().unwrap().len(), 10);
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, second) = app
        .json_with_key(Method::GET, &format!("/api/v1/winnings?q=bulk-4242&limit=10&cursor={cursor}"), &key, None)
        .await;
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let mut seen: Vec<String> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|w| w["reference"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 11);
    assert_eq!(seen[0], "BULK-4242");
    let (_, paid) = app.json_with_key(Method::GET, "/api/v1/winnings?status=paid", &key, None).await;
    assert!(paid["data"].as_array().unwrap().is_empty());
    let (status, bad) = app.json_with_key(Method::GET, "/api/v1/winnings?status=lost", &key, None).await;
    assert_eq!(status, 422, "{bad}");
    let (status, _) = app.json_with_key(Method::GET, "/api/v1/winnings?cursor=forged", &key, None).await;
    assert_eq!(status, 422);

    let (_, all) = app.json_with_key(Method::GET, "/api/v1/winnings?q=bulk-4242", &key, None).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 11, "one page of the default 50");

    // The staff's page shows 50 at a time, newest first, and links to the older ones.
    let page = app.page(Some(Role::TenantOwner), "/winnings?q=BULK-4242").await.1;
    assert!(page.contains("BULK-42429") && !page.contains("Older winnings"), "{page}");
    let page = app.page(Some(Role::TenantOwner), "/winnings?q=BULK-1").await.1;
    assert!(page.contains("Older winnings"), "{page}");

    // The export streams every row.
    let cookie = app.session_cookie(Role::TenantOwner).await;
    let response = reqwest::Client::new()
        .get(app.url("/winnings/export.csv?mode=test"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get(reqwest::header::CONTENT_LENGTH).is_none(), "sent as it is read, not buffered");
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 1 + 100_000 + 1, "the header, the bulk rows and the first win");
    assert!(lines[0].starts_with("id,reference,auction,lot,buyer_email,amount"));
    assert!(lines.iter().any(|l| l.contains(",BULK-100000,")));
    let (status, _) = app.page(Some(Role::Consultant), "/winnings/export.csv").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn second_chance_offers_an_unpaid_lot_to_each_runner_up_in_turn_and_only_once() {
    let app = spawn_app().await;
    crate::tenant_stripe::connected(&app).await;
    let key = api_key(&app).await;
    let register = |reference: &str| {
        json!({ "reference": reference, "auction": "Spring sale", "lot": "42", "buyer_email": "buyer@example.com",
                "amount": 12_500, "currency": "usd",
                "runners_up": [{ "buyer_email": "second@example.com", "amount": 11_000 },
                               { "buyer_email": "third@example.com", "amount": 10_000 }] })
    };
    let bad = json!({ "reference": "SC-BAD", "auction": "Spring sale", "lot": "1", "buyer_email": "buyer@example.com",
                      "amount": 12_500, "currency": "usd", "runners_up": [{ "buyer_email": "nobody", "amount": 100 }] });
    assert_eq!(app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(bad)).await.0, 422);
    let close = |reference: &'static str| {
        let app = &app;
        async move {
            let id: uuid::Uuid = sqlx::query_scalar(
                "UPDATE winning_bids SET pay_by = now() - interval '1 second' WHERE reference = $1 RETURNING id",
            )
            .bind(reference)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
            id
        }
    };
    let offers = |app: &TestApp| {
        let pool = app.services.pool.clone();
        async move {
            sqlx::query_as::<_, (String, String, i64, String)>(
                "SELECT reference, buyer_email, amount, status FROM winning_bids WHERE reference LIKE 'SC-%' ORDER BY won_at, reference",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };

    // Off (the default): the window closes and nobody else is offered the lot.
    assert_eq!(app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(register("SC-OFF"))).await.0, 201);
    let off = close("SC-OFF").await;
    assert!(domain::checkout::lifecycle::expire(&app.services, off).await.unwrap());
    assert_eq!(offers(&app).await.len(), 1);

    // On: the first runner-up is offered the lot at their bid, with a fresh 24-hour window.
    let owner = app.client();
    app.sign_in(&owner, Role::TenantOwner).await;
    assert_eq!(app.rpc(&owner, "set_second_chance", &[("enabled", "yes")]).await.status(), 200);
    assert_eq!(app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(register("SC-ON"))).await.0, 201);
    let first = close("SC-ON").await;
    assert!(domain::checkout::lifecycle::expire(&app.services, first).await.unwrap());
    let now = offers(&app).await;
    assert_eq!(now[2], ("SC-ON-R1".to_owned(), "second@example.com".to_owned(), 11_000, "awaiting_payment".to_owned()));
    let link = app.latest_link_about("second@example.com", "Lot 42 is offered to you", &app.url("/pay/")).await;
    assert_eq!(reqwest::get(&link).await.unwrap().status(), 200);
    let offered = events(&app, "winning.offered_to_runner_up").await;
    assert_eq!(
        (offered.len(), offered[0]["position"].as_i64(), offered[0]["amount"].as_i64()),
        (1, Some(1), Some(11_000))
    );
    assert_eq!(offered[0]["previous_winning"], first.to_string());

    // Its window closes too, seen by two workers at once: exactly one offer to the next.
    let second = close("SC-ON-R1").await;
    let (a, b) = tokio::join!(
        domain::checkout::lifecycle::expire(&app.services, second),
        domain::checkout::lifecycle::expire(&app.services, second)
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|closed| **closed).count(), 1);
    let now = offers(&app).await;
    let live: Vec<&str> = now.iter().filter(|o| o.3 == "awaiting_payment").map(|o| o.0.as_str()).collect();
    assert_eq!(live, ["SC-ON-R2"], "one live offer for the lot");

    // The last runner-up lets it lapse: no one is left.
    let third = close("SC-ON-R2").await;
    assert!(domain::checkout::lifecycle::expire(&app.services, third).await.unwrap());
    assert_eq!(offers(&app).await.len(), 4);
    assert_eq!(events(&app, "winning.offered_to_runner_up").await.len(), 2);
}

#[tokio::test]
async fn the_owner_sets_a_time_zone_and_the_winnings_page_speaks_it() {
    let app = spawn_app().await;
    won_lot(&app, 12_500).await;
    let id = winning_id(&app).await;
    let (won_at, pay_by): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT won_at, pay_by FROM winning_bids").fetch_one(&app.services.pool).await.unwrap();
    let (_, html) = app.page(Some(Role::TenantOwner), &format!("/winnings/{id}")).await;
    assert!(html.contains(&pay_by.format("%Y-%m-%d %H:%M UTC").to_string()), "UTC until a zone is set");

    let owner = app.client();
    app.sign_in(&owner, Role::TenantOwner).await;
    let refused = app.rpc(&owner, "set_time_zone", &[("time_zone", "Mars/Olympus")]).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("IANA"));
    let admin = app.client();
    app.sign_in(&admin, Role::TenantAdmin).await;
    assert_eq!(app.rpc(&admin, "set_time_zone", &[("time_zone", "Asia/Tokyo")]).await.status(), 403);
    assert_eq!(app.rpc(&owner, "set_time_zone", &[("time_zone", "America/New_York")]).await.status(), 200);

    let zone: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let local = |t: chrono::DateTime<chrono::Utc>, f: &str| t.with_timezone(&zone).format(f).to_string();
    let (status, html) = app.page(Some(Role::TenantAdmin), &format!("/winnings/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&local(pay_by, "%Y-%m-%d %H:%M %Z")), "the deadline in New York's time");
    assert!(html.contains(&local(won_at, "%Y-%m-%d %H:%M:%S %Z")), "the timeline's registration in New York's time");
    assert!(!html.contains(" UTC<"), "no time is left in UTC");
    let (_, settings) = app.page(Some(Role::TenantAdmin), "/settings").await;
    assert!(settings.contains("shown in America/New_York"));
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'tenant.time_zone_set'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(audited, 1);
}
