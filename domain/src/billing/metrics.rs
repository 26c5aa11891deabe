//! Billing metrics for platform admins: MRR, subscriptions by status, payment success, churn.

use chrono::NaiveDate;
use sqlx::PgPool;

use crate::{
    dashboard::{self, Day, Rate},
    error::Result,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mrr {
    pub currency: String,
    /// Monthly recurring revenue in minor units: monthly prices in full, a twelfth of yearly
    /// ones (rounded down to the minor unit), of subscriptions that are active or past due.
    pub amount: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub trialing: i64,
    pub active: i64,
    pub past_due: i64,
    pub canceled_30d: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrrDay {
    pub day: NaiveDate,
    pub amount: i64,
}

/// Subscriptions that ended in the last 30 days, out of those that could have: the ended ones
/// plus every subscription still live that started before the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Churn {
    pub churned: i64,
    pub base: i64,
}

impl Churn {
    pub fn rate(&self) -> Option<f64> {
        (self.base > 0).then(|| self.churned as f64 / self.base as f64)
    }
}

#[derive(Debug, Clone)]
pub struct BillingMetrics {
    pub mrr: Vec<Mrr>,
    pub counts: StatusCounts,
    pub payments_30d: Rate,
    pub churn_30d: Churn,
    /// MRR at the end of each of the last 30 days, in the currency with the most MRR.
    pub mrr_history: Vec<MrrDay>,
    pub outcomes: Vec<Day>,
}

pub const DAYS: i32 = 30;

/// The metrics of consultants' subscriptions, which run in the platform's mode (`livemode`).
pub async fn billing_metrics(pool: &PgPool, livemode: bool) -> Result<BillingMetrics> {
    let mrr = sqlx::query_as!(
        Mrr,
        r#"SELECT currency, sum(CASE WHEN "interval" = 'year' THEN amount / 12 ELSE amount END)::bigint AS "amount!"
           FROM subscriptions WHERE status IN ('active', 'past_due') GROUP BY currency ORDER BY 2 DESC, currency"#
    )
    .fetch_all(pool)
    .await?;
    let counts = sqlx::query_as!(
        StatusCounts,
        r#"SELECT count(*) FILTER (WHERE status = 'trialing') AS "trialing!",
                  count(*) FILTER (WHERE status = 'active') AS "active!",
                  count(*) FILTER (WHERE status = 'past_due') AS "past_due!",
                  count(*) FILTER (WHERE status = 'canceled' AND ended_at > now() - interval '30 days') AS "canceled_30d!"
           FROM subscriptions"#
    )
    .fetch_one(pool)
    .await?;
    let payments = sqlx::query!(
        r#"SELECT count(*) AS "total!", count(*) FILTER (WHERE NOT succeeded) AS "failed!"
           FROM payment_outcomes WHERE source = 'subscription' AND livemode = $1 AND occurred_at > now() - interval '30 days'"#,
        livemode
    )
    .fetch_one(pool)
    .await?;
    let churn = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE status = 'canceled' AND ended_at > now() - interval '30 days') AS "churned!",
                  count(*) FILTER (WHERE status IN ('trialing', 'active', 'past_due') AND started_at <= now() - interval '30 days') AS "kept!"
           FROM subscriptions"#
    )
    .fetch_one(pool)
    .await?;
    let currency = mrr.first().map_or_else(|| "usd".to_owned(), |m| m.currency.clone());
    let mrr_history = sqlx::query_as!(
        MrrDay,
        r#"SELECT d.day::date AS "day!",
                  COALESCE(sum(CASE WHEN s."interval" = 'year' THEN s.amount / 12 ELSE s.amount END), 0)::bigint AS "amount!"
           FROM generate_series(current_date - ($2::int - 1), current_date, interval '1 day') AS d(day)
           LEFT JOIN subscriptions s
             ON s.currency = $1 AND s.status NOT IN ('incomplete', 'incomplete_expired')
            AND s.started_at < d.day + interval '1 day'
            AND (s.ended_at IS NULL OR s.ended_at >= d.day + interval '1 day')
            AND (s.trial_end IS NULL OR s.trial_end < d.day + interval '1 day')
           GROUP BY d.day ORDER BY d.day"#,
        currency,
        DAYS,
    )
    .fetch_all(pool)
    .await?;
    let outcomes = dashboard::daily_outcomes(pool, None, Some("subscription"), livemode, DAYS).await?;
    Ok(BillingMetrics {
        mrr,
        counts,
        payments_30d: Rate { total: payments.total, failed: payments.failed },
        churn_30d: Churn { churned: churn.churned, base: churn.churned + churn.kept },
        mrr_history,
        outcomes,
    })
}
