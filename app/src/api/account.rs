//! Signing in and out, and choosing a password through a one-time link.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::UserRole;
use crate::error::AppError;

/// The signed-in user, for the navigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub display_name: String,
    pub email: String,
    pub role: UserRole,
}

#[server(prefix = "/rpc", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<Me>, AppError> {
    Ok(crate::server::principal()?.map(|p| Me { display_name: p.display_name, email: p.email, role: p.role.into() }))
}

/// Only same-site paths are followed after sign-in, so the form cannot be used to send people
/// elsewhere.
pub fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\"))
}

#[server(prefix = "/rpc", endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::server;
    use domain::auth::{session, sign_in};
    let services = server::services()?;
    let signed_in = sign_in::sign_in(&services.pool, &email, password.into()).await?;
    // Rotate: whatever session the browser had before is ended.
    if let Some(old) = server::session_token()? {
        session::destroy(&services.pool, &old).await?;
    }
    server::set_cookie(session::cookie(&signed_in.token, services.settings.is_https()));
    let home = UserRole::from(signed_in.role).home();
    leptos_axum::redirect(safe_next(next.as_deref()).unwrap_or(home));
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    use crate::server;
    use domain::auth::session;
    let services = server::services()?;
    if let Some(token) = server::session_token()? {
        session::destroy(&services.pool, &token).await?;
    }
    server::set_cookie(session::clearing_cookie(services.settings.is_https()));
    leptos_axum::redirect("/sign-in?signed_out=1");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "request_password_reset")]
pub async fn request_password_reset(email: String) -> Result<(), AppError> {
    let services = crate::server::services()?;
    domain::auth::account_tokens::request_password_reset(&services, &email).await?;
    leptos_axum::redirect("/forgot-password?sent=1");
    Ok(())
}

/// What a one-time link is for, before the person chooses a password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub email: String,
    pub invitation: bool,
}

#[server(prefix = "/rpc", endpoint = "inspect_link")]
pub async fn inspect_link(token: String) -> Result<LinkInfo, AppError> {
    use domain::auth::account_tokens::{self, Purpose};
    let services = crate::server::services()?;
    let info = account_tokens::inspect(&services.pool, &token).await?;
    Ok(LinkInfo { email: info.email, invitation: info.purpose == Purpose::Invitation })
}

#[server(prefix = "/rpc", endpoint = "choose_password")]
pub async fn choose_password(token: String, password: String, confirmation: String) -> Result<(), AppError> {
    if password != confirmation {
        return Err(AppError {
            status: 422,
            message: "The two passwords are not the same.".into(),
            field: Some("confirmation".into()),
            retry_after: None,
        });
    }
    let services = crate::server::services()?;
    domain::auth::account_tokens::set_password(&services.pool, &token, password.into()).await?;
    leptos_axum::redirect("/sign-in?password_set=1");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/settings")), Some("/settings"));
        assert_eq!(safe_next(Some("//evil.example")), None);
        assert_eq!(safe_next(Some("/\\evil.example")), None);
        assert_eq!(safe_next(Some("https://evil.example")), None);
        assert_eq!(safe_next(None), None);
    }
}
