//! Email: every message is recorded in `emails` and delivered by a job, through SMTP when
//! `SMTP_URL` is set and otherwise into the local outbox that platform admins read in the UI.
//!
//! One-time links (password resets, invitations, payment and onboarding links) are never kept
//! in a stored body: the body holds a placeholder, the links are kept encrypted until the email
//! is sent and then dropped, so neither the table nor the outbox can be used to take over an
//! account. Only a development outbox (no SMTP, `APP_ENV=development`) keeps them to show.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor,
    message::{Attachment as LettreAttachment, Mailbox, MultiPart, SinglePart, header::ContentType},
};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    config::{EncryptionKey, Settings},
    crypto,
    error::{Error, Result},
    queue,
};

/// A message to send. Bodies are plain text so every client shows them the same way.
#[derive(Debug, Clone, Default)]
pub struct OutgoingEmail {
    pub tenant_id: Option<Uuid>,
    pub to: String,
    pub subject: String,
    pub text_body: String,
    pub attachments: Vec<Attachment>,
    /// One-time links that appear in `text_body`: stored encrypted apart from the body and
    /// dropped once the email is sent.
    pub links: Option<OneTimeLinks>,
}

/// The one-time links of an email, with their encrypted form for storage.
#[derive(Clone)]
pub struct OneTimeLinks {
    links: Vec<String>,
    sealed: Vec<u8>,
}

impl OneTimeLinks {
    pub fn seal(key: &EncryptionKey, links: Vec<String>) -> Result<Self> {
        let sealed = crypto::encrypt(key, &serde_json::to_vec(&links).context("email links")?)?;
        Ok(Self { links, sealed })
    }

    /// One link.
    pub fn one(key: &EncryptionKey, link: &str) -> Result<Option<Self>> {
        Self::seal(key, vec![link.to_owned()]).map(Some)
    }
}

impl std::fmt::Debug for OneTimeLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OneTimeLinks([{} REDACTED])", self.links.len())
    }
}

/// What a body shows where a one-time link was, once the link is gone.
pub const REDACTED_LINK: &str = "[one-time link: removed once the email was sent]";

fn placeholder(index: usize) -> String {
    format!("\u{27e6}one-time link {index}\u{27e7}")
}

/// The body with each secret replaced by its placeholder.
fn seal_body(body: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .enumerate()
        .filter(|(_, secret)| !secret.is_empty())
        .fold(body.to_owned(), |body, (i, secret)| body.replace(secret.as_str(), &placeholder(i)))
}

/// The body with its placeholders filled: with the links, or with [`REDACTED_LINK`].
fn open_body(body: &str, secrets: Option<&[String]>, count_hint: usize) -> String {
    let count = secrets.map_or(count_hint, <[String]>::len);
    (0..count).fold(body.to_owned(), |body, i| {
        let with = secrets.and_then(|s| s.get(i)).map_or(REDACTED_LINK, String::as_str);
        body.replace(&placeholder(i), with)
    })
}

/// How many placeholders a stored body holds.
fn placeholders_in(body: &str) -> usize {
    (0..).take_while(|i| body.contains(&placeholder(*i))).count()
}

fn unseal_secrets(key: &EncryptionKey, sealed: &[u8]) -> Result<Vec<String>> {
    let plain = crypto::decrypt(key, sealed)?;
    Ok(serde_json::from_slice(&plain).context("stored email links are malformed")?)
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// Records `email` and schedules its delivery, both in the caller's transaction: if the
/// caller rolls back, nothing is sent; once it commits, delivery is retried until it succeeds.
/// Its one-time links are stored apart from the body, sealed.
pub async fn enqueue(conn: &mut PgConnection, email: OutgoingEmail) -> Result<Uuid> {
    let id = Uuid::new_v4();
    let (body, sealed) = match &email.links {
        Some(links) => (seal_body(&email.text_body, &links.links), Some(links.sealed.clone())),
        None => (email.text_body.clone(), None),
    };
    sqlx::query!(
        "INSERT INTO emails (id, tenant_id, to_address, subject, text_body, secrets) VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        email.tenant_id,
        email.to,
        email.subject,
        body,
        sealed,
    )
    .execute(&mut *conn)
    .await?;
    for a in email.attachments {
        sqlx::query!(
            "INSERT INTO email_attachments (id, email_id, filename, content_type, content) VALUES ($1, $2, $3, $4, $5)",
            Uuid::new_v4(),
            id,
            a.filename,
            a.content_type,
            a.content,
        )
        .execute(&mut *conn)
        .await?;
    }
    queue::enqueue(conn, DeliverEmail { email_id: id }).await?;
    Ok(id)
}

/// Sends one recorded email (see [`enqueue`]); on its last try, marks it failed. It takes the
/// pool, mailer and settings from the worker, not the whole services, which sit above mail.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliverEmail {
    pub email_id: Uuid,
}

impl TaskHandler for DeliverEmail {
    const IDENTIFIER: &'static str = "deliver_email";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let pool = queue::ext::<PgPool>(&ctx)?;
        let mailer = queue::ext::<Mailer>(&ctx)?;
        let settings = queue::ext::<std::sync::Arc<Settings>>(&ctx)?;
        match mailer.deliver(pool, &settings.encryption_key, self.email_id).await {
            Ok(()) => Ok(()),
            Err(err) => {
                if queue::is_last_attempt(&ctx) {
                    mark_failed(pool, self.email_id).await.map_err(|e| e.to_string())?;
                }
                err.log();
                Err(err.to_string())
            }
        }
    }
}

/// Delivers recorded emails, through SMTP or into the outbox.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    /// A development outbox keeps one-time links so the developer can follow them.
    keeps_links: bool,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .field("smtp", &self.smtp.is_some())
            .field("keeps_links", &self.keeps_links)
            .finish()
    }
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let from = settings.mail_from.parse().context("MAIL_FROM is not a valid mailbox")?;
        let smtp = match &settings.smtp_url {
            None => None,
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("SMTP_URL could not be used")?
                    .timeout(Some(std::time::Duration::from_secs(30)))
                    .build(),
            ),
        };
        let keeps_links = smtp.is_none() && settings.is_development();
        Ok(Self { from, smtp, keeps_links })
    }

    pub fn uses_smtp(&self) -> bool {
        self.smtp.is_some()
    }

    /// Whether the outbox shows one-time links (a development outbox only).
    pub fn keeps_links(&self) -> bool {
        self.keeps_links
    }

    /// Sends one recorded email. Safe to call again after a crash: a sent email is not resent.
    pub async fn deliver(&self, pool: &PgPool, key: &EncryptionKey, email_id: Uuid) -> Result<()> {
        let Some(email) =
            sqlx::query!("SELECT to_address, subject, text_body, status, secrets FROM emails WHERE id = $1", email_id)
                .fetch_optional(pool)
                .await?
        else {
            return Err(anyhow::anyhow!("email {email_id} does not exist").into());
        };
        if email.status == "sent" {
            return Ok(());
        }
        let secrets = email.secrets.as_deref().map(|sealed| unseal_secrets(key, sealed)).transpose()?;
        let text_body = open_body(&email.text_body, secrets.as_deref(), placeholders_in(&email.text_body));
        let transport = match &self.smtp {
            Some(smtp) => {
                let attachments = sqlx::query!(
                    "SELECT filename, content_type, content FROM email_attachments WHERE email_id = $1 ORDER BY filename",
                    email_id
                )
                .fetch_all(pool)
                .await?;
                let message = self.build_message(
                    email_id,
                    &email.to_address,
                    &email.subject,
                    &text_body,
                    attachments
                        .into_iter()
                        .map(|a| Attachment { filename: a.filename, content_type: a.content_type, content: a.content })
                        .collect(),
                );
                let result = match message {
                    Ok(message) => smtp.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(reason) = result {
                    sqlx::query!(
                        "UPDATE emails SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                        email_id,
                        reason,
                    )
                    .execute(pool)
                    .await?;
                    return Err(Error::Internal(anyhow::anyhow!("SMTP delivery of email {email_id} failed: {reason}")));
                }
                "smtp"
            }
            None => "outbox",
        };
        // Once sent, the links are dropped: the stored body keeps only their placeholders.
        sqlx::query!(
            "UPDATE emails SET status = 'sent', transport = $2, sent_at = now(), attempts = attempts + 1, last_error = NULL,
                    secrets = CASE WHEN $3 THEN secrets END
             WHERE id = $1",
            email_id,
            transport,
            self.keeps_links,
        )
        .execute(pool)
        .await?;
        tracing::info!(%email_id, transport, "email delivered");
        Ok(())
    }

    fn build_message(
        &self,
        email_id: Uuid,
        to: &str,
        subject: &str,
        text_body: &str,
        attachments: Vec<Attachment>,
    ) -> anyhow::Result<lettre::Message> {
        let to: Mailbox =
            to.parse().with_context(|| format!("recipient of email {email_id} is not a valid address"))?;
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            // A stable Message-ID lets receivers drop the copy resent after a crash mid-delivery.
            .message_id(Some(format!("<{email_id}@remit>")));
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text_body.to_owned());
        let message = if attachments.is_empty() {
            builder.singlepart(text)?
        } else {
            let mut parts = MultiPart::mixed().singlepart(text);
            for a in attachments {
                let content_type = ContentType::parse(&a.content_type).context("attachment content type")?;
                parts = parts.singlepart(LettreAttachment::new(a.filename).body(a.content, content_type));
            }
            builder.multipart(parts)?
        };
        Ok(message)
    }
}

/// Records that delivery failed for good (the job ran out of attempts); its links are dropped.
pub async fn mark_failed(pool: &PgPool, email_id: Uuid) -> Result<()> {
    sqlx::query!("UPDATE emails SET status = 'failed', secrets = NULL WHERE id = $1 AND status = 'queued'", email_id)
        .execute(pool)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct EmailSummary {
    pub id: Uuid,
    pub to_address: String,
    pub subject: String,
    pub status: String,
    pub transport: Option<String>,
    pub created_at: DateTime<Utc>,
    pub attachment_count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmailDetail {
    pub summary: EmailSummary,
    pub text_body: String,
    pub attachments: Vec<AttachmentInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentInfo {
    pub id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
}

/// The newest emails, for the admin outbox: all, or those to one address.
pub async fn list_recent(pool: &PgPool, to: Option<&str>, limit: i64) -> Result<Vec<EmailSummary>> {
    Ok(sqlx::query_as!(
        EmailSummary,
        r#"SELECT e.id, e.to_address, e.subject, e.status, e.transport, e.created_at,
                  (SELECT count(*) FROM email_attachments a WHERE a.email_id = e.id) AS "attachment_count!"
           FROM emails e WHERE $2::text IS NULL OR lower(e.to_address) = lower($2)
           ORDER BY e.created_at DESC, e.id LIMIT $1"#,
        limit,
        to,
    )
    .fetch_all(pool)
    .await?)
}

/// One email as the outbox shows it: its one-time links only from a development outbox.
pub async fn get(pool: &PgPool, mailer: &Mailer, key: &EncryptionKey, id: Uuid) -> Result<EmailDetail> {
    let row = sqlx::query!(
        r#"SELECT e.id, e.to_address, e.subject, e.status, e.transport, e.created_at, e.text_body, e.secrets,
                  (SELECT count(*) FROM email_attachments a WHERE a.email_id = e.id) AS "attachment_count!"
           FROM emails e WHERE e.id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("email"))?;
    let attachments = sqlx::query_as!(
        AttachmentInfo,
        r#"SELECT id, filename, content_type, octet_length(content)::bigint AS "size!"
           FROM email_attachments WHERE email_id = $1 ORDER BY filename"#,
        id
    )
    .fetch_all(pool)
    .await?;
    Ok(EmailDetail {
        summary: EmailSummary {
            id: row.id,
            to_address: row.to_address,
            subject: row.subject,
            status: row.status,
            transport: row.transport,
            created_at: row.created_at,
            attachment_count: row.attachment_count,
        },
        text_body: {
            let secrets = match (&row.secrets, mailer.keeps_links) {
                (Some(sealed), true) => Some(unseal_secrets(key, sealed)?),
                _ => None,
            };
            open_body(&row.text_body, secrets.as_deref(), placeholders_in(&row.text_body))
        },
        attachments,
    })
}

pub async fn attachment(pool: &PgPool, email_id: Uuid, attachment_id: Uuid) -> Result<Attachment> {
    let row = sqlx::query!(
        "SELECT filename, content_type, content FROM email_attachments WHERE id = $1 AND email_id = $2",
        attachment_id,
        email_id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("attachment"))?;
    Ok(Attachment { filename: row.filename, content_type: row.content_type, content: row.content })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_kept_out_of_the_stored_body() {
        let link = "https://remit.example/reset-password?token=abc123".to_owned();
        let other = "https://remit.example/pay/xyz".to_owned();
        let body = format!("Reset: {link}\nPay: {other}\nAgain: {link}\n");
        let stored = seal_body(&body, &[link.clone(), other.clone()]);
        assert!(!stored.contains("abc123") && !stored.contains("xyz"), "{stored}");
        assert_eq!(placeholders_in(&stored), 2);
        assert_eq!(open_body(&stored, Some(&[link, other]), 2), body);
        let redacted = open_body(&stored, None, placeholders_in(&stored));
        assert_eq!(redacted.matches(REDACTED_LINK).count(), 3, "{redacted}");
    }
}
