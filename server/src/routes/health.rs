//! `/healthz`: the process answers. `/readyz`: it can also reach its database.

use axum::{extract::State, http::StatusCode};
use domain::Services;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(services): State<Services>) -> (StatusCode, &'static str) {
    match sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&services.pool).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}
