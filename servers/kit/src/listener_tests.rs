//! The accept loop over in-memory connections, on a paused clock: every
//! timeout elapses in virtual time, exactly, and nothing really sleeps.

use std::io;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, DuplexStream},
    sync::mpsc,
    task::JoinHandle,
};

use super::*;

const HEADER_READ: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(10);
/// How long `/slow` takes: longer than both timeouts.
const SLOW: Duration = Duration::from_secs(300);
/// How long `/brief` takes: shorter than the shutdown drain.
const BRIEF: Duration = Duration::from_secs(1);

/// Connections handed to the loop through a channel.
struct Pipes(mpsc::Receiver<io::Result<DuplexStream>>);

impl Accept for Pipes {
    type Stream = DuplexStream;

    async fn accept(&mut self) -> io::Result<DuplexStream> {
        self.0
            .recv()
            .await
            .unwrap_or_else(|| Err(io::Error::other("no more connections")))
    }
}

fn limits(http_connections_max: usize) -> Limits {
    Limits {
        http_connections_max,
        http_header_read_timeout: HEADER_READ,
        http_idle_timeout: IDLE,
        ..Limits::DEFAULT
    }
}

fn router() -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(SLOW).await;
                "slow"
            }),
        )
        .route(
            "/brief",
            get(|| async {
                tokio::time::sleep(BRIEF).await;
                "brief"
            }),
        )
}

/// The loop under test, and the way to connect to it.
struct Server {
    accepted: mpsc::Sender<io::Result<DuplexStream>>,
    shutdown: CancellationToken,
    serving: JoinHandle<io::Result<()>>,
}

impl Server {
    fn start(limits: Limits, date: DateHeader) -> Self {
        let (accepted, pending) = mpsc::channel(4);
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(serve_http_on(
            Pipes(pending),
            router(),
            limits,
            shutdown.clone(),
            date,
        ));
        Self {
            accepted,
            shutdown,
            serving,
        }
    }

    async fn connect(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.accepted.send(Ok(server)).await.expect("serving");
        client
    }

    async fn fail_accept(&self, kind: io::ErrorKind) {
        let error = io::Error::from(kind);
        self.accepted.send(Err(error)).await.expect("serving");
    }
}

async fn send(client: &mut DuplexStream, bytes: &str) {
    client.write_all(bytes.as_bytes()).await.expect("write");
}

/// Sends `GET path` and reads its response: (head, body).
async fn get(client: &mut DuplexStream, path: &str) -> (String, String) {
    send(
        client,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"),
    )
    .await;
    read_response(client).await
}

async fn read_response(client: &mut DuplexStream) -> (String, String) {
    let mut bytes = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")?
                        .parse()
                        .ok()
                })
                .expect("a content-length");
            if body.len() >= length {
                return (head.to_owned(), body.to_owned());
            }
        }
        let mut chunk = [0; 1024];
        let n = client.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed mid-response: {text:?}");
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Longer than any test waits for anything, in virtual time.
const NEVER: Duration = Duration::from_secs(3600);

/// How long until the server closes `client` (nothing may arrive first).
async fn closed_after(client: &mut DuplexStream) -> Duration {
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(NEVER, client.read_to_end(&mut rest))
        .await
        .unwrap_or_else(|_| panic!("still open after {NEVER:?}"));
    assert!(read.is_ok() && rest.is_empty(), "{read:?} {rest:?}");
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn half_a_request_head_is_cut_off_at_the_header_read_timeout() {
    let server = Server::start(limits(8), DateHeader::Omitted);
    let mut half = server.connect().await;
    send(&mut half, "GET / HTTP/1.1\r\nHost: te").await;
    let mut silent = server.connect().await;
    assert_eq!(closed_after(&mut half).await, HEADER_READ);
    // Accepted at the same instant, it was closed with the other.
    assert_eq!(
        closed_after(&mut silent).await,
        Duration::ZERO,
        "a connection that sends nothing has the same time from its accept"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_kept_alive_connection_is_closed_at_the_idle_timeout() {
    let server = Server::start(limits(8), DateHeader::Omitted);
    let mut client = server.connect().await;
    assert_eq!(get(&mut client, "/").await.1, "ok");
    // Idle is not a request head: the header-read timeout does not apply.
    assert_eq!(closed_after(&mut client).await, IDLE);
}

#[tokio::test(start_paused = true)]
async fn a_head_after_idling_is_timed_from_its_first_byte() {
    let server = Server::start(limits(8), DateHeader::Omitted);
    let mut client = server.connect().await;
    assert_eq!(get(&mut client, "/").await.1, "ok");
    tokio::time::sleep(IDLE / 2).await;
    assert_eq!(get(&mut client, "/").await.1, "ok", "kept alive");
    tokio::time::sleep(IDLE / 2).await;
    send(&mut client, "GET / HT").await;
    assert_eq!(closed_after(&mut client).await, HEADER_READ);
}

#[tokio::test(start_paused = true)]
async fn a_request_in_progress_is_never_timed_out() {
    let server = Server::start(limits(8), DateHeader::Omitted);
    let mut client = server.connect().await;
    let started = Instant::now();
    assert_eq!(get(&mut client, "/slow").await.1, "slow");
    assert_eq!(started.elapsed(), SLOW);
    assert_eq!(get(&mut client, "/").await.1, "ok", "still kept alive");
}

#[tokio::test(start_paused = true)]
async fn a_connection_over_the_cap_is_closed_at_once_and_a_freed_place_is_reused() {
    let server = Server::start(limits(2), DateHeader::Omitted);
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    assert_eq!(get(&mut first, "/").await.1, "ok");
    assert_eq!(get(&mut second, "/").await.1, "ok");
    let mut third = server.connect().await;
    assert_eq!(closed_after(&mut third).await, Duration::ZERO);
    assert_eq!(get(&mut second, "/").await.1, "ok", "the others are served");

    drop(first);
    // The place frees once the server has seen the close: try, boundedly.
    for attempt in 0.. {
        assert!(attempt < 100, "the freed place was never reused");
        let mut next = server.connect().await;
        send(&mut next, "GET / HTTP/1.1\r\nHost: test\r\n\r\n").await;
        let mut reply = [0; 12];
        if next.read_exact(&mut reply).await.is_ok() {
            assert_eq!(&reply, b"HTTP/1.1 200");
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn transient_accept_errors_keep_the_loop_serving_and_others_end_it() {
    let server = Server::start(limits(8), DateHeader::Omitted);
    for kind in [
        io::ErrorKind::ConnectionAborted,
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::Interrupted,
    ] {
        server.fail_accept(kind).await;
    }
    let mut client = server.connect().await;
    assert_eq!(get(&mut client, "/").await.1, "ok");
    server.fail_accept(io::ErrorKind::PermissionDenied).await;
    let ended = server.serving.await.expect("no panic");
    assert_eq!(
        ended.map_err(|e| e.kind()),
        Err(io::ErrorKind::PermissionDenied)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_idle_connections_and_lets_requests_finish() {
    let server = Server::start(limits(8), DateHeader::Omitted);
    let mut idle = server.connect().await;
    assert_eq!(get(&mut idle, "/").await.1, "ok");
    let mut busy = server.connect().await;
    send(&mut busy, "GET /brief HTTP/1.1\r\nHost: test\r\n\r\n").await;
    tokio::time::sleep(BRIEF / 2).await;
    server.shutdown.cancel();
    assert_eq!(closed_after(&mut idle).await, Duration::ZERO);
    let (head, body) = read_response(&mut busy).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "brief");
    assert_eq!(closed_after(&mut busy).await, Duration::ZERO);
    server
        .serving
        .await
        .expect("no panic")
        .expect("a clean stop");
}

#[tokio::test(start_paused = true)]
async fn the_date_header_is_sent_only_when_asked_for() {
    for (date, sent) in [(DateHeader::Sent, true), (DateHeader::Omitted, false)] {
        let server = Server::start(limits(8), date);
        let mut client = server.connect().await;
        let (head, _) = get(&mut client, "/").await;
        assert_eq!(
            head.to_ascii_lowercase().contains("\r\ndate: "),
            sent,
            "{date:?}: {head}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_timeout_too_long_to_reach_never_fires() {
    let limits = Limits {
        http_idle_timeout: Duration::MAX,
        ..limits(8)
    };
    let server = Server::start(limits, DateHeader::Omitted);
    let mut client = server.connect().await;
    assert_eq!(get(&mut client, "/").await.1, "ok");
    let mut byte = [0; 1];
    assert!(
        tokio::time::timeout(NEVER, client.read(&mut byte))
            .await
            .is_err(),
        "still open"
    );
    assert_eq!(get(&mut client, "/").await.1, "ok");
}
