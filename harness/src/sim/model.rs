//! The simulated model host (`[planner] kind = "llm"`): an
//! OpenAI-compatible `POST /v1/chat/completions` on the `model` host,
//! served by hyper on simulated TCP, that plays the worst planner it can.
//!
//! Each request it reads the conversation and the menu of offered calls
//! ([`turn`]) and answers, drawn from the run's seed ([`plays`]), either
//! the faithful next step (so that right answers are possible) or, for
//! `[model] adversity` of the turns, an adversarial play: a random offered
//! call, done too early, an address the question does not contain, a value
//! remembered from an earlier question (stale arguments), an invented user
//! id, a tool no server offers, arguments of the wrong type or one too
//! many, a repeated call, malformed content, an empty or unreadable
//! completion, an answer after the request timeout, a dropped connection,
//! HTTP 500 or 429. It checks the orchestrator's guards: it does not stand
//! in for a real model.
//!
//! Deterministic: its RNG is seeded from the run's seed and its
//! incarnation, every draw for a request is made at once when the request
//! has been read, time is `tokio::time`, and nothing iterates a `HashMap`.
//! Bounded: request bodies up to [`BODY_MAX`], at most
//! [`CONNECTIONS_MAX`] connections, a header-read (and idle) timeout, and a
//! bounded memory of earlier requests.

mod plays;
mod turn;

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::{SeedableRng, rngs::SmallRng};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{OwnedSemaphorePermit, Semaphore},
};

use super::PORT;
use crate::{
    scenario::{LlmSetup, Play, Scenario},
    topology::Host,
};
use plays::{Memory, Player, Reply, Step};
use turn::Turn;

/// The one path the host answers.
const CHAT_PATH: &str = "/v1/chat/completions";
/// Largest request body read, in bytes; a larger one gets 413.
pub(super) const BODY_MAX: usize = 1024 * 1024;
/// Most connections open at once; one more is closed at once.
pub(super) const CONNECTIONS_MAX: usize = 256;
/// A request head must be complete this long after the connection is ready
/// for one; an idle kept-alive connection closes after it too.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Mixed into the run's seed, so that the host's draws are its own.
const MODEL_STREAM: u64 = 0x6d6f_6465_6c00_0000;

/// What the model host played, for the trace: a line per answer, with its
/// simulated time, and a count per play.
#[derive(Debug, Default)]
pub(super) struct ModelLog {
    pub(super) lines: Vec<(Duration, String)>,
    /// Answers by play (`faithful` for the faithful ones).
    pub(super) plays: BTreeMap<String, u64>,
}

impl ModelLog {
    /// The trace's summary line, if the host answered anything.
    pub(super) fn totals(&self) -> Option<String> {
        let answered: u64 = self.plays.values().sum();
        let by_play: Vec<String> = self.plays.iter().map(|(p, n)| format!("{p} {n}")).collect();
        (answered > 0).then(|| format!("model: {answered} answers: {}", by_play.join(", ")))
    }
}

/// Adds the `model` host when the scenario's planner is the LLM planner.
pub(super) fn install(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    seed: u64,
) -> Arc<Mutex<ModelLog>> {
    let log = Arc::new(Mutex::new(ModelLog::default()));
    if let Some(setup) = scenario.planner.llm() {
        let host = ModelHost {
            setup: setup.clone(),
            seed,
            incarnations: Arc::default(),
            log: log.clone(),
        };
        let name = scenario.topology.name(Host::Model).into_owned();
        sim.host(name, move || host.clone().serve());
    }
    log
}

/// The host's software, the same at every (re)start.
#[derive(Clone)]
struct ModelHost {
    setup: LlmSetup,
    seed: u64,
    /// Counts (re)starts, so that each incarnation draws anew; outside the
    /// host closure, which turmoil runs again on a restart.
    incarnations: Arc<AtomicU64>,
    log: Arc<Mutex<ModelLog>>,
}

impl ModelHost {
    async fn serve(self) -> turmoil::Result {
        let incarnation = self.incarnations.fetch_add(1, Ordering::Relaxed);
        let seed = self.seed ^ MODEL_STREAM ^ incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let model = Arc::new(Model {
            setup: self.setup,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            memory: Mutex::default(),
            log: self.log,
        });
        let listener =
            turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
        let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        loop {
            let (stream, _) = listener.accept().await?;
            // At the cap, the connection is closed at once (dropped).
            if let Ok(slot) = slots.clone().try_acquire_owned() {
                tokio::spawn(serve_connection(model.clone(), stream, slot));
            }
        }
    }
}

/// One connection, HTTP/1.1 with keep-alive, until either side closes it
/// (an answer the host drops closes it).
async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    model: Arc<Model>,
    stream: S,
    _slot: OwnedSemaphorePermit,
) {
    let service = service_fn(move |request| model.clone().answer(request));
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // The Date header reads the wall clock.
        .auto_date_header(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The state of one incarnation of the host.
struct Model {
    setup: LlmSetup,
    rng: Mutex<SmallRng>,
    memory: Mutex<Memory>,
    log: Arc<Mutex<ModelLog>>,
}

/// The answer is a closed connection: hyper closes it, writing nothing.
#[derive(Debug)]
struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the model host dropped the connection")
    }
}

impl std::error::Error for Dropped {}

type Answer = Result<Response<Full<Bytes>>, Dropped>;

impl Model {
    async fn answer(self: Arc<Self>, request: Request<Incoming>) -> Answer {
        if request.method() != Method::POST || request.uri().path() != CHAT_PATH {
            return Ok(response(404, None, error_body("no such endpoint")));
        }
        let body = match Limited::new(request.into_body(), BODY_MAX).collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) if error.is::<LengthLimitError>() => {
                return Ok(response(413, None, error_body("the request is too large")));
            }
            // The connection broke mid-body: nobody is waiting.
            Err(_) => return Err(Dropped),
        };
        let turn = match Turn::read(&body) {
            Ok(turn) => turn,
            Err(why) => return Ok(response(400, None, error_body(&why))),
        };
        let (think, reply) = self.draw(&turn);
        tokio::time::sleep(think).await;
        send(reply, turn.tools_mode).await
    }

    /// Draws this turn's answer and thinking time (every draw at once, so
    /// the order of draws is the order requests were read), remembers the
    /// turn, and logs the play.
    fn draw(&self, turn: &Turn) -> (Duration, Reply) {
        let mut rng = self.rng.lock().expect("model rng");
        let mut memory = self.memory.lock().expect("model memory");
        let mut player = Player {
            turn,
            memory: &memory,
            rng: &mut rng,
            settings: &self.setup.model,
            timeout: self.setup.request_timeout,
        };
        let think = player.think();
        let (play, reply) = player.reply();
        memory.remember(turn);
        self.record(play, &reply);
        (think, reply)
    }

    fn record(&self, play: Option<Play>, reply: &Reply) {
        let name = play.map_or_else(|| "faithful".to_owned(), Play::name);
        let shown = match reply {
            Reply::Step(Step::Call { tool, arguments })
            | Reply::Late(_, Step::Call { tool, arguments }) => {
                format!("{tool} {arguments}")
            }
            Reply::Step(Step::Done) | Reply::Late(_, Step::Done) => "done".to_owned(),
            Reply::Text(text) => format!("text {text:?}"),
            Reply::RawCall { tool, arguments } => format!("{tool} {arguments:?}"),
            Reply::Body(body) => format!("body {body:?}"),
            Reply::Status {
                status,
                retry_after,
            } => format!("HTTP {status}, Retry-After {retry_after:?}"),
            Reply::Drop => "no answer".to_owned(),
        };
        let at = turmoil::sim_elapsed().unwrap_or_default();
        let mut log = self.log.lock().expect("model log");
        log.lines.push((at, format!("model: {name}: {shown}")));
        *log.plays.entry(name).or_default() += 1;
    }
}

/// Sends the answer drawn.
async fn send(reply: Reply, tools_mode: bool) -> Answer {
    Ok(match reply {
        Reply::Step(step) => completion(step_message(&step, tools_mode)),
        Reply::Text(text) => completion(json!({"role": "assistant", "content": text})),
        Reply::RawCall { tool, arguments } => completion(tool_call(&tool, arguments)),
        Reply::Body(body) => response(200, None, body),
        Reply::Status {
            status,
            retry_after,
        } => response(
            status,
            retry_after,
            error_body("the model is not answering now"),
        ),
        Reply::Late(after, step) => {
            tokio::time::sleep(after).await;
            completion(step_message(&step, tools_mode))
        }
        Reply::Drop => return Err(Dropped),
    })
}

/// The assistant message that proposes `step`: JSON content in
/// `json_schema` mode, a native tool call in `tools` mode.
fn step_message(step: &Step, tools_mode: bool) -> Value {
    match (step, tools_mode) {
        (Step::Call { tool, arguments }, false) => json!({
            "role": "assistant",
            "content": json!({"tool": tool, "arguments": arguments}).to_string(),
        }),
        (Step::Done, false) => json!({
            "role": "assistant",
            "content": json!({"tool": "done"}).to_string(),
        }),
        (Step::Call { tool, arguments }, true) => tool_call(tool, arguments.to_string()),
        (Step::Done, true) => tool_call("done", "{}".to_owned()),
    }
}

fn tool_call(tool: &str, arguments: String) -> Value {
    json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{"id": "call_0", "type": "function",
            "function": {"name": tool, "arguments": arguments}}],
    })
}

fn completion(message: Value) -> Response<Full<Bytes>> {
    let body = json!({
        "object": "chat.completion",
        "model": "adversary",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    });
    response(200, None, body.to_string())
}

fn error_body(message: &str) -> String {
    json!({"error": {"message": message}}).to_string()
}

fn response(status: u16, retry_after: Option<u64>, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    //! The host over HTTP, on an in-memory pipe: what it refuses, how it
    //! answers, and that a dropped answer closes the connection unanswered.

    use http_body_util::BodyExt;
    use orchestrator::LlmMode;

    use super::*;
    use crate::scenario::ModelSettings;

    fn model(plays: Vec<Play>, adversity: f64) -> Arc<Model> {
        Arc::new(Model {
            setup: LlmSetup {
                mode: LlmMode::JsonSchema,
                steps_max: 8,
                request_timeout: Duration::from_secs(1),
                model: ModelSettings {
                    adversity,
                    think_min: Duration::ZERO,
                    think_max: Duration::ZERO,
                    plays,
                },
            },
            rng: Mutex::new(SmallRng::seed_from_u64(1)),
            memory: Mutex::default(),
            log: Arc::default(),
        })
    }

    /// A client connected to `model` over a pipe.
    async fn connect(model: Arc<Model>) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let slot = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        tokio::spawn(serve_connection(model, server, slot));
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    }

    fn post(path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
        Request::post(path)
            .header(header::HOST, "model")
            .body(Full::new(body.into()))
            .unwrap()
    }

    /// A chat request whose menu offers a lookup of a@b.c.
    fn chat() -> String {
        let lookup = json!({"properties": {"tool": {"enum": ["user__lookup"]}, "arguments": {
            "properties": {"email": {"enum": ["a@b.c"]}}, "required": ["email"]}}});
        let done = json!({"properties": {"tool": {"enum": ["done"]}}});
        json!({
            "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "the user id of a@b.c"}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": {
                "anyOf": [lookup, done]}}},
        })
        .to_string()
    }

    async fn status_and_body(
        sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        request: Request<Full<Bytes>>,
    ) -> (u16, Option<String>, String) {
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            retry_after,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn it_refuses_what_is_no_chat_request_and_answers_one_faithfully() {
        let mut sender = connect(model(Play::ALL.to_vec(), 0.0)).await;
        let (status, _, _) = status_and_body(&mut sender, post("/v1/models", "")).await;
        assert_eq!(status, 404);
        let (status, _, body) = status_and_body(&mut sender, post(CHAT_PATH, "not json")).await;
        assert_eq!(status, 400, "{body}");
        let huge = vec![b' '; BODY_MAX + 1];
        let (status, _, _) = status_and_body(&mut sender, post(CHAT_PATH, huge)).await;
        assert_eq!(status, 413);
        let (status, _, body) = status_and_body(&mut sender, post(CHAT_PATH, chat())).await;
        assert_eq!(status, 200);
        let completion: Value = serde_json::from_str(&body).unwrap();
        let content = completion["choices"][0]["message"]["content"]
            .as_str()
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(content).unwrap(),
            json!({"tool": "user__lookup", "arguments": {"email": "a@b.c"}})
        );
    }

    #[tokio::test]
    async fn a_rate_limit_says_when_and_a_drop_closes_the_connection_unanswered() {
        let mut limited = connect(model(vec![Play::RateLimited], 1.0)).await;
        let mut told = Vec::new();
        for _ in 0..8 {
            let (status, retry_after, _) =
                status_and_body(&mut limited, post(CHAT_PATH, chat())).await;
            assert_eq!(status, 429);
            told.push(retry_after);
        }
        assert!(
            told.iter().any(Option::is_none) && told.iter().any(Option::is_some),
            "{told:?}"
        );
        let mut dropped = connect(model(vec![Play::Drop], 1.0)).await;
        let error = dropped
            .send_request(post(CHAT_PATH, chat()))
            .await
            .unwrap_err();
        assert!(
            error.is_incomplete_message() || error.is_closed(),
            "{error}"
        );
        assert!(dropped.ready().await.is_err(), "the connection is closed");
    }
}
