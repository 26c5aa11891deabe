//! Outbound webhook deliveries: one release `remit` worker process posting to local receivers.
//!
//! Ten endpoints (each its own receiver on loopback, in this process, answering 200 at once) are
//! owed `BENCH_EVENTS` (2,000) events each, recorded through `tenant_webhooks::events::emit`
//! before the worker starts. A release `remit` process (`APP_ENV=development`, the one setting
//! that lets it post to loopback; `DEMO_DATA=accounts`) delivers them. The rate is measured at the
//! receivers, from the first delivery to the last, so the process's start-up is not counted.
//!
//! Targets: at least 500 deliveries a second; every event received exactly once by every
//! endpoint, each signature verifying; the worker's peak RSS at most 150 MB (it holds at most 32
//! deliveries at a time, whatever the backlog).
//!
//! `make bench` runs it: `cargo bench -p server --bench webhook_delivery`.

mod support;

use std::{
    collections::HashMap,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use domain::{
    Services,
    auth::{Principal, Role},
    config::Settings,
    money::{Currency, Money},
    stripe::StripeConfig,
    tenant_webhooks::{
        endpoints::{self, NewEndpoint},
        events::{OrderPaid, TenantEvent, emit},
    },
};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use support::{SECRET_KEY, free_port, peak_rss_mb, pg_server, remit_env};
use uuid::Uuid;

const ENDPOINTS: usize = 10;
const TARGET_RATE: f64 = 500.0;
const TARGET_RSS_MB: f64 = 150.0;

/// A worker in development mode (the one setting that lets it post to loopback), seeding accounts
/// only.
fn worker_env(db: &str, sandbox: &str, port: u16) -> Vec<(&'static str, String)> {
    let mut env = remit_env(db, sandbox, port);
    env.extend([("APP_ENV", "development".into()), ("DEMO_DATA", "accounts".into())]);
    env
}

/// One receiver: how often each event arrived, whether every signature verified, and when the
/// first and last deliveries came.
#[derive(Clone)]
struct Receiver {
    secret: Arc<Mutex<Vec<u8>>>,
    seen: Arc<Mutex<HashMap<String, u32>>>,
    forged: Arc<Mutex<u32>>,
    first_last: Arc<Mutex<Option<(Instant, Instant)>>>,
}

fn verifies(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header("webhook-signature").split(' ').any(|s| s == expected)
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> &'static str {
    let now = Instant::now();
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if !verifies(&r.secret.lock().unwrap(), &headers, &body) {
        *r.forged.lock().unwrap() += 1;
    }
    *r.seen.lock().unwrap().entry(id).or_default() += 1;
    let mut first_last = r.first_last.lock().unwrap();
    *first_last = Some(first_last.map_or((now, now), |(first, _)| (first, now)));
    "ok"
}

async fn start_receiver() -> (Receiver, String) {
    let r =
        Receiver { secret: Arc::default(), seen: Arc::default(), forged: Arc::default(), first_last: Arc::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let app = Router::new().route("/hooks", post(receive)).with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

async fn owner(services: &Services, tenant: Uuid) -> Principal {
    let user: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = $1 AND role = 'tenant_owner'")
        .bind(tenant)
        .fetch_one(&services.pool)
        .await
        .unwrap();
    Principal {
        user_id: user,
        email: "owner@bench.example".into(),
        display_name: "Bench Owner".into(),
        role: Role::TenantOwner,
        tenant_id: Some(tenant),
        consultant_id: None,
    }
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let db = format!("remit_bench_delivery_{}", std::process::id());

    // The Stripe sandbox, in this process: the worker's start-up asks it for nothing it lacks.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = stripe_sandbox::Options { secret_key: SECRET_KEY.into(), ..stripe_sandbox::Options::default() };
    let sandbox = stripe_sandbox::Sandbox::start(listener, options).await.unwrap();
    let sandbox_url = sandbox.url().to_owned();
    let vars: HashMap<&str, String> = worker_env(&db, &sandbox_url, free_port()).into_iter().collect();
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("bench settings");
    let stripe = StripeConfig::from_settings(&settings).expect("Stripe settings");
    let services = Services::start(settings, stripe).await.expect("the bench database");

    let tenant = domain::accounts::create_tenant(&services, "Bench Auctions", "owner@bench.example", "Bench Owner")
        .await
        .expect("the tenant");
    let owner = owner(&services, tenant).await;
    let mut receivers = Vec::new();
    for _ in 0..ENDPOINTS {
        let (receiver, url) = start_receiver().await;
        let new = NewEndpoint { url, description: String::new(), event_types: None, livemode: true, rate_limit: None };
        let created = endpoints::create(&services, &owner, new).await.expect("an endpoint");
        use secrecy::ExposeSecret as _;
        *receiver.secret.lock().unwrap() = STANDARD.decode(&created.secret.expose_secret()[6..]).unwrap();
        receivers.push(receiver);
    }
    println!("recording {events} events for {ENDPOINTS} endpoints…");
    for chunk in (0..events).collect::<Vec<_>>().chunks(200) {
        let mut tx = services.pool.begin().await.unwrap();
        for i in chunk {
            let event = TenantEvent::PaymentSucceeded(OrderPaid {
                order: Uuid::new_v4(),
                winning: Uuid::new_v4(),
                reference: format!("INV-{i}"),
                auction: "Bench sale".into(),
                lot: i.to_string(),
                amount: Money { amount: 4_900, currency: Currency::parse("usd").unwrap() },
                payment_intent: format!("pi_bench_{i}"),
                risk_level: Some("normal".into()),
            });
            emit(&mut tx, tenant, true, event).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let owed = events * ENDPOINTS;

    let port = free_port();
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_remit"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(worker_env(&db, &sandbox_url, port))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the remit binary starts");
    let deadline = Instant::now() + Duration::from_secs(600);
    let received = || receivers.iter().map(|r| r.seen.lock().unwrap().values().sum::<u32>() as usize).sum::<usize>();
    while received() < owed || domain::tenant_webhooks::delivery::due_now(&services.pool).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "{} of {owed} deliveries after 10 minutes", received());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_mb = peak_rss_mb(worker.id().expect("the worker runs"));
    worker.kill().await.ok();

    let first = receivers.iter().filter_map(|r| r.first_last.lock().unwrap().map(|(f, _)| f)).min().unwrap();
    let last = receivers.iter().filter_map(|r| r.first_last.lock().unwrap().map(|(_, l)| l)).max().unwrap();
    let seconds = (last - first).as_secs_f64();
    let rate = owed as f64 / seconds;
    let twice: usize = receivers.iter().map(|r| r.seen.lock().unwrap().values().filter(|n| **n > 1).count()).sum();
    let missing: usize = receivers.iter().map(|r| events - r.seen.lock().unwrap().len()).sum();
    let forged: u32 = receivers.iter().map(|r| *r.forged.lock().unwrap()).sum();
    println!(
        "deliveries: {owed} ({events} events × {ENDPOINTS} endpoints) in {seconds:.1} s = {rate:.0} deliveries/s  \
         (target >= {TARGET_RATE:.0}); {twice} received twice, {missing} missing, {forged} signatures not verifying"
    );
    println!("worker process: peak RSS {rss_mb:.1} MB  (target <= {TARGET_RSS_MB:.0} MB)");

    services.pool.close().await;
    let status = tokio::process::Command::new("psql")
        .arg(format!("{}/postgres", pg_server()))
        .args(["-qc", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")])
        .stdout(Stdio::null())
        .status()
        .await
        .expect("psql runs");
    assert!(status.success());

    let mut failures = Vec::new();
    if rate < TARGET_RATE {
        failures.push(format!("below {TARGET_RATE} deliveries a second"));
    }
    if twice > 0 || missing > 0 {
        failures.push("not every event exactly once to every endpoint".into());
    }
    if forged > 0 {
        failures.push("a signature did not verify".into());
    }
    if rss_mb > TARGET_RSS_MB {
        failures.push(format!("peak RSS above {TARGET_RSS_MB} MB"));
    }
    if !failures.is_empty() {
        eprintln!("webhook delivery benchmark failed: {}", failures.join("; "));
        std::process::exit(1);
    }
}
