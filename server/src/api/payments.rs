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
use domain::{Services, checkout, refunds::Refund};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ApiJson, KeyClient};
use crate::routes::{error::ApiError, receipts::pdf_response};

/// The order a paid winning made.
#[derive(Serialize)]
pub struct OrderResource {
    id: Uuid,
    status: Option<String>,
    receipt_url: String,
}

/// A winning as the API returns it; `refunds` and `disputes` with `GET` of one winning.
#[derive(Serialize)]
pub struct WinningResource {
    #[serde(flatten)]
    winning: checkout::Winning,
    order: Option<OrderResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refunds: Option<Vec<Refund>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disputes: Option<Vec<checkout::Dispute>>,
}

impl WinningResource {
    fn new(w: checkout::Winning) -> Self {
        let order = w.order_id.map(|id| OrderResource {
            id,
            status: w.order_status.clone(),
            receipt_url: format!("/api/v1/winnings/{}/receipt", w.id),
        });
        Self { winning: w, order, refunds: None, disputes: None }
    }
}

/// `POST /api/v1/winnings`: 201 for a new win (the buyer is emailed), 200 for a reference
/// registered before with the same details.
pub async fn register(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    ApiJson(input): ApiJson<checkout::NewWinning>,
) -> Result<(StatusCode, Json<WinningResource>), ApiError> {
    let (winning, created) =
        checkout::register(&services, client.tenant_id, client.mode.livemode(), None, &input).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(WinningResource::new(winning))))
}

/// `GET /api/v1/winnings`'s query: the filter, and the page.
#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(flatten)]
    filter: checkout::Filter,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// A page of winnings and where the next starts.
#[derive(Serialize)]
pub struct WinningsPage {
    data: Vec<WinningResource>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// `GET /api/v1/winnings`: the key's tenant's winnings of the key's mode, newest first, filtered
/// like the staff's list (`q`, `status`, `from`, `to`), `limit` (1–200, default 50) at a time.
pub async fn list(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Result<Json<WinningsPage>, ApiError> {
    let mut filter = query.filter;
    filter.mode = Some(if client.mode.livemode() { "live" } else { "test" }.to_owned());
    let limit = query.limit.unwrap_or(50);
    let (rows, next_cursor) =
        checkout::search(&services.pool, client.tenant_id, &filter, query.cursor.as_deref(), limit).await?;
    Ok(Json(WinningsPage { data: rows.into_iter().map(WinningResource::new).collect(), next_cursor }))
}

/// `GET /api/v1/winnings/{id}`: a bid of the key's tenant and mode with its refunds and
/// disputes; any other is 404.
pub async fn get(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    Path(id): Path<String>,
) -> Result<Json<WinningResource>, ApiError> {
    let id: Uuid = id.parse().map_err(|_| domain::Error::NotFound("winning bid"))?;
    let winning = checkout::for_tenant(&services, client.tenant_id, Some(client.mode.livemode()), id).await?;
    let mut resource = WinningResource::new(winning);
    resource.refunds = Some(domain::refunds::of_winning(&services, client.tenant_id, id).await?);
    resource.disputes = Some(checkout::disputes(&services, client.tenant_id, id).await?);
    Ok(Json(resource))
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
pub struct Cancellation {
    reason: String,
}

/// `POST /api/v1/winnings/{id}/cancel`: cancels an unpaid win of the key's tenant and mode; the
/// buyer is emailed the reason and the tenant's endpoints get `winning.cancelled`.
pub async fn cancel(
    State(services): State<Services>,
    KeyClient(client): KeyClient,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Cancellation>,
) -> Result<Json<WinningResource>, ApiError> {
    let id: Uuid = id.parse().map_err(|_| domain::Error::NotFound("winning bid"))?;
    let actor = checkout::lifecycle::Actor::ApiKey { livemode: client.mode.livemode() };
    checkout::lifecycle::cancel(&services, client.tenant_id, actor, id, &body.reason).await?;
    let winning = checkout::for_tenant(&services, client.tenant_id, Some(client.mode.livemode()), id).await?;
    Ok(Json(WinningResource::new(winning)))
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
