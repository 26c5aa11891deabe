//! The Remit web server: axum routes, middleware, the Leptos app, the job worker, and (when no
//! Stripe key is configured) the in-process Stripe sandbox.

pub mod api;
mod demo;
pub mod middleware;
pub mod routes;
pub mod serve;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use startup::Application;
