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
};

use proptest::{
    prelude::*,
    test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner},
};
use toml::{Table, Value};

use crate::{Dataset, Scenario, planted::PlantedBug, strategies};

/// The servers a fault can hit (the client's links lead to them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    User,
    Payment,
}

impl Target {
    pub fn host(self) -> &'static str {
        match self {
            Target::User => "user",
            Target::Payment => "payment",
        }
    }
}

/// One generated fault: when, for how long, what.
#[derive(Debug, Clone, PartialEq)]
pub struct GenFault {
    pub at_ms: u64,
    /// Ignored by `Bounce`, which is instant.
    pub for_ms: u64,
    pub kind: GenKind,
}

/// The harness's faults, each aimed at a server or its link to the client.
#[derive(Debug, Clone, PartialEq)]
pub enum GenKind {
    Partition(Target),
    /// Messages lost in one direction: `to_server` or back from it.
    PartitionOneway {
        target: Target,
        to_server: bool,
    },
    LinkFailure {
        target: Target,
        /// In thousandths, so that it shrinks to a round number.
        per_mille: u32,
    },
    Crash(Target),
    Bounce(Target),
    Hold(Target),
    Latency {
        target: Target,
        min_ms: u64,
        extra_ms: u64,
    },
    Stall {
        target: Target,
        delay_ms: u64,
    },
    /// The proxy stops forwarding a share of connections silently.
    Drop {
        target: Target,
        percent: u32,
    },
    /// The proxy cuts a share of connections `timeout_ms` in.
    ResetPeer {
        target: Target,
        timeout_ms: u64,
        percent: u32,
    },
    /// One of the proxy's other toxics on a share of connections, one way.
    Toxic {
        target: Target,
        toxic: GenToxic,
        upstream: bool,
        percent: u32,
    },
}

/// The proxy's toxics besides `drop` and `reset_peer`, with parameters
/// bounded so that a run stays quick: at worst a chunk is held a few
/// seconds, which the client's call timeout and reconnect outlast.
#[derive(Debug, Clone, PartialEq)]
pub enum GenToxic {
    Latency {
        latency_ms: u64,
        jitter_ms: u64,
    },
    Bandwidth {
        rate_kbps: u64,
    },
    Slicer {
        average_size: u64,
        size_variation: u64,
        delay_us: u64,
    },
    SlowClose {
        delay_ms: u64,
    },
    /// Data stops; the connection closes after `timeout_ms` (never if 0).
    Timeout {
        timeout_ms: u64,
    },
    LimitData {
        bytes: u64,
    },
}

fn gen_toxic() -> impl Strategy<Value = GenToxic> {
    prop_oneof![
        (0u64..=1_000, 0u64..=500).prop_map(|(latency_ms, jitter)| GenToxic::Latency {
            latency_ms,
            // Toxiproxy's jitter is at most the latency.
            jitter_ms: jitter.min(latency_ms),
        }),
        // 64 kbit/s holds a 16 KiB chunk 2 s.
        (64u64..=10_000).prop_map(|rate_kbps| GenToxic::Bandwidth { rate_kbps }),
        (16u64..=256, 0u64..=256, 0u64..=5_000).prop_map(|(average_size, variation, delay_us)| {
            GenToxic::Slicer {
                average_size,
                size_variation: variation.min(average_size),
                delay_us,
            }
        }),
        (0u64..=2_000).prop_map(|delay_ms| GenToxic::SlowClose { delay_ms }),
        (0u64..=2_000).prop_map(|timeout_ms| GenToxic::Timeout { timeout_ms }),
        (0u64..=8_192).prop_map(|bytes| GenToxic::LimitData { bytes }),
    ]
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
    pub faults: Vec<GenFault>,
}

/// Faults start within this window of simulated time.
pub const FAULT_WINDOW_MS: u64 = 8_000;
/// Queries starting this long after the last heal must all be right.
pub const LIVENESS_AFTER_MS: u64 = 4_000;
/// The workload's pause between queries.
const INTERVAL_MS: u64 = 250;
/// Queries that must start after the liveness point.
const QUERIES_AFTER_LIVENESS: u64 = 4;

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::User), Just(Target::Payment)]
}

/// A fault anywhere in the window, lasting 50 ms to 3 s.
pub fn fault() -> impl Strategy<Value = GenFault> {
    let kind = prop_oneof![
        1 => target().prop_map(GenKind::Partition),
        1 => (target(), any::<bool>())
            .prop_map(|(target, to_server)| GenKind::PartitionOneway { target, to_server }),
        1 => (target(), 1u32..=100)
            .prop_map(|(target, per_mille)| GenKind::LinkFailure { target, per_mille }),
        1 => target().prop_map(GenKind::Crash),
        1 => target().prop_map(GenKind::Bounce),
        1 => target().prop_map(GenKind::Hold),
        1 => (target(), 0u64..=300, 0u64..=700).prop_map(|(target, min_ms, extra_ms)| {
            GenKind::Latency {
                target,
                min_ms,
                extra_ms,
            }
        }),
        1 => (target(), 1u64..=3_000).prop_map(|(target, delay_ms)| GenKind::Stall { target, delay_ms }),
        1 => (target(), 1u32..=100).prop_map(|(target, percent)| GenKind::Drop { target, percent }),
        1 => (target(), 0u64..=1_000, 1u32..=100).prop_map(|(target, timeout_ms, percent)| {
            GenKind::ResetPeer {
                target,
                timeout_ms,
                percent,
            }
        }),
        // Six toxics, each as likely as any one fault above.
        6 => (target(), gen_toxic(), any::<bool>(), 1u32..=100).prop_map(
            |(target, toxic, upstream, percent)| GenKind::Toxic {
                target,
                toxic,
                upstream,
                percent,
            }
        ),
    ];
    (0..FAULT_WINDOW_MS, 50u64..=3_000, kind).prop_map(|(at_ms, for_ms, kind)| GenFault {
        at_ms,
        for_ms,
        kind,
    })
}

/// A small awkward dataset, one to four questions about it, and up to
/// `faults_max` faults. The parts are independent, so each shrinks on its
/// own: users and transactions drop out, questions and faults drop out or
/// get simpler, times move earlier.
pub fn case(faults_max: usize) -> impl Strategy<Value = Case> {
    (
        any::<u32>().prop_map(u64::from),
        strategies::dataset(1..=4, 0..=12),
        proptest::collection::vec(strategies::question_spec(0.2), 1..=4),
        proptest::collection::vec(fault(), 0..=faults_max),
    )
        .prop_map(|(seed, dataset, specs, faults)| Case {
            seed,
            questions: specs.iter().map(|q| q.resolve(&dataset).text).collect(),
            dataset,
            faults,
        })
}

impl Case {
    /// When the last fault heals.
    fn healed_ms(&self) -> u64 {
        self.faults
            .iter()
            .map(|f| match f.kind {
                GenKind::Bounce(_) => f.at_ms,
                _ => f.at_ms + f.for_ms,
            })
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
        let mut root = Table::new();
        root.insert("name".into(), name.into());
        root.insert("seed".into(), Value::Integer(self.seed as i64));
        root.insert("duration_ms".into(), Value::Integer(600_000));
        root.insert("tick_ms".into(), Value::Integer(5));
        if let Some(bug) = planted {
            root.insert("planted_bug".into(), bug.name().into());
        }
        root.insert(
            "network".into(),
            table([
                ("latency_min_ms", 5.into()),
                ("latency_max_ms", 50.into()),
                ("repair_rate", 0.2.into()),
            ]),
        );
        root.insert(
            "dataset".into(),
            table([
                (
                    "users",
                    Value::try_from(&self.dataset.users).expect("users serialise"),
                ),
                (
                    "transactions",
                    Value::try_from(&self.dataset.transactions).expect("transactions serialise"),
                ),
            ]),
        );
        root.insert(
            "workload".into(),
            table([
                ("queries", Value::Integer(self.queries() as i64)),
                ("interval_ms", Value::Integer(INTERVAL_MS as i64)),
                (
                    "questions",
                    Value::Array(self.questions.iter().map(|q| q.as_str().into()).collect()),
                ),
            ]),
        );
        root.insert(
            "policy".into(),
            table([
                ("connect_timeout_ms", 500.into()),
                ("call_timeout_ms", 800.into()),
                ("deadline_ms", 5_000.into()),
                ("attempts_max", 4.into()),
                ("backoff_base_ms", 20.into()),
                ("backoff_max_ms", 300.into()),
                ("breaker_open_ms", 500.into()),
            ]),
        );
        let faults = self.faults.iter().map(GenFault::to_toml).collect();
        root.insert("faults".into(), Value::Array(faults));
        root.insert(
            "invariants".into(),
            table([(
                "liveness_after_ms",
                Value::Integer(LIVENESS_AFTER_MS as i64),
            )]),
        );
        toml::to_string(&root).expect("a table always serialises")
    }
}

impl GenFault {
    fn to_toml(&self) -> Value {
        let link = |t: Target| Value::Array(vec!["client".into(), t.host().into()]);
        let mut fault = Table::new();
        fault.insert("at_ms".into(), Value::Integer(self.at_ms as i64));
        if !matches!(self.kind, GenKind::Bounce(_)) {
            fault.insert("for_ms".into(), Value::Integer(self.for_ms as i64));
        }
        let mut set = |key: &str, value: Value| {
            fault.insert(key.into(), value);
        };
        match &self.kind {
            GenKind::Partition(t) => {
                set("kind", "partition".into());
                set("between", link(*t));
            }
            GenKind::PartitionOneway { target, to_server } => {
                set("kind", "partition_oneway".into());
                let (from, to) = if *to_server {
                    ("client", target.host())
                } else {
                    (target.host(), "client")
                };
                set("between", Value::Array(vec![from.into(), to.into()]));
            }
            GenKind::LinkFailure { target, per_mille } => {
                set("kind", "link_failure".into());
                set("between", link(*target));
                set("fail_rate", (f64::from(*per_mille) / 1000.0).into());
            }
            GenKind::Crash(t) => {
                set("kind", "crash".into());
                set("host", t.host().into());
            }
            GenKind::Bounce(t) => {
                set("kind", "bounce".into());
                set("host", t.host().into());
            }
            GenKind::Hold(t) => {
                set("kind", "hold".into());
                set("between", link(*t));
            }
            GenKind::Latency {
                target,
                min_ms,
                extra_ms,
            } => {
                set("kind", "latency".into());
                set("between", link(*target));
                set("latency_min_ms", Value::Integer(*min_ms as i64));
                set("latency_max_ms", Value::Integer((min_ms + extra_ms) as i64));
            }
            GenKind::Stall { target, delay_ms } => {
                set("kind", "stall".into());
                set("host", target.host().into());
                set("delay_ms", Value::Integer(*delay_ms as i64));
            }
            GenKind::Drop { target, percent } => {
                set("kind", "toxic".into());
                set("server", target.host().into());
                set("toxic", "drop".into());
                set("toxicity", (f64::from(*percent) / 100.0).into());
            }
            GenKind::ResetPeer {
                target,
                timeout_ms,
                percent,
            } => {
                set("kind", "toxic".into());
                set("server", target.host().into());
                set("toxic", "reset_peer".into());
                set("timeout_ms", Value::Integer(*timeout_ms as i64));
                set("toxicity", (f64::from(*percent) / 100.0).into());
            }
            GenKind::Toxic {
                target,
                toxic,
                upstream,
                percent,
            } => {
                set("kind", "toxic".into());
                set("server", target.host().into());
                set(
                    "stream",
                    if *upstream { "upstream" } else { "downstream" }.into(),
                );
                set("toxicity", (f64::from(*percent) / 100.0).into());
                let int = |n: u64| Value::Integer(n as i64);
                let (name, fields): (&str, Vec<(&str, u64)>) = match *toxic {
                    GenToxic::Latency {
                        latency_ms,
                        jitter_ms,
                    } => (
                        "latency",
                        vec![("latency_ms", latency_ms), ("jitter_ms", jitter_ms)],
                    ),
                    GenToxic::Bandwidth { rate_kbps } => {
                        ("bandwidth", vec![("rate_kbps", rate_kbps)])
                    }
                    GenToxic::Slicer {
                        average_size,
                        size_variation,
                        delay_us,
                    } => (
                        "slicer",
                        vec![
                            ("average_size", average_size),
                            ("size_variation", size_variation),
                            ("delay_us", delay_us),
                        ],
                    ),
                    GenToxic::SlowClose { delay_ms } => {
                        ("slow_close", vec![("delay_ms", delay_ms)])
                    }
                    GenToxic::Timeout { timeout_ms } => {
                        ("timeout", vec![("timeout_ms", timeout_ms)])
                    }
                    GenToxic::LimitData { bytes } => ("limit_data", vec![("bytes", bytes)]),
                };
                set("toxic", name.into());
                for (key, n) in fields {
                    set(key, int(n));
                }
            }
        }
        Value::Table(fault)
    }
}

fn table<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Table(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cases: 64,
            faults_max: 4,
            seed: 0,
            planted: None,
            shrink_steps_max: 4096,
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
    let result = runner.run(&case(settings.faults_max), |case| {
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
            let case = sample(&case(4), seed).unwrap();
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
            let case = sample(&case(4), seed).unwrap();
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
    fn the_workload_outlasts_the_liveness_point() {
        let mut case = sample(&case(0), 1).unwrap();
        case.faults = vec![GenFault {
            at_ms: 7_000,
            for_ms: 3_000,
            kind: GenKind::Crash(Target::Payment),
        }];
        let last_start = (case.queries() - 1) * INTERVAL_MS;
        assert!(last_start >= 10_000 + LIVENESS_AFTER_MS + (QUERIES_AFTER_LIVENESS - 1) * 250);
    }
}
