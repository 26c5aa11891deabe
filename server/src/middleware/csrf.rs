//! Cross-site request forgery protection: a state-changing request that is made by a browser
//! session (it carries the session cookie) or that goes to a server function must come from
//! Remit's own origin, as told by `Origin` (or, when a browser omits it, `Referer`).
//! SameSite=Lax on the session cookie is the second line.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use domain::auth::session;

/// The origin (`scheme://host[:port]`) requests must come from.
#[derive(Clone)]
pub struct AllowedOrigin(pub String);

impl AllowedOrigin {
    pub fn from_url(url: &url::Url) -> Self {
        Self(url.origin().ascii_serialization())
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

fn carries_session(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| session::token_from_cookie_header(c).is_some())
}

/// The origin a request says it comes from.
fn request_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return Some(origin.to_owned());
    }
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    url::Url::parse(referer).ok().map(|u| u.origin().ascii_serialization())
}

pub async fn check_origin(State(allowed): State<AllowedOrigin>, request: Request, next: Next) -> Response {
    let needs_check =
        !is_safe(request.method()) && (request.uri().path().starts_with("/rpc/") || carries_session(request.headers()));
    if needs_check && request_origin(request.headers()).as_deref() != Some(allowed.0.as_str()) {
        tracing::warn!(path = %super::request_id::redacted_path(request.uri().path()), "cross-site request refused");
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":403,"message":"Cross-site request refused. Reload the page and try again.","field":null,"retry_after":null}"#,
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_falls_back_to_referer() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_origin(&headers), None);
        headers.insert(header::REFERER, "http://127.0.0.1:3000/sign-in?x=1".parse().unwrap());
        assert_eq!(request_origin(&headers).as_deref(), Some("http://127.0.0.1:3000"));
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert_eq!(request_origin(&headers).as_deref(), Some("https://evil.example"));
    }

    #[test]
    fn allowed_origin_drops_the_path() {
        let url = url::Url::parse("https://pay.example.com/").unwrap();
        assert_eq!(AllowedOrigin::from_url(&url).0, "https://pay.example.com");
    }
}
