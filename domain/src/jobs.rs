//! Background jobs on PostgreSQL, using graphile_worker (claims with `FOR UPDATE SKIP LOCKED`,
//! retries with exponential backoff, heartbeats so a dead process's jobs are taken over).
//!
//! Jobs are always enqueued on the caller's connection, inside the transaction that made the
//! change they follow from: a rolled-back change leaves no job, a committed one always has it.

use std::time::Duration;

use anyhow::Context as _;
use graphile_worker::{
    Cron, IntoTaskHandlerResult, JobSpec, TaskHandler, WorkerContext, WorkerOptions, WorkerRecoveryConfig, WorkerUtils,
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{Services, alerts, auth, checkout, error::Result, mail, tenant_webhooks};

/// Attempts before a job is given up; with exponential backoff the last retry is about a day
/// after the first failure.
const MAX_ATTEMPTS: i16 = 12;

/// Installs or upgrades the job queue's own schema (`graphile_worker`).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    WorkerUtils::new(pool.clone(), "graphile_worker").migrate().await.context("could not migrate the job queue")
}

/// Schedules `job` on `conn`, which should be the transaction of the change it follows from.
pub async fn enqueue<T: TaskHandler>(conn: &mut PgConnection, job: T) -> Result<()> {
    enqueue_with(conn, job, JobSpec::builder().max_attempts(MAX_ATTEMPTS).build()).await
}

pub async fn enqueue_with<T: TaskHandler>(conn: &mut PgConnection, job: T, spec: JobSpec) -> Result<()> {
    let payload = serde_json::to_value(&job).context("job payload could not be serialised")?;
    graphile_worker::sql::add_job::single::add_job(conn, "graphile_worker", T::IDENTIFIER, payload, spec, false)
        .await
        .with_context(|| format!("could not enqueue job {}", T::IDENTIFIER))?;
    Ok(())
}

/// The worker that runs in every server process. Several processes share the queue safely.
pub async fn worker(services: Services, concurrency: usize) -> anyhow::Result<graphile_worker::Worker> {
    WorkerOptions::default()
        .pg_pool(services.pool.clone())
        .schema("graphile_worker")
        .concurrency(concurrency)
        .poll_interval(Duration::from_secs(2))
        // The server handles SIGTERM itself and then asks the worker to stop.
        .listen_os_shutdown_signals(false)
        .worker_recovery(WorkerRecoveryConfig::default().sweep_threshold(Duration::from_secs(60)))
        .add_extension(services)
        .define_job::<DeliverEmail>()
        .define_job::<DeliverWebhook>()
        .define_job::<PurgeExpired>()
        .define_job::<CheckPaymentHealth>()
        .define_job::<ExpireWinning>()
        .with_cron(Cron::hourly_at::<PurgeExpired>(17).context("the clean-up schedule is malformed")?)
        .with_cron(Cron::every_n_minutes::<CheckPaymentHealth>(15).context("the health check schedule is malformed")?)
        .init()
        .await
        .context("could not start the job worker")
}

fn services(ctx: &WorkerContext) -> Result<&Services, String> {
    ctx.get_ext::<Services>().ok_or_else(|| "job worker started without services".to_owned())
}

fn is_last_attempt(ctx: &WorkerContext) -> bool {
    ctx.job().attempts() >= ctx.job().max_attempts()
}

/// Sends one recorded email (see [`mail::enqueue`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliverEmail {
    pub email_id: Uuid,
}

impl TaskHandler for DeliverEmail {
    const IDENTIFIER: &'static str = "deliver_email";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = services(&ctx)?;
        match services.mailer.deliver(&services.pool, self.email_id).await {
            Ok(()) => Ok(()),
            Err(err) => {
                if is_last_attempt(&ctx) {
                    mail::mark_failed(&services.pool, self.email_id).await.map_err(|e| e.to_string())?;
                }
                err.log();
                Err(err.to_string())
            }
        }
    }
}

/// Delivers one event to its tenant's webhook endpoint (see [`tenant_webhooks::deliver`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub event_id: Uuid,
}

impl TaskHandler for DeliverWebhook {
    const IDENTIFIER: &'static str = "deliver_webhook";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = services(&ctx)?;
        let attempt = i32::from(*ctx.job().attempts());
        tenant_webhooks::deliver(services, self.event_id, attempt).await.map_err(|err| {
            err.log();
            err.to_string()
        })
    }
}

/// When a bid's payment window closes: marks it expired unless it was paid.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExpireWinning {
    pub bid_id: Uuid,
}

impl TaskHandler for ExpireWinning {
    const IDENTIFIER: &'static str = "expire_winning";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = services(&ctx)?;
        let expired = checkout::expire(&services.pool, self.bid_id).await.map_err(|e| e.to_string())?;
        tracing::info!(bid = %self.bid_id, expired, "payment window closed");
        Ok::<(), String>(())
    }
}

/// Every 15 minutes: alert on tenants whose payments fail too often.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckPaymentHealth {}

impl TaskHandler for CheckPaymentHealth {
    const IDENTIFIER: &'static str = "check_payment_health";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = services(&ctx)?;
        alerts::check_payment_health(services).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Hourly clean-up of expired sessions and of sign-in failures outside the throttle window.
#[derive(Debug, Serialize, Deserialize)]
pub struct PurgeExpired {}

impl TaskHandler for PurgeExpired {
    const IDENTIFIER: &'static str = "purge_expired";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = services(&ctx)?;
        let sessions = auth::session::purge_expired(&services.pool).await.map_err(|e| e.to_string())?;
        sqlx::query!("DELETE FROM session_flash WHERE expires_at <= now()")
            .execute(&services.pool)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query!("DELETE FROM oauth_states WHERE expires_at <= now() - interval '1 day'")
            .execute(&services.pool)
            .await
            .map_err(|e| e.to_string())?;
        let failures = auth::sign_in::purge_old_failures(&services.pool).await.map_err(|e| e.to_string())?;
        tracing::info!(sessions, failures, "purged expired records");
        Ok::<(), String>(())
    }
}
