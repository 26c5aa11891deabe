//! The tenant settings page: the tenant, its people, invitations.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{PersonRow, UserRole};
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSettings {
    pub tenant_name: String,
    pub created: String,
    pub viewer_role: UserRole,
    pub people: Vec<PersonRow>,
    /// Remit's terms for the tenant's buyer payments (set by platform admins).
    pub terms: super::payment_terms::TermsView,
    /// The IANA name of the time zone its staff read times in.
    pub time_zone: String,
}

impl TenantSettings {
    pub fn can_rename(&self) -> bool {
        self.viewer_role == UserRole::TenantOwner
    }

    /// The roles this viewer may invite.
    pub fn invitable_roles(&self) -> &'static [UserRole] {
        match self.viewer_role {
            UserRole::TenantOwner => &[UserRole::Consultant, UserRole::TenantAdmin],
            UserRole::TenantAdmin => &[UserRole::Consultant],
            _ => &[],
        }
    }
}

#[server(prefix = "/rpc", endpoint = "tenant_settings")]
pub async fn load_tenant_settings() -> Result<TenantSettings, AppError> {
    use domain::auth::policy;
    let principal = crate::server::authorize(policy::TENANT_STAFF)?;
    let services = crate::server::services()?;
    let overview = domain::accounts::tenant_overview(&services.pool, principal.tenant()?).await?;
    let terms = super::payment_terms::view_of(&services, principal.tenant()?).await?;
    let time_zone = domain::time_zone::of_tenant(&services.pool, principal.tenant()?).await?;
    Ok(TenantSettings {
        terms,
        time_zone: time_zone.name().to_owned(),
        tenant_name: overview.tenant.name,
        created: overview.tenant.created_at.format("%Y-%m-%d").to_string(),
        viewer_role: principal.role.into(),
        people: overview.users.into_iter().map(|u| PersonRow::new(u, &principal)).collect(),
    })
}

#[server(prefix = "/rpc", endpoint = "rename_tenant")]
pub async fn rename_tenant(name: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let principal = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    domain::accounts::rename_tenant(&services.pool, &principal, &name).await?;
    Ok(())
}

/// The owner sets the time zone the tenant's staff read times in (an IANA name).
#[server(prefix = "/rpc", endpoint = "set_time_zone")]
pub async fn set_time_zone(time_zone: String) -> Result<(), AppError> {
    use domain::auth::policy;
    let owner = crate::server::authorize(policy::TENANT_OWNER)?;
    let services = crate::server::services()?;
    domain::time_zone::set(&services.pool, &owner, &time_zone).await?;
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "invite_member")]
pub async fn invite_member(email: String, display_name: String, role: String) -> Result<(), AppError> {
    use domain::{
        Error,
        accounts::{self, Invitation},
        auth::{Role, policy},
    };
    let principal = crate::server::authorize(policy::TENANT_STAFF)?;
    let role = Role::parse(&role)
        .filter(|r| matches!(r, Role::TenantAdmin | Role::Consultant))
        .ok_or_else(|| Error::invalid("role", "Choose consultant or tenant admin."))?;
    let services = crate::server::services()?;
    accounts::invite(&services, &principal, Invitation { email, display_name, role }).await?;
    Ok(())
}
