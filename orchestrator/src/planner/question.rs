//! What a question means, once understood: whose data, and which of it.
//! Pure values; the engine applies them to what the tools return
//! ([`Selection::apply`]), and the answer restates them in its header.

use chrono::NaiveDate;
use serde::Serialize;

use crate::{
    answer::TransactionLine,
    money::{Decimal, MoneyError},
};

/// What the user asked, once understood completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Every address the question names, in the order written: each gets
    /// its own answer.
    pub emails: Vec<String>,
    pub ask: Ask,
}

/// What is wanted for each address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// "What is the user id of EMAIL?"
    UserId,
    /// Transactions: which ones, and what to say about them.
    Transactions {
        selection: Selection,
        report: Report,
    },
}

/// What to say about the selected transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// List them.
    List,
    /// Add them up, per currency ("how much", "total", "spent").
    Total,
    /// Count them ("how many").
    Count,
}

/// Which of a user's transactions: those the filters admit, then the pick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    pub pick: Pick,
    pub dates: Option<DateFilter>,
    /// A lower bound on the amount ("over £50", "at least 10").
    pub above: Option<AmountLimit>,
    /// An upper bound on the amount ("under £50", "at most 10").
    pub below: Option<AmountLimit>,
}

/// How many of the admitted transactions, from which end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Pick {
    /// All of them, newest first.
    #[default]
    All,
    /// The newest n, newest first.
    Newest(u32),
    /// The oldest n, oldest first.
    Oldest(u32),
}

/// A calendar day, month or year, as the question named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Period {
    Day(NaiveDate),
    Month { year: i32, month: u32 },
    Year(i32),
}

/// A date qualifier. Bounds are the periods' own: "since March 2023"
/// starts on 1 March, "before 2023" ends on 31 December 2022.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DateFilter {
    /// "on 16 January 2023", "in March 2023", "in 2023".
    During(Period),
    /// From the period's first day on.
    Since(Period),
    /// After the period's last day.
    After(Period),
    /// Before the period's first day.
    Before(Period),
    /// From the first period's first day to the second's last, inclusive.
    Between(Period, Period),
}

/// A bound on the amount. With a currency it admits only transactions in
/// that currency; without, it compares each amount in its own currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmountLimit {
    /// Exact decimal as written, without grouping commas ("50", "12.50").
    pub amount: String,
    /// ISO 4217 code, when the question gave one.
    pub currency: Option<String>,
    /// "at least" / "at most" rather than "over" / "under".
    pub inclusive: bool,
}

impl Period {
    pub fn first_day(self) -> NaiveDate {
        match self {
            Period::Day(day) => day,
            Period::Month { year, month } => first_of(year, month),
            Period::Year(year) => first_of(year, 1),
        }
    }

    pub fn last_day(self) -> NaiveDate {
        match self {
            Period::Day(day) => day,
            Period::Month { year, month: 12 } => last_of_year(year),
            Period::Month { year, month } => first_of(year, month + 1)
                .pred_opt()
                .unwrap_or(NaiveDate::MIN),
            Period::Year(year) => last_of_year(year),
        }
    }
}

fn first_of(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MIN)
}

fn last_of_year(year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(NaiveDate::MAX)
}

impl DateFilter {
    pub fn admits(&self, date: NaiveDate) -> bool {
        match *self {
            DateFilter::During(p) => p.first_day() <= date && date <= p.last_day(),
            DateFilter::Since(p) => p.first_day() <= date,
            DateFilter::After(p) => p.last_day() < date,
            DateFilter::Before(p) => date < p.first_day(),
            DateFilter::Between(a, b) => a.first_day() <= date && date <= b.last_day(),
        }
    }
}

impl AmountLimit {
    /// Whether `line` is on the right side of this bound (`above`: over it).
    fn admits(&self, line: &TransactionLine, above: bool) -> Result<bool, MoneyError> {
        if self.currency.as_deref().is_some_and(|c| c != line.currency) {
            return Ok(false);
        }
        let order = Decimal::parse(&line.amount)?.compare(Decimal::parse(&self.amount)?)?;
        Ok(match (above, self.inclusive) {
            (true, false) => order.is_gt(),
            (true, true) => order.is_ge(),
            (false, false) => order.is_lt(),
            (false, true) => order.is_le(),
        })
    }
}

impl Selection {
    /// Whether only the newest transactions are wanted, so the listing
    /// tool's own count can cut the list: `Some(n)` for the newest n with
    /// no filter.
    pub(crate) fn server_count(&self) -> Option<u32> {
        match self.pick {
            Pick::Newest(n) if !self.filters() => Some(n),
            _ => None,
        }
    }

    /// Whether a filter narrows the transactions.
    pub fn filters(&self) -> bool {
        self.dates.is_some() || self.above.is_some() || self.below.is_some()
    }

    /// Whether the answer needs the user's whole history (not only the
    /// newest that one listing holds).
    pub(crate) fn needs_all(&self, report: Report) -> bool {
        self.filters() || report != Report::List || matches!(self.pick, Pick::Oldest(_))
    }

    /// The selected transactions of `newest_first`, in the order the
    /// answer lists them.
    pub(crate) fn apply(
        &self,
        newest_first: Vec<TransactionLine>,
    ) -> Result<Vec<TransactionLine>, MoneyError> {
        let mut kept = Vec::with_capacity(newest_first.len());
        for line in newest_first {
            if self.admits(&line)? {
                kept.push(line);
            }
        }
        match self.pick {
            Pick::All => {}
            Pick::Newest(n) => kept.truncate(n as usize),
            Pick::Oldest(n) => {
                kept.reverse();
                kept.truncate(n as usize);
            }
        }
        Ok(kept)
    }

    fn admits(&self, line: &TransactionLine) -> Result<bool, MoneyError> {
        if self.dates.is_some_and(|d| !d.admits(line.date)) {
            return Ok(false);
        }
        for (limit, above) in [(&self.above, true), (&self.below, false)] {
            if let Some(limit) = limit
                && !limit.admits(line, above)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn line(amount: &str, currency: &str, date: &str) -> TransactionLine {
        TransactionLine {
            description: format!("{amount} {currency} {date}"),
            amount: amount.into(),
            currency: currency.into(),
            date: day(date),
        }
    }

    #[test]
    fn periods_have_their_own_bounds() {
        let feb = Period::Month {
            year: 2024,
            month: 2,
        };
        assert_eq!(
            (feb.first_day(), feb.last_day()),
            (day("2024-02-01"), day("2024-02-29"))
        );
        let dec = Period::Month {
            year: 2023,
            month: 12,
        };
        assert_eq!(dec.last_day(), day("2023-12-31"));
        assert_eq!(Period::Year(2023).first_day(), day("2023-01-01"));
        let jan16 = Period::Day(day("2023-01-16"));
        assert!(DateFilter::During(jan16).admits(day("2023-01-16")));
        assert!(!DateFilter::After(jan16).admits(day("2023-01-16")));
        assert!(DateFilter::Since(jan16).admits(day("2023-01-16")));
        assert!(!DateFilter::Before(jan16).admits(day("2023-01-16")));
        assert!(DateFilter::Before(Period::Year(2023)).admits(day("2022-12-31")));
        let between = DateFilter::Between(
            Period::Month {
                year: 2023,
                month: 1,
            },
            feb,
        );
        assert!(between.admits(day("2024-02-29")) && !between.admits(day("2024-03-01")));
    }

    #[test]
    fn filters_then_picks() {
        let lines = vec![
            line("50.00", "GBP", "2023-03-16"),
            line("20.00", "USD", "2023-03-15"),
            line("75.00", "GBP", "2023-02-14"),
            line("120.00", "GBP", "2023-01-12"),
        ];
        let selection = Selection {
            pick: Pick::Oldest(1),
            above: Some(AmountLimit {
                amount: "50".into(),
                currency: None,
                inclusive: true,
            }),
            ..Selection::default()
        };
        let kept = selection.apply(lines.clone()).unwrap();
        assert_eq!(kept, [lines[3].clone()]);
        let pounds_under_100 = Selection {
            below: Some(AmountLimit {
                amount: "100".into(),
                currency: Some("GBP".into()),
                inclusive: false,
            }),
            dates: Some(DateFilter::Since(Period::Month {
                year: 2023,
                month: 2,
            })),
            ..Selection::default()
        };
        assert_eq!(
            pounds_under_100.apply(lines.clone()).unwrap(),
            [lines[0].clone(), lines[2].clone()]
        );
        assert_eq!(pounds_under_100.server_count(), None);
        assert!(pounds_under_100.needs_all(Report::List));
        let newest = Selection {
            pick: Pick::Newest(2),
            ..Selection::default()
        };
        assert_eq!(newest.server_count(), Some(2));
        assert!(!newest.needs_all(Report::List) && newest.needs_all(Report::Total));
    }
}
