//! Servers as data: which servers a scenario runs, and the typed hosts of
//! its simulation. A scenario names its servers (`[[servers]]`); faults and
//! toxics name hosts, and the names are resolved here, once, into [`Host`]
//! values. Past this module nothing compares host names.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Most servers a scenario may run.
pub(crate) const SERVERS_MAX: usize = 8;
/// Most client hosts a scenario may have.
pub(crate) const CLIENTS_MAX: u32 = 8;

/// Which reference server a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// The user directory: `getUserIdByEmail`.
    User,
    /// The payment ledger: `getTransactionsUsingUserId`.
    Payment,
}

impl ServerKind {
    /// Its name in a scenario file.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::User => "user",
            ServerKind::Payment => "payment",
        }
    }
}

/// One `[[servers]]` entry: a host of its own, running one reference server
/// over the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// The host's name: what faults, toxics and the orchestrator call it.
    pub name: String,
    pub kind: ServerKind,
}

/// A server's position in the scenario's `[[servers]]` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(pub(crate) usize);

impl ServerId {
    /// Its position in [`Topology::servers`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// A host of the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    /// Client host `n` (0-based): `client`, `client2`, …, each running its
    /// own orchestrator.
    Client(u32),
    Server(ServerId),
    /// The Toxiproxy-style host in front of servers with toxics.
    Proxy,
    /// The simulated model host the LLM planner asks (`[planner] kind =
    /// "llm"`).
    Model,
}

/// The hosts of a scenario: its servers, in file order, and its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    servers: Vec<ServerSpec>,
    clients: u32,
    /// Whether the `model` host runs.
    model: bool,
}

impl Topology {
    /// The servers every scenario without `[[servers]]` runs: `user` and
    /// `payment`, in that order.
    pub fn default_servers() -> Vec<ServerSpec> {
        [ServerKind::User, ServerKind::Payment]
            .into_iter()
            .map(|kind| ServerSpec {
                name: kind.name().to_owned(),
                kind,
            })
            .collect()
    }

    /// Checks the server list: 1 to [`SERVERS_MAX`] servers with distinct
    /// names that no other host has, at least one of each kind, and 1 to
    /// [`CLIENTS_MAX`] clients.
    pub fn new(servers: Vec<ServerSpec>, clients: u32) -> Result<Self, String> {
        if !(1..=CLIENTS_MAX).contains(&clients) {
            return Err(format!("clients must be between 1 and {CLIENTS_MAX}"));
        }
        if servers.len() > SERVERS_MAX {
            return Err(format!(
                "at most {SERVERS_MAX} servers, got {}",
                servers.len()
            ));
        }
        for (i, server) in servers.iter().enumerate() {
            check_server_name(&server.name)?;
            if servers[..i].iter().any(|s| s.name == server.name) {
                return Err(format!("two servers are called {:?}", server.name));
            }
        }
        for kind in [ServerKind::User, ServerKind::Payment] {
            if !servers.iter().any(|s| s.kind == kind) {
                return Err(format!(
                    "no server has kind = \"{}\"; questions need one of each kind",
                    kind.name()
                ));
            }
        }
        Ok(Self {
            servers,
            clients,
            model: false,
        })
    }

    /// The same hosts and the `model` host, which the LLM planner asks.
    pub fn with_model(mut self) -> Self {
        self.model = true;
        self
    }

    /// Whether the `model` host runs.
    pub fn has_model(&self) -> bool {
        self.model
    }

    /// The servers, in file order.
    pub fn servers(&self) -> impl ExactSizeIterator<Item = (ServerId, &ServerSpec)> {
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| (ServerId(i), s))
    }

    pub fn server(&self, id: ServerId) -> &ServerSpec {
        &self.servers[id.0]
    }

    /// How many client hosts run.
    pub fn clients(&self) -> u32 {
        self.clients
    }

    /// The client hosts, in order.
    pub fn client_hosts(&self) -> impl Iterator<Item = Host> {
        (0..self.clients).map(Host::Client)
    }

    /// The first server of `kind` (every topology has one).
    pub fn first_of(&self, kind: ServerKind) -> ServerId {
        let index = self
            .servers
            .iter()
            .position(|s| s.kind == kind)
            .expect("a topology has a server of each kind");
        ServerId(index)
    }

    /// A host's name in the simulation and in traces.
    pub fn name(&self, host: Host) -> Cow<'_, str> {
        match host {
            Host::Client(0) => Cow::Borrowed("client"),
            Host::Client(n) => Cow::Owned(format!("client{}", n + 1)),
            Host::Server(id) => Cow::Borrowed(&self.servers[id.0].name),
            Host::Proxy => Cow::Borrowed("proxy"),
            Host::Model => Cow::Borrowed("model"),
        }
    }

    /// The hosts a scenario file can name: clients, servers, and the model
    /// host when it runs.
    fn named_hosts(&self) -> impl Iterator<Item = Host> + '_ {
        self.client_hosts()
            .chain(self.servers().map(|(id, _)| Host::Server(id)))
            .chain(self.model.then_some(Host::Model))
    }

    /// The host a scenario file names. Clients, servers and the model host
    /// can be named; the proxy is the harness's own and cannot.
    pub fn resolve(&self, name: &str) -> Result<Host, String> {
        self.named_hosts()
            .find(|host| self.name(*host) == name)
            .ok_or_else(|| {
                let known: Vec<_> = self
                    .named_hosts()
                    .map(|h| self.name(h).into_owned())
                    .collect();
                format!("unknown host {name:?}; hosts are {}", known.join(", "))
            })
    }
}

/// A server's name must be a usable host name that no harness host has.
fn check_server_name(name: &str) -> Result<(), String> {
    let usable = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !usable {
        return Err(format!(
            "server name {name:?} must be 1 to 63 lowercase letters, digits or '-'"
        ));
    }
    let reserved = ["proxy", "attacker", "model"].contains(&name) || name.starts_with("client");
    if reserved {
        return Err(format!(
            "server name {name:?} is taken by the harness (client…, proxy, attacker, model)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kind: ServerKind) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            kind,
        }
    }

    #[test]
    fn names_resolve_to_typed_hosts_and_back() {
        let topology = Topology::new(Topology::default_servers(), 2).unwrap();
        for name in ["client", "client2", "user", "payment"] {
            let host = topology.resolve(name).unwrap();
            assert_eq!(topology.name(host), name);
        }
        assert_eq!(
            topology.resolve("db").unwrap_err(),
            "unknown host \"db\"; hosts are client, client2, user, payment"
        );
        assert_eq!(topology.first_of(ServerKind::Payment), ServerId(1));
    }

    #[test]
    fn bad_server_lists_are_refused_with_the_reason() {
        let user = || spec("directory", ServerKind::User);
        let cases = [
            (vec![user()], "no server has kind = \"payment\""),
            (
                vec![user(), spec("directory", ServerKind::Payment)],
                "two servers are called \"directory\"",
            ),
            (
                vec![user(), spec("proxy", ServerKind::Payment)],
                "server name \"proxy\" is taken by the harness",
            ),
            (
                vec![user(), spec("Ledger", ServerKind::Payment)],
                "must be 1 to 63 lowercase letters",
            ),
        ];
        for (servers, expected) in cases {
            let error = Topology::new(servers, 1).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
