use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_answer_with_a_request_id() {
    let app = spawn_app().await;
    let client = app.client();
    for path in ["/healthz", "/readyz"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers().contains_key("x-request-id"), "{path} has no request id");
    }
}

#[tokio::test]
async fn readyz_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.services.pool.close().await;
    let response = app.client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(app.client().get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn log_lines_carry_the_request_id() {
    let app = spawn_app().await;
    let response = app.client().get(app.url("/readyz")).send().await.unwrap();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let logs = crate::helpers::captured_logs();
    assert!(
        logs.lines().any(|l| l.contains(&request_id) && l.contains("\"path\":\"/readyz\"")),
        "no log line names request {request_id}"
    );
}

#[tokio::test]
async fn the_database_is_created_and_migrated_at_start() {
    let app = spawn_app().await;
    let migrations: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations")).unwrap().count() as i64;
    assert_eq!(migrations, on_disk);
    let queue: bool = sqlx::query_scalar("SELECT to_regclass('graphile_worker.jobs') IS NOT NULL")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert!(queue, "the job queue schema is missing");
}

#[tokio::test]
async fn metrics_are_served_to_the_holder_of_the_token_only() {
    let token = "metrics-token-for-this-test-0123456789";
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![("METRICS_TOKEN", token.to_owned())],
        ..Default::default()
    })
    .await;
    // Traffic to count: an event taken in, one refused, and a page.
    let body = r#"{"id":"evt_metrics","object":"event","type":"customer.created","created":1764547200,"livemode":false,"account":null,"api_version":null,"data":{"object":{}}}"#;
    assert_eq!(app.post_stripe_event(body).await, 200);
    let forged =
        app.client().post(app.url("/payments/webhooks/stripe")).header("stripe-signature", "t=1,v1=00").body(body);
    assert_eq!(forged.send().await.unwrap().status(), 400);
    let mut conn = app.services.pool.acquire().await.unwrap();
    domain::queue::enqueue(&mut conn, domain::housekeeping::PurgeExpired).await.unwrap();
    drop(conn);

    let scrape = |auth: Option<String>| {
        let mut request = app.client().get(app.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    assert_eq!(scrape(None).await.unwrap().status(), 401);
    assert_eq!(scrape(Some("Bearer not-the-token".into())).await.unwrap().status(), 401);
    let response = scrape(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let series = [
        r#"remit_http_requests_total{route="/payments/webhooks/stripe",method="POST",status="200"}"#,
        r#"remit_http_requests_total{route="/payments/webhooks/stripe",method="POST",status="400"}"#,
        r#"remit_http_request_duration_seconds_bucket{route="/payments/webhooks/stripe",method="POST",le="#,
        r#"remit_stripe_intake_events_total{outcome="accepted"}"#,
        r#"remit_stripe_intake_events_total{outcome="refused"}"#,
        "remit_stripe_events_applied_total",
        "remit_stripe_events_due",
        r#"remit_db_pool_connections{state="idle"}"#,
        r#"remit_jobs_total{task="purge_expired",outcome="completed"}"#,
        r#"remit_job_latency_seconds_bucket{task="purge_expired""#,
    ];
    // The event is applied and the job run in the background: scrape until they are counted.
    let mut text = String::new();
    crate::helpers::wait_until("every series to be scraped", async || {
        text = scrape(Some(format!("Bearer {token}"))).await.unwrap().text().await.unwrap();
        series.iter().all(|s| text.contains(s))
    })
    .await;
    // Routes are counted by their pattern, never by a path that carries an id or token.
    assert!(!text.contains("evt_metrics") && !text.contains(token), "{text}");
}
