//! Every endpoint the sandbox offers, called through async-stripe: each response must
//! deserialise into async-stripe's types, and the values must be the ones asked for.

use std::collections::HashMap;

use stripe_billing::{
    invoice::{ListInvoice, PayInvoice, RetrieveInvoice},
    subscription::{
        CancelSubscription, CreateSubscription, CreateSubscriptionItems, ListSubscription, RetrieveSubscription,
        UpdateSubscription,
    },
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionPaymentIntentDataTransferData, CreateCheckoutSessionPaymentMethodOptions,
    CreateCheckoutSessionPaymentMethodOptionsCard, CreateCheckoutSessionPaymentMethodOptionsCardRequestThreeDSecure,
    ExpireCheckoutSession, ListCheckoutSession, ListLineItemsCheckoutSession, RetrieveCheckoutSession,
};
use stripe_client_core::StripeRequest as _;
use stripe_connect::{
    account::{CreateAccount, CreateAccountType, DeleteAccount, ListAccount, RetrieveAccount, UpdateAccount},
    account_link::{CreateAccountLink, CreateAccountLinkType},
    account_session::{CreateAccountSession, CreateAccountSessionComponents},
    login_link::CreateAccountLoginLink,
};
use stripe_core::{
    balance_transaction::{ListBalanceTransaction, RetrieveBalanceTransaction},
    charge::RetrieveCharge,
    customer::{
        CreateCustomer, DeleteCustomer, ListCustomer, ListPaymentMethodsCustomer, RetrieveCustomer, UpdateCustomer,
    },
    event::{ListEvent, RetrieveEvent},
    payment_intent::{ListPaymentIntent, RetrievePaymentIntent},
    payout::{ListPayout, RetrievePayout},
    refund::{CreateRefund, ListRefund, RetrieveRefund},
    setup_intent::{CreateSetupIntent, RetrieveSetupIntent},
};
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, DeleteWebhookEndpoint, ListWebhookEndpoint,
    RetrieveWebhookEndpoint, UpdateWebhookEndpoint,
};
use stripe_payment::payment_method::{
    AttachPaymentMethod, DetachPaymentMethod, ListPaymentMethod, RetrievePaymentMethod,
};
use stripe_product::{
    price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, RetrievePrice, UpdatePrice},
    product::{CreateProduct, ListProduct, RetrieveProduct, UpdateProduct},
};
use stripe_shared::{CheckoutSessionMode, CheckoutSessionPaymentStatus, CheckoutSessionStatus, SubscriptionStatus};

use crate::support::{self, TestSandbox};

async fn product_and_price(
    t: &TestSandbox,
    amount: i64,
    recurring: bool,
) -> (stripe_shared::Product, stripe_shared::Price) {
    let product = CreateProduct::new("Consultant plan").send(&t.client).await.unwrap();
    let mut price = CreatePrice::new(stripe_types::Currency::USD).product(product.id.as_str()).unit_amount(amount);
    if recurring {
        price = price.recurring(CreatePriceRecurring::new(CreatePriceRecurringInterval::Month));
    }
    (product, price.send(&t.client).await.unwrap())
}

#[tokio::test]
async fn connect_endpoints() {
    let t = support::start().await;
    let account = CreateAccount::new()
        .type_(CreateAccountType::Express)
        .country("US")
        .email("consultant@example.com")
        .metadata(HashMap::from([("consultant".to_owned(), "c-1".to_owned())]))
        .send(&t.client)
        .await
        .unwrap();
    assert!(account.id.as_str().starts_with("acct_"));
    assert_eq!(account.charges_enabled, Some(false));
    assert!(!account.requirements.as_ref().unwrap().currently_due.as_ref().unwrap().is_empty());

    let fetched = RetrieveAccount::new(account.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(fetched.email.as_deref(), Some("consultant@example.com"));
    let updated = UpdateAccount::new(account.id.clone()).email("new@example.com").send(&t.client).await.unwrap();
    assert_eq!(updated.email.as_deref(), Some("new@example.com"));
    let listed = ListAccount::new().limit(1).send(&t.client).await.unwrap();
    assert_eq!(listed.data.len(), 1);

    let link = CreateAccountLink::new(account.id.as_str(), CreateAccountLinkType::AccountOnboarding)
        .refresh_url("https://remit.example/refresh")
        .return_url("https://remit.example/return")
        .send(&t.client)
        .await
        .unwrap();
    assert!(link.url.starts_with(t.sandbox.url()));
    assert_eq!(link.expires_at - link.created, 300);

    let mut components = CreateAccountSessionComponents::new();
    components.account_onboarding = Some(stripe_connect::account_session::AccountConfigParam {
        enabled: true,
        features: Some(stripe_connect::account_session::AccountFeaturesParam {
            external_account_collection: Some(true),
            disable_stripe_user_authentication: None,
        }),
    });
    let session = CreateAccountSession::new(account.id.as_str(), components).send(&t.client).await.unwrap();
    assert!(session.client_secret.starts_with("accs_secret__"));
    assert!(session.components.account_onboarding.enabled);
    assert!(session.components.account_onboarding.features.external_account_collection);
    assert_eq!(session.expires_at - t.sandbox.now(), 3600);

    // A login link needs a finished onboarding: complete it through the hosted page.
    let page = t.http.get(&link.url).send().await.unwrap().text().await.unwrap();
    let action = page.split("action=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let form = [
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
    let done = t.http.post(t.url(&action)).form(&form).send().await.unwrap();
    assert_eq!(done.headers()["location"], "https://remit.example/return");
    let login = CreateAccountLoginLink::new(account.id.clone()).send(&t.client).await.unwrap();
    assert!(login.url.contains("/express/"));

    let deleted = DeleteAccount::new(account.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(deleted.id, account.id);
    assert!(RetrieveAccount::new(account.id.clone()).send(&t.client).await.is_err());
}

#[tokio::test]
async fn customers_products_prices_and_payment_methods() {
    let t = support::start().await;
    let customer = CreateCustomer::new().email("buyer@example.com").name("Ada Buyer").send(&t.client).await.unwrap();
    assert!(customer.id.as_str().starts_with("cus_"));
    match RetrieveCustomer::new(customer.id.clone()).send(&t.client).await.unwrap() {
        stripe_core::customer::RetrieveCustomerReturned::Customer(c) => {
            assert_eq!(c.name.as_deref(), Some("Ada Buyer"))
        }
        other => panic!("not a customer: {other:?}"),
    }
    let updated = UpdateCustomer::new(customer.id.clone()).name("Ada B.").send(&t.client).await.unwrap();
    assert_eq!(updated.name.as_deref(), Some("Ada B."));
    assert_eq!(ListCustomer::new().email("buyer@example.com").send(&t.client).await.unwrap().data.len(), 1);

    let (product, price) = product_and_price(&t, 2900, true).await;
    assert_eq!(RetrieveProduct::new(product.id.clone()).send(&t.client).await.unwrap().name, "Consultant plan");
    assert_eq!(UpdateProduct::new(product.id.clone()).name("Pro plan").send(&t.client).await.unwrap().name, "Pro plan");
    assert_eq!(ListProduct::new().send(&t.client).await.unwrap().data.len(), 1);
    let fetched = RetrievePrice::new(price.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(fetched.unit_amount, Some(2900));
    assert_eq!(fetched.recurring.unwrap().interval, stripe_shared::RecurringInterval::Month);
    assert_eq!(ListPrice::new().product(product.id.as_str()).send(&t.client).await.unwrap().data.len(), 1);
    let nicknamed = UpdatePrice::new(price.id.clone()).nickname("monthly").send(&t.client).await.unwrap();
    assert_eq!(nicknamed.nickname.as_deref(), Some("monthly"));

    // A setup-mode Checkout session saves a card on the customer.
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Setup)
        .customer(customer.id.as_str())
        .currency(stripe_types::Currency::USD)
        .success_url("https://remit.example/done")
        .send(&t.client)
        .await
        .unwrap();
    let (status, _, _) = t.pay(session.url.as_deref().unwrap(), "4242424242424242").await;
    assert_eq!(status, 303);
    let session = RetrieveCheckoutSession::new(session.id.clone()).send(&t.client).await.unwrap();
    let setup_intent = session.setup_intent.unwrap();
    let intent = RetrieveSetupIntent::new(setup_intent.id().clone()).send(&t.client).await.unwrap();
    assert_eq!(intent.status, stripe_shared::SetupIntentStatus::Succeeded);
    let saved = ListPaymentMethodsCustomer::new(customer.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(saved.data.len(), 1);
    let pm = &saved.data[0];
    assert_eq!(pm.card.as_ref().unwrap().last4, "4242");
    assert_eq!(RetrievePaymentMethod::new(pm.id.clone()).send(&t.client).await.unwrap().id, pm.id);
    assert_eq!(ListPaymentMethod::new().customer(customer.id.as_str()).send(&t.client).await.unwrap().data.len(), 1);
    let detached = DetachPaymentMethod::new(pm.id.clone()).send(&t.client).await.unwrap();
    assert!(detached.customer.is_none());
    let attached =
        AttachPaymentMethod::new(pm.id.clone()).customer(customer.id.as_str()).send(&t.client).await.unwrap();
    assert_eq!(attached.customer.unwrap().id(), &customer.id);

    let created = CreateSetupIntent::new().customer(customer.id.as_str()).send(&t.client).await.unwrap();
    assert_eq!(created.status, stripe_shared::SetupIntentStatus::RequiresPaymentMethod);

    let deleted = DeleteCustomer::new(customer.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(deleted.id, customer.id);
}

#[tokio::test]
async fn checkout_payments_refunds_and_balance() {
    let t = support::start().await;
    let seller = CreateAccount::new().type_(CreateAccountType::Express).send(&t.client).await.unwrap();
    let (_, price) = product_and_price(&t, 125_000, false).await;
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(price.id.to_string());
    item.quantity = Some(1);
    let mut pi_data = CreateCheckoutSessionPaymentIntentData::new();
    pi_data.metadata = Some(HashMap::from([("lot".to_owned(), "L-17".to_owned())]));
    pi_data.application_fee_amount = Some(6250);
    pi_data.transfer_data = Some(CreateCheckoutSessionPaymentIntentDataTransferData::new(seller.id.as_str()));
    let mut card = CreateCheckoutSessionPaymentMethodOptionsCard::new();
    card.request_three_d_secure = Some(CreateCheckoutSessionPaymentMethodOptionsCardRequestThreeDSecure::Any);
    let mut options = CreateCheckoutSessionPaymentMethodOptions::new();
    options.card = Some(card);
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![item])
        .payment_intent_data(pi_data)
        .payment_method_options(options)
        .customer_email("buyer@example.com")
        .success_url("https://remit.example/paid?session={CHECKOUT_SESSION_ID}")
        .cancel_url("https://remit.example/cancel")
        .expires_at(t.sandbox.now() + 3600)
        .metadata(HashMap::from([("bid".to_owned(), "b-1".to_owned())]))
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
    assert_eq!(session.amount_total, Some(125_000));
    let items = ListLineItemsCheckoutSession::new(session.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(items.data[0].amount_total, 125_000);

    // request_three_d_secure=any: every card is challenged first.
    let (status, location, _) = t.pay(session.url.as_deref().unwrap(), "4242424242424242").await;
    assert_eq!(status, 303);
    let challenge = location.unwrap();
    assert!(challenge.starts_with("/3ds/pi_"));
    let approved = t.http.post(t.url(&challenge)).form(&[("decision", "approve")]).send().await.unwrap();
    assert_eq!(
        approved.headers()["location"].to_str().unwrap(),
        format!("https://remit.example/paid?session={}", session.id)
    );

    let session = RetrieveCheckoutSession::new(session.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(session.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(session.payment_status, CheckoutSessionPaymentStatus::Paid);
    assert_eq!(ListCheckoutSession::new().send(&t.client).await.unwrap().data.len(), 1);
    let pi_id = session.payment_intent.unwrap().id().clone();
    let pi = RetrievePaymentIntent::new(pi_id.clone()).send(&t.client).await.unwrap();
    assert_eq!(pi.status, stripe_shared::PaymentIntentStatus::Succeeded);
    assert_eq!(pi.metadata.get("lot").map(String::as_str), Some("L-17"));
    assert_eq!(pi.application_fee_amount, Some(6250));
    assert_eq!(pi.transfer_data.unwrap().destination.id(), &seller.id);
    assert_eq!(ListPaymentIntent::new().send(&t.client).await.unwrap().data.len(), 1);
    let charge = RetrieveCharge::new(pi.latest_charge.unwrap().id().clone()).send(&t.client).await.unwrap();
    assert!(charge.paid);

    let refund = CreateRefund::new().payment_intent(pi_id.as_str()).amount(25_000).send(&t.client).await.unwrap();
    assert_eq!(refund.amount, 25_000);
    assert_eq!(RetrieveRefund::new(refund.id.clone()).send(&t.client).await.unwrap().id, refund.id);
    assert_eq!(ListRefund::new().send(&t.client).await.unwrap().data.len(), 1);

    let balance = ListBalanceTransaction::new().send(&t.client).await.unwrap();
    assert_eq!(balance.data.len(), 4, "the charge, its transfer to the seller, the fee back, and the refund");
    let charge_txn = balance.data.iter().find(|b| b.amount == 125_000).unwrap();
    assert_eq!(charge_txn.fee, 125_000 * 29 / 1000 + 30);
    assert_eq!(
        RetrieveBalanceTransaction::new(charge_txn.id.clone()).send(&t.client).await.unwrap().net,
        charge_txn.net
    );

    let expiring = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![{
            let mut i = CreateCheckoutSessionLineItems::new();
            i.price = Some(price.id.to_string());
            i.quantity = Some(1);
            i
        }])
        .success_url("https://remit.example/paid")
        .send(&t.client)
        .await
        .unwrap();
    let expired = ExpireCheckoutSession::new(expiring.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(expired.status, Some(CheckoutSessionStatus::Expired));
}

#[tokio::test]
async fn subscriptions_invoices_events_and_payouts() {
    let t = support::start().await;
    let (_, price) = product_and_price(&t, 4900, true).await;
    let customer = CreateCustomer::new().email("consultant@example.com").send(&t.client).await.unwrap();
    // Save a card through setup-mode Checkout, then subscribe with it.
    let setup = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Setup)
        .customer(customer.id.as_str())
        .success_url("https://remit.example/done")
        .send(&t.client)
        .await
        .unwrap();
    t.pay(setup.url.as_deref().unwrap(), "4242424242424242").await;
    let pm = ListPaymentMethodsCustomer::new(customer.id.clone()).send(&t.client).await.unwrap().data.remove(0);

    let mut item = CreateSubscriptionItems::new();
    item.price = Some(price.id.to_string());
    let subscription = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item])
        .default_payment_method(pm.id.as_str())
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(subscription.status, SubscriptionStatus::Active);
    let period = &subscription.items.data[0];
    assert_eq!(period.current_period_end - period.current_period_start, 30 * 86_400);
    let fetched = RetrieveSubscription::new(subscription.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(
        fetched.latest_invoice.as_ref().map(|i| i.id().clone()),
        subscription.latest_invoice.as_ref().map(|i| i.id().clone())
    );
    assert_eq!(ListSubscription::new().customer(customer.id.as_str()).send(&t.client).await.unwrap().data.len(), 1);

    let invoice_id = fetched.latest_invoice.unwrap().id().clone().unwrap();
    let invoice = RetrieveInvoice::new(invoice_id.clone()).send(&t.client).await.unwrap();
    assert_eq!(invoice.status, Some(stripe_shared::InvoiceStatus::Paid));
    assert_eq!(invoice.amount_paid, 4900);
    let pdf = reqwest::get(invoice.invoice_pdf.unwrap()).await.unwrap();
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF"));
    assert_eq!(ListInvoice::new().customer(customer.id.as_str()).send(&t.client).await.unwrap().data.len(), 1);
    let already = PayInvoice::new(invoice_id).send(&t.client).await.unwrap_err();
    assert!(format!("{already:?}").contains("already paid"), "{already:?}");

    let at_end =
        UpdateSubscription::new(subscription.id.clone()).cancel_at_period_end(true).send(&t.client).await.unwrap();
    assert!(at_end.cancel_at_period_end);
    let canceled = CancelSubscription::new(subscription.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);

    let events = ListEvent::new().type_("customer.subscription.created").send(&t.client).await.unwrap();
    assert_eq!(events.data.len(), 1);
    let event = RetrieveEvent::new(events.data[0].id.clone()).send(&t.client).await.unwrap();
    assert_eq!(event.id, events.data[0].id);

    let seller = CreateAccount::new().type_(CreateAccountType::Express).send(&t.client).await.unwrap();
    t.sandbox.trigger("payout.paid", Some(seller.id.as_str())).unwrap();
    let payouts = ListPayout::new().customize().account_id(seller.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(payouts.data.len(), 1);
    let payout = RetrievePayout::new(payouts.data[0].id.clone())
        .customize()
        .account_id(seller.id.clone())
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(payout.amount, 10_000);
    assert!(
        ListPayout::new().send(&t.client).await.unwrap().data.is_empty(),
        "the platform does not see a connected account's payouts"
    );
}

#[tokio::test]
async fn webhook_endpoints() {
    let t = support::start().await;
    let created = CreateWebhookEndpoint::new(
        vec![CreateWebhookEndpointEnabledEvents::CheckoutSessionCompleted],
        "https://remit.example/hooks",
    )
    .send(&t.client)
    .await
    .unwrap();
    assert!(created.secret.as_deref().unwrap().starts_with("whsec_"));
    let fetched = RetrieveWebhookEndpoint::new(created.id.clone()).send(&t.client).await.unwrap();
    assert!(fetched.secret.is_none(), "the secret is shown only at creation");
    let updated = UpdateWebhookEndpoint::new(created.id.clone())
        .url("https://remit.example/hooks2")
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(updated.url, "https://remit.example/hooks2");
    // Two endpoints were registered by the test harness.
    assert_eq!(ListWebhookEndpoint::new().send(&t.client).await.unwrap().data.len(), 3);
    assert_eq!(DeleteWebhookEndpoint::new(created.id.clone()).send(&t.client).await.unwrap().id, created.id);
    assert_eq!(ListWebhookEndpoint::new().send(&t.client).await.unwrap().data.len(), 2);
}
