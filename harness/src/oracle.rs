//! The oracle: what the answer to a question must be, computed straight from
//! the dataset records with no network, no MCP, no orchestrator engine and
//! none of the servers' indexes. It is written independently of the code it
//! checks: a linear scan and a sort, the rules in `servers/README.md`.

use orchestrator::{Answer, Question, TransactionLine};
use payment_server::{COUNT_MAX, money};

use crate::dataset::Dataset;

/// Expected answers for one dataset.
#[derive(Debug, Clone)]
pub struct Oracle {
    dataset: Dataset,
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

    /// The expected answer to a question as a user would type it, or why no
    /// answer is expected (the orchestrator must then give a typed error).
    pub fn answer(&self, question: &str) -> Result<Answer, String> {
        let question = orchestrator::parse_question(question).map_err(|e| e.to_string())?;
        self.expect(&question)
    }

    /// The expected answer to a question whose meaning is already known
    /// (generated questions carry it, so the planner's parsing is checked too).
    pub fn expect(&self, question: &Question) -> Result<Answer, String> {
        let (email, count) = match question {
            Question::UserId { email } => (email, None),
            Question::Transactions { email, count } => (email, *count),
        };
        // Whether an address is well formed is the one rule borrowed from
        // the server: RFC 5322/6531 parsing is not worth writing twice.
        let key = user_server::domain::email_key(email)?;
        let Some(user) = self
            .dataset
            .users
            .iter()
            .find(|u| u.email.trim().to_lowercase() == key)
        else {
            return Ok(Answer::UnknownUser {
                email: email.clone(),
            });
        };
        if let Question::UserId { .. } = question {
            return Ok(Answer::UserId {
                email: email.clone(),
                user_id: user.id.clone(),
                name: Some(user.name.clone()),
            });
        }
        let cut = match count {
            None => COUNT_MAX,
            Some(n @ 1..=COUNT_MAX) => n,
            Some(n) => {
                return Err(format!(
                    "count must be an integer between 1 and {COUNT_MAX}, got {n}"
                ));
            }
        };
        // Newest first; on the same date, the one listed later first.
        let mut mine: Vec<(usize, &payment_server::TransactionRecord)> = self
            .dataset
            .transactions
            .iter()
            .enumerate()
            .filter(|(_, t)| t.user_id == user.id)
            .collect();
        mine.sort_by(|(ia, a), (ib, b)| b.date.cmp(&a.date).then(ib.cmp(ia)));
        let transactions = mine
            .into_iter()
            .take(cut as usize)
            .map(|(_, t)| {
                let currency = money::currency(&t.currency).map_err(|e| e.to_string())?;
                let amount = money::Money::parse(&t.amount, currency).map_err(|e| e.to_string())?;
                Ok(TransactionLine {
                    description: t.description.clone(),
                    amount: amount.decimal(),
                    currency: t.currency.clone(),
                    date: t
                        .date
                        .parse()
                        .map_err(|e| format!("date {:?}: {e}", t.date))?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Answer::Transactions {
            email: email.clone(),
            user_id: user.id.clone(),
            count,
            transactions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_question_renders_the_demo_answer() {
        let answer = Oracle::demo()
            .answer("What are the recent transactions for bob@example.com?")
            .unwrap();
        assert_eq!(
            answer.render(),
            "Recent transactions for bob@example.com:\n\
             - Coffee: £50 on 16 January 2023\n\
             - Groceries: £100 on 15 January 2023\n\
             - Dinner: £75 on 14 January 2023\n\
             - Online Course: £120 on 12 January 2023"
        );
        assert!(matches!(
            Oracle::demo().answer("transactions for nobody@example.com"),
            Ok(Answer::UnknownUser { .. })
        ));
        assert!(Oracle::demo().answer("transactions for a@@b").is_err());
    }

    #[test]
    fn ties_on_a_date_put_the_later_listed_first_and_count_cuts() {
        let mut data = Dataset::demo();
        let mut tie = data.transactions[1].clone(); // Bob's Coffee, 2023-01-16
        tie.id = "7".into();
        tie.description = "Tea".into();
        data.transactions.push(tie);
        let answer = Oracle::new(data)
            .answer("last 2 transactions for BOB@example.com")
            .unwrap();
        let Answer::Transactions { transactions, .. } = answer else {
            panic!("{answer:?}")
        };
        let names: Vec<&str> = transactions
            .iter()
            .map(|t| t.description.as_str())
            .collect();
        assert_eq!(names, ["Tea", "Coffee"]);
    }
}
