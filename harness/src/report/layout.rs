//! Where a timeline puts things: the time scale, the lanes (one per
//! client's queries, host, server's wire and faulted link) and the rows
//! inside each lane that keep overlapping bars apart.

use std::time::Duration;

use crate::{
    RunReport, Scenario,
    fault::Target,
    topology::{Host, ServerId},
};

/// The drawing's width; everything scales to it (the page lets it shrink).
pub(super) const WIDTH: f64 = 1200.0;
/// Room for the lane labels on the left.
pub(super) const LEFT: f64 = 150.0;
const RIGHT: f64 = 14.0;
/// One row of a lane.
pub(super) const ROW: f64 = 14.0;
/// Room above the lanes (the liveness label) and below them (the axis).
pub(super) const TOP: f64 = 20.0;
pub(super) const AXIS: f64 = 24.0;
/// Space between lanes.
const GAP: f64 = 6.0;
/// Most rows a lane stacks; more overlapping bars share rows.
const ROWS_MAX: usize = 8;

/// Simulated time to x.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scale {
    pub(super) end_ms: f64,
}

impl Scale {
    /// A scale that shows all of `report`: the run, every query's end and
    /// every fault's heal.
    pub(super) fn of(report: &RunReport) -> Self {
        let ends = report
            .queries
            .iter()
            .map(|q| q.start + q.latency)
            .chain(report.faults.iter().filter_map(|f| f.healed))
            .chain([report.simulated]);
        let end = ends.max().unwrap_or_default().max(Duration::from_millis(1));
        Self {
            end_ms: end.as_secs_f64() * 1000.0,
        }
    }

    pub(super) fn x(self, at: Duration) -> f64 {
        self.x_ms(at.as_secs_f64() * 1000.0)
    }

    pub(super) fn x_ms(self, ms: f64) -> f64 {
        LEFT + ms.clamp(0.0, self.end_ms) / self.end_ms * (WIDTH - LEFT - RIGHT)
    }

    /// Milliseconds that span `px` pixels.
    pub(super) fn ms_per(self, px: f64) -> f64 {
        px * self.end_ms / (WIDTH - LEFT - RIGHT)
    }

    /// Axis ticks: a 1-2-5 step that gives at most 12 of them.
    pub(super) fn ticks(self) -> impl Iterator<Item = u64> {
        let step = (0..19)
            .flat_map(|e| [1, 2, 5].map(|m| m * 10u64.pow(e)))
            .find(|step| self.end_ms / *step as f64 <= 12.0)
            .unwrap_or(u64::MAX);
        (0..)
            .map(move |i| i * step)
            .take_while(move |t| *t as f64 <= self.end_ms)
    }
}

/// What a lane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LaneKey {
    /// One client's queries.
    Queries(usize),
    /// Faults on a host; on a server's, the orchestrators' markers too.
    Host(Host),
    /// The messages between the clients and one server.
    Wire(ServerId),
    /// Faults on a link.
    Link([Host; 2]),
}

/// One lane, placed.
#[derive(Debug, Clone)]
pub(super) struct Lane {
    pub(super) key: LaneKey,
    pub(super) rows: usize,
    /// Its top.
    pub(super) y: f64,
}

impl Lane {
    pub(super) fn height(&self) -> f64 {
        self.rows as f64 * ROW + 4.0
    }

    /// The middle of row `row`.
    pub(super) fn row_y(&self, row: usize) -> f64 {
        self.y + 2.0 + (row as f64 + 0.5) * ROW
    }
}

/// The lanes of `report`'s timeline, in order, with their rows filled in
/// by `rows`, placed top to bottom.
pub(super) fn lanes(
    scenario: &Scenario,
    report: &RunReport,
    rows: impl Fn(LaneKey) -> usize,
) -> Vec<Lane> {
    let mut y = TOP;
    lane_keys(scenario, report)
        .into_iter()
        .map(|key| {
            let lane = Lane {
                key,
                rows: rows(key).max(1),
                y,
            };
            y += lane.height() + GAP;
            lane
        })
        .collect()
}

/// Every client's queries (and its host, if faulted), every server's host
/// and wire, the proxy if any fault involves it, then each faulted link in
/// the order first faulted.
fn lane_keys(scenario: &Scenario, report: &RunReport) -> Vec<LaneKey> {
    let topology = &scenario.topology;
    let targets: Vec<Target> = report
        .faults
        .iter()
        .map(|f| f.fault.kind.target())
        .collect();
    let faulted = |host: Host| targets.contains(&Target::Host(host));
    let mut keys = Vec::new();
    for (c, host) in topology.client_hosts().enumerate() {
        keys.push(LaneKey::Queries(c));
        if faulted(host) {
            keys.push(LaneKey::Host(host));
        }
    }
    for (id, _) in topology.servers() {
        keys.extend([LaneKey::Host(Host::Server(id)), LaneKey::Wire(id)]);
    }
    if faulted(Host::Model) {
        keys.push(LaneKey::Host(Host::Model));
    }
    let proxied = targets.iter().any(|t| match t {
        Target::Host(h) => *h == Host::Proxy,
        Target::Link(link) => link.contains(&Host::Proxy),
    });
    if proxied {
        keys.push(LaneKey::Host(Host::Proxy));
    }
    for target in targets {
        if let Target::Link(link) = target
            && !keys.contains(&LaneKey::Link(link))
        {
            keys.push(LaneKey::Link(link));
        }
    }
    keys
}

/// The lane a fault is drawn in.
pub(super) fn fault_lane(target: Target) -> LaneKey {
    match target {
        Target::Host(host) => LaneKey::Host(host),
        Target::Link(link) => LaneKey::Link(link),
    }
}

/// Rows for intervals `(start, end)` given in order of start: each takes
/// the first row free by its start. Past [`ROWS_MAX`] rows they share.
pub(super) fn pack(intervals: &[(f64, f64)]) -> Vec<usize> {
    let mut ends: Vec<f64> = Vec::new();
    intervals
        .iter()
        .map(
            |&(start, end)| match ends.iter().position(|e| *e <= start) {
                Some(row) => {
                    ends[row] = end;
                    row
                }
                None if ends.len() < ROWS_MAX => {
                    ends.push(end);
                    ends.len() - 1
                }
                None => {
                    let row = ends.len() - 1;
                    ends[row] = ends[row].max(end);
                    row
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_intervals_take_separate_rows_and_free_rows_are_reused() {
        let rows = pack(&[
            (0.0, 10.0),
            (5.0, 8.0),
            (8.0, 12.0),
            (11.0, 20.0),
            (12.0, 13.0),
        ]);
        assert_eq!(rows, [0, 1, 1, 0, 1]);
        let crowd: Vec<(f64, f64)> = (0..20).map(|i| (f64::from(i), 100.0)).collect();
        assert_eq!(pack(&crowd).into_iter().max(), Some(ROWS_MAX - 1));
    }

    #[test]
    fn ticks_step_by_one_two_five() {
        let ticks = |end_ms| Scale { end_ms }.ticks().collect::<Vec<_>>();
        assert_eq!(
            ticks(15_700.0),
            (0..=7).map(|i| i * 2000).collect::<Vec<_>>()
        );
        assert_eq!(ticks(900.0), (0..=9).map(|i| i * 100).collect::<Vec<_>>());
        assert_eq!(ticks(3.0), [0, 1, 2, 3]);
    }

    #[test]
    fn the_scale_maps_the_run_onto_the_plot() {
        let scale = Scale { end_ms: 1000.0 };
        assert_eq!(scale.x_ms(0.0), LEFT);
        assert_eq!(scale.x_ms(1000.0), WIDTH - RIGHT);
        assert_eq!(scale.x_ms(5000.0), WIDTH - RIGHT, "clamped");
    }
}
