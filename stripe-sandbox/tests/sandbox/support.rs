use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::Sha256;
use stripe_sandbox::{Options, RetryPolicy, Sandbox};

pub const SECRET_KEY: &str = "sk_test_sandbox_tests";
pub const WEBHOOK_SECRET: &str = "whsec_sandbox_tests";

/// A webhook receiver that checks every signature with its own HMAC, independently of the
/// sandbox's code, and keeps the verified events.
#[derive(Clone, Default)]
pub struct Receiver {
    pub events: Arc<Mutex<Vec<Value>>>,
    pub rejected: Arc<AtomicU32>,
    /// Answer this many deliveries with 500 before accepting.
    pub fail_first: Arc<AtomicU32>,
    pub attempts: Arc<AtomicU32>,
}

fn verify(header: &str, payload: &[u8]) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = Some(t.to_owned()),
            Some(("v1", s)) => signatures.push(s.to_owned()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(payload);
    let expected = hex::encode(mac.finalize().into_bytes());
    let fresh = t.parse::<i64>().is_ok_and(|t| (chrono_now() - t).abs() <= 300);
    fresh && signatures.contains(&expected)
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.attempts.fetch_add(1, Ordering::SeqCst);
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !verify(header, &body) {
        r.rejected.fetch_add(1, Ordering::SeqCst);
        return StatusCode::BAD_REQUEST;
    }
    if r.fail_first.load(Ordering::SeqCst) > 0 {
        r.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.events.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    StatusCode::OK
}

impl Receiver {
    pub fn types(&self) -> Vec<String> {
        self.events.lock().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
    }

    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.events.lock().unwrap().iter().filter(|e| e["type"] == kind).cloned().collect()
    }

    /// Waits (up to 10 s) until `count` events of `kind` have arrived.
    pub async fn wait_for(&self, kind: &str, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.of_type(kind);
            if found.len() >= count {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "{kind} ×{count} never arrived; got {:?}", self.types());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub struct TestSandbox {
    pub sandbox: Sandbox,
    pub client: stripe::Client,
    pub http: reqwest::Client,
    pub receiver: Receiver,
    /// Every answer to `call`: method, path (without its query), status and body, for the
    /// conformance check against Stripe's OpenAPI spec.
    pub answers: Arc<Mutex<Vec<Value>>>,
}

pub async fn start() -> TestSandbox {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    let app = Router::new().route("/webhooks", post(receive)).with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = Options {
        secret_key: SECRET_KEY.into(),
        // Quick retries keep the retry test short.
        retry: RetryPolicy {
            delays: vec![Duration::from_millis(50), Duration::from_millis(100), Duration::from_millis(200)],
        },
        ..Options::default()
    };
    let sandbox = Sandbox::start(listener, options).await.unwrap();
    sandbox.register_webhook_endpoint(&receiver_url, WEBHOOK_SECRET, false);
    sandbox.register_webhook_endpoint(&receiver_url, WEBHOOK_SECRET, true);
    let client = stripe::ClientBuilder::new(SECRET_KEY).url(format!("{}/", sandbox.url())).build().unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestSandbox { sandbox, client, http, receiver, answers: Arc::default() }
}

impl TestSandbox {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.url())
    }

    /// A raw API call with the secret key.
    pub async fn call(&self, method: reqwest::Method, path: &str, form: &str) -> (u16, Value) {
        let mut request = self.http.request(method.clone(), self.url(path)).bearer_auth(SECRET_KEY);
        request = if method == reqwest::Method::GET {
            request
        } else {
            request.header("content-type", "application/x-www-form-urlencoded").body(form.to_owned())
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let path = path.split('?').next().unwrap_or(path);
        self.answers.lock().unwrap().push(serde_json::json!({
            "method": method.as_str(), "path": path, "status": status, "body": body.clone(),
        }));
        (status, body)
    }

    /// Posts a card on a hosted Checkout page as a browser would; returns status and Location.
    pub async fn pay(&self, session_url: &str, card: &str) -> (u16, Option<String>, String) {
        let form = [
            ("email", "buyer@example.com"),
            ("card_number", card),
            ("expiry", "12 / 34"),
            ("cvc", "123"),
            ("name", "Ada Buyer"),
        ];
        let response = self.http.post(session_url).form(&form).send().await.unwrap();
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }
}

impl TestSandbox {
    /// A monthly $29.00 price (of a new product); returns its id.
    pub async fn monthly_price(&self) -> String {
        let (status, price) = self
            .call(
                reqwest::Method::POST,
                "/v1/prices",
                "currency=usd&unit_amount=2900&recurring[interval]=month&product_data[name]=Consultant%20Pro",
            )
            .await;
        assert_eq!(status, 200, "{price}");
        price["id"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, "").await.1
    }

    /// Saves `card` on `customer` the way a customer does it, on a setup-mode Checkout page;
    /// returns the payment method's id.
    pub async fn saved_card(&self, customer: &str, card: &str) -> String {
        let (status, setup) = self
            .call(
                reqwest::Method::POST,
                "/v1/checkout/sessions",
                &format!("mode=setup&customer={customer}&success_url=https://remit.example/ok"),
            )
            .await;
        assert_eq!(status, 200, "{setup}");
        let (status, _, page) = self.pay(setup["url"].as_str().unwrap(), card).await;
        assert_eq!(status, 303, "{page}");
        let setup =
            self.get(&format!("/v1/checkout/sessions/{}?expand[]=setup_intent", setup["id"].as_str().unwrap())).await;
        setup["setup_intent"]["payment_method"].as_str().unwrap().to_owned()
    }
}
