//! The server hosts of a run: each `[[servers]]` entry on a turmoil host,
//! running the real handler behind the kit's `serve_connection`, wrapped
//! so that the harness can stall tool calls and count load; the proxy host
//! in front of servers with toxics; and the attacker host.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use mcp_server_kit::Limits;
use payment_server::{Ledger, PaymentServer};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, Service,
    model::{ClientNotification, ClientRequest, ServerConfig, ServerResult},
    service::{NotificationContext, RequestContext},
};
use tokio_util::sync::CancellationToken;
use user_server::{UserServer, UserStore};

use super::{PORT, http::HttpServing};
use crate::{
    attacker,
    dataset::Dataset,
    proxy::{self, Toxics},
    scenario::{Scenario, Transport},
    topology::{Host, ServerId, ServerKind, Topology},
};

/// What every server of a kind serves: one dataset, validated once.
#[derive(Clone)]
pub(super) struct Stores {
    pub(super) users: UserStore,
    pub(super) ledger: Ledger,
}

/// What the harness sets on, and reads from, each server without the
/// server knowing: a response delay (stall faults) and load gauges. One
/// probe per server, in topology order.
#[derive(Debug)]
pub(super) struct Probes(Vec<Arc<Probe>>);

impl Probes {
    pub(super) fn of(&self, server: ServerId) -> &Probe {
        &self.0[server.index()]
    }
}

#[derive(Debug, Default)]
pub(super) struct Probe {
    /// Every request waits this long first (set by stall faults).
    pub(super) stall_ms: AtomicU64,
    /// Requests being handled.
    pub(super) in_flight: Gauge,
    /// MCP sessions (connections) open.
    pub(super) sessions: Gauge,
    /// The 429s a rate-limit fault makes the server send (HTTP only).
    pub(super) limit: RateLimiter,
}

impl Probe {
    /// Waits out the stall a fault set, if any (tool calls only).
    pub(super) async fn stall(&self) {
        let delay = self.stall_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
}

/// A rate limit in front of a server's HTTP endpoint, set by `rate_limit`
/// faults, and what clients did under it: each client (its credential) told
/// to wait by `Retry-After` must send nothing more before that ends, give or
/// take what was already on its way (`grace`: the request may have left
/// before the 429 arrived).
#[derive(Debug, Default)]
pub(super) struct RateLimiter(Mutex<LimitState>);

#[derive(Debug, Default)]
struct LimitState {
    /// In force: with this `Retry-After` (seconds), if any.
    active: Option<Option<u64>>,
    /// Per credential, the last wait it was told: sent at, ends at.
    told: Vec<(String, Duration, Duration)>,
    /// 429s sent with `Retry-After`, and without.
    with_retry_after: u64,
    without_retry_after: u64,
    /// Requests that came before their client's wait ended, as (arrived,
    /// told at, wait ended), first few kept.
    early: Vec<(Duration, Duration, Duration)>,
    early_count: u64,
}

/// Early requests kept for the verdict's detail, at most.
const EARLY_KEPT: usize = 4;

impl RateLimiter {
    /// Puts a limit in force (`Some`, with its `Retry-After`) or lifts it.
    pub(super) fn set(&self, limit: Option<Option<u64>>) {
        self.0.lock().expect("rate limiter").active = limit;
    }

    /// Sees a request from `credential` arrive at `now` (simulated time
    /// since the run began): notes it if it came early, and returns the
    /// `Retry-After` to answer 429 with (`Some(None)`: 429 without one) or
    /// `None` to let it through.
    pub(super) fn admit(
        &self,
        credential: &str,
        now: Duration,
        grace: Duration,
    ) -> Option<Option<u64>> {
        let mut state = self.0.lock().expect("rate limiter");
        let waiting = state.told.iter().find(|(c, _, _)| c == credential);
        if let Some(&(_, told, until)) = waiting
            && now > told + grace
            && now < until
        {
            state.early_count += 1;
            if state.early.len() < EARLY_KEPT {
                state.early.push((now, told, until));
            }
        }
        let after = state.active?;
        match after {
            Some(seconds) => {
                state.with_retry_after += 1;
                let until = now + Duration::from_secs(seconds);
                state.told.retain(|(c, _, _)| c != credential);
                state.told.push((credential.to_owned(), now, until));
            }
            None => state.without_retry_after += 1,
        }
        Some(after)
    }

    pub(super) fn report(&self) -> super::RateLimited {
        let state = self.0.lock().expect("rate limiter");
        super::RateLimited {
            with_retry_after: state.with_retry_after,
            without_retry_after: state.without_retry_after,
            early: state.early_count,
            first_early: state.early.clone(),
        }
    }
}

/// A count that goes up and down, and the highest it reached.
#[derive(Debug, Default)]
pub(super) struct Gauge {
    current: AtomicU64,
    peak: AtomicU64,
}

impl Gauge {
    /// Counts one in until the guard drops (also when a crash drops the
    /// task holding it).
    pub(super) fn enter(&self) -> GaugeGuard<'_> {
        self.open();
        GaugeGuard(self)
    }

    /// Counts one in, until [`Gauge::close`].
    pub(super) fn open(&self) {
        let now = self.current.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    /// Counts one out.
    pub(super) fn close(&self) {
        self.current.fetch_sub(1, Ordering::Relaxed);
    }

    pub(super) fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

pub(super) struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Puts every server of the topology on its own host, in file order,
/// serving the workload's transport. With an attacker, each also serves its
/// authenticated HTTP endpoint: the same handler and store behind the kit's
/// real router.
pub(super) fn install_servers(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    stores: &Stores,
    seed: u64,
) -> Probes {
    let attacked = scenario.attacker.map(|a| a.no_auth);
    let topology = &scenario.topology;
    let mut probes = Vec::new();
    for (_, server) in topology.servers() {
        let probe = Arc::new(Probe::default());
        probes.push(probe.clone());
        let http = match scenario.workload.transport {
            Transport::Tcp => None,
            Transport::Http(revision) => Some(HttpServing {
                revision,
                seed,
                allowed_hosts: vec![server.name.clone(), proxy_name(topology)],
                incarnations: Arc::default(),
                // Client, proxy and server: up to two links each way.
                grace: (scenario.latency_max + scenario.tick) * 4,
            }),
        };
        let software = Software {
            host: server.name.clone(),
            attacked,
            probe,
            http,
        };
        let stores = stores.clone();
        match server.kind {
            ServerKind::User => sim.host(server.name.as_str(), move || {
                let handler = UserServer::new(stores.users.clone());
                software.clone().run(handler, &user_server::SPEC)
            }),
            ServerKind::Payment => sim.host(server.name.as_str(), move || {
                let handler = PaymentServer::new(stores.ledger.clone());
                software.clone().run(handler, &payment_server::SPEC)
            }),
        }
    }
    Probes(probes)
}

/// What a server host runs each time it (re)starts, but for its handler.
#[derive(Clone)]
struct Software {
    host: String,
    /// With an attacker: whether its endpoint is open (`no_auth`).
    attacked: Option<bool>,
    probe: Arc<Probe>,
    /// Serve the workload over HTTP, not newline TCP.
    http: Option<HttpServing>,
}

impl Software {
    /// Starts the attacker's endpoint now, as the host (re)starts, and
    /// returns the workload's server loop.
    fn run<S: ServerHandler + Clone>(
        self,
        handler: S,
        spec: &'static mcp_server_kit::ServerSpec,
    ) -> impl Future<Output = turmoil::Result> + use<S> {
        if let Some(no_auth) = self.attacked {
            attacker::spawn_endpoint(handler.clone(), spec, &self.host, no_auth);
        }
        async move {
            match self.http {
                Some(http) => http.serve(handler, spec, self.host, self.probe).await,
                None => {
                    let instrumented = Instrumented {
                        inner: handler,
                        probe: self.probe.clone(),
                    };
                    serve(instrumented, self.probe).await
                }
            }
        }
    }
}

/// The attacker host, if the scenario has one; its log fills as it probes.
pub(super) fn install_attacker(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    dataset: &Dataset,
) -> Arc<Mutex<attacker::AttackLog>> {
    let log = Arc::new(Mutex::new(attacker::AttackLog::default()));
    if let Some(settings) = scenario.attacker {
        let topology = &scenario.topology;
        let name = |kind| topology.name(Host::Server(topology.first_of(kind)));
        let (user, payment) = (name(ServerKind::User), name(ServerKind::Payment));
        let victim = dataset.users.first();
        let probes = attacker::matrix(
            &attacker::Attacked {
                user: &user,
                payment: &payment,
            },
            victim.map_or("no-such-user", |u| u.id.as_str()),
            victim.map_or("nobody@example.com", |u| u.email.as_str()),
        );
        let log = log.clone();
        sim.client("attacker", async move {
            attacker::run(probes.clone(), settings.every, settings.until, log).await
        });
    }
    log
}

/// Where clients reach each server (and the model host): its own host, or
/// the proxy in front of it when a toxic names it.
#[derive(Debug, Clone)]
pub(super) struct Routes {
    /// The proxied hosts, in the order of their proxy ports.
    proxied: Vec<Host>,
    pub(super) toxics: Toxics,
}

impl Routes {
    /// The host and port that reach `host` (a server or the model host).
    pub(super) fn to(&self, host: Host) -> (Host, u16) {
        match self.proxied.iter().position(|h| *h == host) {
            Some(i) => (Host::Proxy, proxy::PROXY_PORT_BASE + i as u16),
            None => (host, PORT),
        }
    }

    pub(super) fn is_proxied(&self, host: Host) -> bool {
        self.proxied.contains(&host)
    }
}

/// Adds the proxy host when any fault is a toxic. Proxied hosts take proxy
/// ports in the order of their names.
pub(super) fn install_proxy(sim: &mut turmoil::Sim<'_>, scenario: &Scenario, seed: u64) -> Routes {
    let topology = &scenario.topology;
    let mut proxied: Vec<Host> = Vec::new();
    for host in scenario.faults.iter().filter_map(|f| f.kind.toxic_target()) {
        if !proxied.contains(&host) {
            proxied.push(host);
        }
    }
    proxied.sort_by(|a, b| topology.name(*a).cmp(&topology.name(*b)));
    let toxics = Toxics::default();
    if !proxied.is_empty() {
        let servers: Vec<(Host, String, u16)> = proxied
            .iter()
            .map(|host| (*host, topology.name(*host).into_owned(), PORT))
            .collect();
        let toxics = toxics.clone();
        sim.host(proxy_name(topology).as_str(), move || {
            proxy::run(servers.clone(), toxics.clone(), seed)
        });
    }
    Routes { proxied, toxics }
}

fn proxy_name(topology: &Topology) -> String {
    topology.name(Host::Proxy).into_owned()
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
        // A slow backend behind a live process: the handshake and tool
        // listing stay quick, tool calls are late.
        if matches!(request, ClientRequest::CallToolRequest(_)) {
            self.probe.stall().await;
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
