//! `spawn_app`: a Remit server on a fresh database and port 0, as in zero2prod.

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use domain::{
    Services,
    auth::{
        Role,
        session::{self, Client},
    },
    config::{LogFormat, Settings},
    seed,
};
use reqwest::header;
use secrecy::ExposeSecret as _;
use server::{Application, telemetry};
use uuid::Uuid;

use crate::mailbox::Mailbox;

pub const MAINTENANCE_DB: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Every log line of every test in this binary, at trace level, so tests can assert that no
/// secret was ever logged.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<LogCapture> = OnceLock::new();

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get().expect("logging initialised").0.lock().unwrap()).into_owned()
}

fn init_logging() {
    LOGS.get_or_init(|| {
        let capture = LogCapture::default();
        let writer = capture.clone();
        // The test's own HTTP client (cookie_store, reqwest) logs the cookies it keeps; that is
        // the test, not Remit, so it stays at info.
        telemetry::init(
            LogFormat::Json,
            Some("trace,hyper=debug,h2=info,tower=info,cookie_store=info,reqwest=info"),
            move || writer.clone(),
        );
        capture
    });
}

pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub password: String,
}

pub struct TestApp {
    pub address: String,
    pub services: Services,
    pub sandbox: stripe_sandbox::Sandbox,
    pub db_name: String,
    pub users: HashMap<Role, TestUser>,
    /// The mail server this app delivers to: what each person received.
    pub mailbox: Mailbox,
}

pub struct Options {
    /// Another mail server than the test's own mailbox.
    pub smtp_url: Option<String>,
    pub public_base_url_scheme: &'static str,
    /// `Some(0)` makes the in-process server web-only, leaving its jobs to other processes.
    pub job_workers: Option<usize>,
    /// Further settings, as environment variables (e.g. `APP_ENV`, `CLIENT_IP_HEADER`).
    pub env: Vec<(&'static str, String)>,
    /// A separately started Stripe sandbox the settings point at (with `STRIPE_*` keys in `env`),
    /// instead of the one Remit starts in-process.
    pub stripe: Option<stripe_sandbox::Sandbox>,
}

impl Default for Options {
    fn default() -> Self {
        Self { smtp_url: None, public_base_url_scheme: "http", job_workers: None, env: vec![], stripe: None }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// An app in development mode (`APP_ENV=development`): tenants' webhooks may target loopback
/// receivers like the tests' own.
pub async fn spawn_dev_app() -> TestApp {
    spawn_app_with(Options { env: vec![("APP_ENV", "development".into())], ..Options::default() }).await
}

pub fn settings_for(db_name: &str, port: u16, options: &Options) -> Settings {
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", format!("postgres://postgres@127.0.0.1:5432/{db_name}")),
        ("PUBLIC_BASE_URL", format!("{}://127.0.0.1:{port}", options.public_base_url_scheme)),
        ("REMIT_ENCRYPTION_KEY", TEST_KEY.to_owned()),
        ("MAIL_FROM", "Remit Tests <remit@tests.example>".to_owned()),
        // Each test gets its own Stripe sandbox.
        ("STRIPE_SANDBOX_ADDR", "127.0.0.1:0".to_owned()),
        // Tests make their own data; the demo month is tested on its own.
        ("DEMO_DATA", "accounts".to_owned()),
        // A resync would bring events a test holds back on purpose; the resync is tested on its own.
        ("STRIPE_RESYNC_MINUTES", "0".to_owned()),
    ]);
    if let Some(smtp) = &options.smtp_url {
        vars.insert("SMTP_URL", smtp.clone());
    }
    if let Some(workers) = options.job_workers {
        vars.insert("JOB_WORKERS", workers.to_string());
    }
    for (name, value) in &options.env {
        vars.insert(name, value.clone());
    }
    Settings::from_lookup(|name| vars.get(name).cloned()).expect("test settings are valid")
}

pub async fn spawn_app_with(mut options: Options) -> TestApp {
    init_logging();
    let db_name = format!("remit_test_{}", Uuid::new_v4().simple());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailbox = Mailbox::start().await;
    options.smtp_url.get_or_insert_with(|| mailbox.url());
    let settings = settings_for(&db_name, port, &options);
    let app = Application::build_on(listener, settings).await.expect("application builds");
    let services = app.services().clone();
    let sandbox = app.sandbox().cloned().or(options.stripe).expect("tests run against a sandbox");
    tokio::spawn(app.run_until(std::future::pending()));

    seed::ensure_demo_data(&services).await.expect("demo data");
    let mut users = HashMap::new();
    for demo in &seed::DEMO_USERS {
        let id = sqlx::query_scalar!("SELECT id FROM users WHERE email = $1", demo.email)
            .fetch_one(&services.pool)
            .await
            .unwrap();
        let password = seed::demo_password(&services, demo.email).expose_secret().to_owned();
        users.insert(demo.role, TestUser { id, email: demo.email.to_owned(), password });
    }
    TestApp { address: format!("http://127.0.0.1:{port}"), services, sandbox, db_name, users, mailbox }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Leave the machine as we found it: drop the per-test database (FORCE ends the
        // connections the stopped server still holds).
        let db = self.db_name.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(drop_databases(&db));
        })
        .join()
        .ok();
    }
}

/// Drops a test's database and, for a development-mode app, the one its Stripe sandbox kept its
/// state in (FORCE ends the connections a stopped server still holds).
pub async fn drop_databases(db: &str) {
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(MAINTENANCE_DB).await {
        for name in [db.to_owned(), format!("{db}_stripe_sandbox")] {
            let drop = sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            let _ = sqlx::Executor::execute(&mut conn, drop).await;
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn user(&self, role: Role) -> &TestUser {
        &self.users[&role]
    }

    /// A browser-like client: keeps cookies, sends Remit's own Origin, does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::ORIGIN, self.address.parse().unwrap());
        reqwest::Client::builder()
            .cookie_store(true)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Calls a server function the way the hydrated app does.
    pub async fn rpc(&self, client: &reqwest::Client, name: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client
            .post(self.url(&format!("/rpc/{name}")))
            .header(header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A sign-in attempt with a fresh client, from `address` when the app trusts `X-Forwarded-For`:
    /// its status and body.
    pub async fn attempt_sign_in(&self, email: &str, password: &str, address: Option<&str>) -> (u16, String) {
        let mut request = reqwest::Client::new()
            .post(self.url("/rpc/sign_in"))
            .header(header::ORIGIN, &self.address)
            .header(header::ACCEPT, "application/json")
            .form(&[("email", email), ("password", password)]);
        if let Some(address) = address {
            request = request.header("x-forwarded-for", address);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn sign_in(&self, client: &reqwest::Client, role: Role) -> reqwest::Response {
        let user = self.user(role);
        self.rpc(client, "sign_in", &[("email", &user.email), ("password", &user.password)]).await
    }

    /// A page as `role` sees it (or without a session): its status and HTML.
    pub async fn page(&self, role: Option<Role>, path: &str) -> (u16, String) {
        let mut request = reqwest::Client::new().get(self.url(path)).header(header::ACCEPT, "text/html");
        if let Some(role) = role {
            request = request.header(header::COOKIE, self.session_cookie(role).await);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// A session for `role` without going through the password check (for authorisation tests).
    pub async fn session_cookie(&self, role: Role) -> String {
        let mut conn = self.services.pool.acquire().await.unwrap();
        let token = session::create(&mut conn, self.user(role).id, &Client::default()).await.unwrap();
        format!("{}={}", session::COOKIE_NAME, token.expose())
    }

    /// A JSON call to the REST API with a session cookie (and Remit's own Origin).
    pub async fn json_with_cookie(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .request(method, self.url(path))
            .header(header::COOKIE, cookie)
            .header(header::ORIGIN, &self.address)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// A call to the REST API with an API key.
    pub async fn json_with_key(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new().request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// Calls the sandbox's Stripe API directly with Remit's key: to see what Stripe holds, or to
    /// act as a tenant does in Stripe's dashboard. `form` is the body of a POST.
    pub async fn stripe(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .request(method.clone(), format!("{}{path}", self.sandbox.url()))
            .bearer_auth(self.stripe_key());
        if method == reqwest::Method::POST {
            request = request.form(form);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or_default())
    }

    /// One of the sandbox's test controls (`/_sandbox/…`), with a JSON body.
    pub async fn sandbox_control(&self, path: &str, body: serde_json::Value) -> u16 {
        reqwest::Client::new()
            .post(format!("{}{path}", self.sandbox.url()))
            .bearer_auth(self.stripe_key())
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The sandbox's secret key (Remit's test-mode key).
    pub fn stripe_key(&self) -> String {
        self.services
            .stripe
            .mode(false)
            .expect("tests have test-mode keys")
            .keys()
            .secret_key
            .expose_secret()
            .to_owned()
    }

    /// A session cookie for the owner of a second tenant, "Elsewhere Auctions".
    pub async fn other_tenant_owner_cookie(&self) -> String {
        domain::accounts::create_tenant(&self.services, "Elsewhere Auctions", "boss@elsewhere.example", "Boss")
            .await
            .unwrap();
        let boss: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'boss@elsewhere.example'")
            .fetch_one(&self.services.pool)
            .await
            .unwrap();
        let mut conn = self.services.pool.acquire().await.unwrap();
        let token = session::create(&mut conn, boss, &Client::default()).await.unwrap();
        format!("{}={}", session::COOKIE_NAME, token.expose())
    }

    /// The demo tenant.
    pub async fn tenant_id(&self) -> Uuid {
        sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'Northwind Auctions'")
            .fetch_one(&self.services.pool)
            .await
            .unwrap()
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.services.pool)
            .await
            .unwrap()
    }

    /// The link starting with `prefix` in the newest email to `to`, as the person received it
    /// (stored emails keep no one-time links).
    pub async fn latest_link(&self, to: &str, prefix: &str) -> String {
        self.latest_link_about(to, "", prefix).await
    }

    /// The link starting with `prefix` in the newest email to `to` whose subject contains `subject`.
    pub async fn latest_link_about(&self, to: &str, subject: &str, prefix: &str) -> String {
        let id: Uuid = sqlx::query_scalar(
            "SELECT id FROM emails WHERE to_address = $1 AND subject LIKE '%' || $2 || '%'
             ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(to)
        .bind(subject)
        .fetch_one(&self.services.pool)
        .await
        .unwrap_or_else(|e| panic!("no email to {to} about {subject:?}: {e}"));
        let received = self.mailbox.wait_for_email(id).await;
        received.link(prefix).unwrap_or_else(|| panic!("no {prefix} link in {}", received.text()))
    }

    /// Posts `body` to the Stripe webhook, signed as Stripe signs it now; the answer's status.
    pub async fn post_stripe_event(&self, body: &str) -> u16 {
        let secret = self.services.stripe.mode(false).unwrap().keys().webhook_secrets[0].expose_secret().to_owned();
        let header = stripe_sandbox::signature_header(&secret, body, chrono::Utc::now().timestamp());
        reqwest::Client::new()
            .post(self.url("/payments/webhooks/stripe"))
            .header("stripe-signature", header)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Waits until no job or Stripe event is due now (and fails after 30 s); work scheduled for
    /// later (a payment window's end, a retry) does not count.
    pub async fn wait_for_jobs(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let pending = domain::worker::backlog(&self.services.pool).await.unwrap();
            if pending == 0 {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{pending} jobs still pending after 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A Stripe test clock with one user's customer on it: the user's billing lives at the clock's
/// time, moved forward through Stripe's own API (async-stripe), as a developer would in test mode.
pub struct TestClock {
    pub id: stripe_shared::TestHelpersTestClockId,
    pub frozen_time: i64,
}

impl TestApp {
    /// Puts `role`'s user on a new test clock: their Stripe customer is made on it (with the
    /// email and `remit_user` metadata Remit adopts instead of making another).
    pub async fn test_clock(&self, role: Role) -> TestClock {
        use stripe_billing::test_helpers_test_clock::CreateTestHelpersTestClock;
        use stripe_core::customer::CreateCustomer;
        let client = self.services.stripe.platform().client();
        let clock = CreateTestHelpersTestClock::new(self.sandbox.now()).send(client).await.unwrap();
        let user = self.user(role);
        CreateCustomer::new()
            .email(user.email.as_str())
            .test_clock(clock.id.as_str())
            .metadata(std::collections::HashMap::from([("remit_user".to_owned(), user.id.to_string())]))
            .send(client)
            .await
            .unwrap();
        TestClock { id: clock.id, frozen_time: clock.frozen_time }
    }
}

impl TestClock {
    /// Moves the clock `seconds` forward and waits until Stripe has run what fell due.
    pub async fn advance(&mut self, app: &TestApp, seconds: i64) {
        use stripe_billing::test_helpers_test_clock::{AdvanceTestHelpersTestClock, RetrieveTestHelpersTestClock};
        let client = app.services.stripe.platform().client();
        let target = self.frozen_time + seconds;
        AdvanceTestHelpersTestClock::new(self.id.clone(), target).send(client).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let clock = RetrieveTestHelpersTestClock::new(self.id.clone()).send(client).await.unwrap();
            if clock.status == stripe_shared::TestHelpersTestClockStatus::Ready {
                assert_eq!(clock.frozen_time, target);
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the test clock is still {:?} after 30 s", clock.status);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.frozen_time = target;
    }
}

/// The body of a JSON error answer.
#[derive(Debug, serde::Deserialize)]
pub struct ErrorBody {
    pub status: u16,
    pub message: String,
    pub field: Option<String>,
}

/// A second Remit server process (the real binary) on the same database, talking to the same
/// Stripe (the first app's sandbox), as a second replica behind a load balancer would: it has
/// its own address but the site's public URL, so the two send Stripe the same requests (the
/// same return URLs under one idempotency key).
pub struct SecondProcess {
    pub address: String,
    child: tokio::process::Child,
}

impl SecondProcess {
    pub async fn start(app: &TestApp) -> Self {
        Self::start_with(app, &[]).await
    }

    /// A second process with extra environment (e.g. its own `SMTP_URL`, or `JOB_WORKERS`).
    pub async fn start_with(app: &TestApp, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let stripe = app.services.stripe.mode(false).unwrap().keys();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_remit"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:5432/{}", app.db_name))
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("PUBLIC_BASE_URL", &app.address)
            .env("REMIT_ENCRYPTION_KEY", TEST_KEY)
            .env("STRIPE_SECRET_KEY", stripe.secret_key.expose_secret())
            .env("SMTP_URL", app.mailbox.url())
            .env("STRIPE_PUBLISHABLE_KEY", &stripe.publishable_key)
            .env("STRIPE_WEBHOOK_SECRET", stripe.webhook_secrets[0].expose_secret())
            .env("STRIPE_CONNECT_CLIENT_ID", &stripe.connect_client_id)
            .env("STRIPE_API_BASE", app.sandbox.url())
            .env("RUST_LOG", "warn")
            .env("STRIPE_RESYNC_MINUTES", "0")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the remit binary starts");
        let address = format!("http://127.0.0.1:{port}");
        let health = format!("{address}/healthz");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while reqwest::get(&health).await.map(|r| r.status() != 200).unwrap_or(true) {
            assert!(tokio::time::Instant::now() < deadline, "the second process did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { address, child }
    }

    /// Ends the process at once (SIGKILL), as a crash or a lost machine would: nothing is
    /// finished or handed over.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("the process can be killed");
    }
}

/// Waits until `done` holds (checked every 100 ms), failing after 60 s with `what`.
/// Waits until the worker has registered the schedule `identifier`, then dates its last run
/// `ago` (an SQL interval, "1 day") back, so the next worker to start catches up on it as it
/// would after an outage.
pub async fn schedule_last_ran(app: &TestApp, identifier: &str, ago: &str) {
    let pool = &app.services.pool;
    wait_until("the schedule's registration", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM graphile_worker._private_known_crontabs WHERE identifier = $1",
        )
        .bind(identifier)
        .fetch_one(pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    sqlx::query(
        "UPDATE graphile_worker._private_known_crontabs SET last_execution = now() - $2::interval
         WHERE identifier = $1",
    )
    .bind(identifier)
    .bind(ago)
    .execute(pool)
    .await
    .unwrap();
}

pub async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
