//! The page around the timelines: the verdicts and replay commands at the
//! top, the table of seeds, then one section per drawn run.

use std::fmt::Write as _;

use super::{HtmlReport, Row, html::escape, timeline};
use crate::{RunReport, scenario::Invariant};

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// Most seeds named in a verdict's "broke in" cell.
const SEEDS_NAMED_MAX: usize = 12;

/// The whole page.
pub(super) fn render(report: &HtmlReport<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, report);
    summary(&mut out, report);
    verdicts(&mut out, report);
    table(&mut out, report);
    out.push_str("<h2>Timelines</h2>\n");
    legend(&mut out);
    timelines_note(&mut out, report);
    for run in report.drawn() {
        section(&mut out, report, run);
    }
    let _ = writeln!(out, "<script>{JS}</script>\n</body>\n</html>");
    out
}

/// The document head. A Content Security Policy forbids every request
/// (scripts and styles are inline), and a first script records any error.
fn head(out: &mut String, report: &HtmlReport<'_>) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} run report</title>\n\
         <script>window.onerror=function(m){{document.documentElement.setAttribute('data-script-error',String(m));}};</script>\n\
         <style>{CSS}</style>\n</head>\n<body>\n",
        escape(&report.scenario.name)
    );
}

/// The headline, and how to replay what failed (or the first seed).
fn summary(out: &mut String, report: &HtmlReport<'_>) {
    let failed: Vec<&Row> = report.rows.iter().filter(|r| !r.as_expected).collect();
    let seeds = match (report.rows.first(), report.rows.last()) {
        (Some(a), Some(b)) if a.seed != b.seed => format!("seeds {}..{}", a.seed, b.seed),
        (Some(a), _) => format!("seed {}", a.seed),
        _ => "no seeds".to_owned(),
    };
    let verdict = if failed.is_empty() { "ok" } else { "FAIL" };
    let _ = writeln!(
        out,
        "<header class=\"{}\"><h1><span class=\"badge\">{verdict}</span> {} · {seeds}</h1>\n<p>{} run(s): {} met the scenario's expectation, {} did not.</p>",
        if failed.is_empty() { "pass" } else { "fail" },
        escape(&report.scenario.name),
        report.rows.len(),
        report.rows.len() - failed.len(),
        failed.len()
    );
    let replays: Vec<u64> = match failed.is_empty() {
        true => report.rows.first().map(|r| r.seed).into_iter().collect(),
        false => failed
            .iter()
            .map(|r| r.seed)
            .take(SEEDS_NAMED_MAX)
            .collect(),
    };
    out.push_str("<p>Replay:</p><pre class=\"replay\">");
    for seed in replays {
        let _ = writeln!(out, "{}", escape(&report.replay(seed)));
    }
    out.push_str("</pre></header>\n");
}

/// Each invariant: in how many seeds it held, and which it broke in.
fn verdicts(out: &mut String, report: &HtmlReport<'_>) {
    out.push_str("<h2>Verdicts</h2>\n<table class=\"verdicts\"><tr><th>invariant</th><th>held</th><th>broke</th><th>detail</th></tr>\n");
    let single = (report.rows.len() == 1)
        .then(|| report.first.first())
        .flatten();
    for invariant in Invariant::ALL {
        let seeds: Vec<(u64, bool)> = report
            .rows
            .iter()
            .filter_map(|r| {
                r.verdicts
                    .iter()
                    .find(|(i, _)| *i == invariant)
                    .map(|(_, held)| (r.seed, *held))
            })
            .collect();
        if seeds.is_empty() {
            continue;
        }
        verdict_row(out, report, invariant, &seeds, single);
    }
    out.push_str("</table>\n");
}

fn verdict_row(
    out: &mut String,
    report: &HtmlReport<'_>,
    invariant: Invariant,
    seeds: &[(u64, bool)],
    single: Option<&RunReport>,
) {
    let broke: Vec<u64> = seeds
        .iter()
        .filter(|(_, held)| !held)
        .map(|(s, _)| *s)
        .collect();
    let expected_to_break = report.scenario.expect_fail == Some(invariant);
    let as_expected = broke.is_empty() != expected_to_break;
    let mut named: Vec<String> = broke
        .iter()
        .take(SEEDS_NAMED_MAX)
        .map(u64::to_string)
        .collect();
    if broke.len() > SEEDS_NAMED_MAX {
        named.push(format!("… {} more", broke.len() - SEEDS_NAMED_MAX));
    }
    let detail = single
        .and_then(|run| run.verdicts.iter().find(|v| v.invariant == invariant))
        .map_or(String::new(), |v| v.detail.clone());
    let note = if expected_to_break {
        " (expected to break)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<tr class=\"{}\"><td>{}{note}</td><td>{} of {}</td><td>{}</td><td>{}</td></tr>",
        if as_expected { "pass" } else { "fail" },
        invariant.name(),
        seeds.len() - broke.len(),
        seeds.len(),
        if named.is_empty() {
            "none".to_owned()
        } else {
            named.join(", ")
        },
        escape(&detail)
    );
}

/// The seed table's columns.
const COLUMNS: [&str; 16] = [
    "seed",
    "verdict",
    "queries",
    "right",
    "typed errors",
    "wrong",
    "p50 ms",
    "p99 ms",
    "faults",
    "attempts",
    "retries",
    "hedges",
    "reconnects",
    "breaker trips",
    "broke",
    "trace",
];

/// One row per seed; a drawn seed links to its timeline.
fn table(out: &mut String, report: &HtmlReport<'_>) {
    out.push_str("<h2>Seeds</h2>\n<table class=\"seeds\"><tr>");
    for column in COLUMNS {
        let _ = write!(out, "<th>{column}</th>");
    }
    out.push_str("</tr>\n");
    let drawn: Vec<u64> = report.drawn().iter().map(|r| r.seed).collect();
    for row in &report.rows {
        let class = if row.as_expected { "pass" } else { "fail" };
        let _ = write!(out, "<tr class=\"{class}\">");
        for cell in cells(row, drawn.contains(&row.seed)) {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// A seed's cells, in the order of [`COLUMNS`] (numbers and names only:
/// nothing to escape).
fn cells(row: &Row, drawn: bool) -> [String; 16] {
    let seed = match drawn {
        true => format!("<a href=\"#seed-{0}\">{0}</a>", row.seed),
        false => row.seed.to_string(),
    };
    let broke: Vec<&str> = row
        .verdicts
        .iter()
        .filter(|(_, held)| !held)
        .map(|(i, _)| i.name())
        .collect();
    [
        seed,
        (if row.as_expected { "ok" } else { "FAIL" }).to_owned(),
        row.queries.to_string(),
        row.right.to_string(),
        row.errors.to_string(),
        row.wrong.to_string(),
        row.p50_ms.to_string(),
        row.p99_ms.to_string(),
        row.faults.to_string(),
        row.attempts.to_string(),
        row.retries.to_string(),
        row.hedges.to_string(),
        row.reconnects.to_string(),
        row.breaker_trips.to_string(),
        broke.join(", "),
        format!("<code>{:016x}</code>", row.trace_hash),
    ]
}

fn legend(out: &mut String) {
    out.push_str(
        "<p class=\"legend\"><b>queries</b> <i class=\"sw right\"></i>right <i class=\"sw error\"></i>typed error <i class=\"sw wrong\"></i>wrong \
         · <b>orchestrator</b> <i class=\"mk reconnect\"></i>reconnect <i class=\"mk retry\"></i>retry <i class=\"mk hedge\"></i>hedge \
         <i class=\"mk open\"></i>breaker opened <i class=\"mk close\"></i>closed \
         · <b>wire</b> ticks up: sent, down: received · <i class=\"sw live\"></i>liveness window. \
         Hover for details; click a query or a message to show it below its timeline.</p>\n",
    );
}

fn timelines_note(out: &mut String, report: &HtmlReport<'_>) {
    let failed = report.rows.iter().filter(|r| !r.as_expected).count();
    let drawn: Vec<String> = report.drawn().iter().map(|r| r.seed.to_string()).collect();
    let drawn = drawn.join(", ");
    let note = if failed == 0 {
        format!("Every seed met its expectation; drawn: seed(s) {drawn}.")
    } else if failed > report.drawn().len() {
        format!("{failed} seeds failed; drawn: the first, {drawn}; the rest are in the table.")
    } else {
        format!("Drawn: every seed that failed, {drawn}.")
    };
    let _ = writeln!(out, "<p>{note}</p>");
}

/// One drawn run: its verdicts, replay command, timeline and detail panel.
fn section(out: &mut String, report: &HtmlReport<'_>, run: &RunReport) {
    let _ = writeln!(
        out,
        "<section class=\"run {}\" id=\"seed-{}\">\n<h3>seed {} · {}</h3>\n<pre class=\"replay\">{}</pre>\n<ul class=\"vs\">",
        if run.as_expected { "pass" } else { "fail" },
        run.seed,
        run.seed,
        if run.as_expected {
            "met its expectation"
        } else {
            "did NOT meet its expectation"
        },
        escape(&report.replay(run.seed))
    );
    for v in &run.verdicts {
        let _ = writeln!(
            out,
            "<li class=\"{}\"><b>{}</b> {}: {}</li>",
            if v.held { "held" } else { "broke" },
            v.invariant.name(),
            if v.held { "held" } else { "broke" },
            escape(&v.detail)
        );
    }
    out.push_str("</ul>\n<div class=\"scroll\">\n");
    timeline::write(out, report.scenario, run);
    out.push_str(
        "</div>\n<div class=\"detail\">Click a query or a message on the wire to see it here.</div>\n</section>\n",
    );
}
