//! The client on real TCP ([`TcpDialer`]) against the kit's real
//! `serve_http` on loopback: what the orchestrator's HTTP connector runs.

use mcp_http::{
    client::{HttpClient, HttpClientConfig},
    connect::{self, ConnectFailure},
    dial::TcpDialer,
};
use rmcp::{
    model::CallToolRequestParams,
    service::ClientLifecycleMode,
    transport::streamable_http_client::{StreamableHttpClient as _, StreamableHttpError},
};
use serde_json::json;
use user_server::{UserServer, UserStore};

const BOB_ID: &str = "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f";

async fn start_user_server() -> (String, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("an address");
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mcp_server_kit::serve_http(
        listener,
        UserServer::new(UserStore::demo()),
        mcp_server_kit::Limits::DEFAULT,
        mcp_server_kit::HttpOptions::unauthenticated(),
        shutdown.clone(),
    ));
    (format!("http://{addr}/mcp"), shutdown)
}

fn initialize() -> rmcp::model::ClientJsonRpcMessage {
    serde_json::from_value(json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
    }))
    .expect("an initialize request")
}

#[tokio::test(flavor = "current_thread")]
async fn a_session_answers_over_real_tcp_and_a_closed_one_is_expired() {
    let (url, shutdown) = start_user_server().await;
    let client = connect::connect(
        TcpDialer,
        HttpClientConfig::DEFAULT,
        &url,
        None,
        ClientLifecycleMode::Initialize,
    )
    .await
    .expect("initializes over real TCP");
    let tools = client.list_tools(None).await.expect("lists tools");
    let names: Vec<_> = tools.tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["getUserIdByEmail"]);
    let call = CallToolRequestParams::new("getUserIdByEmail").with_arguments(
        json!({"email": "bob@example.com"})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let result = client.call_tool(call).await.expect("calls the tool");
    let text = serde_json::to_string(&result).expect("serialises");
    assert!(text.contains(BOB_ID), "{text}");
    client.cancel().await.expect("closes (DELETE)");

    let http = HttpClient::new(TcpDialer, HttpClientConfig::DEFAULT);
    let stale = http
        .post_message(
            url.into(),
            initialize(),
            Some("no-such-session".into()),
            None,
            Default::default(),
        )
        .await;
    assert!(
        matches!(stale, Err(StreamableHttpError::SessionExpired)),
        "{stale:?}"
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_listening_is_unreachable_not_a_handshake_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("an address");
    drop(listener);
    let failure = connect::connect(
        TcpDialer,
        HttpClientConfig::DEFAULT,
        &format!("http://{addr}/mcp"),
        None,
        ClientLifecycleMode::Initialize,
    )
    .await
    .expect_err("nothing listens");
    assert!(
        matches!(failure, ConnectFailure::Unreachable { .. }),
        "{failure:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn https_is_refused_rather_than_sent_in_clear() {
    let failure = connect::connect(
        TcpDialer,
        HttpClientConfig::DEFAULT,
        "https://127.0.0.1:9/mcp",
        None,
        ClientLifecycleMode::Initialize,
    )
    .await
    .expect_err("no TLS");
    assert!(failure.to_string().contains("no TLS"), "{failure}");
}
