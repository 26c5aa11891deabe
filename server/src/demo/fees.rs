//! The consultant bills their household: Frankie's monthly planning retainer, which Frankie paid
//! on Stripe's page, and this year's tax return, still open. Made once, through the same
//! functions the fees page calls.

use std::time::Duration;

use chrono::Utc;
use domain::{
    Services,
    auth::Principal,
    fees::{self, Client, NewFee},
    states::FeeRequestStatus,
    worker,
};

use super::{Browser, STEP_DEADLINE, card_form, domain};

pub(super) async fn bill_household(
    services: &Services,
    browser: &Browser,
    consultant: &Principal,
    client: &Principal,
) -> anyhow::Result<()> {
    if !domain(fees::for_consultant(&services.pool, consultant.user_id).await, "reading the fees")?.is_empty() {
        return Ok(());
    }
    let today = Utc::now().date_naive();
    let fee = |description: &str, amount: &str, due_on: chrono::NaiveDate, recurrence: &str| NewFee {
        client: Client::Member(client.user_id),
        description: description.into(),
        amount: amount.into(),
        currency: "usd".into(),
        due_on: due_on.to_string(),
        recurrence: recurrence.into(),
    };
    let retainer = fees::request(services, consultant, fee("Financial planning retainer", "250.00", today, "monthly"));
    let retainer = domain(retainer.await, "billing the retainer")?;
    let tax_return = fee("Tax return 2026", "180.00", today + chrono::Duration::days(14), "once");
    domain(fees::request(services, consultant, tax_return).await, "billing the tax return")?;

    // Frankie pays the retainer on Stripe's page; Stripe's events make it paid.
    let page = domain(fees::pay(services, client, retainer.id).await, "opening the fee's payment page")?;
    browser.post_form(&page, &card_form("4242424242424242")).await?;
    let deadline = tokio::time::Instant::now() + STEP_DEADLINE;
    loop {
        let paid =
            domain(fees::get(&services.pool, retainer.id).await, "reading the fee")?.status == FeeRequestStatus::Paid;
        if paid && domain(worker::backlog(&services.pool).await, "reading the queue")? == 0 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("Remit did not record Frankie's payment of the retainer in time");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!("demo: the consultant billed their household");
    Ok(())
}
