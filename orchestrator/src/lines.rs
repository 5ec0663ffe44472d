//! The client side of newline-delimited JSON-RPC (TCP, the simulation's
//! streams, in-process pipes).
//!
//! Writing is rmcp's own (`AsyncRwTransport`'s encoder). Reading is ours,
//! for one reason: the answer to each `tools/call` is read in one typed
//! parse ([`mcp_http::reply`]) instead of through rmcp's untagged enums,
//! which buffer the message and retry it against every result type. Under
//! load in the simulation that retrying was a fifth of all CPU time.
//!
//! What the reader does with each line:
//!
//! | line                                  | outcome                              |
//! |---------------------------------------|--------------------------------------|
//! | a message                             | handed to rmcp                       |
//! | blank                                 | skipped                              |
//! | longer than the cap                   | dropped as it streams in, logged     |
//! | not JSON                              | ignored (answering could loop)       |
//! | JSON, but a malformed request         | answered -32600 with its id          |
//! | JSON, any other malformed message     | ignored (nobody to answer), logged   |

use std::collections::HashSet;

use futures::future::BoxFuture;
use rmcp::{
    RoleClient,
    model::{ClientRequest, ErrorData, JsonRpcMessage, RequestId},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{Transport, async_rw::AsyncRwTransport},
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};

/// Ids of `tools/call` requests awaiting an answer that are remembered, so
/// that their answers are read typed. Past this (answers lost to timeouts
/// never arrive), the set starts again: a forgotten id only means that
/// answer goes through rmcp's slower parse.
const TOOL_CALLS_TRACKED_MAX: usize = 4096;

/// A client transport over a byte stream, one JSON-RPC message per line.
pub(crate) struct ClientLines<R, W: AsyncWrite> {
    lines: BoundedLines<R>,
    writer: AsyncRwTransport<RoleClient, tokio::io::Empty, W>,
    tool_calls: HashSet<RequestId>,
    /// An error reply being written. It is polled to completion across
    /// `receive` calls, so a cancelled `receive` never tears it.
    owed: Option<BoxFuture<'static, std::io::Result<()>>>,
}

impl<R, W> ClientLines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    /// Frames `read`/`write`, dropping any incoming line over `line_bytes_max`.
    pub(crate) fn new(read: R, write: W, line_bytes_max: usize) -> Self {
        Self {
            lines: BoundedLines::new(read, line_bytes_max),
            writer: AsyncRwTransport::new_client(tokio::io::empty(), write),
            tool_calls: HashSet::new(),
            owed: None,
        }
    }

    fn remember_tool_call(&mut self, item: &TxJsonRpcMessage<RoleClient>) {
        let JsonRpcMessage::Request(request) = item else {
            return;
        };
        if matches!(request.request, ClientRequest::CallToolRequest(_)) {
            if self.tool_calls.len() >= TOOL_CALLS_TRACKED_MAX {
                self.tool_calls.clear();
            }
            self.tool_calls.insert(request.id.clone());
        }
    }

    /// What the line just read is: a message, or what to do instead.
    fn decode_line(&mut self) -> Decoded {
        let line = self.lines.line();
        if line.iter().all(u8::is_ascii_whitespace) {
            return Decoded::Skip;
        }
        let tool_calls = &mut self.tool_calls;
        match mcp_http::reply::decode(line, |id| tool_calls.remove(id)) {
            Ok(message) => Decoded::Message(Box::new(message)),
            Err(error) if error.is_syntax() || error.is_eof() => {
                tracing::debug!(%error, "ignored a line that is not JSON");
                Decoded::Skip
            }
            Err(error) => match malformed_request_id(line) {
                Some(id) => Decoded::Answer(
                    ErrorData::invalid_request(format!("invalid request: {error}"), None),
                    id,
                ),
                None => {
                    tracing::debug!(%error, "ignored a malformed message");
                    Decoded::Skip
                }
            },
        }
    }
}

enum Decoded {
    Message(Box<RxJsonRpcMessage<RoleClient>>),
    Skip,
    Answer(ErrorData, RequestId),
}

/// The id of a line that is a request (it has a `method` and an `id`),
/// if the id is one; `None` for anything else.
fn malformed_request_id(line: &[u8]) -> Option<RequestId> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    value.get("method")?;
    serde_json::from_value(value.get("id")?.clone()).ok()
}

impl<R, W> Transport<RoleClient> for ClientLines<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.remember_tool_call(&item);
        self.writer.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            if let Some(owed) = self.owed.as_mut() {
                owed.await.ok()?;
                self.owed = None;
            }
            match self.lines.next().await {
                Read::Line => {}
                Read::Oversized => {
                    tracing::warn!(
                        line_bytes_max = self.lines.max,
                        "dropped an oversized message from the server"
                    );
                    continue;
                }
                Read::Eof => return None,
                Read::Failed(error) => {
                    tracing::debug!(%error, "connection read failed");
                    return None;
                }
            }
            match self.decode_line() {
                Decoded::Message(message) => return Some(*message),
                Decoded::Skip => {}
                Decoded::Answer(error, id) => {
                    let reply = TxJsonRpcMessage::<RoleClient>::error(error, Some(id));
                    self.owed = Some(Box::pin(self.writer.send(reply)));
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.close().await
    }
}

enum Read {
    Line,
    Oversized,
    Eof,
    Failed(std::io::Error),
}

/// Splits a byte stream at `\n`, never holding more than `max` bytes of
/// one line. Cancel-safe: a partial line stays in `line` across calls.
struct BoundedLines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    max: usize,
    /// Inside an oversized line: skip bytes until its newline.
    discarding: bool,
    /// `line` holds a whole line the caller has seen; clear it first.
    complete: bool,
}

impl<R: AsyncRead + Unpin> BoundedLines<R> {
    fn new(read: R, max: usize) -> Self {
        Self {
            reader: BufReader::new(read),
            line: Vec::new(),
            max,
            discarding: false,
            complete: false,
        }
    }

    /// The line last read, without its `\r\n` or `\n` and any leading BOM.
    fn line(&self) -> &[u8] {
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
    }

    async fn next(&mut self) -> Read {
        if std::mem::take(&mut self.complete) {
            self.line.clear();
        }
        loop {
            let buffered = match self.reader.fill_buf().await {
                Ok(buffered) => buffered,
                Err(error) => return Read::Failed(error),
            };
            if buffered.is_empty() {
                return Read::Eof;
            }
            let newline = buffered.iter().position(|byte| *byte == b'\n');
            let chunk = &buffered[..newline.unwrap_or(buffered.len())];
            let used = chunk.len() + usize::from(newline.is_some());
            if !self.discarding && self.line.len() + chunk.len() <= self.max {
                self.line.extend_from_slice(chunk);
            } else {
                self.discarding = true;
                self.line.clear();
            }
            self.reader.consume(used);
            if newline.is_some() {
                if std::mem::take(&mut self.discarding) {
                    return Read::Oversized;
                }
                self.complete = true;
                return Read::Line;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    async fn lines_of(input: &[u8], max: usize) -> Vec<Result<String, &'static str>> {
        let mut lines = BoundedLines::new(input, max);
        let mut out = Vec::new();
        loop {
            match lines.next().await {
                Read::Line => out.push(Ok(String::from_utf8_lossy(lines.line()).into_owned())),
                Read::Oversized => out.push(Err("oversized")),
                Read::Eof => return out,
                Read::Failed(_) => panic!("reading a slice cannot fail"),
            }
        }
    }

    #[tokio::test]
    async fn lines_are_split_trimmed_and_capped() {
        let input = b"\xEF\xBB\xBF{\"a\":1}\r\n\n123456789012\nshort\npartial";
        assert_eq!(
            lines_of(input, 11).await,
            vec![
                Ok("{\"a\":1}".to_owned()),
                Ok(String::new()),
                Err("oversized"),
                Ok("short".to_owned()),
            ]
        );
    }

    /// A reader that hands out its bytes a few at a time and returns
    /// `Pending` in between, as a socket does.
    async fn read_through_a_trickle(
        input: &'static [u8],
    ) -> ClientLines<tokio::io::DuplexStream, tokio::io::Sink> {
        let (client, mut server) = tokio::io::duplex(4);
        tokio::spawn(async move {
            for chunk in input.chunks(3) {
                server.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        ClientLines::new(client, tokio::io::sink(), 64)
    }

    #[tokio::test]
    async fn a_tool_answer_arriving_in_pieces_is_read_typed_and_garbage_is_skipped() {
        let mut transport = read_through_a_trickle(
            b"not json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[],\"isError\":true}}\n",
        )
        .await;
        transport.tool_calls.insert(RequestId::Number(1));
        let message = transport.receive().await.expect("a message");
        let JsonRpcMessage::Response(response) = message else {
            panic!("{message:?}");
        };
        assert!(matches!(
            response.result,
            rmcp::model::ServerResult::CallToolResult(_)
        ));
        assert!(
            transport.tool_calls.is_empty(),
            "the id is forgotten once answered"
        );
        assert!(transport.receive().await.is_none());
    }

    #[tokio::test]
    async fn a_malformed_request_is_answered_with_its_id_and_other_garbage_is_not() {
        use tokio::io::AsyncReadExt;
        let input: &[u8] = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\",\"params\":5}\n\
            {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":5,\"error\":5}\n\
            {\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"sampling/createMessage\",\"params\":5}\n";
        let (write, mut peer) = tokio::io::duplex(4096);
        let mut transport = ClientLines::new(input, write, 1024);
        assert!(transport.receive().await.is_none());
        drop(transport);
        let mut written = String::new();
        peer.read_to_string(&mut written).await.unwrap();
        let reply: serde_json::Value = serde_json::from_str(written.trim()).unwrap();
        assert_eq!(reply["id"], 9, "{written}");
        assert_eq!(reply["error"]["code"], -32600, "{written}");
        assert_eq!(
            written.lines().count(),
            1,
            "one answer, to the request only: {written}"
        );
    }
}
