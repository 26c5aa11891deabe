//! Server functions (the app's RPC surface, all under `/rpc/`) and the data they return.
//!
//! Each one authenticates, authorises, calls one domain function and maps the error.

pub mod account;
pub mod admin;
pub mod billing;
pub mod household;
pub mod overview;
pub mod payouts;
pub mod receipts;
pub mod security;
pub mod tenant;
pub mod tenant_admin;
pub mod winnings;

use serde::{Deserialize, Serialize};

/// A user's role as the UI knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserRole {
    PlatformAdmin,
    TenantOwner,
    TenantAdmin,
    Consultant,
    FamilyMember,
}

impl UserRole {
    pub fn label(self) -> &'static str {
        match self {
            UserRole::PlatformAdmin => "Platform admin",
            UserRole::TenantOwner => "Tenant owner",
            UserRole::TenantAdmin => "Tenant admin",
            UserRole::Consultant => "Consultant",
            UserRole::FamilyMember => "Family member",
        }
    }

    /// Where this role lands after signing in.
    pub fn home(self) -> &'static str {
        match self {
            UserRole::PlatformAdmin => "/admin",
            UserRole::TenantOwner | UserRole::TenantAdmin => "/tenant",
            UserRole::Consultant | UserRole::FamilyMember => "/dashboard",
        }
    }
}

#[cfg(feature = "ssr")]
impl From<domain::auth::Role> for UserRole {
    fn from(role: domain::auth::Role) -> Self {
        use domain::auth::Role;
        match role {
            Role::PlatformAdmin => UserRole::PlatformAdmin,
            Role::TenantOwner => UserRole::TenantOwner,
            Role::TenantAdmin => UserRole::TenantAdmin,
            Role::Consultant => UserRole::Consultant,
            Role::FamilyMember => UserRole::FamilyMember,
        }
    }
}

/// A person as listed on the tenant and admin pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonRow {
    pub id: String,
    pub display_name: String,
    pub email: String,
    pub role: UserRole,
    pub tenant_name: Option<String>,
    pub consultant_name: Option<String>,
    pub active: bool,
    pub joined: String,
}

#[cfg(feature = "ssr")]
impl From<domain::accounts::UserSummary> for PersonRow {
    fn from(u: domain::accounts::UserSummary) -> Self {
        Self {
            id: u.id.to_string(),
            display_name: u.display_name,
            email: u.email,
            role: u.role.into(),
            tenant_name: u.tenant_name,
            consultant_name: u.consultant_name,
            active: u.active,
            joined: u.created_at.format("%Y-%m-%d").to_string(),
        }
    }
}
