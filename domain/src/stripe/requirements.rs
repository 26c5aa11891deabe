//! What Stripe needs from a connected account before it can take payments or pay out.

use serde::{Deserialize, Serialize};

/// The Stripe side of a connected account, as Remit shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Requirements {
    pub currently_due: Vec<String>,
    pub past_due: Vec<String>,
    pub eventually_due: Vec<String>,
    pub disabled_reason: Option<String>,
    pub current_deadline: Option<i64>,
}

impl Requirements {
    pub fn from_stripe(value: &serde_json::Value) -> Self {
        let list = |k: &str| {
            value[k]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        Self {
            currently_due: list("currently_due"),
            past_due: list("past_due"),
            eventually_due: list("eventually_due"),
            disabled_reason: value["disabled_reason"].as_str().map(str::to_owned),
            current_deadline: value["current_deadline"].as_i64(),
        }
    }

    pub fn from_account(account: &stripe_shared::Account) -> Self {
        let r = account.requirements.as_ref();
        Self {
            currently_due: r.and_then(|r| r.currently_due.clone()).unwrap_or_default(),
            past_due: r.and_then(|r| r.past_due.clone()).unwrap_or_default(),
            eventually_due: r.and_then(|r| r.eventually_due.clone()).unwrap_or_default(),
            disabled_reason: r.and_then(|r| r.disabled_reason.as_ref().map(|d| d.as_str().to_owned())),
            current_deadline: r.and_then(|r| r.current_deadline),
        }
    }

    pub fn open_count(&self) -> usize {
        self.currently_due.len() + self.past_due.iter().filter(|p| !self.currently_due.contains(p)).count()
    }
}
