//! Transactions and the per-user history query. Pure: no rmcp, no I/O, no clock.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::money::{self, Money};

/// Largest `count` a query may ask for; also the most returned without one.
pub const COUNT_MAX: u32 = 1000;
/// Longest transaction or user id accepted, in bytes.
pub(crate) const ID_BYTES_MAX: usize = 128;
/// Longest description accepted, in bytes.
pub(crate) const DESCRIPTION_BYTES_MAX: usize = 1000;

/// One payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub id: String,
    pub user_id: String,
    pub amount: Money,
    pub description: String,
    pub date: NaiveDate,
}

/// A transaction as it appears in a dataset file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TransactionRecord {
    pub id: String,
    pub user_id: String,
    /// A decimal string in major units, e.g. "12.50".
    pub amount: String,
    /// ISO 4217 code, e.g. "GBP".
    pub currency: String,
    pub description: String,
    /// "YYYY-MM-DD".
    pub date: String,
}

/// A dataset record that breaks a rule; the whole dataset is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    #[error("transactions[{index}] (id {id:?}): {problem}")]
    BadRecord {
        index: usize,
        id: String,
        problem: String,
    },
    #[error("transactions[{index}] (id {id:?}): id already used by transactions[{first}]")]
    DuplicateId {
        index: usize,
        id: String,
        first: usize,
    },
}

/// A query argument the caller must fix. The message is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("userId must be 1 to {ID_BYTES_MAX} bytes")]
    BadUserId,
    #[error("count must be an integer between 1 and {COUNT_MAX}, got {got}")]
    BadCount { got: String },
}

/// One user's history, newest first, and how many they have in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History<'a> {
    pub transactions: Vec<&'a Transaction>,
    pub total: usize,
}

/// An immutable, validated ledger indexed by user.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// Per user, newest first: date descending, then later-listed first.
    by_user: BTreeMap<String, Vec<Transaction>>,
    len: usize,
}

impl Ledger {
    /// The original workshop demo's six transactions, in GBP.
    pub fn demo() -> Self {
        const BOB: &str = "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f";
        const ALICE: &str = "a2b3c4d5-6e7f-8a9b-0c1d-2e3f4a5b6c7d";
        const CHARLIE: &str = "c3d4e5f6-7a8b-9c0d-1e2f-3a4b5c6d7e8f";
        let record =
            |id: &str, user: &str, amount: &str, description: &str, date: &str| TransactionRecord {
                id: id.into(),
                user_id: user.into(),
                amount: amount.into(),
                currency: "GBP".into(),
                description: description.into(),
                date: date.into(),
            };
        Self::from_records(vec![
            record("1", BOB, "100", "Groceries", "2023-01-15"),
            record("2", BOB, "50", "Coffee", "2023-01-16"),
            record("3", ALICE, "200", "Concert Tickets", "2023-01-10"),
            record("4", BOB, "75", "Dinner", "2023-01-14"),
            record("5", CHARLIE, "30", "Book", "2023-01-18"),
            record("6", BOB, "120", "Online Course", "2023-01-12"),
        ])
        .expect("the demo dataset is valid")
    }

    /// Validates every record; one bad record refuses them all.
    pub fn from_records(records: Vec<TransactionRecord>) -> Result<Self, DatasetError> {
        let mut ids: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_user: BTreeMap<String, Vec<(usize, Transaction)>> = BTreeMap::new();
        let len = records.len();
        for (index, record) in records.into_iter().enumerate() {
            let bad = |problem: String| DatasetError::BadRecord {
                index,
                id: record.id.clone(),
                problem,
            };
            check_id("id", &record.id).map_err(bad)?;
            check_id("userId", &record.user_id).map_err(bad)?;
            let currency = money::currency(&record.currency).map_err(|e| bad(e.to_string()))?;
            let amount = Money::parse(&record.amount, currency).map_err(|e| bad(e.to_string()))?;
            let date = NaiveDate::parse_from_str(&record.date, "%Y-%m-%d")
                .ok()
                .filter(|_| record.date.len() == 10)
                .ok_or_else(|| {
                    bad(format!(
                        "date {:?} is not a calendar date written YYYY-MM-DD",
                        record.date
                    ))
                })?;
            if record.description.len() > DESCRIPTION_BYTES_MAX {
                return Err(bad(format!(
                    "description is longer than {DESCRIPTION_BYTES_MAX} bytes"
                )));
            }
            if let Some(&first) = ids.get(&record.id) {
                return Err(DatasetError::DuplicateId {
                    index,
                    id: record.id,
                    first,
                });
            }
            ids.insert(record.id.clone(), index);
            by_user.entry(record.user_id.clone()).or_default().push((
                index,
                Transaction {
                    id: record.id,
                    user_id: record.user_id,
                    amount,
                    description: record.description,
                    date,
                },
            ));
        }
        let by_user = by_user
            .into_iter()
            .map(|(user, mut list)| {
                list.sort_by(|(ia, a), (ib, b)| b.date.cmp(&a.date).then(ib.cmp(ia)));
                (user, list.into_iter().map(|(_, t)| t).collect())
            })
            .collect();
        Ok(Self { by_user, len })
    }

    /// The user's transactions newest first, at most `count` (default and
    /// ceiling [`COUNT_MAX`]). A user with no transactions, or one this
    /// ledger has never seen, gets an empty history: see the crate docs.
    pub fn history(&self, user_id: &str, count: Option<u32>) -> Result<History<'_>, QueryError> {
        if user_id.is_empty() || user_id.len() > ID_BYTES_MAX {
            return Err(QueryError::BadUserId);
        }
        let count = match count {
            None => COUNT_MAX,
            Some(n @ 1..=COUNT_MAX) => n,
            Some(n) => return Err(QueryError::BadCount { got: n.to_string() }),
        };
        let all = self.by_user.get(user_id).map_or(&[][..], Vec::as_slice);
        Ok(History {
            transactions: all.iter().take(count as usize).collect(),
            total: all.len(),
        })
    }

    /// Number of transactions across all users.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the ledger holds no transactions.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn check_id(field: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > ID_BYTES_MAX {
        return Err(format!("{field} must be 1 to {ID_BYTES_MAX} bytes"));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{field} must not contain whitespace or control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: &str = "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f";

    fn descriptions<'a>(history: &History<'a>) -> Vec<&'a str> {
        history
            .transactions
            .iter()
            .map(|t| t.description.as_str())
            .collect()
    }

    #[test]
    fn history_is_newest_first_and_cut_to_count() {
        let ledger = Ledger::demo();
        let all = ledger.history(BOB, None).unwrap();
        assert_eq!(
            descriptions(&all),
            ["Coffee", "Groceries", "Dinner", "Online Course"]
        );
        assert_eq!(all.total, 4);
        let two = ledger.history(BOB, Some(2)).unwrap();
        assert_eq!(descriptions(&two), ["Coffee", "Groceries"]);
        assert_eq!(two.total, 4);
        assert_eq!(ledger.len(), 6);
    }

    #[test]
    fn unknown_user_has_an_empty_history() {
        let ledger = Ledger::demo();
        let history = ledger.history("nobody", Some(3)).unwrap();
        assert!(history.transactions.is_empty());
        assert_eq!(history.total, 0);
    }

    #[test]
    fn out_of_range_counts_and_bad_ids_are_refused() {
        let ledger = Ledger::demo();
        assert_eq!(
            ledger.history(BOB, Some(0)).unwrap_err().to_string(),
            "count must be an integer between 1 and 1000, got 0"
        );
        assert!(ledger.history(BOB, Some(COUNT_MAX + 1)).is_err());
        assert!(ledger.history(BOB, Some(COUNT_MAX)).is_ok());
        assert_eq!(ledger.history("", None), Err(QueryError::BadUserId));
        assert_eq!(
            ledger.history(&"x".repeat(129), None),
            Err(QueryError::BadUserId)
        );
    }

    #[test]
    fn same_day_ties_put_the_later_listed_first() {
        let record = |id: &str, date: &str| TransactionRecord {
            id: id.into(),
            user_id: "u".into(),
            amount: "1".into(),
            currency: "EUR".into(),
            description: id.into(),
            date: date.into(),
        };
        let ledger = Ledger::from_records(vec![
            record("a", "2024-02-29"),
            record("b", "2024-02-29"),
            record("c", "2023-12-31"),
            record("d", "2024-03-01"),
        ])
        .unwrap();
        let history = ledger.history("u", None).unwrap();
        assert_eq!(descriptions(&history), ["d", "b", "a", "c"]);
    }

    #[test]
    fn a_bad_record_refuses_the_whole_dataset_and_is_named() {
        let record = |id: &str, amount: &str, currency: &str, date: &str| TransactionRecord {
            id: id.into(),
            user_id: "u".into(),
            amount: amount.into(),
            currency: currency.into(),
            description: "d".into(),
            date: date.into(),
        };
        let ok = record("1", "1", "GBP", "2023-01-01");
        let cases = [
            (
                record("2", "1.001", "GBP", "2023-01-01"),
                "transactions[1] (id \"2\"): amount \"1.001\" has more than 2 decimal places, the most GBP allows",
            ),
            (
                record("2", "1", "GBX", "2023-01-01"),
                "transactions[1] (id \"2\"): currency \"GBX\" is not an ISO 4217 code",
            ),
            (
                record("2", "1", "GBP", "2023-02-29"),
                "transactions[1] (id \"2\"): date \"2023-02-29\" is not a calendar date written YYYY-MM-DD",
            ),
            (
                record("2", "1", "GBP", "2023-1-1"),
                "transactions[1] (id \"2\"): date \"2023-1-1\" is not a calendar date written YYYY-MM-DD",
            ),
            (
                record("1", "1", "GBP", "2023-01-01"),
                "transactions[1] (id \"1\"): id already used by transactions[0]",
            ),
        ];
        for (bad, message) in cases {
            let error = Ledger::from_records(vec![ok.clone(), bad]).unwrap_err();
            assert_eq!(error.to_string(), message);
        }
    }
}
