//! Consultants' payout accounts: the Stripe connected account (one per consultant, ever), the
//! Account Sessions that let the browser show Stripe's embedded components (onboarding on the
//! payment setup page; balance, payouts, payments and notifications on the Payouts page), the
//! account's status, one-time links for hosted onboarding (`onboarding_links`), and what the
//! Payouts page shows without JavaScript (`summary`).

pub mod onboarding_links;
pub mod session_outcomes;
pub mod summary;

use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::PgConnection;
use stripe_client_core::{RequestStrategy, StripeRequest as _};
use stripe_connect::{
    account::{CreateAccount, CreateAccountType, RetrieveAccount},
    account_session::{
        AccountConfigParam, AccountFeaturesParam, CreateAccountSession, CreateAccountSessionComponents,
        CreateAccountSessionComponentsPayments, CreateAccountSessionComponentsPaymentsFeatures, PayoutsConfigParam,
        PayoutsFeaturesParam,
    },
};
use uuid::Uuid;

use crate::{
    Services,
    auth::Principal,
    billing,
    error::{Error, Result},
    mail::{self, OutgoingEmail},
    states::AccountSessionOutcome,
    stripe::{idempotent, upstream},
    tenant_stripe::Requirements,
    tenant_webhooks::{
        self,
        events::{OnboardingUpdated, TenantEvent},
    },
};

/// Account Sessions a consultant may have made within any hour.
pub const SESSIONS_PER_HOUR: i64 = 10;
/// How long one Account Session request may take in all, retry included.
const SESSION_DEADLINE: Duration = Duration::from_secs(20);
/// Each of the (at most two) attempts.
const SESSION_ATTEMPT: Duration = Duration::from_secs(9);
/// The consultant's payment setup page.
pub const SETUP_PATH: &str = "/payment-setup";
/// Where the embedded onboarding sends the consultant when they finish.
pub const COMPLETION_PATH: &str = "/payment-setup/complete";

#[derive(Debug, Clone)]
pub struct PayoutAccount {
    pub stripe_account_id: String,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
}

pub async fn account_of(pool: &sqlx::PgPool, user_id: Uuid) -> Result<Option<PayoutAccount>> {
    Ok(sqlx::query_as!(
        PayoutAccount,
        "SELECT stripe_account_id, charges_enabled, payouts_enabled, details_submitted
         FROM consultant_accounts WHERE user_id = $1",
        user_id
    )
    .fetch_optional(pool)
    .await?)
}

/// Creates the consultant's connected account, or returns the one they have.
pub async fn create_account(services: &Services, consultant: &Principal) -> Result<PayoutAccount> {
    create_account_for(services, consultant.user_id, &consultant.email, consultant.tenant_id).await
}

/// The connected account of a consultant, created on first use. The idempotency key is derived
/// from the consultant, so a double click, two tabs or a crash between Stripe's answer and the
/// insert all end with the same single account recorded.
async fn create_account_for(
    services: &Services,
    user_id: Uuid,
    email: &str,
    tenant_id: Option<Uuid>,
) -> Result<PayoutAccount> {
    if let Some(account) = account_of(&services.pool, user_id).await? {
        return Ok(account);
    }
    let mut metadata = vec![("remit_user".to_owned(), user_id.to_string())];
    if let Some(tenant) = tenant_id {
        metadata.push(("remit_tenant".to_owned(), tenant.to_string()));
    }
    let created = CreateAccount::new()
        .type_(CreateAccountType::Express)
        .email(email)
        .metadata(metadata.into_iter().collect::<std::collections::HashMap<_, _>>())
        .customize()
        .request_strategy(idempotent(format!("remit-consultant-account-{user_id}"))?)
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "create the payment account"))?;
    // Concurrent requests all get the same account from Stripe (same idempotency key) and all
    // insert it: any unique key the first insert took (the consultant's, or the account's) ends
    // the others quietly, whichever index they reach first.
    sqlx::query!(
        "INSERT INTO consultant_accounts (user_id, stripe_account_id, charges_enabled, payouts_enabled, details_submitted)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        user_id,
        created.id.as_str(),
        created.charges_enabled.unwrap_or(false),
        created.payouts_enabled.unwrap_or(false),
        created.details_submitted.unwrap_or(false),
    )
    .execute(&services.pool)
    .await?;
    account_of(&services.pool, user_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("payout account vanished after insert").into())
}

/// Which page an Account Session is for, and so which of Stripe's embedded components it enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPurpose {
    /// Payment setup: onboarding, and account management once details are submitted.
    Setup,
    /// The Payouts page: the balance and payouts (schedule, instant payouts where Stripe offers
    /// them), the payments received, what Stripe needs (notification banner), and account
    /// management once details are submitted.
    Payouts,
}

/// A fresh Account Session. The client secret goes to the consultant's browser and nowhere
/// else: it is never logged or stored.
pub struct AccountSession {
    pub client_secret: SecretString,
    pub expires_at: DateTime<Utc>,
    pub account_id: String,
    /// True when the session also allows updating a finished account.
    pub allows_updates: bool,
    pub return_url: String,
}

impl std::fmt::Debug for AccountSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSession").field("account_id", &self.account_id).finish_non_exhaustive()
    }
}

/// Makes an Account Session for the consultant's own account (FG-003). Every page's sessions
/// count against the same hourly limit and are recorded for the failure-rate alert.
pub async fn account_session(
    services: &Services,
    consultant: &Principal,
    purpose: SessionPurpose,
) -> Result<AccountSession> {
    let account = account_of(&services.pool, consultant.user_id)
        .await?
        .ok_or_else(|| Error::conflict("Payment account not initialized."))?;
    if !billing::is_subscribed(&services.pool, consultant.user_id).await? {
        return Err(Error::conflict(
            "Payout setup needs an active subscription. Subscribe to a plan under Billing first.",
        ));
    }
    let grant = match take_grant(services, consultant.user_id).await {
        Ok(grant) => grant,
        Err(err) => {
            if matches!(err, Error::RateLimited { .. }) {
                session_outcomes::record(services, consultant.user_id, AccountSessionOutcome::RateLimited, None).await;
            }
            return Err(err);
        }
    };
    match create_session(services, consultant, &account, purpose).await {
        Ok(session) => {
            session_outcomes::record(services, consultant.user_id, AccountSessionOutcome::Succeeded, None).await;
            Ok(session)
        }
        Err(failure) => {
            let (outcome, reason) = match &failure {
                SessionFailure::Stripe(reason) => (AccountSessionOutcome::StripeError, Some(reason.as_str())),
                SessionFailure::TimedOut => (AccountSessionOutcome::TimedOut, None),
            };
            session_outcomes::record(services, consultant.user_id, outcome, reason).await;
            // A session Stripe did not make does not count against the limit.
            sqlx::query!("DELETE FROM account_session_grants WHERE id = $1", grant).execute(&services.pool).await?;
            Err(Error::Upstream("Unable to generate session.".into()))
        }
    }
}

/// Why Stripe made no Account Session: its error in words (its status and code, or that it
/// could not be reached), or no answer within the deadline.
enum SessionFailure {
    Stripe(String),
    TimedOut,
}

impl SessionFailure {
    fn of(err: Option<&stripe::StripeError>) -> Self {
        match err {
            Some(stripe::StripeError::Stripe(api, status)) => Self::Stripe(match &api.code {
                Some(code) => format!("HTTP {status} {}", code.as_str()),
                None => format!("HTTP {status} {}", api.type_.as_str()),
            }),
            Some(stripe::StripeError::Timeout) => Self::TimedOut,
            Some(stripe::StripeError::ClientError(_)) | None => Self::Stripe("Stripe could not be reached".into()),
            Some(_) => Self::Stripe("Stripe's answer could not be read".into()),
        }
    }
}

/// Counts this request against the rolling-hour limit. Requests of one consultant are
/// serialised with an advisory lock, so the limit holds across server processes.
async fn take_grant(services: &Services, user_id: Uuid) -> Result<i64> {
    let mut tx = services.pool.begin().await?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('remit:account-session:' || $1::uuid::text, 0))",
        user_id
    )
    .execute(&mut *tx)
    .await?;
    let window = sqlx::query!(
        r#"SELECT count(*) AS "count!", min(created_at) AS oldest FROM account_session_grants
           WHERE user_id = $1 AND created_at > now() - interval '1 hour'"#,
        user_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if window.count >= SESSIONS_PER_HOUR {
        let next = window.oldest.map_or(Utc::now(), |t| t + chrono::Duration::hours(1));
        let retry_after = (next - Utc::now()).to_std().unwrap_or_default().max(Duration::from_secs(1));
        return Err(Error::RateLimited {
            message: format!(
                "Payment setup can be opened at most {SESSIONS_PER_HOUR} times an hour. Try again in {}.",
                crate::error::human_duration(retry_after)
            ),
            retry_after,
        });
    }
    let id = sqlx::query_scalar!("INSERT INTO account_session_grants (user_id) VALUES ($1) RETURNING id", user_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// The hourly clean-up's part: grants past the limit's hour and request outcomes past the
/// alert's.
pub async fn purge_old_session_records(pool: &sqlx::PgPool) -> Result<u64> {
    let grants = sqlx::query!("DELETE FROM account_session_grants WHERE created_at < now() - interval '2 hours'")
        .execute(pool)
        .await?
        .rows_affected();
    Ok(grants + session_outcomes::purge_old(pool).await?)
}

fn retryable(err: &stripe::StripeError) -> bool {
    match err {
        stripe::StripeError::Stripe(_, status) => *status >= 500,
        stripe::StripeError::Timeout | stripe::StripeError::ClientError(_) => true,
        _ => false,
    }
}

async fn create_session(
    services: &Services,
    consultant: &Principal,
    account: &PayoutAccount,
    purpose: SessionPurpose,
) -> std::result::Result<AccountSession, SessionFailure> {
    let features = AccountFeaturesParam { external_account_collection: Some(true), ..AccountFeaturesParam::new() };
    let mut components = CreateAccountSessionComponents::new();
    let allows_updates = account.details_submitted;
    if allows_updates {
        components.account_management = Some(AccountConfigParam { enabled: true, features: Some(features) });
    }
    match purpose {
        SessionPurpose::Setup => {
            components.account_onboarding = Some(AccountConfigParam { enabled: true, features: Some(features) });
        }
        SessionPurpose::Payouts => {
            // Refunds of fees go through Remit (its credit notes and records), never from
            // Stripe's payments list: the payments component only shows them (Stripe's defaults
            // would allow refunds, disputes and captures there).
            let payouts = PayoutsFeaturesParam {
                instant_payouts: Some(true),
                standard_payouts: Some(true),
                edit_payout_schedule: Some(true),
                external_account_collection: Some(true),
                ..PayoutsFeaturesParam::new()
            };
            components.payouts = Some(PayoutsConfigParam { enabled: true, features: Some(payouts) });
            let shown_only = CreateAccountSessionComponentsPaymentsFeatures {
                refund_management: Some(false),
                dispute_management: Some(false),
                capture_payments: Some(false),
                ..CreateAccountSessionComponentsPaymentsFeatures::new()
            };
            components.payments =
                Some(CreateAccountSessionComponentsPayments { enabled: true, features: Some(shown_only) });
            components.notification_banner = Some(AccountConfigParam { enabled: true, features: Some(features) });
        }
    }
    let request = CreateAccountSession::new(account.stripe_account_id.as_str(), components);
    let attempts = async {
        let mut last = None;
        for attempt in 1..=2 {
            match request
                .customize()
                .request_strategy(RequestStrategy::Once)
                .timeout(SESSION_ATTEMPT)
                .send(services.stripe.platform().client())
                .await
            {
                Ok(session) => return Ok(session),
                Err(err) if attempt == 1 && retryable(&err) => {
                    tracing::warn!(consultant = %consultant.user_id, account = %account.stripe_account_id, error = %err, "Account Session failed; retrying once");
                    last = Some(err);
                }
                Err(err) => return Err(Some(err)),
            }
        }
        Err(last)
    };
    let outcome = tokio::time::timeout(SESSION_DEADLINE, attempts).await;
    let session = match outcome {
        Ok(Ok(session)) => session,
        Ok(Err(err)) => {
            let detail = err.as_ref().map_or_else(|| "no answer".to_owned(), ToString::to_string);
            tracing::error!(consultant = %consultant.user_id, account = %account.stripe_account_id, error = %detail, "Unable to generate an Account Session");
            return Err(SessionFailure::of(err.as_ref()));
        }
        Err(_) => {
            tracing::error!(consultant = %consultant.user_id, account = %account.stripe_account_id, "Account Session timed out after 20 s");
            return Err(SessionFailure::TimedOut);
        }
    };
    Ok(AccountSession {
        client_secret: SecretString::from(session.client_secret),
        expires_at: DateTime::from_timestamp(session.expires_at, 0).unwrap_or_else(Utc::now),
        account_id: account.stripe_account_id.clone(),
        allows_updates,
        return_url: services.settings.public_url(COMPLETION_PATH),
    })
}

/// The payout account as the consultant's payment setup page shows it.
#[derive(Debug, Clone)]
pub struct PayoutStatus {
    pub account: PayoutAccount,
    pub requirements: Requirements,
    /// Stripe could not be reached; this is the last stored state.
    pub stale: bool,
}

/// One reading of a connected account's state.
struct Snapshot {
    charges_enabled: bool,
    payouts_enabled: bool,
    details_submitted: bool,
    requirements: Requirements,
}

async fn stored_status(pool: &sqlx::PgPool, user_id: Uuid) -> Result<Option<PayoutStatus>> {
    let row = sqlx::query!(
        "SELECT stripe_account_id, charges_enabled, payouts_enabled, details_submitted, requirements
         FROM consultant_accounts WHERE user_id = $1",
        user_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| PayoutStatus {
        account: PayoutAccount {
            stripe_account_id: r.stripe_account_id,
            charges_enabled: r.charges_enabled,
            payouts_enabled: r.payouts_enabled,
            details_submitted: r.details_submitted,
        },
        requirements: serde_json::from_value(r.requirements)
            .unwrap_or_else(|_| Requirements::from_stripe(&Value::Null)),
        stale: false,
    }))
}

/// The consultant's payout account, read live from Stripe (and stored); the stored state,
/// marked stale, when Stripe cannot be reached. `None` before the account exists.
pub async fn status(services: &Services, user_id: Uuid) -> Result<Option<PayoutStatus>> {
    let Some(stored) = stored_status(&services.pool, user_id).await? else { return Ok(None) };
    let as_of = Utc::now().trunc_subsecs(0);
    match RetrieveAccount::new(stored.account.stripe_account_id.as_str())
        .send(services.stripe.platform().client())
        .await
    {
        Ok(account) => {
            let snapshot = Snapshot {
                charges_enabled: account.charges_enabled.unwrap_or(false),
                payouts_enabled: account.payouts_enabled.unwrap_or(false),
                details_submitted: account.details_submitted.unwrap_or(false),
                requirements: Requirements::from_account(&account),
            };
            let mut tx = services.pool.begin().await?;
            store(
                &mut tx,
                services,
                &stored.account.stripe_account_id,
                snapshot,
                as_of,
                services.stripe.platform().livemode(),
            )
            .await?;
            tx.commit().await?;
            stored_status(&services.pool, user_id).await
        }
        Err(err) => {
            tracing::warn!(consultant = %user_id, error = %err, "could not read the payout account; showing the stored state");
            Ok(Some(PayoutStatus { stale: true, ..stored }))
        }
    }
}

/// `account.updated` for a consultant's account: stores the new state unless newer is stored.
pub async fn apply_account_updated(
    conn: &mut PgConnection,
    services: &Services,
    account: &Value,
    as_of: DateTime<Utc>,
    livemode: bool,
) -> Result<()> {
    let Some(account_id) = account["id"].as_str() else { return Ok(()) };
    let snapshot = Snapshot {
        charges_enabled: account["charges_enabled"].as_bool().unwrap_or(false),
        payouts_enabled: account["payouts_enabled"].as_bool().unwrap_or(false),
        details_submitted: account["details_submitted"].as_bool().unwrap_or(false),
        requirements: Requirements::from_stripe(&account["requirements"]),
    };
    store(conn, services, account_id, snapshot, as_of, livemode).await
}

/// Stores a reading taken at `as_of` if it is not older than the stored one and differs from it.
/// A change tells the tenant's systems (`onboarding.updated`); requirements that newly fall due
/// are emailed to the consultant.
async fn store(
    conn: &mut PgConnection,
    services: &Services,
    account_id: &str,
    snapshot: Snapshot,
    as_of: DateTime<Utc>,
    livemode: bool,
) -> Result<()> {
    let Some(current) = sqlx::query!(
        "SELECT a.user_id, a.requirements, a.status_as_of, a.charges_enabled, a.payouts_enabled, a.details_submitted,
                u.email, u.display_name, u.tenant_id
         FROM consultant_accounts a JOIN users u ON u.id = a.user_id
         WHERE a.stripe_account_id = $1 FOR UPDATE OF a",
        account_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(());
    };
    let before: Requirements =
        serde_json::from_value(current.requirements).unwrap_or_else(|_| Requirements::from_stripe(&Value::Null));
    let unchanged = (current.charges_enabled, current.payouts_enabled, current.details_submitted, &before)
        == (snapshot.charges_enabled, snapshot.payouts_enabled, snapshot.details_submitted, &snapshot.requirements);
    if as_of < current.status_as_of || unchanged {
        return Ok(());
    }
    let requirements = serde_json::to_value(&snapshot.requirements).map_err(|e| anyhow::anyhow!("{e}"))?;
    sqlx::query!(
        "UPDATE consultant_accounts SET charges_enabled = $2, payouts_enabled = $3, details_submitted = $4,
             requirements = $5, status_as_of = $6 WHERE stripe_account_id = $1",
        account_id,
        snapshot.charges_enabled,
        snapshot.payouts_enabled,
        snapshot.details_submitted,
        requirements,
        as_of,
    )
    .execute(&mut *conn)
    .await?;
    if let Some(tenant_id) = current.tenant_id {
        let event = TenantEvent::OnboardingUpdated(OnboardingUpdated {
            consultant: current.user_id,
            stripe_account: account_id.to_owned(),
            charges_enabled: snapshot.charges_enabled,
            payouts_enabled: snapshot.payouts_enabled,
            details_submitted: snapshot.details_submitted,
            requirements_due: snapshot.requirements.open_count(),
        });
        tenant_webhooks::events::emit(conn, tenant_id, livemode, event).await?;
    }
    let was_due: Vec<&String> = before.currently_due.iter().chain(&before.past_due).collect();
    let newly_due = snapshot
        .requirements
        .currently_due
        .iter()
        .chain(&snapshot.requirements.past_due)
        .any(|r| !was_due.contains(&r));
    if newly_due {
        let tasks: Vec<String> = snapshot
            .requirements
            .tasks()
            .into_iter()
            .map(|(task, overdue)| format!("- {task}{}", if overdue { " (overdue)" } else { "" }))
            .collect();
        let deadline = snapshot
            .requirements
            .current_deadline
            .and_then(|d| DateTime::from_timestamp(d, 0))
            .map(|d| format!("\nStripe asks for this by {}.\n", d.format("%-d %B %Y")))
            .unwrap_or_default();
        mail::enqueue(
            conn,
            OutgoingEmail {
                tenant_id: current.tenant_id,
                to: current.email,
                subject: "Stripe needs more information for your payouts".into(),
                text_body: format!(
                    "Hello {},\n\nTo keep your payouts running, Stripe needs the following:\n{}\n{deadline}\n\
                     You can provide it in Remit's payment setup: {}\n",
                    current.display_name,
                    tasks.join("\n"),
                    services.settings.public_url(SETUP_PATH),
                ),
                attachments: vec![],
                links: None,
            },
        )
        .await?;
    }
    Ok(())
}

/// A tenant's consultant and where their payout setup stands.
#[derive(Debug, Clone)]
pub struct ConsultantPayoutSummary {
    pub user_id: Uuid,
    pub display_name: String,
    pub email: String,
    pub subscribed: bool,
    pub has_account: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub open_tasks: usize,
}

/// Every consultant of a tenant with their payout setup, for the tenant's staff.
pub async fn tenant_overview(pool: &sqlx::PgPool, tenant_id: Uuid) -> Result<Vec<ConsultantPayoutSummary>> {
    let rows = sqlx::query!(
        r#"SELECT u.id, u.display_name, u.email,
                  EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id AND s.status IN ('trialing', 'active')) AS "subscribed!",
                  a.user_id IS NOT NULL AS "has_account!",
                  COALESCE(a.payouts_enabled, false) AS "payouts_enabled!",
                  COALESCE(a.details_submitted, false) AS "details_submitted!",
                  a.requirements AS "requirements?"
           FROM users u LEFT JOIN consultant_accounts a ON a.user_id = u.id
           WHERE u.tenant_id = $1 AND u.role = 'consultant'
           ORDER BY lower(u.display_name)"#,
        tenant_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ConsultantPayoutSummary {
            user_id: r.id,
            display_name: r.display_name,
            email: r.email,
            subscribed: r.subscribed,
            has_account: r.has_account,
            payouts_enabled: r.payouts_enabled,
            details_submitted: r.details_submitted,
            open_tasks: r
                .requirements
                .and_then(|v| serde_json::from_value::<Requirements>(v).ok())
                .map_or(0, |req| req.open_count()),
        })
        .collect())
}
