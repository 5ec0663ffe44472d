//! The serving layer the reference MCP servers share.
//!
//! A server crate owns its domain and its rmcp tool handler; this crate owns
//! everything between that handler and the wire:
//!
//! - [`LineTransport`]: newline-delimited JSON-RPC with a hard message cap and
//!   JSON-RPC 2.0 error replies for garbage, used for stdio and TCP (and by the
//!   simulation, over turmoil streams);
//! - [`serve_stdio`], [`serve_tcp`], [`serve_http`]: the three real transports,
//!   each bounded by one [`Limits`];
//! - [`ServeArgs`] and [`run`]: the shared command line and a signal-aware main;
//! - [`read_json`]: dataset files with errors that name file, line and field.
//!
//! Nothing here knows about users, payments, the orchestrator or turmoil.

mod auth;
mod cli;
mod data;
mod frame;
mod serve;

pub use auth::{
    AUTHORIZATION_BYTES_MAX, AuthConfigError, AuthSettings, Authenticator, CLOCK_LEEWAY_S,
    CallGuard, Clock, Denial, JWKS_KEYS_MAX, JwtSettings, Principal, Protection, SESSION_IDLE,
    SESSIONS_PER_TOKEN_MAX, STATIC_TOKEN_CHARS_MIN, Secret, TRACKED_TOKENS_MAX, Via, bearer_token,
    check_static_token, metadata_url, parse_jwks, parse_static_tokens, principal,
};
pub use cli::{
    AuthArgs, Listen, ServeArgs, ServerSpec, bind, describe, generate_token, init_tracing, main,
    run, system_clock,
};
pub use data::{DATA_FILE_BYTES_MAX, DataFileError, parse_json, read_json};
pub use frame::{LineTransport, MESSAGE_BYTES_MAX};
pub use serve::{
    Access, HttpOptions, Limits, ServeError, cancel_on_signal, http_router, serve_connection,
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
