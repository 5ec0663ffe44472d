//! Exact bytes in and out of [`LineTransport`], and cancel-safety: rmcp's
//! service loop drops a pending `receive` whenever another branch of its
//! `select!` wins (rust-sdk #941), so a `receive` dropped at any point where
//! it is pending must lose, duplicate or reorder nothing, neither a message
//! it was reading nor an error reply it was writing.
//!
//! The property drives one transport by hand (`tokio_test::task::spawn`):
//! input arrives in generated chunks, the output pipe is small and drained
//! by generated amounts (so writing a reply pends too), and at generated
//! pending points the `receive` future is dropped and a new one started.
//! Whatever the schedule, the messages received and the bytes written must
//! be exactly those of one undisturbed run.

use std::task::Poll;

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_test::{assert_pending, assert_ready, io::Builder, task};

use super::*;

/// The cap every test here uses: small, so that oversized lines are cheap.
const MAX: usize = 64;

/// What one input line is.
#[derive(Debug, Clone)]
enum Line {
    /// A well-formed request with this id: received.
    Ping(u32),
    /// A notification: received.
    Initialized,
    /// Not JSON: a -32700 reply.
    Garbage,
    /// A request for a method nobody has: received (rmcp's service
    /// answers it with -32601).
    Unknown(u32),
    /// Longer than the cap: a -32600 reply, the line dropped.
    TooLong(usize),
    /// A line ending in CRLF rather than LF: received.
    PingCrlf(u32),
}

impl Line {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Line::Ping(id) => format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}\n"),
            Line::Initialized => {
                "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n".to_owned()
            }
            Line::Garbage => "{oops\n".to_owned(),
            Line::Unknown(id) => {
                format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"nope\"}}\n")
            }
            Line::TooLong(extra) => format!("{}\n", "x".repeat(MAX + 1 + extra)),
            Line::PingCrlf(id) => {
                format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}\r\n")
            }
        }
        .into_bytes()
    }
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        (0u32..1000).prop_map(Line::Ping),
        Just(Line::Initialized),
        Just(Line::Garbage),
        (0u32..1000).prop_map(Line::Unknown),
        (0usize..3 * MAX).prop_map(Line::TooLong),
        (0u32..1000).prop_map(Line::PingCrlf),
    ]
}

/// A transport reading what the test writes to `input` and writing what
/// the test reads from `output`, through a pipe of `output_capacity` bytes.
struct Rig {
    transport: LineTransport<DuplexStream, DuplexStream>,
    input: DuplexStream,
    output: DuplexStream,
}

impl Rig {
    fn new(output_capacity: usize) -> Self {
        let (input, server_read) = tokio::io::duplex(1 << 20);
        let (server_write, output) = tokio::io::duplex(output_capacity);
        Self {
            transport: LineTransport::new(server_read, server_write, MAX),
            input,
            output,
        }
    }
}

/// Writes everything now (the input pipe is large enough never to pend).
fn feed(input: &mut DuplexStream, bytes: &[u8]) {
    let mut write = task::spawn(input.write_all(bytes));
    assert_ready!(write.poll()).unwrap();
}

/// Reads up to `n` bytes of what the transport has written, without waiting.
fn drain(output: &mut DuplexStream, n: usize, into: &mut Vec<u8>) {
    let mut buf = vec![0; n.max(1)];
    let mut read = task::spawn(output.read(&mut buf));
    if let Poll::Ready(got) = read.poll() {
        let got = got.unwrap();
        drop(read);
        into.extend_from_slice(&buf[..got]);
    }
}

fn as_json(message: &RxJsonRpcMessage<RoleServer>) -> String {
    serde_json::to_string(message).unwrap()
}

/// What one undisturbed run gives: every message received, every byte
/// written, with all input at once and a pipe that never fills.
fn reference(input: &[u8]) -> (Vec<String>, Vec<u8>) {
    let mut rig = Rig::new(1 << 20);
    feed(&mut rig.input, input);
    rig.input = tokio::io::duplex(1).0; // closes the transport's input
    let mut received = Vec::new();
    loop {
        let mut receive = task::spawn(rig.transport.receive());
        match assert_ready!(receive.poll()) {
            Some(message) => received.push(as_json(&message)),
            None => break,
        }
    }
    let mut written = Vec::new();
    drain(&mut rig.output, 1 << 20, &mut written);
    (received, written)
}

/// One step of a disturbed run, taken each time `receive` is pending.
#[derive(Debug, Clone)]
struct Step {
    /// Input bytes to deliver next (0: none).
    deliver: usize,
    /// Output bytes to read (0: none).
    drain: usize,
    /// Drop the pending `receive` and start a new one.
    cancel: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (0usize..48, 0usize..48, any::<bool>()).prop_map(|(deliver, drain, cancel)| Step {
        deliver,
        drain,
        cancel,
    })
}

/// Runs the transport over `input` under `steps` (cycled); returns what
/// it received and wrote.
fn disturbed(input: &[u8], capacity: usize, steps: &[Step]) -> (Vec<String>, Vec<u8>) {
    let mut rig = Rig::new(capacity);
    let (mut received, mut written) = (Vec::new(), Vec::new());
    let mut rest = input;
    let mut steps = steps.iter().cycle();
    let mut closed = false;
    // A transport that stops making progress is a failure, not a hang.
    let mut polls_left = 10_000;
    'run: loop {
        let mut receive = task::spawn(rig.transport.receive());
        loop {
            match receive.poll() {
                Poll::Ready(Some(message)) => {
                    received.push(as_json(&message));
                    continue 'run;
                }
                Poll::Ready(None) => break 'run,
                Poll::Pending => {}
            }
            polls_left -= 1;
            assert!(
                polls_left > 0,
                "receive made no progress: received {received:?}, wrote {:?}",
                String::from_utf8_lossy(&written)
            );
            let step = steps.next().expect("cycled");
            // Always make progress: deliver and drain at least one byte.
            let deliver = step.deliver.max(1).min(rest.len());
            feed(&mut rig.input, &rest[..deliver]);
            rest = &rest[deliver..];
            drain(&mut rig.output, step.drain.max(1), &mut written);
            if rest.is_empty() && !closed {
                rig.input.shutdown_now();
                closed = true;
            }
            if step.cancel {
                continue 'run;
            }
        }
    }
    drain(&mut rig.output, 1 << 20, &mut written);
    (received, written)
}

/// Closes a duplex end at once (the test owns both ends).
trait ShutdownNow {
    fn shutdown_now(&mut self);
}

impl ShutdownNow for DuplexStream {
    fn shutdown_now(&mut self) {
        let mut shutdown = task::spawn(self.shutdown());
        assert_ready!(shutdown.poll()).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Chunked input, a small output pipe, and `receive` dropped at
    /// generated pending points: the same messages and the same bytes as
    /// one undisturbed run.
    #[test]
    fn a_dropped_receive_loses_duplicates_and_reorders_nothing(
        lines in proptest::collection::vec(line(), 1..12),
        capacity in 1usize..64,
        steps in proptest::collection::vec(step(), 1..16),
    ) {
        let input: Vec<u8> = lines.iter().flat_map(Line::bytes).collect();
        let expected = reference(&input);
        let got = disturbed(&input, capacity, &steps);
        prop_assert_eq!(&got.0, &expected.0, "messages received");
        prop_assert_eq!(
            String::from_utf8_lossy(&got.1),
            String::from_utf8_lossy(&expected.1),
            "bytes written"
        );
    }

    /// Every split of a stream into two reads gives the same messages, and
    /// writes exactly the same reply bytes (the mock writer checks each).
    #[test]
    fn a_line_split_at_any_byte_reads_the_same(
        lines in proptest::collection::vec(line(), 1..6),
        at in any::<prop::sample::Index>(),
    ) {
        let input: Vec<u8> = lines.iter().flat_map(Line::bytes).collect();
        let at = at.index(input.len() + 1);
        let (messages, replies) = reference(&input);
        let read = Builder::new().read(&input[..at]).read(&input[at..]).build();
        let mut write = Builder::new();
        if !replies.is_empty() {
            write.write(&replies);
        }
        let got = receive_all(read, write.build());
        prop_assert_eq!(got, messages);
    }
}

/// Every message `receive` yields from `read` until it ends.
fn receive_all(read: tokio_test::io::Mock, write: tokio_test::io::Mock) -> Vec<String> {
    let mut transport = LineTransport::new(read, write, MAX);
    let mut received = Vec::new();
    tokio_test::block_on(async {
        while let Some(message) = transport.receive().await {
            received.push(as_json(&message));
        }
    });
    received
}

#[test]
fn the_reference_run_reads_and_replies_as_specified() {
    let lines = [
        Line::Ping(1),
        Line::Garbage,
        Line::Unknown(7),
        Line::TooLong(0),
        Line::PingCrlf(2),
        Line::Initialized,
    ];
    let input: Vec<u8> = lines.iter().flat_map(Line::bytes).collect();
    let (received, written) = reference(&input);
    assert_eq!(
        received,
        [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"nope","params":null}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ]
    );
    let written = String::from_utf8(written).unwrap();
    let codes: Vec<(i64, serde_json::Value)> = written
        .lines()
        .map(|line| {
            let reply: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                reply["error"]["code"].as_i64().unwrap(),
                reply["id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (-32700, serde_json::Value::Null),
            (-32600, serde_json::Value::Null),
        ]
    );
    assert!(written.ends_with('\n'));
}

#[test]
fn a_line_exactly_at_the_cap_is_read_and_one_byte_over_is_refused() {
    let at_cap = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"{}}}\n",
        " ".repeat(MAX - 40)
    );
    assert_eq!(
        at_cap.len(),
        MAX + 1,
        "the line without its newline is exactly the cap"
    );
    let over = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"{}}}\n",
        " ".repeat(MAX - 39)
    );
    let (received, written) = reference(at_cap.as_bytes());
    assert_eq!(received.len(), 1);
    assert!(written.is_empty());
    let (received, written) = reference(over.as_bytes());
    assert!(received.is_empty());
    let reply = String::from_utf8(written).unwrap();
    assert!(
        reply.contains("-32600") && reply.contains("64-byte limit"),
        "{reply}"
    );
}

#[test]
fn crlf_split_between_reads_is_one_line_ending() {
    let read = Builder::new()
        .read(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}\r")
        .read(b"\n")
        .build();
    assert_eq!(
        receive_all(read, Builder::new().build()),
        [r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#]
    );
}

#[test]
fn an_io_error_or_eof_mid_line_ends_the_stream_and_delivers_no_fragment() {
    let error = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
    let read = Builder::new()
        .read(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}\n{\"jsonrpc\":\"2.0\",\"id\":5,")
        .read_error(error)
        .build();
    assert_eq!(
        receive_all(read, Builder::new().build()),
        [r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#]
    );
    let read = Builder::new()
        .read(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"pi")
        .build();
    assert!(receive_all(read, Builder::new().build()).is_empty());
}

#[test]
fn an_error_reply_is_written_whole_and_once_byte_for_byte() {
    let (_, reply) = reference(b"{oops\n");
    assert!(reply.len() > 20, "{reply:?}");
    // The mock writer panics on any byte it does not expect, or, when
    // dropped, on any expected byte that never came. (Writes the pipe
    // takes only in part are the property's: its output pipe holds as
    // little as one byte.)
    let write = Builder::new()
        .write(&reply[..7])
        .write(&reply[7..20])
        .write(&reply[20..])
        .build();
    let read = Builder::new().read(b"{oops\n").build();
    assert!(receive_all(read, write).is_empty());
}

#[test]
fn a_receive_pending_on_input_is_dropped_and_the_next_one_reads_the_line() {
    let mut rig = Rig::new(1024);
    feed(&mut rig.input, b"{\"jsonrpc\":\"2.0\",\"id\":9,");
    {
        let mut receive = task::spawn(rig.transport.receive());
        assert_pending!(receive.poll());
    }
    feed(&mut rig.input, b"\"method\":\"ping\"}\n");
    let mut receive = task::spawn(rig.transport.receive());
    let message = assert_ready!(receive.poll()).expect("a message");
    assert_eq!(
        as_json(&message),
        r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#
    );
}
