//! A Toxiproxy-style proxy host inside the simulation, between the client
//! and a server, for the faults turmoil's links cannot make: per-connection
//! latency with jitter, bandwidth limits, sliced writes, slow closes,
//! stalls, resets, data limits and silent drops. Seeded, so a run replays.

use std::{
    net::{IpAddr, Ipv4Addr},
    ops::ControlFlow,
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{
    fault::{Stream, Toxic, ToxicKind},
    topology::Host,
};

/// The proxy listens on `PROXY_PORT_BASE + n` for the n-th server.
pub(crate) const PROXY_PORT_BASE: u16 = 9100;
/// Largest chunk the proxy reads at once.
const CHUNK_BYTES: usize = 16 * 1024;

/// A toxic in force, with the id of the fault that put it there.
type Active = (usize, Toxic<Host>);

/// The toxics in force, shared between the fault loop and the proxy host.
#[derive(Debug, Clone, Default)]
pub(crate) struct Toxics {
    active: Arc<Mutex<Vec<Active>>>,
}

impl Toxics {
    /// Puts toxic number `id` in force.
    pub(crate) fn add(&self, id: usize, toxic: Toxic<Host>) {
        self.active.lock().expect("toxics").push((id, toxic));
    }

    /// Takes toxic number `id` out of force.
    pub(crate) fn remove(&self, id: usize) {
        self.active
            .lock()
            .expect("toxics")
            .retain(|(i, _)| *i != id);
    }

    fn current(&self, target: Host, stream: Stream) -> Vec<Active> {
        self.active
            .lock()
            .expect("toxics")
            .iter()
            .filter(|(_, t)| t.server == target && t.stream == stream)
            .cloned()
            .collect()
    }
}

/// The proxy host's software: one listener per proxied host (a server or
/// the model host), given as (the host, its name, its port).
pub(crate) async fn run(
    servers: Vec<(Host, String, u16)>,
    toxics: Toxics,
    seed: u64,
) -> turmoil::Result {
    let mut listeners = Vec::new();
    for (index, (server, host, port)) in servers.into_iter().enumerate() {
        let listen_port = PROXY_PORT_BASE + index as u16;
        let listener =
            turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), listen_port))
                .await?;
        listeners.push((server, host, port, listener));
    }
    // One RNG per proxy: connections draw their toxicity from it in accept
    // order, which the simulation makes deterministic.
    let rng = Arc::new(Mutex::new(SmallRng::seed_from_u64(seed ^ 0x0070_726f_7879)));
    let mut tasks = Vec::new();
    for (server, host, port, listener) in listeners {
        let (toxics, rng) = (toxics.clone(), rng.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(upstream) = turmoil::net::TcpStream::connect((host.as_str(), port)).await
                else {
                    continue; // the client sees its connection close
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = upstream.into_split();
                let up_rng = SmallRng::seed_from_u64(rng.lock().expect("rng").random());
                let down_rng = SmallRng::seed_from_u64(rng.lock().expect("rng").random());
                let up = pump(
                    client_read,
                    server_write,
                    server,
                    Stream::Upstream,
                    toxics.clone(),
                    up_rng,
                );
                let down = pump(
                    server_read,
                    client_write,
                    server,
                    Stream::Downstream,
                    toxics.clone(),
                    down_rng,
                );
                tokio::spawn(async move {
                    // Either direction ending ends the connection, as a socket would.
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                    }
                });
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

/// Copies one direction of a connection through the toxics in force.
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut from: R,
    to: W,
    server: Host,
    stream: Stream,
    toxics: Toxics,
    rng: SmallRng,
) {
    let mut pipe = Pipe {
        to,
        server,
        stream,
        toxics,
        rng,
        sent: 0,
        decided: Vec::new(),
    };
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return pipe.close().await,
            Ok(n) => {
                if pipe.forward(&buf[..n]).await.is_break() {
                    return;
                }
            }
        }
    }
}

/// One direction of a proxied connection, past its reading end.
struct Pipe<W> {
    to: W,
    server: Host,
    stream: Stream,
    toxics: Toxics,
    rng: SmallRng,
    /// Bytes forwarded so far.
    sent: u64,
    /// Per connection, each toxic applies with probability `toxicity`,
    /// decided once, the first time the toxic is seen: (toxic id, applies).
    decided: Vec<(usize, bool)>,
}

impl<W: AsyncWrite + Unpin> Pipe<W> {
    /// The reading end closed: close the writing end, slowly if a
    /// `slow_close` is in force.
    async fn close(mut self) {
        for (_, toxic) in self.toxics.current(self.server, self.stream) {
            if let ToxicKind::SlowClose { delay } = toxic.kind {
                tokio::time::sleep(delay).await;
            }
        }
        let _ = self.to.shutdown().await;
    }

    /// Forwards one chunk through the toxics that apply to this connection;
    /// `Break` when a toxic or the peer ends the connection.
    async fn forward(&mut self, chunk: &[u8]) -> ControlFlow<()> {
        let applying = self.applying();
        let mut pieces: Vec<&[u8]> = vec![chunk];
        for kind in &applying {
            match *kind {
                ToxicKind::Latency { latency, jitter } => {
                    tokio::time::sleep(self.latency(latency, jitter)).await;
                }
                ToxicKind::Bandwidth { rate_kbps } => {
                    let micros = (chunk.len() as u64 * 8_000) / rate_kbps.max(1);
                    tokio::time::sleep(Duration::from_micros(micros)).await;
                }
                ToxicKind::Slicer {
                    average_size,
                    size_variation,
                    ..
                } => pieces = self.slice(chunk, average_size, size_variation),
                ToxicKind::Timeout { timeout } => {
                    if timeout.is_zero() {
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep(timeout).await;
                    return ControlFlow::Break(());
                }
                ToxicKind::ResetPeer { timeout } => {
                    tokio::time::sleep(timeout).await;
                    return ControlFlow::Break(());
                }
                ToxicKind::LimitData { bytes } if self.sent + chunk.len() as u64 > bytes => {
                    let allowed = usize::try_from(bytes.saturating_sub(self.sent)).unwrap_or(0);
                    let _ = self.to.write_all(&chunk[..allowed]).await;
                    return ControlFlow::Break(());
                }
                ToxicKind::Drop {} => std::future::pending::<()>().await,
                ToxicKind::LimitData { .. } | ToxicKind::SlowClose { .. } => {}
            }
        }
        self.write(&pieces, slice_delay(&applying)).await?;
        self.sent += chunk.len() as u64;
        ControlFlow::Continue(())
    }

    /// The toxics in force that apply to this connection, deciding (once
    /// per toxic, in the order they are in force) those seen for the first
    /// time.
    fn applying(&mut self) -> Vec<ToxicKind> {
        let mut applying = Vec::new();
        for (id, toxic) in self.toxics.current(self.server, self.stream) {
            let applies = match self.decided.iter().find(|(i, _)| *i == id) {
                Some((_, applies)) => *applies,
                None => {
                    let applies = self.rng.random_bool(toxic.toxicity);
                    self.decided.push((id, applies));
                    applies
                }
            };
            if applies {
                applying.push(toxic.kind);
            }
        }
        applying
    }

    /// A latency toxic's pause: `latency` give or take `jitter`.
    fn latency(&mut self, latency: Duration, jitter: Duration) -> Duration {
        let jitter_ms = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter_ms == 0 {
            0
        } else {
            self.rng.random_range(0..=2 * jitter_ms)
        };
        (latency + Duration::from_millis(extra)).saturating_sub(jitter)
    }

    /// A slicer toxic's pieces of `chunk`: sizes drawn around `average_size`.
    fn slice<'a>(
        &mut self,
        chunk: &'a [u8],
        average_size: usize,
        size_variation: usize,
    ) -> Vec<&'a [u8]> {
        let mut sliced = Vec::new();
        let mut rest = chunk;
        while !rest.is_empty() {
            let low = average_size.saturating_sub(size_variation).max(1);
            let high = (average_size + size_variation).max(low);
            let size = self.rng.random_range(low..=high).min(rest.len());
            let (piece, tail) = rest.split_at(size);
            sliced.push(piece);
            rest = tail;
        }
        sliced
    }

    /// Writes the pieces in turn, `delay` apart if a slicer set one;
    /// `Break` when the peer is gone.
    async fn write(&mut self, pieces: &[&[u8]], delay: Option<Duration>) -> ControlFlow<()> {
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0
                && let Some(delay) = delay
            {
                tokio::time::sleep(delay).await;
            }
            if self.to.write_all(piece).await.is_err() {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// The pause between a slicer's pieces, if a slicer applies.
fn slice_delay(applying: &[ToxicKind]) -> Option<Duration> {
    applying.iter().find_map(|kind| match kind {
        ToxicKind::Slicer { delay, .. } => Some(*delay),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    //! The pump with scripted streams (`tokio_test::io`): every byte read is
    //! written once, in order, whatever pieces the reads and writes come
    //! in; the toxics that cut a connection cut it exactly where they say.
    //! The pump needs no cancel-safety of its own: it is dropped only when
    //! its connection ends, and nothing it holds outlives the connection.

    use proptest::prelude::*;
    use rand::SeedableRng;
    use tokio_test::io::Builder;

    use super::*;

    fn server() -> Host {
        Host::Server(crate::topology::ServerId(0))
    }

    /// Toxics with `kinds` in force on the test server's downstream.
    fn toxics(kinds: &[ToxicKind]) -> Toxics {
        let toxics = Toxics::default();
        for (id, kind) in kinds.iter().enumerate() {
            toxics.add(
                id,
                Toxic {
                    server: server(),
                    stream: Stream::Downstream,
                    toxicity: 1.0,
                    kind: *kind,
                },
            );
        }
        toxics
    }

    /// Pumps `reads` (one scripted read each) into a writer that accepts
    /// exactly `expected`, in pieces of the sizes in `accepts` (cycled),
    /// and then sees the pump close it.
    fn run(reads: &[&[u8]], expected: &[u8], accepts: &[usize], kinds: &[ToxicKind]) {
        let mut from = Builder::new();
        for read in reads {
            from.read(read);
        }
        let mut to = Builder::new();
        let mut rest = expected;
        for size in accepts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at((*size).clamp(1, rest.len()));
            to.write(piece);
            rest = tail;
        }
        let pump = pump(
            from.build(),
            to.build(),
            server(),
            Stream::Downstream,
            toxics(kinds),
            SmallRng::seed_from_u64(7),
        );
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(pump);
    }

    fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            if cut > start {
                out.push(bytes[start..cut].to_vec());
                start = cut;
            }
        }
        out
    }

    proptest! {
        /// Reads in any pieces, writes accepted in any pieces, a slicer
        /// or a latency toxic or none: every byte arrives once, in order.
        #[test]
        fn every_byte_is_forwarded_once_in_order(
            bytes in proptest::collection::vec(any::<u8>(), 1..600),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
            accepts in proptest::collection::vec(1usize..50, 1..6),
            toxic in 0u8..3,
        ) {
            let kinds = match toxic {
                0 => vec![],
                1 => vec![ToxicKind::Slicer {
                    average_size: 7,
                    size_variation: 5,
                    delay: Duration::from_micros(10),
                }],
                _ => vec![ToxicKind::Latency {
                    latency: Duration::from_millis(20),
                    jitter: Duration::from_millis(5),
                }],
            };
            let reads = chunks(&bytes, &cuts);
            let reads: Vec<&[u8]> = reads.iter().map(Vec::as_slice).collect();
            run(&reads, &bytes, &accepts, &kinds);
        }

        /// `limit_data` passes exactly its byte count, then closes (one
        /// read: after the cut nothing more is read).
        #[test]
        fn limit_data_cuts_at_exactly_its_byte_count(
            bytes in proptest::collection::vec(any::<u8>(), 1..300),
            limit in 0u64..400,
        ) {
            let passed = bytes.len().min(usize::try_from(limit).unwrap());
            run(&[&bytes], &bytes[..passed], &[13], &[ToxicKind::LimitData { bytes: limit }]);
        }
    }

    #[test]
    fn a_reset_peer_toxic_forwards_nothing() {
        run(
            &[b"hello"],
            b"",
            &[1],
            &[ToxicKind::ResetPeer {
                timeout: Duration::from_millis(5),
            }],
        );
    }
}
