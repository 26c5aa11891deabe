//! What server functions need from the request: the services, the signed-in principal, and
//! the authorisation helper. Available only when rendering on the server.

use domain::{
    Services,
    auth::{self, Principal, Role},
};
use http::request::Parts;
use leptos::prelude::*;

use crate::error::AppError;

/// The principal the server's session middleware attached to this request (if any).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Option<Principal>);

/// The client's address, as the server's middleware worked it out (see `CLIENT_IP_HEADER`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

pub fn services() -> Result<Services, AppError> {
    use_context::<Services>().ok_or_else(|| internal("services missing from context"))
}

fn parts() -> Result<Parts, AppError> {
    use_context::<Parts>().ok_or_else(|| internal("request parts missing from context"))
}

fn internal(what: &str) -> AppError {
    AppError::from(domain::Error::Internal(anyhow::anyhow!("{what}")))
}

pub fn principal() -> Result<Option<Principal>, AppError> {
    Ok(parts()?.extensions.get::<CurrentUser>().and_then(|c| c.0.clone()))
}

pub fn client_ip() -> Result<Option<std::net::IpAddr>, AppError> {
    Ok(parts()?.extensions.get::<ClientIp>().and_then(|c| c.0))
}

/// Where this request comes from: its address and browser, for sessions and the sign-in throttle.
pub fn client() -> Result<auth::session::Client, AppError> {
    let parts = parts()?;
    Ok(auth::session::Client {
        ip: parts.extensions.get::<ClientIp>().and_then(|c| c.0),
        user_agent: parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
    })
}

/// Authenticates and authorises in one step: 401 without a session, 403 for other roles.
pub fn authorize(allowed: &[Role]) -> Result<Principal, AppError> {
    let principal = principal()?;
    Ok(auth::authorize(principal.as_ref(), allowed)?.clone())
}

/// The session id sent with this request, if any.
pub fn session_token() -> Result<Option<String>, AppError> {
    let parts = parts()?;
    Ok(parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(auth::session::token_from_cookie_header)
        .map(str::to_owned))
}

pub fn set_cookie(value: String) {
    if let (Some(res), Ok(value)) = (use_context::<leptos_axum::ResponseOptions>(), http::HeaderValue::from_str(&value))
    {
        res.append_header(http::header::SET_COOKIE, value);
    }
}

/// Sets the status of the page being rendered (pages are rendered in async mode, so the
/// status is still open when the data has loaded).
pub fn set_page_status(status: u16) {
    if let (Some(res), Ok(status)) = (use_context::<leptos_axum::ResponseOptions>(), http::StatusCode::from_u16(status))
    {
        res.set_status(status);
    }
}

/// Leaves `value` under `kind` for the next page load of this session, encrypted and read once,
/// so a plain form post can show a result (or a one-time secret) without JavaScript.
pub async fn put_flash(kind: &str, value: &str) -> Result<(), AppError> {
    let services = services()?;
    let token = session_token()?.ok_or_else(|| AppError::from(domain::Error::Unauthenticated))?;
    let mut conn = services.pool.acquire().await.map_err(domain::Error::from)?;
    domain::flash::put(&mut conn, &services, &token, kind, value).await?;
    Ok(())
}

/// Takes what was left under `kind` for this session (nothing without a session).
pub async fn take_flash(kind: &str) -> Result<Vec<String>, AppError> {
    let services = services()?;
    match session_token()? {
        Some(token) => Ok(domain::flash::take(&services.pool, &services, &token, kind).await?),
        None => Ok(vec![]),
    }
}

/// A day typed as 2026-11-22 (a date field), as the start of that day in UTC.
pub fn day(value: Option<String>, field: &'static str) -> Result<Option<chrono::DateTime<chrono::Utc>>, domain::Error> {
    value
        .map(|v| {
            chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
                .map_err(|_| domain::Error::invalid(field, "Use a date like 2026-11-22."))
        })
        .transpose()
}
