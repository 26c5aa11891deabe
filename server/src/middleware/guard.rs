//! What no request may do to the server: crash its connection, send more than a request needs,
//! or smuggle text PostgreSQL cannot store.
//!
//! - `catch_panic`: a panic while answering becomes a 500 that names the request id (logged with
//!   the panic), instead of a dropped connection.
//! - `check_input`: a request without a path, or whose path, query or body carries a NUL
//!   character, is a 400; a body over the limit of its route is a 413, before any handler reads it.

use std::panic::AssertUnwindSafe;

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::FutureExt as _;

use crate::middleware::request_id;

/// The largest body a server function takes (forms are small).
pub const MAX_RPC_BODY: usize = 256 * 1024;
/// The largest body of any other route with a body (the REST API's JSON).
pub const MAX_API_BODY: usize = 1024 * 1024;

fn error(status: StatusCode, message: &str, headers: &HeaderMap) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|a| a.contains("json") || !a.contains("text/html"));
    if wants_json {
        let body =
            serde_json::json!({ "status": status.as_u16(), "message": message, "field": null, "retry_after": null });
        (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.to_owned()).into_response()
    }
}

pub async fn catch_panic(request: Request, next: Next) -> Response {
    let id = request.headers().get(request_id::HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let headers = request.headers().clone();
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            tracing::error!(request_id = %id, panic = %what, "a request panicked; answered 500");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("Something went wrong on our side. If it happens again, quote request id {id}."),
                &headers,
            )
        }
    }
}

/// Whether percent-encoded `text` decodes to something with a NUL character.
fn encoded_nul(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0') || text.contains('\0')
}

fn json_has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

/// Whether a body of `content_type` carries a NUL character in any text it holds.
pub fn body_has_nul(content_type: &str, body: &[u8]) -> bool {
    if content_type.starts_with("application/x-www-form-urlencoded") {
        form_urlencoded::parse(body).any(|(k, v)| k.contains('\0') || v.contains('\0'))
    } else if content_type.contains("json") {
        // A body that is not JSON is left to its handler, which says so.
        serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| json_has_nul(&v))
    } else {
        body.contains(&0)
    }
}

pub async fn check_input(request: Request, next: Next) -> Response {
    let Some(target) = request.uri().path_and_query().map(|p| p.as_str().to_owned()) else {
        return error(StatusCode::BAD_REQUEST, "The request has no path.", request.headers());
    };
    if encoded_nul(&target) {
        return error(StatusCode::BAD_REQUEST, domain::error::NUL_IN_TEXT, request.headers());
    }
    let path = request.uri().path();
    // (The Stripe webhook is not behind this guard: it keeps its raw body, which its signature
    // covers, and has its own limit.)
    if matches!(*request.method(), http::Method::GET | http::Method::HEAD) {
        return next.run(request).await;
    }
    let limit = if path.starts_with("/rpc/") { MAX_RPC_BODY } else { MAX_API_BODY };
    let too_large = || format!("The request is too large: at most {} KB are accepted here.", limit / 1024);
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return error(StatusCode::PAYLOAD_TOO_LARGE, &too_large(), request.headers());
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, limit).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, &too_large(), &parts.headers);
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if body_has_nul(content_type, &bytes) {
        return error(StatusCode::BAD_REQUEST, domain::error::NUL_IN_TEXT, &parts.headers);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use axum::{Router, middleware, routing::get};
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn a_panic_is_answered_500_with_the_request_id() {
        async fn boom() -> &'static str {
            panic!("the handler fell over")
        }
        let router = request_id::layer(Router::new().route("/boom", get(boom)).layer(middleware::from_fn(catch_panic)));
        let request =
            Request::builder().uri("/boom").header(request_id::HEADER, "req-1234").body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.expect("answered, not dropped");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[request_id::HEADER], "req-1234");
        let body = to_bytes(response.into_body(), 4096).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("req-1234") && !text.contains("fell over"), "{text}");
    }

    #[test]
    fn nul_characters_are_found_however_they_are_sent() {
        assert!(encoded_nul("/pay/abc%00def"));
        assert!(!encoded_nul("/pay/abc%200def?x=%2000"));
        assert!(body_has_nul("application/x-www-form-urlencoded", b"name=a%00b"));
        assert!(!body_has_nul("application/x-www-form-urlencoded", b"name=a%2500b"));
        assert!(body_has_nul("application/json", br#"{"lot":"a\u0000b"}"#));
        assert!(body_has_nul("application/json", br#"{"items":[{"x":"\u0000"}]}"#));
        assert!(!body_has_nul("application/json", br#"{"lot":"a\\u0000b"}"#));
        assert!(!body_has_nul("application/json", b"not json \0"));
        assert!(body_has_nul("text/plain", b"a\0b"));
    }
}
