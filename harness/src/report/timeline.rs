//! One run's timeline, as inline SVG, and the data its script shows when
//! something is clicked.
//!
//! Every fault is a `<g class="f" data-f="ID">`, every query a
//! `<g class="q" data-q="N">` (N its number in the workload), every
//! orchestrator event a `<path class="e …">` and every wire chunk a
//! `<line class="w" data-w="J">`; each of the first three carries a
//! `<title>` that a browser shows on hover.

use std::{fmt::Write as _, time::Duration};

use orchestrator::EventKind;
use serde_json::{Value, json};

use super::{
    html::{clip, escape, json_for_script},
    layout::{self, AXIS, Lane, LaneKey, ROW, Scale, TOP, WIDTH},
    wire::{self, Chunk},
};
use crate::{ClientEvent, FaultSpan, Outcome, QueryRecord, RunReport, Scenario, topology::Host};

/// Longest message text the page keeps (the whole log: `--trace FILE`).
const WIRE_TEXT_MAX: usize = 400;
/// Most messages a timeline draws; a longer log is sampled evenly.
const WIRE_MESSAGES_MAX: usize = 1000;
/// Most queries whose answer and steps the page keeps (every query that
/// was not right first); every query is drawn, with its hover text.
const QUERY_DETAILS_MAX: usize = 1000;
/// About how wide a character of an 11 px label is.
const LABEL_PX_PER_CHAR: f64 = 6.2;

/// What one timeline is drawn from.
struct Timeline<'a> {
    scenario: &'a Scenario,
    report: &'a RunReport,
    scale: Scale,
    /// The messages drawn, and how many the wire log holds.
    chunks: Vec<Chunk<'a>>,
    messages: usize,
    /// Row of each query (by position in `report.queries`) and each fault.
    query_rows: Vec<usize>,
    fault_rows: Vec<usize>,
    lanes: Vec<Lane>,
}

/// Writes the SVG of `report`'s timeline and its click data into `out`.
pub(super) fn write(out: &mut String, scenario: &Scenario, report: &RunReport) {
    let timeline = Timeline::new(scenario, report);
    timeline.notes(out);
    timeline.svg(out);
    let _ = writeln!(
        out,
        "<script type=\"application/json\" class=\"run-data\" data-seed=\"{}\">{}</script>",
        report.seed,
        json_for_script(&timeline.data())
    );
}

impl<'a> Timeline<'a> {
    fn new(scenario: &'a Scenario, report: &'a RunReport) -> Self {
        let scale = Scale::of(report);
        let query_rows = query_rows(report, scale);
        let fault_rows = fault_rows(report, scale);
        let all = wire::chunks(&report.wire, &scenario.topology);
        let messages = all.len();
        let mut timeline = Self {
            scenario,
            report,
            scale,
            chunks: sample(all, WIRE_MESSAGES_MAX),
            messages,
            query_rows,
            fault_rows,
            lanes: Vec::new(),
        };
        let lanes = layout::lanes(scenario, report, |key| timeline.rows_of(key));
        timeline.lanes = lanes;
        timeline
    }

    /// What the timeline leaves out of a long run.
    fn notes(&self, out: &mut String) {
        if self.chunks.len() < self.messages {
            let _ = writeln!(
                out,
                "<p class=\"note\">The wire log holds {} messages: {} of them, evenly spread, are drawn (<code>--trace FILE</code> has them all).</p>",
                self.messages,
                self.chunks.len()
            );
        }
        if self.report.queries.len() > QUERY_DETAILS_MAX {
            let _ = writeln!(
                out,
                "<p class=\"note\">{} queries: every one is drawn; the answers and steps of {QUERY_DETAILS_MAX} (those not right first) are kept.</p>",
                self.report.queries.len()
            );
        }
    }

    /// How many rows lane `key` needs.
    fn rows_of(&self, key: LaneKey) -> usize {
        let fault_rows = |key: LaneKey| {
            self.report
                .faults
                .iter()
                .zip(&self.fault_rows)
                .filter(|(f, _)| layout::fault_lane(f.fault.kind.target()) == key)
                .map(|(_, row)| row + 1)
                .max()
                .unwrap_or(0)
        };
        match key {
            LaneKey::Queries(c) => self
                .report
                .queries
                .iter()
                .zip(&self.query_rows)
                .filter(|(q, _)| q.client == c)
                .map(|(_, row)| row + 1)
                .max()
                .unwrap_or(0),
            // The first row of a server's lane holds the orchestrators' markers.
            LaneKey::Host(Host::Server(_)) => 1 + fault_rows(key),
            LaneKey::Wire(_) => 1,
            LaneKey::Host(_) | LaneKey::Link(_) => fault_rows(key),
        }
    }

    fn lane(&self, key: LaneKey) -> Option<&Lane> {
        self.lanes.iter().find(|l| l.key == key)
    }

    fn height(&self) -> f64 {
        self.lanes.last().map_or(TOP, |l| l.y + l.height()) + AXIS
    }

    fn svg(&self, out: &mut String) {
        let height = self.height();
        let _ = writeln!(
            out,
            "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height:.0}\" width=\"{WIDTH}\" height=\"{height:.0}\" role=\"img\">"
        );
        self.lane_backgrounds(out);
        self.liveness(out);
        self.axis(out);
        self.breaker_bands(out);
        for (span, row) in self.report.faults.iter().zip(&self.fault_rows) {
            self.fault(out, span, *row);
        }
        for (index, chunk) in self.chunks.iter().enumerate() {
            self.tick(out, index, chunk);
        }
        for event in &self.report.events {
            self.event(out, event);
        }
        for (query, row) in self.report.queries.iter().zip(&self.query_rows) {
            self.query(out, query, *row);
        }
        out.push_str("</svg>\n");
    }

    /// The liveness window: from the last heal plus `liveness_after` to
    /// the end, where every query must be right.
    fn liveness(&self, out: &mut String) {
        let from = self.scenario.healed_at() + self.scenario.liveness_after;
        let (x0, x1) = (self.scale.x(from), self.scale.x_ms(self.scale.end_ms));
        if x1 - x0 < 1.0 {
            return;
        }
        let bottom = self.height() - AXIS;
        let _ = writeln!(
            out,
            "<g class=\"live\"><title>liveness window: every query starting after {} ms must be right</title><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"13\">liveness window</text></g>",
            from.as_millis(),
            TOP - 4.0,
            x1 - x0,
            bottom - TOP + 4.0,
            x0 + 4.0
        );
    }

    fn lane_backgrounds(&self, out: &mut String) {
        for (i, lane) in self.lanes.iter().enumerate() {
            let _ = writeln!(
                out,
                "<rect class=\"lane{}\" x=\"0\" y=\"{:.1}\" width=\"{WIDTH}\" height=\"{:.1}\"/><text class=\"label\" x=\"6\" y=\"{:.1}\">{}</text>",
                if i % 2 == 1 { " odd" } else { "" },
                lane.y,
                lane.height(),
                lane.y + lane.height() / 2.0 + 4.0,
                escape(&self.lane_label(lane.key))
            );
        }
    }

    fn lane_label(&self, key: LaneKey) -> String {
        let topology = &self.scenario.topology;
        let name = |h: Host| topology.name(h).into_owned();
        match key {
            LaneKey::Queries(c) => format!("{} queries", name(Host::Client(c as u32))),
            LaneKey::Host(host) => name(host),
            LaneKey::Wire(id) => format!("{} wire", name(Host::Server(id))),
            LaneKey::Link([a, b]) => format!("{} ↔ {}", name(a), name(b)),
        }
    }

    fn axis(&self, out: &mut String) {
        let bottom = self.height() - AXIS;
        out.push_str("<g class=\"axis\">");
        for t in self.scale.ticks() {
            let x = self.scale.x_ms(t as f64);
            let label = if self.scale.end_ms >= 2000.0 {
                format!("{} s", t as f64 / 1000.0)
            } else {
                format!("{t} ms")
            };
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/><text x=\"{x:.1}\" y=\"{:.1}\">{label}</text>",
                bottom + 3.0,
                bottom + 16.0
            );
        }
        let _ = writeln!(
            out,
            "<text class=\"unit\" x=\"6\" y=\"{:.1}\">simulated time</text></g>",
            bottom + 16.0
        );
    }

    fn fault(&self, out: &mut String, span: &FaultSpan, row: usize) {
        let fault = &span.fault;
        let Some(lane) = self.lane(layout::fault_lane(fault.kind.target())) else {
            return;
        };
        let label = fault.kind.label();
        let x0 = self.scale.x(fault.at);
        let x1 = match (fault.lasts, span.healed) {
            (None, _) => x0 + 3.0,
            (Some(_), Some(healed)) => self.scale.x(healed).max(x0 + 1.0),
            (Some(_), None) => self.scale.x_ms(self.scale.end_ms),
        };
        let healed = match span.healed {
            Some(at) => format!("{} to {} ms", fault.at.as_millis(), at.as_millis()),
            None if fault.lasts.is_none() => format!("at {} ms", fault.at.as_millis()),
            None => format!("from {} ms, not healed by the end", fault.at.as_millis()),
        };
        // A server's first row holds the orchestrators' markers.
        let row = row + usize::from(matches!(lane.key, LaneKey::Host(Host::Server(_))));
        let y = lane.row_y(row) - ROW / 2.0 + 1.0;
        let _ = write!(
            out,
            "<g class=\"f k-{}\" data-f=\"{}\"><title>{} ({healed})</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            label.replace(' ', "-"),
            fault.id,
            escape(&fault.kind.describe(&self.scenario.topology)),
            x1 - x0,
            ROW - 2.0
        );
        // The label starts in the bar; its row is kept free to its end.
        let text_x = if fault.lasts.is_none() {
            x1 + 2.0
        } else {
            x0 + 3.0
        };
        let _ = writeln!(
            out,
            "<text x=\"{text_x:.1}\" y=\"{:.1}\">{}</text></g>",
            y + ROW - 5.0,
            escape(&label)
        );
    }

    /// A message on the wire: a tick, above the middle if the client sent
    /// it, below if it received it.
    fn tick(&self, out: &mut String, index: usize, chunk: &Chunk<'_>) {
        let Some(lane) = self.lane(LaneKey::Wire(chunk.server)) else {
            return;
        };
        let x = self.scale.x_ms(chunk.at_ms as f64);
        let middle = lane.row_y(0);
        let (y1, y2, class) = if chunk.sent {
            (middle - ROW / 2.0, middle, "w s")
        } else {
            (middle, middle + ROW / 2.0, "w r")
        };
        let _ = writeln!(
            out,
            "<line class=\"{class}\" data-w=\"{index}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y1:.1}\" y2=\"{y2:.1}\"/>"
        );
    }

    /// A reconnect, retry, hedge or breaker transition, on its server's lane.
    fn event(&self, out: &mut String, event: &ClientEvent) {
        let topology = &self.scenario.topology;
        let Some((id, _)) = topology
            .servers()
            .find(|(_, s)| s.name == event.event.server)
        else {
            return;
        };
        let Some(lane) = self.lane(LaneKey::Host(Host::Server(id))) else {
            return;
        };
        let x = self.scale.x(event.at);
        // Connections just below the middle, the rest just above, so that
        // a retry and the reconnect it makes are both seen.
        let y = lane.row_y(0)
            + if matches!(event.event.kind, EventKind::Connect { .. }) {
                2.5
            } else {
                -2.5
            };
        let (class, what, shape) = match event.event.kind {
            EventKind::Connect { generation: 1 } => {
                ("connect", "connect".to_owned(), circle(x, y, 2.0))
            }
            EventKind::Connect { generation } => (
                "reconnect",
                format!("reconnect (connection {generation})"),
                circle(x, y, 3.5),
            ),
            EventKind::Retry { attempt, pause } => (
                "retry",
                format!(
                    "retry after attempt {attempt} failed, in {} ms",
                    pause.as_millis()
                ),
                format!("M{x:.1},{:.1}l5,8h-10z", y - 5.0),
            ),
            EventKind::Hedge => ("hedge", "hedge".to_owned(), diamond(x, y)),
            EventKind::BreakerOpened => ("open", "breaker opened".to_owned(), square(x, y)),
            EventKind::BreakerClosed => ("close", "breaker closed".to_owned(), square(x, y)),
        };
        let _ = writeln!(
            out,
            "<path class=\"e {class}\" d=\"{shape}\"><title>{} ms: {what}: {} → {}</title></path>",
            event.at.as_millis(),
            escape(&topology.name(Host::Client(event.client as u32))),
            escape(&event.event.server)
        );
    }

    /// A shaded band on a server's lane while a client's breaker for it
    /// was open (until it closed, or the end).
    fn breaker_bands(&self, out: &mut String) {
        let mut open: Vec<(usize, &str, Duration)> = Vec::new();
        let mut bands = Vec::new();
        for event in &self.report.events {
            let key = (event.client, event.event.server.as_str());
            let at = open.iter().position(|(c, s, _)| (*c, *s) == key);
            match (event.event.kind, at) {
                (EventKind::BreakerOpened, None) => open.push((key.0, key.1, event.at)),
                (EventKind::BreakerClosed, Some(i)) => {
                    let (_, server, from) = open.remove(i);
                    bands.push((server, from, Some(event.at)));
                }
                _ => {}
            }
        }
        bands.extend(
            open.into_iter()
                .map(|(_, server, from)| (server, from, None)),
        );
        for (server, from, to) in bands {
            self.band(out, server, from, to);
        }
    }

    fn band(&self, out: &mut String, server: &str, from: Duration, to: Option<Duration>) {
        let topology = &self.scenario.topology;
        let Some((id, _)) = topology.servers().find(|(_, s)| s.name == server) else {
            return;
        };
        let Some(lane) = self.lane(LaneKey::Host(Host::Server(id))) else {
            return;
        };
        let x0 = self.scale.x(from);
        let x1 = to.map_or(self.scale.x_ms(self.scale.end_ms), |t| self.scale.x(t));
        let _ = writeln!(
            out,
            "<rect class=\"brk\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ROW}\"><title>breaker open for {} from {} ms</title></rect>",
            lane.row_y(0) - ROW / 2.0,
            (x1 - x0).max(1.0),
            escape(server),
            from.as_millis()
        );
    }

    /// A query: a dot at its start and a line to its end, coloured by
    /// outcome.
    fn query(&self, out: &mut String, query: &QueryRecord, row: usize) {
        let Some(lane) = self.lane(LaneKey::Queries(query.client)) else {
            return;
        };
        let (x0, x1) = (
            self.scale.x(query.start),
            self.scale.x(query.start + query.latency),
        );
        let y = lane.row_y(row);
        let _ = writeln!(
            out,
            "<g class=\"q {}\" data-q=\"{}\"><title>{}</title><line x1=\"{x0:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><circle cx=\"{x0:.1}\" cy=\"{y:.1}\" r=\"3.5\"/></g>",
            outcome_class(&query.outcome),
            query.index,
            escape(&query_title(query)),
            x1.max(x0 + 1.0)
        );
    }

    /// What the page's script shows when a query or a message is clicked.
    fn data(&self) -> Value {
        let topology = &self.scenario.topology;
        let wire: Vec<Value> = self
            .chunks
            .iter()
            .map(|c| {
                let (text, left_off) = clip(c.text, WIRE_TEXT_MAX);
                json!([
                    c.at_ms,
                    c.client,
                    topology.server(c.server).name,
                    c.sent,
                    text,
                    left_off
                ])
            })
            .collect();
        json!({
            "seed": self.report.seed,
            "clients": topology.client_hosts().map(|h| topology.name(h).into_owned()).collect::<Vec<_>>(),
            "queries": detailed(&self.report.queries).map(query_data).collect::<Vec<_>>(),
            "wire": wire,
        })
    }
}

/// At most `max` of `all`, evenly spread (every k-th).
fn sample<T>(all: Vec<T>, max: usize) -> Vec<T> {
    let step = all.len().div_ceil(max.max(1)).max(1);
    all.into_iter().step_by(step).collect()
}

/// The queries whose details the page keeps, in workload order: every one
/// that was not right, then right ones, up to [`QUERY_DETAILS_MAX`].
fn detailed(queries: &[QueryRecord]) -> impl Iterator<Item = &QueryRecord> {
    let not_right = queries
        .iter()
        .filter(|q| q.outcome != Outcome::Right)
        .count();
    let mut right_left = QUERY_DETAILS_MAX.saturating_sub(not_right);
    queries.iter().filter(move |q| {
        if q.outcome != Outcome::Right {
            return true;
        }
        let keep = right_left > 0;
        right_left = right_left.saturating_sub(1);
        keep
    })
}

fn query_rows(report: &RunReport, scale: Scale) -> Vec<usize> {
    // Rows per client, each client's queries in order of start.
    let mut rows = vec![0; report.queries.len()];
    let clients = report
        .queries
        .iter()
        .map(|q| q.client)
        .max()
        .map_or(0, |c| c + 1);
    for client in 0..clients {
        let mut mine: Vec<usize> = (0..report.queries.len())
            .filter(|i| report.queries[*i].client == client)
            .collect();
        mine.sort_by_key(|i| report.queries[*i].start);
        let pad = scale.ms_per(6.0);
        let intervals: Vec<(f64, f64)> = mine
            .iter()
            .map(|i| {
                let q = &report.queries[*i];
                let start = q.start.as_secs_f64() * 1000.0;
                (start, start + q.latency.as_secs_f64() * 1000.0 + pad)
            })
            .collect();
        for (i, row) in mine.into_iter().zip(layout::pack(&intervals)) {
            rows[i] = row;
        }
    }
    rows
}

/// Rows per lane for the faults, in the order applied (which is by start).
fn fault_rows(report: &RunReport, scale: Scale) -> Vec<usize> {
    let mut rows = vec![0; report.faults.len()];
    let mut lanes: Vec<LaneKey> = Vec::new();
    for span in &report.faults {
        let lane = layout::fault_lane(span.fault.kind.target());
        if !lanes.contains(&lane) {
            lanes.push(lane);
        }
    }
    for lane in lanes {
        let mine: Vec<usize> = (0..report.faults.len())
            .filter(|i| layout::fault_lane(report.faults[*i].fault.kind.target()) == lane)
            .collect();
        let intervals: Vec<(f64, f64)> = mine
            .iter()
            .map(|i| {
                let span = &report.faults[*i];
                let start = span.fault.at.as_secs_f64() * 1000.0;
                let end = span.healed.map_or(start, |h| h.as_secs_f64() * 1000.0);
                let label =
                    scale.ms_per(LABEL_PX_PER_CHAR * span.fault.kind.label().len() as f64 + 10.0);
                (start, end.max(start + label))
            })
            .collect();
        for (i, row) in mine.into_iter().zip(layout::pack(&intervals)) {
            rows[i] = row;
        }
    }
    rows
}

fn outcome_class(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Right => "right",
        Outcome::Error(_) => "error",
        Outcome::Wrong { .. } => "wrong",
    }
}

/// The hover text of a query.
fn query_title(q: &QueryRecord) -> String {
    let outcome = match &q.outcome {
        Outcome::Right => "right".to_owned(),
        Outcome::Error(error) => format!("typed error: {error}"),
        Outcome::Wrong { got, expected } => format!("WRONG: got {got:?}, expected {expected:?}"),
    };
    format!(
        "query {} at {} ms, {} ms, {} attempt(s): {outcome}\n{}",
        q.index,
        q.start.as_millis(),
        q.latency.as_millis(),
        q.attempts,
        q.question
    )
}

fn query_data(q: &QueryRecord) -> Value {
    let mut data = json!({
        "i": q.index,
        "client": q.client,
        "question": q.question,
        "start_ms": q.start.as_millis() as u64,
        "latency_ms": q.latency.as_millis() as u64,
        "attempts": q.attempts,
        "outcome": outcome_class(&q.outcome),
        "answer": q.answer,
        "steps": q.steps,
    });
    match &q.outcome {
        Outcome::Right => {}
        Outcome::Error(error) => data["error"] = json!(error),
        Outcome::Wrong { expected, .. } => data["expected"] = json!(expected),
    }
    data
}

fn circle(x: f64, y: f64, r: f64) -> String {
    format!(
        "M{:.1},{y:.1}a{r},{r} 0 1,0 {},0a{r},{r} 0 1,0 -{},0",
        x - r,
        2.0 * r,
        2.0 * r
    )
}

fn diamond(x: f64, y: f64) -> String {
    format!("M{x:.1},{:.1}l4,4l-4,4l-4,-4z", y - 4.0)
}

fn square(x: f64, y: f64) -> String {
    format!("M{:.1},{:.1}h7v7h-7z", x - 3.5, y - 3.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_is_sampled_evenly_to_at_most_max() {
        assert_eq!(sample((0..10).collect(), 20), (0..10).collect::<Vec<_>>());
        assert_eq!(sample((0..10).collect(), 5), [0, 2, 4, 6, 8]);
        assert_eq!(sample((0..11).collect(), 5), [0, 3, 6, 9]);
        assert!(sample((0..100_000).collect::<Vec<_>>(), 1000).len() <= 1000);
    }
}
