//! Plain axum routes beside the Leptos pages and server functions.

pub mod download;
pub mod error;
pub mod health;
pub mod metrics;
pub mod outbox;
pub mod receipts;
pub mod reports;
pub mod stripe_webhook;
pub mod winnings;
