//! HTTP sessions under authentication, over a real socket: a token is never
//! locked out by sessions it abandoned (at its cap the least recently used
//! one is closed to make room, and really closed: it is gone from the
//! session manager), and a 429 says when to come back.

use std::{net::SocketAddr, sync::Arc};

use mcp_server_kit::{AuthSettings, Authenticator, HttpOptions, Limits, Protection, Secret};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// The bearer token the clients hold.
const TOKEN: &str = "kit-test-static-token-0123456789";
/// Another token the server accepts.
const OTHER_TOKEN: &str = "kit-test-other-static-token-9876543210";
/// Sessions one token may hold (the kit's cap, as the README states it).
const SESSIONS_PER_TOKEN_MAX: usize = 32;

/// A server with two tools: `echo` answers at once, `hang` never does.
#[derive(Debug, Clone)]
struct Tools;

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tool = |name: &'static str| Tool::new(name, name, JsonObject::new());
        Ok(ListToolsResult::with_all_items(vec![
            tool("echo"),
            tool("hang"),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name == "hang" {
            std::future::pending::<()>().await;
        }
        Ok(CallToolResult::success(vec![ContentBlock::text("echoed")]).into())
    }
}

fn protected(token_requests_max: usize) -> HttpOptions {
    let auth = Authenticator::new(AuthSettings {
        resource: "http://127.0.0.1/mcp".into(),
        protection: Protection {
            scope: "kit:read",
            scopes_supported: &["kit:read"],
            guard: None,
        },
        static_tokens: vec![Secret::new(TOKEN.into()), Secret::new(OTHER_TOKEN.into())],
        jwt: None,
        token_requests_max,
        clock: Arc::new(|| 1_700_000_000),
    })
    .expect("valid auth settings");
    HttpOptions::protected(Arc::new(auth))
}

async fn start(limits: Limits, options: HttpOptions) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(mcp_server_kit::serve_http(
        listener,
        Tools,
        limits,
        options,
        shutdown.clone(),
    ));
    (addr, shutdown)
}

/// A client of `addr` holding [`TOKEN`].
struct Client {
    addr: SocketAddr,
    bearer: String,
}

impl Client {
    fn new(addr: SocketAddr) -> Self {
        Self::with_token(addr, TOKEN)
    }

    fn with_token(addr: SocketAddr, token: &str) -> Self {
        Self {
            addr,
            bearer: format!("Bearer {token}"),
        }
    }

    async fn delete(&self, session: &str) -> HttpReply {
        let headers = [
            ("Host", "127.0.0.1"),
            ("Authorization", self.bearer.as_str()),
            ("Mcp-Session-Id", session),
        ];
        http_exchange(self.addr, "DELETE", &headers, b"").await
    }

    async fn send(&self, session: Option<&str>, body: &serde_json::Value) -> HttpReply {
        let mut headers = vec![("Host", "127.0.0.1"), ("Authorization", &self.bearer)];
        if let Some(id) = session {
            headers.push(("Mcp-Session-Id", id));
        }
        let body = serde_json::to_vec(body).expect("serialises");
        http_exchange(self.addr, "POST", &headers, &body).await
    }

    /// `initialize` and `notifications/initialized`: the new session's id,
    /// or the refusal.
    async fn open(&self) -> Result<String, HttpReply> {
        let body: serde_json::Value =
            serde_json::from_slice(&initialize_body()).expect("an initialize request");
        let reply = self.send(None, &body).await;
        let Some(id) = reply
            .header("mcp-session-id")
            .filter(|_| reply.status == 200)
        else {
            return Err(reply);
        };
        let id = id.to_owned();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let acknowledged = self.send(Some(&id), &initialized).await;
        assert_eq!(acknowledged.status, 202, "{acknowledged:?}");
        Ok(id)
    }

    async fn call(&self, session: &str, tool: &str) -> HttpReply {
        let call = request(2, "tools/call", json!({"name": tool, "arguments": {}}));
        self.send(Some(session), &call).await
    }
}

/// Opens `count` sessions and never closes them; the ids, in order.
async fn abandon(client: &Client, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for n in 1..=count {
        match client.open().await {
            Ok(id) => ids.push(id),
            Err(refused) => panic!(
                "initialize {n} of {count} (never DELETEd before it) was refused: {} {:?} {}",
                refused.status, refused.headers, refused.body
            ),
        }
    }
    ids
}

fn assert_answered(reply: &HttpReply) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("echoed"), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_sessions_never_lock_their_token_out() {
    let (addr, shutdown) = start(small_limits(), protected(64)).await;
    let client = Client::new(addr);
    let ids = abandon(&client, 40).await;
    let newest = client.open().await.expect("the 41st initialize is served");
    assert_answered(&client.call(&newest, "echo").await);

    // 41 opened, 32 kept: the 9 least recently used were closed, oldest first.
    let evicted = 41 - SESSIONS_PER_TOKEN_MAX;
    for id in &ids[..evicted] {
        let gone = client.call(id, "echo").await;
        assert_eq!(gone.status, 404, "an evicted session is unknown: {gone:?}");
    }
    for id in &ids[evicted..] {
        assert_answered(&client.call(id, "echo").await);
    }
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_session_is_closed_not_only_forgotten() {
    // The live-session cap equals the token's cap: one more session fits
    // only if evicting the oldest really closed it in the session manager.
    let limits = Limits {
        connections_max: SESSIONS_PER_TOKEN_MAX,
        ..small_limits()
    };
    let (addr, shutdown) = start(limits, protected(64)).await;
    let client = Client::new(addr);
    let ids = abandon(&client, SESSIONS_PER_TOKEN_MAX + 1).await;
    assert_answered(&client.call(&ids[SESSIONS_PER_TOKEN_MAX], "echo").await);
    assert_eq!(client.call(&ids[0], "echo").await.status, 404);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_token_gets_429_with_retry_after() {
    let (addr, shutdown) = start(small_limits(), protected(1)).await;
    let client = Arc::new(Client::new(addr));
    let id = client.open().await.expect("a session");
    // `hang` holds the token's only request slot for as long as it runs.
    // It may itself find the slot taken by an `echo` below and get 429
    // (that race failed this test on a loaded machine): then it asks again.
    let holder = {
        let (client, id) = (client.clone(), id.clone());
        tokio::spawn(async move {
            loop {
                let reply = client.call(&id, "hang").await;
                if reply.status != 429 {
                    break reply;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let busy = within("the slot to be taken", async {
        loop {
            let reply = client.call(&id, "echo").await;
            if reply.status == 429 {
                break reply;
            }
            assert_answered(&reply);
            tokio::task::yield_now().await;
        }
    })
    .await;
    let retry_after = busy.header("retry-after").expect("a Retry-After header");
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
        "delta-seconds: {retry_after:?}"
    );
    holder.abort();
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_answers_only_its_token_and_is_gone_once_deleted() {
    let (addr, shutdown) = start(small_limits(), protected(64)).await;
    let (mine, theirs) = (Client::new(addr), Client::with_token(addr, OTHER_TOKEN));
    let id = mine.open().await.expect("a session");
    assert_answered(&mine.call(&id, "echo").await);
    assert_eq!(
        theirs.call(&id, "echo").await.status,
        404,
        "bound to its token"
    );
    assert_eq!(
        theirs.delete(&id).await.status,
        404,
        "nor deleted by another"
    );
    assert_answered(&mine.call(&id, "echo").await);
    let deleted = mine.delete(&id).await;
    assert!((200..300).contains(&deleted.status), "DELETE: {deleted:?}");
    assert_eq!(mine.call(&id, "echo").await.status, 404, "gone");
    shutdown.cancel();
}
