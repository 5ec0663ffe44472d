//! Tools driven by their own schemas: calls with arguments valid under
//! `inputSchema` and ones wrong in exactly one way; `structuredContent`
//! against `outputSchema`; read-only tools asked the same thing twice.

use proptest::{
    collection::vec,
    prelude::*,
    strategy::{BoxedStrategy, Union},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Finding, INVALID_CALL, OUTPUT_SCHEMA, READ_ONLY_REPEAT, VALID_CALL, clip};
use crate::{
    run::{CaseOutcome, Live, Property},
    schema::Schema,
    session::Session,
};

/// Most calls in one case.
const CALLS_MAX: usize = 4;

/// A tool as `tools/list` described it, with its schemas compiled.
#[derive(Debug, Clone)]
pub(crate) struct Tool {
    pub name: String,
    pub input: Schema,
    pub output: Option<Schema>,
    pub read_only: bool,
}

impl Tool {
    /// Reads one entry of `tools/list`; the error says what is wrong with it.
    pub(crate) fn read(entry: &Value) -> Result<Tool, String> {
        let name = entry["name"]
            .as_str()
            .ok_or_else(|| format!("a tool has no name: {}", clip(&entry.to_string(), 200)))?;
        let input = &entry["inputSchema"];
        if input["type"] != "object" {
            return Err(format!(
                "tool {name:?}: inputSchema is not an object schema: {}",
                clip(&input.to_string(), 200)
            ));
        }
        let compile = |schema: &Value, which: &str| {
            Schema::compile(schema)
                .map_err(|e| format!("tool {name:?}: {which} is not a valid JSON Schema: {e}"))
        };
        let output = match entry.get("outputSchema") {
            None | Some(Value::Null) => None,
            Some(schema) => Some(compile(schema, "outputSchema")?),
        };
        Ok(Tool {
            name: name.to_owned(),
            input: compile(input, "inputSchema")?,
            output,
            read_only: entry["annotations"]["readOnlyHint"] == true,
        })
    }
}

/// One generated call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Call {
    pub tool: String,
    pub arguments: Value,
    /// Whether the arguments are valid under the tool's `inputSchema`.
    pub valid: bool,
    /// Whether to make the same call again (read-only tools).
    pub twice: bool,
}

/// Calls to the tools the probe may call.
#[derive(Debug)]
pub(crate) struct ToolCalls {
    pub tools: Vec<Tool>,
}

impl ToolCalls {
    /// The tools that may be called: the read-only ones, or all of them
    /// with `allow_writes`.
    pub(crate) fn callable(tools: &[Tool], allow_writes: bool) -> ToolCalls {
        let tools = tools
            .iter()
            .filter(|t| allow_writes || t.read_only)
            .cloned()
            .collect();
        ToolCalls { tools }
    }

    fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }
}

fn calls_of(tool: &Tool) -> BoxedStrategy<Call> {
    let call = |valid: bool| {
        let name = tool.name.clone();
        let twice = tool.read_only && valid;
        move |(arguments, again): (Value, bool)| Call {
            tool: name.clone(),
            arguments,
            valid,
            twice: twice && again,
        }
    };
    let valid = (tool.input.valid(), any::<bool>()).prop_map(call(true));
    match tool.input.invalid() {
        Some(invalid) => {
            prop_oneof![2 => valid, 1 => (invalid, Just(false)).prop_map(call(false))].boxed()
        }
        None => valid.boxed(),
    }
}

impl Property for ToolCalls {
    type Case = Vec<Call>;

    fn name(&self) -> &'static str {
        "tool-calls"
    }

    fn strategy(&self) -> BoxedStrategy<Vec<Call>> {
        let each: Vec<BoxedStrategy<Call>> = self.tools.iter().map(calls_of).collect();
        vec(Union::new(each), 1..=CALLS_MAX).boxed()
    }

    async fn run(&self, live: &mut Live<'_>, case: &Vec<Call>) -> CaseOutcome {
        let session = match live.session().await {
            Ok(session) => session,
            Err(error) => return CaseOutcome::unopened(&error),
        };
        let mut outcome = CaseOutcome::default();
        for call in case {
            let Some(tool) = self.tool(&call.tool) else {
                outcome.find(Finding::new(
                    &VALID_CALL,
                    format!("the server no longer lists tool {:?}", call.tool),
                ));
                return outcome;
            };
            if let Err(error) = one_call(session, tool, call, &mut outcome).await {
                outcome.broke(format!("tools/call {}", call.tool), &error);
                return outcome;
            }
        }
        outcome
    }
}

async fn one_call(
    session: &mut Session,
    tool: &Tool,
    call: &Call,
    outcome: &mut CaseOutcome,
) -> Result<(), crate::target::LinkError> {
    let answer = send(session, call, outcome).await?;
    let finding = if call.valid {
        judge_valid(tool, &answer)
    } else {
        judge_invalid(&answer)
    };
    if let Some(finding) = finding {
        outcome.find(finding.with(outcome.steps.clone()));
        return Ok(());
    }
    if call.twice {
        let again = send(session, call, outcome).await?;
        if without_meta(&again) != without_meta(&answer) {
            let detail = format!(
                "a read-only tool answered the same call two ways: {} then {}",
                clip(&answer["result"].to_string(), 200),
                clip(&again["result"].to_string(), 200)
            );
            outcome.find(Finding::new(&READ_ONLY_REPEAT, detail).with(outcome.steps.clone()));
        }
    }
    Ok(())
}

async fn send(
    session: &mut Session,
    call: &Call,
    outcome: &mut CaseOutcome,
) -> Result<Value, crate::target::LinkError> {
    let params = json!({"name": call.tool, "arguments": call.arguments});
    let (answer, step) = super::lifecycle::ask(session, "tools/call", params).await?;
    outcome.steps.push(step);
    Ok(answer)
}

/// A valid call gets a result with content; a successful one with an
/// outputSchema carries structuredContent that validates.
fn judge_valid(tool: &Tool, answer: &Value) -> Option<Finding> {
    let shown = || clip(&answer.to_string(), 300);
    let Some(result) = answer.get("result") else {
        return Some(Finding::new(
            &VALID_CALL,
            format!(
                "a call with valid arguments got a protocol error: {}",
                shown()
            ),
        ));
    };
    if !result["content"].is_array() && result.get("structuredContent").is_none() {
        return Some(Finding::new(
            &VALID_CALL,
            format!("a call result has no content: {}", shown()),
        ));
    }
    let schema = tool.output.as_ref().filter(|_| result["isError"] != true)?;
    let Some(structured) = result.get("structuredContent") else {
        return Some(Finding::new(
            &OUTPUT_SCHEMA,
            format!(
                "tool {:?} has an outputSchema but its result has no structuredContent",
                tool.name
            ),
        ));
    };
    let why = schema.why_not(structured)?;
    Some(Finding::new(
        &OUTPUT_SCHEMA,
        format!(
            "structuredContent of {:?} breaks its outputSchema: {why}",
            tool.name
        ),
    ))
}

/// An invalid call is refused: a result with isError, or error -32602.
fn judge_invalid(answer: &Value) -> Option<Finding> {
    let refused = answer["result"]["isError"] == true || answer["error"]["code"] == -32602;
    (!refused).then(|| {
        Finding::new(
            &INVALID_CALL,
            format!(
                "a call with invalid arguments got {}",
                clip(&answer.to_string(), 300)
            ),
        )
    })
}

fn without_meta(answer: &Value) -> Value {
    let mut result = answer
        .get("result")
        .cloned()
        .unwrap_or_else(|| answer["error"].clone());
    if let Some(object) = result.as_object_mut() {
        object.remove("_meta");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> Tool {
        Tool::read(&json!({"name": "getTransactions",
            "inputSchema": {"type": "object", "properties": {"userId": {"type": "string"}}, "required": ["userId"]},
            "outputSchema": {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]},
            "annotations": {"readOnlyHint": true}}))
        .unwrap()
    }

    #[test]
    fn structured_content_is_validated_against_the_output_schema() {
        let tool = tool();
        let ok = json!({"result": {"content": [], "structuredContent": {"amount": 5}}});
        assert!(judge_valid(&tool, &ok).is_none());
        let bad = json!({"result": {"content": [], "structuredContent": {"amount": "5"}}});
        assert_eq!(
            judge_valid(&tool, &bad).unwrap().check.id,
            "tools.output-schema"
        );
        let refused = json!({"result": {"content": [], "isError": true}});
        assert!(
            judge_valid(&tool, &refused).is_none(),
            "an error result needs no structuredContent"
        );
        let protocol = json!({"error": {"code": -32602, "message": "x"}});
        assert_eq!(
            judge_valid(&tool, &protocol).unwrap().check.id,
            "tools.valid-call"
        );
    }

    #[test]
    fn an_invalid_call_must_be_refused() {
        assert!(judge_invalid(&json!({"error": {"code": -32602, "message": "x"}})).is_none());
        assert!(judge_invalid(&json!({"result": {"isError": true, "content": []}})).is_none());
        assert!(judge_invalid(&json!({"error": {"code": -32603, "message": "x"}})).is_some());
        assert!(judge_invalid(&json!({"result": {"content": []}})).is_some());
    }

    #[test]
    fn only_read_only_tools_are_callable_without_allow_writes() {
        let mut writer = tool();
        writer.name = "addNote".into();
        writer.read_only = false;
        let tools = [tool(), writer];
        assert_eq!(ToolCalls::callable(&tools, false).tools.len(), 1);
        assert_eq!(ToolCalls::callable(&tools, true).tools.len(), 2);
    }

    #[test]
    fn a_tool_without_an_object_input_schema_is_refused_with_its_name() {
        let error =
            Tool::read(&json!({"name": "x", "inputSchema": {"type": "string"}})).unwrap_err();
        assert!(error.contains("\"x\""), "{error}");
    }
}
