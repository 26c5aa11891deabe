//! Routes for a tenant's system, authenticated by API key.

use axum::{Json, extract::State};
use domain::{Services, accounts};
use serde_json::{Value, json};

use super::KeyClient;
use crate::routes::error::ApiError;

/// `GET /api/v1/tenant`: the tenant and mode the key belongs to.
pub async fn whoami(State(services): State<Services>, KeyClient(client): KeyClient) -> Result<Json<Value>, ApiError> {
    let tenant = accounts::tenant(&services.pool, client.tenant_id).await?;
    Ok(Json(json!({
        "tenant": { "id": tenant.id, "name": tenant.name },
        "mode": client.mode,
        "livemode": client.mode.livemode(),
    })))
}
