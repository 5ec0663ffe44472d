//! The client hosts of a run: each runs its own real `Orchestrator` over
//! simulated TCP, and its workload loops record every query and every byte
//! on the wire.

use std::{
    fmt::Write as _,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use orchestrator::{
    Answer, AskError, ConnectError, Connector, Credential, HttpConnector, LlmPlanner, LlmSettings,
    Observer, Orchestrator, Session, Stats, Token, handshake_lines,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{
    Asked, ClientEvent, Outcome, QueryRecord,
    hosts::Routes,
    http::{self, SimDialer},
};
use crate::{
    attacker,
    oracle::{Expected, Oracle},
    scenario::{Scenario, Transport, Workload},
    topology::{Host, ServerKind, Topology},
};

/// What the clients leave behind, filled in as the simulation runs.
#[derive(Debug, Clone, Default)]
pub(super) struct Collected {
    pub(super) records: Arc<Mutex<Vec<QueryRecord>>>,
    pub(super) wire: Arc<Mutex<WireLog>>,
    /// Each client's orchestrator statistics, by client number.
    pub(super) stats: Arc<Mutex<Vec<(usize, Stats)>>>,
    /// What the orchestrators did, as their observers saw it.
    pub(super) events: Arc<Mutex<Vec<ClientEvent>>>,
}

/// The questions the clients ask, and how their answers are judged.
pub(super) struct Asking {
    /// Each question with the oracle's answer.
    pub(super) asked: Arc<Vec<Asked>>,
    /// With the LLM planner: the oracle that judges answers by
    /// truthfulness instead ([`Oracle::truthful`]).
    pub(super) truth: Option<Arc<Oracle>>,
}

/// Adds one client host per `[workload] clients`. They take query numbers
/// from one shared sequence.
pub(super) fn spawn_clients(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    routes: &Routes,
    asking: Asking,
    seed: u64,
) -> Collected {
    let collected = Collected::default();
    // Thousands of records in a crowded run: grown a push at a time, the
    // vector was copied a dozen times over.
    collected
        .records
        .lock()
        .expect("records")
        .reserve(scenario.workload.queries as usize);
    let next = Arc::new(AtomicU64::new(0));
    let topology = &scenario.topology;
    let labelled = topology.clients() > 1;
    for (client, host) in topology.client_hosts().enumerate() {
        let name = topology.name(host).into_owned();
        let label = labelled.then(|| name.clone());
        let client = Client {
            index: client,
            targets: targets(topology, routes, label.as_deref()),
            model: model_target(scenario, routes, label.as_deref()),
            workload: scenario.workload.clone(),
            policy: scenario.policy,
            planted_bug: scenario.planted_bug,
            seed: seed.wrapping_add(client as u64),
            asked: asking.asked.clone(),
            truth: asking.truth.clone(),
            next: next.clone(),
            collected: collected.clone(),
        };
        sim.client(name, client.run());
    }
    collected
}

/// What the wire log calls `peer` for the client labelled `label` (only
/// with several clients).
fn wire_name(label: Option<&str>, peer: &str) -> String {
    match label {
        Some(client) => format!("{client} {peer}"),
        None => peer.to_owned(),
    }
}

/// Every server, as the client labelled `label` reaches it.
fn targets(topology: &Topology, routes: &Routes, label: Option<&str>) -> Vec<Target> {
    topology
        .servers()
        .map(|(id, server)| {
            let (to, port) = routes.to(Host::Server(id));
            Target {
                server: server.name.clone(),
                spec: match server.kind {
                    ServerKind::User => &user_server::SPEC,
                    ServerKind::Payment => &payment_server::SPEC,
                },
                wire_name: wire_name(label, &server.name),
                client: label.unwrap_or("client").to_owned(),
                host: topology.name(to).into_owned(),
                port,
            }
        })
        .collect()
}

/// With the LLM planner, the model host (or the proxy in front of it) as
/// the client labelled `label` reaches it.
fn model_target(scenario: &Scenario, routes: &Routes, label: Option<&str>) -> Option<ModelTarget> {
    let setup = scenario.planner.llm()?;
    let topology = &scenario.topology;
    let (host, port) = routes.to(Host::Model);
    let base_url = format!("http://{}:{port}/v1", topology.name(host));
    Some(ModelTarget {
        settings: LlmSettings {
            mode: setup.mode,
            steps_max: setup.steps_max,
            request_timeout: setup.request_timeout,
            ..LlmSettings::new(base_url, "adversary")
        },
        wire_name: wire_name(label, &topology.name(Host::Model)),
    })
}

/// A server as one client reaches it.
struct Target {
    /// The server's name, which the orchestrator calls it by.
    server: String,
    /// What its kind serves (the scopes a token for it needs).
    spec: &'static mcp_server_kit::ServerSpec,
    /// What the wire log calls it: the name, after the client's with
    /// several clients.
    wire_name: String,
    /// The client reaching it, as its token names it.
    client: String,
    /// The host it connects to (the server's or the proxy's) and the port.
    host: String,
    port: u16,
}

impl Target {
    /// The orchestrator's connector to this server over `transport`; over
    /// HTTP, `deaf` to `Retry-After` with that bug planted.
    fn connector(&self, wire: &Wire, transport: Transport, deaf: bool) -> Arc<dyn Connector> {
        match transport {
            Transport::Tcp => Arc::new(SimConnector {
                server: self.wire_name.clone(),
                host: self.host.clone(),
                port: self.port,
                wire: wire.clone(),
            }),
            Transport::Http(revision) => {
                let resource = http::resource(&self.server);
                let token = attacker::client_token(self.spec, &resource, &self.client);
                let dialer = SimDialer {
                    wire: wire.clone(),
                    server: self.wire_name.clone(),
                    deaf,
                };
                let url = format!("http://{}:{}/mcp", self.host, self.port);
                let credential = Credential::Value(Token::new(token));
                Arc::new(HttpConnector::new(url, Some(credential), dialer).revision(revision))
            }
        }
    }
}

/// The model host as one client's LLM planner reaches it.
struct ModelTarget {
    settings: LlmSettings,
    /// What the wire log calls it.
    wire_name: String,
}

/// One client host's orchestrator and workload.
struct Client {
    index: usize,
    targets: Vec<Target>,
    /// With the LLM planner: where its model is.
    model: Option<ModelTarget>,
    workload: Workload,
    policy: orchestrator::Policy,
    planted_bug: Option<crate::planted::PlantedBug>,
    seed: u64,
    asked: Arc<Vec<Asked>>,
    truth: Option<Arc<Oracle>>,
    next: Arc<AtomicU64>,
    collected: Collected,
}

impl Client {
    async fn run(self) -> turmoil::Result {
        let wire = Wire {
            log: self.collected.wire.clone(),
            start: tokio::time::Instant::now(),
        };
        let orchestrator = self.orchestrator(&wire);
        // `concurrency` loops share this client's orchestrator (and so its
        // connections, breakers and retry budget). One task polls them, in an
        // order the seed fixes (see `join`): the interleaving is the simulation's.
        let started = tokio::time::Instant::now();
        let loops = (0..self.workload.concurrency).map(|_| self.worker(&orchestrator, started));
        crate::join::join_in_order(loops.collect()).await;
        self.collected
            .stats
            .lock()
            .expect("stats")
            .push((self.index, orchestrator.stats()));
        orchestrator.shutdown().await;
        Ok(())
    }

    /// This client's orchestrator: its connectors (with any planted bug),
    /// its observer, and with the LLM planner, the model host dialled
    /// through the simulation.
    fn orchestrator(&self, wire: &Wire) -> Orchestrator {
        let servers = self
            .targets
            .iter()
            .map(|target| {
                let deaf = self.planted_bug == Some(crate::PlantedBug::IgnoreRetryAfter);
                let connector = crate::planted::wrap(
                    self.planted_bug,
                    target.connector(wire, self.workload.transport, deaf),
                );
                (target.server.clone(), connector)
            })
            .collect();
        let orchestrator = Orchestrator::new(servers, self.policy, self.seed)
            .with_observer(self.observer(wire.start));
        match &self.model {
            None => orchestrator,
            Some(model) => {
                let dialer = SimDialer {
                    wire: wire.clone(),
                    server: model.wire_name.clone(),
                    deaf: false,
                };
                orchestrator.with_llm(LlmPlanner::new(
                    model.settings.clone(),
                    dialer,
                    &self.policy,
                ))
            }
        }
    }

    /// Records what the orchestrator does, with simulated times since `start`.
    fn observer(&self, start: tokio::time::Instant) -> Observer {
        let (events, client) = (self.collected.events.clone(), self.index);
        Observer::new(move |event| {
            events.lock().expect("events").push(ClientEvent {
                at: start.elapsed(),
                client,
                event: event.clone(),
            });
        })
    }

    /// One workload loop: takes the next query number until none are left.
    async fn worker(&self, orchestrator: &Orchestrator, started: tokio::time::Instant) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed) as usize;
            if i >= self.workload.queries as usize {
                return;
            }
            if let Some(rate) = self.workload.rate_per_s {
                tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate)).await;
            }
            let record = self.ask(orchestrator, i, started).await;
            self.collected.records.lock().expect("records").push(record);
            tokio::time::sleep(self.workload.interval).await;
        }
    }

    /// Asks query `i` and judges the answer against the oracle's.
    async fn ask(
        &self,
        orchestrator: &Orchestrator,
        i: usize,
        started: tokio::time::Instant,
    ) -> QueryRecord {
        let (question, expected) = &self.asked[i % self.asked.len()];
        let begun = tokio::time::Instant::now();
        let mut trace = Vec::new();
        let result = orchestrator.ask(question, &mut trace).await;
        QueryRecord {
            index: i,
            client: self.index,
            question: question.clone(),
            start: begun - started,
            latency: begun.elapsed(),
            attempts: trace.iter().map(|s| s.attempts).sum(),
            outcome: match &self.truth {
                Some(oracle) => judge_truth(&result, question, oracle),
                None => judge(&result, expected),
            },
            answer: result.as_ref().ok().map(Answer::render),
            steps: trace,
        }
    }
}

/// Right, a typed error, or wrong (with both renderings): the oracle
/// checks the answer's value and its text. Where the oracle expects no
/// answer, the orchestrator's refusal of the question is right.
fn judge(result: &Result<Answer, AskError>, expected: &Expected) -> Outcome {
    match result {
        Err(AskError::Plan(_) | AskError::Tool { .. } | AskError::Incomplete { .. })
            if expected.answer().is_none() =>
        {
            Outcome::Right
        }
        Ok(got) => match expected.check(got, &got.render()) {
            Ok(()) => Outcome::Right,
            Err(wrong) => Outcome::Wrong {
                got: wrong.got,
                expected: wrong.expected,
            },
        },
        Err(error) => Outcome::Error(error.to_string()),
    }
}

/// Right when the answer is true about the dataset for what it says and
/// answers every address of the question ([`Oracle::truthful`]), a typed
/// error (a guard's refusal, a failed call) otherwise, and wrong when it
/// says something false.
fn judge_truth(result: &Result<Answer, AskError>, question: &str, oracle: &Oracle) -> Outcome {
    match result {
        Ok(got) => {
            let value = serde_json::to_value(got)
                .unwrap_or_else(|e| serde_json::json!({ "unserialisable": e.to_string() }));
            match oracle.truthful(question, &value) {
                Ok(()) => Outcome::Right,
                Err(why) => Outcome::Wrong {
                    got: got.render(),
                    expected: format!("a true answer, but {why}"),
                },
            }
        }
        Err(error) => Outcome::Error(error.to_string()),
    }
}

/// Connects to a server host over simulated TCP, recording every byte the
/// client sends and receives, with its simulated time, in `wire`.
#[derive(Debug)]
struct SimConnector {
    /// The server this reaches (names the wire log's lines).
    server: String,
    /// Where it connects: the server's host, or the proxy in front of it.
    host: String,
    port: u16,
    wire: Wire,
}

impl Connector for SimConnector {
    fn target(&self) -> String {
        format!("sim://{}:{}", self.host, self.port)
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>> {
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|source| ConnectError::Io {
                    target: self.target(),
                    source,
                })?;
            let (read, write) = stream.into_split();
            let read = Recorded::new(read, self.wire.clone(), &self.server);
            let write = Recorded::new(write, self.wire.clone(), &self.server);
            handshake_lines(read, write, &self.target()).await
        })
    }
}

/// The wire log of one run: "time ms, direction, bytes" per chunk, times
/// from the start of the client host.
#[derive(Debug, Clone)]
pub(super) struct Wire {
    log: Arc<Mutex<WireLog>>,
    start: tokio::time::Instant,
}

impl Wire {
    fn record(&self, direction: &Arc<str>, bytes: &[u8]) {
        let at = self.start.elapsed().as_millis();
        let mut log = self.log.lock().expect("wire log");
        log.chunks.push((at, direction.clone(), bytes.into()));
    }
}

/// Every chunk that crossed a client's sockets, as it came: written out
/// as text once, when the run is over. Formatted as each chunk passed, the
/// log grew one string of megabytes a line at a time; with mimalloc as the
/// allocator each growth faulted in fresh pages, a sixth of a crowded
/// run's time.
#[derive(Debug, Default)]
pub(super) struct WireLog {
    /// Simulated milliseconds since the client started, direction
    /// (`server >` or `server <`), bytes.
    chunks: Vec<(u128, Arc<str>, Box<[u8]>)>,
}

impl WireLog {
    /// One line per chunk: `{ms:>8} ms  {direction} {text}`, the text
    /// lossy UTF-8 without trailing whitespace.
    pub(super) fn text(&self) -> String {
        let bytes: usize = self
            .chunks
            .iter()
            .map(|(_, direction, bytes)| direction.len() + bytes.len() + 16)
            .sum();
        let mut text = String::with_capacity(bytes);
        for (at, direction, bytes) in &self.chunks {
            let _ = writeln!(
                text,
                "{at:>8} ms  {direction} {}",
                String::from_utf8_lossy(bytes).trim_end()
            );
        }
        text
    }
}

/// A stream (or half of one) that copies what passes through it into a
/// [`Wire`]: what it reads as `server >`, what it writes as `server <`.
#[derive(Debug)]
pub(super) struct Recorded<T> {
    inner: T,
    wire: Wire,
    received: Arc<str>,
    sent: Arc<str>,
}

impl<T> Recorded<T> {
    pub(super) fn new(inner: T, wire: Wire, server: &str) -> Self {
        Self {
            inner,
            wire,
            received: format!("{server} >").into(),
            sent: format!("{server} <").into(),
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
            self.wire.record(&self.received, &buf.filled()[before..]);
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
            self.wire.record(&self.sent, &bytes[..n]);
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

#[cfg(test)]
mod tests {
    //! `Recorded` with scripted streams: the wire log holds exactly the
    //! bytes that passed, a write that accepts only part of its buffer
    //! logged for the part it took.

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_test::io::Builder;

    use super::*;

    fn wire() -> Wire {
        Wire {
            log: Arc::default(),
            start: tokio::time::Instant::now(),
        }
    }

    fn lines(wire: &Wire) -> Vec<String> {
        let log = wire.log.lock().unwrap().text();
        log.lines().map(|l| l.trim_start().to_owned()).collect()
    }

    #[test]
    fn a_partial_write_is_logged_for_the_bytes_it_took() {
        tokio_test::block_on(async {
            let wire = wire();
            // A pipe with room for 4 bytes takes 4 of the 8 offered.
            let (inner, mut peer) = tokio::io::duplex(4);
            let mut recorded = Recorded::new(inner, wire.clone(), "s");
            let n = recorded.write(b"{\"a\":1}\n").await.unwrap();
            assert_eq!(n, 4);
            let mut first = [0; 4];
            peer.read_exact(&mut first).await.unwrap();
            recorded.write_all(b":1}\n").await.unwrap();
            assert_eq!(lines(&wire), ["0 ms  s < {\"a\"", "0 ms  s < :1}"]);
        });
    }

    #[test]
    fn reads_are_logged_as_they_arrive_and_an_error_logs_nothing() {
        tokio_test::block_on(async {
            let wire = wire();
            let error = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
            let inner = Builder::new()
                .read(b"ab")
                .read(b"c\n")
                .read_error(error)
                .build();
            let mut recorded = Recorded::new(inner, wire.clone(), "s");
            let mut got = Vec::new();
            let outcome = recorded.read_to_end(&mut got).await;
            assert!(outcome.is_err());
            assert_eq!(got, b"abc\n");
            assert_eq!(lines(&wire), ["0 ms  s > ab", "0 ms  s > c"]);
        });
    }
}
