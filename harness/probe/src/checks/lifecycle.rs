//! Lifecycle: the handshake, version negotiation, ping, cancellation,
//! `tools/list` with its cursors, and unknown tools; and the generated
//! property of requests sent before `initialize`.

use proptest::{
    collection::vec,
    strategy::{BoxedStrategy, Strategy},
};
use serde_json::{Value, json};

use super::{
    BEFORE_INITIALIZE, CANCEL_UNKNOWN, CURSOR_INVALID, Finding, INITIALIZE, Ledger, PING, Step,
    TOOLS_LIST, TOOLS_UNIQUE, UNKNOWN_TOOL, UNKNOWN_TOOL_CODE, VERSION_NEGOTIATION, clip, step,
};
use crate::{
    checks::tools::Tool,
    hostile,
    run::{CaseOutcome, Live, Property},
    session::{Facts, Revision, Session},
    target::{LinkError, Target},
};

/// Most `tools/list` pages followed.
const PAGES_MAX: usize = 64;
/// A version no server offers.
const NO_SUCH_VERSION: &str = "1900-01-01";
const NO_SUCH_TOOL: &str = "mcp-probe-no-such-tool";

/// Sends a request with the session's next id; the answer and its step.
pub(crate) async fn ask(
    session: &mut Session,
    method: &str,
    params: Value,
) -> Result<(Value, Step), LinkError> {
    let id = session.next_id();
    let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let answer = session.call_raw(message.clone()).await?;
    let step = step(&message, &answer);
    Ok((answer, step))
}

/// The handshake's answer has what the spec requires of it.
pub(crate) fn initialize(facts: &Facts, revision: Revision, ledger: &mut Ledger) {
    let mut missing = Vec::new();
    if facts.versions.iter().all(String::is_empty) {
        missing.push("a protocol version");
    }
    if !facts.capabilities.is_object() {
        missing.push("a capabilities object");
    }
    if revision == Revision::Sessions && !facts.server_info["name"].is_string() {
        missing.push("serverInfo with a name");
    }
    let finding = (!missing.is_empty()).then(|| {
        Finding::new(
            &INITIALIZE,
            format!(
                "the {revision} handshake's answer lacks {}",
                missing.join(", ")
            ),
        )
    });
    ledger.check(&INITIALIZE, finding);
}

/// An unsupported version is answered with one the server supports (at
/// 2025-11-25), or refused with an error (at 2026-07-28).
pub(crate) async fn negotiation(
    target: &Target,
    revision: Revision,
    ledger: &mut Ledger,
) -> Result<(), LinkError> {
    let finding = match revision {
        Revision::Sessions => {
            let mut session = Session::raw(target, revision)?;
            let message = Session::initialize_request(json!(0), NO_SUCH_VERSION);
            let answer = session.call_raw(message.clone()).await?;
            let version = answer["result"]["protocolVersion"]
                .as_str()
                .unwrap_or_default();
            let fine = looks_like_version(version) && version != NO_SUCH_VERSION;
            (!fine).then(|| {
                Finding::new(&VERSION_NEGOTIATION, format!("initialize at {NO_SUCH_VERSION} was not answered with a version the server supports: {}", clip(&answer.to_string(), 300)))
                    .with(vec![step(&message, &answer)])
            })
        }
        Revision::Stateless => {
            let mut session = Session::open(target, revision)
                .await
                .map_err(open_as_link)?;
            let params =
                json!({"_meta": {"io.modelcontextprotocol/protocolVersion": NO_SUCH_VERSION}});
            let (answer, step) = ask(&mut session, "tools/list", params).await?;
            answer.get("result").map(|_| {
                Finding::new(
                    &VERSION_NEGOTIATION,
                    format!(
                        "a request at protocol version {NO_SUCH_VERSION} was served, not refused"
                    ),
                )
                .with(vec![step])
            })
        }
    };
    ledger.check(&VERSION_NEGOTIATION, finding);
    Ok(())
}

fn open_as_link(error: crate::session::OpenError) -> LinkError {
    match error {
        crate::session::OpenError::Link(link) => link,
        other => LinkError::Unreachable {
            url: "the server".into(),
            reason: other.to_string(),
        },
    }
}

fn looks_like_version(version: &str) -> bool {
    let bytes = version.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// A ping gets an empty result.
pub(crate) async fn ping(session: &mut Session, ledger: &mut Ledger) -> Result<(), LinkError> {
    if session.revision() == Revision::Stateless {
        ledger.skip(&PING, "2026-07-28 removed ping");
        return Ok(());
    }
    let (answer, step) = ask(session, "ping", json!({})).await?;
    let empty = answer["result"]
        .as_object()
        .is_some_and(|r| r.keys().all(|k| k == "_meta" || k == "resultType"));
    let finding = (!empty).then(|| {
        Finding::new(
            &PING,
            format!("a ping got {}", clip(&answer.to_string(), 300)),
        )
        .with(vec![step])
    });
    ledger.check(&PING, finding);
    Ok(())
}

/// Cancelling a request the server never saw gets no answer.
pub(crate) async fn cancel_unknown(
    session: &mut Session,
    ledger: &mut Ledger,
) -> Result<(), LinkError> {
    let message = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 999_999, "reason": "mcp-probe: a request that was never sent"}});
    let exchange = session.exchange(message.to_string().as_bytes()).await?;
    let finding = exchange.answers.first().map(|answer| {
        Finding::new(
            &CANCEL_UNKNOWN,
            format!(
                "cancelling an unknown request was answered: {}",
                clip(&answer.to_string(), 300)
            ),
        )
        .with(vec![step(&message, answer)])
    });
    ledger.check(&CANCEL_UNKNOWN, finding);
    Ok(())
}

/// Lists the tools, following cursors; then an invalid cursor and an
/// unknown tool. `None` when the server offers no tools.
pub(crate) async fn tools(
    session: &mut Session,
    ledger: &mut Ledger,
) -> Result<Option<Vec<Tool>>, LinkError> {
    if session.facts.capabilities.get("tools").is_none() {
        for check in [
            &TOOLS_LIST,
            &TOOLS_UNIQUE,
            &CURSOR_INVALID,
            &UNKNOWN_TOOL,
            &UNKNOWN_TOOL_CODE,
        ] {
            ledger.skip(check, "the server does not offer the tools capability");
        }
        return Ok(None);
    }
    let tools = list_all(session, ledger).await?;
    unique_names(&tools, ledger);
    invalid_cursor(session, ledger).await?;
    unknown_tool(session, ledger).await?;
    Ok(Some(tools))
}

async fn list_all(session: &mut Session, ledger: &mut Ledger) -> Result<Vec<Tool>, LinkError> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    ledger.ran(&TOOLS_LIST);
    for _ in 0..PAGES_MAX {
        let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
        let (answer, step) = ask(session, "tools/list", params).await?;
        let fail = |detail: String| Finding::new(&TOOLS_LIST, detail).with(vec![step.clone()]);
        let Some(page) = answer["result"]["tools"].as_array() else {
            ledger.found(fail(format!(
                "tools/list got no list of tools: {}",
                clip(&answer.to_string(), 300)
            )));
            return Ok(tools);
        };
        for tool in page {
            match Tool::read(tool) {
                Ok(tool) => tools.push(tool),
                Err(problem) => ledger.found(fail(problem)),
            }
        }
        match answer["result"].get("nextCursor") {
            None | Some(Value::Null) => return Ok(tools),
            Some(Value::String(next)) => cursor = Some(next.clone()),
            Some(other) => {
                ledger.found(fail(format!("nextCursor is not a string: {other}")));
                return Ok(tools);
            }
        }
    }
    ledger.found(Finding::new(
        &TOOLS_LIST,
        format!("tools/list still had a nextCursor after {PAGES_MAX} pages"),
    ));
    Ok(tools)
}

fn unique_names(tools: &[Tool], ledger: &mut Ledger) {
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    let twice = names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
    let finding =
        twice.map(|name| Finding::new(&TOOLS_UNIQUE, format!("two tools are named {name:?}")));
    ledger.check(&TOOLS_UNIQUE, finding);
}

async fn invalid_cursor(session: &mut Session, ledger: &mut Ledger) -> Result<(), LinkError> {
    let (answer, step) = ask(
        session,
        "tools/list",
        json!({"cursor": "mcp-probe: not a cursor"}),
    )
    .await?;
    let code = answer["error"]["code"].as_i64();
    let finding = (code != Some(-32602)).then(|| {
        Finding::new(
            &CURSOR_INVALID,
            format!("an invalid cursor got {}", clip(&answer.to_string(), 300)),
        )
        .with(vec![step])
    });
    ledger.check(&CURSOR_INVALID, finding);
    Ok(())
}

async fn unknown_tool(session: &mut Session, ledger: &mut Ledger) -> Result<(), LinkError> {
    let params = json!({"name": NO_SUCH_TOOL, "arguments": {}});
    let (answer, step) = ask(session, "tools/call", params).await?;
    let code = answer["error"]["code"].as_i64();
    let refused = code.is_some() || answer["result"]["isError"] == true;
    let shown = clip(&answer.to_string(), 300);
    let finding = (!refused).then(|| {
        Finding::new(
            &UNKNOWN_TOOL,
            format!("a call to a tool that does not exist got {shown}"),
        )
        .with(vec![step.clone()])
    });
    ledger.check(&UNKNOWN_TOOL, finding);
    let finding = (refused && code != Some(-32602)).then(|| {
        Finding::new(
            &UNKNOWN_TOOL_CODE,
            format!("a call to a tool that does not exist got {shown}"),
        )
        .with(vec![step])
    });
    ledger.check(&UNKNOWN_TOOL_CODE, finding);
    Ok(())
}

/// Requests before the handshake (over stdio, each case on a fresh
/// process): each gets an answer with its id, and the handshake still
/// works after.
#[derive(Debug)]
pub(crate) struct BeforeInitialize;

/// Most requests sent before the handshake in one case.
const EARLY_MAX: usize = 3;

impl Property for BeforeInitialize {
    type Case = Vec<Value>;

    fn name(&self) -> &'static str {
        "before-initialize"
    }

    fn strategy(&self) -> BoxedStrategy<Vec<Value>> {
        vec(
            hostile::early_request().prop_map(|(message, _)| message),
            1..=EARLY_MAX,
        )
        .boxed()
    }

    fn fresh_per_case(&self) -> bool {
        true
    }

    async fn run(&self, live: &mut Live<'_>, case: &Vec<Value>) -> CaseOutcome {
        let mut outcome = CaseOutcome::default();
        let mut session = match Session::raw(live.target, Revision::Sessions) {
            Ok(session) => session,
            Err(error) => {
                outcome.find(Finding::new(&BEFORE_INITIALIZE, error.to_string()));
                return outcome;
            }
        };
        for message in case {
            if let Some(finding) = early(&mut session, message, &mut outcome.steps).await {
                outcome.find(finding.with(outcome.steps.clone()));
                return outcome;
            }
        }
        if let Err(error) = session.handshake().await {
            outcome.steps.push(Step {
                sent: "(the initialize handshake)".into(),
                got: vec![format!("({error})")],
            });
            let detail = format!("after requests before initialize, the handshake failed: {error}");
            outcome.find(Finding::new(&BEFORE_INITIALIZE, detail).with(outcome.steps.clone()));
        }
        outcome
    }
}

/// One request before the handshake; a finding if it was not answered.
async fn early(session: &mut Session, message: &Value, steps: &mut Vec<Step>) -> Option<Finding> {
    let id = &message["id"];
    match session.exchange(message.to_string().as_bytes()).await {
        Err(error) => {
            steps.push(Step {
                sent: message.to_string(),
                got: vec![format!("({error})")],
            });
            Some(Finding::new(
                &BEFORE_INITIALIZE,
                format!("a request before initialize stopped the server: {error}"),
            ))
        }
        Ok(exchange) => {
            steps.push(super::jsonrpc::step(&message.to_string(), &exchange));
            let answered = exchange.answers.iter().filter(|a| &a["id"] == id).count();
            (answered != 1).then(|| {
                Finding::new(
                    &BEFORE_INITIALIZE,
                    format!("a request before initialize got {answered} answers with its id {id}"),
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_look_like_dates() {
        assert!(looks_like_version("2025-11-25"));
        assert!(!looks_like_version("2025-11-2"));
        assert!(!looks_like_version("latest"));
    }

    #[test]
    fn early_requests_are_requests_with_ids() {
        let case = crate::run::sample(&BeforeInitialize, 3);
        assert!((1..=EARLY_MAX).contains(&case.len()));
        assert!(case.iter().all(|m| m["id"].is_i64() || m["id"].is_string()));
    }
}
