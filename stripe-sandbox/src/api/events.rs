//! Events and webhook endpoints.

use serde_json::{Value, json};

use super::Call;
use crate::{
    objects,
    state::{State, paginate},
    wire::{ApiError, ApiResult, merge_metadata, new_id},
};

pub fn list(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let kind = call.params.str("type")?;
    let types = call.params.strings("types")?;
    let created = super::created_range(&mut call.params)?;
    let matches = |e: &Value| {
        let t = e["type"].as_str().unwrap_or_default();
        let in_type = match &kind {
            Some(k) if k.ends_with(".*") => t.starts_with(&k[..k.len() - 1]),
            Some(k) => t == k,
            None => true,
        };
        let at = e["created"].as_i64().unwrap_or(0);
        in_type && (types.is_empty() || types.iter().any(|x| x == t)) && at >= created.0 && at <= created.1
    };
    let items: Vec<Value> = state.all("event", call.account()).into_iter().filter(matches).collect();
    paginate(items, &mut call.params, "/v1/events")
}

fn check_url(url: &str) -> ApiResult<()> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "url_invalid",
            "Invalid URL: An explicit scheme (such as https) must be provided.",
            "url",
        ))
    }
}

pub fn create_endpoint(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let url = p.required_str("url")?;
    let enabled_events = p.strings("enabled_events")?;
    let connect = p.bool("connect")?.unwrap_or(false);
    let api_version = p.str("api_version")?;
    let description = p.str("description")?;
    let metadata = p.metadata()?.unwrap_or_default();
    p.check()?;
    check_url(&url)?;
    if enabled_events.is_empty() {
        return Err(ApiError::missing("enabled_events"));
    }
    let endpoint = objects::NewWebhookEndpoint {
        id: new_id("we_"),
        url,
        enabled_events,
        connect,
        api_version,
        description,
        metadata,
        created: state.now(),
    };
    Ok(register_endpoint(state, endpoint, None))
}

/// Stores an endpoint with `secret` (or a new one) and returns it, secret included, as the
/// create call does.
pub fn register_endpoint(state: &mut State, endpoint: objects::NewWebhookEndpoint, secret: Option<String>) -> Value {
    let id = endpoint.id.clone();
    let endpoint = objects::webhook_endpoint(endpoint);
    state.insert(None, endpoint.clone());
    let secret = secret.unwrap_or_else(|| format!("whsec_{}", new_id("")));
    state.webhook_secrets.insert(id, secret.clone());
    let mut shown = endpoint;
    shown["secret"] = json!(secret);
    shown
}

pub fn update_endpoint(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    state.require("webhook_endpoint", id, None, "webhook_endpoint")?;
    let p = &mut call.params;
    let url = p.str("url")?;
    let enabled_events = p.has("enabled_events").then(|| p.strings("enabled_events")).transpose()?;
    let disabled = p.bool("disabled")?;
    let description = p.str_or_unset("description")?;
    let metadata = p.metadata()?;
    p.check()?;
    if let Some(u) = &url {
        check_url(u)?;
    }
    let (endpoint, _) = state.update(id, |e| {
        if let Some(u) = url {
            e["url"] = json!(u);
        }
        if let Some(events) = enabled_events {
            e["enabled_events"] = json!(events);
        }
        if let Some(d) = disabled {
            e["status"] = json!(if d { "disabled" } else { "enabled" });
        }
        if let Some(d) = description {
            e["description"] = json!(d);
        }
        if let Some(m) = metadata {
            merge_metadata(e, m);
        }
    });
    Ok(endpoint)
}

pub fn delete_endpoint(state: &mut State, call: &Call<'_>, id: &str) -> ApiResult<Value> {
    state.require("webhook_endpoint", id, call.account(), "webhook_endpoint")?;
    state.remove(id);
    state.webhook_secrets.remove(id);
    Ok(json!({ "id": id, "object": "webhook_endpoint", "deleted": true }))
}
