//! `serve user|payment`: a reference server with the demo data on stdio,
//! exactly as `user-server` / `payment-server` run it (the kit's `run`),
//! for the stdio benchmarks, which need a program to spawn.

use std::process::ExitCode;

use reference_servers::Role;

fn main() -> ExitCode {
    let Some(role) = std::env::args()
        .nth(1)
        .and_then(|name| name.parse::<Role>().ok())
    else {
        eprintln!("usage: serve user|payment");
        return ExitCode::from(2);
    };
    match reference_servers::serve_stdio(role) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", mcp_server_kit::describe(&error));
            ExitCode::FAILURE
        }
    }
}
