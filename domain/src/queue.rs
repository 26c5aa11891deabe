//! The job queue: PostgreSQL through graphile_worker (claims with `FOR UPDATE SKIP LOCKED`,
//! retries with exponential backoff, heartbeats so a dead process's jobs are taken over).
//!
//! This is the ground floor every feature builds on: it knows no feature. Each job is defined
//! beside the code it runs (`mail::DeliverEmail`, `receipts::IssueReceipt`, …) and
//! [`crate::worker`] lists them all. Jobs are always enqueued on the caller's connection,
//! inside the transaction that made the change they follow from: a rolled-back change leaves no
//! job, a committed one always has it.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use graphile_worker::{JobSpec, TaskHandler, WorkerContext, WorkerUtils};
use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Result};

/// Attempts before a job is given up; with exponential backoff the last retry is about a day
/// after the first failure.
const MAX_ATTEMPTS: i16 = 12;
/// A job that has failed this many times in a row is shown to platform admins as an alert
/// (and again when it is given up), not only logged.
pub const ALERT_AFTER_FAILURES: i16 = 3;
/// The queue's schema in the database.
pub const SCHEMA: &str = "graphile_worker";

/// Installs or upgrades the job queue's own schema (`graphile_worker`).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    WorkerUtils::new(pool.clone(), SCHEMA).migrate().await.context("could not migrate the job queue")
}

/// Schedules `job` on `conn`, which should be the transaction of the change it follows from.
pub async fn enqueue<T: TaskHandler>(conn: &mut PgConnection, job: T) -> Result<()> {
    enqueue_with(conn, job, JobSpec::builder().max_attempts(MAX_ATTEMPTS).build()).await
}

pub async fn enqueue_with<T: TaskHandler>(conn: &mut PgConnection, job: T, spec: JobSpec) -> Result<()> {
    let payload = serde_json::to_value(&job).context("job payload could not be serialised")?;
    graphile_worker::sql::add_job::single::add_job(conn, SCHEMA, T::IDENTIFIER, payload, spec, false)
        .await
        .with_context(|| format!("could not enqueue job {}", T::IDENTIFIER))?;
    Ok(())
}

/// A handle the worker was given at start (the services, or a part of them), for a job's `run`.
pub fn ext<T: Send + Sync + 'static>(ctx: &WorkerContext) -> Result<&T, String> {
    ctx.get_ext::<T>().ok_or_else(|| format!("job worker started without {}", std::any::type_name::<T>()))
}

/// Whether this run of the job is its last try: what a job does when it gives up.
pub fn is_last_attempt(ctx: &WorkerContext) -> bool {
    ctx.job().attempts() >= ctx.job().max_attempts()
}

/// A job's last error as people read it: graphile_worker wraps the task's message.
pub(crate) fn short_error(error: &str) -> String {
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
    let rescheduled = WorkerUtils::new(pool.clone(), SCHEMA)
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
        return Err(Error::NotFound("job"));
    }
    sqlx::query("SELECT pg_notify('jobs:insert', '')").execute(pool).await?;
    Ok(())
}
