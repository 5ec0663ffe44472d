//! One simulated run: the real servers and the orchestrator on turmoil
//! hosts, faults applied from the outer `step()` loop, every answer checked
//! against the oracle.
//!
//! A run is four steps, each in its own module: install the hosts
//! ([`hosts`]: servers, attacker, proxy), spawn the clients ([`clients`]),
//! drive the faults ([`world`]) and assemble the report, with its
//! verdicts ([`verdict`]).

mod clients;
mod hosts;
mod http;
mod model;
mod verdict;
mod world;

use std::{
    fmt::Write as _,
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use orchestrator::{Event, Stats, StepTrace};

use crate::{
    attacker,
    dataset::Dataset,
    oracle::{Expected, Oracle},
    scenario::{DatasetSource, Fault, Invariant, QuestionForms, Questions, Scenario},
    strategies,
};

/// Every server listens on this port of its host.
pub(crate) const PORT: u16 = 9000;

/// What happened to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The oracle's answer.
    Right,
    /// A typed error: allowed while faults are active.
    Error(String),
    /// An answer that differs from the oracle's: a safety violation.
    Wrong { got: String, expected: String },
}

/// One query of a run.
#[derive(Debug, Clone)]
pub struct QueryRecord {
    /// Its number in the workload (queries from concurrent loops interleave).
    pub index: usize,
    /// The client host that asked it (0 for `client`, 1 for `client2`, …).
    pub client: usize,
    pub question: String,
    /// Simulated time since the run started.
    pub start: Duration,
    pub latency: Duration,
    pub attempts: u32,
    pub outcome: Outcome,
    /// The rendered answer, when there was one (right or wrong).
    pub answer: Option<String>,
    /// Each step's call as the orchestrator traced it (server, tool,
    /// arguments, attempts, latency, outcome).
    pub steps: Vec<StepTrace>,
}

impl QueryRecord {
    /// Its trace line after "query N: ".
    fn summary(&self) -> String {
        let outcome = match &self.outcome {
            Outcome::Right => "right".to_owned(),
            Outcome::Error(e) => format!("error: {e}"),
            Outcome::Wrong { got, .. } => format!("WRONG: {got:?}"),
        };
        format!(
            "{outcome} ({} ms, {} attempt(s))",
            self.latency.as_millis(),
            self.attempts
        )
    }
}

/// One applied fault, as the run report's timeline draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpan {
    /// The fault as it ran: a link fault towards a proxied server acts on
    /// the proxy's link (its start is `fault.at`).
    pub fault: Fault,
    /// When it healed; `None` for an instant fault (bounce) or one still
    /// active when the run ended.
    pub healed: Option<Duration>,
}

/// What one client's orchestrator did (a connection, a retry, a hedge, a
/// breaker opening or closing), at a simulated time since the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEvent {
    pub at: Duration,
    /// The client host (0 for `client`, 1 for `client2`, …).
    pub client: usize,
    pub event: Event,
}

/// The verdict on one invariant.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub invariant: Invariant,
    pub held: bool,
    pub detail: String,
}

/// Everything one seed produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub seed: u64,
    pub queries: Vec<QueryRecord>,
    pub faults_applied: usize,
    /// The faults applied, counted by [`FaultKind::label`], in the order
    /// each kind was first applied.
    pub faults_by_kind: Vec<(String, usize)>,
    pub verdicts: Vec<Verdict>,
    /// Hash of the trace and the wire log: equal seeds give equal hashes.
    pub trace_hash: u64,
    /// Faults and queries, with simulated times.
    pub trace: String,
    /// Every chunk the client sent (`<`) to and received (`>`) from each
    /// server, with simulated times.
    pub wire: String,
    /// Calls, retries, hedges and (re)connections the orchestrators made,
    /// summed over the clients.
    pub stats: Stats,
    /// The most each server handled at once.
    pub load: Vec<ServerLoad>,
    /// Every fault applied, in the order applied, with its heal.
    pub faults: Vec<FaultSpan>,
    /// What the orchestrators did, in time order.
    pub events: Vec<ClientEvent>,
    /// Simulated time the run took.
    pub simulated: Duration,
    /// The scenario's expectation (pass, or the named invariant breaks) was met.
    pub as_expected: bool,
}

impl RunReport {
    /// The `p`-th quantile (0.5 for the median) of query latency, in
    /// simulated time, by the nearest-rank method; zero without queries.
    pub fn latency_percentile(&self, p: f64) -> Duration {
        percentile(&self.queries, p)
    }

    /// Connections the orchestrators opened beyond the first per server.
    pub fn reconnects(&self) -> u64 {
        self.stats
            .connections
            .iter()
            .map(|(_, n)| n.saturating_sub(1))
            .sum()
    }

    /// Times any server's circuit breaker opened.
    pub fn breaker_trips(&self) -> u64 {
        self.stats.breaker_trips.iter().map(|(_, n)| n).sum()
    }

    /// Attempts the servers were sent: first tries, retries and hedges.
    pub fn attempts(&self) -> u64 {
        self.stats.calls + self.stats.retries + self.stats.hedges
    }

    /// The faults applied by kind, as "2 bounce, 1 partition, 3 proxy drop"
    /// ("none" when there were none).
    pub fn faults_summary(&self) -> String {
        if self.faults_by_kind.is_empty() {
            return "none".to_owned();
        }
        self.faults_by_kind
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The nearest-rank `p`-th quantile of the queries' latencies.
pub(crate) fn percentile(queries: &[QueryRecord], p: f64) -> Duration {
    let mut latencies: Vec<Duration> = queries.iter().map(|q| q.latency).collect();
    latencies.sort_unstable();
    orchestrator::percentile(&latencies, p)
}

/// The busiest a server got during a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLoad {
    pub server: String,
    /// Most requests handled at once.
    pub in_flight_peak: u64,
    /// Most sessions (connections) open at once.
    pub sessions_peak: u64,
    /// What a rate-limit fault made it answer (HTTP only).
    pub rate_limited: RateLimited,
}

/// The 429s a rate-limit fault made a server send, and the requests that
/// came while their client should still have been waiting out a
/// `Retry-After`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimited {
    pub with_retry_after: u64,
    pub without_retry_after: u64,
    /// Requests that came early.
    pub early: u64,
    /// The first early requests: (arrived, told to wait at, wait ended),
    /// in simulated time since the run began.
    pub first_early: Vec<(Duration, Duration, Duration)>,
}

impl RateLimited {
    /// What the trace adds to a server's totals: nothing without a 429.
    fn summary(&self) -> String {
        let sent = self.with_retry_after + self.without_retry_after;
        if sent == 0 {
            return String::new();
        }
        format!(
            ", {sent} answered 429 ({} with Retry-After), {} request(s) before a Retry-After ended",
            self.with_retry_after, self.early
        )
    }
}

/// A run that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the simulation failed at {at_ms} ms: {message}")]
    Simulation { at_ms: u128, message: String },
    /// The dataset or the questions could not be generated from the seed.
    #[error("cannot generate the {what}: {message}")]
    Generate { what: &'static str, message: String },
}

/// The dataset a run serves, materialised from the scenario and the seed.
pub fn dataset_for(scenario: &Scenario, seed: u64) -> Result<Dataset, RunError> {
    match &scenario.dataset {
        DatasetSource::Demo => Ok(Dataset::demo()),
        DatasetSource::Inline(data) => Ok(data.clone()),
        DatasetSource::Generated {
            users,
            transactions,
        } => {
            let (users, transactions) = (*users as usize, *transactions as usize);
            strategies::sample(
                &strategies::dataset(users..=users, transactions..=transactions),
                seed,
            )
            .map_err(|message| RunError::Generate {
                what: "dataset",
                message,
            })
        }
    }
}

/// A question and the oracle's answer to it (or why there is none).
type Asked = (String, Expected);

/// The questions a run asks in turn, each with the oracle's answer.
fn questions_for(scenario: &Scenario, oracle: &Oracle, seed: u64) -> Result<Vec<Asked>, RunError> {
    match &scenario.workload.questions {
        Questions::Listed(listed) => Ok(listed
            .iter()
            .map(|q| (q.clone(), oracle.answer(q)))
            .collect()),
        Questions::Generated {
            pool,
            unknown_share,
            forms,
        } => {
            let pool = *pool as usize;
            // A different stream from the dataset's.
            let seed = seed ^ 0x5155_4553_5449_4f4e;
            let dataset = oracle.dataset();
            let asked = match forms {
                QuestionForms::Today => strategies::sample(
                    &proptest::collection::vec(
                        strategies::question(dataset, *unknown_share),
                        pool..=pool,
                    ),
                    seed,
                ),
                QuestionForms::All => strategies::sample(
                    &proptest::collection::vec(
                        strategies::plain_question(dataset, *unknown_share),
                        pool..=pool,
                    ),
                    seed,
                ),
            }
            .map_err(|message| RunError::Generate {
                what: "questions",
                message,
            })?;
            Ok(asked
                .into_iter()
                .map(|q| {
                    let expected = oracle.expect(&q.meaning);
                    (q.text, expected)
                })
                .collect())
        }
    }
}

/// Runs `scenario` once with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<RunReport, RunError> {
    let oracle = Oracle::new(dataset_for(scenario, seed)?);
    let (users, ledger) = oracle
        .dataset()
        .stores()
        .map_err(|error| RunError::Generate {
            what: "dataset",
            message: error.to_string(),
        })?;
    let asked = Arc::new(questions_for(scenario, &oracle, seed)?);
    align_task_ids();
    let mut sim = simulation(scenario, seed);
    let probes = hosts::install_servers(&mut sim, scenario, &hosts::Stores { users, ledger }, seed);
    let attack_log = hosts::install_attacker(&mut sim, scenario, oracle.dataset());
    let routes = hosts::install_proxy(&mut sim, scenario, seed);
    let model_log = model::install(&mut sim, scenario, seed);
    let truth = scenario.planner.llm().map(|_| Arc::new(oracle.clone()));
    let collected = clients::spawn_clients(
        &mut sim,
        scenario,
        &routes,
        clients::Asking {
            asked: asked.clone(),
            truth,
        },
        seed,
    );
    let driven = world::World {
        sim: &mut sim,
        scenario,
        probes: &probes,
        toxics: &routes.toxics,
    }
    .drive(&routes)?;
    drop(sim);
    let attack = std::mem::take(&mut *attack_log.lock().expect("attack log"));
    let model = std::mem::take(&mut *model_log.lock().expect("model log"));
    Ok(Assembly {
        scenario,
        seed,
        oracle: &oracle,
        questions: asked.len(),
        probes: &probes,
        attack: &attack,
        model: &model,
    }
    .report(collected, driven))
}

/// What the report of a run is made from, once the simulation is over.
struct Assembly<'a> {
    scenario: &'a Scenario,
    seed: u64,
    oracle: &'a Oracle,
    questions: usize,
    probes: &'a hosts::Probes,
    attack: &'a attacker::AttackLog,
    model: &'a model::ModelLog,
}

impl Assembly<'_> {
    fn report(&self, collected: clients::Collected, driven: world::Driven) -> RunReport {
        let queries = std::mem::take(&mut *collected.records.lock().expect("records"));
        let wire = std::mem::take(&mut *collected.wire.lock().expect("wire log")).text();
        let mut events = std::mem::take(&mut *collected.events.lock().expect("events"));
        events.sort_by_key(|e| e.at);
        let mut per_client = std::mem::take(&mut *collected.stats.lock().expect("stats"));
        per_client.sort_by_key(|(client, _)| *client);
        let stats = Stats::sum(per_client.into_iter().map(|(_, s)| s));
        let load = self.load();
        let mut trace = self.timeline(&queries, driven.events);
        write_totals(&mut trace, &stats, &load);
        if let Some(line) = self.model.totals() {
            let _ = writeln!(trace, "{line}");
        }
        let mut verdicts = verdict::check(&verdict::Record {
            scenario: self.scenario,
            queries: &queries,
            stats: &stats,
            load: &load,
            simulated: driven.simulated,
        });
        if self.scenario.attacker.is_some() {
            verdicts.push(verdict::leak_verdict(self.attack, self.oracle.dataset()));
        }
        let as_expected = match self.scenario.expect_fail {
            None => verdicts.iter().all(|v| v.held),
            Some(invariant) => verdicts.iter().any(|v| v.invariant == invariant && !v.held),
        };
        RunReport {
            seed: self.seed,
            queries,
            faults_applied: driven.faults_applied,
            faults_by_kind: driven.faults_by_kind,
            verdicts,
            trace_hash: fnv1a(trace.as_bytes()) ^ fnv1a(wire.as_bytes()).rotate_left(1),
            trace,
            wire,
            stats,
            load,
            faults: driven.spans,
            events,
            simulated: driven.simulated,
            as_expected,
        }
    }

    /// The trace's time-ordered lines: the dataset, every fault start and
    /// heal, every query, every attacker probe.
    fn timeline(&self, queries: &[QueryRecord], faults: Vec<(Duration, String)>) -> String {
        let mut events = vec![(Duration::ZERO, self.dataset_line())];
        events.extend(faults);
        let topology = &self.scenario.topology;
        let labelled = topology.clients() > 1;
        for q in queries {
            let by = if labelled {
                format!(
                    " ({})",
                    topology.name(crate::topology::Host::Client(q.client as u32))
                )
            } else {
                String::new()
            };
            events.push((q.start, format!("query {}{by}: {}", q.index, q.summary())));
        }
        events.extend(self.attack.events.iter().cloned());
        events.extend(self.model.lines.iter().cloned());
        // Stable: at equal times, faults (pushed first) come before queries.
        events.sort_by_key(|(at, _)| *at);
        let mut trace = String::new();
        for (at, line) in &events {
            let _ = writeln!(trace, "{:>8} ms  {line}", at.as_millis());
        }
        trace
    }

    fn dataset_line(&self) -> String {
        let dataset = self.oracle.dataset();
        format!(
            "dataset: {} ({} users, {} transactions); {} distinct question(s) from {} client(s)",
            match self.scenario.dataset {
                DatasetSource::Demo => "the demo's",
                DatasetSource::Generated { .. } => "generated from the seed",
                DatasetSource::Inline(_) => "the scenario's own",
            },
            dataset.users.len(),
            dataset.transactions.len(),
            self.questions,
            self.scenario.topology.clients()
        )
    }

    /// The busiest each server got, in topology order.
    fn load(&self) -> Vec<ServerLoad> {
        self.scenario
            .topology
            .servers()
            .map(|(id, server)| {
                let probe = self.probes.of(id);
                ServerLoad {
                    server: server.name.clone(),
                    in_flight_peak: probe.in_flight.peak(),
                    sessions_peak: probe.sessions.peak(),
                    rate_limited: probe.limit.report(),
                }
            })
            .collect()
    }
}

/// The trace's last lines: what the orchestrators did, what the servers bore.
fn write_totals(trace: &mut String, stats: &Stats, load: &[ServerLoad]) {
    let _ = writeln!(
        trace,
        "orchestrator: {} calls, {} retries, {} hedges; connections {}",
        stats.calls,
        stats.retries,
        stats.hedges,
        stats
            .connections
            .iter()
            .map(|(server, n)| format!("{server} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        trace,
        "servers: {}",
        load.iter()
            .map(|l| format!(
                "{} at most {} request(s) and {} session(s) at once{}",
                l.server,
                l.in_flight_peak,
                l.sessions_peak,
                l.rate_limited.summary()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// The turmoil simulation a run steps through.
fn simulation(scenario: &Scenario, seed: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .simulation_duration(scenario.duration)
        .tick_duration(scenario.tick)
        .min_message_latency(scenario.latency_min)
        .max_message_latency(scenario.latency_max)
        .repair_rate(scenario.repair_rate)
        .build()
}

/// tokio numbers tasks from one process-wide counter, and a runtime files
/// each task in one of its (4 on one thread) lists by that number modulo the
/// list count. When turmoil crashes or bounces a host, it drops the host's
/// runtime, which shuts the tasks down list by list: the order their
/// connections close in, and so which message draws which latency from the
/// seeded RNG, depends on the task numbers. Two runs in one process would
/// see different numbers. Starting every run at a number that is a multiple
/// of [`TASK_ID_ALIGNMENT`] files every task of a seed in the same list each
/// time, so a run in a process that has run others before replays one in a
/// fresh process exactly.
///
/// It cannot help when another thread spawns tokio tasks during the run
/// (parallel tests that each run a simulation, say): they take numbers from
/// the same counter.
fn align_task_ids() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    loop {
        let id = runtime.spawn(async {}).id();
        // `Id` shows its number; nothing else exposes it.
        match id.to_string().parse::<u64>() {
            Ok(n) if n % TASK_ID_ALIGNMENT == TASK_ID_ALIGNMENT - 1 => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// A multiple of the number of task lists a one-thread tokio runtime keeps
/// (4 in tokio 1.54), with room should that grow.
const TASK_ID_ALIGNMENT: u64 = 64;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
