//! Questions in every form the planner reads, and with qualifiers it does
//! not: totals, counts, the newest and the oldest, dates (on, in, since,
//! after, before, between), amounts (over, under, at least, at most, with
//! and without a currency), several addresses; and a merchant, a month
//! with no year, a relative date, a ranking… Each carries its [`Meaning`]
//! (an unreadable one for those the planner must refuse) and the names of
//! the forms it is made of.
//!
//! Dates and amounts are drawn from the dataset's own transactions, so the
//! filters select something, and written as a user would.

use proptest::{prelude::*, sample::Index};

use super::{AskedQuestion, address};
use crate::{
    dataset::Dataset,
    oracle::{Dates, Limit, Meaning, Span, Take, Tell, Wanted, What},
};

/// Qualifiers the planner does not read, and what each would have asked.
const UNREADABLE: [(&str, &str); 13] = [
    ("at Starbucks", "a merchant"),
    ("on coffee", "a description"),
    ("in March", "a month with no year"),
    ("last month", "a date relative to today"),
    ("yesterday", "a date relative to today"),
    ("this year", "a date relative to today"),
    ("in EUR", "a currency of the transactions"),
    ("on weekends", "a day of the week"),
    ("per month", "a breakdown"),
    ("on average", "an average"),
    ("excluding refunds", "an exclusion"),
    ("between £10 and £50", "an amount range"),
    ("top 3", "a ranking by amount"),
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

/// A question before it is pointed at a dataset: every choice is an
/// independent draw, so each part shrinks on its own.
#[derive(Debug, Clone)]
pub struct PlainSpec {
    /// One to three people: an unknown address or a user by position, and
    /// the case of its letters.
    pub people: Vec<(Option<String>, Index, u32)>,
    /// 0 list, 1 total, 2 count, 3 user id.
    pub tell: usize,
    /// Which sentence.
    pub shape: usize,
    /// 0 all, 1 newest n, 2 newest one, 3 oldest n, 4 oldest one.
    pub take: usize,
    pub n: u32,
    /// The date qualifier's kind (0–7), its two anchors, the precision of
    /// each (day, month, year) and the way a day is written.
    pub dates: Option<(usize, Index, Index, usize, bool)>,
    /// The amount qualifiers: which bounds (0 over, 1 under, 2 both),
    /// inclusive, how the currency is written (0 symbol or code, 1 none, 2
    /// code after), the two anchors.
    pub amounts: Option<(usize, bool, usize, Index, Index)>,
    pub dates_first: bool,
    pub unreadable: Option<usize>,
}

/// Question specs in every form, a share `unknown_share` of addresses
/// unknown.
pub fn plain_spec(unknown_share: f64) -> impl Strategy<Value = PlainSpec> {
    let person = move || {
        (
            super::unknown_address(unknown_share),
            any::<Index>(),
            any::<u32>(),
        )
    };
    let people = prop_oneof![
        3 => proptest::collection::vec(person(), 1..=1),
        1 => proptest::collection::vec(person(), 2..=3),
    ];
    let dates = (
        0usize..8,
        any::<Index>(),
        any::<Index>(),
        0usize..9,
        any::<bool>(),
    );
    let amounts = (
        0usize..3,
        any::<bool>(),
        0usize..3,
        any::<Index>(),
        any::<Index>(),
    );
    (
        people,
        prop_oneof![4 => Just(0usize), 3 => Just(1), 2 => Just(2), 1 => Just(3)],
        0usize..3,
        0usize..5,
        2u32..=5,
        proptest::option::weighted(0.6, dates),
        proptest::option::weighted(0.4, amounts),
        any::<bool>(),
        proptest::option::weighted(0.25, 0..UNREADABLE.len()),
    )
        .prop_map(
            |(people, tell, shape, take, n, dates, amounts, dates_first, unreadable)| PlainSpec {
                people,
                tell,
                shape,
                take,
                n,
                dates,
                amounts,
                dates_first,
                unreadable,
            },
        )
}

/// Questions in every form about `dataset`.
pub fn plain_question(
    dataset: &Dataset,
    unknown_share: f64,
) -> impl Strategy<Value = AskedQuestion> + use<> {
    let dataset = dataset.clone();
    plain_spec(unknown_share).prop_map(move |spec| spec.resolve(&dataset))
}

impl PlainSpec {
    /// The question about `dataset`.
    pub fn resolve(&self, dataset: &Dataset) -> AskedQuestion {
        let emails: Vec<String> = self
            .people
            .iter()
            .map(|(unknown, user, case)| address(dataset, unknown.as_deref(), *user, *case))
            .collect();
        let mut forms = Vec::new();
        if emails.len() > 1 {
            forms.push("several addresses");
        }
        let (text, what) = if self.tell == 3 {
            forms.push("a user id");
            (
                format!("What is the user id of {}", joined(&emails)),
                What::UserId,
            )
        } else {
            let (text, wanted) = self.transactions(dataset, &emails, &mut forms);
            (text, What::Transactions(wanted))
        };
        let (text, meaning) = match self.unreadable.map(|i| UNREADABLE[i % UNREADABLE.len()]) {
            Some((words, why)) => {
                forms.push(why);
                (
                    format!("{text} {words}?"),
                    Meaning::Unreadable {
                        why: format!("{words:?}: {why}"),
                    },
                )
            }
            None => (format!("{text}?"), Meaning::Asked { emails, what }),
        };
        AskedQuestion {
            text,
            meaning,
            forms,
        }
    }

    fn transactions(
        &self,
        dataset: &Dataset,
        emails: &[String],
        forms: &mut Vec<&'static str>,
    ) -> (String, Wanted) {
        let tell = [Tell::List, Tell::Total, Tell::Count][self.tell % 3];
        // "how many" takes no pick: the planner refuses one.
        let take_choice = if tell == Tell::Count { 0 } else { self.take };
        let (take, take_words, noun) = take(take_choice, self.n);
        forms.push(match tell {
            Tell::List => "a list",
            Tell::Total => "a total",
            Tell::Count => "a count",
        });
        if take != Take::All {
            forms.push(match take {
                Take::Newest(1) => "the newest one",
                Take::Newest(_) => "the newest n",
                Take::Oldest(1) => "the oldest one",
                _ => "the oldest n",
            });
        }
        let mut wanted = Wanted {
            take,
            tell,
            ..Wanted::default()
        };
        let dates = self.dates.map(|d| dates(dataset, d, forms));
        let amounts = self.amounts.map(|a| amounts(dataset, a, forms));
        let mut quals = Vec::new();
        if let Some((text, filter)) = dates {
            wanted.dates = Some(filter);
            quals.push(text);
        }
        if let Some((text, above, below)) = amounts {
            wanted.above = above;
            wanted.below = below;
            quals.push(text);
        }
        if !self.dates_first {
            quals.reverse();
        }
        let quals: String = quals.iter().map(|q| format!(" {q}")).collect();
        let who = joined(emails);
        let text = match (tell, self.shape % 3, take) {
            (Tell::List, 0, _) => format!("Show me the {take_words}{noun} of {who}{quals}"),
            (Tell::List, 1, _) => format!("What are the {take_words}{noun} for {who}{quals}"),
            (Tell::List, _, _) if emails.len() == 1 => format!("{who}'s {take_words}{noun}{quals}"),
            (Tell::List, _, _) => format!("list the {take_words}{noun} of {who}{quals}"),
            (Tell::Total, 0, Take::All) => format!("How much has {who} spent{quals}"),
            (Tell::Total, 1, Take::All) => format!("What is the total {who} spent{quals}"),
            (Tell::Total, _, _) => format!("total of the {take_words}{noun} of {who}{quals}"),
            (_, 0, _) => format!("How many {noun} does {who} have{quals}"),
            _ => format!("number of {noun} of {who}{quals}"),
        };
        (text, wanted)
    }
}

/// "a", "a and b", "a, b and c".
fn joined(emails: &[String]) -> String {
    match emails {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The pick, the words before the noun, and the noun.
fn take(choice: usize, n: u32) -> (Take, String, &'static str) {
    match choice {
        1 => (Take::Newest(n), format!("last {n} "), "purchases"),
        2 => (Take::Newest(1), "latest ".into(), "purchase"),
        3 => (Take::Oldest(n), format!("{n} oldest "), "payments"),
        4 => (Take::Oldest(1), "oldest ".into(), "transaction"),
        _ => (Take::All, String::new(), "transactions"),
    }
}

/// The (year, month, day) of the transaction at `anchor`, or 16 January
/// 2023 in an empty dataset.
fn anchor_day(dataset: &Dataset, anchor: Index) -> (i32, u32, u32) {
    let Some(record) = (!dataset.transactions.is_empty())
        .then(|| &dataset.transactions[anchor.index(dataset.transactions.len())])
    else {
        return (2023, 1, 16);
    };
    let parts: Vec<&str> = record.date.split('-').collect();
    match parts[..] {
        [y, m, d] => (
            y.parse().unwrap_or(2023),
            m.parse().unwrap_or(1),
            d.parse().unwrap_or(16),
        ),
        _ => (2023, 1, 16),
    }
}

/// The span around a day: the day (0–2), its month (3–5) or its year.
fn span_of((y, m, d): (i32, u32, u32), precision: usize) -> Span {
    match precision % 3 {
        0 => Span::Day(y, m, d),
        1 => Span::Month(y, m),
        _ => Span::Year(y),
    }
}

fn written(span: Span, iso: bool) -> String {
    match span {
        Span::Day(y, m, d) if iso => format!("{y:04}-{m:02}-{d:02}"),
        Span::Day(y, m, d) => format!("{d} {} {y:04}", MONTHS[(m - 1) as usize % 12]),
        Span::Month(y, m) => format!("{} {y:04}", MONTHS[(m - 1) as usize % 12]),
        Span::Year(y) => format!("{y:04}"),
    }
}

fn dates(
    dataset: &Dataset,
    (kind, first, second, precision, iso): (usize, Index, Index, usize, bool),
    forms: &mut Vec<&'static str>,
) -> (String, Dates) {
    let one = span_of(anchor_day(dataset, first), precision);
    let word = |span: Span| written(span, iso);
    let (text, filter, form) = match kind {
        0 => {
            let day = span_of(anchor_day(dataset, first), 0);
            (format!("on {}", word(day)), Dates::During(day), "on a date")
        }
        1 => {
            let month = span_of(anchor_day(dataset, first), 1);
            (
                format!("in {}", word(month)),
                Dates::During(month),
                "in a month",
            )
        }
        2 => {
            let year = span_of(anchor_day(dataset, first), 2);
            (
                format!("in {}", word(year)),
                Dates::During(year),
                "in a year",
            )
        }
        3 => (format!("since {}", word(one)), Dates::Since(one), "since"),
        4 => (format!("after {}", word(one)), Dates::After(one), "after"),
        5 => (
            format!("before {}", word(one)),
            Dates::Before(one),
            "before",
        ),
        _ => {
            let mut days = [anchor_day(dataset, first), anchor_day(dataset, second)];
            days.sort();
            let (a, b) = (span_of(days[0], precision), span_of(days[1], precision / 3));
            let text = if kind == 6 {
                format!("between {} and {}", word(a), word(b))
            } else {
                format!("from {} to {}", word(a), word(b))
            };
            (text, Dates::Between(a, b), "between")
        }
    };
    forms.push(form);
    (text, filter)
}

/// The amount and currency of the transaction at `anchor`, or £50.
fn anchor_amount(dataset: &Dataset, anchor: Index) -> (String, String) {
    if dataset.transactions.is_empty() {
        return ("50".into(), "GBP".into());
    }
    let record = &dataset.transactions[anchor.index(dataset.transactions.len())];
    (record.amount.clone(), record.currency.clone())
}

/// The amount written with its currency: a symbol before it, or the code
/// before or after it.
fn with_currency(amount: &str, currency: &str, after: bool) -> String {
    let symbol = match currency {
        "GBP" => Some("£"),
        "USD" => Some("$"),
        "EUR" => Some("€"),
        "JPY" => Some("¥"),
        _ => None,
    };
    match (symbol, after) {
        (_, true) => format!("{amount} {currency}"),
        (Some(symbol), false) => format!("{symbol}{amount}"),
        (None, false) => format!("{currency} {amount}"),
    }
}

type Amounts = (String, Option<Limit>, Option<Limit>);

fn amounts(
    dataset: &Dataset,
    (bounds, inclusive, style, first, second): (usize, bool, usize, Index, Index),
    forms: &mut Vec<&'static str>,
) -> Amounts {
    let limit = |anchor: Index, above: bool| {
        let (amount, currency) = anchor_amount(dataset, anchor);
        let text = match style {
            1 => amount.clone(),
            s => with_currency(&amount, &currency, s == 2),
        };
        let words = match (above, inclusive) {
            (true, false) => "over",
            (true, true) => "at least",
            (false, false) => "under",
            (false, true) => "at most",
        };
        let limit = Limit {
            text: amount,
            currency: (style != 1).then_some(currency),
            inclusive,
        };
        (format!("{words} {text}"), limit)
    };
    forms.push(if style == 1 {
        "an amount in any currency"
    } else {
        "an amount in a currency"
    });
    match bounds % 3 {
        0 => {
            forms.push("over an amount");
            let (text, over) = limit(first, true);
            (text, Some(over), None)
        }
        1 => {
            forms.push("under an amount");
            let (text, under) = limit(first, false);
            (text, None, Some(under))
        }
        _ => {
            forms.push("over and under amounts");
            let (low, high) = (limit(first, true), limit(second, false));
            (
                format!("{} and {}", low.0, high.0),
                Some(low.1),
                Some(high.1),
            )
        }
    }
}
