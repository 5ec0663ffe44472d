//! Hedged reads: a read-only call that has not answered after
//! `hedge_after` is sent again on the server's spare session, and the
//! first reply wins.

use std::{sync::atomic::Ordering, time::Duration};

use rmcp::model::CallToolResult;

use super::{Orchestrator, attempt::Call};
use crate::{error::Failure, event::EventKind};

impl Orchestrator {
    /// One attempt on the live session, and, if it has not answered after
    /// `after`, a second copy on the spare session: the first reply wins.
    /// When the copy wins, its session becomes the live one and the slow
    /// one is closed (a stalled TCP stream never recovers). While the first
    /// attempt is pending, a failed hedge is sent again (its new connection
    /// may have been lost too), within the attempt limit and the retry
    /// budget.
    pub(super) async fn attempt_hedged(
        &self,
        call: Call<'_>,
        after: Duration,
    ) -> Result<CallToolResult, Failure> {
        let server = call.server;
        let primary = self.attempt_call(call, &server.live);
        tokio::pin!(primary);
        tokio::select! {
            biased;
            done = &mut primary => return done,
            () = tokio::time::sleep(after) => {}
        }
        for _ in 1..self.policy.settings().attempts_max.max(2) {
            if !self.budget.try_withdraw(&self.policy) {
                break;
            }
            self.hedges.fetch_add(1, Ordering::Relaxed);
            self.emit(server, EventKind::Hedge);
            tracing::debug!(server = %server.name, tool = %call.tool.tool, "hedging a slow call");
            let hedge = self.attempt_call(call, &server.spare);
            tokio::pin!(hedge);
            tokio::select! {
                biased;
                first = &mut primary => {
                    return match first {
                        Err(failure) if failure.is_retryable() => hedge.await,
                        done_or_final => done_or_final,
                    };
                }
                second = &mut hedge => match second {
                    Ok(reply) => {
                        self.promote_spare(server).await;
                        return Ok(reply);
                    }
                    // A refused token is refused on every session: stop.
                    Err(denied @ Failure::Denied(_)) => return Err(denied),
                    Err(_) => {}
                },
            }
        }
        primary.await
    }
}
