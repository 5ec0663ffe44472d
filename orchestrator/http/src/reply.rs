//! One parse for a server's answer to `tools/call`.
//!
//! rmcp reads every server message as its untagged `JsonRpcMessage`, and a
//! result as its untagged `ServerResult`: serde buffers the message, then
//! tries each shape and each of the result's seventeen types in turn until
//! one fits. A tool's answer is the fifteenth, so it is buffered and cloned
//! about fifteen times. In the simulation under load that was a fifth of
//! all the CPU time.
//!
//! A client knows which of its requests a reply answers, so the answer to a
//! `tools/call` can be read as a `CallToolResult` at once. [`decode`] does
//! that, and only when the answer is plainly one: a `result` whose keys are
//! all `CallToolResult` fields. Anything else (requests and notifications
//! from the server, errors, other results, odd shapes) goes through rmcp's
//! own parse, unchanged, so the two always agree (tested below).

use rmcp::model::{CallToolResult, RequestId, ServerJsonRpcMessage, ServerResult};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

/// Reads one server message. `answers_tool_call` says whether a reply with
/// this id answers a `tools/call` of ours; it is asked only about replies.
pub fn decode(
    bytes: &[u8],
    answers_tool_call: impl FnOnce(&RequestId) -> bool,
) -> serde_json::Result<ServerJsonRpcMessage> {
    if let Some(message) = tool_answer(bytes, answers_tool_call) {
        return Ok(message);
    }
    serde_json::from_slice(bytes)
}

/// The top-level members that tell a reply from the rest.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<&'a RawValue>,
    id: Option<RequestId>,
    method: Option<IgnoredAny>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    error: Option<IgnoredAny>,
}

/// The members a `CallToolResult` may have; any other key sends the
/// message to rmcp's parse, which may read it as another result type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ToolAnswerKeys {
    #[serde(rename = "resultType")]
    _result_type: Option<IgnoredAny>,
    #[serde(rename = "content")]
    _content: Option<IgnoredAny>,
    #[serde(rename = "structuredContent")]
    _structured_content: Option<IgnoredAny>,
    #[serde(rename = "isError")]
    _is_error: Option<IgnoredAny>,
    #[serde(rename = "_meta")]
    _meta: Option<IgnoredAny>,
}

fn tool_answer(
    bytes: &[u8],
    answers_tool_call: impl FnOnce(&RequestId) -> bool,
) -> Option<ServerJsonRpcMessage> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).ok()?;
    let is_reply = envelope.method.is_none() && envelope.error.is_none();
    if !is_reply || envelope.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
        return None;
    }
    let (id, result) = (envelope.id?, envelope.result?);
    if !answers_tool_call(&id) {
        return None;
    }
    serde_json::from_str::<ToolAnswerKeys>(result.get()).ok()?;
    let answer: CallToolResult = serde_json::from_str(result.get()).ok()?;
    Some(ServerJsonRpcMessage::response(
        ServerResult::CallToolResult(answer),
        id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(bytes: &str) -> serde_json::Result<ServerJsonRpcMessage> {
        serde_json::from_str(bytes)
    }

    fn fast(bytes: &str) -> Option<ServerJsonRpcMessage> {
        tool_answer(bytes.as_bytes(), |_| true)
    }

    /// rmcp's result enum has no `PartialEq`; its `Debug` names the variant
    /// and every field.
    fn same(ours: &ServerJsonRpcMessage, theirs: &ServerJsonRpcMessage) -> bool {
        format!("{ours:?}") == format!("{theirs:?}")
    }

    /// Tool answers as the reference servers and others write them.
    const TOOL_ANSWERS: &[&str] = &[
        r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"[{\"amount\":\"£50\"}]"}],"isError":false}}"#,
        r#"{"jsonrpc":"2.0","id":"a-1","result":{"content":[{"type":"text","text":"user-1"}],"structuredContent":{"userId":"user-1"}}}"#,
        r#"{"jsonrpc":"2.0","id":4,"result":{"content":[],"isError":true,"_meta":{"k":1}}}"#,
        r#"{"jsonrpc":"2.0","id":5,"result":{"resultType":"complete","content":[{"type":"text","text":"x"}]}}"#,
        r#"{"result":{"isError":true},"id":6,"jsonrpc":"2.0"}"#,
        r#"{"jsonrpc":"2.0","id":7,"result":{"structuredContent":null}}"#,
    ];

    #[test]
    fn a_tool_answer_is_read_at_once_and_equals_rmcps_reading() {
        for answer in TOOL_ANSWERS {
            let fast = fast(answer).unwrap_or_else(|| panic!("not read at once: {answer}"));
            assert!(same(&fast, &generic(answer).unwrap()), "{answer}");
        }
    }

    #[test]
    fn what_is_not_plainly_a_tool_answer_goes_to_rmcps_parse() {
        for message in [
            // Not replies: requests, notifications, errors.
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}"#,
            // Both `result` and `error`: rmcp refuses it.
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]},"error":{"code":1,"message":"m"}}"#,
            // Another result type, or a key no CallToolResult has.
            r#"{"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"t"},"content":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"content":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","content":[]}}"#,
            // Not JSON-RPC 2.0, no id, a result that is not an object.
            r#"{"jsonrpc":"1.0","id":1,"result":{"content":[]}}"#,
            r#"{"jsonrpc":"2.0","result":{"content":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":"not a list"}}"#,
            "not json",
        ] {
            assert!(fast(message).is_none(), "{message}");
            let decoded = decode(message.as_bytes(), |_| true);
            match (decoded, generic(message)) {
                (Ok(ours), Ok(theirs)) => assert!(same(&ours, &theirs), "{message}"),
                (Err(ours), Err(theirs)) => assert_eq!(ours.to_string(), theirs.to_string()),
                (ours, theirs) => panic!("{message}: {ours:?} against {theirs:?}"),
            }
        }
    }

    #[test]
    fn a_reply_to_anything_but_a_tool_call_goes_to_rmcps_parse() {
        let answer = TOOL_ANSWERS[0];
        let mut asked = None;
        assert!(
            tool_answer(answer.as_bytes(), |id| {
                asked = Some(id.clone());
                false
            })
            .is_none()
        );
        assert_eq!(asked, Some(RequestId::Number(3)));
        let decoded = decode(answer.as_bytes(), |_| false).unwrap();
        assert!(same(&decoded, &generic(answer).unwrap()));
    }
}
