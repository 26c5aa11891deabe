//! The PostgreSQL pool: created once at start, database created if missing, migrated.

use std::{str::FromStr, time::Duration};

use anyhow::Context as _;
use sqlx::{
    ConnectOptions as _, PgPool,
    migrate::MigrateDatabase as _,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// Connects to `database_url`, creating the database first if it does not exist, and applies
/// every migration in `migrations/` (and the job queue's own schema).
/// Remit's migrations (`migrations/`), embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub async fn connect_and_migrate(database_url: &str) -> anyhow::Result<PgPool> {
    if !sqlx::Postgres::database_exists(database_url)
        .await
        .context("could not reach PostgreSQL (is it running, and is DATABASE_URL right?)")?
    {
        // Two processes starting together may race here; losing the race is fine.
        if let Err(err) = sqlx::Postgres::create_database(database_url).await
            && !sqlx::Postgres::database_exists(database_url).await.unwrap_or(false)
        {
            return Err(err).context("could not create the database");
        }
        tracing::info!("created the database");
    }
    let pool = connect(database_url).await?;
    migrate(&pool).await?;
    Ok(pool)
}

pub async fn connect(database_url: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        // Statements are logged at debug level only; slow ones at warn.
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .context("could not connect to the database")
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("could not apply migrations")?;
    crate::queue::migrate(pool).await
}

/// True when `err` is the violation of the named unique or check constraint.
pub fn violates(err: &sqlx::Error, constraint: &str) -> bool {
    err.as_database_error().and_then(|e| e.constraint()) == Some(constraint)
}
