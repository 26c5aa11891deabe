//! The platform's terms for a tenant's buyer payments: Remit's fee (basis points, the tenant's
//! own or `PLATFORM_FEE_BPS`), whether a refund gives that fee back in proportion, and the amount
//! per currency above which a payment asks the card issuer for 3D Secure (Remit's table, or the
//! tenant's own where a platform admin set one). Set by platform admins (audited), shown to the
//! tenant, and read by each new Checkout attempt. Beside them, the tenant owner's own choice of
//! second chance for runners-up.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    Services, audit,
    auth::Principal,
    error::{Error, Result},
    money::{Currency, Money},
};

/// Remit's 3D Secure thresholds, in each supported currency's minor units: roughly 500 US
/// dollars each. Payments above ask the issuer to authenticate the cardholder.
const THREE_D_SECURE_ABOVE: [(&str, i64); 5] =
    [("usd", 50_000), ("eur", 46_000), ("gbp", 40_000), ("cad", 68_000), ("aud", 77_000)];

/// The highest fee a platform admin may set: half the payment.
pub const MAX_FEE_BPS: u32 = 5_000;

/// Remit's own 3D Secure threshold for `currency`; a currency missing from the table asks for
/// every payment, the safe side.
pub fn default_three_d_secure_above(currency: Currency) -> i64 {
    THREE_D_SECURE_ABOVE.iter().find(|(code, _)| *code == currency.code()).map_or(0, |(_, above)| *above)
}

/// Whether a payment of `amount` asks for 3D Secure under a threshold of `above`.
pub fn asks_three_d_secure(amount: i64, above: i64) -> bool {
    amount > above
}

/// One currency's 3D Secure threshold as it applies to a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub above: Money,
    /// False where a platform admin set the tenant's own.
    pub is_default: bool,
}

/// A tenant's payment terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub fee_bps: u32,
    /// False where a platform admin set the tenant's own fee.
    pub fee_is_default: bool,
    pub refund_application_fee: bool,
    /// Every supported currency, in Remit's order.
    pub three_d_secure: Vec<Threshold>,
    /// Whether a lot whose winner did not pay is offered to the runners-up (the tenant's choice).
    pub second_chance: bool,
}

/// What a new Checkout attempt needs: the fee and the threshold of its currency.
pub struct ForPayment {
    pub fee_bps: u32,
    pub three_d_secure_above: i64,
}

/// The fee and 3D Secure threshold for a payment of the tenant in `currency`, read on the
/// caller's connection (the checkout reads them under the bid's lock).
pub async fn for_payment(
    conn: &mut PgConnection,
    default_fee_bps: u32,
    tenant_id: Uuid,
    currency: Currency,
) -> Result<ForPayment> {
    let row = sqlx::query!(
        "SELECT t.platform_fee_bps, d.above AS \"above?\" FROM tenants t
         LEFT JOIN three_d_secure_thresholds d ON d.tenant_id = t.id AND d.currency = $2
         WHERE t.id = $1",
        tenant_id,
        currency.code()
    )
    .fetch_one(conn)
    .await?;
    Ok(ForPayment {
        fee_bps: row.platform_fee_bps.and_then(|bps| u32::try_from(bps).ok()).unwrap_or(default_fee_bps),
        three_d_secure_above: row.above.unwrap_or_else(|| default_three_d_secure_above(currency)),
    })
}

/// A tenant's terms (for its staff, and for platform admins).
pub async fn of_tenant(services: &Services, tenant_id: Uuid) -> Result<Terms> {
    let tenant = sqlx::query!(
        "SELECT platform_fee_bps, refund_application_fee, second_chance FROM tenants WHERE id = $1",
        tenant_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("tenant"))?;
    let overrides: Vec<(String, i64)> =
        sqlx::query!("SELECT currency, above FROM three_d_secure_thresholds WHERE tenant_id = $1", tenant_id)
            .fetch_all(&services.pool)
            .await?
            .into_iter()
            .map(|r| (r.currency, r.above))
            .collect();
    let three_d_secure = Currency::supported()
        .filter_map(Currency::parse)
        .map(|currency| {
            let own = overrides.iter().find(|(code, _)| code == currency.code()).map(|(_, above)| *above);
            Threshold {
                above: Money { amount: own.unwrap_or_else(|| default_three_d_secure_above(currency)), currency },
                is_default: own.is_none(),
            }
        })
        .collect();
    Ok(Terms {
        fee_bps: tenant
            .platform_fee_bps
            .and_then(|bps| u32::try_from(bps).ok())
            .unwrap_or(services.settings.platform_fee_bps),
        fee_is_default: tenant.platform_fee_bps.is_none(),
        refund_application_fee: tenant.refund_application_fee,
        three_d_secure,
        second_chance: tenant.second_chance,
    })
}

/// A fee as people read it: `250` → "2.50 %".
pub fn percent(bps: u32) -> String {
    format!("{}.{:02} %", bps / 100, bps % 100)
}

/// Parses a fee typed as a percentage ("2.5", "2.50 %") into basis points, without floating
/// point; empty means Remit's default (`None`).
pub fn parse_percent(input: &str) -> Result<Option<u32>> {
    let cleaned = input.trim().trim_end_matches('%').trim();
    if cleaned.is_empty() {
        return Ok(None);
    }
    let invalid =
        || Error::invalid("fee", "Give the fee as a percentage from 0 to 50, like 2.5 (at most two decimals).");
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((cleaned, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || fraction.len() > 2
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || whole.len() > 3
    {
        return Err(invalid());
    }
    let whole: u32 = whole.parse().map_err(|_| invalid())?;
    let fraction: u32 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
    let bps = whole * 100 + fraction;
    if bps > MAX_FEE_BPS {
        return Err(invalid());
    }
    Ok(Some(bps))
}

/// A platform admin sets a tenant's fee (`None`: back to Remit's default) and whether refunds
/// give it back. Audited; applies from the tenant's next Checkout attempt.
pub async fn set_fee(
    services: &Services,
    admin: &Principal,
    tenant_id: Uuid,
    fee_bps: Option<u32>,
    refund_application_fee: bool,
) -> Result<()> {
    if fee_bps.is_some_and(|bps| bps > MAX_FEE_BPS) {
        return Err(Error::invalid("fee", "The fee can be at most 50 %."));
    }
    let mut tx = services.pool.begin().await?;
    let before = sqlx::query!(
        "SELECT name, platform_fee_bps, refund_application_fee FROM tenants WHERE id = $1 FOR UPDATE",
        tenant_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("tenant"))?;
    let stored = fee_bps.map(i32::try_from).transpose().map_err(|_| Error::invalid("fee", "The fee is too large."))?;
    sqlx::query!(
        "UPDATE tenants SET platform_fee_bps = $2, refund_application_fee = $3 WHERE id = $1",
        tenant_id,
        stored,
        refund_application_fee
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Entry {
            tenant_id: Some(tenant_id),
            actor: Some(admin),
            action: "tenant.fee_changed",
            target: Some(before.name),
            reason: None,
            details: serde_json::json!({
                "fee_bps": { "from": before.platform_fee_bps, "to": stored },
                "refund_application_fee": { "from": before.refund_application_fee, "to": refund_application_fee },
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The tenant's owner turns second chance on or off (see `checkout::lifecycle::offer_next`).
/// Audited.
pub async fn set_second_chance(services: &Services, owner: &Principal, tenant_id: Uuid, enabled: bool) -> Result<()> {
    let mut tx = services.pool.begin().await?;
    let name =
        sqlx::query_scalar!("UPDATE tenants SET second_chance = $2 WHERE id = $1 RETURNING name", tenant_id, enabled)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("tenant"))?;
    let entry = audit::Entry {
        tenant_id: Some(tenant_id),
        actor: Some(owner),
        action: if enabled { "tenant.second_chance_on" } else { "tenant.second_chance_off" },
        target: Some(name),
        reason: None,
        details: serde_json::json!({}),
    };
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// A platform admin sets a tenant's 3D Secure threshold for one currency (`None`: back to
/// Remit's table). Audited; applies from the next Checkout attempt.
pub async fn set_three_d_secure(
    services: &Services,
    admin: &Principal,
    tenant_id: Uuid,
    currency: Currency,
    above: Option<Money>,
) -> Result<()> {
    if above.is_some_and(|m| m.currency != currency || m.amount < 0) {
        return Err(Error::invalid("above", "Give an amount of zero or more in the same currency."));
    }
    let mut tx = services.pool.begin().await?;
    let name = sqlx::query_scalar!("SELECT name FROM tenants WHERE id = $1 FOR UPDATE", tenant_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("tenant"))?;
    let before = sqlx::query_scalar!(
        "SELECT above FROM three_d_secure_thresholds WHERE tenant_id = $1 AND currency = $2",
        tenant_id,
        currency.code()
    )
    .fetch_optional(&mut *tx)
    .await?;
    match above {
        Some(above) => {
            sqlx::query!(
                "INSERT INTO three_d_secure_thresholds (tenant_id, currency, above) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, currency) DO UPDATE SET above = EXCLUDED.above",
                tenant_id,
                currency.code(),
                above.amount
            )
            .execute(&mut *tx)
            .await?;
        }
        None => {
            sqlx::query!(
                "DELETE FROM three_d_secure_thresholds WHERE tenant_id = $1 AND currency = $2",
                tenant_id,
                currency.code()
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    audit::record(
        &mut tx,
        audit::Entry {
            tenant_id: Some(tenant_id),
            actor: Some(admin),
            action: "tenant.three_d_secure_changed",
            target: Some(name),
            reason: None,
            details: serde_json::json!({
                "currency": currency.code(),
                "from": before,
                "to": above.map(|m| m.amount),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_currency_has_a_threshold_of_roughly_500_dollars() {
        for code in Currency::supported() {
            let above = default_three_d_secure_above(Currency::parse(code).unwrap());
            assert!((30_000..=80_000).contains(&above), "{code}: {above}");
        }
        assert_eq!(THREE_D_SECURE_ABOVE.len(), Currency::supported().count(), "one row per supported currency");
    }

    #[test]
    fn three_d_secure_is_asked_above_the_threshold_only() {
        let usd = default_three_d_secure_above(Currency::parse("usd").unwrap());
        assert!(!asks_three_d_secure(50_000, usd));
        assert!(asks_three_d_secure(50_001, usd));
        let eur = default_three_d_secure_above(Currency::parse("eur").unwrap());
        assert!(asks_three_d_secure(47_000, eur), "euros have their own threshold now");
        assert!(asks_three_d_secure(1, 0), "0 asks for every payment");
    }

    #[test]
    fn fees_read_and_print_as_percentages_without_floating_point() {
        assert_eq!(parse_percent("2.5").unwrap(), Some(250));
        assert_eq!(parse_percent(" 5 % ").unwrap(), Some(500));
        assert_eq!(parse_percent("0.07").unwrap(), Some(7));
        assert_eq!(parse_percent("").unwrap(), None);
        assert!(parse_percent("50.01").is_err());
        assert!(parse_percent("2.555").is_err());
        assert!(parse_percent("-1").is_err());
        assert!(parse_percent("abc").is_err());
        assert_eq!(percent(250), "2.50 %");
        assert_eq!(percent(7), "0.07 %");
    }
}
