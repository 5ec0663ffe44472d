//! The invariants a run is checked for, from what it recorded.

use std::{fmt::Write as _, time::Duration};

use orchestrator::Stats;

use super::{Outcome, QueryRecord, ServerLoad, Verdict, percentile};
use crate::{
    attacker,
    scenario::{Invariant, Scenario},
};

/// Safety: no wrong answer, ever. Liveness: once every fault has healed and
/// `liveness_after` has passed, every query is right.
pub(super) fn check(
    scenario: &Scenario,
    queries: &[QueryRecord],
    stats: &Stats,
    load: &[ServerLoad],
    simulated: Duration,
) -> Vec<Verdict> {
    let wrong = queries
        .iter()
        .filter(|q| matches!(q.outcome, Outcome::Wrong { .. }))
        .count();
    let safety = Verdict {
        invariant: Invariant::Safety,
        held: wrong == 0,
        detail: format!("{wrong} wrong answer(s) of {}", queries.len()),
    };
    let settled = scenario.healed_at() + scenario.liveness_after;
    let after: Vec<&QueryRecord> = queries.iter().filter(|q| q.start >= settled).collect();
    let failed = after.iter().filter(|q| q.outcome != Outcome::Right).count();
    let liveness = Verdict {
        invariant: Invariant::Liveness,
        held: !after.is_empty() && failed == 0,
        detail: if after.is_empty() {
            format!(
                "no query started after {} ms (all faults healed + liveness_after_ms): lengthen the workload",
                settled.as_millis()
            )
        } else {
            format!(
                "{failed} of {} queries after {} ms not right",
                after.len(),
                settled.as_millis()
            )
        },
    };
    let mut verdicts = vec![safety, liveness];
    if let Some(min) = scenario.availability_min {
        let right = queries
            .iter()
            .filter(|q| q.outcome == Outcome::Right)
            .count();
        let ratio = right as f64 / queries.len().max(1) as f64;
        verdicts.push(Verdict {
            invariant: Invariant::Availability,
            held: ratio >= min,
            detail: format!(
                "{right} of {} right ({:.0}%), at least {:.0}% required",
                queries.len(),
                ratio * 100.0,
                min * 100.0
            ),
        });
    }
    if let Some(max) = scenario.p99_max {
        let p99 = percentile(queries, 0.99);
        verdicts.push(Verdict {
            invariant: Invariant::Latency,
            held: p99 <= max,
            detail: format!(
                "p99 {} ms, at most {} ms allowed",
                p99.as_millis(),
                max.as_millis()
            ),
        });
    }
    if let Some(min) = scenario.breaker_trips_min {
        let trips: u64 = stats.breaker_trips.iter().map(|(_, n)| n).sum();
        verdicts.push(Verdict {
            invariant: Invariant::Breaker,
            held: trips >= min,
            detail: format!("{trips} breaker trip(s), at least {min} required"),
        });
    }
    let extra = stats.retries + stats.hedges;
    if let Some(max) = scenario.amplification_max {
        let ratio = (stats.calls + extra) as f64 / stats.calls.max(1) as f64;
        verdicts.push(Verdict {
            invariant: Invariant::Amplification,
            held: ratio <= max,
            detail: format!(
                "{} attempts for {} calls ({ratio:.2}x), at most {max}x allowed",
                stats.calls + extra,
                stats.calls
            ),
        });
    }
    if scenario.within_budget {
        // Each client's bucket: full at the start, refilled by time and by
        // a fraction of every first attempt.
        let p = &scenario.policy;
        let clients = f64::from(scenario.topology.clients());
        let allowed = clients * f64::from(p.retry_budget_burst)
            + p.retry_budget_ratio * stats.calls as f64
            + clients * p.retry_budget_per_s * simulated.as_secs_f64();
        verdicts.push(Verdict {
            invariant: Invariant::Budget,
            held: extra as f64 <= allowed,
            detail: format!(
                "{extra} retries and hedges, the budget allows {}",
                allowed.floor()
            ),
        });
    }
    if scenario.in_flight_max.is_some() || scenario.sessions_max.is_some() {
        let in_flight = load.iter().map(|l| l.in_flight_peak).max().unwrap_or(0);
        let sessions = load.iter().map(|l| l.sessions_peak).max().unwrap_or(0);
        let held = scenario.in_flight_max.is_none_or(|m| in_flight <= m)
            && scenario.sessions_max.is_none_or(|m| sessions <= m);
        let limit = |m: Option<u64>| m.map_or("unbounded".to_owned(), |m| format!("at most {m}"));
        verdicts.push(Verdict {
            invariant: Invariant::Load,
            held,
            detail: format!(
                "peak {in_flight} request(s) in flight ({}), {sessions} session(s) open ({})",
                limit(scenario.in_flight_max),
                limit(scenario.sessions_max)
            ),
        });
    }
    verdicts
}

/// Zero leaked records, and every answered probe refused as it must be. A
/// run in which no probe was answered proves nothing and fails.
pub(super) fn leak_verdict(attack: &attacker::AttackLog, dataset: &crate::Dataset) -> Verdict {
    let leaked = attacker::leaks(&attack.received, dataset);
    let held = leaked.is_empty() && attack.unexpected.is_empty() && attack.answered > 0;
    let mut detail = format!(
        "{} probe(s): {} answered, {} unanswered (faults); {} with the wrong status, {} dataset record(s) leaked",
        attack.answered + attack.unanswered,
        attack.answered,
        attack.unanswered,
        attack.unexpected.len(),
        leaked.len()
    );
    for line in leaked.iter().chain(&attack.unexpected).take(5) {
        let _ = write!(detail, "; {line}");
    }
    Verdict {
        invariant: Invariant::Leaks,
        held,
        detail,
    }
}
