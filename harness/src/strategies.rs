//! Generators of awkward data and questions, as `proptest` strategies.
//!
//! The property tests use them directly (and so get shrinking); a scenario
//! with `[dataset] generate = …` draws one value from them with the run's
//! seed through [`sample`], so the same seed gives the same dataset.
//!
//! What is awkward on purpose:
//! - emails in mixed case, with plus-addressing and dots, unicode local
//!   parts and domains, and near-duplicates of each other;
//! - names in any script;
//! - amounts from 0 to 10¹⁷ minor units, in currencies with 0, 2 and 3
//!   decimal places;
//! - dates across decades, leap days, and many ties on the same day;
//! - descriptions with quotes, newlines, emoji and JSON-breaking characters;
//! - transactions of users the directory does not know.

mod plain;

use std::collections::BTreeSet;

use payment_server::TransactionRecord;
use proptest::{
    prelude::*,
    sample::{Index, SizeRange},
    strategy::ValueTree,
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use user_server::{UserRecord, email_key};

use crate::{
    dataset::Dataset,
    oracle::{Meaning, Take, Wanted, What},
};

pub use plain::{PlainSpec, plain_question, plain_spec};

/// Draws one value from `strategy`, determined by `seed` alone.
pub fn sample<S: Strategy>(strategy: &S, seed: u64) -> Result<S::Value, String> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(b"harness!");
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    strategy
        .new_tree(&mut runner)
        .map(|tree| tree.current())
        .map_err(|reason| format!("the generator gave up: {reason}"))
}

/// Currencies and their decimal places: none, two and three.
const CURRENCIES: [(&str, u32); 6] = [
    ("GBP", 2),
    ("USD", 2),
    ("EUR", 2),
    ("JPY", 0),
    ("KWD", 3),
    ("CHF", 2),
];

/// Local parts that collide, nearly, with each other and with the demo's.
const LOCALS: [&str; 12] = [
    "bob", "alice", "charlie", "b.ob", "bob_", "o'brien", "josé", "zoë", "用户", "ÅSA", "x",
    "ma-ria",
];

const DOMAINS: [&str; 5] = [
    "example.com",
    "Example.COM",
    "mail.example.org",
    "bücher.example",
    "xn--bcher-kva.example",
];

/// An address nobody has a share `share` of the time (`None` otherwise):
/// never at 0, always at 1, which proptest's `option::weighted` takes
/// neither of (it panics).
pub(crate) fn unknown_address(share: f64) -> BoxedStrategy<Option<String>> {
    if share <= 0.0 {
        Just(None).boxed()
    } else if share >= 1.0 {
        email().prop_map(Some).boxed()
    } else {
        proptest::option::weighted(share, email()).boxed()
    }
}

/// A valid email address, awkward in case, tags and script.
pub fn email() -> impl Strategy<Value = String> {
    let local = prop_oneof![
        3 => proptest::sample::select(&LOCALS[..]).prop_map(str::to_owned),
        2 => "[a-z][a-z0-9]{0,7}",
        1 => "[a-z]{1,4}\\.[a-z]{1,4}",
    ];
    let tag = proptest::option::weighted(0.3, "[a-z0-9]{1,4}");
    let domain = proptest::sample::select(&DOMAINS[..]);
    (local, tag, domain, any::<u32>())
        .prop_map(|(local, tag, domain, case)| {
            let address = match tag {
                Some(tag) => format!("{local}+{tag}@{domain}"),
                None => format!("{local}@{domain}"),
            };
            mixed_case(&address, case)
        })
        .prop_filter("the servers accept only valid addresses", |e| {
            email_key(e).is_ok()
        })
}

/// `text` with the letters whose bit is set in `mask` upper-cased.
pub fn mixed_case(text: &str, mask: u32) -> String {
    text.chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let upper = mask.rotate_right(i as u32 % 32) & 1 == 1;
            let mapped: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                vec![c]
            };
            mapped
        })
        .collect()
}

/// A display name in any script, never blank.
pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[A-Z][a-z]{1,10}",
        1 => proptest::sample::select(&["Zoë", "李小龍", "Ольга", "محمد", "Siobhán Ó'Brien", "🦀 Ferris"][..])
            .prop_map(str::to_owned),
        1 => "\\PC{1,16}",
    ]
    .prop_filter("names are not blank", |n| !n.trim().is_empty())
}

fn description() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[A-Z][a-z]{2,10}( [a-z]{2,8}){0,2}",
        1 => Just("\"quoted\"".to_owned()),
        1 => Just("line one\nline two".to_owned()),
        1 => Just("coffee ☕ 🎉".to_owned()),
        1 => Just("{\"json\": [1, 2], \"x\": null}".to_owned()),
        1 => Just("back\\slash\ttab".to_owned()),
        1 => Just("</script><b>".to_owned()),
        1 => "\\PC{0,12}",
    ];
    proptest::collection::vec(piece, 0..3).prop_map(|pieces| pieces.join(" "))
}

fn date() -> impl Strategy<Value = String> {
    let any_day =
        (1970i32..2100, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"));
    let leap_day = proptest::sample::select(&[2000i32, 2004, 2020, 2024, 2096][..])
        .prop_map(|y| format!("{y:04}-02-29"));
    // A few days shared by many transactions: ties on the date.
    let busy_day = proptest::sample::select(&["2023-01-15", "2023-01-16", "2024-12-31"][..])
        .prop_map(str::to_owned);
    prop_oneof![3 => any_day, 1 => leap_day, 2 => busy_day]
}

/// An amount in major units, written with the currency's decimal places (or
/// none, when the fraction is zero and the draw says so).
fn amount(decimals: u32) -> impl Strategy<Value = String> {
    let minor = prop_oneof![
        3 => 0u64..100_000,
        1 => Just(0u64),
        1 => 0u64..10_000_000_000,
        1 => 1_000_000_000_000_000u64..100_000_000_000_000_000,
    ];
    (minor, any::<bool>()).prop_map(move |(minor, short)| {
        let scale = 10u64.pow(decimals);
        let (whole, fraction) = (minor / scale, minor % scale);
        if decimals == 0 || (short && fraction == 0) {
            whole.to_string()
        } else {
            format!("{whole}.{fraction:0width$}", width = decimals as usize)
        }
    })
}

/// Users with unique ids and unique emails (ignoring case), and their
/// transactions, one in ten belonging to nobody the directory knows.
/// Users and transactions are drawn independently (a transaction names its
/// owner by position), so each list shrinks on its own.
pub fn dataset(
    users: impl Into<SizeRange>,
    transactions: impl Into<SizeRange>,
) -> impl Strategy<Value = Dataset> {
    let users =
        proptest::collection::vec((email(), name(), any::<u64>()), users).prop_map(|drawn| {
            let mut seen = BTreeSet::new();
            drawn
                .into_iter()
                .filter(|(email, _, _)| seen.insert(email.to_lowercase()))
                .enumerate()
                .map(|(i, (email, name, tag))| UserRecord {
                    id: format!("u{i}-{tag:016x}"),
                    email,
                    name,
                })
                .collect::<Vec<_>>()
        });
    let transaction = (
        proptest::option::weighted(0.9, any::<Index>()),
        proptest::sample::select(&CURRENCIES[..])
            .prop_flat_map(|(code, decimals)| (Just(code), amount(decimals))),
        date(),
        description(),
    );
    let transactions = proptest::collection::vec(transaction, transactions);
    (users, transactions).prop_map(|(users, drawn)| {
        let transactions = drawn
            .into_iter()
            .enumerate()
            .map(|(i, (owner, (currency, amount), date, description))| {
                let user_id = match owner {
                    Some(index) if !users.is_empty() => users[index.index(users.len())].id.clone(),
                    _ => format!("ghost-{}", i % 3),
                };
                TransactionRecord {
                    id: format!("t{i}"),
                    user_id,
                    amount,
                    currency: currency.to_owned(),
                    description,
                    date,
                }
            })
            .collect();
        Dataset {
            users,
            transactions,
        }
    })
}

/// A question as a user types it, what it means, and the forms it is
/// made of (for the figures of how many of each the planner answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskedQuestion {
    pub text: String,
    pub meaning: Meaning,
    pub forms: Vec<&'static str>,
}

/// Every question form the planner supports, with and without a count.
const FORMS: [(&str, Form); 9] = [
    ("What are the recent transactions for {email}?", Form::All),
    ("Show me all purchases for {email}", Form::All),
    ("spending history of {email}", Form::All),
    ("Last {n} transactions for {email}", Form::Count),
    ("{email}'s {n} most recent payments?", Form::Count),
    (
        "what were the last {words} orders of {email}",
        Form::CountWords,
    ),
    ("the latest purchase of {email}", Form::One),
    ("What is the user id of {email}?", Form::UserId),
    ("userid for {email}", Form::UserId),
];

#[derive(Debug, Clone, Copy)]
enum Form {
    All,
    Count,
    CountWords,
    One,
    UserId,
}

const NUMBER_WORDS: [&str; 12] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
];

/// A question before it is pointed at a dataset: which user (by position),
/// in which case, in which form, or about which unknown address. Being
/// independent of the dataset, it shrinks independently of it.
#[derive(Debug, Clone)]
pub struct QuestionSpec {
    /// `Some`: about this address, which nobody in the dataset has.
    pub unknown: Option<String>,
    pub user: Index,
    /// Which letters of the email to flip in case.
    pub case: u32,
    pub form: usize,
    /// The count, for forms that have one: 1 to 12.
    pub n: u32,
}

/// Question specs, a share `unknown_share` about unknown addresses.
pub fn question_spec(unknown_share: f64) -> impl Strategy<Value = QuestionSpec> {
    (
        unknown_address(unknown_share),
        any::<Index>(),
        any::<u32>(),
        0..FORMS.len(),
        1u32..=12,
    )
        .prop_map(|(unknown, user, case, form, n)| QuestionSpec {
            unknown,
            user,
            case,
            form,
            n,
        })
}

impl QuestionSpec {
    /// The question about `dataset`. An "unknown" address that someone in
    /// the dataset has after all gets a prefix that makes it unknown; with
    /// no users, every question is about an unknown address.
    pub fn resolve(&self, dataset: &Dataset) -> AskedQuestion {
        let email = address(dataset, self.unknown.as_deref(), self.user, self.case);
        let (template, form) = FORMS[self.form % FORMS.len()];
        let n = self.n.clamp(1, 12);
        let text = template
            .replace("{email}", &email)
            .replace("{n}", &n.to_string())
            .replace("{words}", NUMBER_WORDS[(n - 1) as usize]);
        let newest = |n| {
            What::Transactions(Wanted {
                take: Take::Newest(n),
                ..Wanted::default()
            })
        };
        let (what, form) = match form {
            Form::UserId => (What::UserId, "today: a user id"),
            Form::All => (
                What::Transactions(Wanted::default()),
                "today: all transactions",
            ),
            Form::Count | Form::CountWords => (newest(n), "today: the newest n"),
            Form::One => (newest(1), "today: the newest one"),
        };
        AskedQuestion {
            text,
            meaning: Meaning::Asked {
                emails: vec![email],
                what,
            },
            forms: vec![form],
        }
    }
}

/// The address a question names: a known user's (by position, in another
/// case), or `unknown`, made unknown with a prefix if someone in the dataset
/// has it after all; with no users, an unknown one.
fn address(dataset: &Dataset, unknown: Option<&str>, user: Index, case: u32) -> String {
    let taken = |e: &str| {
        dataset
            .users
            .iter()
            .any(|u| u.email.trim().to_lowercase() == e.to_lowercase())
    };
    match (unknown, dataset.users.len()) {
        (None, users) if users > 0 => {
            mixed_case(dataset.users[user.index(users)].email.trim(), case)
        }
        (unknown, _) => {
            let mut email = unknown.unwrap_or("nobody@example.com").to_owned();
            while taken(&email) {
                email.insert_str(0, "no-one.");
            }
            email
        }
    }
}

/// Questions about `dataset`: about a known user, with the email in another
/// case, or (with probability `unknown_share`) about an unknown address.
pub fn question(
    dataset: &Dataset,
    unknown_share: f64,
) -> impl Strategy<Value = AskedQuestion> + use<> {
    let dataset = dataset.clone();
    question_spec(unknown_share).prop_map(move |spec| spec.resolve(&dataset))
}

#[cfg(test)]
mod tests {
    use orchestrator::{PlanError, parse_question};

    use super::*;
    use crate::Oracle;

    #[test]
    fn the_same_seed_gives_the_same_dataset() {
        let strategy = dataset(5..=20, 0..=100);
        assert_eq!(sample(&strategy, 7), sample(&strategy, 7));
        assert_ne!(sample(&strategy, 7), sample(&strategy, 8));
    }

    /// `unknown_share = 0` and `1` are valid in scenario files; proptest's
    /// `option::weighted` panics on both.
    #[test]
    fn an_unknown_share_of_none_or_all_is_taken_as_written() {
        let data = sample(&dataset(4..=4, 8..=8), 3).unwrap();
        let known = |email: &str| {
            data.users
                .iter()
                .any(|u| u.email.to_lowercase() == email.to_lowercase())
        };
        for (share, unknown) in [(0.0, false), (1.0, true)] {
            let asked = sample(&proptest::collection::vec(question(&data, share), 30), 5).unwrap();
            let plain = sample(
                &proptest::collection::vec(plain_question(&data, share), 30),
                5,
            )
            .unwrap();
            for q in asked.iter().chain(&plain) {
                if let Meaning::Asked { emails, .. } = &q.meaning {
                    assert!(
                        emails.iter().all(|e| known(e) != unknown),
                        "{share}: {:?}",
                        q.text
                    );
                }
            }
        }
    }

    #[test]
    fn the_generators_reach_every_awkward_case() {
        let strategy = dataset(10..=10, 40..=40);
        let data: Vec<Dataset> = (0..50).map(|s| sample(&strategy, s).unwrap()).collect();
        let users = || data.iter().flat_map(|d| d.users.iter());
        let transactions = || data.iter().flat_map(|d| d.transactions.iter());
        let cases: [(&str, bool); 10] = [
            ("unicode email", users().any(|u| !u.email.is_ascii())),
            ("plus-addressing", users().any(|u| u.email.contains('+'))),
            (
                "mixed-case email",
                users().any(|u| u.email.chars().any(char::is_uppercase)),
            ),
            ("non-latin name", users().any(|u| !u.name.is_ascii())),
            (
                "leap day",
                transactions().any(|t| t.date.ends_with("-02-29")),
            ),
            (
                "huge amount",
                transactions().any(|t| t.amount.split('.').next().unwrap().len() >= 13),
            ),
            ("zero decimals", transactions().any(|t| t.currency == "JPY")),
            (
                "JSON-breaking description",
                transactions().any(|t| t.description.contains('"') && t.description.contains('{')),
            ),
            (
                "unknown owner",
                transactions().any(|t| t.user_id.starts_with("ghost-")),
            ),
            (
                "ties on a date for one user",
                data.iter().any(|d| {
                    let mut seen = BTreeSet::new();
                    d.transactions
                        .iter()
                        .any(|t| !seen.insert((t.user_id.clone(), t.date.clone())))
                }),
            ),
        ];
        for (case, reached) in cases {
            assert!(reached, "no {case} in 50 generated datasets");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn generated_datasets_are_valid(data in dataset(0..=15, 0..=60)) {
            let (users, ledger) = data.stores().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(users.users().len(), data.users.len());
            prop_assert_eq!(ledger.len(), data.transactions.len());
        }

        #[test]
        fn the_planner_reads_every_generated_question_of_todays_forms(
            (data, questions) in dataset(0..=8, 0..=20).prop_flat_map(|d| {
                let q = proptest::collection::vec(question(&d, 0.3), 1..10);
                (Just(d), q)
            })
        ) {
            let oracle = Oracle::new(data);
            for q in questions {
                parse_question(&q.text).map_err(|e| TestCaseError::fail(format!("{:?}: {e}", q.text)))?;
                prop_assert!(oracle.expect(&q.meaning).answer().is_some(), "{:?}", q.text);
            }
        }

        /// A plain-language question parses when it means something the
        /// planner reads, and is refused, naming what it could not use,
        /// when it carries a qualifier the planner does not read.
        #[test]
        fn the_planner_reads_every_plain_question_meant_to_be_read(
            (_data, questions) in dataset(0..=8, 0..=20).prop_flat_map(|d| {
                let q = proptest::collection::vec(plain_question(&d, 0.3), 1..10);
                (Just(d), q)
            })
        ) {
            for q in questions {
                let parsed = parse_question(&q.text);
                match &q.meaning {
                    Meaning::Asked { .. } => prop_assert!(parsed.is_ok(), "{:?}: {:?}", q.text, parsed),
                    Meaning::Unreadable { .. } => prop_assert!(
                        matches!(&parsed, Err(PlanError::NotUnderstood { unused }) if !unused.is_empty()),
                        "{:?}: {:?}", q.text, parsed
                    ),
                }
            }
        }
    }
}
