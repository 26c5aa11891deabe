//! The seed's session-authenticated routes for a tenant's owner and admins: Stripe Connect and
//! API keys. Each authorises, calls one domain function, answers JSON.

use app::server::CurrentUser;
use axum::{
    Extension, Json,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use domain::{
    Error, Services, api_keys,
    auth::{authorize, policy, session},
    tenant_stripe,
};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ApiJson, SessionUser};
use crate::routes::error::ApiError;

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::token_from_cookie_header)
        .map(str::to_owned)
}

pub async fn stripe_connect(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    headers: HeaderMap,
) -> ApiResult {
    let owner = authorize(Some(&user), policy::TENANT_OWNER)?;
    let token = session_token(&headers).ok_or(Error::Unauthenticated)?;
    let url = tenant_stripe::connect_url(&services, owner, &token).await?;
    Ok(Json(json!({ "url": url })))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// Stripe sends the owner's browser here. People get a page (or a redirect to the settings);
/// programs get JSON.
pub async fn stripe_callback(
    State(services): State<Services>,
    Extension(CurrentUser(user)): Extension<CurrentUser>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let token = session_token(&headers);
    let callback = tenant_stripe::Callback {
        session_token: token.as_deref(),
        state: q.state.as_deref(),
        code: q.code.as_deref(),
        error: q.error.as_deref(),
    };
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    match tenant_stripe::complete(&services, user.as_ref(), callback).await {
        Ok(_) if wants_html => Redirect::to("/settings/stripe?connected=1").into_response(),
        Ok(connection) => {
            Json(json!({ "connected": true, "account_id": connection.stripe_account_id })).into_response()
        }
        Err(err) if wants_html => {
            err.log();
            let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = match &err {
                Error::Forbidden => "This Stripe connection link is not valid for you any more (it was used, expired, or started in another session). Start again from your Stripe settings.".to_owned(),
                other => other.public_message(),
            };
            (status, Html(callback_page(&message))).into_response()
        }
        Err(err) => ApiError(err).into_response(),
    }
}

fn callback_page(message: &str) -> String {
    super::notice_page("The Stripe account was not connected", message, ("/settings/stripe", "Back to Stripe settings"))
}

pub async fn stripe_status(State(services): State<Services>, SessionUser(user): SessionUser) -> ApiResult {
    let staff = authorize(Some(&user), policy::TENANT_STAFF)?;
    let connection = tenant_stripe::status(&services, staff.tenant()?).await?;
    Ok(Json(match connection {
        None => json!({ "connected": false }),
        Some(c) => json!({
            "connected": true,
            "account_id": c.stripe_account_id,
            "connected_at": c.connected_at,
            "charges_enabled": c.charges_enabled,
            "payouts_enabled": c.payouts_enabled,
            "details_submitted": c.details_submitted,
            "requirements": c.requirements,
            "stale": c.stale,
        }),
    }))
}

pub async fn stripe_disconnect(State(services): State<Services>, SessionUser(user): SessionUser) -> ApiResult {
    let owner = authorize(Some(&user), policy::TENANT_OWNER)?;
    tenant_stripe::disconnect(&services, owner).await?;
    Ok(Json(json!({ "disconnected": true })))
}

fn key_json(k: &api_keys::KeySummary) -> Value {
    json!({
        "id": k.id,
        "mode": k.mode,
        "prefix": k.prefix,
        "last4": k.last4,
        "masked": format!("{}_…{}", k.prefix, k.last4),
        "status": if k.revoked_at.is_some() { "revoked" } else { "active" },
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
        "revoked_at": k.revoked_at,
        "revoke_reason": k.revoke_reason,
    })
}

fn new_key_json(k: &api_keys::NewKey) -> Value {
    let mut v = key_json(&k.summary);
    v["secret"] = json!(k.secret.expose_secret());
    v
}

pub async fn list_keys(State(services): State<Services>, SessionUser(user): SessionUser) -> ApiResult {
    let staff = authorize(Some(&user), policy::TENANT_STAFF)?;
    let keys = api_keys::list(&services.pool, staff.tenant()?).await?;
    Ok(Json(json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
pub struct CreateKey {
    mode: String,
}

pub async fn create_key(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    ApiJson(body): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let owner = authorize(Some(&user), policy::TENANT_OWNER)?;
    let mode = api_keys::Mode::parse(&body.mode).ok_or_else(|| Error::invalid("mode", "Choose live or test."))?;
    let key = api_keys::create(&services, owner, mode).await?;
    Ok((StatusCode::CREATED, Json(json!({ "key": new_key_json(&key) }))))
}

#[derive(Deserialize)]
pub struct Regenerate {
    key_type: String,
    #[serde(default)]
    confirm: bool,
}

pub async fn regenerate_keys(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    ApiJson(body): ApiJson<Regenerate>,
) -> ApiResult {
    let owner = authorize(Some(&user), policy::TENANT_OWNER)?;
    let selection = api_keys::Selection::parse(&body.key_type)?;
    let keys = api_keys::regenerate(&services, owner, selection, body.confirm).await?;
    Ok(Json(json!({ "keys": keys.iter().map(new_key_json).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
pub struct Revoke {
    key_id: Option<Uuid>,
    key_type: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: bool,
}

pub async fn revoke_keys(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    ApiJson(body): ApiJson<Revoke>,
) -> ApiResult {
    let owner = authorize(Some(&user), policy::TENANT_OWNER)?;
    let target = match (body.key_id, body.key_type) {
        (Some(id), None) => api_keys::RevokeTarget::Key(id),
        (None, Some(t)) => {
            if !body.confirm {
                return Err(Error::invalid("confirm", "Confirm that every matching key stops working at once.").into());
            }
            api_keys::RevokeTarget::Keys(api_keys::Selection::parse(&t)?)
        }
        _ => return Err(Error::BadRequest("Give either key_id or key_type (live, test or all).".into()).into()),
    };
    let revoked = api_keys::revoke(&services, owner, target, &body.reason).await?;
    Ok(Json(json!({ "revoked": revoked })))
}
