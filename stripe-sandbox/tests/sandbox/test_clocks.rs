//! Stripe's test clocks through the official client: customers on a clock live at its frozen
//! time, and advancing it runs their billing in order (trial notice, renewal, finalisation,
//! retries), asynchronously as at Stripe.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use stripe_billing::test_helpers_test_clock::{
    AdvanceTestHelpersTestClock, CreateTestHelpersTestClock, DeleteTestHelpersTestClock, ListTestHelpersTestClock,
    RetrieveTestHelpersTestClock,
};
use stripe_core::customer::CreateCustomer;
use stripe_shared::{TestHelpersTestClock, TestHelpersTestClockStatus};

use crate::support::{self, TestSandbox};

const DAY: i64 = 86_400;

/// Waits until the clock has finished advancing (Stripe's clients poll the same way).
async fn ready(t: &TestSandbox, clock: &TestHelpersTestClock) -> TestHelpersTestClock {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let current = RetrieveTestHelpersTestClock::new(clock.id.clone()).send(&t.client).await.unwrap();
        if current.status == TestHelpersTestClockStatus::Ready {
            return current;
        }
        assert!(tokio::time::Instant::now() < deadline, "the clock never became ready: {:?}", current.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn advance(t: &TestSandbox, clock: &TestHelpersTestClock, to: i64) -> TestHelpersTestClock {
    let advancing = AdvanceTestHelpersTestClock::new(clock.id.clone(), to).send(&t.client).await.unwrap();
    assert_eq!(advancing.status, TestHelpersTestClockStatus::Advancing, "advancing is asynchronous, as at Stripe");
    let done = ready(t, clock).await;
    assert_eq!(done.frozen_time, to);
    done
}

/// A customer on `clock` with a monthly $29 subscription (with `trial_days`) paid by `card`.
async fn subscriber(t: &TestSandbox, clock: &TestHelpersTestClock, card: &str, trial_days: i64) -> (String, Value) {
    let customer =
        CreateCustomer::new().email("clock@example.com").test_clock(clock.id.as_str()).send(&t.client).await.unwrap();
    assert_eq!(customer.test_clock.as_ref().map(|c| c.id().to_string()), Some(clock.id.to_string()));
    assert_eq!(customer.created, clock.frozen_time, "made at the clock's time");
    let card = t.saved_card(customer.id.as_str(), card).await;
    let price = t.monthly_price().await;
    let (status, sub) = t
        .call(
            Method::POST,
            "/v1/subscriptions",
            &format!(
                "customer={}&items[0][price]={}&default_payment_method={card}&trial_period_days={trial_days}",
                customer.id, price
            ),
        )
        .await;
    assert_eq!(status, 200, "{sub}");
    (customer.id.to_string(), sub)
}

fn invoices_of(t: &TestSandbox, sub: &Value) -> impl std::future::Future<Output = Vec<Value>> {
    let path = format!("/v1/invoices?subscription={}&limit=100", sub["id"].as_str().unwrap());
    async move {
        let mut invoices = t.get(&path).await["data"].as_array().unwrap().clone();
        invoices.sort_by_key(|i| i["created"].as_i64());
        invoices
    }
}

#[tokio::test]
async fn a_subscription_on_a_test_clock_follows_the_clock_through_trial_and_renewals() {
    let t = support::start().await;
    let start = t.sandbox.now() - 40 * DAY;
    let clock = CreateTestHelpersTestClock::new(start).name("Trial to renewal").send(&t.client).await.unwrap();
    assert_eq!((clock.status.clone(), clock.frozen_time), (TestHelpersTestClockStatus::Ready, start));
    t.receiver.wait_for("test_helpers.test_clock.created", 1).await;

    let (_, sub) = subscriber(&t, &clock, "4242424242424242", 7).await;
    assert_eq!((sub["status"].as_str(), sub["created"].as_i64()), (Some("trialing"), Some(start)));
    assert_eq!(sub["trial_end"], start + 7 * DAY);
    assert_eq!(sub["test_clock"], clock.id.as_str());

    // Five days on: the trial's end is announced, dated three days before it.
    advance(&t, &clock, start + 5 * DAY).await;
    let notice = t.receiver.wait_for("customer.subscription.trial_will_end", 1).await.remove(0);
    assert_eq!(notice["created"], start + 4 * DAY);
    assert_eq!(t.get(&format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap())).await["status"], "trialing");

    // Past the trial: the renewal invoice is a draft for an hour, then finalised and paid.
    advance(&t, &clock, start + 7 * DAY + 1800).await;
    let renewal = invoices_of(&t, &sub).await.pop().unwrap();
    assert_eq!((renewal["status"].as_str(), renewal["created"].as_i64()), (Some("draft"), Some(start + 7 * DAY)));
    assert_eq!(renewal["automatically_finalizes_at"], start + 7 * DAY + 3600);
    advance(&t, &clock, start + 8 * DAY).await;
    let renewal = invoices_of(&t, &sub).await.pop().unwrap();
    assert_eq!(renewal["status"], "paid");
    assert_eq!(renewal["status_transitions"]["paid_at"], start + 7 * DAY + 3600);
    assert_eq!(renewal["amount_paid"], 2900);
    assert_eq!(t.get(&format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap())).await["status"], "active");

    // At most two intervals in one step; within that, every period renews in order.
    let refused = AdvanceTestHelpersTestClock::new(clock.id.clone(), start + 8 * DAY + 61 * DAY)
        .send(&t.client)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("two intervals"), "{refused}");
    advance(&t, &clock, start + 8 * DAY + 60 * DAY).await;
    let invoices = invoices_of(&t, &sub).await;
    let created: Vec<i64> = invoices.iter().map(|i| i["created"].as_i64().unwrap()).collect();
    assert_eq!(created, vec![start, start + 7 * DAY, start + 37 * DAY, start + 67 * DAY]);
    assert!(invoices.iter().all(|i| i["status"] == "paid"), "{invoices:?}");
    let ready = t.receiver.wait_for("test_helpers.test_clock.ready", 4).await;
    assert!(ready.iter().all(|e| e["data"]["object"]["status"] == "ready"));

    // The sandbox's own clock did not move.
    assert!((t.sandbox.now() - (start + 40 * DAY)).abs() < 60);
}

#[tokio::test]
async fn a_failing_card_is_retried_on_the_clock_and_the_subscription_ends_after_the_last_retry() {
    let t = support::start().await;
    let start = t.sandbox.now();
    let clock = CreateTestHelpersTestClock::new(start).send(&t.client).await.unwrap();
    let (_, sub) = subscriber(&t, &clock, "4000000000000341", 1).await;
    let sub_path = format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap());

    advance(&t, &clock, start + DAY + 2 * 3600).await;
    let invoice = invoices_of(&t, &sub).await.pop().unwrap();
    let finalized = start + DAY + 3600;
    assert_eq!((invoice["status"].as_str(), invoice["attempt_count"].as_i64()), (Some("open"), Some(1)));
    assert_eq!(invoice["next_payment_attempt"], finalized + 3 * DAY);
    assert_eq!(t.get(&sub_path).await["status"], "past_due");

    // Smart Retries: 3, 5 and 7 days after finalisation; the fourth failure ends it.
    for (day, attempts) in [(3, 2), (5, 3)] {
        advance(&t, &clock, finalized + day * DAY).await;
        let invoice = invoices_of(&t, &sub).await.pop().unwrap();
        assert_eq!(invoice["attempt_count"], attempts);
        assert_eq!(t.get(&sub_path).await["status"], "past_due");
    }
    advance(&t, &clock, finalized + 7 * DAY).await;
    let invoice = invoices_of(&t, &sub).await.pop().unwrap();
    assert_eq!((invoice["attempt_count"].as_i64(), &invoice["next_payment_attempt"]), (Some(4), &Value::Null));
    let ended = t.get(&sub_path).await;
    assert_eq!((ended["status"].as_str(), ended["ended_at"].as_i64()), (Some("canceled"), Some(finalized + 7 * DAY)));
    assert_eq!(ended["cancellation_details"]["reason"], "payment_failed");
    assert_eq!(t.receiver.wait_for("invoice.payment_failed", 4).await.len(), 4);
}

#[tokio::test]
async fn an_incomplete_subscription_expires_after_23_hours_on_its_clock() {
    let t = support::start().await;
    let start = t.sandbox.now();
    let clock = CreateTestHelpersTestClock::new(start).send(&t.client).await.unwrap();
    let (_, sub) = subscriber(&t, &clock, "4000000000000341", 0).await;
    assert_eq!(sub["status"], "incomplete", "the first payment failed");
    advance(&t, &clock, start + 22 * 3600).await;
    let sub_path = format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap());
    assert_eq!(t.get(&sub_path).await["status"], "incomplete");
    advance(&t, &clock, start + 24 * 3600).await;
    assert_eq!(t.get(&sub_path).await["status"], "incomplete_expired");
    assert_eq!(invoices_of(&t, &sub).await[0]["status"], "void");
}

#[tokio::test]
async fn clocks_are_listed_refuse_going_back_and_take_their_customers_when_deleted() {
    let t = support::start().await;
    let start = t.sandbox.now();
    let clock = CreateTestHelpersTestClock::new(start).send(&t.client).await.unwrap();
    let (customer, _) = subscriber(&t, &clock, "4242424242424242", 0).await;
    let listed = ListTestHelpersTestClock::new().send(&t.client).await.unwrap();
    assert_eq!(listed.data.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![clock.id.clone()]);

    let (status, body) = t
        .call(
            Method::POST,
            &format!("/v1/test_helpers/test_clocks/{}/advance", clock.id),
            &format!("frozen_time={}", start - 1),
        )
        .await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("frozen_time")));
    let (_, advancing) = t
        .call(
            Method::POST,
            &format!("/v1/test_helpers/test_clocks/{}/advance", clock.id),
            &format!("frozen_time={}", start + 60),
        )
        .await;
    assert_eq!(advancing["status_details"]["advancing"]["target_frozen_time"], start + 60);
    ready(&t, &clock).await;

    let deleted = DeleteTestHelpersTestClock::new(clock.id.clone()).send(&t.client).await.unwrap();
    assert_eq!(deleted.id, clock.id);
    let customer = t.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(customer["deleted"], true, "{customer}");
    t.receiver.wait_for("test_helpers.test_clock.deleted", 1).await;
    t.receiver.wait_for("customer.subscription.deleted", 1).await;
}
