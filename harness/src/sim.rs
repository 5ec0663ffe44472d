//! One simulated run: the real servers and the orchestrator on turmoil
//! hosts, faults applied from the outer `step()` loop, every answer checked
//! against the oracle.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, Mutex},
    time::{Duration, UNIX_EPOCH},
};

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use mcp_server_kit::Limits;
use orchestrator::{ConnectError, Connector, Orchestrator, Session, Stats, handshake_lines};
use payment_server::PaymentServer;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, Service,
    model::{ClientNotification, ClientRequest, ServerConfig, ServerResult},
    service::{NotificationContext, RequestContext},
};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;
use user_server::UserServer;

use crate::{
    attacker,
    dataset::Dataset,
    oracle::Oracle,
    proxy::{self, Toxics},
    scenario::{
        DatasetSource, Fault, FaultKind, Invariant, Questions, Scenario, Stream, ToxicKind,
        client_hosts,
    },
    strategies,
};

/// Every server listens on this port of its host.
pub const PORT: u16 = 9000;

/// What happened to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The oracle's answer.
    Right,
    /// A typed error: allowed while faults are active.
    Error(String),
    /// An answer that differs from the oracle's: a safety violation.
    Wrong { got: String, expected: String },
}

/// One query of a run.
#[derive(Debug, Clone)]
pub struct QueryRecord {
    /// Its number in the workload (queries from concurrent loops interleave).
    pub index: usize,
    /// The client host that asked it (0 for `client`, 1 for `client2`, …).
    pub client: usize,
    pub question: String,
    /// Simulated time since the run started.
    pub start: Duration,
    pub latency: Duration,
    pub attempts: u32,
    pub outcome: Outcome,
}

/// The verdict on one invariant.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub invariant: Invariant,
    pub held: bool,
    pub detail: String,
}

/// Everything one seed produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub seed: u64,
    pub queries: Vec<QueryRecord>,
    pub faults_applied: usize,
    /// The faults applied, counted by [`FaultKind::label`], in the order
    /// each kind was first applied.
    pub faults_by_kind: Vec<(String, usize)>,
    pub verdicts: Vec<Verdict>,
    /// Hash of the trace and the wire log: equal seeds give equal hashes.
    pub trace_hash: u64,
    /// Faults and queries, with simulated times.
    pub trace: String,
    /// Every chunk the client sent (`<`) to and received (`>`) from each
    /// server, with simulated times.
    pub wire: String,
    /// Calls, retries, hedges and (re)connections the orchestrators made,
    /// summed over the clients.
    pub stats: Stats,
    /// The most each server handled at once.
    pub load: Vec<ServerLoad>,
    /// Simulated time the run took.
    pub simulated: Duration,
    /// The scenario's expectation (pass, or the named invariant breaks) was met.
    pub as_expected: bool,
}

impl RunReport {
    /// The `p`-th quantile (0.5 for the median) of query latency, in
    /// simulated time, by the nearest-rank method; zero without queries.
    pub fn latency_percentile(&self, p: f64) -> Duration {
        percentile(&self.queries, p)
    }

    /// Connections the orchestrators opened beyond the first per server.
    pub fn reconnects(&self) -> u64 {
        self.stats
            .connections
            .iter()
            .map(|(_, n)| n.saturating_sub(1))
            .sum()
    }

    /// Times any server's circuit breaker opened.
    pub fn breaker_trips(&self) -> u64 {
        self.stats.breaker_trips.iter().map(|(_, n)| n).sum()
    }

    /// Attempts the servers were sent: first tries, retries and hedges.
    pub fn attempts(&self) -> u64 {
        self.stats.calls + self.stats.retries + self.stats.hedges
    }

    /// The faults applied by kind, as "2 bounce, 1 partition, 3 proxy drop"
    /// ("none" when there were none).
    pub fn faults_summary(&self) -> String {
        if self.faults_by_kind.is_empty() {
            return "none".to_owned();
        }
        self.faults_by_kind
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The nearest-rank `p`-th quantile of the queries' latencies.
fn percentile(queries: &[QueryRecord], p: f64) -> Duration {
    let mut latencies: Vec<Duration> = queries.iter().map(|q| q.latency).collect();
    latencies.sort_unstable();
    orchestrator::percentile(&latencies, p)
}

/// The busiest a server got during a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLoad {
    pub server: &'static str,
    /// Most requests handled at once.
    pub in_flight_peak: u64,
    /// Most sessions (connections) open at once.
    pub sessions_peak: u64,
}

/// A run that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the simulation failed at {at_ms} ms: {message}")]
    Simulation { at_ms: u128, message: String },
    /// The dataset or the questions could not be generated from the seed.
    #[error("cannot generate the {what}: {message}")]
    Generate { what: &'static str, message: String },
}

/// The dataset a run serves, materialised from the scenario and the seed.
pub fn dataset_for(scenario: &Scenario, seed: u64) -> Result<Dataset, RunError> {
    match &scenario.dataset {
        DatasetSource::Demo => Ok(Dataset::demo()),
        DatasetSource::Inline(data) => Ok(data.clone()),
        DatasetSource::Generated {
            users,
            transactions,
        } => {
            let (users, transactions) = (*users as usize, *transactions as usize);
            strategies::sample(
                &strategies::dataset(users..=users, transactions..=transactions),
                seed,
            )
            .map_err(|message| RunError::Generate {
                what: "dataset",
                message,
            })
        }
    }
}

/// A question and the oracle's answer to it (or why there is none).
type Asked = (String, Result<orchestrator::Answer, String>);

/// The questions a run asks in turn, each with the oracle's answer.
fn questions_for(scenario: &Scenario, oracle: &Oracle, seed: u64) -> Result<Vec<Asked>, RunError> {
    match &scenario.workload.questions {
        Questions::Listed(listed) => Ok(listed
            .iter()
            .map(|q| (q.clone(), oracle.answer(q)))
            .collect()),
        Questions::Generated {
            pool,
            unknown_share,
        } => {
            let pool = *pool as usize;
            let strategy = proptest::collection::vec(
                strategies::question(oracle.dataset(), *unknown_share),
                pool..=pool,
            );
            // A different stream from the dataset's.
            let asked =
                strategies::sample(&strategy, seed ^ 0x5155_4553_5449_4f4e).map_err(|message| {
                    RunError::Generate {
                        what: "questions",
                        message,
                    }
                })?;
            Ok(asked
                .into_iter()
                .map(|q| {
                    let expected = oracle.expect(&q.meaning);
                    (q.text, expected)
                })
                .collect())
        }
    }
}

/// Runs `scenario` once with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<RunReport, RunError> {
    let oracle = Oracle::new(dataset_for(scenario, seed)?);
    let (users, ledger) = oracle
        .dataset()
        .stores()
        .map_err(|error| RunError::Generate {
            what: "dataset",
            message: error.to_string(),
        })?;
    let asked = Arc::new(questions_for(scenario, &oracle, seed)?);
    align_task_ids();
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .simulation_duration(scenario.duration)
        .tick_duration(scenario.tick)
        .min_message_latency(scenario.latency_min)
        .max_message_latency(scenario.latency_max)
        .repair_rate(scenario.repair_rate)
        .build();

    let probes = Probes::default();
    // With an attacker, each server also serves its authenticated HTTP
    // endpoint: the same handler and store behind the kit's real router.
    let attacked = scenario.attacker.map(|a| a.no_auth);
    let user_probe = probes.user.clone();
    let user_store = users.clone();
    sim.host("user", move || {
        let handler = UserServer::new(user_store.clone());
        if let Some(no_auth) = attacked {
            attacker::spawn_endpoint(handler.clone(), &user_server::SPEC, "user", no_auth);
        }
        serve(
            Instrumented {
                inner: handler,
                probe: user_probe.clone(),
            },
            user_probe.clone(),
        )
    });
    let payment_probe = probes.payment.clone();
    let payment_store = ledger.clone();
    sim.host("payment", move || {
        let handler = PaymentServer::new(payment_store.clone());
        if let Some(no_auth) = attacked {
            attacker::spawn_endpoint(handler.clone(), &payment_server::SPEC, "payment", no_auth);
        }
        serve(
            Instrumented {
                inner: handler,
                probe: payment_probe.clone(),
            },
            payment_probe.clone(),
        )
    });
    let attack_log = Arc::new(Mutex::new(attacker::AttackLog::default()));
    if let Some(settings) = scenario.attacker {
        let victim = oracle.dataset().users.first();
        let probes = attacker::matrix(
            victim.map_or("no-such-user", |u| u.id.as_str()),
            victim.map_or("nobody@example.com", |u| u.email.as_str()),
        );
        let log = attack_log.clone();
        sim.client("attacker", async move {
            attacker::run(probes.clone(), settings.every, settings.until, log).await
        });
    }

    // Servers with toxics are reached through the proxy host.
    let mut proxied: Vec<&'static str> = Vec::new();
    for fault in &scenario.faults {
        if let FaultKind::Toxic(toxic) = &fault.kind {
            let server: &'static str = if toxic.server == "user" {
                "user"
            } else {
                "payment"
            };
            if !proxied.contains(&server) {
                proxied.push(server);
            }
        }
    }
    proxied.sort_unstable();
    let proxied_servers = proxied.clone();
    let toxics = Toxics::default();
    if !proxied.is_empty() {
        let (servers, toxics) = (
            proxied.iter().map(|s| (*s, PORT)).collect::<Vec<_>>(),
            toxics.clone(),
        );
        sim.host("proxy", move || {
            proxy::run(servers.clone(), toxics.clone(), seed)
        });
    }
    let route = move |server: &'static str| -> (&'static str, u16) {
        match proxied.iter().position(|s| *s == server) {
            Some(i) => ("proxy", proxy::PROXY_PORT_BASE + i as u16),
            None => (server, PORT),
        }
    };

    let records = Arc::new(Mutex::new(Vec::new()));
    let wire_log = Arc::new(Mutex::new(String::new()));
    let client_stats = Arc::new(Mutex::new(Vec::new()));
    // Clients take query numbers from one sequence.
    let next = Arc::new(AtomicU64::new(0));
    let hosts = client_hosts(scenario.workload.clients);
    let labelled = hosts.len() > 1;
    for (client, host) in hosts.into_iter().enumerate() {
        let records = records.clone();
        let workload = scenario.workload.clone();
        let policy = scenario.policy;
        let planted_bug = scenario.planted_bug;
        let asked = asked.clone();
        let wire_log = wire_log.clone();
        let client_stats = client_stats.clone();
        let next = next.clone();
        let label = labelled.then(|| host.clone());
        let route = route.clone();
        sim.client(host, async move {
            let wire = Wire {
                log: wire_log,
                start: tokio::time::Instant::now(),
            };
            let connector = |server: &'static str| -> Arc<dyn Connector> {
                let (host, port) = route(server);
                let sim = Arc::new(SimConnector {
                    server: match &label {
                        Some(client) => format!("{client} {server}"),
                        None => server.to_owned(),
                    },
                    host,
                    port,
                    wire: wire.clone(),
                });
                crate::planted::wrap(planted_bug, sim)
            };
            let orchestrator = Orchestrator::new(
                vec![
                    ("user".into(), connector("user")),
                    ("payment".into(), connector("payment")),
                ],
                policy,
                seed.wrapping_add(client as u64),
            );
            let started = tokio::time::Instant::now();
            // `concurrency` loops share this client's orchestrator (and so its
            // connections, breakers and retry budget). join_all polls them in
            // one task: the interleaving is the simulation's.
            let worker = || async {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= workload.queries as usize {
                        return;
                    }
                    if let Some(rate) = workload.rate_per_s {
                        tokio::time::sleep_until(
                            started + Duration::from_secs_f64(i as f64 / rate),
                        )
                        .await;
                    }
                    let (question, expected) = &asked[i % asked.len()];
                    let begun = tokio::time::Instant::now();
                    let mut trace = Vec::new();
                    let result = orchestrator.ask(question, &mut trace).await;
                    let outcome = match (&result, expected) {
                        (Ok(got), Ok(want)) if got == want => Outcome::Right,
                        (Ok(got), Ok(want)) => Outcome::Wrong {
                            got: got.render(),
                            expected: want.render(),
                        },
                        (Ok(got), Err(why)) => Outcome::Wrong {
                            got: got.render(),
                            expected: format!("an error: {why}"),
                        },
                        (Err(error), _) => Outcome::Error(error.to_string()),
                    };
                    records.lock().expect("records").push(QueryRecord {
                        index: i,
                        client,
                        question: question.clone(),
                        start: begun - started,
                        latency: begun.elapsed(),
                        attempts: trace.iter().map(|s| s.attempts).sum(),
                        outcome,
                    });
                    tokio::time::sleep(workload.interval).await;
                }
            };
            futures::future::join_all((0..workload.concurrency).map(|_| worker())).await;
            client_stats
                .lock()
                .expect("stats")
                .push((client, orchestrator.stats()));
            orchestrator.shutdown().await;
            Ok(())
        });
    }

    let faults = reroute(&scenario.faults, &proxied_servers);
    let mut schedule = schedule(&faults);
    // (time, line), merged into one time-ordered trace at the end.
    let mut events: Vec<(Duration, String)> = vec![(
        Duration::ZERO,
        format!(
            "dataset: {} ({} users, {} transactions); {} distinct question(s) from {} client(s)",
            match scenario.dataset {
                DatasetSource::Demo => "the demo's",
                DatasetSource::Generated { .. } => "generated from the seed",
                DatasetSource::Inline(_) => "the scenario's own",
            },
            oracle.dataset().users.len(),
            oracle.dataset().transactions.len(),
            asked.len(),
            scenario.workload.clients
        ),
    )];
    let mut faults_applied = 0;
    let mut faults_by_kind: Vec<(String, usize)> = Vec::new();
    loop {
        let now = sim.elapsed();
        while let Some((at, action)) = schedule.first() {
            if *at > now {
                break;
            }
            apply(&mut sim, scenario, &probes, &toxics, action);
            events.push((*at, describe(action)));
            if let Action::Start(fault) = action {
                faults_applied += 1;
                let label = fault.kind.label();
                match faults_by_kind.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, n)) => *n += 1,
                    None => faults_by_kind.push((label, 1)),
                }
            }
            schedule.remove(0);
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => {
                return Err(RunError::Simulation {
                    at_ms: sim.elapsed().as_millis(),
                    message: error.to_string(),
                });
            }
        }
    }
    let simulated = sim.elapsed();
    drop(sim);

    let queries = std::mem::take(&mut *records.lock().expect("records"));
    for q in &queries {
        let i = q.index;
        let by = if labelled {
            format!(
                " ({})",
                client_hosts(q.client as u32 + 1).pop().unwrap_or_default()
            )
        } else {
            String::new()
        };
        let outcome = match &q.outcome {
            Outcome::Right => "right".to_owned(),
            Outcome::Error(e) => format!("error: {e}"),
            Outcome::Wrong { got, .. } => format!("WRONG: {got:?}"),
        };
        events.push((
            q.start,
            format!(
                "query {i}{by}: {outcome} ({} ms, {} attempt(s))",
                q.latency.as_millis(),
                q.attempts
            ),
        ));
    }
    let attack = std::mem::take(&mut *attack_log.lock().expect("attack log"));
    events.extend(attack.events.iter().cloned());
    // Stable: at equal times, faults (pushed first) come before queries.
    events.sort_by_key(|(at, _)| *at);
    let mut trace = String::new();
    for (at, line) in &events {
        let _ = writeln!(trace, "{:>8} ms  {line}", at.as_millis());
    }
    let wire = std::mem::take(&mut *wire_log.lock().expect("wire log"));
    let mut per_client = std::mem::take(&mut *client_stats.lock().expect("stats"));
    per_client.sort_by_key(|(client, _)| *client);
    let stats = Stats::sum(per_client.into_iter().map(|(_, s)| s));
    let _ = writeln!(
        trace,
        "orchestrator: {} calls, {} retries, {} hedges; connections {}",
        stats.calls,
        stats.retries,
        stats.hedges,
        stats
            .connections
            .iter()
            .map(|(server, n)| format!("{server} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let load: Vec<ServerLoad> = [("user", &probes.user), ("payment", &probes.payment)]
        .into_iter()
        .map(|(server, probe)| ServerLoad {
            server,
            in_flight_peak: probe.in_flight.peak(),
            sessions_peak: probe.sessions.peak(),
        })
        .collect();
    let _ = writeln!(
        trace,
        "servers: {}",
        load.iter()
            .map(|l| format!(
                "{} at most {} request(s) and {} session(s) at once",
                l.server, l.in_flight_peak, l.sessions_peak
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let mut verdicts = check(scenario, &queries, &stats, &load, simulated);
    if scenario.attacker.is_some() {
        verdicts.push(leak_verdict(&attack, oracle.dataset()));
    }
    let as_expected = match scenario.expect_fail {
        None => verdicts.iter().all(|v| v.held),
        Some(invariant) => verdicts.iter().any(|v| v.invariant == invariant && !v.held),
    };
    Ok(RunReport {
        seed,
        queries,
        faults_applied,
        faults_by_kind,
        verdicts,
        trace_hash: fnv1a(trace.as_bytes()) ^ fnv1a(wire.as_bytes()).rotate_left(1),
        trace,
        wire,
        stats,
        load,
        simulated,
        as_expected,
    })
}

/// tokio numbers tasks from one process-wide counter, and a runtime files
/// each task in one of its (4 on one thread) lists by that number modulo the
/// list count. When turmoil crashes or bounces a host, it drops the host's
/// runtime, which shuts the tasks down list by list: the order their
/// connections close in, and so which message draws which latency from the
/// seeded RNG, depends on the task numbers. Two runs in one process would
/// see different numbers. Starting every run at a number that is a multiple
/// of [`TASK_ID_ALIGNMENT`] files every task of a seed in the same list each
/// time, so a run in a process that has run others before replays one in a
/// fresh process exactly.
///
/// It cannot help when another thread spawns tokio tasks during the run
/// (parallel tests that each run a simulation, say): they take numbers from
/// the same counter.
fn align_task_ids() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    loop {
        let id = runtime.spawn(async {}).id();
        // `Id` shows its number; nothing else exposes it.
        match id.to_string().parse::<u64>() {
            Ok(n) if n % TASK_ID_ALIGNMENT == TASK_ID_ALIGNMENT - 1 => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// A multiple of the number of task lists a one-thread tokio runtime keeps
/// (4 in tokio 1.54), with room should that grow.
const TASK_ID_ALIGNMENT: u64 = 64;

/// Safety: no wrong answer, ever. Liveness: once every fault has healed and
/// `liveness_after` has passed, every query is right.
fn check(
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
        let p = scenario.policy.settings();
        let clients = f64::from(scenario.workload.clients);
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
fn leak_verdict(attack: &attacker::AttackLog, dataset: &crate::Dataset) -> Verdict {
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

/// Faults on a link between a client and a server that sits behind the
/// proxy act on the proxy–server link: that is where the path runs.
fn reroute(faults: &[Fault], proxied: &[&str]) -> Vec<Fault> {
    let via = |a: &mut String, b: &mut String| {
        if a.starts_with("client") && proxied.contains(&b.as_str()) {
            *a = "proxy".to_owned();
        } else if b.starts_with("client") && proxied.contains(&a.as_str()) {
            *b = "proxy".to_owned();
        }
    };
    let mut faults = faults.to_vec();
    for fault in &mut faults {
        match &mut fault.kind {
            FaultKind::Partition { a, b }
            | FaultKind::LinkFailure { a, b, .. }
            | FaultKind::Hold { a, b }
            | FaultKind::Latency { a, b, .. } => via(a, b),
            FaultKind::PartitionOneway { from, to } => via(from, to),
            FaultKind::Crash { .. }
            | FaultKind::Bounce { .. }
            | FaultKind::Stall { .. }
            | FaultKind::Toxic(_) => {}
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

fn apply(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    probes: &Probes,
    toxics: &Toxics,
    action: &Action<'_>,
) {
    match action {
        Action::Start(fault) => match &fault.kind {
            FaultKind::Partition { a, b } => sim.partition(a.as_str(), b.as_str()),
            FaultKind::PartitionOneway { from, to } => {
                sim.partition_oneway(from.as_str(), to.as_str())
            }
            FaultKind::Crash { host } => sim.crash(host.as_str()),
            FaultKind::Bounce { host } => sim.bounce(host.as_str()),
            FaultKind::LinkFailure { a, b, fail_rate } => {
                sim.set_link_fail_rate(a.as_str(), b.as_str(), *fail_rate)
            }
            FaultKind::Hold { a, b } => sim.hold(a.as_str(), b.as_str()),
            FaultKind::Latency { a, b, min, max } => {
                sim.set_link_latency(a.as_str(), b.as_str(), *min);
                sim.set_link_max_message_latency(a.as_str(), b.as_str(), *max);
            }
            FaultKind::Stall { host, delay } => probes.of(host).stall_ms.store(
                u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            ),
            FaultKind::Toxic(toxic) => toxics.add(fault.id, toxic.clone()),
        },
        Action::Heal(fault) => match &fault.kind {
            FaultKind::Partition { a, b } => sim.repair(a.as_str(), b.as_str()),
            FaultKind::PartitionOneway { from, to } => {
                sim.repair_oneway(from.as_str(), to.as_str())
            }
            FaultKind::Crash { host } => sim.bounce(host.as_str()),
            FaultKind::Bounce { .. } => {}
            FaultKind::LinkFailure { a, b, .. } => {
                sim.set_link_fail_rate(a.as_str(), b.as_str(), 0.0);
                sim.repair(a.as_str(), b.as_str());
            }
            FaultKind::Hold { a, b } => sim.release(a.as_str(), b.as_str()),
            FaultKind::Latency { a, b, .. } => {
                sim.set_link_latency(a.as_str(), b.as_str(), scenario.latency_min);
                sim.set_link_max_message_latency(a.as_str(), b.as_str(), scenario.latency_max);
            }
            FaultKind::Stall { host, .. } => probes.of(host).stall_ms.store(0, Ordering::Relaxed),
            FaultKind::Toxic(_) => toxics.remove(fault.id),
        },
    }
}

fn describe(action: &Action<'_>) -> String {
    let (verb, fault) = match action {
        Action::Start(f) => ("start", f),
        Action::Heal(f) => ("heal ", f),
    };
    let what = match &fault.kind {
        FaultKind::Partition { a, b } => format!("partition {a} <-> {b}"),
        FaultKind::PartitionOneway { from, to } => format!("partition {from} -> {to}"),
        FaultKind::Crash { host } => format!("crash {host}"),
        FaultKind::Bounce { host } => format!("bounce {host}"),
        FaultKind::LinkFailure { a, b, fail_rate } => {
            format!("link failure {a} <-> {b} at {fail_rate}")
        }
        FaultKind::Hold { a, b } => format!("hold {a} <-> {b}"),
        FaultKind::Latency { a, b, min, max } => format!(
            "latency {a} <-> {b} {}..{} ms",
            min.as_millis(),
            max.as_millis()
        ),
        FaultKind::Stall { host, delay } => format!("stall {host} by {} ms", delay.as_millis()),
        FaultKind::Toxic(toxic) => {
            let ms = |d: &Duration| d.as_millis();
            let what = match &toxic.kind {
                ToxicKind::Latency { latency, jitter } => {
                    format!("latency {} ± {} ms", ms(latency), ms(jitter))
                }
                ToxicKind::Bandwidth { rate_kbps } => format!("bandwidth {rate_kbps} kbit/s"),
                ToxicKind::Slicer {
                    average_size,
                    size_variation,
                    delay,
                } => format!(
                    "slicer {average_size} ± {size_variation} bytes, {} µs apart",
                    delay.as_micros()
                ),
                ToxicKind::SlowClose { delay } => format!("slow_close {} ms", ms(delay)),
                ToxicKind::Timeout { timeout } => format!("timeout after {} ms", ms(timeout)),
                ToxicKind::ResetPeer { timeout } => format!("reset_peer after {} ms", ms(timeout)),
                ToxicKind::LimitData { bytes } => format!("limit_data {bytes} bytes"),
                ToxicKind::Drop => "drop".to_owned(),
            };
            let stream = match toxic.stream {
                Stream::Upstream => "upstream",
                Stream::Downstream => "downstream",
            };
            format!(
                "toxic {what} on {} {stream}, toxicity {}",
                toxic.server, toxic.toxicity
            )
        }
    };
    format!("{verb} {what}")
}

/// What the harness sets on, and reads from, each server without the
/// server knowing: a response delay (stall faults) and load gauges.
#[derive(Debug, Default)]
struct Probes {
    user: Arc<Probe>,
    payment: Arc<Probe>,
}

impl Probes {
    fn of(&self, host: &str) -> &Probe {
        match host {
            "user" => &self.user,
            _ => &self.payment,
        }
    }
}

#[derive(Debug, Default)]
struct Probe {
    /// Every request waits this long first (set by stall faults).
    stall_ms: AtomicU64,
    /// Requests being handled.
    in_flight: Gauge,
    /// MCP sessions (connections) open.
    sessions: Gauge,
}

/// A count that goes up and down, and the highest it reached.
#[derive(Debug, Default)]
struct Gauge {
    current: AtomicU64,
    peak: AtomicU64,
}

impl Gauge {
    /// Counts one in until the guard drops (also when a crash drops the
    /// task holding it).
    fn enter(&self) -> GaugeGuard<'_> {
        let now = self.current.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        GaugeGuard(self)
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A server handler wrapped by the harness: tool calls wait out any stall
/// first, and requests are counted, so the server code stays unaware of faults.
#[derive(Clone)]
struct Instrumented<S> {
    inner: S,
    probe: Arc<Probe>,
}

impl<S: ServerHandler> Service<RoleServer> for Instrumented<S> {
    async fn handle_request(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let _counted = self.probe.in_flight.enter();
        let delay = self.probe.stall_ms.load(Ordering::Relaxed);
        // A slow backend behind a live process: the handshake and tool
        // listing stay quick, tool calls are late.
        if delay > 0 && matches!(request, ClientRequest::CallToolRequest(_)) {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Service::handle_request(&self.inner, request, context).await
    }

    async fn handle_notification(
        &self,
        notification: ClientNotification,
        context: NotificationContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Service::handle_notification(&self.inner, notification, context).await
    }

    fn get_info(&self) -> ServerConfig {
        Service::get_info(&self.inner)
    }
}

/// A reference server on a turmoil host: one MCP session per connection,
/// exactly as `serve_tcp` frames them.
async fn serve<S: Service<RoleServer> + Clone>(handler: S, probe: Arc<Probe>) -> turmoil::Result {
    let listener =
        turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let handler = handler.clone();
        let probe = probe.clone();
        tokio::spawn(async move {
            let _open = probe.sessions.enter();
            let (read, write) = stream.into_split();
            let _ = mcp_server_kit::serve_connection(
                handler,
                read,
                write,
                &Limits::DEFAULT,
                CancellationToken::new(),
            )
            .await;
        });
    }
}

/// Connects to a server host over simulated TCP, recording every byte the
/// client sends and receives, with its simulated time, in `wire`.
#[derive(Debug)]
struct SimConnector {
    /// The server this reaches (names the wire log's lines).
    server: String,
    /// Where it connects: the server's host, or the proxy in front of it.
    host: &'static str,
    port: u16,
    wire: Wire,
}

impl Connector for SimConnector {
    fn target(&self) -> String {
        format!("sim://{}:{}", self.host, self.port)
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>> {
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect((self.host, self.port))
                .await
                .map_err(|source| ConnectError::Io {
                    target: self.target(),
                    source,
                })?;
            let (read, write) = stream.into_split();
            let read = Recorded::new(read, self.wire.clone(), format!("{} >", self.server));
            let write = Recorded::new(write, self.wire.clone(), format!("{} <", self.server));
            handshake_lines(read, write, &self.target()).await
        })
    }
}

/// The wire log of one run: "time ms, direction, bytes" per chunk.
#[derive(Debug, Clone)]
struct Wire {
    log: Arc<Mutex<String>>,
    start: tokio::time::Instant,
}

impl Wire {
    fn record(&self, direction: &str, bytes: &[u8]) {
        let at = self.start.elapsed().as_millis();
        let mut log = self.log.lock().expect("wire log");
        let _ = writeln!(
            log,
            "{at:>8} ms  {direction} {}",
            String::from_utf8_lossy(bytes).trim_end()
        );
    }
}

/// A stream half that copies what passes through it into a [`Wire`].
struct Recorded<T> {
    inner: T,
    wire: Wire,
    direction: String,
}

impl<T> Recorded<T> {
    fn new(inner: T, wire: Wire, direction: String) -> Self {
        Self {
            inner,
            wire,
            direction,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Recorded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll
            && buf.filled().len() > before
        {
            self.wire.record(&self.direction, &buf.filled()[before..]);
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Recorded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, bytes);
        if let Poll::Ready(Ok(n)) = poll {
            self.wire.record(&self.direction, &bytes[..n]);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
