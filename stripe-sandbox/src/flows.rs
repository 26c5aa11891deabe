//! What happens behind the API: card payments with Stripe's test cards, Checkout completing or
//! expiring, subscriptions invoicing and renewing, connected accounts finishing onboarding.
//! Hosted pages, API calls, triggers and the clock all go through these.

use serde_json::{Map, Value, json};

use crate::{
    objects::{self, TestCard},
    state::{CardBehaviour, State},
    wire::{
        AUTHENTICATION_FAILED, ApiError, ApiResult, BLOCKED_AS_FRAUD, Decline, GENERIC_DECLINE, INSUFFICIENT_FUNDS,
        new_id,
    },
};

const INCORRECT_NUMBER: Decline =
    Decline { code: "incorrect_number", decline_code: None, message: "Your card number is incorrect." };
const EXPIRED_CARD: Decline = Decline { code: "expired_card", decline_code: None, message: "Your card has expired." };

/// Stripe's test card numbers and what they do.
pub fn card_behaviour(number: &str) -> Result<(&'static str, CardBehaviour), Decline> {
    match number {
        "4242424242424242" => Ok(("visa", CardBehaviour::Succeeds)),
        "5555555555554444" => Ok(("mastercard", CardBehaviour::Succeeds)),
        "4000000000000002" => Ok(("visa", CardBehaviour::Declines(GENERIC_DECLINE))),
        "4000000000009995" => Ok(("visa", CardBehaviour::Declines(INSUFFICIENT_FUNDS))),
        "4000002760003184" | "4000002500003155" | "4000000000003220" => {
            Ok(("visa", CardBehaviour::RequiresAuthentication))
        }
        "4000000000000341" => Ok(("visa", CardBehaviour::FailsAfterAttach)),
        "4000000000000259" => Ok(("visa", CardBehaviour::Disputed)),
        "4000000000009235" => Ok(("visa", CardBehaviour::ElevatedRisk)),
        "4000000000004954" => Ok(("visa", CardBehaviour::BlockedByRadar)),
        _ => Err(INCORRECT_NUMBER),
    }
}

/// Creates the payment method for a card typed into a hosted page.
pub fn card_payment_method(
    state: &mut State,
    number: &str,
    expiry: &str,
    name: Option<String>,
    email: Option<String>,
) -> Result<Value, Decline> {
    let number: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
    let (brand, behaviour) = card_behaviour(&number)?;
    let (month, year) = parse_expiry(expiry).ok_or(EXPIRED_CARD)?;
    let (this_year, this_month, _) = civil_date(state.now());
    if (year, month) < (this_year, this_month) {
        return Err(EXPIRED_CARD);
    }
    let id = new_id("pm_");
    let card = TestCard { number, brand, exp_month: month, exp_year: year };
    let pm = objects::payment_method_card(&id, &card, name, email, state.now());
    state.insert(None, pm.clone());
    state.cards.insert(id, behaviour);
    Ok(pm)
}

/// `MM/YY` or `MM / YYYY`.
fn parse_expiry(expiry: &str) -> Option<(i64, i64)> {
    let (m, y) = expiry.split_once('/')?;
    let month: i64 = m.trim().parse().ok()?;
    let year: i64 = y.trim().parse().ok()?;
    let year = if year < 100 { 2000 + year } else { year };
    (1..=12).contains(&month).then_some((month, year))
}

/// (year, month, day) of a Unix time (UTC), without a date library.
pub fn civil_date(unix: i64) -> (i64, i64, i64) {
    // Civil-from-days (Howard Hinnant's algorithm).
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What a payment attempt came to.
pub enum Attempt {
    Succeeded,
    /// 3D Secure is needed; the page sends the buyer to the challenge.
    RequiresAction,
    Failed(Decline),
}

/// Attempts to pay `pi_id` with `pm`. `authenticated` is true after a passed 3DS challenge.
pub fn attempt_payment(state: &mut State, pi_id: &str, pm_id: &str, authenticated: bool) -> ApiResult<Attempt> {
    let behaviour = state.cards.get(pm_id).copied().unwrap_or(CardBehaviour::Succeeds);
    let pi = state.any(pi_id).cloned().ok_or_else(|| ApiError::no_such("payment_intent", pi_id, "payment_intent"))?;
    if pi["status"] == "succeeded" {
        return Err(ApiError::state("payment_intent_unexpected_state", "This PaymentIntent has already succeeded."));
    }
    let wants_3ds = pi["payment_method_options"]["card"]["request_three_d_secure"] == "any";
    let needs_challenge = !authenticated && (behaviour == CardBehaviour::RequiresAuthentication || wants_3ds);
    let owner = state.owner(pi_id);
    if needs_challenge {
        let url = state.url(&format!("/3ds/{pi_id}"));
        let (pi, previous) = state.update(pi_id, |p| {
            p["payment_method"] = json!(pm_id);
            p["status"] = json!("requires_action");
            p["next_action"] =
                json!({ "type": "redirect_to_url", "redirect_to_url": { "url": url, "return_url": null } });
        });
        state.emit("payment_intent.requires_action", &pi, Some(previous), owner.as_deref());
        return Ok(Attempt::RequiresAction);
    }
    let decline = match behaviour {
        CardBehaviour::Declines(d) => Some(d),
        CardBehaviour::FailsAfterAttach => Some(GENERIC_DECLINE),
        CardBehaviour::BlockedByRadar => Some(BLOCKED_AS_FRAUD),
        _ => None,
    };
    let pm = state.any(pm_id).cloned().unwrap_or(Value::Null);
    let charge_id = new_id("ch_");
    let mut charge = objects::charge(&charge_id, &pi, &pm, state.now());
    match decline {
        Some(d) => {
            charge["status"] = json!("failed");
            charge["failure_code"] = json!(d.decline_code.unwrap_or(d.code));
            charge["failure_message"] = json!(d.message);
            charge["outcome"] = if behaviour == CardBehaviour::BlockedByRadar {
                json!({ "network_status": "not_sent_to_network", "reason": "highest_risk_level", "risk_level": "highest", "risk_score": 95, "seller_message": "Stripe blocked this payment as too risky.", "type": "blocked" })
            } else {
                json!({ "network_status": "declined_by_network", "reason": d.decline_code, "risk_level": "normal", "seller_message": "The bank did not return any further details with this decline.", "type": "issuer_declined" })
            };
            state.insert(owner.as_deref(), charge.clone());
            state.emit("charge.failed", &charge, None, owner.as_deref());
            fail_payment(state, pi_id, pm_id, d, Some(&charge_id));
            Ok(Attempt::Failed(d))
        }
        None => {
            let bt_id = new_id("txn_");
            let amount = pi["amount"].as_i64().unwrap_or(0);
            let currency = pi["currency"].as_str().unwrap_or("usd").to_owned();
            state.insert(
                owner.as_deref(),
                objects::balance_transaction(&bt_id, amount, &currency, "charge", &charge_id, state.now()),
            );
            charge["status"] = json!("succeeded");
            charge["paid"] = json!(true);
            charge["captured"] = json!(true);
            charge["amount_captured"] = json!(amount);
            charge["balance_transaction"] = json!(bt_id);
            charge["receipt_url"] = json!(state.url(&format!("/receipts/{charge_id}")));
            let (risk_level, risk_score) =
                if behaviour == CardBehaviour::ElevatedRisk { ("elevated", 75) } else { ("normal", 12) };
            charge["outcome"] = json!({ "network_status": "approved_by_network", "reason": if risk_level == "elevated" { json!("elevated_risk_level") } else { Value::Null }, "risk_level": risk_level, "risk_score": risk_score, "seller_message": "Payment complete.", "type": "authorized" });
            state.insert(owner.as_deref(), charge.clone());
            if let Some(destination) = pi["transfer_data"]["destination"].as_str() {
                charge = settle_destination_charge(state, &charge, destination);
            }
            state.emit("charge.succeeded", &charge, None, owner.as_deref());
            let (pi, previous) = state.update(pi_id, |p| {
                p["status"] = json!("succeeded");
                p["amount_received"] = json!(amount);
                p["payment_method"] = json!(pm_id);
                p["latest_charge"] = json!(charge_id);
                p["last_payment_error"] = Value::Null;
                p["next_action"] = Value::Null;
            });
            state.emit("payment_intent.succeeded", &pi, Some(previous), owner.as_deref());
            if behaviour == CardBehaviour::Disputed {
                open_dispute(state, &charge_id);
            }
            Ok(Attempt::Succeeded)
        }
    }
}

/// A destination charge's money movement, as Stripe makes it: the whole amount is transferred
/// to the connected account (a payment `py_…` there), and the application fee is taken back from
/// that payment for the platform. Returns the charge with its `transfer` and `application_fee`.
fn settle_destination_charge(state: &mut State, charge: &Value, destination: &str) -> Value {
    let charge_id = charge["id"].as_str().unwrap_or_default().to_owned();
    let amount = charge["amount"].as_i64().unwrap_or(0);
    let currency = charge["currency"].as_str().unwrap_or("usd").to_owned();
    let fee = charge["application_fee_amount"].as_i64().unwrap_or(0);
    let now = state.time_of(charge);

    // The connected account's side: the payment, net of the platform's fee.
    let payment_id = new_id("py_");
    let payment_bt = new_id("txn_");
    let mut bt = objects::balance_transaction(&payment_bt, amount, &currency, "payment", &payment_id, now);
    if fee > 0 {
        bt["fee"] = json!(fee);
        bt["net"] = json!(amount - fee);
        bt["fee_details"] = json!([{ "amount": fee, "application": state.config.connect_client_id, "currency": currency, "description": "Application fee", "type": "application_fee" }]);
    }
    state.insert(Some(destination), bt);
    let mut payment = charge.clone();
    payment["id"] = json!(payment_id);
    payment["balance_transaction"] = json!(payment_bt);
    payment["payment_intent"] = Value::Null;
    payment["customer"] = Value::Null;
    payment["transfer_data"] = Value::Null;
    payment["application_fee_amount"] = Value::Null;
    payment["refunds"]["url"] = json!(format!("/v1/charges/{payment_id}/refunds"));

    // The platform's side: the transfer out, and the fee back in.
    let transfer_id = new_id("tr_");
    let transfer_bt = new_id("txn_");
    state.insert(None, objects::balance_transaction(&transfer_bt, -amount, &currency, "transfer", &transfer_id, now));
    let transfer = objects::transfer(objects::NewTransfer {
        id: &transfer_id,
        amount,
        currency: &currency,
        destination,
        destination_payment: &payment_id,
        balance_transaction: &transfer_bt,
        source_transaction: Some(&charge_id),
        description: None,
        metadata: Map::new(),
        transfer_group: Some(format!("group_{}", charge["payment_intent"].as_str().unwrap_or(&charge_id))),
        created: now,
    });
    state.insert(None, transfer.clone());
    state.emit("transfer.created", &transfer, None, None);
    payment["source_transfer"] = json!(transfer_id);
    let fee_id = (fee > 0).then(|| {
        let fee_id = new_id("fee_");
        let fee_bt = new_id("txn_");
        state.insert(None, objects::balance_transaction(&fee_bt, fee, &currency, "application_fee", &fee_id, now));
        let application = state.config.connect_client_id.clone();
        let application_fee = objects::application_fee(objects::NewApplicationFee {
            id: &fee_id,
            account: destination,
            amount: fee,
            currency: &currency,
            application: &application,
            balance_transaction: &fee_bt,
            charge: &payment_id,
            originating_transaction: Some(&charge_id),
            created: now,
        });
        state.insert(None, application_fee.clone());
        state.emit("application_fee.created", &application_fee, None, None);
        fee_id
    });
    payment["application_fee"] = json!(fee_id);
    state.insert(Some(destination), payment);
    state
        .update(&charge_id, |c| {
            c["transfer"] = json!(transfer_id);
            c["application_fee"] = json!(fee_id);
            c["transfer_group"] = transfer["transfer_group"].clone();
        })
        .0
}

/// The share of `total` that a refund of `part` out of `whole` moves back; the last refund
/// (nothing of `whole` left after it) takes whatever of `total` is left, so rounding never
/// leaves a cent behind. `done` is what earlier refunds already moved.
pub fn proportional(total: i64, part: i64, whole: i64, refunded_before: i64, done: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    if refunded_before + part >= whole {
        return total - done;
    }
    let share = (i128::from(total) * i128::from(part) + i128::from(whole) / 2) / i128::from(whole);
    i64::try_from(share).unwrap_or(0).min(total - done)
}

/// Takes `amount` of a transfer back from the connected account (a refund's share, or a
/// reversal the platform asks for).
pub fn reverse_transfer(
    state: &mut State,
    transfer_id: &str,
    amount: i64,
    source_refund: Option<&str>,
    metadata: Map<String, Value>,
) -> ApiResult<Value> {
    let transfer =
        state.any(transfer_id).cloned().ok_or_else(|| ApiError::no_such("transfer", transfer_id, "transfer"))?;
    let left = transfer["amount"].as_i64().unwrap_or(0) - transfer["amount_reversed"].as_i64().unwrap_or(0);
    if amount <= 0 || amount > left {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            format!("You cannot reverse {amount} of this transfer: {left} is left to reverse."),
            "amount",
        ));
    }
    let now = state.time_of(&transfer);
    let currency = transfer["currency"].as_str().unwrap_or("usd").to_owned();
    let destination = transfer["destination"].as_str().unwrap_or_default().to_owned();
    let reversal_id = new_id("trr_");
    let platform_bt = new_id("txn_");
    state.insert(
        None,
        objects::balance_transaction(&platform_bt, amount, &currency, "transfer_refund", &reversal_id, now),
    );
    let account_bt = new_id("txn_");
    state.insert(
        Some(&destination),
        objects::balance_transaction(&account_bt, -amount, &currency, "payment_refund", &reversal_id, now),
    );
    let reversal =
        objects::transfer_reversal(&reversal_id, &transfer, amount, &platform_bt, source_refund, metadata, now);
    state.insert(None, reversal.clone());
    let (transfer, previous) = state.update(transfer_id, |t| {
        let reversed = t["amount_reversed"].as_i64().unwrap_or(0) + amount;
        t["amount_reversed"] = json!(reversed);
        t["reversed"] = json!(reversed == t["amount"].as_i64().unwrap_or(0));
        if let Some(list) = t["reversals"]["data"].as_array_mut() {
            list.insert(0, reversal.clone());
        }
    });
    state.emit("transfer.reversed", &transfer, Some(previous), None);
    Ok(reversal)
}

/// Gives `amount` of an application fee back to the connected account it was taken from.
pub fn refund_application_fee(state: &mut State, fee_id: &str, amount: i64) -> ApiResult<Value> {
    let fee = state.any(fee_id).cloned().ok_or_else(|| ApiError::no_such("application_fee", fee_id, "id"))?;
    let left = fee["amount"].as_i64().unwrap_or(0) - fee["amount_refunded"].as_i64().unwrap_or(0);
    if amount <= 0 || amount > left {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            format!("You cannot refund {amount} of this application fee: {left} is left to refund."),
            "amount",
        ));
    }
    let now = state.time_of(&fee);
    let currency = fee["currency"].as_str().unwrap_or("usd").to_owned();
    let account = fee["account"].as_str().unwrap_or_default().to_owned();
    let refund_id = new_id("fr_");
    let platform_bt = new_id("txn_");
    state.insert(
        None,
        objects::balance_transaction(&platform_bt, -amount, &currency, "application_fee_refund", &refund_id, now),
    );
    state.insert(
        Some(&account),
        objects::balance_transaction(&new_id("txn_"), amount, &currency, "application_fee_refund", &refund_id, now),
    );
    let refund = objects::fee_refund(&refund_id, &fee, amount, &platform_bt, now);
    state.insert(None, refund.clone());
    let (fee, previous) = state.update(fee_id, |f| {
        let refunded = f["amount_refunded"].as_i64().unwrap_or(0) + amount;
        f["amount_refunded"] = json!(refunded);
        f["refunded"] = json!(refunded == f["amount"].as_i64().unwrap_or(0));
        if let Some(list) = f["refunds"]["data"].as_array_mut() {
            list.insert(0, refund.clone());
        }
    });
    state.emit("application_fee.refunded", &fee, Some(previous), None);
    Ok(refund)
}

pub fn fail_payment(state: &mut State, pi_id: &str, pm_id: &str, d: Decline, charge_id: Option<&str>) {
    let owner = state.owner(pi_id);
    let pm = state.any(pm_id).cloned();
    let (pi, previous) = state.update(pi_id, |p| {
        p["status"] = json!("requires_payment_method");
        p["next_action"] = Value::Null;
        p["payment_method"] = Value::Null;
        if let Some(c) = charge_id {
            p["latest_charge"] = json!(c);
        }
        p["last_payment_error"] = json!({
            "type": "card_error",
            "code": d.code,
            "decline_code": d.decline_code,
            "message": d.message,
            "payment_method": pm,
        });
    });
    state.emit("payment_intent.payment_failed", &pi, Some(previous), owner.as_deref());
}

/// Stripe's fee for a dispute, in minor units ($15.00).
const DISPUTE_FEE: i64 = 1500;

pub fn open_dispute(state: &mut State, charge_id: &str) {
    let owner = state.owner(charge_id);
    let Some(charge) = state.any(charge_id).cloned() else { return };
    let now = state.now();
    let dispute_id = new_id("dp_");
    let mut dispute = objects::dispute(&dispute_id, &charge, now);
    // Stripe takes the disputed amount and its dispute fee from the balance when the dispute opens.
    let amount = charge["amount"].as_i64().unwrap_or(0);
    let currency = charge["currency"].as_str().unwrap_or("usd").to_owned();
    let mut bt = objects::balance_transaction(&new_id("txn_"), -amount, &currency, "adjustment", &dispute_id, now);
    bt["fee"] = json!(DISPUTE_FEE);
    bt["net"] = json!(-amount - DISPUTE_FEE);
    bt["reporting_category"] = json!("dispute");
    bt["fee_details"] = json!([{ "amount": DISPUTE_FEE, "application": null, "currency": currency, "description": "Dispute fee", "type": "stripe_fee" }]);
    state.insert(owner.as_deref(), bt.clone());
    dispute["balance_transactions"] = json!([bt]);
    state.insert(owner.as_deref(), dispute.clone());
    state.update(charge_id, |c| c["disputed"] = json!(true));
    state.emit("charge.dispute.created", &dispute, None, owner.as_deref());
}

/// Creates and stores a payment intent for a Checkout session in payment mode (Stripe creates it
/// when the buyer first submits a payment method).
pub fn session_payment_intent(state: &mut State, session_id: &str) -> ApiResult<String> {
    let session =
        state.any(session_id).cloned().ok_or_else(|| ApiError::no_such("checkout.session", session_id, "id"))?;
    if let Some(pi) = session["payment_intent"].as_str() {
        return Ok(pi.to_owned());
    }
    let data = &session["_payment_intent_data"];
    let id = new_id("pi_");
    let pi = objects::payment_intent(objects::NewPaymentIntent {
        id: id.clone(),
        amount: session["amount_total"].as_i64().unwrap_or(0),
        currency: session["currency"].as_str().unwrap_or("usd"),
        customer: session["customer"].as_str().map(str::to_owned),
        description: data["description"].as_str().map(str::to_owned),
        metadata: data["metadata"].as_object().cloned().unwrap_or_default(),
        transfer_destination: data["transfer_data"]["destination"].as_str().map(str::to_owned),
        application_fee_amount: data["application_fee_amount"].as_i64(),
        on_behalf_of: data["on_behalf_of"].as_str().map(str::to_owned),
        request_three_d_secure: session["_request_three_d_secure"].as_str().map(str::to_owned),
        created: state.now(),
    });
    let owner = state.owner(session_id);
    state.insert(owner.as_deref(), pi.clone());
    state.emit("payment_intent.created", &pi, None, owner.as_deref());
    state.update(session_id, |s| s["payment_intent"] = json!(id));
    Ok(id)
}

/// Marks a paid Checkout session complete and announces it.
pub fn complete_session(state: &mut State, session_id: &str, customer_details: Value) {
    let owner = state.owner(session_id);
    let (session, _) = state.update(session_id, |s| {
        s["status"] = json!("complete");
        s["payment_status"] = json!(if s["mode"] == "setup" { "no_payment_required" } else { "paid" });
        s["customer_details"] = customer_details;
        s["url"] = Value::Null;
    });
    state.emit("checkout.session.completed", &public(&session), None, owner.as_deref());
}

/// Expires an open Checkout session (at `expires_at`, or through the API).
pub fn expire_session(state: &mut State, session_id: &str) -> ApiResult<Value> {
    let session =
        state.any(session_id).cloned().ok_or_else(|| ApiError::no_such("checkout.session", session_id, "session"))?;
    if session["status"] != "open" {
        return Err(ApiError::state(
            "checkout_session_unexpected_state",
            format!(
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                session["status"].as_str().unwrap_or("")
            ),
        ));
    }
    let owner = state.owner(session_id);
    if let Some(pi_id) = session["payment_intent"].as_str()
        && state.any(pi_id).is_some_and(|p| p["status"] != "succeeded")
    {
        let now = state.now();
        let (pi, previous) = state.update(pi_id, |p| {
            p["status"] = json!("canceled");
            p["canceled_at"] = json!(now);
            p["cancellation_reason"] = json!("abandoned");
        });
        state.emit("payment_intent.canceled", &pi, Some(previous), owner.as_deref());
    }
    let (session, _) = state.update(session_id, |s| {
        s["status"] = json!("expired");
        s["url"] = Value::Null;
    });
    let visible = public(&session);
    state.emit("checkout.session.expired", &visible, None, owner.as_deref());
    Ok(visible)
}

/// Hides the sandbox's own bookkeeping fields (those starting with `_`).
pub fn public(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect(),
        ),
        other => other.clone(),
    }
}

/// Attaches a payment method to a customer (and makes it the default if asked).
pub fn attach_payment_method(
    state: &mut State,
    pm_id: &str,
    customer_id: &str,
    make_default: bool,
) -> ApiResult<Value> {
    let pm = state.any(pm_id).cloned().ok_or_else(|| ApiError::no_such("payment_method", pm_id, "payment_method"))?;
    if pm["customer"].as_str().is_some_and(|c| c != customer_id) {
        return Err(ApiError::state(
            "payment_method_unexpected_state",
            "The payment method you provided has already been attached to a customer.",
        ));
    }
    if state.cards.get(pm_id).is_some_and(|b| matches!(b, CardBehaviour::Declines(_))) {
        let d = match state.cards.get(pm_id).copied().unwrap_or(CardBehaviour::Succeeds) {
            CardBehaviour::Declines(d) => d,
            _ => GENERIC_DECLINE,
        };
        return Err(ApiError::card(&d));
    }
    let owner = state.owner(customer_id);
    let (pm, _) = state.update(pm_id, |p| p["customer"] = json!(customer_id));
    state.emit("payment_method.attached", &pm, None, owner.as_deref());
    if make_default {
        let (customer, previous) =
            state.update(customer_id, |c| c["invoice_settings"]["default_payment_method"] = json!(pm_id));
        state.emit("customer.updated", &customer, Some(previous), owner.as_deref());
    }
    Ok(pm)
}

/// The payment method a subscription charges: its own default, else its customer's.
fn billing_payment_method(state: &State, subscription: &Value) -> Option<String> {
    subscription["default_payment_method"].as_str().map(str::to_owned).or_else(|| {
        let customer = subscription["customer"].as_str()?;
        state.any(customer)?["invoice_settings"]["default_payment_method"].as_str().map(str::to_owned)
    })
}

/// Invoices a subscription's current period. The first invoice (`subscription_create`) is
/// finalised and charged at once; a renewal stays a draft for an hour, as Stripe leaves time to
/// adjust it, and is then finalised and charged by the clock. Returns the invoice's id.
pub fn invoice_subscription(state: &mut State, sub_id: &str, billing_reason: &str) -> ApiResult<String> {
    let sub = state.any(sub_id).cloned().ok_or_else(|| ApiError::no_such("subscription", sub_id, "subscription"))?;
    let owner = state.owner(sub_id);
    let customer = state.any(sub["customer"].as_str().unwrap_or_default()).cloned().unwrap_or(Value::Null);
    let item = &sub["items"]["data"][0];
    let period = (item["current_period_start"].as_i64().unwrap_or(0), item["current_period_end"].as_i64().unwrap_or(0));
    let trialing = sub["status"] == "trialing";
    let mut price = item["price"].clone();
    if trialing {
        price["unit_amount"] = json!(0);
    }
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let product_name = state
        .any(price["product"].as_str().unwrap_or_default())
        .map(|p| p["name"].clone())
        .unwrap_or(json!("Subscription"));
    let description = if trialing {
        format!("Trial period for {}", product_name.as_str().unwrap_or("subscription"))
    } else {
        format!(
            "{quantity} × {} (at {} / {})",
            product_name.as_str().unwrap_or("subscription"),
            price["unit_amount"],
            price["recurring"]["interval"].as_str().unwrap_or("month")
        )
    };
    let item_id = item["id"].as_str().unwrap_or_default().to_owned();
    let line = objects::invoice_line(&new_id("il_"), &price, quantity, period, Some((sub_id, &item_id)), description);
    let invoice_id = new_id("in_");
    let now = state.time_of(&sub);
    let public_url = state.config.public_url.clone();
    let mut invoice = objects::invoice(objects::NewInvoice {
        id: invoice_id.clone(),
        customer: &customer,
        subscription: Some(sub_id),
        lines: vec![line],
        currency: sub["currency"].as_str().unwrap_or("usd").to_owned(),
        period,
        billing_reason,
        created: now,
        public_url: &public_url,
    });
    let first = billing_reason == "subscription_create";
    if !first {
        invoice["automatically_finalizes_at"] = json!(now + FINALISATION_DELAY);
    }
    state.insert(owner.as_deref(), invoice.clone());
    state.emit("invoice.created", &invoice, None, owner.as_deref());
    state.update(sub_id, |s| s["latest_invoice"] = json!(invoice_id));
    if first {
        finalize_and_charge(state, &invoice_id);
    }
    Ok(invoice_id)
}

/// How long a renewal invoice stays a draft before Stripe finalises and charges it.
pub const FINALISATION_DELAY: i64 = 3600;

/// Finalises a draft invoice and makes its first attempt to collect it.
pub fn finalize_and_charge(state: &mut State, invoice_id: &str) {
    let Some(invoice) = state.any(invoice_id).cloned() else { return };
    let owner = state.owner(invoice_id);
    let now = state.time_of(&invoice);
    let (finalized, previous) = state.update(invoice_id, |i| {
        i["status"] = json!("open");
        i["automatically_finalizes_at"] = Value::Null;
        i["status_transitions"]["finalized_at"] = json!(now);
    });
    state.emit("invoice.finalized", &finalized, Some(previous), owner.as_deref());
    // A failure is on the invoice and in its events; the clock retries it.
    let _ = collect_invoice(state, invoice_id, true);
}

/// When Smart Retries tries a failed invoice again: 3, 5 and 7 days after it was finalised
/// (the 2nd, 3rd and 4th attempts), then no more.
pub fn next_retry(finalized_at: i64, attempts_made: i64) -> Option<i64> {
    const RETRY_DAYS: [i64; 3] = [3, 5, 7];
    let index = usize::try_from(attempts_made - 1).ok()?;
    RETRY_DAYS.get(index).map(|days| finalized_at + days * 86_400)
}

/// Pays an open invoice now (`POST /v1/invoices/{id}/pay`, or a new default card): a declined
/// card is answered as the card's error and the invoice stays open.
pub fn pay_invoice(state: &mut State, invoice_id: &str) -> ApiResult<Value> {
    collect_invoice(state, invoice_id, false)
}

/// Tries to collect an open invoice with the subscription's payment method; moves the
/// subscription to active or past_due accordingly. A failed attempt is recorded on the invoice
/// (which stays open until its next retry) and answered as the card's error. When Stripe's own
/// last retry (`automatic`) fails, the subscription is cancelled, Stripe's default.
fn collect_invoice(state: &mut State, invoice_id: &str, automatic: bool) -> ApiResult<Value> {
    let invoice = state.any(invoice_id).cloned().ok_or_else(|| ApiError::no_such("invoice", invoice_id, "invoice"))?;
    if invoice["status"] == "paid" {
        return Err(ApiError::state("invoice_already_paid", "Invoice is already paid"));
    }
    if invoice["status"] != "open" {
        return Err(ApiError::state("invoice_unexpected_state", "You can only pay an open invoice."));
    }
    let owner = state.owner(invoice_id);
    let sub_id = invoice["parent"]["subscription_details"]["subscription"].as_str().map(str::to_owned);
    let sub = sub_id.as_deref().and_then(|s| state.any(s)).cloned().unwrap_or(Value::Null);
    let amount = invoice["amount_due"].as_i64().unwrap_or(0);
    let now = state.time_of(&invoice);

    let outcome = if amount == 0 {
        Attempt::Succeeded
    } else {
        match billing_payment_method(state, &sub)
            .or_else(|| invoice["default_payment_method"].as_str().map(str::to_owned))
        {
            None => Attempt::Failed(NO_PAYMENT_METHOD),
            Some(pm_id) => {
                let pi_id = new_id("pi_");
                let pi = objects::payment_intent(objects::NewPaymentIntent {
                    id: pi_id.clone(),
                    amount,
                    currency: invoice["currency"].as_str().unwrap_or("usd"),
                    customer: invoice["customer"].as_str().map(str::to_owned),
                    description: Some(format!("Invoice {}", invoice["number"].as_str().unwrap_or(""))),
                    metadata: Map::new(),
                    transfer_destination: None,
                    application_fee_amount: None,
                    on_behalf_of: None,
                    request_three_d_secure: None,
                    created: now,
                });
                state.insert(owner.as_deref(), pi);
                let payments = json!({ "object": "list", "data": [{ "id": new_id("inpay_"), "object": "invoice_payment", "amount_paid": null, "amount_requested": amount, "created": now, "currency": invoice["currency"], "invoice": invoice_id, "is_default": true, "livemode": false, "payment": { "type": "payment_intent", "payment_intent": pi_id }, "status": "open", "status_transitions": { "canceled_at": null, "paid_at": null } }], "has_more": false, "url": "/v1/invoice_payments" });
                state.update(invoice_id, |i| i["payments"] = payments);
                // Off-session renewals cannot answer a 3DS challenge; such cards fail here.
                if state.cards.get(&pm_id) == Some(&CardBehaviour::RequiresAuthentication) {
                    fail_payment(state, &pi_id, &pm_id, AUTHENTICATION_FAILED, None);
                    Attempt::Failed(AUTHENTICATION_FAILED)
                } else {
                    attempt_payment(state, &pi_id, &pm_id, true)?
                }
            }
        }
    };

    let attempts = invoice["attempt_count"].as_i64().unwrap_or(0) + 1;
    let finalized_at = invoice["status_transitions"]["finalized_at"].as_i64().unwrap_or(now);
    // A subscription's first invoice is not retried: it waits for the customer (`incomplete`).
    let first = invoice["billing_reason"] == "subscription_create";
    let retry_at = if first { None } else { next_retry(finalized_at, attempts) };
    let (invoice, previous) = state.update(invoice_id, |i| {
        i["attempted"] = json!(true);
        i["attempt_count"] = json!(attempts);
        if matches!(outcome, Attempt::Succeeded) {
            i["status"] = json!("paid");
            i["amount_paid"] = json!(amount);
            i["amount_remaining"] = json!(0);
            i["status_transitions"]["paid_at"] = json!(now);
            i["next_payment_attempt"] = Value::Null;
            if let Some(p) = i.pointer_mut("/payments/data/0").and_then(Value::as_object_mut) {
                p.insert("status".into(), json!("paid"));
                p.insert("amount_paid".into(), json!(amount));
            }
        } else {
            i["next_payment_attempt"] = json!(retry_at);
        }
    });
    match outcome {
        Attempt::Succeeded => {
            state.emit("invoice.paid", &invoice, Some(previous.clone()), owner.as_deref());
            state.emit("invoice.payment_succeeded", &invoice, Some(previous), owner.as_deref());
            if let Some(sub_id) = &sub_id
                && sub["status"] != "trialing"
                && sub["status"] != "active"
            {
                set_subscription_status(state, sub_id, "active");
            }
            Ok(invoice)
        }
        Attempt::Failed(decline) => {
            let gave_up = automatic && !first && retry_at.is_none();
            invoice_payment_failed(state, invoice, previous, sub_id.as_deref(), &sub, gave_up);
            Err(ApiError::card(&decline))
        }
        Attempt::RequiresAction => {
            let gave_up = automatic && !first && retry_at.is_none();
            invoice_payment_failed(state, invoice, previous, sub_id.as_deref(), &sub, gave_up);
            Err(ApiError::card(&AUTHENTICATION_FAILED))
        }
    }
}

/// A renewal without a payment method to charge.
const NO_PAYMENT_METHOD: Decline = Decline {
    code: "invoice_payment_intent_requires_action",
    decline_code: None,
    message: "The customer has no payment method to charge.",
};

fn invoice_payment_failed(
    state: &mut State,
    invoice: Value,
    previous: Map<String, Value>,
    sub_id: Option<&str>,
    sub: &Value,
    gave_up: bool,
) {
    let owner = state.owner(invoice["id"].as_str().unwrap_or_default());
    state.emit("invoice.payment_failed", &invoice, Some(previous), owner.as_deref());
    let Some(sub_id) = sub_id else { return };
    if gave_up {
        // Every retry failed: Stripe's default is to cancel the subscription.
        cancel_subscription_for(state, sub_id, "payment_failed");
    } else if sub["status"] == "active" {
        set_subscription_status(state, sub_id, "past_due");
    }
}

pub fn set_subscription_status(state: &mut State, sub_id: &str, status: &str) {
    let owner = state.owner(sub_id);
    let (sub, previous) = state.update(sub_id, |s| s["status"] = json!(status));
    state.emit("customer.subscription.updated", &sub, Some(previous), owner.as_deref());
}

/// Ends a subscription now (asked for by the customer or the platform).
pub fn cancel_subscription(state: &mut State, sub_id: &str) -> Value {
    cancel_subscription_for(state, sub_id, "cancellation_requested")
}

fn cancel_subscription_for(state: &mut State, sub_id: &str, reason: &str) -> Value {
    let owner = state.owner(sub_id);
    let now = state.any(sub_id).map(|s| state.time_of(s)).unwrap_or_else(|| state.now());
    let (sub, previous) = state.update(sub_id, |s| {
        s["status"] = json!("canceled");
        s["canceled_at"] = json!(now);
        s["ended_at"] = json!(now);
        if s["cancellation_details"]["reason"].is_null() {
            s["cancellation_details"]["reason"] = json!(reason);
        }
    });
    state.emit("customer.subscription.deleted", &sub, Some(previous), owner.as_deref());
    sub
}

/// Something a subscription has due at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Three days before a trial ends: `customer.subscription.trial_will_end`.
    TrialNotice,
    /// The period (or trial) ended: the next period begins and is invoiced.
    Renewal,
    /// The renewal invoice's draft hour is over: finalise and charge it.
    Finalisation,
    /// A failed invoice's next retry.
    Retry,
    /// An incomplete subscription whose first payment never succeeded expires after 23 hours.
    IncompleteExpiry,
}

/// How long an incomplete subscription waits for its first payment.
const INCOMPLETE_EXPIRY: i64 = 23 * 3600;

/// What `sub` has due next and when (the earliest of its due items).
fn next_due(state: &State, sub: &Value) -> Option<(i64, Due)> {
    let status = sub["status"].as_str().unwrap_or_default();
    let mut due = Vec::new();
    if status == "incomplete" {
        due.push((sub["created"].as_i64()? + INCOMPLETE_EXPIRY, Due::IncompleteExpiry));
    }
    if !matches!(status, "active" | "trialing" | "past_due") {
        return due.into_iter().min_by_key(|(t, _)| *t);
    }
    let id = sub["id"].as_str().unwrap_or_default();
    if status == "trialing"
        && let Some(trial_end) = sub["trial_end"].as_i64()
        && !state.trial_notices_sent.contains(id)
    {
        let created = sub["created"].as_i64().unwrap_or(trial_end);
        due.push(((trial_end - 3 * 86_400).max(created), Due::TrialNotice));
    }
    if let Some(end) = sub["items"]["data"][0]["current_period_end"].as_i64() {
        due.push((end, Due::Renewal));
    }
    if let Some(invoice) = sub["latest_invoice"].as_str().and_then(|i| state.any(i)) {
        match invoice["status"].as_str() {
            Some("draft") => due.extend(invoice["automatically_finalizes_at"].as_i64().map(|t| (t, Due::Finalisation))),
            Some("open") => due.extend(invoice["next_payment_attempt"].as_i64().map(|t| (t, Due::Retry))),
            _ => {}
        }
    }
    due.into_iter().min_by_key(|(t, _)| *t)
}

/// Does one due item of a subscription.
fn run_due(state: &mut State, sub_id: &str, due: Due) {
    let Some(sub) = state.any(sub_id).cloned() else { return };
    let owner = state.owner(sub_id);
    match due {
        Due::TrialNotice => {
            state.trial_notices_sent.insert(sub_id.to_owned(), true);
            state.emit("customer.subscription.trial_will_end", &sub, None, owner.as_deref());
        }
        Due::Renewal => {
            if sub["cancel_at_period_end"] == true {
                cancel_subscription(state, sub_id);
                return;
            }
            // A trial that ends with nothing to charge does what the subscription was told to.
            if sub["status"] == "trialing" && billing_payment_method(state, &sub).is_none() {
                match sub["trial_settings"]["end_behavior"]["missing_payment_method"].as_str() {
                    Some("pause") => {
                        let (paused, previous) = state.update(sub_id, |s| s["status"] = json!("paused"));
                        state.emit("customer.subscription.paused", &paused, Some(previous.clone()), owner.as_deref());
                        state.emit("customer.subscription.updated", &paused, Some(previous), owner.as_deref());
                        return;
                    }
                    Some("cancel") => {
                        cancel_subscription_for(state, sub_id, "payment_failed");
                        return;
                    }
                    _ => {}
                }
            }
            let period_end = sub["items"]["data"][0]["current_period_end"].as_i64().unwrap_or_default();
            let interval = sub["items"]["data"][0]["price"]["recurring"]["interval"].as_str().unwrap_or("month");
            let count = sub["items"]["data"][0]["price"]["recurring"]["interval_count"].as_i64().unwrap_or(1);
            let next_end = period_end + interval_seconds(interval) * count;
            let (updated, previous) = state.update(sub_id, |s| {
                if s["status"] == "trialing" {
                    s["status"] = json!("active");
                }
                if let Some(items) = s["items"]["data"].as_array_mut() {
                    for item in items {
                        item["current_period_start"] = json!(period_end);
                        item["current_period_end"] = json!(next_end);
                    }
                }
            });
            state.emit("customer.subscription.updated", &updated, Some(previous), owner.as_deref());
            if let Err(err) = invoice_subscription(state, sub_id, "subscription_cycle") {
                tracing::warn!(subscription = %sub_id, error = %err.message, "renewal could not be invoiced");
            }
        }
        Due::Finalisation => {
            if let Some(invoice) = sub["latest_invoice"].as_str() {
                finalize_and_charge(state, invoice);
            }
        }
        Due::Retry => {
            if let Some(invoice) = sub["latest_invoice"].as_str() {
                let _ = collect_invoice(state, invoice, true);
            }
        }
        Due::IncompleteExpiry => {
            let now = state.time_of(&sub);
            if let Some(invoice) = sub["latest_invoice"].as_str().filter(|i| state.any(i).is_some()) {
                let (voided, previous) = state.update(invoice, |i| {
                    i["status"] = json!("void");
                    i["next_payment_attempt"] = Value::Null;
                    i["status_transitions"]["voided_at"] = json!(now);
                });
                state.emit("invoice.voided", &voided, Some(previous), owner.as_deref());
            }
            set_subscription_status(state, sub_id, "incomplete_expired");
        }
    }
}

/// Runs, in order, everything that falls due up to `until` for the subscriptions on `clock`
/// (a test clock, or the sandbox clock for customers without one). Each item runs at its own
/// moment, so a clock moved three months renews three times, each dated when it was due.
pub fn run_billing(state: &mut State, clock: Option<&str>, until: i64) {
    // Each item moves its subscription's next moment forward; the bound only guards a mistake.
    for _ in 0..10_000 {
        let next = state
            .all_accounts("subscription")
            .into_iter()
            .filter(|(_, s)| state.clock_of(s).as_deref() == clock)
            .filter_map(|(_, s)| {
                let (at, due) = next_due(state, &s)?;
                Some((at, due, s["id"].as_str()?.to_owned()))
            })
            .filter(|(at, _, _)| *at <= until)
            .min_by_key(|(at, _, _)| *at);
        let Some((at, due, sub_id)) = next else { return };
        match clock {
            Some(clock) => {
                state.update(clock, |c| c["frozen_time"] = json!(at));
                run_due(state, &sub_id, due);
            }
            None => state.pinned_at(at, |state| run_due(state, &sub_id, due)),
        }
    }
    tracing::warn!("billing stopped after 10000 steps; something keeps falling due");
}

/// The sandbox clock's time-driven billing, and every test clock that is advancing.
pub fn run_billing_clock(state: &mut State) {
    let now = state.now();
    run_billing(state, None, now);
    run_advancing(state);
}

/// The object type of Stripe's test clocks.
pub const TEST_CLOCK: &str = "test_helpers.test_clock";

/// Finishes every advancing clock: runs what falls due on it up to its target, in order, then
/// makes it `ready`.
fn run_advancing(state: &mut State) {
    let advancing: Vec<(String, i64, Option<String>)> = state
        .all_accounts(TEST_CLOCK)
        .into_iter()
        .filter(|(_, c)| c["status"] == "advancing")
        .filter_map(|(account, c)| {
            let target = c["status_details"]["advancing"]["target_frozen_time"].as_i64()?;
            Some((c["id"].as_str()?.to_owned(), target, account))
        })
        .collect();
    for (id, target, account) in advancing {
        run_billing(state, Some(&id), target);
        let (clock, _) = state.update(&id, |c| {
            c["frozen_time"] = json!(target);
            c["status"] = json!("ready");
            c["status_details"] = json!({});
        });
        state.emit("test_helpers.test_clock.ready", &clock, None, account.as_deref());
    }
}

pub fn interval_seconds(interval: &str) -> i64 {
    match interval {
        "day" => 86_400,
        "week" => 7 * 86_400,
        "year" => 365 * 86_400,
        _ => 30 * 86_400,
    }
}

/// Connected accounts' payouts on the sandbox clock, as Stripe's default schedule makes them:
/// once a day (schedule `daily`), each currency's available balance of an Express or Custom
/// account with payouts enabled is paid out automatically (`payout.created`), and a payout whose
/// arrival date has come is `paid` (`payout.paid`). Payments become available two days after
/// they were made. A Standard account's payouts are its holder's business, made in their own
/// dashboard: the sandbox makes them only when asked (`POST /v1/payouts`).
pub fn run_payout_clock(state: &mut State) {
    let now = state.now();
    let today = now.div_euclid(86_400);
    let arrived: Vec<(Option<String>, String)> = state
        .all_accounts("payout")
        .into_iter()
        .filter(|(_, p)| {
            matches!(p["status"].as_str(), Some("pending" | "in_transit"))
                && p["arrival_date"].as_i64().is_some_and(|t| t <= now)
        })
        .filter_map(|(account, p)| Some((account, p["id"].as_str()?.to_owned())))
        .collect();
    for (account, id) in arrived {
        let (payout, previous) = state.update(&id, |p| p["status"] = json!("paid"));
        state.emit("payout.paid", &payout, Some(previous), account.as_deref());
    }
    let scheduled: Vec<String> = state
        .all("account", None)
        .into_iter()
        .filter(|a| {
            matches!(a["type"].as_str(), Some("express" | "custom"))
                && a["payouts_enabled"] == true
                && a["settings"]["payouts"]["schedule"]["interval"] == "daily"
        })
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    for account in scheduled {
        // This runs every tick: an account with nothing available costs one balance read.
        let (available, _) = state.balance_of(Some(&account));
        if available.values().all(|amount| *amount <= 0) {
            continue;
        }
        let paid_today: Vec<String> = state
            .all("payout", Some(&account))
            .into_iter()
            .filter(|p| p["automatic"] == true && p["created"].as_i64().is_some_and(|t| t.div_euclid(86_400) == today))
            .filter_map(|p| p["currency"].as_str().map(str::to_owned))
            .collect();
        for (currency, amount) in available {
            if amount > 0 && !paid_today.contains(&currency) {
                automatic_payout(state, &account, amount, &currency, now);
            }
        }
    }
}

fn automatic_payout(state: &mut State, account: &str, amount: i64, currency: &str, now: i64) {
    let id = new_id("po_");
    let bt = new_id("txn_");
    state.insert(Some(account), objects::balance_transaction(&bt, -amount, currency, "payout", &id, now));
    let mut payout = objects::payout(&id, amount, currency, now);
    payout["arrival_date"] = json!(now + 86_400);
    payout["balance_transaction"] = json!(bt);
    payout["status"] = json!("in_transit");
    state.insert(Some(account), payout.clone());
    state.emit("payout.created", &payout, None, Some(account));
}

/// Expires every open Checkout session whose `expires_at` has passed.
pub fn run_checkout_clock(state: &mut State) {
    let now = state.now();
    let due: Vec<String> = state
        .all("checkout.session", None)
        .into_iter()
        .filter(|s| s["status"] == "open" && s["expires_at"].as_i64().is_some_and(|t| t <= now))
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    for id in due {
        let _ = expire_session(state, &id);
    }
}

/// Everything the onboarding form collects, applied to the account.
pub struct OnboardingDetails {
    pub business_type: String,
    pub first_name: String,
    pub last_name: String,
    pub dob: (i64, i64, i64),
    pub address_line1: String,
    pub city: String,
    pub postal_code: String,
    /// `(routing number, account number)`; without it, payouts stay disabled.
    pub bank_account: Option<(String, String)>,
    pub accept_tos: bool,
}

/// Applies submitted onboarding details: the account's requirements, capabilities and flags
/// move as Stripe moves them, and `account.updated` announces it.
pub fn submit_onboarding(state: &mut State, account_id: &str, d: OnboardingDetails) -> ApiResult<Value> {
    let now = state.now();
    let mut still_due: Vec<String> = Vec::new();
    if d.bank_account.is_none() {
        still_due.push("external_account".into());
    }
    if !d.accept_tos {
        still_due.push("tos_acceptance.date".into());
    }
    let can_charge = d.accept_tos;
    let can_pay_out = can_charge && d.bank_account.is_some();
    let disabled_reason = if still_due.is_empty() { None } else { Some("requirements.past_due") };
    let deadline = (!still_due.is_empty()).then_some(now + 14 * 86_400);
    let (account, previous) = state.update(account_id, |a| {
        a["business_type"] = json!(d.business_type);
        a["details_submitted"] = json!(true);
        a["charges_enabled"] = json!(can_charge);
        a["payouts_enabled"] = json!(can_pay_out);
        a["capabilities"] = json!({
            "card_payments": if can_charge { "active" } else { "inactive" },
            "transfers": if can_pay_out { "active" } else { "inactive" },
        });
        a["requirements"] = objects::requirements(&still_due, &still_due, disabled_reason, deadline);
        a["individual"] = json!({
            "id": new_id("person_"), "object": "person", "account": account_id, "created": now,
            "first_name": d.first_name, "last_name": d.last_name,
            "dob": { "day": d.dob.0, "month": d.dob.1, "year": d.dob.2 },
            "address": { "line1": d.address_line1, "city": d.city, "postal_code": d.postal_code, "country": a["country"], "line2": null, "state": null },
        });
        if d.accept_tos {
            a["tos_acceptance"] = json!({ "date": now, "ip": "127.0.0.1", "user_agent": "Stripe sandbox" });
        }
        if let Some((routing, number)) = &d.bank_account {
            a["external_accounts"]["data"] = json!([{
                "id": new_id("ba_"), "object": "bank_account", "account": account_id, "account_holder_name": format!("{} {}", d.first_name, d.last_name),
                "account_holder_type": "individual", "bank_name": "STRIPE TEST BANK", "country": a["country"], "currency": a["default_currency"],
                "default_for_currency": true, "fingerprint": format!("fp{routing}"), "last4": &number[number.len().saturating_sub(4)..],
                "metadata": {}, "routing_number": routing, "status": "new",
            }]);
        }
    });
    state.emit("account.updated", &account, Some(previous), Some(account_id));
    Ok(account)
}

/// Sets an account's requirements directly (a control for tests and demos).
pub fn set_requirements(
    state: &mut State,
    account_id: &str,
    currently_due: Vec<String>,
    past_due: Vec<String>,
    disabled_reason: Option<String>,
    deadline: Option<i64>,
) -> ApiResult<Value> {
    state.require("account", account_id, None, "account")?;
    let blocking = !past_due.is_empty() || disabled_reason.is_some();
    let (account, previous) = state.update(account_id, |a| {
        a["requirements"] = objects::requirements(&currently_due, &past_due, disabled_reason.as_deref(), deadline);
        if blocking {
            a["charges_enabled"] = json!(false);
            a["payouts_enabled"] = json!(false);
        }
    });
    state.emit("account.updated", &account, Some(previous), Some(account_id));
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_retries_come_three_five_and_seven_days_after_finalisation_then_stop() {
        let finalized = 1_000_000;
        assert_eq!(next_retry(finalized, 1), Some(finalized + 3 * 86_400));
        assert_eq!(next_retry(finalized, 2), Some(finalized + 5 * 86_400));
        assert_eq!(next_retry(finalized, 3), Some(finalized + 7 * 86_400));
        assert_eq!(next_retry(finalized, 4), None, "the fourth attempt was the last");
        assert_eq!(next_retry(finalized, 0), None);
    }

    #[test]
    fn refund_shares_are_proportional_and_the_last_refund_takes_the_rest() {
        // A quarter of a $100 charge moves a quarter of its $10 fee back.
        assert_eq!(proportional(1000, 2500, 10_000, 0, 0), 250);
        // Three refunds of a third: rounding is evened out by the last one.
        assert_eq!(proportional(1000, 3333, 10_000, 0, 0), 333);
        assert_eq!(proportional(1000, 3333, 10_000, 3333, 333), 333);
        assert_eq!(proportional(1000, 3334, 10_000, 6666, 666), 334);
        // Never more than is left.
        assert_eq!(proportional(1000, 5000, 10_000, 0, 900), 100);
        assert_eq!(proportional(1000, 1, 0, 0, 0), 0);
    }

    #[test]
    fn test_cards_behave_as_documented() {
        assert_eq!(card_behaviour("4242424242424242").unwrap().1, CardBehaviour::Succeeds);
        assert_eq!(card_behaviour("4000000000000002").unwrap().1, CardBehaviour::Declines(GENERIC_DECLINE));
        assert_eq!(card_behaviour("4000000000009995").unwrap().1, CardBehaviour::Declines(INSUFFICIENT_FUNDS));
        assert_eq!(card_behaviour("4000002760003184").unwrap().1, CardBehaviour::RequiresAuthentication);
        assert_eq!(card_behaviour("4000000000009235").unwrap().1, CardBehaviour::ElevatedRisk);
        assert_eq!(card_behaviour("4000000000004954").unwrap().1, CardBehaviour::BlockedByRadar);
        assert_eq!(card_behaviour("1234123412341234").unwrap_err().code, "incorrect_number");
    }

    #[test]
    fn expiry_dates_parse_and_calendar_math_is_right() {
        assert_eq!(parse_expiry("12/34"), Some((12, 2034)));
        assert_eq!(parse_expiry("1 / 2031"), Some((1, 2031)));
        assert_eq!(parse_expiry("13/30"), None);
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(1_795_000_000), (2026, 11, 18));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(951_868_799), (2000, 2, 29));
        assert_eq!(civil_date(951_868_800), (2000, 3, 1));
    }
}
