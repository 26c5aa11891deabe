//! `stripe trigger` for the sandbox: makes the objects an event needs and brings it about the
//! way it happens on Stripe.

use serde_json::{Map, Value, json};

use crate::{
    api::start_subscription_for_trigger as start_subscription,
    flows, objects,
    state::State,
    wire::{ApiError, ApiResult, new_id},
};

pub const SUPPORTED: &[&str] = &[
    "account.updated",
    "charge.dispute.created",
    "charge.refunded",
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "checkout.session.expired",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "customer.subscription.updated",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "payment_intent.payment_failed",
    "payment_intent.succeeded",
    "payment_method.attached",
    "payout.paid",
];

fn test_card(state: &mut State, number: &str) -> String {
    let pm = flows::card_payment_method(state, number, "12/40", Some("Test Buyer".into()), None)
        .expect("test cards are valid");
    pm["id"].as_str().unwrap_or_default().to_owned()
}

fn payment_session(state: &mut State) -> String {
    let now = state.now();
    let id = new_id("cs_test_");
    let product = objects::product(&new_id("prod_"), "Triggered item", None, Map::new(), now);
    let price = objects::price(objects::NewPrice {
        id: new_id("price_"),
        product: product["id"].as_str().unwrap_or_default().to_owned(),
        currency: "usd".into(),
        unit_amount: 2000,
        recurring: None,
        nickname: None,
        metadata: Map::new(),
        created: now,
    });
    let mut session = objects::checkout_session(objects::NewCheckoutSession {
        id: id.clone(),
        mode: "payment".into(),
        amount_total: 2000,
        currency: Some("usd".into()),
        customer: None,
        customer_email: Some("buyer@example.com".into()),
        client_reference_id: None,
        success_url: Some("https://example.com/success".into()),
        cancel_url: None,
        expires_at: now + 86_400,
        metadata: Map::new(),
        url: state.url(&format!("/checkout/{id}")),
        created: now,
    });
    session["_line_items"] = json!([objects::checkout_line_item(&price, &product, 1)]);
    state.insert(None, product);
    state.insert(None, price);
    state.insert(None, session);
    id
}

fn paid_charge(state: &mut State) -> ApiResult<String> {
    let session = payment_session(state);
    let pi = flows::session_payment_intent(state, &session)?;
    let pm = test_card(state, "4242424242424242");
    flows::attempt_payment(state, &pi, &pm, false)?;
    flows::complete_session(state, &session, json!({ "email": "buyer@example.com", "name": "Test Buyer" }));
    Ok(state.any(&pi).and_then(|p| p["latest_charge"].as_str()).unwrap_or_default().to_owned())
}

fn subscription(state: &mut State, card: &str, trial_days: Option<i64>) -> String {
    let now = state.now();
    let customer_id = new_id("cus_");
    let customer = objects::customer(
        &customer_id,
        Some("subscriber@example.com".into()),
        Some("Test Subscriber".into()),
        Map::new(),
        now,
    );
    state.insert(None, customer.clone());
    state.emit("customer.created", &customer, None, None);
    let pm = test_card(state, card);
    let _ = flows::attach_payment_method(state, &pm, &customer_id, true);
    let product = objects::product(&new_id("prod_"), "Triggered plan", None, Map::new(), now);
    let price = objects::price(objects::NewPrice {
        id: new_id("price_"),
        product: product["id"].as_str().unwrap_or_default().to_owned(),
        currency: "usd".into(),
        unit_amount: 1500,
        recurring: Some(("month".into(), 1, None)),
        nickname: None,
        metadata: Map::new(),
        created: now,
    });
    state.insert(None, product);
    state.insert(None, price.clone());
    let sub = start_subscription(state, &customer_id, &price, trial_days);
    sub["id"].as_str().unwrap_or_default().to_owned()
}

/// Brings about `event` (optionally on a connected account) and returns the objects involved.
pub fn trigger(state: &mut State, event: &str, account: Option<&str>) -> ApiResult<Value> {
    let result = match event {
        "payment_intent.succeeded" | "checkout.session.completed" => json!({ "charge": paid_charge(state)? }),
        "checkout.session.async_payment_succeeded" | "checkout.session.async_payment_failed" => {
            let session = payment_session(state);
            let (s, _) = state.update(&session, |s| {
                s["status"] = json!("complete");
                s["payment_status"] = json!(if event.ends_with("succeeded") { "paid" } else { "unpaid" });
            });
            state.emit(event, &flows::public(&s), None, None);
            json!({ "checkout_session": session })
        }
        "payment_intent.payment_failed" => {
            let session = payment_session(state);
            let pi = flows::session_payment_intent(state, &session)?;
            let pm = test_card(state, "4000000000000002");
            flows::attempt_payment(state, &pi, &pm, false)?;
            json!({ "payment_intent": pi })
        }
        "checkout.session.expired" => {
            let session = payment_session(state);
            flows::expire_session(state, &session)?;
            json!({ "checkout_session": session })
        }
        "charge.refunded" => {
            let charge_id = paid_charge(state)?;
            let charge = state.any(&charge_id).cloned().unwrap_or_default();
            let refund = objects::refund(
                &new_id("re_"),
                &charge,
                charge["amount"].as_i64().unwrap_or(0),
                None,
                Map::new(),
                state.now(),
            );
            state.insert(None, refund.clone());
            let (charge, previous) = state.update(&charge_id, |c| {
                c["amount_refunded"] = c["amount"].clone();
                c["refunded"] = json!(true);
                c["refunds"]["data"] = json!([refund]);
            });
            state.emit("charge.refunded", &charge, Some(previous), None);
            json!({ "charge": charge_id })
        }
        "charge.dispute.created" => {
            let charge = paid_charge(state)?;
            flows::open_dispute(state, &charge);
            json!({ "charge": charge })
        }
        "customer.subscription.created" | "invoice.payment_succeeded" | "payment_method.attached" => {
            json!({ "subscription": subscription(state, "4242424242424242", None) })
        }
        "customer.subscription.updated" => {
            let sub = subscription(state, "4242424242424242", None);
            let (s, previous) = state.update(&sub, |s| s["metadata"] = json!({ "triggered": "true" }));
            state.emit("customer.subscription.updated", &s, Some(previous), None);
            json!({ "subscription": sub })
        }
        "customer.subscription.deleted" => {
            let sub = subscription(state, "4242424242424242", None);
            flows::cancel_subscription(state, &sub);
            json!({ "subscription": sub })
        }
        "customer.subscription.trial_will_end" => {
            let sub = subscription(state, "4242424242424242", Some(2));
            flows::run_billing_clock(state);
            json!({ "subscription": sub })
        }
        "invoice.payment_failed" => json!({ "subscription": subscription(state, "4000000000000341", None) }),
        "account.updated" => {
            let account = match account {
                Some(a) => a.to_owned(),
                None => {
                    let id = new_id("acct_");
                    let a = objects::account(objects::NewAccount {
                        id: id.clone(),
                        kind: "express",
                        country: "US",
                        email: Some("connected@example.com".into()),
                        business_type: None,
                        metadata: Map::new(),
                        created: state.now(),
                    });
                    state.insert(None, a);
                    id
                }
            };
            state.require("account", &account, None, "account")?;
            let (a, previous) = state.update(&account, |a| a["metadata"]["triggered"] = json!("true"));
            state.emit("account.updated", &a, Some(previous), Some(&account));
            json!({ "account": account })
        }
        "payout.paid" => {
            let account = account.ok_or_else(|| ApiError::missing("account"))?;
            state.require("account", account, None, "account")?;
            let payout = objects::payout(&new_id("po_"), 10_000, "usd", state.now());
            state.insert(Some(account), payout.clone());
            state.emit("payout.paid", &payout, None, Some(account));
            json!({ "payout": payout["id"] })
        }
        other => {
            return Err(ApiError::invalid(
                "parameter_invalid_string",
                format!("The sandbox cannot trigger {other}; it can trigger {}", SUPPORTED.join(", ")),
                "event",
            ));
        }
    };
    Ok(result)
}
