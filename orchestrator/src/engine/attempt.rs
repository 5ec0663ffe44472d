//! One attempt at one call: through the server's breaker, on a session
//! (reconnecting if needed), within the per-call timeout, its outcome
//! classified for the retry loop.

use rmcp::model::CallToolResult;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::{
    Orchestrator,
    sessions::{Server, Slot},
};
use crate::{
    error::{Failure, Request},
    planner::ToolRef,
};

/// One call, as every attempt at it makes it.
#[derive(Clone, Copy)]
pub(super) struct Call<'a> {
    pub(super) server: &'a Server,
    pub(super) tool: &'a ToolRef,
    pub(super) arguments: &'a Map<String, Value>,
    pub(super) deadline: Instant,
}

impl Orchestrator {
    /// One attempt at `call` on the session in `slot`, reported to the
    /// server's breaker.
    pub(super) async fn attempt_call(
        &self,
        call: Call<'_>,
        slot: &Slot,
    ) -> Result<CallToolResult, Failure> {
        let server = call.server;
        server.wait_out_retry_after(call.deadline).await?;
        server.admit()?;
        let attempt = self.attempt_call_admitted(call, slot).await;
        if let Err(failure) = &attempt
            && let Some(after) = failure.retry_after()
        {
            server.hold_for(after);
        }
        self.report(
            server,
            match &attempt {
                Ok(_) => true,
                Err(failure) => failure.proves_alive(),
            },
        );
        attempt
    }

    /// Gets a session, calls, and drops the session if the call showed it
    /// is broken or silent. The server may still run a timed-out call:
    /// calls are at-least-once.
    async fn attempt_call_admitted(
        &self,
        call: Call<'_>,
        slot: &Slot,
    ) -> Result<CallToolResult, Failure> {
        let Call {
            server,
            tool,
            arguments,
            deadline,
        } = call;
        let live = self.live(server, slot, deadline).await?;
        let timeout = self
            .policy
            .settings()
            .call_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let reply = live
            .session
            .call_tool(&tool.tool, arguments.clone(), timeout)
            .await;
        let failure = match reply {
            Ok(reply) => return Ok(reply),
            Err(error) => Failure::from_session(error, Request::CallTool, || server.target()),
        };
        if failure.loses_session() {
            self.drop_live(server, live.generation).await;
        }
        Err(failure)
    }
}
