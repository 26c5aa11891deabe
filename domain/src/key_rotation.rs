//! Changing `REMIT_ENCRYPTION_KEY` without downtime. Every sealed value names the key that
//! sealed it (`crypto`), and a server given `REMIT_ENCRYPTION_KEY_PREVIOUS` opens values of both
//! keys while sealing with the new one. The steps (README, "Deploying"):
//!
//! 1. deploy every process with the new key and the old one as `REMIT_ENCRYPTION_KEY_PREVIOUS`;
//! 2. run `remit rotate-encryption-key`, which re-seals every stored value under the new key
//!    ([`reencrypt_all`]; safe to run again, and beside running servers);
//! 3. deploy without `REMIT_ENCRYPTION_KEY_PREVIOUS`.
//!
//! Sealed values: webhook endpoints' secrets (current and previous), emails' one-time links,
//! session flashes (a secret shown once), unpaid winnings' payment link tokens.

use sqlx::PgPool;
use uuid::Uuid;

use crate::{config::EncryptionKey, crypto, error::Result};

/// Rows read at a time.
const BATCH: i64 = 500;

/// What a run re-sealed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reencrypted {
    pub webhook_secrets: u64,
    pub email_links: u64,
    pub flashes: u64,
    pub payment_links: u64,
}

impl Reencrypted {
    pub fn total(&self) -> u64 {
        self.webhook_secrets + self.email_links + self.flashes + self.payment_links
    }
}

/// The value sealed again under the current key; `None` when it already is.
fn reseal(key: &EncryptionKey, sealed: &[u8]) -> Result<Option<Vec<u8>>> {
    if crypto::sealed_with_current(key, sealed) {
        return Ok(None);
    }
    Ok(Some(crypto::encrypt(key, &crypto::decrypt(key, sealed)?)?))
}

/// Re-seals every stored value under the current key. Each row is replaced only if it still
/// holds what was read (a value changed meanwhile was sealed with the current key anyway), so
/// running servers lose nothing.
pub async fn reencrypt_all(pool: &PgPool, key: &EncryptionKey) -> Result<Reencrypted> {
    Ok(Reencrypted {
        webhook_secrets: webhook_secrets(pool, key).await?,
        email_links: email_links(pool, key).await?,
        flashes: flashes(pool, key).await?,
        payment_links: payment_links(pool, key).await?,
    })
}

async fn webhook_secrets(pool: &PgPool, key: &EncryptionKey) -> Result<u64> {
    let (mut changed, mut after) = (0, Uuid::nil());
    loop {
        let rows = sqlx::query!(
            "SELECT id, secret_encrypted, previous_secret_encrypted FROM webhook_endpoints
             WHERE id > $1 ORDER BY id LIMIT $2",
            after,
            BATCH
        )
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else { return Ok(changed) };
        after = last.id;
        for row in rows {
            let current = reseal(key, &row.secret_encrypted)?;
            let previous = row.previous_secret_encrypted.as_deref().map(|p| reseal(key, p)).transpose()?.flatten();
            if current.is_none() && previous.is_none() {
                continue;
            }
            let count = u64::from(current.is_some()) + u64::from(previous.is_some());
            let replaced = sqlx::query!(
                "UPDATE webhook_endpoints
                 SET secret_encrypted = COALESCE($2, secret_encrypted),
                     previous_secret_encrypted = COALESCE($3, previous_secret_encrypted)
                 WHERE id = $1 AND secret_encrypted = $4 AND previous_secret_encrypted IS NOT DISTINCT FROM $5",
                row.id,
                current,
                previous,
                row.secret_encrypted,
                row.previous_secret_encrypted,
            )
            .execute(pool)
            .await?
            .rows_affected();
            changed += replaced * count;
        }
    }
}

async fn email_links(pool: &PgPool, key: &EncryptionKey) -> Result<u64> {
    let (mut changed, mut after) = (0, Uuid::nil());
    loop {
        let rows = sqlx::query!(
            r#"SELECT id, secrets AS "secrets!" FROM emails WHERE id > $1 AND secrets IS NOT NULL ORDER BY id LIMIT $2"#,
            after,
            BATCH
        )
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else { return Ok(changed) };
        after = last.id;
        for row in rows {
            if let Some(sealed) = reseal(key, &row.secrets)? {
                changed += sqlx::query!(
                    "UPDATE emails SET secrets = $2 WHERE id = $1 AND secrets = $3",
                    row.id,
                    sealed,
                    row.secrets
                )
                .execute(pool)
                .await?
                .rows_affected();
            }
        }
    }
}

async fn flashes(pool: &PgPool, key: &EncryptionKey) -> Result<u64> {
    let (mut changed, mut after) = (0, Uuid::nil());
    loop {
        let rows = sqlx::query!(
            "SELECT id, payload FROM session_flash WHERE id > $1 AND expires_at > now() ORDER BY id LIMIT $2",
            after,
            BATCH
        )
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else { return Ok(changed) };
        after = last.id;
        for row in rows {
            if let Some(sealed) = reseal(key, &row.payload)? {
                changed += sqlx::query!(
                    "UPDATE session_flash SET payload = $2 WHERE id = $1 AND payload = $3",
                    row.id,
                    sealed,
                    row.payload
                )
                .execute(pool)
                .await?
                .rows_affected();
            }
        }
    }
}

async fn payment_links(pool: &PgPool, key: &EncryptionKey) -> Result<u64> {
    let (mut changed, mut after) = (0, Uuid::nil());
    loop {
        let rows = sqlx::query!(
            r#"SELECT id, token_sealed AS "token_sealed!" FROM winning_bids
               WHERE id > $1 AND token_sealed IS NOT NULL ORDER BY id LIMIT $2"#,
            after,
            BATCH
        )
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else { return Ok(changed) };
        after = last.id;
        for row in rows {
            if let Some(sealed) = reseal(key, &row.token_sealed)? {
                changed += sqlx::query!(
                    "UPDATE winning_bids SET token_sealed = $2 WHERE id = $1 AND token_sealed = $3",
                    row.id,
                    sealed,
                    row.token_sealed
                )
                .execute(pool)
                .await?
                .rows_affected();
            }
        }
    }
}
