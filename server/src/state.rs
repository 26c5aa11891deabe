//! What every handler can extract with `State`. Below the routes and middleware that use it,
//! so that `startup` (which assembles them) is the only module above them.

use std::sync::Arc;

use axum::extract::FromRef;
use domain::{Services, stripe_webhooks::Intake};
use leptos::prelude::LeptosOptions;

/// Everything handlers can extract with `State`. axum clones the state for every request, so
/// it is one reference count: the parts sit behind an `Arc` (`state.services`).
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

/// What [`AppState`] holds.
pub struct Parts {
    pub leptos_options: LeptosOptions,
    pub services: Services,
    /// Stripe's events, stored in shared transactions.
    pub intake: Intake,
}

impl AppState {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
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
