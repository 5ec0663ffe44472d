//! [`TlsDialer`]: real TCP, wrapped in TLS for `https` endpoints (the
//! `https` feature). rustls with the ring provider; the roots are
//! Mozilla's, compiled in from `webpki-roots` (no OS certificate store),
//! plus any the caller adds.

use std::{
    fmt, io,
    sync::{Arc, LazyLock},
};

use tokio::net::TcpStream;
use tokio_rustls::{
    TlsConnector,
    client::TlsStream,
    rustls::{
        ClientConfig, RootCertStore,
        crypto::ring,
        pki_types::{CertificateDer, ServerName},
    },
};

use tokio_util::either::Either;

use crate::dial::{Dialer, Endpoint, connect_tcp};

/// Dials TCP with Nagle off and, for an `https` endpoint, runs a TLS
/// handshake on it: SNI and the certificate's name from `endpoint.host`
/// (an IP address is checked against the certificate's IP addresses),
/// ALPN `http/1.1`, TLS 1.2 or 1.3. Plain `http` endpoints stay plain TCP.
///
/// Cheap to clone: clones share one rustls config (and its session cache).
#[derive(Clone)]
pub struct TlsDialer {
    tls: TlsConnector,
}

impl fmt::Debug for TlsDialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsDialer").finish_non_exhaustive()
    }
}

/// The default dialer's config, built once.
static DEFAULT: LazyLock<TlsDialer> =
    LazyLock::new(|| TlsDialer::with_extra_roots([]).expect("no extra root to reject"));

impl Default for TlsDialer {
    /// Trusts Mozilla's roots (`webpki-roots`) and nothing else.
    fn default() -> Self {
        DEFAULT.clone()
    }
}

impl TlsDialer {
    /// Trusts Mozilla's roots and also `extra_roots`, each a DER-encoded
    /// certificate (a private CA's, or a test's self-signed one). An
    /// unreadable certificate is an `InvalidInput` error.
    pub fn with_extra_roots<'a>(
        extra_roots: impl IntoIterator<Item = &'a [u8]>,
    ) -> io::Result<Self> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for der in extra_roots {
            roots
                .add(CertificateDer::from(der.to_vec()))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        // rustls 0.23.48 deprecates ring's provider for lacking
        // post-quantum key exchange; aws-lc-rs, which has it, needs cmake
        // to build. Classical X25519 is what every server still accepts.
        #[allow(deprecated)]
        let provider = Arc::new(ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }
}

impl Dialer for TlsDialer {
    type Stream = DialStream;

    async fn dial(&self, endpoint: &Endpoint) -> io::Result<DialStream> {
        if !endpoint.tls {
            return Ok(Either::Left(connect_tcp(endpoint).await?));
        }
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tcp = connect_tcp(endpoint).await?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake failed: {e}")))?;
        Ok(Either::Right(Box::new(tls)))
    }
}

/// A connection [`TlsDialer`] opened: plain TCP (`Left`) or TLS over TCP
/// (`Right`).
pub type DialStream = Either<TcpStream, Box<TlsStream<TcpStream>>>;
