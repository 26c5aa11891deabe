//! The platform admin pages: tenants (and their suspension), users, background jobs, and the
//! mail outbox.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::PersonRow;
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub user_count: i64,
    pub suspended: bool,
    pub suspended_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminOverview {
    pub tenants: Vec<TenantRow>,
    pub people: Vec<PersonRow>,
}

#[server(prefix = "/rpc", endpoint = "admin_overview")]
pub async fn load_admin_overview() -> Result<AdminOverview, AppError> {
    use domain::auth::policy;
    let admin = crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let overview = domain::accounts::platform_overview(&services.pool).await?;
    Ok(AdminOverview {
        tenants: overview
            .tenants
            .into_iter()
            .map(|t| TenantRow {
                id: t.id.to_string(),
                name: t.name,
                created: t.created_at.format("%Y-%m-%d").to_string(),
                user_count: t.user_count,
                suspended: t.suspended,
                suspended_reason: t.suspended_reason,
            })
            .collect(),
        people: overview.users.into_iter().map(|u| PersonRow::new(u, &admin)).collect(),
    })
}

#[server(prefix = "/rpc", endpoint = "create_tenant")]
pub async fn create_tenant(name: String, owner_email: String, owner_name: String) -> Result<(), AppError> {
    use domain::auth::policy;
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    domain::accounts::create_tenant(&services, &name, &owner_email, &owner_name).await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailRow {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub status: String,
    pub transport: Option<String>,
    pub created: String,
    pub attachment_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentRow {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailView {
    pub row: EmailRow,
    pub body: String,
    pub attachments: Vec<AttachmentRow>,
}

#[cfg(feature = "ssr")]
impl From<domain::mail::EmailSummary> for EmailRow {
    fn from(e: domain::mail::EmailSummary) -> Self {
        Self {
            id: e.id.to_string(),
            to: e.to_address,
            subject: e.subject,
            status: e.status,
            transport: e.transport,
            created: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            attachment_count: e.attachment_count,
        }
    }
}

/// How many emails the outbox lists.
pub const OUTBOX_PAGE: i64 = 100;

/// The newest emails, or those to one address (`to`).
#[server(prefix = "/rpc", endpoint = "outbox")]
pub async fn outbox(to: Option<String>) -> Result<Vec<EmailRow>, AppError> {
    use domain::auth::policy;
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let to = to.as_deref().map(str::trim).filter(|t| !t.is_empty());
    Ok(domain::mail::list_recent(&services.pool, to, OUTBOX_PAGE).await?.into_iter().map(EmailRow::from).collect())
}

#[server(prefix = "/rpc", endpoint = "outbox_email")]
pub async fn outbox_email(id: String) -> Result<EmailView, AppError> {
    use domain::{Error, auth::policy};
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let id = id.parse().map_err(|_| Error::NotFound("email"))?;
    let services = crate::server::services()?;
    let email = domain::mail::get(&services.pool, &services.mailer, &services.settings.encryption_key, id).await?;
    Ok(EmailView {
        row: email.summary.into(),
        body: email.text_body,
        attachments: email
            .attachments
            .into_iter()
            .map(|a| AttachmentRow {
                id: a.id.to_string(),
                filename: a.filename,
                content_type: a.content_type,
                size: a.size,
            })
            .collect(),
    })
}

#[server(prefix = "/rpc", endpoint = "suspend_tenant")]
pub async fn suspend_tenant(tenant_id: String, reason: String) -> Result<(), AppError> {
    use domain::{Error, auth::policy};
    let admin = crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let tenant_id = tenant_id.parse().map_err(|_| Error::NotFound("tenant"))?;
    domain::accounts::suspend_tenant(&services, &admin, tenant_id, &reason).await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "reactivate_tenant")]
pub async fn reactivate_tenant(tenant_id: String) -> Result<(), AppError> {
    use domain::{Error, auth::policy};
    let admin = crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let tenant_id = tenant_id.parse().map_err(|_| Error::NotFound("tenant"))?;
    domain::accounts::reactivate_tenant(&services, &admin, tenant_id).await?;
    Ok(())
}

/// A job or a Stripe event that failed, for the jobs page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailingRow {
    /// What "Retry now" sends back.
    pub id: String,
    /// The job's task and number, or the event's type.
    pub title: String,
    /// Further lines: the event's id and account; when it was queued or received.
    pub details: Vec<String>,
    pub attempts: String,
    pub last_error: String,
    /// "Given up", or when it is tried again.
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsView {
    /// Jobs waiting, per task.
    pub queue: Vec<(String, i64)>,
    pub failing: Vec<FailingRow>,
    /// Stripe events due or being applied.
    pub events_waiting: i64,
    pub failing_events: Vec<FailingRow>,
}

#[server(prefix = "/rpc", endpoint = "jobs_overview")]
pub async fn jobs_overview() -> Result<JobsView, AppError> {
    use domain::auth::policy;
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let failing = domain::queue::failing(&services.pool, 100).await?;
    let failing_events = domain::stripe_webhooks::applier::failing(&services.pool, 100).await?;
    let format_time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or_else(|| "Given up".to_owned(), format_time);
    Ok(JobsView {
        events_waiting: domain::stripe_webhooks::applier::due_now(&services.pool).await?,
        failing_events: failing_events
            .into_iter()
            .map(|e| FailingRow {
                title: e.kind,
                details: [Some(e.id.clone()), e.account, Some(format!("received {}", format_time(e.received_at)))]
                    .into_iter()
                    .flatten()
                    .collect(),
                attempts: format!("{} of {}", e.attempts, domain::stripe_webhooks::applier::MAX_ATTEMPTS),
                next: when(e.next_attempt_at),
                id: e.id,
                last_error: e.last_error,
            })
            .collect(),
        queue: domain::queue::queue_depth(&services.pool).await?,
        failing: failing
            .into_iter()
            .map(|j| FailingRow {
                id: j.id.to_string(),
                title: format!("{} #{}", j.task, j.id),
                details: vec![format!("queued {}", format_time(j.created_at))],
                attempts: format!("{} of {}", j.attempts, j.max_attempts),
                last_error: j.last_error,
                next: when(j.next_run),
            })
            .collect(),
    })
}

#[server(prefix = "/rpc", endpoint = "retry_job")]
pub async fn retry_job(id: String) -> Result<(), AppError> {
    use domain::{Error, auth::policy};
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let id = id.parse().map_err(|_| Error::NotFound("job"))?;
    domain::queue::retry_now(&services.pool, id).await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "retry_stripe_event")]
pub async fn retry_stripe_event(id: String) -> Result<(), AppError> {
    use domain::auth::policy;
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    domain::stripe_webhooks::applier::retry_now(&services.pool, &id).await?;
    Ok(())
}
