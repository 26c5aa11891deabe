//! The living demo. On a development server's start, Northwind Auctions' last month is made
//! through Remit's own flows against the Stripe sandbox: two plans, the tenant connected to
//! Stripe (OAuth consent), the consultant subscribed a month ago on a Stripe test clock and with
//! payouts set up (a one-time onboarding link) and billing Frankie of their household (see
//! `fees`), and about thirty won lots over the last 30 days (see `lots`). The demo's people act on Stripe's hosted pages through `browser`; nothing of
//! Stripe's is written into Remit's database directly.
//!
//! Every step first looks whether it was done (on a database of an earlier version too), so a
//! restarted server adds nothing twice. It runs in the background while the server serves.

mod browser;
mod fees;
mod lots;

use std::time::Duration;

use anyhow::{Context as _, bail};
use domain::{
    Services,
    auth::{Principal, Role, session, sign_in},
    billing::{self, plans, subscriptions},
    payouts::{self, onboarding_links},
    seed, tenant_stripe,
};
use stripe_sandbox::Sandbox;

use browser::Browser;

/// Makes the demo month in the background; says in the log (and on the console) when it is ready.
pub fn spawn(services: Services, sandbox: Sandbox) {
    tokio::spawn(async move {
        tracing::info!("preparing the demo month in the background");
        match run(&services, &sandbox).await {
            Ok(link) => {
                tracing::info!("the demo month is ready");
                println!("\nThe demo month is ready. A won lot awaiting payment: {link}\n");
            }
            Err(err) => tracing::warn!(error = format!("{err:#}"), "the demo month could not be completed"),
        }
    });
}

/// A demo user signed in through Remit's sign-in, as they would in the browser.
struct Actor {
    principal: Principal,
    token: session::SessionToken,
}

impl Actor {
    async fn sign_in(services: &Services, role: Role) -> anyhow::Result<Self> {
        let user = seed::DEMO_USERS.iter().find(|u| u.role == role).context("no demo user of that role")?;
        let client = session::Client { ip: None, user_agent: Some("Remit demo".into()) };
        let signed_in = sign_in::sign_in(services, user.email, seed::demo_password(services, user.email), &client)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| {
                format!(
                    "{} could not sign in with the demo password (was it changed? `make demo-reset` starts afresh)",
                    user.email
                )
            })?;
        let principal = session::resolve(&services.pool, signed_in.token.expose())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .context("the new session was not found")?;
        Ok(Self { principal, token: signed_in.token })
    }

    async fn sign_out(self, services: &Services) {
        if let Err(err) = session::destroy(&services.pool, self.token.expose()).await {
            tracing::warn!(error = %err, "a demo session could not be ended");
        }
    }
}

/// Domain errors carry their own message; the demo reports them with what it was doing.
fn domain<T>(result: domain::error::Result<T>, doing: &'static str) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::anyhow!("{e}")).context(doing)
}

async fn run(services: &Services, sandbox: &Sandbox) -> anyhow::Result<String> {
    let browser = Browser::new()?;
    let tenant = domain(seed::demo_tenant(services).await, "finding the demo tenant")?;
    let owner = Actor::sign_in(services, Role::TenantOwner).await?;
    let admin = Actor::sign_in(services, Role::PlatformAdmin).await?;
    let consultant = Actor::sign_in(services, Role::Consultant).await?;
    let family = Actor::sign_in(services, Role::FamilyMember).await?;
    let made = async {
        connect_tenant(services, &browser, &owner).await?;
        let monthly = ensure_plans(services, &admin.principal).await?;
        subscribe_consultant(services, &browser, &consultant.principal, &monthly).await?;
        set_up_payouts(services, &browser, &owner.principal, &consultant.principal).await?;
        fees::bill_household(services, &browser, &consultant.principal, &family.principal).await?;
        lots::run(services, sandbox, &browser, tenant, &owner.principal).await?;
        domain(seed::ensure_demo_lot(services).await, "registering a lot to pay")
    }
    .await;
    for actor in [owner, admin, consultant, family] {
        actor.sign_out(services).await;
    }
    made
}

/// A value of a URL's query.
fn query_value(url: &str, name: &str) -> anyhow::Result<String> {
    url::Url::parse(url)?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .with_context(|| format!("no {name} in a URL the demo followed"))
}

/// Northwind's owner connects its Stripe account through Stripe's OAuth consent page.
async fn connect_tenant(services: &Services, browser: &Browser, owner: &Actor) -> anyhow::Result<()> {
    let tenant = owner.principal.tenant_id.context("the owner has a tenant")?;
    if let Some(connection) = domain(tenant_stripe::status(services, tenant).await, "reading the connection")? {
        if connection.stale {
            bail!(
                "Northwind is connected to Stripe account {}, which the sandbox does not know (an older version kept \
                 the sandbox in memory); `make demo-reset` starts the demo afresh",
                connection.stripe_account_id
            );
        }
        return Ok(());
    }
    let authorize =
        domain(tenant_stripe::connect_url(services, &owner.principal, owner.token.expose()).await, "starting OAuth")?;
    let consent = url::Url::parse(&authorize)?.join("/oauth/authorize")?;
    let page = browser
        .post_form(
            consent.as_str(),
            &[
                ("decision", "allow"),
                ("state", &query_value(&authorize, "state")?),
                ("redirect_uri", &query_value(&authorize, "redirect_uri")?),
                ("scope", "read_write"),
                ("email", &owner.principal.email),
            ],
        )
        .await?;
    let back = page.location.context("Stripe's consent page sent the owner nowhere")?;
    let (state, code) = (query_value(&back, "state")?, query_value(&back, "code")?);
    let callback = tenant_stripe::Callback {
        session_token: Some(owner.token.expose()),
        state: Some(&state),
        code: Some(&code),
        error: None,
    };
    domain(tenant_stripe::complete(services, Some(&owner.principal), callback).await, "completing OAuth")?;
    tracing::info!("demo: Northwind is connected to Stripe");
    Ok(())
}

/// The two plans consultants choose from; returns the monthly one.
async fn ensure_plans(services: &Services, admin: &Principal) -> anyhow::Result<plans::Plan> {
    let wanted = [
        ("Consultant Monthly", "Payouts, the household dashboard and receipts, billed monthly.", "49.00", "month", "0"),
        ("Consultant Yearly", "Everything in Monthly, two months free, with a 14-day trial.", "490.00", "year", "14"),
    ];
    let existing = domain(plans::list(services, false).await, "listing plans")?;
    for (name, description, price, interval, trial_days) in wanted {
        if existing.iter().any(|p| p.name == name) {
            continue;
        }
        let plan = plans::NewPlan {
            name: name.into(),
            description: description.into(),
            price: price.into(),
            currency: "usd".into(),
            interval: interval.into(),
            trial_days: trial_days.into(),
        };
        domain(plans::create(services, admin, &plan).await, "creating a plan")?;
        tracing::info!(plan = name, "demo: plan created");
    }
    domain(plans::list(services, true).await, "listing plans")?
        .into_iter()
        .find(|p| p.name == "Consultant Monthly")
        .context("the monthly plan is archived")
}

/// What the demo's people type into Stripe's card form.
fn card_form(card: &str) -> [(&'static str, &str); 4] {
    [("card_number", card), ("expiry", "12 / 34"), ("cvc", "123"), ("name", "Demo Cardholder")]
}

/// How long the demo waits for Stripe or Remit's jobs to catch up with one step.
const STEP_DEADLINE: Duration = Duration::from_secs(60);

/// The consultant subscribes to the monthly plan. Their customer is made on a Stripe test clock
/// set 35 days back (Remit adopts it), and the clock is then moved to now: the month's renewal
/// happens as Stripe would have made it.
async fn subscribe_consultant(
    services: &Services,
    browser: &Browser,
    consultant: &Principal,
    monthly: &plans::Plan,
) -> anyhow::Result<()> {
    let mut conn = services.pool.acquire().await?;
    if domain(billing::current_subscription(&mut conn, consultant.user_id).await, "reading the subscription")?.is_some()
    {
        return Ok(());
    }
    let has_customer = domain(billing::customer_of(&mut conn, consultant.user_id).await, "reading the customer")?;
    drop(conn);
    let clock = match has_customer {
        Some(_) => None,
        None => {
            Some(domain(seed::customer_on_test_clock(services, consultant, 35).await, "putting billing on a clock")?)
        }
    };
    let checkout =
        domain(subscriptions::start_checkout(services, consultant, monthly.id).await, "starting the subscription")?;
    let page = browser.post_form(&checkout, &card_form("4242424242424242")).await?;
    let back = page.location.with_context(|| format!("the subscription page answered {}", page.status))?;
    let session_id = query_value(&back, "checkout")?;
    domain(subscriptions::complete_checkout(services, consultant, &session_id).await, "confirming the subscription")?;
    if let Some(clock) = clock {
        domain(seed::advance_test_clock_to_now(services, &clock).await, "living the consultant's month")?;
    }
    tracing::info!("demo: the consultant is subscribed");
    Ok(())
}

/// The owner sends the consultant a payout setup link; the consultant opens it and fills in
/// Stripe's onboarding form.
async fn set_up_payouts(
    services: &Services,
    browser: &Browser,
    owner: &Principal,
    consultant: &Principal,
) -> anyhow::Result<()> {
    let account = domain(payouts::account_of(&services.pool, consultant.user_id).await, "reading payouts")?;
    if account.is_some_and(|a| a.details_submitted) {
        return Ok(());
    }
    // The subscription's events may still be on their way; payout setup needs it active.
    let deadline = tokio::time::Instant::now() + STEP_DEADLINE;
    while !domain(billing::is_subscribed(&services.pool, consultant.user_id).await, "reading the subscription")? {
        if tokio::time::Instant::now() > deadline {
            bail!("the consultant's subscription did not become active");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let link = domain(onboarding_links::issue(services, owner, consultant.user_id, "").await, "issuing the link")?;
    let stripe_url = domain(onboarding_links::open(services, &query_value(&link, "token")?).await, "opening it")?;
    let form = browser.get(&stripe_url).await?;
    let action = form
        .body
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("Stripe's onboarding page has no form")?;
    let submit = url::Url::parse(&stripe_url)?.join(action)?;
    let done = browser
        .post_form(
            submit.as_str(),
            &[
                ("business_type", "individual"),
                ("first_name", "Casey"),
                ("last_name", "Consultant"),
                ("dob", "14/03/1986"),
                ("address_line1", "address_full_match"),
                ("city", "San Francisco"),
                ("postal_code", "94103"),
                ("routing_number", "110000000"),
                ("account_number", "000123456789"),
                ("accept_tos", "yes"),
            ],
        )
        .await?;
    let back = done.location.with_context(|| format!("Stripe's onboarding form answered {}", done.status))?;
    let state = query_value(&back, "state")?;
    domain(onboarding_links::finish(services, Some(&state)).await, "finishing payout setup")?;
    tracing::info!("demo: the consultant's payouts are set up");
    Ok(())
}
