//! How Account Session requests end, recorded one row each, and the FG-003 alert: more than 5 %
//! of the last hour's requests failing (with at least 20 of them) raises one alert per hour for
//! platform admins, with the failures counted by reason.
//!
//! A request refused by the hourly limit counts as a failure: the consultant asked for a session
//! and got none, and a page that keeps asking is worth an admin's look. The alert's counts say
//! which reasons they were, so a limit hit reads differently from Stripe failing.

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Services, alerts, error::Result, states::AccountSessionOutcome};

/// Requests within the hour below which the failure rate says too little to alert on.
pub const MIN_REQUESTS: i64 = 20;
/// The share of failed requests, in percent, above which an alert is raised.
pub const FAILURE_PERCENT: i64 = 5;

/// One hour's requests: how many there were, and the failures by outcome and reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hour {
    pub total: i64,
    pub failures: Vec<(AccountSessionOutcome, Option<String>, i64)>,
}

impl Hour {
    pub fn failed(&self) -> i64 {
        self.failures.iter().map(|(_, _, n)| n).sum()
    }

    /// More than 5 % of at least 20 requests failed (in whole numbers: 1 of 20 is not more).
    pub fn failing_too_often(&self) -> bool {
        self.total >= MIN_REQUESTS && self.failed() * 100 > self.total * FAILURE_PERCENT
    }

    /// The alert's text: the rate, then each reason with its count, most frequent first.
    pub fn alert_message(&self) -> String {
        let mut failures = self.failures.clone();
        failures.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
        let reasons: Vec<String> = failures
            .iter()
            .map(|(outcome, reason, n)| match reason {
                Some(reason) => format!("{n} × {} ({reason})", outcome.describe()),
                None => format!("{n} × {}", outcome.describe()),
            })
            .collect();
        let failed = self.failed();
        format!(
            "{failed} of {} Account Session requests failed in the last hour ({}.{} %): {}. Those consultants got \
             no embedded Stripe page.",
            self.total,
            failed * 100 / self.total.max(1),
            failed * 1000 / self.total.max(1) % 10,
            reasons.join("; ")
        )
    }
}

/// Records how one request ended, then raises the alert if the last hour now calls for it. A
/// failure to record is logged, never passed on: the consultant's answer does not depend on it.
pub async fn record(services: &Services, user_id: Uuid, outcome: AccountSessionOutcome, reason: Option<&str>) {
    let recorded = async {
        sqlx::query!(
            "INSERT INTO account_session_requests (user_id, outcome, reason) VALUES ($1, $2, $3)",
            user_id,
            outcome as AccountSessionOutcome,
            reason,
        )
        .execute(&services.pool)
        .await?;
        check(&services.pool).await
    };
    if let Err(err) = recorded.await {
        err.log();
    }
}

/// The last hour's requests, failures grouped by outcome and reason.
pub async fn last_hour(pool: &PgPool) -> Result<Hour> {
    let rows = sqlx::query!(
        r#"SELECT outcome AS "outcome: AccountSessionOutcome", reason, count(*) AS "count!"
           FROM account_session_requests WHERE created_at > now() - interval '1 hour'
           GROUP BY outcome, reason"#
    )
    .fetch_all(pool)
    .await?;
    let mut hour = Hour::default();
    for row in rows {
        hour.total += row.count;
        if row.outcome != AccountSessionOutcome::Succeeded {
            hour.failures.push((row.outcome, row.reason, row.count));
        }
    }
    Ok(hour)
}

/// Raises the alert when the last hour's failures are over the threshold: once per clock hour,
/// whichever process sees it first (the alert's unique key).
async fn check(pool: &PgPool) -> Result<bool> {
    let hour = last_hour(pool).await?;
    if !hour.failing_too_often() {
        return Ok(false);
    }
    let key = format!("account_session_failure_rate:{}", Utc::now().format("%Y-%m-%dT%H"));
    let mut conn = pool.acquire().await?;
    alerts::raise_keyed(&mut conn, None, "account_session_failure_rate", &hour.alert_message(), &key).await
}

/// Rows older than a day say nothing the alert reads; the hourly clean-up removes them.
pub async fn purge_old(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query!("DELETE FROM account_session_requests WHERE created_at < now() - interval '1 day'")
        .execute(pool)
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccountSessionOutcome::*;

    fn hour(total: i64, failures: &[(AccountSessionOutcome, Option<&str>, i64)]) -> Hour {
        Hour { total, failures: failures.iter().map(|(o, r, n)| (*o, r.map(str::to_owned), *n)).collect() }
    }

    #[test]
    fn more_than_five_percent_of_at_least_twenty_requests() {
        // 1 of 20 is exactly 5 %: not more.
        assert!(!hour(20, &[(StripeError, Some("HTTP 500"), 1)]).failing_too_often());
        assert!(hour(20, &[(StripeError, Some("HTTP 500"), 2)]).failing_too_often());
        // 2 of 39 is 5.1 %; 2 of 40 is 5 %.
        assert!(hour(39, &[(TimedOut, None, 2)]).failing_too_often());
        assert!(!hour(40, &[(TimedOut, None, 2)]).failing_too_often());
        // Below 20 requests nothing is said, whatever the rate.
        assert!(!hour(19, &[(StripeError, None, 19)]).failing_too_often());
        assert!(!Hour::default().failing_too_often());
    }

    #[test]
    fn every_kind_of_failure_counts_and_the_message_counts_the_reasons() {
        let h = hour(25, &[(RateLimited, None, 1), (StripeError, Some("HTTP 500 api_error"), 3), (TimedOut, None, 2)]);
        assert_eq!(h.failed(), 6);
        assert!(h.failing_too_often());
        assert_eq!(
            h.alert_message(),
            "6 of 25 Account Session requests failed in the last hour (24.0 %): 3 × Stripe error (HTTP 500 \
             api_error); 2 × timed out; 1 × refused by the hourly limit. Those consultants got no embedded Stripe \
             page."
        );
        assert!(hour(30, &[(StripeError, None, 2)]).alert_message().contains("(6.6 %)"));
    }
}
