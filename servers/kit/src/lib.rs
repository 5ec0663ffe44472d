//! The serving layer the reference MCP servers share.
//!
//! A server crate owns its domain and its rmcp tool handler; this crate owns
//! everything between that handler and the wire. Its whole public API:
//!
//! - **Serving.** [`serve_stdio`], [`serve_tcp`], [`serve_http`] (and
//!   [`http_router`], the same endpoint as an axum router for a server of
//!   one's own), each bounded by one [`Limits`], with [`HttpOptions`] and
//!   [`Access`] for HTTP; [`serve_connection`] serves one session on any
//!   byte stream (a turmoil stream, an in-memory pipe) with the newline
//!   framing and JSON-RPC error replies of stdio and TCP;
//!   [`serve_http_on`] serves a router on any [`Accept`] (a simulated
//!   listener, say) within the HTTP connection limits, with or without a
//!   `Date` header ([`DateHeader`]); [`bind`];
//!   [`ServeError`]; [`MESSAGE_BYTES_MAX`].
//! - **Access control.** An [`Authenticator`] built from [`AuthSettings`]
//!   ([`Secret`] static tokens, [`JwtSettings`], a [`Clock`]) checks bearer
//!   tokens over HTTP; a server states what it protects in a [`Protection`]
//!   (scope and [`CallGuard`]); tools read the request's [`Principal`] with
//!   [`principal`]; [`AuthConfigError`].
//! - **A server binary.** [`ServerSpec`], [`ServeArgs`] (the shared command
//!   line), [`main`] and [`run`] (a signal-aware main), [`init_tracing`],
//!   [`describe`], [`system_clock`], [`generate_token`], and [`say!`].
//! - **Datasets.** [`read_json`]: files with errors that name file, line
//!   and field ([`DataFileError`]).
//!
//! Nothing here knows about users, payments, the orchestrator or turmoil.

mod auth;
mod cli;
mod data;
mod frame;
mod listener;
mod serve;
pub mod sessions;

pub use auth::{
    AuthConfigError, AuthSettings, Authenticator, CallGuard, Clock, JwtSettings, Principal,
    Protection, Secret, principal,
};
pub use cli::{
    ServeArgs, ServerSpec, bind, describe, generate_token, init_tracing, main, run, system_clock,
};
pub use data::{DataFileError, read_json};
pub use frame::MESSAGE_BYTES_MAX;
pub use listener::{Accept, DateHeader, serve_http_on};
pub use serve::{
    Access, HttpOptions, Limits, SSE_KEEP_ALIVE, ServeError, http_router, serve_connection,
    serve_http, serve_stdio, serve_tcp,
};

/// `println!` for binaries: ends the process quietly (exit 0) when stdout
/// is closed, as by `| head`, instead of panicking.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(error) = writeln!(std::io::stdout(), $($arg)*) {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}
