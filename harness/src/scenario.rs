//! Scenario files: raw TOML types with `deny_unknown_fields`, validated into
//! the [`Scenario`] the simulator runs. Raw types never leave this module;
//! every error names the file, the line and the field.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use orchestrator::{Policy, PolicyToml};
use payment_server::TransactionRecord;
use serde::Deserialize;
use toml::Spanned;
use user_server::UserRecord;

use crate::{dataset::Dataset, planted::PlantedBug};

/// The server hosts every scenario has. Client hosts, each running its own
/// orchestrator, are `client`, `client2`, … up to `[workload] clients`.
pub const SERVERS: [&str; 2] = ["user", "payment"];
/// Most client hosts a scenario may have.
pub const CLIENTS_MAX: u32 = 8;
/// Largest generated or inline dataset.
pub const USERS_MAX: u32 = 10_000;
pub const TRANSACTIONS_MAX: u32 = 100_000;
/// Most repetitions one `every_ms` fault may make.
pub const REPEATS_MAX: usize = 1000;
/// Most distinct generated questions.
pub const QUESTION_POOL_MAX: u32 = 1000;
/// Longest simulated run a scenario may ask for.
pub const DURATION_LIMIT: Duration = Duration::from_secs(3600);
/// Most queries one run may issue.
pub const QUERIES_MAX: u32 = 10_000;
/// Most queries one run may have in flight at once.
pub const CONCURRENCY_MAX: u32 = 64;

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
    pub dataset: DatasetSource,
    pub workload: Workload,
    pub policy: Policy,
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
    pub planted_bug: Option<PlantedBug>,
}

/// The `[attacker]` table: an `attacker` host that replays the denial
/// matrix against both servers' HTTP endpoints while the workload runs.
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
    /// Client hosts, each with its own orchestrator (connections, breakers,
    /// retry budget); they take queries from one shared sequence.
    pub clients: u32,
    /// Queries in flight at once through each orchestrator.
    pub concurrency: u32,
    /// Pause between the end of one query and the start of the next.
    pub interval: Duration,
    /// Open loop: query n starts no earlier than n / rate after the start.
    pub rate_per_s: Option<f64>,
    pub questions: Questions,
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
    },
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Its position in time order; names it in the trace and the proxy.
    pub id: usize,
    pub at: Duration,
    /// How long until it heals; `None` for instant faults (bounce).
    pub lasts: Option<Duration>,
    pub kind: FaultKind,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Messages between the two hosts are lost, both ways, until healed.
    Partition { a: String, b: String },
    /// Messages from `from` to `to` are lost until healed.
    PartitionOneway { from: String, to: String },
    /// The host stops; it restarts when the fault heals.
    Crash { host: String },
    /// The host restarts at once: its connections close, its state is lost.
    Bounce { host: String },
    /// Each message on the link may break it (losing what is in flight)
    /// with probability `fail_rate`, until healed.
    LinkFailure {
        a: String,
        b: String,
        fail_rate: f64,
    },
    /// Messages between the two hosts are held, not lost, and delivered
    /// when the fault heals: delay and reordering.
    Hold { a: String, b: String },
    /// The server answers every request `delay` late (its handler is
    /// wrapped inside the harness; the server itself knows nothing).
    Stall { host: String, delay: Duration },
    /// A Toxiproxy-style toxic on the proxy in front of a server.
    Toxic(Toxic),
    /// Messages between the two hosts take between `min` and `max`.
    Latency {
        a: String,
        b: String,
        min: Duration,
        max: Duration,
    },
}

impl FaultKind {
    /// How a run's summary counts it: the file's `kind`, and for a toxic
    /// `proxy` and the toxic's name (`proxy drop`).
    pub fn label(&self) -> String {
        let kind = match self {
            FaultKind::Partition { .. } => "partition",
            FaultKind::PartitionOneway { .. } => "partition_oneway",
            FaultKind::Crash { .. } => "crash",
            FaultKind::Bounce { .. } => "bounce",
            FaultKind::LinkFailure { .. } => "link_failure",
            FaultKind::Hold { .. } => "hold",
            FaultKind::Stall { .. } => "stall",
            FaultKind::Latency { .. } => "latency",
            FaultKind::Toxic(toxic) => return format!("proxy {}", toxic.kind.name()),
        };
        kind.to_owned()
    }
}

impl ToxicKind {
    /// Its name in a scenario file's `toxic` field.
    pub fn name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::LimitData { .. } => "limit_data",
            ToxicKind::Drop => "drop",
        }
    }
}

/// Which way through the proxy a toxic acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Client to server.
    Upstream,
    /// Server to client.
    Downstream,
}

/// A toxic: what it does, to which server's traffic, which way, and on what
/// share of connections.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    pub server: String,
    pub stream: Stream,
    /// Probability that a connection is affected, drawn once per connection.
    pub toxicity: f64,
    pub kind: ToxicKind,
}

/// Toxiproxy's toxics, plus `drop`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToxicKind {
    /// Every chunk waits `latency` ± `jitter`.
    Latency { latency: Duration, jitter: Duration },
    /// At most `rate_kbps` kilobits per second.
    Bandwidth { rate_kbps: u64 },
    /// Writes split into pieces of `average_size` ± `size_variation` bytes,
    /// `delay` apart.
    Slicer {
        average_size: usize,
        size_variation: usize,
        delay: Duration,
    },
    /// When the sender closes, wait `delay` before passing the close on.
    SlowClose { delay: Duration },
    /// Stop passing data; close after `timeout` (never, if zero).
    Timeout { timeout: Duration },
    /// After `timeout`, cut the connection.
    ResetPeer { timeout: Duration },
    /// Close the connection once `bytes` have passed.
    LimitData { bytes: u64 },
    /// Stop passing data and never close: a segment lost for good.
    Drop,
}

/// A property a run is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl Invariant {
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
        }
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
        let invalid = |offset: usize, message: String| ScenarioError::Invalid {
            path: path.to_owned(),
            line: orchestrator::line_of(text, offset),
            message,
        };
        let raw: RawScenario = toml::from_str(text).map_err(|error| {
            invalid(
                error.span().map_or(0, |s| s.start),
                error.message().to_owned(),
            )
        })?;
        let ms = |v: &Spanned<u64>| Duration::from_millis(*v.get_ref());

        let duration = ms(&raw.duration_ms);
        if duration.is_zero() || duration > DURATION_LIMIT {
            return Err(invalid(
                raw.duration_ms.span().start,
                format!(
                    "duration_ms must be between 1 and {}",
                    DURATION_LIMIT.as_millis()
                ),
            ));
        }
        let tick = ms(&raw.tick_ms);
        if tick.is_zero() || tick > Duration::from_secs(1) {
            return Err(invalid(
                raw.tick_ms.span().start,
                "tick_ms must be between 1 and 1000".into(),
            ));
        }

        let network = raw.network.unwrap_or_default();
        let latency_min = Duration::from_millis(network.latency_min_ms);
        let latency_max = Duration::from_millis(network.latency_max_ms);
        if latency_min > latency_max {
            return Err(invalid(
                0,
                "[network]: latency_min_ms must not exceed latency_max_ms".into(),
            ));
        }
        if !(0.0..=1.0).contains(&network.repair_rate) {
            return Err(invalid(
                0,
                "[network]: repair_rate must be between 0 and 1".into(),
            ));
        }

        let dataset = match raw.dataset {
            None => DatasetSource::Demo,
            Some(d) => {
                let at = d.span().start;
                let d = d.into_inner();
                let bad = |m: String| invalid(at, format!("[dataset]: {m}"));
                match (d.generate, d.users, d.transactions) {
                    (Some(g), None, None) => {
                        if g.users > USERS_MAX || g.transactions > TRANSACTIONS_MAX {
                            return Err(bad(format!(
                                "generate allows at most {USERS_MAX} users and {TRANSACTIONS_MAX} transactions"
                            )));
                        }
                        DatasetSource::Generated {
                            users: g.users,
                            transactions: g.transactions,
                        }
                    }
                    (None, users, transactions) => {
                        let inline = Dataset {
                            users: users.unwrap_or_default(),
                            transactions: transactions.unwrap_or_default(),
                        };
                        if inline.users.len() > USERS_MAX as usize
                            || inline.transactions.len() > TRANSACTIONS_MAX as usize
                        {
                            return Err(bad(format!(
                                "at most {USERS_MAX} users and {TRANSACTIONS_MAX} transactions"
                            )));
                        }
                        inline.stores().map_err(|e| bad(e.to_string()))?;
                        DatasetSource::Inline(inline)
                    }
                    (Some(_), _, _) => {
                        return Err(bad(
                            "either generate = { … } or users and transactions, not both".into(),
                        ));
                    }
                }
            }
        };

        let workload_at = raw.workload.span().start;
        let workload = raw.workload.into_inner();
        if !(1..=CLIENTS_MAX).contains(&workload.clients) {
            return Err(invalid(
                workload_at,
                format!("[workload]: clients must be between 1 and {CLIENTS_MAX}"),
            ));
        }
        let clients = workload.clients;
        if let Some(rate) = workload.rate_per_s {
            if !(rate > 0.0 && rate <= 10_000.0) {
                return Err(invalid(
                    workload_at,
                    "[workload]: rate_per_s must be above 0 and at most 10000".into(),
                ));
            }
            if workload.interval_ms > 0 {
                return Err(invalid(
                    workload_at,
                    "[workload]: rate_per_s (open loop) and interval_ms (closed loop) exclude each other".into(),
                ));
            }
        }
        if !(1..=QUERIES_MAX).contains(&workload.queries) {
            return Err(invalid(
                workload_at,
                format!("[workload]: queries must be between 1 and {QUERIES_MAX}"),
            ));
        }
        if !(1..=CONCURRENCY_MAX).contains(&workload.concurrency) {
            return Err(invalid(
                workload_at,
                format!("[workload]: concurrency must be between 1 and {CONCURRENCY_MAX}"),
            ));
        }
        let questions = match workload.questions {
            Some(listed) => {
                if workload.question_pool.is_some() || workload.unknown_share.is_some() {
                    return Err(invalid(
                        workload_at,
                        "[workload]: question_pool and unknown_share are for generated questions; drop them or questions".into(),
                    ));
                }
                if listed.is_empty() {
                    return Err(invalid(
                        workload_at,
                        "[workload]: questions must list at least one question".into(),
                    ));
                }
                for question in &listed {
                    orchestrator::parse_question(question).map_err(|e| {
                        invalid(
                            workload_at,
                            format!("[workload]: question {question:?} cannot be planned: {e}"),
                        )
                    })?;
                }
                Questions::Listed(listed)
            }
            None => {
                let pool = workload.question_pool.unwrap_or(32);
                let unknown_share = workload.unknown_share.unwrap_or(0.2);
                if !(1..=QUESTION_POOL_MAX).contains(&pool) {
                    return Err(invalid(
                        workload_at,
                        format!(
                            "[workload]: question_pool must be between 1 and {QUESTION_POOL_MAX}"
                        ),
                    ));
                }
                if !(0.0..=1.0).contains(&unknown_share) {
                    return Err(invalid(
                        workload_at,
                        "[workload]: unknown_share must be between 0 and 1".into(),
                    ));
                }
                Questions::Generated {
                    pool,
                    unknown_share,
                }
            }
        };

        let policy = raw
            .policy
            .map(|p| {
                let at = p.span().start;
                p.into_inner()
                    .into_policy()
                    .map_err(|e| invalid(at, format!("[policy]: {e}")))
            })
            .transpose()?
            .unwrap_or(Policy::DEFAULT);

        let mut faults = Vec::with_capacity(raw.faults.len());
        for (index, fault) in raw.faults.into_iter().enumerate() {
            let at = fault.span().start;
            let fault = fault.into_inner();
            let bad = |m: String| invalid(at, format!("faults[{index}]: {m}"));
            let host = |h: Option<String>| -> Result<String, ScenarioError> {
                let h = h.ok_or_else(|| bad(format!("kind {:?} needs host", fault.kind)))?;
                known_host(&h, clients).map_err(&bad)?;
                Ok(h)
            };
            let pair = |p: Option<[String; 2]>| -> Result<(String, String), ScenarioError> {
                let [a, b] =
                    p.ok_or_else(|| bad(format!("kind {:?} needs between = [a, b]", fault.kind)))?;
                known_host(&a, clients).map_err(&bad)?;
                known_host(&b, clients).map_err(&bad)?;
                if a == b {
                    return Err(bad("between needs two different hosts".into()));
                }
                Ok((a, b))
            };
            let kind = match fault.kind.as_str() {
                "partition" => {
                    let (a, b) = pair(fault.between.clone())?;
                    FaultKind::Partition { a, b }
                }
                "partition_oneway" => {
                    let (from, to) = pair(fault.between.clone())?;
                    FaultKind::PartitionOneway { from, to }
                }
                "crash" => FaultKind::Crash {
                    host: host(fault.host.clone())?,
                },
                "bounce" => FaultKind::Bounce {
                    host: host(fault.host.clone())?,
                },
                "link_failure" => {
                    let (a, b) = pair(fault.between.clone())?;
                    let fail_rate = fault
                        .fail_rate
                        .ok_or_else(|| bad("link_failure needs fail_rate".into()))?;
                    if !(0.0..=1.0).contains(&fail_rate) {
                        return Err(bad("fail_rate must be between 0 and 1".into()));
                    }
                    FaultKind::LinkFailure { a, b, fail_rate }
                }
                "hold" => {
                    let (a, b) = pair(fault.between.clone())?;
                    FaultKind::Hold { a, b }
                }
                "stall" => {
                    let host = host(fault.host.clone())?;
                    if !SERVERS.contains(&host.as_str()) {
                        return Err(bad("stall applies to a server host: user or payment".into()));
                    }
                    let delay = fault
                        .delay_ms
                        .ok_or_else(|| bad("stall needs delay_ms".into()))?;
                    FaultKind::Stall {
                        host,
                        delay: Duration::from_millis(delay),
                    }
                }
                "toxic" => FaultKind::Toxic(toxic(&fault).map_err(&bad)?),
                "latency" => {
                    let (a, b) = pair(fault.between.clone())?;
                    let (Some(min), Some(max)) = (fault.latency_min_ms, fault.latency_max_ms)
                    else {
                        return Err(bad("latency needs latency_min_ms and latency_max_ms".into()));
                    };
                    if min > max {
                        return Err(bad("latency_min_ms must not exceed latency_max_ms".into()));
                    }
                    FaultKind::Latency {
                        a,
                        b,
                        min: Duration::from_millis(min),
                        max: Duration::from_millis(max),
                    }
                }
                other => {
                    return Err(bad(format!(
                        "unknown kind {other:?}; expected partition, partition_oneway, crash, bounce, link_failure, hold, stall, latency or toxic"
                    )));
                }
            };
            let lasts = fault.for_ms.map(Duration::from_millis);
            match (&kind, lasts) {
                (FaultKind::Bounce { .. }, Some(_)) => {
                    return Err(bad("bounce is instant: drop for_ms".into()));
                }
                (FaultKind::Bounce { .. }, None) => {}
                (_, None) => return Err(bad("this kind needs for_ms (when it heals)".into())),
                (_, Some(d)) if d.is_zero() => return Err(bad("for_ms must be positive".into())),
                _ => {}
            }
            let starts: Vec<u64> = match (fault.every_ms, fault.until_ms) {
                (None, None) => vec![fault.at_ms],
                (Some(every), Some(until)) => {
                    let lasts_ms = fault.for_ms.unwrap_or(0);
                    if every <= lasts_ms {
                        return Err(bad(format!(
                            "every_ms ({every}) must exceed for_ms ({lasts_ms}): repetitions must not overlap"
                        )));
                    }
                    if until <= fault.at_ms {
                        return Err(bad("until_ms must be after at_ms".into()));
                    }
                    let starts: Vec<u64> = (fault.at_ms..until).step_by(every as usize).collect();
                    if starts.len() > REPEATS_MAX {
                        return Err(bad(format!(
                            "every_ms and until_ms make {} repetitions; at most {REPEATS_MAX}",
                            starts.len()
                        )));
                    }
                    starts
                }
                (Some(_), None) => {
                    return Err(bad("every_ms needs until_ms (when repetitions stop)".into()));
                }
                (None, Some(_)) => return Err(bad("until_ms needs every_ms".into())),
            };
            for start in starts {
                let repeat = Fault {
                    id: 0,
                    at: Duration::from_millis(start),
                    lasts,
                    kind: kind.clone(),
                };
                if repeat.at + repeat.lasts.unwrap_or_default() >= duration {
                    return Err(bad("it must heal before duration_ms".into()));
                }
                faults.push(repeat);
            }
        }
        faults.sort_by_key(|f| f.at);
        for (id, fault) in faults.iter_mut().enumerate() {
            fault.id = id;
        }

        let invariants = raw.invariants.unwrap_or_default();
        let liveness_after = Duration::from_millis(invariants.liveness_after_ms);
        let expect_fail = match raw.expect.as_deref() {
            None | Some("pass") => None,
            Some("fail") => Some(match invariants.expected_to_break.as_deref() {
                Some("safety") => Invariant::Safety,
                Some("liveness") => Invariant::Liveness,
                Some("availability") => Invariant::Availability,
                Some("breaker") => Invariant::Breaker,
                Some("latency") => Invariant::Latency,
                Some("amplification") => Invariant::Amplification,
                Some("budget") => Invariant::Budget,
                Some("load") => Invariant::Load,
                Some("leaks") => Invariant::Leaks,
                other => {
                    return Err(invalid(
                        0,
                        format!(
                            "expect = \"fail\" needs [invariants] expected_to_break = \"safety\", \"liveness\", \"availability\", \"breaker\", \"latency\", \"amplification\", \"budget\", \"load\" or \"leaks\", got {other:?}"
                        ),
                    ));
                }
            }),
            Some(other) => {
                return Err(invalid(
                    0,
                    format!("expect must be \"pass\" or \"fail\", got {other:?}"),
                ));
            }
        };

        if let Some(min) = invariants.availability_min
            && !(0.0..=1.0).contains(&min)
        {
            return Err(invalid(
                0,
                "[invariants]: availability_min must be between 0 and 1".into(),
            ));
        }
        if let Some(max) = invariants.amplification_max
            && (max.is_nan() || max < 1.0)
        {
            return Err(invalid(
                0,
                "[invariants]: amplification_max must be at least 1 (every call is one attempt)"
                    .into(),
            ));
        }
        let checked = |i: Invariant| match i {
            Invariant::Safety | Invariant::Liveness => true,
            Invariant::Availability => invariants.availability_min.is_some(),
            Invariant::Breaker => invariants.breaker_trips_min.is_some(),
            Invariant::Latency => invariants.p99_ms_max.is_some(),
            Invariant::Amplification => invariants.amplification_max.is_some(),
            Invariant::Budget => invariants.retries_within_budget,
            Invariant::Load => {
                invariants.in_flight_max.is_some() || invariants.sessions_max.is_some()
            }
            Invariant::Leaks => raw.attacker.is_some(),
        };
        if let Some(invariant) = expect_fail
            && !checked(invariant)
        {
            return Err(invalid(
                0,
                format!(
                    "expected_to_break = \"{}\" but [invariants] does not set it up",
                    invariant.name()
                ),
            ));
        }

        let planted_bug = match &raw.planted_bug {
            None => None,
            Some(name) => {
                let bug = PlantedBug::from_name(name.get_ref()).ok_or_else(|| {
                    invalid(
                        name.span().start,
                        format!(
                            "planted_bug: no bug called {:?}; the one there is: \"{}\"",
                            name.get_ref(),
                            PlantedBug::StaleRetryArguments.name()
                        ),
                    )
                })?;
                Some(bug)
            }
        };

        let attacker = match &raw.attacker {
            None => None,
            Some(table) => {
                let at = table.span().start;
                let a = table.get_ref();
                if a.every_ms == 0 || a.every_ms > 60_000 {
                    return Err(invalid(
                        at,
                        format!(
                            "[attacker] every_ms must be between 1 and 60000, got {}",
                            a.every_ms
                        ),
                    ));
                }
                let until =
                    Duration::from_millis(a.until_ms.unwrap_or(duration.as_millis() as u64));
                if until > duration {
                    return Err(invalid(
                        at,
                        format!(
                            "[attacker] until_ms ({}) is past the end of the run (duration_ms = {})",
                            until.as_millis(),
                            duration.as_millis()
                        ),
                    ));
                }
                Some(Attacker {
                    every: Duration::from_millis(a.every_ms),
                    until,
                    no_auth: a.no_auth,
                })
            }
        };

        Ok(Scenario {
            name: raw.name,
            seed: raw.seed,
            duration,
            tick,
            latency_min,
            latency_max,
            repair_rate: network.repair_rate,
            dataset,
            workload: Workload {
                queries: workload.queries,
                clients,
                concurrency: workload.concurrency,
                interval: Duration::from_millis(workload.interval_ms),
                rate_per_s: workload.rate_per_s,
                questions,
            },
            policy,
            faults,
            liveness_after,
            availability_min: invariants.availability_min,
            breaker_trips_min: invariants.breaker_trips_min,
            p99_max: invariants.p99_ms_max.map(Duration::from_millis),
            amplification_max: invariants.amplification_max,
            within_budget: invariants.retries_within_budget,
            in_flight_max: invariants.in_flight_max,
            sessions_max: invariants.sessions_max,
            attacker,
            expect_fail,
            planted_bug,
        })
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

/// The client hosts' names: `client`, `client2`, …
pub fn client_hosts(clients: u32) -> Vec<String> {
    (1..=clients)
        .map(|n| {
            if n == 1 {
                "client".to_owned()
            } else {
                format!("client{n}")
            }
        })
        .collect()
}

fn known_host(host: &str, clients: u32) -> Result<(), String> {
    let mut hosts = client_hosts(clients);
    hosts.extend(SERVERS.iter().map(|s| (*s).to_owned()));
    if hosts.iter().any(|h| h == host) {
        Ok(())
    } else {
        Err(format!(
            "unknown host {host:?}; hosts are {}",
            hosts.join(", ")
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default = "default_seed")]
    seed: u64,
    duration_ms: Spanned<u64>,
    tick_ms: Spanned<u64>,
    network: Option<RawNetwork>,
    dataset: Option<Spanned<RawDataset>>,
    workload: Spanned<RawWorkload>,
    policy: Option<Spanned<PolicyToml>>,
    #[serde(default)]
    faults: Vec<Spanned<RawFault>>,
    invariants: Option<RawInvariants>,
    attacker: Option<Spanned<RawAttacker>>,
    expect: Option<String>,
    planted_bug: Option<Spanned<String>>,
}

fn default_seed() -> u64 {
    1
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttacker {
    every_ms: u64,
    until_ms: Option<u64>,
    #[serde(default)]
    no_auth: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    latency_min_ms: u64,
    #[serde(default)]
    latency_max_ms: u64,
    #[serde(default)]
    repair_rate: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    queries: u32,
    #[serde(default = "one")]
    clients: u32,
    #[serde(default = "one")]
    concurrency: u32,
    #[serde(default)]
    interval_ms: u64,
    rate_per_s: Option<f64>,
    questions: Option<Vec<String>>,
    question_pool: Option<u32>,
    unknown_share: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    generate: Option<RawGenerate>,
    users: Option<Vec<UserRecord>>,
    transactions: Option<Vec<TransactionRecord>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenerate {
    users: u32,
    transactions: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at_ms: u64,
    for_ms: Option<u64>,
    every_ms: Option<u64>,
    until_ms: Option<u64>,
    kind: String,
    host: Option<String>,
    between: Option<[String; 2]>,
    fail_rate: Option<f64>,
    delay_ms: Option<u64>,
    latency_min_ms: Option<u64>,
    latency_max_ms: Option<u64>,
    // toxics
    server: Option<String>,
    toxic: Option<String>,
    stream: Option<String>,
    toxicity: Option<f64>,
    latency_ms: Option<u64>,
    jitter_ms: Option<u64>,
    rate_kbps: Option<u64>,
    average_size: Option<usize>,
    size_variation: Option<usize>,
    delay_us: Option<u64>,
    timeout_ms: Option<u64>,
    bytes: Option<u64>,
}

/// Validates the toxic a `kind = "toxic"` fault describes.
fn toxic(fault: &RawFault) -> Result<Toxic, String> {
    let server = fault
        .server
        .clone()
        .ok_or("toxic needs server = \"user\" or \"payment\"")?;
    if server != "user" && server != "payment" {
        return Err(format!(
            "toxic server {server:?} must be \"user\" or \"payment\""
        ));
    }
    let stream = match fault.stream.as_deref() {
        None | Some("downstream") => Stream::Downstream,
        Some("upstream") => Stream::Upstream,
        Some(other) => {
            return Err(format!(
                "stream {other:?} must be \"upstream\" or \"downstream\""
            ));
        }
    };
    let toxicity = fault.toxicity.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&toxicity) {
        return Err("toxicity must be between 0 and 1".into());
    }
    let need = |v: Option<u64>, name: &str| v.ok_or_else(|| format!("this toxic needs {name}"));
    let ms = |v: u64| Duration::from_millis(v);
    let name = fault
        .toxic
        .as_deref()
        .ok_or("toxic needs toxic = \"latency\", \"drop\", …")?;
    let kind = match name {
        "latency" => ToxicKind::Latency {
            latency: ms(need(fault.latency_ms, "latency_ms")?),
            jitter: ms(fault.jitter_ms.unwrap_or(0)),
        },
        "bandwidth" => {
            let rate_kbps = need(fault.rate_kbps, "rate_kbps")?;
            if rate_kbps == 0 {
                return Err("rate_kbps must be positive".into());
            }
            ToxicKind::Bandwidth { rate_kbps }
        }
        "slicer" => {
            let average_size = fault.average_size.ok_or("slicer needs average_size")?;
            if average_size == 0 {
                return Err("average_size must be positive".into());
            }
            ToxicKind::Slicer {
                average_size,
                size_variation: fault.size_variation.unwrap_or(0),
                delay: Duration::from_micros(fault.delay_us.unwrap_or(0)),
            }
        }
        "slow_close" => ToxicKind::SlowClose {
            delay: ms(need(fault.delay_ms, "delay_ms")?),
        },
        "timeout" => ToxicKind::Timeout {
            timeout: ms(need(fault.timeout_ms, "timeout_ms")?),
        },
        "reset_peer" => ToxicKind::ResetPeer {
            timeout: ms(fault.timeout_ms.unwrap_or(0)),
        },
        "limit_data" => ToxicKind::LimitData {
            bytes: need(fault.bytes, "bytes")?,
        },
        "drop" => ToxicKind::Drop,
        other => {
            return Err(format!(
                "unknown toxic {other:?}; expected latency, bandwidth, slicer, slow_close, timeout, reset_peer, limit_data or drop"
            ));
        }
    };
    Ok(Toxic {
        server,
        stream,
        toxicity,
        kind,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvariants {
    #[serde(default)]
    liveness_after_ms: u64,
    availability_min: Option<f64>,
    breaker_trips_min: Option<u64>,
    p99_ms_max: Option<u64>,
    amplification_max: Option<f64>,
    #[serde(default)]
    retries_within_budget: bool,
    in_flight_max: Option<u64>,
    sessions_max: Option<u64>,
    expected_to_break: Option<String>,
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
                host: "user".into()
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
                "s.toml:9: faults[0]: unknown kind \"explode\"; expected partition, partition_oneway, crash, bounce, link_failure, hold, stall, latency or toxic",
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
                "s.toml:9: faults[0]: unknown toxic \"gremlin\"; expected latency, bandwidth, slicer, slow_close, timeout, reset_peer, limit_data or drop",
            ),
            (
                "[[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"toxic\"\nserver = \"payment\"\ntoxic = \"latency\"\n",
                "s.toml:9: faults[0]: this toxic needs latency_ms",
            ),
            (
                "[[faults]]\nat_ms = 1\nfor_ms = 5\nkind = \"toxic\"\nserver = \"client\"\ntoxic = \"drop\"\n",
                "s.toml:9: faults[0]: toxic server \"client\" must be \"user\" or \"payment\"",
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
                unknown_share: 0.2
            }
        );
        assert_eq!(
            client_hosts(generated.workload.clients),
            ["client", "client2"]
        );
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
            unknown.starts_with("s.toml:13: unknown field `colour`"),
            "{unknown}"
        );
    }
}
