//! The one fault vocabulary. A [`FaultKind`] is read from a scenario file's
//! `[[faults]]` table and written back by `harness explore` with serde (the
//! table's `kind` is the tag), validated, described in traces and counted in
//! summaries here; the simulator applies and heals it (`sim::world`).
//!
//! It is generic over how hosts are named: `FaultKind<String>` is what a
//! file says, `FaultKind<Host>` what the simulator runs, after
//! [`FaultKind::resolve`] has checked every name against the topology.
//!
//! To add a fault kind: a variant here (with its checks in `validate`, its
//! line in `describe`), and its start and heal in `sim/world.rs`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::topology::{Host, Topology};

/// One `[[faults]]` table: when it starts, how long it lasts, how often it
/// repeats, and what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultEntry<H> {
    pub at_ms: u64,
    /// When it heals; every kind but `bounce` needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    /// Repeat every this many ms (more than `for_ms`) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    /// … starting no later than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    #[serde(flatten)]
    pub kind: FaultKind<H>,
}

/// What a fault does. `H` names hosts: a `String` as written, a [`Host`]
/// once resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind<H> {
    /// Messages between the two hosts are lost, both ways, until healed.
    Partition { between: [H; 2] },
    /// Messages from the first host to the second are lost until healed.
    PartitionOneway { between: [H; 2] },
    /// The host stops; it restarts when the fault heals.
    Crash { host: H },
    /// The host restarts at once: its connections close, its state is lost.
    Bounce { host: H },
    /// Each message on the link may break it (losing what is in flight)
    /// with probability `fail_rate`, until healed.
    LinkFailure { between: [H; 2], fail_rate: f64 },
    /// Messages between the two hosts are held, not lost, and delivered
    /// when the fault heals: delay and reordering.
    Hold { between: [H; 2] },
    /// The server answers every tool call `delay` late (its handler is
    /// wrapped inside the harness; the server itself knows nothing).
    Stall {
        host: H,
        #[serde(rename = "delay_ms", with = "millis")]
        delay: Duration,
    },
    /// Over streamable HTTP the server answers every request with 429 Too
    /// Many Requests, with `Retry-After: retry_after_s` when that is set,
    /// until healed (as a rate limiter in front of it would). The newline
    /// TCP transport has no status to send: there it does nothing, and the
    /// trace says so.
    RateLimit {
        host: H,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
    },
    /// A Toxiproxy-style toxic on the proxy in front of a server.
    Toxic(Toxic<H>),
    /// Messages between the two hosts take between `min` and `max`.
    Latency {
        between: [H; 2],
        #[serde(rename = "latency_min_ms", with = "millis")]
        min: Duration,
        #[serde(rename = "latency_max_ms", with = "millis")]
        max: Duration,
    },
}

/// A toxic: what it does, to which server's traffic, which way, and on what
/// share of connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toxic<H> {
    pub server: H,
    #[serde(default)]
    pub stream: Stream,
    /// Probability that a connection is affected, drawn once per connection.
    #[serde(default = "always")]
    pub toxicity: f64,
    #[serde(flatten)]
    pub kind: ToxicKind,
}

fn always() -> f64 {
    1.0
}

/// Which way through the proxy a toxic acts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client to server.
    Upstream,
    /// Server to client.
    #[default]
    Downstream,
}

/// Toxiproxy's toxics, plus `drop`; the table's `toxic` is the tag.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "toxic", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToxicKind {
    /// Every chunk waits `latency` ± `jitter`.
    Latency {
        #[serde(rename = "latency_ms", with = "millis")]
        latency: Duration,
        #[serde(rename = "jitter_ms", with = "millis", default)]
        jitter: Duration,
    },
    /// At most `rate_kbps` kilobits per second.
    Bandwidth { rate_kbps: u64 },
    /// Writes split into pieces of `average_size` ± `size_variation` bytes,
    /// `delay` apart.
    Slicer {
        average_size: usize,
        #[serde(default)]
        size_variation: usize,
        #[serde(rename = "delay_us", with = "micros", default)]
        delay: Duration,
    },
    /// When the sender closes, wait `delay` before passing the close on.
    SlowClose {
        #[serde(rename = "delay_ms", with = "millis")]
        delay: Duration,
    },
    /// Stop passing data; close after `timeout` (never, if zero).
    Timeout {
        #[serde(rename = "timeout_ms", with = "millis")]
        timeout: Duration,
    },
    /// After `timeout`, cut the connection.
    ResetPeer {
        #[serde(rename = "timeout_ms", with = "millis", default)]
        timeout: Duration,
    },
    /// Close the connection once `bytes` have passed.
    LimitData { bytes: u64 },
    /// Stop passing data and never close: a segment lost for good. (A
    /// struct variant, so that a stray field is refused.)
    Drop {},
}

impl<H> FaultKind<H> {
    /// Whether it is over as soon as it starts (and so takes no `for_ms`).
    pub fn is_instant(&self) -> bool {
        matches!(self, FaultKind::Bounce { .. })
    }

    /// How a run's summary counts it: the file's `kind`, and for a toxic
    /// `proxy` and the toxic's name (`proxy drop`).
    pub fn label(&self) -> String {
        let kind = match self {
            FaultKind::Partition { .. } => "partition",
            FaultKind::PartitionOneway { .. } => "partition_oneway",
            FaultKind::Crash { .. } => "crash",
            FaultKind::Bounce { .. } => "bounce",
            FaultKind::LinkFailure { .. } => "link_failure",
            FaultKind::Hold { .. } => "hold",
            FaultKind::Stall { .. } => "stall",
            FaultKind::RateLimit { .. } => "rate_limit",
            FaultKind::Latency { .. } => "latency",
            FaultKind::Toxic(toxic) => return format!("proxy {}", toxic.kind.name()),
        };
        kind.to_owned()
    }

    /// The two ends of the link it acts on, if it acts on a link.
    pub fn link_mut(&mut self) -> Option<&mut [H; 2]> {
        match self {
            FaultKind::Partition { between }
            | FaultKind::PartitionOneway { between }
            | FaultKind::LinkFailure { between, .. }
            | FaultKind::Hold { between }
            | FaultKind::Latency { between, .. } => Some(between),
            FaultKind::Crash { .. }
            | FaultKind::Bounce { .. }
            | FaultKind::Stall { .. }
            | FaultKind::RateLimit { .. }
            | FaultKind::Toxic(_) => None,
        }
    }

    /// The same fault with every host renamed by `f`; the first error wins.
    pub fn map_hosts<G, E>(self, mut f: impl FnMut(H) -> Result<G, E>) -> Result<FaultKind<G>, E> {
        let mut pair = |[a, b]: [H; 2]| -> Result<[G; 2], E> { Ok([f(a)?, f(b)?]) };
        Ok(match self {
            FaultKind::Partition { between } => FaultKind::Partition {
                between: pair(between)?,
            },
            FaultKind::PartitionOneway { between } => FaultKind::PartitionOneway {
                between: pair(between)?,
            },
            FaultKind::LinkFailure { between, fail_rate } => FaultKind::LinkFailure {
                between: pair(between)?,
                fail_rate,
            },
            FaultKind::Hold { between } => FaultKind::Hold {
                between: pair(between)?,
            },
            FaultKind::Latency { between, min, max } => FaultKind::Latency {
                between: pair(between)?,
                min,
                max,
            },
            FaultKind::Crash { host } => FaultKind::Crash { host: f(host)? },
            FaultKind::Bounce { host } => FaultKind::Bounce { host: f(host)? },
            FaultKind::Stall { host, delay } => FaultKind::Stall {
                host: f(host)?,
                delay,
            },
            FaultKind::RateLimit {
                host,
                retry_after_s,
            } => FaultKind::RateLimit {
                host: f(host)?,
                retry_after_s,
            },
            FaultKind::Toxic(toxic) => FaultKind::Toxic(Toxic {
                server: f(toxic.server)?,
                stream: toxic.stream,
                toxicity: toxic.toxicity,
                kind: toxic.kind,
            }),
        })
    }

    /// Checks the values a type cannot: rates in 0..=1, min ≤ max, sizes.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            FaultKind::LinkFailure { fail_rate, .. } if !(0.0..=1.0).contains(fail_rate) => {
                Err("fail_rate must be between 0 and 1".into())
            }
            FaultKind::Latency { min, max, .. } if min > max => {
                Err("latency_min_ms must not exceed latency_max_ms".into())
            }
            FaultKind::RateLimit {
                retry_after_s: Some(0),
                ..
            } => Err("retry_after_s must be positive (leave it out for no Retry-After)".into()),
            FaultKind::Toxic(toxic) => toxic.validate(),
            _ => Ok(()),
        }
    }
}

impl<H> Toxic<H> {
    fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.toxicity) {
            return Err("toxicity must be between 0 and 1".into());
        }
        match self.kind {
            ToxicKind::Bandwidth { rate_kbps: 0 } => Err("rate_kbps must be positive".into()),
            ToxicKind::Slicer {
                average_size: 0, ..
            } => Err("average_size must be positive".into()),
            _ => Ok(()),
        }
    }
}

impl FaultKind<String> {
    /// Resolves every host name against `topology`: a stall needs a server,
    /// a toxic's `server` a server or the model host, a link two different
    /// hosts.
    pub fn resolve(self, topology: &Topology) -> Result<FaultKind<Host>, String> {
        let mut resolved = self.map_hosts(|name| topology.resolve(&name))?;
        if let Some([a, b]) = resolved.link_mut()
            && a == b
        {
            return Err("between needs two different hosts".into());
        }
        let (target, what, fits) = match &resolved {
            FaultKind::Stall { host, .. } | FaultKind::RateLimit { host, .. } => {
                (*host, "a server", matches!(host, Host::Server(_)))
            }
            FaultKind::Toxic(toxic) if topology.has_model() => (
                toxic.server,
                "a server or the model host",
                matches!(toxic.server, Host::Server(_) | Host::Model),
            ),
            FaultKind::Toxic(toxic) => (
                toxic.server,
                "a server",
                matches!(toxic.server, Host::Server(_)),
            ),
            _ => return Ok(resolved),
        };
        if !fits {
            return Err(format!(
                "{} applies to {what}; {:?} is not one",
                resolved.label(),
                topology.name(target)
            ));
        }
        Ok(resolved)
    }
}

/// What a fault acts on: one host, or the link between two (a run
/// report draws it in that host's or that link's lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Host(Host),
    Link([Host; 2]),
}

impl FaultKind<Host> {
    /// The host or link it acts on. A toxic acts on the proxy's link to
    /// its server.
    pub fn target(&self) -> Target {
        match self {
            FaultKind::Partition { between }
            | FaultKind::PartitionOneway { between }
            | FaultKind::LinkFailure { between, .. }
            | FaultKind::Hold { between }
            | FaultKind::Latency { between, .. } => Target::Link(*between),
            FaultKind::Crash { host }
            | FaultKind::Bounce { host }
            | FaultKind::Stall { host, .. }
            | FaultKind::RateLimit { host, .. } => Target::Host(*host),
            FaultKind::Toxic(toxic) => Target::Link([Host::Proxy, toxic.server]),
        }
    }

    /// The host a toxic is on (a server, or the model host), if this is a
    /// toxic.
    pub fn toxic_target(&self) -> Option<Host> {
        match self {
            FaultKind::Toxic(toxic) => Some(toxic.server),
            _ => None,
        }
    }

    /// What the trace says it does.
    pub fn describe(&self, topology: &Topology) -> String {
        let name = |h: &Host| topology.name(*h);
        let link = |[a, b]: &[Host; 2]| format!("{} <-> {}", name(a), name(b));
        match self {
            FaultKind::Partition { between } => format!("partition {}", link(between)),
            FaultKind::PartitionOneway {
                between: [from, to],
            } => {
                format!("partition {} -> {}", name(from), name(to))
            }
            FaultKind::Crash { host } => format!("crash {}", name(host)),
            FaultKind::Bounce { host } => format!("bounce {}", name(host)),
            FaultKind::LinkFailure { between, fail_rate } => {
                format!("link failure {} at {fail_rate}", link(between))
            }
            FaultKind::Hold { between } => format!("hold {}", link(between)),
            FaultKind::Latency { between, min, max } => format!(
                "latency {} {}..{} ms",
                link(between),
                min.as_millis(),
                max.as_millis()
            ),
            FaultKind::Stall { host, delay } => {
                format!("stall {} by {} ms", name(host), delay.as_millis())
            }
            FaultKind::RateLimit {
                host,
                retry_after_s: Some(after),
            } => format!(
                "rate limit {}: 429, Retry-After {after} s (http only)",
                name(host)
            ),
            FaultKind::RateLimit { host, .. } => {
                format!("rate limit {}: 429, no Retry-After (http only)", name(host))
            }
            FaultKind::Toxic(toxic) => format!(
                "toxic {} on {} {}, toxicity {}",
                toxic.kind.describe(),
                name(&toxic.server),
                toxic.stream.name(),
                toxic.toxicity
            ),
        }
    }
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

impl ToxicKind {
    /// Its name in a scenario file's `toxic` field.
    pub fn name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::LimitData { .. } => "limit_data",
            ToxicKind::Drop {} => "drop",
        }
    }

    fn describe(&self) -> String {
        let ms = |d: &Duration| d.as_millis();
        match self {
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
            ToxicKind::Drop {} => "drop".to_owned(),
        }
    }
}

/// A `Duration` written as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A `Duration` written as whole microseconds.
mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FaultEntry<String>, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn every_kind_round_trips_through_toml() {
        let tables = [
            "at_ms = 1\nfor_ms = 2\nkind = \"partition\"\nbetween = [\"client\", \"user\"]\n",
            "at_ms = 1\nfor_ms = 2\nkind = \"partition_oneway\"\nbetween = [\"user\", \"client\"]\n",
            "at_ms = 1\nfor_ms = 2\nkind = \"crash\"\nhost = \"payment\"\n",
            "at_ms = 1\nkind = \"bounce\"\nhost = \"user\"\n",
            "at_ms = 1\nfor_ms = 2\nevery_ms = 5\nuntil_ms = 20\nkind = \"link_failure\"\nbetween = [\"client\", \"user\"]\nfail_rate = 0.02\n",
            "at_ms = 1\nfor_ms = 2\nkind = \"hold\"\nbetween = [\"client\", \"user\"]\n",
            "at_ms = 1\nfor_ms = 2\nkind = \"stall\"\nhost = \"user\"\ndelay_ms = 30\n",
            "at_ms = 1\nfor_ms = 2\nkind = \"latency\"\nbetween = [\"client\", \"user\"]\nlatency_min_ms = 3\nlatency_max_ms = 4\n",
            "at_ms = 1\nfor_ms = 2\nkind = \"toxic\"\nserver = \"user\"\nstream = \"upstream\"\ntoxicity = 0.5\ntoxic = \"slicer\"\naverage_size = 8\nsize_variation = 2\ndelay_us = 10\n",
            "at_ms = 1\nfor_ms = 2\nkind = \"toxic\"\nserver = \"user\"\nstream = \"downstream\"\ntoxicity = 1.0\ntoxic = \"drop\"\n",
        ];
        for table in tables {
            let entry = parse(table).unwrap_or_else(|e| panic!("{table}: {e}"));
            let written = toml::to_string(&entry).unwrap();
            assert_eq!(parse(&written).unwrap(), entry, "{written}");
        }
    }

    #[test]
    fn defaults_and_refusals() {
        let toxic = parse(
            "at_ms = 1\nfor_ms = 2\nkind = \"toxic\"\nserver = \"user\"\ntoxic = \"reset_peer\"\n",
        )
        .unwrap();
        let FaultKind::Toxic(toxic) = toxic.kind else {
            panic!("a toxic")
        };
        assert_eq!(toxic.stream, Stream::Downstream);
        assert_eq!(toxic.toxicity, 1.0);
        assert_eq!(
            toxic.kind,
            ToxicKind::ResetPeer {
                timeout: Duration::ZERO
            }
        );
        let cases = [
            (
                "at_ms = 1\nkind = \"explode\"\n",
                "unknown variant `explode`",
            ),
            ("at_ms = 1\nkind = \"crash\"\n", "missing field `host`"),
            (
                "at_ms = 1\nkind = \"crash\"\nhost = \"user\"\ncolour = 1\n",
                "unknown field `colour`",
            ),
            (
                "at_ms = 1\nkind = \"toxic\"\nserver = \"user\"\ntoxic = \"drop\"\nbytes = 3\n",
                "unknown field `bytes`",
            ),
            (
                "at_ms = 1\nkind = \"toxic\"\nserver = \"user\"\ntoxic = \"latency\"\nlatency_ms = 3\nbytes = 3\n",
                "unknown field `bytes`",
            ),
            (
                "at_ms = 1\nkind = \"toxic\"\nserver = \"user\"\ntoxic = \"gremlin\"\n",
                "unknown variant `gremlin`",
            ),
        ];
        for (table, expected) in cases {
            let error = parse(table).unwrap_err();
            assert!(error.contains(expected), "{table}: {error}");
        }
    }

    #[test]
    fn resolving_checks_every_host() {
        let topology = Topology::new(Topology::default_servers(), 1).unwrap();
        let resolve = |table: &str| parse(table).unwrap().kind.resolve(&topology);
        assert_eq!(
            resolve("at_ms = 1\nkind = \"bounce\"\nhost = \"db\"\n").unwrap_err(),
            "unknown host \"db\"; hosts are client, user, payment"
        );
        assert_eq!(
            resolve("at_ms = 1\nkind = \"hold\"\nbetween = [\"user\", \"user\"]\n").unwrap_err(),
            "between needs two different hosts"
        );
        assert_eq!(
            resolve("at_ms = 1\nkind = \"toxic\"\nserver = \"client\"\ntoxic = \"drop\"\n")
                .unwrap_err(),
            "proxy drop applies to a server; \"client\" is not one"
        );
        let stall =
            resolve("at_ms = 1\nkind = \"stall\"\nhost = \"payment\"\ndelay_ms = 5\n").unwrap();
        assert_eq!(stall.describe(&topology), "stall payment by 5 ms");
        assert_eq!(
            resolve("at_ms = 1\nkind = \"rate_limit\"\nhost = \"client\"\n").unwrap_err(),
            "rate_limit applies to a server; \"client\" is not one"
        );
        let limit = "at_ms = 1\nfor_ms = 5\nkind = \"rate_limit\"\nhost = \"user\"\n";
        let told = format!("{limit}retry_after_s = 2\n");
        assert_eq!(
            resolve(limit).unwrap().describe(&topology),
            "rate limit user: 429, no Retry-After (http only)"
        );
        assert_eq!(
            resolve(&told).unwrap().describe(&topology),
            "rate limit user: 429, Retry-After 2 s (http only)"
        );
        let zero = parse(&format!("{limit}retry_after_s = 0\n")).unwrap();
        assert!(zero.kind.validate().unwrap_err().contains("positive"));
    }
}
