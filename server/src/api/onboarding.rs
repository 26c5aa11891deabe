//! Hosted onboarding by one-time link (seed 001). The person opening the link needs no Remit
//! account: the token (and later the callback state) is the authorisation. A browser is
//! redirected and shown pages; other callers get JSON.

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use domain::{Error, Services, payouts::onboarding_links};
use serde::Deserialize;
use serde_json::json;

use crate::routes::error::ApiError;

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct StateQuery {
    state: Option<String>,
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

fn failure(headers: &HeaderMap, err: Error) -> Response {
    if !wants_html(headers) {
        return ApiError(err).into_response();
    }
    err.log();
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match &err {
        Error::Forbidden => "This onboarding link is not valid any more. Ask for a new one.".to_owned(),
        other => other.public_message(),
    };
    (status, Html(super::notice_page("Payout setup could not continue", &message, ("/", "Remit")))).into_response()
}

fn to_stripe(headers: &HeaderMap, url: String) -> Response {
    if wants_html(headers) { Redirect::to(&url).into_response() } else { Json(json!({ "url": url })).into_response() }
}

/// `GET /api/v1/onboard-client?token=…`: on to Stripe's hosted onboarding.
pub async fn open(State(services): State<Services>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> Response {
    let Some(token) = q.token.filter(|t| !t.is_empty()) else {
        return failure(&headers, Error::BadRequest("The link is missing its token.".into()));
    };
    match onboarding_links::open(&services, &token).await {
        Ok(url) => to_stripe(&headers, url),
        Err(err) => failure(&headers, err),
    }
}

/// Stripe's refresh URL: a new Account Link.
pub async fn refresh(State(services): State<Services>, headers: HeaderMap, Query(q): Query<StateQuery>) -> Response {
    match onboarding_links::refresh(&services, q.state.as_deref()).await {
        Ok(url) => to_stripe(&headers, url),
        Err(err) => failure(&headers, err),
    }
}

/// Stripe's return URL: where the person lands after Stripe's pages.
pub async fn finish(State(services): State<Services>, headers: HeaderMap, Query(q): Query<StateQuery>) -> Response {
    match onboarding_links::finish(&services, q.state.as_deref()).await {
        Ok(status) if wants_html(&headers) => {
            if status.account.payouts_enabled {
                let message = "Thank you. Stripe has everything it needs, and payouts are enabled.";
                return Html(super::notice_page("Payouts enabled", message, ("/", "Remit"))).into_response();
            }
            let tasks: Vec<String> = status.requirements.tasks().into_iter().map(|(task, _)| task).collect();
            let message = format!("Thank you. To enable payouts, Stripe still needs: {}.", tasks.join("; "));
            let again = format!("{}?state={}", onboarding_links::REFRESH_PATH, q.state.unwrap_or_default());
            Html(super::notice_page("Almost done", &message, (&again, "Continue on Stripe"))).into_response()
        }
        Ok(status) => Json(json!({
            "account_id": status.account.stripe_account_id,
            "charges_enabled": status.account.charges_enabled,
            "payouts_enabled": status.account.payouts_enabled,
            "details_submitted": status.account.details_submitted,
            "requirements": status.requirements,
        }))
        .into_response(),
        Err(err) => failure(&headers, err),
    }
}
