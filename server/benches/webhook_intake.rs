//! Webhook intake throughput, against PostgreSQL running the same SQL through pgbench.
//!
//! Signed `checkout.session.completed` events (one in ten a repeat of an earlier one) are posted
//! to a release `remit` process by 32 concurrent connections for `BENCH_SECONDS` (15); pgbench
//! runs the minimal transaction one event could be stored with (BEGIN, the insert with
//! `ON CONFLICT DO NOTHING`, one UPDATE of that row, COMMIT) with 32 clients for as long, before
//! and after, on a database of the same schema. The intake (whose stored row is the event's
//! place in the applier's queue) must reach 1.2 times the better pgbench run, which only sharing commits between requests
//! can do, with a p99 latency of at most 25 ms, every request answered 2xx, repeats answered as
//! duplicates, and the web process's peak RSS at most 100 MB; once a worker process has applied
//! everything, every distinct event must have been applied exactly once (one order and one
//! receipt per paid lot).
//!
//! The intake process runs no jobs (`JOB_WORKERS=0`, as a web-only replica would), so what is
//! measured is the intake; the worker's catch-up rate is reported beside it.
//!
//! `make bench` runs it: `cargo bench -p server --bench webhook_intake`.

mod support;

use std::{
    collections::HashMap,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use domain::{
    Services,
    checkout::{self, NewWinning},
    config::Settings,
    stripe::StripeConfig,
};
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::Sha256;
use support::{SECRET_KEY, WEBHOOK_SECRET, free_port, peak_rss_mb, pg_server, remit_env};

const CONNECTIONS: usize = 32;
const PAID_LOTS: usize = 400;
const TARGET_RATIO: f64 = 1.2;
const TARGET_P99_MS: f64 = 25.0;
const TARGET_RSS_MB: f64 = 100.0;
/// Events the worker process applies at once (its `JOB_WORKERS`).
const WORKER_CONCURRENCY: usize = 8;
const API_VERSION: &str = "2025-09-30.clover";

/// A release `remit` process; `workers` jobs at a time (0: web only).
async fn start_remit(db: &str, sandbox: &str, workers: usize) -> (String, tokio::process::Child) {
    let port = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_remit"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(remit_env(db, sandbox, port))
        .env("JOB_WORKERS", workers.to_string())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the remit binary starts");
    let address = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{address}/healthz")).await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "remit did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (address, child)
}

async fn psql(sql: &str) {
    let status = tokio::process::Command::new("psql")
        .arg(format!("{}/postgres", pg_server()))
        .args(["-qc", sql])
        .stdout(Stdio::null())
        .status()
        .await
        .expect("psql runs");
    assert!(status.success(), "psql failed: {sql}");
}

/// The demo-free fixture: a tenant connected to a Stripe account, and paid lots whose Checkout
/// Sessions (as Stripe returns them) the events will carry.
async fn paid_sessions(services: &Services, sandbox: &str) -> Vec<String> {
    let tenant = domain::accounts::create_tenant(services, "Bench Auctions", "owner@bench.example", "Bench Owner")
        .await
        .expect("the tenant");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let account: Value = http
        .post(format!("{sandbox}/v1/accounts"))
        .bearer_auth(SECRET_KEY)
        .form(&[("type", "standard"), ("email", "owner@bench.example")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO tenant_stripe_accounts (tenant_id, stripe_account_id, charges_enabled) VALUES ($1, $2, true)",
    )
    .bind(tenant)
    .bind(account["id"].as_str().expect("an account id"))
    .execute(&services.pool)
    .await
    .unwrap();
    let mut sessions = Vec::with_capacity(PAID_LOTS);
    for i in 0..PAID_LOTS {
        let buyer = format!("buyer{i}@bench.example");
        let lot = NewWinning {
            reference: format!("BENCH-{i}"),
            auction: "Benchmark sale".into(),
            lot: i.to_string(),
            description: "A lot".into(),
            buyer_email: buyer.clone(),
            amount: 12_500,
            currency: "usd".into(),
            runners_up: vec![],
        };
        checkout::register(services, tenant, false, None, &lot).await.expect("a win");
        // Stored mail keeps no one-time links; the development outbox opens them.
        let email: uuid::Uuid = sqlx::query_scalar("SELECT id FROM emails WHERE to_address = $1")
            .bind(&buyer)
            .fetch_one(&services.pool)
            .await
            .unwrap();
        let body = domain::mail::get(&services.pool, &services.mailer, &services.settings.encryption_key, email)
            .await
            .expect("the payment link email")
            .text_body;
        let token = body.split("/pay/").nth(1).expect("a payment link").split_whitespace().next().unwrap().to_owned();
        let url = checkout::start(services, &token, None).await.expect("a Checkout page");
        let paid = http
            .post(&url)
            .form(&[
                ("email", buyer.as_str()),
                ("card_number", "4242424242424242"),
                ("expiry", "12 / 34"),
                ("cvc", "123"),
                ("name", "Bench Buyer"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status(), 303, "the sandbox's Checkout takes the card");
        let id = url.rsplit('/').next().unwrap();
        let session = http
            .get(format!("{sandbox}/v1/checkout/sessions/{id}"))
            .bearer_auth(SECRET_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        sessions.push(session);
    }
    sessions
}

fn event(id: &str, session: &str, created: i64) -> String {
    format!(
        r#"{{"id":"{id}","object":"event","account":null,"api_version":"{API_VERSION}","created":{created},"data":{{"object":{session}}},"livemode":false,"pending_webhooks":1,"request":{{"id":null,"idempotency_key":null}},"type":"checkout.session.completed"}}"#
    )
}

fn sign(payload: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(payload.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

struct Load {
    requests: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    statuses: HashMap<u16, u64>,
    duplicates_sent: u64,
    duplicates_answered: u64,
    distinct: usize,
}

/// Posts events from `CONNECTIONS` connections for `seconds`: every tenth request repeats an
/// event sent before, the rest are new.
async fn load(url: &str, sessions: Arc<Vec<String>>, seconds: u64, created: i64) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let sequence = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (url, sessions, next, sequence) = (url.to_owned(), sessions.clone(), next.clone(), sequence.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
            let mut latencies = Vec::new();
            let mut statuses: HashMap<u16, u64> = HashMap::new();
            let (mut duplicates_sent, mut duplicates_answered) = (0, 0);
            while Instant::now() < stop {
                let n = sequence.fetch_add(1, Ordering::Relaxed);
                let issued = next.load(Ordering::Relaxed);
                let repeat = n % 10 == 9 && issued > 0;
                let index = if repeat { (n as usize * 7919) % issued } else { next.fetch_add(1, Ordering::Relaxed) };
                // Every delivery of an event carries the time Stripe made it.
                let payload = event(&format!("evt_bench_{index:08}"), &sessions[index % sessions.len()], created);
                let signature = sign(&payload, chrono::Utc::now().timestamp());
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("Stripe-Signature", signature)
                    .body(payload)
                    .send()
                    .await
                    .expect("the intake answers");
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                latencies.push(sent.elapsed().as_micros() as u32);
                *statuses.entry(status).or_default() += 1;
                // A repeat may overtake the first copy still in flight, which is then the one
                // answered as the duplicate: so the two counts are compared over all requests.
                duplicates_sent += u64::from(repeat);
                duplicates_answered += u64::from(body["duplicate"] == true);
            }
            (latencies, statuses, duplicates_sent, duplicates_answered)
        }));
    }
    let mut result = Load {
        requests: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        statuses: HashMap::new(),
        duplicates_sent: 0,
        duplicates_answered: 0,
        distinct: 0,
    };
    for task in tasks {
        let (latencies, statuses, sent, answered) = task.await.unwrap();
        result.requests += latencies.len() as u64;
        result.latencies_us.extend(latencies);
        for (status, count) in statuses {
            *result.statuses.entry(status).or_default() += count;
        }
        result.duplicates_sent += sent;
        result.duplicates_answered += answered;
    }
    result.elapsed = started.elapsed();
    result.distinct = next.load(Ordering::Relaxed);
    result.latencies_us.sort_unstable();
    result
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

/// pgbench running the minimal transaction one event could be stored with, on a database of
/// the same schema.
async fn pgbench(db: &str, payload: &str, seconds: u64, created: i64) -> f64 {
    // pgbench would read `:null` or `:false` in the JSON as its own variables; a space after
    // such a colon keeps the JSON (and its size) and leaves them alone.
    let mut literal = String::with_capacity(payload.len() + 64);
    let template = payload.replace("evt_bench_00000000", "EVENT_ID");
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        literal.push(c);
        if c == ':' && chars.peek().is_some_and(|n| n.is_ascii_alphabetic() || *n == '_') {
            literal.push(' ');
        }
    }
    assert!(!literal.contains("$p$"));
    let insert = |id: &str| {
        format!(
            "INSERT INTO stripe_events (id, type, account, livemode, api_version, created, payload) \
             VALUES ({id}, 'checkout.session.completed', NULL, false, '{API_VERSION}', to_timestamp({created}), \
             replace($p${literal}$p$, 'EVENT_ID', {id})::jsonb) ON CONFLICT (id, created) DO NOTHING;"
        )
    };
    let update = |id: &str| {
        format!("UPDATE stripe_events SET applied_at = NULL WHERE id = {id} AND created = to_timestamp({created});")
    };
    // One in ten repeats an event stored before: the insert finds it and does nothing.
    let script = format!(
        "\\set n random(1, 2000000000)\n\\set repeat random(1, 10)\n\\set earlier random(1, 1000)\nBEGIN;\n\
         \\if :repeat = 10\n{}\n{}\n\\else\n{}\n{}\n\\endif\nCOMMIT;\n",
        insert("'evt_pgb_earlier_' || CAST(:earlier AS text)"),
        update("'evt_pgb_earlier_' || CAST(:earlier AS text)"),
        insert("'evt_pgb_' || CAST(:n AS text)"),
        update("'evt_pgb_' || CAST(:n AS text)"),
    );
    let path = std::env::temp_dir().join(format!("remit-intake-{}.sql", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", &CONNECTIONS.to_string(), "-j", "2", "-T", &seconds.to_string(), "-f"])
        .arg(&path)
        .arg(format!("{}/{db}", pg_server()))
        .output()
        .await
        .expect("pgbench runs (postgresql-client)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "pgbench failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"))
}

/// CPU time a process has used so far (user and system), in microseconds.
fn cpu_us(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process's stat");
    // The fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks * 1e6 / 100.0
}

/// CPU time the whole machine has spent busy so far, in microseconds.
fn machine_busy_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let cpu: Vec<f64> = stat.lines().next().unwrap().split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    let busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7];
    busy * 1e6 / 100.0
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let db = format!("remit_bench_intake_{}", std::process::id());
    let pgbench_db = format!("{db}_pgbench");

    // The Stripe sandbox, in this process (nothing delivers webhooks: the load is the events).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = stripe_sandbox::Options { secret_key: SECRET_KEY.into(), ..stripe_sandbox::Options::default() };
    let sandbox = stripe_sandbox::Sandbox::start(listener, options).await.unwrap();
    let sandbox_url = sandbox.url().to_owned();

    // The fixture reads the buyers' payment links in the development outbox.
    let vars: HashMap<&str, String> =
        remit_env(&db, &sandbox_url, free_port()).into_iter().chain([("APP_ENV", "development".to_owned())]).collect();
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("bench settings");
    let stripe = StripeConfig::from_settings(&settings).expect("Stripe settings");
    let services = Services::start(settings, stripe).await.expect("the bench database");
    domain::db::connect_and_migrate(&format!("{}/{pgbench_db}", pg_server())).await.expect("the pgbench database");

    println!("setting up {PAID_LOTS} paid lots…");
    let sessions = Arc::new(paid_sessions(&services, &sandbox_url).await);
    let created = chrono::Utc::now().timestamp();
    let sample = event("evt_bench_00000000", &sessions[0], created);
    let pool = domain::db::connect(&format!("{}/{pgbench_db}", pg_server())).await.unwrap();
    for i in 1..=1000 {
        let id = format!("evt_pgb_earlier_{i}");
        sqlx::query("INSERT INTO stripe_events (id, type, livemode, created, payload) VALUES ($1, 'checkout.session.completed', false, to_timestamp($3), $2::jsonb)")
            .bind(&id)
            .bind(sample.replace("evt_bench_00000000", &id))
            .bind(created as f64)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let busy = machine_busy_us();
    let before = pgbench(&pgbench_db, &sample, seconds, created).await;
    let pgbench_cpu = (machine_busy_us() - busy) / (before * seconds as f64);
    println!(
        "pgbench (the minimal transaction, 32 clients, {seconds} s): {before:.0} transactions/s; \
         CPU per transaction (pgbench and PostgreSQL) {pgbench_cpu:.0} µs"
    );

    let (intake, mut intake_process) = start_remit(&db, &sandbox_url, 0).await;
    let intake_pid = intake_process.id().expect("the intake process runs").to_string();
    let cpu_before = (cpu_us(&intake_pid), cpu_us("self"), machine_busy_us());
    let result = load(&format!("{intake}/payments/webhooks/stripe"), sessions.clone(), seconds, created).await;
    let cpu_after = (cpu_us(&intake_pid), cpu_us("self"), machine_busy_us());
    let rss_mb = peak_rss_mb(intake_process.id().expect("the intake process runs"));
    intake_process.kill().await.ok();
    let throughput = result.requests as f64 / result.elapsed.as_secs_f64();
    let non_2xx: u64 = result.statuses.iter().filter(|(s, _)| !(200..300).contains(*s)).map(|(_, c)| c).sum();
    println!(
        "intake: {} requests in {:.1} s = {throughput:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         {} distinct events, {} repeats, {} answered as duplicates; statuses {:?}",
        result.requests,
        result.elapsed.as_secs_f64(),
        percentile(&result.latencies_us, 0.50),
        percentile(&result.latencies_us, 0.99),
        percentile(&result.latencies_us, 1.0),
        result.distinct,
        result.duplicates_sent,
        result.duplicates_answered,
        result.statuses,
    );

    // Where the machine's CPU went per request: Remit, this process (the load generator), and the
    // rest (PostgreSQL, mostly).
    let per_request = |before: f64, after: f64| (after - before) / result.requests as f64;
    let remit_us = per_request(cpu_before.0, cpu_after.0);
    let load_us = per_request(cpu_before.1, cpu_after.1);
    let rest_us = per_request(cpu_before.2, cpu_after.2) - remit_us - load_us;
    println!(
        "CPU per request: remit {remit_us:.0} µs, load generator {load_us:.0} µs, the rest (PostgreSQL) {rest_us:.0} µs"
    );
    let p99 = percentile(&result.latencies_us, 0.99);
    println!("intake process: peak RSS {rss_mb:.1} MB  (target <= {TARGET_RSS_MB:.0} MB)");

    let after = pgbench(&pgbench_db, &sample, seconds, created).await;
    println!("pgbench again: {after:.0} transactions/s");

    // A worker process applies what the intake stored.
    let drain_started = Instant::now();
    let (_, mut worker) = start_remit(&db, &sandbox_url, WORKER_CONCURRENCY).await;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let pending = domain::worker::backlog(&services.pool).await.unwrap();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the worker did not drain the queue in 15 minutes ({pending} left)");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = drain_started.elapsed();
    worker.kill().await.ok();

    let (stored, applied): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(applied_at) FROM stripe_events WHERE id LIKE 'evt_bench_%'")
            .fetch_one(&services.pool)
            .await
            .unwrap();
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&services.pool).await.unwrap();
    let receipts: i64 = sqlx::query_scalar("SELECT count(*) FROM receipts").fetch_one(&services.pool).await.unwrap();
    let receipt_emails: i64 = sqlx::query_scalar("SELECT count(*) FROM emails WHERE subject LIKE 'Your receipt%'")
        .fetch_one(&services.pool)
        .await
        .unwrap();
    println!(
        "worker: applied {applied} of {stored} stored events in {:.1} s ({:.0} events/s); {orders} orders, {receipts} receipts, \
         {receipt_emails} receipt emails for {PAID_LOTS} paid lots",
        drained.as_secs_f64(),
        applied as f64 / drained.as_secs_f64(),
    );

    let best = before.max(after);
    let ratio = throughput / best;
    println!("intake / pgbench: {:.0} %  (target >= {:.0} %)", ratio * 100.0, TARGET_RATIO * 100.0);
    println!("intake p99: {p99:.2} ms  (target <= {TARGET_P99_MS:.0} ms)");

    services.pool.close().await;
    for name in [&db, &pgbench_db] {
        psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }

    let mut failures = Vec::new();
    if ratio < TARGET_RATIO {
        failures.push(format!("throughput below {TARGET_RATIO} times pgbench's"));
    }
    if p99 > TARGET_P99_MS {
        failures.push(format!("p99 latency above {TARGET_P99_MS} ms"));
    }
    if rss_mb > TARGET_RSS_MB {
        failures.push(format!("peak RSS above {TARGET_RSS_MB} MB"));
    }
    if non_2xx > 0 {
        failures.push(format!("{non_2xx} answers were not 2xx"));
    }
    if result.duplicates_answered != result.duplicates_sent {
        failures.push("a repeated event was not answered as a duplicate".into());
    }
    if stored != result.distinct as i64 || applied != stored {
        failures.push(format!("{} distinct events sent, {stored} stored, {applied} applied", result.distinct));
    }
    let lots = PAID_LOTS as i64;
    if (orders, receipts, receipt_emails) != (lots, lots, lots) {
        failures.push("not exactly one order, receipt and receipt email per paid lot".into());
    }
    if !failures.is_empty() {
        eprintln!("webhook intake benchmark failed: {}", failures.join("; "));
        std::process::exit(1);
    }
}
