//! What can go wrong, in the words the caller must decide on: a
//! [`CallError`] for one remote call (with the attempts it took), an
//! [`AskError`] for a question. An attempt fails with a [`Failure`], which
//! knows nothing of attempts; the retry loop alone turns it into a
//! [`CallError`].

use crate::{
    answer::ReplyError,
    connector::{ConnectError, HttpRefusal},
    planner::PlanError,
    session::SessionError,
};

/// One remote call that did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Could not reach the server (after retries, if allowed).
    #[error("unreachable after {attempts} attempt(s): {source}")]
    Connect {
        attempts: u32,
        #[source]
        source: ConnectError,
    },
    /// No reply within the per-call timeout (after retries, if allowed).
    #[error("no reply within {timeout_ms} ms, {attempts} attempt(s)")]
    Timeout { attempts: u32, timeout_ms: u128 },
    /// The connection broke mid-call (after retries, if allowed).
    #[error("connection lost, {attempts} attempt(s): {message}")]
    Transport { attempts: u32, message: String },
    /// The server answered with a JSON-RPC error: one side has a bug or a
    /// mismatch. Never retried.
    #[error("server refused the call: {message} (JSON-RPC {code})")]
    Refused { code: i32, message: String },
    /// The question's deadline passed.
    #[error("deadline of {deadline_ms} ms passed after {attempts} attempt(s)")]
    Deadline { attempts: u32, deadline_ms: u128 },
    /// The server's circuit breaker is open: it failed repeatedly, so calls
    /// fail at once for a while instead of waiting on it.
    #[error("circuit breaker open; next probe in {retry_after_ms} ms")]
    CircuitOpen { retry_after_ms: u128 },
    /// The server refused our token or its scope (HTTP 401/403), or the
    /// token could not be read. Never retried: someone must fix the grant.
    #[error("{source}")]
    Denied {
        #[source]
        source: ConnectError,
    },
    /// The server is shedding load (HTTP 429) and its `Retry-After` (or the
    /// attempts) ran past what the deadline allows.
    #[error("{refusal}, {attempts} attempt(s)")]
    RateLimited { attempts: u32, refusal: HttpRefusal },
    /// An HTTP endpoint (the LLM planner's model) rejected the request with
    /// a status that no retry will change (a 4xx other than 401/403/429),
    /// or its reply was too large. Status 0: not an HTTP status.
    #[error("{}", rejected(*.status, .message))]
    Rejected { status: u16, message: String },
    /// Retries are paused: too many already failed across all calls.
    #[error("retry budget exhausted after {attempts} attempt(s); last failure: {last}")]
    BudgetExhausted { attempts: u32, last: String },
}

fn rejected(status: u16, message: &str) -> String {
    match status {
        0 => format!("the request cannot be made: {message}"),
        status => format!("the endpoint rejected the request (HTTP {status}): {message}"),
    }
}

impl CallError {
    /// True when asking again later may succeed without anyone fixing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Connect { source, .. } => source.is_retryable(),
            CallError::Refused { .. } | CallError::Denied { .. } | CallError::Rejected { .. } => {
                false
            }
            _ => true,
        }
    }

    /// Attempts made; a failure that is never retried took one.
    pub(crate) fn attempts(&self) -> u32 {
        match self {
            CallError::Connect { attempts, .. }
            | CallError::Timeout { attempts, .. }
            | CallError::Transport { attempts, .. }
            | CallError::Deadline { attempts, .. }
            | CallError::RateLimited { attempts, .. }
            | CallError::BudgetExhausted { attempts, .. } => *attempts,
            CallError::Refused { .. }
            | CallError::CircuitOpen { .. }
            | CallError::Denied { .. }
            | CallError::Rejected { .. } => 1,
        }
    }
}

/// Why one attempt failed. Whether another attempt may help is
/// [`Failure::is_retryable`]; how many were made is the retry loop's to say.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No session could be opened.
    Connect(ConnectError),
    /// No reply within the attempt's timeout.
    Timeout { timeout_ms: u128 },
    /// The connection broke mid-request.
    Transport { message: String },
    /// A JSON-RPC error reply.
    Refused { code: i32, message: String },
    /// The breaker is open.
    CircuitOpen { retry_after_ms: u128 },
    /// A refused or unreadable credential (HTTP 401/403).
    Denied(ConnectError),
    /// HTTP 429.
    RateLimited(HttpRefusal),
    /// An HTTP status no retry changes (the model endpoint's 4xx).
    Rejected { status: u16, message: String },
}

/// The request a [`SessionError`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// `tools/list`, while opening a session.
    ListTools,
    /// `tools/call`.
    CallTool,
}

impl Failure {
    /// What a failed connect means: a refused or unreadable credential is
    /// final, a 429 is worth waiting for, the rest is the connect's own.
    pub(crate) fn connecting(source: ConnectError) -> Failure {
        match source {
            ConnectError::Denied { .. } | ConnectError::Credential { .. } => {
                Failure::Denied(source)
            }
            ConnectError::RateLimited { refusal, .. } => Failure::RateLimited(refusal),
            source => Failure::Connect(source),
        }
    }

    /// What a session's error means for the attempt that met it, on the
    /// server at `target`. While listing tools, anything but an HTTP
    /// refusal leaves the new session useless, as a broken connection would.
    pub(crate) fn from_session(
        error: SessionError,
        request: Request,
        target: impl FnOnce() -> String,
    ) -> Failure {
        match (error, request) {
            (SessionError::Http(refusal @ HttpRefusal::RateLimited { .. }), _) => {
                Failure::RateLimited(refusal)
            }
            (SessionError::Http(refusal), _) => Failure::Denied(ConnectError::Denied {
                target: target(),
                refusal,
            }),
            (other, Request::ListTools) => Failure::Transport {
                message: format!("listing tools failed: {other}"),
            },
            (SessionError::Rpc { code, message, .. }, Request::CallTool) => {
                Failure::Refused { code, message }
            }
            (SessionError::Transport(message), Request::CallTool) => Failure::Transport { message },
            (SessionError::Timeout(timeout), Request::CallTool) => Failure::Timeout {
                timeout_ms: timeout.as_millis(),
            },
        }
    }

    /// Whether the session it happened on is lost: after a broken or
    /// silent connection the orchestrator starts afresh (a stalled stream
    /// may never recover).
    pub(crate) fn loses_session(&self) -> bool {
        matches!(self, Failure::Transport { .. } | Failure::Timeout { .. })
    }

    /// Whether another attempt may succeed (if the tool is safe to repeat).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Failure::Connect(source) => source.is_retryable(),
            Failure::Timeout { .. } | Failure::Transport { .. } | Failure::RateLimited(_) => true,
            Failure::Refused { .. }
            | Failure::CircuitOpen { .. }
            | Failure::Denied(_)
            | Failure::Rejected { .. } => false,
        }
    }

    /// Whether the server showed it is alive (for its breaker): a JSON-RPC
    /// error, a refused token or a 429 all came from a working server.
    pub(crate) fn proves_alive(&self) -> bool {
        matches!(
            self,
            Failure::Refused { .. }
                | Failure::Denied(_)
                | Failure::RateLimited(_)
                | Failure::Rejected { .. }
        )
    }

    /// The `Retry-After` a 429 asked for, if any.
    pub(crate) fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Failure::RateLimited(HttpRefusal::RateLimited { retry_after }) => *retry_after,
            _ => None,
        }
    }
}

/// Why a question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The question cannot be planned; the user must rephrase.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The LLM planner's model failed, or proposed what a guard refused.
    /// The deterministic planner may still answer.
    #[error(transparent)]
    Model(Box<crate::llm::LlmError>),
    /// The tools a plan needs are on servers that are down.
    #[error("no reachable server offers {needed}; unreachable:{}", down.iter().map(|(s, e)| format!("\n  {s}: {e}")).collect::<String>())]
    Unavailable {
        needed: String,
        down: Vec<(String, CallError)>,
    },
    /// A step's call failed.
    #[error("step {step} ({server}/{tool}) failed: {source}")]
    Call {
        step: usize,
        server: String,
        tool: String,
        #[source]
        source: CallError,
    },
    /// The tool ran and refused: its message says what was wrong with the input.
    #[error("step {step} ({server}/{tool}): {message}")]
    Tool {
        step: usize,
        server: String,
        tool: String,
        message: String,
    },
    /// The listing tool gave only the newest of the user's transactions,
    /// and this answer (a filter, a total, a count, the oldest) needs every
    /// one: an answer from part of them would be wrong, so none is given.
    #[error(
        "step {step} ({server}/{tool}) listed {listed} of the user's {total} transactions; this answer needs them all, so it is not given"
    )]
    Incomplete {
        step: usize,
        server: String,
        tool: String,
        listed: usize,
        total: u64,
    },
    /// The server replied in a shape the plan cannot read.
    #[error("step {step} ({server}/{tool}) replied with something unreadable: {problem}")]
    BadReply {
        step: usize,
        server: String,
        tool: String,
        problem: ReplyError,
    },
}

impl From<crate::llm::LlmError> for AskError {
    fn from(error: crate::llm::LlmError) -> Self {
        AskError::Model(Box::new(error))
    }
}

impl AskError {
    /// True when the same question may succeed if asked again later.
    pub fn is_transient(&self) -> bool {
        match self {
            AskError::Call { source, .. } => source.is_transient(),
            AskError::Model(error) => error.is_transient(),
            AskError::Unavailable { down, .. } => down.iter().all(|(_, e)| e.is_transient()),
            _ => false,
        }
    }
}
