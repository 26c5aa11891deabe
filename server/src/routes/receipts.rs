//! Receipt downloads: by the buyer, with their payment link's token, and by the tenant's staff,
//! who also download refunds' credit notes; a paid fee's by its client and its consultant.
//! Each response carries the receipt's SHA-256 (`Repr-Digest`, RFC 9530), which Remit checked
//! against the one it stored.

use app::server::CurrentUser;
use axum::{
    Extension,
    extract::{Path, State},
    http::{HeaderValue, header::HeaderName},
    response::Response,
};
use base64::Engine as _;
use domain::{
    Services,
    auth::{authorize, policy},
    receipts::{self, ReceiptFile},
};
use uuid::Uuid;

use super::{download, error::ApiError};

pub fn pdf_response(file: ReceiptFile) -> Response {
    let digest = base64::engine::general_purpose::STANDARD.encode(file.sha256);
    let mut response = download::attachment(&file.filename, "application/pdf", file.content);
    if let Ok(v) = HeaderValue::from_str(&format!("sha-256=:{digest}:")) {
        response.headers_mut().insert(HeaderName::from_static("repr-digest"), v);
    }
    response
}

/// `GET /pay/{token}/receipt.pdf`: the buyer's receipt (404 until the lot is paid).
pub async fn buyer(State(services): State<Services>, Path(token): Path<String>) -> Result<Response, ApiError> {
    Ok(pdf_response(receipts::for_buyer(&services, &token).await?))
}

/// `GET /winnings/{id}/receipt.pdf`: for the tenant's owner and admins; another tenant's is 404.
pub async fn staff(
    State(services): State<Services>,
    Extension(CurrentUser(principal)): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = authorize(principal.as_ref(), policy::TENANT_STAFF)?;
    let id: Uuid = id.parse().map_err(|_| domain::Error::NotFound("receipt"))?;
    Ok(pdf_response(receipts::for_tenant(&services, principal.tenant()?, None, id).await?))
}

/// `GET /winnings/{id}/refunds/{refund}/credit-note.pdf`: a refund's credit note, for the
/// tenant's owner and admins; another tenant's is 404.
pub async fn credit_note(
    State(services): State<Services>,
    Extension(CurrentUser(principal)): Extension<CurrentUser>,
    Path((id, refund)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let principal = authorize(principal.as_ref(), policy::TENANT_STAFF)?;
    let not_found = || domain::Error::NotFound("credit note");
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let refund: Uuid = refund.parse().map_err(|_| not_found())?;
    Ok(pdf_response(domain::refunds::credit_note_file(&services, principal.tenant()?, id, refund).await?))
}

/// `GET /fees/{id}/receipt.pdf`: a paid fee's receipt, for its client and the consultant who
/// billed it; anyone else's is 404.
pub async fn fee(
    State(services): State<Services>,
    Extension(CurrentUser(principal)): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = authorize(principal.as_ref(), policy::CONSULTANT_HOUSEHOLD)?;
    let id: Uuid = id.parse().map_err(|_| domain::Error::NotFound("receipt"))?;
    Ok(pdf_response(receipts::for_fee(&services, principal.user_id, id).await?))
}

/// `GET /fees/{id}/refunds/{refund}/credit-note.pdf`: a fee refund's credit note, for the client
/// and the consultant; anyone else's is 404.
pub async fn fee_credit_note(
    State(services): State<Services>,
    Extension(CurrentUser(principal)): Extension<CurrentUser>,
    Path((id, refund)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let principal = authorize(principal.as_ref(), policy::CONSULTANT_HOUSEHOLD)?;
    let not_found = || domain::Error::NotFound("credit note");
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let refund: Uuid = refund.parse().map_err(|_| not_found())?;
    Ok(pdf_response(domain::refunds::fee_credit_note_file(&services, principal.user_id, id, refund).await?))
}
