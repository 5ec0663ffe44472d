//! The command line every reference server shares, and the thin `run` that
//! turns it into a served transport.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use rmcp::ServerHandler;
use tokio_util::sync::CancellationToken;

use crate::serve::{self, HttpOptions, Limits, ServeError};

/// Transport and limit flags. stdio is the default transport.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Serve MCP streamable HTTP at http://ADDR/mcp instead of stdio.
    /// With no ADDR, the server's documented default address.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, conflicts_with = "tcp")]
    pub(crate) http: Option<Option<SocketAddr>>,

    /// Serve newline-delimited JSON-RPC over TCP on ADDR instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub(crate) tcp: Option<SocketAddr>,

    /// Load the dataset from this JSON file instead of the embedded demo data.
    #[arg(long, value_name = "FILE")]
    pub(crate) data: Option<PathBuf>,

    /// Largest JSON-RPC message accepted, in bytes, on every transport.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.message_bytes_max,
          value_parser = parse_message_bytes_max)]
    pub(crate) message_bytes_max: usize,

    /// Extra Host header value to accept over HTTP (repeatable). Loopback
    /// names are always accepted; anything else is refused (DNS rebinding).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub(crate) allowed_hosts: Vec<String>,

    /// Extra browser Origin to accept over HTTP (repeatable), e.g.
    /// https://app.example.com:443. Loopback origins are always accepted.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub(crate) allowed_origins: Vec<String>,

    #[command(flatten)]
    pub(crate) auth: AuthArgs,
}

/// Who may call over HTTP. With none of these, the server generates a
/// token, writes it to a file only its owner can read, and prints the path.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct AuthArgs {
    /// HTTP: accept the static bearer tokens in FILE, one per line (`#`
    /// starts a comment). A static token grants every scope.
    #[arg(long, value_name = "FILE")]
    pub(crate) auth_token_file: Option<PathBuf>,

    /// HTTP: accept the static bearer token held in environment variable VAR
    /// (the variable's name, never the token, goes on the command line).
    #[arg(long, value_name = "VAR")]
    pub(crate) auth_token_env: Option<String>,

    /// HTTP: accept JWT access tokens signed by a key in this JWKS file
    /// (RS256 or ES256), issued by --issuer for --resource.
    #[arg(long, value_name = "FILE", requires = "issuer")]
    pub(crate) jwks: Option<PathBuf>,

    /// HTTP: the `iss` every JWT must carry: the authorization server's URL.
    #[arg(long, value_name = "URL", requires = "jwks")]
    pub(crate) issuer: Option<String>,

    /// HTTP: this server's resource URL, the `aud` its JWTs must carry and
    /// the `resource` of its metadata. Default: http://ADDR/mcp.
    #[arg(long, value_name = "URL")]
    pub(crate) resource: Option<String>,

    /// HTTP: where to write the generated token when no credentials are
    /// configured. Default: $XDG_RUNTIME_DIR (else the temp dir)/NAME-PORT.token.
    #[arg(long, value_name = "FILE")]
    pub(crate) auth_token_out: Option<PathBuf>,

    /// HTTP: switch authentication off. Accepted only on a loopback address,
    /// and logged as a warning.
    #[arg(long, conflicts_with_all = ["auth_token_file", "auth_token_env", "jwks", "auth_token_out"])]
    pub(crate) no_auth: bool,

    /// HTTP: most requests one token may have in flight; one more is
    /// answered 429 with Retry-After, so one client cannot starve the others.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub(crate) token_requests_max: u32,
}

impl AuthArgs {
    fn any_given(&self) -> bool {
        self.auth_token_file.is_some()
            || self.auth_token_env.is_some()
            || self.jwks.is_some()
            || self.resource.is_some()
            || self.auth_token_out.is_some()
            || self.no_auth
    }
}

impl ServeArgs {
    /// stdio with the embedded data and default limits: what a server
    /// binary does with no flags.
    pub fn stdio() -> Self {
        Self {
            http: None,
            tcp: None,
            data: None,
            message_bytes_max: Limits::DEFAULT.message_bytes_max,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            auth: AuthArgs {
                token_requests_max: 64,
                ..AuthArgs::default()
            },
        }
    }
}

fn parse_message_bytes_max(raw: &str) -> Result<usize, String> {
    const MIN: usize = 1024;
    const MAX: usize = 64 * 1024 * 1024;
    let bytes: usize = raw.parse().map_err(|e| format!("{e}"))?;
    if (MIN..=MAX).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!("must be between {MIN} and {MAX} bytes"))
    }
}

/// Where a server listens, resolved from [`ServeArgs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listen {
    Stdio,
    Tcp(SocketAddr),
    Http(SocketAddr),
}

impl ServeArgs {
    /// The transport these flags select; `--http` alone means `default_http`.
    pub(crate) fn listen(&self, default_http: SocketAddr) -> Listen {
        match (self.http, self.tcp) {
            (Some(addr), _) => Listen::Http(addr.unwrap_or(default_http)),
            (None, Some(addr)) => Listen::Tcp(addr),
            (None, None) => Listen::Stdio,
        }
    }

    /// The limits these flags select.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            message_bytes_max: self.message_bytes_max,
            ..Limits::DEFAULT
        }
    }
}

/// What a server binary tells the kit about itself.
#[derive(Debug, Clone, Copy)]
pub struct ServerSpec {
    /// The binary's name, for logs and the generated token's file name.
    pub name: &'static str,
    /// Where `--http` with no address listens.
    pub default_http: SocketAddr,
    /// What its HTTP endpoint protects, and how.
    pub protection: crate::Protection,
}

/// The whole `main` of a server binary, after clap: load the dataset with
/// `load` (given `--data`, if any), serve it, report any failure on stderr.
/// Exit codes: 0 after a clean stop, 1 on bad data, bad auth settings or a
/// serving failure (clap itself exits 2 on bad arguments).
pub fn main<S: ServerHandler + Clone>(
    spec: &ServerSpec,
    args: &ServeArgs,
    load: impl FnOnce(Option<&std::path::Path>) -> Result<S, crate::DataFileError>,
) -> std::process::ExitCode {
    init_tracing("info,rmcp=warn");
    let result = match check_flags(spec, args)
        .map_err(|e| describe(&e))
        .and_then(|_| load(args.data.as_deref()).map_err(|e| describe(&e)))
    {
        Ok(handler) => run(spec, handler, args).map_err(|e| describe(&e)),
        Err(message) => Err(message),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {}: {message}", spec.name);
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: "a: b: c". A cause
/// whose text the message already contains is not repeated.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// Sends logs to stderr (stdout carries the protocol on stdio), with
/// `default_filter` unless `RUST_LOG` says otherwise.
pub fn init_tracing(default_filter: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Runs `handler` on the transport `args` selects until the client leaves
/// (stdio) or SIGINT/SIGTERM arrives.
pub fn run<S: ServerHandler + Clone>(
    spec: &ServerSpec,
    handler: S,
    args: &ServeArgs,
) -> Result<(), ServeError> {
    let name = spec.name;
    let listen = check_flags(spec, args)?;
    let runtime = match listen {
        // One client: a single thread is both enough and fastest.
        Listen::Stdio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Listen::Tcp(_) | Listen::Http(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
    .map_err(|source| ServeError::Listener {
        addr: "runtime".into(),
        source,
    })?;
    let limits = args.limits();
    // Removes the generated token file however `run` ends.
    let mut generated: Option<RemoveOnDrop> = None;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let on_signal =
            serve::cancel_on_signal(shutdown.clone()).map_err(|source| ServeError::Listener {
                addr: "signal handlers".into(),
                source,
            })?;
        tokio::spawn(on_signal);
        let result = match listen {
            Listen::Stdio => {
                tracing::info!("{name}: serving MCP on stdio");
                serve::serve_stdio(handler, &limits, shutdown).await
            }
            Listen::Tcp(addr) => {
                let listener = bind(addr).await?;
                let addr = listener.local_addr().unwrap_or(addr);
                tracing::info!("{name}: serving MCP (newline JSON-RPC) on tcp://{addr}");
                serve::serve_tcp(listener, handler, limits, shutdown).await
            }
            Listen::Http(addr) => {
                let listener = bind(addr).await?;
                let addr = listener.local_addr().unwrap_or(addr);
                let (access, token_file) = http_access(spec, &args.auth, addr)?;
                generated = token_file.map(RemoveOnDrop);
                let http = HttpOptions {
                    allowed_hosts: args.allowed_hosts.clone(),
                    allowed_origins: args.allowed_origins.clone(),
                    access,
                    sessions: true,
                    session_ids: std::sync::Arc::new(crate::sessions::OsRandomIds),
                    sse_keep_alive: Some(serve::SSE_KEEP_ALIVE),
                };
                tracing::info!("{name}: serving MCP streamable HTTP at http://{addr}/mcp");
                serve::serve_http(listener, handler, limits, http, shutdown).await
            }
        };
        tracing::info!("{name}: stopped");
        result
    })?;
    drop(generated);
    // stdin may still be blocked in a read no cancellation can interrupt.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// Refuses flag combinations that would be unsafe or mean nothing, before
/// anything is loaded or bound; returns where the server will listen.
fn check_flags(spec: &ServerSpec, args: &ServeArgs) -> Result<Listen, ServeError> {
    let listen = args.listen(spec.default_http);
    match listen {
        Listen::Http(_) => {}
        Listen::Stdio | Listen::Tcp(_) if args.auth.any_given() => {
            return Err(ServeError::Config(
                "authentication flags apply to --http only (stdio trusts its parent process; TCP binds to loopback only)".into(),
            ));
        }
        Listen::Tcp(addr) if !addr.ip().is_loopback() => {
            return Err(ServeError::Config(format!(
                "--tcp {addr}: the TCP transport has no authentication, so it listens on loopback only; use --http to serve other hosts"
            )));
        }
        Listen::Stdio | Listen::Tcp(_) => {}
    }
    if let Listen::Http(addr) = listen
        && args.auth.no_auth
        && !addr.ip().is_loopback()
    {
        return Err(ServeError::Config(format!(
            "--no-auth is accepted only on a loopback address, not {addr}"
        )));
    }
    Ok(listen)
}

/// Resolves the auth flags into who may call, reading token and key files.
/// With no credentials configured, generates a token and writes it to a
/// file only the owner can read; returns that file's path too.
fn http_access(
    spec: &ServerSpec,
    auth: &AuthArgs,
    addr: SocketAddr,
) -> Result<(crate::Access, Option<PathBuf>), ServeError> {
    let name = spec.name;
    if auth.no_auth {
        tracing::warn!(
            "{name}: authentication is OFF (--no-auth): anyone who can reach http://{addr}/mcp can read its data"
        );
        return Ok((crate::Access::Open, None));
    }
    let mut static_tokens = Vec::new();
    if let Some(path) = &auth.auth_token_file {
        let text = read_secret_file(path)?;
        static_tokens.extend(crate::auth::parse_static_tokens(
            &path.display().to_string(),
            &text,
        )?);
    }
    if let Some(var) = &auth.auth_token_env {
        // Not the VarError's text: for a non-UTF-8 value it holds the value.
        let value = std::env::var(var).map_err(|e| crate::AuthConfigError::Env {
            name: var.clone(),
            message: match e {
                std::env::VarError::NotPresent => "is not set".into(),
                std::env::VarError::NotUnicode(_) => "is not UTF-8".into(),
            },
        })?;
        crate::auth::check_static_token(value.trim()).map_err(|message| {
            crate::AuthConfigError::Env {
                name: var.clone(),
                message,
            }
        })?;
        static_tokens.push(crate::Secret::new(value.trim().to_owned()));
    }
    let jwt = match (&auth.jwks, &auth.issuer) {
        (Some(path), Some(issuer)) => {
            let text = read_secret_file(path)?;
            Some(crate::JwtSettings {
                keys: crate::auth::parse_jwks(&path.display().to_string(), &text)?,
                issuer: issuer.clone(),
            })
        }
        _ => None,
    };
    let mut token_file = None;
    if static_tokens.is_empty() && jwt.is_none() {
        let token = generate_token()?;
        let path = auth
            .auth_token_out
            .clone()
            .unwrap_or_else(|| default_token_path(name, addr.port()));
        write_owner_only(&path, token.expose()).map_err(|source| crate::AuthConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        tracing::info!(
            "{name}: no credentials configured, so it generated a bearer token, readable only by you, in {}",
            path.display()
        );
        static_tokens.push(token);
        token_file = Some(path);
    }
    let resource = auth
        .resource
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/mcp"));
    let authenticator = crate::Authenticator::new(crate::AuthSettings {
        resource,
        protection: spec.protection,
        static_tokens,
        jwt,
        token_requests_max: auth.token_requests_max as usize,
        clock: system_clock(),
    })?;
    tracing::info!(
        resource = authenticator.resource(),
        metadata = authenticator.metadata_url(),
        "{name}: bearer tokens required (scope {})",
        spec.protection.scope
    );
    Ok((
        crate::Access::Protected(std::sync::Arc::new(authenticator)),
        token_file,
    ))
}

/// The system clock, in seconds since the Unix epoch, for an
/// [`crate::Authenticator`] in a real server; a simulation passes its own.
pub fn system_clock() -> crate::Clock {
    std::sync::Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// A fresh random bearer token: 32 bytes from the OS, as 64 hex characters.
pub fn generate_token() -> Result<crate::Secret, crate::AuthConfigError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| crate::AuthConfigError::Random(e.to_string()))?;
    Ok(crate::Secret::new(
        bytes.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

fn read_secret_file(path: &std::path::Path) -> Result<String, crate::AuthConfigError> {
    std::fs::read_to_string(path).map_err(|source| crate::AuthConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// `$XDG_RUNTIME_DIR/NAME-PORT.token`, else the same in the temp dir.
fn default_token_path(name: &str, port: u16) -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!("{name}-{port}.token"))
}

/// A generated token's file, removed when this is dropped: the token dies
/// with the server, as Jupyter's runtime files do.
#[derive(Debug)]
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes `text` to a new file at `path` that only its owner can read or
/// write (on Unix). A file already there is replaced only if it looks like
/// a token file a server wrote (a regular file of one 64-hex-digit line,
/// mode 0600): a mistyped path never destroys anything else. A link is
/// never followed.
fn write_owner_only(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::symlink_metadata(path) {
        Ok(existing) => {
            if !looks_like_a_token_file(path, &existing) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "refusing to replace it: it is not a token file a server wrote (remove it, or choose another --auth-token-out)",
                ));
            }
            std::fs::remove_file(path)?;
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{text}")?;
    file.sync_all()
}

fn looks_like_a_token_file(path: &std::path::Path, metadata: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    let private = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777 == 0o600;
    #[cfg(not(unix))]
    let private = true;
    metadata.is_file()
        && private
        && metadata.len() <= 66
        && std::fs::read_to_string(path).is_ok_and(|text| {
            let token = text.trim_end();
            token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// Binds a TCP listener, naming the address on failure.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listener {
            addr: addr.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ServerSpec = ServerSpec {
        name: "test-server",
        default_http: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8082),
        protection: crate::Protection {
            scope: "test:read",
            scopes_supported: &["test:read"],
            guard: None,
        },
    };

    #[test]
    fn unsafe_flag_combinations_are_refused_before_anything_starts() {
        let refused = |edit: &dyn Fn(&mut ServeArgs)| {
            let mut args = ServeArgs::stdio();
            edit(&mut args);
            check_flags(&SPEC, &args).map_err(|e| e.to_string())
        };
        assert_eq!(refused(&|_| {}), Ok(Listen::Stdio));
        let public = "0.0.0.0:8082".parse().unwrap();
        assert_eq!(
            refused(&|a| {
                a.http = Some(Some(public));
                a.auth.no_auth = true;
            }),
            Err("--no-auth is accepted only on a loopback address, not 0.0.0.0:8082".into())
        );
        assert!(
            refused(&|a| a.tcp = Some(public))
                .unwrap_err()
                .contains("listens on loopback only")
        );
        assert!(
            refused(&|a| a.auth.auth_token_env = Some("T".into()))
                .unwrap_err()
                .starts_with("authentication flags apply to --http only")
        );
        assert_eq!(
            refused(&|a| a.http = Some(Some(public))),
            Ok(Listen::Http(public)),
            "a public address is fine with authentication on"
        );
    }

    #[test]
    fn generated_tokens_are_fresh_64_hex_digits() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_token_file_is_private_and_never_replaces_another_file() {
        let dir = std::env::temp_dir().join(format!("kit-token-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.token");
        let _ = std::fs::remove_file(&path);
        let first = generate_token().unwrap();
        write_owner_only(&path, first.expose()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // A previous run's token file is replaced...
        let second = generate_token().unwrap();
        write_owner_only(&path, second.expose()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            second.expose()
        );
        // ...but nothing else is.
        let precious = dir.join("notes.txt");
        std::fs::write(&precious, "my notes\n").unwrap();
        let error = write_owner_only(&precious, second.expose()).unwrap_err();
        assert!(
            error.to_string().starts_with("refusing to replace it"),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "my notes\n");
        drop(RemoveOnDrop(path.clone()));
        assert!(!path.exists(), "the guard removes the token file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
