//! End-to-end: the orchestrator against the real reference servers over
//! real transports, through the binary and through the library.

use std::{
    net::SocketAddr,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use orchestrator::{
    Answer, AskError, CallError, Connector, Orchestrator, Policy, PolicySettings, TransportConfig,
};
use reference_servers::{Access, Data, Role, Servers, Transport};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

#[path = "e2e/auth.rs"]
mod auth;
#[path = "e2e/llm.rs"]
mod llm;
#[path = "e2e/sessions.rs"]
mod sessions;

const SEED_QUESTION: &str = "What are the recent transactions for bob@example.com?";
const SEED_ANSWER: &str = "\
- Coffee: £50 on 16 January 2023
- Groceries: £100 on 15 January 2023
- Dinner: £75 on 14 January 2023
- Online Course: £120 on 12 January 2023
";

fn orchestrator_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_orchestrator"))
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let output = orchestrator_bin()
        .args(args)
        .output()
        .expect("run orchestrator");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn assert_seed_answer(stdout: &str) {
    let (header, lines) = stdout.split_once('\n').expect("a header line");
    assert_eq!(header, "Recent transactions for bob@example.com:");
    assert_eq!(lines, SEED_ANSWER);
}

#[test]
fn binary_answers_the_seed_question_over_every_transport() {
    for transport in ["stdio", "tcp", "http"] {
        let (code, stdout, stderr) = run(&["ask", "--transport", transport, SEED_QUESTION]);
        assert_eq!(code, 0, "{transport}: {stderr}");
        assert_seed_answer(&stdout);
        assert!(
            !stderr.contains("ERROR"),
            "{transport}: clean stderr expected: {stderr}"
        );
    }
}

#[test]
fn binary_explains_and_speaks_json() {
    let (code, stdout, stderr) = run(&[
        "ask",
        "--explain",
        "--json",
        "last 2 purchases for BOB@example.com",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let transactions = value["answer"]["transactions"].as_array().unwrap();
    let descriptions: Vec<&str> = transactions
        .iter()
        .map(|t| t["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions, ["Coffee", "Groceries"]);
    assert_eq!(transactions[0]["amount"], "50.00");
    assert_eq!(value["steps"][1]["arguments"]["count"], 2);
    assert!(
        stderr.contains("step 1: user/getUserIdByEmail {\"email\":\"BOB@example.com\"}"),
        "{stderr}"
    );
    assert!(
        stderr.contains("step 2: payment/getTransactionsUsingUserId"),
        "{stderr}"
    );
    assert!(stderr.contains("ok · 1 attempt(s)"), "{stderr}");
}

#[test]
fn binary_gives_clear_answers_to_unknown_users_and_unplannable_questions() {
    let (code, stdout, _) = run(&[
        "ask",
        "--transport",
        "tcp",
        "transactions for nobody@example.com",
    ]);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "No user has the email nobody@example.com.\n")
    );

    let (code, stdout, stderr) = run(&[
        "ask",
        "--transport",
        "tcp",
        "what's the weather for bob@example.com",
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr.contains("What are the recent transactions for bob@example.com?"),
        "{stderr}"
    );

    let (code, _, stderr) = run(&[
        "ask",
        "--transport",
        "tcp",
        "transactions for bob@@example.com",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("Invalid email address \"bob@@example.com\""),
        "{stderr}"
    );
}

/// Issue 13's three questions, each once answered as another question:
/// now each gets the answer to what was asked.
#[test]
fn binary_answers_what_was_asked_or_refuses_naming_what_it_could_not_use() {
    for (question, answer) in [
        (
            "What is the total alice@example.com spent?",
            "Total spent by alice@example.com: £200 (1 transaction).\n",
        ),
        (
            "transactions for alice@example.com and charlie@example.com",
            "Recent transactions for alice@example.com:\n\
             - Concert Tickets: £200 on 10 January 2023\n\
             \n\
             Recent transactions for charlie@example.com:\n\
             - Book: £30 on 18 January 2023\n",
        ),
        (
            "purchases for bob@example.com in March 2023",
            "No transactions found for bob@example.com in March 2023.\n",
        ),
    ] {
        let (code, stdout, stderr) = run(&["ask", question]);
        assert_eq!((code, stdout.as_str()), (0, answer), "{question}: {stderr}");
    }

    let question = "purchases for bob@example.com at Starbucks last month";
    let (code, stdout, stderr) = run(&["ask", question]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr.starts_with("I can't use \"at Starbucks last month\" in that question"),
        "{stderr}"
    );
    assert!(
        stderr.contains("How much has bob@example.com spent in January 2023?"),
        "{stderr}"
    );
    let (code, stdout, _) = run(&["ask", "--json", question]);
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(code, 2);
    assert_eq!(
        value["unused"],
        serde_json::json!(["at Starbucks last month"])
    );
}

#[test]
fn binary_names_a_bad_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[servers]]\nname = \"user\"\nhttp = \"127.0.0.1:8082\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["ask", "--config", path.to_str().unwrap(), SEED_QUESTION]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "bad.toml:3: servers[0].http: \"127.0.0.1:8082\" must start with http:// or https://"
        ),
        "{stderr}"
    );
}

#[test]
fn binary_lists_the_namespaced_catalog() {
    let (code, stdout, stderr) = run(&["tools", "--transport", "tcp"]);
    assert_eq!(code, 0, "{stderr}");
    let names: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "payment/getTransactionsUsingUserId",
            "user/getUserIdByEmail"
        ]
    );
}

/// `bench --config` loads the servers a config file names, any question:
/// here the binary's own embedded servers, launched as stdio children.
#[test]
fn bench_loads_the_servers_a_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("servers.toml");
    let exe = env!("CARGO_BIN_EXE_orchestrator");
    let server = |name: &str| {
        format!(
            "[[servers]]\nname = \"{name}\"\nstdio = [{exe:?}, \"serve-embedded\", \"{name}\"]\n"
        )
    };
    std::fs::write(&path, server("user") + &server("payment")).unwrap();
    let (code, stdout, stderr) = run(&[
        "bench",
        "--config",
        path.to_str().unwrap(),
        "--question",
        "how much has alice@example.com spent?",
        "--queries",
        "20",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["transport"], "config");
    assert_eq!(
        (report["queries"].as_u64(), report["errors"].as_u64()),
        (Some(20), Some(0))
    );
    let (code, _, stderr) = run(&["bench", "--config", "/no/such.toml"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn bench_reports_one_json_line_with_every_field() {
    let (code, stdout, stderr) = run(&[
        "bench",
        "--queries",
        "20",
        "--concurrency",
        "4",
        "--transport",
        "tcp",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for field in [
        "queries",
        "concurrency",
        "transport",
        "p50_us",
        "p99_us",
        "qps",
        "errors",
    ] {
        assert!(report.get(field).is_some(), "missing {field}: {stdout}");
    }
    assert_eq!(
        (report["queries"].as_u64(), report["errors"].as_u64()),
        (Some(20), Some(0))
    );
    assert!(report["p99_us"].as_u64() >= report["p50_us"].as_u64());
}

// ---- Library tests against in-process servers on real sockets ----

async fn local_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Starts the reference server `role` with the demo data on loopback TCP;
/// it stops when `servers` is dropped.
async fn serve_tcp(servers: &mut Servers, role: Role) -> SocketAddr {
    let endpoint = servers.add(role, &Transport::Tcp, &Data::demo()).await;
    endpoint.unwrap().addr.expect("a TCP server has an address")
}

fn tcp(addr: SocketAddr) -> Arc<dyn Connector> {
    TransportConfig::Tcp {
        addr: addr.to_string(),
    }
    .connector()
}

/// Quick settings for tests on loopback.
fn settings(call_timeout_ms: u64, deadline_ms: u64) -> PolicySettings {
    PolicySettings {
        connect_timeout: Duration::from_millis(deadline_ms / 2),
        call_timeout: Duration::from_millis(call_timeout_ms),
        deadline: Duration::from_millis(deadline_ms),
        attempts_max: 3,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        retry_budget_ratio: 0.2,
        retry_budget_per_s: 1.0,
        retry_budget_burst: 10,
        hedge_after: None,
        breaker_failures: 5,
        breaker_open: Duration::from_secs(1),
    }
}

fn policy(call_timeout_ms: u64, deadline_ms: u64) -> Policy {
    Policy::new(settings(call_timeout_ms, deadline_ms)).unwrap()
}

/// The orchestrator over a user and a payment server on TCP.
fn user_and_payment(
    user: SocketAddr,
    payment: SocketAddr,
    policy: Policy,
    seed: u64,
) -> Orchestrator {
    Orchestrator::new(
        vec![("user".into(), tcp(user)), ("payment".into(), tcp(payment))],
        policy,
        seed,
    )
}

fn descriptions(answer: &Answer) -> Vec<String> {
    match answer {
        Answer::Transactions { transactions, .. } => {
            transactions.iter().map(|t| t.description.clone()).collect()
        }
        other => panic!("expected transactions, got {other:?}"),
    }
}

#[tokio::test]
async fn planner_follows_tools_whatever_the_servers_are_named() {
    let mut servers = Servers::default();
    let open = Transport::Http(Access::Open);
    let directory = servers.add(Role::User, &open, &Data::demo()).await;
    let directory = directory.unwrap().connector.clone();
    let ledger = serve_tcp(&mut servers, Role::Payment).await;
    let orchestrator = Orchestrator::new(
        vec![
            ("ledger".into(), tcp(ledger)),
            ("directory".into(), directory),
        ],
        Policy::DEFAULT,
        1,
    );
    let mut trace = Vec::new();
    let answer = orchestrator.ask(SEED_QUESTION, &mut trace).await.unwrap();
    assert_eq!(
        descriptions(&answer),
        ["Coffee", "Groceries", "Dinner", "Online Course"]
    );
    assert_eq!(
        (trace[0].server.as_str(), trace[1].server.as_str()),
        ("directory", "ledger")
    );
    orchestrator.shutdown().await;
    drop(servers);
}

#[tokio::test]
async fn a_server_down_at_start_is_named_within_the_deadline() {
    let mut servers = Servers::default();
    let user = serve_tcp(&mut servers, Role::User).await;
    let (listener, dead) = local_listener().await;
    drop(listener);
    let orchestrator = user_and_payment(user, dead, policy(500, 2_000), 2);
    let error = orchestrator
        .ask(SEED_QUESTION, &mut Vec::new())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, AskError::Unavailable { .. }), "{error:?}");
    assert!(
        message.contains(&format!(
            "\n  payment: unreachable after 3 attempt(s): cannot connect to tcp://{dead}: "
        )),
        "{message}"
    );
    assert!(error.is_transient());
    // The user server alone still answers what it can.
    let answer = orchestrator
        .ask("user id of bob@example.com", &mut Vec::new())
        .await
        .unwrap();
    assert!(matches!(answer, Answer::UserId { .. }));
    drop(servers);
}

/// A TCP proxy that can cut a connection the moment a `tools/call` passes
/// through it (a server killed mid-call), or swallow it silently (a lost
/// segment never retransmitted). Each mode fires once.
struct Proxy {
    addr: SocketAddr,
    reset_next_call: Arc<AtomicU32>,
    swallow_next_call: Arc<AtomicU32>,
    connections: Arc<AtomicU32>,
}

async fn proxy(upstream: SocketAddr) -> Proxy {
    let (listener, addr) = local_listener().await;
    let reset_next_call = Arc::new(AtomicU32::new(0));
    let swallow_next_call = Arc::new(AtomicU32::new(0));
    let connections = Arc::new(AtomicU32::new(0));
    let (reset, swallow, count) = (
        reset_next_call.clone(),
        swallow_next_call.clone(),
        connections.clone(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let (reset, swallow) = (reset.clone(), swallow.clone());
            tokio::spawn(async move {
                let mut server = TcpStream::connect(upstream).await.unwrap();
                let (mut client_read, mut client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                let upstream_pump = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = client_read.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        let is_call = String::from_utf8_lossy(&buf[..n]).contains("tools/call");
                        if is_call && reset.swap(0, Ordering::SeqCst) == 1 {
                            return; // both sockets close: the peer sees a reset mid-call
                        }
                        if is_call && swallow.swap(0, Ordering::SeqCst) == 1 {
                            std::future::pending::<()>().await; // never forwarded
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let downstream_pump = tokio::io::copy(&mut server_read, &mut client_write);
                tokio::select! {
                    () = upstream_pump => {}
                    _ = downstream_pump => {}
                }
            });
        }
    });
    Proxy {
        addr,
        reset_next_call,
        swallow_next_call,
        connections,
    }
}

#[tokio::test]
async fn a_connection_killed_mid_call_is_reconnected_and_the_retry_answers_right() {
    let mut servers = Servers::default();
    let user = serve_tcp(&mut servers, Role::User).await;
    let payment = proxy(serve_tcp(&mut servers, Role::Payment).await).await;
    let orchestrator = user_and_payment(user, payment.addr, policy(1_000, 5_000), 3);
    orchestrator
        .ask(SEED_QUESTION, &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(payment.connections.load(Ordering::SeqCst), 1);

    payment.reset_next_call.store(1, Ordering::SeqCst);
    let mut trace = Vec::new();
    let answer = orchestrator.ask(SEED_QUESTION, &mut trace).await.unwrap();
    assert_eq!(
        descriptions(&answer),
        ["Coffee", "Groceries", "Dinner", "Online Course"]
    );
    assert_eq!((trace[1].attempts, trace[1].outcome.as_str()), (2, "ok"));
    assert_eq!(
        payment.connections.load(Ordering::SeqCst),
        2,
        "one reconnect"
    );
    drop(servers);
}

#[tokio::test]
async fn a_silently_lost_call_times_out_and_is_retried_on_a_new_connection() {
    let mut servers = Servers::default();
    let user = serve_tcp(&mut servers, Role::User).await;
    let payment = proxy(serve_tcp(&mut servers, Role::Payment).await).await;
    let orchestrator = user_and_payment(user, payment.addr, policy(300, 5_000), 4);
    payment.swallow_next_call.store(1, Ordering::SeqCst);
    let mut trace = Vec::new();
    let answer = orchestrator
        .ask("last 1 transaction for bob@example.com", &mut trace)
        .await
        .unwrap();
    assert_eq!(descriptions(&answer), ["Coffee"]);
    assert_eq!((trace[1].attempts, trace[1].outcome.as_str()), (2, "ok"));
    assert_eq!(payment.connections.load(Ordering::SeqCst), 2);
    drop(servers);
}

#[tokio::test]
async fn tool_errors_are_never_retried() {
    let mut servers = Servers::default();
    let user = proxy(serve_tcp(&mut servers, Role::User).await).await;
    let payment = serve_tcp(&mut servers, Role::Payment).await;
    let orchestrator = user_and_payment(user.addr, payment, policy(1_000, 5_000), 5);
    let mut trace = Vec::new();
    let error = orchestrator
        .ask("transactions for bob@@example.com", &mut trace)
        .await
        .unwrap_err();
    assert!(matches!(error, AskError::Tool { step: 1, .. }), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0].attempts, 1);
    assert_eq!(user.connections.load(Ordering::SeqCst), 1);
    drop(servers);
}

#[tokio::test]
async fn attempts_are_capped_and_the_failure_names_server_and_step() {
    let mut servers = Servers::default();
    let user = serve_tcp(&mut servers, Role::User).await;
    let payment = proxy(serve_tcp(&mut servers, Role::Payment).await).await;
    let orchestrator = user_and_payment(user, payment.addr, policy(1_000, 5_000), 6);
    orchestrator
        .ask(SEED_QUESTION, &mut Vec::new())
        .await
        .unwrap();
    // Every call now dies mid-flight: keep re-arming the reset.
    let rearm = {
        let flag = payment.reset_next_call.clone();
        tokio::spawn(async move {
            loop {
                flag.store(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    let error = orchestrator
        .ask(SEED_QUESTION, &mut Vec::new())
        .await
        .unwrap_err();
    rearm.abort();
    match &error {
        AskError::Call {
            step: 2,
            server,
            source: CallError::Transport { attempts: 3, .. },
            ..
        } => {
            assert_eq!(server, "payment")
        }
        other => panic!("expected step 2 to fail after 3 attempts, got {other:?}"),
    }
    assert!(
        error.to_string().starts_with(
            "step 2 (payment/getTransactionsUsingUserId) failed: connection lost, 3 attempt(s)"
        ),
        "{error}"
    );
    drop(servers);
}

#[test]
fn a_server_stops_cleanly_on_sigterm_and_sigint() {
    use std::io::{BufRead, BufReader};
    for signal in ["-TERM", "-INT"] {
        let mut child = orchestrator_bin()
            .args(["serve-embedded", "payment"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Held open until the end: `Child::wait` would close it, and EOF is
        // a different way for a stdio session to end.
        let stdin = child.stdin.take();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("serving MCP on stdio") {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the server exited early"
            );
        }
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        drop(stdin);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        assert!(exit.success(), "{signal}: {exit:?}, stderr: {rest}");
        assert!(
            rest.contains("shutting down") && rest.contains("stopped"),
            "{signal}: {rest}"
        );
    }
}
