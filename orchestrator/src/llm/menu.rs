//! What the model may do next: the values it may use (facts, each from the
//! question or from a tool result), the calls those values ground (the
//! menu), and the guards that check whatever it proposes against both.

use rmcp::model::CallToolResult;
use serde_json::{Map, Value, json};

use crate::catalog::{Catalog, CatalogEntry};

/// Most values kept from one tool result.
const FACTS_PER_RESULT_MAX: usize = 64;
/// Longest string a result contributes as a value.
const FACT_CHARS_MAX: usize = 256;
/// Longest function name the OpenAI API accepts.
const FUNCTION_NAME_MAX: usize = 64;
/// The menu's name for "the results answer the question".
pub(crate) const DONE: &str = "done";

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Question,
    /// The result of the n-th call made (0-based).
    Call(usize),
}

/// A value the model may pass on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fact {
    pub(crate) value: Value,
    pub(crate) origin: Origin,
    /// The object key it was found under in a result (`userId`), if any.
    pub(crate) key: Option<String>,
}

/// Every value the model may use, in the order they appeared.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    facts: Vec<Fact>,
}

/// What kind of value an input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// An email address: only one the question wrote.
    Email,
    /// Any other string: only one a tool returned.
    Returned,
    /// An integer: from the question or a result.
    Integer,
    /// Nothing can ground it (objects, booleans…).
    Ungroundable,
}

impl Facts {
    /// The addresses and whole numbers the question writes.
    pub(crate) fn of_question(question: &str) -> Self {
        let mut facts = Self::default();
        for word in question.split_whitespace() {
            let word = word.trim_matches(|c: char| "?!.,;:\"'()<>[]{}`".contains(c));
            let word = word.strip_suffix("'s").unwrap_or(word);
            if let Some((local, domain)) = word.split_once('@')
                && !local.is_empty()
                && !domain.is_empty()
            {
                facts.push(Value::from(word), Origin::Question, None);
            } else if let Ok(n) = word.parse::<u32>() {
                facts.push(Value::from(n), Origin::Question, None);
            }
        }
        facts
    }

    fn push(&mut self, value: Value, origin: Origin, key: Option<String>) {
        if !self.facts.iter().any(|f| f.value == value) {
            self.facts.push(Fact { value, origin, key });
        }
    }

    /// Takes the strings and integers of call `call`'s result: its
    /// structured content, else its text read as JSON, else the text.
    pub(crate) fn add_result(&mut self, call: usize, reply: &CallToolResult) {
        if reply.is_error == Some(true) {
            return;
        }
        let mut found = Vec::new();
        if let Some(value) = result_value(reply) {
            scalars(&value, None, &mut found);
        }
        for (value, key) in found.into_iter().take(FACTS_PER_RESULT_MAX) {
            self.push(value, Origin::Call(call), key);
        }
    }

    /// The question's addresses, as written.
    pub(crate) fn emails(&self) -> Vec<&str> {
        self.facts
            .iter()
            .filter(|f| f.origin == Origin::Question)
            .filter_map(|f| f.value.as_str())
            .collect()
    }

    /// The values that may fill `slot`.
    pub(crate) fn for_slot(&self, slot: Slot) -> Vec<&Fact> {
        self.facts
            .iter()
            .filter(|f| match slot {
                Slot::Email => f.origin == Origin::Question && f.value.is_string(),
                Slot::Returned => f.origin != Origin::Question && f.value.is_string(),
                Slot::Integer => f.value.is_u64() || f.value.is_i64(),
                Slot::Ungroundable => false,
            })
            .collect()
    }

    /// The call whose result first gave `value`, if a call did.
    pub(crate) fn origin_of(&self, value: &Value) -> Option<Origin> {
        self.facts
            .iter()
            .find(|f| &f.value == value)
            .map(|f| f.origin)
    }
}

/// A result as JSON: structured content, else its text parsed as JSON, else
/// the text itself as a string.
pub(crate) fn result_value(reply: &CallToolResult) -> Option<Value> {
    if let Some(structured) = &reply.structured_content {
        return Some(structured.clone());
    }
    let text = reply
        .content
        .iter()
        .find_map(|block| block.as_text().map(|t| t.text.trim().to_owned()))?;
    Some(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The strings and integers in `value`, each with the key it is under.
fn scalars(value: &Value, key: Option<&str>, found: &mut Vec<(Value, Option<String>)>) {
    match value {
        Value::String(s) if !s.is_empty() && s.chars().count() <= FACT_CHARS_MAX => {
            found.push((value.clone(), key.map(str::to_owned)));
        }
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            found.push((value.clone(), key.map(str::to_owned)));
        }
        Value::Array(items) => items.iter().for_each(|v| scalars(v, key, found)),
        Value::Object(fields) => fields.iter().for_each(|(k, v)| scalars(v, Some(k), found)),
        _ => {}
    }
}

/// `value` as grounded for the input `name` (schema `property`): one of
/// the values the menu would offer it, an address matched without regard
/// to case and given back in the question's spelling.
pub(crate) fn ground_input(
    name: &str,
    property: &Value,
    required: bool,
    facts: &Facts,
    value: &Value,
) -> Option<Value> {
    let slot = slot_of(name, property);
    allowed_values(name, property, facts, required)
        .into_iter()
        .find(|allowed| match (slot, allowed, value) {
            (Slot::Email, Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (Slot::Integer, a, b) => a.as_i64().is_some() && a.as_i64() == b.as_i64(),
            (_, a, b) => a == b,
        })
}

/// `userId`, `user_id` and `UserID` name the same thing.
fn same_name(a: &str, b: &str) -> bool {
    let plain = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    plain(a) == plain(b)
}

/// What kind of value the input `name` with schema `schema` takes.
pub(crate) fn slot_of(name: &str, schema: &Value) -> Slot {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec!["string"],
    };
    let is_email = name.to_ascii_lowercase().contains("email")
        || schema.get("format").and_then(Value::as_str) == Some("email");
    if types.contains(&"string") {
        if is_email {
            Slot::Email
        } else {
            Slot::Returned
        }
    } else if types.contains(&"integer") || types.contains(&"number") {
        Slot::Integer
    } else {
        Slot::Ungroundable
    }
}

/// The function name a catalog entry goes by: `server__tool`, limited to
/// `[A-Za-z0-9_-]` and 64 characters, unique within the catalog.
pub(crate) fn function_names(catalog: &Catalog) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(catalog.entries().len());
    for entry in catalog.entries() {
        let raw = format!("{}__{}", entry.server, entry.tool.name);
        let mut name: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(FUNCTION_NAME_MAX)
            .collect();
        let mut n = 2;
        while names.contains(&name) {
            let suffix = format!("_{n}");
            name.truncate(FUNCTION_NAME_MAX - suffix.len());
            name.push_str(&suffix);
            n += 1;
        }
        names.push(name);
    }
    names
}

/// One input of an offered call: its name, whether required, and the values
/// it may take.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Input {
    pub(crate) name: String,
    pub(crate) required: bool,
    pub(crate) values: Vec<Value>,
}

/// A call the model may make now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Offer {
    /// Index into the catalog's entries.
    pub(crate) entry: usize,
    pub(crate) name: String,
    pub(crate) inputs: Vec<Input>,
}

/// A call made, for the menu's exclusions and the answer.
#[derive(Debug, Clone)]
pub(crate) struct Made {
    pub(crate) entry: usize,
    pub(crate) arguments: Map<String, Value>,
}

/// The calls that can be grounded now, in catalog order.
pub(crate) fn offers(
    catalog: &Catalog,
    names: &[String],
    facts: &Facts,
    made: &[Made],
) -> Vec<Offer> {
    catalog
        .entries()
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| {
            let inputs = offered_inputs(index, entry, facts, made)?;
            Some(Offer {
                entry: index,
                name: names[index].clone(),
                inputs,
            })
        })
        .collect()
}

/// The inputs of `entry` with their values, or `None` when a required one
/// has none. For a tool with one required input, values it was already
/// called with are left out.
fn offered_inputs(
    index: usize,
    entry: &CatalogEntry,
    facts: &Facts,
    made: &[Made],
) -> Option<Vec<Input>> {
    let schema = &entry.tool.input_schema;
    let required = required_of(schema);
    let properties = schema.get("properties").and_then(Value::as_object);
    let mut inputs = Vec::new();
    for (name, property) in properties.into_iter().flatten() {
        let is_required = required.contains(&name.as_str());
        let mut values = allowed_values(name, property, facts, is_required);
        if is_required && required.len() == 1 {
            values.retain(|v| {
                !made
                    .iter()
                    .any(|m| m.entry == index && m.arguments.get(name) == Some(v))
            });
        }
        match (values.is_empty(), is_required) {
            (true, true) => return None,
            (true, false) => {}
            (false, _) => inputs.push(Input {
                name: name.clone(),
                required: is_required,
                values,
            }),
        }
    }
    let all_required_known = required.iter().all(|r| inputs.iter().any(|i| i.name == *r));
    all_required_known.then_some(inputs)
}

/// The grounded values input `name` may take: those its own schema
/// accepts and, when some result gave values under a key of the same name
/// (`userId` for `userId`), only those. An optional input refines what the
/// user asked for, so it takes only the question's values or same-named ones.
fn allowed_values(name: &str, property: &Value, facts: &Facts, required: bool) -> Vec<Value> {
    let slot = slot_of(name, property);
    let fits = jsonschema::validator_for(property).ok();
    let named = |f: &&Fact| f.key.as_deref().is_some_and(|k| same_name(k, name));
    let candidates: Vec<&Fact> = facts
        .for_slot(slot)
        .into_iter()
        .filter(|f| fits.as_ref().is_none_or(|v| v.is_valid(&f.value)))
        .filter(|f| required || f.origin == Origin::Question || named(f))
        .collect();
    let narrowed = candidates.iter().any(named);
    candidates
        .into_iter()
        .filter(|f| !narrowed || named(f))
        .map(|f| f.value.clone())
        .collect()
}

pub(crate) fn required_of(schema: &Map<String, Value>) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl Offer {
    /// The arguments, when every input has exactly one value and none is
    /// optional: then the model need only name the tool (spelling a user
    /// id back costs a small model more time than the choice itself).
    pub(crate) fn determined(&self) -> Option<Map<String, Value>> {
        self.inputs
            .iter()
            .map(|i| match (i.required, i.values.as_slice()) {
                (true, [only]) => Some((i.name.clone(), only.clone())),
                _ => None,
            })
            .collect()
    }
}

/// The JSON schema of one reply in `json_schema` mode: `{"tool": NAME,
/// "arguments": {…}}` for one of the offers or, with `done_allowed`,
/// `{"tool": "done"}`. The root is an `anyOf` (measured: a wrapping object
/// made SmolLM2 stop early), which grammar-constrained servers such as
/// llama.cpp take and strict structured outputs (OpenAI's) do not: there,
/// use `tools` mode. Optional inputs are nullable but present; an offer
/// whose arguments are determined is only its tool's name.
pub(crate) fn step_schema(offers: &[Offer], done_allowed: bool) -> Value {
    let mut choices: Vec<Value> = offers.iter().map(offer_schema).collect();
    if done_allowed {
        choices.push(json!({
            "type": "object",
            "properties": {"tool": {"type": "string", "enum": [DONE]}},
            "required": ["tool"],
            "additionalProperties": false,
        }));
    }
    json!({ "anyOf": choices })
}

fn offer_schema(offer: &Offer) -> Value {
    if offer.determined().is_some() {
        return json!({
            "type": "object",
            "properties": {"tool": {"type": "string", "enum": [offer.name]}},
            "required": ["tool"],
            "additionalProperties": false,
        });
    }
    json!({
        "type": "object",
        "properties": {
            "tool": {"type": "string", "enum": [offer.name]},
            "arguments": arguments_schema(offer, true),
        },
        "required": ["tool", "arguments"],
        "additionalProperties": false,
    })
}

/// The inputs of an offer as a JSON schema, each an enum of its values.
/// `all_required`: optional inputs listed as required but nullable.
fn arguments_schema(offer: &Offer, all_required: bool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for input in &offer.inputs {
        let one_of = json!({"enum": input.values});
        let schema = if input.required || !all_required {
            one_of
        } else {
            json!({"anyOf": [one_of, {"type": "null"}]})
        };
        properties.insert(input.name.clone(), schema);
        if input.required || all_required {
            required.push(input.name.clone());
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The `tools` list in `tools` mode: each offer as a function whose
/// parameters admit only grounded values, plus, with `done_allowed`, `done`.
pub(crate) fn tool_functions(
    offers: &[Offer],
    catalog: &Catalog,
    done_allowed: bool,
) -> Vec<Value> {
    let mut tools: Vec<Value> = offers
        .iter()
        .map(|offer| {
            let entry = &catalog.entries()[offer.entry];
            json!({"type": "function", "function": {
                "name": offer.name,
                "description": entry.tool.description.as_deref().unwrap_or(""),
                "parameters": arguments_schema(offer, false),
            }})
        })
        .collect();
    if done_allowed {
        tools.push(json!({"type": "function", "function": {
            "name": DONE,
            "description": "Call this when the results so far answer the question.",
            "parameters": {"type": "object", "properties": {}},
        }}));
    }
    tools
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::model::{ContentBlock, Tool};

    use super::*;

    fn tool(name: &str, input: Value) -> Tool {
        Tool::new(
            name.to_owned(),
            "",
            Arc::new(input.as_object().unwrap().clone()),
        )
    }

    fn demo() -> Catalog {
        Catalog::new([
            (
                "user".to_owned(),
                vec![tool(
                    "getUserIdByEmail",
                    json!({"type":"object","properties":{"email":{"type":"string"}},"required":["email"]}),
                )],
            ),
            (
                "payment".to_owned(),
                vec![tool(
                    "getTransactionsUsingUserId",
                    json!({"type":"object","properties":{"userId":{"type":"string"},"count":{"type":["integer","null"]}},"required":["userId"]}),
                )],
            ),
        ])
    }

    fn structured(value: Value) -> CallToolResult {
        CallToolResult::structured(value)
    }

    #[test]
    fn the_question_grounds_its_addresses_and_numbers_only() {
        let facts = Facts::of_question("Last 2 purchases of BOB@example.com's, and al@x.org?");
        assert_eq!(facts.emails(), ["BOB@example.com", "al@x.org"]);
        assert_eq!(facts.for_slot(Slot::Integer).len(), 1);
        assert!(facts.for_slot(Slot::Returned).is_empty());
        let email = json!({"type": "string"});
        assert_eq!(
            ground_input("email", &email, true, &facts, &json!("bob@EXAMPLE.com")),
            Some(json!("BOB@example.com"))
        );
        assert_eq!(
            ground_input("email", &email, true, &facts, &json!("eve@example.com")),
            None
        );
    }

    #[test]
    fn a_user_id_is_offered_only_once_a_tool_returned_it() {
        let catalog = demo();
        let names = function_names(&catalog);
        assert_eq!(
            names,
            [
                "payment__getTransactionsUsingUserId",
                "user__getUserIdByEmail"
            ]
        );
        let mut facts = Facts::of_question("recent transactions for bob@example.com");
        let first = offers(&catalog, &names, &facts, &[]);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].name, "user__getUserIdByEmail");
        assert_eq!(first[0].inputs[0].values, [json!("bob@example.com")]);

        facts.add_result(0, &structured(json!({"userId": "u-1"})));
        let made = [Made {
            entry: 1,
            arguments: json!({"email": "bob@example.com"})
                .as_object()
                .unwrap()
                .clone(),
        }];
        let second = offers(&catalog, &names, &facts, &made);
        assert_eq!(
            second.len(),
            1,
            "the lookup is not offered again: {second:?}"
        );
        assert_eq!(second[0].name, "payment__getTransactionsUsingUserId");
        assert_eq!(
            second[0].inputs,
            [Input {
                name: "userId".into(),
                required: true,
                values: vec![json!("u-1")],
            }]
        );
        assert_eq!(facts.origin_of(&json!("u-1")), Some(Origin::Call(0)));
    }

    #[test]
    fn names_are_safe_for_function_calling_and_unique() {
        let catalog = Catalog::new([
            (
                "a.b".to_owned(),
                vec![tool("x y", json!({"type":"object"}))],
            ),
            (
                "a_b".to_owned(),
                vec![tool("x_y", json!({"type":"object"}))],
            ),
            (
                "s".to_owned(),
                vec![tool(&"t".repeat(80), json!({"type":"object"}))],
            ),
        ]);
        let names = function_names(&catalog);
        assert_eq!(names[0], "a_b__x_y");
        assert_eq!(names[1], "a_b__x_y_2");
        assert_eq!(names[2].len(), 64);
        for name in &names {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            );
        }
    }

    #[test]
    fn the_step_schema_admits_only_the_offers_and_done() {
        let catalog = demo();
        let names = function_names(&catalog);
        let facts = Facts::of_question("last 3 for bob@example.com");
        let mut facts = facts;
        facts.add_result(0, &CallToolResult::success(vec![ContentBlock::text("u-9")]));
        let menu = offers(&catalog, &names, &facts, &[]);
        let schema = step_schema(&menu, true);
        let validator = jsonschema::validator_for(&schema).unwrap();
        let ok = [
            json!({"tool": "done"}),
            json!({"tool": "user__getUserIdByEmail"}),
            json!({"tool": "payment__getTransactionsUsingUserId", "arguments": {"userId": "u-9", "count": 3}}),
            json!({"tool": "payment__getTransactionsUsingUserId", "arguments": {"userId": "u-9", "count": null}}),
        ];
        for value in ok {
            assert!(validator.is_valid(&value), "{value}");
        }
        let refused = [
            json!({"tool": "user__getUserIdByEmail", "arguments": {"email": "eve@example.com"}}),
            json!({"tool": "payment__getTransactionsUsingUserId", "arguments": {"userId": "bob@example.com", "count": null}}),
            json!({"tool": "payment__getTransactionsUsingUserId"}),
            json!({"tool": "payment__getTransactionsUsingUserId", "arguments": {"userId": "u-9", "count": 4}}),
            json!({"tool": "elsewhere"}),
        ];
        for value in refused {
            assert!(!validator.is_valid(&value), "{value}");
        }
        let first_turn = jsonschema::validator_for(&step_schema(&menu, false)).unwrap();
        assert!(!first_turn.is_valid(&json!({"tool": "done"})));
    }

    #[test]
    fn an_input_takes_the_values_returned_under_its_name_that_its_schema_accepts() {
        let catalog = demo();
        let names = function_names(&catalog);
        let mut facts = Facts::of_question("transactions for bob@example.com");
        facts.add_result(
            0,
            &structured(
                json!({"email": "bob@example.com", "name": "Bob", "userId": "u-1", "total": 0}),
            ),
        );
        let menu = offers(&catalog, &names, &facts, &[]);
        let list = menu.iter().find(|o| o.name.starts_with("payment")).unwrap();
        assert_eq!(list.inputs[0].values, [json!("u-1")], "not Bob: {list:?}");
        assert_eq!(
            list.determined(),
            json!({"userId": "u-1"}).as_object().cloned()
        );
        let positive = Facts::of_question("the last 0 or 3 for bob@example.com");
        let schema = json!({"type": "integer", "minimum": 1});
        assert_eq!(
            allowed_values("count", &schema, &positive, true),
            [json!(3)]
        );
    }
}
