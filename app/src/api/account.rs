//! Signing in and out, choosing a password through a one-time link, and the signed-in person's
//! own account: changing the password and seeing (and ending) their sessions.

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

#[server(prefix = "/rpc", endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use domain::auth::{safe_redirect, session, sign_in};

    use crate::server;
    let services = server::services()?;
    let signed_in = sign_in::sign_in(&services, &email, password.into(), &server::client()?).await?;
    // Rotate: whatever session the browser had before is ended.
    if let Some(old) = server::session_token()? {
        session::destroy(&services.pool, &old).await?;
    }
    server::set_cookie(session::cookie(&signed_in.token, services.settings.is_https()));
    let home = UserRole::from(signed_in.role).home();
    let next = next.as_deref().and_then(|n| safe_redirect(&services.settings.public_base_url, n));
    leptos_axum::redirect(next.as_deref().unwrap_or(home));
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    use domain::auth::session;

    use crate::server;
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
    let info = account_tokens::inspect(&services, &token).await?;
    Ok(LinkInfo { email: info.email, invitation: info.purpose == Purpose::Invitation })
}

#[cfg(feature = "ssr")]
fn mismatch(field: &str) -> AppError {
    AppError {
        status: 422,
        message: "The two passwords are not the same.".into(),
        field: Some(field.into()),
        retry_after: None,
    }
}

#[server(prefix = "/rpc", endpoint = "choose_password")]
pub async fn choose_password(token: String, password: String, confirmation: String) -> Result<(), AppError> {
    if password != confirmation {
        return Err(mismatch("confirmation"));
    }
    let services = crate::server::services()?;
    domain::auth::account_tokens::set_password(&services, &token, password.into()).await?;
    leptos_axum::redirect("/sign-in?password_set=1");
    Ok(())
}

/// One of the signed-in person's sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub device: String,
    pub address: String,
    pub signed_in: String,
    pub last_seen: String,
    pub current: bool,
}

/// The account page: who is signed in, and their sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub display_name: String,
    pub email: String,
    pub role: UserRole,
    pub sessions: Vec<SessionRow>,
}

#[server(prefix = "/rpc", endpoint = "load_account")]
pub async fn load_account() -> Result<AccountView, AppError> {
    use domain::auth::{policy, session};

    use crate::server;
    let principal = server::authorize(policy::SIGNED_IN)?;
    let services = server::services()?;
    let token = server::session_token()?.ok_or(domain::Error::Unauthenticated)?;
    let sessions = session::list(&services.pool, principal.user_id, &token).await?;
    Ok(AccountView {
        display_name: principal.display_name,
        email: principal.email,
        role: principal.role.into(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                id: s.id.to_string(),
                device: s.user_agent.as_deref().map(describe_device).unwrap_or_else(|| "Unknown device".into()),
                address: s.client_ip.unwrap_or_else(|| "unknown".into()),
                signed_in: s.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                last_seen: s.last_seen_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                current: s.current,
            })
            .collect(),
    })
}

/// A browser's `User-Agent` in a few words ("Firefox on Linux").
pub fn describe_device(user_agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map_or("A browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

#[server(prefix = "/rpc", endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    confirmation: String,
) -> Result<(), AppError> {
    use domain::auth::policy;

    use crate::server;
    let principal = server::authorize(policy::SIGNED_IN)?;
    if new_password != confirmation {
        return Err(mismatch("confirmation"));
    }
    let services = server::services()?;
    let token = server::session_token()?.ok_or(domain::Error::Unauthenticated)?;
    let client = server::client()?;
    domain::accounts::change_password(
        &services,
        &principal,
        &token,
        current_password.into(),
        new_password.into(),
        &client,
    )
    .await?;
    server::put_flash(ACCOUNT_FLASH, "Your password is changed. Every other session was signed out.").await
}

/// Where the account page's notices wait for the next load (a plain form post shows them too).
pub const ACCOUNT_FLASH: &str = "account_notice";

#[server(prefix = "/rpc", endpoint = "account_notice")]
pub async fn account_notice() -> Result<Option<String>, AppError> {
    crate::server::authorize(domain::auth::policy::SIGNED_IN)?;
    Ok(crate::server::take_flash(ACCOUNT_FLASH).await?.pop())
}

#[server(prefix = "/rpc", endpoint = "sign_out_session")]
pub async fn sign_out_session(id: String) -> Result<(), AppError> {
    use domain::auth::{policy, session};

    use crate::server;
    let principal = server::authorize(policy::SIGNED_IN)?;
    let services = server::services()?;
    let id = id.parse().map_err(|_| domain::Error::NotFound("session"))?;
    session::sign_out_one(&services.pool, principal.user_id, id).await?;
    server::put_flash(ACCOUNT_FLASH, "That session is signed out.").await
}

#[server(prefix = "/rpc", endpoint = "sign_out_other_sessions")]
pub async fn sign_out_other_sessions() -> Result<(), AppError> {
    use domain::auth::{policy, session};

    use crate::server;
    let principal = server::authorize(policy::SIGNED_IN)?;
    let services = server::services()?;
    let token = server::session_token()?.ok_or(domain::Error::Unauthenticated)?;
    let ended = session::sign_out_others(&services.pool, principal.user_id, &token).await?;
    server::put_flash(ACCOUNT_FLASH, &format!("{ended} other session(s) signed out.")).await
}

#[cfg(test)]
mod tests {
    use super::describe_device;

    #[test]
    fn devices_are_described_in_a_few_words() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(describe_device(chrome), "Chrome on Linux");
        let safari =
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Safari/604.1";
        assert_eq!(describe_device(safari), "Safari on iPhone");
        assert_eq!(describe_device("curl/8.5.0"), "curl");
    }
}
