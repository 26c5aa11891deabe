//! `POST /payments/webhooks/stripe`: the raw body and its signature go to the domain's intake.

use app::server::ClientIp;
use axum::{
    Extension, Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use domain::stripe_webhooks::{self, Intake};
use serde_json::json;

use super::error::ApiError;

/// Where Stripe's webhooks reach Remit (the sandbox's too, in development).
pub const STRIPE_WEBHOOK_PATH: &str = "/payments/webhooks/stripe";

pub async fn receive(
    State(intake): State<Intake>,
    Extension(ClientIp(client_ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    match intake.receive(&body, signature, client_ip).await {
        Ok(received) => (
            StatusCode::OK,
            Json(json!({ "received": true, "duplicate": received == stripe_webhooks::Received::Duplicate })),
        )
            .into_response(),
        // 400 for a bad signature or payload (Stripe does not retry); 5xx makes Stripe retry.
        Err(err) => ApiError(err).into_response(),
    }
}
