//! Deterministic planning: from a question and the tool catalog to the
//! chain of tool calls that answers it. No LLM, no network, no server names:
//! tools are chosen by what their schemas take and give.

use serde_json::{Map, Value};

use crate::catalog::{Catalog, CatalogEntry};

/// What the user asked, once understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// "What is the user id of EMAIL?"
    UserId { email: String },
    /// "What are the recent transactions for EMAIL?", optionally only the
    /// newest `count`.
    Transactions { email: String, count: Option<u32> },
}

/// A tool chosen for a step, with the argument names its schema uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolRef {
    pub(crate) server: String,
    pub(crate) tool: String,
    /// The input property that receives the value (`email` or `userId`).
    pub(crate) input: String,
    /// The optional count property, for the transactions step.
    pub(crate) count_input: Option<String>,
    /// Read-only or idempotent: a failed attempt may be retried.
    pub(crate) retry_safe: bool,
}

impl ToolRef {
    #[cfg(test)]
    pub(crate) fn qualified_name(&self) -> String {
        format!("{}/{}", self.server, self.tool)
    }

    /// The arguments for this step.
    pub(crate) fn arguments(&self, value: &str, count: Option<u32>) -> Map<String, Value> {
        let mut args = Map::new();
        args.insert(self.input.clone(), Value::String(value.to_owned()));
        if let (Some(name), Some(count)) = (&self.count_input, count) {
            args.insert(name.clone(), Value::from(count));
        }
        args
    }
}

/// The chain of calls that answers a question, as [`plan`] chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub(crate) question: Question,
    /// Email → user id.
    pub(crate) lookup: ToolRef,
    /// User id → transactions; absent for a user-id question.
    pub(crate) list: Option<ToolRef>,
}

/// A question that cannot be planned. The message tells the user what can be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("I need an email address to know whom you mean.\n{HELP}")]
    NoEmail,
    #[error("I can't answer that yet.\n{HELP}")]
    NotUnderstood,
    #[error("Ask for at least one transaction.")]
    ZeroCount,
    #[error("No connected server offers {needed}. Tools available: {}.", if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    MissingTool {
        needed: &'static str,
        available: Vec<String>,
    },
}

/// What the planner understands, shown when it does not understand.
pub(crate) const HELP: &str = "I can answer questions like:
  What are the recent transactions for bob@example.com?
  Show me all purchases for alice@example.com
  Last 2 transactions for bob@example.com
  What is the user id of charlie@example.com?";

/// The sentence describing each tool the planner looks for.
pub(crate) const NEEDS_LOOKUP: &str = "a tool that takes an `email` and returns a user id";
pub(crate) const NEEDS_LIST: &str = "a tool that takes a `userId` and returns transactions";

const TRANSACTION_WORDS: &[&str] = &[
    "transaction",
    "transactions",
    "purchase",
    "purchases",
    "payment",
    "payments",
    "spending",
    "spent",
    "spend",
    "bought",
    "order",
    "orders",
    "charge",
    "charges",
    "history",
    "activity",
    "expense",
    "expenses",
];
const SINGULAR_NOUNS: &[&str] = &[
    "transaction",
    "purchase",
    "payment",
    "order",
    "charge",
    "expense",
];
const RECENCY_WORDS: &[&str] = &["last", "latest", "recent", "newest", "top", "past", "most"];
const ID_WORDS: &[&str] = &["id", "userid", "user-id", "identifier", "uuid"];
const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// Understands a question in plain English.
pub fn parse_question(text: &str) -> Result<Question, PlanError> {
    let mut email = None;
    let mut words: Vec<String> = Vec::new();
    for raw in text.split_whitespace() {
        let token = raw.trim_matches(|c: char| "?!.,;:\"'()<>[]{}`".contains(c));
        if email.is_none() && token.contains('@') {
            let token = token.strip_suffix("'s").unwrap_or(token);
            if let Some((local, domain)) = token.split_once('@')
                && !local.is_empty()
                && !domain.is_empty()
            {
                email = Some(token.to_owned());
                continue;
            }
        }
        words.push(token.to_lowercase());
    }
    let email = email.ok_or(PlanError::NoEmail)?;
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    if has(TRANSACTION_WORDS) {
        let count = parse_count(&words)?;
        Ok(Question::Transactions { email, count })
    } else if has(ID_WORDS) {
        Ok(Question::UserId { email })
    } else {
        Err(PlanError::NotUnderstood)
    }
}

/// A number counts as "how many" only next to a recency word or a
/// transaction noun, so "in 2023" or "order 66" do not cut the list.
fn parse_count(words: &[String]) -> Result<Option<u32>, PlanError> {
    let number = |w: &str| {
        w.parse::<u32>()
            .ok()
            .or_else(|| NUMBER_WORDS.iter().position(|n| *n == w).map(|n| n as u32))
    };
    for (i, word) in words.iter().enumerate() {
        let Some(n) = number(word) else { continue };
        let before = i.checked_sub(1).map(|j| words[j].as_str());
        let after = words.get(i + 1).map(String::as_str);
        let counts = before.is_some_and(|w| RECENCY_WORDS.contains(&w))
            || after.is_some_and(|w| TRANSACTION_WORDS.contains(&w) || RECENCY_WORDS.contains(&w));
        if counts {
            return if n == 0 {
                Err(PlanError::ZeroCount)
            } else {
                Ok(Some(n))
            };
        }
    }
    let singular = words.iter().any(|w| SINGULAR_NOUNS.contains(&w.as_str()));
    let recent = words.iter().any(|w| RECENCY_WORDS.contains(&w.as_str()));
    Ok((singular && recent).then_some(1))
}

/// Chooses the tools that answer `question` from `catalog`.
pub fn plan(question: Question, catalog: &Catalog) -> Result<Plan, PlanError> {
    let missing = |needed| PlanError::MissingTool {
        needed,
        available: catalog
            .entries()
            .iter()
            .map(CatalogEntry::qualified_name)
            .collect(),
    };
    let lookup = best(catalog, lookup_tool).ok_or_else(|| missing(NEEDS_LOOKUP))?;
    let list = match question {
        Question::UserId { .. } => None,
        Question::Transactions { .. } => {
            Some(best(catalog, list_tool).ok_or_else(|| missing(NEEDS_LIST))?)
        }
    };
    Ok(Plan {
        question,
        lookup,
        list,
    })
}

/// The highest-scoring match; ties go to the first qualified name.
fn best(
    catalog: &Catalog,
    matcher: fn(&CatalogEntry) -> Option<(u32, ToolRef)>,
) -> Option<ToolRef> {
    let mut best: Option<(u32, ToolRef)> = None;
    for (score, tool) in catalog.entries().iter().filter_map(matcher) {
        if best.as_ref().is_none_or(|(top, _)| score > *top) {
            best = Some((score, tool));
        }
    }
    best.map(|(_, tool)| tool)
}

/// Matches a tool whose only required input is a string `email`.
fn lookup_tool(entry: &CatalogEntry) -> Option<(u32, ToolRef)> {
    let schema = Schema::of(entry);
    let input = schema.property(|name| name.eq_ignore_ascii_case("email"))?;
    if schema.required() != [input.as_str()] || !schema.is_string(&input) {
        return None;
    }
    let score = u32::from(output_has(entry, "userId")) * 2
        + u32::from(entry.tool.name.to_lowercase().contains("id"));
    Some((score, tool_ref(entry, input, None)))
}

/// Matches a tool whose only required input is a string user id, with an
/// optional integer count.
fn list_tool(entry: &CatalogEntry) -> Option<(u32, ToolRef)> {
    let schema = Schema::of(entry);
    let input = schema.property(|name| name.replace('_', "").eq_ignore_ascii_case("userid"))?;
    if schema.required() != [input.as_str()] || !schema.is_string(&input) {
        return None;
    }
    let count_input = schema.property(|name| name == "count" || name == "limit");
    let score = u32::from(output_has(entry, "transactions")) * 2
        + u32::from(entry.tool.name.to_lowercase().contains("transaction"));
    Some((score, tool_ref(entry, input, count_input)))
}

fn tool_ref(entry: &CatalogEntry, input: String, count_input: Option<String>) -> ToolRef {
    ToolRef {
        server: entry.server.clone(),
        tool: entry.tool.name.to_string(),
        input,
        count_input,
        retry_safe: entry.retry_safe(),
    }
}

fn output_has(entry: &CatalogEntry, property: &str) -> bool {
    entry
        .tool
        .output_schema
        .as_ref()
        .and_then(|schema| schema.get("properties"))
        .and_then(Value::as_object)
        .is_some_and(|properties| properties.contains_key(property))
}

/// Read access to a tool's input JSON Schema.
struct Schema<'a> {
    properties: Option<&'a Map<String, Value>>,
    required: Vec<&'a str>,
}

impl<'a> Schema<'a> {
    fn of(entry: &'a CatalogEntry) -> Self {
        let schema = &entry.tool.input_schema;
        Self {
            properties: schema.get("properties").and_then(Value::as_object),
            required: schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
        }
    }

    fn property(&self, matches: impl Fn(&str) -> bool) -> Option<String> {
        self.properties?.keys().find(|k| matches(k)).cloned()
    }

    fn required(&self) -> &[&'a str] {
        &self.required
    }

    fn is_string(&self, name: &str) -> bool {
        let ty = self
            .properties
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("type"));
        match ty {
            Some(Value::String(t)) => t == "string",
            Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
            None => true,
            Some(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::model::Tool;
    use serde_json::json;

    use super::*;

    fn transactions(email: &str, count: Option<u32>) -> Question {
        Question::Transactions {
            email: email.into(),
            count,
        }
    }

    #[test]
    fn understands_the_demo_questions_and_paraphrases() {
        let cases = [
            (
                "What are the recent transactions for bob@example.com?",
                transactions("bob@example.com", None),
            ),
            (
                "Show me all purchases for Alice@Example.com",
                transactions("Alice@Example.com", None),
            ),
            (
                "last 2 transactions for bob@example.com",
                transactions("bob@example.com", Some(2)),
            ),
            (
                "bob@example.com's three most recent payments",
                transactions("bob@example.com", Some(3)),
            ),
            (
                "What was the latest purchase by bob@example.com?",
                transactions("bob@example.com", Some(1)),
            ),
            (
                "How much has (bob@example.com) spent?",
                transactions("bob@example.com", None),
            ),
            (
                "transactions in 2023 for bob@example.com",
                transactions("bob@example.com", None),
            ),
            (
                "What is the user id of charlie@example.com?",
                Question::UserId {
                    email: "charlie@example.com".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_question(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn says_what_it_can_answer_when_it_cannot() {
        assert_eq!(
            parse_question("What are the recent transactions?"),
            Err(PlanError::NoEmail)
        );
        assert_eq!(
            parse_question("What is the weather for bob@example.com?"),
            Err(PlanError::NotUnderstood)
        );
        assert_eq!(
            parse_question("last 0 transactions for bob@example.com"),
            Err(PlanError::ZeroCount)
        );
        let message = PlanError::NotUnderstood.to_string();
        assert!(message.contains("What are the recent transactions for bob@example.com?"));
    }

    fn tool(name: &str, input: serde_json::Value, output: Option<serde_json::Value>) -> Tool {
        let input = input.as_object().unwrap().clone();
        let mut tool = Tool::new(name.to_owned(), "", Arc::new(input));
        tool.output_schema = output.map(|o| Arc::new(o.as_object().unwrap().clone()));
        tool
    }

    fn demo_tools() -> (Vec<Tool>, Vec<Tool>) {
        let lookup = tool(
            "getUserIdByEmail",
            json!({"type":"object","properties":{"email":{"type":"string"}},"required":["email"]}),
            Some(json!({"type":"object","properties":{"userId":{"type":"string"}}})),
        );
        let list = tool(
            "getTransactionsUsingUserId",
            json!({"type":"object","properties":{"userId":{"type":"string"},"count":{"type":["integer","null"]}},"required":["userId"]}),
            None,
        );
        (vec![lookup], vec![list])
    }

    #[test]
    fn chains_tools_by_schema_whatever_the_servers_are_called() {
        let (users, payments) = demo_tools();
        for (a, b) in [("user", "payment"), ("zeta", "alpha"), ("same", "same")] {
            let catalog = if a == b {
                Catalog::new([(a.to_owned(), [users.clone(), payments.clone()].concat())])
            } else {
                Catalog::new([
                    (a.to_owned(), users.clone()),
                    (b.to_owned(), payments.clone()),
                ])
            };
            let plan = plan(transactions("bob@example.com", Some(2)), &catalog).unwrap();
            assert_eq!(
                plan.lookup.qualified_name(),
                format!("{a}/getUserIdByEmail")
            );
            let list = plan.list.unwrap();
            assert_eq!(
                list.qualified_name(),
                format!("{b}/getTransactionsUsingUserId")
            );
            assert_eq!(
                list.arguments("u1", Some(2)),
                json!({"userId":"u1","count":2})
                    .as_object()
                    .unwrap()
                    .clone()
            );
        }
    }

    #[test]
    fn a_missing_tool_is_named_with_what_is_available() {
        let (users, _) = demo_tools();
        let catalog = Catalog::new([("user".to_owned(), users)]);
        let error = plan(transactions("bob@example.com", None), &catalog).unwrap_err();
        assert_eq!(
            error.to_string(),
            "No connected server offers a tool that takes a `userId` and returns transactions. Tools available: user/getUserIdByEmail."
        );
        assert!(
            plan(
                Question::UserId {
                    email: "b@x".into()
                },
                &catalog
            )
            .is_ok()
        );
    }

    #[test]
    fn prefers_the_tool_whose_output_schema_fits() {
        let (users, payments) = demo_tools();
        let decoy = tool(
            "aaaProfileByEmail",
            json!({"type":"object","properties":{"email":{"type":"string"}},"required":["email"]}),
            Some(json!({"type":"object","properties":{"profile":{"type":"object"}}})),
        );
        let catalog = Catalog::new([
            ("a".to_owned(), vec![decoy]),
            ("b".to_owned(), [users, payments].concat()),
        ]);
        let plan = plan(transactions("bob@example.com", None), &catalog).unwrap();
        assert_eq!(plan.lookup.qualified_name(), "b/getUserIdByEmail");
    }
}
