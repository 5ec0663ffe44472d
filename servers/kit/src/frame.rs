//! Newline-delimited JSON-RPC framing with a hard cap on one message.
//!
//! rmcp's own async-rw transport drops an oversized line silently and ignores
//! unparsable input, which leaves a misbehaving client waiting for a reply
//! that never comes. This transport answers instead, as JSON-RPC 2.0 asks:
//!
//! | input                                   | reply                          |
//! |-----------------------------------------|--------------------------------|
//! | line longer than the cap                | -32600, id `null`, line dropped |
//! | not JSON                                | -32700, id `null`              |
//! | batch array                             | -32600, id `null`              |
//! | wrong `jsonrpc`, bad `id`, no `method`  | -32600                         |
//! | known method, bad params                | -32602                         |
//! | unknown method                          | -32601                         |
//! | any malformed notification (no `id`)    | ignored, as the spec says      |
//!
//! Memory per connection is bounded by the cap: an oversized line is
//! discarded as it streams in, never buffered.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use rmcp::{
    RoleServer,
    model::{ErrorData, RequestId},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::Mutex,
};
use tokio_util::{
    bytes::{Buf, BufMut, BytesMut},
    codec::{Decoder, Encoder, FramedRead, FramedWrite},
};

/// The default cap on one JSON-RPC message, in bytes, on every transport.
pub const MESSAGE_BYTES_MAX: usize = 1024 * 1024;

/// A server-side MCP transport over any byte stream (stdio, TCP, a turmoil
/// stream, an in-memory duplex), one JSON-RPC message per line.
pub(crate) struct LineTransport<R, W> {
    frames: FramedRead<R, BoundedLines>,
    writer: Arc<Mutex<FramedWrite<W, JsonLineEncoder>>>,
    /// An error reply owed to the peer. It is written before the next read,
    /// in two steps so that a cancelled `receive` never loses or tears it.
    pending: Option<Pending>,
}

enum Pending {
    Queue(Box<TxJsonRpcMessage<RoleServer>>),
    Flush,
}

impl<R, W> std::fmt::Debug for LineTransport<R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineTransport")
            .field("message_bytes_max", &self.frames.decoder().max)
            .finish_non_exhaustive()
    }
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    /// Frames `read`/`write`, refusing any message longer than `message_bytes_max`.
    pub(crate) fn new(read: R, write: W, message_bytes_max: usize) -> Self {
        assert!(message_bytes_max > 0, "message_bytes_max must be positive");
        Self {
            frames: FramedRead::new(read, BoundedLines::new(message_bytes_max)),
            writer: Arc::new(Mutex::new(FramedWrite::new(write, JsonLineEncoder))),
            pending: None,
        }
    }
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        async move { writer.lock().await.send(item).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if let Some(pending) = self.pending.take() {
                let mut writer = self.writer.lock().await;
                if let Pending::Queue(reply) = pending {
                    // `feed` only encodes into the write buffer: it cannot be torn.
                    writer.feed(*reply).await.ok()?;
                }
                self.pending = Some(Pending::Flush);
                writer.flush().await.ok()?;
                self.pending = None;
            }
            let reply = match self.frames.next().await? {
                Ok(Frame::Line(line)) => match classify(&line) {
                    Classified::Message(mut message) => {
                        // No tokens on a line transport: the process (stdio)
                        // or loopback (TCP) boundary is the trust boundary.
                        if let rmcp::model::JsonRpcMessage::Request(request) = message.as_mut() {
                            use rmcp::model::GetExtensions as _;
                            request
                                .request
                                .extensions_mut()
                                .insert(crate::auth::Principal::local());
                        }
                        return Some(*message);
                    }
                    Classified::Ignore => continue,
                    Classified::Reply(error, id) => {
                        TxJsonRpcMessage::<RoleServer>::error(error, id)
                    }
                },
                Ok(Frame::TooLong) => {
                    let max = self.frames.decoder().max;
                    tracing::warn!(message_bytes_max = max, "dropped an oversized message");
                    TxJsonRpcMessage::<RoleServer>::error(
                        ErrorData::invalid_request(
                            format!("message exceeds the {max}-byte limit and was dropped"),
                            None,
                        ),
                        None,
                    )
                }
                Err(error) => {
                    tracing::debug!(%error, "connection read failed");
                    return None;
                }
            };
            self.pending = Some(Pending::Queue(Box::new(reply)));
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.lock().await.close().await
    }
}

pub(crate) enum Classified {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    Ignore,
    Reply(ErrorData, Option<RequestId>),
}

/// Decides what one complete line is: a message for rmcp, something to
/// ignore, or a JSON-RPC error to send back.
pub(crate) fn classify(line: &[u8]) -> Classified {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Classified::Ignore;
    }
    let parse_error = match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
        Ok(message) => return Classified::Message(Box::new(message)),
        Err(error) => error,
    };
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => {
            return Classified::Reply(
                ErrorData::parse_error(format!("Parse error: {error}"), None),
                None,
            );
        }
    };
    let Some(object) = value.as_object() else {
        let what = if value.is_array() {
            "batch requests are not supported"
        } else {
            "a JSON-RPC message must be an object"
        };
        return Classified::Reply(ErrorData::invalid_request(what, None), None);
    };
    let is_notification = !object.contains_key("id");
    let id = match object.get("id") {
        None | Some(serde_json::Value::Null) => None,
        Some(raw) => match serde_json::from_value::<RequestId>(raw.clone()) {
            Ok(id) => Some(id),
            Err(_) => {
                return Classified::Reply(
                    ErrorData::invalid_request("id must be a string or an integer", None),
                    None,
                );
            }
        },
    };
    let reply = |error| Classified::Reply(error, id.clone());
    if object.get("jsonrpc").and_then(|v| v.as_str()) != Some("2.0") {
        if is_notification {
            return Classified::Ignore;
        }
        return reply(ErrorData::invalid_request(
            "jsonrpc must be exactly \"2.0\"",
            None,
        ));
    }
    let Some(method) = object.get("method") else {
        // A malformed response from the client: there is nobody to answer.
        if object.contains_key("result") || object.contains_key("error") {
            tracing::debug!(error = %parse_error, "ignored a malformed response");
            return Classified::Ignore;
        }
        return reply(ErrorData::invalid_request("method is missing", None));
    };
    if is_notification {
        tracing::debug!(error = %parse_error, "ignored a malformed notification");
        return Classified::Ignore;
    }
    if id.is_none() {
        // `"id": null`: a request rmcp cannot answer, whatever its method.
        return reply(ErrorData::invalid_request(
            "id must be a string or an integer",
            None,
        ));
    }
    match method.as_str() {
        None => reply(ErrorData::invalid_request("method must be a string", None)),
        Some(method) if is_client_request_method(method) => reply(ErrorData::invalid_params(
            format!("invalid params for {method}: {parse_error}"),
            None,
        )),
        Some(method) => reply(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
            None,
        )),
    }
}

/// The request methods an MCP client may send to a server.
fn is_client_request_method(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "server/discover"
            | "completion/complete"
            | "logging/setLevel"
            | "prompts/get"
            | "prompts/list"
            | "resources/list"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "resources/templates/list"
            | "subscriptions/listen"
            | "tools/call"
            | "tools/list"
    )
}

#[derive(Debug, PartialEq)]
enum Frame {
    Line(BytesMut),
    TooLong,
}

/// Splits a byte stream at `\n`, never holding more than `max` bytes of one line.
#[derive(Debug)]
struct BoundedLines {
    max: usize,
    /// Bytes of the buffer already searched for a newline.
    scanned: usize,
    /// Inside an oversized line: skip bytes until its newline.
    discarding: bool,
}

impl BoundedLines {
    fn new(max: usize) -> Self {
        Self {
            max,
            scanned: 0,
            discarding: false,
        }
    }
}

impl Decoder for BoundedLines {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        loop {
            let newline = buf[self.scanned..].iter().position(|b| *b == b'\n');
            match (self.discarding, newline) {
                (true, Some(offset)) => {
                    buf.advance(self.scanned + offset + 1);
                    self.scanned = 0;
                    self.discarding = false;
                }
                (true, None) => {
                    buf.clear();
                    self.scanned = 0;
                    return Ok(None);
                }
                (false, Some(offset)) => {
                    let end = self.scanned + offset;
                    self.scanned = 0;
                    let mut line = buf.split_to(end + 1);
                    line.truncate(end);
                    if line.last() == Some(&b'\r') {
                        line.truncate(end - 1);
                    }
                    if line.len() > self.max {
                        return Ok(Some(Frame::TooLong));
                    }
                    return Ok(Some(Frame::Line(line)));
                }
                // A trailing `\r` may be the first half of a CRLF whose `\n`
                // has not arrived yet: it does not count against the cap.
                (false, None) if buf.len() > self.max + usize::from(buf.last() == Some(&b'\r')) => {
                    buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Frame::TooLong));
                }
                (false, None) => {
                    self.scanned = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        // A final line without its newline is incomplete: nothing to deliver.
        buf.clear();
        self.scanned = 0;
        Ok(None)
    }
}

#[derive(Debug)]
struct JsonLineEncoder;

impl Encoder<TxJsonRpcMessage<RoleServer>> for JsonLineEncoder {
    type Error = std::io::Error;

    fn encode(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
        buf: &mut BytesMut,
    ) -> Result<(), std::io::Error> {
        match &item {
            // JSON-RPC 2.0: an error that cannot be tied to a request still
            // carries `"id": null`; rmcp leaves the member out.
            rmcp::model::JsonRpcMessage::Error(error) if error.id.is_none() => {
                let mut value = serde_json::to_value(&item)?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("id".into(), serde_json::Value::Null);
                }
                serde_json::to_writer(buf.writer(), &value)?;
            }
            _ => serde_json::to_writer(buf.writer(), &item)?,
        }
        buf.put_u8(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod cancel_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut decoder = BoundedLines::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                out.push(frame);
            }
            assert!(buf.len() <= max + chunk.len(), "buffer grew past the cap");
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(BytesMut::from(s))
    }

    #[test]
    fn splits_lines_across_chunks_and_strips_cr() {
        let got = frames(16, &[b"ab", b"c\r\nde", b"f\n"]);
        assert_eq!(got, vec![line("abc"), line("def")]);
    }

    #[test]
    fn oversized_line_is_reported_once_and_the_next_line_survives() {
        let got = frames(4, &[b"0123", b"4567", b"89", b"\nok\n"]);
        assert_eq!(got, vec![Frame::TooLong, line("ok")]);
    }

    #[test]
    fn oversized_line_in_one_chunk_is_rejected() {
        let got = frames(4, &[b"0123456789\nok\n"]);
        assert_eq!(got, vec![Frame::TooLong, line("ok")]);
    }

    #[test]
    fn line_of_exactly_the_cap_is_accepted() {
        assert_eq!(frames(4, &[b"abcd\n"]), vec![line("abcd")]);
    }

    #[test]
    fn crlf_line_of_exactly_the_cap_is_accepted_however_it_is_split() {
        for chunks in [
            &[&b"abcd\r\n"[..]][..],
            &[b"abcd\r", b"\n"],
            &[b"ab", b"cd\r", b"\n"],
        ] {
            assert_eq!(frames(4, chunks), vec![line("abcd")], "{chunks:?}");
        }
        assert_eq!(frames(4, &[b"abcde\r", b"\n"]), vec![Frame::TooLong]);
        assert_eq!(frames(4, &[b"abcd\r\r", b"\n"]), vec![Frame::TooLong]);
    }

    fn reply_code(raw: &str) -> Option<(i32, Option<RequestId>)> {
        match classify(raw.as_bytes()) {
            Classified::Reply(error, id) => Some((error.code.0, id)),
            Classified::Ignore => None,
            Classified::Message(_) => Some((0, None)),
        }
    }

    #[test]
    fn classifies_bad_input_as_json_rpc_2_0_requires() {
        assert_eq!(reply_code("{not json"), Some((-32700, None)));
        assert_eq!(reply_code("[1,2]"), Some((-32600, None)));
        assert_eq!(reply_code("42"), Some((-32600, None)));
        let id = Some(RequestId::Number(7));
        assert_eq!(
            reply_code(r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#),
            Some((-32600, id.clone()))
        );
        assert_eq!(
            reply_code(r#"{"id":7,"method":"ping"}"#),
            Some((-32600, id.clone()))
        );
        assert_eq!(
            reply_code(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#),
            Some((-32600, None))
        );
        assert_eq!(
            reply_code(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            Some((-32600, None))
        );
        assert_eq!(reply_code(r#"{"jsonrpc":"2.0","id":null,"error":5}"#), None);
        assert_eq!(
            reply_code(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":5}"#),
            Some((-32602, id))
        );
        assert_eq!(reply_code(r#"{"jsonrpc":"2.0","method":7}"#), None);
        assert_eq!(reply_code("   "), None);
    }

    #[test]
    fn an_error_without_a_request_id_says_id_null() {
        let mut buf = BytesMut::new();
        let reply =
            TxJsonRpcMessage::<RoleServer>::error(ErrorData::parse_error("bad", None), None);
        JsonLineEncoder.encode(reply, &mut buf).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(value["id"], serde_json::Value::Null);
        assert!(value.as_object().unwrap().contains_key("id"));
        assert_eq!(value["error"]["code"], -32700);
    }

    #[test]
    fn accepts_a_well_formed_request() {
        assert_eq!(
            reply_code(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#),
            Some((0, None))
        );
    }
}
