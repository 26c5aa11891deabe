//! Money between the platform and its connected accounts: transfers and their reversals,
//! application fees and their refunds, and the balance they add up to.

use serde_json::{Map, Value, json};

use super::Call;
use crate::{
    flows, objects,
    state::State,
    wire::{ApiError, ApiResult, new_id},
};

/// `POST /v1/transfers`: moves money from the platform's balance to a connected account.
pub fn create(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let amount = p.required_i64("amount")?;
    let currency = p.required_str("currency")?.to_lowercase();
    let destination = p.required_str("destination")?;
    let description = p.str("description")?;
    let metadata = p.metadata()?.unwrap_or_default();
    let source_transaction = p.str("source_transaction")?;
    let transfer_group = p.str("transfer_group")?;
    p.check()?;
    if amount <= 0 {
        return Err(ApiError::invalid("parameter_invalid_integer", "Amount must be at least 1.", "amount"));
    }
    state.referenced("account", &destination, None, "destination")?;
    if let Some(charge) = &source_transaction {
        state.referenced("charge", charge, None, "source_transaction")?;
    }
    let available = state.balance_of(None).0.get(&currency).copied().unwrap_or(0);
    if source_transaction.is_none() && available < amount {
        return Err(ApiError::invalid(
            "balance_insufficient",
            "You have insufficient available funds in your Stripe account. Try adding funds directly to your available balance by creating Charges using the 4000000000000077 test card.",
            "amount",
        ));
    }
    let now = state.now();
    let id = new_id("tr_");
    let platform_bt = new_id("txn_");
    state.insert(None, objects::balance_transaction(&platform_bt, -amount, &currency, "transfer", &id, now));
    let payment_id = new_id("py_");
    state.insert(
        Some(&destination),
        objects::balance_transaction(&new_id("txn_"), amount, &currency, "transfer", &payment_id, now),
    );
    let transfer = objects::transfer(objects::NewTransfer {
        id: &id,
        amount,
        currency: &currency,
        destination: &destination,
        destination_payment: &payment_id,
        balance_transaction: &platform_bt,
        source_transaction: source_transaction.as_deref(),
        description,
        metadata,
        transfer_group,
        created: now,
    });
    state.insert(None, transfer.clone());
    state.emit("transfer.created", &transfer, None, None);
    Ok(transfer)
}

/// `POST /v1/transfers/{id}/reversals`.
pub fn reverse(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    let transfer = state.require("transfer", id, None, "id")?;
    let p = &mut call.params;
    let amount = p.i64("amount")?;
    let metadata = p.metadata()?.unwrap_or_default();
    let refund_fee = p.bool("refund_application_fee")?.unwrap_or(false);
    p.str("description")?;
    p.check()?;
    let left = transfer["amount"].as_i64().unwrap_or(0) - transfer["amount_reversed"].as_i64().unwrap_or(0);
    let amount = amount.unwrap_or(left);
    let reversal = flows::reverse_transfer(state, id, amount, None, metadata)?;
    // The fee of the destination charge behind the transfer, in proportion.
    if refund_fee
        && let Some(charge) = transfer["source_transaction"].as_str().and_then(|c| state.any(c)).cloned()
        && let Some(fee_id) = charge["application_fee"].as_str()
    {
        let fee = state.any(fee_id).cloned().unwrap_or_default();
        let share = flows::proportional(
            fee["amount"].as_i64().unwrap_or(0),
            amount,
            transfer["amount"].as_i64().unwrap_or(0),
            transfer["amount_reversed"].as_i64().unwrap_or(0),
            fee["amount_refunded"].as_i64().unwrap_or(0),
        );
        if share > 0 {
            flows::refund_application_fee(state, fee_id, share)?;
        }
    }
    Ok(reversal)
}

/// `POST /v1/payouts`: pays out part of the available balance of the platform or (with
/// `Stripe-Account`) a connected account to its bank; pending funds cannot be paid out.
pub fn payout(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let amount = p.required_i64("amount")?;
    let currency = p.required_str("currency")?.to_lowercase();
    let method = p.one_of("method", &["standard", "instant"])?.unwrap_or_else(|| "standard".to_owned());
    let description = p.str("description")?;
    let metadata = p.metadata()?.unwrap_or_default();
    p.check()?;
    if amount <= 0 {
        return Err(ApiError::invalid("parameter_invalid_integer", "Amount must be at least 1.", "amount"));
    }
    let account = call.account.clone();
    let available = state.balance_of(account.as_deref()).0.get(&currency).copied().unwrap_or(0);
    if available < amount {
        return Err(ApiError::invalid(
            "balance_insufficient",
            format!(
                "You have insufficient funds in your Stripe account for this payout: {available} is available in {currency}."
            ),
            "amount",
        ));
    }
    let now = state.now();
    let id = new_id("po_");
    let bt = new_id("txn_");
    state.insert(account.as_deref(), objects::balance_transaction(&bt, -amount, &currency, "payout", &id, now));
    let mut payout = objects::payout(&id, amount, &currency, now);
    payout["automatic"] = json!(false);
    payout["balance_transaction"] = json!(bt);
    payout["method"] = json!(method);
    payout["status"] = json!("pending");
    payout["description"] = json!(description);
    payout["metadata"] = Value::Object(metadata);
    if method == "instant" {
        payout["arrival_date"] = json!(now);
    }
    state.insert(account.as_deref(), payout.clone());
    state.emit("payout.created", &payout, None, account.as_deref());
    Ok(payout)
}

/// `POST /v1/application_fees/{id}/refunds`.
pub fn refund_fee(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    let fee = state.require("application_fee", id, None, "id")?;
    let amount = call.params.i64("amount")?;
    call.params.metadata()?;
    call.params.check()?;
    let left = fee["amount"].as_i64().unwrap_or(0) - fee["amount_refunded"].as_i64().unwrap_or(0);
    flows::refund_application_fee(state, id, amount.unwrap_or(left))
}

/// The nested list of an object (`reversals`, `refunds`), paginated like any list.
pub fn nested(state: &State, call: &mut Call<'_>, object: &str, id: &str, field: &str) -> ApiResult<Value> {
    let parent = state.require(object, id, None, "id")?;
    let items = parent[field]["data"].as_array().cloned().unwrap_or_default();
    let url = parent[field]["url"].as_str().unwrap_or_default().to_owned();
    crate::state::paginate(items, &mut call.params, &url)
}

/// `GET /v1/balance`, of the platform or (with `Stripe-Account`) a connected account.
pub fn balance(state: &State, call: &Call<'_>) -> Value {
    let (available, pending) = state.balance_of(call.account());
    let amounts = |m: &std::collections::BTreeMap<String, i64>, others: &std::collections::BTreeMap<String, i64>| {
        let mut currencies: Vec<&String> = m.keys().chain(others.keys()).collect();
        currencies.sort();
        currencies.dedup();
        if currencies.is_empty() {
            return json!([{ "amount": 0, "currency": "usd", "source_types": { "card": 0 } }]);
        }
        Value::Array(
            currencies
                .into_iter()
                .map(|c| {
                    let amount = m.get(c).copied().unwrap_or(0);
                    json!({ "amount": amount, "currency": c, "source_types": { "card": amount } })
                })
                .collect(),
        )
    };
    let mut body = Map::new();
    body.insert("object".into(), json!("balance"));
    body.insert("available".into(), amounts(&available, &pending));
    body.insert("pending".into(), amounts(&pending, &available));
    body.insert("livemode".into(), json!(false));
    if call.account().is_none() {
        body.insert("connect_reserved".into(), json!([{ "amount": 0, "currency": "usd" }]));
    }
    Value::Object(body)
}
