//! A live MCP session, behind a small trait so that anything can wrap one
//! (the harness does, to plant a bug from outside). [`Connector::connect`]
//! yields one; [`RmcpSession`] is the rmcp client every real connector
//! opens.
//!
//! [`Connector::connect`]: crate::Connector::connect

use std::{fmt, time::Duration};

use futures::future::BoxFuture;
use rmcp::{
    RoleClient, ServiceError,
    model::{CallToolRequestParams, CallToolResult, PaginatedRequestParams, Tool},
    service::RunningService,
};
use serde_json::{Map, Value};

use crate::connector::HttpRefusal;

/// One open MCP session to one server. Object-safe: the orchestrator holds
/// `Box<dyn Session>`, so a session can be wrapped.
pub trait Session: Send + Sync + fmt::Debug {
    /// Every tool the server offers, all pages of `tools/list`.
    fn list_tools(&self) -> BoxFuture<'_, Result<Vec<Tool>, SessionError>>;

    /// Calls `tool` with `arguments`, giving up after `timeout` with
    /// [`SessionError::Timeout`]. A call that timed out may still run on
    /// the server: calls are at-least-once.
    fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CallToolResult, SessionError>>;

    /// Whether the session has been closed.
    fn is_closed(&self) -> bool;

    /// Closes the session now, without waiting: calls in flight on it fail.
    fn close(&self);

    /// Closes the session and waits until it has closed (for stdio, until
    /// the child process has exited).
    fn close_and_wait(&mut self) -> BoxFuture<'_, ()>;
}

/// Why a request on a session got no reply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    /// The server answered with a JSON-RPC error: it is alive, and it
    /// refused the request.
    #[error("Mcp error: {code}: {message}{}", data.as_ref().map(|d| format!("({d})")).unwrap_or_default())]
    Rpc {
        code: i32,
        message: String,
        data: Option<Value>,
    },
    /// An HTTP status refused the request (401, 403 or 429).
    #[error("{0}")]
    Http(HttpRefusal),
    /// The connection failed; the message says how.
    #[error("{0}")]
    Transport(String),
    /// No reply within the call's timeout.
    #[error("no reply within {} ms", .0.as_millis())]
    Timeout(Duration),
}

impl From<ServiceError> for SessionError {
    /// The one place an rmcp error becomes something the orchestrator
    /// decides on. The wording of `Rpc` and `Transport` is rmcp's own.
    fn from(error: ServiceError) -> Self {
        if let ServiceError::McpError(error) = &error {
            return SessionError::Rpc {
                code: error.code.0,
                message: error.message.to_string(),
                data: error.data.clone(),
            };
        }
        match HttpRefusal::find(&error) {
            Some(refusal) => SessionError::Http(refusal),
            None => SessionError::Transport(error.to_string()),
        }
    }
}

/// Most `tools/list` pages read from one server.
const TOOL_PAGES_MAX: usize = 64;

/// The rmcp client session every real connector opens. Dropping it closes
/// the connection (and, for stdio, stops the child process).
#[derive(Debug)]
pub(crate) struct RmcpSession(RunningService<RoleClient, ()>);

impl RmcpSession {
    pub(crate) fn boxed(service: RunningService<RoleClient, ()>) -> Box<dyn Session> {
        Box::new(Self(service))
    }
}

impl Session for RmcpSession {
    fn list_tools(&self) -> BoxFuture<'_, Result<Vec<Tool>, SessionError>> {
        Box::pin(async move {
            // Page by page: rmcp's `list_all_tools` stamps a cache with the
            // wall clock, which a simulated run must not read.
            let mut tools = Vec::new();
            let mut cursor = None;
            for _ in 0..TOOL_PAGES_MAX {
                let page = self
                    .0
                    .list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor)))
                    .await?;
                tools.extend(page.tools);
                cursor = page.next_cursor;
                if cursor.is_none() {
                    return Ok(tools);
                }
            }
            Err(SessionError::Transport(format!(
                "tools/list gave more than {TOOL_PAGES_MAX} pages"
            )))
        })
    }

    fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CallToolResult, SessionError>> {
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        Box::pin(async move {
            match tokio::time::timeout(timeout, self.0.call_tool(params)).await {
                Ok(reply) => Ok(reply?),
                Err(_elapsed) => Err(SessionError::Timeout(timeout)),
            }
        })
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn close(&self) {
        self.0.cancellation_token().cancel();
    }

    fn close_and_wait(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Waits for the transport to close (and a stdio child to exit).
            drop(self.0.close().await);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcp_errors_keep_their_wording() {
        let refused = rmcp::model::ErrorData::invalid_params("no such tool", None);
        let error = SessionError::from(ServiceError::McpError(refused.clone()));
        assert_eq!(
            error.to_string(),
            ServiceError::McpError(refused).to_string()
        );
        assert!(matches!(error, SessionError::Rpc { code: -32602, .. }));
        let with_data = rmcp::model::ErrorData::internal_error("x", Some(Value::from(3)));
        assert_eq!(
            SessionError::from(ServiceError::McpError(with_data.clone())).to_string(),
            ServiceError::McpError(with_data).to_string()
        );
        assert_eq!(
            SessionError::from(ServiceError::TransportClosed),
            SessionError::Transport("Transport closed".into())
        );
    }
}
