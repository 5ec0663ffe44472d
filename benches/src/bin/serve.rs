//! `serve user|payment`: a reference server with the demo data on stdio,
//! exactly as `user-server` / `payment-server` run it (the kit's `run`),
//! for the stdio benchmarks, which need a program to spawn.

use std::process::ExitCode;

use mcp_server_kit::ServeArgs;
use payment_server::{Ledger, PaymentServer};
use user_server::{UserServer, UserStore};

fn main() -> ExitCode {
    let args = ServeArgs::stdio();
    let result = match std::env::args().nth(1).as_deref() {
        Some("user") => mcp_server_kit::run(
            &user_server::SPEC,
            UserServer::new(UserStore::demo()),
            &args,
        ),
        Some("payment") => mcp_server_kit::run(
            &payment_server::SPEC,
            PaymentServer::new(Ledger::demo()),
            &args,
        ),
        _ => {
            eprintln!("usage: serve user|payment");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", mcp_server_kit::describe(&error));
            ExitCode::FAILURE
        }
    }
}
