//! Checkout sessions: payment, subscription and setup modes.

use serde_json::{Map, Value, json};

use super::Call;
use crate::{
    flows, objects,
    state::{State, paginate},
    wire::{ApiError, ApiResult, Params, new_id},
};

/// Stripe's smallest charge, in minor units, for the common currencies.
fn minimum_amount(currency: &str) -> i64 {
    match currency {
        "jpy" => 50,
        "gbp" => 30,
        _ => 50,
    }
}

struct LineItem {
    price: Value,
    product: Value,
    quantity: i64,
    /// Prices made from `price_data` are created with the session.
    created: bool,
}

fn read_line_item(
    state: &State,
    account: Option<&str>,
    index: usize,
    mut item: Params,
    now: i64,
) -> ApiResult<LineItem> {
    // Errors name the parameter as sent: `line_items[0][price]`.
    let at = |field: &str| format!("line_items[{index}]{field}");
    let quantity = item.i64("quantity")?.unwrap_or(1);
    if quantity < 1 {
        return Err(ApiError::invalid("parameter_invalid_integer", "Quantity must be at least 1.", at("[quantity]")));
    }
    let price_id = item.str("price")?;
    let price_data = item.object("price_data")?;
    item.finish()?;
    match (price_id, price_data) {
        (Some(id), None) => {
            let price = state.referenced("price", &id, account, &at("[price]"))?;
            if price["active"] != true {
                return Err(ApiError::invalid(
                    "price_inactive",
                    format!("The price `{id}` is not available because it is inactive."),
                    at("[price]"),
                ));
            }
            let product = state.any(price["product"].as_str().unwrap_or_default()).cloned().unwrap_or(Value::Null);
            Ok(LineItem { price, product, quantity, created: false })
        }
        (None, Some(mut data)) => {
            let currency = data.required_str("currency")?.to_lowercase();
            let unit_amount = data.required_i64("unit_amount")?;
            if unit_amount < 0 {
                return Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    "This value must be greater than or equal to 0.",
                    at("[price_data][unit_amount]"),
                ));
            }
            let recurring = match data.object("recurring")? {
                None => None,
                Some(mut r) => {
                    let interval = r
                        .one_of("interval", &["day", "week", "month", "year"])?
                        .ok_or_else(|| ApiError::missing(&at("[price_data][recurring][interval]")))?;
                    let count = r.i64("interval_count")?.unwrap_or(1);
                    r.finish()?;
                    Some((interval, count, None))
                }
            };
            let product = match (data.str("product")?, data.object("product_data")?) {
                (Some(id), None) => state.referenced("product", &id, account, &at("[price_data][product]"))?,
                (None, Some(mut pd)) => {
                    let name = pd.required_str("name")?;
                    let description = pd.str("description")?;
                    let meta = pd.metadata()?.unwrap_or_default();
                    pd.finish()?;
                    objects::product(&new_id("prod_"), &name, description, meta, now)
                }
                _ => return Err(ApiError::missing(&at("[price_data][product_data]"))),
            };
            data.finish()?;
            let price = objects::price(objects::NewPrice {
                id: new_id("price_"),
                product: product["id"].as_str().unwrap_or_default().to_owned(),
                currency,
                unit_amount,
                recurring,
                nickname: None,
                metadata: Map::new(),
                created: now,
            });
            Ok(LineItem { price, product, quantity, created: true })
        }
        (Some(_), Some(_)) => Err(ApiError::state(
            "parameter_invalid_string",
            "You may only specify one of these parameters: price, price_data.",
        )),
        (None, None) => Err(ApiError::missing(&at("[price]"))),
    }
}

pub fn create(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let account = call.account.clone();
    let now = state.now();
    let p = &mut call.params;
    let mode = p.one_of("mode", &["payment", "subscription", "setup"])?.ok_or_else(|| ApiError::missing("mode"))?;
    let success_url = p.str("success_url")?;
    let cancel_url = p.str("cancel_url")?;
    let customer = p.str("customer")?;
    let customer_email = p.str("customer_email")?;
    let client_reference_id = p.str("client_reference_id")?;
    let metadata = p.metadata()?.unwrap_or_default();
    let expires_at = p.i64("expires_at")?;
    let currency = p.str("currency")?.map(|c| c.to_lowercase());
    p.strings("payment_method_types")?;
    p.str("locale")?;
    p.one_of("billing_address_collection", &["auto", "required"])?;
    p.bool("allow_promotion_codes")?;
    // The values of the API version the sandbox speaks; it serves the hosted page only.
    if let Some(mode) = p.one_of("ui_mode", &["elements", "embedded_page", "form", "hosted_page"])?
        && mode != "hosted_page"
    {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            format!("The sandbox serves Checkout as a hosted page only (ui_mode=hosted_page), not {mode}."),
            "ui_mode",
        ));
    }
    p.one_of("customer_creation", &["always", "if_required"])?;
    p.one_of("submit_type", &["auto", "book", "donate", "pay", "subscribe"])?;

    let mut payment_intent_data = Map::new();
    if let Some(mut d) = p.object("payment_intent_data")? {
        if mode != "payment" {
            return Err(ApiError::invalid(
                "parameter_invalid_string",
                "payment_intent_data can only be used in payment mode.",
                "payment_intent_data",
            ));
        }
        if let Some(m) = d.metadata()? {
            payment_intent_data.insert("metadata".into(), Value::Object(m));
        }
        for key in [
            "description",
            "on_behalf_of",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_group",
        ] {
            if let Some(v) = d.str(key)? {
                payment_intent_data.insert(key.into(), json!(v));
            }
        }
        d.one_of("setup_future_usage", &["off_session", "on_session"])?;
        d.one_of("capture_method", &["automatic", "automatic_async"])?;
        if let Some(fee) = d.i64("application_fee_amount")? {
            payment_intent_data.insert("application_fee_amount".into(), json!(fee));
        }
        if let Some(mut t) = d.object("transfer_data")? {
            let destination = t.required_str("destination")?;
            t.i64("amount")?;
            t.finish()?;
            state.referenced("account", &destination, None, "payment_intent_data[transfer_data][destination]")?;
            payment_intent_data.insert("transfer_data".into(), json!({ "destination": destination }));
        }
        d.finish()?;
    }
    let mut request_three_d_secure = None;
    if let Some(mut o) = p.object("payment_method_options")? {
        if let Some(mut card) = o.object("card")? {
            request_three_d_secure = card.one_of("request_three_d_secure", &["any", "automatic", "challenge"])?;
            card.finish()?;
        }
        o.finish()?;
    }
    let mut subscription_data = Map::new();
    if let Some(mut d) = p.object("subscription_data")? {
        if let Some(days) = d.i64("trial_period_days")? {
            if days < 1 {
                return Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    "trial_period_days must be at least 1.",
                    "subscription_data[trial_period_days]",
                ));
            }
            subscription_data.insert("trial_period_days".into(), json!(days));
        }
        if let Some(m) = d.metadata()? {
            subscription_data.insert("metadata".into(), Value::Object(m));
        }
        d.str("description")?;
        d.finish()?;
    }
    if let Some(mut d) = p.object("setup_intent_data")? {
        d.metadata()?;
        d.str("description")?;
        d.finish()?;
    }
    let line_item_params = p.objects("line_items")?;
    let items: Vec<LineItem> = line_item_params
        .into_iter()
        .enumerate()
        .map(|(index, i)| read_line_item(state, account.as_deref(), index, i, now))
        .collect::<ApiResult<_>>()?;
    p.check()?;

    // Rules Stripe applies before creating anything.
    if success_url.is_none() {
        return Err(ApiError::missing("success_url"));
    }
    for (param, url) in [("success_url", &success_url), ("cancel_url", &cancel_url)] {
        if let Some(url) = url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ApiError::invalid("url_invalid", format!("Not a valid URL: {param}"), param));
        }
    }
    if customer.is_some() && customer_email.is_some() {
        return Err(ApiError::state(
            "parameter_invalid_string",
            "You may only specify one of these parameters: customer, customer_email.",
        ));
    }
    if let Some(c) = &customer {
        state.referenced("customer", c, account.as_deref(), "customer")?;
    }
    match mode.as_str() {
        "payment" | "subscription" if items.is_empty() => return Err(ApiError::missing("line_items")),
        "setup" if currency.is_none() && customer.is_none() => return Err(ApiError::missing("currency")),
        _ => {}
    }
    if mode == "payment" && items.iter().any(|i| i.price["type"] == "recurring") {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "You must be in `subscription` mode to use recurring prices.",
            "line_items",
        ));
    }
    if mode == "subscription" && !items.iter().any(|i| i.price["type"] == "recurring") {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "You must provide at least one recurring price in `subscription` mode.",
            "line_items",
        ));
    }
    let item_currency = items.first().map(|i| i.price["currency"].as_str().unwrap_or("usd").to_owned());
    if items.iter().any(|i| Some(i.price["currency"].as_str().unwrap_or("usd").to_owned()) != item_currency) {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "All line items must use the same currency.",
            "line_items",
        ));
    }
    let amount_total: i64 = items.iter().map(|i| i.price["unit_amount"].as_i64().unwrap_or(0) * i.quantity).sum();
    let currency = item_currency.or(currency);
    if mode == "payment" {
        let c = currency.as_deref().unwrap_or("usd");
        if amount_total < minimum_amount(c) {
            return Err(ApiError::invalid(
                "amount_too_small",
                format!(
                    "The Checkout Session's total amount due must add up to at least {} in minor units of {c}.",
                    minimum_amount(c)
                ),
                "line_items",
            ));
        }
    }
    let expires_at = match expires_at {
        None => now + 24 * 3600,
        Some(t) if t < now + 30 * 60 - 5 || t > now + 24 * 3600 + 5 => {
            return Err(ApiError::invalid(
                "parameter_invalid_integer",
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.",
                "expires_at",
            ));
        }
        Some(t) => t,
    };

    for item in items.iter().filter(|i| i.created) {
        if state.any(item.product["id"].as_str().unwrap_or_default()).is_none() {
            state.insert(account.as_deref(), item.product.clone());
        }
        state.insert(account.as_deref(), item.price.clone());
    }
    let id = new_id("cs_test_");
    let mut session = objects::checkout_session(objects::NewCheckoutSession {
        id: id.clone(),
        mode: mode.clone(),
        amount_total,
        currency,
        customer,
        customer_email,
        client_reference_id,
        success_url,
        cancel_url,
        expires_at,
        metadata,
        url: state.url(&format!("/checkout/{id}")),
        created: now,
    });
    session["_line_items"] =
        json!(items.iter().map(|i| objects::checkout_line_item(&i.price, &i.product, i.quantity)).collect::<Vec<_>>());
    session["_payment_intent_data"] = Value::Object(payment_intent_data);
    session["_request_three_d_secure"] = json!(request_three_d_secure);
    session["_subscription_data"] = Value::Object(subscription_data);
    state.insert(account.as_deref(), session.clone());
    Ok(flows::public(&session))
}

pub fn line_items(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    let session = state.require("checkout.session", id, call.account(), "session")?;
    let items = session["_line_items"].as_array().cloned().unwrap_or_default();
    paginate(items, &mut call.params, &format!("/v1/checkout/sessions/{id}/line_items"))
}
