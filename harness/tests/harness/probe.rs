//! `harness probe` against a server with planted protocol bugs
//! (`tests/fixtures/planted_server.py`): each bug is found, by the check it
//! breaks, and shrunk to at most three messages; the replay file it writes
//! reproduces it, and passes against the fixed server; with no bug the
//! probe passes.

use std::{path::Path, process::Output};

use serde_json::Value;

use crate::scenarios::tempfile_dir;

fn fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/planted_server.py")
        .display()
        .to_string()
}

/// `harness probe ARGS --stdio -- python3 planted_server.py [--bug BUG]`.
fn probe(args: &[&str], bug: Option<&str>) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_harness"));
    command
        .arg("probe")
        .args(args)
        .args(["--stdio", "--", "python3", &fixture()]);
    if let Some(bug) = bug {
        command.args(["--bug", bug]);
    }
    command.output().expect("the harness binary runs")
}

/// Probes with `bug` planted; the JSON report and the exit code.
fn probed(bug: Option<&str>, out: &Path) -> (Value, Option<i32>) {
    let out = out.display().to_string();
    let args = [
        "--cases",
        "32",
        "--seed",
        "1",
        "--spec",
        "2025-11-25",
        "--json",
        "--out",
        &out,
    ];
    let output = probe(&args, bug);
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    (report, output.status.code())
}

fn verdict<'r>(report: &'r Value, check: &str) -> &'r Value {
    let checks = report["revisions"][0]["checks"].as_array().expect("checks");
    checks
        .iter()
        .find(|c| c["id"] == check)
        .expect("the check is reported")
}

fn failing(report: &Value) -> Vec<&str> {
    let checks = report["revisions"][0]["checks"].as_array().expect("checks");
    checks
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .filter_map(|c| c["id"].as_str())
        .collect()
}

#[test]
fn with_no_bug_planted_every_must_holds() {
    let (report, code) = probed(None, &tempfile_dir("probe-clean"));
    assert_eq!(failing(&report), Vec::<&str>::new(), "{report:#}");
    assert_eq!(code, Some(0));
    assert_eq!(verdict(&report, "tools.output-schema")["outcome"], "ok");
    assert_eq!(
        verdict(&report, "lifecycle.before-initialize")["outcome"],
        "ok"
    );
}

/// Plants `bug`, expects `check` to fail with a minimal exchange of at most
/// three messages, and its replay file to fail again with the bug and pass
/// without it.
fn found_and_shrunk(bug: &str, check: &str) {
    let out = tempfile_dir(&format!("probe-{bug}"));
    let (report, code) = probed(Some(bug), &out);
    assert_eq!(code, Some(1), "{report:#}");
    let found = verdict(&report, check);
    assert_eq!(found["outcome"], "fail", "{bug}: {report:#}");
    let messages = found["exchange"].as_array().map_or(0, Vec::len);
    assert!(
        (1..=3).contains(&messages),
        "{bug}: shrunk to {messages} messages: {found:#}"
    );
    let file = found["replay"]["file"]
        .as_str()
        .expect("a replay file")
        .to_owned();
    let again = probe(&["--replay", &file], Some(bug));
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let fixed = probe(&["--replay", &file], None);
    assert_eq!(
        fixed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fixed.stdout)
    );
}

#[test]
fn an_answered_notification_is_found_and_shrunk() {
    found_and_shrunk("answer-notification", "jsonrpc.notification-unanswered");
}

#[test]
fn an_id_echoed_with_the_wrong_type_is_found_and_shrunk() {
    found_and_shrunk("wrong-id-type", "jsonrpc.answer-id");
}

#[test]
fn structured_content_breaking_its_schema_is_found_and_shrunk() {
    found_and_shrunk("bad-structured", "tools.output-schema");
}

#[test]
fn exiting_on_a_request_before_initialize_is_found_and_shrunk() {
    found_and_shrunk("exit-before-initialize", "lifecycle.before-initialize");
}

#[test]
fn a_server_that_cannot_be_started_is_exit_2_with_the_reason() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["probe", "--stdio", "--", "/nonexistent/mcp-server"])
        .output()
        .expect("the harness binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("could not start `/nonexistent/mcp-server`"),
        "{stderr}"
    );
}
