//! The webhook intake, fed by the in-process Stripe sandbox exactly as Stripe would feed it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use domain::stripe::events::TOLERANCE_SECONDS;
use secrecy::ExposeSecret as _;

use crate::helpers::{SecondProcess, TestApp, schedule_last_ran, spawn_app, wait_until};

async fn stored(app: &TestApp, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM stripe_events WHERE type = $1")
        .bind(kind)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

async fn wait_stored(app: &TestApp, kind: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while stored(app, kind).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "{kind} never reached the intake");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn events_from_the_sandbox_arrive_signed_and_are_stored_once() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(stripe_sandbox::DeliveryMode::Concurrent);
    app.sandbox.trigger("checkout.session.completed", None).unwrap();
    wait_stored(&app, "checkout.session.completed").await;
    // Both concurrent copies have been answered once the log shows two 200s for the event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answered = app
            .sandbox
            .deliveries()
            .iter()
            .filter(|d| d.event_type == "checkout.session.completed" && d.status == Some(200))
            .count();
        if answered == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the second copy was not answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored(&app, "checkout.session.completed").await, 1, "delivered twice, stored once");
}

fn signed(secret: &str, t: i64, body: &str) -> String {
    stripe_sandbox::signature_header(secret, body, t)
}

#[tokio::test]
async fn forged_stale_or_unsigned_deliveries_get_400_and_store_nothing() {
    let app = spawn_app().await;
    let secret = app.services.stripe.mode(false).unwrap().keys().webhook_secrets[0].expose_secret().to_owned();
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"id":"evt_forged","object":"event","type":"checkout.session.completed","created":1,"livemode":false,"account":null,"api_version":null,"data":{"object":{}}}"#;
    let url = app.url("/payments/webhooks/stripe");
    let client = reqwest::Client::new();
    for header in [
        None,
        Some(signed("whsec_someone_else", now, body)),
        Some(signed(&secret, now - TOLERANCE_SECONDS - 5, body)),
        Some("t=abc,v1=zz".to_owned()),
    ] {
        let mut request = client.post(&url).body(body);
        if let Some(h) = &header {
            request = request.header("stripe-signature", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{header:?}");
    }
    assert_eq!(app.count("stripe_events").await, 0, "nothing stored, so nothing to apply");
    let reported: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT severity, host(client_ip) FROM security_events WHERE kind = 'webhook.bad_signature'")
            .fetch_all(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(reported, [("warning".to_owned(), Some("127.0.0.1".to_owned()))], "reported once per address and hour");
    let accepted =
        client.post(&url).header("stripe-signature", signed(&secret, now, body)).body(body).send().await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(app.count("stripe_events").await, 1);
}

fn event_body(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","object":"event","type":"customer.created","created":1700000000,"livemode":false,"account":null,"api_version":null,"data":{{"object":{{"id":"cus_{id}"}}}}}}"#
    )
}

async fn post_event(client: &reqwest::Client, url: &str, secret: &str, body: String) -> Result<u16, reqwest::Error> {
    let header = signed(secret, chrono::Utc::now().timestamp(), &body);
    client.post(url).header("stripe-signature", header).body(body).send().await.map(|r| r.status().as_u16())
}

/// Of the events `ids`: how many are stored, and how many of those are queued for the applier
/// (due, or being applied), or were applied already (the test app's own applier runs meanwhile).
async fn stored_and_queued(app: &TestApp, ids: &[String]) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE applied_at IS NOT NULL OR next_attempt_at IS NOT NULL)
         FROM stripe_events WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_one(&app.services.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_process_killed_under_load_has_stored_every_event_it_acknowledged() {
    let app = spawn_app().await;
    // A web-only replica (the test app's own applier applies what it stores meanwhile).
    let replica = SecondProcess::start_with(&app, &[("JOB_WORKERS", "0")]).await;
    let secret = app.services.stripe.mode(false).unwrap().keys().webhook_secrets[0].expose_secret().to_owned();
    let url = format!("{}/payments/webhooks/stripe", replica.address);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let (enough, mut enough_rx) = tokio::sync::watch::channel(false);
    let senders: Vec<_> = (0..16)
        .map(|sender| {
            let (url, secret, acknowledged, enough) =
                (url.clone(), secret.clone(), acknowledged.clone(), enough.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in 0.. {
                    let id = format!("evt_kill_{sender}_{n}");
                    match post_event(&client, &url, &secret, event_body(&id)).await {
                        Ok(200) => {
                            let mut acknowledged = acknowledged.lock().unwrap();
                            acknowledged.push(id);
                            if acknowledged.len() >= 300 {
                                let _ = enough.send(true);
                            }
                        }
                        Ok(status) => panic!("{id} answered {status} before the crash"),
                        // The process is gone: connections refused or cut.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(60), enough_rx.wait_for(|enough| *enough))
        .await
        .expect("300 events acknowledged within a minute")
        .unwrap();
    // Killed while requests are in flight: some were never answered, and those may or may not
    // be stored; every one answered 200 must be.
    replica.kill().await;
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let (events, queued) = stored_and_queued(&app, &acknowledged).await;
    assert_eq!(events, acknowledged.len() as i64, "every acknowledged event is stored");
    assert_eq!(queued, acknowledged.len() as i64, "and queued for the applier (or applied)");
}

#[tokio::test]
async fn an_event_the_database_cannot_hold_fails_alone() {
    let app = spawn_app().await;
    let secret = app.services.stripe.mode(false).unwrap().keys().webhook_secrets[0].expose_secret().to_owned();
    let url = app.url("/payments/webhooks/stripe");
    let client = reqwest::Client::new();
    // PostgreSQL's jsonb holds no NUL character, which JSON itself allows.
    let bad = event_body("evt_nul").replace(r#""customer.created""#, r#""customer.created","note":"a\u0000b""#);
    let good: Vec<String> = (0..40).map(|n| format!("evt_beside_nul_{n}")).collect();
    let mut requests: Vec<_> = good
        .iter()
        .map(|id| tokio::spawn(post_event_owned(client.clone(), url.clone(), secret.clone(), event_body(id))))
        .collect();
    requests.insert(20, tokio::spawn(post_event_owned(client.clone(), url.clone(), secret.clone(), bad)));
    let statuses: Vec<u16> = futures_util::future::join_all(requests).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(statuses[20], 400, "the event that cannot be stored is refused");
    statuses
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 20)
        .for_each(|(i, status)| assert_eq!(*status, 200, "request {i}"));
    assert_eq!(stored_and_queued(&app, &good).await, (40, 40));
    assert_eq!(stored_and_queued(&app, &["evt_nul".to_owned()]).await, (0, 0));
}

async fn post_event_owned(client: reqwest::Client, url: String, secret: String, body: String) -> u16 {
    post_event(&client, &url, &secret, body).await.unwrap()
}

#[tokio::test]
async fn a_resync_brings_what_the_deliveries_lost_exactly_once() {
    let app = spawn_app().await;
    // The buyer pays while every delivery from Stripe is lost on the way.
    app.sandbox.set_delivery_mode(stripe_sandbox::DeliveryMode::Lost);
    let token = crate::checkout::won_lot(&app, 12_500).await;
    let (status, body) = crate::checkout::start(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = crate::billing::pay(body["url"].as_str().unwrap(), "4242424242424242").await;
    assert_eq!(status, 303);
    app.sandbox.settle_deliveries().await;
    let lost = app.sandbox.deliveries();
    assert!(lost.iter().any(|d| d.event_type == "checkout.session.completed"), "{lost:?}");
    assert!(lost.iter().all(|d| d.status.is_none()), "nothing was delivered");
    app.wait_for_jobs().await;
    assert_eq!(crate::checkout::bid(&app).await.0, "awaiting_payment", "Remit has not heard of the payment");

    // Deliveries work again, but Stripe does not send again what it lost: a process that starts
    // resyncs (its worker queues the resync, as every worker does at start).
    app.sandbox.set_delivery_mode(stripe_sandbox::DeliveryMode::Normal);
    let second = SecondProcess::start_with(&app, &[("STRIPE_RESYNC_MINUTES", "15")]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while crate::checkout::bid(&app).await.0 != "paid" {
        assert!(tokio::time::Instant::now() < deadline, "the resync did not bring the payment");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.wait_for_jobs().await;
    let once = async || -> (i64, i64, i64, i64) {
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM receipts),
                    (SELECT count(*) FROM emails WHERE to_address = 'buyer@example.com' AND subject LIKE 'Your receipt%'),
                    (SELECT count(*) FROM stripe_events)",
        )
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
    };
    let (orders, receipts, emails, events) = once().await;
    assert_eq!((orders, receipts, emails), (1, 1, 1), "one order, receipt and receipt email");
    let cursors: i64 = app.count("stripe_event_cursors").await;
    assert!(cursors >= 2, "the platform and the tenant's account were listed");

    // Another resync finds everything stored: nothing new, nothing twice.
    let again = domain::stripe_webhooks::resync::resync(&app.services).await.unwrap();
    assert_eq!(again.stored, 0, "{again:?}");
    assert!(again.listed > 0 && again.accounts >= 2, "{again:?}");
    app.wait_for_jobs().await;
    assert_eq!(once().await, (1, 1, 1, events));
    second.kill().await;
}

#[tokio::test]
async fn old_months_of_events_are_dropped_by_the_schedule_once_applied() {
    let app = spawn_app().await;
    let pool = app.services.pool.clone();
    let exists = async |table: &str| -> bool {
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(&pool).await.unwrap()
    };
    // Two months long past the retention (90 days), one with every event applied and one holding
    // an event that was given up; an applied event so old no month holds it; and next month but
    // one missing.
    let now = chrono::Utc::now();
    let month = |days_ago: i64| domain::stripe_webhooks::partitions::month_of(now - chrono::Duration::days(days_ago));
    let (applied_month, kept_month) = (month(200), month(250));
    for first in [applied_month, kept_month] {
        let next = first.checked_add_months(chrono::Months::new(1)).unwrap();
        let name = domain::stripe_webhooks::partitions::partition_name(first);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {name} PARTITION OF stripe_events FOR VALUES FROM ('{first}') TO ('{next}')"
        )))
        .execute(&pool)
        .await
        .unwrap();
    }
    let insert = async |id: &str, created: chrono::DateTime<chrono::Utc>, applied: bool| {
        sqlx::query(
            "INSERT INTO stripe_events (id, type, livemode, created, payload, applied_at, next_attempt_at, last_error)
             VALUES ($1, 'customer.created', false, $2, '{}', CASE WHEN $3 THEN now() END, NULL,
                     CASE WHEN $3 THEN NULL ELSE 'given up' END)",
        )
        .bind(id)
        .bind(created)
        .bind(applied)
        .execute(&pool)
        .await
        .unwrap();
    };
    let day = |d: chrono::NaiveDate| d.and_hms_opt(12, 0, 0).unwrap().and_utc();
    insert("evt_old_applied", day(applied_month), true).await;
    insert("evt_old_given_up", day(kept_month), false).await;
    insert("evt_ancient", now - chrono::Duration::days(800), true).await;
    let ahead = domain::stripe_webhooks::partitions::months_to_make(now).pop().unwrap();
    let ahead = domain::stripe_webhooks::partitions::partition_name(ahead);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {ahead}"))).execute(&pool).await.unwrap();

    // The upkeep last ran a day ago: a worker that starts now runs it.
    schedule_last_ran(&app, "keep_stripe_event_partitions", "1 day").await;
    let second = SecondProcess::start(&app).await;
    let applied_table = domain::stripe_webhooks::partitions::partition_name(applied_month);
    wait_until("the applied month to be dropped", async || !exists(&applied_table).await).await;
    wait_until("next months' partition to be made", async || exists(&ahead).await).await;
    let kept = domain::stripe_webhooks::partitions::partition_name(kept_month);
    assert!(exists(&kept).await, "a month with an unapplied event is kept");
    // The ancient applied event leaves the default partition too.
    wait_until("only the given-up event to be left", async || {
        let left: Vec<String> =
            sqlx::query_scalar("SELECT id FROM stripe_events ORDER BY id").fetch_all(&pool).await.unwrap();
        left == ["evt_old_given_up"]
    })
    .await;
    second.kill().await;
}

#[tokio::test]
async fn the_partitioning_migration_keeps_an_existing_databases_events() {
    let db = format!("remit_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    <sqlx::Postgres as sqlx::migrate::MigrateDatabase>::create_database(&url).await.unwrap();
    let pool = domain::db::connect(&url).await.unwrap();
    // The database as the previous release left it: one event applied, one still to apply.
    let queue = domain::db::MIGRATOR.iter().find(|m| m.description.contains("stripe event queue")).unwrap().version;
    domain::db::MIGRATOR.run_to(queue - 1, &pool).await.unwrap();
    for (id, applied) in [("evt_before_applied", true), ("evt_before_waiting", false)] {
        sqlx::query(
            "INSERT INTO stripe_events (id, type, livemode, created, payload, applied_at)
             VALUES ($1, 'customer.created', false, now() - interval '3 days', '{\"id\": 1}', CASE WHEN $2 THEN now() END)",
        )
        .bind(id)
        .bind(applied)
        .execute(&pool)
        .await
        .unwrap();
    }
    domain::db::MIGRATOR.run(&pool).await.unwrap();
    let rows: Vec<(String, bool, bool, serde_json::Value)> = sqlx::query_as(
        "SELECT id, applied_at IS NOT NULL, coalesce(next_attempt_at <= now(), false), payload FROM stripe_events ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("evt_before_applied".to_owned(), true, false, serde_json::json!({ "id": 1 })),
            ("evt_before_waiting".to_owned(), false, true, serde_json::json!({ "id": 1 })),
        ],
        "both kept; the unapplied one is due for the applier"
    );
    let partitioned: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'stripe_events'::regclass)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(partitioned);
    pool.close().await;
    crate::helpers::drop_databases(&db).await;
}

/// Registers a win through `base` (a Remit process) with the API key; the answer's status.
async fn register_win(base: &str, key: &str, reference: &str, buyer: &str) -> u16 {
    let mut win = crate::checkout::winning(reference, 12_500);
    win["buyer_email"] = serde_json::json!(buyer);
    reqwest::Client::new()
        .post(format!("{base}/api/v1/winnings"))
        .bearer_auth(key)
        .json(&win)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn three_processes_on_one_database_apply_each_event_once_and_share_the_limits() {
    let limit = ("WINNINGS_PER_TENANT_HOUR", "10");
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![(limit.0, limit.1.to_owned())],
        ..Default::default()
    })
    .await;
    // Three buyers pay; Stripe's deliveries are lost, so the processes get the events below.
    app.sandbox.set_delivery_mode(stripe_sandbox::DeliveryMode::Lost);
    crate::tenant_stripe::connected(&app).await;
    let key = crate::checkout::api_key(&app).await;
    for i in 0..3 {
        let buyer = format!("buyer{i}@example.com");
        assert_eq!(register_win(&app.address, &key, &format!("AUC-3P-{i}"), &buyer).await, 201);
        let token = app.latest_link(&buyer, &app.url("/pay/")).await.rsplit('/').next().unwrap().to_owned();
        let (status, body) = crate::checkout::start(&app, &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(crate::billing::pay(body["url"].as_str().unwrap(), "4242424242424242").await.0, 303);
    }
    let processes = [SecondProcess::start_with(&app, &[limit]).await, SecondProcess::start_with(&app, &[limit]).await];
    let addresses = [app.address.clone(), processes[0].address.clone(), processes[1].address.clone()];

    // Every event Stripe made, posted to all three processes at once.
    let (status, listed) = app.stripe(reqwest::Method::GET, "/v1/events?limit=100", &[]).await;
    assert_eq!(status, 200);
    let events: Vec<String> = listed["data"].as_array().unwrap().iter().map(|e| e.to_string()).collect();
    assert!(events.len() >= 6, "{} events", events.len());
    let secret = app.services.stripe.mode(false).unwrap().keys().webhook_secrets[0].expose_secret().to_owned();
    let client = reqwest::Client::new();
    let posts = events.iter().flat_map(|event| {
        addresses.iter().map(|base| {
            let (url, client, secret, event) =
                (format!("{base}/payments/webhooks/stripe"), client.clone(), secret.clone(), event.clone());
            async move { post_event(&client, &url, &secret, event).await }
        })
    });
    let statuses = futures_util::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| matches!(s, Ok(200))), "{statuses:?}");

    // Meanwhile the tenant's system registers twelve wins through all three: the hourly limit of
    // ten (three used) holds across them.
    let wins = (0..12).map(|i| {
        let base = addresses[i % 3].clone();
        let key = key.clone();
        async move { register_win(&base, &key, &format!("AUC-LIMIT-{i}"), "limit@example.com").await }
    });
    let mut answers = futures_util::future::join_all(wins).await;
    answers.sort_unstable();
    assert_eq!(answers, [[201; 7].as_slice(), [429; 5].as_slice()].concat(), "seven taken, five refused");

    // Each payment took effect once, whichever process applied its events.
    wait_until("the three payments", async || {
        let paid: i64 = sqlx::query_scalar("SELECT count(*) FROM winning_bids WHERE status = 'paid'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
        paid == 3
    })
    .await;
    app.wait_for_jobs().await;
    let (stored, applied, orders, receipts, emails): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM stripe_events), (SELECT count(applied_at) FROM stripe_events),
                (SELECT count(*) FROM orders), (SELECT count(*) FROM receipts),
                (SELECT count(*) FROM emails WHERE subject LIKE 'Your receipt%')",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!((stored, applied), (events.len() as i64, events.len() as i64), "each event stored and applied once");
    assert_eq!((orders, receipts, emails), (3, 3, 3));
    for process in processes {
        process.kill().await;
    }
}
