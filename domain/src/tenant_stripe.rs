//! A tenant's own Stripe account, connected with Stripe Connect OAuth: the connect URL with a
//! single-use state bound to the owner's session, the callback, live status, and disconnecting.
//!
//! async-stripe 1.0 has no OAuth calls (they live on connect.stripe.com, outside the `/v1`
//! API), so the two OAuth requests are made here with the same base-URL switch as every other
//! Stripe call; everything about the account itself goes through async-stripe.

use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use stripe_connect::account::RetrieveAccount;
use uuid::Uuid;

use crate::{
    Services, accounts,
    audit::{self, Entry},
    auth::Principal,
    crypto,
    error::{Error, Result},
    mail::{self, OutgoingEmail},
    tenant_webhooks::{
        self,
        events::{StripeAccountUpdated, TenantEvent},
    },
};

/// How long a connect link stays usable.
const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);
const OAUTH_TIMEOUT: Duration = Duration::from_secs(20);
pub const CALLBACK_PATH: &str = "/api/v1/auth/tenants/stripe/callback/";

pub use crate::stripe::requirements::Requirements;

// The task list is how the pages show requirements, so it lives with them.
impl Requirements {
    /// What is due, in words, overdue items first: (task, overdue).
    pub fn tasks(&self) -> Vec<(String, bool)> {
        let mut seen = std::collections::HashSet::new();
        let overdue = self.past_due.iter().map(|r| (describe_requirement(r), true));
        let due =
            self.currently_due.iter().filter(|r| !self.past_due.contains(r)).map(|r| (describe_requirement(r), false));
        // Several fields can share one task (day, month and year of birth).
        overdue.chain(due).filter(|(task, _)| seen.insert(task.clone())).collect()
    }
}

/// What a Stripe requirement code asks of the account holder, in words.
pub fn describe_requirement(code: &str) -> String {
    let known = match code {
        "external_account" => "Add a bank account for payouts",
        "tos_acceptance.date" | "tos_acceptance.ip" => "Accept Stripe's services agreement",
        "business_type" => "Say what kind of business this is",
        "business_profile.url" => "Add the business website",
        "business_profile.mcc" => "Choose the business category",
        "individual.first_name" | "individual.last_name" => "Give the account holder's name",
        "individual.dob.day" | "individual.dob.month" | "individual.dob.year" => {
            "Give the account holder's date of birth"
        }
        "individual.address.line1" | "individual.address.city" | "individual.address.postal_code" => {
            "Give the account holder's address"
        }
        "individual.id_number" | "individual.ssn_last_4" => "Give the account holder's tax ID",
        "individual.verification.document" => "Upload an identity document",
        "company.tax_id" => "Give the company's tax ID",
        _ => "",
    };
    if known.is_empty() { format!("Provide {}", code.replace(['.', '_'], " ")) } else { known.to_owned() }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Connection {
    pub stripe_account_id: String,
    pub connected_at: DateTime<Utc>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub requirements: Requirements,
    /// True when Stripe could not be asked just now and this is the last state Remit saw.
    pub stale: bool,
}

/// Starts a connection (owners only): a single-use state bound to this session, and the
/// Stripe URL to send the owner to.
pub async fn connect_url(services: &Services, owner: &Principal, session_token: &str) -> Result<String> {
    let tenant_id = owner.tenant()?;
    if connection(services, tenant_id).await?.is_some() {
        return Err(Error::conflict(
            "This tenant's Stripe account is already connected. Disconnect it first to connect another.",
        ));
    }
    let state = crypto::random_token();
    let mut tx = services.pool.begin().await?;
    sqlx::query!(
        "INSERT INTO oauth_states (state_hash, tenant_id, user_id, session_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        crypto::token_hash(&state),
        tenant_id,
        owner.user_id,
        crypto::token_hash(session_token),
        Utc::now() + STATE_LIFETIME,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(owner),
            action: "stripe.connect_started",
            target: None,
            reason: None,
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    let config = services.stripe.config();
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", config.connect_base.trim_end_matches('/')))
        .map_err(|e| anyhow::anyhow!("the Stripe Connect base URL is invalid: {e}"))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &services.stripe.platform().keys().connect_client_id)
        .append_pair("scope", "read_write")
        .append_pair("state", &state)
        .append_pair("redirect_uri", &services.settings.public_url(CALLBACK_PATH));
    Ok(url.to_string())
}

/// What the OAuth callback received.
pub struct Callback<'a> {
    pub session_token: Option<&'a str>,
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    /// Set when the owner declined on Stripe's page.
    pub error: Option<&'a str>,
}

#[derive(Deserialize)]
struct TokenResponse {
    stripe_user_id: String,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

/// Completes a connection. The state must exist, be unused, unexpired and bound to this very
/// session (403 otherwise); it is used up whatever happens next. A missing code is 400.
pub async fn complete(
    services: &Services,
    principal: Option<&Principal>,
    callback: Callback<'_>,
) -> Result<Connection> {
    let state = callback.state.filter(|s| !s.is_empty()).ok_or(Error::Forbidden)?;
    let session = callback.session_token.ok_or(Error::Forbidden)?;
    let principal = principal.ok_or(Error::Forbidden)?;
    // The conditional update makes the state single-use even when two callbacks race.
    let claimed = sqlx::query!(
        "UPDATE oauth_states SET used_at = now()
         WHERE state_hash = $1 AND used_at IS NULL AND expires_at > now() AND session_hash = $2 AND user_id = $3
         RETURNING tenant_id",
        crypto::token_hash(state),
        crypto::token_hash(session),
        principal.user_id,
    )
    .fetch_optional(&services.pool)
    .await?;
    let Some(claimed) = claimed else {
        tracing::warn!(user_id = %principal.user_id, "OAuth callback with a missing, used, expired or foreign state");
        return Err(Error::Forbidden);
    };
    let tenant_id = claimed.tenant_id;
    if let Some(error) = callback.error {
        tracing::info!(%tenant_id, error, "Stripe connection declined");
        return Err(Error::BadRequest(
            "The Stripe connection was cancelled on Stripe's page. You can start again.".into(),
        ));
    }
    let code = callback.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        Error::BadRequest("Stripe's answer had no authorization code. Start the connection again.".into())
    })?;

    let account_id = exchange_code(services, code).await?;
    let account = retrieve(services, &account_id).await.ok();
    let mut tx = services.pool.begin().await?;
    let inserted = sqlx::query!(
        "INSERT INTO tenant_stripe_accounts (tenant_id, stripe_account_id, connected_by) VALUES ($1, $2, $3)",
        tenant_id,
        account_id,
        principal.user_id,
    )
    .execute(&mut *tx)
    .await;
    if let Err(err) = inserted {
        return Err(if crate::db::violates(&err, "tenant_stripe_accounts_account_key") {
            Error::conflict("This Stripe account is already connected to another tenant.")
        } else if crate::db::violates(&err, "tenant_stripe_accounts_pkey") {
            Error::conflict("This tenant's Stripe account is already connected.")
        } else {
            err.into()
        });
    }
    if let Some(account) = &account {
        store_account(&mut tx, tenant_id, account, read_time()).await?;
    }
    sqlx::query!("UPDATE tenants SET status = 'active' WHERE id = $1 AND status = 'onboarding'", tenant_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(principal),
            action: "stripe.connected",
            target: Some(account_id.clone()),
            reason: None,
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%tenant_id, account = %account_id, "Stripe account connected");
    connection(services, tenant_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the new connection could not be read back").into())
}

fn oauth_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(OAUTH_TIMEOUT).build().map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?)
}

async fn exchange_code(services: &Services, code: &str) -> Result<String> {
    let config = services.stripe.config();
    let response = oauth_client()?
        .post(format!("{}/oauth/token", config.connect_base.trim_end_matches('/')))
        .bearer_auth(services.stripe.platform().keys().secret_key.expose_secret())
        .form(&[("grant_type", "authorization_code"), ("code", code)])
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "Stripe OAuth token exchange failed");
            Error::Upstream("Stripe could not be reached to finish the connection. Start it again in a moment.".into())
        })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|_| Error::Upstream("Stripe's answer was cut off. Start the connection again.".into()))?;
    if status.is_success() {
        let token: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("unexpected OAuth token response: {e}"))?;
        return Ok(token.stripe_user_id);
    }
    let error: Option<OAuthError> = serde_json::from_slice(&body).ok();
    tracing::warn!(status = status.as_u16(), error = ?error.as_ref().map(|e| &e.error), "Stripe refused the OAuth code");
    match error {
        Some(e) if e.error == "invalid_grant" => Err(Error::BadRequest(
            "This authorization code is invalid or was already used. Start the connection again.".into(),
        )),
        Some(e) if status.is_client_error() => {
            Err(Error::Upstream(format!("Stripe refused the connection: {}", e.error_description.unwrap_or(e.error))))
        }
        _ => Err(Error::Upstream("Stripe could not finish the connection. Start it again in a moment.".into())),
    }
}

async fn retrieve(services: &Services, account_id: &str) -> Result<stripe_shared::Account, stripe::StripeError> {
    RetrieveAccount::new(account_id.to_owned()).send(services.stripe.platform().client()).await.inspect_err(|e| {
        tracing::warn!(error = %e, account = account_id, "could not read the Stripe account");
    })
}

/// When a live read of the account happened, on Stripe's clock: event times are whole seconds,
/// so an event from the same second as a read counts as no older than it and still applies.
fn read_time() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Stores the account's flags and requirements if they are newer than what is stored. Returns
/// whether anything changed (so callers can tell the tenant).
async fn store_account(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    account: &stripe_shared::Account,
    as_of: DateTime<Utc>,
) -> Result<bool> {
    let requirements = serde_json::to_value(Requirements::from_account(account)).map_err(|e| anyhow::anyhow!("{e}"))?;
    store(
        conn,
        tenant_id,
        account.charges_enabled.unwrap_or(false),
        account.payouts_enabled.unwrap_or(false),
        account.details_submitted.unwrap_or(false),
        requirements,
        as_of,
    )
    .await
}

async fn store(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    charges: bool,
    payouts: bool,
    details: bool,
    requirements: serde_json::Value,
    as_of: DateTime<Utc>,
) -> Result<bool> {
    let updated = sqlx::query!(
        "UPDATE tenant_stripe_accounts
         SET charges_enabled = $2, payouts_enabled = $3, details_submitted = $4, requirements = $5, status_as_of = $6
         WHERE tenant_id = $1 AND status_as_of <= $6
           AND (charges_enabled, payouts_enabled, details_submitted, requirements) IS DISTINCT FROM ($2, $3, $4, $5)",
        tenant_id,
        charges,
        payouts,
        details,
        requirements,
        as_of,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated > 0)
}

/// The stored connection of a tenant, if any.
pub async fn connection(services: &Services, tenant_id: Uuid) -> Result<Option<Connection>> {
    let row = sqlx::query!(
        "SELECT stripe_account_id, connected_at, charges_enabled, payouts_enabled, details_submitted, requirements
         FROM tenant_stripe_accounts WHERE tenant_id = $1",
        tenant_id
    )
    .fetch_optional(&services.pool)
    .await?;
    Ok(row.map(|r| Connection {
        stripe_account_id: r.stripe_account_id,
        connected_at: r.connected_at,
        charges_enabled: r.charges_enabled,
        payouts_enabled: r.payouts_enabled,
        details_submitted: r.details_submitted,
        requirements: serde_json::from_value(r.requirements)
            .unwrap_or_else(|_| Requirements::from_stripe(&serde_json::Value::Null)),
        stale: false,
    }))
}

/// The connection with its status read live from Stripe (and stored); when Stripe cannot be
/// reached, the stored status marked stale.
pub async fn status(services: &Services, tenant_id: Uuid) -> Result<Option<Connection>> {
    let Some(mut stored) = connection(services, tenant_id).await? else { return Ok(None) };
    match retrieve(services, &stored.stripe_account_id).await {
        Ok(account) => {
            let mut conn = services.pool.acquire().await?;
            store_account(&mut conn, tenant_id, &account, read_time()).await?;
            Ok(connection(services, tenant_id).await?)
        }
        // Remit's access was revoked (the event saying so may still be on its way).
        Err(err) if crate::stripe::lost_access_error(&err) => {
            let mut tx = services.pool.begin().await?;
            lost_access(&mut tx, &stored.stripe_account_id, None, AccessLost::Refused).await?;
            tx.commit().await?;
            Ok(None)
        }
        Err(_) => {
            stored.stale = true;
            Ok(Some(stored))
        }
    }
}

/// Disconnects (owners only): Stripe deauthorises the platform first; only then are the local
/// records cleared. If Stripe cannot be reached nothing changes.
pub async fn disconnect(services: &Services, owner: &Principal) -> Result<()> {
    let tenant_id = owner.tenant()?;
    let stored =
        connection(services, tenant_id).await?.ok_or_else(|| Error::conflict("No Stripe account is connected."))?;
    let config = services.stripe.config();
    let response = oauth_client()?
        .post(format!("{}/oauth/deauthorize", config.connect_base.trim_end_matches('/')))
        .bearer_auth(services.stripe.platform().keys().secret_key.expose_secret())
        .form(&[
            ("client_id", services.stripe.platform().keys().connect_client_id.as_str()),
            ("stripe_user_id", stored.stripe_account_id.as_str()),
        ])
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "Stripe deauthorize failed");
            Error::Upstream(
                "Stripe could not be reached; the account is still connected. Try again in a moment.".into(),
            )
        })?;
    let status = response.status();
    if !status.is_success() {
        let error: Option<OAuthError> = response.json().await.ok();
        // Already disconnected on Stripe's side (e.g. from the Stripe dashboard): clear ours too.
        let already_gone = error.as_ref().is_some_and(|e| e.error == "invalid_client") && status.is_client_error();
        if !already_gone {
            return Err(Error::Upstream("Stripe refused to disconnect the account; it is still connected.".into()));
        }
    }
    let mut tx = services.pool.begin().await?;
    sqlx::query!("DELETE FROM tenant_stripe_accounts WHERE tenant_id = $1", tenant_id).execute(&mut *tx).await?;
    sqlx::query!("UPDATE tenants SET status = 'onboarding' WHERE id = $1 AND status = 'active'", tenant_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: Some(tenant_id),
            actor: Some(owner),
            action: "stripe.disconnected",
            target: Some(stored.stripe_account_id),
            reason: None,
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How Remit learned it can no longer act on a tenant's Stripe account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLost {
    /// `account.application.deauthorized`: the tenant disconnected Remit from inside Stripe.
    Deauthorized,
    /// Stripe refused a call on the account because Remit no longer has access to it.
    Refused,
}

/// Ends a tenant's connection to `account_id` because Remit lost access to it, as a
/// disconnection by the owner would (the stored account is removed and an active tenant goes
/// back to onboarding, so the Pay button refuses with a plain message), and tells the owners by
/// email; audited. `as_of` (an event's time, in whole seconds) older than the connection
/// changes nothing: the tenant connected again since. Returns whether a connection ended.
pub async fn lost_access(
    conn: &mut PgConnection,
    account_id: &str,
    as_of: Option<DateTime<Utc>>,
    how: AccessLost,
) -> Result<bool> {
    let Some(tenant_id) = sqlx::query_scalar!(
        "DELETE FROM tenant_stripe_accounts
         WHERE stripe_account_id = $1 AND ($2::timestamptz IS NULL OR date_trunc('second', connected_at) <= $2)
         RETURNING tenant_id",
        account_id,
        as_of,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(false);
    };
    sqlx::query!("UPDATE tenants SET status = 'onboarding' WHERE id = $1 AND status = 'active'", tenant_id)
        .execute(&mut *conn)
        .await?;
    let cause = match how {
        AccessLost::Deauthorized => "Remit was disconnected from your Stripe account from inside Stripe",
        AccessLost::Refused => "Stripe no longer lets Remit act on your Stripe account (its access was revoked)",
    };
    audit::record(
        conn,
        Entry {
            tenant_id: Some(tenant_id),
            actor: None,
            action: "stripe.access_lost",
            target: Some(account_id.to_owned()),
            reason: Some(cause.to_owned()),
            details: serde_json::json!({ "cause": match how {
                AccessLost::Deauthorized => "deauthorized",
                AccessLost::Refused => "refused",
            } }),
        },
    )
    .await?;
    for to in accounts::owner_emails(conn, tenant_id).await? {
        mail::enqueue(
            conn,
            OutgoingEmail {
                tenant_id: Some(tenant_id),
                to,
                subject: "Your Stripe account is no longer connected to Remit".into(),
                text_body: format!(
                    "{cause} ({account_id}).\n\nUntil you connect a Stripe account again, buyers cannot pay their \
                     winnings: their payment pages say so. Connect again from Remit's Stripe settings page.\n\nIf \
                     you did not expect this, check who has access to your Stripe account."
                ),
                attachments: vec![],
                links: None,
            },
        )
        .await?;
    }
    tracing::warn!(tenant = %tenant_id, account = account_id, cause = ?how, "a tenant's Stripe connection ended");
    Ok(true)
}

/// `account.updated` for a tenant's account: keeps the stored status fresh, ignoring events
/// older than it, and tells the tenant when something changed.
pub async fn apply_account_updated(
    conn: &mut PgConnection,
    account: &serde_json::Value,
    as_of: DateTime<Utc>,
    livemode: bool,
) -> Result<()> {
    let Some(account_id) = account["id"].as_str() else { return Ok(()) };
    let Some(tenant_id) =
        sqlx::query_scalar!("SELECT tenant_id FROM tenant_stripe_accounts WHERE stripe_account_id = $1", account_id)
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(());
    };
    let requirements = Requirements::from_stripe(&account["requirements"]);
    let charges_enabled = account["charges_enabled"].as_bool().unwrap_or(false);
    let payouts_enabled = account["payouts_enabled"].as_bool().unwrap_or(false);
    let changed = store(
        conn,
        tenant_id,
        charges_enabled,
        payouts_enabled,
        account["details_submitted"].as_bool().unwrap_or(false),
        serde_json::to_value(&requirements).map_err(|e| anyhow::anyhow!("{e}"))?,
        as_of,
    )
    .await?;
    if changed {
        let event = TenantEvent::StripeAccountUpdated(StripeAccountUpdated {
            stripe_account: account_id.to_owned(),
            charges_enabled,
            payouts_enabled,
            requirements,
        });
        tenant_webhooks::events::emit(conn, tenant_id, livemode, event).await?;
    }
    Ok(())
}
