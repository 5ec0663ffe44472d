//! The physical floor: the 2-hop demo as two child processes with no MCP
//! layer, over two transports. Whatever an MCP stack adds on top of these
//! is overhead.
//!
//! - stdio (`stdio.rs`): newline-delimited JSON-RPC on pipes, blocking I/O.
//! - HTTP (`http.rs`): the same JSON-RPC messages POSTed to a hyper HTTP/1.1
//!   server on loopback, one keep-alive connection per server, answered
//!   with a plain JSON body.
//!
//! ```text
//! floor client --queries 20000        # stdio: prints one JSON line
//! floor http-client --queries 20000   # HTTP/1.1 keep-alive: the same
//! floor server user|payment           # what `client` spawns
//! floor http-server user|payment      # what `http-client` spawns (prints its port)
//! ```

mod http;
mod stdio;

use std::{
    process::{Command, ExitCode, Stdio},
    sync::LazyLock,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, ensure};
use benches::{BOB, Measured};
use mcp_server_kit::say;
use serde_json::{Value, json};

const USAGE: &str =
    "usage: floor client|http-client --queries N | floor server|http-server user|payment";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["server", role] => Role::parse(role).and_then(stdio::serve),
        ["http-server", role] => Role::parse(role).and_then(http::serve),
        ["client", "--queries", n] => {
            queries(n).and_then(|n| client("stdio", n, stdio::Peer::spawn))
        }
        ["http-client", "--queries", n] => {
            queries(n).and_then(|n| client("http", n, http::Peer::spawn))
        }
        _ => Err(anyhow!(USAGE)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn queries(n: &str) -> anyhow::Result<u64> {
    n.parse().context("--queries takes a number")
}

/// Which demo server a child plays.
#[derive(Debug, Clone, Copy)]
enum Role {
    User,
    Payment,
}

impl Role {
    fn parse(role: &str) -> anyhow::Result<Self> {
        match role {
            "user" => Ok(Self::User),
            "payment" => Ok(Self::Payment),
            other => Err(anyhow!("no server role {other:?}: user or payment")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Payment => "payment",
        }
    }
}

/// The demo data the real servers answer from.
static DATA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../../../servers/example-data.json"))
        .expect("servers/example-data.json is JSON")
});

/// The reply to one JSON-RPC request: the user server's lookup or the
/// payment server's list.
fn answer(role: Role, request: &Value) -> Value {
    let args = &request["params"]["arguments"];
    let result = match role {
        Role::User => lookup(args),
        Role::Payment => list(args),
    };
    json!({ "jsonrpc": "2.0", "id": request["id"], "result": result })
}

fn lookup(args: &Value) -> Value {
    let email = args["email"].as_str().unwrap_or_default().to_lowercase();
    let user = rows("users").find(|u| u["email"].as_str() == Some(email.as_str()));
    json!({ "userId": user.map(|u| u["id"].clone()) })
}

fn list(args: &Value) -> Value {
    let id = &args["userId"];
    let mut mine: Vec<&Value> = rows("transactions")
        .filter(|t| &t["userId"] == id)
        .collect();
    mine.sort_by(|a, b| b["date"].as_str().cmp(&a["date"].as_str()));
    json!({ "transactions": mine })
}

fn rows(table: &str) -> impl Iterator<Item = &'static Value> {
    DATA[table].as_array().into_iter().flatten()
}

/// A floor server: this executable as a child process (`floor <command>
/// <role>`) with piped stdin and stdout, killed when dropped.
#[derive(Debug)]
struct Server(std::process::Child);

impl Server {
    fn spawn(command: &str, role: Role) -> anyhow::Result<Self> {
        let child = Command::new(std::env::current_exe()?)
            .args([command, role.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start the floor {command}"))?;
        Ok(Self(child))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request and its reply, over whichever transport.
trait Call {
    fn call(&mut self, request: &Value) -> anyhow::Result<Value>;

    /// Calls `tool` and returns the reply's result.
    fn tool(&mut self, id: u64, tool: &str, arguments: Value) -> anyhow::Result<Value> {
        let request = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": tool, "arguments": arguments },
        });
        Ok(self.call(&request)?["result"].take())
    }
}

/// Starts both servers, warms up, then asks the 2-hop question `queries`
/// times in sequence and prints one `Measured` line.
fn client<P: Call>(
    transport: &str,
    queries: u64,
    spawn: fn(Role) -> anyhow::Result<P>,
) -> anyhow::Result<()> {
    let mut user = spawn(Role::User)?;
    let mut payment = spawn(Role::Payment)?;
    for id in 0..100 {
        query(&mut user, &mut payment, id)?; // warm-up
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(queries as usize);
    let started = Instant::now();
    for id in 0..queries {
        let begun = Instant::now();
        query(&mut user, &mut payment, id)?;
        latencies.push(begun.elapsed());
    }
    let measured = Measured::from_latencies(transport, 1, latencies, started.elapsed());
    say!("{}", serde_json::to_string(&measured)?);
    Ok(())
}

/// One 2-hop query: the lookup, then the list; checks both answers.
fn query(user: &mut impl Call, payment: &mut impl Call, id: u64) -> anyhow::Result<()> {
    let found = user.tool(
        id,
        "getUserIdByEmail",
        json!({ "email": "bob@example.com" }),
    )?;
    let user_id = found["userId"].as_str().context("no userId")?.to_owned();
    ensure!(user_id == BOB, "wrong user id {user_id}");
    let list = payment.tool(
        id,
        "getTransactionsUsingUserId",
        json!({ "userId": user_id }),
    )?;
    let n = list["transactions"].as_array().map_or(0, Vec::len);
    ensure!(n == 4, "expected Bob's 4 transactions, got {n}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_the_lookup_and_the_list_from_the_demo_data() {
        let lookup = json!({ "id": 7, "params": { "arguments": { "email": "Bob@Example.com" } } });
        let found = answer(Role::User, &lookup);
        assert_eq!(found["id"], 7);
        assert_eq!(found["result"]["userId"], BOB);

        let list = json!({ "id": 8, "params": { "arguments": { "userId": BOB } } });
        let listed = answer(Role::Payment, &list);
        let dates: Vec<&str> = listed["result"]["transactions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["date"].as_str())
            .collect();
        assert_eq!(dates.len(), 4, "{listed}");
        assert!(dates.is_sorted_by(|a, b| a >= b), "newest first: {dates:?}");
    }

    #[test]
    fn knows_only_the_two_roles() {
        assert!(Role::parse("user").is_ok() && Role::parse("payment").is_ok());
        assert!(Role::parse("ledger").is_err());
    }
}
