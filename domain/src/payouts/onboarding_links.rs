//! Hosted onboarding by one-time link (seed 001): a consultant, or their tenant's owner or admin,
//! sends a link; opening it makes a Stripe Account Link for the consultant's account. The token
//! moves `pending → in_progress` only after Stripe answered, with the callback state and its
//! expiry written in the same conditional update, so a Stripe failure leaves it usable.

use chrono::{Duration, Utc};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use uuid::Uuid;

use super::{PayoutAccount, create_account_for};
use crate::{
    Services,
    audit::{self, Entry},
    auth::{Principal, Role},
    billing, crypto,
    error::{Error, Result},
    mail::{self, OneTimeLinks, OutgoingEmail},
    stripe::upstream,
};

/// The route a link opens (the seed's path).
pub const OPEN_PATH: &str = "/api/v1/onboard-client";
pub const RETURN_PATH: &str = "/api/v1/onboard-client/return";
pub const REFRESH_PATH: &str = "/api/v1/onboard-client/refresh";
/// How long an unopened link stays valid.
const LINK_LIFETIME: Duration = Duration::days(7);
/// How long after opening Stripe may send the person back (return or refresh).
const SESSION_LIFETIME: Duration = Duration::days(1);

/// Issues a link for `consultant_id`'s payout setup and emails it. A consultant issues for
/// themselves; a tenant owner or admin for a consultant of their tenant. The link collects the
/// consultant's bank account, so it goes to the consultant's own address, or to the one other
/// address the consultant approved (e.g. whoever keeps their books); `recipient` empty means
/// the consultant's own. Every send is audited, and the consultant is told when someone else
/// sent it or it went elsewhere. Returns the link (shown once to the issuer).
pub async fn issue(services: &Services, issuer: &Principal, consultant_id: Uuid, recipient: &str) -> Result<String> {
    let consultant = sqlx::query!(
        "SELECT display_name, email, tenant_id, payout_link_recipient FROM users
         WHERE id = $1 AND role = 'consultant' AND deactivated_at IS NULL",
        consultant_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("consultant"))?;
    let allowed = match issuer.role {
        Role::Consultant => issuer.user_id == consultant_id,
        Role::TenantOwner | Role::TenantAdmin => {
            consultant.tenant_id.is_some() && issuer.tenant_id == consultant.tenant_id
        }
        _ => false,
    };
    if !allowed {
        return Err(if issuer.role == Role::Consultant { Error::Forbidden } else { Error::NotFound("consultant") });
    }
    if !billing::is_subscribed(&services.pool, consultant_id).await? {
        return Err(Error::conflict("Payout setup needs an active subscription. The consultant must subscribe first."));
    }
    let recipient = match recipient.trim() {
        "" => consultant.email.clone(),
        other => {
            crate::auth::sign_in::validate_email(other)?;
            other.to_owned()
        }
    };
    let approved = |address: &str| {
        address.eq_ignore_ascii_case(&consultant.email)
            || consultant.payout_link_recipient.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(address))
    };
    if !approved(&recipient) {
        return Err(Error::invalid(
            "email",
            format!(
                "Payout links go to {}'s own address ({}), or to an address {} approved on their payment setup page.",
                consultant.display_name, consultant.email, consultant.display_name
            ),
        ));
    }
    let token = crypto::random_token();
    let link = services.settings.public_url(&format!("{OPEN_PATH}?token={token}"));
    let mut tx = services.pool.begin().await?;
    sqlx::query!(
        "INSERT INTO onboarding_tokens (id, token_hash, consultant_id, issued_by, recipient_email, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        Uuid::new_v4(),
        crypto::token_hash(&token),
        consultant_id,
        issuer.user_id,
        recipient,
        Utc::now() + LINK_LIFETIME,
    )
    .execute(&mut *tx)
    .await?;
    mail::enqueue(
        &mut tx,
        OutgoingEmail {
            tenant_id: consultant.tenant_id,
            to: recipient.clone(),
            subject: "Set up payouts with Stripe".into(),
            text_body: format!(
                "Hello,\n\n{} asked you to set up payouts for {} with Stripe. Open this link to continue on Stripe's secure pages:\n{link}\n\n\
                 The link works once and for 7 days.\n",
                issuer.display_name, consultant.display_name
            ),
            attachments: vec![],
            links: OneTimeLinks::one(&services.settings.encryption_key, &link)?,
        },
    )
    .await?;
    let sent_elsewhere = !recipient.eq_ignore_ascii_case(&consultant.email);
    if issuer.user_id != consultant_id || sent_elsewhere {
        mail::enqueue(
            &mut tx,
            OutgoingEmail {
                tenant_id: consultant.tenant_id,
                to: consultant.email.clone(),
                subject: "A payout setup link was sent for your account".into(),
                text_body: format!(
                    "Hello {},\n\n{} sent a link to set up the payouts of your Remit account (where your bank account is \
                     entered) to {recipient}. It works once, for 7 days.\n\n\
                     If you did not expect this, tell your organisation's owner, and remove any approved recipient on \
                     your payment setup page: {}\n",
                    consultant.display_name,
                    issuer.display_name,
                    services.settings.public_url(super::SETUP_PATH),
                ),
                attachments: vec![],
                links: None,
            },
        )
        .await?;
    }
    audit::record(
        &mut tx,
        Entry {
            tenant_id: consultant.tenant_id,
            actor: Some(issuer),
            action: "payouts.onboarding_link_sent",
            target: Some(format!("{} <{}>", consultant.display_name, consultant.email)),
            reason: None,
            details: serde_json::json!({ "recipient": recipient }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(link)
}

/// A consultant approves one other address for their payout links (or removes it, with
/// `None`). Audited; links already sent are not affected.
pub async fn set_recipient(services: &Services, consultant: &Principal, recipient: Option<&str>) -> Result<()> {
    if consultant.role != Role::Consultant {
        return Err(Error::Forbidden);
    }
    let recipient = recipient.map(str::trim).filter(|r| !r.is_empty());
    if let Some(r) = recipient {
        crate::auth::sign_in::validate_email(r)?;
    }
    let mut tx = services.pool.begin().await?;
    sqlx::query!(
        "UPDATE users SET payout_link_recipient = $2, updated_at = now() WHERE id = $1",
        consultant.user_id,
        recipient
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: consultant.tenant_id,
            actor: Some(consultant),
            action: if recipient.is_some() {
                "payouts.link_recipient_approved"
            } else {
                "payouts.link_recipient_removed"
            },
            target: recipient.map(str::to_owned),
            reason: None,
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The address a consultant approved for their payout links, if any.
pub async fn recipient(services: &Services, consultant_id: Uuid) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!("SELECT payout_link_recipient FROM users WHERE id = $1", consultant_id)
        .fetch_optional(&services.pool)
        .await?
        .flatten())
}

/// Opens a link: makes an Account Link and only then marks the token in progress. Returns the
/// Stripe URL to send the browser to.
pub async fn open(services: &Services, token: &str) -> Result<String> {
    let hash = crypto::token_hash(token);
    let row = sqlx::query!(
        "SELECT t.id, t.consultant_id, t.status, t.expires_at > now() AS \"fresh!\", u.email, u.tenant_id
         FROM onboarding_tokens t JOIN users u ON u.id = t.consultant_id WHERE t.token_hash = $1",
        hash
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("onboarding link"))?;
    if row.status != "pending" {
        return Err(Error::conflict("This onboarding link was already used. Ask for a new one."));
    }
    if !row.fresh {
        return Err(Error::conflict("This onboarding link has expired. Ask for a new one."));
    }
    let account = create_account_for(services, row.consultant_id, &row.email, row.tenant_id).await?;
    let state = crypto::random_token();
    let url = account_link(services, &account, &state).await?;
    let started = sqlx::query!(
        "UPDATE onboarding_tokens SET status = 'in_progress', state_hash = $2, expires_at = $3, updated_at = now()
         WHERE id = $1 AND status = 'pending' AND expires_at > now()",
        row.id,
        crypto::token_hash(&state),
        Utc::now() + SESSION_LIFETIME,
    )
    .execute(&services.pool)
    .await?
    .rows_affected();
    if started == 0 {
        // Opened twice at once: the other request won.
        return Err(Error::conflict("This onboarding link was already used. Ask for a new one."));
    }
    Ok(url)
}

async fn account_link(services: &Services, account: &PayoutAccount, state: &str) -> Result<String> {
    let link = CreateAccountLink::new(account.stripe_account_id.as_str(), CreateAccountLinkType::AccountOnboarding)
        .refresh_url(services.settings.public_url(&format!("{REFRESH_PATH}?state={state}")))
        .return_url(services.settings.public_url(&format!("{RETURN_PATH}?state={state}")))
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "open onboarding"))?;
    Ok(link.url)
}

struct Started {
    id: Uuid,
    consultant_id: Uuid,
}

/// The in-progress token a callback's state belongs to; anything else is refused (403).
async fn started(services: &Services, state: Option<&str>) -> Result<Started> {
    let state = state.filter(|s| !s.is_empty()).ok_or(Error::Forbidden)?;
    sqlx::query_as!(
        Started,
        "SELECT id, consultant_id FROM onboarding_tokens
         WHERE state_hash = $1 AND status IN ('in_progress', 'completed') AND expires_at > now()",
        crypto::token_hash(state)
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::Forbidden)
}

/// Stripe's refresh URL (the Account Link expired or was used): a new link, with a new state.
pub async fn refresh(services: &Services, state: Option<&str>) -> Result<String> {
    let token = started(services, state).await?;
    let account = super::account_of(&services.pool, token.consultant_id).await?.ok_or(Error::Forbidden)?;
    let next = crypto::random_token();
    let url = account_link(services, &account, &next).await?;
    sqlx::query!(
        "UPDATE onboarding_tokens SET state_hash = $2, updated_at = now() WHERE id = $1",
        token.id,
        crypto::token_hash(&next)
    )
    .execute(&services.pool)
    .await?;
    Ok(url)
}

/// Stripe's return URL: the person left Stripe's pages. Reads the account's state and marks the
/// link completed once Stripe has the details.
pub async fn finish(services: &Services, state: Option<&str>) -> Result<super::PayoutStatus> {
    let token = started(services, state).await?;
    let status = super::status(services, token.consultant_id).await?.ok_or(Error::Forbidden)?;
    if status.account.details_submitted {
        sqlx::query!(
            "UPDATE onboarding_tokens SET status = 'completed', updated_at = now() WHERE id = $1 AND status = 'in_progress'",
            token.id
        )
        .execute(&services.pool)
        .await?;
    }
    Ok(status)
}
