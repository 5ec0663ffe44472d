//! Scenario files: the file form ([`ScenarioFile`], serde, with
//! `deny_unknown_fields`), validated table by table into the [`Scenario`]
//! the simulator runs. Every error names the file, the line and the field.
//! `harness explore` writes its cases as a [`ScenarioFile`] too, so what it
//! writes is read back by the same code.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use orchestrator::{HttpRevision, Policy, PolicyToml};
use payment_server::TransactionRecord;
use serde::{Deserialize, Serialize};
use toml::Spanned;
use user_server::UserRecord;

use crate::{
    dataset::Dataset,
    fault::{FaultEntry, FaultKind},
    topology::{Host, ServerSpec, Topology},
};

mod planner;

pub use planner::{LlmSetup, ModelSettings, PlannerSetup, Play};
pub(crate) use planner::{ModelTable, PlannerTable};

/// Largest generated or inline dataset.
pub(crate) const USERS_MAX: u32 = 10_000;
pub(crate) const TRANSACTIONS_MAX: u32 = 100_000;
/// Most repetitions one `every_ms` fault may make.
pub(crate) const REPEATS_MAX: usize = 1000;
/// Most distinct generated questions.
pub(crate) const QUESTION_POOL_MAX: u32 = 1000;
/// Longest simulated run a scenario may ask for.
pub(crate) const DURATION_LIMIT: Duration = Duration::from_secs(3600);
/// Most queries one run may issue.
pub(crate) const QUERIES_MAX: u32 = 10_000;
/// Most queries one run may have in flight at once.
pub(crate) const CONCURRENCY_MAX: u32 = 64;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The seed `harness run` uses when none is given.
    pub seed: u64,
    pub duration: Duration,
    pub tick: Duration,
    pub latency_min: Duration,
    pub latency_max: Duration,
    /// Chance per tick that a failed link (see [`FaultKind::LinkFailure`]) heals.
    pub repair_rate: f64,
    /// The servers and client hosts.
    pub topology: Topology,
    pub dataset: DatasetSource,
    pub workload: Workload,
    pub policy: Policy,
    /// Which planner the orchestrators use (`[planner]`), and for the LLM
    /// planner how the model host plays (`[model]`).
    pub planner: PlannerSetup,
    /// Sorted by start time.
    pub faults: Vec<Fault>,
    /// Queries starting this long after the last fault heals must all succeed.
    pub liveness_after: Duration,
    /// If set, at least this fraction of all queries must be right.
    pub availability_min: Option<f64>,
    /// If set, the circuit breakers must open at least this many times (and,
    /// with liveness, close again after the heal).
    pub breaker_trips_min: Option<u64>,
    /// If set, the p99 query latency (simulated) must not exceed it.
    pub p99_max: Option<Duration>,
    /// If set, the servers may see at most this many attempts (first,
    /// retries and hedges) per call the clients made.
    pub amplification_max: Option<f64>,
    /// Retries and hedges stay within what the retry budget allows.
    pub within_budget: bool,
    /// If set, no server ever handles more requests at once.
    pub in_flight_max: Option<u64>,
    /// If set, no server ever has more sessions (connections) open at once.
    pub sessions_max: Option<u64>,
    /// An intruder probing the servers' authenticated HTTP endpoints, if any;
    /// with one, the `leaks` invariant is checked.
    pub attacker: Option<Attacker>,
    /// The invariant this scenario is meant to break, if any.
    pub expect_fail: Option<Invariant>,
    /// A bug deliberately planted around the orchestrator's sessions
    /// ([`crate::planted`]), as written out by `harness explore`.
    pub planted_bug: Option<crate::planted::PlantedBug>,
}

/// The `[attacker]` table: an `attacker` host that replays the denial
/// matrix against the servers' HTTP endpoints while the workload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attacker {
    /// One probe this often.
    pub every: Duration,
    /// No probe starts after this (simulated time since the start).
    pub until: Duration,
    /// Serve the attacked endpoints with authentication off: a planted
    /// vulnerability, to prove the leak check catches what leaks.
    pub no_auth: bool,
}

/// What the servers are loaded with.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSource {
    /// The original demo's three users and six transactions.
    Demo,
    /// Drawn from the generators in [`crate::strategies`] with the run's seed:
    /// `users` addresses (fewer if some collide) and `transactions`.
    Generated { users: u32, transactions: u32 },
    /// Written out in the scenario file.
    Inline(Dataset),
}

/// The clients' questions.
#[derive(Debug, Clone)]
pub struct Workload {
    pub queries: u32,
    /// Queries in flight at once through each orchestrator.
    pub concurrency: u32,
    /// Pause between the end of one query and the start of the next.
    pub interval: Duration,
    /// Open loop: query n starts no earlier than n / rate after the start.
    pub rate_per_s: Option<f64>,
    pub questions: Questions,
    /// How the orchestrators reach the servers.
    pub transport: Transport,
}

/// How the workload's orchestrators reach the servers: the newline TCP
/// transport, or streamable HTTP with the kit's real router and
/// authentication and the orchestrator's real HTTP connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Tcp,
    Http(HttpRevision),
}

impl Transport {
    /// Its name in a scenario file and on the command line: `tcp`, or
    /// `http` with the revision (`http 2026-07-28`).
    pub fn describe(self) -> String {
        match self {
            Transport::Tcp => "tcp".into(),
            Transport::Http(revision) => format!("http {}", revision.name()),
        }
    }
}

impl Transport {
    /// The transport named by `--transport` and `--revision`, either of
    /// which may be left out: `current` fills in what is not said.
    pub fn parse(
        transport: Option<&str>,
        revision: Option<&str>,
        current: Transport,
    ) -> Result<Transport, String> {
        let revision = match revision {
            None => None,
            Some(name) => Some(HttpRevision::named(name).ok_or_else(|| {
                let known: Vec<&str> = HttpRevision::ALL.iter().map(|(n, _)| *n).collect();
                format!("--revision {name:?} is not one of {}", known.join(", "))
            })?),
        };
        let http = |revision: Option<HttpRevision>| {
            let current = match current {
                Transport::Http(r) => r,
                Transport::Tcp => HttpRevision::default(),
            };
            Transport::Http(revision.unwrap_or(current))
        };
        match (transport, revision) {
            (Some("tcp"), Some(_)) => Err("--revision is for --transport http".into()),
            (Some("tcp"), None) => Ok(Transport::Tcp),
            (Some("http"), revision) => Ok(http(revision)),
            (Some(other), _) => Err(format!("--transport {other:?} is not tcp or http")),
            (None, None) => Ok(current),
            (None, revision) if current != Transport::Tcp => Ok(http(revision)),
            (None, _) => Err("--revision needs --transport http (the scenario uses tcp)".into()),
        }
    }
}

/// `[workload] transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportName {
    Tcp,
    Http,
}

/// Which questions the workload asks, in turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Questions {
    Listed(Vec<String>),
    /// `pool` questions drawn with the run's seed from the dataset: every
    /// form the planner supports, emails in other cases, and a share of
    /// unknown addresses.
    Generated {
        pool: u32,
        unknown_share: f64,
        forms: QuestionForms,
    },
}

/// Which forms generated questions take (`[questions] forms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionForms {
    /// `"today"`, the default: the forms the planner has always read (a
    /// list, the newest n, a user id), as every scenario before `[questions]`
    /// asked them.
    Today,
    /// `"all"`: every form the planner reads (totals, counts, the oldest,
    /// dates, amounts, several addresses) and questions with qualifiers it
    /// does not read, which it must refuse.
    All,
}

/// One injected fault, with its hosts resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Its position in time order; names it in the trace and the proxy.
    pub id: usize,
    pub at: Duration,
    /// How long until it heals; `None` for instant faults (bounce).
    pub lasts: Option<Duration>,
    pub kind: FaultKind<Host>,
}

/// A property a run is checked for; `expected_to_break` names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Invariant {
    /// Every answer equals the oracle's, or is a typed error.
    Safety,
    /// After every fault heals, every query succeeds.
    Liveness,
    /// At least `availability_min` of all queries are right, faults or not.
    Availability,
    /// The breakers opened at least `breaker_trips_min` times.
    Breaker,
    /// The 99th percentile of query latency, in simulated time, is at most
    /// `p99_max`.
    Latency,
    /// Attempts per call stay under `amplification_max`: faults do not
    /// multiply the load on the servers.
    Amplification,
    /// Retries and hedges never exceed the retry budget's token bucket.
    Budget,
    /// Requests a server handles at once, and sessions it holds open, stay
    /// bounded.
    Load,
    /// Nothing the attacker received holds a record of the dataset, and
    /// every probe that was answered was refused with its 401 or 403.
    Leaks,
    /// Over HTTP, every client told by a 429 to wait (`Retry-After`) sends
    /// that server nothing more until the wait ends. Checked when a
    /// `rate_limit` fault sets `retry_after_s`.
    RetryAfter,
}

impl Invariant {
    /// Every invariant, in the order runs report them.
    pub const ALL: [Invariant; 10] = [
        Invariant::Safety,
        Invariant::Liveness,
        Invariant::Availability,
        Invariant::Breaker,
        Invariant::Latency,
        Invariant::Amplification,
        Invariant::Budget,
        Invariant::Load,
        Invariant::Leaks,
        Invariant::RetryAfter,
    ];

    /// Its name in a scenario file and in a run's verdicts.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::Safety => "safety",
            Invariant::Liveness => "liveness",
            Invariant::Availability => "availability",
            Invariant::Breaker => "breaker",
            Invariant::Latency => "latency",
            Invariant::Amplification => "amplification",
            Invariant::Budget => "budget",
            Invariant::Load => "load",
            Invariant::Leaks => "leaks",
            Invariant::RetryAfter => "retry_after",
        }
    }

    /// Whether a scenario with these settings checks it at all.
    fn is_checked(self, invariants: &InvariantsTable, setup: &Setup<'_>) -> bool {
        let Setup {
            has_attacker,
            planner,
            faults,
        } = *setup;
        match self {
            Invariant::Safety => true,
            Invariant::Liveness => !planner.is_adversarial(),
            Invariant::Availability => invariants.availability_min.is_some(),
            Invariant::Breaker => invariants.breaker_trips_min.is_some(),
            Invariant::Latency => invariants.p99_ms_max.is_some(),
            Invariant::Amplification => invariants.amplification_max.is_some(),
            Invariant::Budget => invariants.retries_within_budget,
            Invariant::Load => {
                invariants.in_flight_max.is_some() || invariants.sessions_max.is_some()
            }
            Invariant::Leaks => has_attacker,
            Invariant::RetryAfter => faults.iter().any(Fault::tells_when_to_retry),
        }
    }
}

/// What decides which invariants a scenario checks, besides `[invariants]`.
#[derive(Clone, Copy)]
struct Setup<'a> {
    has_attacker: bool,
    planner: &'a PlannerSetup,
    faults: &'a [Fault],
}

impl Fault {
    /// A rate limit that sends `Retry-After`.
    pub(crate) fn tells_when_to_retry(&self) -> bool {
        matches!(
            self.kind,
            FaultKind::RateLimit {
                retry_after_s: Some(_),
                ..
            }
        )
    }
}

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(path, &text)
    }

    /// Validates scenario text; `path` is only used in error messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let at = Locator { path, text };
        let file: ScenarioFile = toml::from_str(text).map_err(|error| {
            at.invalid(
                error.span().map_or(0, |s| s.start),
                error.message().to_owned(),
            )
        })?;
        file.validate(&at)
    }

    /// When the last fault heals (zero with no faults).
    pub fn healed_at(&self) -> Duration {
        self.faults
            .iter()
            .map(|f| f.at + f.lasts.unwrap_or_default())
            .max()
            .unwrap_or_default()
    }
}

/// Turns byte offsets into `file:line:` errors.
struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn invalid(&self, offset: usize, message: String) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_owned(),
            line: orchestrator::line_of(self.text, offset),
            message,
        }
    }
}

/// A scenario file as written: what `harness run` reads and `harness
/// explore` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioFile {
    pub name: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub duration_ms: Spanned<u64>,
    pub tick_ms: Spanned<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted_bug: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkTable>,
    /// The servers; `user` and `payment` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Spanned<Vec<ServerSpec>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<Spanned<DatasetTable>>,
    pub workload: Spanned<WorkloadTable>,
    /// The orchestrator's retry policy, as in its config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Spanned<toml::Table>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Spanned<FaultEntry<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attacker: Option<Spanned<AttackerTable>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invariants: Option<Spanned<InvariantsTable>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions: Option<Spanned<QuestionsTable>>,
    /// The planner: the rules (the default) or a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planner: Option<Spanned<PlannerTable>>,
    /// How the simulated model host plays, with `[planner] kind = "llm"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Spanned<ModelTable>>,
}

/// `[questions]`: the forms of generated questions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuestionsTable {
    pub forms: String,
}

fn default_seed() -> u64 {
    1
}

fn one() -> u32 {
    1
}

/// `[network]`: all optional, 0 by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkTable {
    #[serde(default)]
    pub latency_min_ms: u64,
    #[serde(default)]
    pub latency_max_ms: u64,
    #[serde(default)]
    pub repair_rate: f64,
}

/// `[dataset]`: generated from the seed, or written out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<GenerateTable>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transactions: Vec<TransactionRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerateTable {
    pub users: u32,
    pub transactions: u32,
}

/// `[workload]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkloadTable {
    pub queries: u32,
    #[serde(default = "one")]
    pub clients: u32,
    #[serde(default = "one")]
    pub concurrency: u32,
    #[serde(default)]
    pub interval_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_pool: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportName>,
    /// The MCP revision an HTTP workload negotiates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// `[attacker]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttackerTable {
    pub every_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    #[serde(default)]
    pub no_auth: bool,
}

/// `[invariants]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvariantsTable {
    #[serde(default)]
    pub liveness_after_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_trips_min: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amplification_max: Option<f64>,
    #[serde(default)]
    pub retries_within_budget: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_to_break: Option<Invariant>,
}

/// The span of a table, or the top of the file when it is absent.
fn start<T>(table: &Option<Spanned<T>>) -> usize {
    table.as_ref().map_or(0, |t| t.span().start)
}

impl Scenario {
    /// This scenario with its workload over `transport`.
    pub fn over(mut self, transport: Transport) -> Self {
        self.workload.transport = transport;
        self
    }
}

impl ScenarioFile {
    /// Validates every table, each in its own function, into a [`Scenario`].
    fn validate(self, at: &Locator<'_>) -> Result<Scenario, ScenarioError> {
        let duration = self.duration(at)?;
        let tick = self.tick(at)?;
        let network = self.network.clone().unwrap_or_default();
        check_network(&network).map_err(|m| at.invalid(0, format!("[network]: {m}")))?;
        let planner = self.planner_setup(at)?;
        let topology = self.topology(at, &planner)?;
        let dataset = self.dataset(at)?;
        let workload_at = self.workload.span().start;
        let mut workload = validate_workload(self.workload.get_ref())
            .map_err(|m| at.invalid(workload_at, format!("[workload]: {m}")))?;
        self.question_forms(&mut workload)
            .map_err(|m| at.invalid(start(&self.questions), format!("[questions]: {m}")))?;
        let policy = self.policy(at)?;
        let faults = self.faults(at, &topology, duration)?;
        let invariants = self
            .invariants
            .clone()
            .map(Spanned::into_inner)
            .unwrap_or_default();
        let expect_fail = self
            .expect_fail(
                &invariants,
                &Setup {
                    has_attacker: self.attacker.is_some(),
                    planner: &planner,
                    faults: &faults,
                },
            )
            .map_err(|m| at.invalid(start(&self.invariants), m))?;
        check_invariants(&invariants).map_err(|m| at.invalid(start(&self.invariants), m))?;
        Ok(Scenario {
            planted_bug: self.planted_bug(at)?,
            attacker: self.attacker(at, duration)?,
            name: self.name,
            seed: self.seed,
            duration,
            tick,
            latency_min: Duration::from_millis(network.latency_min_ms),
            latency_max: Duration::from_millis(network.latency_max_ms),
            repair_rate: network.repair_rate,
            topology,
            dataset,
            workload,
            policy,
            planner,
            faults,
            liveness_after: Duration::from_millis(invariants.liveness_after_ms),
            availability_min: invariants.availability_min,
            breaker_trips_min: invariants.breaker_trips_min,
            p99_max: invariants.p99_ms_max.map(Duration::from_millis),
            amplification_max: invariants.amplification_max,
            within_budget: invariants.retries_within_budget,
            in_flight_max: invariants.in_flight_max,
            sessions_max: invariants.sessions_max,
            expect_fail,
        })
    }

    /// Sets the forms of generated questions from `[questions]`.
    fn question_forms(&self, workload: &mut Workload) -> Result<(), String> {
        let Some(table) = &self.questions else {
            return Ok(());
        };
        let Questions::Generated { forms, .. } = &mut workload.questions else {
            return Err(
                "forms are for generated questions; drop [questions] or [workload] questions"
                    .into(),
            );
        };
        *forms = match table.get_ref().forms.as_str() {
            "today" => QuestionForms::Today,
            "all" => QuestionForms::All,
            other => return Err(format!("forms must be \"today\" or \"all\", not {other:?}")),
        };
        Ok(())
    }

    fn duration(&self, at: &Locator<'_>) -> Result<Duration, ScenarioError> {
        let duration = Duration::from_millis(*self.duration_ms.get_ref());
        if duration.is_zero() || duration > DURATION_LIMIT {
            return Err(at.invalid(
                self.duration_ms.span().start,
                format!(
                    "duration_ms must be between 1 and {}",
                    DURATION_LIMIT.as_millis()
                ),
            ));
        }
        Ok(duration)
    }

    fn tick(&self, at: &Locator<'_>) -> Result<Duration, ScenarioError> {
        let tick = Duration::from_millis(*self.tick_ms.get_ref());
        if tick.is_zero() || tick > Duration::from_secs(1) {
            return Err(at.invalid(
                self.tick_ms.span().start,
                "tick_ms must be between 1 and 1000".into(),
            ));
        }
        Ok(tick)
    }

    /// The servers and clients, and the model host for the LLM planner.
    fn topology(
        &self,
        at: &Locator<'_>,
        planner: &PlannerSetup,
    ) -> Result<Topology, ScenarioError> {
        let servers = self
            .servers
            .as_ref()
            .map_or_else(Topology::default_servers, |s| s.get_ref().clone());
        let table = if self.servers.is_some() {
            "[[servers]]"
        } else {
            "[workload]"
        };
        let offset = match &self.servers {
            Some(s) => s.span().start,
            None => self.workload.span().start,
        };
        let topology = Topology::new(servers, self.workload.get_ref().clients)
            .map_err(|m| at.invalid(offset, format!("{table}: {m}")))?;
        Ok(match planner.llm() {
            Some(_) => topology.with_model(),
            None => topology,
        })
    }

    fn dataset(&self, at: &Locator<'_>) -> Result<DatasetSource, ScenarioError> {
        let Some(table) = &self.dataset else {
            return Ok(DatasetSource::Demo);
        };
        validate_dataset(table.get_ref())
            .map_err(|m| at.invalid(table.span().start, format!("[dataset]: {m}")))
    }

    fn policy(&self, at: &Locator<'_>) -> Result<Policy, ScenarioError> {
        let Some(table) = &self.policy else {
            return Ok(Policy::DEFAULT);
        };
        let bad = |m: String| at.invalid(table.span().start, format!("[policy]: {m}"));
        let settings: PolicyToml = toml::Value::Table(table.get_ref().clone())
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().to_owned()))?;
        settings.into_policy().map_err(|e| bad(e.to_string()))
    }

    /// Every `[[faults]]` table, repetitions expanded, hosts resolved,
    /// sorted by start time and numbered.
    fn faults(
        &self,
        at: &Locator<'_>,
        topology: &Topology,
        duration: Duration,
    ) -> Result<Vec<Fault>, ScenarioError> {
        let mut faults = Vec::with_capacity(self.faults.len());
        for (index, entry) in self.faults.iter().enumerate() {
            let bad = |m: String| at.invalid(entry.span().start, format!("faults[{index}]: {m}"));
            faults.extend(validate_fault(entry.get_ref(), topology, duration).map_err(bad)?);
        }
        faults.sort_by_key(|f| f.at);
        for (id, fault) in faults.iter_mut().enumerate() {
            fault.id = id;
        }
        Ok(faults)
    }

    /// `[planner]` and `[model]`, or the rules planner without them.
    fn planner_setup(&self, at: &Locator<'_>) -> Result<PlannerSetup, ScenarioError> {
        let mut setup = match &self.planner {
            None => PlannerSetup::Rules,
            Some(table) => planner::validate_planner(table.get_ref())
                .map_err(|m| at.invalid(table.span().start, format!("[planner]: {m}")))?,
        };
        if let Some(table) = &self.model {
            let bad = |m: String| at.invalid(table.span().start, format!("[model]: {m}"));
            let PlannerSetup::Llm(llm) = &mut setup else {
                return Err(bad(
                    "the model host serves the LLM planner: set [planner] kind = \"llm\"".into(),
                ));
            };
            llm.model = planner::validate_model(table.get_ref()).map_err(bad)?;
        }
        Ok(setup)
    }

    fn expect_fail(
        &self,
        invariants: &InvariantsTable,
        setup: &Setup<'_>,
    ) -> Result<Option<Invariant>, String> {
        match self.expect.as_deref() {
            None | Some("pass") => Ok(None),
            Some("fail") => {
                let Some(invariant) = invariants.expected_to_break else {
                    return Err(format!(
                        "expect = \"fail\" needs [invariants] expected_to_break = one of {}",
                        Invariant::ALL
                            .map(|i| format!("\"{}\"", i.name()))
                            .join(", ")
                    ));
                };
                if !invariant.is_checked(invariants, setup) {
                    return Err(format!(
                        "expected_to_break = \"{}\" but [invariants] does not set it up",
                        invariant.name()
                    ));
                }
                Ok(Some(invariant))
            }
            Some(other) => Err(format!(
                "expect must be \"pass\" or \"fail\", got {other:?}"
            )),
        }
    }

    fn planted_bug(
        &self,
        at: &Locator<'_>,
    ) -> Result<Option<crate::planted::PlantedBug>, ScenarioError> {
        let Some(name) = &self.planted_bug else {
            return Ok(None);
        };
        let bad = |m: String| at.invalid(name.span().start, format!("planted_bug: {m}"));
        let bug = crate::planted::PlantedBug::from_name(name.get_ref()).ok_or_else(|| {
            bad(format!(
                "no bug called {:?}; there are: {}",
                name.get_ref(),
                crate::planted::PlantedBug::names()
            ))
        })?;
        Ok(Some(bug))
    }

    fn attacker(
        &self,
        at: &Locator<'_>,
        duration: Duration,
    ) -> Result<Option<Attacker>, ScenarioError> {
        let Some(table) = &self.attacker else {
            return Ok(None);
        };
        validate_attacker(table.get_ref(), duration)
            .map(Some)
            .map_err(|m| at.invalid(table.span().start, format!("[attacker] {m}")))
    }
}

fn check_network(network: &NetworkTable) -> Result<(), String> {
    if network.latency_min_ms > network.latency_max_ms {
        return Err("latency_min_ms must not exceed latency_max_ms".into());
    }
    if !(0.0..=1.0).contains(&network.repair_rate) {
        return Err("repair_rate must be between 0 and 1".into());
    }
    Ok(())
}

fn validate_dataset(table: &DatasetTable) -> Result<DatasetSource, String> {
    let inline = Dataset {
        users: table.users.clone(),
        transactions: table.transactions.clone(),
    };
    let has_inline = !inline.users.is_empty() || !inline.transactions.is_empty();
    match &table.generate {
        Some(_) if has_inline => {
            Err("either generate = { … } or users and transactions, not both".into())
        }
        Some(g) if g.users > USERS_MAX || g.transactions > TRANSACTIONS_MAX => Err(format!(
            "generate allows at most {USERS_MAX} users and {TRANSACTIONS_MAX} transactions"
        )),
        Some(g) => Ok(DatasetSource::Generated {
            users: g.users,
            transactions: g.transactions,
        }),
        None if inline.users.len() > USERS_MAX as usize
            || inline.transactions.len() > TRANSACTIONS_MAX as usize =>
        {
            Err(format!(
                "at most {USERS_MAX} users and {TRANSACTIONS_MAX} transactions"
            ))
        }
        None => {
            inline.stores().map_err(|e| e.to_string())?;
            Ok(DatasetSource::Inline(inline))
        }
    }
}

fn validate_workload(workload: &WorkloadTable) -> Result<Workload, String> {
    if let Some(rate) = workload.rate_per_s {
        if !(rate > 0.0 && rate <= 10_000.0) {
            return Err("rate_per_s must be above 0 and at most 10000".into());
        }
        if workload.interval_ms > 0 {
            return Err(
                "rate_per_s (open loop) and interval_ms (closed loop) exclude each other".into(),
            );
        }
    }
    if !(1..=QUERIES_MAX).contains(&workload.queries) {
        return Err(format!("queries must be between 1 and {QUERIES_MAX}"));
    }
    if !(1..=CONCURRENCY_MAX).contains(&workload.concurrency) {
        return Err(format!(
            "concurrency must be between 1 and {CONCURRENCY_MAX}"
        ));
    }
    Ok(Workload {
        queries: workload.queries,
        concurrency: workload.concurrency,
        interval: Duration::from_millis(workload.interval_ms),
        rate_per_s: workload.rate_per_s,
        questions: validate_questions(workload)?,
        transport: validate_transport(workload)?,
    })
}

fn validate_transport(workload: &WorkloadTable) -> Result<Transport, String> {
    let revision = match &workload.revision {
        None => HttpRevision::default(),
        Some(name) => HttpRevision::named(name).ok_or_else(|| {
            let known: Vec<&str> = HttpRevision::ALL.iter().map(|(n, _)| *n).collect();
            format!("revision {name:?} is not one of {}", known.join(", "))
        })?,
    };
    match workload.transport.unwrap_or(TransportName::Tcp) {
        TransportName::Tcp if workload.revision.is_some() => {
            Err("revision is negotiated over transport = \"http\" only".into())
        }
        TransportName::Tcp => Ok(Transport::Tcp),
        TransportName::Http => Ok(Transport::Http(revision)),
    }
}

fn validate_questions(workload: &WorkloadTable) -> Result<Questions, String> {
    let Some(listed) = &workload.questions else {
        let pool = workload.question_pool.unwrap_or(32);
        let unknown_share = workload.unknown_share.unwrap_or(0.2);
        if !(1..=QUESTION_POOL_MAX).contains(&pool) {
            return Err(format!(
                "question_pool must be between 1 and {QUESTION_POOL_MAX}"
            ));
        }
        if !(0.0..=1.0).contains(&unknown_share) {
            return Err("unknown_share must be between 0 and 1".into());
        }
        return Ok(Questions::Generated {
            pool,
            unknown_share,
            forms: QuestionForms::Today,
        });
    };
    if workload.question_pool.is_some() || workload.unknown_share.is_some() {
        return Err(
            "question_pool and unknown_share are for generated questions; drop them or questions"
                .into(),
        );
    }
    if listed.is_empty() {
        return Err("questions must list at least one question".into());
    }
    for question in listed {
        orchestrator::parse_question(question)
            .map_err(|e| format!("question {question:?} cannot be planned: {e}"))?;
        crate::Oracle::reads(question).map_err(|e| {
            format!("question {question:?} is not one the oracle reads ({e}); generate it with [questions] forms = \"all\" instead")
        })?;
    }
    Ok(Questions::Listed(listed.clone()))
}

/// One `[[faults]]` table: its hosts resolved, its values checked, and one
/// [`Fault`] per repetition.
fn validate_fault(
    entry: &FaultEntry<String>,
    topology: &Topology,
    duration: Duration,
) -> Result<Vec<Fault>, String> {
    entry.kind.validate()?;
    let kind = entry.kind.clone().resolve(topology)?;
    let lasts = entry.for_ms.map(Duration::from_millis);
    match (kind.is_instant(), lasts) {
        (true, Some(_)) => return Err(format!("{} is instant: drop for_ms", kind.label())),
        (false, None) => return Err("this kind needs for_ms (when it heals)".into()),
        (false, Some(d)) if d.is_zero() => return Err("for_ms must be positive".into()),
        _ => {}
    }
    let mut faults = Vec::new();
    for start in repetitions(entry)? {
        let fault = Fault {
            id: 0,
            at: Duration::from_millis(start),
            lasts,
            kind: kind.clone(),
        };
        if fault.at + fault.lasts.unwrap_or_default() >= duration {
            return Err("it must heal before duration_ms".into());
        }
        faults.push(fault);
    }
    Ok(faults)
}

/// When each repetition of a fault starts.
fn repetitions(entry: &FaultEntry<String>) -> Result<Vec<u64>, String> {
    match (entry.every_ms, entry.until_ms) {
        (None, None) => Ok(vec![entry.at_ms]),
        (Some(every), Some(until)) => {
            let lasts_ms = entry.for_ms.unwrap_or(0);
            if every <= lasts_ms {
                return Err(format!(
                    "every_ms ({every}) must exceed for_ms ({lasts_ms}): repetitions must not overlap"
                ));
            }
            if until <= entry.at_ms {
                return Err("until_ms must be after at_ms".into());
            }
            let starts: Vec<u64> = (entry.at_ms..until).step_by(every as usize).collect();
            if starts.len() > REPEATS_MAX {
                return Err(format!(
                    "every_ms and until_ms make {} repetitions; at most {REPEATS_MAX}",
                    starts.len()
                ));
            }
            Ok(starts)
        }
        (Some(_), None) => Err("every_ms needs until_ms (when repetitions stop)".into()),
        (None, Some(_)) => Err("until_ms needs every_ms".into()),
    }
}

fn check_invariants(invariants: &InvariantsTable) -> Result<(), String> {
    if let Some(min) = invariants.availability_min
        && !(0.0..=1.0).contains(&min)
    {
        return Err("[invariants]: availability_min must be between 0 and 1".into());
    }
    if let Some(max) = invariants.amplification_max
        && (max.is_nan() || max < 1.0)
    {
        return Err(
            "[invariants]: amplification_max must be at least 1 (every call is one attempt)".into(),
        );
    }
    Ok(())
}

fn validate_attacker(table: &AttackerTable, duration: Duration) -> Result<Attacker, String> {
    if table.every_ms == 0 || table.every_ms > 60_000 {
        return Err(format!(
            "every_ms must be between 1 and 60000, got {}",
            table.every_ms
        ));
    }
    let until = Duration::from_millis(table.until_ms.unwrap_or(duration.as_millis() as u64));
    if until > duration {
        return Err(format!(
            "until_ms ({}) is past the end of the run (duration_ms = {})",
            until.as_millis(),
            duration.as_millis()
        ));
    }
    Ok(Attacker {
        every: Duration::from_millis(table.every_ms),
        until,
        no_auth: table.no_auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
duration_ms = 60000
tick_ms = 1
[workload]
queries = 3
interval_ms = 100
questions = ["What are the recent transactions for bob@example.com?"]
"#;

    fn parse(extra: &str) -> Result<Scenario, String> {
        Scenario::from_toml(Path::new("s.toml"), &format!("{MINIMAL}{extra}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_faults_sorted_by_time() {
        let s = parse(
            r#"
[[faults]]
at_ms = 5000
for_ms = 1000
kind = "partition"
between = ["client", "payment"]
[[faults]]
at_ms = 1000
kind = "bounce"
host = "user"
"#,
        )
        .unwrap();
        assert_eq!(
            s.faults[0].kind,
            FaultKind::Bounce {
                host: s.topology.resolve("user").unwrap()
            }
        );
        assert_eq!(s.healed_at(), Duration::from_millis(6000));
        let repeated = parse(
            "[[faults]]\nat_ms = 1000\nfor_ms = 500\nevery_ms = 2000\nuntil_ms = 7000\nkind = \"crash\"\nhost = \"user\"\n",
        )
        .unwrap();
        let starts: Vec<u128> = repeated.faults.iter().map(|f| f.at.as_millis()).collect();
        assert_eq!(starts, [1000, 3000, 5000]);
        assert_eq!(repeated.healed_at(), Duration::from_millis(5500));
        assert_eq!(s.policy, Policy::DEFAULT);
    }

    #[test]
    fn an_attacker_table_sets_up_the_leak_check() {
        let s = Scenario::from_toml(
            Path::new("s.toml"),
            &format!("{MINIMAL}[attacker]\nevery_ms = 250\nuntil_ms = 5000\n"),
        )
        .unwrap();
        assert_eq!(
            s.attacker,
            Some(Attacker {
                every: Duration::from_millis(250),
                until: Duration::from_millis(5000),
                no_auth: false
            })
        );
        let unset = Scenario::from_toml(
            Path::new("s.toml"),
            &format!("expect = \"fail\"\n{MINIMAL}[invariants]\nexpected_to_break = \"leaks\"\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            unset.contains("expected_to_break = \"leaks\" but [invariants] does not set it up"),
            "{unset}"
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                "[[faults]]\nat_ms = 1\nkind = \"bounce\"\nhost = \"db\"\n",
                "s.toml:9: faults[0]: unknown host \"db\"; hosts are client, user, payment",
            ),
            (
                "[[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"explode\"\nhost = \"user\"\n",
                "s.toml:9: unknown variant `explode`, expected one of `partition`, `partition_oneway`, `crash`, `bounce`, `link_failure`, `hold`, `stall`, `rate_limit`, `toxic`, `latency`",
            ),
            (
                "[[faults]]\nat_ms = 1\nkind = \"crash\"\nhost = \"user\"\n",
                "s.toml:9: faults[0]: this kind needs for_ms (when it heals)",
            ),
            (
                "[[faults]]\nat_ms = 59999\nfor_ms = 5\nkind = \"crash\"\nhost = \"user\"\n",
                "s.toml:9: faults[0]: it must heal before duration_ms",
            ),
            (
                "[policy]\nattempts_max = 0\n",
                "s.toml:9: [policy]: attempts_max must be between 1 and 10, got 0",
            ),
            (
                "[[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"toxic\"\nserver = \"payment\"\ntoxic = \"gremlin\"\n",
                "s.toml:9: unknown variant `gremlin`, expected one of `latency`, `bandwidth`, `slicer`, `slow_close`, `timeout`, `reset_peer`, `limit_data`, `drop`",
            ),
            (
                "[[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"toxic\"\nserver = \"payment\"\ntoxic = \"latency\"\n",
                "s.toml:9: missing field `latency_ms`",
            ),
            (
                "[[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"toxic\"\nserver = \"client\"\ntoxic = \"drop\"\n",
                "s.toml:9: faults[0]: proxy drop applies to a server; \"client\" is not one",
            ),
        ];
        for (extra, expected) in cases {
            assert_eq!(parse(extra).unwrap_err(), expected, "{extra}");
        }
        let more = [
            (
                "[[faults]]\nat_ms = 1000\nfor_ms = 500\nevery_ms = 400\nuntil_ms = 5000\nkind = \"crash\"\nhost = \"user\"\n",
                "s.toml:9: faults[0]: every_ms (400) must exceed for_ms (500): repetitions must not overlap",
            ),
            (
                "[[faults]]\nat_ms = 1000\nevery_ms = 400\nkind = \"bounce\"\nhost = \"user\"\n",
                "s.toml:9: faults[0]: every_ms needs until_ms (when repetitions stop)",
            ),
            (
                "[dataset]\ngenerate = { users = 1, transactions = 1 }\n[[dataset.users]]\nid = \"u\"\nemail = \"a@b.c\"\nname = \"A\"\n",
                "s.toml:9: [dataset]: either generate = { … } or users and transactions, not both",
            ),
            (
                "[dataset]\n[[dataset.users]]\nid = \"u\"\nemail = \"not-an-email\"\nname = \"A\"\n",
                "s.toml:9: [dataset]: users[0] (id \"u\"): email \"not-an-email\" is not valid: missing separator character '@'",
            ),
            (
                "[[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"partition\"\nbetween = [\"client2\", \"user\"]\n",
                "s.toml:9: faults[0]: unknown host \"client2\"; hosts are client, user, payment",
            ),
            (
                "[attacker]\nevery_ms = 0\n",
                "s.toml:9: [attacker] every_ms must be between 1 and 60000, got 0",
            ),
            (
                "[attacker]\nevery_ms = 100\nuntil_ms = 70000\n",
                "s.toml:9: [attacker] until_ms (70000) is past the end of the run (duration_ms = 60000)",
            ),
        ];
        for (extra, expected) in more {
            assert_eq!(parse(extra).unwrap_err(), expected, "{extra}");
        }
        let generated = Scenario::from_toml(
            Path::new("g.toml"),
            "name = \"g\"\nduration_ms = 1000\ntick_ms = 1\n[workload]\nqueries = 1\nclients = 2\nrate_per_s = 5\n",
        )
        .unwrap();
        assert_eq!(
            generated.workload.questions,
            Questions::Generated {
                pool: 32,
                unknown_share: 0.2,
                forms: QuestionForms::Today,
            }
        );
        let clients: Vec<_> = generated
            .topology
            .client_hosts()
            .map(|h| generated.topology.name(h).into_owned())
            .collect();
        assert_eq!(clients, ["client", "client2"]);
        let both = Scenario::from_toml(
            Path::new("g.toml"),
            "name = \"g\"\nduration_ms = 1000\ntick_ms = 1\n[workload]\nqueries = 1\nrate_per_s = 5\ninterval_ms = 3\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            both,
            "g.toml:4: [workload]: rate_per_s (open loop) and interval_ms (closed loop) exclude each other"
        );
        let unknown =
            parse("[[faults]]\nat_ms = 1\nkind = \"bounce\"\nhost = \"user\"\ncolour = 1\n")
                .unwrap_err();
        assert!(
            unknown.starts_with("s.toml:9: unknown field `colour`"),
            "{unknown}"
        );
    }
}
