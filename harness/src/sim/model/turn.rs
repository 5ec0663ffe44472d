//! One chat-completions request as the model host reads it: the question,
//! the calls offered now (the menu, from `response_format`'s JSON schema or
//! from `tools`), and the calls made so far with their results. It reads
//! only what the request says; it shares no code with the orchestrator.

use serde_json::{Map, Value};

/// Words for transactions, as the model host reads a count.
const NOUNS: [&str; 6] = [
    "transaction",
    "purchase",
    "payment",
    "order",
    "charge",
    "expense",
];
/// Words that may stand between a count and its noun.
const RECENCY: [&str; 6] = ["last", "latest", "recent", "newest", "most", "top"];

/// What one request says.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Turn {
    /// Native tool calling (`tools`), else `response_format`.
    pub(super) tools_mode: bool,
    /// The first user message.
    pub(super) question: String,
    /// The calls offered now, in the order offered.
    pub(super) offers: Vec<Offer>,
    /// The calls made so far, in order.
    pub(super) past: Vec<Past>,
}

/// A call the menu offers.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Offer {
    pub(super) name: String,
    pub(super) inputs: Vec<Input>,
}

/// One input of an offered call and the values the menu allows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Input {
    pub(super) name: String,
    pub(super) values: Vec<Value>,
    /// Nullable (`json_schema` mode) or not required (`tools` mode).
    pub(super) optional: bool,
}

/// What kind of value an input takes, as far as the model host can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Email,
    Text,
    Number,
}

impl Input {
    pub(super) fn kind(&self) -> Kind {
        if self.name.to_ascii_lowercase().contains("email") {
            Kind::Email
        } else if self.values.first().is_some_and(Value::is_number) {
            Kind::Number
        } else {
            Kind::Text
        }
    }
}

/// A call made earlier in the conversation, and what it returned.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Past {
    pub(super) tool: String,
    pub(super) arguments: Map<String, Value>,
    pub(super) result: String,
}

impl Past {
    /// Whether one of its arguments was `value` (addresses in any case).
    pub(super) fn took(&self, value: &str) -> bool {
        self.arguments
            .values()
            .filter_map(Value::as_str)
            .any(|v| v.eq_ignore_ascii_case(value))
    }

    /// Whether one of its arguments was an address.
    pub(super) fn took_an_address(&self) -> bool {
        self.arguments
            .values()
            .filter_map(Value::as_str)
            .any(|v| v.contains('@'))
    }

    /// The tool's inputs as this call shows them: each argument, with the
    /// value it took.
    pub(super) fn shape(&self) -> Offer {
        let inputs = self.arguments.iter().map(|(name, value)| Input {
            name: name.clone(),
            values: vec![value.clone()],
            optional: false,
        });
        Offer {
            name: self.tool.clone(),
            inputs: inputs.collect(),
        }
    }

    /// The `userId` its result gave, if it gave one.
    pub(super) fn user_id(&self) -> Option<String> {
        match serde_json::from_str::<Value>(&self.result) {
            Ok(value) => value.get("userId")?.as_str().map(str::to_owned),
            // The planner shows a result's text content: a lookup's (a call
            // that took an address) is the id.
            Err(_) if self.took_an_address() => {
                let text = self.result.trim();
                (!text.is_empty() && !text.contains(char::is_whitespace)).then(|| text.to_owned())
            }
            Err(_) => None,
        }
    }
}

impl Turn {
    /// Reads a request body; an error says why it is not a chat request.
    pub(super) fn read(body: &[u8]) -> Result<Self, String> {
        let request: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let messages = request
            .get("messages")
            .and_then(Value::as_array)
            .ok_or("no messages")?;
        let question = messages
            .iter()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| m.get("content").and_then(Value::as_str))
            .ok_or("no user message")?
            .to_owned();
        let tools = request.get("tools").and_then(Value::as_array);
        let offers = match tools {
            Some(tools) => tools.iter().filter_map(tool_offer).collect(),
            None => schema_offers(&request),
        };
        Ok(Self {
            tools_mode: tools.is_some(),
            question,
            offers,
            past: past_calls(messages),
        })
    }

    /// The addresses the question names, in order.
    pub(super) fn addresses(&self) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for word in self.words() {
            let word = word.strip_suffix("'s").unwrap_or(word);
            if word.contains('@') && !found.iter().any(|f| f.eq_ignore_ascii_case(word)) {
                found.push(word.to_owned());
            }
        }
        found
    }

    /// How many of the newest transactions the question asks for: a
    /// number in digits just before a transaction noun (past words such as
    /// "most recent"), unless it asks for the oldest.
    pub(super) fn count(&self) -> Option<u64> {
        let words: Vec<String> = self.words().map(str::to_lowercase).collect();
        if words
            .iter()
            .any(|w| ["oldest", "earliest", "first"].contains(&w.as_str()))
        {
            return None;
        }
        words.iter().enumerate().find_map(|(i, word)| {
            let n = word.parse().ok()?;
            let next = words[i + 1..]
                .iter()
                .find(|w| !RECENCY.contains(&w.as_str()))?;
            NOUNS.iter().any(|noun| next.starts_with(noun)).then_some(n)
        })
    }

    /// The question's words, without the punctuation around them.
    fn words(&self) -> impl Iterator<Item = &str> {
        self.question
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| "?!.,;:\"'()<>[]{}`".contains(c)))
    }

    /// Whether the question asks for a user id rather than transactions.
    pub(super) fn asks_for_id(&self) -> bool {
        self.question.split_whitespace().any(|w| {
            let w = w
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            ["id", "userid", "identifier", "uuid"].contains(&w.as_str())
        })
    }
}

/// The offers of `response_format.json_schema.schema`: an `anyOf` of
/// one object per call (`tool` an enum of its name, `arguments` an object
/// of enums) and done.
fn schema_offers(request: &Value) -> Vec<Offer> {
    let choices = request
        .pointer("/response_format/json_schema/schema/anyOf")
        .and_then(Value::as_array);
    choices
        .into_iter()
        .flatten()
        .filter_map(|choice| {
            let name = choice.pointer("/properties/tool/enum/0")?.as_str()?;
            if name == "done" {
                return None;
            }
            // A call offered by name alone: its arguments are determined.
            let inputs = choice
                .pointer("/properties/arguments")
                .map(inputs)
                .unwrap_or_default();
            Some(Offer {
                name: name.to_owned(),
                inputs,
            })
        })
        .collect()
}

/// The offer of one `tools` entry, unless it is `done`.
fn tool_offer(tool: &Value) -> Option<Offer> {
    let function = tool.get("function")?;
    let name = function.get("name")?.as_str()?;
    if name == "done" {
        return None;
    }
    Some(Offer {
        name: name.to_owned(),
        inputs: inputs(function.get("parameters")?),
    })
}

/// The inputs of an object schema whose properties are enums (or an enum
/// or null).
fn inputs(object: &Value) -> Vec<Input> {
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = object.get("properties").and_then(Value::as_object);
    properties
        .into_iter()
        .flatten()
        .map(|(name, schema)| {
            let nullable = schema.pointer("/anyOf/0/enum");
            let values = nullable.or(schema.get("enum")).and_then(Value::as_array);
            Input {
                name: name.clone(),
                values: values.cloned().unwrap_or_default(),
                optional: nullable.is_some() || !required.contains(&name.as_str()),
            }
        })
        .collect()
}

/// The calls the conversation shows: an assistant step (JSON content, or a
/// native tool call) and the message after it, its result.
fn past_calls(messages: &[Value]) -> Vec<Past> {
    messages
        .windows(2)
        .filter_map(|pair| {
            let (tool, arguments) = made_call(&pair[0])?;
            let shown = pair[1].get("content").and_then(Value::as_str)?;
            let result = match shown.split_once(": ") {
                Some((head, rest)) if head.starts_with("Result of ") => rest,
                _ => shown,
            };
            Some(Past {
                tool,
                arguments,
                result: result.to_owned(),
            })
        })
        .collect()
}

/// The call an assistant message made, if it made one.
fn made_call(message: &Value) -> Option<(String, Map<String, Value>)> {
    if message.get("role")?.as_str()? != "assistant" {
        return None;
    }
    if let Some(function) = message.pointer("/tool_calls/0/function") {
        let name = function.get("name")?.as_str()?.to_owned();
        let raw = function.get("arguments")?.as_str()?;
        let arguments = serde_json::from_str::<Map<String, Value>>(raw).ok()?;
        return Some((name, arguments));
    }
    let content: Value = serde_json::from_str(message.get("content")?.as_str()?).ok()?;
    let name = content.get("tool")?.as_str()?.to_owned();
    let arguments = content
        .get("arguments")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    Some((name, arguments))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_menu_and_the_calls_of_a_json_schema_request() {
        let request = json!({
            "messages": [
                {"role": "system", "content": "You answer"},
                {"role": "user", "content": "last 2 purchases of BOB@example.com's?"},
                {"role": "assistant", "content": "{\"tool\":\"user__lookup\",\"arguments\":{\"email\":\"BOB@example.com\"}}"},
                {"role": "user", "content": "Result of user__lookup: {\"userId\":\"u-1\",\"name\":\"Bob\"}"},
            ],
            "response_format": {"type": "json_schema", "json_schema": {"schema": {"anyOf": [
                {"properties": {"tool": {"enum": ["payment__list"]}, "arguments": {"properties": {
                    "userId": {"enum": ["u-1", "Bob"]},
                    "count": {"anyOf": [{"enum": [2]}, {"type": "null"}]}},
                    "required": ["userId", "count"]}}},
                {"properties": {"tool": {"enum": ["done"]}}},
            ]}}},
        });
        let turn = Turn::read(request.to_string().as_bytes()).unwrap();
        assert!(!turn.tools_mode);
        assert_eq!(turn.addresses(), ["BOB@example.com"]);
        assert_eq!(turn.count(), Some(2));
        assert!(!turn.asks_for_id());
        assert_eq!(turn.offers.len(), 1);
        let inputs = &turn.offers[0].inputs;
        assert_eq!(
            (inputs[0].name.as_str(), inputs[0].optional),
            ("count", true)
        );
        assert_eq!(inputs[0].kind(), Kind::Number);
        assert_eq!((inputs[1].kind(), inputs[1].optional), (Kind::Text, false));
        assert_eq!(turn.past.len(), 1);
        assert!(turn.past[0].took("bob@example.com"));
        assert_eq!(turn.past[0].user_id().as_deref(), Some("u-1"));
    }

    #[test]
    fn a_count_is_a_number_before_a_transaction_noun() {
        let count = |question: &str| {
            Turn {
                question: question.into(),
                ..Turn::default()
            }
            .count()
        };
        assert_eq!(
            count("the 3 most recent payments of a2@b.c in 2023"),
            Some(3)
        );
        assert_eq!(count("last 12 purchases of a@b.c?"), Some(12));
        assert_eq!(count("transactions of a7@b.c in 2023 over 500"), None);
        assert_eq!(count("the oldest 2 transactions of a@b.c"), None);
    }

    #[test]
    fn reads_the_tools_and_native_calls_of_a_tools_request() {
        let request = json!({
            "messages": [
                {"role": "system", "content": "You answer"},
                {"role": "user", "content": "What is the user id of a@b.c"},
                {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "user__lookup", "arguments": "{\"email\":\"a@b.c\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "error: not found"},
            ],
            "tools": [
                {"type": "function", "function": {"name": "user__lookup", "parameters": {
                    "properties": {"email": {"enum": ["a@b.c"]}}, "required": ["email"]}}},
                {"type": "function", "function": {"name": "done", "parameters": {}}},
            ],
        });
        let turn = Turn::read(request.to_string().as_bytes()).unwrap();
        assert!(turn.tools_mode && turn.asks_for_id());
        assert_eq!(turn.offers[0].inputs[0].kind(), Kind::Email);
        assert_eq!(turn.past[0].result, "error: not found");
        assert_eq!(turn.past[0].user_id(), None);
        assert!(Turn::read(b"{}").is_err());
        assert!(Turn::read(b"not json").is_err());
    }
}
