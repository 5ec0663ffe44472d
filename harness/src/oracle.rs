//! The oracle: what the answer to a question must be, computed straight from
//! the dataset records with no network, no MCP, no orchestrator engine and
//! none of the servers' indexes.
//!
//! It is written independently of the code it checks, so that a bug there
//! cannot hide by being shared: it imports nothing from the orchestrator.
//! It reads questions with its own rules ([`reading`]) into its own
//! [`Meaning`] ([`meaning`]: dates bounded by its own calendar, amounts
//! compared on its own integers), matches addresses its own way, orders
//! transactions by a stable sort of the records taken in reverse, and
//! renders amounts from integer minor units with its own table of
//! currencies ([`rendering`]). What it expects is both the answer's value,
//! as the JSON it must serialise to, and the text a person must be shown,
//! and [`Expected::check`] compares both: a formatting bug (£12.50 shown as
//! £12) is a wrong answer even when every field is right. The rules are
//! those of `servers/README.md` and the planner's forms.

mod meaning;
mod reading;
mod rendering;
mod truth;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

pub use self::meaning::{Dates, Limit, Meaning, Span, Take, Tell, Wanted, What};
use self::rendering::{Amount, Day};
use payment_server::TransactionRecord;
use user_server::UserRecord;

use crate::dataset::Dataset;

/// Most transactions one listing holds, with or without a count
/// (`servers/README.md`: "at most 1000").
const LISTED_MAX: u32 = 1000;

/// Expected answers for one dataset.
#[derive(Debug, Clone)]
pub struct Oracle {
    dataset: Dataset,
}

/// What the oracle says a question must get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// This answer: its value (as JSON), and the text a person must be shown.
    Answer { answer: Value, text: String },
    /// No answer: the orchestrator must refuse the question (or fail with
    /// another typed error). Why.
    Refusal(String),
}

/// An answer the oracle disagrees with: the text that was shown, and what
/// was expected instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub got: String,
    pub expected: String,
}

impl Expected {
    /// Whether `got`, shown to the user as `shown`, is the expected answer:
    /// the same value (compared as JSON) and the same text.
    pub fn check<A: Serialize>(&self, got: &A, shown: &str) -> Result<(), Mismatch> {
        let got = serde_json::to_value(got)
            .unwrap_or_else(|e| json!({ "unserialisable": e.to_string() }));
        let expected = match self {
            Expected::Answer { answer, text } if *answer == got && text == shown => return Ok(()),
            Expected::Answer { text, .. } if text != shown => text.clone(),
            Expected::Answer { answer, .. } => {
                format!("the same text, from the value {answer} rather than {got}")
            }
            Expected::Refusal(why) => format!("an error: {why}"),
        };
        Err(Mismatch {
            got: shown.to_owned(),
            expected,
        })
    }

    /// The expected answer's value, if an answer is expected.
    pub fn answer(&self) -> Option<&Value> {
        match self {
            Expected::Answer { answer, .. } => Some(answer),
            Expected::Refusal(_) => None,
        }
    }

    /// The expected answer's text, if an answer is expected.
    pub fn text(&self) -> Option<&str> {
        match self {
            Expected::Answer { text, .. } => Some(text),
            Expected::Refusal(_) => None,
        }
    }

    /// The tool calls a right answer takes: per address, one for an
    /// unknown user or a user id, two for transactions.
    pub fn hops(&self) -> usize {
        fn of(value: &Value) -> usize {
            match value["kind"].as_str() {
                Some("each") => value["answers"]
                    .as_array()
                    .map_or(0, |a| a.iter().map(of).sum()),
                Some("userId" | "unknownUser") => 1,
                _ => 2,
            }
        }
        self.answer().map_or(0, of)
    }
}

impl Oracle {
    pub fn new(dataset: Dataset) -> Self {
        Self { dataset }
    }

    /// The original demo's data.
    pub fn demo() -> Self {
        Self::new(Dataset::demo())
    }

    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// The expected answer to a question as a user would type it, read by
    /// the oracle's own rules.
    pub fn answer(&self, question: &str) -> Expected {
        match reading::read(question) {
            Ok(meaning) => self.expect(&meaning),
            Err(why) => Expected::Refusal(why),
        }
    }

    /// Whether the oracle's own rules read `question` at all.
    pub fn reads(question: &str) -> Result<(), String> {
        reading::read(question).map(|_| ())
    }

    /// The expected answer to a question whose meaning is already known
    /// (generated questions carry it, so the planner's reading is checked
    /// too): one answer per address, in the order named.
    pub fn expect(&self, meaning: &Meaning) -> Expected {
        let (emails, what) = match meaning {
            Meaning::Unreadable { why } => return Expected::Refusal(why.clone()),
            Meaning::Asked { emails, what } => (emails, what),
        };
        let mut answers = Vec::with_capacity(emails.len());
        let mut texts = Vec::with_capacity(emails.len());
        for email in emails {
            match self.expect_one(email, what) {
                Expected::Answer { answer, text } => {
                    answers.push(answer);
                    texts.push(text);
                }
                refusal => return refusal,
            }
        }
        match (answers.pop(), answers.is_empty()) {
            (Some(answer), true) => Expected::Answer {
                answer,
                text: texts.concat(),
            },
            (last, _) => {
                answers.extend(last);
                Expected::Answer {
                    answer: json!({ "kind": "each", "answers": answers }),
                    text: texts.join("\n\n"),
                }
            }
        }
    }

    fn expect_one(&self, email: &str, what: &What) -> Expected {
        if let Err(why) = reading::plausible_address(email) {
            return Expected::Refusal(why);
        }
        let Some(user) = self.user(email) else {
            return Expected::Answer {
                text: rendering::unknown_user(email),
                answer: json!({ "kind": "unknownUser", "email": email }),
            };
        };
        match what {
            What::UserId => Expected::Answer {
                text: rendering::user_id(email, &user.id, &user.name),
                answer: json!({ "kind": "userId", "email": email, "userId": user.id, "name": user.name }),
            },
            What::Transactions(wanted) => self
                .transactions(email, user, wanted)
                .unwrap_or_else(Expected::Refusal),
        }
    }

    fn transactions(
        &self,
        email: &str,
        user: &UserRecord,
        wanted: &Wanted,
    ) -> Result<Expected, String> {
        if let Some(n) = wanted.server_count()
            && !(1..=LISTED_MAX).contains(&n)
        {
            return Err(format!(
                "a count of {n} is outside 1 to {LISTED_MAX}: the server refuses it"
            ));
        }
        let mut mine = self.history(&user.id)?;
        if wanted.needs_all() && mine.len() > LISTED_MAX as usize {
            return Err(format!(
                "the answer needs all {} transactions and a listing holds {LISTED_MAX}",
                mine.len()
            ));
        }
        mine.truncate(LISTED_MAX as usize);
        let mut kept = Vec::new();
        for (day, record) in mine {
            let amount = Amount::parse(&record.amount, &record.currency)?;
            if admits(wanted, &day, &amount)? {
                kept.push((day, record, amount));
            }
        }
        match wanted.take {
            Take::All => {}
            Take::Newest(n) => kept.truncate(n as usize),
            Take::Oldest(n) => {
                kept.reverse();
                kept.truncate(n as usize);
            }
        }
        let head = json!({ "email": email, "userId": user.id, "selection": wanted.json() });
        Ok(match wanted.tell {
            Tell::List => listed(email, wanted, head, &kept),
            Tell::Total => totalled(email, wanted, head, &kept)?,
            Tell::Count => Expected::Answer {
                text: rendering::count(email, wanted, kept.len() as u32),
                answer: with(head, json!({ "kind": "count", "count": kept.len() })),
            },
        })
    }

    /// The user whose address is `email`, by a scan of the directory.
    fn user(&self, email: &str) -> Option<&UserRecord> {
        self.dataset
            .users
            .iter()
            .find(|u| reading::same_address(&u.email, email))
    }

    /// Every transaction of `user_id`, newest first (on the same day, the
    /// one listed later first).
    fn history(&self, user_id: &str) -> Result<Vec<(Day, &TransactionRecord)>, String> {
        let mut mine: Vec<(Day, &TransactionRecord)> = Vec::new();
        // Taken in reverse, so that the stable sort leaves the later-listed
        // first among equal days.
        for record in self.dataset.transactions.iter().rev() {
            if record.user_id == user_id {
                mine.push((Day::parse(&record.date)?, record));
            }
        }
        mine.sort_by(|(a, _), (b, _)| b.cmp(a));
        Ok(mine)
    }
}

type Kept<'a> = (Day, &'a TransactionRecord, Amount);

/// Whether a transaction passes every qualifier of `wanted`.
fn admits(wanted: &Wanted, day: &Day, amount: &Amount) -> Result<bool, String> {
    if wanted.dates.is_some_and(|d| !d.admits(day)) {
        return Ok(false);
    }
    for (limit, above) in [(&wanted.above, true), (&wanted.below, false)] {
        if let Some(limit) = limit
            && !limit.admits(amount, above)?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `head`'s fields and `more`'s, in one object.
fn with(mut head: Value, more: Value) -> Value {
    if let (Some(head), Value::Object(more)) = (head.as_object_mut(), more) {
        head.extend(more);
    }
    head
}

fn listed(email: &str, wanted: &Wanted, head: Value, kept: &[Kept<'_>]) -> Expected {
    let lines: Vec<String> = kept
        .iter()
        .map(|(day, record, amount)| rendering::transaction(&record.description, amount, day))
        .collect();
    let values: Vec<Value> = kept.iter().map(line).collect();
    Expected::Answer {
        text: rendering::list(email, wanted, &lines),
        answer: with(
            head,
            json!({ "kind": "transactions", "transactions": values }),
        ),
    }
}

/// One transaction as an answer's JSON lists it.
fn line((day, record, amount): &Kept<'_>) -> Value {
    let (y, m, d) = day.ymd();
    json!({
        "description": record.description,
        "amount": amount.decimal(),
        "currency": amount.code(),
        "date": format!("{y:04}-{m:02}-{d:02}"),
    })
}

fn totalled(
    email: &str,
    wanted: &Wanted,
    head: Value,
    kept: &[Kept<'_>],
) -> Result<Expected, String> {
    let mut sums: BTreeMap<&str, (Amount, u32)> = BTreeMap::new();
    for (_, _, amount) in kept {
        let (sum, n) = match sums.remove(amount.code()) {
            Some(so_far) => so_far,
            None => (Amount::zero(amount.code())?, 0),
        };
        sums.insert(amount.code(), (sum.plus(amount)?, n + 1));
    }
    let sums: Vec<(Amount, u32)> = sums.into_values().collect();
    let totals: Vec<Value> = sums
        .iter()
        .map(|(sum, n)| json!({ "currency": sum.code(), "amount": sum.decimal(), "transactions": n }))
        .collect();
    Ok(Expected::Answer {
        text: rendering::total(email, wanted, &sums),
        answer: with(head, json!({ "kind": "total", "totals": totals })),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::strategies;

    const SEED_ANSWER: &str = "Recent transactions for bob@example.com:\n\
             - Coffee: £50 on 16 January 2023\n\
             - Groceries: £100 on 15 January 2023\n\
             - Dinner: £75 on 14 January 2023\n\
             - Online Course: £120 on 12 January 2023";

    fn bob(wanted: Wanted) -> Meaning {
        Meaning::Asked {
            emails: vec!["bob@example.com".into()],
            what: What::Transactions(wanted),
        }
    }

    #[test]
    fn the_seed_question_renders_the_demo_answer() {
        let expected =
            Oracle::demo().answer("What are the recent transactions for bob@example.com?");
        assert_eq!(expected.text(), Some(SEED_ANSWER));
        assert_eq!(expected.answer().unwrap()["selection"]["pick"], "all");
        assert_eq!(expected.hops(), 2);
        let unknown = Oracle::demo().answer("transactions for nobody@example.com");
        assert_eq!(unknown.answer().unwrap()["kind"], "unknownUser");
        assert_eq!(unknown.hops(), 1);
        assert!(matches!(
            Oracle::demo().answer("transactions for a@@b"),
            Expected::Refusal(_)
        ));
    }

    #[test]
    fn ties_on_a_date_put_the_later_listed_first_and_count_cuts() {
        let mut data = Dataset::demo();
        let mut tie = data.transactions[1].clone(); // Bob's Coffee, 2023-01-16
        tie.id = "7".into();
        tie.description = "Tea".into();
        data.transactions.push(tie);
        let oracle = Oracle::new(data);
        let names = |expected: Expected| -> Vec<String> {
            expected.answer().unwrap()["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["description"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            names(oracle.answer("last 2 transactions for BOB@example.com")),
            ["Tea", "Coffee"]
        );
        let oldest = bob(Wanted {
            take: Take::Oldest(2),
            dates: Some(Dates::Since(Span::Day(2023, 1, 16))),
            ..Wanted::default()
        });
        assert_eq!(names(oracle.expect(&oldest)), ["Coffee", "Tea"]);
    }

    #[test]
    fn totals_are_per_currency_and_filters_apply_first() {
        let mut data = Dataset::demo();
        data.transactions[1].currency = "USD".into(); // Bob's Coffee, 50.00
        let wanted = Wanted {
            tell: Tell::Total,
            dates: Some(Dates::During(Span::Month(2023, 1))),
            above: Some(Limit {
                text: "60".into(),
                currency: None,
                inclusive: false,
            }),
            ..Wanted::default()
        };
        let expected = Oracle::new(data.clone()).expect(&bob(wanted.clone()));
        assert_eq!(
            expected.text(),
            Some("Total spent by bob@example.com in January 2023 over 60: £295 (3 transactions).")
        );
        let everything = Oracle::new(data).expect(&bob(Wanted {
            tell: Tell::Total,
            ..Wanted::default()
        }));
        assert_eq!(
            everything.text(),
            Some(
                "Total spent by bob@example.com, per currency:\n- £295 (3 transactions)\n- $50 (1 transaction)"
            )
        );
        assert_eq!(
            everything.answer().unwrap()["totals"],
            json!([
                { "currency": "GBP", "amount": "295.00", "transactions": 3 },
                { "currency": "USD", "amount": "50.00", "transactions": 1 },
            ])
        );
        let count = Oracle::demo().expect(&bob(Wanted {
            tell: Tell::Count,
            below: Some(Limit {
                text: "75".into(),
                currency: Some("GBP".into()),
                inclusive: true,
            }),
            ..Wanted::default()
        }));
        assert_eq!(
            count.text(),
            Some("bob@example.com has 2 transactions of £75 or less.")
        );
    }

    #[test]
    fn several_addresses_get_an_answer_each_and_unreadable_ones_a_refusal() {
        let both = Oracle::demo().expect(&Meaning::Asked {
            emails: vec!["nobody@example.com".into(), "charlie@example.com".into()],
            what: What::UserId,
        });
        assert_eq!(both.answer().unwrap()["kind"], "each");
        assert_eq!(both.hops(), 2);
        assert!(both.text().unwrap().starts_with(
            "No user has the email nobody@example.com.\n\nThe user id for charlie@example.com"
        ));
        let unreadable = Meaning::Unreadable {
            why: "a shop".into(),
        };
        assert_eq!(
            Oracle::demo().expect(&unreadable),
            Expected::Refusal("a shop".into())
        );
    }

    /// The pence test: an answer whose every field is right but whose
    /// rendering drops the pence (as a `format_money` that kept only the
    /// whole units would) is a wrong answer. Were the oracle to render with
    /// the code it checks, that code's bug would be its own and this would
    /// pass unseen.
    #[test]
    fn a_rendering_that_drops_the_pence_is_a_wrong_answer() {
        let mut data = Dataset::demo();
        data.transactions[1].amount = "12.50".into(); // Bob's Coffee
        let expected = Oracle::new(data).answer("last 1 transaction for bob@example.com");
        let got = expected.answer().expect("an answer").clone();
        let right = "The most recent transaction for bob@example.com:\n\
                     - Coffee: £12.50 on 16 January 2023";
        assert_eq!(expected.check(&got, right), Ok(()));
        let pence_dropped = right.replace("£12.50", "£12");
        assert_eq!(
            expected.check(&got, &pence_dropped),
            Err(Mismatch {
                got: pence_dropped.clone(),
                expected: right.to_owned(),
            })
        );
    }

    #[test]
    fn a_wrong_value_behind_the_right_text_is_a_wrong_answer() {
        let expected = Oracle::demo().answer("last 1 transaction for bob@example.com");
        let mut other_user = expected.answer().unwrap().clone();
        other_user["userId"] = json!("someone-else");
        let shown = expected.text().unwrap();
        let mismatch = expected.check(&other_user, shown).unwrap_err();
        assert!(mismatch.expected.contains("rather than"), "{mismatch:?}");
        // And an answer where none is expected.
        let refusal = Oracle::demo().answer("last 0 transactions for bob@example.com");
        assert!(refusal.check(&other_user, shown).is_err());
    }

    #[test]
    fn the_listing_limit_is_the_servers() {
        assert_eq!(LISTED_MAX, payment_server::COUNT_MAX);
        let over = Oracle::demo().expect(&bob(Wanted {
            take: Take::Newest(LISTED_MAX + 1),
            ..Wanted::default()
        }));
        assert!(matches!(over, Expected::Refusal(_)));
        let mut data = Dataset::demo();
        let coffee = data.transactions[1].clone();
        data.transactions.extend((0..LISTED_MAX).map(|i| {
            let mut t = coffee.clone();
            t.id = format!("many-{i}");
            t
        }));
        let oracle = Oracle::new(data);
        let all_listed = oracle.expect(&bob(Wanted::default()));
        assert_eq!(
            all_listed.answer().unwrap()["transactions"]
                .as_array()
                .unwrap()
                .len(),
            1000
        );
        let total = oracle.expect(&bob(Wanted {
            tell: Tell::Total,
            ..Wanted::default()
        }));
        assert!(matches!(total, Expected::Refusal(_)), "{total:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The oracle reads every generated question of today's forms as
        /// the generator meant it, and has an answer for each.
        #[test]
        fn reads_every_generated_question_as_meant(
            (data, questions) in strategies::dataset(0..=8, 0..=30).prop_flat_map(|d| {
                let q = proptest::collection::vec(strategies::question(&d, 0.3), 1..10);
                (Just(d), q)
            })
        ) {
            let oracle = Oracle::new(data);
            for q in questions {
                let read = oracle.answer(&q.text);
                prop_assert_eq!(&read, &oracle.expect(&q.meaning), "{:?}", q.text);
                prop_assert!(read.answer().is_some(), "{:?}: {:?}", q.text, read);
            }
        }

        /// Every generated address is one the oracle and the user server
        /// both take, and each matches its own case variants.
        #[test]
        fn takes_every_generated_address(email in strategies::email(), mask in any::<u32>()) {
            prop_assert!(reading::plausible_address(&email).is_ok(), "{:?}", email);
            prop_assert!(user_server::email_key(&email).is_ok(), "{:?}", email);
            prop_assert!(reading::same_address(&email, &strategies::mixed_case(&email, mask)));
        }
    }
}
