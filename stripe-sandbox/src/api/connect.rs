//! Connected accounts, account links, account sessions and login links.

use serde_json::{Value, json};

use super::Call;
use crate::{
    flows, objects,
    state::{AccountLinkToken, AccountSessionSecret, State},
    wire::{ApiError, ApiResult, merge_metadata, new_id},
};

const ACCOUNT_TYPES: &[&str] = &["custom", "express", "standard", "none"];

pub fn create_account(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let kind = p.one_of("type", ACCOUNT_TYPES)?.unwrap_or_else(|| "express".into());
    let country = p.str("country")?.unwrap_or_else(|| "US".into()).to_uppercase();
    if country.len() != 2 {
        return Err(ApiError::invalid("country_unsupported", format!("Country '{country}' is unknown."), "country"));
    }
    let email = p.str("email")?;
    let business_type = p.one_of("business_type", &["individual", "company", "non_profit", "government_entity"])?;
    let metadata = p.metadata()?.unwrap_or_default();
    if let Some(mut capabilities) = p.object("capabilities")? {
        for cap in ["card_payments", "transfers"] {
            if let Some(mut c) = capabilities.object(cap)? {
                c.bool("requested")?;
                c.finish()?;
            }
        }
        capabilities.finish()?;
    }
    if let Some(mut controller) = p.object("controller")? {
        for key in ["fees", "losses", "stripe_dashboard"] {
            if let Some(mut o) = controller.object(key)? {
                o.str("payer")?;
                o.str("payments")?;
                o.str("type")?;
                o.finish()?;
            }
        }
        controller.str("requirement_collection")?;
        controller.finish()?;
    }
    p.check()?;
    let id = new_id("acct_");
    let account = objects::account(objects::NewAccount {
        id: id.clone(),
        kind: &kind,
        country: &country,
        email,
        business_type,
        metadata,
        created: state.now(),
    });
    // Stripe sends no event for an account the platform created (there is no `account.created`).
    state.insert(None, account.clone());
    Ok(account)
}

pub fn update_account(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    state.require("account", id, None, "account")?;
    let p = &mut call.params;
    let email = p.str("email")?;
    let business_type = p.one_of("business_type", &["individual", "company", "non_profit", "government_entity"])?;
    let metadata = p.metadata()?;
    p.check()?;
    let (account, previous) = state.update(id, |a| {
        if let Some(e) = email {
            a["email"] = json!(e);
        }
        if let Some(b) = business_type {
            a["business_type"] = json!(b);
        }
        if let Some(m) = metadata {
            merge_metadata(a, m);
        }
    });
    state.emit("account.updated", &account, Some(previous), Some(id));
    Ok(account)
}

/// `POST /v1/accounts/{id}/reject`: the platform rejects an account it is responsible for; it
/// can no longer take charges or receive payouts.
pub fn reject_account(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    let account = state.require("account", id, None, "account")?;
    let reason = call
        .params
        .one_of("reason", &["fraud", "terms_of_service", "other"])?
        .ok_or_else(|| ApiError::missing("reason"))?;
    call.params.check()?;
    if account["type"] == "standard" {
        return Err(ApiError::state(
            "account_invalid",
            "Standard accounts cannot be rejected by the platform; only accounts the platform is responsible for.",
        ));
    }
    let (account, previous) = state.update(id, |a| {
        a["charges_enabled"] = json!(false);
        a["payouts_enabled"] = json!(false);
        a["requirements"]["disabled_reason"] = json!(format!("rejected.{reason}"));
        if let Some(capabilities) = a["capabilities"].as_object_mut() {
            for status in capabilities.values_mut() {
                *status = json!("inactive");
            }
        }
    });
    state.emit("account.updated", &account, Some(previous), Some(id));
    Ok(account)
}

pub fn delete_account(state: &mut State, id: &str) -> ApiResult<Value> {
    let account = state.require("account", id, None, "account")?;
    if account["type"] == "standard" && state.oauth_connected.get(id) == Some(&true) {
        return Err(ApiError::state(
            "account_invalid",
            "You cannot delete a Standard account connected through OAuth; deauthorize it instead.",
        ));
    }
    state.remove(id);
    Ok(json!({ "id": id, "object": "account", "deleted": true }))
}

pub fn create_login_link(state: &mut State, id: &str) -> ApiResult<Value> {
    let account = state.require("account", id, None, "account")?;
    if account["type"] != "express" {
        return Err(ApiError::state("account_invalid", "Login links can only be created for Express accounts."));
    }
    if account["details_submitted"] != true {
        return Err(ApiError::state(
            "account_invalid",
            "Cannot create a login link for an account that has not completed onboarding.",
        ));
    }
    let token = new_id("");
    state.login_links.insert(token.clone(), id.to_owned());
    Ok(json!({ "object": "login_link", "created": state.now(), "url": state.url(&format!("/express/{token}")) }))
}

pub fn create_account_link(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let account = p.required_str("account")?;
    let kind = p.one_of("type", &["account_onboarding", "account_update"])?.ok_or_else(|| ApiError::missing("type"))?;
    let refresh_url = p.required_str("refresh_url")?;
    let return_url = p.required_str("return_url")?;
    p.one_of("collect", &["currently_due", "eventually_due"])?;
    if let Some(mut c) = p.object("collection_options")? {
        c.str("fields")?;
        c.str("future_requirements")?;
        c.finish()?;
    }
    p.check()?;
    for (param, url) in [("refresh_url", &refresh_url), ("return_url", &return_url)] {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ApiError::invalid("url_invalid", format!("Not a valid URL: {param}"), param));
        }
    }
    state.referenced("account", &account, None, "account")?;
    let now = state.now();
    let token = new_id("");
    let expires_at = now + 300;
    state
        .account_links
        .insert(token.clone(), AccountLinkToken { account, kind, refresh_url, return_url, expires_at, used: false });
    Ok(json!({
        "object": "account_link",
        "created": now,
        "expires_at": expires_at,
        "url": state.url(&format!("/connect/onboarding/{token}")),
    }))
}

pub fn create_account_session(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let account = p.required_str("account")?;
    let mut requested = p.object("components")?.ok_or_else(|| ApiError::missing("components"))?;
    // Every component of the API version, with the features each takes; the answer lists them
    // all, enabled and configured as asked.
    let mut components = objects::session_components();
    let names: Vec<String> = components.as_object().map(|c| c.keys().cloned().collect()).unwrap_or_default();
    for name in names {
        let Some(mut component) = requested.object(&name)? else { continue };
        let enabled =
            component.bool("enabled")?.ok_or_else(|| ApiError::missing(&format!("components[{name}][enabled]")))?;
        components[&name]["enabled"] = json!(enabled);
        if let Some(mut features) = component.object("features")? {
            let feature_names: Vec<String> =
                components[&name]["features"].as_object().map(|f| f.keys().cloned().collect()).unwrap_or_default();
            for feature in feature_names {
                if let Some(value) = features.bool(&feature)? {
                    components[&name]["features"][&feature] = json!(value);
                }
            }
            features.finish()?;
        }
        component.finish()?;
    }
    let onboarding_enabled = components["account_onboarding"]["enabled"] == true;
    let external = components["account_onboarding"]["features"]["external_account_collection"] == true;
    let enabled: Vec<String> = components
        .as_object()
        .map(|c| c.iter().filter(|(_, c)| c["enabled"] == true).map(|(name, _)| name.clone()).collect())
        .unwrap_or_default();
    requested.finish()?;
    p.check()?;
    if enabled.is_empty() {
        return Err(ApiError::invalid(
            "parameter_missing",
            "You must enable at least one component in `components`.",
            "components",
        ));
    }
    state.referenced("account", &account, None, "account")?;
    let now = state.now();
    let client_secret = format!("accs_secret__{}", &new_id("")[..24]);
    let expires_at = now + 3600;
    state.account_sessions.insert(
        client_secret.clone(),
        AccountSessionSecret {
            account: account.clone(),
            expires_at,
            onboarding_enabled,
            external_account_collection: external,
            components: enabled,
        },
    );
    Ok(json!({
        "object": "account_session",
        "account": account,
        "client_secret": client_secret,
        "components": components,
        "expires_at": expires_at,
        "livemode": false,
    }))
}

/// `POST /oauth/token`: exchanges an authorization code for the connected account.
pub fn oauth_token(state: &mut State, mut params: crate::wire::Params) -> Result<Value, Value> {
    let oauth_error = |error: &str, description: &str| json!({ "error": error, "error_description": description });
    let grant = params.str("grant_type").ok().flatten();
    let code = params.str("code").ok().flatten();
    let _ = params.str("client_secret");
    let _ = params.str("scope");
    if grant.as_deref() != Some("authorization_code") {
        return Err(oauth_error("unsupported_grant_type", "Only authorization_code is supported."));
    }
    let Some(code) = code else { return Err(oauth_error("invalid_request", "No authorization code provided")) };
    let Some(entry) = state.oauth_codes.get_mut(&code) else {
        return Err(oauth_error("invalid_grant", &format!("Authorization code does not exist: {code}")));
    };
    if entry.used {
        return Err(oauth_error("invalid_grant", &format!("Authorization code already used: {code}")));
    }
    entry.used = true;
    let account = entry.account.clone();
    state.oauth_connected.insert(account.clone(), true);
    Ok(json!({
        "access_token": format!("sk_test_{}", &new_id("")[..24]),
        "livemode": false,
        "refresh_token": format!("rt_{}", &new_id("")[..24]),
        "scope": "read_write",
        "stripe_publishable_key": format!("pk_test_{}", &new_id("")[..24]),
        "stripe_user_id": account,
        "token_type": "bearer",
    }))
}

/// `POST /oauth/deauthorize`: disconnects an account from the platform.
pub fn oauth_deauthorize(state: &mut State, mut params: crate::wire::Params) -> Result<Value, Value> {
    let client_id = params.str("client_id").ok().flatten();
    let user = params.str("stripe_user_id").ok().flatten();
    if client_id.as_deref() != Some(state.config.connect_client_id.as_str()) {
        return Err(json!({ "error": "invalid_client", "error_description": "No such application." }));
    }
    let Some(user) = user.filter(|u| revoke_access(state, u)) else {
        return Err(
            json!({ "error": "invalid_client", "error_description": "This application is not connected to stripe account." }),
        );
    };
    Ok(json!({ "stripe_user_id": user }))
}

/// Disconnects a Standard account from the platform, as the platform's deauthorize call or the
/// account holder's "Disconnect" in their Stripe dashboard does: the platform loses access to it
/// and `account.application.deauthorized` is sent. `false` when it was not connected.
pub fn revoke_access(state: &mut State, account: &str) -> bool {
    if state.oauth_connected.get(account) != Some(&true) {
        return false;
    }
    state.oauth_connected.insert(account.to_owned(), false);
    state.emit(
        "account.application.deauthorized",
        &json!({ "id": state.config.connect_client_id, "object": "application", "name": "Remit" }),
        None,
        Some(account),
    );
    true
}

/// Creates a Standard account for someone who authorised the platform on the OAuth page.
pub fn oauth_grant(state: &mut State, email: Option<String>) -> String {
    let id = new_id("acct_");
    let mut account = objects::account(objects::NewAccount {
        id: id.clone(),
        kind: "standard",
        country: "US",
        email,
        business_type: Some("company".into()),
        metadata: Default::default(),
        created: state.now(),
    });
    // A Standard account arrives already onboarded with Stripe.
    account["details_submitted"] = json!(true);
    account["charges_enabled"] = json!(true);
    account["payouts_enabled"] = json!(true);
    account["capabilities"] = json!({ "card_payments": "active", "transfers": "active" });
    account["requirements"] = objects::requirements(&[], &[], None, None);
    account["controller"] = json!({ "type": "account", "is_controller": false });
    state.insert(None, account);
    let code = format!("ac_{}", &new_id("")[..24]);
    state.oauth_codes.insert(code.clone(), crate::state::OAuthCode { account: id, used: false });
    code
}

/// The account behind an account session's client secret, if it is valid for onboarding (or,
/// once onboarded, for managing the account).
pub fn session_account(state: &State, client_secret: &str) -> Result<AccountSessionSecret, &'static str> {
    session_for(state, client_secret, "account_onboarding")
        .or_else(|_| session_for(state, client_secret, "account_management"))
}

/// The account behind an account session's client secret, if it is valid and enabled
/// `component`.
pub fn session_for(state: &State, client_secret: &str, component: &str) -> Result<AccountSessionSecret, &'static str> {
    let session = state.account_sessions.get(client_secret).ok_or("This session is not valid.")?;
    if session.expires_at <= state.now() {
        return Err("This session has expired. Request a new one.");
    }
    // Sessions stored before components were recorded allowed onboarding only.
    let allowed = session.allows(component) || (component == "account_onboarding" && session.onboarding_enabled);
    if !allowed {
        return Err("This session does not enable this component.");
    }
    Ok(session.clone())
}

/// Uses an account link: valid once, before it expires.
pub fn take_account_link(state: &mut State, token: &str) -> Result<AccountLinkToken, Option<String>> {
    let now = state.now();
    let link = state.account_links.get_mut(token).ok_or(None)?;
    if link.used || link.expires_at <= now {
        return Err(Some(link.refresh_url.clone()));
    }
    link.used = true;
    Ok(link.clone())
}

pub fn submit(state: &mut State, account: &str, details: flows::OnboardingDetails) -> ApiResult<Value> {
    flows::submit_onboarding(state, account, details)
}
