//! A report three ways: lines a person reads at a glance, JSON, and JUnit
//! XML for CI dashboards. All three carry the same verdicts.

use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf};

use serde_json::{Value, json};

use crate::{Outcome, Report, RevisionReport, Verdict, checks::Step, session::Revision};

/// A replay file the command wrote, and the command that replays it.
#[derive(Debug, Clone)]
pub struct Written {
    pub revision: Revision,
    pub check: &'static str,
    pub path: PathBuf,
    pub command: String,
}

/// Most steps of an exchange printed in the text report.
const STEPS_SHOWN: usize = 12;

fn label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::Fail => "FAIL",
        Outcome::Warn => "warn",
        Outcome::Skip(_) => "skip",
    }
}

/// The report as text: one line per check, the failures' minimal
/// exchanges and replay commands, and a summary line.
pub fn text(report: &Report, written: &[Written]) -> String {
    let mut out = format!(
        "probe {}  (seed {}, {} cases per property)\n",
        report.target, report.seed, report.cases
    );
    for revision in &report.revisions {
        revision_text(&mut out, revision, written);
    }
    let _ = writeln!(out, "\n{}", summary(report));
    out
}

fn revision_text(out: &mut String, revision: &RevisionReport, written: &[Written]) {
    let _ = writeln!(out, "\n{}", revision.revision);
    if let Some(why) = &revision.skipped {
        let _ = writeln!(out, "  skipped: {why}");
        return;
    }
    let width = revision
        .verdicts
        .iter()
        .map(|v| v.check.id.len())
        .max()
        .unwrap_or(0);
    let mut skipped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for verdict in &revision.verdicts {
        if let Outcome::Skip(why) = &verdict.outcome {
            skipped.entry(why).or_default().push(verdict.check.id);
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<4}  {:<width$}  {}",
            label(&verdict.outcome),
            verdict.check.id,
            verdict.check.spec
        );
        finding_text(out, revision.revision, verdict, written);
    }
    for (why, ids) in skipped {
        let _ = writeln!(out, "  skip  {}: {why}", ids.join(", "));
    }
}

fn finding_text(out: &mut String, revision: Revision, verdict: &Verdict, written: &[Written]) {
    let Some(finding) = &verdict.finding else {
        return;
    };
    let _ = writeln!(out, "        {}", finding.detail);
    if !finding.exchange.is_empty() {
        let n = finding.exchange.len();
        let _ = writeln!(
            out,
            "        minimal exchange ({n} message{}):",
            if n == 1 { "" } else { "s" }
        );
        exchange_text(out, &finding.exchange);
    }
    let replay = written
        .iter()
        .find(|w| w.revision == revision && w.check == verdict.check.id);
    if let Some(replay) = replay {
        let _ = writeln!(out, "        replay: {}", replay.command);
    }
}

fn exchange_text(out: &mut String, steps: &[Step]) {
    for step in steps.iter().take(STEPS_SHOWN) {
        let _ = writeln!(out, "          → {}", crate::checks::clip(&step.sent, 400));
        for got in &step.got {
            let _ = writeln!(out, "          ← {}", crate::checks::clip(got, 400));
        }
        if step.got.is_empty() {
            let _ = writeln!(out, "          ← (nothing)");
        }
    }
    if steps.len() > STEPS_SHOWN {
        let _ = writeln!(out, "          … {} more", steps.len() - STEPS_SHOWN);
    }
}

/// `27 ok, 1 FAIL, 2 warn, 9 skip · 192 sequences in 3.1 s (62/s)`
pub fn summary(report: &Report) -> String {
    let ok = report.count(|o| *o == Outcome::Ok);
    let fail = report.count(|o| *o == Outcome::Fail);
    let warn = report.count(|o| *o == Outcome::Warn);
    let skip = report.count(|o| matches!(o, Outcome::Skip(_)));
    let sequences: u32 = report.revisions.iter().map(|r| r.sequences).sum();
    let seconds: f64 = report
        .revisions
        .iter()
        .map(|r| r.sequence_time.as_secs_f64())
        .sum();
    let rate = if seconds > 0.0 {
        f64::from(sequences) / seconds
    } else {
        0.0
    };
    let verdict = if fail == 0 {
        "every MUST holds"
    } else {
        "a MUST does not hold"
    };
    format!(
        "{ok} ok, {fail} FAIL, {warn} warn, {skip} skip · {sequences} sequences in {seconds:.1} s ({rate:.0}/s) · {verdict}"
    )
}

/// The report as JSON.
pub fn json(report: &Report, written: &[Written]) -> Value {
    let revisions: Vec<Value> = report
        .revisions
        .iter()
        .map(|r| {
            let checks: Vec<Value> = r
                .verdicts
                .iter()
                .map(|v| verdict_json(r.revision, v, written))
                .collect();
            json!({"revision": r.revision, "skipped": r.skipped, "sequences": r.sequences,
                   "sequence_seconds": r.sequence_time.as_secs_f64(), "checks": checks})
        })
        .collect();
    json!({"target": report.target, "seed": report.seed, "cases": report.cases,
           "passed": report.passed(), "revisions": revisions})
}

fn verdict_json(revision: Revision, verdict: &Verdict, written: &[Written]) -> Value {
    let replay = written
        .iter()
        .find(|w| w.revision == revision && w.check == verdict.check.id);
    let skip = match &verdict.outcome {
        Outcome::Skip(why) => Some(why.as_str()),
        _ => None,
    };
    json!({"id": verdict.check.id, "level": verdict.check.level, "spec": verdict.check.spec,
           "says": verdict.check.says, "outcome": label(&verdict.outcome).to_lowercase(), "skip_reason": skip,
           "detail": verdict.finding.as_ref().map(|f| &f.detail),
           "exchange": verdict.finding.as_ref().map(|f| &f.exchange),
           "replay": replay.map(|w| json!({"file": w.path, "command": w.command}))})
}

/// The report as JUnit XML: a suite per revision, a case per check; a
/// FAIL is a failure, a skip is skipped, a warning passes with its text.
pub fn junit(report: &Report) -> String {
    let tests = report.count(|_| true);
    let failures = report.count(|o| *o == Outcome::Fail);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"mcp-probe\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    for revision in &report.revisions {
        suite(&mut out, revision);
    }
    out.push_str("</testsuites>\n");
    out
}

fn suite(out: &mut String, revision: &RevisionReport) {
    let failures = revision
        .verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Fail)
        .count();
    let skipped = revision
        .verdicts
        .iter()
        .filter(|v| matches!(v.outcome, Outcome::Skip(_)))
        .count();
    let time = revision.sequence_time.as_secs_f64();
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        revision.revision,
        revision.verdicts.len()
    );
    if let Some(why) = &revision.skipped {
        let _ = writeln!(
            out,
            "    <properties><property name=\"skipped\" value=\"{}\"/></properties>",
            escape(why)
        );
    }
    for verdict in &revision.verdicts {
        case(out, revision.revision, verdict);
    }
    out.push_str("  </testsuite>\n");
}

fn case(out: &mut String, revision: Revision, verdict: &Verdict) {
    let check = verdict.check;
    let _ = write!(
        out,
        "    <testcase classname=\"mcp-probe.{revision}\" name=\"{}\"",
        check.id
    );
    let detail = verdict.finding.as_ref().map(|f| {
        let mut text = f.detail.clone();
        exchange_text(&mut text, &f.exchange);
        escape(&text)
    });
    match (&verdict.outcome, detail) {
        (Outcome::Fail, Some(detail)) => {
            let message = escape(&format!(
                "{} ({}): {}",
                check.says,
                check.spec,
                first_line(&detail)
            ));
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{message}\">{detail}</failure>\n    </testcase>"
            );
        }
        (Outcome::Skip(why), _) => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                escape(why)
            );
        }
        (Outcome::Warn, Some(detail)) => {
            let _ = writeln!(
                out,
                ">\n      <system-out>warning (SHOULD): {detail}</system-out>\n    </testcase>"
            );
        }
        _ => out.push_str("/>\n"),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Escapes text for an XML attribute or element; drops characters XML 1.0
/// cannot carry at all.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_drops_what_xml_cannot_hold() {
        assert_eq!(
            escape("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\u{fffd}"
        );
    }
}
