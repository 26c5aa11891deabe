//! Remit's REST API under `/api/v1`, JSON in and out, described at `/api/v1/openapi.json`.
//!
//! Two kinds of caller: a signed-in person (the session cookie, as the web app uses these
//! routes) under `/api/v1/auth/…` and `/api/v1/consultants/me/…`, and a tenant's own system with an API key
//! (`Authorization: Bearer rmt_…`) everywhere else.

mod consultants;
mod extract;
mod onboarding;
mod payments;
mod refunds;
mod tenant;
mod tenant_settings;
mod tenant_webhooks;

use axum::{
    Router,
    http::header,
    response::IntoResponse,
    routing::{get, post},
};

pub use extract::{ApiJson, KeyClient, SessionUser};

use crate::state::AppState;

/// Routes are registered with and without the trailing slash the seed's paths carry.
fn both(router: Router<AppState>, path: &str, route: axum::routing::MethodRouter<AppState>) -> Router<AppState> {
    let trimmed = path.trim_end_matches('/');
    router.route(trimmed, route.clone()).route(&format!("{trimmed}/"), route)
}

pub fn routes() -> Router<AppState> {
    let mut r = Router::new().route("/api/v1/openapi.json", get(openapi));
    r = both(r, "/api/v1/tenant", get(tenant::whoami));
    r = both(r, "/api/v1/winnings", get(payments::list).post(payments::register));
    r = both(r, "/api/v1/winnings/{id}", get(payments::get));
    r = both(r, "/api/v1/winnings/{id}/receipt", get(payments::receipt));
    r = both(r, "/api/v1/winnings/{id}/cancel", post(payments::cancel));
    r = both(r, "/api/v1/winnings/{id}/refunds", get(refunds::list).post(refunds::create));
    r = both(r, "/api/v1/winnings/{id}/refunds/{refund}/credit-note", get(refunds::credit_note));
    r = both(r, "/payments/checkout/create", post(payments::create));
    r = both(r, "/payments/checkout/{session}/status", get(payments::status));
    r = both(r, "/payments/retry/{session}", post(payments::retry));
    r = both(r, "/api/v1/onboard-client", get(onboarding::open));
    r = both(r, "/api/v1/onboard-client/return", get(onboarding::finish));
    r = both(r, "/api/v1/onboard-client/refresh", get(onboarding::refresh));
    r = both(r, "/api/v1/consultants/me/payment-account", post(consultants::create_payment_account));
    r = both(r, "/api/v1/consultants/me/account-session", post(consultants::create_account_session));
    r = both(r, "/api/v1/auth/tenants/stripe/connect", post(tenant_settings::stripe_connect));
    r = both(r, "/api/v1/auth/tenants/stripe/callback", get(tenant_settings::stripe_callback));
    r = both(r, "/api/v1/auth/tenants/stripe/status", get(tenant_settings::stripe_status));
    r = both(r, "/api/v1/auth/tenants/stripe/disconnect", post(tenant_settings::stripe_disconnect));
    r = both(r, "/api/v1/auth/tenants/api-keys", get(tenant_settings::list_keys).post(tenant_settings::create_key));
    r = both(r, "/api/v1/auth/tenants/api-keys/regenerate", post(tenant_settings::regenerate_keys));
    r = both(r, "/api/v1/auth/tenants/api-keys/revoke", post(tenant_settings::revoke_keys));
    let hooks = "/api/v1/auth/tenants/webhooks";
    r = both(r, &format!("{hooks}/endpoints"), get(tenant_webhooks::list).post(tenant_webhooks::create));
    r = both(
        r,
        &format!("{hooks}/endpoints/{{id}}"),
        get(tenant_webhooks::get).patch(tenant_webhooks::update).delete(tenant_webhooks::delete),
    );
    r = both(r, &format!("{hooks}/endpoints/{{id}}/rotate-secret"), post(tenant_webhooks::rotate_secret));
    r = both(r, &format!("{hooks}/endpoints/{{id}}/test"), post(tenant_webhooks::test));
    r = both(r, &format!("{hooks}/endpoints/{{id}}/replay"), post(tenant_webhooks::replay));
    r = both(r, &format!("{hooks}/deliveries"), get(tenant_webhooks::deliveries));
    r = both(r, &format!("{hooks}/deliveries/{{id}}"), get(tenant_webhooks::delivery));
    r = both(r, &format!("{hooks}/deliveries/{{id}}/redeliver"), post(tenant_webhooks::redeliver));
    r
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}

/// A small page for people who arrive at an API route in a browser (Stripe's redirects).
pub(crate) fn notice_page(title: &str, message: &str, link: (&str, &str)) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Remit</title>\
         <link rel=\"stylesheet\" href=\"/pkg/remit.css\"></head><body class=\"min-h-screen bg-gray-100 text-gray-900\">\
         <main class=\"mx-auto max-w-6xl px-4 py-8\"><section class=\"rounded-lg border border-gray-200 bg-white p-6 shadow-sm\">\
         <h1 class=\"text-2xl font-semibold text-gray-900\">{title}</h1>\
         <p class=\"mt-2 text-gray-600\" role=\"status\">{message}</p>\
         <p class=\"mt-4\"><a class=\"font-medium text-blue-600 hover:underline\" href=\"{href}\">{label}</a></p>\
         </section></main></body></html>",
        title = escape(title),
        message = escape(message),
        href = escape(link.0),
        label = escape(link.1),
    )
}
