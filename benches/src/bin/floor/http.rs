//! The HTTP floor: each JSON-RPC message POSTed to a hyper HTTP/1.1 server
//! on loopback over one keep-alive connection per server, answered with a
//! plain JSON body. No sessions, no SSE, no MCP. Both ends run a
//! current-thread tokio runtime; the client drives its connection in the
//! same task as the request, so no message crosses a task.

use std::{
    io::{BufRead, BufReader, Read},
    net::Ipv4Addr,
};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, Response, StatusCode,
    body::Incoming,
    client::conn::http1::{Connection, SendRequest},
    header::{CONTENT_TYPE, HOST, HeaderValue},
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use mcp_server_kit::say;
use serde_json::Value;
use tokio::{
    net::{TcpListener, TcpStream},
    runtime::Runtime,
};

use crate::{Call, Role, Server, answer};

type Body = Full<Bytes>;

fn runtime() -> anyhow::Result<Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?)
}

/// Listens on a loopback port (printed on stdout) and answers each POSTed
/// request; exits when stdin closes (the client is gone).
pub(crate) fn serve(role: Role) -> anyhow::Result<()> {
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    runtime()?.block_on(async move {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        say!("{}", listener.local_addr()?.port());
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(serve_connection(stream, role));
        }
    })
}

async fn serve_connection(stream: TcpStream, role: Role) {
    let service = service_fn(move |request| respond(role, request));
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = connection {
        eprintln!("floor http-server: {error}");
    }
}

async fn respond(role: Role, request: Request<Incoming>) -> anyhow::Result<Response<Body>> {
    let body = request.into_body().collect().await?.to_bytes();
    let request: Value = serde_json::from_slice(&body)?;
    let reply = serde_json::to_vec(&answer(role, &request))?;
    Ok(Response::builder()
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(reply.into()))?)
}

/// A `floor http-server` child and one keep-alive connection to it.
#[derive(Debug)]
pub(crate) struct Peer {
    runtime: Runtime,
    sender: SendRequest<Body>,
    connection: Connection<TokioIo<TcpStream>, Body>,
    host: HeaderValue,
    _server: Server,
}

impl Peer {
    pub(crate) fn spawn(role: Role) -> anyhow::Result<Self> {
        let mut server = Server::spawn("http-server", role)?;
        let port = read_port(&mut server)?;
        let runtime = runtime()?;
        let (sender, connection) = runtime.block_on(connect(port))?;
        Ok(Self {
            runtime,
            sender,
            connection,
            host: HeaderValue::from_str(&format!("127.0.0.1:{port}"))?,
            _server: server,
        })
    }
}

/// The port the child prints on its first line.
fn read_port(server: &mut Server) -> anyhow::Result<u16> {
    let stdout = server.0.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    line.trim()
        .parse()
        .with_context(|| format!("the floor http-server printed {line:?}, not a port"))
}

async fn connect(
    port: u16,
) -> anyhow::Result<(SendRequest<Body>, Connection<TokioIo<TcpStream>, Body>)> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    stream.set_nodelay(true)?;
    Ok(hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?)
}

impl Call for Peer {
    fn call(&mut self, request: &Value) -> anyhow::Result<Value> {
        let post = Request::post("/")
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(serde_json::to_vec(request)?.into()))?;
        let Self {
            runtime,
            sender,
            connection,
            ..
        } = self;
        let body = runtime.block_on(async {
            tokio::select! {
                biased;
                body = exchange(sender, post) => body,
                end = connection => {
                    end.context("the connection to the floor http-server failed")?;
                    bail!("the floor http-server closed the connection")
                }
            }
        })?;
        Ok(serde_json::from_slice(&body)?)
    }
}

/// Sends one request and reads the whole body of its response.
async fn exchange(sender: &mut SendRequest<Body>, post: Request<Body>) -> anyhow::Result<Bytes> {
    sender.ready().await?;
    let response = sender.send_request(post).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "the floor http-server answered {}",
        response.status()
    );
    Ok(response.into_body().collect().await?.to_bytes())
}
