//! The oracle: what the answer to a question must be, computed straight from
//! the dataset records with no network, no MCP, no orchestrator engine and
//! none of the servers' indexes.
//!
//! It is written independently of the code it checks, so that a bug there
//! cannot hide by being shared: it reads questions with its own rules
//! ([`reading`]), matches addresses its own way, orders transactions by a
//! stable sort of the records taken in reverse, and renders amounts from
//! integer minor units with its own table of currencies ([`rendering`]).
//! What it expects is both the answer's value and the text a person must
//! be shown, and [`Expected::check`] compares both: a formatting bug (£12.50
//! shown as £12) is a wrong answer even when every field is right. The rules
//! are those of `servers/README.md` and the planner's `HELP`.

mod reading;
mod rendering;

use orchestrator::{Answer, Question, TransactionLine};

use self::{
    reading::Asked,
    rendering::{Amount, Day},
};
use payment_server::TransactionRecord;
use user_server::UserRecord;

use crate::dataset::Dataset;

/// Most transactions one answer lists, with or without a count
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
    /// This answer: its value, and the text a person must be shown.
    Answer { answer: Answer, text: String },
    /// No answer: the orchestrator must fail with a typed error. Why.
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
    /// the same value and the same text.
    pub fn check(&self, got: &Answer, shown: &str) -> Result<(), Mismatch> {
        let expected = match self {
            Expected::Answer { answer, text } if answer == got && text == shown => return Ok(()),
            Expected::Answer { text, .. } if text != shown => text.clone(),
            Expected::Answer { answer, .. } => {
                format!("the same text, from the value {answer:?} rather than {got:?}")
            }
            Expected::Refusal(why) => format!("an error: {why}"),
        };
        Err(Mismatch {
            got: shown.to_owned(),
            expected,
        })
    }

    /// The expected answer's value, if an answer is expected.
    pub fn answer(&self) -> Option<&Answer> {
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
            Ok(asked) => self.expect_asked(&asked),
            Err(why) => Expected::Refusal(why),
        }
    }

    /// The expected answer to a question whose meaning is already known
    /// (generated questions carry it, so the planner's reading is checked
    /// too).
    pub fn expect(&self, question: &Question) -> Expected {
        let asked = match question {
            Question::UserId { email } => Asked::UserId {
                email: email.clone(),
            },
            Question::Transactions { email, count } => Asked::Transactions {
                email: email.clone(),
                count: *count,
            },
        };
        self.expect_asked(&asked)
    }

    fn expect_asked(&self, asked: &Asked) -> Expected {
        let (email, count) = match asked {
            Asked::UserId { email } => (email, None),
            Asked::Transactions { email, count } => (email, *count),
        };
        if let Err(why) = reading::plausible_address(email) {
            return Expected::Refusal(why);
        }
        let Some(user) = self.user(email) else {
            return Expected::Answer {
                text: rendering::unknown_user(email),
                answer: Answer::UnknownUser {
                    email: email.clone(),
                },
            };
        };
        if let Asked::UserId { .. } = asked {
            return Expected::Answer {
                text: rendering::user_id(email, &user.id, &user.name),
                answer: Answer::UserId {
                    email: email.clone(),
                    user_id: user.id.clone(),
                    name: Some(user.name.clone()),
                },
            };
        }
        let listed = match count {
            None => LISTED_MAX,
            Some(n @ 1..=LISTED_MAX) => n,
            Some(n) => {
                return Expected::Refusal(format!(
                    "a count of {n} is outside 1 to {LISTED_MAX}: the server refuses it"
                ));
            }
        };
        match self.history(&user.id, listed) {
            Ok((transactions, lines)) => Expected::Answer {
                text: rendering::transactions(email, count, &lines),
                answer: Answer::Transactions {
                    email: email.clone(),
                    user_id: user.id.clone(),
                    count,
                    transactions,
                },
            },
            Err(why) => Expected::Refusal(why),
        }
    }

    /// The user whose address is `email`, by a scan of the directory.
    fn user(&self, email: &str) -> Option<&UserRecord> {
        self.dataset
            .users
            .iter()
            .find(|u| reading::same_address(&u.email, email))
    }

    /// The newest `listed` transactions of `user_id` (on the same day, the
    /// one listed later first), as values and as lines of text.
    fn history(
        &self,
        user_id: &str,
        listed: u32,
    ) -> Result<(Vec<TransactionLine>, Vec<String>), String> {
        let mut mine: Vec<(Day, &TransactionRecord)> = Vec::new();
        // Taken in reverse, so that the stable sort leaves the later-listed
        // first among equal days.
        for record in self.dataset.transactions.iter().rev() {
            if record.user_id == user_id {
                mine.push((Day::parse(&record.date)?, record));
            }
        }
        mine.sort_by(|(a, _), (b, _)| b.cmp(a));
        mine.truncate(listed as usize);
        let mut values = Vec::with_capacity(mine.len());
        let mut lines = Vec::with_capacity(mine.len());
        for (day, record) in mine {
            let amount = Amount::parse(&record.amount, &record.currency)?;
            let date = day
                .date()
                .ok_or_else(|| format!("date {:?} is not a calendar day", record.date))?;
            lines.push(rendering::transaction(&record.description, &amount, &day));
            values.push(TransactionLine {
                description: record.description.clone(),
                amount: amount.decimal(),
                currency: amount.code().to_owned(),
                date,
            });
        }
        Ok((values, lines))
    }
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

    #[test]
    fn the_seed_question_renders_the_demo_answer() {
        let expected =
            Oracle::demo().answer("What are the recent transactions for bob@example.com?");
        assert_eq!(expected.text(), Some(SEED_ANSWER));
        assert!(matches!(
            Oracle::demo()
                .answer("transactions for nobody@example.com")
                .answer(),
            Some(Answer::UnknownUser { .. })
        ));
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
        let expected = Oracle::new(data).answer("last 2 transactions for BOB@example.com");
        let Some(Answer::Transactions { transactions, .. }) = expected.answer() else {
            panic!("{expected:?}")
        };
        let names: Vec<&str> = transactions
            .iter()
            .map(|t| t.description.as_str())
            .collect();
        assert_eq!(names, ["Tea", "Coffee"]);
    }

    /// The pence test: an orchestrator whose every field is right but whose
    /// rendering drops the pence (as a `format_money` that kept only the
    /// whole units would) gives a wrong answer. Were the oracle to render
    /// with the code it checks, that code's bug would be its own and this
    /// would pass unseen.
    #[test]
    fn a_rendering_that_drops_the_pence_is_a_wrong_answer() {
        let mut data = Dataset::demo();
        data.transactions[1].amount = "12.50".into(); // Bob's Coffee
        let expected = Oracle::new(data).answer("last 1 transaction for bob@example.com");
        let got = expected.answer().expect("an answer").clone();
        let right = "The most recent transaction for bob@example.com:\n\
                     - Coffee: £12.50 on 16 January 2023";
        assert_eq!(got.render(), right, "the orchestrator's own rendering");
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
        let Some(Answer::Transactions {
            email,
            count,
            transactions,
            ..
        }) = expected.answer().cloned()
        else {
            panic!("{expected:?}")
        };
        let other_user = Answer::Transactions {
            email,
            user_id: "someone-else".into(),
            count,
            transactions,
        };
        let shown = other_user.render();
        let mismatch = expected.check(&other_user, &shown).unwrap_err();
        assert!(mismatch.expected.contains("rather than"), "{mismatch:?}");
        // And an answer where none is expected.
        let refusal = Oracle::demo().answer("last 0 transactions for bob@example.com");
        assert!(refusal.check(&other_user, &shown).is_err());
    }

    #[test]
    fn the_listing_limit_is_the_servers() {
        assert_eq!(LISTED_MAX, payment_server::COUNT_MAX);
        let over = Oracle::demo().expect(&Question::Transactions {
            email: "bob@example.com".into(),
            count: Some(LISTED_MAX + 1),
        });
        assert!(matches!(over, Expected::Refusal(_)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The oracle reads every generated question as the generator
        /// meant it, and has an answer for each.
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
