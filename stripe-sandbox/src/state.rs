//! The sandbox's memory: every object, keyed by id, plus the bookkeeping Stripe keeps behind
//! its API (link tokens, client secrets, OAuth codes, idempotency keys, the clock).
//!
//! Every change is noted, so that the call's changes can be stored (see `persist`): objects
//! through `insert`/`update`/`get_mut`/`remove`, bookkeeping through its `Tracked` tables.

use std::{
    borrow::Borrow,
    collections::{BTreeMap, HashMap, HashSet},
    hash::Hash,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value, json};

use crate::{
    persist::{Change, Snapshot},
    wire::{ApiError, ApiResult, Params, new_id},
};

/// The API version the sandbox speaks unless a request names another.
pub const DEFAULT_API_VERSION: &str = "2026-09-30.endive";

/// How the sandbox is reached and who may call it.
#[derive(Debug, Clone)]
pub struct Config {
    /// Secret keys accepted as `Authorization: Bearer …`.
    pub secret_keys: Vec<String>,
    pub publishable_key: String,
    /// The Connect platform's OAuth client id (`ca_…`).
    pub connect_client_id: String,
    /// Where browsers reach the sandbox; hosted page URLs are built from it.
    pub public_url: String,
}

struct Stored {
    seq: u64,
    /// The connected account the object belongs to (`Stripe-Account`), or the platform.
    account: Option<String>,
    value: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountLinkToken {
    pub account: String,
    pub kind: String,
    pub refresh_url: String,
    pub return_url: String,
    pub expires_at: i64,
    pub used: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountSessionSecret {
    pub account: String,
    pub expires_at: i64,
    pub onboarding_enabled: bool,
    pub external_account_collection: bool,
    /// The components the session enabled (`payouts`, `account_management`, …).
    #[serde(default)]
    pub components: Vec<String>,
}

impl AccountSessionSecret {
    pub fn allows(&self, component: &str) -> bool {
        self.components.iter().any(|c| c == component)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuthCode {
    pub account: String,
    pub used: bool,
}

/// How a test card behaves when charged (stored by name; see `CardBehaviour::name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum CardBehaviour {
    Succeeds,
    Declines(crate::wire::Decline),
    /// Needs 3D Secure on every payment.
    RequiresAuthentication,
    /// Attaches fine; every charge fails (Stripe's 4000000000000341).
    FailsAfterAttach,
    /// Succeeds, then the charge is disputed (Stripe's 4000000000000259).
    Disputed,
    /// Succeeds, with Radar rating it elevated risk (Stripe's 4000000000009235).
    ElevatedRisk,
    /// Radar blocks it as highest risk (Stripe's 4000000000004954).
    BlockedByRadar,
}

impl From<CardBehaviour> for String {
    fn from(b: CardBehaviour) -> String {
        match b {
            CardBehaviour::Succeeds => "succeeds".into(),
            CardBehaviour::Declines(d) => format!("declines:{}", d.decline_code.unwrap_or(d.code)),
            CardBehaviour::RequiresAuthentication => "requires_authentication".into(),
            CardBehaviour::FailsAfterAttach => "fails_after_attach".into(),
            CardBehaviour::Disputed => "disputed".into(),
            CardBehaviour::ElevatedRisk => "elevated_risk".into(),
            CardBehaviour::BlockedByRadar => "blocked_by_radar".into(),
        }
    }
}

impl TryFrom<String> for CardBehaviour {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        use crate::wire::{GENERIC_DECLINE, INSUFFICIENT_FUNDS};
        Ok(match name.as_str() {
            "succeeds" => CardBehaviour::Succeeds,
            "declines:generic_decline" => CardBehaviour::Declines(GENERIC_DECLINE),
            "declines:insufficient_funds" => CardBehaviour::Declines(INSUFFICIENT_FUNDS),
            "requires_authentication" => CardBehaviour::RequiresAuthentication,
            "fails_after_attach" => CardBehaviour::FailsAfterAttach,
            "disputed" => CardBehaviour::Disputed,
            "elevated_risk" => CardBehaviour::ElevatedRisk,
            "blocked_by_radar" => CardBehaviour::BlockedByRadar,
            other => return Err(format!("unknown card behaviour {other}")),
        })
    }
}

#[derive(Serialize, Deserialize)]
pub struct IdempotentResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: Value,
    pub created: i64,
}

/// A table of bookkeeping records that notes which keys changed, so they can be stored.
pub struct Tracked<K, V> {
    kind: &'static str,
    map: HashMap<K, V>,
    dirty: HashSet<K>,
}

impl<K: Hash + Eq + Clone + Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> Tracked<K, V> {
    fn new(kind: &'static str) -> Self {
        Self { kind, map: HashMap::new(), dirty: HashSet::new() }
    }

    pub fn get<Q: ?Sized + Hash + Eq>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(key)
    }

    pub fn contains<Q: ?Sized + Hash + Eq>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.map.contains_key(key)
    }

    pub fn get_mut<Q: ?Sized + Hash + Eq + ToOwned<Owned = K>>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let value = self.map.get_mut(key)?;
        self.dirty.insert(key.to_owned());
        Some(value)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.dirty.insert(key.clone());
        self.map.insert(key, value)
    }

    pub fn remove<Q: ?Sized + Hash + Eq + ToOwned<Owned = K>>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let removed = self.map.remove(key)?;
        self.dirty.insert(key.to_owned());
        Some(removed)
    }

    fn take_changes(&mut self, out: &mut Vec<Change>) {
        for key in self.dirty.drain() {
            let value = self.map.get(&key).map(|v| serde_json::to_value(v).expect("records serialise"));
            let key = serde_json::to_string(&key).expect("keys serialise");
            out.push(Change::Record { kind: self.kind, key, value });
        }
    }

    fn restore(&mut self, key: &str, value: Value) {
        match (serde_json::from_str(key), serde_json::from_value(value)) {
            (Ok(k), Ok(v)) => {
                self.map.insert(k, v);
            }
            _ => tracing::warn!(kind = self.kind, key, "a stored record could not be read; it is skipped"),
        }
    }
}

/// The sandbox state. All of it sits behind one mutex; every API call is a short critical section.
pub struct State {
    pub config: Config,
    objects: HashMap<String, Stored>,
    /// Objects changed since the changes were last taken.
    changed_objects: HashSet<String>,
    seq: u64,
    clock_offset: i64,
    /// While time-driven work runs for a moment that has passed (a renewal due an hour ago), the
    /// clock reads that moment, so what it makes is dated when it was due.
    pinned: Option<i64>,
    meta_changed: bool,
    pub account_links: Tracked<String, AccountLinkToken>,
    pub account_sessions: Tracked<String, AccountSessionSecret>,
    pub oauth_codes: Tracked<String, OAuthCode>,
    /// Accounts connected through OAuth (and not yet deauthorised).
    pub oauth_connected: Tracked<String, bool>,
    pub login_links: Tracked<String, String>,
    /// Onboarding forms opened through an account link: form token → (account, return URL).
    pub onboarding_forms: Tracked<String, (String, String)>,
    pub cards: Tracked<String, CardBehaviour>,
    pub idempotency: Tracked<(Option<String>, String), IdempotentResponse>,
    /// Secrets of webhook endpoints, by endpoint id.
    pub webhook_secrets: Tracked<String, String>,
    /// Events created by the current call, to deliver once the state is unlocked.
    pub pending_events: Vec<String>,
    pub trial_notices_sent: Tracked<String, bool>,
}

impl State {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            objects: HashMap::new(),
            changed_objects: HashSet::new(),
            seq: 0,
            clock_offset: 0,
            pinned: None,
            meta_changed: false,
            account_links: Tracked::new("account_link"),
            account_sessions: Tracked::new("account_session"),
            oauth_codes: Tracked::new("oauth_code"),
            oauth_connected: Tracked::new("oauth_connected"),
            login_links: Tracked::new("login_link"),
            onboarding_forms: Tracked::new("onboarding_form"),
            cards: Tracked::new("card"),
            idempotency: Tracked::new("idempotency"),
            webhook_secrets: Tracked::new("webhook_secret"),
            pending_events: Vec::new(),
            trial_notices_sent: Tracked::new("trial_notice"),
        }
    }

    /// A state with what was stored (objects in their creation order, bookkeeping, the clock).
    pub fn restore(config: Config, snapshot: &Snapshot) -> Self {
        let mut state = Self::new(config);
        for (id, seq, account, value) in &snapshot.objects {
            let seq = u64::try_from(*seq).unwrap_or_default();
            state.seq = state.seq.max(seq);
            state.objects.insert(id.clone(), Stored { seq, account: account.clone(), value: value.clone() });
        }
        for (kind, key, value) in &snapshot.records {
            let value = value.clone();
            match kind.as_str() {
                "account_link" => state.account_links.restore(key, value),
                "account_session" => state.account_sessions.restore(key, value),
                "oauth_code" => state.oauth_codes.restore(key, value),
                "oauth_connected" => state.oauth_connected.restore(key, value),
                "login_link" => state.login_links.restore(key, value),
                "onboarding_form" => state.onboarding_forms.restore(key, value),
                "card" => state.cards.restore(key, value),
                "idempotency" => state.idempotency.restore(key, value),
                "webhook_secret" => state.webhook_secrets.restore(key, value),
                "trial_notice" => state.trial_notices_sent.restore(key, value),
                other => tracing::warn!(kind = other, "a stored record of an unknown kind is skipped"),
            }
        }
        state.clock_offset = snapshot.meta.get("clock_offset").and_then(Value::as_i64).unwrap_or_default();
        state
    }

    /// Drops the notes of what changed (a sandbox that keeps nothing).
    pub fn forget_changes(&mut self) {
        self.changed_objects.clear();
        self.account_links.dirty.clear();
        self.account_sessions.dirty.clear();
        self.oauth_codes.dirty.clear();
        self.oauth_connected.dirty.clear();
        self.login_links.dirty.clear();
        self.onboarding_forms.dirty.clear();
        self.cards.dirty.clear();
        self.idempotency.dirty.clear();
        self.webhook_secrets.dirty.clear();
        self.trial_notices_sent.dirty.clear();
        self.meta_changed = false;
    }

    /// What changed since the last call: objects, bookkeeping, the clock.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for id in self.changed_objects.drain() {
            let stored = self.objects.get(&id).map(|s| (s.seq as i64, s.account.clone(), s.value.clone()));
            changes.push(Change::Object { id, stored });
        }
        self.account_links.take_changes(&mut changes);
        self.account_sessions.take_changes(&mut changes);
        self.oauth_codes.take_changes(&mut changes);
        self.oauth_connected.take_changes(&mut changes);
        self.login_links.take_changes(&mut changes);
        self.onboarding_forms.take_changes(&mut changes);
        self.cards.take_changes(&mut changes);
        self.idempotency.take_changes(&mut changes);
        self.webhook_secrets.take_changes(&mut changes);
        self.trial_notices_sent.take_changes(&mut changes);
        if std::mem::take(&mut self.meta_changed) {
            changes.push(Change::Meta { key: "clock_offset", value: Value::from(self.clock_offset) });
        }
        changes
    }

    /// The sandbox's clock: real time plus whatever tests advanced it by (or the moment pinned
    /// while overdue work runs).
    pub fn now(&self) -> i64 {
        self.pinned.unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
                + self.clock_offset
        })
    }

    /// Runs `f` with the sandbox clock reading `at`.
    pub fn pinned_at<T>(&mut self, at: i64, f: impl FnOnce(&mut Self) -> T) -> T {
        let before = self.pinned.replace(at);
        let out = f(self);
        self.pinned = before;
        out
    }

    /// The test clock `object` belongs to: its own `test_clock`, or its customer's.
    pub fn clock_of(&self, object: &Value) -> Option<String> {
        if let Some(clock) = object["test_clock"].as_str() {
            return Some(clock.to_owned());
        }
        let customer = object["customer"].as_str()?;
        self.any(customer)?["test_clock"].as_str().map(str::to_owned)
    }

    /// The time of a test clock (its frozen time), or the sandbox clock's without one.
    pub fn time_on(&self, clock: Option<&str>) -> i64 {
        clock.and_then(|c| self.any(c)).and_then(|c| c["frozen_time"].as_i64()).unwrap_or_else(|| self.now())
    }

    /// The time at `object`: as Stripe does with test clocks, an object of a customer on a test
    /// clock lives at the clock's frozen time.
    pub fn time_of(&self, object: &Value) -> i64 {
        self.time_on(self.clock_of(object).as_deref())
    }

    pub fn advance_clock(&mut self, seconds: i64) {
        self.set_clock_offset(self.clock_offset + seconds);
    }

    pub fn clock_offset(&self) -> i64 {
        self.clock_offset
    }

    pub fn set_clock_offset(&mut self, seconds: i64) {
        self.clock_offset = seconds;
        self.meta_changed = true;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.public_url.trim_end_matches('/'))
    }

    /// Stores a new object (its `id` already set) under `account`.
    pub fn insert(&mut self, account: Option<&str>, value: Value) -> String {
        let id = value["id"].as_str().expect("objects have ids").to_owned();
        self.seq += 1;
        self.objects.insert(id.clone(), Stored { seq: self.seq, account: account.map(str::to_owned), value });
        self.changed_objects.insert(id.clone());
        id
    }

    /// The object with `id` of type `object`, as seen from `account` (not a deleted one).
    pub fn get(&self, object: &str, id: &str, account: Option<&str>) -> Option<&Value> {
        self.objects
            .get(id)
            .filter(|s| s.value["object"] == object && s.value["deleted"] != true && visible(s, account))
            .map(|s| &s.value)
    }

    /// The object a URL names (`/v1/customers/{id}`): 404 when there is none.
    pub fn require(&self, object: &str, id: &str, account: Option<&str>, param: &str) -> ApiResult<Value> {
        self.get(object, id, account).cloned().ok_or_else(|| ApiError::no_such(object, id, param))
    }

    /// The object a request parameter names (a price's `product`): an unknown id is a bad
    /// request (400) naming the parameter, as Stripe answers it.
    pub fn referenced(&self, object: &str, id: &str, account: Option<&str>, param: &str) -> ApiResult<Value> {
        // An account that revoked the platform's access is not there for the platform any more.
        if object == "account" && self.access_revoked(id) {
            return Err(ApiError::no_such_param(object, id, param));
        }
        self.get(object, id, account).cloned().ok_or_else(|| ApiError::no_such_param(object, id, param))
    }

    /// Whether a Standard account connected through OAuth has since been disconnected from the
    /// platform (by the platform or from inside Stripe): the platform may no longer act on it.
    pub fn access_revoked(&self, account: &str) -> bool {
        self.oauth_connected.get(account) == Some(&false)
    }

    /// Retrieves an object that may have been deleted: a deleted one answers as Stripe's
    /// `{"id", "object", "deleted": true}`.
    pub fn retrieve(&self, object: &str, id: &str, account: Option<&str>, param: &str) -> ApiResult<Value> {
        self.objects
            .get(id)
            .filter(|s| s.value["object"] == object && visible(s, account))
            .map(|s| s.value.clone())
            .ok_or_else(|| ApiError::no_such(object, id, param))
    }

    /// Replaces an object with its deletion marker: retrieving it says it was deleted, lists and
    /// lookups no longer see it.
    pub fn delete(&mut self, id: &str) -> Option<Value> {
        let stored = self.objects.get_mut(id)?;
        let object = stored.value["object"].clone();
        let before = std::mem::replace(&mut stored.value, json!({ "id": id, "object": object, "deleted": true }));
        self.changed_objects.insert(id.to_owned());
        Some(before)
    }

    /// The object with `id`, whatever its type and owner (for expansion and internal flows).
    pub fn any(&self, id: &str) -> Option<&Value> {
        self.objects.get(id).map(|s| &s.value)
    }

    pub fn owner(&self, id: &str) -> Option<String> {
        self.objects.get(id).and_then(|s| s.account.clone())
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        let stored = self.objects.get_mut(id)?;
        self.changed_objects.insert(id.to_owned());
        Some(&mut stored.value)
    }

    /// Changes an object and returns the new version with the old values of the changed
    /// top-level fields (Stripe's `previous_attributes`).
    pub fn update(&mut self, id: &str, change: impl FnOnce(&mut Value)) -> (Value, Map<String, Value>) {
        let stored = self.objects.get_mut(id).expect("updated objects exist");
        self.changed_objects.insert(id.to_owned());
        let before = stored.value.clone();
        change(&mut stored.value);
        let mut previous = Map::new();
        if let (Some(old), Some(new)) = (before.as_object(), stored.value.as_object()) {
            for (k, v) in old {
                if new.get(k) != Some(v) {
                    previous.insert(k.clone(), v.clone());
                }
            }
        }
        (stored.value.clone(), previous)
    }

    pub fn remove(&mut self, id: &str) -> Option<Value> {
        let removed = self.objects.remove(id)?;
        self.changed_objects.insert(id.to_owned());
        Some(removed.value)
    }

    /// Available and pending amounts per currency of the platform (`None`) or a connected
    /// account, from its balance transactions.
    pub fn balance_of(&self, account: Option<&str>) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
        let now = self.now();
        let mut available = BTreeMap::new();
        let mut pending = BTreeMap::new();
        for bt in self.all("balance_transaction", account) {
            let currency = bt["currency"].as_str().unwrap_or("usd").to_owned();
            let net = bt["net"].as_i64().unwrap_or(0);
            let side = if bt["available_on"].as_i64().unwrap_or(0) <= now { &mut available } else { &mut pending };
            *side.entry(currency).or_insert(0) += net;
        }
        (available, pending)
    }

    /// Every object of type `object` visible from `account`, newest first.
    pub fn all(&self, object: &str, account: Option<&str>) -> Vec<Value> {
        let mut found: Vec<&Stored> = self
            .objects
            .values()
            .filter(|s| s.value["object"] == object && s.value["deleted"] != true && visible(s, account))
            .collect();
        found.sort_by_key(|s| std::cmp::Reverse(s.seq));
        found.into_iter().map(|s| s.value.clone()).collect()
    }

    /// Every object of type `object` of the platform and of every connected account, with its
    /// account, oldest first.
    pub fn all_accounts(&self, object: &str) -> Vec<(Option<String>, Value)> {
        let mut found: Vec<&Stored> =
            self.objects.values().filter(|s| s.value["object"] == object && s.value["deleted"] != true).collect();
        found.sort_by_key(|s| s.seq);
        found.into_iter().map(|s| (s.account.clone(), s.value.clone())).collect()
    }

    /// Records an event about `object` and queues it for delivery.
    pub fn emit(&mut self, kind: &str, object: &Value, previous: Option<Map<String, Value>>, account: Option<&str>) {
        let mut data = json!({ "object": object });
        if let Some(previous) = previous.filter(|p| !p.is_empty()) {
            data["previous_attributes"] = Value::Object(previous);
        }
        let mut event = json!({
            "id": new_id("evt_"),
            "object": "event",
            "api_version": DEFAULT_API_VERSION,
            "created": self.time_of(object),
            "data": data,
            "livemode": object["livemode"] == true,
            "pending_webhooks": 0,
            "request": { "id": new_id("req_"), "idempotency_key": null },
            "type": kind,
        });
        // Only events of connected accounts name one; the platform's leave the field out.
        if let Some(account) = account {
            event["account"] = json!(account);
        }
        let id = self.insert(account, event);
        self.pending_events.push(id);
    }
}

fn visible(stored: &Stored, account: Option<&str>) -> bool {
    match account {
        // The platform sees its own objects; a connected account only its own.
        None => stored.account.is_none(),
        Some(a) => stored.account.as_deref() == Some(a),
    }
}

/// Stripe's list object, paginated by `limit`, `starting_after` and `ending_before`.
pub fn paginate(items: Vec<Value>, params: &mut Params, url: &str) -> ApiResult<Value> {
    let limit = params.i64("limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            "Invalid limit: must be between 1 and 100",
            "limit",
        ));
    }
    let limit = limit as usize;
    let after = params.str("starting_after")?;
    let before = params.str("ending_before")?;
    let position = |id: &str, param: &str| {
        items.iter().position(|v| v["id"] == id).ok_or_else(|| ApiError::no_such("object", id, param))
    };
    let (data, has_more) = match (after, before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::state(
                "parameter_invalid_string",
                "You may only specify one of these parameters: starting_after, ending_before.",
            ));
        }
        (Some(after), None) => {
            let start = position(&after, "starting_after")? + 1;
            let rest = &items[start.min(items.len())..];
            (rest.iter().take(limit).cloned().collect::<Vec<_>>(), rest.len() > limit)
        }
        (None, Some(before)) => {
            let end = position(&before, "ending_before")?;
            let start = end.saturating_sub(limit);
            (items[start..end].to_vec(), start > 0)
        }
        (None, None) => (items.iter().take(limit).cloned().collect(), items.len() > limit),
    };
    Ok(json!({ "object": "list", "data": data, "has_more": has_more, "url": url }))
}

/// Replaces ids with the objects they name along each `expand[]` path (`a.b`, `data.c`).
pub fn expand(state: &State, value: &mut Value, paths: &[String]) {
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        expand_path(state, value, &segments);
    }
}

fn expand_path(state: &State, value: &mut Value, segments: &[&str]) {
    let Some((first, rest)) = segments.split_first() else { return };
    if value["object"] == "list" && *first == "data" {
        if let Some(items) = value["data"].as_array_mut() {
            for item in items {
                expand_path(state, item, rest);
            }
        }
        return;
    }
    let Some(field) = value.get_mut(*first) else { return };
    if let Some(id) = field.as_str().map(str::to_owned)
        && let Some(object) = state.any(&id)
    {
        *field = object.clone();
    }
    if field.is_object() {
        expand_path(state, field, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_form;

    fn state() -> State {
        State::new(Config {
            secret_keys: vec!["sk_test_x".into()],
            publishable_key: "pk_test_x".into(),
            connect_client_id: "ca_x".into(),
            public_url: "http://sandbox".into(),
        })
    }

    #[test]
    fn lists_are_newest_first_and_paginate_both_ways() {
        let mut s = state();
        for i in 0..5 {
            s.insert(None, json!({"id": format!("cus_{i}"), "object": "customer"}));
        }
        let all = s.all("customer", None);
        let ids = |v: &Value| {
            v["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        };
        let page = paginate(all.clone(), &mut Params::new(parse_form(b"limit=2").unwrap()), "/v1/customers").unwrap();
        assert_eq!(ids(&page), ["cus_4", "cus_3"]);
        assert_eq!(page["has_more"], true);
        let next =
            paginate(all.clone(), &mut Params::new(parse_form(b"limit=2&starting_after=cus_3").unwrap()), "").unwrap();
        assert_eq!(ids(&next), ["cus_2", "cus_1"]);
        let last =
            paginate(all.clone(), &mut Params::new(parse_form(b"limit=2&starting_after=cus_1").unwrap()), "").unwrap();
        assert_eq!((ids(&last), last["has_more"].clone()), (vec!["cus_0".to_owned()], json!(false)));
        let back = paginate(all, &mut Params::new(parse_form(b"limit=2&ending_before=cus_1").unwrap()), "").unwrap();
        assert_eq!(ids(&back), ["cus_3", "cus_2"]);
        assert_eq!(back["has_more"], true);
    }

    #[test]
    fn connected_accounts_see_only_their_objects() {
        let mut s = state();
        s.insert(Some("acct_1"), json!({"id": "cus_a", "object": "customer"}));
        s.insert(None, json!({"id": "cus_p", "object": "customer"}));
        assert!(s.get("customer", "cus_a", None).is_none());
        assert!(s.get("customer", "cus_a", Some("acct_1")).is_some());
        assert!(s.get("customer", "cus_p", Some("acct_1")).is_none());
        assert_eq!(s.all("customer", Some("acct_1")).len(), 1);
    }

    #[test]
    fn updates_report_previous_attributes() {
        let mut s = state();
        s.insert(None, json!({"id": "acct_1", "object": "account", "charges_enabled": false, "email": "a@b.c"}));
        let (new, previous) = s.update("acct_1", |a| a["charges_enabled"] = json!(true));
        assert_eq!(new["charges_enabled"], true);
        assert_eq!(Value::Object(previous), json!({"charges_enabled": false}));
    }

    #[test]
    fn expansion_follows_paths_through_lists() {
        let mut s = state();
        s.insert(None, json!({"id": "cus_1", "object": "customer", "email": "x@y.z"}));
        s.insert(None, json!({"id": "pi_1", "object": "payment_intent", "customer": "cus_1"}));
        let mut session = json!({"id": "cs_1", "payment_intent": "pi_1"});
        expand(&s, &mut session, &["payment_intent.customer".into()]);
        assert_eq!(session["payment_intent"]["customer"]["email"], "x@y.z");
        let mut list = json!({"object": "list", "data": [{"customer": "cus_1"}]});
        expand(&s, &mut list, &["data.customer".into()]);
        assert_eq!(list["data"][0]["customer"]["id"], "cus_1");
    }
}
