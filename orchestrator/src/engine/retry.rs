//! The retry loop: the one piece of code that applies the [`Policy`]'s
//! attempts, backoff, retry budget and deadline, and the one place a
//! [`CallError`] is built, with the attempts it took.
//!
//! [`Policy`]: crate::Policy

use std::{sync::atomic::Ordering, time::Duration};

use tokio::time::Instant;

use super::Orchestrator;
use crate::{
    error::{CallError, Failure},
    event::EventKind,
};

/// What to do after a failed attempt.
enum Next {
    /// Sleep this long, then try again.
    RetryAfter(Duration),
    /// Stop with this error.
    GiveUp(CallError),
    /// Stop with this error once this long has passed (the deadline's
    /// error, at the deadline: the caller gave us until then).
    GiveUpAfter(Duration, CallError),
}

impl Orchestrator {
    /// Runs `op` (one attempt) until it succeeds, fails for good, or the
    /// policy says stop. Only `retry_safe` operations are attempted again.
    /// Returns the value and the attempts it took.
    pub(super) async fn retrying<T, F>(
        &self,
        name: &str,
        deadline: Instant,
        retry_safe: bool,
        mut op: impl FnMut() -> F,
    ) -> Result<(T, u32), CallError>
    where
        F: Future<Output = Result<T, Failure>>,
    {
        self.budget.deposit(&self.policy);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if Instant::now() >= deadline {
                return Err(self.deadline_passed(attempt - 1));
            }
            let failure = match op().await {
                Ok(value) => return Ok((value, attempt)),
                Err(failure) => failure,
            };
            match self.after_failure(failure, attempt, retry_safe, deadline) {
                Next::RetryAfter(pause) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    self.emit_named(name, EventKind::Retry { attempt, pause });
                    tokio::time::sleep(pause).await;
                }
                Next::GiveUp(error) => return Err(error),
                Next::GiveUpAfter(wait, error) => {
                    tokio::time::sleep(wait).await;
                    return Err(error);
                }
            }
        }
    }

    /// Decides what follows failed attempt number `attempt`. A retry needs
    /// a retry-safe operation, a retryable failure, attempts left, a token
    /// from the budget, and a pause (full jitter, at least any
    /// `Retry-After`) that ends before the deadline.
    fn after_failure(
        &self,
        failure: Failure,
        attempt: u32,
        retry_safe: bool,
        deadline: Instant,
    ) -> Next {
        let retryable = failure.is_retryable();
        let retry_after = failure.retry_after();
        let error = call_error(failure, attempt);
        if !retryable || !retry_safe || attempt >= self.policy.settings().attempts_max {
            return Next::GiveUp(error);
        }
        if !self.budget.try_withdraw(&self.policy) {
            return Next::GiveUp(CallError::BudgetExhausted {
                attempts: attempt,
                last: error.to_string(),
            });
        }
        let mut pause = {
            let mut rng = self.rng.lock().expect("rng lock");
            self.policy.backoff(attempt, &mut *rng)
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if let Some(after) = retry_after {
            // The server said when: not sooner, and not at all if that is
            // past the deadline (waiting would only fail later).
            if after >= remaining {
                return Next::GiveUp(error);
            }
            pause = pause.max(after);
        }
        if pause >= remaining {
            return Next::GiveUpAfter(remaining, self.deadline_passed(attempt));
        }
        tracing::debug!(attempt, ?pause, %error, "retrying");
        Next::RetryAfter(pause)
    }

    fn deadline_passed(&self, attempts: u32) -> CallError {
        CallError::Deadline {
            attempts,
            deadline_ms: self.policy.settings().deadline.as_millis(),
        }
    }
}

/// A call refused before any attempt was made (its server's breaker is
/// open, so not even a connection was tried).
pub(super) fn refused_before_trying(failure: Failure) -> CallError {
    call_error(failure, 0)
}

/// The call error `failure` is, after `attempts` attempts.
fn call_error(failure: Failure, attempts: u32) -> CallError {
    match failure {
        Failure::Connect(source) => CallError::Connect { attempts, source },
        Failure::Timeout { timeout_ms } => CallError::Timeout {
            attempts,
            timeout_ms,
        },
        Failure::Transport { message } => CallError::Transport { attempts, message },
        Failure::Refused { code, message } => CallError::Refused { code, message },
        Failure::CircuitOpen { retry_after_ms } => CallError::CircuitOpen { retry_after_ms },
        Failure::Denied(source) => CallError::Denied { source },
        Failure::RateLimited(refusal) => CallError::RateLimited { attempts, refusal },
        Failure::Rejected { status, message } => CallError::Rejected { status, message },
    }
}
