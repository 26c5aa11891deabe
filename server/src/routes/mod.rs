//! Plain axum routes beside the Leptos pages and server functions.

pub mod error;
pub mod health;
pub mod outbox;
pub mod stripe_webhook;
