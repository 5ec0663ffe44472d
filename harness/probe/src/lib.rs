//! Property-tested conformance for any MCP server, over stdio or
//! streamable HTTP: a verdict per spec requirement, and each failure of a
//! generated property shrunk (by proptest) to a minimal exchange that
//! replays. `harness probe` is its command line.
//!
//! A run, per protocol revision the server offers: the deterministic
//! checks (lifecycle, tools/list, HTTP status codes), then the generated
//! properties (hostile framing, requests before initialize, schema-driven
//! tool calls), then the limits (stdio).

pub mod checks;
pub mod hostile;
pub mod replay;
pub mod report;
mod run;
pub mod schema;
pub mod session;
pub mod target;

use std::time::Duration;

use checks::{Check, Finding, Ledger, Level};
use run::{Live, Property, PropertyResult};
pub use session::{CONTROL_ID_BASE, Revision};
use session::{OpenError, Session};
pub use target::{HttpUrl, LinkError, Target};
use tokio::{runtime::Runtime, time::Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Generated cases per property.
    pub cases: u32,
    pub seed: u64,
    /// The revisions to probe; one the server does not offer is skipped
    /// when more than one is asked for, and is an error when it is the only one.
    pub revisions: Vec<Revision>,
    /// Call tools not marked `readOnlyHint`.
    pub allow_writes: bool,
}

/// Where a long run reports how far it is.
pub trait Progress {
    /// A new phase of `total` steps begins.
    fn phase(&self, label: &str, total: u64);
    /// One step of the phase is done.
    fn tick(&self);
}

/// A `Progress` that shows nothing.
#[derive(Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &str, _: u64) {}
    fn tick(&self) {}
}

/// Why a probe could not run at all (the command exits 2).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot start or reach the server ({target}): {source}")]
    Unreachable {
        target: String,
        #[source]
        source: LinkError,
    },
    #[error("{source}; give the probe a token with --header 'Authorization: Bearer …'")]
    Refused {
        #[source]
        source: OpenError,
    },
    #[error("the server does not offer {revision}: {detail}")]
    NotOffered { revision: Revision, detail: String },
    #[error("could not start the probe's runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The verdict on one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    Warn,
    Skip(String),
}

/// One check's verdict at one revision, with what showed it.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub check: &'static Check,
    pub outcome: Outcome,
    pub finding: Option<Finding>,
}

/// A generated property's failure, shrunk: what a replay file holds.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub property: &'static str,
    pub finding: Finding,
    pub case: serde_json::Value,
    /// Whether the minimal case failed again on a fresh session.
    pub reproduced: bool,
}

/// What one revision came to.
#[derive(Debug, Clone)]
pub struct RevisionReport {
    pub revision: Revision,
    /// Why the revision was not probed, if it was not.
    pub skipped: Option<String>,
    pub verdicts: Vec<Verdict>,
    pub shrunk: Vec<Shrunk>,
    /// Generated sequences run, and the time they took.
    pub sequences: u32,
    pub sequence_time: Duration,
}

/// What a probe came to.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: String,
    pub seed: u64,
    pub cases: u32,
    pub revisions: Vec<RevisionReport>,
}

impl Report {
    /// Whether every MUST held (the command exits 0).
    pub fn passed(&self) -> bool {
        self.revisions
            .iter()
            .flat_map(|r| &r.verdicts)
            .all(|v| v.outcome != Outcome::Fail)
    }

    pub fn count(&self, outcome: fn(&Outcome) -> bool) -> usize {
        self.revisions
            .iter()
            .flat_map(|r| &r.verdicts)
            .filter(|v| outcome(&v.outcome))
            .count()
    }
}

/// A current-thread runtime for the probe's I/O.
pub fn runtime() -> Result<Runtime, std::io::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Probes `target`.
pub fn probe(
    target: &Target,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report, ProbeError> {
    let rt = runtime()?;
    let mut revisions = Vec::new();
    for &revision in &options.revisions {
        let report = probe_revision(&rt, target, revision, options, progress)?;
        if report.skipped.is_some() && options.revisions.len() == 1 {
            let detail = report.skipped.unwrap_or_default();
            return Err(ProbeError::NotOffered { revision, detail });
        }
        revisions.push(report);
    }
    Ok(Report {
        target: target.to_string(),
        seed: options.seed,
        cases: options.cases,
        revisions,
    })
}

fn probe_revision(
    rt: &Runtime,
    target: &Target,
    revision: Revision,
    options: &Options,
    progress: &dyn Progress,
) -> Result<RevisionReport, ProbeError> {
    let unreachable = |source: LinkError| ProbeError::Unreachable {
        target: target.to_string(),
        source,
    };
    let mut report = RevisionReport {
        revision,
        skipped: None,
        verdicts: Vec::new(),
        shrunk: Vec::new(),
        sequences: 0,
        sequence_time: Duration::ZERO,
    };
    let mut ledger = Ledger::default();
    let mut session = match rt.block_on(Session::open(target, revision)) {
        Ok(session) => session,
        Err(OpenError::Link(error @ (LinkError::Spawn { .. } | LinkError::Unreachable { .. }))) => {
            return Err(unreachable(error));
        }
        Err(source @ OpenError::Refused { .. }) => return Err(ProbeError::Refused { source }),
        Err(error) if revision == Revision::Stateless => {
            report.skipped = Some(error.to_string());
            return Ok(report);
        }
        Err(error) => {
            ledger.found(Finding::new(&checks::INITIALIZE, error.to_string()));
            report.verdicts = verdicts(&ledger, target, "the handshake failed");
            return Ok(report);
        }
    };
    let tools = match rt.block_on(deterministic(target, &mut session, &mut ledger)) {
        Ok(tools) => tools,
        Err(error) => {
            let detail =
                format!("the server stopped answering during the lifecycle checks: {error}");
            ledger.found(Finding::new(&checks::KEEPS_SERVING, detail));
            None
        }
    };
    drop(session);
    let mut live = Live::new(target, revision);
    generated(
        rt,
        &mut live,
        tools.as_deref(),
        options,
        progress,
        &mut ledger,
        &mut report,
    );
    rt.block_on(checks::limits::limits(&mut live, &mut ledger));
    report.verdicts = verdicts(&ledger, target, "");
    Ok(report)
}

/// The checks that need no generation, on one session.
async fn deterministic(
    target: &Target,
    session: &mut Session,
    ledger: &mut Ledger,
) -> Result<Option<Vec<checks::tools::Tool>>, LinkError> {
    use checks::lifecycle;
    lifecycle::initialize(&session.facts, session.revision(), ledger);
    lifecycle::negotiation(target, session.revision(), ledger).await?;
    lifecycle::ping(session, ledger).await?;
    lifecycle::cancel_unknown(session, ledger).await?;
    let tools = lifecycle::tools(session, ledger).await?;
    if target.is_http() {
        checks::http::checks(target, session, ledger).await?;
    }
    Ok(tools)
}

/// The generated properties, each for its share of `options.cases`.
fn generated(
    rt: &Runtime,
    live: &mut Live<'_>,
    tools: Option<&[checks::tools::Tool]>,
    options: &Options,
    progress: &dyn Progress,
    ledger: &mut Ledger,
    report: &mut RevisionReport,
) {
    let http = live.target.is_http();
    let framing = checks::jsonrpc::Framing { http };
    let mut covers: Vec<&'static Check> = vec![
        &checks::ANSWER_ID,
        &checks::NOTIFICATION_SILENCE,
        &checks::ERROR_CODE,
        &checks::KEEPS_SERVING,
    ];
    covers.push(if http {
        &checks::HTTP_BAD_BODY
    } else {
        &checks::STDOUT_ONLY_MESSAGES
    });
    run_one(
        rt,
        &framing,
        live,
        options.cases,
        options,
        progress,
        &covers,
        ledger,
        report,
    );
    if http || live.revision == Revision::Stateless {
        let why = if http {
            "over HTTP a request before initialize has no session: see http.session-required-400"
        } else {
            "2026-07-28 has no initialize"
        };
        ledger.skip(&checks::BEFORE_INITIALIZE, why);
    } else {
        let cases = options.cases.div_ceil(8);
        run_one(
            rt,
            &checks::lifecycle::BeforeInitialize,
            live,
            cases,
            options,
            progress,
            &[&checks::BEFORE_INITIALIZE],
            ledger,
            report,
        );
    }
    let calls = tools.map(|t| checks::tools::ToolCalls::callable(t, options.allow_writes));
    let tool_checks = [
        &checks::VALID_CALL,
        &checks::INVALID_CALL,
        &checks::OUTPUT_SCHEMA,
        &checks::READ_ONLY_REPEAT,
    ];
    match calls {
        Some(calls) if !calls.tools.is_empty() => {
            run_one(
                rt,
                &calls,
                live,
                options.cases,
                options,
                progress,
                &tool_checks,
                ledger,
                report,
            );
        }
        Some(_) => tool_checks
            .iter()
            .for_each(|c| ledger.skip(c, "no read-only tools (--allow-writes calls the others)")),
        None => tool_checks
            .iter()
            .for_each(|c| ledger.skip(c, "the server lists no tools")),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_one<P: Property>(
    rt: &Runtime,
    property: &P,
    live: &mut Live<'_>,
    cases: u32,
    options: &Options,
    progress: &dyn Progress,
    covers: &[&'static Check],
    ledger: &mut Ledger,
    report: &mut RevisionReport,
) {
    progress.phase(
        &format!("{} {}", live.revision, property.name()),
        u64::from(cases),
    );
    let started = Instant::now();
    let result: PropertyResult =
        run::run_property(rt, property, live, cases, options.seed, &|| progress.tick());
    report.sequence_time += started.elapsed();
    report.sequences += result.cases;
    covers.iter().for_each(|c| ledger.ran(c));
    result.warnings.into_iter().for_each(|w| ledger.found(w));
    if let Some(failure) = result.failure {
        ledger.found(failure.finding.clone());
        report.shrunk.push(Shrunk {
            property: property.name(),
            finding: failure.finding,
            case: failure.case,
            reproduced: failure.reproduced,
        });
    }
}

/// Every check's verdict from what the ledger holds.
fn verdicts(ledger: &Ledger, target: &Target, not_run: &str) -> Vec<Verdict> {
    checks::ALL
        .iter()
        .map(|&check| {
            let finding = ledger
                .findings
                .iter()
                .find(|f| f.check.id == check.id)
                .cloned();
            let outcome = match (&finding, check.level) {
                (Some(_), Level::Must) => Outcome::Fail,
                (Some(_), Level::Should) => Outcome::Warn,
                (None, _) if ledger.ran.iter().any(|c| c.id == check.id) => Outcome::Ok,
                (None, _) => Outcome::Skip(skip_reason(ledger, check, target, not_run)),
            };
            Verdict {
                check,
                outcome,
                finding,
            }
        })
        .collect()
}

fn skip_reason(ledger: &Ledger, check: &Check, target: &Target, not_run: &str) -> String {
    if let Some((_, why)) = ledger.skipped.iter().find(|(c, _)| c.id == check.id) {
        return why.clone();
    }
    let http_only = check.id.starts_with("http.") || check.id.starts_with("auth.");
    match (http_only, check.id.starts_with("stdio."), target.is_http()) {
        (true, _, false) => "only with --url".into(),
        (_, true, true) => "only with --stdio".into(),
        _ if !not_run.is_empty() => not_run.into(),
        _ => "did not run: an earlier check stopped this revision".into(),
    }
}
