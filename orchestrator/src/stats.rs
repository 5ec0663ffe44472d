//! Figures: what an orchestrator has done ([`Stats`]) and the one
//! percentile every report uses.

use std::time::Duration;

/// What the orchestrator has done so far: the evidence of how it coped.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Connections opened per server, in configuration order; more than one
    /// means reconnects.
    pub connections: Vec<(String, u64)>,
    /// Calls (first attempts, connection attempts included).
    pub calls: u64,
    /// Attempts beyond the first, across all calls.
    pub retries: u64,
    /// Hedged reads: second copies of a slow read-only call.
    pub hedges: u64,
    /// Times a server's circuit breaker opened, per server.
    pub breaker_trips: Vec<(String, u64)>,
}

impl Stats {
    /// The totals of several orchestrators' stats, per server name in order
    /// of first appearance.
    pub fn sum(all: impl IntoIterator<Item = Stats>) -> Stats {
        fn add(into: &mut Vec<(String, u64)>, from: Vec<(String, u64)>) {
            for (name, n) in from {
                match into.iter_mut().find(|(have, _)| *have == name) {
                    Some((_, total)) => *total += n,
                    None => into.push((name, n)),
                }
            }
        }
        let mut total = Stats::default();
        for stats in all {
            add(&mut total.connections, stats.connections);
            add(&mut total.breaker_trips, stats.breaker_trips);
            total.calls += stats.calls;
            total.retries += stats.retries;
            total.hedges += stats.hedges;
        }
        total
    }
}

/// The nearest-rank percentile `p` (0 to 1) of `sorted` durations: the
/// smallest one with at least `p` of them at or below it. Zero when there
/// are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let at = |p| percentile(&sorted, p).as_micros();
        assert_eq!((at(0.50), at(0.99), at(1.0), at(0.0)), (50, 99, 100, 1));
        assert_eq!(percentile(&sorted[..1], 0.99), Duration::from_micros(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
