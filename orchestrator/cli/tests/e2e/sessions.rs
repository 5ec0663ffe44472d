//! The binary closes the HTTP sessions it opens: when an `ask` ends, and
//! when SIGTERM or Ctrl-C stops it halfway, no server is left holding one.
//!
//! The servers are stubs on the kit's real HTTP stack (bearer tokens,
//! sessions), whose handler counts its own live copies: rmcp holds one per
//! session for as long as the session lives, so the count is the server's
//! own view of its open sessions.

use std::{
    net::SocketAddr,
    process::{Child, Command},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use mcp_server_kit::{AuthSettings, Authenticator, HttpOptions, Limits, Protection, Secret};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The longest any step may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);
const TOKEN: &str = "e2e-sessions-static-token-0123456789";
const QUESTION: &str = "What are the recent transactions for bob@example.com?";

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {DEADLINE:?}"))
}

/// Which half of the question a stub answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `lookup(email)`: a user id.
    User,
    /// `history(userId)`: no transactions; or, when `hangs`, no answer
    /// until its session ends.
    Payment { hangs: bool },
}

/// What a stub's handler copies share.
#[derive(Debug, Default)]
struct Counts {
    /// Handler copies alive: one kept by the server to make sessions
    /// from, plus one per live session.
    copies: AtomicUsize,
    /// Tool calls that have begun.
    calls: AtomicUsize,
    changed: Notify,
    /// Lets a hung call return. (A session's end would too, but rmcp
    /// first waits 5 s for the calls in flight.)
    released: CancellationToken,
}

#[derive(Debug)]
struct Stub {
    role: Role,
    counts: Arc<Counts>,
}

impl Stub {
    fn new(role: Role, counts: Arc<Counts>) -> Self {
        counts.copies.fetch_add(1, Ordering::SeqCst);
        Self { role, counts }
    }
}

impl Clone for Stub {
    fn clone(&self) -> Self {
        Self::new(self.role, self.counts.clone())
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.counts.copies.fetch_sub(1, Ordering::SeqCst);
        self.counts.changed.notify_waiters();
    }
}

fn tool(name: &'static str, input: &str) -> Tool {
    let schema = serde_json::json!({
        "type": "object",
        "properties": { input: { "type": "string" } },
        "required": [input],
    });
    let serde_json::Value::Object(schema) = schema else {
        unreachable!("an object")
    };
    Tool::new(name, name, schema)
}

impl ServerHandler for Stub {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tool = match self.role {
            Role::User => tool("lookup", "email"),
            Role::Payment { .. } => tool("history", "userId"),
        };
        Ok(ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(
        &self,
        _request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.counts.calls.fetch_add(1, Ordering::SeqCst);
        self.counts.changed.notify_waiters();
        let text = match self.role {
            Role::User => "u-1",
            Role::Payment { hangs: false } => "[]",
            Role::Payment { hangs: true } => {
                tokio::select! {
                    () = context.ct.cancelled() => {}
                    () = self.counts.released.cancelled() => {}
                }
                return Err(ErrorData::internal_error("given up", None));
            }
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

/// A stub on loopback HTTP that accepts [`TOKEN`].
struct Server {
    addr: SocketAddr,
    counts: Arc<Counts>,
    shutdown: CancellationToken,
}

impl Server {
    async fn start(role: Role) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let auth = Authenticator::new(AuthSettings {
            resource: format!("http://{addr}/mcp"),
            protection: Protection {
                scope: "stub:read",
                scopes_supported: &["stub:read"],
                guard: None,
            },
            static_tokens: vec![Secret::new(TOKEN.into())],
            jwt: None,
            token_requests_max: 64,
            clock: Arc::new(|| 1_900_000_000),
        })
        .unwrap();
        let counts = Arc::new(Counts::default());
        let shutdown = CancellationToken::new();
        tokio::spawn(mcp_server_kit::serve_http(
            listener,
            Stub::new(role, counts.clone()),
            Limits::DEFAULT,
            HttpOptions::protected(Arc::new(auth)),
            shutdown.clone(),
        ));
        Self {
            addr,
            counts,
            shutdown,
        }
    }

    /// Sessions the server holds now.
    fn sessions(&self) -> usize {
        self.counts.copies.load(Ordering::SeqCst) - 1
    }

    /// Waits until `done` holds of the counts.
    async fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        within(what, async {
            loop {
                let changed = self.counts.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if done(self) {
                    return;
                }
                changed.await;
            }
        })
        .await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A config naming both stubs, with the token in a file, and a policy
/// patient enough to still be waiting on a hung call when signalled.
fn config(dir: &tempfile::TempDir, user: &Server, payment: &Server) -> std::path::PathBuf {
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let text = format!(
        "[[servers]]\nname = \"user\"\nhttp = \"http://{}/mcp\"\ntoken = {{ file = \"token\" }}\n\n\
         [[servers]]\nname = \"payment\"\nhttp = \"http://{}/mcp\"\ntoken = {{ file = \"token\" }}\n\n\
         [policy]\ncall_timeout_ms = 60000\ndeadline_ms = 60000\n",
        user.addr, payment.addr
    );
    let path = dir.path().join("orchestrator.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn ask(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["ask", "--config", config.to_str().unwrap(), QUESTION])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run orchestrator")
}

/// Waits for `child` to exit: its exit code (`None`: killed by a signal)
/// and stderr.
async fn exited(child: Child) -> (Option<i32>, String) {
    let output = within(
        "the orchestrator to exit",
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .unwrap()
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_ask_leaves_no_session_open() {
    let user = Server::start(Role::User).await;
    let payment = Server::start(Role::Payment { hangs: false }).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = exited(ask(&config(&dir, &user, &payment))).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(payment.counts.calls.load(Ordering::SeqCst), 1, "it asked");
    for (name, server) in [("user", &user), ("payment", &payment)] {
        server
            .until(&format!("{name}: no session left"), |s| s.sessions() == 0)
            .await;
    }
}

/// Stops an `ask` with `signal` while its second call hangs, and checks
/// that it closes both sessions before it exits with `code`.
async fn stopped_halfway_closes_its_sessions(signal: &str, code: i32) {
    let user = Server::start(Role::User).await;
    let payment = Server::start(Role::Payment { hangs: true }).await;
    let dir = tempfile::tempdir().unwrap();
    let child = ask(&config(&dir, &user, &payment));
    payment
        .until("the hung call to begin", |s| {
            s.counts.calls.load(Ordering::SeqCst) == 1
        })
        .await;
    assert_eq!((user.sessions(), payment.sessions()), (1, 1));
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let (exit, stderr) = exited(child).await;
    assert_eq!(exit, Some(code), "{signal}: {stderr}");
    // The session stays until its client deletes it (or 5 minutes idle):
    // the call ending does not end it.
    payment.counts.released.cancel();
    for (name, server) in [("user", &user), ("payment", &payment)] {
        server
            .until(&format!("{name}: no session left after {signal}"), |s| {
                s.sessions() == 0
            })
            .await;
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_ask_closes_its_sessions_and_exits_143() {
    stopped_halfway_closes_its_sessions("-TERM", 143).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_an_ask_closes_its_sessions_and_exits_130() {
    stopped_halfway_closes_its_sessions("-INT", 130).await;
}
