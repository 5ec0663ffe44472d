//! The LLM planner's loop: each turn, ask the model for the next grounded
//! call (or done), check it, make it under the policy like any other call,
//! and show the model its result; then build the answer from the results.

use rmcp::model::CallToolResult;
use tokio::time::Instant;

use super::{Orchestrator, StepTrace};
use crate::{
    answer::Answer,
    catalog::Catalog,
    error::{AskError, Failure},
    llm::{
        LlmError, LlmPlanner, MODEL,
        chat::{ChatRequest, Reply, read_reply},
        conversation::{Conversation, Decision},
        render::{self, Done},
    },
    planner::ToolRef,
};

impl Orchestrator {
    /// Answers `question` with the model choosing the calls.
    pub(super) async fn ask_llm(
        &self,
        llm: &LlmPlanner,
        question: &str,
        trace: &mut Vec<StepTrace>,
    ) -> Result<Answer, AskError> {
        let deadline = Instant::now() + self.policy.settings().deadline;
        let (catalog, down) = self.catalog_until(deadline).await;
        if catalog.is_empty() && !down.is_empty() {
            return Err(AskError::Unavailable {
                needed: "any tool".into(),
                down,
            });
        }
        let mut chat = Conversation::new(question, &catalog, llm.settings());
        let mut results: Vec<(CallToolResult, usize)> = Vec::new();
        while chat.turn < llm.settings().steps_max {
            let Some(request) = chat.next_request() else {
                return answer(&catalog, &chat, &results);
            };
            let asked = Instant::now();
            let reply = self.ask_model(llm, &request, chat.turn, deadline).await?;
            let decision = chat.decide(&reply);
            tracing::info!(
                turn = chat.turn,
                ms = asked.elapsed().as_millis() as u64,
                chose = %chosen(&decision, &catalog),
                "model turn"
            );
            let (entry, arguments) = match decision? {
                Decision::Done => return answer(&catalog, &chat, &results),
                Decision::Call { entry, arguments } => (entry, arguments),
            };
            let tool = ToolRef::of(&catalog.entries()[entry]);
            let step = trace.len() + 1;
            let result = self
                .step(step, &tool, arguments.clone(), deadline, trace)
                .await?;
            chat.record(entry, arguments, &result);
            results.push((result, step));
        }
        Err(LlmError::StepsExhausted {
            steps_max: llm.settings().steps_max,
        }
        .into())
    }

    /// One model turn under the policy: retried like a read-only call,
    /// through the model's breaker, within the question's deadline.
    async fn ask_model(
        &self,
        llm: &LlmPlanner,
        request: &ChatRequest,
        turn: u32,
        deadline: Instant,
    ) -> Result<Reply, LlmError> {
        let body = serde_json::to_vec(request).expect("a chat request is JSON");
        let sent = self
            .retrying(MODEL, deadline, true, || {
                self.model_attempt(llm, body.clone(), deadline)
            })
            .await;
        let (bytes, _attempts) = sent.map_err(|source| LlmError::Endpoint {
            target: llm.endpoint.target(),
            source,
        })?;
        read_reply(&bytes).map_err(|e| LlmError::Malformed {
            turn,
            detail: e.to_string(),
        })
    }

    async fn model_attempt(
        &self,
        llm: &LlmPlanner,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<Vec<u8>, Failure> {
        llm.breaker.admit()?;
        let timeout = llm
            .settings()
            .request_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let result = llm.endpoint.send(body, timeout).await;
        let healthy = match &result {
            Ok(_) => true,
            Err(failure) => failure.proves_alive(),
        };
        if let Some(change) = llm.breaker.report(healthy) {
            self.emit_named(MODEL, change);
        }
        result
    }
}

/// What a turn's decision was, for the log.
fn chosen(decision: &Result<Decision, LlmError>, catalog: &Catalog) -> String {
    match decision {
        Ok(Decision::Done) => "done".to_owned(),
        Ok(Decision::Call { entry, .. }) => catalog.entries()[*entry].qualified_name(),
        Err(error) => format!("refused: {error}"),
    }
}

#[allow(clippy::result_large_err)] // once per question; see render.rs
fn answer(
    catalog: &Catalog,
    chat: &Conversation<'_>,
    results: &[(CallToolResult, usize)],
) -> Result<Answer, AskError> {
    let done: Vec<Done<'_>> = chat
        .made
        .iter()
        .zip(results)
        .map(|(made, (reply, step))| Done {
            made,
            reply,
            step: *step,
        })
        .collect();
    render::answer(catalog, &chat.facts, &done)
}
