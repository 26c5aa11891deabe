//! The daily reconciliation of Stripe's balance with Remit's books. Every night the worker lists
//! the platform's balance transactions of the previous UTC day in each mode (charges, refunds,
//! application fees and their refunds, transfers and their reversals, disputes) and compares
//! them with Remit's orders, refunds and disputes, both ways: a line Remit has no record of, a
//! record of Remit's that Stripe has no line for, and amounts that differ. The differences are
//! kept per day and mode for the admin page, and any difference raises one alert.
//!
//! Both sides are dated by Stripe's clock (orders by their charge, refunds by Stripe's refund,
//! disputes when opened). A record near midnight may have its line a moment on the other side,
//! so Stripe is listed an hour either side of the day, and only the day's own lines and records
//! are reported.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use stripe_core::balance_transaction::ListBalanceTransaction;
use stripe_shared::BalanceTransactionSource;
use uuid::Uuid;

use crate::{
    Services, alerts,
    error::{Error, Result},
    queue,
    states::ReconciliationDifference,
    stripe::events::event_time,
};

/// How far either side of the day Stripe is listed, for lines dated a moment from their record.
const MARGIN: Duration = Duration::hours(1);
/// Balance transactions a page of Stripe's list holds.
const PAGE: i64 = 100;
/// The most days a catching-up run reconciles (a worker stopped for longer starts from here).
const MAX_CATCH_UP_DAYS: i64 = 7;

/// The job: reconciles `day` (by default the days since the last reconciliation, up to
/// yesterday) in `livemode` (by default every mode Remit has keys for).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReconcileStripeBalance {
    #[serde(default)]
    pub day: Option<NaiveDate>,
    #[serde(default)]
    pub livemode: Option<bool>,
}

impl TaskHandler for ReconcileStripeBalance {
    const IDENTIFIER: &'static str = "reconcile_stripe_balance";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = ctx.get_ext::<Services>().ok_or("the job worker has no services")?;
        let modes: Vec<bool> = match self.livemode {
            Some(livemode) => vec![livemode],
            None => [true, false].into_iter().filter(|m| services.stripe.serves(*m)).collect(),
        };
        let yesterday = Utc::now().date_naive() - Duration::days(1);
        for livemode in modes {
            let days = match self.day {
                Some(day) => vec![day],
                None => {
                    let last = last_reconciled(&services.pool, livemode).await.map_err(|e| e.to_string())?;
                    days_to_reconcile(last, yesterday)
                }
            };
            for day in days {
                let summary = reconcile(services, day, livemode).await.map_err(|e| e.to_string())?;
                tracing::info!(%day, livemode, lines = summary.lines, differences = summary.differences, "reconciled with Stripe");
            }
        }
        Ok::<(), String>(())
    }
}

/// The days a scheduled run reconciles: those after the last reconciled one, up to yesterday
/// (at most a week of them); yesterday alone the first time.
pub fn days_to_reconcile(last: Option<NaiveDate>, yesterday: NaiveDate) -> Vec<NaiveDate> {
    let first = match last {
        Some(last) => (last + Duration::days(1)).max(yesterday - Duration::days(MAX_CATCH_UP_DAYS - 1)),
        None => yesterday,
    };
    first.iter_days().take_while(|d| *d <= yesterday).collect()
}

async fn last_reconciled(pool: &PgPool, livemode: bool) -> Result<Option<NaiveDate>> {
    // A day counts as done once a run saw all of it: one asked for while it was still under way
    // (today so far) is done again by the schedule.
    Ok(sqlx::query_scalar!(
        "SELECT max(day) FROM reconciliations WHERE livemode = $1 AND ran_at >= (day + 1)::timestamptz",
        livemode
    )
    .fetch_one(pool)
    .await?)
}

/// Queues the reconciliation of one day and mode (a platform admin asking again); the same day
/// asked twice before it ran is queued once.
pub async fn request(services: &Services, day: NaiveDate, livemode: bool) -> Result<()> {
    if day > Utc::now().date_naive() {
        return Err(Error::invalid("day", "Choose a day that has begun."));
    }
    services.stripe.mode(livemode)?;
    let mut conn = services.pool.acquire().await?;
    let spec = graphile_worker::JobSpec::builder()
        .job_key(format!("reconcile:{day}:{livemode}"))
        .job_key_mode(graphile_worker::JobKeyMode::Replace)
        .build();
    queue::enqueue_with(&mut conn, ReconcileStripeBalance { day: Some(day), livemode: Some(livemode) }, spec).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub lines: usize,
    pub differences: usize,
}

/// Reconciles one day in one mode and keeps what it found (replacing an earlier run's).
pub async fn reconcile(services: &Services, day: NaiveDate, livemode: bool) -> Result<Summary> {
    let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = start + Duration::days(1);
    // Stripe first, with no transaction open.
    let lines = stripe_lines(services, livemode, start - MARGIN, end + MARGIN).await?;
    let books = Books::load(&services.pool, livemode, &lines, start - MARGIN, end + MARGIN).await?;
    let differences = compare(&lines, &books, start, end);
    let day_lines = lines.iter().filter(|l| l.created >= start && l.created < end).count();

    let mut tx = services.pool.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO reconciliations (id, day, livemode, lines, differences) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (day, livemode) DO UPDATE SET lines = $4, differences = $5, ran_at = now()
         RETURNING id",
        Uuid::new_v4(),
        day,
        livemode,
        i32::try_from(day_lines).unwrap_or(i32::MAX),
        i32::try_from(differences.len()).unwrap_or(i32::MAX),
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM reconciliation_differences WHERE reconciliation_id = $1", id).execute(&mut *tx).await?;
    for d in &differences {
        sqlx::query!(
            "INSERT INTO reconciliation_differences (id, reconciliation_id, kind, line, subject, tenant_id, currency,
                 stripe_amount, remit_amount)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            Uuid::new_v4(),
            id,
            d.kind as ReconciliationDifference,
            d.line,
            d.subject,
            d.tenant_id,
            d.currency,
            d.stripe_amount,
            d.remit_amount,
        )
        .execute(&mut *tx)
        .await?;
    }
    if !differences.is_empty() {
        let mode = if livemode { "live" } else { "test" };
        let message = format!(
            "Stripe's {mode} balance and Remit's books differ on {day}: {} difference(s). \
             See the reconciliation page for each one.",
            differences.len()
        );
        alerts::raise_keyed(
            &mut tx,
            None,
            "reconciliation_difference",
            &message,
            &format!("reconciliation:{day}:{mode}"),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Summary { lines: day_lines, differences: differences.len() })
}

/// What a balance transaction is about, from its source object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A payment's charge, with its PaymentIntent.
    Charge {
        id: String,
        payment_intent: Option<String>,
    },
    Refund {
        id: String,
        payment_intent: Option<String>,
    },
    /// The platform's fee, with the charge it was taken on.
    ApplicationFee {
        id: String,
        charge: Option<String>,
    },
    /// Part of a fee given back.
    FeeRefund {
        fee: String,
    },
    /// A destination charge's transfer to the connected account, with its charge.
    Transfer {
        id: String,
        charge: Option<String>,
    },
    /// A transfer taken back, with the refund that took it.
    TransferReversal {
        id: String,
        refund: Option<String>,
    },
    Dispute {
        id: String,
    },
    /// Anything else (payouts, Stripe's own fees, top-ups, …): not Remit's books.
    Other,
}

/// One balance transaction of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub id: String,
    /// Stripe's type (`charge`, `refund`, …).
    pub kind: String,
    pub amount: i64,
    pub currency: String,
    pub created: DateTime<Utc>,
    pub source: Source,
}

/// The id an expandable field names, expanded or not.
fn id_of<T>(field: &Option<stripe_types::Expandable<T>>) -> Option<String>
where
    T: stripe_types::Object,
    T::Id: std::fmt::Display,
{
    field.as_ref().map(|e| e.id().to_string())
}

impl Line {
    fn from_stripe(bt: &stripe_shared::BalanceTransaction) -> Self {
        let source = match bt.source.as_ref().and_then(|s| s.as_object()) {
            Some(BalanceTransactionSource::Charge(c)) => {
                Source::Charge { id: c.id.to_string(), payment_intent: id_of(&c.payment_intent) }
            }
            Some(BalanceTransactionSource::Refund(r)) => {
                Source::Refund { id: r.id.to_string(), payment_intent: id_of(&r.payment_intent) }
            }
            Some(BalanceTransactionSource::ApplicationFee(f)) => {
                Source::ApplicationFee { id: f.id.to_string(), charge: id_of(&f.originating_transaction) }
            }
            Some(BalanceTransactionSource::ApplicationFeeRefund(r)) => {
                Source::FeeRefund { fee: r.fee.id().to_string() }
            }
            Some(BalanceTransactionSource::Transfer(t)) => {
                Source::Transfer { id: t.id.to_string(), charge: id_of(&t.source_transaction) }
            }
            Some(BalanceTransactionSource::TransferReversal(r)) => {
                Source::TransferReversal { id: r.id.to_string(), refund: id_of(&r.source_refund) }
            }
            Some(BalanceTransactionSource::Dispute(d)) => Source::Dispute { id: d.id.to_string() },
            _ => Source::Other,
        };
        Line {
            id: bt.id.to_string(),
            kind: bt.type_.as_str().to_owned(),
            amount: bt.amount,
            currency: bt.currency.to_string(),
            created: event_time(bt.created),
            source,
        }
    }
}

/// The platform's balance transactions from `since` until `until`, with their sources.
async fn stripe_lines(
    services: &Services,
    livemode: bool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Line>> {
    let client = services.stripe.mode(livemode)?.client();
    let range = stripe_types::RangeQueryTs::Bounds(stripe_types::RangeBoundsTs {
        gte: Some(since.timestamp()),
        lt: Some(until.timestamp()),
        ..Default::default()
    });
    let request = ListBalanceTransaction::new().created(range).expand(vec!["data.source".to_owned()]).limit(PAGE);
    let (mut lines, mut after) = (Vec::new(), None::<String>);
    loop {
        let mut page = request.clone();
        if let Some(after) = &after {
            page = page.starting_after(after.as_str());
        }
        let list =
            page.send(client).await.map_err(|err| crate::stripe::upstream(err, "list its balance transactions"))?;
        lines.extend(list.data.iter().map(Line::from_stripe));
        match (list.has_more, list.data.last()) {
            (true, Some(last)) => after = Some(last.id.to_string()),
            _ => break,
        }
    }
    Ok(lines)
}

#[derive(Debug, Clone)]
pub struct Order {
    pub tenant_id: Uuid,
    pub payment_intent: String,
    pub charge: Option<String>,
    pub application_fee_id: Option<String>,
    pub amount: i64,
    pub application_fee: i64,
    pub currency: String,
    pub paid_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Refund {
    pub tenant_id: Uuid,
    pub id: Uuid,
    /// Stripe's id; none while Remit is still asking Stripe.
    pub stripe_id: Option<String>,
    pub payment_intent: String,
    pub amount: i64,
    /// Stripe could not return the money (a `refund_failure` line gives it back to the balance).
    pub failed: bool,
    pub application_fee_refunded: i64,
    pub currency: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Dispute {
    pub tenant_id: Uuid,
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub opened_at: DateTime<Utc>,
}

/// Remit's side: the records of the listed hours, and those the lines name.
#[derive(Debug, Clone, Default)]
pub struct Books {
    pub orders: Vec<Order>,
    pub refunds: Vec<Refund>,
    pub disputes: Vec<Dispute>,
    /// Consultants' subscription payments (PaymentIntent → amount): charges Remit makes for
    /// itself, not buyers' payments.
    pub subscription_payments: HashMap<String, i64>,
}

impl Books {
    async fn load(
        pool: &PgPool,
        livemode: bool,
        lines: &[Line],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Self> {
        let (mut intents, mut charges, mut fees, mut refunds, mut disputes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for line in lines {
            match &line.source {
                Source::Charge { id, payment_intent } => {
                    charges.push(id.clone());
                    intents.extend(payment_intent.clone());
                }
                Source::Refund { id, payment_intent } => {
                    refunds.push(id.clone());
                    intents.extend(payment_intent.clone());
                }
                Source::ApplicationFee { charge, .. } | Source::Transfer { charge, .. } => {
                    charges.extend(charge.clone())
                }
                Source::FeeRefund { fee } => fees.push(fee.clone()),
                Source::TransferReversal { refund, .. } => refunds.extend(refund.clone()),
                Source::Dispute { id } => disputes.push(id.clone()),
                Source::Other => {}
            }
        }
        let orders = sqlx::query!(
            "SELECT o.tenant_id, o.stripe_payment_intent_id, o.stripe_charge_id, o.stripe_application_fee_id, o.amount,
                    o.application_fee, o.currency, o.paid_at
             FROM orders o
             WHERE coalesce((SELECT livemode FROM winning_bids WHERE id = o.bid_id),
                            (SELECT livemode FROM fee_requests WHERE id = o.fee_request_id)) = $1
               AND ((o.paid_at >= $2 AND o.paid_at < $3) OR o.stripe_payment_intent_id = ANY($4)
                   OR o.stripe_charge_id = ANY($5) OR o.stripe_application_fee_id = ANY($6)
                   OR o.id IN (SELECT order_id FROM refunds WHERE stripe_refund_id = ANY($7)
                               OR (coalesce(stripe_created_at, created_at) >= $2 AND coalesce(stripe_created_at, created_at) < $3)))",
            livemode,
            since,
            until,
            &intents,
            &charges,
            &fees,
            &refunds,
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|o| Order {
            tenant_id: o.tenant_id,
            payment_intent: o.stripe_payment_intent_id,
            charge: o.stripe_charge_id,
            application_fee_id: o.stripe_application_fee_id,
            amount: o.amount,
            application_fee: o.application_fee,
            currency: o.currency,
            paid_at: o.paid_at,
        })
        .collect();
        let refunds = sqlx::query!(
            r#"SELECT r.tenant_id, r.id, r.stripe_refund_id, o.stripe_payment_intent_id, r.amount, r.status = 'failed' AS "failed!",
                      r.application_fee_refunded, r.currency, coalesce(r.stripe_created_at, r.created_at) AS "at!"
               FROM refunds r JOIN orders o ON o.id = r.order_id
               WHERE r.livemode = $1
                 AND ((r.status IN ('requested', 'pending', 'succeeded')
                       AND coalesce(r.stripe_created_at, r.created_at) >= $2 AND coalesce(r.stripe_created_at, r.created_at) < $3)
                      OR r.stripe_refund_id = ANY($4))"#,
            livemode,
            since,
            until,
            &refunds,
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| Refund {
            tenant_id: r.tenant_id,
            id: r.id,
            stripe_id: r.stripe_refund_id,
            payment_intent: r.stripe_payment_intent_id,
            amount: r.amount,
            failed: r.failed,
            application_fee_refunded: r.application_fee_refunded,
            currency: r.currency,
            at: r.at,
        })
        .collect();
        let disputes = sqlx::query!(
            "SELECT d.tenant_id, d.stripe_dispute_id, d.amount, d.currency, d.created_at
             FROM disputes d JOIN orders o ON o.id = d.order_id
             WHERE coalesce((SELECT livemode FROM winning_bids WHERE id = o.bid_id),
                            (SELECT livemode FROM fee_requests WHERE id = o.fee_request_id)) = $1
               AND d.status NOT LIKE 'warning%'
               AND ((d.created_at >= $2 AND d.created_at < $3) OR d.stripe_dispute_id = ANY($4))",
            livemode,
            since,
            until,
            &disputes,
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|d| Dispute {
            tenant_id: d.tenant_id,
            id: d.stripe_dispute_id,
            amount: d.amount,
            currency: d.currency,
            opened_at: d.created_at,
        })
        .collect();
        let subscription_payments = sqlx::query!(
            "SELECT stripe_payment_intent_id, amount FROM payment_transactions WHERE stripe_payment_intent_id = ANY($1)",
            &intents,
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|p| (p.stripe_payment_intent_id, p.amount))
        .collect();
        Ok(Books { orders, refunds, disputes, subscription_payments })
    }
}

/// One thing Stripe and Remit disagree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub kind: ReconciliationDifference,
    /// Stripe's balance transaction type it is about.
    pub line: &'static str,
    /// The Stripe object (or Remit's record, when Stripe has none) it is about.
    pub subject: String,
    pub tenant_id: Option<Uuid>,
    pub currency: String,
    pub stripe_amount: Option<i64>,
    pub remit_amount: Option<i64>,
}

impl Difference {
    fn missing_in_remit(line: &'static str, subject: &str, tenant_id: Option<Uuid>, l: &Line, amount: i64) -> Self {
        Difference {
            kind: ReconciliationDifference::MissingInRemit,
            line,
            subject: subject.to_owned(),
            tenant_id,
            currency: l.currency.clone(),
            stripe_amount: Some(amount),
            remit_amount: None,
        }
    }

    fn missing_in_stripe(line: &'static str, subject: &str, tenant_id: Uuid, currency: &str, amount: i64) -> Self {
        Difference {
            kind: ReconciliationDifference::MissingInStripe,
            line,
            subject: subject.to_owned(),
            tenant_id: Some(tenant_id),
            currency: currency.to_owned(),
            stripe_amount: None,
            remit_amount: Some(amount),
        }
    }
}

/// Compares the lines with the books for the day from `start` until `end`. Amounts are as each
/// side sees the money from where it stands: a refund of 10.00 is 10.00 on both sides, though it
/// takes 10.00 from Stripe's balance.
pub fn compare(lines: &[Line], books: &Books, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Difference> {
    let in_day = |at: DateTime<Utc>| at >= start && at < end;
    let order_by_intent = |pi: &str| books.orders.iter().find(|o| o.payment_intent == pi);
    let order_by_charge = |ch: &str| books.orders.iter().find(|o| o.charge.as_deref() == Some(ch));
    let refund_by_id = |id: &str| books.refunds.iter().find(|r| r.stripe_id.as_deref() == Some(id));
    let mut out = Vec::new();
    // A line and its record agree when both amount and currency do.
    let mut check = |line: &'static str, subject: &str, tenant: Uuid, l: &Line, stripe: i64, remit: (i64, &str)| {
        if stripe != remit.0 || !l.currency.eq_ignore_ascii_case(remit.1) {
            out.push(Difference {
                kind: ReconciliationDifference::AmountMismatch,
                line,
                subject: subject.to_owned(),
                tenant_id: Some(tenant),
                currency: l.currency.clone(),
                stripe_amount: Some(stripe),
                remit_amount: Some(remit.0),
            });
        }
    };
    let mut missing = Vec::new();

    // Stripe's lines of the day, each against Remit's record.
    for l in lines.iter().filter(|l| in_day(l.created)) {
        match &l.source {
            Source::Charge { id, payment_intent } => {
                let order = payment_intent.as_deref().and_then(order_by_intent).or_else(|| order_by_charge(id));
                match (order, payment_intent.as_deref().and_then(|pi| books.subscription_payments.get(pi))) {
                    (Some(o), _) => check("charge", id, o.tenant_id, l, l.amount, (o.amount, &o.currency)),
                    // A consultant's subscription payment: Remit's own charge, no tenant's.
                    (None, Some(&remit)) => {
                        if remit != l.amount {
                            missing.push(Difference {
                                kind: ReconciliationDifference::AmountMismatch,
                                line: "charge",
                                subject: id.clone(),
                                tenant_id: None,
                                currency: l.currency.clone(),
                                stripe_amount: Some(l.amount),
                                remit_amount: Some(remit),
                            });
                        }
                    }
                    (None, None) => missing.push(Difference::missing_in_remit("charge", id, None, l, l.amount)),
                }
            }
            Source::Refund { id, payment_intent } => {
                let failure = l.kind == "refund_failure";
                let line = if failure { "refund_failure" } else { "refund" };
                let own = payment_intent.as_deref().is_some_and(|pi| books.subscription_payments.contains_key(pi));
                match refund_by_id(id) {
                    // Stripe gives back to the balance a refund it could not make.
                    Some(r) if failure => {
                        if !r.failed {
                            missing.push(Difference::missing_in_remit(line, id, Some(r.tenant_id), l, l.amount));
                        }
                    }
                    Some(r) => check(line, id, r.tenant_id, l, -l.amount, (r.amount, &r.currency)),
                    // A consultant's subscription payment refunded: Remit's own business.
                    None if own => {}
                    None => {
                        let tenant = payment_intent.as_deref().and_then(order_by_intent).map(|o| o.tenant_id);
                        missing.push(Difference::missing_in_remit(line, id, tenant, l, l.amount.abs()));
                    }
                }
            }
            Source::ApplicationFee { id, charge } => match charge.as_deref().and_then(order_by_charge) {
                Some(o) => check("application_fee", id, o.tenant_id, l, l.amount, (o.application_fee, &o.currency)),
                None => missing.push(Difference::missing_in_remit("application_fee", id, None, l, l.amount)),
            },
            Source::Transfer { id, charge } => match charge.as_deref().and_then(order_by_charge) {
                Some(o) => check("transfer", id, o.tenant_id, l, -l.amount, (o.amount, &o.currency)),
                None => missing.push(Difference::missing_in_remit("transfer", id, None, l, -l.amount)),
            },
            Source::TransferReversal { id, refund } => match refund.as_deref().and_then(refund_by_id) {
                Some(r) => check("transfer_refund", id, r.tenant_id, l, l.amount, (r.amount, &r.currency)),
                None => missing.push(Difference::missing_in_remit("transfer_refund", id, None, l, l.amount)),
            },
            // Compared per fee below.
            Source::FeeRefund { .. } => {}
            Source::Dispute { id } => match books.disputes.iter().find(|d| d.id == *id) {
                // A dispute takes its amount when opened; a won one gives it back later.
                Some(d) if l.amount < 0 => check("adjustment", id, d.tenant_id, l, -l.amount, (d.amount, &d.currency)),
                Some(_) => {}
                None => missing.push(Difference::missing_in_remit("adjustment", id, None, l, -l.amount)),
            },
            Source::Other => {}
        }
    }
    let mut out_missing = missing;

    // Remit's records of the day, each against Stripe's lines (of the listed hours).
    let has = |pred: &dyn Fn(&Source) -> bool| lines.iter().any(|l| pred(&l.source));
    for o in books.orders.iter().filter(|o| in_day(o.paid_at)) {
        let charged = has(&|s| match s {
            Source::Charge { id, payment_intent } => {
                payment_intent.as_deref() == Some(o.payment_intent.as_str()) || o.charge.as_deref() == Some(id)
            }
            _ => false,
        });
        if !charged {
            out_missing.push(Difference::missing_in_stripe(
                "charge",
                &o.payment_intent,
                o.tenant_id,
                &o.currency,
                o.amount,
            ));
            continue;
        }
        let Some(charge) = o.charge.as_deref() else { continue };
        if !has(&|s| matches!(s, Source::Transfer { charge: Some(c), .. } if c == charge)) {
            out_missing.push(Difference::missing_in_stripe("transfer", charge, o.tenant_id, &o.currency, o.amount));
        }
        if o.application_fee > 0
            && !has(&|s| matches!(s, Source::ApplicationFee { charge: Some(c), .. } if c == charge))
        {
            out_missing.push(Difference::missing_in_stripe(
                "application_fee",
                charge,
                o.tenant_id,
                &o.currency,
                o.application_fee,
            ));
        }
    }
    for r in books.refunds.iter().filter(|r| in_day(r.at) && !r.failed) {
        let subject = r.stripe_id.clone().unwrap_or_else(|| r.id.to_string());
        let Some(stripe_id) = r.stripe_id.as_deref() else {
            // Still being asked of Stripe (or left so by a crash): Stripe has no such refund yet.
            out_missing.push(Difference::missing_in_stripe("refund", &subject, r.tenant_id, &r.currency, r.amount));
            continue;
        };
        if !has(&|s| matches!(s, Source::Refund { id, .. } if id == stripe_id)) {
            out_missing.push(Difference::missing_in_stripe("refund", stripe_id, r.tenant_id, &r.currency, r.amount));
            continue;
        }
        if !has(&|s| matches!(s, Source::TransferReversal { refund: Some(x), .. } if x == stripe_id)) {
            out_missing.push(Difference::missing_in_stripe(
                "transfer_refund",
                stripe_id,
                r.tenant_id,
                &r.currency,
                r.amount,
            ));
        }
    }

    // Fee refunds are compared per fee, over all the listed hours (a fee refund's line may fall
    // a moment past midnight): Stripe's lines against what Remit's refunds give back, for every
    // fee either side touched on the day. Stripe's fee refund does not name its refund.
    let mut stripe_fees: HashMap<&str, (i64, bool, &Line)> = HashMap::new();
    for l in lines {
        if let Source::FeeRefund { fee } = &l.source {
            let entry = stripe_fees.entry(fee.as_str()).or_insert((0, false, l));
            entry.0 += -l.amount;
            entry.1 |= in_day(l.created);
        }
    }
    let mut remit_fees: HashMap<&str, (i64, bool, &Order)> = HashMap::new();
    for r in books.refunds.iter().filter(|r| !r.failed && r.stripe_id.is_some()) {
        if let Some(order) = order_by_intent(&r.payment_intent)
            && let Some(fee) = order.application_fee_id.as_deref()
        {
            let entry = remit_fees.entry(fee).or_insert((0, false, order));
            entry.0 += r.application_fee_refunded;
            entry.1 |= in_day(r.at) && r.application_fee_refunded > 0;
        }
    }
    for (fee, (stripe, today, line)) in &stripe_fees {
        let remit = remit_fees.get(fee);
        if !today && !remit.is_some_and(|(_, today, _)| *today) {
            continue;
        }
        match books.orders.iter().find(|o| o.application_fee_id.as_deref() == Some(*fee)) {
            None => out_missing.push(Difference::missing_in_remit("application_fee_refund", fee, None, line, *stripe)),
            Some(o) => {
                let given = remit.map_or(0, |(sum, _, _)| *sum);
                check("application_fee_refund", fee, o.tenant_id, line, *stripe, (given, &o.currency));
            }
        }
    }
    for (fee, (given, today, order)) in &remit_fees {
        if *today && !stripe_fees.contains_key(fee) {
            out_missing.push(Difference::missing_in_stripe(
                "application_fee_refund",
                fee,
                order.tenant_id,
                &order.currency,
                *given,
            ));
        }
    }
    for d in books.disputes.iter().filter(|d| in_day(d.opened_at)) {
        if !has(&|s| matches!(s, Source::Dispute { id } if *id == d.id)) {
            out_missing.push(Difference::missing_in_stripe("adjustment", &d.id, d.tenant_id, &d.currency, d.amount));
        }
    }
    out.extend(out_missing);
    out
}

/// One reconciled day and mode, for the admin page.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: Uuid,
    pub day: NaiveDate,
    pub livemode: bool,
    pub lines: i32,
    pub differences: i32,
    pub ran_at: DateTime<Utc>,
}

/// One difference as the admin page lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub kind: ReconciliationDifference,
    pub line: String,
    pub subject: String,
    pub tenant: Option<String>,
    pub currency: String,
    pub stripe_amount: Option<i64>,
    pub remit_amount: Option<i64>,
}

/// The latest runs (newest day first) with the differences of each.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<(Run, Vec<Listed>)>> {
    let runs = sqlx::query_as!(
        Run,
        "SELECT id, day, livemode, lines, differences, ran_at FROM reconciliations
         ORDER BY day DESC, livemode DESC LIMIT $1",
        limit
    )
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let rows = sqlx::query!(
        r#"SELECT d.reconciliation_id, d.kind AS "kind: ReconciliationDifference", d.line, d.subject, t.name AS "tenant?",
                  d.currency, d.stripe_amount, d.remit_amount
           FROM reconciliation_differences d LEFT JOIN tenants t ON t.id = d.tenant_id
           WHERE d.reconciliation_id = ANY($1) ORDER BY d.kind, d.line, d.subject"#,
        &ids
    )
    .fetch_all(pool)
    .await?;
    let mut by_run: HashMap<Uuid, Vec<Listed>> = HashMap::new();
    for r in rows {
        by_run.entry(r.reconciliation_id).or_default().push(Listed {
            kind: r.kind,
            line: r.line,
            subject: r.subject,
            tenant: r.tenant,
            currency: r.currency,
            stripe_amount: r.stripe_amount,
            remit_amount: r.remit_amount,
        });
    }
    Ok(runs
        .into_iter()
        .map(|run| {
            let differences = by_run.remove(&run.id).unwrap_or_default();
            (run, differences)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: i64) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2026, 12, 5).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc() + Duration::hours(hour)
    }

    fn line(kind: &str, amount: i64, hour: i64, source: Source) -> Line {
        Line {
            id: format!("txn_{kind}_{amount}_{hour}"),
            kind: kind.to_owned(),
            amount,
            currency: "usd".into(),
            created: at(hour),
            source,
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    const TENANT: Uuid = Uuid::from_u128(7);

    /// A paid order of 100.00 with a 5.00 fee, refunded 40.00 (2.00 of the fee back), as Stripe
    /// and Remit both saw it.
    fn agreeing() -> (Vec<Line>, Books) {
        let lines = vec![
            line("charge", 10_000, 10, Source::Charge { id: "ch_1".into(), payment_intent: s("pi_1") }),
            line("transfer", -10_000, 10, Source::Transfer { id: "tr_1".into(), charge: s("ch_1") }),
            line("application_fee", 500, 10, Source::ApplicationFee { id: "fee_1".into(), charge: s("ch_1") }),
            line("refund", -4_000, 12, Source::Refund { id: "re_1".into(), payment_intent: s("pi_1") }),
            line("transfer_refund", 4_000, 12, Source::TransferReversal { id: "trr_1".into(), refund: s("re_1") }),
            line("application_fee_refund", -200, 12, Source::FeeRefund { fee: "fee_1".into() }),
            line("payout", -3_000, 13, Source::Other),
        ];
        let books = Books {
            orders: vec![Order {
                tenant_id: TENANT,
                payment_intent: "pi_1".into(),
                charge: s("ch_1"),
                application_fee_id: s("fee_1"),
                amount: 10_000,
                application_fee: 500,
                currency: "usd".into(),
                paid_at: at(10),
            }],
            refunds: vec![Refund {
                tenant_id: TENANT,
                id: Uuid::from_u128(1),
                stripe_id: s("re_1"),
                payment_intent: "pi_1".into(),
                amount: 4_000,
                failed: false,
                application_fee_refunded: 200,
                currency: "usd".into(),
                at: at(12),
            }],
            ..Books::default()
        };
        (lines, books)
    }

    fn kinds(differences: &[Difference]) -> Vec<(ReconciliationDifference, &str, &str)> {
        differences.iter().map(|d| (d.kind, d.line, d.subject.as_str())).collect()
    }

    #[test]
    fn books_that_agree_with_stripe_show_no_difference() {
        let (lines, books) = agreeing();
        assert_eq!(compare(&lines, &books, at(0), at(24)), vec![]);
    }

    #[test]
    fn a_charge_made_outside_remit_and_a_refund_remit_never_heard_of_are_reported() {
        let (mut lines, books) = agreeing();
        lines.push(line("charge", 2_000, 15, Source::Charge { id: "ch_x".into(), payment_intent: s("pi_x") }));
        lines.push(line("refund", -1_000, 16, Source::Refund { id: "re_lost".into(), payment_intent: s("pi_1") }));
        lines.push(line(
            "transfer_refund",
            1_000,
            16,
            Source::TransferReversal { id: "trr_2".into(), refund: s("re_lost") },
        ));
        let found = compare(&lines, &books, at(0), at(24));
        assert_eq!(
            kinds(&found),
            [
                (ReconciliationDifference::MissingInRemit, "charge", "ch_x"),
                (ReconciliationDifference::MissingInRemit, "refund", "re_lost"),
                (ReconciliationDifference::MissingInRemit, "transfer_refund", "trr_2"),
            ]
        );
        assert_eq!(found[1].tenant_id, Some(TENANT), "the lost refund's tenant is known by its payment");
        assert_eq!(found[1].stripe_amount, Some(1_000));
    }

    #[test]
    fn subscription_payments_are_remits_own_charges() {
        let (mut lines, mut books) = agreeing();
        lines.push(line("charge", 2_900, 15, Source::Charge { id: "ch_sub".into(), payment_intent: s("pi_sub") }));
        books.subscription_payments.insert("pi_sub".into(), 2_900);
        assert_eq!(compare(&lines, &books, at(0), at(24)), vec![]);
        // Its amount is still compared.
        books.subscription_payments.insert("pi_sub".into(), 1_900);
        let found = compare(&lines, &books, at(0), at(24));
        assert_eq!(kinds(&found), [(ReconciliationDifference::AmountMismatch, "charge", "ch_sub")]);
        assert_eq!(
            (found[0].stripe_amount, found[0].remit_amount, found[0].tenant_id),
            (Some(2_900), Some(1_900), None)
        );
    }

    #[test]
    fn records_stripe_has_no_line_for_and_amounts_that_differ_are_reported() {
        let (mut lines, mut books) = agreeing();
        lines.retain(|l| l.kind != "transfer_refund" && l.kind != "application_fee_refund");
        books.orders[0].amount = 9_900;
        books.disputes.push(Dispute {
            tenant_id: TENANT,
            id: "dp_1".into(),
            amount: 10_000,
            currency: "usd".into(),
            opened_at: at(20),
        });
        let found = compare(&lines, &books, at(0), at(24));
        assert_eq!(
            kinds(&found),
            [
                (ReconciliationDifference::AmountMismatch, "charge", "ch_1"),
                (ReconciliationDifference::AmountMismatch, "transfer", "tr_1"),
                (ReconciliationDifference::MissingInStripe, "transfer_refund", "re_1"),
                (ReconciliationDifference::MissingInStripe, "application_fee_refund", "fee_1"),
                (ReconciliationDifference::MissingInStripe, "adjustment", "dp_1"),
            ]
        );
        assert_eq!((found[0].stripe_amount, found[0].remit_amount), (Some(10_000), Some(9_900)));
    }

    #[test]
    fn only_the_days_own_lines_and_records_are_reported() {
        let (mut lines, books) = agreeing();
        // A charge outside Remit an hour before the day: listed for matching, not reported.
        lines.push(line("charge", 2_000, -1, Source::Charge { id: "ch_before".into(), payment_intent: s("pi_b") }));
        // The order's charge line a moment after midnight still matches the order of the day.
        let (mut late, books_late) = agreeing();
        late[0].created = at(24);
        assert_eq!(compare(&lines, &books, at(0), at(24)), vec![]);
        assert!(
            !compare(&late, &books_late, at(0), at(24))
                .iter()
                .any(|d| d.kind == ReconciliationDifference::MissingInStripe),
            "a line just past midnight is found for its record"
        );
    }

    #[test]
    fn a_failed_refund_given_back_and_a_consultants_refunded_subscription_are_no_difference() {
        let (mut lines, mut books) = agreeing();
        books.refunds[0].failed = true;
        lines.push(line("refund_failure", 4_000, 20, Source::Refund { id: "re_1".into(), payment_intent: s("pi_1") }));
        lines.push(line("refund", -2_900, 21, Source::Refund { id: "re_sub".into(), payment_intent: s("pi_sub") }));
        books.subscription_payments.insert("pi_sub".into(), 2_900);
        // Remit saw the refund fail, so it no longer expects its reversal and fee back either.
        lines.retain(|l| l.kind != "transfer_refund" && l.kind != "application_fee_refund");
        assert_eq!(compare(&lines, &books, at(0), at(24)), vec![]);
        books.refunds[0].failed = false;
        let found = compare(&lines, &books, at(0), at(24));
        assert!(kinds(&found).contains(&(ReconciliationDifference::MissingInRemit, "refund_failure", "re_1")));
    }

    #[test]
    fn a_fee_refund_a_moment_past_midnight_still_matches_its_refund() {
        let (mut lines, mut books) = agreeing();
        books.refunds[0].at = at(24) - Duration::seconds(1);
        for l in lines.iter_mut().filter(|l| l.kind == "refund" || l.kind == "transfer_refund") {
            l.created = at(24) - Duration::seconds(1);
        }
        lines.iter_mut().find(|l| l.kind == "application_fee_refund").unwrap().created = at(24);
        assert_eq!(compare(&lines, &books, at(0), at(24)), vec![], "the day it was refunded");
        assert_eq!(compare(&lines, &books, at(24), at(48)), vec![], "and the day after");
    }

    #[test]
    fn a_won_dispute_gives_back_what_it_took() {
        let (mut lines, mut books) = agreeing();
        books.disputes.push(Dispute {
            tenant_id: TENANT,
            id: "dp_1".into(),
            amount: 10_000,
            currency: "usd".into(),
            opened_at: at(14),
        });
        lines.push(line("adjustment", -10_000, 14, Source::Dispute { id: "dp_1".into() }));
        lines.push(line("adjustment", 10_000, 18, Source::Dispute { id: "dp_1".into() }));
        assert_eq!(compare(&lines, &books, at(0), at(24)), vec![]);
    }

    #[test]
    fn a_catching_up_run_reconciles_each_missed_day_up_to_a_week() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        assert_eq!(days_to_reconcile(None, day(5)), [day(5)]);
        assert_eq!(days_to_reconcile(Some(day(5)), day(5)), Vec::<NaiveDate>::new());
        assert_eq!(days_to_reconcile(Some(day(2)), day(5)), [day(3), day(4), day(5)]);
        assert_eq!(days_to_reconcile(Some(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()), day(10)).len(), 7);
    }
}
