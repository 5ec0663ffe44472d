//! What a question means, in the oracle's own terms: which addresses,
//! which of their transactions, and what to say about them. Generated
//! questions carry a [`Meaning`]; the oracle's reading of a listed question
//! produces one. Nothing here comes from the orchestrator: the bounds of a
//! period, whether an amount passes a limit, and the JSON the answer's
//! value must serialise to are all worked out again, on the oracle's
//! integers ([`Amount`], [`Day`]).

use serde_json::{Value, json};

use super::rendering::{Amount, Day};

/// What a question asks, or that it asks what the planner must refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    /// A question the planner reads: its answer is the oracle's.
    Asked { emails: Vec<String>, what: What },
    /// A question with a qualifier the planner does not read (`why` says
    /// which): the only right reply is a refusal.
    Unreadable { why: String },
}

/// What is wanted for each address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    UserId,
    Transactions(Wanted),
}

/// Which transactions, and what to say about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub take: Take,
    pub dates: Option<Dates>,
    /// A lower bound on the amount.
    pub above: Option<Limit>,
    /// An upper bound on the amount.
    pub below: Option<Limit>,
    pub tell: Tell,
}

/// How many of the admitted transactions, from which end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Take {
    #[default]
    All,
    Newest(u32),
    Oldest(u32),
}

/// What to say about them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tell {
    #[default]
    List,
    Total,
    Count,
}

/// A day, a month or a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Day(i32, u32, u32),
    Month(i32, u32),
    Year(i32),
}

/// A date qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dates {
    During(Span),
    Since(Span),
    After(Span),
    Before(Span),
    Between(Span, Span),
}

/// A bound on the amount: `text` as the question wrote it (no grouping
/// commas), in `currency` if one was named, else in each transaction's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub text: String,
    pub currency: Option<String>,
    pub inclusive: bool,
}

impl Span {
    /// The first and the last day, as (year, month, day) triples.
    fn bounds(self) -> ((i32, u32, u32), (i32, u32, u32)) {
        match self {
            Span::Day(y, m, d) => ((y, m, d), (y, m, d)),
            Span::Month(y, m) => ((y, m, 1), (y, m, days_in(y, m))),
            Span::Year(y) => ((y, 1, 1), (y, 12, 31)),
        }
    }

    fn json(self) -> Value {
        match self {
            Span::Day(y, m, d) => json!({ "day": format!("{y:04}-{m:02}-{d:02}") }),
            Span::Month(y, m) => json!({ "month": { "year": y, "month": m } }),
            Span::Year(y) => json!({ "year": y }),
        }
    }
}

/// Days in a month of the proleptic Gregorian calendar.
fn days_in(year: i32, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Dates {
    pub(super) fn admits(self, day: &Day) -> bool {
        let at = day.ymd();
        match self {
            Dates::During(s) => s.bounds().0 <= at && at <= s.bounds().1,
            Dates::Since(s) => s.bounds().0 <= at,
            Dates::After(s) => s.bounds().1 < at,
            Dates::Before(s) => at < s.bounds().0,
            Dates::Between(a, b) => a.bounds().0 <= at && at <= b.bounds().1,
        }
    }

    fn json(self) -> Value {
        match self {
            Dates::During(s) => json!({ "during": s.json() }),
            Dates::Since(s) => json!({ "since": s.json() }),
            Dates::After(s) => json!({ "after": s.json() }),
            Dates::Before(s) => json!({ "before": s.json() }),
            Dates::Between(a, b) => json!({ "between": [a.json(), b.json()] }),
        }
    }
}

impl Limit {
    /// Whether `amount` is on the right side: over the limit for a lower
    /// bound (`above`), under it otherwise.
    pub(super) fn admits(&self, amount: &Amount, above: bool) -> Result<bool, String> {
        if self.currency.as_deref().is_some_and(|c| c != amount.code()) {
            return Ok(false);
        }
        let (units, places) = decimal_units(&self.text)?;
        let order = amount.compare_decimal(units, places)?;
        Ok(match (above, self.inclusive) {
            (true, false) => order.is_gt(),
            (true, true) => order.is_ge(),
            (false, false) => order.is_lt(),
            (false, true) => order.is_le(),
        })
    }

    fn json(&self) -> Value {
        json!({ "amount": self.text, "currency": self.currency, "inclusive": self.inclusive })
    }
}

/// `12.5` as (125, 1).
fn decimal_units(text: &str) -> Result<(u128, u32), String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits: String = [whole, fraction].concat();
    let units = digits
        .parse::<u128>()
        .map_err(|_| format!("limit {text:?} is not a decimal the oracle can hold"))?;
    Ok((units, fraction.len() as u32))
}

impl Wanted {
    /// Whether the listing tool is asked for the newest n itself: only with
    /// no filter (with one, every transaction is listed and then cut).
    pub(super) fn server_count(&self) -> Option<u32> {
        match self.take {
            Take::Newest(n) if !self.filters() => Some(n),
            _ => None,
        }
    }

    pub(super) fn filters(&self) -> bool {
        self.dates.is_some() || self.above.is_some() || self.below.is_some()
    }

    /// Whether the answer needs all of the user's transactions, not only
    /// the newest ones a listing holds.
    pub(super) fn needs_all(&self) -> bool {
        self.filters() || self.tell != Tell::List || matches!(self.take, Take::Oldest(_))
    }

    /// The selection as the answer's value serialises it.
    pub(super) fn json(&self) -> Value {
        let pick = match self.take {
            Take::All => json!("all"),
            Take::Newest(n) => json!({ "newest": n }),
            Take::Oldest(n) => json!({ "oldest": n }),
        };
        json!({
            "pick": pick,
            "dates": self.dates.map(Dates::json),
            "above": self.above.as_ref().map(Limit::json),
            "below": self.below.as_ref().map(Limit::json),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    #[test]
    fn spans_bound_dates_by_the_calendar() {
        let feb = Span::Month(2024, 2);
        assert!(Dates::During(feb).admits(&day("2024-02-29")));
        assert!(!Dates::During(Span::Month(2023, 2)).admits(&day("2023-03-01")));
        assert!(Dates::After(feb).admits(&day("2024-03-01")));
        assert!(!Dates::After(feb).admits(&day("2024-02-29")));
        assert!(Dates::Before(Span::Year(2000)).admits(&day("1999-12-31")));
        assert!(Dates::Since(Span::Day(2023, 1, 16)).admits(&day("2023-01-16")));
        assert!(Dates::Between(Span::Year(2020), Span::Month(2020, 1)).admits(&day("2020-01-31")));
        assert_eq!(days_in(1900, 2), 28);
        assert_eq!(days_in(2000, 2), 29);
    }

    #[test]
    fn limits_compare_exactly_and_only_in_their_currency() {
        let pounds = Amount::parse("50.00", "GBP").unwrap();
        let over = |text: &str, currency: Option<&str>, inclusive| Limit {
            text: text.into(),
            currency: currency.map(str::to_owned),
            inclusive,
        };
        assert_eq!(
            over("49.99", Some("GBP"), false).admits(&pounds, true),
            Ok(true)
        );
        assert_eq!(
            over("50", Some("GBP"), false).admits(&pounds, true),
            Ok(false)
        );
        assert_eq!(
            over("50", Some("GBP"), true).admits(&pounds, true),
            Ok(true)
        );
        assert_eq!(
            over("10", Some("USD"), false).admits(&pounds, true),
            Ok(false)
        );
        assert_eq!(over("50.001", None, false).admits(&pounds, false), Ok(true));
    }
}
