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
        HttpClient::new(TcpDialer, HttpClientConfig::DEFAULT),
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
        HttpClient::new(TcpDialer, HttpClientConfig::DEFAULT),
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
        HttpClient::new(TcpDialer, HttpClientConfig::DEFAULT),
        "https://127.0.0.1:9/mcp",
        None,
        ClientLifecycleMode::Initialize,
    )
    .await
    .expect_err("no TLS");
    assert!(failure.to_string().contains("no TLS"), "{failure}");
}

/// TLS on loopback: a proxy that terminates TLS with a committed test
/// certificate (`tests/tls/`, made by `tests/tls/make.sh`) in front of the
/// kit's plain `serve_http`, and `TlsDialer` trusting the test CA.
#[cfg(feature = "https")]
mod https {
    use std::{net::SocketAddr, sync::Arc};

    use mcp_http::{
        client::{HttpClient, HttpClientConfig},
        connect::{self, ConnectFailure},
        dial::{Dialer as _, Endpoint, TlsDialer},
    };
    use rmcp::service::ClientLifecycleMode;
    use tokio_rustls::{
        TlsAcceptor,
        rustls::{
            ServerConfig,
            crypto::ring,
            pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
        },
    };
    use tokio_util::either::Either;

    const CA: &[u8] = include_bytes!("tls/ca.pem");
    const LOCALHOST: &[u8] = include_bytes!("tls/localhost.pem");
    const OTHER: &[u8] = include_bytes!("tls/other.pem");
    const KEY: &[u8] = include_bytes!("tls/leaf.key");

    /// A dialer that trusts the test CA (and Mozilla's roots).
    fn trusting_dialer() -> TlsDialer {
        let ca = CertificateDer::from_pem_slice(CA).expect("the CA's PEM");
        TlsDialer::with_extra_roots([ca.as_ref()]).expect("the CA is a certificate")
    }

    /// Serves TLS with `cert_pem` on 127.0.0.1 and relays each connection
    /// to `upstream` in clear. Its address.
    async fn tls_proxy(cert_pem: &[u8], upstream: SocketAddr) -> SocketAddr {
        let cert = CertificateDer::from_pem_slice(cert_pem).expect("the leaf's PEM");
        let key = PrivateKeyDer::from_pem_slice(KEY).expect("the key's PEM");
        #[allow(deprecated)] // no post-quantum key exchange: see src/tls.rs
        let provider = Arc::new(ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("the key fits the certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        addr
    }

    /// The user server over plain HTTP, and a TLS proxy in front of it
    /// showing `cert_pem`: the plain URL and the https one.
    async fn user_server_behind_tls(cert_pem: &[u8]) -> (String, String) {
        let (plain, _shutdown) = super::start_user_server().await;
        let upstream: SocketAddr = plain
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .parse()
            .expect("an address");
        let proxy = tls_proxy(cert_pem, upstream).await;
        (plain, format!("https://{proxy}/mcp"))
    }

    async fn tool_names(dialer: TlsDialer, url: &str) -> Vec<String> {
        let client = connect::connect(
            HttpClient::new(dialer, HttpClientConfig::DEFAULT),
            url,
            None,
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap_or_else(|e| panic!("initializes at {url}: {e}"));
        let tools = client.list_tools(None).await.expect("lists tools");
        client.cancel().await.expect("closes (DELETE)");
        tools.tools.iter().map(|t| t.name.to_string()).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_mcp_session_runs_over_tls_and_plain_http_stays_plain() {
        let (plain, https) = user_server_behind_tls(LOCALHOST).await;
        let dialer = trusting_dialer();
        assert_eq!(
            tool_names(dialer.clone(), &https).await,
            ["getUserIdByEmail"]
        );
        assert_eq!(
            tool_names(dialer.clone(), &plain).await,
            ["getUserIdByEmail"]
        );

        let port = |url: &str| {
            url.rsplit(':')
                .next()
                .unwrap()
                .trim_end_matches("/mcp")
                .parse()
                .unwrap()
        };
        let tls = Endpoint {
            tls: true,
            host: "127.0.0.1".into(),
            port: port(&https),
        };
        let Either::Right(stream) = dialer.dial(&tls).await.expect("dials TLS") else {
            panic!("https is TLS");
        };
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert!(stream.get_ref().0.nodelay().expect("reads TCP_NODELAY"));
        let clear = Endpoint {
            tls: false,
            port: port(&plain),
            ..tls
        };
        let stream = dialer.dial(&clear).await.expect("dials TCP");
        assert!(matches!(stream, Either::Left(_)), "{stream:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_certificate_for_another_name_is_refused() {
        let (_, https) = user_server_behind_tls(OTHER).await;
        let failure = connect::connect(
            HttpClient::new(trusting_dialer(), HttpClientConfig::DEFAULT),
            &https,
            None,
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect_err("the certificate is for other.example");
        let ConnectFailure::Unreachable { source, .. } = &failure else {
            panic!("{failure:?}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::InvalidData, "{source}");
        let message = source.to_string();
        assert!(
            message.starts_with("TLS handshake failed: invalid peer certificate")
                && message.contains("other.example"),
            "{message}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_root_not_trusted_is_refused() {
        let (_, https) = user_server_behind_tls(LOCALHOST).await;
        let failure = connect::connect(
            HttpClient::new(TlsDialer::default(), HttpClientConfig::DEFAULT),
            &https,
            None,
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect_err("the test CA is not among Mozilla's");
        assert!(
            failure
                .to_string()
                .contains("invalid peer certificate: UnknownIssuer"),
            "{failure}"
        );
    }
}
