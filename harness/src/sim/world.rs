//! The fault loop: each fault started and healed on the simulation at its
//! simulated time, from the outer `step()` loop (turmoil cannot crash or
//! bounce a host from inside one). Starting and healing every
//! [`FaultKind`] is written here, once.

use std::{sync::atomic::Ordering, time::Duration};

use super::{FaultSpan, RunError, hosts::Probes, hosts::Routes};
use crate::{
    fault::FaultKind,
    proxy::Toxics,
    scenario::{Fault, Scenario},
    topology::{Host, Topology},
};

/// What the fault loop saw: trace lines and counts.
#[derive(Debug, Default)]
pub(super) struct Driven {
    /// (time, line) of every start and heal.
    pub(super) events: Vec<(Duration, String)>,
    pub(super) faults_applied: usize,
    /// Applied faults by label, in the order each label first appeared.
    pub(super) faults_by_kind: Vec<(String, usize)>,
    /// Every applied fault (rerouted), with its heal once healed.
    pub(super) spans: Vec<FaultSpan>,
    pub(super) simulated: Duration,
}

/// What a fault's start and heal act on.
pub(super) struct World<'s, 'a> {
    pub(super) sim: &'s mut turmoil::Sim<'a>,
    pub(super) scenario: &'s Scenario,
    pub(super) probes: &'s Probes,
    pub(super) toxics: &'s Toxics,
}

impl World<'_, '_> {
    /// Steps the simulation to its end, applying every fault on time.
    pub(super) fn drive(&mut self, routes: &Routes) -> Result<Driven, RunError> {
        let faults = reroute(&self.scenario.faults, routes);
        let mut schedule = schedule(&faults).into_iter().peekable();
        let mut driven = Driven::default();
        loop {
            let now = self.sim.elapsed();
            while let Some((at, action)) = schedule.next_if(|(at, _)| *at <= now) {
                self.apply(&action);
                driven.record(at, &action, &self.scenario.topology);
            }
            match self.sim.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => {
                    return Err(RunError::Simulation {
                        at_ms: self.sim.elapsed().as_millis(),
                        message: error.to_string(),
                    });
                }
            }
        }
        driven.simulated = self.sim.elapsed();
        Ok(driven)
    }

    fn apply(&mut self, action: &Action<'_>) {
        match action {
            Action::Start(fault) => self.start(fault),
            Action::Heal(fault) => self.heal(fault),
        }
    }

    fn start(&mut self, fault: &Fault) {
        let topology = &self.scenario.topology;
        let n = |h: &Host| topology.name(*h).into_owned();
        match &fault.kind {
            FaultKind::Partition { between: [a, b] } => self.sim.partition(n(a), n(b)),
            FaultKind::PartitionOneway { between: [a, b] } => self.sim.partition_oneway(n(a), n(b)),
            FaultKind::Crash { host } => self.sim.crash(n(host)),
            FaultKind::Bounce { host } => self.sim.bounce(n(host)),
            FaultKind::LinkFailure {
                between: [a, b],
                fail_rate,
            } => self.sim.set_link_fail_rate(n(a), n(b), *fail_rate),
            FaultKind::Hold { between: [a, b] } => self.sim.hold(n(a), n(b)),
            FaultKind::Latency {
                between: [a, b],
                min,
                max,
            } => {
                self.sim.set_link_latency(n(a), n(b), *min);
                self.sim.set_link_max_message_latency(n(a), n(b), *max);
            }
            FaultKind::Stall { host, delay } => self.set_stall(host, *delay),
            FaultKind::RateLimit {
                host,
                retry_after_s,
            } => self.set_rate_limit(host, Some(*retry_after_s)),
            FaultKind::Toxic(toxic) => self.toxics.add(fault.id, toxic.clone()),
        }
    }

    fn heal(&mut self, fault: &Fault) {
        let topology = &self.scenario.topology;
        let n = |h: &Host| topology.name(*h).into_owned();
        match &fault.kind {
            FaultKind::Partition { between: [a, b] } => self.sim.repair(n(a), n(b)),
            FaultKind::PartitionOneway { between: [a, b] } => self.sim.repair_oneway(n(a), n(b)),
            FaultKind::Crash { host } => self.sim.bounce(n(host)),
            FaultKind::Bounce { .. } => {}
            FaultKind::LinkFailure {
                between: [a, b], ..
            } => {
                self.sim.set_link_fail_rate(n(a), n(b), 0.0);
                self.sim.repair(n(a), n(b));
            }
            FaultKind::Hold { between: [a, b] } => self.sim.release(n(a), n(b)),
            FaultKind::Latency {
                between: [a, b], ..
            } => {
                let (min, max) = (self.scenario.latency_min, self.scenario.latency_max);
                self.sim.set_link_latency(n(a), n(b), min);
                self.sim.set_link_max_message_latency(n(a), n(b), max);
            }
            FaultKind::Stall { host, .. } => self.set_stall(host, Duration::ZERO),
            FaultKind::RateLimit { host, .. } => self.set_rate_limit(host, None),
            FaultKind::Toxic(_) => self.toxics.remove(fault.id),
        }
    }

    /// Stall faults name a server (checked when the scenario was read).
    fn set_stall(&self, host: &Host, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.probe(host).stall_ms.store(ms, Ordering::Relaxed);
    }

    /// Rate-limit faults name a server (checked when the scenario was
    /// read); the limit acts on HTTP requests only.
    fn set_rate_limit(&self, host: &Host, limit: Option<Option<u64>>) {
        self.probe(host).limit.set(limit);
    }

    fn probe(&self, host: &Host) -> &super::hosts::Probe {
        let Host::Server(server) = host else {
            unreachable!("a validated stall or rate limit names a server")
        };
        self.probes.of(*server)
    }
}

impl Driven {
    fn record(&mut self, at: Duration, action: &Action<'_>, topology: &Topology) {
        let (verb, fault) = match action {
            Action::Start(f) => ("start", f),
            Action::Heal(f) => ("heal ", f),
        };
        self.events
            .push((at, format!("{verb} {}", fault.kind.describe(topology))));
        self.record_span(at, action);
        if let Action::Start(fault) = action {
            self.faults_applied += 1;
            let label = fault.kind.label();
            match self.faults_by_kind.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => self.faults_by_kind.push((label, 1)),
            }
        }
    }
}

impl Driven {
    fn record_span(&mut self, at: Duration, action: &Action<'_>) {
        match action {
            Action::Start(fault) => self.spans.push(FaultSpan {
                fault: (*fault).clone(),
                healed: None,
            }),
            Action::Heal(fault) => {
                if let Some(span) = self.spans.iter_mut().rfind(|s| s.fault.id == fault.id) {
                    span.healed = Some(at);
                }
            }
        }
    }
}

/// Faults on a link between a client and a server (or the model host) that
/// sits behind the proxy act on the proxy–server link: that is where the
/// path runs.
fn reroute(faults: &[Fault], routes: &Routes) -> Vec<Fault> {
    let proxied = |h: &Host| routes.is_proxied(*h);
    let mut faults = faults.to_vec();
    for fault in &mut faults {
        if let Some([a, b]) = fault.kind.link_mut() {
            if matches!(a, Host::Client(_)) && proxied(b) {
                *a = Host::Proxy;
            } else if matches!(b, Host::Client(_)) && proxied(a) {
                *b = Host::Proxy;
            }
        }
    }
    faults
}

enum Action<'a> {
    Start(&'a Fault),
    Heal(&'a Fault),
}

/// Fault starts and heals in time order; a start sorts before a heal at the
/// same instant, and ties keep file order.
fn schedule(faults: &[Fault]) -> Vec<(Duration, Action<'_>)> {
    let mut events: Vec<(Duration, Action<'_>)> = Vec::new();
    for fault in faults {
        events.push((fault.at, Action::Start(fault)));
        if let Some(lasts) = fault.lasts {
            events.push((fault.at + lasts, Action::Heal(fault)));
        }
    }
    events.sort_by_key(|(at, action)| (*at, matches!(action, Action::Heal(_))));
    events
}
