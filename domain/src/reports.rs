//! Reports of the money buyers moved through Remit: gross volume, refunds, disputes, the
//! platform's fees and what is left to the tenant, per day or month, currency and mode, for one
//! tenant or the whole platform. Days are UTC days, dated by Stripe's clock (when the payment,
//! the refund or the dispute happened at Stripe), as Stripe's balance is.

use chrono::{Datelike as _, Duration, NaiveDate};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    money::{Currency, Money},
};

/// The longest a report by day reaches back: a year and a day.
pub const MAX_DAYS: i64 = 366;
/// The longest a report by month reaches back: ten years.
pub const MAX_MONTHS: i64 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    fn trunc(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

/// What a report covers, as a form or a query string gives it. Empty fields take defaults: by
/// day, the last 30 days, both modes.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Filter {
    /// `day` or `month`.
    #[serde(default)]
    pub period: Option<String>,
    /// First day (`YYYY-MM-DD`).
    #[serde(default)]
    pub from: Option<String>,
    /// Last day, included.
    #[serde(default)]
    pub to: Option<String>,
    /// `live` or `test`.
    #[serde(default)]
    pub mode: Option<String>,
}

/// A filter checked: whole periods from `from` up to and including `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub period: Period,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub livemode: Option<bool>,
}

impl Filter {
    /// Checks the filter against `today`; a month report covers whole months.
    pub fn check(&self, today: NaiveDate) -> Result<Checked> {
        let blank = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        // Years far out would overflow the date arithmetic below.
        let day = |v: Option<String>, field: &'static str| {
            v.map(|d| {
                NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .ok()
                    .filter(|d| (2000..=9999).contains(&d.year()))
                    .ok_or_else(|| Error::invalid(field, "Give a day as YYYY-MM-DD, between the years 2000 and 9999."))
            })
            .transpose()
        };
        let period = match blank(&self.period).as_deref() {
            None | Some("day") => Period::Day,
            Some("month") => Period::Month,
            Some(_) => return Err(Error::invalid("period", "Report by day or by month.")),
        };
        let livemode = match blank(&self.mode).as_deref() {
            None => None,
            Some("live") => Some(true),
            Some("test") => Some(false),
            Some(_) => return Err(Error::invalid("mode", "Use live or test.")),
        };
        let to = day(blank(&self.to), "to")?.unwrap_or(today);
        let from = match day(blank(&self.from), "from")? {
            Some(from) => from,
            None => match period {
                Period::Day => to - Duration::days(29),
                Period::Month => first_of_month(to).checked_sub_months(chrono::Months::new(11)).unwrap_or(to),
            },
        };
        let (from, to) = match period {
            Period::Day => (from, to),
            Period::Month => (first_of_month(from), last_of_month(to)),
        };
        if from > to {
            return Err(Error::invalid("from", "The first day comes after the last."));
        }
        match period {
            Period::Day if (to - from).num_days() >= MAX_DAYS => {
                return Err(Error::invalid(
                    "from",
                    format!("A report by day covers at most {MAX_DAYS} days; report by month for longer."),
                ));
            }
            Period::Month if months_between(from, to) > MAX_MONTHS => {
                return Err(Error::invalid("from", format!("A report by month covers at most {MAX_MONTHS} months.")));
            }
            _ => {}
        }
        Ok(Checked { period, from, to, livemode })
    }
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn last_of_month(day: NaiveDate) -> NaiveDate {
    first_of_month(day).checked_add_months(chrono::Months::new(1)).map_or(day, |next| next - Duration::days(1))
}

fn months_between(from: NaiveDate, to: NaiveDate) -> i64 {
    i64::from(to.year() - from.year()) * 12 + i64::from(to.month()) - i64::from(from.month()) + 1
}

/// Whose money a report shows.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Tenant(Uuid),
    Platform,
}

/// One period's money in one currency and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The period's first day.
    pub period: NaiveDate,
    pub livemode: bool,
    /// Payments made.
    pub payments: i64,
    pub gross: Money,
    pub refunds: Money,
    /// Taken by disputes opened in the period (and not won).
    pub disputes: Money,
    /// The platform's fees, less the part refunds gave back.
    pub fees: Money,
    /// What is left to the tenant: gross less refunds, disputes and fees.
    pub net: Money,
}

/// The report's rows, oldest period first, then live before test, then by currency.
pub async fn report(pool: &PgPool, scope: Scope, filter: &Checked) -> Result<Vec<Row>> {
    let tenant = match scope {
        Scope::Tenant(id) => Some(id),
        Scope::Platform => None,
    };
    let start = filter.from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = (filter.to + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    // Payments by when they were paid, refunds by when Stripe made them, disputes by when they
    // were opened: each moves the balance on that day. Lots' only: a fee's money is the
    // consultant's (fees have their own report).
    let rows = sqlx::query!(
        r#"WITH moves AS (
               SELECT b.livemode, o.currency, o.paid_at AS at, 1 AS payments, o.amount AS gross,
                      0::bigint AS refunds, 0::bigint AS disputes, o.application_fee AS fees
               FROM orders o JOIN winning_bids b ON b.id = o.bid_id
               WHERE o.paid_at >= $1 AND o.paid_at < $2 AND ($3::uuid IS NULL OR o.tenant_id = $3)
               UNION ALL
               SELECT r.livemode, r.currency, coalesce(r.stripe_created_at, r.created_at), 0, 0, r.amount, 0,
                      -r.application_fee_refunded
               FROM refunds r JOIN orders o ON o.id = r.order_id
               WHERE o.bid_id IS NOT NULL AND r.status IN ('pending', 'succeeded')
                 AND coalesce(r.stripe_created_at, r.created_at) >= $1 AND coalesce(r.stripe_created_at, r.created_at) < $2
                 AND ($3::uuid IS NULL OR r.tenant_id = $3)
               UNION ALL
               SELECT b.livemode, d.currency, d.created_at, 0, 0, 0, d.amount, 0
               FROM disputes d JOIN orders o ON o.id = d.order_id JOIN winning_bids b ON b.id = o.bid_id
               WHERE d.status <> 'won' AND d.status NOT LIKE 'warning%' AND d.created_at >= $1 AND d.created_at < $2
                 AND ($3::uuid IS NULL OR d.tenant_id = $3)
           )
           SELECT date_trunc($4, at AT TIME ZONE 'UTC')::date AS "period!", livemode AS "livemode!",
                  currency AS "currency!", sum(payments)::bigint AS "payments!", sum(gross)::bigint AS "gross!",
                  sum(refunds)::bigint AS "refunds!", sum(disputes)::bigint AS "disputes!", sum(fees)::bigint AS "fees!"
           FROM moves WHERE ($5::boolean IS NULL OR livemode = $5)
           GROUP BY 1, 2, 3 ORDER BY 1, 2 DESC, 3"#,
        start,
        end,
        tenant,
        filter.period.trunc(),
        filter.livemode,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let money = |amount| Money::stored(amount, &r.currency);
            Ok(Row {
                period: r.period,
                livemode: r.livemode,
                payments: r.payments,
                gross: money(r.gross)?,
                refunds: money(r.refunds)?,
                disputes: money(r.disputes)?,
                fees: money(r.fees)?,
                net: money(r.gross - r.refunds - r.disputes - r.fees)?,
            })
        })
        .collect()
}

/// The report's totals per currency and mode, in the rows' order.
pub fn totals(rows: &[Row]) -> Vec<Row> {
    let mut totals: Vec<Row> = Vec::new();
    for row in rows {
        match totals.iter_mut().find(|t| t.livemode == row.livemode && t.gross.currency == row.gross.currency) {
            Some(t) => {
                t.payments += row.payments;
                for (sum, add) in [
                    (&mut t.gross, row.gross),
                    (&mut t.refunds, row.refunds),
                    (&mut t.disputes, row.disputes),
                    (&mut t.fees, row.fees),
                    (&mut t.net, row.net),
                ] {
                    sum.amount += add.amount;
                }
            }
            None => totals.push(row.clone()),
        }
    }
    totals.sort_by(|a, b| b.livemode.cmp(&a.livemode).then(a.gross.currency.code().cmp(b.gross.currency.code())));
    totals
}

/// The report as CSV: one line per period, mode and currency; amounts in major units.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from("period,mode,currency,payments,gross,refunds,disputes,platform_fees,net\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.period,
            if r.livemode { "live" } else { "test" },
            r.gross.currency.code(),
            r.payments,
            r.gross.typed(),
            r.refunds.typed(),
            r.disputes.typed(),
            r.fees.typed(),
            r.net.typed(),
        ));
    }
    out
}

/// One bar pair of the chart: gross and net of a period, as a share (0–100) of the tallest gross.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub period: NaiveDate,
    pub gross: Money,
    pub net: Money,
    pub gross_percent: u32,
    pub net_percent: u32,
}

/// The chart of one currency and mode: every period of the filter in order (a period without
/// payments is an empty bar, so gaps show), scaled to the tallest gross.
pub fn chart(rows: &[Row], filter: &Checked, currency: Currency, livemode: bool) -> Vec<Bar> {
    let mut periods = Vec::new();
    let mut at = filter.from;
    while at <= filter.to {
        periods.push(at);
        at = match filter.period {
            Period::Day => at + Duration::days(1),
            Period::Month => match at.checked_add_months(chrono::Months::new(1)) {
                Some(next) => next,
                None => break,
            },
        };
    }
    let of = |period: NaiveDate| {
        rows.iter().find(|r| r.period == period && r.livemode == livemode && r.gross.currency == currency)
    };
    let tallest = periods.iter().filter_map(|p| of(*p)).map(|r| r.gross.amount).max().unwrap_or(0);
    let percent = |amount: i64| -> u32 {
        if tallest <= 0 || amount <= 0 {
            0
        } else {
            u32::try_from((i128::from(amount) * 100 / i128::from(tallest)).min(100)).unwrap_or(100)
        }
    };
    periods
        .into_iter()
        .map(|period| {
            let (gross, net) = of(period).map_or((0, 0), |r| (r.gross.amount, r.net.amount));
            Bar {
                period,
                gross: Money { amount: gross, currency },
                net: Money { amount: net, currency },
                gross_percent: percent(gross),
                net_percent: percent(net),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn filter(period: &str, from: &str, to: &str) -> Filter {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Filter { period: opt(period), from: opt(from), to: opt(to), mode: None }
    }

    #[test]
    fn an_empty_filter_is_the_last_thirty_days() {
        let checked = Filter::default().check(day("2026-12-06")).unwrap();
        assert_eq!(
            checked,
            Checked { period: Period::Day, from: day("2026-11-07"), to: day("2026-12-06"), livemode: None }
        );
    }

    #[test]
    fn months_cover_whole_months_and_default_to_a_year() {
        let checked = filter("month", "", "").check(day("2026-12-06")).unwrap();
        assert_eq!((checked.from, checked.to), (day("2026-01-01"), day("2026-12-31")));
        let checked = filter("month", "2026-02-14", "2026-03-02").check(day("2026-12-06")).unwrap();
        assert_eq!((checked.from, checked.to), (day("2026-02-01"), day("2026-03-31")));
    }

    #[test]
    fn bad_filters_say_which_field_is_wrong() {
        let today = day("2026-12-06");
        let field = |f: Filter| match f.check(today) {
            Err(Error::Invalid { field: Some(field), .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        assert_eq!(field(filter("week", "", "")), "period");
        assert_eq!(field(filter("", "6 Dec", "")), "from");
        assert_eq!(field(filter("", "2026-12-07", "2026-12-06")), "from");
        assert_eq!(field(filter("", "2025-01-01", "2026-12-06")), "from");
        assert_eq!(field(Filter { mode: Some("both".into()), ..Filter::default() }), "mode");
        assert_eq!(field(filter("", "", "+262142-12-31")), "to", "no overflow past year 9999");
        assert_eq!(field(filter("", "-262143-01-01", "2026-01-01")), "from");
        assert!(filter("", "2025-12-06", "2026-12-06").check(today).is_ok(), "366 days is allowed");
    }

    fn row(period: &str, livemode: bool, gross: i64, net: i64) -> Row {
        let usd = Currency::parse("usd").unwrap();
        let m = |amount| Money { amount, currency: usd };
        Row {
            period: day(period),
            livemode,
            payments: 1,
            gross: m(gross),
            refunds: m(gross - net),
            disputes: m(0),
            fees: m(0),
            net: m(net),
        }
    }

    #[test]
    fn totals_add_up_each_currency_and_mode() {
        let rows =
            [row("2026-12-01", false, 1000, 900), row("2026-12-02", false, 500, 500), row("2026-12-02", true, 7, 7)];
        let totals = totals(&rows);
        assert_eq!(totals.len(), 2);
        assert!(totals[0].livemode, "live comes first");
        assert_eq!((totals[1].payments, totals[1].gross.amount, totals[1].net.amount), (2, 1500, 1400));
    }

    #[test]
    fn csv_has_a_line_per_row_in_major_units() {
        let csv = csv(&[row("2026-12-01", false, 123_456, -50)]);
        assert_eq!(
            csv,
            "period,mode,currency,payments,gross,refunds,disputes,platform_fees,net\n\
             2026-12-01,test,usd,1,1234.56,1235.06,0.00,0.00,-0.50\n"
        );
    }

    #[test]
    fn the_chart_has_every_period_scaled_to_the_tallest() {
        let checked = filter("", "2026-12-01", "2026-12-03").check(day("2026-12-06")).unwrap();
        let rows = [
            row("2026-12-01", false, 400, 300),
            row("2026-12-03", false, 800, -100),
            row("2026-12-03", true, 9_999, 1),
        ];
        let bars = chart(&rows, &checked, Currency::parse("usd").unwrap(), false);
        let shape: Vec<_> = bars.iter().map(|b| (b.period, b.gross_percent, b.net_percent)).collect();
        assert_eq!(
            shape,
            [(day("2026-12-01"), 50, 37), (day("2026-12-02"), 0, 0), (day("2026-12-03"), 100, 0)],
            "a day without payments shows as an empty bar; live money is not in the test chart"
        );
    }
}
