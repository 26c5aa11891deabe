//! The real binary: configuration errors, and graceful shutdown on SIGTERM.

use std::{process::Stdio, time::Duration};

use crate::helpers::TEST_KEY;

#[tokio::test]
async fn a_missing_setting_stops_start_up_with_one_line_naming_it() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_remit"))
        .env_clear()
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("REMIT_ENCRYPTION_KEY is missing"), "{stderr}");

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_remit"))
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("REMIT_ENCRYPTION_KEY", TEST_KEY)
        .env("PUBLIC_BASE_URL", "ftp://example.com")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PUBLIC_BASE_URL is malformed"), "{stderr}");
}

/// SIGTERM as soon as the port accepts connections, while the process may still be migrating
/// its database and before it answers a health check: the stop is still graceful.
#[tokio::test]
async fn sigterm_stops_the_server_gracefully_even_while_it_starts() {
    let db = format!("remit_test_{}", uuid::Uuid::new_v4().simple());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_remit"))
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:5432/{db}"))
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("REMIT_ENCRYPTION_KEY", TEST_KEY)
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("stopped in time").unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).await.unwrap();
    assert!(stdout.contains("\"remit stopped\""), "no clean stop in the log");
    assert!(stdout.lines().all(|l| l.starts_with('{')), "LOG_FORMAT=json gives JSON lines");

    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(crate::helpers::MAINTENANCE_DB).await.unwrap();
    sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")))
        .await
        .unwrap();
}
