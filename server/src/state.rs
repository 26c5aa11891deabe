//! What every handler can extract with `State`. Below the routes and middleware that use it,
//! so that `startup` (which assembles them) is the only module above them.

use axum::extract::FromRef;
use domain::{Services, stripe_webhooks::Intake};
use leptos::prelude::LeptosOptions;

/// Everything handlers can extract with `State`.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub services: Services,
    /// Stripe's events, stored in shared transactions.
    pub intake: Intake,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for Intake {
    fn from_ref(state: &AppState) -> Self {
        state.intake.clone()
    }
}

impl FromRef<AppState> for Services {
    fn from_ref(state: &AppState) -> Self {
        state.services.clone()
    }
}
