//! Money as integer minor units plus an ISO currency: parsing what people type, and showing it.

use crate::error::{Error, Result};

/// The currencies Remit bills in: ISO code, minor-unit exponent, symbol, and Stripe's minimum
/// charge in minor units (stripe.com/docs/currencies#minimum-and-maximum-charge-amounts).
const CURRENCIES: [(&str, u32, &str, i64); 5] =
    [("usd", 2, "$", 50), ("eur", 2, "€", 50), ("gbp", 2, "£", 30), ("cad", 2, "CA$", 50), ("aud", 2, "A$", 50)];

/// Stripe's largest amount in any currency: eight digits of minor units.
pub const MAX_MINOR_UNITS: i64 = 99_999_999;

/// An amount in a currency's minor units (cents for USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Currency {
    /// A supported currency from its ISO code, in any case.
    pub fn parse(code: &str) -> Option<Self> {
        let code = code.trim().to_ascii_lowercase();
        CURRENCIES.iter().find(|(c, ..)| *c == code).map(|(c, ..)| Currency(c))
    }

    pub fn supported() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(c, ..)| *c)
    }

    /// The smallest amount Stripe charges in this currency, in minor units.
    pub fn minimum_charge(self) -> i64 {
        CURRENCIES.iter().find(|(c, ..)| *c == self.0).map_or(50, |(.., min)| *min)
    }

    /// Lower-case ISO code, as Stripe and the database use it.
    pub fn code(self) -> &'static str {
        self.0
    }

    fn exponent(self) -> u32 {
        CURRENCIES.iter().find(|(c, ..)| *c == self.0).map_or(2, |(_, e, ..)| *e)
    }

    fn symbol(self) -> &'static str {
        CURRENCIES.iter().find(|(c, ..)| *c == self.0).map_or("", |(_, _, s, _)| *s)
    }
}

impl Money {
    /// Parses a major-unit amount as typed ("49", "49.5", "1,249.00") without floating point.
    pub fn parse(input: &str, currency: Currency, field: &'static str) -> Result<Self> {
        let cleaned: String = input.trim().chars().filter(|c| *c != ',' && *c != ' ').collect();
        let invalid = || Error::invalid(field, "Enter an amount such as 49.00.");
        let (whole, fraction) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
        let digits = currency.exponent() as usize;
        if whole.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !fraction.chars().all(|c| c.is_ascii_digit())
        {
            return Err(invalid());
        }
        if fraction.len() > digits {
            return Err(Error::invalid(field, format!("Use at most {digits} decimal places.")));
        }
        let scale = 10_i64.pow(currency.exponent());
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let fraction: i64 =
            if fraction.is_empty() { 0 } else { format!("{fraction:0<digits$}").parse().map_err(|_| invalid())? };
        let amount = whole.checked_mul(scale).and_then(|w| w.checked_add(fraction)).ok_or_else(invalid)?;
        Ok(Money { amount, currency })
    }

    /// An amount Stripe can charge: at least the currency's minimum charge and at most eight
    /// digits of minor units. `field` names the form field in the refusal (422).
    pub fn chargeable(amount: i64, currency: Currency, field: &'static str) -> Result<Self> {
        let (min, max) = (currency.minimum_charge(), MAX_MINOR_UNITS);
        if !(min..=max).contains(&amount) {
            return Err(Error::invalid(
                field,
                format!(
                    "The amount must be from {} to {} (in minor units: {min} to {max}).",
                    format_minor(min, currency.code()),
                    format_minor(max, currency.code())
                ),
            ));
        }
        Ok(Money { amount, currency })
    }

    /// An amount Remit stored (or Stripe reported) in a currency Remit bills in.
    pub fn stored(amount: i64, code: &str) -> Result<Self> {
        let currency =
            Currency::parse(code).ok_or_else(|| anyhow::anyhow!("an amount in an unsupported currency: {code}"))?;
        Ok(Money { amount, currency })
    }

    /// "$49.00", "€1,249.50".
    pub fn display(self) -> String {
        format_minor(self.amount, self.currency.code())
    }

    /// The amount as a form field holds it, for [`Money::parse`] to read back: "1249.50".
    pub fn typed(self) -> String {
        let scale = 10_i64.pow(self.currency.exponent());
        let sign = if self.amount < 0 { "-" } else { "" };
        let (whole, part) = (self.amount.abs() / scale, self.amount.abs() % scale);
        if scale == 1 {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{part:0width$}", width = self.currency.exponent() as usize)
        }
    }
}

/// In payloads Remit sends: `{"amount": <minor units>, "currency": "<ISO code>"}`, flattened
/// into the object that carries it.
impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut money = serializer.serialize_struct("Money", 2)?;
        money.serialize_field("amount", &self.amount)?;
        money.serialize_field("currency", self.currency.code())?;
        money.end()
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            amount: i64,
            currency: String,
        }
        let wire = Wire::deserialize(deserializer)?;
        let currency = Currency::parse(&wire.currency)
            .ok_or_else(|| serde::de::Error::custom(format!("unsupported currency {}", wire.currency)))?;
        Ok(Money { amount: wire.amount, currency })
    }
}

/// Shows minor units of any ISO currency; unsupported codes are shown with the code.
pub fn format_minor(amount: i64, currency: &str) -> String {
    let known = Currency::parse(currency);
    let exponent = known.map_or(2, Currency::exponent);
    let scale = 10_i64.pow(exponent);
    let sign = if amount < 0 { "-" } else { "" };
    let (whole, fraction) = (amount.unsigned_abs() / scale as u64, amount.unsigned_abs() % scale as u64);
    let whole = group_thousands(whole);
    let number = if exponent == 0 { whole } else { format!("{whole}.{fraction:0width$}", width = exponent as usize) };
    match known {
        Some(c) => format!("{sign}{}{number}", c.symbol()),
        None => format!("{sign}{number} {}", currency.to_ascii_uppercase()),
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn amounts_parse_to_minor_units_without_rounding() {
        assert_eq!(Money::parse("49", usd(), "price").unwrap().amount, 4900);
        assert_eq!(Money::parse("49.5", usd(), "price").unwrap().amount, 4950);
        assert_eq!(Money::parse(" 1,249.05 ", usd(), "price").unwrap().amount, 124_905);
        assert_eq!(Money::parse("0.07", usd(), "price").unwrap().amount, 7);
        for bad in ["", "abc", "-5", "4.999", "1.2.3", ".5", "99999999999999999999"] {
            assert!(Money::parse(bad, usd(), "price").is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn a_typed_amount_reads_back_as_the_same_money() {
        for amount in [0, 5, 50_000, 124_950, 99_999_999] {
            let money = Money { amount, currency: usd() };
            assert_eq!(Money::parse(&money.typed(), usd(), "amount").unwrap(), money, "{}", money.typed());
        }
        assert_eq!(Money { amount: 124_950, currency: usd() }.typed(), "1249.50");
    }

    #[test]
    fn amounts_display_with_symbol_and_grouping() {
        assert_eq!(format_minor(4900, "usd"), "$49.00");
        assert_eq!(format_minor(123_456_789, "eur"), "€1,234,567.89");
        assert_eq!(format_minor(-250, "gbp"), "-£2.50");
        assert_eq!(format_minor(1000, "chf"), "10.00 CHF");
        assert_eq!(Money::parse("12.3", usd(), "price").unwrap().display(), "$12.30");
    }

    #[test]
    fn chargeable_amounts_follow_stripes_limits_per_currency() {
        let gbp = Currency::parse("gbp").unwrap();
        assert!(Money::chargeable(50, usd(), "amount").is_ok());
        assert!(Money::chargeable(MAX_MINOR_UNITS, usd(), "amount").is_ok());
        assert!(Money::chargeable(30, gbp, "amount").is_ok());
        for (amount, currency) in [(49, usd()), (29, gbp), (0, usd()), (-5, usd()), (MAX_MINOR_UNITS + 1, usd())] {
            let err = Money::chargeable(amount, currency, "amount").unwrap_err();
            assert_eq!((err.status(), err.field()), (422, Some("amount")), "{amount} {}", currency.code());
        }
        let err = Money::chargeable(9_000_000_000_000_000_000, usd(), "amount").unwrap_err();
        assert!(err.public_message().contains("$999,999.99"), "{}", err.public_message());
    }

    #[test]
    fn only_supported_currencies_parse() {
        assert_eq!(Currency::parse("eur").map(Currency::code), Some("eur"));
        assert!(Currency::parse("xyz").is_none());
        assert_eq!(Currency::supported().count(), 5);
    }
}
