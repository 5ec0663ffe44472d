//! The wire log read back into chunks, for the timeline's message ticks.
//!
//! The log is written by the simulation's clients, one chunk per entry:
//! `"{ms:>8} ms  {name} {<|>} {text}"`, where `name` is the server's name
//! (after the client's, with several clients) and `text` may hold
//! newlines. The names are known from the topology, so a line that does
//! not start with a time and a known name continues the chunk before it.

use crate::topology::{Host, ServerId, Topology};

/// One chunk a client sent or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chunk<'a> {
    pub(super) at_ms: u64,
    pub(super) client: usize,
    pub(super) server: ServerId,
    /// Sent by the client (`<`), else received (`>`).
    pub(super) sent: bool,
    pub(super) text: &'a str,
}

/// A chunk's heading: `"user < "`, and what it stands for. The model
/// host's chunks (`server` is `None`) are read past, not drawn.
struct Heading {
    prefix: String,
    client: usize,
    server: Option<ServerId>,
    sent: bool,
}

/// Every chunk of `log`, in order.
pub(super) fn chunks<'a>(log: &'a str, topology: &Topology) -> Vec<Chunk<'a>> {
    let headings = headings(topology);
    let mut chunks: Vec<Chunk<'a>> = Vec::new();
    let mut offset = 0;
    // In a chunk of the model host's, which is not drawn.
    let mut skipping = false;
    for line in log.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.strip_suffix('\n').unwrap_or(line);
        match parse_line(body, &headings) {
            Some(Some(chunk)) => {
                skipping = false;
                chunks.push(chunk);
            }
            Some(None) => skipping = true,
            None if skipping => {}
            None => {
                if let Some(last) = chunks.last_mut() {
                    // The text runs on to the end of this line.
                    let text_start = last.text.as_ptr() as usize - log.as_ptr() as usize;
                    last.text = &log[text_start..start + body.len()];
                }
            }
        }
    }
    chunks
}

/// The chunk a line starts (`Some(None)`: one of the model host's), or
/// `None` for a line that continues the chunk before it.
fn parse_line<'a>(line: &'a str, headings: &[Heading]) -> Option<Option<Chunk<'a>>> {
    let (at, rest) = line.trim_start().split_once(" ms  ")?;
    let at_ms = at.parse().ok()?;
    let heading = headings.iter().find(|h| rest.starts_with(&h.prefix))?;
    Some(heading.server.map(|server| Chunk {
        at_ms,
        client: heading.client,
        server,
        sent: heading.sent,
        text: &rest[heading.prefix.len()..],
    }))
}

/// Every heading the clients write: one per client, server and direction.
fn headings(topology: &Topology) -> Vec<Heading> {
    let labelled = topology.clients() > 1;
    let mut headings = Vec::new();
    let model = topology
        .has_model()
        .then(|| (None, topology.name(Host::Model).into_owned()));
    for (client, host) in topology.client_hosts().enumerate() {
        let servers = topology.servers().map(|(id, s)| (Some(id), s.name.clone()));
        for (server, peer) in servers.chain(model.clone()) {
            for sent in [true, false] {
                let name = match labelled {
                    true => format!("{} {peer}", topology.name(host)),
                    false => peer.clone(),
                };
                let arrow = if sent { '<' } else { '>' };
                headings.push(Heading {
                    prefix: format!("{name} {arrow} "),
                    client,
                    server,
                    sent,
                });
            }
        }
    }
    headings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_read_back_with_their_times_names_and_newlines() {
        let topology = Topology::new(Topology::default_servers(), 1).unwrap();
        let log = "      10 ms  user < {\"a\":1}\n    1200 ms  payment > {\"b\":2}\n{\"c\":3}\n    1300 ms  user > \n";
        let got = chunks(log, &topology);
        let user = ServerId(0);
        let payment = ServerId(1);
        assert_eq!(
            got,
            [
                Chunk {
                    at_ms: 10,
                    client: 0,
                    server: user,
                    sent: true,
                    text: "{\"a\":1}"
                },
                Chunk {
                    at_ms: 1200,
                    client: 0,
                    server: payment,
                    sent: false,
                    text: "{\"b\":2}\n{\"c\":3}"
                },
                Chunk {
                    at_ms: 1300,
                    client: 0,
                    server: user,
                    sent: false,
                    text: ""
                },
            ]
        );
    }

    #[test]
    fn with_several_clients_the_client_is_named_first() {
        let topology = Topology::new(Topology::default_servers(), 2).unwrap();
        let got = chunks("       5 ms  client2 payment < x\n", &topology);
        assert_eq!(
            (got[0].client, got[0].server, got[0].sent),
            (1, ServerId(1), true)
        );
        assert_eq!(got[0].text, "x");
    }

    #[test]
    fn the_model_hosts_chunks_are_read_past_with_their_lines() {
        let topology = Topology::new(Topology::default_servers(), 1)
            .unwrap()
            .with_model();
        let log = "       5 ms  user < x
       6 ms  model < POST /v1/chat/completions HTTP/1.1
host: model
       7 ms  model > {}
       8 ms  payment > y
";
        let got = chunks(log, &topology);
        let texts: Vec<(ServerId, &str)> = got.iter().map(|c| (c.server, c.text)).collect();
        assert_eq!(texts, [(ServerId(0), "x"), (ServerId(1), "y")]);
    }
}
