//! A tenant's time zone: an IANA name (Europe/London, America/New_York), UTC until its owner
//! sets one on the settings page. The times a tenant's staff read on a winning's page (its
//! timeline, deadlines, refunds) are shown in it, with the zone's abbreviation; emails to
//! buyers, who may be anywhere, keep UTC.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    audit,
    auth::Principal,
    error::{Error, Result},
};

/// An IANA time zone name, as typed.
pub fn parse(name: &str) -> Result<Tz> {
    name.trim().parse::<Tz>().map_err(|_| {
        Error::invalid("time_zone", "Give a time zone by its IANA name, such as Europe/London or America/New_York.")
    })
}

/// `at` as the tenant's staff read it: "2026-12-06 09:30 EST".
pub fn show(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// The same with seconds, for a timeline where events follow each other closely.
pub fn show_precisely(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z").to_string()
}

/// The tenant's time zone (UTC should a stored name no longer be known).
pub async fn of_tenant(pool: &PgPool, tenant_id: Uuid) -> Result<Tz> {
    let name = sqlx::query_scalar!("SELECT time_zone FROM tenants WHERE id = $1", tenant_id)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::NotFound("tenant"))?;
    Ok(name.parse().unwrap_or(Tz::UTC))
}

/// The tenant's owner sets its time zone. Audited.
pub async fn set(pool: &PgPool, owner: &Principal, name: &str) -> Result<Tz> {
    let zone = parse(name)?;
    let tenant_id = owner.tenant()?;
    let mut tx = pool.begin().await?;
    let before = sqlx::query_scalar!("SELECT time_zone FROM tenants WHERE id = $1 FOR UPDATE", tenant_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("tenant"))?;
    sqlx::query!("UPDATE tenants SET time_zone = $2 WHERE id = $1", tenant_id, zone.name()).execute(&mut *tx).await?;
    let entry = audit::Entry {
        tenant_id: Some(tenant_id),
        actor: Some(owner),
        action: "tenant.time_zone_set",
        target: Some(zone.name().to_owned()),
        reason: None,
        details: serde_json::json!({ "from": before, "to": zone.name() }),
    };
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(zone)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn times_are_shown_in_the_zone_with_its_abbreviation() {
        let at = Utc.with_ymd_and_hms(2026, 12, 6, 14, 30, 5).unwrap();
        assert_eq!(show(at, parse("America/New_York").unwrap()), "2026-12-06 09:30 EST");
        assert_eq!(show_precisely(at, parse(" Europe/Berlin ").unwrap()), "2026-12-06 15:30:05 CET");
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(show(summer, parse("Europe/London").unwrap()), "2026-07-01 13:00 BST");
        assert_eq!(show(at, Tz::UTC), "2026-12-06 14:30 UTC");
    }

    #[test]
    fn an_unknown_zone_is_refused_in_words() {
        for typed in ["", "Mars/Olympus", "EST5EDT; DROP TABLE"] {
            match parse(typed) {
                Err(Error::Invalid { field: Some("time_zone"), message }) => assert!(message.contains("IANA")),
                other => panic!("{typed:?}: {other:?}"),
            }
        }
    }
}
