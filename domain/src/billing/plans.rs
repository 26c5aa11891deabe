//! Plans consultants subscribe to: a Stripe product with one recurring price, made by a platform admin.

use chrono::{DateTime, Utc};
use stripe_client_core::StripeRequest as _;
use stripe_product::{
    price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, UpdatePrice},
    product::CreateProduct,
};
use uuid::Uuid;

use crate::{
    Services,
    audit::{self, Entry},
    auth::Principal,
    error::{Error, Result},
    money::{Currency, Money},
    stripe::{idempotent, upstream},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub amount: i64,
    pub currency: String,
    pub interval: String,
    pub trial_days: i32,
    pub active: bool,
    pub stripe_price_id: String,
    pub created_at: DateTime<Utc>,
}

/// What a platform admin typed into the new-plan form.
#[derive(Debug, Clone)]
pub struct NewPlan {
    pub name: String,
    pub description: String,
    pub price: String,
    pub currency: String,
    pub interval: String,
    pub trial_days: String,
}

struct ValidPlan {
    name: String,
    description: String,
    price: Money,
    interval: Interval,
    trial_days: i32,
}

const MAX_TRIAL_DAYS: i32 = 730;

fn validate(input: &NewPlan) -> Result<ValidPlan> {
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(Error::invalid("name", "Give the plan a name of up to 80 characters."));
    }
    let description = input.description.trim().to_owned();
    if description.chars().count() > 500 {
        return Err(Error::invalid("description", "Keep the description under 500 characters."));
    }
    crate::input::plain_text(&name, "name", false)?;
    crate::input::plain_text(&description, "description", true)?;
    let currency = Currency::parse(&input.currency).ok_or_else(|| {
        Error::invalid("currency", format!("Choose one of: {}.", Currency::supported().collect::<Vec<_>>().join(", ")))
    })?;
    let price = Money::parse(&input.price, currency, "price")?;
    let price = Money::chargeable(price.amount, currency, "price")?;
    let interval =
        Interval::parse(input.interval.trim()).ok_or_else(|| Error::invalid("interval", "Bill monthly or yearly."))?;
    let trial = input.trial_days.trim();
    let trial_days = if trial.is_empty() { 0 } else { trial.parse::<i32>().unwrap_or(-1) };
    if !(0..=MAX_TRIAL_DAYS).contains(&trial_days) {
        return Err(Error::invalid(
            "trial_days",
            format!("Trial days must be a whole number from 0 to {MAX_TRIAL_DAYS}."),
        ));
    }
    Ok(ValidPlan { name, description, price, interval, trial_days })
}

/// Creates the product and price in Stripe, then the plan. Nothing is stored when Stripe refuses.
pub async fn create(services: &Services, admin: &Principal, input: &NewPlan) -> Result<Plan> {
    let plan = validate(input)?;
    let taken =
        sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM plans WHERE active AND lower(name) = lower($1))", plan.name)
            .fetch_one(&services.pool)
            .await?;
    if taken == Some(true) {
        return Err(Error::invalid("name", "An active plan already has this name."));
    }
    let id = Uuid::new_v4();
    let client = services.stripe.platform().client();
    let mut product = CreateProduct::new(plan.name.as_str()).metadata([("remit_plan".to_owned(), id.to_string())]);
    if !plan.description.is_empty() {
        product = product.description(plan.description.as_str());
    }
    let product = product
        .customize()
        .request_strategy(idempotent(format!("remit-plan-product-{id}"))?)
        .send(client)
        .await
        .map_err(|e| upstream(e, "create the plan's product"))?;
    let interval = match plan.interval {
        Interval::Month => CreatePriceRecurringInterval::Month,
        Interval::Year => CreatePriceRecurringInterval::Year,
    };
    let currency: stripe_types::Currency =
        plan.price.currency.code().parse().map_err(|_| anyhow::anyhow!("Stripe does not know the currency"))?;
    let price = CreatePrice::new(currency)
        .product(product.id.as_str())
        .unit_amount(plan.price.amount)
        .recurring(CreatePriceRecurring::new(interval))
        .customize()
        .request_strategy(idempotent(format!("remit-plan-price-{id}"))?)
        .send(client)
        .await
        .map_err(|e| upstream(e, "create the plan's price"))?;

    let mut tx = services.pool.begin().await?;
    let row = sqlx::query!(
        r#"INSERT INTO plans (id, name, description, stripe_product_id, stripe_price_id, amount, currency, "interval", trial_days, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING created_at"#,
        id,
        plan.name,
        plan.description,
        product.id.as_str(),
        price.id.as_str(),
        plan.price.amount,
        plan.price.currency.code(),
        plan.interval.as_str(),
        plan.trial_days,
        admin.user_id,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if crate::db::violates(&e, "plans_active_name_key") {
            Error::invalid("name", "An active plan already has this name.")
        } else {
            e.into()
        }
    })?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: None,
            actor: Some(admin),
            action: "plan.created",
            target: Some(plan.name.clone()),
            reason: None,
            details: serde_json::json!({ "price": price.id.as_str(), "amount": plan.price.amount, "currency": plan.price.currency.code(), "interval": plan.interval.as_str(), "trial_days": plan.trial_days }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Plan {
        id,
        name: plan.name,
        description: plan.description,
        amount: plan.price.amount,
        currency: plan.price.currency.code().to_owned(),
        interval: plan.interval.as_str().to_owned(),
        trial_days: plan.trial_days,
        active: true,
        stripe_price_id: price.id.to_string(),
        created_at: row.created_at,
    })
}

/// Stops new subscriptions to a plan (its price is deactivated in Stripe); existing ones go on.
pub async fn archive(services: &Services, admin: &Principal, plan_id: Uuid) -> Result<()> {
    let plan = get(services, plan_id).await?;
    if !plan.active {
        return Ok(());
    }
    UpdatePrice::new(plan.stripe_price_id.as_str())
        .active(false)
        .send(services.stripe.platform().client())
        .await
        .map_err(|e| upstream(e, "archive the plan's price"))?;
    let mut tx = services.pool.begin().await?;
    sqlx::query!("UPDATE plans SET active = false WHERE id = $1", plan_id).execute(&mut *tx).await?;
    audit::record(
        &mut tx,
        Entry {
            tenant_id: None,
            actor: Some(admin),
            action: "plan.archived",
            target: Some(plan.name),
            reason: None,
            details: serde_json::json!({ "price": plan.stripe_price_id }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn get(services: &Services, plan_id: Uuid) -> Result<Plan> {
    sqlx::query_as!(
        Plan,
        r#"SELECT id, name, description, amount, currency, "interval", trial_days, active, stripe_price_id, created_at
           FROM plans WHERE id = $1"#,
        plan_id
    )
    .fetch_optional(&services.pool)
    .await?
    .ok_or(Error::NotFound("plan"))
}

/// Every plan (for admins), or only those open to new subscriptions.
pub async fn list(services: &Services, only_active: bool) -> Result<Vec<Plan>> {
    Ok(sqlx::query_as!(
        Plan,
        r#"SELECT id, name, description, amount, currency, "interval", trial_days, active, stripe_price_id, created_at
           FROM plans WHERE active OR NOT $1 ORDER BY active DESC, amount, name"#,
        only_active
    )
    .fetch_all(&services.pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(price: &str, interval: &str, trial: &str) -> NewPlan {
        NewPlan {
            name: "Pro".into(),
            description: String::new(),
            price: price.into(),
            currency: "usd".into(),
            interval: interval.into(),
            trial_days: trial.into(),
        }
    }

    #[test]
    fn plans_are_validated_before_stripe_is_called() {
        let ok = validate(&input("49.00", "month", "14")).unwrap();
        assert_eq!((ok.price.amount, ok.interval, ok.trial_days), (4900, Interval::Month, 14));
        assert_eq!(validate(&input("490", "year", "")).unwrap().trial_days, 0);
        let field = |r: Result<ValidPlan>| match r {
            Err(Error::Invalid { field, .. }) => field,
            _ => None,
        };
        assert_eq!(field(validate(&input("0.10", "month", "0"))), Some("price"));
        assert_eq!(field(validate(&input("49", "week", "0"))), Some("interval"));
        assert_eq!(field(validate(&input("49", "month", "-1"))), Some("trial_days"));
        assert_eq!(field(validate(&input("49", "month", "2.5"))), Some("trial_days"));
        assert_eq!(field(validate(&NewPlan { currency: "xyz".into(), ..input("49", "month", "0") })), Some("currency"));
        assert_eq!(field(validate(&NewPlan { name: " ".into(), ..input("49", "month", "0") })), Some("name"));
    }
}
