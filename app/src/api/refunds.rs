//! Refunds of paid winnings, from the winning's page.

use leptos::prelude::*;

use crate::error::AppError;

/// A tenant's owner or admin refunds a paid winning, in full (amount left empty) or in part
/// (typed in major units).
#[server(prefix = "/rpc", endpoint = "refund_winning")]
pub async fn refund_winning(
    winning_id: String,
    amount: String,
    reason: String,
    idempotency_key: String,
) -> Result<(), AppError> {
    use domain::{
        auth::policy,
        refunds::{NewRefund, Refunded, Requester},
    };
    let staff = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let tenant = staff.tenant()?;
    let id: uuid::Uuid = winning_id.parse().map_err(|_| domain::Error::NotFound("winning bid"))?;
    let winning = domain::checkout::for_tenant(&services, tenant, None, id).await?;
    let amount = domain::refunds::typed_amount(&amount, &winning.currency)?;
    let request = NewRefund { amount, reason };
    let key = Some(idempotency_key.as_str()).filter(|k| !k.is_empty());
    let refunded = Refunded::Winning { tenant_id: tenant, bid_id: id };
    domain::refunds::create(&services, refunded, Requester::Staff(&staff), &request, key).await?;
    Ok(())
}
