//! Hourly clean-up of records past their use: expired sessions and flash messages, old OAuth
//! states, sign-in failures outside the throttle window, old Checkout requests and old records of
//! Account Session requests.

use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{auth, payouts, queue, security};

/// The hourly clean-up. A unit struct: the schedule enqueues it with a `null` payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct PurgeExpired;

impl TaskHandler for PurgeExpired {
    const IDENTIFIER: &'static str = "purge_expired";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let pool = queue::ext::<PgPool>(&ctx)?;
        let sessions = auth::session::purge_expired(pool).await.map_err(|e| e.to_string())?;
        sqlx::query!("DELETE FROM session_flash WHERE expires_at <= now()")
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query!("DELETE FROM oauth_states WHERE expires_at <= now() - interval '1 day'")
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
        let failures = auth::sign_in::purge_old_failures(pool).await.map_err(|e| e.to_string())?;
        let requests = security::purge_old_checkout_requests(pool).await.map_err(|e| e.to_string())?;
        let account_sessions = payouts::purge_old_session_records(pool).await.map_err(|e| e.to_string())?;
        tracing::info!(sessions, failures, requests, account_sessions, "purged expired records");
        Ok::<(), String>(())
    }
}
