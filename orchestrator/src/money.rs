//! Exact decimal amounts for filters and totals: an integer of units at a
//! scale (`12.50` is 1250 at scale 2). Never a float; overflow is an error,
//! not a wrap.

use std::cmp::Ordering;

/// Digits a [`Decimal`] may hold: every such number fits a `u128`.
const DIGITS_MAX: usize = 38;

/// A non-negative exact decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decimal {
    units: u128,
    scale: u32,
}

/// An amount that cannot be read or is too large to work with exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not a plain non-negative decimal")]
    NotDecimal(String),
    #[error("{0:?} has too many digits to add or compare exactly")]
    TooLarge(String),
    #[error("a total is too large to compute exactly")]
    Overflow,
}

impl Decimal {
    pub(crate) const ZERO: Decimal = Decimal { units: 0, scale: 0 };

    /// Reads `50`, `12.5`, `0.050`: digits, optionally a point and more.
    pub(crate) fn parse(text: &str) -> Result<Self, MoneyError> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || text.ends_with('.') {
            return Err(MoneyError::NotDecimal(text.to_owned()));
        }
        let significant = whole.trim_start_matches('0').len() + fraction.len();
        if significant > DIGITS_MAX {
            return Err(MoneyError::TooLarge(text.to_owned()));
        }
        let units = whole
            .bytes()
            .chain(fraction.bytes())
            .fold(0u128, |n, b| n * 10 + u128::from(b - b'0'));
        let scale = u32::try_from(fraction.len()).map_err(|_| MoneyError::TooLarge(text.into()))?;
        Ok(Self { units, scale })
    }

    /// `self` and `other` at the larger of their scales.
    fn aligned(self, other: Self) -> Result<(u128, u128, u32), MoneyError> {
        let scale = self.scale.max(other.scale);
        let at = |d: Decimal| {
            10u128
                .checked_pow(scale - d.scale)
                .and_then(|f| d.units.checked_mul(f))
                .ok_or(MoneyError::Overflow)
        };
        Ok((at(self)?, at(other)?, scale))
    }

    pub(crate) fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        let (a, b, scale) = self.aligned(other)?;
        let units = a.checked_add(b).ok_or(MoneyError::Overflow)?;
        Ok(Self { units, scale })
    }

    pub(crate) fn compare(self, other: Self) -> Result<Ordering, MoneyError> {
        let (a, b, _) = self.aligned(other)?;
        Ok(a.cmp(&b))
    }

    /// Every decimal place of its scale written out: `345.00`.
    pub(crate) fn to_plain(self) -> String {
        let unit = 10u128.pow(self.scale);
        let (whole, fraction) = (self.units / unit, self.units % unit);
        if self.scale == 0 {
            return whole.to_string();
        }
        format!("{whole}.{fraction:0width$}", width = self.scale as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).unwrap()
    }

    #[test]
    fn adds_and_compares_exactly_across_scales() {
        assert_eq!(
            d("12.5").checked_add(d("0.75")).unwrap().to_plain(),
            "13.25"
        );
        assert_eq!(
            d("50.00").checked_add(d("100.00")).unwrap().to_plain(),
            "150.00"
        );
        assert_eq!(
            Decimal::ZERO.checked_add(d("500")).unwrap().to_plain(),
            "500"
        );
        assert_eq!(d("0.1").checked_add(d("0.2")).unwrap().to_plain(), "0.3");
        assert_eq!(d("50").compare(d("50.00")), Ok(Ordering::Equal));
        assert_eq!(d("50.01").compare(d("50")), Ok(Ordering::Greater));
        assert_eq!(d("007").compare(d("7.000")), Ok(Ordering::Equal));
    }

    #[test]
    fn refuses_what_is_not_an_exact_amount() {
        for bad in ["", ".5", "5.", "-1", "1,5", "1e3", "1.2.3"] {
            assert!(
                matches!(Decimal::parse(bad), Err(MoneyError::NotDecimal(_))),
                "{bad}"
            );
        }
        let huge = "9".repeat(39);
        assert!(matches!(
            Decimal::parse(&huge),
            Err(MoneyError::TooLarge(_))
        ));
        let big = d(&"9".repeat(38));
        let twice = big.checked_add(big).unwrap();
        assert_eq!(twice.checked_add(twice), Err(MoneyError::Overflow));
    }
}
