//! Buyer checkout: winnings registered by a tenant's system (API key), and the seed's payment
//! routes used by the buyer's browser, which needs no account: the payment link's token, and
//! then the unguessable Checkout Session id, are what it holds.

use app::server::ClientIp;
use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use domain::{Services, checkout};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ApiJson, KeyClient};
use crate::routes::{error::ApiError, receipts::pdf_response};

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
        "order": w.order_id.map(|id| json!({
            "id": id,
            "status": w.order_status,
            "receipt_url": format!("/api/v1/winnings/{}/receipt", w.id),
        })),
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

/// `GET /api/v1/winnings/{id}/receipt`: the PDF receipt of a paid bid of the key's tenant and
/// mode; 404 before payment or for any other bid.
pub async fn receipt(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: Uuid = id.parse().map_err(|_| domain::Error::NotFound("receipt"))?;
    let file = domain::receipts::for_tenant(&services, client.tenant_id, Some(client.mode.livemode()), id).await?;
    Ok(pdf_response(file))
}

#[derive(Deserialize)]
pub struct CreateCheckout {
    token: String,
}

/// `POST /payments/checkout/create`: the Checkout URL for the bid behind a payment link.
pub async fn create(
    State(services): State<Services>,
    Extension(ClientIp(client_ip)): Extension<ClientIp>,
    ApiJson(body): ApiJson<CreateCheckout>,
) -> Result<Json<Value>, ApiError> {
    let url = checkout::start(&services, &body.token, client_ip).await?;
    Ok(Json(json!({ "url": url })))
}

/// `GET /payments/checkout/{session}/status`.
pub async fn status(State(services): State<Services>, Path(session): Path<String>) -> Result<Json<Value>, ApiError> {
    let status = checkout::status(&services, &session).await?;
    Ok(Json(serde_json::to_value(status).map_err(|e| domain::Error::Internal(e.into()))?))
}

/// `POST /payments/retry/{session}`: a new attempt after a failed or expired one.
pub async fn retry(
    State(services): State<Services>,
    Extension(ClientIp(client_ip)): Extension<ClientIp>,
    Path(session): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = checkout::retry(&services, &session, client_ip).await?;
    Ok(Json(json!({ "url": url })))
}
