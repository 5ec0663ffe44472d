//! The oracle's own rendering: amounts as integers of minor units, dates
//! from their parts, and the text an answer must show. It shares no code
//! with `orchestrator::answer` or `payment_server::money`, whose output it
//! checks: it works on integers where they work on digit strings, and it
//! keeps its own table of currencies.

use std::cmp::Ordering;

use chrono::NaiveDate;

use super::meaning::{Dates, Limit, Span, Take, Wanted};

/// The currencies the generators and the demo use: ISO 4217 code, decimal
/// places, and the symbol an answer shows (else the code and a space).
const CURRENCIES: [(&str, u32, Option<&str>); 7] = [
    ("GBP", 2, Some("£")),
    ("USD", 2, Some("$")),
    ("EUR", 2, Some("€")),
    ("JPY", 0, Some("¥")),
    ("INR", 2, Some("₹")),
    ("KWD", 3, None),
    ("CHF", 2, None),
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// An exact amount: an integer count of the currency's minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Amount {
    minor: u128,
    places: u32,
    code: &'static str,
    symbol: Option<&'static str>,
}

impl Amount {
    /// Reads a dataset amount ("12.5", "50", "1.250") in `currency`.
    pub(super) fn parse(amount: &str, currency: &str) -> Result<Self, String> {
        let &(code, places, symbol) = CURRENCIES
            .iter()
            .find(|(code, _, _)| *code == currency)
            .ok_or_else(|| {
                format!("the oracle has no decimal places for currency {currency:?}; add it to its table")
            })?;
        let (whole, fraction) = match amount.split_once('.') {
            Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
            Some(_) => return Err(format!("amount {amount:?} ends in a point")),
            None => (amount, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) {
            return Err(format!("amount {amount:?} is not a plain decimal"));
        }
        let places_given = u32::try_from(fraction.len()).unwrap_or(u32::MAX);
        if places_given > places {
            return Err(format!(
                "amount {amount:?} has more decimal places than {code}'s {places}"
            ));
        }
        let too_large = || format!("amount {amount:?} is too large");
        let mut minor: u128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(digit - b'0')))
                .ok_or_else(too_large)?;
        }
        minor = minor
            .checked_mul(10u128.pow(places - places_given))
            .ok_or_else(too_large)?;
        Ok(Self {
            minor,
            places,
            code,
            symbol,
        })
    }

    pub(super) fn code(&self) -> &'static str {
        self.code
    }

    /// As the payment server sends it: every decimal place written out
    /// ("50.00" GBP, "500" JPY, "1.250" KWD).
    pub(super) fn decimal(&self) -> String {
        let (whole, fraction) = self.split();
        if self.places == 0 {
            return whole.to_string();
        }
        format!("{whole}.{fraction:0width$}", width = self.places as usize)
    }

    /// As an answer shows it: the symbol (or code), the whole units in
    /// groups of three, and the fraction only when it is not zero.
    pub(super) fn shown(&self) -> String {
        let (mut whole, fraction) = self.split();
        let mut groups = Vec::new();
        loop {
            groups.push(whole % 1000);
            whole /= 1000;
            if whole == 0 {
                break;
            }
        }
        let mut text = match self.symbol {
            Some(symbol) => symbol.to_owned(),
            None => format!("{} ", self.code),
        };
        for (i, group) in groups.iter().rev().enumerate() {
            if i == 0 {
                text.push_str(&group.to_string());
            } else {
                text.push_str(&format!(",{group:03}"));
            }
        }
        if fraction != 0 {
            text.push_str(&format!(
                ".{fraction:0width$}",
                width = self.places as usize
            ));
        }
        text
    }

    /// This amount against `units` at `places` decimal places.
    pub(super) fn compare_decimal(&self, units: u128, places: u32) -> Result<Ordering, String> {
        let scaled = |n: u128, by: u32| {
            10u128
                .checked_pow(by)
                .and_then(|f| n.checked_mul(f))
                .ok_or_else(|| "an amount too large for the oracle to compare".to_owned())
        };
        Ok(scaled(self.minor, places)?.cmp(&scaled(units, self.places)?))
    }

    /// Nothing, in `currency`.
    pub(super) fn zero(currency: &str) -> Result<Self, String> {
        Self::parse("0", currency)
    }

    /// This and `other`, of the same currency.
    pub(super) fn plus(&self, other: &Amount) -> Result<Self, String> {
        if self.code != other.code {
            return Err(format!("{} and {} cannot be added", self.code, other.code));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or_else(|| "a total too large for the oracle".to_owned())?;
        Ok(Self { minor, ..*self })
    }

    fn split(&self) -> (u128, u128) {
        let unit = 10u128.pow(self.places);
        (self.minor / unit, self.minor % unit)
    }
}

/// A calendar day of the dataset, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Day {
    year: i32,
    month: u32,
    day: u32,
}

impl Day {
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("date {text:?} is not a calendar day written YYYY-MM-DD");
        let parts: Vec<&str> = text.split('-').collect();
        let [year, month, day] = parts[..] else {
            return Err(bad());
        };
        if year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return Err(bad());
        }
        let number = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse::<u32>().ok())
                .flatten()
                .ok_or_else(bad)
        };
        let (year, month, day) = (number(year)?, number(month)?, number(day)?);
        let year = i32::try_from(year).map_err(|_| bad())?;
        let parsed = Self { year, month, day };
        parsed.date().map(|_| parsed).ok_or_else(bad)
    }

    /// (year, month, day), which orders as the days do.
    pub(super) fn ymd(&self) -> (i32, u32, u32) {
        (self.year, self.month, self.day)
    }

    /// The day as the answer's value carries it.
    pub(super) fn date(&self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, self.day)
    }

    /// "16 January 2023".
    pub(super) fn shown(&self) -> String {
        let month = MONTHS[(self.month as usize).saturating_sub(1) % 12];
        format!("{} {month} {:04}", self.day, self.year)
    }
}

/// The text of a user-id answer.
pub(super) fn user_id(email: &str, user_id: &str, name: &str) -> String {
    format!("The user id for {email} ({name}) is {user_id}.")
}

/// The text for an address nobody has.
pub(super) fn unknown_user(email: &str) -> String {
    format!("No user has the email {email}.")
}

/// The text of a transactions answer: a header that says what was asked,
/// then a line per transaction.
pub(super) fn list(email: &str, wanted: &Wanted, lines: &[String]) -> String {
    let filters = filters(wanted);
    if lines.is_empty() {
        return nothing_for(email, &filters);
    }
    let header = match (wanted.take, filters.is_empty()) {
        (Take::All, true) => format!("Recent transactions for {email}:"),
        (Take::All, false) => format!("Transactions for {email}{filters}:"),
        (Take::Newest(1), _) => format!("The most recent transaction for {email}{filters}:"),
        (Take::Newest(n), _) => format!("The {n} most recent transactions for {email}{filters}:"),
        (Take::Oldest(1), _) => format!("The oldest transaction for {email}{filters}:"),
        (Take::Oldest(n), _) => format!("The {n} oldest transactions for {email}{filters}:"),
    };
    std::iter::once(header)
        .chain(lines.iter().map(|line| format!("- {line}")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn nothing_for(email: &str, filters: &str) -> String {
    format!("No transactions found for {email}{filters}.")
}

/// The text of a total: one line, or a line per currency.
pub(super) fn total(email: &str, wanted: &Wanted, sums: &[(Amount, u32)]) -> String {
    let filters = filters(wanted);
    let whose = match wanted.take {
        Take::All => format!("Total spent by {email}{filters}"),
        Take::Newest(1) => format!("Total of the most recent transaction for {email}{filters}"),
        Take::Newest(n) => {
            format!("Total of the {n} most recent transactions for {email}{filters}")
        }
        Take::Oldest(1) => format!("Total of the oldest transaction for {email}{filters}"),
        Take::Oldest(n) => format!("Total of the {n} oldest transactions for {email}{filters}"),
    };
    let sum = |(amount, n): &(Amount, u32)| format!("{} ({n} {})", amount.shown(), noun(*n));
    match sums {
        [] => nothing_for(email, &filters),
        [one] => format!("{whose}: {}.", sum(one)),
        several => {
            let lines: Vec<String> = several.iter().map(|s| format!("\n- {}", sum(s))).collect();
            format!("{whose}, per currency:{}", lines.concat())
        }
    }
}

/// The text of a count.
pub(super) fn count(email: &str, wanted: &Wanted, n: u32) -> String {
    format!("{email} has {n} {}{}.", noun(n), filters(wanted))
}

fn noun(n: u32) -> &'static str {
    if n == 1 {
        "transaction"
    } else {
        "transactions"
    }
}

/// " in March 2023 over £50", or nothing: the qualifiers, as the answer
/// restates them after the address.
fn filters(wanted: &Wanted) -> String {
    let mut text = String::new();
    if let Some(dates) = wanted.dates {
        text.push(' ');
        text.push_str(&dates_shown(dates));
    }
    let limits: Vec<String> = [(&wanted.above, true), (&wanted.below, false)]
        .into_iter()
        .filter_map(|(limit, above)| limit.as_ref().map(|l| limit_shown(l, above)))
        .collect();
    if !limits.is_empty() {
        text.push(' ');
        text.push_str(&limits.join(" and "));
    }
    text
}

fn dates_shown(dates: Dates) -> String {
    match dates {
        Dates::During(day @ Span::Day(..)) => format!("on {}", span_shown(day)),
        Dates::During(span) => format!("in {}", span_shown(span)),
        Dates::Since(span) => format!("since {}", span_shown(span)),
        Dates::After(span) => format!("after {}", span_shown(span)),
        Dates::Before(span) => format!("before {}", span_shown(span)),
        Dates::Between(a, b) => format!("between {} and {}", span_shown(a), span_shown(b)),
    }
}

fn span_shown(span: Span) -> String {
    let month = |m: u32| MONTHS[(m as usize).saturating_sub(1) % 12];
    match span {
        Span::Day(y, m, d) => format!("{d} {} {y:04}", month(m)),
        Span::Month(y, m) => format!("{} {y:04}", month(m)),
        Span::Year(y) => format!("{y:04}"),
    }
}

fn limit_shown(limit: &Limit, above: bool) -> String {
    let amount = match &limit.currency {
        Some(code) => Amount::parse(&limit.text, code)
            .map(|a| a.shown())
            .unwrap_or_else(|_| format!("{code} {}", limit.text)),
        None => limit.text.clone(),
    };
    match (above, limit.inclusive) {
        (true, false) => format!("over {amount}"),
        (true, true) => format!("of {amount} or more"),
        (false, false) => format!("under {amount}"),
        (false, true) => format!("of {amount} or less"),
    }
}

/// One transaction's line (without its bullet): a description kept on one
/// line, the amount and the day.
pub(super) fn transaction(description: &str, amount: &Amount, day: &Day) -> String {
    let one_line: String = description
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("{one_line}: {} on {}", amount.shown(), day.shown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_and_show_exactly() {
        for (amount, currency, decimal, shown) in [
            ("12.50", "GBP", "12.50", "£12.50"),
            ("12.5", "GBP", "12.50", "£12.50"),
            ("50", "GBP", "50.00", "£50"),
            ("0", "USD", "0.00", "$0"),
            ("0.05", "USD", "0.05", "$0.05"),
            ("1234567.00", "EUR", "1234567.00", "€1,234,567"),
            ("1000", "EUR", "1000.00", "€1,000"),
            ("999", "EUR", "999.00", "€999"),
            ("500", "JPY", "500", "¥500"),
            ("1.25", "KWD", "1.250", "KWD 1.250"),
            ("1.2", "KWD", "1.200", "KWD 1.200"),
            ("9.99", "CHF", "9.99", "CHF 9.99"),
            (
                "100000000000000000",
                "JPY",
                "100000000000000000",
                "¥100,000,000,000,000,000",
            ),
        ] {
            let parsed = Amount::parse(amount, currency).unwrap();
            assert_eq!(parsed.decimal(), decimal, "{amount} {currency}");
            assert_eq!(parsed.shown(), shown, "{amount} {currency}");
        }
        for (amount, currency) in [
            ("1.005", "GBP"),
            ("1.5", "JPY"),
            ("1.", "GBP"),
            (".5", "GBP"),
            ("-1", "GBP"),
            ("1,00", "GBP"),
            ("1", "XYZ"),
        ] {
            assert!(
                Amount::parse(amount, currency).is_err(),
                "{amount} {currency}"
            );
        }
    }

    #[test]
    fn days_read_and_show_exactly() {
        let day = Day::parse("2024-02-29").unwrap();
        assert_eq!(day.shown(), "29 February 2024");
        assert_eq!(Day::parse("2023-01-05").unwrap().shown(), "5 January 2023");
        for bad in [
            "2023-02-29",
            "2023-1-5",
            "2023-01-05T00:00",
            "+023-01-05",
            "",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
        assert!(Day::parse("2023-01-16").unwrap() > Day::parse("2022-12-31").unwrap());
    }

    fn newest(n: u32) -> Wanted {
        Wanted {
            take: Take::Newest(n),
            ..Wanted::default()
        }
    }

    #[test]
    fn the_texts_of_totals_counts_and_qualifiers() {
        let wanted = Wanted {
            dates: Some(Dates::Between(Span::Day(2023, 1, 1), Span::Month(2023, 3))),
            above: Some(Limit {
                text: "9.5".into(),
                currency: Some("GBP".into()),
                inclusive: true,
            }),
            below: Some(Limit {
                text: "100".into(),
                currency: None,
                inclusive: false,
            }),
            ..Wanted::default()
        };
        let sums = [
            (Amount::parse("1250", "EUR").unwrap(), 2),
            (Amount::parse("0.5", "GBP").unwrap(), 1),
        ];
        assert_eq!(
            total("b@x", &wanted, &sums),
            "Total spent by b@x between 1 January 2023 and March 2023 of £9.50 or more and under 100, per currency:\n\
             - €1,250 (2 transactions)\n\
             - £0.50 (1 transaction)"
        );
        assert_eq!(
            count("b@x", &Wanted::default(), 0),
            "b@x has 0 transactions."
        );
        let oldest = Wanted {
            take: Take::Oldest(1),
            dates: Some(Dates::During(Span::Year(2024))),
            ..Wanted::default()
        };
        assert_eq!(
            list("b@x", &oldest, &["x: £1 on 1 May 2024".into()]),
            "The oldest transaction for b@x in 2024:\n- x: £1 on 1 May 2024"
        );
        assert_eq!(
            list("b@x", &oldest, &[]),
            "No transactions found for b@x in 2024."
        );
    }

    #[test]
    fn the_texts_of_each_kind_of_answer() {
        let amount = Amount::parse("50", "GBP").unwrap();
        let day = Day::parse("2023-01-16").unwrap();
        let line = transaction("Coffee\nto go", &amount, &day);
        assert_eq!(line, "Coffee to go: £50 on 16 January 2023");
        assert_eq!(
            list("bob@example.com", &newest(2), &[line.clone(), line.clone()]),
            "The 2 most recent transactions for bob@example.com:\n\
             - Coffee to go: £50 on 16 January 2023\n\
             - Coffee to go: £50 on 16 January 2023"
        );
        assert_eq!(
            list("bob@example.com", &newest(1), &[line]),
            "The most recent transaction for bob@example.com:\n\
             - Coffee to go: £50 on 16 January 2023"
        );
        assert_eq!(
            list("bob@example.com", &newest(3), &[]),
            "No transactions found for bob@example.com."
        );
        assert_eq!(
            user_id("bob@example.com", "b1", "Bob"),
            "The user id for bob@example.com (Bob) is b1."
        );
        assert_eq!(
            unknown_user("x@example.com"),
            "No user has the email x@example.com."
        );
    }
}
