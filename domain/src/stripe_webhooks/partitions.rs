//! Upkeep of `stripe_events`' monthly partitions: next months' are made ahead of time, and a
//! month past the retention age is dropped whole once all its events are applied (a given-up
//! event keeps its month until an admin retried it). Runs daily from the worker's schedule.

use std::time::Duration;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{config::Settings, error::Result, queue};

/// Months made ahead of the current one.
const MONTHS_AHEAD: u32 = 2;
/// How long the upkeep waits for the table's lock before leaving a change to the next day: the
/// intake must not queue behind it.
const LOCK_TIMEOUT: &str = "5s";

/// The first day of `at`'s month.
pub fn month_of(at: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).expect("the first of a month exists")
}

/// The partition that holds the events created in `month` (a first day of a month).
pub fn partition_name(month: NaiveDate) -> String {
    format!("stripe_events_{:04}_{:02}", month.year(), month.month())
}

/// The month a partition holds, from its name; `None` for the default partition.
pub fn partition_month(name: &str) -> Option<NaiveDate> {
    let rest = name.strip_prefix("stripe_events_")?;
    let (year, month) = rest.split_once('_')?;
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

/// The months that should have a partition made by now: this one and the next ones.
pub fn months_to_make(now: DateTime<Utc>) -> Vec<NaiveDate> {
    let this = month_of(now);
    (0..=MONTHS_AHEAD).filter_map(|n| this.checked_add_months(Months::new(n))).collect()
}

/// Whether every event of `month` is older than the retention age.
pub fn past_retention(month: NaiveDate, now: DateTime<Utc>, retention: Duration) -> bool {
    let Some(end) = month.checked_add_months(Months::new(1)) else { return false };
    let end = end.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    end + retention <= now
}

/// What one upkeep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    pub made: Vec<String>,
    pub dropped: Vec<String>,
    /// Old months kept because an event in them is not applied.
    pub kept: Vec<String>,
    /// Old events deleted from the default partition.
    pub purged_from_default: u64,
}

/// Makes the coming months' partitions and drops those past `retention`.
pub async fn keep(pool: &PgPool, now: DateTime<Utc>, retention: Duration) -> Result<Upkeep> {
    let mut upkeep = Upkeep::default();
    let existing: Vec<String> = sqlx::query_scalar!(
        r#"SELECT c.relname::text AS "name!" FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'stripe_events'::regclass"#
    )
    .fetch_all(pool)
    .await?;

    for month in months_to_make(now) {
        let name = partition_name(month);
        if existing.contains(&name) {
            continue;
        }
        let next = month.checked_add_months(Months::new(1)).expect("a month follows");
        let statement = format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF stripe_events FOR VALUES FROM ('{month}') TO ('{next}')"
        );
        match with_lock_timeout(pool, statement).await {
            Ok(()) => upkeep.made.push(name),
            // The default partition already holds events of that month (a test clock ran ahead):
            // they stay there, where they are found as well.
            Err(err) => tracing::warn!(partition = %name, error = %err, "could not make a Stripe events partition"),
        }
    }

    for name in existing {
        let Some(month) = partition_month(&name) else { continue };
        if !past_retention(month, now, retention) {
            continue;
        }
        let unapplied: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {name} WHERE applied_at IS NULL)"
        )))
        .fetch_one(pool)
        .await?;
        if unapplied {
            upkeep.kept.push(name);
            continue;
        }
        with_lock_timeout(pool, format!("DROP TABLE {name}")).await?;
        upkeep.dropped.push(name);
    }

    let cutoff = now - retention;
    upkeep.purged_from_default =
        sqlx::query!("DELETE FROM stripe_events_default WHERE created < $1 AND applied_at IS NOT NULL", cutoff)
            .execute(pool)
            .await?
            .rows_affected();
    Ok(upkeep)
}

/// Runs a change of the table's partitions, giving up when the table stays locked.
async fn with_lock_timeout(pool: &PgPool, statement: String) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))).execute(&mut *tx).await?;
    sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The daily upkeep of the partitions. A unit struct: the schedule enqueues it with `null`.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeepEventPartitions;

impl TaskHandler for KeepEventPartitions {
    const IDENTIFIER: &'static str = "keep_stripe_event_partitions";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let pool = queue::ext::<PgPool>(&ctx)?;
        let settings = queue::ext::<std::sync::Arc<Settings>>(&ctx)?;
        let upkeep = keep(pool, Utc::now(), settings.stripe_event_retention).await.map_err(|e| e.to_string())?;
        tracing::info!(
            made = ?upkeep.made,
            dropped = ?upkeep.dropped,
            kept = ?upkeep.kept,
            purged_from_default = upkeep.purged_from_default,
            "Stripe events partitions kept"
        );
        Ok::<(), String>(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn day(y: i32, m: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, 1).unwrap()
    }

    #[test]
    fn a_partition_is_named_by_its_month_and_read_back() {
        assert_eq!(partition_name(day(2026, 3)), "stripe_events_2026_03");
        assert_eq!(partition_month("stripe_events_2026_03"), Some(day(2026, 3)));
        assert_eq!(partition_month("stripe_events_default"), None);
        assert_eq!(partition_month("stripe_events_2026_13"), None);
    }

    #[test]
    fn this_month_and_the_next_two_are_made_across_a_year_end() {
        assert_eq!(months_to_make(at("2026-11-30T23:59:59Z")), vec![day(2026, 11), day(2026, 12), day(2027, 1)]);
    }

    #[test]
    fn a_month_is_past_retention_once_its_last_event_is_that_old() {
        let ninety_days = Duration::from_secs(90 * 86_400);
        // September ends on 1 October; 90 days later is 30 December.
        assert!(!past_retention(day(2026, 9), at("2026-12-29T23:59:59Z"), ninety_days));
        assert!(past_retention(day(2026, 9), at("2026-12-30T00:00:00Z"), ninety_days));
        assert!(!past_retention(day(2026, 10), at("2026-12-30T00:00:00Z"), ninety_days));
    }
}
