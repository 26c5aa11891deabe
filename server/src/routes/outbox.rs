//! Downloading an attachment of an outbox email (platform admins only).

use app::server::CurrentUser;
use axum::{
    Extension,
    extract::{Path, State},
    response::Response,
};
use domain::{
    Services,
    auth::{authorize, policy},
};
use uuid::Uuid;

use super::{download, error::ApiError};

pub async fn attachment(
    State(services): State<Services>,
    Extension(CurrentUser(principal)): Extension<CurrentUser>,
    Path((email_id, attachment_id)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    authorize(principal.as_ref(), policy::PLATFORM_ADMIN)?;
    let file = domain::mail::attachment(&services.pool, email_id, attachment_id).await?;
    Ok(download::attachment(&file.filename, &file.content_type, file.content))
}
