//! Running a generated property against a live server: proptest draws the
//! cases from the seed, a failing case is shrunk (by proptest) to a minimal
//! one, which is then replayed on a fresh session to confirm it and to
//! record its exchange.

use std::{
    cell::{Cell, RefCell},
    fmt::Debug,
};

use proptest::{
    strategy::BoxedStrategy,
    test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::{
    checks::{self, Finding, Level, Step},
    session::{OpenError, Revision, Session},
    target::{LinkError, Target},
};

/// Longest a failure is shrunk for, in milliseconds, and in runs.
const SHRINK_TIME_MS: u32 = 20_000;
const SHRINK_RUNS_MAX: u32 = 512;

/// A server session kept across cases (and reopened when it breaks), with
/// what the limits checks need to know about it.
#[derive(Debug)]
pub(crate) struct Live<'a> {
    pub target: &'a Target,
    pub revision: Revision,
    session: Option<Session>,
    /// Sessions that had to be replaced because the server broke them.
    pub broken: u32,
    /// Resident memory of the child, in KiB: first and highest reading.
    pub rss_first_kib: Option<u64>,
    pub rss_peak_kib: u64,
}

impl<'a> Live<'a> {
    pub(crate) fn new(target: &'a Target, revision: Revision) -> Live<'a> {
        Live {
            target,
            revision,
            session: None,
            broken: 0,
            rss_first_kib: None,
            rss_peak_kib: 0,
        }
    }

    /// The session, opened (with its handshake) if there is none.
    pub(crate) async fn session(&mut self) -> Result<&mut Session, OpenError> {
        if self.session.is_none() {
            self.session = Some(Session::open(self.target, self.revision).await?);
        }
        self.sample_rss();
        Ok(self.session.as_mut().expect("opened above"))
    }

    /// Drops the session: the next case starts on a fresh one.
    pub(crate) fn reset(&mut self) {
        self.session = None;
    }

    /// Drops a session the server broke, and counts it.
    pub(crate) fn broke(&mut self) {
        self.broken += 1;
        self.reset();
    }

    /// Reads the child's resident memory from /proc (stdio on Linux).
    pub(crate) fn sample_rss(&mut self) {
        let Some(kib) = self
            .session
            .as_ref()
            .and_then(Session::pid)
            .and_then(rss_kib)
        else {
            return;
        };
        self.rss_first_kib.get_or_insert(kib);
        self.rss_peak_kib = self.rss_peak_kib.max(kib);
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What one case found, and the exchange it had.
#[derive(Debug, Default)]
pub(crate) struct CaseOutcome {
    pub findings: Vec<Finding>,
    pub steps: Vec<Step>,
}

impl CaseOutcome {
    pub(crate) fn find(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// The link broke on `sent`: the server stopped serving. The finding
    /// carries the exchange up to and including it.
    pub(crate) fn broke(&mut self, sent: String, error: &LinkError) {
        self.steps.push(Step {
            sent,
            got: vec![format!("({error})")],
        });
        let finding = Finding::new(&checks::KEEPS_SERVING, error.to_string());
        self.findings.push(finding.with(self.steps.clone()));
    }

    /// No session to run the case on.
    pub(crate) fn unopened(error: &OpenError) -> CaseOutcome {
        let mut outcome = CaseOutcome::default();
        outcome.find(Finding::new(&checks::KEEPS_SERVING, error.to_string()));
        outcome
    }
}

/// A generated property: a strategy for cases, and how to run one.
pub(crate) trait Property {
    type Case: Clone + Debug + Serialize + DeserializeOwned;

    /// The name a replay file gives it.
    fn name(&self) -> &'static str;

    fn strategy(&self) -> BoxedStrategy<Self::Case>;

    /// Whether each case needs a fresh session (checks of the handshake).
    fn fresh_per_case(&self) -> bool {
        false
    }

    /// Runs `case` on `live`'s session.
    async fn run(&self, live: &mut Live<'_>, case: &Self::Case) -> CaseOutcome;
}

/// A MUST that failed, shrunk.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub finding: Finding,
    /// The minimal case, as a replay file holds it.
    pub case: Value,
    pub reproduced: bool,
}

/// What running a property came to.
#[derive(Debug, Default)]
pub(crate) struct PropertyResult {
    pub cases: u32,
    pub failure: Option<Failure>,
    /// The first warning of each SHOULD check, from cases before any failure.
    pub warnings: Vec<Finding>,
}

/// Runs `property` for `cases` cases from `seed`.
pub(crate) fn run_property<P: Property>(
    rt: &Runtime,
    property: &P,
    live: &mut Live<'_>,
    cases: u32,
    seed: u64,
    tick: &dyn Fn(),
) -> PropertyResult {
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_time: SHRINK_TIME_MS,
        max_shrink_iters: SHRINK_RUNS_MAX,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let live = RefCell::new(live);
    let target: Cell<Option<&'static str>> = Cell::new(None);
    let result = RefCell::new(PropertyResult::default());
    let outcome = runner.run(&property.strategy(), |case| {
        let mut live = live.borrow_mut();
        if property.fresh_per_case() || target.get().is_some() {
            live.reset();
        }
        let outcome = rt.block_on(property.run(&mut live, &case));
        tick();
        let mut result = result.borrow_mut();
        if target.get().is_none() {
            result.cases += 1;
            keep_first_warnings(&mut result.warnings, &outcome.findings);
        }
        match must_failure(&outcome.findings, target.get()) {
            None => Ok(()),
            Some(finding) => {
                target.set(Some(finding.check.id));
                if outcome
                    .findings
                    .iter()
                    .any(|f| f.check.id == checks::KEEPS_SERVING.id)
                {
                    live.broke();
                } else {
                    live.reset();
                }
                Err(TestCaseError::fail(finding.detail.clone()))
            }
        }
    });
    let mut result = result.into_inner();
    if let Err(TestError::Fail(_, minimal)) = outcome {
        let live = live.into_inner();
        result.failure = Some(confirm(rt, property, live, minimal, target.get()));
    }
    result
}

fn must_failure<'f>(findings: &'f [Finding], target: Option<&str>) -> Option<&'f Finding> {
    findings
        .iter()
        .find(|f| f.check.level == Level::Must && target.is_none_or(|t| t == f.check.id))
}

fn keep_first_warnings(warnings: &mut Vec<Finding>, findings: &[Finding]) {
    for finding in findings.iter().filter(|f| f.check.level == Level::Should) {
        if !warnings.iter().any(|w| w.check.id == finding.check.id) {
            warnings.push(finding.clone());
        }
    }
}

/// Replays the minimal case on a fresh session, for its exchange.
fn confirm<P: Property>(
    rt: &Runtime,
    property: &P,
    live: &mut Live<'_>,
    minimal: P::Case,
    target: Option<&'static str>,
) -> Failure {
    live.reset();
    let outcome = rt.block_on(property.run(live, &minimal));
    live.reset();
    let case = serde_json::to_value(&minimal).unwrap_or(Value::Null);
    match must_failure(&outcome.findings, target) {
        Some(finding) => Failure {
            finding: finding.clone().with(outcome.steps),
            case,
            reproduced: true,
        },
        None => {
            let check = target
                .and_then(checks::named)
                .unwrap_or(&checks::KEEPS_SERVING);
            let detail = format!(
                "failed while generating, but its minimal case passed on a fresh session: the failure depends on what came before (case: {})",
                checks::clip(&case.to_string(), 300)
            );
            Failure {
                finding: Finding::new(check, detail).with(outcome.steps),
                case,
                reproduced: false,
            }
        }
    }
}

/// Runs one case from a replay file on a fresh session.
pub(crate) fn replay_case<P: Property>(
    rt: &Runtime,
    property: &P,
    live: &mut Live<'_>,
    case: Value,
) -> Result<CaseOutcome, serde_json::Error> {
    let case: P::Case = serde_json::from_value(case)?;
    live.reset();
    Ok(rt.block_on(property.run(live, &case)))
}

/// The strategy of `property`, for tests that look at what it generates.
#[cfg(test)]
pub(crate) fn sample<P: Property>(property: &P, seed: u64) -> P::Case {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    });
    property
        .strategy()
        .new_tree(&mut runner)
        .expect("a case")
        .current()
}
