//! A tenant's payment terms: set by platform admins on the tenant's terms page, shown to the
//! tenant's staff on its settings page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One currency's 3D Secure threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdView {
    /// Lower-case ISO code (the form's value).
    pub currency: String,
    /// "$500.00".
    pub above: String,
    /// As the form field holds it ("500.00"); empty for Remit's default.
    pub typed: String,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermsView {
    pub tenant_id: String,
    pub tenant_name: String,
    /// "5.00 %".
    pub fee: String,
    /// As the form field holds it ("2.5"); empty for Remit's default.
    pub fee_typed: String,
    pub fee_is_default: bool,
    pub refund_application_fee: bool,
    pub three_d_secure: Vec<ThresholdView>,
    pub second_chance: bool,
}

#[cfg(feature = "ssr")]
pub(crate) async fn view_of(services: &domain::Services, tenant_id: uuid::Uuid) -> Result<TermsView, AppError> {
    use domain::payment_terms::{self, percent};
    let terms = payment_terms::of_tenant(services, tenant_id).await?;
    let tenant = domain::accounts::tenant(&services.pool, tenant_id).await?;
    Ok(TermsView {
        tenant_id: tenant_id.to_string(),
        tenant_name: tenant.name,
        fee: percent(terms.fee_bps),
        fee_typed: if terms.fee_is_default {
            String::new()
        } else {
            format!("{}.{:02}", terms.fee_bps / 100, terms.fee_bps % 100)
        },
        fee_is_default: terms.fee_is_default,
        refund_application_fee: terms.refund_application_fee,
        three_d_secure: terms
            .three_d_secure
            .into_iter()
            .map(|t| ThresholdView {
                currency: t.above.currency.code().to_owned(),
                above: t.above.display(),
                typed: if t.is_default { String::new() } else { t.above.typed() },
                is_default: t.is_default,
            })
            .collect(),
        second_chance: terms.second_chance,
    })
}

/// The tenant's owner turns second chance for runners-up on (the ticked checkbox) or off.
#[server(prefix = "/rpc", endpoint = "set_second_chance")]
pub async fn set_second_chance(enabled: Option<String>) -> Result<(), AppError> {
    use domain::auth::policy;
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    domain::payment_terms::set_second_chance(&services, &owner, owner.tenant()?, enabled.is_some()).await?;
    Ok(())
}

/// The terms page of a tenant, for platform admins.
#[server(prefix = "/rpc", endpoint = "tenant_terms")]
pub async fn load_tenant_terms(tenant_id: String) -> Result<TermsView, AppError> {
    use domain::auth::policy;
    crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let tenant_id = tenant_id.parse().map_err(|_| domain::Error::NotFound("tenant"))?;
    view_of(&services, tenant_id).await
}

/// A platform admin sets the tenant's fee (a percentage; empty for Remit's default) and whether
/// refunds give it back (`refund_application_fee` is the ticked checkbox).
#[server(prefix = "/rpc", endpoint = "set_tenant_fee")]
pub async fn set_tenant_fee(
    tenant_id: String,
    fee: String,
    refund_application_fee: Option<String>,
) -> Result<(), AppError> {
    use domain::{auth::policy, payment_terms};
    let admin = crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let tenant_id = tenant_id.parse().map_err(|_| domain::Error::NotFound("tenant"))?;
    let fee_bps = payment_terms::parse_percent(&fee)?;
    payment_terms::set_fee(&services, &admin, tenant_id, fee_bps, refund_application_fee.is_some()).await?;
    Ok(())
}

/// A platform admin sets the tenant's 3D Secure threshold for a currency (major units; empty
/// for Remit's default).
#[server(prefix = "/rpc", endpoint = "set_three_d_secure")]
pub async fn set_three_d_secure(tenant_id: String, currency: String, above: String) -> Result<(), AppError> {
    use domain::{
        auth::policy,
        money::{Currency, Money},
        payment_terms,
    };
    let admin = crate::server::authorize(policy::PLATFORM_ADMIN)?;
    let services = crate::server::services()?;
    let tenant_id = tenant_id.parse().map_err(|_| domain::Error::NotFound("tenant"))?;
    let currency =
        Currency::parse(&currency).ok_or_else(|| domain::Error::invalid("currency", "Choose a currency."))?;
    let above = match above.trim() {
        "" => None,
        typed => Some(Money::parse(typed, currency, "above")?),
    };
    payment_terms::set_three_d_secure(&services, &admin, tenant_id, currency, above).await?;
    Ok(())
}
