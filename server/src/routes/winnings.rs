//! The tenant staff's CSV export of winnings, streamed as the database reads the rows.

use app::server::CurrentUser;
use axum::{
    Extension,
    body::Body,
    extract::{Query, State},
    http::{HeaderValue, header},
    response::Response,
};
use domain::{
    Services,
    auth::{authorize, policy},
    checkout::{self, Filter},
};
use futures_util::StreamExt as _;

use super::error::ApiError;

/// `GET /winnings/export.csv?q=&status=&mode=&from=&to=`: every winning the filter shows, for the
/// tenant's owner and admins.
pub async fn export(
    State(services): State<Services>,
    Extension(CurrentUser(principal)): Extension<CurrentUser>,
    Query(filter): Query<Filter>,
) -> Result<Response, ApiError> {
    let principal = authorize(principal.as_ref(), policy::TENANT_STAFF)?;
    let checked = filter.check()?;
    let lines = checkout::export_csv(services.pool.clone(), principal.tenant()?, checked).map(|line| {
        line.map_err(|err| {
            err.log();
            std::io::Error::other("the export stopped")
        })
    });
    let mut response = Response::new(Body::from_stream(lines));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"winnings.csv\""));
    Ok(response)
}
