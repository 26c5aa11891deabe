//! Background jobs on PostgreSQL, using graphile_worker (claims with `FOR UPDATE SKIP LOCKED`,
//! retries with exponential backoff, heartbeats so a dead process's jobs are taken over).
//!
//! Jobs are always enqueued on the caller's connection, inside the transaction that made the
//! change they follow from: a rolled-back change leaves no job, a committed one always has it.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use graphile_worker::{
    Cron, CrontabFill, IntoTaskHandlerResult, JobComplete, JobFail, JobPermanentlyFail, JobSpec, TaskHandler,
    WorkerContext, WorkerOptions, WorkerRecoveryConfig, WorkerUtils,
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    Services, alerts, auth, checkout, error::Result, mail, receipts, security, stripe_webhooks, tenant_webhooks,
};

/// Attempts before a job is given up; with exponential backoff the last retry is about a day
/// after the first failure.
const MAX_ATTEMPTS: i16 = 12;
/// A job that has failed this many times in a row is shown to platform admins as an alert
/// (and again when it is given up), not only logged.
pub const ALERT_AFTER_FAILURES: i16 = 3;

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

/// The worker that runs in every server process (unless `JOB_WORKERS` is 0). Several
/// processes share the queue safely.
pub async fn worker(services: Services) -> anyhow::Result<graphile_worker::Worker> {
    let concurrency = services.settings.job_workers;
    // Each worker checks in every quarter of the recovery time; a worker silent for the whole
    // of it is taken for dead and its jobs run again elsewhere.
    let recovery = services.settings.job_recovery;
    WorkerOptions::default()
        .pg_pool(services.pool.clone())
        .schema("graphile_worker")
        .concurrency(concurrency)
        .poll_interval(Duration::from_secs(2))
        // A job slot takes one job per signal: a poll, or the notification that a job was
        // added. Announcing each finished job the same way sends every process's slots back
        // for more, so a backlog drains at full speed instead of a few jobs per poll.
        .on(JobComplete, {
            let pool = services.pool.clone();
            move |_| {
                let pool = pool.clone();
                async move {
                    if let Err(err) = sqlx::query("SELECT pg_notify('jobs:insert', '')").execute(&pool).await {
                        tracing::debug!(error = %err, "could not announce a finished job");
                    }
                }
            }
        })
        // A job that keeps failing is told to platform admins (alerts page and email), once when it
        // has failed a few times and again when it is given up.
        .on(JobFail, {
            let pool = services.pool.clone();
            move |ctx| {
                let pool = pool.clone();
                async move {
                    if *ctx.job.attempts() == ALERT_AFTER_FAILURES {
                        alert_failing_job(&pool, &ctx.job, &ctx.error, false).await;
                    }
                }
            }
        })
        .on(JobPermanentlyFail, {
            let pool = services.pool.clone();
            move |ctx| {
                let pool = pool.clone();
                async move { alert_failing_job(&pool, &ctx.job, &ctx.error, true).await }
            }
        })
        // The server handles SIGTERM itself and then asks the worker to stop.
        .listen_os_shutdown_signals(false)
        .worker_recovery(
            WorkerRecoveryConfig::default()
                .heartbeat_interval(recovery / 4)
                .sweep_interval(recovery / 4)
                .sweep_threshold(recovery)
                .recovery_delay(Duration::ZERO),
        )
        .add_extension(services)
        .define_job::<ApplyStripeEvent>()
        .define_job::<IssueReceipt>()
        .define_job::<DeliverEmail>()
        .define_job::<DeliverWebhook>()
        .define_job::<PurgeExpired>()
        .define_job::<CheckPaymentHealth>()
        .define_job::<ExpireWinning>()
        // A schedule missed while no worker ran (a deploy, an outage) runs once when one starts.
        .with_cron(
            Cron::hourly_at::<PurgeExpired>(17)
                .context("the clean-up schedule is malformed")?
                .fill(CrontabFill::hours(1)),
        )
        .with_cron(
            Cron::every_n_minutes::<CheckPaymentHealth>(15)
                .context("the health check schedule is malformed")?
                .fill(CrontabFill::minutes(15)),
        )
        .init()
        .await
        .context("could not start the job worker")
}

/// Runs the job worker for the life of the process. A worker stops when a query of its own fails
/// (PostgreSQL unreachable for a moment); it is then replaced after a pause that grows to 30 s,
/// so jobs resume when the database is back rather than never.
pub struct Supervisor {
    stop: tokio::sync::watch::Sender<bool>,
    current: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<graphile_worker::Worker>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    pub fn start(services: Services, first: graphile_worker::Worker) -> Self {
        let (stop, mut stopping) = tokio::sync::watch::channel(false);
        let current = std::sync::Arc::new(std::sync::Mutex::new(None));
        let task = tokio::spawn({
            let current = current.clone();
            async move {
                let mut next = Some(first);
                let mut pause = Duration::from_secs(1);
                loop {
                    let worker = match next.take() {
                        Some(worker) => worker,
                        None => match worker(services.clone()).await {
                            Ok(worker) => worker,
                            Err(err) => {
                                tracing::error!(error = format!("{err:#}"), "could not restart the job worker");
                                tokio::select! {
                                    () = tokio::time::sleep(pause) => {}
                                    _ = stopping.changed() => break,
                                }
                                pause = (pause * 2).min(Duration::from_secs(30));
                                continue;
                            }
                        },
                    };
                    let worker = std::sync::Arc::new(worker);
                    *current.lock().expect("worker slot") = Some(worker.clone());
                    // A stop asked for while this worker was being made.
                    if *stopping.borrow() {
                        worker.request_shutdown();
                    }
                    let started = std::time::Instant::now();
                    let result = worker.run().await;
                    *current.lock().expect("worker slot") = None;
                    if *stopping.borrow() {
                        break;
                    }
                    match result {
                        Ok(()) => tracing::error!("the job worker stopped by itself; starting another"),
                        Err(err) => tracing::error!(error = %err, "the job worker failed; starting another"),
                    }
                    if started.elapsed() > Duration::from_secs(60) {
                        pause = Duration::from_secs(1);
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = stopping.changed() => break,
                    }
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        });
        Self { stop, current, task }
    }

    /// Asks the running worker to stop and waits up to `grace` for its jobs; `false` when some
    /// were still running (another process will run them again).
    pub async fn stop(self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        if let Some(worker) = self.current.lock().expect("worker slot").clone() {
            worker.request_shutdown();
        }
        tokio::time::timeout(grace, self.task).await.is_ok()
    }
}

async fn alert_failing_job(pool: &PgPool, job: &graphile_worker::Job, error: &str, given_up: bool) {
    let message = if given_up {
        format!(
            "The background job {} (#{}) failed {} times and was given up: {}",
            job.task_identifier(),
            job.id(),
            job.attempts(),
            short_error(error)
        )
    } else {
        format!(
            "The background job {} (#{}) has failed {} times in a row and will be retried: {}",
            job.task_identifier(),
            job.id(),
            job.attempts(),
            short_error(error)
        )
    };
    let key = format!("job:{}:{}", job.id(), if given_up { "given_up" } else { "failing" });
    let raised = async {
        let mut conn = pool.acquire().await?;
        alerts::raise_keyed(&mut conn, None, "job_failing", &message, &key).await
    };
    if let Err(err) = raised.await {
        err.log();
    }
}

/// A job's last error as people read it: graphile_worker wraps the task's message.
fn short_error(error: &str) -> String {
    let inner = error.strip_prefix("TaskError(\"").and_then(|e| e.strip_suffix("\")")).unwrap_or(error);
    inner.replace("\\\"", "\"").chars().take(300).collect()
}

/// A job that failed at least once and has not succeeded since, for the admin's jobs page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailingJob {
    pub id: i64,
    pub task: String,
    pub attempts: i16,
    pub max_attempts: i16,
    pub last_error: String,
    /// The next try; `None` when it was given up.
    pub next_run: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Jobs that failed and have not succeeded since, newest change first.
pub async fn failing(pool: &PgPool, limit: i64) -> Result<Vec<FailingJob>> {
    // The queue's own schema is made by graphile_worker at start, not by Remit's migrations, so
    // these queries are checked at run time (and by the tests) rather than at compile time.
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        task_identifier: String,
        attempts: i16,
        max_attempts: i16,
        last_error: String,
        run_at: DateTime<Utc>,
        created_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, task_identifier, attempts, max_attempts, last_error, run_at, created_at
         FROM graphile_worker.jobs WHERE last_error IS NOT NULL ORDER BY updated_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| FailingJob {
            id: r.id,
            task: r.task_identifier,
            attempts: r.attempts,
            next_run: (r.attempts < r.max_attempts).then_some(r.run_at),
            max_attempts: r.max_attempts,
            last_error: short_error(&r.last_error),
            created_at: r.created_at,
        })
        .collect())
}

/// Jobs waiting to run now, per task, for the admin's jobs page.
pub async fn queue_depth(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT task_identifier, count(*) FROM graphile_worker.jobs
         WHERE attempts < max_attempts GROUP BY task_identifier ORDER BY task_identifier",
    )
    .fetch_all(pool)
    .await?)
}

/// How many jobs are due now and not given up (running ones included): zero when the queue has
/// caught up with everything that happened so far.
pub async fn due_now(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM graphile_worker.jobs WHERE run_at <= now() AND attempts < max_attempts",
    )
    .fetch_one(pool)
    .await?)
}

/// Runs a failing (or given-up) job again now, with its attempts counted from zero.
pub async fn retry_now(pool: &PgPool, id: i64) -> Result<()> {
    let rescheduled = WorkerUtils::new(pool.clone(), "graphile_worker")
        .reschedule_jobs(
            &[id],
            graphile_worker::worker_utils::types::RescheduleJobOptions {
                run_at: Some(Utc::now()),
                attempts: Some(0),
                ..Default::default()
            },
        )
        .await
        .context("could not reschedule the job")?;
    if rescheduled.is_empty() {
        return Err(crate::Error::NotFound("job"));
    }
    sqlx::query("SELECT pg_notify('jobs:insert', '')").execute(pool).await?;
    Ok(())
}

fn services(ctx: &WorkerContext) -> Result<&Services, String> {
    ctx.get_ext::<Services>().ok_or_else(|| "job worker started without services".to_owned())
}

fn is_last_attempt(ctx: &WorkerContext) -> bool {
    ctx.job().attempts() >= ctx.job().max_attempts()
}

/// Applies one stored Stripe event (see [`stripe_webhooks::apply_stored`]). When it keeps
/// failing (Stripe unreachable for a day), platform admins are alerted.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplyStripeEvent {
    pub event_id: String,
}

impl TaskHandler for ApplyStripeEvent {
    const IDENTIFIER: &'static str = "apply_stripe_event";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = services(&ctx)?;
        match stripe_webhooks::apply_stored(services, &self.event_id).await {
            Ok(_) => Ok(()),
            Err(err) => {
                err.log();
                if is_last_attempt(&ctx) {
                    let mut conn = services.pool.acquire().await.map_err(|e| e.to_string())?;
                    let message =
                        format!("Stripe event {} could not be applied: {}", self.event_id, err.public_message());
                    alerts::raise(&mut conn, None, "stripe_event_failed", &message).await.map_err(|e| e.to_string())?;
                }
                Err(err.to_string())
            }
        }
    }
}

/// Makes an order's PDF receipt and queues the email that carries it (see [`receipts::issue`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct IssueReceipt {
    pub order_id: Uuid,
}

impl TaskHandler for IssueReceipt {
    const IDENTIFIER: &'static str = "issue_receipt";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = services(&ctx)?;
        receipts::issue(services, self.order_id).await.map(|_| ()).map_err(|err| {
            err.log();
            err.to_string()
        })
    }
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
        match services.mailer.deliver(&services.pool, &services.settings.encryption_key, self.email_id).await {
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

/// Every 15 minutes: alert on tenants whose payments fail too often. A unit struct: the schedule
/// enqueues it with a `null` payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckPaymentHealth;

impl TaskHandler for CheckPaymentHealth {
    const IDENTIFIER: &'static str = "check_payment_health";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = services(&ctx)?;
        alerts::check_payment_health(services).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Hourly clean-up of expired sessions and of sign-in failures outside the throttle window. A
/// unit struct: the schedule enqueues it with a `null` payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct PurgeExpired;

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
        let requests = security::purge_old_checkout_requests(&services.pool).await.map_err(|e| e.to_string())?;
        tracing::info!(sessions, failures, requests, "purged expired records");
        Ok::<(), String>(())
    }
}
