//! Payment methods, setup intents and refunds.

use serde_json::{Value, json};

use super::Call;
use crate::{
    flows, objects,
    state::State,
    wire::{ApiError, ApiResult, new_id},
};

pub fn attach(state: &mut State, call: &mut Call<'_>, id: &str) -> ApiResult<Value> {
    let customer = call.params.required_str("customer")?;
    call.params.check()?;
    state.require("payment_method", id, call.account(), "payment_method")?;
    state.referenced("customer", &customer, call.account(), "customer")?;
    flows::attach_payment_method(state, id, &customer, false)
}

pub fn detach(state: &mut State, id: &str) -> ApiResult<Value> {
    let pm = state.require("payment_method", id, None, "payment_method")?;
    let Some(customer) = pm["customer"].as_str().map(str::to_owned) else {
        return Err(ApiError::state(
            "payment_method_unexpected_state",
            "The payment method you provided is not attached to a customer so detachment is impossible.",
        ));
    };
    let (pm, previous) = state.update(id, |p| p["customer"] = Value::Null);
    if state.any(&customer).is_some_and(|c| c["invoice_settings"]["default_payment_method"] == id) {
        state.update(&customer, |c| c["invoice_settings"]["default_payment_method"] = Value::Null);
    }
    state.emit("payment_method.detached", &pm, Some(previous), None);
    Ok(pm)
}

pub fn create_setup_intent(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let customer = p.str("customer")?;
    let metadata = p.metadata()?.unwrap_or_default();
    let description = p.str("description")?;
    p.strings("payment_method_types")?;
    p.one_of("usage", &["off_session", "on_session"])?;
    p.check()?;
    if let Some(c) = &customer {
        state.referenced("customer", c, call.account(), "customer")?;
    }
    let mut intent = objects::setup_intent(&new_id("seti_"), customer, state.now());
    intent["metadata"] = json!(metadata);
    intent["description"] = json!(description);
    state.insert(call.account(), intent.clone());
    state.emit("setup_intent.created", &intent, None, call.account());
    Ok(intent)
}

pub fn create_refund(state: &mut State, call: &mut Call<'_>) -> ApiResult<Value> {
    let p = &mut call.params;
    let charge_id = p.str("charge")?;
    let pi_id = p.str("payment_intent")?;
    let amount = p.i64("amount")?;
    let reason = p.one_of("reason", &["duplicate", "fraudulent", "requested_by_customer"])?;
    let metadata = p.metadata()?.unwrap_or_default();
    let refund_fee = p.bool("refund_application_fee")?.unwrap_or(false);
    let reverse = p.bool("reverse_transfer")?.unwrap_or(false);
    p.check()?;
    let account = call.account.clone();
    let charge_id = match (charge_id, pi_id) {
        (Some(c), None) => c,
        (None, Some(pi)) => {
            let intent = state.referenced("payment_intent", &pi, account.as_deref(), "payment_intent")?;
            intent["latest_charge"].as_str().filter(|_| intent["status"] == "succeeded").map(str::to_owned).ok_or_else(
                || {
                    ApiError::state(
                        "charge_not_refundable",
                        format!("This PaymentIntent ({pi}) does not have a successful charge to refund."),
                    )
                },
            )?
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::state(
                "parameter_invalid_string",
                "You may only specify one of these parameters: charge, payment_intent.",
            ));
        }
        (None, None) => return Err(ApiError::missing("charge")),
    };
    let charge = state.referenced("charge", &charge_id, account.as_deref(), "charge")?;
    if charge["status"] != "succeeded" {
        return Err(ApiError::state("charge_not_refundable", "Only succeeded charges can be refunded."));
    }
    let remaining = charge["amount"].as_i64().unwrap_or(0) - charge["amount_refunded"].as_i64().unwrap_or(0);
    let amount = amount.unwrap_or(remaining);
    if amount <= 0 || amount > remaining {
        let message = if remaining == 0 {
            format!("Charge {charge_id} has already been refunded.")
        } else {
            format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})")
        };
        return Err(ApiError::invalid(
            if remaining == 0 { "charge_already_refunded" } else { "amount_too_large" },
            message,
            "amount",
        ));
    }
    if reverse && charge["transfer"].is_null() {
        return Err(ApiError::invalid(
            "parameter_invalid_boolean",
            "reverse_transfer can only be used on a destination charge (one with transfer_data[destination]).",
            "reverse_transfer",
        ));
    }
    if refund_fee && charge["application_fee"].is_null() {
        return Err(ApiError::invalid(
            "parameter_invalid_boolean",
            "refund_application_fee can only be used on a charge that took an application fee.",
            "refund_application_fee",
        ));
    }
    let whole = charge["amount"].as_i64().unwrap_or(0);
    let refunded_before = charge["amount_refunded"].as_i64().unwrap_or(0);
    // The connected account's share comes out of its balance: Stripe refuses the refund when
    // that balance (available and pending) cannot cover it.
    if reverse && let Some(transfer) = charge["transfer"].as_str().and_then(|t| state.any(t)).cloned() {
        let share = flows::proportional(
            transfer["amount"].as_i64().unwrap_or(0),
            amount,
            whole,
            refunded_before,
            transfer["amount_reversed"].as_i64().unwrap_or(0),
        );
        let destination = transfer["destination"].as_str().unwrap_or_default();
        let currency = transfer["currency"].as_str().unwrap_or("usd");
        let (available, pending) = state.balance_of(Some(destination));
        let balance = available.get(currency).copied().unwrap_or(0) + pending.get(currency).copied().unwrap_or(0);
        // The part of the platform's fee the same refund gives back lands in that balance too.
        let fee_back = match charge["application_fee"].as_str().and_then(|f| state.any(f)) {
            Some(fee) if refund_fee => flows::proportional(
                fee["amount"].as_i64().unwrap_or(0),
                amount,
                whole,
                refunded_before,
                fee["amount_refunded"].as_i64().unwrap_or(0),
            ),
            _ => 0,
        };
        if share > balance + fee_back {
            return Err(ApiError::invalid(
                "balance_insufficient",
                format!(
                    "The connected account {destination} has insufficient funds to reverse {share} of the transfer \
                     (its balance is {balance})."
                ),
                "reverse_transfer",
            ));
        }
    }
    let now = state.time_of(&charge);
    let refund_id = new_id("re_");
    let bt_id = new_id("txn_");
    let currency = charge["currency"].as_str().unwrap_or("usd").to_owned();
    state.insert(
        account.as_deref(),
        objects::balance_transaction(&bt_id, -amount, &currency, "refund", &refund_id, now),
    );
    let mut refund = objects::refund(&refund_id, &charge, amount, reason, metadata, now);
    refund["balance_transaction"] = json!(bt_id);
    // The connected account's and the platform's shares move back in proportion to the refund.
    if reverse && let Some(transfer_id) = charge["transfer"].as_str() {
        let transfer = state.any(transfer_id).cloned().unwrap_or_default();
        let share = flows::proportional(
            transfer["amount"].as_i64().unwrap_or(0),
            amount,
            whole,
            refunded_before,
            transfer["amount_reversed"].as_i64().unwrap_or(0),
        );
        if share > 0 {
            let reversal = flows::reverse_transfer(state, transfer_id, share, Some(&refund_id), Default::default())?;
            refund["transfer_reversal"] = reversal["id"].clone();
        }
    }
    if refund_fee && let Some(fee_id) = charge["application_fee"].as_str() {
        let fee = state.any(fee_id).cloned().unwrap_or_default();
        let share = flows::proportional(
            fee["amount"].as_i64().unwrap_or(0),
            amount,
            whole,
            refunded_before,
            fee["amount_refunded"].as_i64().unwrap_or(0),
        );
        if share > 0 {
            flows::refund_application_fee(state, fee_id, share)?;
        }
    }
    state.insert(account.as_deref(), refund.clone());
    state.emit("refund.created", &refund, None, account.as_deref());
    let (charge, previous) = state.update(&charge_id, |c| {
        let refunded = c["amount_refunded"].as_i64().unwrap_or(0) + amount;
        c["amount_refunded"] = json!(refunded);
        c["refunded"] = json!(refunded == c["amount"].as_i64().unwrap_or(0));
        if let Some(list) = c["refunds"]["data"].as_array_mut() {
            list.insert(0, refund.clone());
        }
    });
    state.emit("charge.refunded", &charge, Some(previous), account.as_deref());
    Ok(refund)
}
