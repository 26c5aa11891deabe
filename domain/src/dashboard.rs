//! Health at a glance, per tenant and for the platform: Stripe connection, payment success
//! rates, webhook delivery health, and payment outcomes per day.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    alerts::{FAILURE_RATE_THRESHOLD, MIN_PAYMENTS_FOR_RATE},
    error::Result,
    tenant_stripe::Requirements,
};

/// Attempts and failures over a window.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Rate {
    pub total: i64,
    pub failed: i64,
}

impl Rate {
    /// The share that succeeded, if there was anything.
    pub fn success_rate(&self) -> Option<f64> {
        (self.total > 0).then(|| (self.total - self.failed) as f64 / self.total as f64)
    }

    /// True when failures pass the alert threshold on enough volume.
    pub fn alarming(&self) -> bool {
        self.total >= MIN_PAYMENTS_FOR_RATE && self.failed as f64 / self.total as f64 > FAILURE_RATE_THRESHOLD
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionSummary {
    pub stripe_account_id: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub open_requirements: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantHealth {
    pub tenant_id: Uuid,
    pub name: String,
    pub status: String,
    pub connection: Option<ConnectionSummary>,
    pub payments_24h: Rate,
    pub payments_30d: Rate,
    pub webhooks_24h: Rate,
    /// `None` without an endpoint in this mode; `Some(false)` when one of them is disabled.
    pub webhook_endpoint_enabled: Option<bool>,
    pub subscriptions: SubscriptionHealth,
}

/// The tenant's consultants' subscriptions: trialing or active, and past due or unpaid.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct SubscriptionHealth {
    pub paying: i64,
    pub past_due: i64,
}

/// Every tenant (or one), with its health figures; payments of one mode only (live and test
/// data never mix in a figure).
pub async fn tenants(pool: &PgPool, only: Option<Uuid>, livemode: bool) -> Result<Vec<TenantHealth>> {
    let rows = sqlx::query!(
        r#"SELECT t.id, t.name, t.status,
                  s.stripe_account_id AS "stripe_account_id?", s.charges_enabled AS "charges_enabled?",
                  s.payouts_enabled AS "payouts_enabled?", s.requirements AS "requirements?",
                  (SELECT count(*) FROM payment_outcomes p WHERE p.tenant_id = t.id AND p.livemode = $2 AND p.occurred_at > now() - interval '24 hours') AS "p24!",
                  (SELECT count(*) FROM payment_outcomes p WHERE p.tenant_id = t.id AND p.livemode = $2 AND p.occurred_at > now() - interval '24 hours' AND NOT p.succeeded) AS "f24!",
                  (SELECT count(*) FROM payment_outcomes p WHERE p.tenant_id = t.id AND p.livemode = $2 AND p.occurred_at > now() - interval '30 days') AS "p30!",
                  (SELECT count(*) FROM payment_outcomes p WHERE p.tenant_id = t.id AND p.livemode = $2 AND p.occurred_at > now() - interval '30 days' AND NOT p.succeeded) AS "f30!",
                  (SELECT count(*) FROM webhook_attempts a JOIN webhook_endpoints w ON w.id = a.endpoint_id
                   WHERE w.tenant_id = t.id AND w.livemode = $2 AND a.created_at > now() - interval '24 hours') AS "w24!",
                  (SELECT count(*) FROM webhook_attempts a JOIN webhook_endpoints w ON w.id = a.endpoint_id
                   WHERE w.tenant_id = t.id AND w.livemode = $2 AND a.created_at > now() - interval '24 hours' AND NOT a.succeeded) AS "wf24!",
                  (SELECT bool_and(w.enabled) FROM webhook_endpoints w WHERE w.tenant_id = t.id AND w.livemode = $2) AS webhook_enabled,
                  (SELECT count(*) FROM subscriptions b WHERE b.tenant_id = t.id AND b.status IN ('trialing', 'active')) AS "subs_paying!",
                  (SELECT count(*) FROM subscriptions b WHERE b.tenant_id = t.id AND b.status IN ('past_due', 'unpaid')) AS "subs_past_due!"
           FROM tenants t
           LEFT JOIN tenant_stripe_accounts s ON s.tenant_id = t.id
           WHERE $1::uuid IS NULL OR t.id = $1
           ORDER BY lower(t.name)"#,
        only,
        livemode
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TenantHealth {
            tenant_id: r.id,
            name: r.name,
            status: r.status,
            connection: r.stripe_account_id.map(|id| ConnectionSummary {
                stripe_account_id: id,
                charges_enabled: r.charges_enabled.unwrap_or(false),
                payouts_enabled: r.payouts_enabled.unwrap_or(false),
                open_requirements: r
                    .requirements
                    .map(|v| serde_json::from_value::<Requirements>(v).map(|req| req.open_count()).unwrap_or(0))
                    .unwrap_or(0),
            }),
            payments_24h: Rate { total: r.p24, failed: r.f24 },
            payments_30d: Rate { total: r.p30, failed: r.f30 },
            webhooks_24h: Rate { total: r.w24, failed: r.wf24 },
            webhook_endpoint_enabled: r.webhook_enabled,
            subscriptions: SubscriptionHealth { paying: r.subs_paying, past_due: r.subs_past_due },
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Day {
    pub day: NaiveDate,
    pub succeeded: i64,
    pub failed: i64,
}

/// Payment outcomes per day over the last `days` days (every day present, oldest first), for
/// one tenant or the platform, of one source (`checkout`, `subscription`) or all, of one mode.
pub async fn daily_outcomes(
    pool: &PgPool,
    tenant: Option<Uuid>,
    source: Option<&str>,
    livemode: bool,
    days: i32,
) -> Result<Vec<Day>> {
    Ok(sqlx::query_as!(
        Day,
        r#"SELECT d.day::date AS "day!",
                  count(p.id) FILTER (WHERE p.succeeded) AS "succeeded!",
                  count(p.id) FILTER (WHERE NOT p.succeeded) AS "failed!"
           FROM generate_series(current_date - ($2::int - 1), current_date, interval '1 day') AS d(day)
           LEFT JOIN payment_outcomes p
             ON p.occurred_at >= d.day AND p.occurred_at < d.day + interval '1 day'
            AND ($1::uuid IS NULL OR p.tenant_id = $1)
            AND ($3::text IS NULL OR p.source = $3)
            AND p.livemode = $4
           GROUP BY d.day ORDER BY d.day"#,
        tenant,
        days,
        source,
        livemode,
    )
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_alarm_only_on_enough_volume_over_five_percent() {
        assert_eq!(Rate::default().success_rate(), None);
        assert_eq!(Rate { total: 4, failed: 1 }.success_rate(), Some(0.75));
        assert!(!Rate { total: 4, failed: 1 }.alarming(), "too few payments to tell");
        assert!(!Rate { total: 100, failed: 5 }.alarming(), "exactly 5 % does not pass it");
        assert!(Rate { total: 100, failed: 6 }.alarming());
    }
}
