//! Thirty won lots over the last 30 days, each with its story: most paid (some over $500 with
//! 3D Secure), some declined and then paid, one refused three times, one disputed, one Radar
//! rated elevated risk, one partly refunded by the owner (with its credit note), one left to
//! expire, one cancelled by the owner, and the last few still awaiting payment.
//!
//! Each lot is registered as the tenant's system does, and its buyer pays on Stripe's hosted
//! page with the sandbox's clock set to the lot's day, so Stripe dates the payment (and Remit,
//! which takes payment times from Stripe, the order and the dashboards) on that day. Once Remit
//! has applied what Stripe reported, its own records of the lot (registration, payment pages,
//! receipt, mail, security events) are moved to the same day: Remit has no clock to set back.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, TimeZone as _, Utc};
use domain::{
    Services,
    auth::Principal,
    checkout::{self, lifecycle::Actor},
    refunds, seed, worker,
};
use stripe_sandbox::Sandbox;
use uuid::Uuid;

use super::{Browser, STEP_DEADLINE, card_form, domain, query_value};

/// What happens to a lot after it is won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    /// Paid with this card (3D Secure approved when asked for).
    Paid(&'static str),
    /// This card first (declined, or blocked by Radar), then a good one on the same page.
    DeclinedThenPaid(&'static str),
    /// 3D Secure failed, then passed on a second try.
    AuthenticationFailedThenPaid,
    /// Declined three times: the payment link closes.
    FailedThreeTimes,
    /// Paid with a good card; the owner then refunded this much (US cents) the same day.
    PaidThenRefunded(i64),
    /// Never paid; the 24-hour window ran out.
    Expired,
    /// Cancelled by the owner before it was paid.
    Cancelled,
    /// Won in the last day, not paid yet.
    Awaiting,
}

use Story::*;

const GOOD: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const NO_FUNDS: &str = "4000000000009995";
const RADAR_BLOCKS: &str = "4000000000004954";
const DISPUTED: &str = "4000000000000259";
const ELEVATED_RISK: &str = "4000000000009235";

struct DemoLot {
    /// Days before today the lot was won, and at what hour (UTC).
    days_ago: i64,
    hour: u32,
    lot: &'static str,
    description: &'static str,
    /// US cents.
    amount: i64,
    buyer: &'static str,
    story: Story,
}

const fn lot(
    days_ago: i64,
    hour: u32,
    lot: &'static str,
    description: &'static str,
    amount: i64,
    buyer: &'static str,
    story: Story,
) -> DemoLot {
    DemoLot { days_ago, hour, lot, description, amount, buyer, story }
}

const LOTS: [DemoLot; 30] = [
    lot(29, 15, "112", "Georgian silver teapot, London 1790", 185_000, "amelia.hart@example.com", Paid(GOOD)),
    lot(28, 11, "118", "Pair of Staffordshire spaniels", 32_000, "ben.okafor@example.com", Paid(GOOD)),
    lot(27, 16, "124", "Art Deco bronze dancer on onyx base", 240_000, "chloe.martin@example.com", Paid(GOOD)),
    lot(
        26,
        14,
        "131",
        "The Hobbit, first edition, 1937",
        420_000,
        "david.levi@example.com",
        AuthenticationFailedThenPaid,
    ),
    lot(
        25,
        10,
        "137",
        "Victorian mahogany writing slope",
        27_500,
        "emma.schultz@example.com",
        DeclinedThenPaid(DECLINED),
    ),
    lot(24, 13, "142", "Leica M3 with Summicron 50 mm", 165_000, "farid.haddad@example.com", Paid(GOOD)),
    lot(23, 17, "149", "Omega Seamaster, 1962", 112_000, "grace.ng@example.com", Paid(ELEVATED_RISK)),
    lot(
        22,
        12,
        "153",
        "Chinese export porcelain punch bowl",
        68_000,
        "hugo.silva@example.com",
        PaidThenRefunded(20_000),
    ),
    lot(21, 15, "160", "Eames lounge chair and ottoman, 1970s", 390_000, "isla.murphy@example.com", Paid(GOOD)),
    lot(20, 18, "166", "Persian Tabriz rug, 3 × 2 m", 145_000, "jonas.berg@example.com", FailedThreeTimes),
    lot(19, 10, "171", "Regency rosewood card table", 89_000, "keiko.sato@example.com", Paid(GOOD)),
    lot(18, 14, "178", "Hasselblad 500C/M kit", 74_000, "liam.walsh@example.com", DeclinedThenPaid(NO_FUNDS)),
    lot(17, 16, "183", "Six Arts and Crafts oak chairs", 120_000, "maya.patel@example.com", Paid(GOOD)),
    lot(16, 11, "190", "Lalique 'Bacchantes' glass vase", 275_000, "noah.fischer@example.com", Paid(DISPUTED)),
    lot(15, 13, "196", "Mid-century teak sideboard", 56_000, "olivia.rossi@example.com", Paid(GOOD)),
    lot(14, 15, "203", "Rolex Oyster Perpetual, 1968", 410_000, "pablo.garcia@example.com", Paid(GOOD)),
    lot(13, 12, "209", "Brass library telescope on stand", 41_000, "quinn.baker@example.com", Expired),
    lot(12, 17, "214", "Tiffany Studios desk lamp", 330_000, "rosa.jimenez@example.com", Paid(GOOD)),
    lot(
        11,
        10,
        "221",
        "Signed Beatles photograph, 1964",
        95_000,
        "sam.cohen@example.com",
        DeclinedThenPaid(RADAR_BLOCKS),
    ),
    lot(10, 14, "227", "Meissen figure group, 'The Music Lesson'", 72_000, "tara.kelly@example.com", Paid(GOOD)),
    lot(9, 16, "232", "Bang & Olufsen Beogram 4000", 38_500, "uma.nair@example.com", Paid(GOOD)),
    lot(8, 11, "238", "Edwardian diamond brooch", 215_000, "victor.dubois@example.com", Paid(GOOD)),
    lot(7, 15, "241", "Nikon F2 Photomic", 29_000, "wendy.clarke@example.com", Paid(GOOD)),
    lot(6, 13, "247", "Murano glass chandelier", 178_000, "xavier.moreau@example.com", Paid(GOOD)),
    lot(5, 10, "252", "Carved oak hall bench", 46_000, "yara.haddad@example.com", Paid(GOOD)),
    lot(4, 17, "258", "Patek Philippe pocket watch", 365_000, "zoe.andersen@example.com", Paid(GOOD)),
    lot(3, 12, "263", "Hermès silk scarf collection", 54_000, "alex.turner@example.com", Paid(GOOD)),
    lot(1, 20, "270", "Sèvres porcelain cabinet plate", 64_000, "bella.costa@example.com", Cancelled),
    lot(0, 6, "274", "Georg Jensen silver cutlery set", 135_000, "carl.lindqvist@example.com", Awaiting),
    lot(0, 9, "279", "Victorian walnut mantel clock", 42_500, "dana.reyes@example.com", Awaiting),
];

/// The auction a lot was sold in, by its week.
fn auction(days_ago: i64) -> &'static str {
    match days_ago {
        20.. => "Autumn fine art and antiques",
        10..=19 => "Collectors' watches, cameras and design",
        _ => "Winter decorative arts",
    }
}

/// When the story puts the lot: its day and hour, and never later than an hour ago.
fn won_at(now: DateTime<Utc>, days_ago: i64, hour: u32) -> DateTime<Utc> {
    let day = now.date_naive() - chrono::Days::new(u64::try_from(days_ago).unwrap_or(0));
    let at = Utc.from_utc_datetime(&day.and_hms_opt(hour, 17, 0).unwrap_or_default());
    at.min(now - chrono::Duration::hours(1))
}

pub async fn run(
    services: &Services,
    sandbox: &Sandbox,
    browser: &Browser,
    tenant: Uuid,
    owner: &Principal,
) -> anyhow::Result<()> {
    for (index, demo) in LOTS.iter().enumerate() {
        let reference = format!("DEMO-{:02}", index + 1);
        if domain(seed::demo_lot(services, tenant, &reference).await, "looking up a lot")?.is_some() {
            continue;
        }
        play(services, sandbox, browser, (tenant, owner), &reference, demo)
            .await
            .with_context(|| format!("demo lot {reference} ({})", demo.description))?;
    }
    Ok(())
}

async fn play(
    services: &Services,
    sandbox: &Sandbox,
    browser: &Browser,
    (tenant, owner): (Uuid, &Principal),
    reference: &str,
    demo: &DemoLot,
) -> anyhow::Result<()> {
    let since = Utc::now();
    let story_at = won_at(since, demo.days_ago, demo.hour);
    let winning = checkout::NewWinning {
        reference: reference.to_owned(),
        auction: auction(demo.days_ago).to_owned(),
        lot: demo.lot.to_owned(),
        description: demo.description.to_owned(),
        buyer_email: demo.buyer.to_owned(),
        amount: demo.amount,
        currency: "usd".into(),
        runners_up: vec![],
    };
    let (bid, token) = domain(seed::register_demo_lot(services, tenant, &winning).await, "registering")?;
    let (cards, expected): (&[&str], Expected) = match demo.story {
        Paid(DISPUTED) => (&[DISPUTED][..], Expected { order_status: Some("disputed"), ..Expected::paid(1) }),
        Paid(card) => (&[card][..], Expected::paid(1)),
        PaidThenRefunded(_) => (&[GOOD][..], Expected::paid(1)),
        DeclinedThenPaid(first) => (&[first, GOOD][..], Expected::paid(2)),
        AuthenticationFailedThenPaid => (&[GOOD, GOOD][..], Expected::paid(2)),
        FailedThreeTimes => (&[DECLINED, DECLINED, DECLINED][..], Expected::failed()),
        Expired | Awaiting | Cancelled => (&[][..], Expected::awaiting()),
    };
    if !cards.is_empty() {
        let page = domain(checkout::start(services, &token, None).await, "opening the payment page")?;
        // Stripe dates the buyer's payment on the lot's day.
        let offset = sandbox.clock_offset();
        sandbox.set_clock_offset(story_at.timestamp() - Utc::now().timestamp());
        let paid = pay(browser, &page, cards, demo.story == AuthenticationFailedThenPaid).await;
        sandbox.set_clock_offset(offset);
        if let Some(session) = paid? {
            // The buyer lands back on Remit's page, which asks Stripe how it went.
            domain(checkout::confirm_return(services, &session).await, "returning from Stripe")?;
        }
    }
    settled(services, bid.id, &expected).await?;
    match demo.story {
        PaidThenRefunded(amount) => {
            // The owner refunds part of it from the winning's page, a few hours later by Stripe's clock.
            let offset = sandbox.clock_offset();
            sandbox.set_clock_offset((story_at + chrono::Duration::hours(3)).timestamp() - Utc::now().timestamp());
            let request =
                refunds::NewRefund { amount: Some(amount), reason: "A chip on the rim, found on delivery".into() };
            let made = refunds::create(
                services,
                refunds::Refunded::Winning { tenant_id: tenant, bid_id: bid.id },
                refunds::Requester::Staff(owner),
                &request,
                None,
            )
            .await;
            sandbox.set_clock_offset(offset);
            domain(made, "refunding")?;
            let refunded = Expected { order_status: Some("partially_refunded"), ..Expected::paid(1) };
            settled(services, bid.id, &refunded).await?;
        }
        Cancelled => {
            let reason = "The consignor withdrew the lot.";
            let cancelled = checkout::lifecycle::cancel(services, tenant, Actor::Staff(owner), bid.id, reason).await;
            domain(cancelled, "cancelling")?;
            settled(services, bid.id, &Expected { status: "cancelled", ..Expected::awaiting() }).await?;
        }
        _ => {}
    }
    domain(seed::backdate_lot(services, bid.id, since, since - story_at).await, "dating the lot")?;
    if demo.story == Expired {
        domain(checkout::lifecycle::expire(services, bid.id).await, "closing the window")?;
    }
    Ok(())
}

/// The buyer tries each card in turn on the same Checkout page (3D Secure approved, or failed
/// the first time when `fail_first_challenge`). Returns the Checkout session when one was paid.
async fn pay(
    browser: &Browser,
    page: &str,
    cards: &[&str],
    mut fail_first_challenge: bool,
) -> anyhow::Result<Option<String>> {
    for card in cards {
        let mut answer = browser.post_form(page, &card_form(card)).await?;
        if let Some(challenge) = answer.location.clone().filter(|l| l.contains("/3ds/") || l.contains("/authenticate"))
        {
            let decision = if std::mem::take(&mut fail_first_challenge) { "fail" } else { "approve" };
            answer = browser.post_form(&challenge, &[("decision", decision)]).await?;
        }
        if let Some(back) = answer.location.filter(|_| answer.status == 303) {
            return Ok(Some(query_value(&back, "session")?));
        }
    }
    Ok(None)
}

/// What Remit should show for a lot once Stripe's events are applied.
struct Expected {
    status: &'static str,
    order_status: Option<&'static str>,
    outcomes: i64,
    receipt: bool,
}

impl Expected {
    fn paid(attempts: i64) -> Self {
        Self { status: "paid", order_status: Some("paid"), outcomes: attempts, receipt: true }
    }

    fn failed() -> Self {
        Self { status: "failed", order_status: None, outcomes: 3, receipt: false }
    }

    fn awaiting() -> Self {
        Self { status: "awaiting_payment", order_status: None, outcomes: 0, receipt: false }
    }
}

/// Waits until Remit shows the lot as expected, its buyer's mail is sent and its jobs are done.
async fn settled(services: &Services, bid: Uuid, expected: &Expected) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP_DEADLINE;
    loop {
        let progress = domain(seed::lot_progress(services, bid).await, "reading the lot")?;
        let done = progress.status == expected.status
            && progress.order_status.as_deref() == expected.order_status
            && progress.outcomes >= expected.outcomes
            && (progress.receipt_issued || !expected.receipt)
            && progress.mail_pending == 0
            && domain(worker::backlog(&services.pool).await, "reading the queue")? == 0;
        if done {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("Remit did not settle the lot in time: {progress:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lots_fall_on_their_day_and_never_in_the_last_hour() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap();
        assert_eq!(won_at(now, 2, 15), Utc.with_ymd_and_hms(2026, 12, 1, 15, 17, 0).unwrap());
        assert_eq!(won_at(now, 0, 6), Utc.with_ymd_and_hms(2026, 12, 3, 6, 17, 0).unwrap());
        assert_eq!(won_at(now, 0, 9), now - chrono::Duration::hours(1), "not in the future");
    }

    #[test]
    fn the_month_has_every_story_and_unique_buyers() {
        let buyers: std::collections::HashSet<_> = LOTS.iter().map(|l| l.buyer).collect();
        assert_eq!(buyers.len(), LOTS.len(), "each lot's mail is told apart by its buyer");
        for story in
            [FailedThreeTimes, Expired, Cancelled, Paid(DISPUTED), Paid(ELEVATED_RISK), AuthenticationFailedThenPaid]
        {
            assert!(LOTS.iter().any(|l| l.story == story), "{story:?}");
        }
        assert!(
            LOTS.iter().any(|l| matches!(l.story, PaidThenRefunded(cents) if cents < l.amount)),
            "a partial refund"
        );
        assert!(LOTS.iter().filter(|l| l.story == Awaiting).all(|l| l.days_ago <= 1), "awaiting lots are recent");
    }
}
