//! MCP streamable HTTP that runs the same way over real TCP and inside the
//! turmoil simulation.
//!
//! - [`client`]: [`HttpClient`], rmcp's [`StreamableHttpClient`] over hyper 1
//!   (HTTP/1.1, a bounded keep-alive pool), reaching servers through a
//!   [`Dialer`]; refusals (401/403/429) come back typed ([`Refusal`]).
//! - [`connect`]: a whole MCP connect over HTTP for any dialer, with
//!   failures classified ([`connect::ConnectFailure`]): what the
//!   orchestrator's HTTP connector runs, on real TCP and simulated alike.
//! - [`json`]: a plain JSON POST on the same client (pool, dialer,
//!   deadlines, caps), for HTTP APIs that are not MCP: the orchestrator's
//!   LLM planner reaches its model endpoint with it.
//! - [`reply`]: the answer to a `tools/call` read in one typed parse, not
//!   through rmcp's untagged message and result enums (which buffer and
//!   retry); every other message goes to rmcp's parse unchanged.
//! - [`dial`]: the [`Dialer`] seam and the real-TCP [`TcpDialer`] (plain
//!   HTTP only); with the `https` feature, `TlsDialer`, which also speaks
//!   TLS (rustls, ring, Mozilla's roots). The harness brings a dialer for
//!   simulated TCP.
//!
//! Nothing here reads the wall clock or the OS's randomness: every wait is
//! on `tokio::time`, and request headers go out in a fixed order. The one
//! exception is `TlsDialer` (rustls checks certificates against the clock
//! and draws handshake randomness), which the simulation never uses.
//!
//! [`StreamableHttpClient`]: rmcp::transport::streamable_http_client::StreamableHttpClient
//! [`HttpClient`]: client::HttpClient
//! [`Refusal`]: client::Refusal
//! [`Dialer`]: dial::Dialer
//! [`TcpDialer`]: dial::TcpDialer

pub mod client;
pub mod connect;
pub mod dial;
pub mod json;
mod pool;
pub mod reply;
mod sse;
#[cfg(feature = "https")]
mod tls;
