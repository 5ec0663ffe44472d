//! The data both servers are loaded with, as records in the servers'
//! dataset-file format (`servers/example-data.json`).

use payment_server::{Ledger, TransactionRecord};
use serde::{Deserialize, Serialize};
use user_server::{UserRecord, UserStore};

/// Users and their transactions. Transactions may name users that do not
/// exist (the payment server does not know the user directory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    #[serde(default)]
    pub users: Vec<UserRecord>,
    #[serde(default)]
    pub transactions: Vec<TransactionRecord>,
}

/// A dataset one of the servers refuses; names the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    #[error(transparent)]
    Users(#[from] user_server::DatasetError),
    #[error(transparent)]
    Transactions(#[from] payment_server::DatasetError),
}

impl Dataset {
    /// The original demo's three users and six transactions: the data in
    /// `servers/example-data.json`.
    pub fn demo() -> Self {
        serde_json::from_str(include_str!("../../servers/example-data.json"))
            .expect("servers/example-data.json is a valid dataset")
    }

    /// Validates the records the way the servers do, and builds what each
    /// server serves.
    pub fn stores(&self) -> Result<(UserStore, Ledger), DatasetError> {
        Ok((
            UserStore::from_records(self.users.clone())?,
            Ledger::from_records(self.transactions.clone())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_valid_and_small() {
        let demo = Dataset::demo();
        assert_eq!((demo.users.len(), demo.transactions.len()), (3, 6));
        let (users, ledger) = demo.stores().unwrap();
        assert_eq!(users.users().len(), 3);
        assert_eq!(ledger.len(), 6);
    }

    #[test]
    fn a_bad_record_is_named() {
        let mut data = Dataset::demo();
        data.users[1].email = "not an email".into();
        let error = data.stores().unwrap_err().to_string();
        assert!(
            error.starts_with("users[1] (id \"a2b3c4d5-6e7f-8a9b-0c1d-2e3f4a5b6c7d\"): email"),
            "{error}"
        );
    }
}
