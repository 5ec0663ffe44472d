//! Deterministic planning: from a question to what it means
//! ([`parse_question`], in `read.rs`), and from that and the tool catalog
//! to the chain of tool calls that answers it ([`plan`]). No LLM, no
//! network, no server names: tools are chosen by what their schemas take
//! and give. A question is understood completely or refused: the planner
//! never answers a question it only half read.

mod question;
mod read;

use serde_json::{Map, Value};

use crate::catalog::{Catalog, CatalogEntry};

pub use question::{AmountLimit, Ask, DateFilter, Period, Pick, Question, Report, Selection};
pub use read::{EMAILS_MAX, parse_question};

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
    /// Any catalog tool, for a call whose arguments are built elsewhere
    /// (the LLM planner's).
    pub(crate) fn of(entry: &CatalogEntry) -> Self {
        Self {
            server: entry.server.clone(),
            tool: entry.tool.name.to_string(),
            input: String::new(),
            count_input: None,
            retry_safe: entry.retry_safe(),
        }
    }

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
    #[error("I need an email address to know whom you mean.\n{}", help())]
    NoEmail,
    /// Some words of the question fit none of the forms the planner
    /// answers, or do not fit with the rest; `unused` holds them as written
    /// (empty when the question asks nothing the planner knows).
    #[error("{}\n{}", not_understood(unused), help())]
    NotUnderstood { unused: Vec<String> },
    #[error("Ask for at least one transaction.")]
    ZeroCount,
    #[error("That question names {named} email addresses; ask about at most {EMAILS_MAX} at once.")]
    TooManyEmails { named: usize },
    #[error("No connected server offers {needed}. Tools available: {}.", if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    MissingTool {
        needed: &'static str,
        available: Vec<String>,
    },
}

fn not_understood(unused: &[String]) -> String {
    match unused {
        [] => "I can't tell what you want to know, so I won't guess.".to_owned(),
        parts => {
            let quoted: Vec<String> = parts.iter().map(|p| format!("\"{p}\"")).collect();
            format!(
                "I can't use {} in that question, so I won't guess at an answer.",
                quoted.join(" or ")
            )
        }
    }
}

/// The forms the planner answers, each with an example: the refusal lists
/// them.
pub const FORMS: [(&str, &str); 9] = [
    (
        "transactions",
        "What are the recent transactions for bob@example.com?",
    ),
    ("the newest", "Last 2 transactions for bob@example.com"),
    (
        "the oldest",
        "What was the oldest purchase of alice@example.com?",
    ),
    (
        "a total, per currency",
        "How much has bob@example.com spent in January 2023?",
    ),
    (
        "a count",
        "How many purchases over £60 has bob@example.com made?",
    ),
    (
        "dates",
        "on 16 January 2023, in March 2023, in 2023, since, after, before, between … and …",
    ),
    (
        "amounts",
        "over £50, under $20, at least 100, at most €9.99",
    ),
    (
        "several people",
        "transactions for alice@example.com and charlie@example.com",
    ),
    ("a user id", "What is the user id of charlie@example.com?"),
];

/// What the planner understands, shown when it does not understand: each
/// of [`FORMS`] on a line.
pub fn help() -> String {
    let width = FORMS
        .iter()
        .map(|(form, _)| form.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = "I can answer questions like these, for one or more email addresses:".to_owned();
    for (form, example) in FORMS {
        text.push_str(&format!("\n  {form:width$}  {example}"));
    }
    text
}

/// The sentence describing each tool the planner looks for.
pub(crate) const NEEDS_LOOKUP: &str = "a tool that takes an `email` and returns a user id";
pub(crate) const NEEDS_LIST: &str = "a tool that takes a `userId` and returns transactions";

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
    let list = match question.ask {
        Ask::UserId => None,
        Ask::Transactions { .. } => {
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
        Question {
            emails: vec![email.into()],
            ask: Ask::Transactions {
                selection: Selection {
                    pick: count.map_or(Pick::All, Pick::Newest),
                    ..Selection::default()
                },
                report: Report::List,
            },
        }
    }

    #[test]
    fn a_refusal_names_what_it_could_not_use_and_what_it_can_answer() {
        let message = PlanError::NotUnderstood {
            unused: vec!["at Starbucks".into(), "top".into()],
        }
        .to_string();
        assert!(
            message.starts_with("I can't use \"at Starbucks\" or \"top\" in that question"),
            "{message}"
        );
        for (_, example) in FORMS {
            assert!(message.contains(example), "{message}");
        }
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
        let user_id = Question {
            emails: vec!["b@x".into()],
            ask: Ask::UserId,
        };
        assert!(plan(user_id, &catalog).is_ok());
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
