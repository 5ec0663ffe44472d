//! The `harness` binary as a user runs it: what each run prints, in text
//! and JSON, that stdout is the same every time, `--trace FILE` and
//! `--junit FILE`.

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use crate::scenarios::tempfile_dir;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

/// Runs the built binary with `args`.
fn harness(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("the harness binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// A scenario that cannot meet its expectation: no fault can open a
/// breaker, yet it demands a trip.
fn impossible_scenario(dir: &Path) -> PathBuf {
    let path = dir.join("impossible.toml");
    std::fs::write(
        &path,
        r#"name = "impossible"
duration_ms = 60000
tick_ms = 10
[workload]
queries = 3
interval_ms = 100
questions = ["What are the recent transactions for bob@example.com?"]
[invariants]
liveness_after_ms = 0
breaker_trips_min = 1
"#,
    )
    .unwrap();
    path
}

#[test]
fn stdout_is_byte_identical_on_every_run() {
    let flaky = scenario("flaky.toml");
    let args = ["run", flaky.to_str().unwrap(), "--seed", "3"];
    let (first, again) = (harness(&args), harness(&args));
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(!first.stdout.is_empty());
    assert_eq!(text(&first.stdout), text(&again.stdout));
    assert_eq!(first.stdout, again.stdout);
    // The wall-time figures vary, so they go to stderr, still visible.
    assert!(
        text(&first.stderr).contains("seeds/s"),
        "{}",
        text(&first.stderr)
    );
    assert!(!text(&first.stdout).contains("seeds/s"));
}

#[test]
fn each_run_shows_what_was_injected_what_was_done_and_every_verdict() {
    let flaky = scenario("flaky.toml");
    let file = flaky.to_str().unwrap();
    let out = text(&harness(&["run", file, "--seed", "3"]).stdout);
    for needle in [
        "flaky seed 3: 48 queries: ",
        " right, ",
        " typed errors, ",
        " wrong · p50 ",
        " ms, p99 ",
        "faults       11 applied: ",
        " bounce",
        " partition",
        " link_failure",
        " proxy drop",
        "orchestrator ",
        " attempts (",
        " calls + ",
        " retries + ",
        " reconnects, ",
        " breaker trips",
        "safety       held: ",
        "liveness     held: ",
        "availability held: ",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }

    let json: serde_json::Value =
        serde_json::from_slice(&harness(&["run", file, "--seed", "3", "--json"]).stdout).unwrap();
    for key in [
        "seed",
        "right",
        "typed_errors",
        "wrong",
        "p50_ms",
        "p99_ms",
        "faults",
        "attempts",
        "calls",
        "retries",
        "hedges",
        "reconnects",
        "breaker_trips",
    ] {
        assert!(json[key].is_u64(), "{key} missing from {json}");
    }
    assert_eq!(json["seed"], 3);
    assert!(json["p50_ms"].as_u64() <= json["p99_ms"].as_u64(), "{json}");
    let n = |key: &str| json[key].as_u64().unwrap();
    assert_eq!(n("attempts"), n("calls") + n("retries") + n("hedges"));
    let by_kind = json["faults_by_kind"].as_object().unwrap();
    assert_eq!(
        by_kind.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        n("faults")
    );
    assert_eq!(by_kind["bounce"], 2, "{json}");
    assert!(by_kind.contains_key("proxy drop"), "{json}");
    let verdicts: Vec<(&str, bool)> = json["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["invariant"].as_str().unwrap(),
                v["held"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [("safety", true), ("liveness", true), ("availability", true)]
    );
    // The text and the JSON agree.
    assert!(
        out.contains(&format!("p50 {} ms, p99 {} ms", n("p50_ms"), n("p99_ms"))),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{} reconnects, {} breaker trips",
            n("reconnects"),
            n("breaker_trips")
        )),
        "{out}"
    );
}

#[test]
fn trace_file_holds_every_runs_trace_and_wire_log() {
    let dir = tempfile_dir("trace-file");
    let path = dir.join("trace.txt");
    let flaky = scenario("flaky.toml");
    let file = flaky.to_str().unwrap();
    let output = harness(&[
        "run",
        file,
        "--seeds",
        "1..2",
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let written = std::fs::read_to_string(&path).unwrap();
    for needle in [
        "# flaky seed 1\n",
        "# flaky seed 2\n",
        "# wire\n",
        "tools/call",
    ] {
        assert!(written.contains(needle), "{needle:?} missing from the file");
    }
    assert_eq!(written.matches("# wire\n").count(), 2);
    // Only written, not printed, for runs that passed...
    assert!(!text(&output.stdout).contains("       | "));
    // ...unless asked.
    let printed = text(&harness(&["run", file, "--seed", "1", "--print-trace"]).stdout);
    assert!(printed.contains("       | "), "{printed}");
    assert!(printed.contains("start bounce user"), "{printed}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn junit_report_has_one_testcase_per_seed_and_a_failure_for_each_failing_one() {
    let dir = tempfile_dir("junit");
    let impossible = impossible_scenario(&dir);
    let report = dir.join("failing.xml");
    let output = harness(&[
        "run",
        impossible.to_str().unwrap(),
        "--seeds",
        "1..3",
        "--junit",
        report.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("FAILED seed 2: reproduce with: cargo run --release -p harness -- run"),
        "{stderr}"
    );
    // A failure found in a range is replayed from its printed command.
    assert_eq!(
        stderr.matches("reproduced in a fresh process").count(),
        3,
        "{stderr}"
    );
    let xml = std::fs::read_to_string(&report).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let suite = doc.root_element();
    assert_eq!(suite.tag_name().name(), "testsuite");
    assert_eq!(suite.attribute("name"), Some("impossible"));
    assert_eq!(suite.attribute("tests"), Some("3"));
    assert_eq!(suite.attribute("failures"), Some("3"));
    let cases: Vec<_> = suite.children().filter(|n| n.is_element()).collect();
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, ["seed 1", "seed 2", "seed 3"]);
    for case in &cases {
        assert_eq!(case.tag_name().name(), "testcase");
        let failure = case
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap_or_else(|| panic!("no failure in {xml}"));
        assert!(
            failure
                .text()
                .unwrap()
                .contains("breaker: broke: 0 breaker trip(s), at least 1 required"),
            "{xml}"
        );
    }

    // A passing run: a test case per seed, and no failure.
    let report = dir.join("passing.xml");
    let flaky = scenario("flaky.toml");
    let output = harness(&[
        "run",
        flaky.to_str().unwrap(),
        "--seeds",
        "1..2",
        "--junit",
        report.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let xml = std::fs::read_to_string(&report).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc.root_element();
    assert_eq!(suite.attribute("tests"), Some("2"));
    assert_eq!(suite.attribute("failures"), Some("0"));
    assert_eq!(
        suite
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .count(),
        2
    );
    assert!(!suite.descendants().any(|n| n.has_tag_name("failure")));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn report_is_one_page_for_a_range_the_same_bytes_every_time() {
    let dir = tempfile_dir("report");
    let flaky = scenario("flaky.toml");
    let (first, again) = (dir.join("first.html"), dir.join("again.html"));
    for path in [&first, &again] {
        let args = [
            "run",
            flaky.to_str().unwrap(),
            "--seeds",
            "1..4",
            "--report",
            path.to_str().unwrap(),
        ];
        let output = harness(&args);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let html = std::fs::read_to_string(&first).unwrap();
    assert_eq!(html.as_bytes(), std::fs::read(&again).unwrap().as_slice());
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    assert_eq!(
        html.matches("<tr class=\"pass\"><td>").count(),
        4 + 3,
        "4 seeds, 3 verdicts"
    );
    // All passed: the first three are drawn.
    for seed in 1..=3 {
        assert!(
            html.contains(&format!("id=\"seed-{seed}\"")),
            "seed {seed} drawn"
        );
    }
    assert!(!html.contains("id=\"seed-4\""));

    // A failing run draws its failed seeds, with their replay commands.
    let impossible = impossible_scenario(&dir);
    let failing = dir.join("failing.html");
    let output = harness(&[
        "run",
        impossible.to_str().unwrap(),
        "--seeds",
        "1..2",
        "--report",
        failing.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let html = std::fs::read_to_string(&failing).unwrap();
    assert!(html.contains("<header class=\"fail\">"));
    assert!(html.contains(&format!("run {} --seed 2\n", impossible.display())));
    assert!(html.contains("id=\"seed-1\"") && html.contains("id=\"seed-2\""));
    std::fs::remove_dir_all(dir).unwrap();
}
