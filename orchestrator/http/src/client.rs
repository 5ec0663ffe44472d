//! [`HttpClient`]: rmcp's [`StreamableHttpClient`] over hyper 1 and a
//! [`Dialer`].
//!
//! It answers the way rmcp's own reqwest client does, variant for variant,
//! so rmcp's transport behaves the same on top of it (its session recovery
//! keys on [`StreamableHttpError::SessionExpired`], its OAuth helpers on
//! [`StreamableHttpError::AuthRequired`]), and adds what the orchestrator
//! needs and reqwest's client leaves to string matching:
//!
//! - every refusal is typed: [`Refusal::find`] gives status, challenge and
//!   `Retry-After` from any error chain, with no message parsing;
//! - one deadline per request ([`HttpClientConfig::request_timeout`], on
//!   `tokio::time`, so simulated under turmoil) and an idle timeout on event
//!   streams;
//! - hard caps on response headers, JSON bodies, error bodies, SSE events
//!   and idle connections;
//! - custom headers go on the wire in name order (rmcp hands them over in a
//!   `HashMap`, whose order changes from run to run);
//! - no `Date` header is read, and `Retry-After` is read only as seconds.

use std::{borrow::Cow, collections::HashMap, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::{StreamExt as _, stream::BoxStream};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri,
    header::{
        ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, RETRY_AFTER, WWW_AUTHENTICATE,
    },
};
use http_body_util::Full;
use hyper::body::Incoming;
use rmcp::{
    model::{
        ClientJsonRpcMessage, ClientRequest, ErrorData, JsonRpcMessage, RequestId,
        ServerJsonRpcMessage,
    },
    transport::{
        common::http_header::{
            EVENT_STREAM_MIME_TYPE, HEADER_LAST_EVENT_ID, HEADER_MCP_PROTOCOL_VERSION,
            HEADER_SESSION_ID, JSON_MIME_TYPE,
        },
        streamable_http_client::{
            AuthRequiredError, HttpStatusError, InsufficientScopeError, SseError,
            StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
            StreamableHttpResponseLimits,
        },
    },
};
use sse_stream::Sse;
use tokio::time::Instant;

use crate::{
    dial::{Dialer, Endpoint},
    pool::{Loan, Pool, Sender},
    sse::{self, BodyStream},
};

/// What rmcp's transport sees as this client's errors.
pub type TransportError = StreamableHttpError<HttpClientError>;

/// Limits and timeouts of one [`HttpClient`]. Every field is a bound.
#[derive(Debug, Clone)]
pub struct HttpClientConfig {
    /// From the start of a request to its response headers (connect
    /// included), and for a JSON response, to its last byte.
    pub request_timeout: Duration,
    /// An event stream (an SSE response, the GET stream) fails when no byte
    /// arrives for this long. Keep it above the server's SSE keep-alive
    /// (rmcp: 15 s). `None`: no limit.
    pub sse_idle_timeout: Option<Duration>,
    /// Ceiling on a JSON response body; rmcp's own, smaller limit wins.
    pub json_response_bytes_max: usize,
    /// Ceiling on the SSE event size; rmcp's own, smaller limit wins.
    pub sse_event_bytes_max: usize,
    /// Bytes of an error body kept for diagnostics.
    pub error_body_bytes_max: usize,
    /// hyper's read buffer, which bounds the response head (at least 8192).
    pub header_bytes_max: usize,
    /// Idle keep-alive connections kept (0: one connection per request).
    pub idle_connections_max: usize,
    /// An idle connection older than this is closed rather than reused.
    pub idle_connection_timeout: Duration,
}

impl HttpClientConfig {
    /// The defaults: generous for a tool call, small enough to notice a
    /// stall. The simulation uses the same.
    pub const DEFAULT: Self = Self {
        request_timeout: Duration::from_secs(30),
        sse_idle_timeout: Some(Duration::from_secs(45)),
        json_response_bytes_max: 16 * 1024 * 1024,
        sse_event_bytes_max: 16 * 1024 * 1024,
        error_body_bytes_max: 4 * 1024,
        header_bytes_max: 64 * 1024,
        idle_connections_max: 4,
        idle_connection_timeout: Duration::from_secs(60),
    };
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why an HTTP exchange failed, below the level of MCP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpClientError {
    /// The transport's URL cannot be used.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    /// The dialer could not open a connection.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: Endpoint,
        #[source]
        source: std::io::Error,
    },
    /// HTTP/1.1 failed: the peer closed, sent garbage, or a head too large.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// No response (or no complete JSON body) within the request timeout.
    #[error("no response within {} ms", .after.as_millis())]
    Timeout { after: Duration },
    /// An event stream went silent for its idle timeout.
    #[error("event stream silent for {} ms", .after.as_millis())]
    Idle { after: Duration },
    /// An SSE event exceeded the size cap.
    #[error("an SSE event exceeded {max_bytes} bytes")]
    EventTooLarge { max_bytes: usize },
    /// The server answered with a status no other variant covers (including
    /// a 401/403 without a challenge).
    #[error(transparent)]
    Status(#[from] StatusError),
    /// A header value rmcp handed over cannot be sent.
    #[error("cannot build the request: {0}")]
    Request(#[from] http::Error),
    /// The message could not be serialized.
    #[error("cannot encode the message: {0}")]
    Encode(#[source] serde_json::Error),
}

impl From<HttpClientError> for TransportError {
    fn from(error: HttpClientError) -> Self {
        StreamableHttpError::Client(error)
    }
}

impl From<StatusError> for TransportError {
    fn from(error: StatusError) -> Self {
        StreamableHttpError::Client(HttpClientError::Status(error))
    }
}

/// A non-success response, reduced to what may be shown and acted on: the
/// body is a bounded, lossy prefix, and no request data is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status}: {body}")]
pub struct StatusError {
    pub status: u16,
    pub www_authenticate: Option<String>,
    /// Raw `Retry-After` (at most 128 bytes).
    pub retry_after: Option<String>,
    pub body: String,
}

/// An HTTP refusal, found in any error chain that passed through an
/// [`HttpClient`]: 401, 403 or 429 with what the server said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401, 403 or 429.
    pub status: u16,
    /// The `WWW-Authenticate` challenge, if the server sent one.
    pub www_authenticate: Option<String>,
    /// `Retry-After` in delta-seconds. An HTTP-date is not read: that needs
    /// the wall clock.
    pub retry_after: Option<Duration>,
}

impl Refusal {
    /// The refusal among `error`'s causes. Works on
    /// `ClientInitializeError::TransportError`'s `error`, on
    /// `ServiceError::TransportSend`, or on a [`TransportError`] itself.
    pub fn find(error: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut cause = Some(error);
        while let Some(current) = cause {
            if let Some(found) = current.downcast_ref::<TransportError>().and_then(Self::of) {
                return Some(found);
            }
            cause = current.source();
        }
        None
    }

    /// The refusal `error` is, if it is one.
    pub fn of(error: &TransportError) -> Option<Self> {
        let refusal = match error {
            StreamableHttpError::AuthRequired(e) => Self {
                status: 401,
                www_authenticate: Some(e.www_authenticate_header.clone()),
                retry_after: None,
            },
            StreamableHttpError::InsufficientScope(e) => Self {
                status: 403,
                www_authenticate: Some(e.www_authenticate_header.clone()),
                retry_after: None,
            },
            StreamableHttpError::HttpStatus(e) if e.status == 429 => Self {
                status: 429,
                www_authenticate: None,
                retry_after: e.retry_after.as_deref().and_then(retry_after_seconds),
            },
            StreamableHttpError::Client(HttpClientError::Status(e))
                if matches!(e.status, 401 | 403 | 429) =>
            {
                Self {
                    status: e.status,
                    www_authenticate: e.www_authenticate.clone(),
                    retry_after: e.retry_after.as_deref().and_then(retry_after_seconds),
                }
            }
            _ => return None,
        };
        Some(refusal)
    }
}

/// `Retry-After` as delta-seconds (RFC 9110 §10.2.3), capped at one day.
fn retry_after_seconds(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: u64 = value.parse().ok()?;
    Some(Duration::from_secs(seconds.min(86_400)))
}

/// The latest moment a server said not to come back before (a 429 with
/// `Retry-After`), whichever request heard it: rmcp's own background
/// requests too (the `GET` event stream, `notifications/initialized`),
/// whose errors never reach the caller. Shared by every client a
/// connector makes, so that its next connect can wait instead of asking
/// again at once. Clones share it. On `tokio::time`: simulated under
/// turmoil.
#[derive(Debug, Clone, Default)]
pub struct RetryAfterNotice(Arc<std::sync::Mutex<Option<Instant>>>);

impl RetryAfterNotice {
    /// Notes that the server said to wait `after` from now.
    pub fn note(&self, after: Duration) {
        let until = Instant::now() + after;
        let mut latest = self.0.lock().expect("retry-after notice");
        if latest.is_none_or(|latest| latest < until) {
            *latest = Some(until);
        }
    }

    /// How much of the latest wait is left, if any.
    pub fn remaining(&self) -> Option<Duration> {
        let until = (*self.0.lock().expect("retry-after notice"))?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }
}

/// rmcp's `StreamableHttpClient` over hyper 1 and a [`Dialer`]. Cheap to
/// clone; clones share the connection pool.
pub struct HttpClient<D> {
    inner: Arc<Inner<D>>,
}

struct Inner<D> {
    dialer: D,
    config: HttpClientConfig,
    pool: Arc<Pool>,
    notice: RetryAfterNotice,
}

impl<D> Clone for HttpClient<D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<D> std::fmt::Debug for HttpClient<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<D: Dialer> HttpClient<D> {
    /// A client that reaches servers through `dialer`.
    pub fn new(dialer: D, config: HttpClientConfig) -> Self {
        Self::noticing(dialer, config, RetryAfterNotice::default())
    }

    /// A client that also notes every `Retry-After` it is told in `notice`.
    pub fn noticing(dialer: D, config: HttpClientConfig, notice: RetryAfterNotice) -> Self {
        let pool = Pool::new(config.idle_connections_max, config.idle_connection_timeout);
        Self {
            inner: Arc::new(Inner {
                dialer,
                config,
                pool,
                notice,
            }),
        }
    }

    /// Sends `request` to `endpoint` and waits for the response head, all
    /// before `deadline`.
    pub(crate) async fn exchange(
        &self,
        endpoint: &Endpoint,
        request: Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<Response<BodyStream>, HttpClientError> {
        self.refuse_while_told_to_wait()?;
        let after = self.inner.config.request_timeout;
        let (response, sender) = tokio::time::timeout_at(deadline, self.send(endpoint, request))
            .await
            .map_err(|_| HttpClientError::Timeout { after })??;
        if response.status() == StatusCode::TOO_MANY_REQUESTS
            && let Some(wait) = header_text(response.headers(), RETRY_AFTER.as_str())
                .as_deref()
                .and_then(retry_after_seconds)
        {
            self.inner.notice.note(wait);
        }
        let loan = Loan {
            pool: self.inner.pool.clone(),
            endpoint: endpoint.clone(),
            sender,
        };
        Ok(response.map(|body| BodyStream::new(body, loan)))
    }

    /// Until a `Retry-After` this client (or another sharing its notice)
    /// was told has passed, every request fails here, before a byte is
    /// sent, as the 429 it would meet: rmcp's background requests (the
    /// event stream's reconnects) included, which no caller holds back.
    fn refuse_while_told_to_wait(&self) -> Result<(), HttpClientError> {
        let Some(left) = self.inner.notice.remaining() else {
            return Ok(());
        };
        let seconds = left.as_millis().div_ceil(1000);
        Err(HttpClientError::Status(StatusError {
            status: 429,
            www_authenticate: None,
            retry_after: Some(seconds.to_string()),
            body: "not sent: the server said to wait (Retry-After)".into(),
        }))
    }

    /// Sends on an idle connection if there is one, else on a new one. A
    /// request an idle connection refused before writing a byte (it had
    /// closed meanwhile) is sent again, once, on a new connection; one
    /// that may have been written is never resent.
    async fn send(
        &self,
        endpoint: &Endpoint,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Sender), HttpClientError> {
        if let Some(mut sender) = self.inner.pool.checkout(endpoint) {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut error) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(HttpClientError::Http(error.into_error())),
                },
            }
        }
        let mut sender = self.connect(endpoint).await?;
        let response = sender.send_request(request).await?;
        Ok((response, sender))
    }

    /// Opens an HTTP/1.1 connection; its I/O runs in a task of its own
    /// that ends when the connection closes.
    async fn connect(&self, endpoint: &Endpoint) -> Result<Sender, HttpClientError> {
        let stream =
            self.inner
                .dialer
                .dial(endpoint)
                .await
                .map_err(|source| HttpClientError::Connect {
                    endpoint: endpoint.clone(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(self.inner.config.header_bytes_max.max(8192))
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended");
            }
        });
        sender.ready().await?;
        Ok(sender)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.inner.config.request_timeout
    }

    fn json_limit(&self, limits: &StreamableHttpResponseLimits) -> usize {
        limits
            .max_json_response_size
            .min(self.inner.config.json_response_bytes_max)
    }

    fn event_limit(&self, rmcp_limit: usize) -> usize {
        rmcp_limit.min(self.inner.config.sse_event_bytes_max)
    }

    /// POSTs one JSON-RPC message and classifies the answer.
    async fn post(
        &self,
        uri: &str,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, TransportError> {
        let deadline = self.deadline();
        let target = Target::parse(uri)?;
        let body = serde_json::to_vec(&message).map_err(HttpClientError::Encode)?;
        let request = Outgoing {
            method: Method::POST,
            target: &target,
            auth_token,
            session_id: session_id.as_deref(),
            last_event_id: None,
            custom_headers,
            json: Some(Bytes::from(body)),
        }
        .build()?;
        let response = self.exchange(&target.endpoint, request, deadline).await?;
        let context = PostContext {
            message: &message,
            session_attached: session_id.is_some(),
            deadline,
            json_limit: self.json_limit(&limits),
            event_limit: self.event_limit(limits.max_sse_event_size),
        };
        self.classify_post(response, context).await
    }

    async fn classify_post(
        &self,
        response: Response<BodyStream>,
        context: PostContext<'_>,
    ) -> Result<StreamableHttpPostResponse, TransportError> {
        let status = response.status();
        refuse_with_challenge(status, response.headers())?;
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == StatusCode::NOT_FOUND && context.session_attached {
            return Err(StreamableHttpError::SessionExpired);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(http_status(status, response.headers()).into());
        }
        if !status.is_success() {
            return self.post_failure(response, context).await;
        }
        let session_id = header_text(response.headers(), HEADER_SESSION_ID);
        let awaits_no_response = !matches!(context.message, JsonRpcMessage::Request(_));
        let kind = body_kind(response.headers());
        if awaits_no_response
            && (content_length(response.headers()) == Some(0) || kind == BodyKind::Other)
        {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        match kind {
            BodyKind::Sse => {
                let body = response
                    .into_body()
                    .with_idle_timeout(self.inner.config.sse_idle_timeout);
                let events = sse::events(body, context.event_limit);
                Ok(answer_from_events(events, context.message, session_id).await)
            }
            BodyKind::Json => {
                let length = content_length(response.headers());
                let bytes = self
                    .read_json(
                        response.into_body(),
                        length,
                        context.json_limit,
                        context.deadline,
                    )
                    .await?;
                let answers_tool_call = |id: &RequestId| is_tool_call(context.message, id);
                match crate::reply::decode(&bytes, answers_tool_call) {
                    Ok(parsed) => Ok(StreamableHttpPostResponse::Json(parsed, session_id)),
                    Err(_) if awaits_no_response => Ok(StreamableHttpPostResponse::Accepted),
                    Err(error) => Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                        format!("not a JSON-RPC message ({error}): {}", preview(&bytes)),
                    ))),
                }
            }
            BodyKind::Other => Err(StreamableHttpError::UnexpectedContentType(header_text(
                response.headers(),
                CONTENT_TYPE.as_str(),
            ))),
        }
    }

    /// A non-success POST answer other than 404-with-session and 429: a
    /// JSON-RPC error body is the answer (a 5xx still keeps its status when
    /// the body is not one); a rejected `server/discover` becomes the error
    /// rmcp's lifecycle falls back on; anything else is a [`StatusError`].
    async fn post_failure(
        &self,
        response: Response<BodyStream>,
        context: PostContext<'_>,
    ) -> Result<StreamableHttpPostResponse, TransportError> {
        let status = response.status();
        let headers = response.headers().clone();
        let is_auth = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        if body_kind(&headers) == BodyKind::Json && !is_auth {
            let length = content_length(&headers);
            if let Ok(bytes) = self
                .read_json(
                    response.into_body(),
                    length,
                    context.json_limit,
                    context.deadline,
                )
                .await
            {
                if let Ok(error @ JsonRpcMessage::Error(_)) =
                    serde_json::from_slice::<ServerJsonRpcMessage>(&bytes)
                {
                    let fallback = discover_rejection(
                        context.message,
                        context.session_attached,
                        status,
                        &bytes,
                    );
                    return Ok(fallback.unwrap_or(StreamableHttpPostResponse::Json(
                        error,
                        header_text(&headers, HEADER_SESSION_ID),
                    )));
                }
                return self.status_failure(status, &headers, &bytes, context);
            }
            // Too large, failed or too slow: the status is all there is.
            return self.status_failure(status, &headers, b"", context);
        }
        let bytes = self
            .read_prefix(response.into_body(), context.deadline)
            .await;
        self.status_failure(status, &headers, &bytes, context)
    }

    fn status_failure(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        context: PostContext<'_>,
    ) -> Result<StreamableHttpPostResponse, TransportError> {
        if let Some(fallback) =
            discover_rejection(context.message, context.session_attached, status, body)
        {
            return Ok(fallback);
        }
        if status.is_server_error() {
            return Err(http_status(status, headers).into());
        }
        let keep = body.len().min(self.inner.config.error_body_bytes_max);
        Err(status_error(status, headers, &body[..keep]).into())
    }

    /// A whole JSON body, at most `max` bytes, before `deadline`.
    async fn read_json(
        &self,
        mut body: BodyStream,
        length: Option<u64>,
        max: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        if length.is_some_and(|length| length > max as u64) {
            return Err(StreamableHttpError::ResponseBodyTooLarge { max_size: max });
        }
        let after = self.inner.config.request_timeout;
        let read = async {
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                if chunk.len() > max - bytes.len() {
                    return Err(StreamableHttpError::ResponseBodyTooLarge { max_size: max });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        tokio::time::timeout_at(deadline, read)
            .await
            .map_err(|_| HttpClientError::Timeout { after })?
    }

    /// Up to `error_body_bytes_max` bytes of a diagnostic body; a body that
    /// fails or stalls yields what arrived.
    async fn read_prefix(&self, mut body: BodyStream, deadline: Instant) -> Vec<u8> {
        let max = self.inner.config.error_body_bytes_max;
        let mut bytes = Vec::new();
        let read = async {
            while bytes.len() < max {
                let Some(Ok(chunk)) = body.next().await else {
                    break;
                };
                let room = max - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
        };
        let _ = tokio::time::timeout_at(deadline, read).await;
        bytes
    }

    /// Opens an event stream with GET.
    async fn open_stream(
        &self,
        uri: &str,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_event_bytes: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, TransportError> {
        let deadline = self.deadline();
        let target = Target::parse(uri)?;
        let request = Outgoing {
            method: Method::GET,
            target: &target,
            auth_token,
            session_id: session_id.as_deref(),
            last_event_id: last_event_id.as_deref(),
            custom_headers,
            json: None,
        }
        .build()?;
        let response = self.exchange(&target.endpoint, request, deadline).await?;
        let status = response.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        refuse_with_challenge(status, response.headers())?;
        if status == StatusCode::NOT_FOUND && session_id.is_some() {
            return Err(StreamableHttpError::SessionExpired);
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(http_status(status, response.headers()).into());
        }
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = self.read_prefix(response.into_body(), deadline).await;
            return Err(status_error(status, &headers, &body).into());
        }
        if body_kind(response.headers()) == BodyKind::Other {
            return Err(StreamableHttpError::UnexpectedContentType(header_text(
                response.headers(),
                CONTENT_TYPE.as_str(),
            )));
        }
        let body = response
            .into_body()
            .with_idle_timeout(self.inner.config.sse_idle_timeout);
        Ok(sse::events(body, self.event_limit(max_event_bytes)))
    }

    /// DELETEs a session. A server without DELETE (405) or without the
    /// session any more (404) leaves nothing to close: both are success.
    async fn delete(
        &self,
        uri: &str,
        session_id: Arc<str>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), TransportError> {
        let deadline = self.deadline();
        let target = Target::parse(uri)?;
        let request = Outgoing {
            method: Method::DELETE,
            target: &target,
            auth_token,
            session_id: Some(&session_id),
            last_event_id: None,
            custom_headers,
            json: None,
        }
        .build()?;
        let response = self.exchange(&target.endpoint, request, deadline).await?;
        let status = response.status();
        let headers = response.headers().clone();
        refuse_with_challenge(status, &headers)?;
        // Read the (small) body so the connection can be reused.
        let body = self.read_prefix(response.into_body(), deadline).await;
        if status.is_success()
            || matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            )
        {
            return Ok(());
        }
        Err(status_error(status, &headers, &body).into())
    }
}

/// What classifying a POST answer needs to know about the POST.
#[derive(Clone, Copy)]
struct PostContext<'a> {
    message: &'a ClientJsonRpcMessage,
    session_attached: bool,
    deadline: Instant,
    json_limit: usize,
    event_limit: usize,
}

impl<D: Dialer> StreamableHttpClient for HttpClient<D> {
    type Error = HttpClientError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, TransportError> {
        let limits = StreamableHttpResponseLimits::default();
        self.post(
            &uri,
            message,
            session_id,
            auth_token,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, TransportError> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post(
            &uri,
            message,
            session_id,
            auth_token,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, TransportError> {
        self.post(
            &uri,
            message,
            session_id,
            auth_token,
            custom_headers,
            limits,
        )
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), TransportError> {
        self.delete(&uri, session_id, auth_token, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, TransportError> {
        let max = StreamableHttpResponseLimits::default().max_sse_event_size;
        self.open_stream(
            &uri,
            session_id,
            last_event_id,
            auth_token,
            custom_headers,
            max,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, TransportError> {
        self.open_stream(
            &uri,
            session_id,
            last_event_id,
            auth_token,
            custom_headers,
            max_sse_event_size,
        )
        .await
    }
}

/// A parsed `http://` or `https://` URL: where to connect, what to send as
/// `Host`, and the origin-form request target.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) endpoint: Endpoint,
    pub(crate) host: HeaderValue,
    pub(crate) path: Uri,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, HttpClientError> {
        let invalid = |reason| HttpClientError::InvalidUrl {
            url: url.chars().take(200).collect(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not sent"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| invalid("bad path"))?;
        Ok(Self {
            endpoint: Endpoint {
                tls,
                host: host.to_owned(),
                port,
            },
            host: HeaderValue::from_str(authority.as_str()).map_err(|_| invalid("bad host"))?,
            path,
        })
    }
}

/// One request, before it becomes an `http::Request`.
struct Outgoing<'a> {
    method: Method,
    target: &'a Target,
    auth_token: Option<String>,
    session_id: Option<&'a str>,
    last_event_id: Option<&'a str>,
    custom_headers: HashMap<HeaderName, HeaderValue>,
    json: Option<Bytes>,
}

/// What every request accepts, as rmcp's clients send it.
const ACCEPT_BOTH: &str = "text/event-stream, application/json";

/// Headers a caller's custom headers may not replace (rmcp's rule; the
/// protocol version is rmcp's own and passes).
const RESERVED_HEADERS: [&str; 3] = ["accept", HEADER_SESSION_ID, HEADER_LAST_EVENT_ID];

impl Outgoing<'_> {
    /// The request, headers in a fixed order: `Host`, `Accept`,
    /// `Content-Type`, `Authorization`, the custom headers by name, then
    /// `Mcp-Session-Id` and `Last-Event-Id`.
    fn build(self) -> Result<Request<Full<Bytes>>, TransportError> {
        let mut request = Request::builder()
            .method(self.method)
            .uri(self.target.path.clone())
            .header(HOST, self.target.host.clone())
            .header(ACCEPT, ACCEPT_BOTH);
        if self.json.is_some() {
            request = request.header(CONTENT_TYPE, JSON_MIME_TYPE);
        }
        if let Some(token) = self.auth_token {
            let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|e| HttpClientError::Request(e.into()))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let mut custom: Vec<_> = self.custom_headers.into_iter().collect();
        custom.sort_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
        for (name, value) in custom {
            let reserved = RESERVED_HEADERS
                .iter()
                .any(|r| name.as_str().eq_ignore_ascii_case(r))
                && !name
                    .as_str()
                    .eq_ignore_ascii_case(HEADER_MCP_PROTOCOL_VERSION);
            if reserved {
                return Err(StreamableHttpError::ReservedHeaderConflict(
                    name.to_string(),
                ));
            }
            request = request.header(name, value);
        }
        if let Some(id) = self.session_id {
            request = request.header(HEADER_SESSION_ID, id);
        }
        if let Some(id) = self.last_event_id {
            request = request.header(HEADER_LAST_EVENT_ID, id);
        }
        let body = Full::new(self.json.unwrap_or_default());
        Ok(request.body(body).map_err(HttpClientError::Request)?)
    }
}

/// 401 and 403 with a challenge are rmcp's own error variants (its OAuth
/// helpers and its SSE reconnect logic look for them).
/// Whether `message` is a `tools/call` request with this `id`.
fn is_tool_call(message: &ClientJsonRpcMessage, id: &RequestId) -> bool {
    matches!(message, JsonRpcMessage::Request(request)
        if request.id == *id && matches!(request.request, ClientRequest::CallToolRequest(_)))
}

/// The answer to a request that came as an event stream, taken out of the
/// stream when the stream plainly holds just that: events with no data
/// (the priming event that makes a stream resumable), then the answer.
/// rmcp then gets it as a JSON answer: read in one parse, and with no task
/// to read the stream. Anything else (a notification or a server request
/// first, a failure, the stream ending early) goes to rmcp as the stream it
/// is, with the events already read put back in front, so its resumption
/// and routing work as before.
async fn answer_from_events(
    mut events: BoxStream<'static, Result<Sse, SseError>>,
    message: &ClientJsonRpcMessage,
    session_id: Option<String>,
) -> StreamableHttpPostResponse {
    let JsonRpcMessage::Request(_) = message else {
        return StreamableHttpPostResponse::Sse(events, session_id);
    };
    let mut seen = Vec::new();
    while let Some(next) = events.next().await {
        let event = match next {
            Ok(event) => event,
            Err(error) => {
                seen.push(Err(error));
                break;
            }
        };
        if event
            .data
            .as_deref()
            .is_none_or(|data| data.trim().is_empty())
        {
            seen.push(Ok(event));
            continue;
        }
        if let Some(answer) = answer_in(&event, message) {
            // A body whose end has already arrived hands its connection
            // back now; otherwise dropping it drains it (see `BodyStream`).
            let _ = futures::FutureExt::now_or_never(events.next());
            return StreamableHttpPostResponse::Json(answer, session_id);
        }
        seen.push(Ok(event));
        break;
    }
    let replay = futures::stream::iter(seen).chain(events);
    StreamableHttpPostResponse::Sse(Box::pin(replay), session_id)
}

/// The event's message, if it is the answer to `request` (a result or an
/// error with its id).
fn answer_in(event: &Sse, sent: &ClientJsonRpcMessage) -> Option<ServerJsonRpcMessage> {
    let JsonRpcMessage::Request(request) = sent else {
        return None;
    };
    if event.event.as_deref().is_some_and(|kind| kind != "message") {
        return None;
    }
    let data = event.data.as_deref()?;
    let message = crate::reply::decode(data.as_bytes(), |id| is_tool_call(sent, id)).ok()?;
    let answers = match &message {
        JsonRpcMessage::Response(response) => response.id == request.id,
        JsonRpcMessage::Error(error) => error.id.as_ref() == Some(&request.id),
        _ => false,
    };
    answers.then_some(message)
}

fn refuse_with_challenge(status: StatusCode, headers: &HeaderMap) -> Result<(), TransportError> {
    if !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Ok(());
    }
    let Some(challenge) = headers.get(WWW_AUTHENTICATE) else {
        return Ok(());
    };
    let challenge = challenge
        .to_str()
        .map_err(|_| {
            StreamableHttpError::UnexpectedServerResponse("invalid WWW-Authenticate".into())
        })?
        .chars()
        .take(1024)
        .collect::<String>();
    if status == StatusCode::UNAUTHORIZED {
        return Err(StreamableHttpError::AuthRequired(AuthRequiredError::new(
            challenge,
        )));
    }
    let scope = challenge_param(&challenge, "scope");
    Err(StreamableHttpError::InsufficientScope(
        InsufficientScopeError::new(challenge, scope),
    ))
}

/// One `name="value"` (or bare `name=value`) parameter of a challenge.
fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let lower = challenge.to_ascii_lowercase();
    let start = lower.find(&format!("{name}="))? + name.len() + 1;
    let rest = &challenge[start..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"')?],
        None => rest.split([',', ' ', ';']).next()?,
    };
    (!value.is_empty()).then(|| value.to_owned())
}

/// rmcp's body-free status error (429 and 5xx), with `Retry-After` raw.
fn http_status(status: StatusCode, headers: &HeaderMap) -> HttpStatusError {
    HttpStatusError::new(status.as_u16(), header_text(headers, RETRY_AFTER.as_str()))
}

fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> StatusError {
    StatusError {
        status: status.as_u16(),
        www_authenticate: header_text(headers, WWW_AUTHENTICATE.as_str()),
        retry_after: header_text(headers, RETRY_AFTER.as_str()),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

/// A header as text, if it is UTF-8 and at most 128 bytes.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    if value.len() > 128 {
        return None;
    }
    value.to_str().ok().map(str::to_owned)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Sse,
    Other,
}

/// The media type's essence, compared without case (RFC 9110).
fn body_kind(headers: &HeaderMap) -> BodyKind {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return BodyKind::Other;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case(JSON_MIME_TYPE) {
        BodyKind::Json
    } else if essence.eq_ignore_ascii_case(EVENT_STREAM_MIME_TYPE) {
        BodyKind::Sse
    } else {
        BodyKind::Other
    }
}

/// A 4xx answer to a session-less `server/discover`, as the JSON-RPC error
/// rmcp's lifecycle reads to fall back to `initialize` (what rmcp's own
/// clients do; its helper is crate-private). 401/403 stay refusals.
fn discover_rejection(
    message: &ClientJsonRpcMessage,
    session_attached: bool,
    status: StatusCode,
    body: &[u8],
) -> Option<StreamableHttpPostResponse> {
    if session_attached
        || !status.is_client_error()
        || matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
    {
        return None;
    }
    let JsonRpcMessage::Request(request) = message else {
        return None;
    };
    if !matches!(request.request, ClientRequest::DiscoverRequest(_)) {
        return None;
    }
    let error = match serde_json::from_slice::<ServerJsonRpcMessage>(body) {
        Ok(JsonRpcMessage::Error(error)) => error.error,
        _ => ErrorData::invalid_request(
            format!(
                "server/discover rejected with HTTP {status}: {}",
                preview(body)
            ),
            None,
        ),
    };
    Some(StreamableHttpPostResponse::Json(
        ServerJsonRpcMessage::error(error, Some(request.id.clone())),
        None,
    ))
}

/// At most 256 bytes of a body, lossily, for a message.
fn preview(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_endpoints_hosts_and_origin_form_targets() {
        let t = Target::parse("http://user:9080/mcp?x=1").unwrap();
        assert_eq!(
            t.endpoint,
            Endpoint {
                tls: false,
                host: "user".into(),
                port: 9080
            }
        );
        assert_eq!(t.host, "user:9080");
        assert_eq!(t.path, "/mcp?x=1");
        let t = Target::parse("https://[::1]/").unwrap();
        assert_eq!(
            t.endpoint,
            Endpoint {
                tls: true,
                host: "::1".into(),
                port: 443
            }
        );
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("http://u:p@x/").is_err());
    }

    #[test]
    fn retry_after_is_read_as_seconds_only() {
        assert_eq!(retry_after_seconds(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after_seconds("99999999999"), None);
        assert_eq!(retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(
            retry_after_seconds("9999999"),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn refusals_are_found_in_every_shape_the_client_produces() {
        let challenge = r#"Bearer error="insufficient_scope", scope="users:read""#;
        let cases: [(TransportError, Refusal); 4] = [
            (
                StreamableHttpError::AuthRequired(AuthRequiredError::new("Bearer".into())),
                Refusal {
                    status: 401,
                    www_authenticate: Some("Bearer".into()),
                    retry_after: None,
                },
            ),
            (
                StreamableHttpError::InsufficientScope(InsufficientScopeError::new(
                    challenge.into(),
                    challenge_param(challenge, "scope"),
                )),
                Refusal {
                    status: 403,
                    www_authenticate: Some(challenge.into()),
                    retry_after: None,
                },
            ),
            (
                HttpStatusError::new(429, Some("3".into())).into(),
                Refusal {
                    status: 429,
                    www_authenticate: None,
                    retry_after: Some(Duration::from_secs(3)),
                },
            ),
            (
                HttpClientError::Status(StatusError {
                    status: 403,
                    www_authenticate: None,
                    retry_after: None,
                    body: "Forbidden: Host header is not allowed".into(),
                })
                .into(),
                Refusal {
                    status: 403,
                    www_authenticate: None,
                    retry_after: None,
                },
            ),
        ];
        for (error, refusal) in cases {
            assert_eq!(Refusal::find(&error), Some(refusal), "{error}");
        }
        assert_eq!(
            challenge_param(challenge, "scope").as_deref(),
            Some("users:read")
        );
        let other: TransportError = HttpStatusError::new(503, None).into();
        assert_eq!(Refusal::find(&other), None);
    }

    #[test]
    fn custom_headers_go_out_sorted_and_reserved_ones_are_refused() {
        let target = Target::parse("http://h:1/mcp").unwrap();
        let headers: HashMap<HeaderName, HeaderValue> =
            ["mcp-name", "mcp-method", "mcp-protocol-version", "a-first"]
                .into_iter()
                .map(|n| (HeaderName::from_static(n), HeaderValue::from_static("v")))
                .collect();
        let outgoing = |custom_headers| Outgoing {
            method: Method::POST,
            target: &target,
            auth_token: Some("t".into()),
            session_id: Some("s"),
            last_event_id: None,
            custom_headers,
            json: Some(Bytes::from_static(b"{}")),
        };
        let request = outgoing(headers).build().unwrap();
        let names: Vec<_> = request.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "host",
                "accept",
                "content-type",
                "authorization",
                "a-first",
                "mcp-method",
                "mcp-name",
                "mcp-protocol-version",
                "mcp-session-id"
            ]
        );
        assert!(request.headers()[AUTHORIZATION].is_sensitive());
        let reserved = HashMap::from([(
            HeaderName::from_static("accept"),
            HeaderValue::from_static("*/*"),
        )]);
        assert!(matches!(
            outgoing(reserved).build(),
            Err(StreamableHttpError::ReservedHeaderConflict(_))
        ));
    }

    fn tool_call(id: i64) -> ClientJsonRpcMessage {
        let params = rmcp::model::CallToolRequestParams::new("getUserIdByEmail");
        ClientJsonRpcMessage::request(
            ClientRequest::CallToolRequest(rmcp::model::Request::new(params)),
            RequestId::Number(id),
        )
    }

    fn event(data: &str) -> Result<Sse, SseError> {
        Ok(Sse {
            data: Some(data.to_owned()),
            id: Some("0/1".into()),
            ..Sse::default()
        })
    }

    const PRIMING: &str = "";
    const ANSWER: &str =
        r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"u1"}]}}"#;

    async fn answer(events: Vec<Result<Sse, SseError>>) -> StreamableHttpPostResponse {
        let stream = futures::stream::iter(events).boxed();
        answer_from_events(stream, &tool_call(7), Some("s".into())).await
    }

    async fn replayed(response: StreamableHttpPostResponse) -> Vec<Option<String>> {
        let StreamableHttpPostResponse::Sse(stream, session) = response else {
            panic!("expected the stream back: {response:?}");
        };
        assert_eq!(session.as_deref(), Some("s"));
        stream
            .map(|event| event.ok().and_then(|e| e.data))
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_primed_stream_holding_only_the_answer_becomes_a_json_answer() {
        let response = answer(vec![event(PRIMING), event(ANSWER), event("ignored")]).await;
        let StreamableHttpPostResponse::Json(message, session) = response else {
            panic!("{response:?}");
        };
        assert_eq!(session.as_deref(), Some("s"));
        assert!(matches!(
            message,
            JsonRpcMessage::Response(ref r)
                if r.id == RequestId::Number(7)
                && matches!(r.result, rmcp::model::ServerResult::CallToolResult(_))
        ));
    }

    #[tokio::test]
    async fn any_other_stream_goes_to_rmcp_whole_with_what_was_read_put_back() {
        let note = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#;
        let other = r#"{"jsonrpc":"2.0","id":8,"result":{"content":[]}}"#;
        for (events, expected) in [
            // A notification before the answer: rmcp routes both.
            (
                vec![event(PRIMING), event(note), event(ANSWER)],
                vec![Some(PRIMING), Some(note), Some(ANSWER)],
            ),
            // Another request's answer, or a broken stream: rmcp decides.
            (vec![event(other)], vec![Some(other)]),
            (
                vec![event(PRIMING), Err(SseError::InvalidLine)],
                vec![Some(PRIMING), None],
            ),
            (vec![event(PRIMING)], vec![Some(PRIMING)]),
        ] {
            let expected: Vec<Option<String>> = expected
                .into_iter()
                .map(|data| data.map(str::to_owned))
                .collect();
            assert_eq!(replayed(answer(events).await).await, expected);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_notice_keeps_the_latest_wait_until_it_passes() {
        let notice = RetryAfterNotice::default();
        assert_eq!(notice.remaining(), None);
        notice.note(Duration::from_secs(3));
        notice.note(Duration::from_secs(1));
        assert_eq!(notice.clone().remaining(), Some(Duration::from_secs(3)));
        tokio::time::advance(Duration::from_millis(2_500)).await;
        assert_eq!(notice.remaining(), Some(Duration::from_millis(500)));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(notice.remaining(), None);
    }
}
