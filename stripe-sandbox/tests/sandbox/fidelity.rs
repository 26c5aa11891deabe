//! Behaviours checked against Stripe's: errors, deleted objects, events, enumerations, and the
//! money movement of destination charges (transfers, application fees, their refunds, balances).

use reqwest::Method;
use serde_json::Value;

use crate::support::{self, TestSandbox};

async fn post(t: &TestSandbox, path: &str, form: &str) -> (u16, Value) {
    t.call(Method::POST, path, form).await
}

#[tokio::test]
async fn paying_an_invoice_with_a_declining_card_is_a_card_error_and_the_invoice_stays_open() {
    let t = support::start().await;
    let (_, customer) = post(&t, "/v1/customers", "email=dunning%40example.com").await;
    let customer = customer["id"].as_str().unwrap().to_owned();
    let card = t.saved_card(&customer, "4000000000000341").await;
    let (_, price) =
        post(&t, "/v1/prices", "currency=usd&unit_amount=4900&recurring[interval]=month&product_data[name]=Pro").await;
    let (_, sub) = post(
        &t,
        "/v1/subscriptions",
        &format!("customer={customer}&items[0][price]={}&default_payment_method={card}", price["id"].as_str().unwrap()),
    )
    .await;
    let invoice = sub["latest_invoice"].as_str().unwrap().to_owned();

    let (status, body) = post(&t, &format!("/v1/invoices/{invoice}/pay"), "").await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["type"], "card_error");
    assert_eq!(body["error"]["code"], "card_declined");
    assert_eq!(body["error"]["decline_code"], "generic_decline");
    let invoice = t.get(&format!("/v1/invoices/{invoice}")).await;
    assert_eq!((invoice["status"].as_str(), invoice["attempt_count"].as_i64()), (Some("open"), Some(2)));
}

#[tokio::test]
async fn a_deleted_customer_is_retrieved_as_deleted_and_listed_no_more() {
    let t = support::start().await;
    let (_, customer) = post(&t, "/v1/customers", "email=gone%40example.com").await;
    let id = customer["id"].as_str().unwrap();
    let (status, deleted) = t.call(Method::DELETE, &format!("/v1/customers/{id}"), "").await;
    assert_eq!((status, &deleted["deleted"]), (200, &Value::Bool(true)));
    let (status, retrieved) = t.call(Method::GET, &format!("/v1/customers/{id}"), "").await;
    assert_eq!(status, 200);
    assert_eq!(retrieved, serde_json::json!({ "id": id, "object": "customer", "deleted": true }));
    assert!(t.get("/v1/customers").await["data"].as_array().unwrap().is_empty());
    let (status, body) = post(&t, &format!("/v1/customers/{id}"), "name=Back").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("resource_missing")));
}

#[tokio::test]
async fn an_unknown_id_in_a_parameter_is_a_bad_request_naming_the_parameter() {
    let t = support::start().await;
    let cases = [
        ("/v1/prices", "currency=usd&unit_amount=100&product=prod_missing", "product"),
        (
            "/v1/checkout/sessions",
            "mode=payment&success_url=https://x.example&line_items[0][price]=price_missing",
            "line_items[0][price]",
        ),
        ("/v1/subscriptions", "customer=cus_missing&items[0][price]=price_missing", "items[0][price]"),
        ("/v1/customers", "test_clock=clock_missing", "test_clock"),
        ("/v1/transfers", "amount=100&currency=usd&destination=acct_missing", "destination"),
    ];
    for (path, form, param) in cases {
        let (status, body) = post(&t, path, form).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "resource_missing", "{path}: {body}");
        assert_eq!(body["error"]["param"], param, "{path}: {body}");
    }
}

#[tokio::test]
async fn events_are_stripes_own_and_name_an_account_only_for_connected_accounts() {
    let t = support::start().await;
    let (_, account) = post(&t, "/v1/accounts", "type=express").await;
    let id = account["id"].as_str().unwrap();
    post(&t, &format!("/v1/accounts/{id}"), "email=seller%40example.com").await;
    post(&t, "/v1/customers", "email=c%40example.com").await;
    let updated = t.receiver.wait_for("account.updated", 1).await.remove(0);
    assert_eq!(updated["account"], id);
    let created = t.receiver.wait_for("customer.created", 1).await.remove(0);
    assert!(created.as_object().unwrap().get("account").is_none(), "platform events leave `account` out: {created}");
    assert!(!t.receiver.types().iter().any(|k| k == "account.created"), "Stripe has no account.created event");
}

#[tokio::test]
async fn enumerations_take_the_values_of_the_api_version() {
    let t = support::start().await;
    let base = "mode=payment&success_url=https://x.example&line_items[0][price_data][currency]=usd\
                &line_items[0][price_data][unit_amount]=500&line_items[0][price_data][product_data][name]=x";
    let (status, session) = post(&t, "/v1/checkout/sessions", &format!("{base}&ui_mode=hosted_page")).await;
    assert_eq!((status, session["ui_mode"].as_str()), (200, Some("hosted_page")), "{session}");
    let (status, body) = post(&t, "/v1/checkout/sessions", &format!("{base}&ui_mode=hosted")).await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("ui_mode")), "an old value is refused");

    let (_, account) = post(&t, "/v1/accounts", "type=express").await;
    let (status, session) = post(
        &t,
        "/v1/account_sessions",
        &format!(
            "account={}&components[payouts][enabled]=true&components[payouts][features][instant_payouts]=true\
             &components[tax_settings][enabled]=true",
            account["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    let components = session["components"].as_object().unwrap();
    // The 22 components of the SDK's typed model for this version (ConnectEmbeddedAccountSessionCreateComponents).
    assert_eq!(components.len(), 22, "every component of the version: {:?}", components.keys());
    assert_eq!(session["components"]["payouts"]["enabled"], true);
    assert_eq!(session["components"]["payouts"]["features"]["instant_payouts"], true);
    assert_eq!(session["components"]["tax_settings"]["enabled"], true);
    assert_eq!(session["components"]["account_onboarding"]["enabled"], false);
}

/// A paid destination charge of $100.00 with a $10.00 fee to a new Express account.
pub(crate) async fn destination_charge(t: &TestSandbox) -> (String, Value) {
    let (_, account) = post(t, "/v1/accounts", "type=express").await;
    let account = account["id"].as_str().unwrap().to_owned();
    let (_, session) = post(
        t,
        "/v1/checkout/sessions",
        &format!(
            "mode=payment&success_url=https://x.example&line_items[0][price_data][currency]=usd\
             &line_items[0][price_data][unit_amount]=10000&line_items[0][price_data][product_data][name]=Lot\
             &payment_intent_data[application_fee_amount]=1000&payment_intent_data[transfer_data][destination]={account}"
        ),
    )
    .await;
    assert_eq!(t.pay(session["url"].as_str().unwrap(), "4242424242424242").await.0, 303);
    let session = t.get(&format!("/v1/checkout/sessions/{}", session["id"].as_str().unwrap())).await;
    let pi = t.get(&format!("/v1/payment_intents/{}", session["payment_intent"].as_str().unwrap())).await;
    let charge = t.get(&format!("/v1/charges/{}", pi["latest_charge"].as_str().unwrap())).await;
    (account, charge)
}

async fn balance_of(t: &TestSandbox, account: Option<&str>) -> i64 {
    let mut request = t.http.get(t.url("/v1/balance")).bearer_auth(support::SECRET_KEY);
    if let Some(account) = account {
        request = request.header("Stripe-Account", account);
    }
    let balance: Value = request.send().await.unwrap().json().await.unwrap();
    balance["available"][0]["amount"].as_i64().unwrap() + balance["pending"][0]["amount"].as_i64().unwrap()
}

#[tokio::test]
async fn a_destination_charge_transfers_to_the_account_and_takes_the_fee_back() {
    let t = support::start().await;
    let (account, charge) = destination_charge(&t).await;
    let transfer = t.get(&format!("/v1/transfers/{}", charge["transfer"].as_str().unwrap())).await;
    assert_eq!((transfer["amount"].as_i64(), transfer["destination"].as_str()), (Some(10_000), Some(account.as_str())));
    assert_eq!(transfer["source_transaction"], charge["id"]);
    let fee = t.get(&format!("/v1/application_fees/{}", charge["application_fee"].as_str().unwrap())).await;
    assert_eq!((fee["amount"].as_i64(), fee["account"].as_str()), (Some(1000), Some(account.as_str())));
    assert_eq!(fee["originating_transaction"], charge["id"]);
    assert_eq!(balance_of(&t, Some(&account)).await, 9000, "the payment, net of the platform's fee");
    let stripe_fee = 10_000 * 29 / 1000 + 30;
    assert_eq!(balance_of(&t, None).await, 10_000 - stripe_fee - 10_000 + 1000);
    t.receiver.wait_for("transfer.created", 1).await;
    t.receiver.wait_for("application_fee.created", 1).await;
}

#[tokio::test]
async fn refunds_reverse_the_transfer_and_the_fee_in_proportion() {
    let t = support::start().await;
    let (account, charge) = destination_charge(&t).await;
    let charge_id = charge["id"].as_str().unwrap();
    let (status, refund) = post(
        &t,
        "/v1/refunds",
        &format!("charge={charge_id}&amount=2500&reverse_transfer=true&refund_application_fee=true"),
    )
    .await;
    assert_eq!(status, 200, "{refund}");
    let transfer = t.get(&format!("/v1/transfers/{}", charge["transfer"].as_str().unwrap())).await;
    assert_eq!((transfer["amount_reversed"].as_i64(), transfer["reversed"].as_bool()), (Some(2500), Some(false)));
    assert_eq!(refund["transfer_reversal"], transfer["reversals"]["data"][0]["id"]);
    let fee = t.get(&format!("/v1/application_fees/{}", charge["application_fee"].as_str().unwrap())).await;
    assert_eq!(fee["amount_refunded"], 250, "a quarter of the fee");
    assert_eq!(balance_of(&t, Some(&account)).await, 9000 - 2500 + 250);

    // The rest, without the fee: the account would have to give back more than it holds (the
    // fee it paid stays with the platform), so Stripe refuses and nothing moves.
    let (status, body) = post(&t, "/v1/refunds", &format!("charge={charge_id}&reverse_transfer=true")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("balance_insufficient")), "{body}");
    assert_eq!(balance_of(&t, Some(&account)).await, 9000 - 2500 + 250);
    // With the fee back in proportion, the account's balance covers its share exactly.
    let (status, _) =
        post(&t, "/v1/refunds", &format!("charge={charge_id}&reverse_transfer=true&refund_application_fee=true")).await;
    assert_eq!(status, 200);
    let transfer = t.get(&format!("/v1/transfers/{}", charge["transfer"].as_str().unwrap())).await;
    assert_eq!((transfer["amount_reversed"].as_i64(), transfer["reversed"].as_bool()), (Some(10_000), Some(true)));
    let reversals = t.get(&format!("/v1/transfers/{}/reversals", transfer["id"].as_str().unwrap())).await;
    assert_eq!(reversals["data"].as_array().unwrap().len(), 2);
    assert_eq!(balance_of(&t, Some(&account)).await, 0);
    t.receiver.wait_for("transfer.reversed", 2).await;
    t.receiver.wait_for("application_fee.refunded", 2).await;

    let (status, body) = post(&t, "/v1/refunds", &format!("charge={charge_id}&amount=1")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("charge_already_refunded")));
}

#[tokio::test]
async fn the_platform_transfers_reverses_and_refunds_fees_directly() {
    let t = support::start().await;
    let (account, charge) = destination_charge(&t).await;
    let (status, body) =
        post(&t, "/v1/transfers", &format!("amount=99999999&currency=usd&destination={account}")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("balance_insufficient")));
    let (status, transfer) = post(
        &t,
        "/v1/transfers",
        &format!("amount=500&currency=usd&destination={account}&source_transaction={}", charge["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{transfer}");
    let listed = t.get(&format!("/v1/transfers?destination={account}")).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let (status, reversal) =
        post(&t, &format!("/v1/transfers/{}/reversals", transfer["id"].as_str().unwrap()), "amount=200").await;
    assert_eq!((status, reversal["amount"].as_i64()), (200, Some(200)));
    let (status, body) =
        post(&t, &format!("/v1/transfers/{}/reversals", transfer["id"].as_str().unwrap()), "amount=301").await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("amount")), "only 300 is left");

    let fee_id = charge["application_fee"].as_str().unwrap();
    let (status, fee_refund) = post(&t, &format!("/v1/application_fees/{fee_id}/refunds"), "amount=100").await;
    assert_eq!((status, fee_refund["fee"].as_str()), (200, Some(fee_id)));
    let refunds = t.get(&format!("/v1/application_fees/{fee_id}/refunds")).await;
    assert_eq!(refunds["data"][0]["amount"], 100);
    let fees = t.get(&format!("/v1/application_fees?charge={}", charge["id"].as_str().unwrap())).await;
    assert_eq!(fees["data"][0]["amount_refunded"], 100);
}

#[tokio::test]
async fn disputes_are_listed_and_retrieved() {
    let t = support::start().await;
    let (_, session) = post(
        &t,
        "/v1/checkout/sessions",
        "mode=payment&success_url=https://x.example&line_items[0][price_data][currency]=usd\
         &line_items[0][price_data][unit_amount]=5000&line_items[0][price_data][product_data][name]=Lot",
    )
    .await;
    t.pay(session["url"].as_str().unwrap(), "4000000000000259").await;
    let created = t.receiver.wait_for("charge.dispute.created", 1).await.remove(0);
    let dispute = &created["data"]["object"];
    let listed = t.get(&format!("/v1/disputes?charge={}", dispute["charge"].as_str().unwrap())).await;
    assert_eq!(listed["data"][0]["id"], dispute["id"]);
    let retrieved = t.get(&format!("/v1/disputes/{}", dispute["id"].as_str().unwrap())).await;
    assert_eq!((retrieved["status"].as_str(), retrieved["amount"].as_i64()), (Some("needs_response"), Some(5000)));
}

#[tokio::test]
async fn a_rejected_account_can_take_no_charges_and_a_paused_subscription_resumes() {
    let t = support::start().await;
    let (_, account) = post(&t, "/v1/accounts", "type=express").await;
    let id = account["id"].as_str().unwrap();
    let (status, body) = post(&t, &format!("/v1/accounts/{id}/reject"), "").await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("reason")));
    let (status, rejected) = post(&t, &format!("/v1/accounts/{id}/reject"), "reason=fraud").await;
    assert_eq!(status, 200);
    assert_eq!(rejected["requirements"]["disabled_reason"], "rejected.fraud");
    assert_eq!(
        (rejected["charges_enabled"].as_bool(), rejected["payouts_enabled"].as_bool()),
        (Some(false), Some(false))
    );

    // A trial without a card pauses at its end when told to, and resumes billed at once.
    let (_, customer) = post(&t, "/v1/customers", "email=pause%40example.com").await;
    let customer = customer["id"].as_str().unwrap().to_owned();
    let (_, price) =
        post(&t, "/v1/prices", "currency=usd&unit_amount=1900&recurring[interval]=month&product_data[name]=Basic")
            .await;
    let (_, sub) = post(
        &t,
        "/v1/subscriptions",
        &format!(
            "customer={customer}&items[0][price]={}&trial_period_days=3&trial_settings[end_behavior][missing_payment_method]=pause",
            price["id"].as_str().unwrap()
        ),
    )
    .await;
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    let (status, body) = post(&t, &format!("/v1/subscriptions/{sub_id}/resume"), "").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("subscription_not_paused")));
    t.sandbox.advance_clock(3 * 86_400 + 60);
    assert_eq!(t.get(&format!("/v1/subscriptions/{sub_id}")).await["status"], "paused");
    t.receiver.wait_for("customer.subscription.paused", 1).await;

    let card = t.saved_card(&customer, "4242424242424242").await;
    post(&t, &format!("/v1/customers/{customer}"), &format!("invoice_settings[default_payment_method]={card}")).await;
    let (status, resumed) = post(&t, &format!("/v1/subscriptions/{sub_id}/resume"), "billing_cycle_anchor=now").await;
    assert_eq!((status, resumed["status"].as_str()), (200, Some("active")), "{resumed}");
    let invoice = t.get(&format!("/v1/invoices/{}", resumed["latest_invoice"].as_str().unwrap())).await;
    assert_eq!((invoice["status"].as_str(), invoice["amount_paid"].as_i64()), (Some("paid"), Some(1900)));
    t.receiver.wait_for("customer.subscription.resumed", 1).await;
}
