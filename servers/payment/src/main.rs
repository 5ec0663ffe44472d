//! `payment-server`: serves the ledger over stdio (default), TCP or HTTP.

use std::process::ExitCode;

use clap::Parser;
use mcp_server_kit::ServeArgs;
use payment_server::{Ledger, PaymentServer};

/// MCP payment server: getTransactionsUsingUserId {userId, count?} -> transactions.
///
/// Speaks MCP on stdio by default, as desktop assistants and the MCP
/// Inspector launch servers. Logs go to stderr.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "With --http and no ADDR it listens on 127.0.0.1:8083."
)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    mcp_server_kit::main(&payment_server::SPEC, &cli.serve, |data| {
        let store = match data {
            Some(path) => payment_server::load_ledger(path)?,
            None => Ledger::demo(),
        };
        tracing::info!(transactions = store.len(), "dataset loaded");
        Ok(PaymentServer::new(store))
    })
}
