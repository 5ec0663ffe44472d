//! Framing and JSON-RPC: sequences of hostile lines on one session, each
//! followed by a control ping, and what JSON-RPC 2.0 says each must get.

use proptest::{
    collection::vec,
    strategy::{BoxedStrategy, Strategy},
};
use serde_json::Value;

use super::{
    ANSWER_ID, ERROR_CODE, Finding, HTTP_BAD_BODY, HTTP_BAD_BODY_400, HTTP_NOTIFICATION_202,
    NOTIFICATION_SILENCE, STDOUT_ONLY_MESSAGES, Step, clip,
};
use crate::{
    hostile::{self, Expect, Hostile, Lines},
    run::{CaseOutcome, Live, Property},
    session::Exchange,
};

/// Longest sequence of hostile lines in one case.
const LINES_MAX: usize = 12;

/// Hostile lines on a reused session: the session, and the server, must
/// come through every one.
#[derive(Debug)]
pub(crate) struct Framing {
    pub http: bool,
}

impl Property for Framing {
    type Case = Vec<Hostile>;

    fn name(&self) -> &'static str {
        "framing"
    }

    fn strategy(&self) -> BoxedStrategy<Vec<Hostile>> {
        let lines = Lines {
            frame_cap: None,
            two_in_one_write: !self.http,
        };
        vec(hostile::line(lines), 1..=LINES_MAX).boxed()
    }

    async fn run(&self, live: &mut Live<'_>, case: &Vec<Hostile>) -> CaseOutcome {
        let session = match live.session().await {
            Ok(session) => session,
            Err(error) => return CaseOutcome::unopened(&error),
        };
        let mut outcome = CaseOutcome::default();
        let mut judge = Judge::default();
        for hostile in case {
            match session.exchange(hostile.line.as_bytes()).await {
                Ok(exchange) => {
                    outcome.steps.push(step(&hostile.line, &exchange));
                    for finding in judge.judge(hostile, &exchange) {
                        outcome.find(finding.with(outcome.steps.clone()));
                    }
                }
                Err(error) => {
                    outcome.broke(hostile.line.clone(), &error);
                    return outcome;
                }
            }
        }
        if let Some(finding) = judge.never_answered() {
            outcome.find(finding.with(outcome.steps.clone()));
        }
        outcome
    }
}

/// What a line's exchange shows, as a replay file and a report print it.
pub(crate) fn step(sent: &str, exchange: &Exchange) -> Step {
    let mut got: Vec<String> = Vec::new();
    if let Some(reply) = &exchange.http {
        got.push(format!("HTTP {}", reply.status));
    }
    got.extend(exchange.answers.iter().map(Value::to_string));
    got.extend(
        exchange
            .not_json
            .iter()
            .map(|t| format!("(not JSON) {}", clip(t, 200))),
    );
    Step {
        sent: sent.to_owned(),
        got,
    }
}

/// Judges each line's exchange; remembers the ids of requests that may
/// be answered late (a reused id), so that their answers are not blamed on
/// a later line.
#[derive(Debug, Default)]
struct Judge {
    /// Ids whose answers may come in any later exchange, and whether one has.
    late: Vec<(Value, bool)>,
}

impl Judge {
    fn judge(&mut self, hostile: &Hostile, exchange: &Exchange) -> Vec<Finding> {
        let mut findings = Vec::new();
        if !exchange.not_json.is_empty() && exchange.http.is_none() {
            let text = clip(&exchange.not_json[0], 200);
            findings.push(Finding::new(
                &STDOUT_ONLY_MESSAGES,
                format!("the server wrote a line that is not JSON: {text}"),
            ));
        }
        let answers = self.fresh_answers(exchange);
        findings.extend(answers.iter().filter_map(malformed));
        let verdict = match &exchange.http {
            Some(reply) => judge_http(hostile, reply.status, &answers),
            None => judge_answers(hostile, &answers),
        };
        findings.extend(verdict);
        if let Expect::Answers { id, .. } = &hostile.expect {
            let seen = exchange.answers.iter().any(|a| &a["id"] == id);
            self.late.push((id.clone(), seen));
        }
        findings
    }

    /// The answers of this exchange, less late answers for reused ids.
    fn fresh_answers(&mut self, exchange: &Exchange) -> Vec<Value> {
        let mut fresh = Vec::new();
        for answer in &exchange.answers {
            match self.late.iter_mut().find(|(id, _)| *id == answer["id"]) {
                Some((_, seen)) => *seen = true,
                None => fresh.push(answer.clone()),
            }
        }
        fresh
    }

    /// A request with a reused id that was never answered at all.
    fn never_answered(&self) -> Option<Finding> {
        let (id, _) = self.late.iter().find(|(_, seen)| !seen)?;
        Some(Finding::new(
            &ANSWER_ID,
            format!("a request with id {id} (an id used before) was never answered"),
        ))
    }
}

/// A response that is not well-formed JSON-RPC 2.0.
fn malformed(answer: &Value) -> Option<Finding> {
    let problem = if answer["jsonrpc"] != "2.0" {
        "its \"jsonrpc\" is not \"2.0\""
    } else if answer.get("result").is_some() == answer.get("error").is_some() {
        "it holds neither or both of result and error"
    } else if let Some(error) = answer.get("error") {
        if !error["code"].is_i64() || !error["message"].is_string() {
            "its error lacks an integer code or a string message"
        } else {
            return None;
        }
    } else {
        return None;
    };
    Some(Finding::new(
        &ANSWER_ID,
        format!(
            "a response is not well-formed JSON-RPC: {problem}: {}",
            clip(&answer.to_string(), 300)
        ),
    ))
}

/// Whether `line` is a valid notification: an object with `"jsonrpc":
/// "2.0"`, a string method, and no id. Other id-less lines may be answered
/// with an error whose id is null.
fn is_valid_notification(line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .is_ok_and(|v| v.get("id").is_none() && v["jsonrpc"] == "2.0" && v["method"].is_string())
}

/// Over stdio: the answers a line must get.
fn judge_answers(hostile: &Hostile, answers: &[Value]) -> Vec<Finding> {
    match &hostile.expect {
        Expect::Silence => judge_silence(&hostile.line, answers),
        Expect::Error { code, id } => judge_error(*code, id, answers),
        Expect::Pong { id } => exactly_one(id, answers).into_iter().collect(),
        Expect::Answers { id, most } => {
            let count = answers.iter().filter(|a| &a["id"] == id).count();
            let mut findings: Vec<Finding> = others(answers, id).into_iter().collect();
            if count > *most {
                findings.push(Finding::new(
                    &ANSWER_ID,
                    format!("{count} answers with id {id}, for {most} request(s)"),
                ));
            }
            findings
        }
    }
}

fn judge_silence(line: &str, answers: &[Value]) -> Vec<Finding> {
    if answers.is_empty() {
        return Vec::new();
    }
    let shown = clip(&answers[0].to_string(), 300);
    if is_valid_notification(line) {
        return vec![Finding::new(
            &NOTIFICATION_SILENCE,
            format!("a notification was answered: {shown}"),
        )];
    }
    if answers.iter().any(|a| a.get("result").is_some()) {
        let detail = format!(
            "a message without an id (a notification, if an invalid one) was answered with a result: {shown}"
        );
        return vec![Finding::new(&NOTIFICATION_SILENCE, detail)];
    }
    let null_errors = answers
        .iter()
        .all(|a| a["id"].is_null() && a.get("error").is_some());
    if answers.len() == 1 && null_errors {
        return Vec::new();
    }
    vec![Finding::new(
        &ANSWER_ID,
        format!(
            "a message without an id got {} answer(s), not at most one error with id null: {shown}",
            answers.len()
        ),
    )]
}

fn judge_error(code: i64, id: &Value, answers: &[Value]) -> Vec<Finding> {
    if let Some(finding) = exactly_one(id, answers) {
        return vec![finding];
    }
    let answer = answers
        .iter()
        .find(|a| &a["id"] == id)
        .expect("exactly one");
    match answer["error"]["code"].as_i64() {
        None => vec![Finding::new(
            &ANSWER_ID,
            format!(
                "answered with a result, where JSON-RPC calls for error {code}: {}",
                clip(&answer.to_string(), 300)
            ),
        )],
        Some(got) if got != code => vec![Finding::new(
            &ERROR_CODE,
            format!(
                "error {got} where JSON-RPC calls for {code}: {}",
                clip(&answer.to_string(), 300)
            ),
        )],
        Some(_) => Vec::new(),
    }
}

/// Exactly one answer, with `id`, and no answer with another id.
fn exactly_one(id: &Value, answers: &[Value]) -> Option<Finding> {
    let count = answers.iter().filter(|a| &a["id"] == id).count();
    if count == 1 {
        return others(answers, id);
    }
    let got: Vec<String> = answers.iter().map(|a| clip(&a.to_string(), 200)).collect();
    let detail = match count {
        0 => format!("no answer with id {id}; got {got:?}"),
        n => format!("{n} answers with id {id}: {got:?}"),
    };
    Some(Finding::new(&ANSWER_ID, detail))
}

/// An answer whose id is not the one the line carried.
fn others(answers: &[Value], id: &Value) -> Option<Finding> {
    let stray = answers.iter().find(|a| &a["id"] != id)?;
    Some(Finding::new(
        &ANSWER_ID,
        format!(
            "an answer with id {} to a message with id {id}: {}",
            stray["id"],
            clip(&stray.to_string(), 300)
        ),
    ))
}

/// Over HTTP: a body that is not a request may be refused with a 4xx (and
/// ought to be 400); a notification is accepted with 202 and no body.
fn judge_http(hostile: &Hostile, status: u16, answers: &[Value]) -> Vec<Finding> {
    let refused = (400..500).contains(&status);
    if status >= 500 {
        return vec![Finding::new(
            &HTTP_BAD_BODY,
            format!("HTTP {status} for {}", clip(&hostile.line, 200)),
        )];
    }
    match &hostile.expect {
        Expect::Silence if is_valid_notification(&hostile.line) => {
            let mut findings = judge_silence(&hostile.line, answers);
            if status != 202 {
                findings.push(Finding::new(
                    &HTTP_NOTIFICATION_202,
                    format!("HTTP {status} for a notification"),
                ));
            }
            findings
        }
        Expect::Silence if refused => Vec::new(),
        Expect::Error { code, id } if id.is_null() && refused => {
            let mut findings: Vec<Finding> = answers
                .iter()
                .filter(|a| !a["id"].is_null())
                .map(|a| {
                    Finding::new(
                        &ANSWER_ID,
                        format!("an answer with an id to a body without one: {a}"),
                    )
                })
                .collect();
            if status != 400 {
                findings.push(Finding::new(
                    &HTTP_BAD_BODY_400,
                    format!("HTTP {status} where 400 fits (error {code})"),
                ));
            }
            findings
        }
        Expect::Error { code: -32600, .. }
            if refused && answers.iter().all(|a| a["id"].is_null()) =>
        {
            Vec::new()
        }
        Expect::Error { code, id } if id.is_null() && status == 200 && answers.is_empty() => {
            vec![Finding::new(
                &HTTP_BAD_BODY,
                format!("HTTP 200 with no JSON-RPC error for a body that calls for {code}"),
            )]
        }
        _ => judge_answers(hostile, answers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exchange(answers: Vec<Value>) -> Exchange {
        Exchange {
            answers,
            ..Exchange::default()
        }
    }

    fn line(line: &str, expect: Expect) -> Hostile {
        Hostile {
            line: line.into(),
            expect,
        }
    }

    fn ids(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.check.id).collect()
    }

    #[test]
    fn an_answered_notification_is_a_failure_and_an_error_for_an_invalid_one_is_not() {
        let mut judge = Judge::default();
        let answer = json!({"jsonrpc": "2.0", "id": null, "result": {}});
        let notification = line(
            r#"{"jsonrpc":"2.0","method":"notifications/x"}"#,
            Expect::Silence,
        );
        let found = judge.judge(&notification, &exchange(vec![answer]));
        assert_eq!(ids(&found), ["jsonrpc.notification-unanswered"]);
        let error =
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "x"}});
        let invalid = line(r#"{"jsonrpc":"2.0","method":7}"#, Expect::Silence);
        assert!(judge.judge(&invalid, &exchange(vec![error])).is_empty());
    }

    #[test]
    fn a_wrong_id_type_and_a_wrong_code_are_told_apart() {
        let mut judge = Judge::default();
        let sent = line(
            r#"{"jsonrpc":"2.0","id":"7","method":"zz/x"}"#,
            Expect::Error {
                code: -32601,
                id: json!("7"),
            },
        );
        let wrong_id =
            json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32601, "message": "x"}});
        let found = judge.judge(&sent, &exchange(vec![wrong_id]));
        assert_eq!(ids(&found)[0], "jsonrpc.answer-id");
        let wrong_code =
            json!({"jsonrpc": "2.0", "id": "7", "error": {"code": -32600, "message": "x"}});
        assert_eq!(
            ids(&judge.judge(&sent, &exchange(vec![wrong_code]))),
            ["jsonrpc.error-code"]
        );
    }

    #[test]
    fn a_reused_id_may_be_answered_late_but_must_be_answered() {
        let mut judge = Judge::default();
        let reused = line(
            r#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#,
            Expect::Answers {
                id: json!(0),
                most: 1,
            },
        );
        assert!(judge.judge(&reused, &exchange(vec![])).is_empty());
        assert!(judge.never_answered().is_some());
        let pong = json!({"jsonrpc": "2.0", "id": 0, "result": {}});
        let next = line("", Expect::Silence);
        assert!(judge.judge(&next, &exchange(vec![pong])).is_empty());
        assert!(judge.never_answered().is_none());
    }

    #[test]
    fn an_id_reused_twice_in_a_row_counts_each_answer() {
        let mut judge = Judge::default();
        let reused = line(
            r#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#,
            Expect::Answers {
                id: json!(0),
                most: 1,
            },
        );
        let pong = json!({"jsonrpc": "2.0", "id": 0, "result": {}});
        assert!(
            judge
                .judge(&reused, &exchange(vec![pong.clone()]))
                .is_empty()
        );
        assert!(judge.judge(&reused, &exchange(vec![pong])).is_empty());
        assert!(judge.never_answered().is_none());
    }

    #[test]
    fn over_http_a_refused_bad_body_is_fine_and_a_5xx_is_not() {
        let bad = line(
            "{nope",
            Expect::Error {
                code: -32700,
                id: Value::Null,
            },
        );
        assert!(judge_http(&bad, 400, &[]).is_empty());
        assert_eq!(ids(&judge_http(&bad, 415, &[])), ["http.bad-body-400"]);
        assert_eq!(ids(&judge_http(&bad, 500, &[])), ["http.bad-body-4xx"]);
        let invalid = line(
            r#"{"jsonrpc":"1.0","id":0,"method":"ping"}"#,
            Expect::Error {
                code: -32600,
                id: json!(0),
            },
        );
        let no_id =
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "x"}});
        assert!(
            judge_http(&invalid, 400, &[no_id]).is_empty(),
            "a 4xx may carry an error without an id"
        );
        let notification = line(
            r#"{"jsonrpc":"2.0","method":"notifications/x"}"#,
            Expect::Silence,
        );
        assert_eq!(
            ids(&judge_http(&notification, 200, &[])),
            ["http.notification-202"]
        );
    }

    #[test]
    fn the_framing_property_generates_sequences_within_bounds() {
        let case = crate::run::sample(&Framing { http: true }, 7);
        assert!((1..=LINES_MAX).contains(&case.len()));
        assert!(
            case.iter().all(|h| !h.line.contains('\n')),
            "no two-in-one over HTTP"
        );
    }
}
