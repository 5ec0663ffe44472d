//! The page against the run it reports: every fault and every query of the
//! trace is on it, every message of the wire log is a tick, every
//! orchestrator event a marker, and it asks the network for nothing.

use std::path::Path;

use super::{HtmlReport, html::escape};
use crate::{RunReport, Scenario};

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    Scenario::from_file(&path).unwrap()
}

fn flaky() -> Scenario {
    scenario("flaky.toml")
}

fn page(scenario: &Scenario, runs: &[RunReport]) -> String {
    let mut report = HtmlReport::new(scenario, "scenarios/flaky.toml");
    for run in runs {
        report.add(run);
    }
    report.render()
}

/// The trace's "start …" lines, without the time: one per fault applied.
fn trace_fault_starts(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter_map(|l| l.split_once(" ms  start ").map(|(_, what)| what.to_owned()))
        .collect()
}

#[test]
fn every_fault_query_message_and_event_of_the_trace_is_on_the_page() {
    let scenario = flaky();
    let run = crate::run(&scenario, 1).unwrap();
    let html = page(&scenario, std::slice::from_ref(&run));
    let starts = trace_fault_starts(&run.trace);
    assert_eq!(starts.len(), run.faults_applied);
    assert_eq!(run.faults.len(), run.faults_applied);
    for (span, described) in run.faults.iter().zip(&starts) {
        let title = format!(
            "data-f=\"{}\"><title>{} (",
            span.fault.id,
            escape(described)
        );
        assert!(html.contains(&title), "fault {described:?} is missing");
    }
    assert_eq!(html.matches("<g class=\"f ").count(), starts.len());
    let queries = run
        .trace
        .lines()
        .filter(|l| l.contains(" ms  query "))
        .count();
    assert_eq!(queries, run.queries.len());
    for q in &run.queries {
        let mark = format!(
            "data-q=\"{}\"><title>query {} at {} ms",
            q.index,
            q.index,
            q.start.as_millis()
        );
        assert!(html.contains(&mark), "query {} is missing", q.index);
    }
    assert_eq!(html.matches("<g class=\"q ").count(), run.queries.len());
    let messages = run.wire.lines().filter(|l| l.contains(" ms  ")).count();
    assert_eq!(html.matches("<line class=\"w ").count(), messages);
    assert_eq!(html.matches("<path class=\"e ").count(), run.events.len());
}

#[test]
fn the_orchestrators_events_add_up_to_their_stats() {
    use orchestrator::EventKind::*;
    // Reconnects and retries (flaky), breaker trips (outage), hedges (hedged).
    for name in ["flaky.toml", "outage.toml", "hedged.toml"] {
        let run = crate::run(&scenario(name), 1).unwrap();
        let count = |f: fn(&orchestrator::EventKind) -> bool| {
            run.events.iter().filter(|e| f(&e.event.kind)).count() as u64
        };
        let connections: u64 = run.stats.connections.iter().map(|(_, n)| n).sum();
        assert_eq!(
            count(|k| matches!(k, Connect { .. })),
            connections,
            "{name}"
        );
        assert_eq!(
            count(|k| matches!(k, Retry { .. })),
            run.stats.retries,
            "{name}"
        );
        assert_eq!(count(|k| matches!(k, Hedge)), run.stats.hedges, "{name}");
        assert_eq!(
            count(|k| matches!(k, BreakerOpened)),
            run.breaker_trips(),
            "{name}"
        );
        assert!(run.events.windows(2).all(|w| w[0].at <= w[1].at), "{name}");
        let html = page(&scenario(name), std::slice::from_ref(&run));
        assert_eq!(
            html.matches("<path class=\"e ").count(),
            run.events.len(),
            "{name}"
        );
    }
}

#[test]
fn the_page_is_self_contained_and_the_same_for_the_same_runs() {
    let scenario = flaky();
    let runs: Vec<RunReport> = (1..=2).map(|s| crate::run(&scenario, s).unwrap()).collect();
    let html = page(&scenario, &runs);
    assert_eq!(html, page(&scenario, &runs));
    for forbidden in [" src=", "<link", "@import", "url(", "<iframe", "<img"] {
        assert!(
            !html.contains(forbidden),
            "{forbidden:?} would load something"
        );
    }
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    assert_eq!(html.matches("<section class=\"run").count(), 2);
    assert!(html.contains("cargo run --release -p harness -- run scenarios/flaky.toml --seed 1"));
    // The page's script is the last one, after every run's data.
    assert_eq!(html.matches("<script type=\"application/json\"").count(), 2);
    assert!(
        !html.contains("</script><script"),
        "data blocks closed early"
    );
}

#[test]
fn failed_seeds_are_drawn_and_passing_ones_only_listed() {
    let scenario = flaky();
    let mut runs: Vec<RunReport> = (1..=4).map(|s| crate::run(&scenario, s).unwrap()).collect();
    runs[2].as_expected = false;
    let html = page(&scenario, &runs);
    assert!(html.contains("id=\"seed-3\""));
    assert_eq!(html.matches("<section class=\"run").count(), 1);
    assert!(html.contains("<a href=\"#seed-3\">3</a>"));
    assert!(html.contains("run scenarios/flaky.toml --seed 3\n"));
    let passing = page(&scenario, &runs[..1]);
    assert!(passing.contains("id=\"seed-1\""));
}
