//! The LLM planner's answer, built from what the tools returned, never from
//! what the model wrote. A result shows when no later call used a value it
//! gave (a leaf of the chain). A listing shows as an address's
//! transactions only when its user id is one that a lookup of that address
//! (an address the question wrote) returned; a user id only for an address
//! the question wrote. Every address of the question must get an answer.

// `AskError` is the error every engine path returns; this one runs once per
// question, so its size costs nothing worth a second error type.
#![allow(clippy::result_large_err)]

use rmcp::model::CallToolResult;
use serde_json::{Map, Value};

use super::{
    LlmError,
    menu::{Facts, Made, Origin, Slot, slot_of},
};
use crate::{
    answer::{self, Answer},
    catalog::{Catalog, CatalogEntry},
    error::AskError,
    planner::{Pick, Selection},
};

/// The words a lookup's refusal contains when the address is unknown (the
/// rules planner reads it the same way).
const NOT_FOUND: &str = "not found";

/// One call made, with its result and its step number in the trace.
#[derive(Debug)]
pub(crate) struct Done<'a> {
    pub(crate) made: &'a Made,
    pub(crate) reply: &'a CallToolResult,
    pub(crate) step: usize,
}

/// The answer the calls in `done` give, for the question's `emails`.
pub(crate) fn answer(
    catalog: &Catalog,
    facts: &Facts,
    done: &[Done<'_>],
) -> Result<Answer, AskError> {
    if done.is_empty() {
        return Err(LlmError::NothingDone.into());
    }
    let chain = Chain {
        catalog,
        facts,
        done,
    };
    let mut parts = Vec::new();
    for index in (0..done.len()).filter(|&i| !chain.consumed(i)) {
        let subject = chain.subject(index);
        parts.push((subject.clone(), chain.part(index, subject)?));
    }
    let emails = facts.emails();
    let missing: Vec<String> = emails
        .iter()
        .filter(|e| !parts.iter().any(|(s, _)| s.as_deref() == Some(**e)))
        .map(|e| (*e).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(LlmError::Unanswered { emails: missing }.into());
    }
    let position = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| emails.iter().position(|e| *e == s))
            .unwrap_or(emails.len())
    };
    parts.sort_by_key(|(subject, _)| position(subject));
    let mut answers: Vec<Answer> = parts.into_iter().map(|(_, answer)| answer).collect();
    Ok(match answers.len() {
        1 => answers.remove(0),
        _ => Answer::Each { answers },
    })
}

struct Chain<'a> {
    catalog: &'a Catalog,
    facts: &'a Facts,
    done: &'a [Done<'a>],
}

impl Chain<'_> {
    fn entry(&self, index: usize) -> &CatalogEntry {
        &self.catalog.entries()[self.done[index].made.entry]
    }

    fn arguments(&self, index: usize) -> &Map<String, Value> {
        &self.done[index].made.arguments
    }

    /// Whether a later call used a value that call `index` returned.
    fn consumed(&self, index: usize) -> bool {
        self.done[index + 1..].iter().any(|later| {
            later
                .made
                .arguments
                .values()
                .any(|v| self.facts.origin_of(v) == Some(Origin::Call(index)))
        })
    }

    /// The question's address call `index` is about: one it was given, or
    /// the subject of the call whose result gave it a value.
    fn subject(&self, index: usize) -> Option<String> {
        if let Some(email) = self.email_argument(index) {
            return Some(email);
        }
        self.arguments(index)
            .values()
            .find_map(|v| match self.facts.origin_of(v) {
                Some(Origin::Call(earlier)) if earlier < index => self.subject(earlier),
                _ => None,
            })
    }

    /// The address call `index` was given, if an input took one.
    fn email_argument(&self, index: usize) -> Option<String> {
        let properties = self.entry(index).tool.input_schema.get("properties");
        self.arguments(index).iter().find_map(|(name, value)| {
            let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
            (slot_of(name, property) == Slot::Email)
                .then(|| value.as_str().map(str::to_owned))
                .flatten()
        })
    }

    /// What call `index`'s result says, about `subject` if it has one.
    fn part(&self, index: usize, subject: Option<String>) -> Result<Answer, AskError> {
        let Done { reply, step, .. } = self.done[index];
        let entry = self.entry(index);
        if reply.is_error == Some(true) {
            let message = answer::first_text(reply)
                .unwrap_or("(no message)")
                .to_owned();
            return match self.email_argument(index) {
                Some(email) if message.to_lowercase().contains(NOT_FOUND) => {
                    Ok(Answer::UnknownUser { email })
                }
                _ => Err(AskError::Tool {
                    step,
                    server: entry.server.clone(),
                    tool: entry.tool.name.to_string(),
                    message,
                }),
            };
        }
        if let Ok(listed) = answer::read_transactions(reply) {
            return self.transactions(index, listed);
        }
        if let (Some(email), Ok((user_id, name))) =
            (self.email_argument(index), answer::read_user_id(reply))
        {
            return Ok(Answer::UserId {
                email,
                user_id,
                name,
            });
        }
        Ok(Answer::ToolResult {
            email: subject,
            server: entry.server.clone(),
            tool: entry.tool.name.to_string(),
            arguments: self.arguments(index).clone(),
            text: tool_text(reply),
        })
    }

    /// A listing, as the transactions of the address whose lookup returned
    /// its user id; `count` or `limit` picks the newest n.
    fn transactions(
        &self,
        index: usize,
        listed: Vec<answer::TransactionLine>,
    ) -> Result<Answer, AskError> {
        let tool = self.entry(index).qualified_name();
        let unfounded = |why: String| {
            AskError::from(LlmError::Unfounded {
                tool: tool.clone(),
                why,
            })
        };
        let mut owner = None;
        let mut pick = Pick::All;
        for (name, value) in self.arguments(index) {
            if let Some(found) = self.looked_up(value) {
                owner = Some(found);
            } else if matches!(name.as_str(), "count" | "limit")
                && let Some(n) = value.as_u64().and_then(|n| u32::try_from(n).ok())
            {
                pick = Pick::Newest(n);
            } else {
                return Err(unfounded(format!("what its input {name} means is unknown")));
            }
        }
        let (email, user_id) = owner
            .ok_or_else(|| unfounded("no lookup of an address returned its user id".into()))?;
        let selection = Selection {
            pick,
            ..Selection::default()
        };
        let transactions = selection
            .apply(listed)
            .map_err(|e| unfounded(e.to_string()))?;
        Ok(Answer::Transactions {
            email,
            user_id,
            selection,
            transactions,
        })
    }

    /// The address and user id, when `value` is the user id a lookup of an
    /// address from the question returned.
    fn looked_up(&self, value: &Value) -> Option<(String, String)> {
        let Some(Origin::Call(lookup)) = self.facts.origin_of(value) else {
            return None;
        };
        let email = self.email_argument(lookup)?;
        let (user_id, _) = answer::read_user_id(self.done[lookup].reply).ok()?;
        (value.as_str() == Some(user_id.as_str())).then_some((email, user_id))
    }
}

/// A result's text for people: its first text block, else its JSON.
fn tool_text(reply: &CallToolResult) -> String {
    match answer::first_text(reply) {
        Ok(text) => text.to_owned(),
        Err(_) => super::menu::result_value(reply)
            .map(|v| v.to_string())
            .unwrap_or_default(),
    }
}
