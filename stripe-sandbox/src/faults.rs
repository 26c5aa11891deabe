//! Fault injection: the next N calls to an endpoint fail in a chosen way.

use std::{sync::Mutex, time::Duration};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 500 with Stripe's `api_error`.
    ServerError,
    /// 429 with `rate_limit`.
    RateLimit,
    /// No answer for `delay_ms` (then a 500, the call having done nothing).
    Timeout,
    /// The connection is dropped mid-response.
    Disconnect,
    /// The call is answered normally, after `delay_ms` (default 30 s): a slow Stripe.
    Latency,
}

/// Fail the next `count` calls whose method and path match.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRule {
    /// `GET`, `POST`, `DELETE`, or absent for any.
    pub method: Option<String>,
    /// A path such as `/v1/account_links`; a trailing `*` matches any path with that prefix.
    pub path: String,
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub count: u32,
    /// For `timeout` and `latency`: how long the call hangs.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

impl FaultRule {
    fn matches(&self, method: &str, path: &str) -> bool {
        let path_matches = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        };
        path_matches && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
    }

    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.unwrap_or(30_000))
    }
}

#[derive(Default)]
pub struct Faults(Mutex<Vec<FaultRule>>);

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.0.lock().expect("faults lock").push(rule);
    }

    pub fn clear(&self) {
        self.0.lock().expect("faults lock").clear();
    }

    /// The fault this call should suffer, using up one of its rule's count.
    pub fn take(&self, method: &str, path: &str) -> Option<FaultRule> {
        let mut rules = self.0.lock().expect("faults lock");
        let index = rules.iter().position(|r| r.count > 0 && r.matches(method, path))?;
        rules[index].count -= 1;
        let rule = rules[index].clone();
        rules.retain(|r| r.count > 0);
        Some(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_and_count_down() {
        let faults = Faults::default();
        faults.add(FaultRule {
            method: Some("POST".into()),
            path: "/v1/account_links".into(),
            kind: FaultKind::ServerError,
            count: 2,
            delay_ms: None,
        });
        assert!(faults.take("GET", "/v1/account_links").is_none());
        assert!(faults.take("POST", "/v1/account_links").is_some());
        assert!(faults.take("post", "/v1/account_links").is_some());
        assert!(faults.take("POST", "/v1/account_links").is_none());
        faults.add(FaultRule {
            method: None,
            path: "/v1/checkout/*".into(),
            kind: FaultKind::RateLimit,
            count: 1,
            delay_ms: None,
        });
        assert_eq!(faults.take("GET", "/v1/checkout/sessions/cs_1").unwrap().kind, FaultKind::RateLimit);
    }
}
