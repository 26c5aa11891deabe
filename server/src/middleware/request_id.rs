//! Every request gets an `x-request-id` (kept if the caller sent one) and a tracing span that
//! carries it, so every log line of the request names it.

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
                        // The path only: query strings can carry one-time tokens.
                        tracing::info_span!(
                            "request",
                            request_id,
                            method = %request.method(),
                            path = request.uri().path(),
                            user_id = tracing::field::Empty,
                        )
                    })
                    .on_request(|_: &Request<_>, _: &Span| {}),
            )
            .layer(PropagateRequestIdLayer::new(header)),
    )
}
