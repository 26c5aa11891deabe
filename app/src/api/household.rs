//! The consultant dashboard: the consultant's household (a family member sees the same, read-only).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{PersonRow, UserRole};
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsultantDashboard {
    pub display_name: String,
    pub role: UserRole,
    pub tenant_name: String,
    pub consultant_name: String,
    pub household: Vec<PersonRow>,
    /// Only the consultant may change the household; family members look.
    pub can_manage: bool,
}

#[server(prefix = "/rpc", endpoint = "consultant_dashboard")]
pub async fn load_consultant_dashboard() -> Result<ConsultantDashboard, AppError> {
    use domain::auth::{Role, policy};
    let principal = crate::server::authorize(policy::CONSULTANT_HOUSEHOLD)?;
    let services = crate::server::services()?;
    let overview = domain::accounts::household_overview(&services.pool, &principal).await?;
    let household = overview.members.into_iter().map(|u| PersonRow::new(u, &principal)).collect();
    Ok(ConsultantDashboard {
        display_name: principal.display_name,
        role: principal.role.into(),
        tenant_name: overview.tenant.name,
        consultant_name: overview.consultant_name,
        household,
        can_manage: principal.role == Role::Consultant,
    })
}

#[server(prefix = "/rpc", endpoint = "invite_family_member")]
pub async fn invite_family_member(email: String, display_name: String) -> Result<(), AppError> {
    use domain::{
        accounts::{self, Invitation},
        auth::{Role, policy},
    };
    let principal = crate::server::authorize(policy::CONSULTANT)?;
    let services = crate::server::services()?;
    accounts::invite(&services, &principal, Invitation { email, display_name, role: Role::FamilyMember }).await?;
    Ok(())
}
