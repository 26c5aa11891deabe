//! A tenant's webhook endpoints and deliveries for its signed-in owner (who manages endpoints)
//! and admins (who read, test, replay and redeliver). Each route authorises, calls one domain
//! function, answers JSON.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use domain::{
    Services,
    auth::{authorize, policy},
    tenant_webhooks::{
        endpoints::{self, Endpoint, EndpointChange, NewEndpoint, WithSecret},
        log::{self, DeliveryDetail, DeliveryStatus, Filter, Replayed, TestResult},
    },
};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiJson, SessionUser};
use crate::routes::error::ApiError;

type ApiResult<T> = Result<T, ApiError>;

#[derive(Serialize)]
pub struct Endpoints {
    endpoints: Vec<Endpoint>,
}

/// An endpoint with its secret, in the one answer that shows it.
#[derive(Serialize)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    endpoint: Endpoint,
    secret: String,
}

impl From<WithSecret> for EndpointWithSecret {
    fn from(w: WithSecret) -> Self {
        Self { secret: w.secret.expose_secret().to_owned(), endpoint: w.endpoint }
    }
}

pub async fn list(State(services): State<Services>, SessionUser(user): SessionUser) -> ApiResult<Json<Endpoints>> {
    let staff = authorize(Some(&user), policy::TENANT_STAFF)?;
    Ok(Json(Endpoints { endpoints: endpoints::list(&services.pool, staff.tenant()?).await? }))
}

pub async fn create(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<EndpointWithSecret>)> {
    let owner = authorize(Some(&user), policy::TENANT_OWNER)?;
    let created = endpoints::create(&services, owner, body).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

pub async fn get(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Endpoint>> {
    let staff = authorize(Some(&user), policy::TENANT_STAFF)?;
    Ok(Json(endpoints::get(&services.pool, staff.tenant()?, id).await?))
}

pub async fn update(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<EndpointChange>,
) -> ApiResult<Json<Endpoint>> {
    let owner = authorize(Some(&user), policy::TENANT_OWNER)?;
    Ok(Json(endpoints::update(&services, owner, id, body).await?))
}

pub async fn delete(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let owner = authorize(Some(&user), policy::TENANT_OWNER)?;
    endpoints::delete(&services, owner, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Rotate {
    /// How long the current secret keeps signing beside the new one; 24 when absent.
    overlap_hours: Option<u64>,
}

pub async fn rotate_secret(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<Rotate>,
) -> ApiResult<Json<EndpointWithSecret>> {
    let owner = authorize(Some(&user), policy::TENANT_OWNER)?;
    let overlap = body.overlap_hours.map(|h| std::time::Duration::from_secs(h.saturating_mul(3600)));
    Ok(Json(endpoints::rotate_secret(&services, owner, id, overlap).await?.into()))
}

#[derive(Serialize)]
pub struct Tested {
    ok: bool,
    #[serde(flatten)]
    result: TestResult,
}

pub async fn test(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Tested>> {
    let staff = authorize(Some(&user), policy::TENANT_STAFF)?;
    let result = log::send_test(&services, staff, id).await?;
    Ok(Json(Tested { ok: result.attempt.succeeded(), result }))
}

#[derive(Deserialize)]
pub struct Replay {
    since: DateTime<Utc>,
}

pub async fn replay(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<Replay>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    let staff = authorize(Some(&user), policy::TENANT_STAFF)?;
    Ok((StatusCode::ACCEPTED, Json(log::replay(&services, staff, id, body.since).await?)))
}

#[derive(Deserialize)]
pub struct DeliveryQuery {
    endpoint: Option<Uuid>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    status: Option<DeliveryStatus>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    /// At most 200; 100 when absent.
    limit: Option<i64>,
}

#[derive(Serialize)]
pub struct Deliveries {
    deliveries: Vec<log::Delivery>,
}

pub async fn deliveries(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    Query(query): Query<DeliveryQuery>,
) -> ApiResult<Json<Deliveries>> {
    let staff = authorize(Some(&user), policy::TENANT_STAFF)?;
    let filter = Filter {
        endpoint: query.endpoint,
        event_type: query.event_type,
        status: query.status,
        since: query.since,
        until: query.until,
    };
    let limit = query.limit.unwrap_or(100);
    Ok(Json(Deliveries { deliveries: log::list(&services.pool, staff.tenant()?, &filter, limit).await? }))
}

pub async fn delivery(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DeliveryDetail>> {
    let staff = authorize(Some(&user), policy::TENANT_STAFF)?;
    Ok(Json(log::detail(&services.pool, staff.tenant()?, id).await?))
}

#[derive(Serialize)]
pub struct Queued {
    queued: bool,
}

pub async fn redeliver(
    State(services): State<Services>,
    SessionUser(user): SessionUser,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<Queued>)> {
    let staff = authorize(Some(&user), policy::TENANT_STAFF)?;
    log::redeliver(&services, staff, id).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { queued: true })))
}
