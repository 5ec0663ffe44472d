//! The model endpoint: an OpenAI-compatible `POST …/chat/completions`
//! (llama.cpp's server, Ollama, vLLM, OpenAI, Groq), over the same HTTP
//! client as MCP, so that the harness reaches a simulated model host
//! through its own dialer. One attempt here; the engine's retry loop, the
//! model's breaker and the question's deadline wrap it.

use std::time::Duration;

use futures::future::BoxFuture;
use mcp_http::{
    client::{HttpClient, HttpClientConfig, HttpClientError},
    dial::Dialer,
    json::JsonPostError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::{
    config::Credential,
    connector::{ConnectError, HttpRefusal},
    error::Failure,
};

/// Largest model reply read, in bytes.
const REPLY_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Bytes of an error body kept in a message.
const ERROR_BODY_CHARS_MAX: usize = 300;

/// One chat-completions request, as the API takes it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChatRequest {
    pub(crate) model: String,
    pub(crate) messages: Vec<Message>,
    pub(crate) temperature: f32,
    pub(crate) seed: u64,
    pub(crate) max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tools: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_choice: Option<Value>,
}

/// One message of the conversation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Message {
    pub(crate) role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_calls: Option<Vec<ToolCall>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_call_id: Option<String>,
}

impl Message {
    pub(crate) fn text(role: &'static str, content: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(content.into()),
            tool_calls: None,
            tool_call_id: None,
        }
    }
}

/// A native tool call, as the model made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ToolCall {
    #[serde(default)]
    pub(crate) id: String,
    #[serde(default = "function_type", rename = "type")]
    pub(crate) kind: String,
    pub(crate) function: FunctionCall,
}

fn function_type() -> String {
    "function".to_owned()
}

/// The function a tool call names, its arguments as a JSON string.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FunctionCall {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) arguments: String,
}

/// What the model said: text, tool calls, or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reply {
    pub(crate) content: Option<String>,
    pub(crate) tool_calls: Vec<(String, String, String)>,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ReplyMessage,
}

#[derive(Deserialize)]
struct ReplyMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

/// A model reply that is not a chat completion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the model endpoint's reply is not a chat completion: {0}")]
pub(crate) struct MalformedCompletion(pub(crate) String);

/// Reads a chat-completions response body.
pub(crate) fn read_reply(body: &[u8]) -> Result<Reply, MalformedCompletion> {
    let completion: Completion =
        serde_json::from_slice(body).map_err(|e| MalformedCompletion(e.to_string()))?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| MalformedCompletion("no choices".into()))?;
    let tool_calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.id, c.function.name, c.function.arguments))
        .collect();
    Ok(Reply {
        content: choice.message.content,
        tool_calls,
    })
}

/// Sends one request to the model; the engine retries it.
pub(crate) trait ChatEndpoint: Send + Sync + std::fmt::Debug {
    /// The URL requests go to, for messages.
    fn target(&self) -> String;
    /// One attempt: the response body of a 2xx, else why not.
    fn send(&self, body: Vec<u8>, timeout: Duration) -> BoxFuture<'_, Result<Vec<u8>, Failure>>;
}

/// An OpenAI-compatible endpoint over the HTTP client, through `D`.
pub(crate) struct OpenAiEndpoint<D> {
    client: HttpClient<D>,
    url: String,
    api_key: Option<Credential>,
}

impl<D> std::fmt::Debug for OpenAiEndpoint<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEndpoint")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl<D: Dialer> OpenAiEndpoint<D> {
    /// `base_url` ends before `/chat/completions` (e.g. `…/v1`).
    pub(crate) fn new(dialer: D, base_url: &str, api_key: Option<Credential>) -> Self {
        let config = HttpClientConfig {
            json_response_bytes_max: REPLY_BYTES_MAX,
            ..HttpClientConfig::DEFAULT
        };
        Self {
            client: HttpClient::new(dialer, config),
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
        }
    }

    async fn attempt(&self, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, Failure> {
        let token = match &self.api_key {
            None => None,
            Some(credential) => Some(credential.resolve().map_err(|source| {
                Failure::Denied(ConnectError::Credential {
                    target: self.url.clone(),
                    source,
                })
            })?),
        };
        let bearer = token.as_ref().map(|t| t.expose());
        let deadline = Instant::now() + timeout;
        let response = self
            .client
            .post_json(&self.url, bearer, body, REPLY_BYTES_MAX, deadline)
            .await
            .map_err(|error| self.transport_failure(error, timeout))?;
        let status = response.status.as_u16();
        if response.status.is_success() {
            return Ok(response.body.to_vec());
        }
        let text = String::from_utf8_lossy(&response.body);
        let message: String = text.trim().chars().take(ERROR_BODY_CHARS_MAX).collect();
        Err(status_failure(
            &self.url,
            status,
            response.retry_after.as_deref(),
            message,
        ))
    }

    fn transport_failure(&self, error: JsonPostError, timeout: Duration) -> Failure {
        match error {
            JsonPostError::Http(HttpClientError::Timeout { .. }) => Failure::Timeout {
                timeout_ms: timeout.as_millis(),
            },
            // A dialer without TLS refuses an https URL: no retry changes that.
            JsonPostError::Http(HttpClientError::Connect { source, .. })
                if source.kind() == std::io::ErrorKind::Unsupported =>
            {
                Failure::Rejected {
                    status: 0,
                    message: format!("{}: {source}", self.url),
                }
            }
            JsonPostError::Http(HttpClientError::Connect { source, .. }) => {
                Failure::Connect(ConnectError::Io {
                    target: self.url.clone(),
                    source,
                })
            }
            JsonPostError::Http(error @ HttpClientError::InvalidUrl { .. }) => Failure::Rejected {
                status: 0,
                message: error.to_string(),
            },
            JsonPostError::Http(error) => Failure::Transport {
                message: error.to_string(),
            },
            error @ JsonPostError::TooLarge { .. } => Failure::Rejected {
                status: 0,
                message: error.to_string(),
            },
        }
    }
}

/// What a non-2xx status means for the attempt: 401/403 are final, 429 and
/// 5xx are worth another attempt, any other status is the request's fault.
fn status_failure(url: &str, status: u16, retry_after: Option<&str>, message: String) -> Failure {
    match status {
        401 => Failure::Denied(ConnectError::Denied {
            target: url.to_owned(),
            refusal: HttpRefusal::Unauthorized {
                reason: Some(format!("the model endpoint refused the API key: {message}")),
            },
        }),
        403 => Failure::Denied(ConnectError::Denied {
            target: url.to_owned(),
            refusal: HttpRefusal::Forbidden { scope: None },
        }),
        429 => Failure::RateLimited(HttpRefusal::RateLimited {
            retry_after: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(86_400))),
        }),
        500..=599 => Failure::Transport {
            message: format!("HTTP {status}: {message}"),
        },
        _ => Failure::Rejected { status, message },
    }
}

impl<D: Dialer> ChatEndpoint for OpenAiEndpoint<D> {
    fn target(&self) -> String {
        self.url.clone()
    }

    fn send(&self, body: Vec<u8>, timeout: Duration) -> BoxFuture<'_, Result<Vec<u8>, Failure>> {
        Box::pin(self.attempt(body, timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_and_native_tool_calls() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"c1","type":"function","function":{"name":"user__get","arguments":"{\"email\":\"a@b\"}"}}]}}]}"#;
        let reply = read_reply(body).unwrap();
        assert_eq!(reply.content, None);
        assert_eq!(
            reply.tool_calls,
            [(
                "c1".to_owned(),
                "user__get".to_owned(),
                r#"{"email":"a@b"}"#.to_owned()
            )]
        );
        let text =
            read_reply(br#"{"choices":[{"message":{"content":"{\"tool\":\"done\"}"}}]}"#).unwrap();
        assert_eq!(text.content.as_deref(), Some(r#"{"tool":"done"}"#));
    }

    #[test]
    fn a_reply_that_is_not_a_completion_is_malformed() {
        for body in [&b"not json"[..], br#"{"choices":[]}"#, br#"{"error":"x"}"#] {
            assert!(
                read_reply(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn statuses_mean_what_the_retry_loop_needs() {
        let url = "http://m/v1/chat/completions";
        assert!(!status_failure(url, 401, None, "no".into()).is_retryable());
        assert!(!status_failure(url, 400, None, "bad".into()).is_retryable());
        assert!(status_failure(url, 503, None, "busy".into()).is_retryable());
        let limited = status_failure(url, 429, Some("3"), String::new());
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
    }
}
