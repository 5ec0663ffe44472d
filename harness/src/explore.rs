//! Property-based exploration: proptest generates a dataset, questions and
//! a fault schedule, the simulation runs them, and the invariants judge.
//! When a case fails, proptest shrinks it to a minimal one, which is
//! written out as an ordinary scenario file that `harness run` replays.
//!
//! Every case goes through the scenario format itself: [`Case::to_toml`]
//! writes it, [`Scenario::from_toml`] reads it back, and [`crate::run`] runs
//! it. So the file a failure is written to is exactly what failed.

use std::{
    cell::Cell,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::Duration,
};

use proptest::{
    prelude::*,
    test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner},
};
use toml::Spanned;

use crate::{
    Dataset, Scenario,
    fault::{FaultEntry, FaultKind, Stream, Toxic, ToxicKind},
    planted::PlantedBug,
    scenario::{
        DatasetTable, InvariantsTable, NetworkTable, ScenarioFile, Transport, TransportName,
        WorkloadTable,
    },
    strategies,
};

/// The servers a fault can hit (the client's links lead to them): the
/// default topology's.
fn target() -> impl Strategy<Value = String> {
    prop_oneof![Just("user".to_owned()), Just("payment".to_owned())]
}

/// A link between the client and `server`.
fn link(server: String) -> [String; 2] {
    ["client".to_owned(), server]
}

/// The proxy's toxics besides `drop` and `reset_peer`, with parameters
/// bounded so that a run stays quick: at worst a chunk is held a few
/// seconds, which the client's call timeout and reconnect outlast.
fn gen_toxic() -> impl Strategy<Value = ToxicKind> {
    let ms = Duration::from_millis;
    prop_oneof![
        (0u64..=1_000, 0u64..=500).prop_map(move |(latency_ms, jitter)| ToxicKind::Latency {
            latency: ms(latency_ms),
            // Toxiproxy's jitter is at most the latency.
            jitter: ms(jitter.min(latency_ms)),
        }),
        // 64 kbit/s holds a 16 KiB chunk 2 s.
        (64u64..=10_000).prop_map(|rate_kbps| ToxicKind::Bandwidth { rate_kbps }),
        (16usize..=256, 0usize..=256, 0u64..=5_000).prop_map(
            |(average_size, variation, delay_us)| ToxicKind::Slicer {
                average_size,
                size_variation: variation.min(average_size),
                delay: Duration::from_micros(delay_us),
            }
        ),
        (0u64..=2_000).prop_map(move |delay| ToxicKind::SlowClose { delay: ms(delay) }),
        (0u64..=2_000).prop_map(move |timeout| ToxicKind::Timeout {
            timeout: ms(timeout)
        }),
        (0u64..=8_192).prop_map(|bytes| ToxicKind::LimitData { bytes }),
    ]
}

/// A toxic on `server`'s traffic, on `percent` of its connections.
fn toxic(server: String, kind: ToxicKind, stream: Stream, percent: u32) -> FaultKind<String> {
    FaultKind::Toxic(Toxic {
        server,
        stream,
        toxicity: f64::from(percent) / 100.0,
        kind,
    })
}

/// Every fault kind, each aimed at a server or its link to the client.
/// Rates and shares are drawn as whole thousandths or percents, so that
/// they shrink to round numbers.
fn fault_kind() -> impl Strategy<Value = FaultKind<String>> {
    let ms = Duration::from_millis;
    let stream = prop_oneof![Just(Stream::Upstream), Just(Stream::Downstream)];
    prop_oneof![
        1 => target().prop_map(|t| FaultKind::Partition { between: link(t) }),
        1 => (target(), any::<bool>()).prop_map(|(t, to_server)| {
            let [client, server] = link(t);
            let between = if to_server { [client, server] } else { [server, client] };
            FaultKind::PartitionOneway { between }
        }),
        1 => (target(), 1u32..=100).prop_map(|(t, per_mille)| FaultKind::LinkFailure {
            between: link(t),
            fail_rate: f64::from(per_mille) / 1000.0,
        }),
        1 => target().prop_map(|host| FaultKind::Crash { host }),
        1 => target().prop_map(|host| FaultKind::Bounce { host }),
        1 => target().prop_map(|t| FaultKind::Hold { between: link(t) }),
        1 => (target(), 0u64..=300, 0u64..=700).prop_map(move |(t, min, extra)| {
            FaultKind::Latency { between: link(t), min: ms(min), max: ms(min + extra) }
        }),
        1 => (target(), 1u64..=3_000)
            .prop_map(move |(host, delay)| FaultKind::Stall { host, delay: ms(delay) }),
        1 => (target(), 1u32..=100)
            .prop_map(|(t, percent)| toxic(t, ToxicKind::Drop {}, Stream::Downstream, percent)),
        1 => (target(), 0u64..=1_000, 1u32..=100).prop_map(move |(t, timeout, percent)| {
            toxic(t, ToxicKind::ResetPeer { timeout: ms(timeout) }, Stream::Downstream, percent)
        }),
        // Six toxics, each as likely as any one fault above.
        6 => (target(), gen_toxic(), stream, 1u32..=100)
            .prop_map(|(t, kind, stream, percent)| toxic(t, kind, stream, percent)),
    ]
}

/// Over HTTP, also: the server answers 429, as likely as any one fault of
/// [`fault_kind`]. Without `Retry-After`: the `retry_after` invariant is
/// judged at the server, which cannot tell a client that ignored a 429
/// from one whose 429 a failing link lost, and generated schedules lose
/// answers all the time (a false positive explore found itself). It did
/// find two real bugs first; they are in `tests/harness/regressions/`.
fn fault_kind_over(transport: Transport) -> BoxedStrategy<FaultKind<String>> {
    match transport {
        Transport::Tcp => fault_kind().boxed(),
        Transport::Http(_) => {
            let rate_limit = target().prop_map(|host| FaultKind::RateLimit {
                host,
                retry_after_s: None,
            });
            prop_oneof![16 => fault_kind(), 1 => rate_limit].boxed()
        }
    }
}

/// A fault anywhere in the window, lasting 50 ms to 3 s (a bounce is
/// instant), of a kind `transport` can carry.
pub fn fault(transport: Transport) -> impl Strategy<Value = FaultEntry<String>> {
    let kind = fault_kind_over(transport);
    (0..FAULT_WINDOW_MS, 50u64..=3_000, kind).prop_map(|(at_ms, for_ms, kind)| FaultEntry {
        at_ms,
        for_ms: (!kind.is_instant()).then_some(for_ms),
        every_ms: None,
        until_ms: None,
        kind,
    })
}

/// One generated test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Drives the network's latencies, the proxy and the jitter (below
    /// 2^32, so that it shrinks quickly and fits any TOML reader).
    pub seed: u64,
    pub dataset: Dataset,
    /// Asked in turn until the workload ends.
    pub questions: Vec<String>,
    pub faults: Vec<FaultEntry<String>>,
    /// The workload's transport (not shrunk: a failure found over HTTP
    /// stays over HTTP).
    pub transport: Transport,
}

/// Faults start within this window of simulated time.
pub const FAULT_WINDOW_MS: u64 = 8_000;
/// Queries starting this long after the last heal must all be right.
pub const LIVENESS_AFTER_MS: u64 = 4_000;
/// The workload's pause between queries.
const INTERVAL_MS: u64 = 250;
/// Queries that must start after the liveness point.
const QUERIES_AFTER_LIVENESS: u64 = 4;

/// A small awkward dataset, one to four questions about it, and up to
/// `faults_max` faults, the workload over `transport`. The parts are
/// independent, so each shrinks on its own: users and transactions drop
/// out, questions and faults drop out or get simpler, times move earlier.
pub fn case(faults_max: usize, transport: Transport) -> impl Strategy<Value = Case> {
    (
        any::<u32>().prop_map(u64::from),
        strategies::dataset(1..=4, 0..=12),
        proptest::collection::vec(strategies::question_spec(0.2), 1..=4),
        proptest::collection::vec(fault(transport), 0..=faults_max),
    )
        .prop_map(move |(seed, dataset, specs, faults)| Case {
            seed,
            questions: specs.iter().map(|q| q.resolve(&dataset).text).collect(),
            dataset,
            faults,
            transport,
        })
}

impl Case {
    /// When the last fault heals.
    fn healed_ms(&self) -> u64 {
        self.faults
            .iter()
            .map(|f| f.at_ms + f.for_ms.unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    /// Enough queries that several start after the liveness point: query
    /// `k` starts no earlier than `k * INTERVAL_MS`.
    fn queries(&self) -> u64 {
        (self.healed_ms() + LIVENESS_AFTER_MS).div_ceil(INTERVAL_MS) + QUERIES_AFTER_LIVENESS
    }

    /// The case as a scenario file, with `planted_bug` if one is planted.
    pub fn to_toml(&self, name: &str, planted: Option<PlantedBug>) -> String {
        let file = self.to_file(name, planted);
        toml::to_string(&file).expect("a scenario file always serialises")
    }

    fn to_file(&self, name: &str, planted: Option<PlantedBug>) -> ScenarioFile {
        ScenarioFile {
            name: name.to_owned(),
            seed: self.seed,
            duration_ms: written(600_000),
            tick_ms: written(5),
            expect: None,
            planted_bug: planted.map(|bug| written(bug.name().to_owned())),
            network: Some(NetworkTable {
                latency_min_ms: 5,
                latency_max_ms: 50,
                repair_rate: 0.2,
            }),
            servers: None,
            dataset: Some(written(DatasetTable {
                generate: None,
                users: self.dataset.users.clone(),
                transactions: self.dataset.transactions.clone(),
            })),
            workload: written(WorkloadTable {
                queries: u32::try_from(self.queries()).unwrap_or(u32::MAX),
                clients: 1,
                concurrency: 1,
                interval_ms: INTERVAL_MS,
                rate_per_s: None,
                questions: Some(self.questions.clone()),
                question_pool: None,
                unknown_share: None,
                transport: match self.transport {
                    Transport::Tcp => None,
                    Transport::Http(_) => Some(TransportName::Http),
                },
                revision: match self.transport {
                    Transport::Tcp => None,
                    Transport::Http(revision) => Some(revision.name().to_owned()),
                },
            }),
            policy: Some(written(policy_table())),
            faults: self.faults.iter().cloned().map(written).collect(),
            attacker: None,
            invariants: Some(written(InvariantsTable {
                liveness_after_ms: LIVENESS_AFTER_MS,
                ..InvariantsTable::default()
            })),
            questions: None,
            planner: None,
            model: None,
        }
    }
}

/// A value for a file being written (spans only matter when reading).
fn written<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

/// The orchestrator policy every case runs with: quick timeouts, a few
/// attempts, so that a case's run stays short.
fn policy_table() -> toml::Table {
    [
        ("connect_timeout_ms", 500),
        ("call_timeout_ms", 800),
        ("deadline_ms", 5_000),
        ("attempts_max", 4),
        ("backoff_base_ms", 20),
        ("backoff_max_ms", 300),
        ("breaker_open_ms", 500),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), toml::Value::Integer(value)))
    .collect()
}

/// Runs `case` under the simulation. `Err` names every invariant that broke.
pub fn check(case: &Case, planted: Option<PlantedBug>) -> Result<(), String> {
    let text = case.to_toml("explored", planted);
    let scenario = Scenario::from_toml(Path::new("<generated>"), &text)
        .map_err(|e| format!("the generated scenario is invalid: {e}\n{text}"))?;
    let report = crate::run(&scenario, scenario.seed).map_err(|e| e.to_string())?;
    let mut broken: Vec<String> = report
        .verdicts
        .iter()
        .filter(|v| !v.held)
        .map(|v| format!("{} broke: {}", v.invariant.name(), v.detail))
        .collect();
    let wrong = report.queries.iter().find_map(|q| match &q.outcome {
        crate::Outcome::Wrong { got, expected } => Some(format!(
            "first wrong answer, at {} ms, to {:?}: got {got:?}, expected {expected:?}",
            q.start.as_millis(),
            q.question
        )),
        _ => None,
    });
    broken.extend(wrong);
    if broken.is_empty() {
        Ok(())
    } else {
        Err(broken.join("\n"))
    }
}

/// How to explore.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Cases to try before calling it a pass.
    pub cases: u32,
    /// Faults per case, at most.
    pub faults_max: usize,
    /// Seeds the generator: the same value explores the same cases.
    pub seed: u64,
    /// The bug to plant in every orchestrator, to prove the search works.
    pub planted: Option<PlantedBug>,
    /// Shrinking steps at most.
    pub shrink_steps_max: u32,
    /// The workload's transport: over HTTP, `rate_limit` faults are
    /// generated too.
    pub transport: Transport,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cases: 64,
            faults_max: 4,
            seed: 0,
            planted: None,
            shrink_steps_max: 4096,
            transport: Transport::Tcp,
        }
    }
}

/// A failing case, shrunk.
#[derive(Debug, Clone)]
pub struct Found {
    /// The case that failed first.
    pub original: Case,
    /// The minimal failing case proptest shrank it to.
    pub shrunk: Case,
    /// The shrunk case as a scenario file.
    pub scenario: String,
    /// What broke in the shrunk case.
    pub violation: String,
    /// Cases run before the first failure (including it).
    pub cases_to_find: u32,
    /// Simulations run while shrinking.
    pub shrink_runs: u32,
}

/// What an exploration found.
#[derive(Debug, Clone)]
pub struct Exploration {
    /// Simulations run in all.
    pub runs: u32,
    pub found: Option<Found>,
}

/// Why an exploration could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// The generator rejected too many values: a bug in the strategies.
    #[error("the case generator gave up: {0}")]
    Generator(String),
}

/// Runs up to `settings.cases` generated cases; on the first failure,
/// shrinks it and returns it as a scenario file. `progress` hears of
/// every simulation run: (runs so far, whether a failure is being shrunk).
pub fn explore(
    settings: &Settings,
    progress: impl Fn(u32, bool),
) -> Result<Exploration, ExploreError> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&settings.seed.to_le_bytes());
    bytes[8..16].copy_from_slice(b"explore!");
    let config = Config {
        cases: settings.cases,
        max_shrink_iters: settings.shrink_steps_max,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let runs = Cell::new(0u32);
    let first_failure = Cell::new(None::<u32>);
    let original = std::cell::RefCell::new(None::<Case>);
    let planted = settings.planted;
    let result = runner.run(&case(settings.faults_max, settings.transport), |case| {
        runs.set(runs.get() + 1);
        progress(runs.get(), first_failure.get().is_some());
        let outcome = check(&case, planted);
        if outcome.is_err() && first_failure.get().is_none() {
            first_failure.set(Some(runs.get()));
            *original.borrow_mut() = Some(case.clone());
        }
        outcome.map_err(TestCaseError::fail)
    });
    let runs = runs.get();
    match result {
        Ok(()) => Ok(Exploration { runs, found: None }),
        Err(TestError::Fail(_, shrunk)) => {
            let violation = check(&shrunk, planted)
                .err()
                .unwrap_or_else(|| "the shrunk case passed when run again".into());
            let cases_to_find = first_failure.get().unwrap_or(runs);
            let name = "explored";
            Ok(Exploration {
                runs,
                found: Some(Found {
                    original: original.into_inner().unwrap_or_else(|| shrunk.clone()),
                    scenario: header(&shrunk, &violation, settings)
                        + &shrunk.to_toml(name, planted),
                    shrunk,
                    violation,
                    cases_to_find,
                    shrink_runs: runs - cases_to_find,
                }),
            })
        }
        Err(TestError::Abort(reason)) => Err(ExploreError::Generator(reason.to_string())),
    }
}

/// Comment lines that say where a written-out case came from.
fn header(case: &Case, violation: &str, settings: &Settings) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Found by `harness explore --seed {}{}`, then shrunk by proptest to",
        settings.seed,
        settings
            .planted
            .map(|b| format!(" --planted-bug {}", b.name()))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "# {} user(s), {} transaction(s), {} question(s) and {} fault(s).",
        case.dataset.users.len(),
        case.dataset.transactions.len(),
        case.questions.len(),
        case.faults.len()
    );
    for line in violation.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "# Replay: cargo run -p harness -- run FILE");
    out
}

/// Where to write a found case: `dir/explored-<seed>.toml`.
pub fn output_path(dir: &Path, settings: &Settings) -> PathBuf {
    dir.join(format!("explored-{}.toml", settings.seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::sample;

    #[test]
    fn every_generated_case_is_a_valid_scenario_that_reads_back_the_same() {
        for seed in 0..40 {
            let case = sample(&case(4, Transport::Tcp), seed).unwrap();
            let text = case.to_toml("t", None);
            let scenario = Scenario::from_toml(Path::new("t.toml"), &text)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
            assert_eq!(scenario.faults.len(), case.faults.len(), "{text}");
            assert_eq!(scenario.seed, case.seed);
            let crate::DatasetSource::Inline(data) = &scenario.dataset else {
                panic!("the dataset must be written out: {text}");
            };
            assert_eq!(data, &case.dataset);
            assert_eq!(scenario.healed_at().as_millis() as u64, case.healed_ms());
        }
    }

    #[test]
    fn the_generator_reaches_every_fault_and_toxic() {
        let mut seen: Vec<String> = Vec::new();
        for seed in 0..400 {
            let case = sample(&case(4, Transport::Tcp), seed).unwrap();
            let text = case.to_toml("t", None);
            let scenario = Scenario::from_toml(Path::new("t.toml"), &text)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
            for fault in &scenario.faults {
                let label = fault.kind.label();
                if !seen.contains(&label) {
                    seen.push(label);
                }
            }
        }
        seen.sort();
        let mut expected = [
            "bounce",
            "crash",
            "hold",
            "latency",
            "link_failure",
            "partition",
            "partition_oneway",
            "stall",
            "proxy bandwidth",
            "proxy drop",
            "proxy latency",
            "proxy limit_data",
            "proxy reset_peer",
            "proxy slicer",
            "proxy slow_close",
            "proxy timeout",
        ];
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn over_http_the_generator_also_rate_limits() {
        let http = Transport::Http(orchestrator::HttpRevision::Stateless2026_07_28);
        let mut limits = 0;
        for seed in 0..400 {
            let case = sample(&case(4, http), seed).unwrap();
            let text = case.to_toml("t", None);
            let scenario = Scenario::from_toml(Path::new("t.toml"), &text)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
            assert_eq!(scenario.workload.transport, http, "{text}");
            for fault in &scenario.faults {
                if let FaultKind::RateLimit { retry_after_s, .. } = fault.kind {
                    assert_eq!(retry_after_s, None, "{text}");
                    limits += 1;
                }
            }
        }
        assert!(limits > 20, "{limits} rate limits in 400 cases");
        // Over tcp a 429 has no meaning: none is generated.
        for seed in 0..400 {
            let case = sample(&case(4, Transport::Tcp), seed).unwrap();
            assert!(
                case.faults
                    .iter()
                    .all(|f| !matches!(f.kind, FaultKind::RateLimit { .. }))
            );
        }
    }

    #[test]
    fn the_workload_outlasts_the_liveness_point() {
        let mut case = sample(&case(0, Transport::Tcp), 1).unwrap();
        case.faults = vec![FaultEntry {
            at_ms: 7_000,
            for_ms: Some(3_000),
            every_ms: None,
            until_ms: None,
            kind: FaultKind::Crash {
                host: "payment".into(),
            },
        }];
        let last_start = (case.queries() - 1) * INTERVAL_MS;
        assert!(last_start >= 10_000 + LIVENESS_AFTER_MS + (QUERIES_AFTER_LIVENESS - 1) * 250);
    }
}
