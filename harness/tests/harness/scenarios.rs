//! Every scenario file in `scenarios/` runs here, through one helper, and
//! must meet its own expectation; plus the replay guarantee.

use std::path::{Path, PathBuf};

use harness::{Invariant, Outcome, PlantedBug, Scenario, Transport};
use orchestrator::HttpRevision;

/// Seeds every scenario runs with under `cargo test` (CI runs more).
const SEEDS: std::ops::RangeInclusive<u64> = 1..=2;

/// Every scenario runs over each of these, whatever its file says.
const TRANSPORTS: [Transport; 3] = [
    Transport::Tcp,
    Transport::Http(HttpRevision::Sessions2025_11_25),
    Transport::Http(HttpRevision::Stateless2026_07_28),
];

fn scenario_files() -> Vec<PathBuf> {
    toml_files("../scenarios")
}

/// The `.toml` files in `dir` (relative to the harness crate), sorted.
fn toml_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn check(path: &Path, transport: Transport) {
    let scenario = Scenario::from_file(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .over(transport);
    let flags = match transport {
        Transport::Tcp => "--transport tcp".to_owned(),
        Transport::Http(revision) => format!("--transport http --revision {}", revision.name()),
    };
    for seed in SEEDS {
        let report = harness::run(&scenario, seed)
            .unwrap_or_else(|e| panic!("{}: seed {seed}: {e}", path.display()));
        assert!(
            report.as_expected,
            "{} seed {seed} over {} did not meet its expectation: {:#?}\nreproduce with: cargo run --release -p harness -- run {} --seed {seed} {flags} --print-trace",
            path.display(),
            transport.describe(),
            report.verdicts,
            path.display()
        );
        assert!(!report.queries.is_empty());
    }
}

#[test]
fn every_scenario_meets_its_expectation() {
    let files = scenario_files();
    assert!(
        files.len() >= 2,
        "expected the shipped scenarios, found {files:?}"
    );
    for file in files {
        for transport in TRANSPORTS {
            check(&file, transport);
        }
    }
}

/// Cases `harness explore` found and proptest shrank, kept in
/// `tests/harness/regressions/`, each run at its own seed (the timing is
/// the bug): each failed before the fix its header names, and passes now.
#[test]
fn every_case_explore_found_passes_at_its_own_seed() {
    let files = toml_files("tests/harness/regressions");
    assert!(files.len() >= 2, "{files:?}");
    for file in files {
        let scenario = Scenario::from_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let report = harness::run(&scenario, scenario.seed).unwrap();
        assert!(
            report.as_expected,
            "{}: {:#?}",
            file.display(),
            report.verdicts
        );
        let judged = report
            .verdicts
            .iter()
            .any(|v| v.invariant == Invariant::RetryAfter && v.held);
        assert!(judged, "{}: the retry_after check ran", file.display());
    }
}

/// Runs `harness run FILE --seed SEED --json` in a fresh process, as a
/// replay would, and returns its report.
pub(crate) fn run_in_process_of_its_own(file: &Path, seed: u64) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--seed",
            &seed.to_string(),
            "--json",
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn a_seed_replays_byte_for_byte_and_seeds_differ() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/flaky.toml");
    // Seed 11 breaks a link mid-call: the hardest case to replay.
    let first = run_in_process_of_its_own(&path, 11);
    let again = run_in_process_of_its_own(&path, 11);
    assert_eq!(first["trace_hash"], again["trace_hash"], "{first}\n{again}");
    assert_eq!(first, again);
    let other = run_in_process_of_its_own(&path, 12);
    assert_ne!(
        first["trace_hash"], other["trace_hash"],
        "the seed must matter"
    );
    // The faults really bit: some query failed or needed a retry.
    assert!(first["typed_errors"].as_u64() > Some(0) || first["retries"].as_u64() > Some(0));

    // In-process runs record the wire: every message, with simulated times.
    let scenario = Scenario::from_file(&path).unwrap();
    let report = harness::run(&scenario, 11).unwrap();
    assert!(
        report.wire.contains("tools/call"),
        "the wire log records messages"
    );
    assert!(
        report
            .queries
            .iter()
            .any(|q| q.attempts > 2 || matches!(q.outcome, Outcome::Error(_)))
    );
}

#[test]
fn a_bad_scenario_file_is_named_with_its_line() {
    let dir = tempfile_dir("bad-scenario");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "name = \"x\"\nduration_ms = 1000\ntick_ms = 1\n[workload]\nqueries = 1\ninterval_ms = 1\nquestions = [\"weather for a@b.c\"]\n",
    )
    .unwrap();
    let error = Scenario::from_file(&path).unwrap_err().to_string();
    assert!(
        error.contains("bad.toml:4: [workload]: question \"weather for a@b.c\" cannot be planned"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A fresh directory for one test.
pub(crate) fn tempfile_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-test-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two runs of one seed inside one process give the same trace, wire log
/// included, even after other seeds ran there first: so a failure found in
/// `run --seeds A..B` replays from `run --seed N`. In a process of its own,
/// because tests running in parallel threads spawn tokio tasks, and tokio
/// numbers tasks from one process-wide counter (see `sim::align_task_ids`).
/// Before task numbers were aligned, seeds 44 and 82 of these diverged.
#[test]
fn a_seed_replays_inside_one_process() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/flaky.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["check-determinism", path.to_str().unwrap()])
        .args(["--seeds", "1..120", "--in-process"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("seeds 1..=120 gave identical traces twice in one process"),
        "{stdout}"
    );
}

/// The lines of a run's wire log that carry a `tools/call` the clients sent
/// to `server`.
fn calls_sent_to(wire: &str, server: &str) -> usize {
    let prefix = format!("{server} < ");
    wire.lines()
        .filter(|line| line.contains(&prefix) && line.contains("\"tools/call\""))
        .count()
}

#[test]
fn servers_are_data_the_names_are_the_files_own() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenario = Scenario::from_file(&dir.join("renamed-servers.toml")).unwrap();
    let report = harness::run(&scenario, 1).unwrap();
    assert!(report.as_expected, "{:#?}", report.verdicts);
    assert!(calls_sent_to(&report.wire, "directory") > 0);
    assert!(calls_sent_to(&report.wire, "ledger") > 0);
    for old in ["user <", "payment <", "sim://user", "sim://payment"] {
        assert!(!report.wire.contains(old), "{old} in the wire log");
        assert!(!report.trace.contains(old), "{old} in the trace");
    }
    let servers: Vec<&str> = report.load.iter().map(|l| l.server.as_str()).collect();
    assert_eq!(servers, ["directory", "ledger"]);
}

#[test]
fn a_second_ledger_answers_while_the_first_is_down() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenario = Scenario::from_file(&dir.join("replicated-ledger.toml")).unwrap();
    let crash = &scenario.faults[0];
    let (down_from, down_until) = (crash.at, crash.at + crash.lasts.unwrap());
    let report = harness::run(&scenario, 1).unwrap();
    assert!(report.as_expected, "{:#?}", report.verdicts);
    assert!(calls_sent_to(&report.wire, "ledger-a") > 0);
    assert!(
        calls_sent_to(&report.wire, "ledger-b") > 0,
        "ledger-b never served a call"
    );
    let right_while_down = report
        .queries
        .iter()
        .filter(|q| q.start > down_from + std::time::Duration::from_millis(1500))
        .filter(|q| q.start + q.latency < down_until && q.outcome == Outcome::Right)
        .count();
    assert!(
        right_while_down > 0,
        "no question was answered while ledger-a was down"
    );
}

/// Over HTTP, with sessions and without, a seed replays inside one process
/// too: session ids come from the seed, hyper sends no `Date`, and the
/// servers send no SSE keep-alives (rmcp resets their timer from the wall
/// clock; with them, seed 3 diverged).
#[test]
fn over_http_a_seed_replays_inside_one_process() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/flaky.toml");
    for revision in ["2025-11-25", "2026-07-28"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["check-determinism", path.to_str().unwrap()])
            .args(["--seeds", "1..12", "--in-process"])
            .args(["--transport", "http", "--revision", revision])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("seeds 1..=12 gave identical traces twice in one process"),
            "{revision}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The `Mcp-Session-Id` values the server handed out on `server`'s lines
/// of a wire log, in order of first appearance.
fn session_ids(wire: &str, server: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut current_server = "";
    for line in wire.lines() {
        if let Some((_, rest)) = line.split_once(" ms  ") {
            current_server = rest.split(' ').next().unwrap_or("");
        }
        if current_server == server
            && let Some(id) = line.strip_prefix("mcp-session-id: ")
            && !ids.iter().any(|known| known == id)
        {
            ids.push(id.to_owned());
        }
    }
    ids
}

/// A server restart loses its sessions: the client's next request on the
/// old session gets 404, and rmcp's transport starts a new session (a new
/// `initialize`, a new id) by itself, as the spec requires; every query
/// after the storm is right. Ids come from the run's seed, and differ by
/// seed.
#[test]
fn over_http_a_restart_loses_the_session_and_the_client_starts_a_new_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/restart-storm.toml");
    let scenario = Scenario::from_file(&path)
        .unwrap()
        .over(Transport::Http(HttpRevision::Sessions2025_11_25));
    let report = harness::run(&scenario, 2).unwrap();
    assert!(report.as_expected, "{:#?}", report.verdicts);
    assert!(
        report.wire.contains("HTTP/1.1 404 Not Found"),
        "no request met a lost session"
    );
    let ids = session_ids(&report.wire, "user");
    assert!(ids.len() >= 2, "the user server's sessions: {ids:?}");
    let initializes = report.wire.matches("\"method\":\"initialize\"").count();
    assert!(initializes > 2, "{initializes} initialize(s)");
    let other = harness::run(&scenario, 3).unwrap();
    assert_ne!(session_ids(&other.wire, "user")[0], ids[0]);
}

/// Stateless 2026-07-28: no session id ever crosses the wire, and the
/// workload still meets the scenario's expectation through restarts.
#[test]
fn over_stateless_http_no_session_id_crosses_the_wire() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/restart-storm.toml");
    let scenario = Scenario::from_file(&path)
        .unwrap()
        .over(Transport::Http(HttpRevision::Stateless2026_07_28));
    let report = harness::run(&scenario, 1).unwrap();
    assert!(report.as_expected, "{:#?}", report.verdicts);
    assert!(report.wire.contains("server/discover"));
    assert!(!report.wire.to_ascii_lowercase().contains("mcp-session-id"));
}

/// rate-limited.toml: 429s with and without `Retry-After` cross the wire,
/// every client waits out each `Retry-After` it is given, and the check
/// catches a client that loses the header (planted from outside, on the
/// orchestrator's sessions).
#[test]
fn a_client_waits_out_every_retry_after_and_one_that_forgets_is_caught() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/rate-limited.toml");
    let mut scenario = Scenario::from_file(&path).unwrap();
    let report = harness::run(&scenario, 1).unwrap();
    assert!(report.as_expected, "{:#?}", report.verdicts);
    let verdict = |report: &harness::RunReport| {
        report
            .verdicts
            .iter()
            .find(|v| v.invariant == Invariant::RetryAfter)
            .cloned()
            .expect("rate-limited.toml checks retry_after over http")
    };
    assert!(verdict(&report).held, "{:?}", verdict(&report));
    let limited = |server: &str| {
        report
            .load
            .iter()
            .find(|l| l.server == server)
            .map(|l| l.rate_limited.clone())
            .unwrap()
    };
    assert!(limited("payment").with_retry_after > 0);
    assert!(limited("user").without_retry_after > 0);
    assert!(report.wire.contains("retry-after: 1"));
    scenario.planted_bug = Some(PlantedBug::IgnoreRetryAfter);
    let broken = harness::run(&scenario, 1).unwrap();
    assert!(!broken.as_expected);
    let broke = verdict(&broken);
    assert!(
        !broke.held && broke.detail.contains("before the wait ended"),
        "{broke:?}"
    );
}
