//! Email: every message is recorded in `emails` and delivered by a job, through SMTP when
//! `SMTP_URL` is set and otherwise into the local outbox that platform admins read in the UI.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor,
    message::{Attachment as LettreAttachment, Mailbox, MultiPart, SinglePart, header::ContentType},
};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    config::Settings,
    error::{Error, Result},
    jobs,
};

/// A message to send. Bodies are plain text so every client shows them the same way.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub tenant_id: Option<Uuid>,
    pub to: String,
    pub subject: String,
    pub text_body: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// Records `email` and schedules its delivery, both in the caller's transaction: if the
/// caller rolls back, nothing is sent; once it commits, delivery is retried until it succeeds.
pub async fn enqueue(conn: &mut PgConnection, email: OutgoingEmail) -> Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO emails (id, tenant_id, to_address, subject, text_body) VALUES ($1, $2, $3, $4, $5)",
        id,
        email.tenant_id,
        email.to,
        email.subject,
        email.text_body,
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
    jobs::enqueue(conn, jobs::DeliverEmail { email_id: id }).await?;
    Ok(id)
}

/// Delivers recorded emails, through SMTP or into the outbox.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).field("smtp", &self.smtp.is_some()).finish()
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
        Ok(Self { from, smtp })
    }

    pub fn uses_smtp(&self) -> bool {
        self.smtp.is_some()
    }

    /// Sends one recorded email. Safe to call again after a crash: a sent email is not resent.
    pub async fn deliver(&self, pool: &PgPool, email_id: Uuid) -> Result<()> {
        let Some(email) =
            sqlx::query!("SELECT to_address, subject, text_body, status FROM emails WHERE id = $1", email_id)
                .fetch_optional(pool)
                .await?
        else {
            return Err(anyhow::anyhow!("email {email_id} does not exist").into());
        };
        if email.status == "sent" {
            return Ok(());
        }
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
                    &email.text_body,
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
        sqlx::query!(
            "UPDATE emails SET status = 'sent', transport = $2, sent_at = now(), attempts = attempts + 1, last_error = NULL
             WHERE id = $1",
            email_id,
            transport,
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

/// Records that delivery failed for good (the job ran out of attempts).
pub async fn mark_failed(pool: &PgPool, email_id: Uuid) -> Result<()> {
    sqlx::query!("UPDATE emails SET status = 'failed' WHERE id = $1 AND status = 'queued'", email_id)
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

/// The newest emails, for the admin outbox.
pub async fn list_recent(pool: &PgPool, limit: i64) -> Result<Vec<EmailSummary>> {
    Ok(sqlx::query_as!(
        EmailSummary,
        r#"SELECT e.id, e.to_address, e.subject, e.status, e.transport, e.created_at,
                  (SELECT count(*) FROM email_attachments a WHERE a.email_id = e.id) AS "attachment_count!"
           FROM emails e ORDER BY e.created_at DESC, e.id LIMIT $1"#,
        limit,
    )
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<EmailDetail> {
    let row = sqlx::query!(
        r#"SELECT e.id, e.to_address, e.subject, e.status, e.transport, e.created_at, e.text_body,
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
        text_body: row.text_body,
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
