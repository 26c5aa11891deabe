//! Fees per month, for the consultant's dashboard and, per consultant, for the tenant's staff:
//! - invoiced: requests made in the month, less those cancelled (a month passed over is none);
//! - paid: payments received in the month;
//! - outstanding: requests made in the month that are still open;
//! - refunded: refunds of fee payments made in the month that succeeded.
//!
//! Months are calendar months in UTC, as the money reports' are, over the last [`MONTHS`], in
//! the platform's current Stripe mode (fees are the platform's charges).

use chrono::{Datelike as _, Months, NaiveDate};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    error::Result,
    money::{Currency, Money},
};

/// How many months a report covers, this one included.
pub const MONTHS: u32 = 12;

/// One month of one consultant's fees in one currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Month {
    /// The first day of the month.
    pub month: NaiveDate,
    pub invoiced: Money,
    pub paid: Money,
    pub outstanding: Money,
    pub refunded: Money,
}

/// A consultant's fees in one currency, month by month (every month of the period, oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub consultant_id: Uuid,
    pub consultant: String,
    pub currency: Currency,
    pub months: Vec<Month>,
}

/// What a line of the query counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    Invoiced,
    Paid,
    Outstanding,
    Refunded,
}

impl Measure {
    fn parse(kind: &str) -> Option<Self> {
        Some(match kind {
            "invoiced" => Self::Invoiced,
            "paid" => Self::Paid,
            "outstanding" => Self::Outstanding,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }
}

/// One sum of the query: a consultant's measure in a currency and month.
struct Line {
    consultant_id: Uuid,
    consultant: String,
    currency: String,
    month: NaiveDate,
    measure: Measure,
    amount: i64,
}

/// The first month a report covers when `today` is in its last.
pub fn first_month(today: NaiveDate) -> NaiveDate {
    let this = today.with_day(1).unwrap_or(today);
    this.checked_sub_months(Months::new(MONTHS - 1)).unwrap_or(this)
}

/// The signed-in consultant's fees.
pub async fn for_consultant(
    pool: &PgPool,
    consultant_id: Uuid,
    livemode: bool,
    today: NaiveDate,
) -> Result<Vec<Report>> {
    let tenant = sqlx::query_scalar!("SELECT tenant_id FROM users WHERE id = $1", consultant_id)
        .fetch_one(pool)
        .await?
        .ok_or(crate::Error::NotFound("consultant"))?;
    read(pool, tenant, Some(consultant_id), livemode, today).await
}

/// Every consultant's fees in a tenant, by consultant name.
pub async fn for_tenant(pool: &PgPool, tenant_id: Uuid, livemode: bool, today: NaiveDate) -> Result<Vec<Report>> {
    read(pool, tenant_id, None, livemode, today).await
}

async fn read(
    pool: &PgPool,
    tenant_id: Uuid,
    consultant_id: Option<Uuid>,
    livemode: bool,
    today: NaiveDate,
) -> Result<Vec<Report>> {
    let first = first_month(today);
    let rows = sqlx::query!(
        r#"SELECT e.consultant_id AS "consultant_id!", u.display_name AS "consultant!", e.currency AS "currency!",
                  e.month AS "month!", e.kind AS "kind!", sum(e.amount)::bigint AS "amount!"
           FROM (
               SELECT f.consultant_id, f.currency, date_trunc('month', f.created_at AT TIME ZONE 'UTC')::date AS month,
                      'invoiced' AS kind, f.amount
               FROM fee_requests f
               WHERE f.tenant_id = $1 AND f.livemode = $3 AND f.status <> 'cancelled'
               UNION ALL
               SELECT f.consultant_id, f.currency, date_trunc('month', f.created_at AT TIME ZONE 'UTC')::date,
                      'outstanding', f.amount
               FROM fee_requests f
               WHERE f.tenant_id = $1 AND f.livemode = $3 AND f.status = 'open'
               UNION ALL
               SELECT f.consultant_id, o.currency, date_trunc('month', o.paid_at AT TIME ZONE 'UTC')::date, 'paid', o.amount
               FROM orders o JOIN fee_requests f ON f.id = o.fee_request_id
               WHERE f.tenant_id = $1 AND f.livemode = $3
               UNION ALL
               SELECT f.consultant_id, r.currency, date_trunc('month', r.created_at AT TIME ZONE 'UTC')::date,
                      'refunded', r.amount
               FROM refunds r JOIN orders o ON o.id = r.order_id JOIN fee_requests f ON f.id = o.fee_request_id
               WHERE f.tenant_id = $1 AND f.livemode = $3 AND r.status = 'succeeded'
           ) e
           JOIN users u ON u.id = e.consultant_id
           WHERE ($2::uuid IS NULL OR e.consultant_id = $2) AND e.month >= $4
           GROUP BY 1, 2, 3, 4, 5"#,
        tenant_id,
        consultant_id,
        livemode,
        first,
    )
    .fetch_all(pool)
    .await?;
    let lines = rows
        .into_iter()
        .filter_map(|r| {
            Some(Line {
                measure: Measure::parse(&r.kind)?,
                consultant_id: r.consultant_id,
                consultant: r.consultant,
                currency: r.currency,
                month: r.month,
                amount: r.amount,
            })
        })
        .collect();
    Ok(assemble(lines, first))
}

/// Puts the sums into one report per consultant and currency, every month of the period present
/// (zero where nothing happened), ordered by consultant name, then currency.
fn assemble(lines: Vec<Line>, first: NaiveDate) -> Vec<Report> {
    let months: Vec<NaiveDate> = (0..MONTHS).filter_map(|i| first.checked_add_months(Months::new(i))).collect();
    let mut reports: Vec<Report> = Vec::new();
    for line in lines {
        let Some(currency) = Currency::parse(&line.currency) else { continue };
        let Some(index) = months.iter().position(|m| *m == line.month) else { continue };
        let position = reports.iter().position(|r| r.consultant_id == line.consultant_id && r.currency == currency);
        let report = match position {
            Some(i) => &mut reports[i],
            None => {
                let zero = Money { amount: 0, currency };
                reports.push(Report {
                    consultant_id: line.consultant_id,
                    consultant: line.consultant.clone(),
                    currency,
                    months: months
                        .iter()
                        .map(|&month| Month { month, invoiced: zero, paid: zero, outstanding: zero, refunded: zero })
                        .collect(),
                });
                reports.last_mut().expect("just pushed")
            }
        };
        let month = &mut report.months[index];
        let slot = match line.measure {
            Measure::Invoiced => &mut month.invoiced,
            Measure::Paid => &mut month.paid,
            Measure::Outstanding => &mut month.outstanding,
            Measure::Refunded => &mut month.refunded,
        };
        slot.amount += line.amount;
    }
    reports.sort_by(|a, b| (&a.consultant, a.currency.code()).cmp(&(&b.consultant, b.currency.code())));
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn line(consultant: u128, name: &str, currency: &str, month: NaiveDate, measure: Measure, amount: i64) -> Line {
        Line {
            consultant_id: Uuid::from_u128(consultant),
            consultant: name.into(),
            currency: currency.into(),
            month,
            measure,
            amount,
        }
    }

    #[test]
    fn a_report_covers_twelve_months_ending_with_this_one() {
        assert_eq!(first_month(d(2027, 3, 17)), d(2026, 4, 1));
        assert_eq!(first_month(d(2027, 12, 1)), d(2027, 1, 1));
    }

    #[test]
    fn sums_land_in_their_consultant_currency_and_month_with_every_month_present() {
        let first = d(2026, 1, 1);
        let reports = assemble(
            vec![
                line(2, "Zoe", "usd", d(2026, 3, 1), Measure::Paid, 12_000),
                line(1, "Ann", "usd", d(2026, 3, 1), Measure::Invoiced, 12_000),
                line(1, "Ann", "usd", d(2026, 12, 1), Measure::Outstanding, 5_000),
                line(1, "Ann", "eur", d(2026, 1, 1), Measure::Refunded, 700),
                // Outside the period, or in a currency Remit does not take: left out.
                line(1, "Ann", "usd", d(2025, 12, 1), Measure::Paid, 1),
                line(1, "Ann", "xyz", d(2026, 2, 1), Measure::Paid, 1),
            ],
            first,
        );
        let names: Vec<(&str, &str)> = reports.iter().map(|r| (r.consultant.as_str(), r.currency.code())).collect();
        assert_eq!(names, [("Ann", "eur"), ("Ann", "usd"), ("Zoe", "usd")]);
        assert!(reports.iter().all(|r| r.months.len() == 12 && r.months[0].month == first));
        let ann_usd = &reports[1];
        assert_eq!(ann_usd.months[2].invoiced.amount, 12_000);
        assert_eq!(ann_usd.months[11].outstanding.amount, 5_000);
        let total: i64 = ann_usd.months.iter().map(|m| m.paid.amount).sum();
        assert_eq!(total, 0, "the payment outside the period is not counted");
        assert_eq!(reports[0].months[0].refunded.amount, 700);
        assert_eq!(reports[2].months[2].paid.amount, 12_000);
    }
}
