//! The orchestrator: connections, the catalog, and the retry loop that
//! applies [`Policy`] to every remote call.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::future::join_all;
use rand::{SeedableRng, rngs::SmallRng};
use rmcp::{
    ServiceError,
    model::{CallToolRequestParams, CallToolResult, Tool},
};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::{
    answer::{self, Answer, ReplyError},
    breaker::Breaker,
    catalog::Catalog,
    config::Config,
    connector::{self, ConnectError, Connector, McpClient},
    planner::{self, Plan, PlanError, Question, ToolRef},
    policy::{Policy, RetryBudget},
};

/// Asks questions across MCP servers. Cheap to share: every method takes
/// `&self` and may run concurrently.
pub struct Orchestrator {
    servers: Vec<Server>,
    policy: Policy,
    /// Seeded: backoff jitter replays exactly under simulation.
    rng: Mutex<SmallRng>,
    budget: RetryBudget,
    /// Calls made (first attempts), across all calls.
    calls: AtomicU64,
    /// Retries made (attempts after the first), across all calls.
    retries: AtomicU64,
    /// Hedged reads sent.
    hedges: AtomicU64,
    /// A deliberately planted bug, for the property tests; inert unless
    /// built with the `planted-bug` feature and planted.
    planted: crate::planted::Planted,
}

/// What the orchestrator has done so far: the evidence of how it coped.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Connections opened per server, in configuration order; more than one
    /// means reconnects.
    pub connections: Vec<(String, u64)>,
    /// Calls (first attempts, connection attempts included).
    pub calls: u64,
    /// Attempts beyond the first, across all calls.
    pub retries: u64,
    /// Hedged reads: second copies of a slow read-only call.
    pub hedges: u64,
    /// Times a server's circuit breaker opened, per server.
    pub breaker_trips: Vec<(String, u64)>,
}

impl Stats {
    /// The totals of several orchestrators' stats, per server name in order
    /// of first appearance.
    pub fn sum(all: impl IntoIterator<Item = Stats>) -> Stats {
        fn add(into: &mut Vec<(String, u64)>, from: Vec<(String, u64)>) {
            for (name, n) in from {
                match into.iter_mut().find(|(have, _)| *have == name) {
                    Some((_, total)) => *total += n,
                    None => into.push((name, n)),
                }
            }
        }
        let mut total = Stats::default();
        for stats in all {
            add(&mut total.connections, stats.connections);
            add(&mut total.breaker_trips, stats.breaker_trips);
            total.calls += stats.calls;
            total.retries += stats.retries;
            total.hedges += stats.hedges;
        }
        total
    }
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field(
                "servers",
                &self.servers.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

struct Server {
    name: String,
    connector: Arc<dyn Connector>,
    /// The live session, if any. Held across a reconnect so that concurrent
    /// callers wait for one reconnect instead of starting their own.
    live: Slot,
    /// A second session for hedged reads (only with `hedge_after`).
    spare: Slot,
    /// Connections made so far; the next one gets this plus one.
    connections: std::sync::atomic::AtomicU64,
    breaker: Mutex<Breaker>,
}

impl Server {
    fn admit(&self) -> Result<(), CallError> {
        let mut breaker = self.breaker.lock().expect("breaker lock");
        breaker
            .admit(Instant::now())
            .map_err(|wait| CallError::CircuitOpen {
                retry_after_ms: wait.as_millis(),
            })
    }

    fn report(&self, healthy: bool) {
        let mut breaker = self.breaker.lock().expect("breaker lock");
        let was_open = breaker.trips();
        if healthy {
            breaker.succeeded();
        } else {
            breaker.failed(Instant::now());
        }
        if breaker.trips() > was_open {
            tracing::warn!(server = %self.name, "circuit breaker opened");
        }
    }
}

type Slot = tokio::sync::Mutex<Option<Live>>;

#[derive(Clone)]
struct Live {
    client: Arc<McpClient>,
    tools: Arc<Vec<Tool>>,
    /// Counts connections to this server, so that a caller only drops the
    /// session it saw fail, never a newer one.
    generation: u64,
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
    RateLimited {
        attempts: u32,
        refusal: crate::connector::HttpRefusal,
    },
    /// Retries are paused: too many already failed across all calls.
    #[error("retry budget exhausted after {attempts} attempt(s); last failure: {last}")]
    BudgetExhausted { attempts: u32, last: String },
}

impl CallError {
    /// True when asking again later may succeed without anyone fixing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Connect { source, .. } => source.is_retryable(),
            CallError::Refused { .. } | CallError::Denied { .. } => false,
            _ => true,
        }
    }
}

/// Why a question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The question cannot be planned; the user must rephrase.
    #[error(transparent)]
    Plan(#[from] PlanError),
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
    /// The server replied in a shape the plan cannot read.
    #[error("step {step} ({server}/{tool}) replied with something unreadable: {problem}")]
    BadReply {
        step: usize,
        server: String,
        tool: String,
        problem: ReplyError,
    },
}

impl AskError {
    /// True when the same question may succeed if asked again later.
    pub fn is_transient(&self) -> bool {
        match self {
            AskError::Call { source, .. } => source.is_transient(),
            AskError::Unavailable { down, .. } => down.iter().all(|(_, e)| e.is_transient()),
            _ => false,
        }
    }
}

/// The outcome of one attempt inside the retry loop.
enum Attempt<T> {
    Done(T),
    /// Worth another attempt if the tool is retry-safe.
    Retry(CallError),
    /// Never worth another attempt.
    Fail(CallError),
}

impl Orchestrator {
    /// An orchestrator over `servers`, in the given order. `seed` drives
    /// backoff jitter: pass a fixed one under simulation.
    pub fn new(servers: Vec<(String, Arc<dyn Connector>)>, policy: Policy, seed: u64) -> Self {
        Self {
            servers: servers
                .into_iter()
                .map(|(name, connector)| Server {
                    name,
                    connector,
                    live: Slot::default(),
                    spare: Slot::default(),
                    connections: std::sync::atomic::AtomicU64::new(0),
                    breaker: Mutex::new(Breaker::new(policy.breaker_failures, policy.breaker_open)),
                })
                .collect(),
            policy,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            budget: RetryBudget::new(&policy),
            calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            hedges: AtomicU64::new(0),
            planted: crate::planted::Planted::default(),
        }
    }

    /// Plants a deliberate bug, to prove the property tests catch it. Fails
    /// unless built with the `planted-bug` feature.
    pub fn plant(&mut self, bug: crate::PlantedBug) -> Result<(), crate::NotBuiltIn> {
        self.planted.plant(bug)
    }

    /// An orchestrator for the servers and policy of `config`.
    pub fn from_config(config: &Config, seed: u64) -> Self {
        let servers = config
            .servers
            .iter()
            .map(|s| (s.name.clone(), connector::from_config(&s.transport)))
            .collect();
        Self::new(servers, config.policy, seed)
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Connections and retries so far.
    pub fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        Stats {
            connections: self
                .servers
                .iter()
                .map(|s| (s.name.clone(), s.connections.load(Relaxed)))
                .collect(),
            calls: self.calls.load(Relaxed),
            retries: self.retries.load(Relaxed),
            hedges: self.hedges.load(Relaxed),
            breaker_trips: self
                .servers
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        s.breaker.lock().expect("breaker lock").trips(),
                    )
                })
                .collect(),
        }
    }

    /// Answers `question`, recording each step in `trace`.
    pub async fn ask(
        &self,
        question: &str,
        trace: &mut Vec<StepTrace>,
    ) -> Result<Answer, AskError> {
        let question = planner::parse_question(question)?;
        let deadline = Instant::now() + self.policy.deadline;
        let (catalog, down) = self.catalog_until(deadline).await;
        let plan = match planner::plan(question, &catalog) {
            Ok(plan) => plan,
            Err(PlanError::MissingTool { needed, .. }) if !down.is_empty() => {
                return Err(AskError::Unavailable {
                    needed: needed.to_owned(),
                    down,
                });
            }
            Err(error) => return Err(error.into()),
        };
        self.execute(&plan, deadline, trace).await
    }

    /// Runs a plan's steps in order.
    pub async fn execute(
        &self,
        plan: &Plan,
        deadline: Instant,
        trace: &mut Vec<StepTrace>,
    ) -> Result<Answer, AskError> {
        let (email, count) = match &plan.question {
            Question::UserId { email } => (email, None),
            Question::Transactions { email, count } => (email, *count),
        };
        let reply = self
            .step(
                1,
                &plan.lookup,
                plan.lookup.arguments(email, None),
                deadline,
                trace,
            )
            .await?;
        if reply.is_error == Some(true) {
            let message = answer::first_text(&reply)
                .unwrap_or("(no message)")
                .to_owned();
            // The original demo's wording, and ours: "User with email X not found".
            if message.to_lowercase().contains("not found") {
                return Ok(Answer::UnknownUser {
                    email: email.clone(),
                });
            }
            return Err(tool_error(1, &plan.lookup, message));
        }
        let (user_id, name) =
            answer::read_user_id(&reply).map_err(|problem| bad_reply(1, &plan.lookup, problem))?;
        let Some(list) = &plan.list else {
            return Ok(Answer::UserId {
                email: email.clone(),
                user_id,
                name,
            });
        };
        let reply = self
            .step(2, list, list.arguments(&user_id, count), deadline, trace)
            .await?;
        if reply.is_error == Some(true) {
            let message = answer::first_text(&reply)
                .unwrap_or("(no message)")
                .to_owned();
            return Err(tool_error(2, list, message));
        }
        let mut transactions =
            answer::read_transactions(&reply).map_err(|problem| bad_reply(2, list, problem))?;
        if let Some(count) = count {
            transactions.truncate(count as usize);
        }
        Ok(Answer::Transactions {
            email: email.clone(),
            user_id,
            count,
            transactions,
        })
    }

    /// Connects to every server (those already connected cost nothing) and
    /// lists their tools. Returns the catalog of the reachable ones and, for
    /// the rest, why not.
    pub async fn catalog(&self) -> (Catalog, Vec<(String, CallError)>) {
        self.catalog_until(Instant::now() + self.policy.deadline)
            .await
    }

    async fn catalog_until(&self, deadline: Instant) -> (Catalog, Vec<(String, CallError)>) {
        let results = join_all(self.servers.iter().map(|server| async move {
            // A live session costs nothing and draws nothing from the retry
            // budget; only a (re)connect goes through the retry loop.
            if let Some(live) = server.live.lock().await.clone()
                && !live.client.is_closed()
            {
                return (server, Ok(live));
            }
            if let Err(open) = server.admit() {
                return (server, Err(open));
            }
            let result = self
                .retrying(deadline, true, move |_| {
                    self.live(server, &server.live, deadline)
                })
                .await
                .map(|(live, _attempts)| live);
            server.report(result.is_ok());
            (server, result)
        }))
        .await;
        let mut reachable = Vec::new();
        let mut down = Vec::new();
        for (server, result) in results {
            match result {
                Ok(live) => reachable.push((server.name.clone(), live.tools.as_ref().clone())),
                Err(error) => down.push((server.name.clone(), error)),
            }
        }
        (Catalog::new(reachable), down)
    }

    /// One traced step: call `tool` with `arguments` under the retry policy.
    async fn step(
        &self,
        step: usize,
        tool: &ToolRef,
        arguments: Map<String, Value>,
        deadline: Instant,
        trace: &mut Vec<StepTrace>,
    ) -> Result<CallToolResult, AskError> {
        let started = Instant::now();
        let result = self.call(tool, arguments.clone(), deadline).await;
        let (outcome, attempts) = match &result {
            Ok((reply, attempts)) if reply.is_error == Some(true) => (
                format!("tool error: {}", answer::first_text(reply).unwrap_or("")),
                *attempts,
            ),
            Ok((_, attempts)) => ("ok".to_owned(), *attempts),
            Err(error) => (error.to_string(), attempts_of(error)),
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

    /// Calls one tool under the policy: per-attempt timeout, reconnect on a
    /// broken or silent connection, backoff with full jitter, retry budget,
    /// overall deadline. Returns the reply and the attempts it took.
    pub async fn call(
        &self,
        tool: &ToolRef,
        arguments: Map<String, Value>,
        deadline: Instant,
    ) -> Result<(CallToolResult, u32), CallError> {
        let server = self
            .servers
            .iter()
            .find(|s| s.name == tool.server)
            .expect("plans only name configured servers");
        let stale = self.planted.stale_arguments(&server.name, &arguments);
        let (arguments, stale) = (&arguments, &stale);
        let hedge_after = self.policy.hedge_after.filter(|_| tool.retry_safe);
        self.retrying(deadline, tool.retry_safe, move |attempt| async move {
            // The planted bug (never in a normal build): retries re-send
            // the previous call's arguments.
            let arguments = match stale {
                Some(stale) if attempt > 1 => stale,
                _ => arguments,
            };
            match hedge_after {
                Some(after) => {
                    self.attempt_hedged(server, tool, arguments, deadline, after)
                        .await
                }
                None => {
                    self.attempt_call(server, &server.live, tool, arguments, deadline)
                        .await
                }
            }
        })
        .await
    }

    /// One attempt on the live session, and, if it has not answered after
    /// `after`, a second copy on the spare session: the first reply wins.
    /// When the copy wins, its session becomes the live one and the slow
    /// one is closed (a stalled TCP stream never recovers).
    async fn attempt_hedged(
        &self,
        server: &Server,
        tool: &ToolRef,
        arguments: &Map<String, Value>,
        deadline: Instant,
        after: Duration,
    ) -> Attempt<CallToolResult> {
        let primary = self.attempt_call(server, &server.live, tool, arguments, deadline);
        tokio::pin!(primary);
        tokio::select! {
            biased;
            done = &mut primary => return done,
            () = tokio::time::sleep(after) => {}
        }
        // While the first attempt is pending, hedge again if a hedge fails
        // (its new connection may have been lost too), within the attempt
        // limit and the retry budget.
        for _ in 1..self.policy.attempts_max.max(2) {
            if !self.budget.try_withdraw(&self.policy) {
                break;
            }
            self.hedges.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(server = %server.name, tool = %tool.tool, "hedging a slow call");
            let hedge = self.attempt_call(server, &server.spare, tool, arguments, deadline);
            tokio::pin!(hedge);
            tokio::select! {
                biased;
                first = &mut primary => {
                    return match first {
                        Attempt::Retry(_) => hedge.await,
                        done_or_fatal => done_or_fatal,
                    };
                }
                second = &mut hedge => match second {
                    Attempt::Done(reply) => {
                        self.promote_spare(server).await;
                        return Attempt::Done(reply);
                    }
                    // A refused token is refused on every session: stop.
                    denied @ Attempt::Fail(CallError::Denied { .. }) => return denied,
                    Attempt::Retry(_) | Attempt::Fail(_) => {}
                },
            }
        }
        primary.await
    }

    /// Makes the spare session the live one, closing the live one.
    async fn promote_spare(&self, server: &Server) {
        let mut live = server.live.lock().await;
        let mut spare = server.spare.lock().await;
        if let Some(fresh) = spare.take()
            && !fresh.client.is_closed()
        {
            tracing::info!(server = %server.name, generation = fresh.generation, "the hedge won: its connection becomes the live one");
            if let Some(slow) = live.replace(fresh) {
                slow.client.cancellation_token().cancel();
            }
        }
    }

    /// One attempt at a call on the session in `slot`: get a live session,
    /// call, classify the result.
    async fn attempt_call(
        &self,
        server: &Server,
        slot: &Slot,
        tool: &ToolRef,
        arguments: &Map<String, Value>,
        deadline: Instant,
    ) -> Attempt<CallToolResult> {
        if let Err(open) = server.admit() {
            return Attempt::Fail(open);
        }
        let attempt = self
            .attempt_call_admitted(server, slot, tool, arguments, deadline)
            .await;
        // A JSON-RPC error, a refused token or a 429 (which paces the retry
        // itself) still proves the server is alive.
        server.report(matches!(
            attempt,
            Attempt::Done(_)
                | Attempt::Fail(CallError::Refused { .. } | CallError::Denied { .. })
                | Attempt::Retry(CallError::RateLimited { .. })
        ));
        attempt
    }

    async fn attempt_call_admitted(
        &self,
        server: &Server,
        slot: &Slot,
        tool: &ToolRef,
        arguments: &Map<String, Value>,
        deadline: Instant,
    ) -> Attempt<CallToolResult> {
        let live = match self.live(server, slot, deadline).await {
            Attempt::Done(live) => live,
            Attempt::Retry(error) => return Attempt::Retry(error),
            Attempt::Fail(error) => return Attempt::Fail(error),
        };
        let params =
            CallToolRequestParams::new(tool.tool.clone()).with_arguments(arguments.clone());
        let timeout = self
            .policy
            .call_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(timeout, live.client.call_tool(params)).await {
            Ok(Ok(reply)) => Attempt::Done(reply),
            Ok(Err(ServiceError::McpError(error))) => Attempt::Fail(CallError::Refused {
                code: error.code.0,
                message: error.message.to_string(),
            }),
            Ok(Err(error)) if let Some(refusal) = crate::connector::HttpRefusal::find(&error) => {
                match refusal {
                    crate::connector::HttpRefusal::RateLimited { .. } => {
                        Attempt::Retry(CallError::RateLimited {
                            attempts: 0,
                            refusal,
                        })
                    }
                    _ => Attempt::Fail(CallError::Denied {
                        source: ConnectError::Denied {
                            target: server.connector.target(),
                            refusal,
                        },
                    }),
                }
            }
            Ok(Err(error)) => {
                self.drop_live(server, live.generation).await;
                Attempt::Retry(CallError::Transport {
                    attempts: 0,
                    message: error.to_string(),
                })
            }
            Err(_elapsed) => {
                // The reply may still come, or the stream may be stalled for
                // good (a lost segment is never retransmitted): start afresh.
                // The server may still run the call: calls are at-least-once.
                self.drop_live(server, live.generation).await;
                Attempt::Retry(CallError::Timeout {
                    attempts: 0,
                    timeout_ms: timeout.as_millis(),
                })
            }
        }
    }

    /// The retry loop. `op` gets the attempt number (1-based).
    async fn retrying<T, F>(
        &self,
        deadline: Instant,
        retry_safe: bool,
        mut op: impl FnMut(u32) -> F,
    ) -> Result<(T, u32), CallError>
    where
        F: Future<Output = Attempt<T>>,
    {
        self.budget.deposit(&self.policy);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if Instant::now() >= deadline {
                return Err(CallError::Deadline {
                    attempts: attempt - 1,
                    deadline_ms: self.policy.deadline.as_millis(),
                });
            }
            let error = match op(attempt).await {
                Attempt::Done(value) => return Ok((value, attempt)),
                Attempt::Fail(error) => return Err(with_attempts(error, attempt)),
                Attempt::Retry(error) => with_attempts(error, attempt),
            };
            if !retry_safe || attempt >= self.policy.attempts_max {
                return Err(error);
            }
            if !self.budget.try_withdraw(&self.policy) {
                return Err(CallError::BudgetExhausted {
                    attempts: attempt,
                    last: error.to_string(),
                });
            }
            let mut pause = {
                let mut rng = self.rng.lock().expect("rng lock");
                self.policy.backoff(attempt, &mut *rng)
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let CallError::RateLimited {
                refusal:
                    crate::connector::HttpRefusal::RateLimited {
                        retry_after: Some(after),
                    },
                ..
            } = &error
            {
                // The server said when: not sooner, and not at all if that
                // is past the deadline (waiting would only fail later).
                if *after >= remaining {
                    return Err(error);
                }
                pause = pause.max(*after);
            }
            if pause >= remaining {
                tokio::time::sleep(remaining).await;
                return Err(CallError::Deadline {
                    attempts: attempt,
                    deadline_ms: self.policy.deadline.as_millis(),
                });
            }
            tracing::debug!(attempt, ?pause, %error, "retrying");
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(pause).await;
        }
    }

    /// The session in `slot` (the server's live or spare one), connecting
    /// (and listing its tools) if there is none or it has closed.
    async fn live(&self, server: &Server, slot: &Slot, deadline: Instant) -> Attempt<Live> {
        let mut slot = slot.lock().await;
        if let Some(live) = slot.as_ref() {
            if !live.client.is_closed() {
                return Attempt::Done(live.clone());
            }
            tracing::info!(server = %server.name, "connection closed; reconnecting");
        }
        *slot = None;
        let generation = server.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let timeout = self
            .policy
            .connect_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let connect = async {
            let client = server
                .connector
                .connect()
                .await
                .map_err(|source| match source {
                    ConnectError::Denied { .. } | ConnectError::Credential { .. } => {
                        (CallError::Denied { source }, false)
                    }
                    ConnectError::RateLimited { refusal, .. } => (
                        CallError::RateLimited {
                            attempts: 0,
                            refusal,
                        },
                        true,
                    ),
                    source => {
                        let retryable = source.is_retryable();
                        (
                            CallError::Connect {
                                attempts: 0,
                                source,
                            },
                            retryable,
                        )
                    }
                })?;
            let tools = client.list_all_tools().await.map_err(|error| {
                match crate::connector::HttpRefusal::find(&error) {
                    Some(refusal @ crate::connector::HttpRefusal::RateLimited { .. }) => (
                        CallError::RateLimited {
                            attempts: 0,
                            refusal,
                        },
                        true,
                    ),
                    Some(refusal) => (
                        CallError::Denied {
                            source: ConnectError::Denied {
                                target: server.connector.target(),
                                refusal,
                            },
                        },
                        false,
                    ),
                    None => (
                        CallError::Transport {
                            attempts: 0,
                            message: format!("listing tools failed: {error}"),
                        },
                        true,
                    ),
                }
            })?;
            Ok::<_, (CallError, bool)>((client, tools))
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok((client, tools))) => {
                tracing::debug!(server = %server.name, generation, tools = tools.len(), "connected");
                let live = Live {
                    client: Arc::new(client),
                    tools: Arc::new(tools),
                    generation,
                };
                *slot = Some(live.clone());
                Attempt::Done(live)
            }
            Ok(Err((error, true))) => Attempt::Retry(error),
            Ok(Err((error, false))) => Attempt::Fail(error),
            Err(_) => Attempt::Retry(CallError::Connect {
                attempts: 0,
                source: ConnectError::Handshake {
                    target: server.connector.target(),
                    message: format!("no answer within {} ms", timeout.as_millis()),
                    stderr_tail: String::new(),
                },
            }),
        }
    }

    /// Drops the session `generation` of `server`, unless a newer one
    /// already replaced it.
    async fn drop_live(&self, server: &Server, generation: u64) {
        for slot in [&server.live, &server.spare] {
            let mut slot = slot.lock().await;
            if slot.as_ref().is_some_and(|l| l.generation == generation) {
                tracing::info!(server = %server.name, generation, "dropping connection");
                if let Some(live) = slot.take() {
                    live.client.cancellation_token().cancel();
                }
            }
        }
    }

    /// Closes every connection (and stops stdio child processes).
    pub async fn shutdown(&self) {
        for slot in self.servers.iter().flat_map(|s| [&s.live, &s.spare]) {
            let Some(live) = slot.lock().await.take() else {
                continue;
            };
            match Arc::try_unwrap(live.client) {
                // Waits for the transport to close (and a stdio child to exit).
                Ok(client) => drop(client.cancel().await),
                Err(shared) => shared.cancellation_token().cancel(),
            }
        }
    }
}

fn with_attempts(mut error: CallError, n: u32) -> CallError {
    match &mut error {
        CallError::Connect { attempts, .. }
        | CallError::Timeout { attempts, .. }
        | CallError::Transport { attempts, .. }
        | CallError::Deadline { attempts, .. }
        | CallError::RateLimited { attempts, .. }
        | CallError::BudgetExhausted { attempts, .. } => *attempts = n,
        CallError::Refused { .. } | CallError::CircuitOpen { .. } | CallError::Denied { .. } => {}
    }
    error
}

fn attempts_of(error: &CallError) -> u32 {
    match error {
        CallError::Connect { attempts, .. }
        | CallError::Timeout { attempts, .. }
        | CallError::Transport { attempts, .. }
        | CallError::Deadline { attempts, .. }
        | CallError::RateLimited { attempts, .. }
        | CallError::BudgetExhausted { attempts, .. } => *attempts,
        CallError::Refused { .. } | CallError::CircuitOpen { .. } | CallError::Denied { .. } => 1,
    }
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
