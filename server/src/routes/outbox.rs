//! Downloading an attachment of an outbox email (platform admins only).

use app::server::CurrentUser;
use axum::{
    Extension,
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use domain::{
    Services,
    auth::{authorize, policy},
};
use uuid::Uuid;

use super::error::ApiError;

pub async fn attachment(
    State(services): State<Services>,
    Extension(CurrentUser(principal)): Extension<CurrentUser>,
    Path((email_id, attachment_id)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    authorize(principal.as_ref(), policy::PLATFORM_ADMIN)?;
    let file = domain::mail::attachment(&services.pool, email_id, attachment_id).await?;
    let disposition = format!("attachment; filename=\"{}\"", file.filename.replace(['"', '\\', '\r', '\n'], "_"));
    let mut response = file.content.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&file.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
