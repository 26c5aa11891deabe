//! Tables that are their own queue: Stripe's events (applied once) and the deliveries of
//! tenants' webhooks (posted until the receiver takes them). Each row carries when it is due and
//! a claim lease; each process runs one [`Runner`] per such table, which claims due rows in
//! batches (one statement for as many as it has free slots, `FOR UPDATE SKIP LOCKED`, so
//! processes never take the same row), processes them concurrently, and sleeps until it is told
//! (`LISTEN` on the table's channel) or its poll comes round.
//!
//! What a row means, how it is claimed and what a failure does is the table's own business
//! ([`TableQueue`]); this module only runs the loop, the same way for every table.

use std::{future::Future, sync::Arc, time::Duration};

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::{Semaphore, watch};

use crate::error::Result;

/// How often an idle runner looks for due rows without being told: retries that came due,
/// claims whose process died, a notification lost with a connection.
const POLL: Duration = Duration::from_secs(1);

/// A table whose rows are claimed and processed by [`Runner`]s.
pub trait TableQueue: Send + Sync + 'static {
    /// One claimed row.
    type Item: Send + 'static;
    /// The channel `NOTIFY`ed after a commit that made rows due.
    const CHANNEL: &'static str;

    /// Claims up to `limit` due rows (for a lease the table chooses).
    fn claim(&self, limit: usize) -> impl Future<Output = Result<Vec<Self::Item>>> + Send;
    /// Processes one claimed row, recording its outcome; errors are the table's to record.
    fn process(&self, item: Self::Item) -> impl Future<Output = ()> + Send;
    /// Puts claimed rows that were not started back, due now (a stopping process).
    fn release(&self, unstarted: Vec<Self::Item>) -> impl Future<Output = Result<()>> + Send;
}

/// Tells every process's runner for `channel` that rows are due (after the commit that made them
/// due; a notification sent inside a busy transaction serialises its commit with every other).
pub async fn wake(pool: &PgPool, channel: &str) -> Result<()> {
    sqlx::query!("SELECT pg_notify($1, '')", channel).execute(pool).await?;
    Ok(())
}

/// The same, sent when `conn`'s transaction commits (for changes made where a separate statement
/// after the commit is out of reach; PostgreSQL folds equal notifications of one transaction).
pub async fn wake_on_commit(conn: &mut sqlx::PgConnection, channel: &str) -> Result<()> {
    sqlx::query!("SELECT pg_notify($1, '')", channel).execute(conn).await?;
    Ok(())
}

/// One process's runner for one table: `concurrency` rows at a time.
pub struct Runner {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Runner {
    pub fn start<Q: TableQueue>(queue: Q, pool: PgPool, concurrency: usize) -> Self {
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(run(Arc::new(queue), pool, concurrency.max(1), stopping));
        Self { stop, task }
    }

    /// Stops claiming and waits up to `grace` for the rows being processed; `false` when some
    /// were still running (their claims run out and another process takes them).
    pub async fn stop(self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        tokio::time::timeout(grace, self.task).await.is_ok()
    }
}

async fn run<Q: TableQueue>(queue: Arc<Q>, pool: PgPool, concurrency: usize, mut stopping: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut listener: Option<PgListener> = None;
    let mut pause = Duration::from_millis(100);
    while !*stopping.borrow() {
        if listener.is_none() {
            listener = listen(&pool, Q::CHANNEL).await;
        }
        // A batch as large as the runner's concurrency, claimed once a slot is free: the batch
        // is handed to slots as they free up, so one claim serves many rows (claiming only the
        // free slots' worth made it one claim per row under load), and at most twice the
        // concurrency is held at once; the rest stays claimable by other processes.
        if slots.available_permits() == 0 {
            tokio::select! {
                slot = slots.acquire() => drop(slot),
                _ = stopping.changed() => continue,
            }
        }
        let claimed = match queue.claim(concurrency).await {
            Ok(claimed) => {
                pause = Duration::from_millis(100);
                claimed
            }
            Err(err) => {
                // The database away for a moment: try again after a pause that grows to 30 s.
                err.log();
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stopping.changed() => {}
                }
                pause = (pause * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if claimed.is_empty() {
            // Nothing due: wait to be told (or for the poll, or a stop).
            tokio::select! {
                notified = wait_for_notification(&mut listener) => {
                    if !notified {
                        listener = None;
                    }
                }
                () = tokio::time::sleep(POLL) => {}
                _ = stopping.changed() => {}
            }
            continue;
        }
        let mut claimed = claimed.into_iter();
        while let Some(item) = claimed.next() {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("the runner's slots stay open"),
                _ = stopping.changed() => {
                    let unstarted: Vec<Q::Item> = std::iter::once(item).chain(claimed.by_ref()).collect();
                    if let Err(err) = queue.release(unstarted).await {
                        err.log();
                    }
                    break;
                }
            };
            let queue = queue.clone();
            tokio::spawn(async move {
                queue.process(item).await;
                drop(slot);
            });
        }
    }
    // Stopping: wait for the rows being processed.
    let _ = slots.acquire_many(concurrency as u32).await;
}

async fn listen(pool: &PgPool, channel: &str) -> Option<PgListener> {
    let listening = async {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(channel).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    listening
        .await
        .inspect_err(|err| tracing::warn!(error = %err, channel, "could not listen for due rows; polling"))
        .ok()
}

/// Waits for a notification; `false` when the listening connection failed.
async fn wait_for_notification(listener: &mut Option<PgListener>) -> bool {
    match listener {
        Some(listener) => listener.recv().await.is_ok(),
        None => std::future::pending().await,
    }
}
