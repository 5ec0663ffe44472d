//! The stdio floor: newline-delimited JSON-RPC on pipes, blocking I/O.

use std::{
    io::{BufRead, BufReader, BufWriter, Write},
    process::{ChildStdin, ChildStdout},
};

use anyhow::{Context, ensure};
use serde_json::Value;

use crate::{Call, Role, Server, answer};

/// Answers one JSON-RPC request per line of stdin, on stdout.
pub(crate) fn serve(role: Role) -> anyhow::Result<()> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let request: Value = serde_json::from_str(&line?)?;
        serde_json::to_writer(&mut stdout, &answer(role, &request))?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}

/// A `floor server` child and the pipes to it.
#[derive(Debug)]
pub(crate) struct Peer {
    to: BufWriter<ChildStdin>,
    from: BufReader<ChildStdout>,
    line: String,
    _server: Server,
}

impl Peer {
    pub(crate) fn spawn(role: Role) -> anyhow::Result<Self> {
        let mut server = Server::spawn("server", role)?;
        let to = BufWriter::new(server.0.stdin.take().context("no stdin")?);
        let from = BufReader::new(server.0.stdout.take().context("no stdout")?);
        Ok(Self {
            to,
            from,
            line: String::new(),
            _server: server,
        })
    }
}

impl Call for Peer {
    fn call(&mut self, request: &Value) -> anyhow::Result<Value> {
        serde_json::to_writer(&mut self.to, request)?;
        self.to.write_all(b"\n")?;
        self.to.flush()?;
        self.line.clear();
        ensure!(
            self.from.read_line(&mut self.line)? > 0,
            "the floor server left"
        );
        Ok(serde_json::from_str(&self.line)?)
    }
}
