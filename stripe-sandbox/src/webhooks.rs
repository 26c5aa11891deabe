//! Delivering events to webhook endpoints as Stripe does: POST with
//! `Stripe-Signature: t=…,v1=…` (HMAC-SHA256 of `"{t}.{payload}"` with the endpoint's secret),
//! retried with backoff on anything but 2xx. For tests, events can also be delivered twice, twice
//! at once, or held and then delivered newest first.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::{
    persist::{Change, Persist},
    state::State,
    wire::new_id,
};

/// How events reach endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Once each, as they happen.
    #[default]
    Normal,
    /// Each event twice, one after the other.
    Duplicate,
    /// Each event twice, at the same time.
    Concurrent,
    /// Held until flushed, then delivered newest first.
    Reverse,
    /// Lost on the way (an outage between Stripe and the endpoint): never delivered; the
    /// events stay in the events list, where a resync finds them.
    Lost,
}

/// One attempt to deliver one event to one endpoint, as the log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    pub url: String,
    pub attempt: u32,
    /// HTTP status, or `None` when the endpoint could not be reached.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// One event to deliver to one endpoint; stored until it is delivered or given up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    id: String,
    event_id: String,
    event_type: String,
    endpoint_id: String,
    url: String,
    secret: String,
    payload: String,
    /// The next attempt's number (1 for the first).
    attempt: u32,
    /// When the next attempt is due (Unix seconds).
    next_at: i64,
    /// Held for a flush (the `reverse` mode).
    held: bool,
}

impl Job {
    /// The stored form of this delivery (`None`: done).
    pub fn change(&self, pending: bool) -> Change {
        Change::Delivery {
            id: self.id.clone(),
            value: pending.then(|| serde_json::to_value(self).expect("deliveries serialise")),
        }
    }
}

/// Waits between attempts; Stripe's own schedule spreads retries over three days.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub delays: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { delays: [1, 2, 4, 8, 16, 32, 64].map(Duration::from_secs).to_vec() }
    }
}

pub struct Delivery {
    client: reqwest::Client,
    /// Where deliveries still to make are stored, when the sandbox keeps its state.
    persist: Option<Arc<Persist>>,
    mode: Mutex<Mode>,
    held: Mutex<Vec<Job>>,
    log: Mutex<Vec<DeliveryRecord>>,
    retry: RetryPolicy,
    /// Deliveries started and not yet finished (retries included).
    in_flight: AtomicUsize,
    settled: tokio::sync::Notify,
}

/// The `Stripe-Signature` header for `payload` signed with `secret` at Unix time `timestamp`.
pub fn signature_header(secret: &str, payload: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

impl Delivery {
    pub fn new(retry: RetryPolicy, persist: Option<Arc<Persist>>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .build()
            .expect("the webhook HTTP client builds");
        Self {
            client,
            persist,
            mode: Mutex::new(Mode::Normal),
            held: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            retry,
            in_flight: AtomicUsize::new(0),
            settled: tokio::sync::Notify::new(),
        }
    }

    /// Waits until no delivery is under way (one that gave up counts as finished).
    pub async fn settle(&self) {
        loop {
            let notified = self.settled.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("delivery mode lock") = mode;
    }

    pub fn log(&self) -> Vec<DeliveryRecord> {
        self.log.lock().expect("delivery log lock").clone()
    }

    /// Works out which endpoints want each event (under the state lock) and records the count
    /// on the event, as `pending_webhooks`.
    fn jobs_for(state: &mut State, event_ids: &[String], held: bool) -> Vec<Job> {
        let endpoints = state.all("webhook_endpoint", None);
        let mut jobs = Vec::new();
        for id in event_ids {
            let Some(event) = state.any(id).cloned() else { continue };
            let kind = event["type"].as_str().unwrap_or_default().to_owned();
            let from_connected = !event["account"].is_null();
            let targets: Vec<&Value> = endpoints
                .iter()
                .filter(|e| e["status"] == "enabled")
                .filter(|e| e["application"].is_null() != from_connected)
                .filter(|e| {
                    e["enabled_events"].as_array().is_some_and(|list| list.iter().any(|t| t == "*" || *t == kind))
                })
                .collect();
            let (event, _) = state.update(id, |e| e["pending_webhooks"] = Value::from(targets.len()));
            let payload = serde_json::to_string_pretty(&event).expect("events serialise");
            for endpoint in targets {
                let endpoint_id = endpoint["id"].as_str().unwrap_or_default().to_owned();
                let Some(secret) = state.webhook_secrets.get(&endpoint_id).cloned() else { continue };
                jobs.push(Job {
                    id: new_id("whd_"),
                    event_id: id.clone(),
                    event_type: kind.clone(),
                    endpoint_id,
                    url: endpoint["url"].as_str().unwrap_or_default().to_owned(),
                    secret,
                    payload: payload.clone(),
                    attempt: 1,
                    next_at: unix_now(),
                    held,
                });
            }
        }
        jobs
    }

    /// Takes the events the last call created and works out their deliveries (under the state's
    /// lock, so they are stored with the call's other changes).
    pub fn prepare(&self, state: &mut State) -> Vec<Job> {
        let events = std::mem::take(&mut state.pending_events);
        if events.is_empty() {
            return Vec::new();
        }
        let held = *self.mode.lock().expect("delivery mode lock") == Mode::Reverse;
        Self::jobs_for(state, &events, held)
    }

    /// Sends prepared deliveries on their way (or holds them, in the `reverse` mode).
    pub fn start(self: &Arc<Self>, jobs: Vec<Job>) {
        let mode = *self.mode.lock().expect("delivery mode lock");
        for job in jobs {
            if job.held {
                self.held.lock().expect("held events lock").push(job);
            } else {
                self.spawn(job, mode);
            }
        }
    }

    /// Takes up the deliveries a previous run left (a restart): held ones wait for a flush,
    /// others resume at their next attempt.
    pub fn resume(self: &Arc<Self>, stored: Vec<Job>) {
        let count = stored.len();
        self.start(stored);
        if count > 0 {
            tracing::info!(count, "resumed webhook deliveries left by the previous run");
        }
    }

    fn spawn(self: &Arc<Self>, job: Job, mode: Mode) {
        let delivery = self.clone();
        delivery.in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let wait = job.next_at - unix_now();
            if wait > 0 {
                tokio::time::sleep(Duration::from_secs(wait as u64)).await;
            }
            delivery.deliver(job, mode).await;
            if delivery.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                delivery.settled.notify_waiters();
            }
        });
    }

    fn store(&self, change: Change) {
        if let Some(persist) = &self.persist {
            persist.submit(vec![change]);
        }
    }

    /// Delivers held events, newest first, one after the other.
    pub async fn flush(self: &Arc<Self>) -> usize {
        let mut jobs = std::mem::take(&mut *self.held.lock().expect("held events lock"));
        jobs.reverse();
        let count = jobs.len();
        for job in jobs {
            self.deliver_with_retries(job).await;
        }
        count
    }

    async fn deliver(&self, job: Job, mode: Mode) {
        match mode {
            Mode::Normal | Mode::Reverse => self.deliver_with_retries(job).await,
            Mode::Duplicate => {
                self.deliver_with_retries(job.clone()).await;
                self.deliver_with_retries(job).await;
            }
            Mode::Concurrent => {
                tokio::join!(self.deliver_with_retries(job.clone()), self.deliver_with_retries(job));
            }
            Mode::Lost => {
                self.log.lock().expect("delivery log lock").push(DeliveryRecord {
                    event_id: job.event_id.clone(),
                    event_type: job.event_type.clone(),
                    endpoint_id: job.endpoint_id.clone(),
                    url: job.url.clone(),
                    attempt: job.attempt,
                    status: None,
                    error: Some("lost on the way (the sandbox's `lost` delivery mode)".into()),
                    duration_ms: 0,
                });
                self.store(job.change(false));
            }
        }
    }

    async fn deliver_with_retries(&self, mut job: Job) {
        let attempts = self.retry.delays.len() as u32 + 1;
        while job.attempt <= attempts {
            if self.attempt(&job, job.attempt).await {
                self.store(job.change(false));
                return;
            }
            let Some(delay) = self.retry.delays.get(job.attempt as usize - 1).copied() else { break };
            job.attempt += 1;
            job.next_at = unix_now() + delay.as_secs() as i64;
            job.held = false;
            self.store(job.change(true));
            tokio::time::sleep(delay).await;
        }
        self.store(job.change(false));
        tracing::warn!(event = %job.event_id, url = %job.url, "webhook delivery gave up");
    }

    /// One POST; true when the endpoint answered 2xx.
    async fn attempt(&self, job: &Job, attempt: u32) -> bool {
        let started = Instant::now();
        let result = self
            .client
            .post(&job.url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Stripe-Signature", signature_header(&job.secret, &job.payload, unix_now()))
            .body(job.payload.clone())
            .send()
            .await;
        let (status, error) = match result {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(err) => (None, Some(err.to_string())),
        };
        self.log.lock().expect("delivery log lock").push(DeliveryRecord {
            event_id: job.event_id.clone(),
            event_type: job.event_type.clone(),
            endpoint_id: job.endpoint_id.clone(),
            url: job.url.clone(),
            attempt,
            status,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_an_independently_computed_vector() {
        // Computed with Python: hmac.new(b"whsec_test_secret", b"1700000000.{\"id\":\"evt_1\"}", sha256).hexdigest()
        let header = signature_header("whsec_test_secret", r#"{"id":"evt_1"}"#, 1_700_000_000);
        assert_eq!(header, "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a");
    }
}
