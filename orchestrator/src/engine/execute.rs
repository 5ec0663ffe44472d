//! Running a plan: for each address, the lookup step, then the list step,
//! each traced, and what their replies mean for the answer.

use std::time::Duration;

use rmcp::model::CallToolResult;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::Orchestrator;
use crate::{
    answer::{self, Answer, ReplyError},
    error::AskError,
    money::MoneyError,
    planner::{Ask, Plan, Report, Selection, ToolRef},
};

/// What one address's listing step is for.
struct Listing<'a> {
    email: &'a str,
    user_id: String,
    selection: &'a Selection,
    report: Report,
}

/// What happened at one step, for `--explain`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTrace {
    pub step: usize,
    pub server: String,
    pub tool: String,
    pub arguments: Map<String, Value>,
    pub attempts: u32,
    #[serde(serialize_with = "as_micros", rename = "latency_us")]
    pub latency: Duration,
    /// "ok", "tool error: …" or the failure.
    pub outcome: String,
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The words a lookup tool's refusal contains when the email is simply not
/// in the directory.
const NOT_FOUND: &str = "not found";

/// **Not found means unknown user.** When the lookup tool (step 1) refuses
/// with a message that contains "not found", in any case, the directory
/// has no such email: that is an answer ([`Answer::UnknownUser`]), not an
/// error. The original demo's user server words it "User with email X not
/// found", and so does ours. Any other refusal is the tool rejecting its
/// input ([`AskError::Tool`]), such as a malformed email.
fn means_unknown_user(lookup_refusal: &str) -> bool {
    lookup_refusal.to_lowercase().contains(NOT_FOUND)
}

impl Orchestrator {
    /// Runs a plan's steps in order: for each address, its lookup and
    /// then, for a transactions question, its listing.
    pub(super) async fn execute(
        &self,
        plan: &Plan,
        deadline: Instant,
        trace: &mut Vec<StepTrace>,
    ) -> Result<Answer, AskError> {
        let mut answers = Vec::with_capacity(plan.question.emails.len());
        for email in &plan.question.emails {
            answers.push(self.answer_for(plan, email, deadline, trace).await?);
        }
        Ok(match answers.pop() {
            Some(only) if answers.is_empty() => only,
            last => {
                answers.extend(last);
                Answer::Each { answers }
            }
        })
    }

    /// The answer for one address.
    async fn answer_for(
        &self,
        plan: &Plan,
        email: &str,
        deadline: Instant,
        trace: &mut Vec<StepTrace>,
    ) -> Result<Answer, AskError> {
        let lookup = &plan.lookup;
        let step = trace.len() + 1;
        let reply = self
            .step(step, lookup, lookup.arguments(email, None), deadline, trace)
            .await?;
        if let Some(message) = refusal(&reply) {
            if means_unknown_user(&message) {
                return Ok(Answer::UnknownUser {
                    email: email.to_owned(),
                });
            }
            return Err(tool_error(step, lookup, message));
        }
        let (user_id, name) =
            answer::read_user_id(&reply).map_err(|problem| bad_reply(step, lookup, problem))?;
        match (&plan.question.ask, &plan.list) {
            (Ask::Transactions { selection, report }, Some(list)) => {
                let listing = Listing {
                    email,
                    user_id,
                    selection,
                    report: *report,
                };
                self.list(list, listing, deadline, trace).await
            }
            _ => Ok(Answer::UserId {
                email: email.to_owned(),
                user_id,
                name,
            }),
        }
    }

    /// The listing step, and what the selection makes of its reply.
    async fn list(
        &self,
        list: &ToolRef,
        asked: Listing<'_>,
        deadline: Instant,
        trace: &mut Vec<StepTrace>,
    ) -> Result<Answer, AskError> {
        let step = trace.len() + 1;
        let count = asked.selection.server_count();
        let reply = self
            .step(
                step,
                list,
                list.arguments(&asked.user_id, count),
                deadline,
                trace,
            )
            .await?;
        if let Some(message) = refusal(&reply) {
            return Err(tool_error(step, list, message));
        }
        let listed =
            answer::read_transactions(&reply).map_err(|problem| bad_reply(step, list, problem))?;
        if count.is_none()
            && asked.selection.needs_all(asked.report)
            && let Some(total) = answer::read_total(&reply)
            && total > listed.len() as u64
        {
            return Err(AskError::Incomplete {
                step,
                server: list.server.clone(),
                tool: list.tool.clone(),
                listed: listed.len(),
                total,
            });
        }
        let unreadable = |e: MoneyError| bad_reply(step, list, ReplyError(e.to_string()));
        let selected = asked.selection.apply(listed).map_err(unreadable)?;
        let (email, user_id, selection) = (
            asked.email.to_owned(),
            asked.user_id,
            asked.selection.clone(),
        );
        Ok(match asked.report {
            Report::List => Answer::Transactions {
                email,
                user_id,
                selection,
                transactions: selected,
            },
            Report::Total => Answer::Total {
                email,
                user_id,
                selection,
                totals: answer::totals(&selected).map_err(unreadable)?,
            },
            Report::Count => Answer::Count {
                email,
                user_id,
                selection,
                count: u32::try_from(selected.len()).unwrap_or(u32::MAX),
            },
        })
    }

    /// One traced step: call `tool` with `arguments` under the retry policy.
    pub(super) async fn step(
        &self,
        step: usize,
        tool: &ToolRef,
        arguments: Map<String, Value>,
        deadline: Instant,
        trace: &mut Vec<StepTrace>,
    ) -> Result<CallToolResult, AskError> {
        let started = Instant::now();
        let result = self.call(tool, &arguments, deadline).await;
        let (outcome, attempts) = match &result {
            Ok((reply, attempts)) if reply.is_error == Some(true) => (
                format!("tool error: {}", answer::first_text(reply).unwrap_or("")),
                *attempts,
            ),
            Ok((_, attempts)) => ("ok".to_owned(), *attempts),
            Err(error) => (error.to_string(), error.attempts()),
        };
        trace.push(StepTrace {
            step,
            server: tool.server.clone(),
            tool: tool.tool.clone(),
            arguments,
            attempts,
            latency: started.elapsed(),
            outcome,
        });
        result
            .map(|(reply, _)| reply)
            .map_err(|source| AskError::Call {
                step,
                server: tool.server.clone(),
                tool: tool.tool.clone(),
                source,
            })
    }
}

/// The message of a tool that ran and refused (`isError`), if it did.
fn refusal(reply: &CallToolResult) -> Option<String> {
    (reply.is_error == Some(true)).then(|| {
        answer::first_text(reply)
            .unwrap_or("(no message)")
            .to_owned()
    })
}

fn tool_error(step: usize, tool: &ToolRef, message: String) -> AskError {
    AskError::Tool {
        step,
        server: tool.server.clone(),
        tool: tool.tool.clone(),
        message,
    }
}

fn bad_reply(step: usize, tool: &ToolRef, problem: ReplyError) -> AskError {
    AskError::BadReply {
        step,
        server: tool.server.clone(),
        tool: tool.tool.clone(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_in_any_case_means_an_unknown_user_and_nothing_else_does() {
        assert!(means_unknown_user(
            "User with email carol@example.com not found"
        ));
        assert!(means_unknown_user("NOT FOUND"));
        assert!(!means_unknown_user("invalid email address: bob@"));
        assert!(!means_unknown_user(""));
    }
}
