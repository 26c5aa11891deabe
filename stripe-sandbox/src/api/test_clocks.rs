//! Stripe's test clocks (`/v1/test_helpers/test_clocks`): a customer made on a clock lives at
//! the clock's frozen time, and advancing the clock runs what falls due for its subscriptions
//! (trial notices, renewals, invoice finalisation, payment retries) in order, as Stripe does.
//!
//! Advancing is asynchronous, as at Stripe: the call answers with the clock `advancing`, the
//! sandbox's next tick does the work, and the clock is `ready` again (with
//! `test_helpers.test_clock.ready`) once it is done.

use serde_json::{Value, json};

use super::Call;
use crate::{
    flows, objects,
    state::State,
    wire::{ApiError, ApiResult, new_id},
};

const OBJECT: &str = flows::TEST_CLOCK;

/// Without subscriptions, a clock may move at most two years ahead in one step.
const MAX_ADVANCE_WITHOUT_SUBSCRIPTIONS: i64 = 2 * 365 * 86_400;

pub fn create(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let frozen_time = call.params.required_i64("frozen_time")?;
    let name = call.params.str("name")?;
    call.params.check()?;
    let clock = objects::test_clock(&new_id("clock_"), name, frozen_time, state.now());
    state.insert(call.account(), clock.clone());
    state.emit("test_helpers.test_clock.created", &clock, None, call.account());
    Ok(clock)
}

pub fn retrieve(state: &State, call: &Call<'_>, id: &str) -> ApiResult<Value> {
    state.retrieve(OBJECT, id, call.account(), "test_clock")
}

/// Deletes a clock and, as Stripe does, the customers on it (their subscriptions end with them).
pub fn delete(state: &mut State, call: &Call<'_>, id: &str) -> ApiResult<Value> {
    let clock = state.require(OBJECT, id, call.account(), "test_clock")?;
    for customer in state.all("customer", call.account()) {
        if customer["test_clock"] == id
            && let Some(customer_id) = customer["id"].as_str()
        {
            super::billing::remove_customer(state, call.account(), customer_id);
        }
    }
    state.delete(id);
    state.emit("test_helpers.test_clock.deleted", &clock, None, call.account());
    Ok(json!({ "id": id, "object": OBJECT, "deleted": true }))
}

/// Starts moving a clock to `frozen_time`; the work is done by the next tick (`flows::run_billing_clock`).
pub fn advance(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    let target = call.params.required_i64("frozen_time")?;
    call.params.check()?;
    let clock = state.require(OBJECT, id, call.account(), "test_clock")?;
    if clock["status"] != "ready" {
        return Err(ApiError::state(
            "test_clock_not_ready",
            "The test clock is still advancing; wait until its status is `ready` before advancing it again.",
        ));
    }
    let current = clock["frozen_time"].as_i64().unwrap_or_default();
    if target <= current {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            "The frozen_time must be after the test clock's current frozen time.",
            "frozen_time",
        ));
    }
    let limit = advance_limit(state, id, current);
    if target > limit {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            format!(
                "Cannot advance the test clock more than two intervals past the shortest subscription interval of its customers (at most to {limit}); without subscriptions, at most two years."
            ),
            "frozen_time",
        ));
    }
    let (clock, _) = state.update(id, |c| {
        c["status"] = json!("advancing");
        c["status_details"] = json!({ "advancing": { "target_frozen_time": target } });
    });
    state.emit("test_helpers.test_clock.advancing", &clock, None, call.account());
    Ok(clock)
}

/// How far a clock at `current` may move in one step: two intervals of the shortest subscription
/// on it, or two years without subscriptions.
fn advance_limit(state: &State, clock: &str, current: i64) -> i64 {
    let shortest = state
        .all("subscription", None)
        .into_iter()
        .filter(|s| state.clock_of(s).as_deref() == Some(clock) && s["status"] != "canceled")
        .map(|s| {
            let recurring = &s["items"]["data"][0]["price"]["recurring"];
            flows::interval_seconds(recurring["interval"].as_str().unwrap_or("month"))
                * recurring["interval_count"].as_i64().unwrap_or(1)
        })
        .min();
    current + shortest.map_or(MAX_ADVANCE_WITHOUT_SUBSCRIPTIONS, |interval| 2 * interval)
}
