//! The audit log: who did what to which tenant, when, and why.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{auth::Principal, error::Result};

/// One thing done, to be written on the caller's transaction.
pub struct Entry<'a> {
    pub tenant_id: Option<Uuid>,
    pub actor: Option<&'a Principal>,
    pub action: &'a str,
    pub target: Option<String>,
    pub reason: Option<String>,
    pub details: serde_json::Value,
}

pub async fn record(conn: &mut PgConnection, entry: Entry<'_>) -> Result<()> {
    let actor = entry.actor.map(|p| format!("{} <{}>", p.display_name, p.email)).unwrap_or_else(|| "Remit".to_owned());
    sqlx::query!(
        "INSERT INTO audit_log (tenant_id, actor_id, actor, action, target, reason, details) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        entry.tenant_id,
        entry.actor.map(|p| p.user_id),
        actor,
        entry.action,
        entry.target,
        entry.reason,
        entry.details,
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: i64,
    pub tenant_name: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub reason: Option<String>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// What to show of the log; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tenant_id: Option<Uuid>,
    /// Matches actions starting with this (e.g. `api_key.` for every key operation).
    pub action: Option<String>,
    /// Matches the actor's name or email, case-insensitively.
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Makes user text match literally in a `LIKE` pattern (backslash is PostgreSQL's default escape).
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

pub async fn list(pool: &PgPool, filter: &Filter) -> Result<Vec<AuditEntry>> {
    let action = filter.action.as_deref().map(|a| format!("{}%", escape_like(a)));
    let actor = filter.actor.as_deref().map(|a| format!("%{}%", escape_like(a)));
    Ok(sqlx::query_as!(
        AuditEntry,
        r#"SELECT a.id, t.name AS "tenant_name?", a.actor, a.action, a.target, a.reason, a.details, a.created_at
           FROM audit_log a LEFT JOIN tenants t ON t.id = a.tenant_id
           WHERE ($1::uuid IS NULL OR a.tenant_id = $1)
             AND ($2::text IS NULL OR a.action LIKE $2)
             AND ($3::text IS NULL OR a.actor ILIKE $3)
             AND ($4::timestamptz IS NULL OR a.created_at >= $4)
             AND ($5::timestamptz IS NULL OR a.created_at < $5)
           ORDER BY a.created_at DESC, a.id DESC
           LIMIT $6"#,
        filter.tenant_id,
        action,
        actor,
        filter.since,
        filter.until,
        filter.limit.clamp(1, 500),
    )
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_in_user_text_match_literally() {
        assert_eq!(super::escape_like("api_key."), "api\\_key.");
        assert_eq!(super::escape_like("50%\\"), "50\\%\\\\");
    }
}
