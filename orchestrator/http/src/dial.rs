//! How the HTTP client reaches a server: a [`Dialer`] turns an
//! [`Endpoint`] into a byte stream. The client never names a socket type, so
//! the same client runs over real TCP ([`TcpDialer`]), over TLS on real TCP
//! (`TlsDialer`, with the `https` feature) and over simulated TCP (the
//! harness's simulated dialer).

use std::{fmt, io};

use tokio::io::{AsyncRead, AsyncWrite};

/// Where one connection goes: the scheme's security, the host and the port
/// of a URL, with the scheme's default port filled in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `https`: the dialer must wrap the stream in TLS (or refuse).
    pub tls: bool,
    /// A DNS name, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Opens connections. Cheap to clone: the client holds one per transport.
///
/// `dial` must be cancel-safe (the client drops it on timeout) and must not
/// retry on its own: the client bounds every request with one deadline.
pub trait Dialer: Clone + Send + Sync + 'static {
    /// The stream one HTTP/1.1 connection runs on.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Connects to `endpoint`.
    fn dial(&self, endpoint: &Endpoint) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

#[cfg(feature = "https")]
pub use crate::tls::{DialStream, TlsDialer};

/// Real TCP through tokio, with Nagle off (a request is one small write).
/// Plain HTTP only: an `https` endpoint is refused (an `Unsupported`
/// error that says how to get TLS), never sent in clear.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDialer;

impl Dialer for TcpDialer {
    type Stream = tokio::net::TcpStream;

    async fn dial(&self, endpoint: &Endpoint) -> io::Result<Self::Stream> {
        refuse_tls(endpoint)?;
        connect_tcp(endpoint).await
    }
}

/// A TCP connection to `endpoint`'s host and port, Nagle off.
pub(crate) async fn connect_tcp(endpoint: &Endpoint) -> io::Result<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What [`TcpDialer`] says to an `https` endpoint (the client shows the
/// endpoint beside it).
const NO_TLS: &str = if cfg!(feature = "https") {
    "TcpDialer has no TLS: use TlsDialer"
} else {
    "this build has no TLS; rebuild with `--features https`"
};

/// The error a plain-TCP dialer gives for an `https` endpoint.
pub(crate) fn refuse_tls(endpoint: &Endpoint) -> io::Result<()> {
    if endpoint.tls {
        return Err(io::Error::new(io::ErrorKind::Unsupported, NO_TLS));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_show_as_urls() {
        let v6 = Endpoint {
            tls: false,
            host: "::1".into(),
            port: 8082,
        };
        assert_eq!(v6.to_string(), "http://[::1]:8082");
        let name = Endpoint {
            tls: true,
            host: "example.com".into(),
            port: 443,
        };
        assert_eq!(name.to_string(), "https://example.com:443");
        assert!(refuse_tls(&v6).is_ok());
    }

    #[cfg(not(feature = "https"))]
    #[tokio::test(flavor = "current_thread")]
    async fn without_the_feature_https_is_refused_with_the_fix() {
        let endpoint = Endpoint {
            tls: true,
            host: "127.0.0.1".into(),
            port: 9,
        };
        let error = TcpDialer.dial(&endpoint).await.expect_err("no TLS");
        assert_eq!(error.kind(), io::ErrorKind::Unsupported);
        assert_eq!(
            error.to_string(),
            "this build has no TLS; rebuild with `--features https`"
        );
    }
}
