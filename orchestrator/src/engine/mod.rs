//! The orchestrator: it answers a question by listing every server's tools,
//! planning, and executing the plan's calls under the [`Policy`].
//!
//! - [`sessions`]: per-server live and spare sessions, generations,
//!   reconnects, the circuit breaker's bookkeeping;
//! - [`attempt`]: one attempt at one call on one session;
//! - [`retry`]: the one retry loop, and the one place a [`CallError`] is
//!   built with its attempts;
//! - [`hedge`]: a second copy of a slow read-only call;
//! - [`execute`]: running a plan's steps, and what their replies mean.

mod attempt;
mod execute;
mod hedge;
mod llm;
mod retry;
mod sessions;

use std::{
    fmt,
    sync::{Arc, Mutex, atomic::AtomicU64},
};

use futures::future::join_all;
use rand::{SeedableRng, rngs::SmallRng};
use rmcp::model::CallToolResult;
use serde_json::{Map, Value};
use tokio::time::Instant;

pub use execute::StepTrace;

use crate::{
    answer::Answer,
    catalog::Catalog,
    config::Config,
    connector::Connector,
    error::{AskError, CallError},
    event::{EventKind, Observer},
    llm::{LlmPlanner, Planner},
    planner::{self, PlanError, ToolRef},
    policy::{Policy, RetryBudget},
    stats::Stats,
};
use attempt::Call;
use sessions::Server;

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
    /// Told of every connection, retry, hedge and breaker transition.
    observer: Option<Observer>,
    /// The LLM planner, when a model chooses the calls.
    llm: Option<LlmPlanner>,
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

impl Orchestrator {
    /// An orchestrator over `servers`, in the given order. `seed` drives
    /// backoff jitter: pass a fixed one under simulation.
    pub fn new(servers: Vec<(String, Arc<dyn Connector>)>, policy: Policy, seed: u64) -> Self {
        Self {
            servers: servers
                .into_iter()
                .map(|(name, connector)| Server::new(name, connector, &policy))
                .collect(),
            policy,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            budget: RetryBudget::new(&policy),
            calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            hedges: AtomicU64::new(0),
            observer: None,
            llm: None,
        }
    }

    /// The same orchestrator, with a model choosing the calls
    /// ([`LlmPlanner`]) instead of the deterministic planner.
    pub fn with_llm(mut self, planner: LlmPlanner) -> Self {
        self.llm = Some(planner);
        self
    }

    /// The LLM planner, if one chooses the calls.
    pub fn llm(&self) -> Option<&LlmPlanner> {
        self.llm.as_ref()
    }

    /// The same orchestrator, telling `observer` of every connection,
    /// retry, hedge and circuit-breaker transition as it happens.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    fn emit(&self, server: &Server, kind: EventKind) {
        self.emit_named(&server.name, kind);
    }

    /// Tells the observer of `kind` about the server (or model endpoint)
    /// called `name`.
    fn emit_named(&self, name: &str, kind: EventKind) {
        if let Some(observer) = &self.observer {
            observer.emit(name, kind);
        }
    }

    /// Tells `server`'s breaker how a request went, and the observer if
    /// that opened or closed it.
    fn report(&self, server: &Server, healthy: bool) {
        if let Some(change) = server.report(healthy) {
            self.emit(server, change);
        }
    }

    /// An orchestrator for the servers, policy and planner of `config`
    /// (an LLM planner reaches its model through [`crate::NetDialer`]).
    pub fn from_config(config: &Config, seed: u64) -> Self {
        let servers = config
            .servers()
            .iter()
            .map(|s| (s.name.clone(), s.transport.connector()))
            .collect();
        let orchestrator = Self::new(servers, config.policy(), seed);
        match config.planner() {
            Planner::Rules => orchestrator,
            Planner::Llm(settings) => orchestrator.with_llm(LlmPlanner::new(
                settings.clone(),
                crate::NetDialer::default(),
                &config.policy(),
            )),
        }
    }

    /// The policy every call follows.
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
                .map(|s| (s.name.clone(), s.connections()))
                .collect(),
            calls: self.calls.load(Relaxed),
            retries: self.retries.load(Relaxed),
            hedges: self.hedges.load(Relaxed),
            breaker_trips: self
                .servers
                .iter()
                .map(|s| (s.name.clone(), s.breaker_trips()))
                .collect(),
        }
    }

    /// Answers `question`, recording each step in `trace`.
    pub async fn ask(
        &self,
        question: &str,
        trace: &mut Vec<StepTrace>,
    ) -> Result<Answer, AskError> {
        if let Some(llm) = &self.llm {
            return self.ask_llm(llm, question, trace).await;
        }
        let question = planner::parse_question(question)?;
        let deadline = Instant::now() + self.policy.settings().deadline;
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

    /// Connects to every server (those already connected cost nothing) and
    /// lists their tools. Returns the catalog of the reachable ones and, for
    /// the rest, why not.
    pub async fn catalog(&self) -> (Catalog, Vec<(String, CallError)>) {
        self.catalog_until(Instant::now() + self.policy.settings().deadline)
            .await
    }

    async fn catalog_until(&self, deadline: Instant) -> (Catalog, Vec<(String, CallError)>) {
        let results = join_all(self.servers.iter().map(|server| async move {
            // A live session costs nothing and draws nothing from the retry
            // budget; only a (re)connect goes through the retry loop.
            if let Some(live) = server.open_live().await {
                return (server, Ok(live));
            }
            if let Err(open) = server.admit() {
                return (server, Err(retry::refused_before_trying(open)));
            }
            let result = self
                .retrying(&server.name, deadline, true, move || {
                    self.live(server, &server.live, deadline)
                })
                .await
                .map(|(live, _attempts)| live);
            self.report(server, result.is_ok());
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

    /// Calls one tool under the policy: per-attempt timeout, reconnect on a
    /// broken or silent connection, backoff with full jitter, retry budget,
    /// overall deadline, and a hedge for a slow read if the policy says so.
    /// Returns the reply and the attempts it took.
    async fn call(
        &self,
        tool: &ToolRef,
        arguments: &Map<String, Value>,
        deadline: Instant,
    ) -> Result<(CallToolResult, u32), CallError> {
        let server = self
            .servers
            .iter()
            .find(|s| s.name == tool.server)
            .expect("plans only name configured servers");
        let call = Call {
            server,
            tool,
            arguments,
            deadline,
        };
        let hedge_after = self
            .policy
            .settings()
            .hedge_after
            .filter(|_| tool.retry_safe);
        self.retrying(
            &server.name,
            deadline,
            tool.retry_safe,
            move || async move {
                match hedge_after {
                    Some(after) => self.attempt_hedged(call, after).await,
                    None => self.attempt_call(call, &server.live).await,
                }
            },
        )
        .await
    }

    /// Closes every session, those already given up on included, and waits
    /// until they have closed, each for at most 2 s: over HTTP each is
    /// deleted on its server (`DELETE`), stdio child processes exit. Call it
    /// before exiting, so that no server keeps a session nobody will use.
    pub async fn shutdown(&self) {
        join_all(self.servers.iter().map(Server::close_all)).await;
    }
}
