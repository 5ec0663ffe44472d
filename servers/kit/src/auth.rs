//! Access control: who is asking, and may they?
//!
//! Over streamable HTTP each server is an OAuth 2.1 *resource server*, as the
//! MCP authorization specification asks: it accepts `Authorization: Bearer`
//! tokens that were issued for it, and nothing else.
//!
//! - **JWT access tokens** are checked against keys from a JWKS file
//!   (RS256 or ES256 only), for `iss`, `aud` (this server's own resource
//!   URL), `exp` and `nbf` (with [`CLOCK_LEEWAY_S`] of leeway) and `scope`.
//! - **Static tokens** (for local use) come from a file or an environment
//!   variable, never the command line, and are compared in constant time.
//!   A static token grants every scope the server knows.
//!
//! Over stdio and TCP there are no tokens: the process boundary (stdio) or
//! the loopback interface (TCP, which the kit binds to loopback only) is
//! the trust boundary, and every request is [`Principal::local`].
//!
//! Whatever the transport, the request's [`Principal`] rides along in the
//! rmcp request extensions; tools read it with [`principal`]. A tool that
//! finds none must refuse: nothing reaches a tool unlabelled.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod session_book;

use session_book::SessionBook;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub(crate) const CLOCK_LEEWAY_S: u64 = 30;
/// Longest `Authorization` header looked at, in bytes; a longer one is refused
/// unread.
pub(crate) const AUTHORIZATION_BYTES_MAX: usize = 8 * 1024;
/// Most keys read from a JWKS file.
pub(crate) const JWKS_KEYS_MAX: usize = 32;
/// Most distinct tokens whose in-flight requests are tracked at once; past
/// this, idle entries are forgotten, and if none is idle new tokens wait (429).
pub(crate) const TRACKED_TOKENS_MAX: usize = 4096;
/// Shortest static token accepted, in characters: anything shorter is not a secret.
pub(crate) const STATIC_TOKEN_CHARS_MIN: usize = 16;
/// Most HTTP sessions one token may hold open. One more `initialize` closes
/// the token's least recently used session to make room.
pub(crate) const SESSIONS_PER_TOKEN_MAX: usize = 32;
/// The `Retry-After` of a 429 for too many requests in flight, in seconds.
pub(crate) const BUSY_RETRY_AFTER_S: u64 = 1;
/// A session unused this long is forgotten (rmcp closes an idle session
/// after 5 minutes too).
pub(crate) const SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(300);

/// Who a request comes from, and what it may do.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    via: Via,
    /// `sub` of a JWT: a user id, when the token acts for one user.
    subject: Option<String>,
    /// Granted scopes; `None` means every scope.
    scopes: Option<BTreeSet<String>>,
}

/// How a [`Principal`] was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// stdio or loopback TCP: the process or host boundary is the trust boundary.
    Local,
    /// HTTP with authentication switched off (`--no-auth`, loopback only).
    Unauthenticated,
    /// A static bearer token.
    StaticToken,
    /// A verified JWT access token.
    Jwt,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("via", &self.via)
            .field("subject", &self.subject)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl Principal {
    /// A request over stdio or loopback TCP: every scope.
    pub fn local() -> Self {
        Self {
            via: Via::Local,
            subject: None,
            scopes: None,
        }
    }

    /// A request over HTTP with authentication off: every scope.
    pub(crate) fn unauthenticated() -> Self {
        Self {
            via: Via::Unauthenticated,
            ..Self::local()
        }
    }

    fn static_token() -> Self {
        Self {
            via: Via::StaticToken,
            ..Self::local()
        }
    }

    /// A principal of a verified JWT with these scopes.
    pub fn jwt(subject: Option<String>, scopes: impl IntoIterator<Item = String>) -> Self {
        Self {
            via: Via::Jwt,
            subject,
            scopes: Some(scopes.into_iter().collect()),
        }
    }

    /// The token's subject (a user id), if it names one.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.as_ref().is_none_or(|s| s.contains(scope))
    }
}

/// The principal of the request whose rmcp extensions these are: put there
/// by the line transport (stdio, TCP) or by the HTTP auth layer (inside
/// the request's `http::request::Parts`). `None` means the request did not
/// come through the kit: refuse it.
pub fn principal(extensions: &rmcp::model::Extensions) -> Option<&Principal> {
    extensions.get::<Principal>().or_else(|| {
        extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
    })
}

/// A server's extra rule for one `tools/call`, checked before the call reaches
/// rmcp (so that a refusal is an HTTP 403): `Err(scope)` names the scope the
/// principal would need. Tools apply the same rule again themselves.
pub type CallGuard =
    fn(&Principal, &str, &serde_json::Map<String, serde_json::Value>) -> Result<(), String>;

/// What a server protects: the scope every request needs, the scopes it
/// knows, and its rule for tool calls.
#[derive(Debug, Clone, Copy)]
pub struct Protection {
    /// Required for every MCP request, e.g. `users:read`.
    pub scope: &'static str,
    /// Every scope the server understands, for its metadata.
    pub scopes_supported: &'static [&'static str],
    pub guard: Option<CallGuard>,
}

/// A bearer secret. Its `Debug` never shows it, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, to send or compare. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// Why an auth setting cannot be used. The server does not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    StaticTokens {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: not a usable JWKS file: {message}")]
    Jwks { path: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("cannot generate a token: {0}")]
    Random(String),
    #[error("{0}")]
    Invalid(String),
}

/// Parses a static-token file: one token per line; blank lines and lines
/// starting with `#` are skipped. `path` is for messages only.
pub(crate) fn parse_static_tokens(path: &str, text: &str) -> Result<Vec<Secret>, AuthConfigError> {
    let mut tokens = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        check_static_token(line).map_err(|message| AuthConfigError::StaticTokens {
            path: path.to_owned(),
            line: index + 1,
            message,
        })?;
        tokens.push(Secret(line.to_owned()));
    }
    if tokens.is_empty() {
        return Err(AuthConfigError::StaticTokens {
            path: path.to_owned(),
            line: 1,
            message: "no tokens in the file".into(),
        });
    }
    Ok(tokens)
}

/// A static token must be long enough to be a secret and fit in a header.
pub(crate) fn check_static_token(token: &str) -> Result<(), String> {
    if token.chars().count() < STATIC_TOKEN_CHARS_MIN {
        return Err(format!(
            "a token must be at least {STATIC_TOKEN_CHARS_MIN} characters"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token must be printable ASCII with no spaces".into());
    }
    Ok(())
}

/// JWT settings: the issuer's keys and name.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub keys: JwkSet,
    /// The `iss` every token must carry: the authorization server.
    pub issuer: String,
}

/// Parses a JWKS document; `path` is for messages only.
pub(crate) fn parse_jwks(path: &str, text: &str) -> Result<JwkSet, AuthConfigError> {
    let bad = |message: String| AuthConfigError::Jwks {
        path: path.to_owned(),
        message,
    };
    let keys: JwkSet = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if keys.keys.is_empty() {
        return Err(bad("it holds no keys".into()));
    }
    if keys.keys.len() > JWKS_KEYS_MAX {
        return Err(bad(format!("more than {JWKS_KEYS_MAX} keys")));
    }
    for (index, key) in keys.keys.iter().enumerate() {
        key_algorithm(key).map_err(|m| bad(format!("keys[{index}]: {m}")))?;
        DecodingKey::from_jwk(key).map_err(|e| bad(format!("keys[{index}]: {e}")))?;
    }
    Ok(keys)
}

/// The one algorithm a key may verify: RS256 for RSA keys, ES256 for P-256.
fn key_algorithm(key: &jsonwebtoken::jwk::Jwk) -> Result<Algorithm, String> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    let by_type = match &key.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return Err("only RSA (RS256) and P-256 (ES256) keys are accepted".into()),
    };
    match key.common.key_algorithm {
        None => Ok(by_type),
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => Ok(by_type),
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => Ok(by_type),
        Some(other) => Err(format!(
            "\"alg\": {other:?} is not accepted for this key (RS256 or ES256 only)"
        )),
    }
}

/// Seconds since the Unix epoch, as the authenticator should see them: the
/// system clock in a real server, simulated time under simulation.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Everything an authenticating server needs, resolved and checked.
#[derive(Clone)]
pub struct AuthSettings {
    /// This server's resource identifier: the audience its tokens must name
    /// (e.g. `https://payments.example.com/mcp`).
    pub resource: String,
    pub protection: Protection,
    pub static_tokens: Vec<Secret>,
    pub jwt: Option<JwtSettings>,
    /// Most requests one token may have in flight; one more gets 429.
    pub token_requests_max: usize,
    pub clock: Clock,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("resource", &self.resource)
            .field("static_tokens", &self.static_tokens.len())
            .field("jwt", &self.jwt.as_ref().map(|j| &j.issuer))
            .field("token_requests_max", &self.token_requests_max)
            .finish_non_exhaustive()
    }
}

/// Why a request was refused. The texts are generic on purpose: they never
/// echo the token or anything else from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denial {
    /// No credentials: 401 without an error code.
    Missing,
    /// Credentials present but not acceptable: 401 `invalid_token` (or
    /// `invalid_request` for a malformed header).
    Invalid {
        code: &'static str,
        description: &'static str,
    },
    /// Authenticated, but lacking this scope: 403 `insufficient_scope`.
    Scope(String),
    /// Too many requests in flight for this token: 429, retry after
    /// [`BUSY_RETRY_AFTER_S`].
    Busy,
    /// No room for another session of this token: its every place is an
    /// `initialize` still in flight, or [`TRACKED_TOKENS_MAX`] other tokens
    /// hold sessions. 429, retry after this many seconds.
    TooManySessions { retry_after_s: u64 },
    /// The `Mcp-Session-Id` is not one this token opened (or not one at
    /// all): 404, exactly what an unknown session gets, so that a session
    /// id is worth nothing without the token that opened it.
    ForeignSession,
}

impl Denial {
    /// The `Retry-After` (delta-seconds) of a denial that is a 429: every
    /// 429 has one, nothing else does.
    pub(crate) fn retry_after_s(&self) -> Option<u64> {
        match self {
            Denial::Busy => Some(BUSY_RETRY_AFTER_S),
            Denial::TooManySessions { retry_after_s } => Some(*retry_after_s),
            Denial::Missing
            | Denial::Invalid { .. }
            | Denial::Scope(_)
            | Denial::ForeignSession => None,
        }
    }
}

/// Checks bearer tokens for one server. Built once; shared by every request.
pub struct Authenticator {
    resource: String,
    metadata_url: String,
    protection: Protection,
    issuer: Option<String>,
    static_digests: Vec<[u8; 32]>,
    /// (kid, algorithm, key, the validation for that algorithm): the
    /// validation's algorithms must all be of the key's family.
    keys: Vec<(Option<String>, Algorithm, DecodingKey, Validation)>,
    clock: Clock,
    token_requests_max: usize,
    in_flight: Mutex<HashMap<[u8; 32], Arc<Semaphore>>>,
    /// Per token digest: the sessions it opened, with their last use. Keyed
    /// by token so that a request costs one lookup, never a scan; at most
    /// [`TRACKED_TOKENS_MAX`] tokens of [`SESSIONS_PER_TOKEN_MAX`] each.
    sessions: Mutex<SessionBook>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("resource", &self.resource)
            .field("issuer", &self.issuer)
            .field("static_tokens", &self.static_digests.len())
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// The RFC 9728 metadata URL of a resource: the well-known path inserted
/// between its origin and its path.
pub(crate) fn metadata_url(resource: &str) -> String {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("http", resource));
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let path = path.trim_end_matches('/');
    format!("{scheme}://{authority}/.well-known/oauth-protected-resource{path}")
}

impl Authenticator {
    pub fn new(settings: AuthSettings) -> Result<Self, AuthConfigError> {
        if !(settings.resource.starts_with("http://") || settings.resource.starts_with("https://"))
        {
            return Err(AuthConfigError::Invalid(format!(
                "--resource {:?} must be an http:// or https:// URL",
                settings.resource
            )));
        }
        if settings.static_tokens.is_empty() && settings.jwt.is_none() {
            return Err(AuthConfigError::Invalid(
                "authentication needs static tokens or a JWKS".into(),
            ));
        }
        if settings.token_requests_max == 0 {
            return Err(AuthConfigError::Invalid(
                "--token-requests-max must be at least 1".into(),
            ));
        }
        let mut keys = Vec::new();
        let mut issuer = None;
        if let Some(jwt) = &settings.jwt {
            for key in &jwt.keys.keys {
                let algorithm = key_algorithm(key).map_err(AuthConfigError::Invalid)?;
                let decoding = DecodingKey::from_jwk(key)
                    .map_err(|e| AuthConfigError::Invalid(e.to_string()))?;
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&[&jwt.issuer]);
                validation.set_audience(&[&settings.resource]);
                validation.set_required_spec_claims(&["iss", "aud", "exp"]);
                // Time is checked against `clock` (check_claims), never the
                // system clock, so that a simulation replays exactly.
                validation.validate_exp = false;
                validation.validate_nbf = false;
                keys.push((key.common.key_id.clone(), algorithm, decoding, validation));
            }
            issuer = Some(jwt.issuer.clone());
        }
        Ok(Self {
            metadata_url: metadata_url(&settings.resource),
            resource: settings.resource,
            protection: settings.protection,
            issuer,
            static_digests: settings
                .static_tokens
                .iter()
                .map(|t| Sha256::digest(t.expose().as_bytes()).into())
                .collect(),
            keys,
            clock: settings.clock,
            token_requests_max: settings.token_requests_max,
            in_flight: Mutex::new(HashMap::new()),
            sessions: Mutex::new(SessionBook::default()),
        })
    }

    pub(crate) fn resource(&self) -> &str {
        &self.resource
    }

    pub(crate) fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    pub(crate) fn protection(&self) -> &Protection {
        &self.protection
    }

    /// The RFC 9728 Protected Resource Metadata document.
    pub(crate) fn metadata(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "resource": self.resource,
            "scopes_supported": self.protection.scopes_supported,
            "bearer_methods_supported": ["header"],
        });
        if let Some(issuer) = &self.issuer {
            doc["authorization_servers"] = serde_json::json!([issuer]);
        }
        doc
    }

    /// Who the `Authorization` header values of a request speak for, and
    /// whether they have the scope every request needs.
    pub(crate) fn authenticate<'a>(
        &self,
        mut headers: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(Principal, [u8; 32]), Denial> {
        let Some(header) = headers.next() else {
            return Err(Denial::Missing);
        };
        if headers.next().is_some() {
            return Err(Denial::Invalid {
                code: "invalid_request",
                description: "more than one Authorization header",
            });
        }
        let token = bearer_token(header)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let principal = self.verify(token, &digest)?;
        if !principal.has_scope(self.protection.scope) {
            return Err(Denial::Scope(self.protection.scope.to_owned()));
        }
        Ok((principal, digest))
    }

    fn verify(&self, token: &str, digest: &[u8; 32]) -> Result<Principal, Denial> {
        // Every static digest is compared, so timing says nothing of which
        // (or whether one) matched.
        let matched = self
            .static_digests
            .iter()
            .fold(subtle::Choice::from(0), |any, known| {
                any | known.ct_eq(digest)
            });
        if bool::from(matched) {
            return Ok(Principal::static_token());
        }
        let invalid = |description| Denial::Invalid {
            code: "invalid_token",
            description,
        };
        if self.keys.is_empty() {
            return Err(invalid("the token is not valid for this server"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("the token is not valid for this server"))?;
        let candidates = self.keys.iter().filter(|(kid, algorithm, _, _)| {
            *algorithm == header.alg && (header.kid.is_none() || *kid == header.kid)
        });
        let mut last = invalid("no key of this server's issuer signed the token");
        for (_, _, key, validation) in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) => return self.check_claims(data.claims),
                Err(error) => last = invalid(describe_jwt_error(error.kind())),
            }
        }
        Err(last)
    }

    fn check_claims(&self, claims: Claims) -> Result<Principal, Denial> {
        let invalid = |description| Denial::Invalid {
            code: "invalid_token",
            description,
        };
        let now = (self.clock)();
        if claims.exp.saturating_add(CLOCK_LEEWAY_S) < now {
            return Err(invalid("the token has expired"));
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(CLOCK_LEEWAY_S))
        {
            return Err(invalid("the token is not valid yet"));
        }
        let scopes = claims
            .scope
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>();
        Ok(Principal::jwt(claims.sub, scopes))
    }

    /// A slot for one more request of the token with this digest, or
    /// `None` when it has [`AuthSettings::token_requests_max`] in flight.
    pub(crate) fn admit(&self, digest: [u8; 32]) -> Option<OwnedSemaphorePermit> {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        if in_flight.len() >= TRACKED_TOKENS_MAX && !in_flight.contains_key(&digest) {
            let max = self.token_requests_max;
            in_flight.retain(|_, slots| slots.available_permits() < max);
            if in_flight.len() >= TRACKED_TOKENS_MAX {
                return None;
            }
        }
        let slots = in_flight
            .entry(digest)
            .or_insert_with(|| Arc::new(Semaphore::new(self.token_requests_max)))
            .clone();
        slots.try_acquire_owned().ok()
    }

    /// May the token with `digest` use the session `id`? Sessions are bound
    /// to the token that opened them; one idle for [`SESSION_IDLE`], or
    /// evicted to make room, is gone.
    pub(crate) fn use_session(&self, id: &str, digest: &[u8; 32]) -> Result<(), Denial> {
        self.book()
            .use_session(id, digest, tokio::time::Instant::now())
    }

    /// A place for one more session of the token with `digest`, held until
    /// the [`Opening`] is told the session's id or dropped. At the token's
    /// cap its least recently used session is evicted to make room: the
    /// caller must close [`Opening::evicted`] in the session manager.
    pub(crate) fn open_session(self: &Arc<Self>, digest: [u8; 32]) -> Result<Opening, Denial> {
        let evicted = self.book().reserve(&digest, tokio::time::Instant::now())?;
        Ok(Opening {
            auth: self.clone(),
            digest,
            evicted,
            done: false,
        })
    }

    /// The token with `digest` closed its session `id` (DELETE).
    pub(crate) fn session_closed(&self, id: &str, digest: &[u8; 32]) {
        self.book().closed(digest, id);
    }

    fn book(&self) -> std::sync::MutexGuard<'_, SessionBook> {
        self.sessions.lock().expect("sessions lock")
    }

    /// The `WWW-Authenticate` value for a denial (RFC 6750 §3, with the
    /// RFC 9728 `resource_metadata` parameter the MCP spec asks for).
    pub(crate) fn challenge(&self, denial: &Denial) -> String {
        let metadata = &self.metadata_url;
        let scope = self.protection.scope;
        match denial {
            Denial::Missing
            | Denial::Busy
            | Denial::TooManySessions { .. }
            | Denial::ForeignSession => {
                format!(r#"Bearer resource_metadata="{metadata}", scope="{scope}""#)
            }
            Denial::Invalid { code, description } => format!(
                r#"Bearer error="{code}", error_description="{description}", resource_metadata="{metadata}""#
            ),
            Denial::Scope(needed) => format!(
                r#"Bearer error="insufficient_scope", scope="{needed}", resource_metadata="{metadata}", error_description="the token lacks the scope {needed}""#
            ),
        }
    }
}

/// A place held for one session being opened (an `initialize` in flight).
/// Dropped without [`Opening::opened`], it frees the place.
#[derive(Debug)]
pub(crate) struct Opening {
    auth: Arc<Authenticator>,
    digest: [u8; 32],
    evicted: Option<String>,
    done: bool,
}

impl Opening {
    /// The session evicted to make room, which the caller must close.
    pub(crate) fn evicted(&self) -> Option<&str> {
        self.evicted.as_deref()
    }

    /// The server opened session `id` in this place.
    pub(crate) fn opened(mut self, id: &str) {
        self.done = true;
        self.auth
            .book()
            .opened(&self.digest, id, tokio::time::Instant::now());
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        if !self.done {
            self.auth.book().abandoned(&self.digest);
        }
    }
}

/// The claims this server reads from a JWT.
#[derive(Debug, serde::Deserialize)]
struct Claims {
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

fn describe_jwt_error(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind::*;
    match kind {
        InvalidSignature => "the token's signature does not verify",
        InvalidIssuer => "the token was issued by another authorization server",
        InvalidAudience => "the token was issued for another resource",
        MissingRequiredClaim(_) => "the token lacks a required claim (iss, aud, exp)",
        InvalidAlgorithm => "the token's algorithm is not accepted",
        _ => "the token is not valid for this server",
    }
}

/// The token of an `Authorization: Bearer <token>` header value (RFC 6750
/// §2.1: the scheme is case-insensitive; the token is b64token characters).
pub(crate) fn bearer_token(header: &[u8]) -> Result<&str, Denial> {
    let malformed = Denial::Invalid {
        code: "invalid_request",
        description: "the Authorization header must be: Bearer <token>",
    };
    if header.len() > AUTHORIZATION_BYTES_MAX {
        return Err(Denial::Invalid {
            code: "invalid_request",
            description: "the Authorization header is too long",
        });
    }
    let text = std::str::from_utf8(header).map_err(|_| malformed.clone())?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(malformed.clone())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Denial::Invalid {
            code: "invalid_request",
            description: "only the Bearer scheme is accepted",
        });
    }
    let token = token.trim_start_matches(' ');
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.is_empty() || !token.chars().all(b64token) {
        return Err(malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protection() -> Protection {
        Protection {
            scope: "users:read",
            scopes_supported: &["users:read"],
            guard: None,
        }
    }

    fn with_static(token: &str) -> Authenticator {
        Authenticator::new(AuthSettings {
            resource: "http://127.0.0.1:8082/mcp".into(),
            protection: protection(),
            static_tokens: vec![Secret::new(token.into())],
            jwt: None,
            token_requests_max: 2,
            clock: Arc::new(|| 1_700_000_000),
        })
        .unwrap()
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        assert_eq!(bearer_token(b"Bearer abc.def-_~+/="), Ok("abc.def-_~+/="));
        assert_eq!(bearer_token(b"bearer  abc"), Ok("abc"));
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Basic dXNlcjpwYXNz",
            b"Bearer a b",
            b"Bearer \xff\xfe",
            b"Bearer a\"b",
            b"",
        ] {
            assert!(
                matches!(bearer_token(bad), Err(Denial::Invalid { .. })),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("Bearer {}", "a".repeat(AUTHORIZATION_BYTES_MAX));
        assert!(bearer_token(long.as_bytes()).is_err());
    }

    #[test]
    fn static_tokens_match_exactly_and_grant_every_scope() {
        let auth = with_static("0123456789abcdef0123");
        let one = |h: &'static str| auth.authenticate(std::iter::once(h.as_bytes()));
        let (principal, _) = one("Bearer 0123456789abcdef0123").unwrap();
        assert_eq!(principal, Principal::static_token());
        assert!(principal.has_scope("transactions:read:any"));
        assert!(matches!(
            one("Bearer 0123456789abcdef012"),
            Err(Denial::Invalid { .. })
        ));
        assert!(matches!(
            one("Bearer 0123456789abcdef01234"),
            Err(Denial::Invalid { .. })
        ));
        assert_eq!(
            auth.authenticate(std::iter::empty()).unwrap_err(),
            Denial::Missing
        );
        let two = [&b"Bearer x"[..], b"Bearer y"];
        assert!(matches!(
            auth.authenticate(two.into_iter()),
            Err(Denial::Invalid {
                code: "invalid_request",
                ..
            })
        ));
    }

    #[test]
    fn each_token_has_its_own_bounded_slots() {
        let auth = with_static("0123456789abcdef0123");
        let a = [1u8; 32];
        let b = [2u8; 32];
        let first = auth.admit(a).unwrap();
        let _second = auth.admit(a).unwrap();
        assert!(
            auth.admit(a).is_none(),
            "a third request of one token waits"
        );
        assert!(auth.admit(b).is_some(), "another token is not starved");
        drop(first);
        assert!(auth.admit(a).is_some(), "a finished request frees its slot");
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_at_its_session_cap_evicts_its_own_oldest_session() {
        let auth = Arc::new(with_static("0123456789abcdef0123"));
        let (mine, theirs) = ([1u8; 32], [2u8; 32]);
        assert_eq!(auth.use_session("s0", &mine), Err(Denial::ForeignSession));
        for n in 0..SESSIONS_PER_TOKEN_MAX {
            let opening = auth.open_session(mine).unwrap();
            assert_eq!(opening.evicted(), None);
            opening.opened(&format!("s{n}"));
        }
        assert_eq!(auth.use_session("s0", &mine), Ok(()));
        assert_eq!(
            auth.use_session("s0", &theirs),
            Err(Denial::ForeignSession),
            "a session is bound to the token that opened it"
        );
        let opening = auth.open_session(mine).unwrap();
        assert_eq!(opening.evicted(), Some("s1"), "s0 was used since");
        assert_eq!(auth.use_session("s1", &mine), Err(Denial::ForeignSession));
        // The initialize failed: its place is free again, so the next one
        // evicts nobody.
        drop(opening);
        let opening = auth.open_session(mine).unwrap();
        assert_eq!(opening.evicted(), None);
        opening.opened("new");
        auth.session_closed("new", &mine);
        assert_eq!(auth.use_session("new", &mine), Err(Denial::ForeignSession));
        assert_eq!(
            auth.open_session(mine).unwrap().evicted(),
            None,
            "a closed session frees its place"
        );
        assert_eq!(auth.open_session(theirs).unwrap().evicted(), None);
    }

    #[test]
    fn every_429_says_when_to_retry_and_nothing_else_does() {
        for denial in [
            Denial::Missing,
            Denial::Invalid {
                code: "invalid_token",
                description: "x",
            },
            Denial::Scope("s".into()),
            Denial::Busy,
            Denial::TooManySessions { retry_after_s: 7 },
            Denial::ForeignSession,
        ] {
            let too_many = matches!(denial, Denial::Busy | Denial::TooManySessions { .. });
            let retry = denial.retry_after_s();
            assert_eq!(retry.is_some(), too_many, "{denial:?}");
            assert!(retry.is_none_or(|s| s >= 1), "{denial:?}");
        }
    }

    #[test]
    fn static_token_files_name_the_bad_line() {
        let tokens = parse_static_tokens("t", "# comment\n\n0123456789abcdef\n").unwrap();
        assert_eq!(tokens.len(), 1);
        let error = parse_static_tokens("t", "0123456789abcdef\nshort\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "t:2: a token must be at least 16 characters"
        );
        assert!(parse_static_tokens("t", "# only a comment\n").is_err());
    }

    #[test]
    fn metadata_url_inserts_the_well_known_path() {
        assert_eq!(
            metadata_url("http://127.0.0.1:8082/mcp"),
            "http://127.0.0.1:8082/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://api.example.com"),
            "https://api.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = Secret::new("super-secret-token-value".into());
        assert!(!format!("{secret:?}").contains("super-secret"));
    }

    #[test]
    fn jwks_files_accept_only_rsa_and_p256_keys() {
        let hmac = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert!(
            parse_jwks("k.json", hmac)
                .unwrap_err()
                .to_string()
                .contains("only RSA (RS256) and P-256 (ES256)")
        );
        assert!(parse_jwks("k.json", r#"{"keys":[]}"#).is_err());
        assert!(
            parse_jwks("k.json", "{")
                .unwrap_err()
                .to_string()
                .starts_with("k.json: not a usable JWKS file")
        );
    }

    fn with_jwks() -> Authenticator {
        use jsonwebtoken::{EncodingKey, jwk::Jwk};
        let pem = include_bytes!("../../test-support/keys/issuer-es256.pem");
        let key = EncodingKey::from_ec_pem(pem).unwrap();
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        Authenticator::new(AuthSettings {
            resource: "http://127.0.0.1:8083/mcp".into(),
            protection: protection(),
            static_tokens: vec![Secret::new("0123456789abcdef0123".into())],
            jwt: Some(JwtSettings {
                keys: JwkSet { keys: vec![jwk] },
                issuer: "https://auth.example.test".into(),
            }),
            token_requests_max: 2,
            clock: Arc::new(|| 1_900_000_000),
        })
        .unwrap()
    }

    proptest::proptest! {
        /// Any bytes at all in the header: a denial, never a panic.
        #[test]
        fn any_authorization_header_is_refused_without_panicking(
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)
        ) {
            let auth = with_jwks();
            let mut header = b"Bearer ".to_vec();
            header.extend_from_slice(&raw);
            for value in [&raw[..], &header[..]] {
                let _ = bearer_token(value);
                proptest::prop_assert!(auth.authenticate(std::iter::once(value)).is_err());
            }
        }

        /// JWT-shaped garbage (three base64url parts, some JSON inside):
        /// refused as invalid_token, never a panic.
        #[test]
        fn jwt_shaped_garbage_is_an_invalid_token(
            parts in proptest::collection::vec("[A-Za-z0-9_-]{0,64}", 3),
            json in "\\{\"(alg|kid|typ)\":\"[A-Z0-9]{0,6}\"\\}",
        ) {
            use base64::Engine as _;
            let head = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
            let auth = with_jwks();
            for token in [parts.join("."), format!("{head}.{}.{}", parts[1], parts[2])] {
                let header = format!("Bearer {token}");
                let denial = auth.authenticate(std::iter::once(header.as_bytes())).unwrap_err();
                proptest::prop_assert!(matches!(denial, Denial::Invalid { .. }), "{denial:?}");
            }
        }
    }
}
