//! A plain JSON POST over the same [`HttpClient`]: its pool, its dialer
//! (real or simulated TCP), one deadline for the whole exchange, and a cap
//! on the body read. For HTTP APIs that are not MCP, such as an
//! OpenAI-compatible `/v1/chat/completions` endpoint.

use bytes::Bytes;
use futures::StreamExt as _;
use http::{
    HeaderValue, Method, Request, StatusCode,
    header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, RETRY_AFTER},
};
use http_body_util::Full;
use tokio::time::Instant;

use crate::{
    client::{HttpClient, HttpClientError, Target},
    dial::Dialer,
};

/// A response to [`HttpClient::post_json`], read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonResponse {
    pub status: StatusCode,
    /// Raw `Retry-After` (at most 128 bytes), for a 429 or 503.
    pub retry_after: Option<String>,
    /// The body: at most the cap given, else the call failed.
    pub body: Bytes,
}

/// Why a JSON POST got no complete response.
#[derive(Debug, thiserror::Error)]
pub enum JsonPostError {
    /// No connection, a broken one, a bad URL, or the deadline passed.
    #[error(transparent)]
    Http(#[from] HttpClientError),
    /// The body went past the cap; nothing of it is kept.
    #[error("the response body is larger than {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
}

impl<D: Dialer> HttpClient<D> {
    /// POSTs `body` (JSON) to `url` with an optional bearer token and reads
    /// the whole response, at most `max_bytes` of it, all before `deadline`.
    /// Any status comes back as a response: what it means is the caller's.
    pub async fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: Vec<u8>,
        max_bytes: usize,
        deadline: Instant,
    ) -> Result<JsonResponse, JsonPostError> {
        let target = Target::parse(url)?;
        let request = json_request(&target, bearer, body)?;
        let response = self.exchange(&target.endpoint, request, deadline).await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(128).collect());
        let read = read_capped(response.into_body(), max_bytes);
        let after = deadline.saturating_duration_since(Instant::now());
        let body = tokio::time::timeout_at(deadline, read)
            .await
            .map_err(|_| HttpClientError::Timeout { after })??;
        Ok(JsonResponse {
            status,
            retry_after,
            body,
        })
    }
}

/// The request, headers in a fixed order: `Host`, `Accept`,
/// `Content-Type`, `Authorization` (marked sensitive).
fn json_request(
    target: &Target,
    bearer: Option<&str>,
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, HttpClientError> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(target.path.clone())
        .header(HOST, target.host.clone())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/json");
    if let Some(token) = bearer {
        let mut value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|e| HttpClientError::Request(e.into()))?;
        value.set_sensitive(true);
        request = request.header(AUTHORIZATION, value);
    }
    Ok(request.body(Full::new(Bytes::from(body)))?)
}

async fn read_capped(
    mut body: crate::sse::BodyStream,
    max_bytes: usize,
) -> Result<Bytes, JsonPostError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if chunk.len() > max_bytes - bytes.len() {
            return Err(JsonPostError::TooLarge { max_bytes });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}
