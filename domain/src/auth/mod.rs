//! Who is asking, and may they: roles, the signed-in principal, and the one authorisation
//! helper every server function and route goes through.

pub mod account_tokens;
pub mod password;
pub mod session;
pub mod sign_in;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PlatformAdmin,
    TenantOwner,
    TenantAdmin,
    Consultant,
    FamilyMember,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::PlatformAdmin, Role::TenantOwner, Role::TenantAdmin, Role::Consultant, Role::FamilyMember];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::TenantOwner => "tenant_owner",
            Role::TenantAdmin => "tenant_admin",
            Role::Consultant => "consultant",
            Role::FamilyMember => "family_member",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "Platform admin",
            Role::TenantOwner => "Tenant owner",
            Role::TenantAdmin => "Tenant admin",
            Role::Consultant => "Consultant",
            Role::FamilyMember => "Family member",
        }
    }
}

/// The signed-in user, as resolved from their session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// `None` only for platform admins.
    pub tenant_id: Option<Uuid>,
    /// For a family member, the consultant they are attached to.
    pub consultant_id: Option<Uuid>,
}

/// Which roles may perform an operation. Every server function and route names one of these.
pub mod policy {
    use super::Role;

    pub const SIGNED_IN: &[Role] = &Role::ALL;
    pub const PLATFORM_ADMIN: &[Role] = &[Role::PlatformAdmin];
    pub const TENANT_OWNER: &[Role] = &[Role::TenantOwner];
    pub const TENANT_STAFF: &[Role] = &[Role::TenantOwner, Role::TenantAdmin];
    /// Consultant-only actions: a family member may look, never act.
    pub const CONSULTANT: &[Role] = &[Role::Consultant];
    /// Pages a consultant's household may read.
    pub const CONSULTANT_HOUSEHOLD: &[Role] = &[Role::Consultant, Role::FamilyMember];
    /// Who may send a consultant a payout onboarding link: the consultant, or their tenant's staff.
    pub const ONBOARDING_LINK_ISSUERS: &[Role] = &[Role::Consultant, Role::TenantOwner, Role::TenantAdmin];
    /// Who pays a consultant's fees: the clients of their household.
    pub const FAMILY_MEMBER: &[Role] = &[Role::FamilyMember];
    /// Who invites people (and may resend or revoke their own tenant's or household's invitations).
    pub const INVITERS: &[Role] = &[Role::TenantOwner, Role::TenantAdmin, Role::Consultant];
}

/// Where to send someone after sign-in, if `next` is a safe place: a path on Remit itself. It
/// must start with a single `/`, hold no backslash, whitespace or control character (browsers
/// drop tabs and newlines, so `/\t/evil.example` would become `//evil.example`), and, resolved
/// against `base` (`PUBLIC_BASE_URL`), keep its origin. Anything else is ignored.
pub fn safe_redirect(base: &url::Url, next: &str) -> Option<String> {
    let plain = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2048
        && !next.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    if !plain {
        return None;
    }
    let resolved = base.join(next).ok()?;
    (resolved.origin() == base.origin()).then(|| next.to_owned())
}

/// The authorisation helper: no principal is 401, a principal outside `allowed` is 403.
pub fn authorize<'p>(principal: Option<&'p Principal>, allowed: &[Role]) -> Result<&'p Principal> {
    let principal = principal.ok_or(Error::Unauthenticated)?;
    if allowed.contains(&principal.role) { Ok(principal) } else { Err(Error::Forbidden) }
}

impl Principal {
    /// The tenant this principal acts within; platform admins have none and are refused.
    pub fn tenant(&self) -> Result<Uuid> {
        self.tenant_id.ok_or(Error::Forbidden)
    }

    /// Ownership check: the resource's tenant must be the principal's own.
    /// A resource of another tenant is reported as not found, so nothing about it is revealed.
    pub fn require_tenant(&self, resource_tenant: Uuid, what: &'static str) -> Result<()> {
        if self.role == Role::PlatformAdmin || self.tenant_id == Some(resource_tenant) {
            Ok(())
        } else {
            Err(Error::NotFound(what))
        }
    }

    /// The consultant whose data this principal sees: themselves, or the consultant a family
    /// member is attached to.
    pub fn consultant_scope(&self) -> Result<Uuid> {
        match self.role {
            Role::Consultant => Ok(self.user_id),
            Role::FamilyMember => self.consultant_id.ok_or(Error::Forbidden),
            _ => Err(Error::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            user_id: Uuid::new_v4(),
            email: "a@example.com".into(),
            display_name: "A".into(),
            role,
            tenant_id: (role != Role::PlatformAdmin).then(Uuid::new_v4),
            consultant_id: (role == Role::FamilyMember).then(Uuid::new_v4),
        }
    }

    #[test]
    fn anonymous_is_unauthenticated_and_wrong_role_is_forbidden() {
        assert!(matches!(authorize(None, policy::SIGNED_IN), Err(Error::Unauthenticated)));
        let family = principal(Role::FamilyMember);
        assert!(matches!(authorize(Some(&family), policy::CONSULTANT), Err(Error::Forbidden)));
        assert!(authorize(Some(&family), policy::CONSULTANT_HOUSEHOLD).is_ok());
        let owner = principal(Role::TenantOwner);
        assert!(authorize(Some(&owner), policy::TENANT_OWNER).is_ok());
        assert!(matches!(authorize(Some(&principal(Role::TenantAdmin)), policy::TENANT_OWNER), Err(Error::Forbidden)));
    }

    #[test]
    fn other_tenants_resources_are_not_found() {
        let owner = principal(Role::TenantOwner);
        assert!(owner.require_tenant(owner.tenant_id.unwrap(), "tenant").is_ok());
        assert!(matches!(owner.require_tenant(Uuid::new_v4(), "tenant"), Err(Error::NotFound(_))));
        assert!(principal(Role::PlatformAdmin).require_tenant(Uuid::new_v4(), "tenant").is_ok());
    }

    #[test]
    fn family_members_see_their_consultant() {
        let family = principal(Role::FamilyMember);
        assert_eq!(family.consultant_scope().unwrap(), family.consultant_id.unwrap());
        let consultant = principal(Role::Consultant);
        assert_eq!(consultant.consultant_scope().unwrap(), consultant.user_id);
        assert!(principal(Role::TenantAdmin).consultant_scope().is_err());
    }

    #[test]
    fn only_paths_on_remit_are_followed_after_sign_in() {
        let base = url::Url::parse("https://pay.example.com").unwrap();
        assert_eq!(safe_redirect(&base, "/settings?tab=keys").as_deref(), Some("/settings?tab=keys"));
        for evil in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\u{7f}",
            "/\u{0}x",
            "https://evil.example",
            "evil.example",
            "",
            "/ /evil.example",
        ] {
            assert_eq!(safe_redirect(&base, evil), None, "{evil:?}");
        }
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("buyer"), None);
    }
}
