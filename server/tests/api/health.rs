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
