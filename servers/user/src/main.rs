//! `user-server`: serves the user directory over stdio (default), TCP or HTTP.

use std::process::ExitCode;

use clap::Parser;
use mcp_server_kit::ServeArgs;
use user_server::{UserServer, UserStore};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    mcp_server_kit::main(&user_server::SPEC, &cli.serve, |data| {
        let store = match data {
            Some(path) => user_server::load_users(path)?,
            None => UserStore::demo(),
        };
        tracing::info!(users = store.users().len(), "dataset loaded");
        Ok(UserServer::new(store))
    })
}
