//! The streamable-HTTP transport: status codes and headers for requests
//! wrong in one way, Origin and Host, sessions and DELETE,
//! `MCP-Protocol-Version`, and the 401 challenge.

use serde_json::{Value, json};

use super::{
    AUTH_CHALLENGE, AUTH_REQUIRED, Check, Finding, HTTP_ACCEPT_406, HTTP_BAD_BODY,
    HTTP_BAD_BODY_400, HTTP_CONTENT_TYPE_415, HTTP_GET, HTTP_HOST, HTTP_METHOD_405,
    HTTP_NOTIFICATION_202, HTTP_ORIGIN, HTTP_PROTOCOL_VERSION, HTTP_SESSION_DELETED,
    HTTP_SESSION_REQUIRED, HTTP_SESSION_UNKNOWN, HTTP_TOO_LARGE, Ledger, Step, clip,
};
use crate::{
    session::{Revision, Session},
    target::{HttpReply, HttpRequest, HttpUrl, LinkError, MESSAGE_BYTES_MAX, Target, http_send},
};

/// A request and what it got.
struct Sent {
    reply: Result<HttpReply, LinkError>,
    step: Step,
}

impl Sent {
    fn status(&self) -> Option<u16> {
        self.reply.as_ref().ok().map(|r| r.status)
    }
}

async fn send(url: &HttpUrl, mut request: HttpRequest, what: &str) -> Sent {
    if request
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("mcp-method"))
    {
        // The 2026-07-28 headers name the body's method: name this body's.
        request.set("Mcp-Method", None);
        request.set("Mcp-Name", None);
        request
            .headers
            .extend(crate::session::standard_headers(&request.body));
    }
    let reply = http_send(url, &request, None).await;
    let got = match &reply {
        Ok(r) => format!(
            "HTTP {} {}",
            r.status,
            clip(&String::from_utf8_lossy(&r.body), 200)
        ),
        Err(e) => format!("({e})"),
    };
    let body = clip(&String::from_utf8_lossy(&request.body), 200);
    let step = Step {
        sent: format!("{} {what}: {body}", request.method),
        got: vec![got],
    };
    Sent { reply, step }
}

/// Records `check`: it holds when `holds` says so of the status.
fn expect(
    ledger: &mut Ledger,
    check: &'static Check,
    sent: &Sent,
    holds: impl Fn(u16) -> bool,
    wanted: &str,
) {
    let finding = match sent.status() {
        Some(status) if holds(status) => None,
        Some(status) => Some(format!("HTTP {status}, where {wanted} is required")),
        None => Some(format!("{}, where {wanted} is required", sent.step.got[0])),
    };
    let finding = finding.map(|d| Finding::new(check, d).with(vec![sent.step.clone()]));
    ledger.check(check, finding);
}

fn client_error(status: u16) -> bool {
    (400..500).contains(&status)
}

/// Runs the HTTP checks with `session` (open, handshake done).
pub(crate) async fn checks(
    target: &Target,
    session: &mut Session,
    ledger: &mut Ledger,
) -> Result<(), LinkError> {
    let ping = session.control_ping().to_string().into_bytes();
    let (url, base) = session.http_base(ping).expect("an HTTP session");
    malformed(&url, &base, ledger).await;
    get_stream(&url, &base, ledger).await;
    origin_and_host(&url, &base, ledger).await;
    protocol_version(&url, &base, ledger).await;
    if session.revision() == Revision::Sessions {
        sessions(target, &url, &base, session.http_session(), ledger).await?;
    } else {
        for check in [
            &HTTP_SESSION_REQUIRED,
            &HTTP_SESSION_UNKNOWN,
            &HTTP_SESSION_DELETED,
        ] {
            ledger.skip(check, "2026-07-28 is stateless: no sessions");
        }
    }
    authorization(&url, &base, session.revision(), ledger).await;
    Ok(())
}

/// Bodies and headers wrong in one way.
async fn malformed(url: &HttpUrl, base: &HttpRequest, ledger: &mut Ledger) {
    let mut notification = base.clone();
    notification.body = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 999_998, "reason": "mcp-probe"}})
    .to_string()
    .into_bytes();
    let sent = send(url, notification, "a notification").await;
    let empty = sent
        .reply
        .as_ref()
        .is_ok_and(|r| r.body.iter().all(u8::is_ascii_whitespace));
    expect(
        ledger,
        &HTTP_NOTIFICATION_202,
        &sent,
        |s| s == 202 && empty,
        "202 with no body",
    );

    let sent = send(
        url,
        HttpRequest {
            body: b"{not json".to_vec(),
            ..base.clone()
        },
        "a body that is not JSON",
    )
    .await;
    expect(ledger, &HTTP_BAD_BODY, &sent, client_error, "a 4xx");
    expect(ledger, &HTTP_BAD_BODY_400, &sent, |s| s == 400, "400");

    let mut request = base.clone();
    request.set("Accept", Some("text/plain"));
    expect(
        ledger,
        &HTTP_ACCEPT_406,
        &send(url, request, "with Accept: text/plain").await,
        |s| s == 406,
        "406",
    );

    let mut request = base.clone();
    request.set("Content-Type", Some("text/plain"));
    let sent = send(url, request, "with Content-Type: text/plain").await;
    expect(ledger, &HTTP_CONTENT_TYPE_415, &sent, |s| s == 415, "415");

    let sent = send(
        url,
        HttpRequest {
            method: "PUT",
            ..base.clone()
        },
        "to the endpoint",
    )
    .await;
    expect(ledger, &HTTP_METHOD_405, &sent, |s| s == 405, "405");

    too_large(url, base, ledger).await;
}

/// An 8 MiB body: refused with 413, or the connection closed on it.
async fn too_large(url: &HttpUrl, base: &HttpRequest, ledger: &mut Ledger) {
    let pad = "x".repeat(MESSAGE_BYTES_MAX);
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": {"pad": pad}}});
    let sent = send(
        url,
        HttpRequest {
            body: body.to_string().into_bytes(),
            ..base.clone()
        },
        "an 8 MiB body",
    )
    .await;
    let closed = matches!(sent.reply, Err(LinkError::Unreachable { .. }));
    let finding = match sent.status() {
        Some(413) => None,
        _ if closed => None,
        Some(status) => Some(format!("HTTP {status} for an 8 MiB body, where 413 fits")),
        None => Some(sent.step.got[0].clone()),
    };
    ledger.check(
        &HTTP_TOO_LARGE,
        finding.map(|d| Finding::new(&HTTP_TOO_LARGE, d).with(vec![sent.step.clone()])),
    );
}

/// A GET opens an SSE stream, or is refused with 405.
async fn get_stream(url: &HttpUrl, base: &HttpRequest, ledger: &mut Ledger) {
    let mut request = HttpRequest {
        method: "GET",
        body: Vec::new(),
        headers_only: true,
        ..base.clone()
    };
    request.set("Accept", Some("text/event-stream"));
    request.set("Content-Type", None);
    let sent = send(url, request, "for an SSE stream").await;
    let sse = sent.reply.as_ref().is_ok_and(|r| {
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    });
    expect(
        ledger,
        &HTTP_GET,
        &sent,
        |s| s == 405 || (s == 200 && sse),
        "200 with text/event-stream, or 405",
    );
}

async fn origin_and_host(url: &HttpUrl, base: &HttpRequest, ledger: &mut Ledger) {
    let mut request = base.clone();
    request.set("Origin", Some("http://mcp-probe.invalid"));
    let sent = send(url, request, "with Origin: http://mcp-probe.invalid").await;
    expect(ledger, &HTTP_ORIGIN, &sent, |s| s == 403, "403");

    let mut request = base.clone();
    request.set("Host", Some("mcp-probe.invalid"));
    let sent = send(url, request, "with Host: mcp-probe.invalid").await;
    expect(ledger, &HTTP_HOST, &sent, client_error, "a 4xx");
}

async fn protocol_version(url: &HttpUrl, base: &HttpRequest, ledger: &mut Ledger) {
    let mut request = base.clone();
    request.set("MCP-Protocol-Version", Some("1900-01-01"));
    let sent = send(url, request, "with MCP-Protocol-Version: 1900-01-01").await;
    expect(ledger, &HTTP_PROTOCOL_VERSION, &sent, |s| s == 400, "400");
}

/// Session ids: required once issued, unknown ones 404, and a DELETEd
/// session is gone.
async fn sessions(
    target: &Target,
    url: &HttpUrl,
    base: &HttpRequest,
    issued: Option<&str>,
    ledger: &mut Ledger,
) -> Result<(), LinkError> {
    if issued.is_none() {
        for check in [
            &HTTP_SESSION_REQUIRED,
            &HTTP_SESSION_UNKNOWN,
            &HTTP_SESSION_DELETED,
        ] {
            ledger.skip(check, "the server issued no Mcp-Session-Id");
        }
        return Ok(());
    }
    let mut request = base.clone();
    request.set("Mcp-Session-Id", None);
    let sent = send(url, request, "without Mcp-Session-Id").await;
    expect(ledger, &HTTP_SESSION_REQUIRED, &sent, |s| s == 400, "400");

    let mut request = base.clone();
    request.set("Mcp-Session-Id", Some("mcp-probe-never-issued"));
    let sent = send(url, request, "with an Mcp-Session-Id never issued").await;
    expect(ledger, &HTTP_SESSION_UNKNOWN, &sent, |s| s == 404, "404");

    deleted(target, ledger).await
}

/// DELETEs a fresh session; if the server allows it, the id is then 404.
async fn deleted(target: &Target, ledger: &mut Ledger) -> Result<(), LinkError> {
    let mut session = Session::open(target, Revision::Sessions)
        .await
        .map_err(|e| LinkError::Unreachable {
            url: target.to_string(),
            reason: e.to_string(),
        })?;
    let ping = session.control_ping().to_string().into_bytes();
    let (url, base) = session.http_base(ping).expect("an HTTP session");
    let delete = HttpRequest {
        method: "DELETE",
        body: Vec::new(),
        ..base.clone()
    };
    let sent = send(&url, delete, "the session").await;
    match sent.status() {
        Some(status) if (200..300).contains(&status) => {
            let after = send(&url, base, "on the deleted session").await;
            expect(ledger, &HTTP_SESSION_DELETED, &after, |s| s == 404, "404");
        }
        Some(405) => ledger.skip(
            &HTTP_SESSION_DELETED,
            "the server does not let clients end sessions (DELETE is 405)",
        ),
        _ => ledger.skip(
            &HTTP_SESSION_DELETED,
            format!("DELETE got {}", sent.step.got[0]),
        ),
    }
    Ok(())
}

/// Without the user's Authorization header: a 401 must carry a challenge;
/// being served at all is a warning.
async fn authorization(url: &HttpUrl, base: &HttpRequest, revision: Revision, ledger: &mut Ledger) {
    let mut request = base.clone();
    request.set("Authorization", None);
    request.set("Mcp-Session-Id", None);
    request.body = opening_request(revision).to_string().into_bytes();
    let sent = send(url, request, "without Authorization").await;
    let challenged = sent
        .reply
        .as_ref()
        .is_ok_and(|r| r.header("www-authenticate").is_some());
    match sent.status() {
        Some(401) => {
            expect(
                ledger,
                &AUTH_CHALLENGE,
                &sent,
                |_| challenged,
                "a WWW-Authenticate header on the 401",
            );
            ledger.ran(&AUTH_REQUIRED);
        }
        Some(status) if (200..300).contains(&status) => {
            ledger.skip(
                &AUTH_CHALLENGE,
                "the server answered without a token: no 401 to look at",
            );
            let detail = format!(
                "HTTP {status} to a request without Authorization: anyone who can reach it is served"
            );
            ledger.found(Finding::new(&AUTH_REQUIRED, detail).with(vec![sent.step.clone()]));
        }
        _ => {
            ledger.skip(
                &AUTH_CHALLENGE,
                format!("a request without Authorization got {}", sent.step.got[0]),
            );
            ledger.ran(&AUTH_REQUIRED);
        }
    }
}

fn opening_request(revision: Revision) -> Value {
    match revision {
        Revision::Sessions => Session::initialize_request(json!(1), revision.name()),
        Revision::Stateless => {
            json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}})
        }
    }
}
