//! Refunds of a tenant's paid winnings by its own system (API key): `POST` makes one (honouring
//! `Idempotency-Key`), `GET` lists them, and each succeeded refund's credit note downloads.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use domain::{
    Services,
    refunds::{self, NewRefund, Refund, Requester},
};
use uuid::Uuid;

use super::{ApiJson, KeyClient};
use crate::routes::{error::ApiError, receipts::pdf_response};

fn bid_id(id: &str) -> Result<Uuid, ApiError> {
    Ok(id.parse().map_err(|_| domain::Error::NotFound("winning bid"))?)
}

/// `POST /api/v1/winnings/{id}/refunds`: 201 with a new refund; 200 with the refund an earlier
/// request with the same `Idempotency-Key` and body made; 409 for the key with another body.
pub async fn create(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<NewRefund>,
) -> Result<(StatusCode, Json<Refund>), ApiError> {
    let key =
        match headers.get("idempotency-key") {
            Some(value) => Some(value.to_str().map_err(|_| {
                domain::Error::BadRequest("An Idempotency-Key is 1 to 255 printable characters.".into())
            })?),
            None => None,
        };
    let requester = Requester::ApiKey { livemode: client.mode.livemode() };
    let refunded = refunds::Refunded::Winning { tenant_id: client.tenant_id, bid_id: bid_id(&id)? };
    let (refund, created) = refunds::create(&services, refunded, requester, &input, key).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(refund)))
}

/// `GET /api/v1/winnings/{id}/refunds`: the bid's refunds, oldest first.
pub async fn list(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    Path(id): Path<String>,
) -> Result<Json<Vec<Refund>>, ApiError> {
    let winning =
        domain::checkout::for_tenant(&services, client.tenant_id, Some(client.mode.livemode()), bid_id(&id)?).await?;
    Ok(Json(refunds::of_winning(&services, client.tenant_id, winning.id).await?))
}

/// `GET /api/v1/winnings/{id}/refunds/{refund}/credit-note`: the PDF, once it is issued.
pub async fn credit_note(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    Path((id, refund)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let winning =
        domain::checkout::for_tenant(&services, client.tenant_id, Some(client.mode.livemode()), bid_id(&id)?).await?;
    let refund: Uuid = refund.parse().map_err(|_| domain::Error::NotFound("credit note"))?;
    let file = refunds::credit_note_file(&services, client.tenant_id, winning.id, refund).await?;
    Ok(pdf_response(file))
}
