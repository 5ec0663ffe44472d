//! `user-server`: serves the user directory over stdio (default), TCP or HTTP.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mcp_server_kit::ServeArgs;
use user_server::{DEFAULT_HTTP_ADDR, UserServer, UserStore};

/// MCP user server: getUserIdByEmail {email} -> user id.
///
/// Speaks MCP on stdio by default, as desktop assistants and the MCP
/// Inspector launch servers. Logs go to stderr.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "With --http and no ADDR it listens on 127.0.0.1:8082."
)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Exit codes: 0 after a clean stop, 1 on bad data or a serving failure,
/// 2 on bad arguments (from clap).
fn main() -> ExitCode {
    mcp_server_kit::init_tracing();
    let cli = Cli::parse();
    match serve(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", mcp_server_kit::describe(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: &Cli) -> anyhow::Result<()> {
    let store = match &cli.serve.data {
        Some(path) => user_server::load_users(path)?,
        None => UserStore::demo(),
    };
    tracing::info!(users = store.users().len(), "dataset loaded");
    mcp_server_kit::run(
        "user-server",
        UserServer::new(store),
        &cli.serve,
        DEFAULT_HTTP_ADDR,
    )
    .context("user-server failed")
}
