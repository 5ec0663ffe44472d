//! The invariants a run is checked for, from what it recorded.

use std::{fmt::Write as _, time::Duration};

use orchestrator::Stats;

use super::{Outcome, QueryRecord, ServerLoad, Verdict, percentile};
use crate::{
    attacker,
    scenario::{Invariant, Scenario, Transport},
};

/// What a run recorded, for the checks.
pub(super) struct Record<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) queries: &'a [QueryRecord],
    pub(super) stats: &'a Stats,
    pub(super) load: &'a [ServerLoad],
    pub(super) simulated: Duration,
}

/// Every invariant the scenario sets up, in the order they are reported:
/// safety always, liveness but with an adversarial model host (whose
/// refusals never stop, so no query after the heal need be right), the
/// others when asked for.
pub(super) fn check(record: &Record<'_>) -> Vec<Verdict> {
    let optional = [
        (!record.scenario.planner.is_adversarial()).then(|| liveness(record)),
        availability(record),
        latency(record),
        breaker(record),
        amplification(record),
        budget(record),
        load(record),
        retry_after(record),
    ];
    std::iter::once(safety(record))
        .chain(optional.into_iter().flatten())
        .collect()
}

/// No wrong answer, ever.
fn safety(r: &Record<'_>) -> Verdict {
    let wrong = r
        .queries
        .iter()
        .filter(|q| matches!(q.outcome, Outcome::Wrong { .. }))
        .count();
    Verdict {
        invariant: Invariant::Safety,
        held: wrong == 0,
        detail: format!("{wrong} wrong answer(s) of {}", r.queries.len()),
    }
}

/// Once every fault has healed and `liveness_after` has passed, every
/// query is right (and some query runs then).
fn liveness(r: &Record<'_>) -> Verdict {
    let settled = r.scenario.healed_at() + r.scenario.liveness_after;
    let after: Vec<&QueryRecord> = r.queries.iter().filter(|q| q.start >= settled).collect();
    let failed = after.iter().filter(|q| q.outcome != Outcome::Right).count();
    Verdict {
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
    }
}

fn availability(r: &Record<'_>) -> Option<Verdict> {
    let min = r.scenario.availability_min?;
    let right = r
        .queries
        .iter()
        .filter(|q| q.outcome == Outcome::Right)
        .count();
    let ratio = right as f64 / r.queries.len().max(1) as f64;
    Some(Verdict {
        invariant: Invariant::Availability,
        held: ratio >= min,
        detail: format!(
            "{right} of {} right ({:.0}%), at least {:.0}% required",
            r.queries.len(),
            ratio * 100.0,
            min * 100.0
        ),
    })
}

fn latency(r: &Record<'_>) -> Option<Verdict> {
    let max = r.scenario.p99_max?;
    let p99 = percentile(r.queries, 0.99);
    Some(Verdict {
        invariant: Invariant::Latency,
        held: p99 <= max,
        detail: format!(
            "p99 {} ms, at most {} ms allowed",
            p99.as_millis(),
            max.as_millis()
        ),
    })
}

fn breaker(r: &Record<'_>) -> Option<Verdict> {
    let min = r.scenario.breaker_trips_min?;
    let trips: u64 = r.stats.breaker_trips.iter().map(|(_, n)| n).sum();
    Some(Verdict {
        invariant: Invariant::Breaker,
        held: trips >= min,
        detail: format!("{trips} breaker trip(s), at least {min} required"),
    })
}

/// Attempts the servers saw per call the clients made.
fn amplification(r: &Record<'_>) -> Option<Verdict> {
    let max = r.scenario.amplification_max?;
    let (calls, extra) = (r.stats.calls, r.stats.retries + r.stats.hedges);
    let ratio = (calls + extra) as f64 / calls.max(1) as f64;
    Some(Verdict {
        invariant: Invariant::Amplification,
        held: ratio <= max,
        detail: format!(
            "{} attempts for {calls} calls ({ratio:.2}x), at most {max}x allowed",
            calls + extra,
        ),
    })
}

/// Each client's bucket: full at the start, refilled by time and by a
/// fraction of every first attempt.
fn budget(r: &Record<'_>) -> Option<Verdict> {
    if !r.scenario.within_budget {
        return None;
    }
    let p = r.scenario.policy.settings();
    let extra = r.stats.retries + r.stats.hedges;
    let clients = f64::from(r.scenario.topology.clients());
    let allowed = clients * f64::from(p.retry_budget_burst)
        + p.retry_budget_ratio * r.stats.calls as f64
        + clients * p.retry_budget_per_s * r.simulated.as_secs_f64();
    Some(Verdict {
        invariant: Invariant::Budget,
        held: extra as f64 <= allowed,
        detail: format!(
            "{extra} retries and hedges, the budget allows {}",
            allowed.floor()
        ),
    })
}

fn load(r: &Record<'_>) -> Option<Verdict> {
    let (in_flight_max, sessions_max) = (r.scenario.in_flight_max, r.scenario.sessions_max);
    if in_flight_max.is_none() && sessions_max.is_none() {
        return None;
    }
    let in_flight = r.load.iter().map(|l| l.in_flight_peak).max().unwrap_or(0);
    let sessions = r.load.iter().map(|l| l.sessions_peak).max().unwrap_or(0);
    let limit = |m: Option<u64>| m.map_or("unbounded".to_owned(), |m| format!("at most {m}"));
    let (held, open) = match r.scenario.workload.transport {
        Transport::Tcp => (
            sessions_max.is_none_or(|m| sessions <= m),
            format!("{sessions} session(s) open ({})", limit(sessions_max)),
        ),
        // HTTP/1.1 answers one request per connection at a time, so the
        // gauge counts connections, which track requests in flight;
        // `sessions_max` bounds TCP sessions only.
        Transport::Http(_) => (true, format!("{sessions} HTTP connection(s) open")),
    };
    Some(Verdict {
        invariant: Invariant::Load,
        held: held && in_flight_max.is_none_or(|m| in_flight <= m),
        detail: format!(
            "peak {in_flight} request(s) in flight ({}), {open}",
            limit(in_flight_max)
        ),
    })
}

/// Over HTTP, with a rate limit that sends `Retry-After`: no client asked
/// a server again before the wait it was told ended. A run in which no 429
/// carried `Retry-After` proves nothing and fails. Over tcp the limit does
/// nothing, so there is nothing to judge.
fn retry_after(r: &Record<'_>) -> Option<Verdict> {
    let checked = r.scenario.faults.iter().any(|f| f.tells_when_to_retry());
    if !checked || r.scenario.workload.transport == Transport::Tcp {
        return None;
    }
    let told: u64 = r.load.iter().map(|l| l.rate_limited.with_retry_after).sum();
    let early: u64 = r.load.iter().map(|l| l.rate_limited.early).sum();
    let ms = |d: &Duration| d.as_millis();
    let first = r.load.iter().find_map(|l| {
        let (arrived, told_at, until) = l.rate_limited.first_early.first()?;
        Some(format!(
            "; first: {} at {} ms, told at {} ms to wait until {} ms",
            l.server,
            ms(arrived),
            ms(told_at),
            ms(until)
        ))
    });
    Some(Verdict {
        invariant: Invariant::RetryAfter,
        held: told > 0 && early == 0,
        detail: match told {
            0 => "no 429 carried Retry-After: nothing was checked".to_owned(),
            _ => format!(
                "{told} 429(s) with Retry-After, {early} request(s) before the wait ended{}",
                first.unwrap_or_default()
            ),
        },
    })
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
