//! Truthfulness: the oracle for answers the LLM planner gives.
//!
//! A model may answer a narrower question than the one asked (a user id
//! where a list was asked for, the newest n where all were), and the
//! answer restates what it answers. So an LLM-planned answer is right when
//! it is true about the dataset for what it says, and every address of the
//! question is answered:
//!
//! - `userId {email, userId, name}`: that address's user has that id (and
//!   that name, when one is given);
//! - `unknownUser {email}`: no user has that address;
//! - `transactions {email, userId, selection, transactions}`: that
//!   address's user has that id, and the list is exactly the dataset's
//!   transactions of that user, newest first, all of them for the pick
//!   `all`, the newest n for `{newest: n}` (the oldest n, oldest first, for
//!   `{oldest: n}`): descriptions, amounts, currencies and dates;
//! - `each {answers}`: every part true, each about an address the question
//!   names, and every address it names answered.
//!
//! Anything else is wrong: a `toolResult` (with only the reference servers
//! every result is one the planner reads, so showing one raw means it
//! could not read it) and the forms the LLM planner never gives (totals,
//! counts, filters). Addresses match as the user directory matches them,
//! without regard to case. Like the rest of the oracle it reads only the
//! dataset and meets the answer as JSON.

use serde_json::Value;
use user_server::UserRecord;

use super::{Kept, Oracle, line, meaning::Take, reading, rendering::Amount};

impl Oracle {
    /// Whether `answer` (as JSON) is true about the dataset for what it
    /// says, and answers every address `question` names; else why not.
    pub fn truthful(&self, question: &str, answer: &Value) -> Result<(), String> {
        let addresses = reading::addresses(question);
        let parts: Vec<&Value> = match answer.get("kind").and_then(Value::as_str) {
            Some("each") => answer
                .get("answers")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            _ => vec![answer],
        };
        if parts.is_empty() {
            return Err("an answer with no parts".into());
        }
        let mut answered: Vec<String> = Vec::new();
        for part in parts {
            let email = self.true_part(part)?;
            if !addresses.iter().any(|a| reading::same_address(a, &email)) {
                return Err(format!(
                    "it answers about {email:?}, which the question does not name"
                ));
            }
            answered.push(email);
        }
        match addresses
            .iter()
            .find(|a| !answered.iter().any(|e| reading::same_address(a, e)))
        {
            Some(missing) => Err(format!("it leaves {missing:?} unanswered")),
            None => Ok(()),
        }
    }

    /// The address `part` is about, if what it says about it is true.
    fn true_part(&self, part: &Value) -> Result<String, String> {
        let kind = part.get("kind").and_then(Value::as_str);
        if kind == Some("toolResult") {
            return Err(format!(
                "a tool's raw result: with the reference servers every result is one the planner reads ({part})"
            ));
        }
        let email = part
            .get("email")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a part about no address: {part}"))?;
        match kind {
            Some("unknownUser") => self.no_one_has(email),
            Some("userId") => self.true_user_id(email, part),
            Some("transactions") => self.true_listing(email, part),
            other => Err(format!("the LLM planner never answers with {other:?}")),
        }
        .map(|()| email.to_owned())
    }

    fn no_one_has(&self, email: &str) -> Result<(), String> {
        match self.user(email) {
            None => Ok(()),
            Some(user) => Err(format!(
                "it says nobody has {email:?}; the directory gives it to user {:?}",
                user.id
            )),
        }
    }

    fn true_user_id(&self, email: &str, part: &Value) -> Result<(), String> {
        let user = self.owner(email, part)?;
        match part.get("name") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(name)) if *name == user.name => Ok(()),
            Some(other) => Err(format!(
                "it names {email:?}'s user {other}; the directory says {:?}",
                user.name
            )),
        }
    }

    /// The user whose address is `email`, if `part` gives their id.
    fn owner(&self, email: &str, part: &Value) -> Result<&UserRecord, String> {
        let user = self
            .user(email)
            .ok_or_else(|| format!("nobody has {email:?}, yet the answer gives it a user id"))?;
        let said = part.get("userId").and_then(Value::as_str);
        if said != Some(user.id.as_str()) {
            return Err(format!(
                "it gives {email:?} the user id {said:?}; the directory has {:?}",
                user.id
            ));
        }
        Ok(user)
    }

    fn true_listing(&self, email: &str, part: &Value) -> Result<(), String> {
        let user = self.owner(email, part)?;
        let take = pick(part.get("selection").unwrap_or(&Value::Null))?;
        let history = self.history(&user.id)?;
        let mut kept: Vec<Kept<'_>> = Vec::with_capacity(history.len());
        for (day, record) in history {
            let amount = Amount::parse(&record.amount, &record.currency)?;
            kept.push((day, record, amount));
        }
        match take {
            Take::All => {}
            Take::Newest(n) => kept.truncate(n as usize),
            Take::Oldest(n) => {
                kept.reverse();
                kept.truncate(n as usize);
            }
        }
        let expected: Vec<Value> = kept.iter().map(line).collect();
        let got = part
            .get("transactions")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("a listing with no transactions array: {part}"))?;
        same_lines(email, got, &expected)
    }
}

/// Which transactions a selection says it shows; a filter is never set by
/// the LLM planner.
fn pick(selection: &Value) -> Result<Take, String> {
    for filter in ["dates", "above", "below"] {
        if !selection.get(filter).is_none_or(Value::is_null) {
            return Err(format!(
                "a listing with a {filter} filter, which the LLM planner never sets: {selection}"
            ));
        }
    }
    let count = |key: &str, pick: &Value| {
        pick.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let pick = selection.get("pick").unwrap_or(&Value::Null);
    if pick == "all" {
        return Ok(Take::All);
    }
    if let Some(n) = count("newest", pick) {
        return Ok(Take::Newest(n));
    }
    match count("oldest", pick) {
        Some(n) => Ok(Take::Oldest(n)),
        None => Err(format!("a selection whose pick is unreadable: {selection}")),
    }
}

/// Whether a listing shows exactly the transactions it must.
fn same_lines(email: &str, got: &[Value], expected: &[Value]) -> Result<(), String> {
    if let Some((i, (g, e))) = got
        .iter()
        .zip(expected)
        .enumerate()
        .find(|(_, (g, e))| g != e)
    {
        return Err(format!(
            "transaction {i} listed for {email:?} is {g}; the dataset's is {e}"
        ));
    }
    if got.len() != expected.len() {
        return Err(format!(
            "{} transactions listed for {email:?}; the dataset has {} for what the answer says it shows",
            got.len(),
            expected.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The check has teeth: each test starts from a true answer (the
    //! oracle's own, which is what the planner must give when it answers
    //! the question asked) and breaks it in one way.

    use serde_json::json;

    use super::*;

    const BOB: &str = "What are the recent transactions for bob@example.com?";
    const BOTH: &str = "transactions of bob@example.com and ALICE@example.com";

    fn right(question: &str) -> Value {
        Oracle::demo()
            .answer(question)
            .answer()
            .expect("an answer")
            .clone()
    }

    fn truthful(question: &str, answer: &Value) -> Result<(), String> {
        Oracle::demo().truthful(question, answer)
    }

    #[test]
    fn true_answers_pass_narrower_ones_included() {
        let all = right(BOB);
        assert_eq!(truthful(BOB, &all), Ok(()));
        // The newest 2 for a question that asked for all of them: narrower,
        // but it says so, and it is true.
        let newest = right("last 2 transactions for bob@example.com");
        assert_eq!(truthful(BOB, &newest), Ok(()));
        let id = right("What is the user id of BOB@example.com?");
        assert_eq!(truthful(BOB, &id), Ok(()));
        let nobody = json!({"kind": "unknownUser", "email": "nobody@example.com"});
        assert_eq!(
            truthful("transactions for nobody@example.com", &nobody),
            Ok(())
        );
        let alice = right("transactions of alice@example.com");
        let each = json!({"kind": "each", "answers": [id, alice]});
        assert_eq!(truthful(BOTH, &each), Ok(()));
    }

    #[test]
    fn another_users_transactions_under_an_address_are_wrong() {
        let mut answer = right(BOB);
        let alice = right("transactions of alice@example.com");
        answer["transactions"] = alice["transactions"].clone();
        let why = truthful(BOB, &answer).unwrap_err();
        assert!(why.contains("transaction 0 listed"), "{why}");
        // Alice's id and list under Bob's address: the id gives it away.
        let mut answer = alice.clone();
        answer["email"] = json!("bob@example.com");
        let why = truthful(BOB, &answer).unwrap_err();
        assert!(why.contains("the user id"), "{why}");
    }

    #[test]
    fn one_changed_amount_or_one_missing_transaction_is_wrong() {
        let mut changed = right(BOB);
        changed["transactions"][2]["amount"] = json!("75.01");
        let why = truthful(BOB, &changed).unwrap_err();
        assert!(why.contains("transaction 2 listed"), "{why}");
        let mut short = right(BOB);
        short["transactions"].as_array_mut().unwrap().pop();
        let why = truthful(BOB, &short).unwrap_err();
        assert!(why.contains("3 transactions listed"), "{why}");
        let mut mislabelled = right("last 2 transactions for bob@example.com");
        mislabelled["selection"]["pick"] = json!("all");
        assert!(truthful(BOB, &mislabelled).is_err());
        let mut currency = right(BOB);
        currency["transactions"][0]["currency"] = json!("USD");
        assert!(truthful(BOB, &currency).is_err());
    }

    #[test]
    fn a_missing_or_foreign_address_is_wrong() {
        let bob = right(BOB);
        let why = truthful(BOTH, &bob).unwrap_err();
        assert_eq!(why, "it leaves \"ALICE@example.com\" unanswered");
        let charlie = right("transactions of charlie@example.com");
        let each = json!({"kind": "each", "answers": [bob, charlie]});
        let why = truthful(BOTH, &each).unwrap_err();
        assert!(why.contains("which the question does not name"), "{why}");
    }

    #[test]
    fn wrong_ids_names_and_unknown_users_are_wrong() {
        let mut id = right("What is the user id of bob@example.com?");
        id["userId"] = json!("a2b3c4d5-6e7f-8a9b-0c1d-2e3f4a5b6c7d");
        assert!(truthful(BOB, &id).is_err());
        let mut named = right("What is the user id of bob@example.com?");
        named["name"] = json!("Alice");
        assert!(truthful(BOB, &named).is_err());
        let bob_unknown = json!({"kind": "unknownUser", "email": "BOB@example.com"});
        assert!(truthful(BOB, &bob_unknown).is_err());
        let raw = json!({"kind": "toolResult", "email": null, "server": "payment",
            "tool": "getTransactionsUsingUserId", "arguments": {}, "text": "[]"});
        assert!(truthful(BOB, &raw).is_err());
        let mut total = right(BOB);
        total["kind"] = json!("total");
        assert!(truthful(BOB, &total).is_err());
    }
}
