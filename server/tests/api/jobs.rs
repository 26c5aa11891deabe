use std::time::Duration;

use domain::mail::{self, OutgoingEmail};

use crate::helpers::{Options, SecondProcess, spawn_app, spawn_app_with};

fn email(i: usize) -> OutgoingEmail {
    OutgoingEmail {
        tenant_id: None,
        to: format!("person{i}@example.com"),
        subject: format!("Message {i}"),
        text_body: "Hello".into(),
        attachments: vec![],
        links: None,
    }
}

#[tokio::test]
async fn with_two_server_processes_each_job_runs_exactly_once() {
    let app = spawn_app().await;
    let _second = SecondProcess::start(&app).await;

    let mut tx = app.services.pool.begin().await.unwrap();
    for i in 0..60 {
        mail::enqueue(&mut tx, email(i)).await.unwrap();
    }
    tx.commit().await.unwrap();
    app.wait_for_jobs().await;

    let runs: Vec<(String, i32)> =
        sqlx::query_as("SELECT status, attempts FROM emails").fetch_all(&app.services.pool).await.unwrap();
    assert_eq!(runs.len(), 60);
    for (status, attempts) in runs {
        assert_eq!(status, "sent");
        assert_eq!(attempts, 1, "a job ran more than once");
    }
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_never_exists() {
    let app = spawn_app().await;
    let mut tx = app.services.pool.begin().await.unwrap();
    mail::enqueue(&mut tx, email(1)).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(app.count("emails").await, 0);
    assert_eq!(app.count("graphile_worker.jobs").await, 0);
}

#[tokio::test]
async fn a_failing_job_is_retried_later_with_backoff() {
    // Nothing listens on this port, so every SMTP delivery fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app =
        spawn_app_with(Options { smtp_url: Some(format!("smtp://127.0.0.1:{closed}")), ..Options::default() }).await;
    let mut tx = app.services.pool.begin().await.unwrap();
    let id = mail::enqueue(&mut tx, email(1)).await.unwrap();
    tx.commit().await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (attempts, run_at_in_future, last_error): (i16, bool, Option<String>) = loop {
        let row: (i16, bool, Option<String>) =
            sqlx::query_as("SELECT attempts, run_at > now(), last_error FROM graphile_worker.jobs")
                .fetch_one(&app.services.pool)
                .await
                .unwrap();
        if row.0 >= 1 && row.2.is_some() {
            break row;
        }
        assert!(tokio::time::Instant::now() < deadline, "the job never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attempts, 1);
    assert!(run_at_in_future, "the retry must wait (backoff)");
    assert!(last_error.unwrap().contains("SMTP delivery"));
    let (status, email_attempts): (String, i32) = sqlx::query_as("SELECT status, attempts FROM emails WHERE id = $1")
        .bind(id)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!((status.as_str(), email_attempts), ("queued", 1));
}
