//! Server functions (the app's RPC surface, all under `/rpc/`) and the data they return.
//!
//! Each one authenticates, authorises, calls one domain function and maps the error.

pub mod account;
pub mod admin;
pub mod billing;
pub mod fees;
pub mod household;
pub mod overview;
pub mod payment_terms;
pub mod payouts;
pub mod people;
pub mod receipts;
pub mod reconciliation;
pub mod refunds;
pub mod reports;
pub mod security;
pub mod tenant;
pub mod tenant_admin;
pub mod tenant_webhooks;
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

/// A person as listed on the tenant and admin pages, with what the viewer may do to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonRow {
    pub id: String,
    pub display_name: String,
    pub email: String,
    pub role: UserRole,
    pub tenant_name: Option<String>,
    pub consultant_name: Option<String>,
    /// False while an invitation is still open.
    pub active: bool,
    pub deactivated: bool,
    pub joined: String,
    pub actions: PersonActions,
}

/// The management buttons the viewer gets for a person.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonActions {
    pub deactivate: bool,
    pub reactivate: bool,
    pub resend_invitation: bool,
    pub revoke_invitation: bool,
    pub change_role_to: Option<UserRole>,
}

impl PersonActions {
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

#[cfg(feature = "ssr")]
impl PersonRow {
    /// `u` as `viewer` sees it.
    pub fn new(u: domain::accounts::UserSummary, viewer: &domain::auth::Principal) -> Self {
        let a = domain::accounts::actions(viewer, &u);
        Self {
            id: u.id.to_string(),
            display_name: u.display_name,
            email: u.email,
            role: u.role.into(),
            tenant_name: u.tenant_name,
            consultant_name: u.consultant_name,
            active: u.active,
            deactivated: u.deactivated,
            joined: u.created_at.format("%Y-%m-%d").to_string(),
            actions: PersonActions {
                deactivate: a.deactivate,
                reactivate: a.reactivate,
                resend_invitation: a.resend_invitation,
                revoke_invitation: a.revoke_invitation,
                change_role_to: a.change_role_to.map(UserRole::from),
            },
        }
    }
}
