//! Every request gets an `x-request-id` (kept if the caller sent one) and a tracing span that
//! carries it, so every log line of the request names it. The span records the path without the
//! secrets some paths carry (payment-link tokens), and never the query (onboarding and reset
//! tokens travel there).

use axum::{Router, http::Request};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::Span;

pub const HEADER: &str = "x-request-id";

pub fn layer(router: Router) -> Router {
    let header = http::HeaderName::from_static(HEADER);
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(header.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request<_>| {
                        let request_id =
                            request.headers().get(HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                        // The path only (query strings carry one-time tokens), with tokens in it redacted.
                        tracing::info_span!(
                            "request",
                            request_id,
                            method = %request.method(),
                            path = %redacted_path(request.uri().path()),
                            user_id = tracing::field::Empty,
                        )
                    })
                    .on_request(|_: &Request<_>, _: &Span| {}),
            )
            .layer(PropagateRequestIdLayer::new(header)),
    )
}

/// Path segments that are secrets: the payment link's token (`/pay/{token}`, and its receipt).
const SECRET_AFTER: &[&str] = &["/pay/"];
/// Pages under those prefixes whose next segment is not a secret.
const NOT_SECRET: &[&str] = &["/pay/complete", "/pay/cancelled"];

/// `path` with the secret segments replaced, fit for logs.
pub fn redacted_path(path: &str) -> std::borrow::Cow<'_, str> {
    if NOT_SECRET.contains(&path) {
        return path.into();
    }
    for prefix in SECRET_AFTER {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            return format!("{prefix}[redacted]{tail}").into();
        }
    }
    path.into()
}

#[cfg(test)]
mod tests {
    use super::redacted_path;

    #[test]
    fn payment_link_tokens_never_reach_the_logs() {
        assert_eq!(redacted_path("/pay/s3cr3t-token"), "/pay/[redacted]");
        assert_eq!(redacted_path("/pay/s3cr3t-token/receipt.pdf"), "/pay/[redacted]/receipt.pdf");
        assert_eq!(redacted_path("/pay/complete"), "/pay/complete");
        assert_eq!(redacted_path("/api/v1/onboard-client"), "/api/v1/onboard-client");
        assert_eq!(redacted_path("/winnings"), "/winnings");
    }
}
