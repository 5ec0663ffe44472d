//! The run report: `harness run FILE --report report.html` writes one
//! self-contained HTML page (inline CSS, SVG and script; a Content
//! Security Policy that forbids any network request) telling a run's
//! story at a glance:
//!
//! - at the top, every invariant's verdict over the seeds, and the replay
//!   command of each seed that failed (or of the first);
//! - a table of every seed: answers, latency, faults, attempts, verdicts;
//! - a timeline ([`timeline`]) for each failed seed (the first 10), or
//!   for the first 3 when all pass: simulated time across, a lane per host and faulted
//!   link, faults as bars from start to heal, every query as a mark from
//!   start to end coloured by outcome, the orchestrators' reconnects,
//!   retries, hedges and breaker transitions as markers, every message on
//!   the wire as a tick, the liveness window shaded. Hovering names
//!   anything; clicking a query or a message shows it in full.
//!
//! The page is a function of the runs alone, so, like standard output,
//! the same seeds give the same bytes.

mod html;
mod layout;
mod page;
mod timeline;
mod wire;

use crate::{Outcome, RunReport, Scenario, scenario::Invariant};

/// Timelines drawn when every seed met its expectation: the first few.
const TIMELINES_PASSING: usize = 3;
/// Most failed seeds drawn; further ones are rows of the table only.
const TIMELINES_FAILED_MAX: usize = 10;

/// A run report being gathered, seed by seed. It keeps a summary row of
/// every seed and whole runs only for the timelines it may draw.
#[derive(Debug)]
pub struct HtmlReport<'a> {
    scenario: &'a Scenario,
    /// The scenario file as the user named it, for the replay commands.
    file: String,
    rows: Vec<Row>,
    first: Vec<RunReport>,
    failed: Vec<RunReport>,
}

impl<'a> HtmlReport<'a> {
    /// An empty report on runs of `scenario`, read from `file`.
    pub fn new(scenario: &'a Scenario, file: &str) -> Self {
        Self {
            scenario,
            file: file.to_owned(),
            rows: Vec::new(),
            first: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Adds one seed's run (before its trace and wire log are dropped).
    pub fn add(&mut self, report: &RunReport) {
        self.rows.push(Row::of(report));
        if self.first.len() < TIMELINES_PASSING {
            self.first.push(report.clone());
        }
        if !report.as_expected && self.failed.len() < TIMELINES_FAILED_MAX {
            self.failed.push(report.clone());
        }
    }

    /// The page.
    pub fn render(&self) -> String {
        page::render(self)
    }

    /// The runs that get a timeline: the failed ones if any failed, else
    /// the first few.
    fn drawn(&self) -> &[RunReport] {
        if self.failed.is_empty() {
            &self.first
        } else {
            &self.failed
        }
    }

    /// The command that replays `seed`.
    fn replay(&self, seed: u64) -> String {
        format!(
            "cargo run --release -p harness -- run {} --seed {seed}",
            self.file
        )
    }
}

/// One seed's line of the summary table.
#[derive(Debug, Clone)]
struct Row {
    seed: u64,
    as_expected: bool,
    queries: usize,
    right: usize,
    errors: usize,
    wrong: usize,
    p50_ms: u128,
    p99_ms: u128,
    faults: usize,
    attempts: u64,
    retries: u64,
    hedges: u64,
    reconnects: u64,
    breaker_trips: u64,
    trace_hash: u64,
    /// Each checked invariant and whether it held.
    verdicts: Vec<(Invariant, bool)>,
}

impl Row {
    fn of(report: &RunReport) -> Self {
        let count =
            |f: fn(&Outcome) -> bool| report.queries.iter().filter(|q| f(&q.outcome)).count();
        Self {
            seed: report.seed,
            as_expected: report.as_expected,
            queries: report.queries.len(),
            right: count(|o| matches!(o, Outcome::Right)),
            errors: count(|o| matches!(o, Outcome::Error(_))),
            wrong: count(|o| matches!(o, Outcome::Wrong { .. })),
            p50_ms: report.latency_percentile(0.50).as_millis(),
            p99_ms: report.latency_percentile(0.99).as_millis(),
            faults: report.faults_applied,
            attempts: report.attempts(),
            retries: report.stats.retries,
            hedges: report.stats.hedges,
            reconnects: report.reconnects(),
            breaker_trips: report.breaker_trips(),
            trace_hash: report.trace_hash,
            verdicts: report
                .verdicts
                .iter()
                .map(|v| (v.invariant, v.held))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
