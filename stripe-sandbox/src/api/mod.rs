//! The REST API under `/v1`: one synchronous function per endpoint over the locked state.

pub(crate) mod billing;
mod checkout;
pub(crate) mod connect;
pub(crate) mod events;
mod payments;
pub(crate) mod test_clocks;
mod transfers;

use serde_json::Value;

use crate::{
    state::{State, paginate},
    wire::{ApiError, ApiResult, Params},
};

/// One API call, after authentication and parameter parsing.
pub struct Call<'a> {
    pub method: &'a str,
    /// The path after `/v1`, split on `/`.
    pub segments: Vec<&'a str>,
    /// `Stripe-Account`: the connected account the call acts as.
    pub account: Option<String>,
    pub params: Params,
}

impl Call<'_> {
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }
}

/// Routes a call to its endpoint.
pub fn dispatch(state: &mut State, mut call: Call<'_>) -> ApiResult<Value> {
    let segments = call.segments.clone();
    let method = call.method;
    let result = match (method, segments.as_slice()) {
        ("POST", ["accounts"]) => connect::create_account(state, &mut call),
        ("GET", ["accounts"]) => list(state, &mut call, "account", "/v1/accounts", |_, _| true),
        ("GET", ["accounts", id]) if state.access_revoked(id) => Err(ApiError::new(
            403,
            "invalid_request_error",
            Some("account_invalid"),
            format!(
                "The provided key does not have access to account '{id}' (or that account does not exist). \
                 Application access may have been revoked."
            ),
        )),
        ("GET", ["accounts", id]) => state.require("account", id, None, "account"),
        ("POST", ["accounts", id]) => connect::update_account(state, &mut call, id),
        ("DELETE", ["accounts", id]) => connect::delete_account(state, id),
        ("POST", ["accounts", id, "reject"]) => connect::reject_account(state, &mut call, id),
        ("POST", ["accounts", id, "login_links"]) => connect::create_login_link(state, id),
        ("POST", ["account_links"]) => connect::create_account_link(state, &mut call),
        ("POST", ["account_sessions"]) => connect::create_account_session(state, &mut call),

        ("POST", ["customers"]) => billing::create_customer(state, &mut call),
        ("GET", ["customers"]) => {
            let email = call.params.str("email")?;
            let test_clock = call.params.str("test_clock")?;
            list(state, &mut call, "customer", "/v1/customers", move |c, _| {
                email.as_ref().is_none_or(|e| c["email"] == *e)
                    && test_clock.as_ref().is_none_or(|t| c["test_clock"] == *t)
            })
        }
        ("GET", ["customers", id]) => state.retrieve("customer", id, call.account(), "id"),
        ("POST", ["customers", id]) => billing::update_customer(state, &mut call, id),
        ("DELETE", ["customers", id]) => billing::delete_customer(state, &call, id),
        ("GET", ["customers", id, "payment_methods"]) => {
            state.require("customer", id, call.account(), "customer")?;
            call.params.one_of("type", &["card"])?;
            let customer = id.to_string();
            list(state, &mut call, "payment_method", &format!("/v1/customers/{id}/payment_methods"), move |pm, _| {
                pm["customer"] == *customer
            })
        }

        ("POST", ["products"]) => billing::create_product(state, &mut call),
        ("GET", ["products"]) => {
            let active = call.params.bool("active")?;
            list(state, &mut call, "product", "/v1/products", move |p, _| active.is_none_or(|a| p["active"] == a))
        }
        ("GET", ["products", id]) => state.require("product", id, call.account(), "id"),
        ("POST", ["products", id]) => billing::update_product(state, &mut call, id),

        ("POST", ["prices"]) => billing::create_price(state, &mut call),
        ("GET", ["prices"]) => {
            let product = call.params.str("product")?;
            let active = call.params.bool("active")?;
            list(state, &mut call, "price", "/v1/prices", move |p, _| {
                product.as_ref().is_none_or(|x| p["product"] == *x) && active.is_none_or(|a| p["active"] == a)
            })
        }
        ("GET", ["prices", id]) => state.require("price", id, call.account(), "price"),
        ("POST", ["prices", id]) => billing::update_price(state, &mut call, id),

        ("POST", ["checkout", "sessions"]) => checkout::create(state, &mut call),
        ("GET", ["checkout", "sessions"]) => {
            let payment_intent = call.params.str("payment_intent")?;
            let customer = call.params.str("customer")?;
            let status = call.params.str("status")?;
            list(state, &mut call, "checkout.session", "/v1/checkout/sessions", move |s, _| {
                payment_intent.as_ref().is_none_or(|p| s["payment_intent"] == *p)
                    && customer.as_ref().is_none_or(|c| s["customer"] == *c)
                    && status.as_ref().is_none_or(|x| s["status"] == *x)
            })
        }
        ("GET", ["checkout", "sessions", id]) => {
            state.require("checkout.session", id, call.account(), "session").map(|s| crate::flows::public(&s))
        }
        ("POST", ["checkout", "sessions", id, "expire"]) => {
            state.require("checkout.session", id, call.account(), "session")?;
            crate::flows::expire_session(state, id)
        }
        ("GET", ["checkout", "sessions", id, "line_items"]) => checkout::line_items(state, &mut call, id),

        ("GET", ["payment_intents"]) => {
            let customer = call.params.str("customer")?;
            list(state, &mut call, "payment_intent", "/v1/payment_intents", move |p, _| {
                customer.as_ref().is_none_or(|c| p["customer"] == *c)
            })
        }
        ("GET", ["payment_intents", id]) => state.require("payment_intent", id, call.account(), "intent"),
        ("GET", ["charges"]) => {
            let pi = call.params.str("payment_intent")?;
            list(state, &mut call, "charge", "/v1/charges", move |c, _| {
                pi.as_ref().is_none_or(|p| c["payment_intent"] == *p)
            })
        }
        ("GET", ["charges", id]) => state.require("charge", id, call.account(), "charge"),
        ("GET", ["payment_methods"]) => {
            let customer = call.params.str("customer")?;
            call.params.one_of("type", &["card"])?;
            list(state, &mut call, "payment_method", "/v1/payment_methods", move |pm, _| {
                customer.as_ref().is_none_or(|c| pm["customer"] == *c)
            })
        }
        ("GET", ["payment_methods", id]) => state.require("payment_method", id, call.account(), "payment_method"),
        ("POST", ["payment_methods", id, "attach"]) => payments::attach(state, &mut call, id),
        ("POST", ["payment_methods", id, "detach"]) => payments::detach(state, id),
        ("POST", ["setup_intents"]) => payments::create_setup_intent(state, &mut call),
        ("GET", ["setup_intents", id]) => state.require("setup_intent", id, call.account(), "intent"),
        ("POST", ["refunds"]) => payments::create_refund(state, &mut call),
        ("GET", ["refunds"]) => {
            let charge = call.params.str("charge")?;
            let pi = call.params.str("payment_intent")?;
            list(state, &mut call, "refund", "/v1/refunds", move |r, _| {
                charge.as_ref().is_none_or(|c| r["charge"] == *c)
                    && pi.as_ref().is_none_or(|p| r["payment_intent"] == *p)
            })
        }
        ("GET", ["refunds", id]) => state.require("refund", id, call.account(), "refund"),
        ("GET", ["balance_transactions"]) => {
            let kind = call.params.str("type")?;
            let source = call.params.str("source")?;
            let created = created_range(&mut call.params)?;
            list(state, &mut call, "balance_transaction", "/v1/balance_transactions", move |b, _| {
                let at = b["created"].as_i64().unwrap_or(0);
                kind.as_ref().is_none_or(|k| b["type"] == *k)
                    && source.as_ref().is_none_or(|s| b["source"] == *s)
                    && at >= created.0
                    && at <= created.1
            })
        }
        ("GET", ["balance_transactions", id]) => state.require("balance_transaction", id, call.account(), "id"),
        ("GET", ["payouts"]) => {
            let status = call.params.str("status")?;
            list(state, &mut call, "payout", "/v1/payouts", move |p, _| {
                status.as_ref().is_none_or(|s| p["status"] == *s)
            })
        }
        ("POST", ["payouts"]) => transfers::payout(state, &mut call),
        ("GET", ["payouts", id]) => state.require("payout", id, call.account(), "payout"),
        ("GET", ["disputes"]) => {
            let charge = call.params.str("charge")?;
            let pi = call.params.str("payment_intent")?;
            list(state, &mut call, "dispute", "/v1/disputes", move |d, _| {
                charge.as_ref().is_none_or(|c| d["charge"] == *c)
                    && pi.as_ref().is_none_or(|p| d["payment_intent"] == *p)
            })
        }
        ("GET", ["disputes", id]) => state.require("dispute", id, call.account(), "dispute"),
        ("GET", ["balance"]) => Ok(transfers::balance(state, &call)),
        ("POST", ["transfers"]) => transfers::create(state, &mut call),
        ("GET", ["transfers"]) => {
            let destination = call.params.str("destination")?;
            let group = call.params.str("transfer_group")?;
            list(state, &mut call, "transfer", "/v1/transfers", move |t, _| {
                destination.as_ref().is_none_or(|d| t["destination"] == *d)
                    && group.as_ref().is_none_or(|g| t["transfer_group"] == *g)
            })
        }
        ("GET", ["transfers", id]) => state.require("transfer", id, call.account(), "id"),
        ("POST", ["transfers", id, "reversals"]) => transfers::reverse(state, &mut call, id),
        ("GET", ["transfers", id, "reversals"]) => transfers::nested(state, &mut call, "transfer", id, "reversals"),
        ("GET", ["application_fees"]) => {
            let charge = call.params.str("charge")?;
            list(state, &mut call, "application_fee", "/v1/application_fees", move |f, _| {
                charge.as_ref().is_none_or(|c| f["charge"] == *c || f["originating_transaction"] == *c)
            })
        }
        ("GET", ["application_fees", id]) => state.require("application_fee", id, call.account(), "id"),
        ("POST", ["application_fees", id, "refunds"]) => transfers::refund_fee(state, &mut call, id),
        ("GET", ["application_fees", id, "refunds"]) => {
            transfers::nested(state, &mut call, "application_fee", id, "refunds")
        }

        ("POST", ["subscriptions", id, "resume"]) => billing::resume_subscription(state, &mut call, id),
        ("POST", ["subscriptions"]) => billing::create_subscription(state, &mut call),
        ("GET", ["subscriptions"]) => {
            let customer = call.params.str("customer")?;
            let price = call.params.str("price")?;
            let status = call.params.one_of(
                "status",
                &["active", "all", "canceled", "ended", "incomplete", "past_due", "trialing", "unpaid"],
            )?;
            list(state, &mut call, "subscription", "/v1/subscriptions", move |s, _| {
                customer.as_ref().is_none_or(|c| s["customer"] == *c)
                    && price.as_ref().is_none_or(|p| s["items"]["data"][0]["price"]["id"] == *p)
                    && match status.as_deref() {
                        None => s["status"] != "canceled",
                        Some("all") => true,
                        Some(st) => s["status"] == st,
                    }
            })
        }
        ("GET", ["subscriptions", id]) => state.require("subscription", id, call.account(), "subscription_exposed_id"),
        ("POST", ["subscriptions", id]) => billing::update_subscription(state, &mut call, id),
        ("DELETE", ["subscriptions", id]) => billing::cancel_subscription(state, &mut call, id),
        ("GET", ["invoices"]) => {
            let customer = call.params.str("customer")?;
            let subscription = call.params.str("subscription")?;
            let status = call.params.one_of("status", &["draft", "open", "paid", "uncollectible", "void"])?;
            list(state, &mut call, "invoice", "/v1/invoices", move |i, _| {
                customer.as_ref().is_none_or(|c| i["customer"] == *c)
                    && subscription.as_ref().is_none_or(|s| i["parent"]["subscription_details"]["subscription"] == *s)
                    && status.as_ref().is_none_or(|s| i["status"] == *s)
            })
        }
        ("GET", ["invoices", id]) => state.require("invoice", id, call.account(), "invoice"),
        ("POST", ["invoices", id, "pay"]) => {
            state.require("invoice", id, call.account(), "invoice")?;
            crate::flows::pay_invoice(state, id)
        }

        ("POST", ["test_helpers", "test_clocks"]) => test_clocks::create(state, &mut call),
        ("GET", ["test_helpers", "test_clocks"]) => {
            list(state, &mut call, "test_helpers.test_clock", "/v1/test_helpers/test_clocks", |_, _| true)
        }
        ("GET", ["test_helpers", "test_clocks", id]) => test_clocks::retrieve(state, &call, id),
        ("DELETE", ["test_helpers", "test_clocks", id]) => test_clocks::delete(state, &call, id),
        ("POST", ["test_helpers", "test_clocks", id, "advance"]) => test_clocks::advance(state, &mut call, id),

        ("GET", ["events"]) => events::list(state, &mut call),
        ("GET", ["events", id]) => state.require("event", id, call.account(), "id"),
        ("POST", ["webhook_endpoints"]) => events::create_endpoint(state, &mut call),
        ("GET", ["webhook_endpoints"]) => {
            list(state, &mut call, "webhook_endpoint", "/v1/webhook_endpoints", |_, _| true)
        }
        ("GET", ["webhook_endpoints", id]) => state.require("webhook_endpoint", id, call.account(), "webhook_endpoint"),
        ("POST", ["webhook_endpoints", id]) => events::update_endpoint(state, &mut call, id),
        ("DELETE", ["webhook_endpoints", id]) => events::delete_endpoint(state, &call, id),

        _ => Err(ApiError::unrecognised_url(method, &format!("/v1/{}", segments.join("/")))),
    }?;
    call.params.finish()?;
    Ok(result)
}

/// Starts a one-item subscription on the platform (for triggers).
pub fn start_subscription_for_trigger(
    state: &mut State,
    customer: &str,
    price: &Value,
    trial_days: Option<i64>,
) -> Value {
    billing::start_subscription(
        state,
        None,
        billing::NewSubscription {
            customer,
            price,
            quantity: 1,
            trial_days,
            default_payment_method: None,
            metadata: serde_json::Map::new(),
        },
    )
}

/// A list endpoint: every visible object of `object` that passes `keep`, paginated.
/// A list's `created` filter (`created=<t>` or `created[gte|gt|lte|lt]=<t>`) as an inclusive
/// range; everything without one.
pub(crate) fn created_range(params: &mut crate::wire::Params) -> ApiResult<(i64, i64)> {
    let mut created = (i64::MIN, i64::MAX);
    if params.has("created") {
        match params.object("created") {
            Ok(Some(mut range)) => {
                if let Some(v) = range.i64("gte")? {
                    created.0 = v;
                }
                if let Some(v) = range.i64("gt")? {
                    created.0 = v + 1;
                }
                if let Some(v) = range.i64("lte")? {
                    created.1 = v;
                }
                if let Some(v) = range.i64("lt")? {
                    created.1 = v - 1;
                }
                range.finish()?;
            }
            _ => {
                let exact = params.required_i64("created")?;
                created = (exact, exact);
            }
        }
    }
    Ok(created)
}

fn list(
    state: &State,
    call: &mut Call<'_>,
    object: &str,
    url: &str,
    keep: impl Fn(&Value, &State) -> bool,
) -> ApiResult<Value> {
    let items: Vec<Value> = state
        .all(object, call.account())
        .into_iter()
        .filter(|v| keep(v, state))
        .map(|v| crate::flows::public(&v))
        .collect();
    paginate(items, &mut call.params, url)
}
