//! The behaviours behind the hosted pages and the clock.

use reqwest::Method;
use serde_json::Value;

use crate::support::{self, SECRET_KEY, TestSandbox};

async fn payment_session(t: &TestSandbox, extra: &str) -> Value {
    let form = format!(
        "mode=payment&success_url=https%3A%2F%2Fremit.example%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D&cancel_url=https%3A%2F%2Fremit.example%2Fcancel\
         &line_items[0][quantity]=1&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=4500\
         &line_items[0][price_data][product_data][name]=Lot%207{extra}"
    );
    let (status, session) = t.call(Method::POST, "/v1/checkout/sessions", &form).await;
    assert_eq!(status, 200, "{session}");
    session
}

async fn get(t: &TestSandbox, path: &str) -> Value {
    t.call(Method::GET, path, "").await.1
}

#[tokio::test]
async fn the_test_cards_succeed_decline_and_run_out_of_funds() {
    let t = support::start().await;
    let session = payment_session(&t, "").await;
    let url = session["url"].as_str().unwrap();
    let page = t.http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Lot 7") && page.contains("$45.00"));

    let (status, _, html) = t.pay(url, "4000000000000002").await;
    assert_eq!(status, 402);
    assert!(html.contains("Your card was declined."));
    let (_, _, html) = t.pay(url, "4000000000009995").await;
    assert!(html.contains("Your card has insufficient funds."));
    let (_, _, html) = t.pay(url, "1234123412341234").await;
    assert!(html.contains("Your card number is incorrect."));
    let failures = t.receiver.wait_for("payment_intent.payment_failed", 2).await;
    assert_eq!(failures[0]["data"]["object"]["last_payment_error"]["decline_code"], "generic_decline");
    assert_eq!(failures[1]["data"]["object"]["last_payment_error"]["decline_code"], "insufficient_funds");

    let (status, location, _) = t.pay(url, "4242424242424242").await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), format!("https://remit.example/ok?s={}", session["id"].as_str().unwrap()));
    let completed = t.receiver.wait_for("checkout.session.completed", 1).await.remove(0);
    assert_eq!(completed["data"]["object"]["id"], session["id"]);
    let done = get(&t, &format!("/v1/checkout/sessions/{}", session["id"].as_str().unwrap())).await;
    assert_eq!(done["status"], "complete");
    let pi = get(&t, &format!("/v1/payment_intents/{}", done["payment_intent"].as_str().unwrap())).await;
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(pi["amount_received"], 4500);
    // A completed session's page sends the buyer to the success URL.
    let again = t.http.get(url).send().await.unwrap();
    assert_eq!(again.status(), 303);
}

#[tokio::test]
async fn three_d_secure_can_be_approved_or_failed() {
    let t = support::start().await;
    let session = payment_session(&t, "").await;
    let url = session["url"].as_str().unwrap();
    let (_, location, _) = t.pay(url, "4000002760003184").await;
    let challenge = t.url(&location.unwrap());
    let page = t.http.get(&challenge).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Complete authentication") && page.contains("Fail authentication"));
    let failed = t.http.post(&challenge).form(&[("decision", "fail")]).send().await.unwrap();
    assert!(failed.text().await.unwrap().contains("unable to authenticate"));
    let pi = get(
        &t,
        &format!(
            "/v1/payment_intents/{}",
            get(&t, &format!("/v1/checkout/sessions/{}", session["id"].as_str().unwrap())).await["payment_intent"]
                .as_str()
                .unwrap()
        ),
    )
    .await;
    assert_eq!(pi["last_payment_error"]["code"], "payment_intent_authentication_failure");

    let (_, location, _) = t.pay(url, "4000002760003184").await;
    let approved = t.http.post(t.url(&location.unwrap())).form(&[("decision", "approve")]).send().await.unwrap();
    assert_eq!(approved.status(), 303);
    t.receiver.wait_for("checkout.session.completed", 1).await;
}

#[tokio::test]
async fn sessions_expire_at_expires_at_and_the_page_says_so() {
    let t = support::start().await;
    let at = t.sandbox.now() + 1800;
    let session = payment_session(&t, &format!("&expires_at={at}")).await;
    assert_eq!(session["expires_at"], at);
    let (status, body) = t.call(Method::POST, "/v1/checkout/sessions", &format!("mode=payment&success_url=https://x.example&expires_at={}&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=500&line_items[0][price_data][product_data][name]=x", t.sandbox.now() + 60)).await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("expires_at")));

    t.sandbox.advance_clock(1801);
    let expired = t.receiver.wait_for("checkout.session.expired", 1).await.remove(0);
    assert_eq!(expired["data"]["object"]["id"], session["id"]);
    let page = t.http.get(session["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(page.status(), 410);
    let (status, body) =
        t.call(Method::POST, &format!("/v1/checkout/sessions/{}/expire", session["id"].as_str().unwrap()), "").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("checkout_session_unexpected_state")));
}

async fn subscribe(t: &TestSandbox, card: &str, trial_days: Option<u32>) -> (u16, Value) {
    let price = t.monthly_price().await;
    let trial = trial_days.map(|d| format!("&subscription_data[trial_period_days]={d}")).unwrap_or_default();
    let (_, session) = t
        .call(Method::POST, "/v1/checkout/sessions", &format!("mode=subscription&customer_email=c%40example.com&success_url=https://remit.example/ok&line_items[0][price]={}&line_items[0][quantity]=1&subscription_data[metadata][user]=u-1{trial}", price))
        .await;
    let (status, _, _) = t.pay(session["url"].as_str().unwrap(), card).await;
    (status, get(t, &format!("/v1/checkout/sessions/{}", session["id"].as_str().unwrap())).await)
}

#[tokio::test]
async fn subscription_checkout_creates_customer_subscription_invoice_and_renews() {
    let t = support::start().await;
    let (status, session) = subscribe(&t, "4242424242424242", None).await;
    assert_eq!(status, 303);
    let sub = get(&t, &format!("/v1/subscriptions/{}", session["subscription"].as_str().unwrap())).await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["metadata"]["user"], "u-1");
    for kind in [
        "customer.created",
        "payment_method.attached",
        "customer.subscription.created",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ] {
        t.receiver.wait_for(kind, 1).await;
    }
    t.sandbox.advance_clock(31 * 86_400);
    let paid = t.receiver.wait_for("invoice.payment_succeeded", 2).await;
    assert_eq!(paid[1]["data"]["object"]["billing_reason"], "subscription_cycle");
    let invoices = get(&t, &format!("/v1/invoices?subscription={}", sub["id"].as_str().unwrap())).await;
    assert_eq!(invoices["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_declined_card_creates_no_subscription_and_a_failing_renewal_goes_past_due() {
    let t = support::start().await;
    let (status, session) = subscribe(&t, "4000000000000002", None).await;
    assert_eq!(status, 402);
    assert!(session["subscription"].is_null());

    let (_, session) = subscribe(&t, "4000000000000341", Some(7)).await;
    let sub_id = session["subscription"].as_str().unwrap().to_owned();
    assert_eq!(get(&t, &format!("/v1/subscriptions/{sub_id}")).await["status"], "trialing");
    t.sandbox.advance_clock(5 * 86_400);
    t.receiver.wait_for("customer.subscription.trial_will_end", 1).await;
    t.sandbox.advance_clock(3 * 86_400);
    let failed = t.receiver.wait_for("invoice.payment_failed", 1).await.remove(0);
    assert_eq!(failed["data"]["object"]["attempt_count"], 1);
    assert_eq!(get(&t, &format!("/v1/subscriptions/{sub_id}")).await["status"], "past_due");

    // Recovery as Remit does it: save a working card through setup-mode Checkout, make it the
    // subscription's card, and pay the open invoice.
    let customer = session["customer"].as_str().unwrap();
    let (_, setup) = t
        .call(
            Method::POST,
            "/v1/checkout/sessions",
            &format!("mode=setup&customer={customer}&success_url=https://remit.example/ok"),
        )
        .await;
    t.pay(setup["url"].as_str().unwrap(), "4242424242424242").await;
    let setup =
        get(&t, &format!("/v1/checkout/sessions/{}?expand[]=setup_intent", setup["id"].as_str().unwrap())).await;
    let card = setup["setup_intent"]["payment_method"].as_str().unwrap();
    let (status, _) =
        t.call(Method::POST, &format!("/v1/subscriptions/{sub_id}"), &format!("default_payment_method={card}")).await;
    assert_eq!(status, 200);
    let invoice = failed["data"]["object"]["id"].as_str().unwrap();
    let (status, paid) = t.call(Method::POST, &format!("/v1/invoices/{invoice}/pay"), "").await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("paid")));
    t.receiver.wait_for("invoice.payment_succeeded", 2).await;
    assert_eq!(get(&t, &format!("/v1/subscriptions/{sub_id}")).await["status"], "active");
}

async fn account_with_link(t: &TestSandbox) -> (String, String) {
    let (_, account) = t.call(Method::POST, "/v1/accounts", "type=express&country=US").await;
    let id = account["id"].as_str().unwrap().to_owned();
    let (_, link) = t.call(Method::POST, "/v1/account_links", &format!("account={id}&type=account_onboarding&refresh_url=https://remit.example/refresh&return_url=https://remit.example/return")).await;
    (id, link["url"].as_str().unwrap().to_owned())
}

const ONBOARDING: [(&str, &str); 10] = [
    ("business_type", "individual"),
    ("first_name", "Casey"),
    ("last_name", "Consultant"),
    ("dob", "01/02/1985"),
    ("address_line1", "1 Main St"),
    ("city", "Springfield"),
    ("postal_code", "12345"),
    ("routing_number", "110000000"),
    ("account_number", "000123456789"),
    ("accept_tos", "yes"),
];

#[tokio::test]
async fn account_links_are_single_use_and_onboarding_enables_the_account() {
    let t = support::start().await;
    let (id, url) = account_with_link(&t).await;
    let page = t.http.get(&url).send().await.unwrap().text().await.unwrap();
    let action = page.split("action=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let reused = t.http.get(&url).send().await.unwrap();
    assert_eq!(reused.headers()["location"], "https://remit.example/refresh", "a used link goes to the refresh URL");

    let partial: Vec<_> = ONBOARDING.iter().filter(|(k, _)| !k.ends_with("number")).copied().collect();
    let submitted = t.http.post(t.url(&action)).form(&partial).send().await.unwrap();
    assert_eq!(submitted.headers()["location"], "https://remit.example/return");
    let account = get(&t, &format!("/v1/accounts/{id}")).await;
    assert_eq!(
        (account["details_submitted"].clone(), account["charges_enabled"].clone(), account["payouts_enabled"].clone()),
        (true.into(), true.into(), false.into())
    );
    assert_eq!(account["requirements"]["currently_due"], serde_json::json!(["external_account"]));
    assert!(account["requirements"]["current_deadline"].is_i64());
    let event = t.receiver.wait_for("account.updated", 1).await.remove(0);
    assert_eq!(event["data"]["previous_attributes"]["details_submitted"], false);

    let (_, url) = {
        let (_, link) = t.call(Method::POST, "/v1/account_links", &format!("account={id}&type=account_update&refresh_url=https://remit.example/refresh&return_url=https://remit.example/return")).await;
        ((), link["url"].as_str().unwrap().to_owned())
    };
    t.sandbox.advance_clock(301);
    let expired = t.http.get(&url).send().await.unwrap();
    assert_eq!(
        expired.headers()["location"],
        "https://remit.example/refresh",
        "an expired link goes to the refresh URL"
    );
}

#[tokio::test]
async fn embedded_onboarding_is_authorised_only_by_a_live_client_secret() {
    let t = support::start().await;
    let (id, _) = account_with_link(&t).await;
    let (_, session) = t.call(Method::POST, "/v1/account_sessions", &format!("account={id}&components[account_onboarding][enabled]=true&components[account_onboarding][features][external_account_collection]=true")).await;
    let secret = session["client_secret"].as_str().unwrap();

    let forged = t.http.get(t.url("/connect/embedded?client_secret=accs_secret__forged")).send().await.unwrap();
    assert_eq!(forged.status(), 401);
    let page = t.http.get(t.url(&format!("/connect/embedded?client_secret={secret}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut form: Vec<(&str, &str)> = ONBOARDING.to_vec();
    form.push(("client_secret", secret));
    let done = t.http.post(t.url("/connect/embedded")).form(&form).send().await.unwrap();
    assert!(done.text().await.unwrap().contains("Details submitted"));
    let account = get(&t, &format!("/v1/accounts/{id}")).await;
    assert_eq!((account["charges_enabled"].clone(), account["payouts_enabled"].clone()), (true.into(), true.into()));

    t.sandbox.advance_clock(3601);
    let stale = t.http.get(t.url(&format!("/connect/embedded?client_secret={secret}"))).send().await.unwrap();
    assert_eq!(stale.status(), 401, "client secrets expire after an hour");
    let js = t.http.get(t.url("/connect.js")).send().await.unwrap().text().await.unwrap();
    assert!(js.contains("StripeConnect.init") || js.contains("connect.init"));
    assert!(
        js.contains(&format!("const base = \"{}\"", t.sandbox.url()))
            && js.contains("\"client_secret=\" + encodeURIComponent(secret)")
            && js.contains("/connect/embedded/payouts")
    );
}

#[tokio::test]
async fn oauth_connects_and_deauthorises_a_standard_account() {
    let t = support::start().await;
    let authorize = t.url("/oauth/authorize?response_type=code&client_id=ca_sandbox&scope=read_write&state=s-123&redirect_uri=https%3A%2F%2Fremit.example%2Fcallback");
    assert!(t.http.get(&authorize).send().await.unwrap().text().await.unwrap().contains("Connect my Stripe account"));
    let decided = t
        .http
        .post(t.url("/oauth/authorize"))
        .form(&[
            ("decision", "allow"),
            ("state", "s-123"),
            ("redirect_uri", "https://remit.example/callback"),
            ("email", "owner@northwind.example"),
        ])
        .send()
        .await
        .unwrap();
    let location = decided.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("https://remit.example/callback?code=ac_") && location.ends_with("state=s-123"),
        "{location}"
    );
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap();

    let token = |code: String| {
        t.http
            .post(t.url("/oauth/token"))
            .bearer_auth(SECRET_KEY)
            .form(&[("grant_type", "authorization_code".to_owned()), ("code", code)])
            .send()
    };
    let granted: Value = token(code.to_owned()).await.unwrap().json().await.unwrap();
    let account = granted["stripe_user_id"].as_str().unwrap().to_owned();
    assert!(account.starts_with("acct_"));
    let reused = token(code.to_owned()).await.unwrap();
    assert_eq!(reused.status(), 400);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(get(&t, &format!("/v1/accounts/{account}")).await["charges_enabled"], true);

    let denied = t
        .http
        .post(t.url("/oauth/authorize"))
        .form(&[("decision", "deny"), ("state", "s-9"), ("redirect_uri", "https://remit.example/callback")])
        .send()
        .await
        .unwrap();
    assert!(denied.headers()["location"].to_str().unwrap().contains("error=access_denied"));

    let gone: Value = t
        .http
        .post(t.url("/oauth/deauthorize"))
        .bearer_auth(SECRET_KEY)
        .form(&[("client_id", "ca_sandbox"), ("stripe_user_id", account.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gone["stripe_user_id"], account);
    let again = t
        .http
        .post(t.url("/oauth/deauthorize"))
        .bearer_auth(SECRET_KEY)
        .form(&[("client_id", "ca_sandbox"), ("stripe_user_id", account.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn an_onboarded_accounts_balance_is_paid_out_daily_and_its_embedded_components_show_it() {
    let t = support::start().await;
    let (account, _) = crate::fidelity::destination_charge(&t).await;
    let components = "components[account_onboarding][enabled]=true\
        &components[account_onboarding][features][external_account_collection]=true\
        &components[payouts][enabled]=true&components[payments][enabled]=true\
        &components[notification_banner][enabled]=true";
    let (_, session) = t.call(Method::POST, "/v1/account_sessions", &format!("account={account}&{components}")).await;
    let secret = session["client_secret"].as_str().unwrap().to_owned();
    let component = async |name: &str, secret: &str| {
        let response =
            t.http.get(t.url(&format!("/connect/embedded/{name}?client_secret={secret}"))).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };

    let (status, banner) = component("notification-banner", &secret).await;
    assert_eq!(status, 200);
    assert!(banner.contains("Stripe needs more information"), "what is due before onboarding: {banner}");
    let mut form: Vec<(&str, &str)> = ONBOARDING.to_vec();
    form.push(("client_secret", &secret));
    t.http.post(t.url("/connect/embedded")).form(&form).send().await.unwrap();
    assert!(!component("notification-banner", &secret).await.1.contains("Stripe needs"), "nothing due once onboarded");

    // The $100.00 payment, net of the platform's $10.00 fee, is pending for two days.
    let (_, payouts) = component("payouts", &secret).await;
    assert!(payouts.contains("data-testid=\"pending\">$90.00") && payouts.contains("No payouts yet"), "{payouts}");
    assert!(payouts.contains("Automatic, daily"), "{payouts}");
    let (_, payments) = component("payments", &secret).await;
    assert!(
        payments.contains("$100.00") && payments.contains("$90.00") && payments.contains("Succeeded"),
        "{payments}"
    );

    // A session that did not enable a component does not show it; nor does a forged secret.
    let (_, onboarding_only) = t
        .call(
            Method::POST,
            "/v1/account_sessions",
            &format!("account={account}&components[account_onboarding][enabled]=true"),
        )
        .await;
    assert_eq!(component("payouts", onboarding_only["client_secret"].as_str().unwrap()).await.0, 401);
    assert_eq!(component("payments", "accs_secret__forged").await.0, 401);

    // Once available, the day's automatic payout takes the balance; it is paid a day later.
    t.sandbox.advance_clock(2 * 86_400 + 60);
    let created = t.receiver.wait_for("payout.created", 1).await.remove(0);
    let payout = &created["data"]["object"];
    assert_eq!((payout["amount"].as_i64(), payout["automatic"].as_bool()), (Some(9_000), Some(true)), "{payout}");
    assert_eq!((payout["status"].as_str(), created["account"].as_str()), (Some("in_transit"), Some(account.as_str())));
    let mut balance =
        t.http.get(t.url("/v1/balance")).bearer_auth(support::SECRET_KEY).header("Stripe-Account", &account);
    let read: Value = balance.send().await.unwrap().json().await.unwrap();
    assert_eq!(read["available"][0]["amount"], 0, "{read}");
    t.sandbox.advance_clock(60);
    assert_eq!(t.receiver.of_type("payout.created").len(), 1, "one automatic payout a day");
    t.sandbox.advance_clock(86_400);
    let paid = t.receiver.wait_for("payout.paid", 1).await.remove(0);
    assert_eq!(paid["data"]["object"]["id"], payout["id"]);
    let (_, session) = t.call(Method::POST, "/v1/account_sessions", &format!("account={account}&{components}")).await;
    let (_, payouts) = component("payouts", session["client_secret"].as_str().unwrap()).await;
    assert!(payouts.contains("paid") && payouts.contains("$90.00"), "{payouts}");
    balance = t.http.get(t.url("/v1/balance")).bearer_auth(support::SECRET_KEY).header("Stripe-Account", &account);
    let read: Value = balance.send().await.unwrap().json().await.unwrap();
    assert_eq!((read["available"][0]["amount"].as_i64(), read["pending"][0]["amount"].as_i64()), (Some(0), Some(0)));
}
