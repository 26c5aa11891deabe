//! Reports as CSV: the tenant's for its owner and admins, the platform's (or one tenant's) for
//! platform admins. The same filter as the report's page.

use app::server::CurrentUser;
use axum::{
    Extension,
    extract::{Query, State},
    http::{HeaderValue, header},
    response::{IntoResponse as _, Response},
};
use domain::{
    Services,
    auth::{authorize, policy},
    reports::{self, Filter, Scope},
};

use super::error::ApiError;

/// The platform admin's filter: the report's, and which tenant (none: all of them).
#[derive(Debug, Default, serde::Deserialize)]
pub struct PlatformFilter {
    #[serde(flatten)]
    filter: Filter,
    #[serde(default)]
    tenant: Option<String>,
}

/// `GET /reports/export.csv?period=&from=&to=&mode=`
pub async fn tenant(
    State(services): State<Services>,
    Extension(CurrentUser(principal)): Extension<CurrentUser>,
    Query(filter): Query<Filter>,
) -> Result<Response, ApiError> {
    let principal = authorize(principal.as_ref(), policy::TENANT_STAFF)?;
    let scope = Scope::Tenant(principal.tenant()?);
    export(&services, scope, &filter).await
}

/// `GET /admin/reports/export.csv?period=&from=&to=&mode=&tenant=`
pub async fn platform(
    State(services): State<Services>,
    Extension(CurrentUser(principal)): Extension<CurrentUser>,
    Query(query): Query<PlatformFilter>,
) -> Result<Response, ApiError> {
    authorize(principal.as_ref(), policy::PLATFORM_ADMIN)?;
    let scope = match query.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(id) => Scope::Tenant(id.parse().map_err(|_| domain::Error::NotFound("tenant"))?),
        None => Scope::Platform,
    };
    export(&services, scope, &query.filter).await
}

async fn export(services: &Services, scope: Scope, filter: &Filter) -> Result<Response, ApiError> {
    let checked = filter.check(chrono::Utc::now().date_naive())?;
    let rows = reports::report(&services.pool, scope, &checked).await?;
    let mut response = reports::csv(&rows).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"report.csv\""));
    Ok(response)
}
