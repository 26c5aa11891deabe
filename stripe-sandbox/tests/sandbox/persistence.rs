//! A sandbox that keeps its state in PostgreSQL, driven as a process (the real binary) that is
//! killed and started again: ids stay valid, idempotency keys replay, the clock keeps its offset,
//! deliveries still to make are made, and a second sandbox on the same database is refused.

use std::{
    process::Stdio,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use axum::{Router, routing::post};
use serde_json::Value;

use crate::support::{Receiver, SECRET_KEY, WEBHOOK_SECRET};

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A sandbox process on a fixed port and database.
struct Process {
    child: tokio::process::Child,
    url: String,
}

impl Process {
    async fn start(port: u16, database: &str, receiver: &str) -> Self {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stripe-sandbox"))
            .args(["--port", &port.to_string(), "--secret-key", SECRET_KEY])
            .args(["--database-url", &format!("{SERVER}/{database}")])
            .args(["--webhook", &format!("{receiver}={WEBHOOK_SECRET}")])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the sandbox binary starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = reqwest::Client::new().get(format!("{url}/_sandbox/clock")).bearer_auth(SECRET_KEY).send().await;
            if up.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "the sandbox did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }

    /// Ends it at once, as a crash would.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request =
            reqwest::Client::new().request(method.clone(), format!("{}{path}", self.url)).bearer_auth(SECRET_KEY);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        if method != reqwest::Method::GET {
            request = request.form(form);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    let app = Router::new().route("/webhooks", post(crate::support::receive)).with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, url)
}

/// A database of its own for this test, dropped at the end.
struct Database(String);

impl Database {
    fn new() -> Self {
        Self(format!("sandbox_test_{}", uuid_like()))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.0.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::{Connection as _, Executor as _};
                if let Ok(mut conn) = sqlx::PgConnection::connect(&format!("{SERVER}/postgres")).await {
                    let _ =
                        conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
                }
            });
        })
        .join()
        .ok();
    }
}

fn uuid_like() -> String {
    use rand::Rng as _;
    let mut rng = rand::thread_rng();
    (0..16).map(|_| format!("{:x}", rng.gen_range(0..16u8))).collect()
}

#[tokio::test]
async fn a_restarted_sandbox_continues_where_it_stopped() {
    let database = Database::new();
    let (receiver, receiver_url) = receiver().await;
    let port = free_port();
    let first = Process::start(port, &database.0, &receiver_url).await;
    let (status, customer) =
        first.call(reqwest::Method::POST, "/v1/customers", &[("email", "ada@example.com")], Some("create-ada")).await;
    assert_eq!(status, 200, "{customer}");
    let advanced = reqwest::Client::new()
        .post(format!("{}/_sandbox/clock/advance", first.url))
        .bearer_auth(SECRET_KEY)
        .json(&serde_json::json!({ "seconds": 86_400 }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    // An event whose delivery fails now, so it is still to make when the sandbox dies.
    receiver.fail_first.store(1_000, Ordering::SeqCst);
    let (status, _) = first.call(reqwest::Method::POST, "/v1/customers", &[("email", "bob@example.com")], None).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.attempts.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the delivery was never attempted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().await;
    receiver.fail_first.store(0, Ordering::SeqCst);

    let second = Process::start(port, &database.0, &receiver_url).await;
    let id = customer["id"].as_str().unwrap();
    let (status, read) = second.call(reqwest::Method::GET, &format!("/v1/customers/{id}"), &[], None).await;
    assert_eq!((status, read["email"].as_str()), (200, Some("ada@example.com")), "ids stay valid");
    let (status, replay) =
        second.call(reqwest::Method::POST, "/v1/customers", &[("email", "ada@example.com")], Some("create-ada")).await;
    assert_eq!((status, &replay["id"]), (200, &customer["id"]), "idempotency keys replay across the restart");
    let now = reqwest::Client::new()
        .get(format!("{}/_sandbox/clock", second.url))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let drift = now["now"].as_i64().unwrap() - advanced["now"].as_i64().unwrap();
    assert!((0..600).contains(&drift), "the clock kept its offset: {drift} s");
    let created = receiver.wait_for("customer.created", 2).await;
    let emails: Vec<&str> = created.iter().filter_map(|e| e["data"]["object"]["email"].as_str()).collect();
    assert!(
        emails.contains(&"bob@example.com"),
        "the event emitted before the stop was delivered after it: {emails:?}"
    );
    second.kill().await;
}

#[tokio::test]
async fn a_second_sandbox_on_the_same_database_is_refused() {
    let database = Database::new();
    let (_, receiver_url) = receiver().await;
    let first = Process::start(free_port(), &database.0, &receiver_url).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_stripe-sandbox"))
        .args(["--port", &free_port().to_string(), "--secret-key", SECRET_KEY])
        .args(["--database-url", &format!("{SERVER}/{}", database.0)])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("another Stripe sandbox is already running"), "{message}");
    first.kill().await;
}
