//! One question's conversation with the model: the messages so far, the
//! request for the next turn (with the menu of grounded calls), and the
//! guards that read the model's reply into a [`Decision`].

use rmcp::model::CallToolResult;
use serde_json::{Map, Value, json};

use super::{
    LlmError, LlmMode, LlmSettings,
    chat::{ChatRequest, FunctionCall, Message, Reply, ToolCall},
    menu::{self, DONE, Facts, Made, Offer},
};
use crate::catalog::Catalog;

/// Longest tool result shown to the model, in characters.
const RESULT_CHARS_MAX: usize = 4000;
/// Most tokens the model may spend on one step.
const STEP_TOKENS_MAX: u32 = 512;

/// What the model chose this turn, after the guards.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Call catalog entry `entry` with these (grounded) arguments.
    Call {
        entry: usize,
        arguments: Map<String, Value>,
    },
    /// The results so far answer the question.
    Done,
}

/// The state of one question.
#[derive(Debug)]
pub(crate) struct Conversation<'a> {
    catalog: &'a Catalog,
    settings: &'a LlmSettings,
    names: Vec<String>,
    pub(crate) facts: Facts,
    pub(crate) made: Vec<Made>,
    messages: Vec<Message>,
    offers: Vec<Offer>,
    /// Model turns taken.
    pub(crate) turn: u32,
}

impl<'a> Conversation<'a> {
    pub(crate) fn new(question: &str, catalog: &'a Catalog, settings: &'a LlmSettings) -> Self {
        let names = menu::function_names(catalog);
        let messages = vec![
            Message::text(
                "system",
                system_prompt(
                    catalog,
                    &names,
                    &Facts::of_question(question),
                    settings.mode,
                ),
            ),
            Message::text("user", question),
        ];
        Self {
            catalog,
            settings,
            names,
            facts: Facts::of_question(question),
            made: Vec::new(),
            messages,
            offers: Vec::new(),
            turn: 0,
        }
    }

    /// The request for the next turn, with the calls that can be grounded
    /// now; `None` when nothing is left to call (the model is not asked to
    /// say done when done is all it could say).
    pub(crate) fn next_request(&mut self) -> Option<ChatRequest> {
        self.offers = menu::offers(self.catalog, &self.names, &self.facts, &self.made);
        if self.offers.is_empty() {
            return None;
        }
        self.turn += 1;
        // Before any result there is nothing that could answer the question.
        let done_allowed = !self.made.is_empty();
        let mut request = ChatRequest {
            model: self.settings.model.clone(),
            messages: self.messages.clone(),
            temperature: 0.0,
            seed: 1,
            max_tokens: STEP_TOKENS_MAX,
            response_format: None,
            tools: None,
            tool_choice: None,
        };
        match self.settings.mode {
            LlmMode::JsonSchema => {
                let schema = menu::step_schema(&self.offers, done_allowed);
                request.response_format = Some(json!({
                    "type": "json_schema",
                    "json_schema": {"name": "next_step", "schema": schema},
                }));
            }
            LlmMode::Tools => {
                let tools = menu::tool_functions(&self.offers, self.catalog, done_allowed);
                request.tools = Some(tools);
                request.tool_choice = Some(json!("required"));
            }
        }
        Some(request)
    }

    /// The model's reply as a decision, if every guard passes.
    pub(crate) fn decide(&self, reply: &Reply) -> Result<Decision, LlmError> {
        let (name, arguments) = self.proposal(reply)?;
        if name == DONE {
            return Ok(Decision::Done);
        }
        let entry =
            self.names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| LlmError::UnknownTool {
                    turn: self.turn,
                    name: name.clone(),
                })?;
        let arguments = match self.offers.iter().find(|o| o.entry == entry) {
            // A tool named alone: the arguments it can only take.
            Some(offer) if arguments.is_empty() => offer.determined().unwrap_or(arguments),
            _ => arguments,
        };
        let arguments = self.guarded(entry, arguments)?;
        Ok(Decision::Call { entry, arguments })
    }

    /// The tool name and arguments the reply proposes.
    fn proposal(&self, reply: &Reply) -> Result<(String, Map<String, Value>), LlmError> {
        let malformed = |detail: String| LlmError::Malformed {
            turn: self.turn,
            detail,
        };
        match self.settings.mode {
            LlmMode::Tools => match reply.tool_calls.first() {
                // Text and no call: the model has nothing more to call.
                None => Ok((DONE.to_owned(), Map::new())),
                Some((_, name, arguments)) => {
                    let arguments = if arguments.trim().is_empty() {
                        Map::new()
                    } else {
                        parse_object(arguments).map_err(malformed)?
                    };
                    Ok((name.clone(), arguments))
                }
            },
            LlmMode::JsonSchema => {
                let text = reply.content.as_deref().unwrap_or("");
                let mut step = parse_object(text).map_err(malformed)?;
                let name = match step.remove("tool") {
                    Some(Value::String(name)) => name,
                    _ => return Err(malformed(format!("no \"tool\" in {}", clip(text, 200)))),
                };
                let arguments = match step.remove("arguments") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(arguments)) => arguments,
                    Some(_) => return Err(malformed("\"arguments\" is not an object".into())),
                };
                Ok((name, arguments))
            }
        }
    }

    /// The arguments, nulls dropped, if they validate against the tool's
    /// input schema, every value is grounded, and the call is new.
    fn guarded(
        &self,
        entry: usize,
        mut arguments: Map<String, Value>,
    ) -> Result<Map<String, Value>, LlmError> {
        let tool = self.catalog.entries()[entry].qualified_name();
        arguments.retain(|_, v| !v.is_null());
        let schema = Value::Object(
            self.catalog.entries()[entry]
                .tool
                .input_schema
                .as_ref()
                .clone(),
        );
        let invalid = |detail: String| LlmError::Invalid {
            turn: self.turn,
            tool: tool.clone(),
            detail,
        };
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| invalid(format!("its input schema is not usable: {e}")))?;
        let arguments_value = Value::Object(arguments.clone());
        if let Some(error) = validator.iter_errors(&arguments_value).next() {
            return Err(invalid(error.to_string()));
        }
        let grounded = self.grounded(&tool, entry, arguments)?;
        if self
            .made
            .iter()
            .any(|m| m.entry == entry && m.arguments == grounded)
        {
            return Err(LlmError::Repeated {
                turn: self.turn,
                tool,
            });
        }
        Ok(grounded)
    }

    /// Every argument replaced by the fact it matches, or the first that
    /// matches none.
    fn grounded(
        &self,
        tool: &str,
        entry: usize,
        arguments: Map<String, Value>,
    ) -> Result<Map<String, Value>, LlmError> {
        let schema = &self.catalog.entries()[entry].tool.input_schema;
        let properties = schema.get("properties").and_then(Value::as_object);
        let required = menu::required_of(schema);
        let mut grounded = Map::new();
        for (name, value) in arguments {
            let property = properties
                .and_then(|p| p.get(&name))
                .unwrap_or(&Value::Null);
            let slot = menu::slot_of(&name, property);
            let is_required = required.contains(&name.as_str());
            let fact = menu::ground_input(&name, property, is_required, &self.facts, &value)
                .ok_or_else(|| LlmError::Ungrounded {
                    turn: self.turn,
                    tool: tool.to_owned(),
                    argument: name.clone(),
                    value: clip(&value.to_string(), 80),
                    from_question: slot == menu::Slot::Email,
                })?;
            grounded.insert(name, fact);
        }
        Ok(grounded)
    }

    /// Records a call and its result, for the model's next turn and the
    /// answer.
    pub(crate) fn record(
        &mut self,
        entry: usize,
        arguments: Map<String, Value>,
        reply: &CallToolResult,
    ) {
        let name = self.names[entry].clone();
        let shown = result_text(reply);
        match self.settings.mode {
            LlmMode::JsonSchema => {
                // Compact, "tool" first, as the example writes calls.
                let step = format!(
                    r#"{{"tool":{},"arguments":{}}}"#,
                    Value::String(name.clone()),
                    Value::Object(arguments.clone())
                );
                self.messages.push(Message::text("assistant", step));
                self.messages
                    .push(Message::text("user", format!("Result of {name}: {shown}")));
            }
            LlmMode::Tools => {
                let id = format!("call_{}", self.made.len() + 1);
                self.messages.push(Message {
                    role: "assistant",
                    content: None,
                    tool_calls: Some(vec![ToolCall {
                        id: id.clone(),
                        kind: "function".into(),
                        function: FunctionCall {
                            name,
                            arguments: Value::Object(arguments.clone()).to_string(),
                        },
                    }]),
                    tool_call_id: None,
                });
                self.messages.push(Message {
                    role: "tool",
                    content: Some(shown),
                    tool_calls: None,
                    tool_call_id: Some(id),
                });
            }
        }
        self.facts.add_result(self.made.len(), reply);
        self.made.push(Made { entry, arguments });
    }
}

fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(format!("not a JSON object: {}", clip(text, 200))),
        Err(e) => Err(format!("not JSON ({e}): {}", clip(text, 200))),
    }
}

fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(chars).collect();
    clipped.push('…');
    clipped
}

/// A result as the model sees it: the error's message, or the result's JSON.
/// It is the result's text content, as MCP hosts show results to models
/// (structured content is for programs; shown a lookup's `{email, name,
/// userId}`, SmolLM2 took the address it had asked about for an answer and
/// stopped), else its structured content as JSON.
fn result_text(reply: &CallToolResult) -> String {
    let text = match crate::answer::first_text(reply) {
        Ok(text) => text.trim().to_owned(),
        Err(_) => menu::result_value(reply).unwrap_or(Value::Null).to_string(),
    };
    let text = clip(&text, RESULT_CHARS_MAX);
    if reply.is_error == Some(true) {
        format!("error: {text}")
    } else {
        text
    }
}

/// What the model is told once: its job, the tools, and a worked example
/// of chaining them on tools it does not have. The wording and the example
/// were measured with SmolLM2-135M (see `ci/llm-check.sh`): without the
/// example, or with `{"tool":"done"}` quoted, it stops after the first call.
fn system_prompt(catalog: &Catalog, names: &[String], facts: &Facts, mode: LlmMode) -> String {
    let mut prompt =
        String::from("You answer questions by calling tools, one call per reply.\nTools:");
    for index in chain_order(catalog, names, facts) {
        let (entry, name) = (&catalog.entries()[index], &names[index]);
        let description = entry.tool.description.as_deref().unwrap_or("");
        let description = description.split_whitespace().collect::<Vec<_>>().join(" ");
        prompt.push_str(&format!("\n- {name}: {description}"));
    }
    prompt.push_str(EXAMPLE);
    if mode == LlmMode::JsonSchema {
        prompt.push_str("Reply with the next tool call as JSON. ");
    }
    prompt.push_str("Reply done only when the results contain what the question asks for.");
    prompt
}

/// The catalog's indices, the tools the question alone can call first:
/// tools read in the order they chain. (SmolLM2 chose the next step by the
/// order it read the tools in.)
fn chain_order(catalog: &Catalog, names: &[String], facts: &Facts) -> Vec<usize> {
    let first = menu::offers(catalog, names, facts, &[]);
    let (mut order, rest): (Vec<usize>, Vec<usize>) =
        (0..catalog.entries().len()).partition(|i| first.iter().any(|o| o.entry == *i));
    order.extend(rest);
    order
}

/// Two tools nobody has, chained, and stopped at the right point.
const EXAMPLE: &str = r#"

Example. Tools: geo__getCityIdByName(name), weather__getForecastUsingCityId(cityId).
Question: Will it rain in Paris tomorrow?
You: {"tool":"geo__getCityIdByName","arguments":{"name":"Paris"}}
Result of geo__getCityIdByName: {"cityId":"c-17"}
You: {"tool":"weather__getForecastUsingCityId","arguments":{"cityId":"c-17"}}
Result of weather__getForecastUsingCityId: {"forecast":"rain"}
You: {"tool":"done"}
Question: What is the city id of Paris?
You: {"tool":"geo__getCityIdByName","arguments":{"name":"Paris"}}
Result of geo__getCityIdByName: {"cityId":"c-17"}
You: {"tool":"done"}
Question: how wet will it be in Oslo this week
You: {"tool":"geo__getCityIdByName","arguments":{"name":"Oslo"}}
Result of geo__getCityIdByName: {"cityId":"c-4"}
You: {"tool":"weather__getForecastUsingCityId","arguments":{"cityId":"c-4"}}
Result of weather__getForecastUsingCityId: {"forecast":"rain"}
You: {"tool":"done"}

An id is only a means to look other things up: if the question asks for more than an id, call the tool that uses the id.
"#;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::model::Tool;

    use super::*;

    fn catalog() -> Catalog {
        let lookup = Tool::new(
            "getUserIdByEmail",
            "Look up a user id by email",
            Arc::new(
                json!({"type":"object","properties":{"email":{"type":"string"}},"required":["email"]})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        );
        let list = Tool::new(
            "getTransactionsUsingUserId",
            "List a user's transactions",
            Arc::new(
                json!({"type":"object","properties":{"userId":{"type":"string"},"count":{"type":"integer","minimum":1}},"required":["userId"]})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        );
        Catalog::new([
            ("user".to_owned(), vec![lookup]),
            ("payment".to_owned(), vec![list]),
        ])
    }

    fn json_reply(step: Value) -> Reply {
        Reply {
            content: Some(step.to_string()),
            tool_calls: vec![],
        }
    }

    fn settings(mode: LlmMode) -> LlmSettings {
        LlmSettings {
            mode,
            ..LlmSettings::new("http://m/v1", "m")
        }
    }

    #[test]
    fn guards_refuse_what_the_question_and_results_do_not_ground() {
        let catalog = catalog();
        let settings = settings(LlmMode::JsonSchema);
        let mut chat = Conversation::new("transactions for bob@example.com", &catalog, &settings);
        chat.next_request().expect("the lookup is offered");
        let lookup =
            json!({"tool": "user__getUserIdByEmail", "arguments": {"email": "eve@example.com"}});
        assert!(matches!(
            chat.decide(&json_reply(lookup)),
            Err(LlmError::Ungrounded {
                from_question: true,
                ..
            })
        ));
        let early =
            json!({"tool": "payment__getTransactionsUsingUserId", "arguments": {"userId": "u-1"}});
        assert!(matches!(
            chat.decide(&json_reply(early.clone())),
            Err(LlmError::Ungrounded {
                from_question: false,
                ..
            })
        ));
        let typed =
            json!({"tool": "payment__getTransactionsUsingUserId", "arguments": {"userId": 7}});
        assert!(matches!(
            chat.decide(&json_reply(typed)),
            Err(LlmError::Invalid { .. })
        ));
        let unknown = json!({"tool": "payment__refund", "arguments": {}});
        assert!(matches!(
            chat.decide(&json_reply(unknown)),
            Err(LlmError::UnknownTool { .. })
        ));
        let not_json = Reply {
            content: Some("I think you should".into()),
            tool_calls: vec![],
        };
        assert!(matches!(
            chat.decide(&not_json),
            Err(LlmError::Malformed { .. })
        ));

        let ok =
            json!({"tool": "user__getUserIdByEmail", "arguments": {"email": "BOB@example.com"}});
        let Ok(Decision::Call { entry, arguments }) = chat.decide(&json_reply(ok)) else {
            panic!("a grounded lookup is a call");
        };
        assert_eq!(
            arguments["email"], "bob@example.com",
            "the question's spelling"
        );
        chat.record(
            entry,
            arguments.clone(),
            &CallToolResult::structured(json!({"userId": "u-1"})),
        );
        chat.next_request();
        assert!(matches!(
            chat.decide(&json_reply(
                json!({"tool": "user__getUserIdByEmail", "arguments": arguments})
            )),
            Err(LlmError::Repeated { .. })
        ));
        assert!(matches!(
            chat.decide(&json_reply(early)),
            Ok(Decision::Call { .. })
        ));
        assert_eq!(
            chat.decide(&json_reply(json!({"tool": "done"}))).unwrap(),
            Decision::Done
        );
    }

    #[test]
    fn tools_mode_reads_native_calls_and_text_as_done() {
        let catalog = catalog();
        let settings = settings(LlmMode::Tools);
        let mut chat = Conversation::new("transactions for bob@example.com", &catalog, &settings);
        let request = chat.next_request().expect("the lookup is offered");
        let tools = request.tools.unwrap();
        assert_eq!(
            tools.len(),
            1,
            "the lookup, and no done before a call: {tools:?}"
        );
        let call = Reply {
            content: None,
            tool_calls: vec![(
                "c".into(),
                "user__getUserIdByEmail".into(),
                r#"{"email":"bob@example.com"}"#.into(),
            )],
        };
        assert!(matches!(chat.decide(&call), Ok(Decision::Call { .. })));
        let text = Reply {
            content: Some("Bob has spent £345.".into()),
            tool_calls: vec![],
        };
        assert_eq!(chat.decide(&text).unwrap(), Decision::Done);
    }

    #[test]
    fn a_tool_named_alone_takes_its_only_arguments_and_nothing_left_ends_the_turns() {
        let catalog = catalog();
        let settings = settings(LlmMode::JsonSchema);
        let mut chat = Conversation::new("transactions for bob@example.com", &catalog, &settings);
        chat.next_request().unwrap();
        let named = json_reply(json!({"tool": "user__getUserIdByEmail"}));
        let Ok(Decision::Call { entry, arguments }) = chat.decide(&named) else {
            panic!("a determined call");
        };
        assert_eq!(
            Value::Object(arguments.clone()),
            json!({"email": "bob@example.com"})
        );
        chat.record(
            entry,
            arguments,
            &CallToolResult::structured(json!({"userId": "u-1"})),
        );
        let list =
            json!({"tool": "payment__getTransactionsUsingUserId", "arguments": {"userId": "u-1"}});
        chat.next_request().unwrap();
        let Ok(Decision::Call { entry, arguments }) = chat.decide(&json_reply(list)) else {
            panic!("the listing");
        };
        chat.record(
            entry,
            arguments,
            &CallToolResult::structured(json!({"transactions": []})),
        );
        assert!(chat.next_request().is_none(), "only done is left");
        assert_eq!(chat.turn, 2);
    }
}
