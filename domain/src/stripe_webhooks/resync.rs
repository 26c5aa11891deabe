//! Resync: what Stripe's webhooks failed to bring is read from Stripe's events list and stored
//! through the intake like any delivery, so a missed event is applied (once: the intake refuses
//! what it has) however long the deliveries were lost — within the 30 days Stripe keeps events.
//!
//! Every 15 minutes and at each worker's start, for the platform and for each connected account
//! Remit tracks (tenants' Stripe accounts and consultants' payout accounts), the events created
//! since that account's last listing (less an overlap, for events Stripe was still writing; an
//! account never listed, from the 30 days Stripe keeps) are listed page by page, each page
//! stored as it arrives. An account Remit lost access to ends
//! its tenant's connection, as the deauthorization event would.

use std::time::Duration;

use chrono::{DateTime, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use stripe_client_core::StripeRequest as _;
use stripe_core::event::ListEvent;

use super::intake;
use crate::{
    Services, billing, checkout,
    error::Result,
    queue,
    stripe::lost_access_error,
    tenant_stripe::{self, AccessLost},
};

/// Stripe keeps events this long; nothing older can be listed.
const STRIPE_KEEPS: Duration = Duration::from_secs(30 * 86_400);
/// Each listing reads again this far back from where the last one ended: an event Stripe made
/// just before the last listing may not have been listed yet then.
const OVERLAP: Duration = Duration::from_secs(10 * 60);
/// Events per page (Stripe's most).
const PAGE: i64 = 100;
/// How the platform's scope is named in `stripe_event_cursors`.
const PLATFORM: &str = "platform";
/// The job's key: the start-up run and the schedule's share one queued job.
pub const JOB_KEY: &str = "resync_stripe_events";

/// Where a listing of one account starts: where the last listing of it ended, less
/// [`OVERLAP`]; an account never listed, and anything older, from the oldest event Stripe keeps.
/// Never after now (a listing dated ahead by a test clock does not hide today's events).
pub fn listing_start(listed_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    let oldest = now - STRIPE_KEEPS + Duration::from_secs(60);
    listed_until.map_or(oldest, |t| t.min(now) - OVERLAP).max(oldest)
}

/// The event types listed for an account: those Remit acts on.
fn types(account: Option<&str>) -> Vec<String> {
    let mut types: Vec<String> = match account {
        None => {
            billing::events::HANDLED.iter().chain(checkout::events::HANDLED.iter()).map(|t| (*t).to_owned()).collect()
        }
        Some(_) => vec!["account.application.deauthorized".to_owned()],
    };
    types.push("account.updated".to_owned());
    types
}

/// A listed event as a webhook would have carried it.
#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    object: &'static str,
    #[serde(rename = "type")]
    kind: &'a str,
    created: i64,
    livemode: bool,
    account: Option<&'a str>,
    api_version: Option<&'a str>,
    data: ListedData,
}

#[derive(Serialize)]
struct ListedData {
    object: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_attributes: Option<serde_json::Value>,
}

fn payload(event: &stripe_shared::Event) -> Result<String> {
    let value = |v: &miniserde::json::Value| -> Result<serde_json::Value> {
        serde_json::from_str(&miniserde::json::to_string(v))
            .map_err(|e| anyhow::anyhow!("Stripe's event {} could not be read: {e}", event.id.as_str()).into())
    };
    let listed = Listed {
        id: event.id.as_str(),
        object: "event",
        kind: event.type_.as_str(),
        created: event.created,
        livemode: event.livemode,
        account: event.account.as_deref(),
        api_version: event.api_version.as_deref(),
        data: ListedData {
            object: value(&event.data.object)?,
            previous_attributes: event.data.previous_attributes.as_ref().map(value).transpose()?,
        },
    };
    Ok(serde_json::to_string(&listed).map_err(|e| anyhow::anyhow!("{e}"))?)
}

/// What one resync found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resynced {
    /// Accounts listed (the platform counts as one).
    pub accounts: usize,
    /// Events Stripe listed.
    pub listed: usize,
    /// Of those, events Remit had not stored.
    pub stored: usize,
    /// Accounts Remit no longer has access to.
    pub lost: usize,
}

/// Lists and stores what each account's events list holds beyond what was listed before.
/// Accounts are independent: one failing does not stop the others (the error is returned at
/// the end, so the job is retried).
pub async fn resync(services: &Services) -> Result<Resynced> {
    let mut accounts: Vec<Option<String>> = vec![None];
    accounts.extend(
        sqlx::query_scalar!(
            r#"SELECT stripe_account_id AS "id!" FROM tenant_stripe_accounts
               UNION SELECT stripe_account_id FROM consultant_accounts"#
        )
        .fetch_all(&services.pool)
        .await?
        .into_iter()
        .map(Some),
    );
    let mut done = Resynced::default();
    let mut failed = None;
    for account in accounts {
        match resync_account(services, account.as_deref()).await {
            Ok(Listing::Done { listed, stored }) => {
                done.accounts += 1;
                done.listed += listed;
                done.stored += stored;
            }
            Ok(Listing::AccessLost) => done.lost += 1,
            Err(err) => {
                err.log();
                failed = Some(err);
            }
        }
    }
    if done.stored > 0 {
        tracing::warn!(stored = done.stored, "resync found Stripe events the webhooks had not brought");
    }
    match failed {
        Some(err) => Err(err),
        None => Ok(done),
    }
}

/// How one account's listing ended.
enum Listing {
    Done {
        listed: usize,
        stored: usize,
    },
    /// Stripe refused: Remit has no access to the account any more.
    AccessLost,
}

async fn resync_account(services: &Services, account: Option<&str>) -> Result<Listing> {
    let scope = account.unwrap_or(PLATFORM);
    let listed_until = sqlx::query_scalar!("SELECT listed_until FROM stripe_event_cursors WHERE scope = $1", scope)
        .fetch_optional(&services.pool)
        .await?;
    let now = Utc::now();
    let since = listing_start(listed_until, now);

    let client = services.stripe.platform().client();
    let request =
        ListEvent::new().created(stripe_types::RangeQueryTs::gte(since.timestamp())).types(types(account)).limit(PAGE);
    let (mut listed, mut stored, mut after) = (0, 0, None::<String>);
    loop {
        let mut page = request.clone();
        if let Some(after) = &after {
            page = page.starting_after(after.as_str());
        }
        let mut call = page.customize();
        if let Some(account) = account {
            call = call.account_id(stripe_shared::AccountId::from(account));
        }
        let list = match call.send(client).await {
            Ok(list) => list,
            Err(err) if account.is_some() && lost_access_error(&err) => {
                let account = account.unwrap_or_default();
                let mut tx = services.pool.begin().await?;
                tenant_stripe::lost_access(&mut tx, account, None, AccessLost::Refused).await?;
                sqlx::query!("DELETE FROM stripe_event_cursors WHERE scope = $1", scope).execute(&mut *tx).await?;
                tx.commit().await?;
                return Ok(Listing::AccessLost);
            }
            Err(err) => return Err(crate::stripe::upstream(err, "list its events")),
        };
        let payloads = list.data.iter().map(payload).collect::<Result<Vec<_>>>()?;
        listed += payloads.len();
        stored += intake::store_listed(&services.pool, payloads).await?;
        match (list.has_more, list.data.last()) {
            (true, Some(last)) => after = Some(last.id.as_str().to_owned()),
            _ => break,
        }
    }
    // Everything Stripe made before this listing started has now been seen.
    sqlx::query!(
        "INSERT INTO stripe_event_cursors (scope, listed_until) VALUES ($1, $2)
         ON CONFLICT (scope) DO UPDATE SET listed_until = GREATEST(stripe_event_cursors.listed_until, $2)",
        scope,
        now,
    )
    .execute(&services.pool)
    .await?;
    Ok(Listing::Done { listed, stored })
}

/// The resync, from the schedule or a worker's start.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResyncStripeEvents;

impl TaskHandler for ResyncStripeEvents {
    const IDENTIFIER: &'static str = "resync_stripe_events";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let services = queue::ext::<Services>(&ctx)?;
        let done = resync(services).await.map_err(|e| e.to_string())?;
        tracing::info!(
            accounts = done.accounts,
            listed = done.listed,
            stored = done.stored,
            lost = done.lost,
            "Stripe events resynced"
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

    #[test]
    fn a_listing_starts_where_the_last_ended_less_the_overlap() {
        let now = at("2026-12-05T12:00:00Z");
        assert_eq!(listing_start(Some(at("2026-12-05T11:45:00Z")), now), at("2026-12-05T11:35:00Z"));
    }

    #[test]
    fn it_never_starts_before_what_stripe_keeps_or_after_now() {
        let now = at("2026-12-05T12:00:00Z");
        let oldest = now - STRIPE_KEEPS + Duration::from_secs(60);
        assert_eq!(listing_start(None, now), oldest, "an account never listed");
        assert_eq!(listing_start(Some(at("2026-01-01T00:00:00Z")), now), oldest);
        assert_eq!(listing_start(Some(at("2027-06-01T00:00:00Z")), now), now - OVERLAP);
    }

    #[test]
    fn connected_accounts_are_asked_only_for_what_remit_acts_on() {
        let platform = types(None);
        assert!(platform.contains(&"checkout.session.completed".to_owned()));
        assert!(platform.contains(&"invoice.payment_failed".to_owned()));
        // Stripe takes at most 20 types in one listing.
        assert!(platform.len() <= 20, "{}", platform.len());
        assert_eq!(types(Some("acct_1")), ["account.application.deauthorized", "account.updated"]);
    }
}
