//! Emails to a winning's buyer: queued through `mail` on the caller's transaction and recorded
//! against the winning (`winning_emails`), so its timeline lists each one.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::Result,
    mail::{self, OutgoingEmail},
    states::BuyerEmail,
};

/// Queues `email` about bid `bid_id`. With a `dedupe_key`, an email already sent under that key
/// is not sent again (`false`); the caller holds the bid's row lock, so two runs of the same job
/// cannot both send it.
pub async fn send(
    conn: &mut PgConnection,
    bid_id: Uuid,
    kind: BuyerEmail,
    dedupe_key: Option<String>,
    email: OutgoingEmail,
) -> Result<bool> {
    if let Some(key) = &dedupe_key
        && sqlx::query_scalar!("SELECT email_id FROM winning_emails WHERE dedupe_key = $1", key)
            .fetch_optional(&mut *conn)
            .await?
            .is_some()
    {
        return Ok(false);
    }
    let email_id = mail::enqueue(conn, email).await?;
    sqlx::query!(
        "INSERT INTO winning_emails (email_id, bid_id, kind, dedupe_key) VALUES ($1, $2, $3, $4)",
        email_id,
        bid_id,
        kind as BuyerEmail,
        dedupe_key,
    )
    .execute(&mut *conn)
    .await?;
    Ok(true)
}
