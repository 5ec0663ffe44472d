//! Users and the email lookup. Pure: no rmcp, no I/O, no clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest user id accepted, in bytes.
pub(crate) const USER_ID_BYTES_MAX: usize = 128;
/// Longest display name accepted, in bytes.
pub(crate) const NAME_BYTES_MAX: usize = 256;

/// One user of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    /// As written in the dataset; matching uses [`email_key`].
    pub email: String,
    pub name: String,
}

/// A user record as it appears in a dataset file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub name: String,
}

/// A dataset record that breaks a rule; the whole dataset is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    #[error("users[{index}] (id {id:?}): {problem}")]
    BadRecord {
        index: usize,
        id: String,
        problem: String,
    },
    #[error("users[{index}] (id {id:?}): id already used by users[{first}]")]
    DuplicateId {
        index: usize,
        id: String,
        first: usize,
    },
    #[error(
        "users[{index}] (id {id:?}): email {email:?} already used by users[{first}] (emails match ignoring case)"
    )]
    DuplicateEmail {
        index: usize,
        id: String,
        email: String,
        first: usize,
    },
}

/// Why a lookup found no user. The message is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The input is not an email address; the caller must fix it.
    #[error("Invalid email address {email:?}: {reason}")]
    Malformed { email: String, reason: String },
    /// A well-formed address that belongs to nobody.
    #[error("User with email {email} not found")]
    NotFound { email: String },
}

/// An immutable, validated set of users indexed by email.
#[derive(Debug, Clone)]
pub struct UserStore {
    users: Vec<User>,
    by_email: BTreeMap<String, usize>,
}

impl UserStore {
    /// The original workshop demo's three users.
    pub fn demo() -> Self {
        let record = |id: &str, email: &str, name: &str| UserRecord {
            id: id.into(),
            email: email.into(),
            name: name.into(),
        };
        Self::from_records(vec![
            record(
                "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f",
                "bob@example.com",
                "Bob",
            ),
            record(
                "a2b3c4d5-6e7f-8a9b-0c1d-2e3f4a5b6c7d",
                "alice@example.com",
                "Alice",
            ),
            record(
                "c3d4e5f6-7a8b-9c0d-1e2f-3a4b5c6d7e8f",
                "charlie@example.com",
                "Charlie",
            ),
        ])
        .expect("the demo dataset is valid")
    }

    /// Validates every record; one bad record refuses them all.
    pub fn from_records(records: Vec<UserRecord>) -> Result<Self, DatasetError> {
        let mut users = Vec::with_capacity(records.len());
        let mut by_email = BTreeMap::new();
        let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
        for (index, record) in records.into_iter().enumerate() {
            let bad = |problem: String| DatasetError::BadRecord {
                index,
                id: record.id.clone(),
                problem,
            };
            check_id(&record.id).map_err(bad)?;
            if record.name.trim().is_empty() || record.name.len() > NAME_BYTES_MAX {
                return Err(bad(format!(
                    "name must be 1 to {NAME_BYTES_MAX} bytes and not blank"
                )));
            }
            let key = email_key(&record.email).map_err(|reason| {
                bad(format!("email {:?} is not valid: {reason}", record.email))
            })?;
            if let Some(&first) = by_id.get(&record.id) {
                return Err(DatasetError::DuplicateId {
                    index,
                    id: record.id,
                    first,
                });
            }
            if let Some(&first) = by_email.get(&key) {
                return Err(DatasetError::DuplicateEmail {
                    index,
                    id: record.id,
                    email: record.email,
                    first,
                });
            }
            by_id.insert(record.id.clone(), index);
            by_email.insert(key, index);
            users.push(User {
                id: record.id,
                email: record.email,
                name: record.name,
            });
        }
        Ok(Self { users, by_email })
    }

    /// Finds the user whose email matches `email`, ignoring case and
    /// surrounding whitespace.
    pub fn find_by_email(&self, email: &str) -> Result<&User, LookupError> {
        let trimmed = email.trim();
        let key = email_key(trimmed).map_err(|reason| LookupError::Malformed {
            email: trimmed.to_owned(),
            reason,
        })?;
        self.by_email
            .get(&key)
            .map(|&index| &self.users[index])
            .ok_or_else(|| LookupError::NotFound {
                email: trimmed.to_owned(),
            })
    }

    /// All users, in dataset order.
    pub fn users(&self) -> &[User] {
        &self.users
    }
}

/// The form two emails are compared in: trimmed, validated, lowercased.
pub fn email_key(email: &str) -> Result<String, String> {
    let email = email.trim();
    let options = email_address::Options::default().without_display_text();
    email_address::EmailAddress::parse_with_options(email, options)
        .map(|_| email.to_lowercase())
        .map_err(|error| error.to_string().trim_end_matches('.').to_lowercase())
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > USER_ID_BYTES_MAX {
        return Err(format!("id must be 1 to {USER_ID_BYTES_MAX} bytes"));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("id must not contain whitespace or control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: &str = "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f";

    #[test]
    fn finds_users_ignoring_case_and_surrounding_whitespace() {
        let store = UserStore::demo();
        for email in ["bob@example.com", "  BOB@Example.COM\t", "Bob@example.com"] {
            assert_eq!(store.find_by_email(email).unwrap().id, BOB, "{email:?}");
        }
        assert_eq!(store.users().len(), 3);
    }

    #[test]
    fn unknown_and_malformed_emails_are_told_apart() {
        let store = UserStore::demo();
        assert_eq!(
            store
                .find_by_email(" dave@example.com ")
                .unwrap_err()
                .to_string(),
            "User with email dave@example.com not found"
        );
        let error = store.find_by_email("bob.example.com").unwrap_err();
        assert!(matches!(error, LookupError::Malformed { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "Invalid email address \"bob.example.com\": missing separator character '@'"
        );
        assert!(matches!(
            store.find_by_email("").unwrap_err(),
            LookupError::Malformed { .. }
        ));
    }

    #[test]
    fn unicode_local_parts_match_case_insensitively() {
        let store = UserStore::from_records(vec![UserRecord {
            id: "u1".into(),
            email: "Ünïcode@Example.com".into(),
            name: "Ü".into(),
        }])
        .unwrap();
        assert_eq!(store.find_by_email("ünïcode@example.com").unwrap().id, "u1");
    }

    #[test]
    fn a_bad_record_refuses_the_whole_dataset_and_is_named() {
        let record = |id: &str, email: &str| UserRecord {
            id: id.into(),
            email: email.into(),
            name: "N".into(),
        };
        let error = UserStore::from_records(vec![record("a", "a@x.com"), record("b", "A@X.com")])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "users[1] (id \"b\"): email \"A@X.com\" already used by users[0] (emails match ignoring case)"
        );
        let error = UserStore::from_records(vec![record("a", "a@x.com"), record("a", "b@x.com")])
            .unwrap_err();
        assert!(matches!(
            error,
            DatasetError::DuplicateId {
                index: 1,
                first: 0,
                ..
            }
        ));
        let error = UserStore::from_records(vec![record("a b", "a@x.com")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("users[0] (id \"a b\"): id must not")
        );
        let error = UserStore::from_records(vec![record("a", "nope")]).unwrap_err();
        assert!(
            error.to_string().contains("email \"nope\" is not valid"),
            "{error}"
        );
    }
}
