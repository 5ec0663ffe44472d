//! The physical floor: the 2-hop demo as two child processes speaking
//! newline-delimited JSON-RPC on pipes, with blocking I/O and no MCP layer.
//! Whatever an MCP stack adds on top of this is overhead.
//!
//! ```text
//! floor client --queries 20000      # prints one JSON line
//! floor server user|payment         # what the client spawns
//! ```

use std::{
    io::{BufRead, BufReader, BufWriter, Write},
    process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use benches::{BOB, Measured};
use mcp_server_kit::say;
use serde_json::{Value, json};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["server", role] => serve(role),
        ["client", "--queries", n] => n
            .parse()
            .context("--queries takes a number")
            .and_then(client),
        _ => Err(anyhow::anyhow!(
            "usage: floor client --queries N | floor server user|payment"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Answers one JSON-RPC request per line: the user server's lookup or the
/// payment server's list, from the same demo data as the real servers.
fn serve(role: &str) -> anyhow::Result<()> {
    let data: Value = serde_json::from_str(include_str!("../../../servers/example-data.json"))?;
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let request: Value = serde_json::from_str(&line?)?;
        let args = &request["params"]["arguments"];
        let result = match role {
            "user" => {
                let email = args["email"].as_str().unwrap_or_default().to_lowercase();
                let user = data["users"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|u| u["email"].as_str() == Some(email.as_str()));
                json!({ "userId": user.map(|u| u["id"].clone()) })
            }
            "payment" => {
                let id = &args["userId"];
                let mut mine: Vec<&Value> = data["transactions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| &t["userId"] == id)
                    .collect();
                mine.sort_by(|a, b| b["date"].as_str().cmp(&a["date"].as_str()));
                json!({ "transactions": mine })
            }
            other => bail!("no server role {other:?}: user or payment"),
        };
        let reply = json!({ "jsonrpc": "2.0", "id": request["id"], "result": result });
        serde_json::to_writer(&mut stdout, &reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}

struct Peer {
    child: Child,
    to: BufWriter<ChildStdin>,
    from: BufReader<ChildStdout>,
    line: String,
}

impl Peer {
    fn spawn(role: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["server", role])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the floor server")?;
        let to = BufWriter::new(child.stdin.take().context("no stdin")?);
        let from = BufReader::new(child.stdout.take().context("no stdout")?);
        Ok(Self {
            child,
            to,
            from,
            line: String::new(),
        })
    }

    fn call(&mut self, id: u64, tool: &str, arguments: Value) -> anyhow::Result<Value> {
        let request = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": tool, "arguments": arguments },
        });
        serde_json::to_writer(&mut self.to, &request)?;
        self.to.write_all(b"\n")?;
        self.to.flush()?;
        self.line.clear();
        ensure!(
            self.from.read_line(&mut self.line)? > 0,
            "the floor server left"
        );
        let mut reply: Value = serde_json::from_str(&self.line)?;
        Ok(reply["result"].take())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(queries: u64) -> anyhow::Result<()> {
    let mut user = Peer::spawn("user")?;
    let mut payment = Peer::spawn("payment")?;
    let mut query = |id: u64| -> anyhow::Result<()> {
        let found = user.call(
            id,
            "getUserIdByEmail",
            json!({ "email": "bob@example.com" }),
        )?;
        let user_id = found["userId"].as_str().context("no userId")?.to_owned();
        ensure!(user_id == BOB, "wrong user id {user_id}");
        let list = payment.call(
            id,
            "getTransactionsUsingUserId",
            json!({ "userId": user_id }),
        )?;
        let n = list["transactions"].as_array().map_or(0, Vec::len);
        ensure!(n == 4, "expected Bob's 4 transactions, got {n}");
        Ok(())
    };
    for id in 0..100 {
        query(id)?; // warm-up
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(queries as usize);
    let started = Instant::now();
    for id in 0..queries {
        let begun = Instant::now();
        query(id)?;
        latencies.push(begun.elapsed());
    }
    let measured = Measured::from_latencies("stdio", 1, latencies, started.elapsed());
    say!("{}", serde_json::to_string(&measured)?);
    Ok(())
}
