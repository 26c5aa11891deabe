//! Customers, products, prices and subscriptions.

use serde_json::{Value, json};

use super::Call;
use crate::{
    flows, objects,
    state::State,
    wire::{ApiError, ApiResult, merge_metadata, new_id},
};

pub fn create_customer(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let email = p.str("email")?;
    let name = p.str("name")?;
    let description = p.str("description")?;
    let metadata = p.metadata()?.unwrap_or_default();
    let payment_method = p.str("payment_method")?;
    let test_clock = p.str("test_clock")?;
    let mut default_pm = None;
    if let Some(mut settings) = p.object("invoice_settings")? {
        default_pm = settings.str("default_payment_method")?;
        settings.finish()?;
    }
    p.check()?;
    if let Some(pm) = payment_method.as_deref().or(default_pm.as_deref()) {
        state.referenced("payment_method", pm, call.account.as_deref(), "payment_method")?;
    }
    if let Some(clock) = &test_clock {
        state.referenced("test_helpers.test_clock", clock, call.account.as_deref(), "test_clock")?;
    }
    let id = new_id("cus_");
    let created = state.time_on(test_clock.as_deref());
    let mut customer = objects::customer(&id, email, name, metadata, created);
    customer["description"] = json!(description);
    customer["test_clock"] = json!(test_clock);
    state.insert(call.account(), customer.clone());
    state.emit("customer.created", &customer, None, call.account());
    if let Some(pm) = payment_method {
        flows::attach_payment_method(state, &pm, &id, default_pm.is_none())?;
    }
    if let Some(pm) = default_pm {
        flows::attach_payment_method(state, &pm, &id, true)?;
    }
    state.require("customer", &id, call.account(), "id")
}

pub fn update_customer(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    state.require("customer", id, call.account(), "id")?;
    let p = &mut call.params;
    let email = p.str_or_unset("email")?;
    let name = p.str_or_unset("name")?;
    let description = p.str_or_unset("description")?;
    let metadata = p.metadata()?;
    let mut default_pm = None;
    if let Some(mut settings) = p.object("invoice_settings")? {
        default_pm = settings.str_or_unset("default_payment_method")?;
        settings.finish()?;
    }
    p.check()?;
    if let Some(Some(pm)) = &default_pm {
        let pm = state.referenced(
            "payment_method",
            pm,
            call.account.as_deref(),
            "invoice_settings[default_payment_method]",
        )?;
        if pm["customer"] != id {
            return Err(ApiError::invalid(
                "resource_missing",
                format!(
                    "No such PaymentMethod: '{}'; it is not attached to this customer.",
                    pm["id"].as_str().unwrap_or("")
                ),
                "invoice_settings[default_payment_method]",
            ));
        }
    }
    let (customer, previous) = state.update(id, |c| {
        if let Some(e) = email {
            c["email"] = json!(e);
        }
        if let Some(n) = name {
            c["name"] = json!(n);
        }
        if let Some(d) = description {
            c["description"] = json!(d);
        }
        if let Some(m) = metadata {
            merge_metadata(c, m);
        }
        if let Some(pm) = &default_pm {
            c["invoice_settings"]["default_payment_method"] = json!(pm);
        }
    });
    state.emit("customer.updated", &customer, Some(previous), call.account());
    if default_pm.as_ref().is_some_and(Option::is_some) {
        retry_open_invoices(state, id);
    }
    Ok(customer)
}

/// With a new default payment method, the open invoices of past-due subscriptions are tried
/// again at once (as Stripe does when the customer updates their card), those the new card
/// would pay: a subscription with a card of its own keeps being charged to that one.
pub fn retry_open_invoices(state: &mut State, customer: &str) {
    let open: Vec<String> = state
        .all("invoice", state.owner(customer).as_deref())
        .into_iter()
        .filter(|i| i["customer"] == customer && i["status"] == "open")
        .filter(|i| {
            let subscription = i["parent"]["subscription_details"]["subscription"].as_str();
            subscription.and_then(|s| state.any(s)).is_none_or(|s| s["default_payment_method"].is_null())
        })
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect();
    for invoice in open {
        let _ = flows::pay_invoice(state, &invoice);
    }
}

pub fn delete_customer(state: &mut State, call: &Call<'_>, id: &str) -> ApiResult<Value> {
    state.require("customer", id, call.account(), "id")?;
    remove_customer(state, call.account(), id);
    Ok(json!({ "id": id, "object": "customer", "deleted": true }))
}

/// Deletes a customer: its subscriptions end, and retrieving it answers that it was deleted.
pub fn remove_customer(state: &mut State, account: Option<&str>, id: &str) {
    for sub in state.all("subscription", account) {
        if sub["customer"] == id && sub["status"] != "canceled" {
            flows::cancel_subscription(state, sub["id"].as_str().unwrap_or_default());
        }
    }
    if let Some(customer) = state.delete(id) {
        state.emit("customer.deleted", &customer, None, account);
    }
}

pub fn create_product(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let name = p.required_str("name")?;
    let description = p.str("description")?;
    let metadata = p.metadata()?.unwrap_or_default();
    let id = p.str("id")?.unwrap_or_else(|| new_id("prod_"));
    let active = p.bool("active")?;
    p.check()?;
    if state.any(&id).is_some() {
        return Err(ApiError::invalid("resource_already_exists", format!("Product already exists: {id}"), "id"));
    }
    let mut product = objects::product(&id, &name, description, metadata, state.now());
    if let Some(active) = active {
        product["active"] = json!(active);
    }
    state.insert(call.account(), product.clone());
    state.emit("product.created", &product, None, call.account());
    Ok(product)
}

pub fn update_product(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    state.require("product", id, call.account(), "id")?;
    let p = &mut call.params;
    let name = p.str("name")?;
    let description = p.str_or_unset("description")?;
    let active = p.bool("active")?;
    let default_price = p.str("default_price")?;
    let metadata = p.metadata()?;
    p.check()?;
    let now = state.now();
    let (product, previous) = state.update(id, |pr| {
        if let Some(n) = name {
            pr["name"] = json!(n);
        }
        if let Some(d) = description {
            pr["description"] = json!(d);
        }
        if let Some(a) = active {
            pr["active"] = json!(a);
        }
        if let Some(dp) = default_price {
            pr["default_price"] = json!(dp);
        }
        if let Some(m) = metadata {
            merge_metadata(pr, m);
        }
        pr["updated"] = json!(now);
    });
    state.emit("product.updated", &product, Some(previous), call.account());
    Ok(product)
}

pub fn create_price(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let currency = p.required_str("currency")?.to_lowercase();
    let unit_amount = p.required_i64("unit_amount")?;
    if unit_amount < 0 {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            "This value must be greater than or equal to 0.",
            "unit_amount",
        ));
    }
    let product = p.str("product")?;
    let nickname = p.str("nickname")?;
    let metadata = p.metadata()?.unwrap_or_default();
    let recurring = match p.object("recurring")? {
        None => None,
        Some(mut r) => {
            let interval = r
                .one_of("interval", &["day", "week", "month", "year"])?
                .ok_or_else(|| ApiError::missing("recurring[interval]"))?;
            let count = r.i64("interval_count")?.unwrap_or(1);
            let trial = r.i64("trial_period_days")?;
            r.one_of("usage_type", &["licensed", "metered"])?;
            r.finish()?;
            Some((interval, count, trial))
        }
    };
    let product_data = match p.object("product_data")? {
        None => None,
        Some(mut d) => {
            let name = d.required_str("name")?;
            let meta = d.metadata()?.unwrap_or_default();
            d.finish()?;
            Some((name, meta))
        }
    };
    p.check()?;
    if currency.len() != 3 {
        return Err(ApiError::invalid("parameter_invalid_string", format!("Invalid currency: {currency}"), "currency"));
    }
    let product = match (product, product_data) {
        (Some(id), None) => {
            state.referenced("product", &id, call.account(), "product")?;
            id
        }
        (None, Some((name, meta))) => {
            let id = new_id("prod_");
            let product = objects::product(&id, &name, None, meta, state.now());
            state.insert(call.account(), product.clone());
            state.emit("product.created", &product, None, call.account());
            id
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::state(
                "parameter_invalid_string",
                "You may only specify one of these parameters: product, product_data.",
            ));
        }
        (None, None) => return Err(ApiError::missing("product")),
    };
    let price = objects::price(objects::NewPrice {
        id: new_id("price_"),
        product,
        currency,
        unit_amount,
        recurring,
        nickname,
        metadata,
        created: state.now(),
    });
    state.insert(call.account(), price.clone());
    state.emit("price.created", &price, None, call.account());
    Ok(price)
}

pub fn update_price(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    state.require("price", id, call.account(), "price")?;
    let p = &mut call.params;
    let active = p.bool("active")?;
    let nickname = p.str_or_unset("nickname")?;
    let metadata = p.metadata()?;
    p.check()?;
    let (price, previous) = state.update(id, |pr| {
        if let Some(a) = active {
            pr["active"] = json!(a);
        }
        if let Some(n) = nickname {
            pr["nickname"] = json!(n);
        }
        if let Some(m) = metadata {
            merge_metadata(pr, m);
        }
    });
    state.emit("price.updated", &price, Some(previous), call.account());
    Ok(price)
}

/// Reads `items[0][price]` (one item; Remit's plans have one price each).
fn read_items(call: &mut Call<'_>, state: &State) -> ApiResult<Option<(Value, i64, Option<String>)>> {
    let items = call.params.objects("items")?;
    if items.len() > 1 {
        return Err(ApiError::invalid(
            "parameter_invalid_array",
            "The sandbox supports one subscription item.",
            "items",
        ));
    }
    let Some(mut item) = items.into_iter().next() else { return Ok(None) };
    let existing = item.str("id")?;
    let price_id = item.required_str("price")?;
    let quantity = item.i64("quantity")?.unwrap_or(1);
    item.finish()?;
    let price = state.referenced("price", &price_id, call.account(), "items[0][price]")?;
    if price["type"] != "recurring" {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            format!(
                "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`: {price_id}"
            ),
            "items[0][price]",
        ));
    }
    Ok(Some((price, quantity, existing)))
}

pub fn create_subscription(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let customer_id = call.params.required_str("customer")?;
    let default_pm = call.params.str("default_payment_method")?;
    let trial_days = call.params.i64("trial_period_days")?;
    let metadata = call.params.metadata()?.unwrap_or_default();
    let mut missing_payment_method = None;
    if let Some(mut settings) = call.params.object("trial_settings")? {
        if let Some(mut end) = settings.object("end_behavior")? {
            missing_payment_method = end.one_of("missing_payment_method", &["cancel", "create_invoice", "pause"])?;
            end.finish()?;
        }
        settings.finish()?;
    }
    call.params.one_of(
        "payment_behavior",
        &["allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete"],
    )?;
    call.params.one_of("collection_method", &["charge_automatically"])?;
    let (price, quantity, _) = read_items(call, state)?.ok_or_else(|| ApiError::missing("items"))?;
    call.params.check()?;
    let customer = state.referenced("customer", &customer_id, call.account(), "customer")?;
    if let Some(pm) = &default_pm {
        let pm = state.referenced("payment_method", pm, call.account(), "default_payment_method")?;
        if pm["customer"] != customer_id {
            return Err(ApiError::invalid(
                "resource_missing",
                "The payment method must be attached to the customer.",
                "default_payment_method",
            ));
        }
    }
    let trial_days = trial_days.or_else(|| price["recurring"]["trial_period_days"].as_i64());
    let has_pm = default_pm.is_some() || customer["invoice_settings"]["default_payment_method"].is_string();
    if trial_days.is_none() && !has_pm && price["unit_amount"].as_i64().unwrap_or(0) > 0 {
        return Err(ApiError::state(
            "resource_missing",
            "This customer has no attached payment source or default payment method. Please consider adding a default payment method.",
        ));
    }
    let new = NewSubscription {
        customer: &customer_id,
        price: &price,
        quantity,
        trial_days,
        default_payment_method: default_pm,
        metadata,
    };
    let subscription = start_subscription(state, call.account(), new);
    match missing_payment_method {
        Some(behaviour) => {
            let id = subscription["id"].as_str().unwrap_or_default().to_owned();
            Ok(state
                .update(&id, |s| s["trial_settings"]["end_behavior"]["missing_payment_method"] = json!(behaviour))
                .0)
        }
        None => Ok(subscription),
    }
}

/// `POST /v1/subscriptions/{id}/resume`: a paused subscription starts a new period now, billed
/// at once.
pub fn resume_subscription(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    let existing = state.require("subscription", id, call.account(), "subscription_exposed_id")?;
    call.params.one_of("billing_cycle_anchor", &["now", "unchanged"])?;
    call.params.one_of("proration_behavior", &["always_invoice", "create_prorations", "none"])?;
    call.params.check()?;
    if existing["status"] != "paused" {
        return Err(ApiError::state(
            "subscription_not_paused",
            format!("Subscription {id} is not paused; only a paused subscription can be resumed."),
        ));
    }
    let now = state.time_of(&existing);
    let recurring = &existing["items"]["data"][0]["price"]["recurring"];
    let end = now
        + flows::interval_seconds(recurring["interval"].as_str().unwrap_or("month"))
            * recurring["interval_count"].as_i64().unwrap_or(1);
    let (resumed, previous) = state.update(id, |s| {
        s["status"] = json!("active");
        s["billing_cycle_anchor"] = json!(now);
        if let Some(items) = s["items"]["data"].as_array_mut() {
            for item in items {
                item["current_period_start"] = json!(now);
                item["current_period_end"] = json!(end);
            }
        }
    });
    state.emit("customer.subscription.resumed", &resumed, Some(previous.clone()), call.account());
    state.emit("customer.subscription.updated", &resumed, Some(previous), call.account());
    let invoice = flows::invoice_subscription(state, id, "subscription_cycle")?;
    flows::finalize_and_charge(state, &invoice);
    state.require("subscription", id, call.account(), "subscription_exposed_id")
}

pub struct NewSubscription<'a> {
    pub customer: &'a str,
    pub price: &'a Value,
    pub quantity: i64,
    pub trial_days: Option<i64>,
    pub default_payment_method: Option<String>,
    pub metadata: serde_json::Map<String, Value>,
}

/// Creates a subscription (trialing or active after its first invoice) with its first invoice.
pub fn start_subscription(state: &mut State, account: Option<&str>, new: NewSubscription<'_>) -> Value {
    let NewSubscription { customer, price, quantity, trial_days, default_payment_method, metadata } = new;
    let test_clock = state.any(customer).map(|c| c["test_clock"].clone()).unwrap_or(Value::Null);
    let now = state.time_on(test_clock.as_str());
    let id = new_id("sub_");
    let trial_end = trial_days.filter(|d| *d > 0).map(|d| now + d * 86_400);
    let interval = price["recurring"]["interval"].as_str().unwrap_or("month");
    let count = price["recurring"]["interval_count"].as_i64().unwrap_or(1);
    let period_end = trial_end.unwrap_or(now + flows::interval_seconds(interval) * count);
    let item = objects::subscription_item(&new_id("si_"), &id, price, quantity, (now, period_end), now);
    let subscription = json!({
        "id": id,
        "object": "subscription",
        "application": null,
        "application_fee_percent": null,
        "automatic_tax": { "enabled": false, "liability": null, "disabled_reason": null },
        "billing_cycle_anchor": period_end,
        "billing_mode": { "type": "classic", "flexible": null, "updated_at": null },
        "billing_schedules": [],
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": { "comment": null, "feedback": null, "reason": null },
        "collection_method": "charge_automatically",
        "created": now,
        "currency": price["currency"],
        "customer": customer,
        "default_payment_method": default_payment_method,
        "description": null,
        "discounts": [],
        "ended_at": null,
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": { "object": "list", "data": [item], "has_more": false, "url": format!("/v1/subscription_items?subscription={id}") },
        "latest_invoice": null,
        "livemode": false,
        "metadata": metadata,
        "pending_setup_intent": null,
        "schedule": null,
        "start_date": now,
        "status": if trial_end.is_some() { "trialing" } else { "incomplete" },
        "test_clock": test_clock,
        "trial_settings": { "end_behavior": { "missing_payment_method": "create_invoice" } },
        "pause_collection": null,
        "trial_end": trial_end,
        "trial_start": trial_end.map(|_| now),
    });
    state.insert(account, subscription.clone());
    state.emit("customer.subscription.created", &subscription, None, account);
    if let Err(err) = flows::invoice_subscription(state, &id, "subscription_create") {
        tracing::warn!(subscription = %id, error = %err.message, "first invoice failed");
    }
    let status = state.any(&id).map(|s| s["status"].clone()).unwrap_or_default();
    if status == "incomplete" {
        // The first payment failed: the subscription waits for a working payment method.
        let invoice_paid = state
            .any(&id)
            .and_then(|s| s["latest_invoice"].as_str())
            .and_then(|i| state.any(i))
            .is_some_and(|i| i["status"] == "paid");
        if invoice_paid {
            flows::set_subscription_status(state, &id, "active");
        }
    }
    state.any(&id).cloned().unwrap_or(subscription)
}

pub fn update_subscription(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    let existing = state.require("subscription", id, call.account(), "subscription_exposed_id")?;
    let cancel_at_period_end = call.params.bool("cancel_at_period_end")?;
    let default_pm = call.params.str_or_unset("default_payment_method")?;
    let metadata = call.params.metadata()?;
    call.params.one_of("proration_behavior", &["always_invoice", "create_prorations", "none"])?;
    call.params.one_of(
        "payment_behavior",
        &["allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete"],
    )?;
    let new_item = read_items(call, state)?;
    call.params.check()?;
    if existing["status"] == "canceled" {
        return Err(ApiError::state(
            "resource_missing",
            "A canceled subscription can only update its cancellation_details and metadata.",
        ));
    }
    if let Some(Some(pm)) = &default_pm {
        state.referenced("payment_method", pm, call.account(), "default_payment_method")?;
    }
    let now = state.time_of(&existing);
    let (subscription, previous) = state.update(id, |s| {
        if let Some(c) = cancel_at_period_end {
            s["cancel_at_period_end"] = json!(c);
            s["cancel_at"] = if c { s["items"]["data"][0]["current_period_end"].clone() } else { Value::Null };
            s["canceled_at"] = if c { json!(now) } else { Value::Null };
            s["cancellation_details"]["reason"] = if c { json!("cancellation_requested") } else { Value::Null };
        }
        if let Some(pm) = &default_pm {
            s["default_payment_method"] = json!(pm);
        }
        if let Some(m) = metadata {
            merge_metadata(s, m);
        }
        if let Some((price, quantity, _)) = &new_item {
            let item = &mut s["items"]["data"][0];
            item["price"] = price.clone();
            item["plan"] = objects::plan_from_price(price);
            item["quantity"] = json!(quantity);
            s["currency"] = price["currency"].clone();
        }
    });
    state.emit("customer.subscription.updated", &subscription, Some(previous), call.account());
    Ok(subscription)
}

pub fn cancel_subscription(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    let existing = state.require("subscription", id, call.account(), "subscription_exposed_id")?;
    call.params.bool("invoice_now")?;
    call.params.bool("prorate")?;
    call.params.check()?;
    if existing["status"] == "canceled" {
        return Err(ApiError::state("resource_missing", format!("No such subscription: '{id}'")));
    }
    Ok(flows::cancel_subscription(state, id))
}
