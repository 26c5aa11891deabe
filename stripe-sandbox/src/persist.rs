//! Keeping the sandbox's state in PostgreSQL, so a restarted sandbox continues exactly where it
//! stopped: every object, event, idempotency record, webhook endpoint and secret, the clock's
//! offset and every delivery still to make.
//!
//! The state stays in memory (every call is a short critical section); each call's changes are
//! handed, in the order they were made, to one writer task that commits them (merging whatever
//! is waiting into one transaction). A request is answered only once its changes are committed,
//! so a sandbox killed at any moment has stored everything it told a client.
//!
//! One database serves one sandbox: a session-level advisory lock, held while the sandbox runs,
//! makes a second sandbox on the same database refuse to start rather than corrupt it.
//!
//! The queries are plain (not compile-time checked): the sandbox's four tables live in their own
//! database, which Remit's migrations and checked query data know nothing of.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::Context as _;
use serde_json::Value;
use sqlx::{Connection as _, Executor as _, PgConnection, PgPool, Row as _, postgres::PgPoolOptions};
use tokio::sync::{mpsc, watch};

/// One change to the stored state.
#[derive(Debug, Clone)]
pub enum Change {
    /// An object (`None`: removed), with its creation order and owning account.
    Object { id: String, stored: Option<(i64, Option<String>, Value)> },
    /// A bookkeeping record (`kind` names the table: account links, OAuth codes, …).
    Record { kind: &'static str, key: String, value: Option<Value> },
    /// A single value: the clock's offset, the object counter.
    Meta { key: &'static str, value: Value },
    /// A webhook delivery still to make (`None`: made, or given up).
    Delivery { id: String, value: Option<Value> },
}

/// Everything stored, as loaded at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub objects: Vec<(String, i64, Option<String>, Value)>,
    pub records: Vec<(String, String, Value)>,
    pub meta: BTreeMap<String, Value>,
    pub deliveries: Vec<(String, Value)>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sandbox_objects (
    id      text PRIMARY KEY,
    seq     bigint NOT NULL,
    account text,
    value   jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS sandbox_records (
    kind  text NOT NULL,
    key   text NOT NULL,
    value jsonb NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS sandbox_meta (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS sandbox_deliveries (
    id    text PRIMARY KEY,
    value jsonb NOT NULL
);
";

/// The advisory lock that makes one sandbox the only one on its database.
const LOCK_KEY: i64 = 0x5374_7269_7065; // "Stripe"

/// The writer's handle: submit changes, wait until they are committed.
pub struct Persist {
    queue: mpsc::UnboundedSender<(u64, Vec<Change>)>,
    submitted: AtomicU64,
    written: watch::Receiver<u64>,
    /// Held for the life of the sandbox: it carries the advisory lock.
    _lock: tokio::sync::Mutex<PgConnection>,
}

impl std::fmt::Debug for Persist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persist").field("submitted", &self.submitted.load(Ordering::SeqCst)).finish_non_exhaustive()
    }
}

/// The database's name and a URL of the same server's maintenance database.
fn maintenance_url(url: &str) -> anyhow::Result<(String, String)> {
    let mut parsed = url::Url::parse(url).context("the sandbox's database URL is malformed")?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    anyhow::ensure!(!name.is_empty(), "the sandbox's database URL names no database");
    anyhow::ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "the sandbox's database name may hold only letters, digits and underscores"
    );
    parsed.set_path("/postgres");
    Ok((name, parsed.to_string()))
}

impl Persist {
    /// Connects to (creating if missing) the database at `url`, takes the sandbox's lock on it,
    /// creates the tables, and returns the writer and what is stored.
    pub async fn open(url: &str) -> anyhow::Result<(Arc<Self>, Snapshot)> {
        let (name, maintenance) = maintenance_url(url)?;
        let mut admin =
            PgConnection::connect(&maintenance).await.context("could not reach the sandbox's PostgreSQL")?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
        if !exists {
            // Another process may create it at the same moment; either way it exists afterwards.
            let created = admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).await;
            if let Err(err) = created
                && !err.to_string().contains("already exists")
            {
                return Err(err).context("could not create the sandbox's database");
            }
        }
        admin.close().await.ok();

        let mut lock = PgConnection::connect(url).await.context("could not connect to the sandbox's database")?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(&mut lock).await?;
        anyhow::ensure!(
            locked,
            "another Stripe sandbox is already running on the database {name}; stop it, or give this one another \
             database (--database-url) or none (--memory)"
        );
        lock.execute(SCHEMA).await.context("could not create the sandbox's tables")?;

        let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
        let snapshot = load(&pool).await?;
        let (queue, receiver) = mpsc::unbounded_channel();
        let (written_tx, written) = watch::channel(0);
        tokio::spawn(writer(pool, receiver, written_tx));
        let persist =
            Arc::new(Self { queue, submitted: AtomicU64::new(0), written, _lock: tokio::sync::Mutex::new(lock) });
        Ok((persist, snapshot))
    }

    /// Hands over one call's changes (in the order calls made them: callers submit under the
    /// state's lock).
    pub fn submit(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let number = self.submitted.fetch_add(1, Ordering::SeqCst) + 1;
        if self.queue.send((number, changes)).is_err() {
            tracing::error!("the sandbox's writer stopped; changes are no longer stored");
        }
    }

    /// Waits until everything submitted so far is committed.
    pub async fn flushed(&self) {
        let target = self.submitted.load(Ordering::SeqCst);
        let mut written = self.written.clone();
        while *written.borrow_and_update() < target {
            if written.changed().await.is_err() {
                return;
            }
        }
    }
}

async fn load(pool: &PgPool) -> anyhow::Result<Snapshot> {
    let mut snapshot = Snapshot::default();
    for row in sqlx::query("SELECT id, seq, account, value FROM sandbox_objects ORDER BY seq").fetch_all(pool).await? {
        snapshot.objects.push((row.get(0), row.get(1), row.get(2), row.get(3)));
    }
    for row in sqlx::query("SELECT kind, key, value FROM sandbox_records").fetch_all(pool).await? {
        snapshot.records.push((row.get(0), row.get(1), row.get(2)));
    }
    for row in sqlx::query("SELECT key, value FROM sandbox_meta").fetch_all(pool).await? {
        snapshot.meta.insert(row.get(0), row.get(1));
    }
    for row in sqlx::query("SELECT id, value FROM sandbox_deliveries").fetch_all(pool).await? {
        snapshot.deliveries.push((row.get(0), row.get(1)));
    }
    Ok(snapshot)
}

/// Commits batches in order, merging those waiting into one transaction.
async fn writer(pool: PgPool, mut queue: mpsc::UnboundedReceiver<(u64, Vec<Change>)>, written: watch::Sender<u64>) {
    while let Some((mut last, mut changes)) = queue.recv().await {
        while let Ok((number, more)) = queue.try_recv() {
            last = number;
            changes.extend(more);
        }
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            match write(&pool, &changes).await {
                Ok(()) => break,
                Err(err) => {
                    // PostgreSQL away for a moment: keep the order, try again.
                    tracing::error!(error = %err, "the sandbox could not store its changes; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
        let _ = written.send(last);
    }
}

async fn write(pool: &PgPool, changes: &[Change]) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    for change in changes {
        match change {
            Change::Object { id, stored: Some((seq, account, value)) } => {
                sqlx::query(
                    "INSERT INTO sandbox_objects (id, seq, account, value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, account = EXCLUDED.account, value = EXCLUDED.value",
                )
                .bind(id)
                .bind(seq)
                .bind(account)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            Change::Object { id, stored: None } => {
                sqlx::query("DELETE FROM sandbox_objects WHERE id = $1").bind(id).execute(&mut *tx).await?;
            }
            Change::Record { kind, key, value: Some(value) } => {
                sqlx::query(
                    "INSERT INTO sandbox_records (kind, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value",
                )
                .bind(kind)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            Change::Record { kind, key, value: None } => {
                sqlx::query("DELETE FROM sandbox_records WHERE kind = $1 AND key = $2")
                    .bind(kind)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            Change::Meta { key, value } => {
                sqlx::query(
                    "INSERT INTO sandbox_meta (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                )
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            Change::Delivery { id, value: Some(value) } => {
                sqlx::query(
                    "INSERT INTO sandbox_deliveries (id, value) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value",
                )
                .bind(id)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            Change::Delivery { id, value: None } => {
                sqlx::query("DELETE FROM sandbox_deliveries WHERE id = $1").bind(id).execute(&mut *tx).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maintenance_database_is_on_the_same_server() {
        let (name, url) = maintenance_url("postgres://postgres@127.0.0.1:5432/remit_stripe_sandbox").unwrap();
        assert_eq!(name, "remit_stripe_sandbox");
        assert_eq!(url, "postgres://postgres@127.0.0.1:5432/postgres");
        assert!(maintenance_url("postgres://h/bad-name; DROP").is_err());
        assert!(maintenance_url("postgres://h/").is_err());
    }
}
