//! The oracle: what the answer to a question must be, computed straight from
//! the dataset with no network, no MCP and no orchestrator engine.

use orchestrator::{
    Answer,
    answer::TransactionLine,
    planner::{self, Question},
};
use payment_server::Ledger;
use user_server::{LookupError, UserStore};

/// The dataset both servers were loaded with.
#[derive(Debug, Clone)]
pub struct Oracle {
    pub users: UserStore,
    pub ledger: Ledger,
}

impl Oracle {
    /// The original demo's data.
    pub fn demo() -> Self {
        Self {
            users: UserStore::demo(),
            ledger: Ledger::demo(),
        }
    }

    /// The expected answer, or why no answer is expected (the reason the
    /// orchestrator must give as a typed error).
    pub fn answer(&self, question: &str) -> Result<Answer, String> {
        let question = planner::parse_question(question).map_err(|e| e.to_string())?;
        let (email, count) = match &question {
            Question::UserId { email } => (email, None),
            Question::Transactions { email, count } => (email, *count),
        };
        let user = match self.users.find_by_email(email) {
            Ok(user) => user,
            Err(LookupError::NotFound { .. }) => {
                return Ok(Answer::UnknownUser {
                    email: email.clone(),
                });
            }
            Err(error @ LookupError::Malformed { .. }) => return Err(error.to_string()),
        };
        if let Question::UserId { .. } = question {
            return Ok(Answer::UserId {
                email: email.clone(),
                user_id: user.id.clone(),
                name: Some(user.name.clone()),
            });
        }
        let history = self
            .ledger
            .history(&user.id, count)
            .map_err(|e| e.to_string())?;
        Ok(Answer::Transactions {
            email: email.clone(),
            user_id: user.id.clone(),
            count,
            transactions: history
                .transactions
                .iter()
                .map(|t| TransactionLine {
                    description: t.description.clone(),
                    amount: t.amount.decimal(),
                    currency: t.amount.currency.code().to_owned(),
                    date: t.date,
                })
                .collect(),
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
}
