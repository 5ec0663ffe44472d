//! `payment-server`: serves the ledger over stdio (default), TCP or HTTP.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mcp_server_kit::ServeArgs;
use payment_server::{DEFAULT_HTTP_ADDR, Ledger, PaymentServer};

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
    let ledger = match &cli.serve.data {
        Some(path) => payment_server::load_ledger(path)?,
        None => Ledger::demo(),
    };
    tracing::info!(transactions = ledger.len(), "dataset loaded");
    mcp_server_kit::run(
        "payment-server",
        PaymentServer::new(ledger),
        &cli.serve,
        DEFAULT_HTTP_ADDR,
    )
    .context("payment-server failed")
}
