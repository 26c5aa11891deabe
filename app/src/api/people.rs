//! Managing people: deactivating and reactivating users, changing roles (the owner), and
//! resending or revoking pending invitations. Each calls one domain function, which checks who
//! may do it to whom and audits it.

use leptos::prelude::*;

use crate::error::AppError;

#[cfg(feature = "ssr")]
fn user_id(id: &str) -> Result<uuid::Uuid, AppError> {
    Ok(id.parse().map_err(|_| domain::Error::NotFound("user"))?)
}

#[server(prefix = "/rpc", endpoint = "set_user_active")]
pub async fn set_user_active(user_id: String, active: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let actor = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    domain::accounts::set_active(&services, &actor, self::user_id(&user_id)?, active == "true").await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "change_user_role")]
pub async fn change_user_role(user_id: String, role: String) -> Result<(), AppError> {
    use domain::auth::{Role, policy};
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    let role =
        Role::parse(&role).ok_or_else(|| domain::Error::invalid("role", "Choose tenant admin or consultant."))?;
    domain::accounts::change_role(&services, &owner, self::user_id(&user_id)?, role).await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "resend_invitation")]
pub async fn resend_invitation(user_id: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let actor = crate::server::authorize(policy::INVITERS)?;
    let services = crate::server::services()?;
    domain::accounts::resend_invitation(&services, &actor, self::user_id(&user_id)?).await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "revoke_invitation")]
pub async fn revoke_invitation(user_id: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let actor = crate::server::authorize(policy::INVITERS)?;
    let services = crate::server::services()?;
    domain::accounts::revoke_invitation(&services, &actor, self::user_id(&user_id)?).await?;
    Ok(())
}
