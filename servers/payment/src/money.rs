//! Exact money: integer minor units plus an ISO 4217 currency. Never a float.

use iso_currency::Currency;

/// An amount of one currency, in that currency's minor units (pence for GBP,
/// yen for JPY, fils for KWD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor: u64,
    pub currency: Currency,
}

/// Why a currency code or a decimal amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency {0:?} is not an ISO 4217 code")]
    UnknownCurrency(String),
    #[error("currency {0} has no minor unit (it is a fund or metal, not money)")]
    NoMinorUnit(String),
    #[error("amount {amount:?} is not a non-negative decimal such as \"12.50\"")]
    NotDecimal { amount: String },
    #[error(
        "amount {amount:?} has more than {exponent} decimal places, the most {currency} allows"
    )]
    TooPrecise {
        amount: String,
        currency: String,
        exponent: u32,
    },
    #[error("amount {amount:?} is too large")]
    Overflow { amount: String },
}

/// Looks up an ISO 4217 code, refusing units that are not money.
pub(crate) fn currency(code: &str) -> Result<Currency, MoneyError> {
    let currency =
        Currency::from_code(code).ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
    match currency.exponent() {
        Some(_) => Ok(currency),
        None => Err(MoneyError::NoMinorUnit(code.to_owned())),
    }
}

fn exponent(currency: Currency) -> u32 {
    // `currency()` only admits currencies with an exponent.
    u32::from(currency.exponent().unwrap_or(0))
}

impl Money {
    /// Parses a decimal string such as "12.5" or "12.50" in `currency`.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = exponent(currency);
        let not_decimal = || MoneyError::NotDecimal {
            amount: amount.to_owned(),
        };
        let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) {
            return Err(not_decimal());
        }
        if amount.contains('.') && fraction.is_empty() {
            return Err(not_decimal());
        }
        if fraction.len() > exponent as usize {
            return Err(MoneyError::TooPrecise {
                amount: amount.to_owned(),
                currency: currency.code().to_owned(),
                exponent,
            });
        }
        let overflow = || MoneyError::Overflow {
            amount: amount.to_owned(),
        };
        let scale = 10u64.pow(exponent);
        let whole: u64 = whole.parse().map_err(|_| overflow())?;
        let fraction_scaled = if fraction.is_empty() {
            0
        } else {
            let value: u64 = fraction.parse().map_err(|_| not_decimal())?;
            value * 10u64.pow(exponent - fraction.len() as u32)
        };
        let minor = whole
            .checked_mul(scale)
            .and_then(|m| m.checked_add(fraction_scaled))
            .ok_or_else(overflow)?;
        Ok(Self { minor, currency })
    }

    /// The amount as a decimal string with exactly the currency's number of
    /// decimal places: "50.00" GBP, "500" JPY, "1.250" KWD.
    pub fn decimal(&self) -> String {
        let exponent = exponent(self.currency);
        if exponent == 0 {
            return self.minor.to_string();
        }
        let scale = 10u64.pow(exponent);
        format!(
            "{}.{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = exponent as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbp() -> Currency {
        currency("GBP").unwrap()
    }

    #[test]
    fn parses_and_prints_exactly() {
        for (input, minor, printed) in [
            ("100", 10_000, "100.00"),
            ("12.5", 1_250, "12.50"),
            ("0.01", 1, "0.01"),
            ("0", 0, "0.00"),
            ("184467440737095516.15", u64::MAX, "184467440737095516.15"),
        ] {
            let money = Money::parse(input, gbp()).unwrap();
            assert_eq!(money.minor, minor, "{input}");
            assert_eq!(money.decimal(), printed, "{input}");
        }
        let yen = Money::parse("500", currency("JPY").unwrap()).unwrap();
        assert_eq!((yen.minor, yen.decimal()), (500, "500".to_owned()));
        let dinar = Money::parse("1.25", currency("KWD").unwrap()).unwrap();
        assert_eq!((dinar.minor, dinar.decimal()), (1_250, "1.250".to_owned()));
    }

    #[test]
    fn refuses_what_is_not_exact_money() {
        for bad in [
            "", "-1", "+1", "1.", ".5", "1e3", "1,00", " 1", "NaN", "1.2.3",
        ] {
            assert!(
                matches!(Money::parse(bad, gbp()), Err(MoneyError::NotDecimal { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Money::parse("1.005", gbp()),
            Err(MoneyError::TooPrecise { exponent: 2, .. })
        ));
        assert!(matches!(
            Money::parse("1.5", currency("JPY").unwrap()),
            Err(MoneyError::TooPrecise { exponent: 0, .. })
        ));
        assert!(matches!(
            Money::parse("184467440737095516.16", gbp()),
            Err(MoneyError::Overflow { .. })
        ));
        assert_eq!(
            currency("XYZ"),
            Err(MoneyError::UnknownCurrency("XYZ".into()))
        );
        assert_eq!(
            currency("gbp"),
            Err(MoneyError::UnknownCurrency("gbp".into()))
        );
        assert_eq!(currency("XAU"), Err(MoneyError::NoMinorUnit("XAU".into())));
    }
}
