//! The worker: the top of the domain. It lists every job Remit runs (each defined beside the
//! code it runs) and their schedules, starts the applier of Stripe's events and the dispatcher of
//! tenants' webhooks beside them, runs all three in every server process (several processes
//! share the queues safely), and tells platform admins about jobs that keep failing.

use std::time::Duration;

use anyhow::Context as _;
use graphile_worker::{
    Cron, CrontabFill, JobComplete, JobFail, JobKeyMode, JobPermanentlyFail, JobSpec, WorkerOptions,
    WorkerRecoveryConfig,
};
use sqlx::PgPool;

use crate::{
    Services,
    alerts::{self, CheckPaymentHealth},
    checkout::{ExpireWinning, lifecycle::RemindBuyer},
    fees::IssueMonthlyFees,
    housekeeping::PurgeExpired,
    mail::DeliverEmail,
    queue,
    receipts::IssueReceipt,
    reconciliation::ReconcileStripeBalance,
    refunds::IssueCreditNote,
    stripe_webhooks::{
        applier::Applier,
        partitions::KeepEventPartitions,
        resync::{self, ResyncStripeEvents},
    },
    tenant_webhooks::delivery::{self, Dispatcher},
};

/// The worker that runs in every server process (unless `JOB_WORKERS` is 0). Several
/// processes share the queue safely.
pub async fn worker(services: Services) -> anyhow::Result<graphile_worker::Worker> {
    let concurrency = services.settings.job_workers;
    // Each worker checks in every quarter of the recovery time; a worker silent for the whole
    // of it is taken for dead and its jobs run again elsewhere.
    let recovery = services.settings.job_recovery;
    let resync_minutes = services.settings.stripe_resync_minutes;
    let options = WorkerOptions::default()
        .pg_pool(services.pool.clone())
        .schema(queue::SCHEMA)
        .concurrency(concurrency)
        .poll_interval(Duration::from_secs(2))
        // A job slot takes one job per signal: a poll, or the notification that a job was
        // added. Announcing each finished job the same way sends every process's slots back
        // for more, so a backlog drains at full speed instead of a few jobs per poll.
        .on(JobComplete, {
            let pool = services.pool.clone();
            move |ctx| {
                record_job(&ctx.job, "completed");
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
                record_job(&ctx.job, "failed");
                let pool = pool.clone();
                async move {
                    if *ctx.job.attempts() == queue::ALERT_AFTER_FAILURES {
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
        // Jobs of the lower layers take the parts they need rather than the whole services.
        .add_extension(services.pool.clone())
        .add_extension(services.mailer.clone())
        .add_extension(services.settings.clone())
        .add_extension(services)
        // Every job Remit runs.
        .define_job::<IssueReceipt>()
        .define_job::<IssueCreditNote>()
        .define_job::<DeliverEmail>()
        .define_job::<PurgeExpired>()
        .define_job::<CheckPaymentHealth>()
        .define_job::<ExpireWinning>()
        .define_job::<RemindBuyer>()
        .define_job::<KeepEventPartitions>()
        .define_job::<ResyncStripeEvents>()
        .define_job::<ReconcileStripeBalance>()
        .define_job::<IssueMonthlyFees>()
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
        .with_cron(
            Cron::daily_at::<KeepEventPartitions>(3, 41)
                .context("the partition upkeep schedule is malformed")?
                .fill(CrontabFill::days(1)),
        )
        // Yesterday's balance, once Stripe has dated every line of it (and any day a stopped
        // worker missed: the job reconciles every day since the last one).
        .with_cron(
            Cron::daily_at::<ReconcileStripeBalance>(4, 20)
                .context("the reconciliation schedule is malformed")?
                .payload(ReconcileStripeBalance::default())
                .context("the reconciliation schedule's payload")?
                .fill(CrontabFill::days(1)),
        )
        // Monthly fees: each series' request of the month (a missed day's come the next day).
        .with_cron(
            Cron::daily_at::<IssueMonthlyFees>(5, 10)
                .context("the monthly fees schedule is malformed")?
                .fill(CrontabFill::days(1)),
        );
    let options = match resync_minutes {
        0 => options,
        minutes => options.with_cron(
            Cron::every_n_minutes::<ResyncStripeEvents>(minutes)
                .context("the resync schedule is malformed")?
                .fill(CrontabFill::minutes(minutes)),
        ),
    };
    options.init().await.context("could not start the job worker")
}

/// Work a starting worker queues: a resync of Stripe's events (unless resyncs are off), for
/// what was missed while no process ran (one queued job however many processes start together).
pub async fn on_start(services: &Services) -> anyhow::Result<()> {
    if services.settings.stripe_resync_minutes == 0 {
        return Ok(());
    }
    let mut conn = services.pool.acquire().await?;
    let spec = JobSpec::builder().job_key(resync::JOB_KEY).job_key_mode(JobKeyMode::Replace).build();
    queue::enqueue_with(&mut conn, ResyncStripeEvents, spec).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Runs the job worker, the applier of Stripe's events and the webhook dispatcher for the life of
/// the process. A job worker stops when a query of its own fails (PostgreSQL unreachable for a
/// moment); it is then replaced after a pause that grows to 30 s, so jobs resume when the
/// database is back rather than never. The applier and the dispatcher wait out such a moment by
/// themselves.
pub struct Supervisor {
    stop: tokio::sync::watch::Sender<bool>,
    current: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<graphile_worker::Worker>>>>,
    task: tokio::task::JoinHandle<()>,
    events: Applier,
    webhooks: Dispatcher,
}

impl Supervisor {
    pub fn start(services: Services, first: graphile_worker::Worker) -> Self {
        let events = Applier::start(services.clone(), services.settings.job_workers, services.settings.job_recovery);
        let webhooks = Dispatcher::start(services.clone());
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
        Self { stop, current, task, events, webhooks }
    }

    /// Asks the running worker and the applier to stop and waits up to `grace` for their work;
    /// `false` when some was still running (another process will do it again).
    pub async fn stop(self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        if let Some(worker) = self.current.lock().expect("worker slot").clone() {
            worker.request_shutdown();
        }
        let (jobs, events, webhooks) = tokio::join!(
            async { tokio::time::timeout(grace, self.task).await.is_ok() },
            self.events.stop(grace),
            self.webhooks.stop(grace)
        );
        jobs && events && webhooks
    }
}

/// Counts a finished run of a job by task and outcome, with its latency: from when it was due
/// to when it finished (waiting in the queue included).
fn record_job(job: &graphile_worker::Job, outcome: &'static str) {
    let task = job.task_identifier().to_owned();
    metrics::counter!("remit_jobs_total", "task" => task.clone(), "outcome" => outcome).increment(1);
    let latency = (chrono::Utc::now() - *job.run_at()).to_std().unwrap_or_default();
    metrics::histogram!("remit_job_latency_seconds", "task" => task).record(latency.as_secs_f64());
}

/// Work due now, running ones included: jobs, Stripe events and webhook deliveries. Zero when
/// everything that happened so far has taken effect (work scheduled for later does not count).
pub async fn backlog(pool: &PgPool) -> crate::error::Result<i64> {
    Ok(queue::due_now(pool).await?
        + crate::stripe_webhooks::applier::due_now(pool).await?
        + delivery::due_now(pool).await?)
}

async fn alert_failing_job(pool: &PgPool, job: &graphile_worker::Job, error: &str, given_up: bool) {
    let message = if given_up {
        format!(
            "The background job {} (#{}) failed {} times and was given up: {}",
            job.task_identifier(),
            job.id(),
            job.attempts(),
            queue::short_error(error)
        )
    } else {
        format!(
            "The background job {} (#{}) has failed {} times in a row and will be retried: {}",
            job.task_identifier(),
            job.id(),
            job.attempts(),
            queue::short_error(error)
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
