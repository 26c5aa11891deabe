//! Buyer checkout: winnings registered by a tenant's system (API key), and the seed's payment
//! routes used by the buyer's browser, which needs no account: the payment link's token, and
//! then the unguessable Checkout Session id, are what it holds.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use domain::{Services, checkout};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ApiJson, KeyClient};
use crate::routes::error::ApiError;

fn winning_json(w: &checkout::Winning) -> Value {
    json!({
        "id": w.id,
        "reference": w.reference,
        "auction": w.auction,
        "lot": w.lot,
        "description": w.description,
        "buyer_email": w.buyer_email,
        "amount": w.amount,
        "currency": w.currency,
        "status": w.status,
        "livemode": w.livemode,
        "won_at": w.won_at,
        "pay_by": w.pay_by,
        "attempts": w.attempts,
    })
}

/// `POST /api/v1/winnings`: 201 for a new win (the buyer is emailed), 200 for a reference
/// registered before with the same details.
pub async fn register(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    ApiJson(input): ApiJson<checkout::NewWinning>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (winning, created) =
        checkout::register(&services, client.tenant_id, client.mode.livemode(), None, &input).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(winning_json(&winning))))
}

/// `GET /api/v1/winnings/{id}`: a bid of the key's tenant and mode; any other is 404.
pub async fn get(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: Uuid = id.parse().map_err(|_| domain::Error::NotFound("winning bid"))?;
    let winning = checkout::for_tenant(&services, client.tenant_id, client.mode.livemode(), id).await?;
    Ok(Json(winning_json(&winning)))
}

#[derive(Deserialize)]
pub struct CreateCheckout {
    token: String,
}

/// `POST /payments/checkout/create`: the Checkout URL for the bid behind a payment link.
pub async fn create(
    State(services): State<Services>,
    ApiJson(body): ApiJson<CreateCheckout>,
) -> Result<Json<Value>, ApiError> {
    let url = checkout::start(&services, &body.token).await?;
    Ok(Json(json!({ "url": url })))
}

/// `GET /payments/checkout/{session}/status`.
pub async fn status(State(services): State<Services>, Path(session): Path<String>) -> Result<Json<Value>, ApiError> {
    let status = checkout::status(&services, &session).await?;
    Ok(Json(serde_json::to_value(status).map_err(|e| domain::Error::Internal(e.into()))?))
}

/// `POST /payments/retry/{session}`: a new attempt after a failed or expired one.
pub async fn retry(State(services): State<Services>, Path(session): Path<String>) -> Result<Json<Value>, ApiError> {
    let url = checkout::retry(&services, &session).await?;
    Ok(Json(json!({ "url": url })))
}
