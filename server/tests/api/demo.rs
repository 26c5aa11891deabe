//! `make run` as a newcomer meets it: the real binary in development mode, with its Stripe
//! sandbox kept in PostgreSQL. A fresh database gets Northwind's month through Remit's own
//! flows; after a hard stop the restarted process adds nothing twice, every Stripe id still
//! works, events emitted before the stop are delivered after it, the subscription renews on
//! Stripe's clock and a new payment goes through.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use domain::{config::Settings, crypto, seed};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TEST_KEY, drop_databases};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A development server, as `make run` starts it.
struct DevServer {
    child: tokio::process::Child,
    output: PathBuf,
}

struct Setup {
    db: String,
    port: u16,
    sandbox_port: u16,
    dir: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let db = format!("remit_test_{}", Uuid::new_v4().simple());
        let dir = std::env::temp_dir().join(&db);
        std::fs::create_dir_all(&dir).unwrap();
        Self { db, port: free_port(), sandbox_port: free_port(), dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn sandbox_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.sandbox_port)
    }

    fn settings(&self) -> Settings {
        Settings::from_lookup(|name| (name == "REMIT_ENCRYPTION_KEY").then(|| TEST_KEY.to_owned())).unwrap()
    }

    /// The sandbox's test secret key: derived from the installation's key, as `make run` prints it.
    fn stripe_key(&self) -> String {
        format!("sk_test_{}", crypto::derived(&self.settings().encryption_key, "remit stripe sandbox secret key"))
    }

    async fn start(&self, run: u32) -> DevServer {
        let output = self.dir.join(format!("run-{run}.log"));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_remit"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(&self.dir)
            .env("APP_ENV", "development")
            .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:5432/{}", self.db))
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .env("PUBLIC_BASE_URL", format!("http://127.0.0.1:{}", self.port))
            .env("STRIPE_SANDBOX_ADDR", format!("127.0.0.1:{}", self.sandbox_port))
            .env("REMIT_ENCRYPTION_KEY", TEST_KEY)
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&output).unwrap())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let server = DevServer { child, output };
        server.wait_for_line("The demo month is ready", Duration::from_secs(300)).await;
        server
    }

    async fn stripe(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = reqwest::Client::new()
            .request(method, self.sandbox_url(path))
            .bearer_auth(self.stripe_key())
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or_default())
    }

    async fn sandbox_control(&self, path: &str, body: Value) {
        let status = reqwest::Client::new()
            .post(self.sandbox_url(path))
            .bearer_auth(self.stripe_key())
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{path}");
    }

    /// The buyer of the lot behind `link` pays it on Stripe's hosted page.
    async fn buyer_pays(&self, link: &str) {
        let token = link.rsplit('/').next().unwrap();
        let created: Value = reqwest::Client::new()
            .post(self.url("/payments/checkout/create"))
            .header("Origin", self.url(""))
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let checkout = created["url"].as_str().unwrap_or_else(|| panic!("no checkout: {created}"));
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let paid = browser
            .post(checkout)
            .form(&[("card_number", "4242424242424242"), ("expiry", "12 / 34"), ("cvc", "123"), ("name", "Dana")])
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status(), 303, "the card is taken");
        let next = paid.headers()["location"].to_str().unwrap().to_owned();
        if next.starts_with("/3ds/") {
            // Above $500 the bank asks for 3D Secure; the buyer approves.
            let approved = browser.post(self.sandbox_url(&next)).form(&[("decision", "approve")]).send().await.unwrap();
            assert_eq!(approved.status(), 303, "authenticated");
        }
    }
}

impl DevServer {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    async fn wait_for_line(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let output = self.output();
            if let Some(line) = output.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            assert!(Instant::now() < deadline, "no {needle:?} within {within:?}:\n{output}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The payment link the server printed for a lot awaiting payment.
    async fn awaiting_link(&self) -> String {
        let line = self.wait_for_line("A won lot awaiting payment:", Duration::from_secs(10)).await;
        line.rsplit(' ').next().unwrap().to_owned()
    }

    /// Stops the process at once, as a crash or `kill -9` would.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

async fn scalar(pool: &PgPool, query: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_one(pool).await.unwrap()
}

async fn wait_until(pool: &PgPool, query: &str, wanted: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = scalar(pool, query).await;
        if got == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "{query}: {got}, wanted {wanted}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What must not change when the demo runs again.
async fn tally(pool: &PgPool) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in ["plans", "tenant_stripe_accounts", "stripe_customers", "subscriptions", "consultant_accounts"] {
        counts.push(scalar(pool, &format!("SELECT count(*) FROM {table}")).await);
    }
    counts.push(scalar(pool, "SELECT count(*) FROM winning_bids WHERE reference LIKE 'DEMO-%'").await);
    counts.push(scalar(pool, "SELECT count(*) FROM orders").await);
    counts.push(scalar(pool, "SELECT count(*) FROM fee_requests").await);
    counts
}

#[tokio::test]
async fn make_run_shows_a_month_and_a_restart_keeps_it_whole() {
    let setup = Setup::new();
    let server = setup.start(1).await;
    let pool = PgPool::connect(&format!("postgres://postgres@127.0.0.1:5432/{}", setup.db)).await.unwrap();

    // The month: plans, the connection, the subscription a month old, payouts, thirty lots.
    assert_eq!(scalar(&pool, "SELECT count(*) FROM plans WHERE active").await, 2);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM tenant_stripe_accounts WHERE charges_enabled").await, 1);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM consultant_accounts WHERE payouts_enabled").await, 1);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM subscriptions WHERE status = 'active'").await, 1);
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM invoices WHERE status = 'paid' AND stripe_created_at < now() - interval '25 days'"
        )
        .await,
        1,
        "the consultant subscribed a month ago, on the test clock"
    );
    assert_eq!(scalar(&pool, "SELECT count(*) FROM invoices WHERE status = 'paid'").await, 2, "and renewed since");
    let by_status: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM winning_bids WHERE reference LIKE 'DEMO-%' GROUP BY status ORDER BY status",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let statuses: Vec<(&str, i64)> = by_status.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    assert_eq!(statuses, [("awaiting_payment", 2), ("cancelled", 1), ("expired", 1), ("failed", 1), ("paid", 25)]);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM orders WHERE status = 'disputed'").await, 1);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM orders WHERE status = 'partially_refunded'").await, 1);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM credit_notes").await, 1, "the refund's credit note");
    // The consultant's fees: Frankie paid the monthly retainer (its receipt too) and owes the tax return.
    let fees: Vec<(String, String)> =
        sqlx::query_as("SELECT description, status::text FROM fee_requests ORDER BY description")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        fees,
        [
            ("Financial planning retainer".to_owned(), "paid".to_owned()),
            ("Tax return 2026".to_owned(), "open".to_owned())
        ]
    );
    assert_eq!(scalar(&pool, "SELECT count(*) FROM receipts").await, 26, "25 lots and the retainer");
    let tenant: Uuid =
        sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'Northwind Auctions'").fetch_one(&pool).await.unwrap();
    let days = domain::dashboard::daily_outcomes(&pool, Some(tenant), None, false, 30).await.unwrap();
    let busy = days.iter().filter(|d| d.succeeded + d.failed > 0).count();
    assert!(busy >= 20, "the dashboard's chart has a month of payments: {busy} days");
    assert!(days.iter().any(|d| d.failed > 0) && days.iter().all(|d| d.failed < 4));
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT kind FROM security_events ORDER BY kind").fetch_all(&pool).await.unwrap();
    for kind in ["payment.disputed", "payment.failed_three_times", "payment.high_risk", "payment.blocked_by_radar"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    assert!(
        scalar(&pool, "SELECT count(DISTINCT created_at::date) FROM emails").await >= 20,
        "the outbox has the month's mail, each on its day"
    );

    // A payment whose events Stripe still holds when the process dies: the next process's
    // resync (run at its start) brings them, once; the held deliveries then find them stored.
    let link = server.awaiting_link().await;
    setup.sandbox_control("/_sandbox/webhooks/mode", json!({ "mode": "reverse" })).await;
    setup.buyer_pays(&link).await;
    let before = tally(&pool).await;
    assert_eq!(scalar(&pool, "SELECT count(*) FROM winning_bids WHERE status = 'awaiting_payment'").await, 2);
    server.kill().await;

    let server = setup.start(2).await;
    let orders = before[6];
    wait_until(&pool, "SELECT count(*) FROM orders", orders + 1).await;
    assert_eq!(tally(&pool).await[..5], before[..5], "a second start adds nothing twice");
    setup.sandbox_control("/_sandbox/webhooks/flush", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while domain::worker::backlog(&pool).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the held deliveries were not taken in");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(scalar(&pool, "SELECT count(*) FROM orders").await, orders + 1, "the payment counted once");

    // Every Stripe id Remit stored still works.
    let account: String =
        sqlx::query_scalar("SELECT stripe_account_id FROM tenant_stripe_accounts").fetch_one(&pool).await.unwrap();
    assert_eq!(setup.stripe(reqwest::Method::GET, &format!("/v1/accounts/{account}"), &[]).await.0, 200);
    let prices: Vec<String> = sqlx::query_scalar("SELECT stripe_price_id FROM plans").fetch_all(&pool).await.unwrap();
    for price in prices {
        assert_eq!(setup.stripe(reqwest::Method::GET, &format!("/v1/prices/{price}"), &[]).await.0, 200);
    }

    // The subscription renews on Stripe's clock: the consultant's test clock, a month on.
    let customer: String =
        sqlx::query_scalar("SELECT stripe_customer_id FROM stripe_customers").fetch_one(&pool).await.unwrap();
    let (_, customer) = setup.stripe(reqwest::Method::GET, &format!("/v1/customers/{customer}"), &[]).await;
    let clock = customer["test_clock"].as_str().expect("the demo's customer lives on a test clock").to_owned();
    let (_, current) = setup.stripe(reqwest::Method::GET, &format!("/v1/test_helpers/test_clocks/{clock}"), &[]).await;
    let month_on = (current["frozen_time"].as_i64().unwrap() + 31 * 86_400).to_string();
    let (status, _) = setup
        .stripe(
            reqwest::Method::POST,
            &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
            &[("frozen_time", &month_on)],
        )
        .await;
    assert_eq!(status, 200);
    wait_until(&pool, "SELECT count(*) FROM invoices WHERE status = 'paid'", 3).await;

    // And a new payment goes through.
    setup.sandbox_control("/_sandbox/webhooks/mode", json!({ "mode": "normal" })).await;
    let paid_before = scalar(&pool, "SELECT count(*) FROM orders").await;
    let token = seed::demo_lot_token(&setup.settings().encryption_key, "DEMO-29");
    setup.buyer_pays(&setup.url(&format!("/pay/{token}"))).await;
    wait_until(&pool, "SELECT count(*) FROM orders", paid_before + 1).await;
    server.kill().await;

    pool.close().await;
    drop_databases(&setup.db).await;
    let _ = std::fs::remove_dir_all(&setup.dir);
}
