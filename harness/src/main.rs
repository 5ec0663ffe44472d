//! `harness`: run scenario files under the deterministic network simulator.
//!
//! Exit codes: 0 every run met its scenario's expectation, 1 one did not
//! (the replay command is printed), 2 bad usage or scenario file.

/// A simulated run allocates and frees for every message it parses and
/// writes (most of it inside rmcp and serde); mimalloc does that in fewer
/// instructions than glibc's malloc. Nothing a run observes depends on
/// where its memory is: the traces are the same byte for byte.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mcp_server_kit::say;

mod probe_command;

use std::{
    ops::RangeInclusive,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use harness::{Outcome, RunReport, Scenario, explore::Settings};

/// Deterministic chaos harness for the MCP servers and orchestrator.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario for one seed or a range of seeds.
    Run(RunArgs),
    /// Generate datasets, questions and fault schedules with proptest, run
    /// each under the simulation, and on the first failure shrink it to a
    /// minimal case and write it out as a scenario file.
    Explore {
        /// Cases to try (the default, 64, takes seconds in release).
        #[arg(long, default_value_t = 64)]
        cases: u32,
        /// Most faults per case.
        #[arg(long, default_value_t = 4)]
        faults_max: usize,
        /// Seeds the case generator: the same seed explores the same cases.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where a shrunk failure is written: DIR/explored-SEED.toml.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Plant a deliberate bug, from outside the orchestrator, to
        /// watch the search find and shrink it: stale-retry-arguments, or
        /// ignore-retry-after (over http).
        #[arg(long, value_name = "BUG")]
        planted_bug: Option<String>,
        /// Generated cases run over this transport (tcp by default); over
        /// http, `rate_limit` faults are generated too.
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// Probe any MCP server, over stdio or streamable HTTP: a verdict per
    /// spec requirement, and each failure shrunk to a minimal exchange
    /// that replays.
    Probe(probe_command::ProbeArgs),
    /// Run every seed twice and compare trace hashes.
    CheckDeterminism {
        file: PathBuf,
        #[arg(long, value_parser = parse_range, default_value = "1..5")]
        seeds: RangeInclusive<u64>,
        /// Run both runs of every seed inside this one process, after all
        /// the seeds before it, instead of each in a fresh process.
        #[arg(long)]
        in_process: bool,
        #[command(flatten)]
        transport: TransportArgs,
    },
}

/// Which transport the workload uses, overriding the scenario file's.
#[derive(Debug, Clone, Default, clap::Args)]
struct TransportArgs {
    /// The workload's transport, over a scenario file's own: tcp (newline
    /// JSON-RPC) or http (streamable HTTP, with authentication).
    #[arg(long, value_name = "tcp|http")]
    transport: Option<String>,
    /// The MCP revision an HTTP workload negotiates: 2025-11-25 (sessions)
    /// or 2026-07-28 (stateless).
    #[arg(long, value_name = "REVISION")]
    revision: Option<String>,
}

impl TransportArgs {
    /// The scenario file at `path`, with the transport these flags name.
    fn load(&self, path: &std::path::Path) -> anyhow::Result<Scenario> {
        let scenario = Scenario::from_file(path)?;
        if self.transport.is_none() && self.revision.is_none() {
            return Ok(scenario);
        }
        let transport = harness::Transport::parse(
            self.transport.as_deref(),
            self.revision.as_deref(),
            scenario.workload.transport,
        )
        .map_err(|message| anyhow::anyhow!("{message}"))?;
        Ok(scenario.over(transport))
    }

    /// The same flags, for a child `harness run`.
    fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(transport) = &self.transport {
            args.extend(["--transport".to_owned(), transport.clone()]);
        }
        if let Some(revision) = &self.revision {
            args.extend(["--revision".to_owned(), revision.clone()]);
        }
        args
    }
}

/// `harness run`'s arguments.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The scenario file, e.g. scenarios/flaky.toml.
    file: PathBuf,
    /// One seed (default: the scenario's own).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A range of seeds, A..B (inclusive).
    #[arg(long, value_parser = parse_range)]
    seeds: Option<RangeInclusive<u64>>,
    /// Write every run's trace (faults and queries) and wire log (every
    /// message the clients sent and received), with simulated times, to
    /// FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Also print each run's trace after its summary (a failing run's
    /// trace is always printed).
    #[arg(long)]
    print_trace: bool,
    /// Print one JSON object per run instead of text.
    #[arg(long)]
    json: bool,
    /// Write a JUnit XML report (one test case per seed) to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write an HTML run report to FILE: one self-contained page with the
    /// verdicts and replay commands, a table of every seed, and a timeline
    /// (faults, queries, retries, reconnects, hedges, breakers, messages)
    /// of each failed seed, or of the first 3 when all pass.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Run only shard K of N (1-based) of the seeds: seed s belongs to
    /// shard (s mod N) + 1, so N machines can split a range.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    #[command(flatten)]
    transport: TransportArgs,
}

fn parse_range(raw: &str) -> Result<RangeInclusive<u64>, String> {
    let (a, b) = raw
        .split_once("..")
        .ok_or_else(|| format!("{raw:?} is not A..B"))?;
    let a: u64 = a.parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: u64 = b
        .trim_start_matches('=')
        .parse()
        .map_err(|e| format!("{b:?}: {e}"))?;
    if a > b {
        return Err(format!("{a} is after {b}"));
    }
    Ok(a..=b)
}

fn parse_shard(raw: &str) -> Result<(u64, u64), String> {
    let (k, n) = raw
        .split_once('/')
        .ok_or_else(|| format!("{raw:?} is not K/N"))?;
    let k: u64 = k.parse().map_err(|e| format!("{k:?}: {e}"))?;
    let n: u64 = n.parse().map_err(|e| format!("{n:?}: {e}"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("shard {k}/{n}: need 1 <= K <= N"));
    }
    Ok((k, n))
}

/// The seeds of `seeds` that shard K of N runs: seed s belongs to shard
/// (s mod N) + 1. All of them without a shard.
fn in_shard(seeds: RangeInclusive<u64>, shard: Option<(u64, u64)>) -> Vec<u64> {
    match shard {
        Some((k, n)) => seeds.filter(|s| s % n == k - 1).collect(),
        None => seeds.collect(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {}", mcp_server_kit::describe(error.as_ref()));
            ExitCode::from(2)
        }
    }
}

fn execute(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Run(args) => run(&args),
        Command::Probe(args) => probe_command::probe(&args),
        Command::Explore {
            cases,
            faults_max,
            seed,
            out,
            planted_bug,
            transport,
        } => explore(
            Settings {
                cases,
                faults_max,
                seed,
                ..Settings::default()
            },
            &out,
            planted_bug.as_deref(),
            &transport,
        ),
        Command::CheckDeterminism {
            file,
            seeds,
            in_process,
            transport,
        } => check_determinism(&file, seeds, in_process, &transport),
    }
}

/// `harness run`: every seed, its summary on stdout, the trace file and
/// the JUnit report; wall-time figures on stderr.
fn run(args: &RunArgs) -> anyhow::Result<bool> {
    let scenario = args.transport.load(&args.file)?;
    let seeds = args.seeds.clone().unwrap_or_else(|| {
        let seed = args.seed.unwrap_or(scenario.seed);
        seed..=seed
    });
    let seeds = in_shard(seeds, args.shard);
    let mut trace_file = TraceFile::create(args.trace.as_deref())?;
    let progress = progress_bar(seeds.len() as u64, args.json, "seeds");
    let started = Instant::now();
    let mut simulated = std::time::Duration::ZERO;
    let mut failed = Vec::new();
    let mut reports = Vec::with_capacity(seeds.len());
    let mut html = args
        .report
        .as_ref()
        .map(|_| harness::HtmlReport::new(&scenario, &args.file.display().to_string()));
    for &seed in &seeds {
        let mut report = harness::run(&scenario, seed).with_context(|| format!("seed {seed}"))?;
        simulated += report.simulated;
        progress.suspend(|| {
            if args.json {
                say!("{}", report_json(&scenario, &report));
            } else {
                print_report(&scenario, &report, args.print_trace);
            }
        });
        progress.inc(1);
        trace_file.write(&scenario, &report)?;
        if !report.as_expected {
            failed.push((seed, report.trace_hash));
        }
        if let Some(html) = &mut html {
            html.add(&report);
        }
        // The JUnit report needs only the verdicts.
        report.trace = String::new();
        report.wire = String::new();
        report.queries = Vec::new();
        report.events = Vec::new();
        report.faults = Vec::new();
        reports.push(report);
    }
    progress.finish_and_clear();
    let wall = started.elapsed();
    trace_file.finish()?;
    if let (Some(path), Some(html)) = (&args.report, &html) {
        std::fs::write(path, html.render())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit_xml(&scenario, &reports))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // Wall time varies from run to run; stdout stays the same.
    eprintln!(
        "\n{} run(s) in {:.2} s: {:.1} seeds/s, simulated/wall time {:.0}x",
        seeds.len(),
        wall.as_secs_f64(),
        seeds.len() as f64 / wall.as_secs_f64(),
        simulated.as_secs_f64() / wall.as_secs_f64()
    );
    report_failures(&args.file, &failed, seeds.len() > 1, &args.transport);
    Ok(failed.is_empty())
}

/// How to reproduce each failed seed, and (in a multi-seed run) whether a
/// fresh process does.
fn report_failures(file: &Path, failed: &[(u64, u64)], many: bool, transport: &TransportArgs) {
    let flags: String = transport
        .to_args()
        .iter()
        .map(|a| format!(" {a}"))
        .collect();
    for &(seed, trace_hash) in failed {
        eprintln!(
            "FAILED seed {seed}: reproduce with: cargo run --release -p harness -- run {} --seed {seed}{flags} --print-trace",
            file.display()
        );
        if many {
            eprintln!("       {}", replay_check(file, seed, trace_hash, transport));
        }
    }
}

/// `--trace FILE`: every run's trace and wire log, one after the other.
struct TraceFile {
    out: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
}

impl TraceFile {
    fn create(path: Option<&Path>) -> anyhow::Result<Self> {
        let out = match path {
            Some(path) => Some((
                path.to_owned(),
                std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                ),
            )),
            None => None,
        };
        Ok(Self { out })
    }

    fn write(&mut self, scenario: &Scenario, report: &RunReport) -> anyhow::Result<()> {
        use std::io::Write as _;
        let Some((path, out)) = &mut self.out else {
            return Ok(());
        };
        write!(
            out,
            "# {} seed {}\n{}# wire\n{}",
            scenario.name, report.seed, report.trace, report.wire
        )
        .with_context(|| format!("writing {}", path.display()))
    }

    fn finish(self) -> anyhow::Result<()> {
        let Some((path, out)) = self.out else {
            return Ok(());
        };
        out.into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// Runs every seed twice, each run in a fresh process (as a replay is) or
/// all of them in this one, and reports the seeds whose traces differ.
fn check_determinism(
    file: &std::path::Path,
    seeds: RangeInclusive<u64>,
    in_process: bool,
    transport: &TransportArgs,
) -> anyhow::Result<bool> {
    let scenario = transport.load(file)?;
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let run_once = |seed: u64| -> anyhow::Result<String> {
        if in_process {
            let report = harness::run(&scenario, seed).with_context(|| format!("seed {seed}"))?;
            return Ok(format!("{:016x}", report.trace_hash));
        }
        let report = run_in_fresh_process(&exe, file, seed, transport)?;
        Ok(report["trace_hash"].as_str().unwrap_or_default().to_owned())
    };
    let mut differing = Vec::new();
    for seed in seeds.clone() {
        let (first, second) = (run_once(seed)?, run_once(seed)?);
        if first != second {
            say!("seed {seed}: trace {first} then {second}");
            differing.push(seed);
        }
    }
    let how = if in_process {
        "twice in one process"
    } else {
        "in two separate processes"
    };
    if differing.is_empty() {
        say!(
            "deterministic: seeds {}..={} gave identical traces {how}",
            seeds.start(),
            seeds.end()
        );
    } else {
        say!("NOT deterministic for seed(s) {differing:?} (run {how})");
    }
    Ok(differing.is_empty())
}

/// Re-runs a seed that failed inside a multi-seed run in a fresh process,
/// as its replay command would, and says whether the failure reproduced
/// there: same trace, same unmet expectation.
fn replay_check(
    file: &std::path::Path,
    seed: u64,
    trace_hash: u64,
    transport: &TransportArgs,
) -> String {
    let replayed = std::env::current_exe()
        .context("cannot find this executable")
        .and_then(|exe| run_in_fresh_process(&exe, file, seed, transport));
    let here = format!("{trace_hash:016x}");
    match replayed {
        Err(error) => format!(
            "could not replay it in a fresh process: {}",
            mcp_server_kit::describe(error.as_ref())
        ),
        Ok(report) if report["trace_hash"] == here.as_str() && report["as_expected"] == false => {
            "reproduced in a fresh process (same trace)".to_owned()
        }
        Ok(report) => format!(
            "did NOT reproduce in a fresh process (trace {here} here, {} there): a run \
             that depends on what ran before it in the process, a determinism bug \
             (see \"Replay\" in scenarios/README.md)",
            report["trace_hash"].as_str().unwrap_or("missing")
        ),
    }
}

/// Runs `harness run FILE --seed SEED --json` in a fresh process, as the
/// printed replay command would, and returns its report.
fn run_in_fresh_process(
    exe: &std::path::Path,
    file: &std::path::Path,
    seed: u64,
    transport: &TransportArgs,
) -> anyhow::Result<serde_json::Value> {
    let output = std::process::Command::new(exe)
        .args([
            "run",
            &file.to_string_lossy(),
            "--seed",
            &seed.to_string(),
            "--json",
        ])
        .args(transport.to_args())
        .output()
        .context("cannot run the harness")?;
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim())
        .with_context(|| format!("seed {seed}: unreadable run output: {line}"))
}

/// The bug `--planted-bug NAME` names.
fn planted_bug_named(name: &str) -> anyhow::Result<harness::PlantedBug> {
    harness::PlantedBug::from_name(name).with_context(|| {
        format!(
            "--planted-bug: no bug called {name:?}; there are: {}",
            harness::PlantedBug::names()
        )
    })
}

fn explore(
    settings: Settings,
    out: &std::path::Path,
    planted_bug: Option<&str>,
    transport: &TransportArgs,
) -> anyhow::Result<bool> {
    use harness::explore::{explore, output_path};
    let planted = planted_bug.map(planted_bug_named).transpose()?;
    let transport = harness::Transport::parse(
        transport.transport.as_deref(),
        transport.revision.as_deref(),
        harness::Transport::Tcp,
    )
    .map_err(|message| anyhow::anyhow!("{message}"))?;
    let settings = Settings {
        planted,
        transport,
        ..settings
    };
    let Settings {
        cases,
        faults_max,
        seed,
        ..
    } = settings;
    let bar = progress_bar(u64::from(cases), false, "cases");
    let started = Instant::now();
    let exploration = explore(&settings, |runs, shrinking| {
        if shrinking {
            bar.set_message(format!("shrinking, {runs} runs"));
        } else {
            bar.set_position(u64::from(runs));
        }
    })?;
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let Some(found) = exploration.found else {
        say!(
            "ok   {cases} generated cases passed over {} (generator seed {seed}, up to {faults_max} faults each) in {wall:.1} s, {:.1} cases/s",
            transport.describe(),
            f64::from(exploration.runs) / wall
        );
        return Ok(true);
    };
    let path = output_path(out, &settings);
    std::fs::write(&path, &found.scenario)
        .with_context(|| format!("writing {}", path.display()))?;
    let size = |c: &harness::explore::Case| {
        format!(
            "{} users, {} transactions, {} questions, {} faults",
            c.dataset.users.len(),
            c.dataset.transactions.len(),
            c.questions.len(),
            c.faults.len()
        )
    };
    say!(
        "FAIL case {} of {cases} broke an invariant ({}).\n     shrunk in {} more runs to {}:\n     {}\n     written to {}\n     replay: cargo run -p harness -- run {}",
        found.cases_to_find,
        size(&found.original),
        found.shrink_runs,
        size(&found.shrunk),
        found.violation.replace('\n', "\n     "),
        path.display(),
        path.display()
    );
    Ok(false)
}

fn print_report(scenario: &Scenario, report: &RunReport, print_trace: bool) {
    let right = count(report, |o| matches!(o, Outcome::Right));
    let errors = count(report, |o| matches!(o, Outcome::Error(_)));
    let wrong = count(report, |o| matches!(o, Outcome::Wrong { .. }));
    let verdict = if report.as_expected { "ok  " } else { "FAIL" };
    let stats = &report.stats;
    say!(
        "{verdict} {} seed {}: {} queries: {right} right, {errors} typed errors, {wrong} wrong · \
         p50 {} ms, p99 {} ms (simulated) · trace {:016x}",
        scenario.name,
        report.seed,
        report.queries.len(),
        report.latency_percentile(0.50).as_millis(),
        report.latency_percentile(0.99).as_millis(),
        report.trace_hash
    );
    say!(
        "       {:12} {} applied: {}",
        "faults",
        report.faults_applied,
        report.faults_summary()
    );
    say!(
        "       {:12} {} attempts ({} calls + {} retries + {} hedges), {} reconnects, {} breaker trips",
        "orchestrator",
        report.attempts(),
        stats.calls,
        stats.retries,
        stats.hedges,
        report.reconnects(),
        report.breaker_trips()
    );
    for v in &report.verdicts {
        let expected_to_break = scenario.expect_fail == Some(v.invariant);
        let state = match (v.held, expected_to_break) {
            (true, false) => "held",
            (false, true) => "broke, as expected",
            (true, true) => "HELD, expected to break",
            (false, false) => "BROKE",
        };
        say!("       {:12} {state}: {}", v.invariant.name(), v.detail);
    }
    if print_trace || !report.as_expected {
        for line in report.trace.lines() {
            say!("       | {line}");
        }
    }
    for q in &report.queries {
        if let Outcome::Wrong { got, expected } = &q.outcome {
            say!(
                "       wrong at {} ms: {:?}\n         got {got:?}\n         expected {expected:?}",
                q.start.as_millis(),
                q.question
            );
        }
    }
}

fn count(report: &RunReport, f: impl Fn(&Outcome) -> bool) -> usize {
    report.queries.iter().filter(|q| f(&q.outcome)).count()
}

fn report_json(scenario: &Scenario, report: &RunReport) -> serde_json::Value {
    serde_json::json!({
        "scenario": scenario.name,
        "seed": report.seed,
        "as_expected": report.as_expected,
        "queries": report.queries.len(),
        "right": count(report, |o| matches!(o, Outcome::Right)),
        "typed_errors": count(report, |o| matches!(o, Outcome::Error(_))),
        "wrong": count(report, |o| matches!(o, Outcome::Wrong { .. })),
        "p50_ms": report.latency_percentile(0.50).as_millis() as u64,
        "p99_ms": report.latency_percentile(0.99).as_millis() as u64,
        "attempts": report.attempts(),
        "calls": report.stats.calls,
        "retries": report.stats.retries,
        "hedges": report.stats.hedges,
        "servers": report.load.iter().map(|l| (l.server.to_owned(), serde_json::json!({
            "in_flight_peak": l.in_flight_peak, "sessions_peak": l.sessions_peak,
        }))).collect::<serde_json::Map<_, _>>(),
        "reconnects": report.reconnects(),
        "breaker_trips": report.breaker_trips(),
        "connections": report.stats.connections.iter().map(|(s, n)| (s.clone(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
        "faults": report.faults_applied,
        "faults_by_kind": report.faults_by_kind.iter().map(|(k, n)| (k.clone(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
        "simulated_ms": report.simulated.as_millis() as u64,
        "trace_hash": format!("{:016x}", report.trace_hash),
        "verdicts": report.verdicts.iter().map(|v| serde_json::json!({
            "invariant": v.invariant.name(), "held": v.held, "detail": v.detail,
        })).collect::<Vec<_>>(),
    })
}

fn junit_xml(scenario: &Scenario, reports: &[RunReport]) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let failures = reports.iter().filter(|r| !r.as_expected).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
        escape(&scenario.name),
        reports.len()
    );
    for report in reports {
        xml.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"seed {}\">\n",
            escape(&scenario.name),
            report.seed
        ));
        if !report.as_expected {
            let detail: Vec<String> = report
                .verdicts
                .iter()
                .map(|v| {
                    format!(
                        "{}: {}: {}",
                        v.invariant.name(),
                        if v.held { "held" } else { "broke" },
                        v.detail
                    )
                })
                .collect();
            xml.push_str(&format!(
                "    <failure message=\"expectation not met\">{}</failure>\n",
                escape(&detail.join("\n"))
            ));
        }
        xml.push_str("  </testcase>\n");
    }
    xml.push_str("</testsuite>\n");
    xml
}

fn progress_bar(len: u64, quiet: bool, unit: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || len < 2 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}} {{msg}}"
        ))
        .expect("valid template"),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_inclusive_with_or_without_the_equals_sign() {
        assert_eq!(parse_range("1..50"), Ok(1..=50));
        assert_eq!(parse_range("1..=50"), Ok(1..=50));
        assert_eq!(parse_range("7..7"), Ok(7..=7));
        assert_eq!(parse_range("0..18446744073709551615"), Ok(0..=u64::MAX));
    }

    #[test]
    fn a_bad_range_says_what_is_wrong() {
        assert_eq!(parse_range("5"), Err("\"5\" is not A..B".to_owned()));
        assert_eq!(parse_range("9..1"), Err("9 is after 1".to_owned()));
        for bad in [
            "a..5", "1..b", "..5", "1..", "1..=", "-1..5", "1...5", "1..5..9",
        ] {
            assert!(parse_range(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_range("x..5").unwrap_err().starts_with("\"x\": "));
    }

    #[test]
    fn a_shard_is_k_of_n_from_1() {
        assert_eq!(parse_shard("1/1"), Ok((1, 1)));
        assert_eq!(parse_shard("3/8"), Ok((3, 8)));
        assert_eq!(parse_shard("8/8"), Ok((8, 8)));
        for bad in ["0/4", "5/4", "1/0", "0/0"] {
            assert_eq!(
                parse_shard(bad),
                Err(format!("shard {bad}: need 1 <= K <= N"))
            );
        }
        for bad in ["4", "a/4", "1/b", "1/2/3", "-1/4", ""] {
            assert!(parse_shard(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_shards_of_a_range_split_it_exactly() {
        let all: Vec<u64> = (1..=1000).collect();
        for n in 1..=7 {
            let mut union: Vec<u64> = (1..=n)
                .flat_map(|k| in_shard(1..=1000, Some((k, n))))
                .collect();
            union.sort_unstable();
            assert_eq!(union, all, "{n} shards");
            // Shards are as even as the range allows.
            let sizes: Vec<usize> = (1..=n)
                .map(|k| in_shard(1..=1000, Some((k, n))).len())
                .collect();
            assert!(
                sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
                "{sizes:?}"
            );
        }
        assert_eq!(in_shard(1..=6, Some((1, 3))), [3, 6]);
        assert_eq!(in_shard(1..=6, Some((2, 3))), [1, 4]);
        assert_eq!(in_shard(4..=4, None), [4]);
    }
}
