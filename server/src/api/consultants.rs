//! A signed-in consultant's own payout setup: the connected account and Account Sessions for
//! Stripe's embedded onboarding.

use axum::{Json, extract::State, http::StatusCode};
use domain::{
    Services,
    auth::{authorize, policy},
    payouts,
};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::SessionUser;
use crate::routes::error::ApiError;

/// `POST /api/v1/consultants/me/payment-account`: creates the account, or returns the one there is.
pub async fn create_payment_account(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let consultant = authorize(Some(&user), policy::CONSULTANT)?;
    let account = payouts::create_account(&services, consultant).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "account_id": account.stripe_account_id,
            "charges_enabled": account.charges_enabled,
            "payouts_enabled": account.payouts_enabled,
            "details_submitted": account.details_submitted,
        })),
    ))
}

/// `POST /api/v1/consultants/me/account-session`: a fresh session for the consultant's own account.
pub async fn create_account_session(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
) -> Result<Json<Value>, ApiError> {
    let consultant = authorize(Some(&user), policy::CONSULTANT)?;
    let session = payouts::account_session(&services, consultant, payouts::SessionPurpose::Setup).await?;
    Ok(Json(json!({
        "client_secret": session.client_secret.expose_secret(),
        "expires_at": session.expires_at.timestamp(),
        "account_id": session.account_id,
        "allows_updates": session.allows_updates,
        "return_url": session.return_url,
    })))
}
