//! One-time values for the next page a session shows (a new API key's secret after a form
//! post), encrypted at rest and gone once read or after five minutes.

use chrono::{Duration, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{Services, crypto, error::Result};

const LIFETIME: Duration = Duration::minutes(5);

pub async fn put(
    conn: &mut PgConnection,
    services: &Services,
    session_token: &str,
    kind: &str,
    value: &str,
) -> Result<()> {
    let sealed = crypto::encrypt(&services.settings.encryption_key, value.as_bytes())?;
    sqlx::query!(
        "INSERT INTO session_flash (id, session_hash, kind, payload, expires_at) VALUES ($1, $2, $3, $4, $5)",
        Uuid::new_v4(),
        crypto::token_hash(session_token),
        kind,
        sealed,
        Utc::now() + LIFETIME,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes (and deletes) every value of `kind` left for this session.
pub async fn take(pool: &PgPool, services: &Services, session_token: &str, kind: &str) -> Result<Vec<String>> {
    let rows = sqlx::query!(
        r#"DELETE FROM session_flash WHERE session_hash = $1 AND kind = $2 RETURNING payload, expires_at"#,
        crypto::token_hash(session_token),
        kind,
    )
    .fetch_all(pool)
    .await?;
    let now = Utc::now();
    let mut values = Vec::new();
    for row in rows.into_iter().filter(|r| r.expires_at > now) {
        values.push(crypto::decrypt_string(&services.settings.encryption_key, &row.payload)?);
    }
    Ok(values)
}
