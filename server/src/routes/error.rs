//! JSON errors for the plain routes, from the domain's one error type.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError(pub domain::Error);

impl From<domain::Error> for ApiError {
    fn from(err: domain::Error) -> Self {
        Self(err)
    }
}

#[derive(Serialize)]
struct Body {
    status: u16,
    message: String,
    field: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log();
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Body { status: status.as_u16(), message: self.0.public_message(), field: self.0.field() };
        let mut response = (status, Json(body)).into_response();
        if let Some(wait) = self.0.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        }
        response
    }
}
