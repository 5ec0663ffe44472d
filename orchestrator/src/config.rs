//! The orchestrator's TOML config: which servers to reach, how, and the
//! resilience policy. Parsed into raw types, then validated into [`Config`];
//! every error names the file, the line and the field.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;
use toml::Spanned;

use crate::{
    connector::HttpRevision,
    llm::{LlmMode, LlmSettings, Planner},
    policy::{Policy, PolicyError, PolicySettings},
};

/// Longest server name accepted.
const SERVER_NAME_BYTES_MAX: usize = 64;
/// Most servers one config may list.
const SERVERS_MAX: usize = 64;

/// A validated config: read one with [`Config::from_file`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    servers: Vec<ServerConfig>,
    policy: Policy,
    planner: Planner,
    llm: Option<LlmSettings>,
}

/// One MCP server to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Unique; tools are namespaced `name/tool`.
    pub name: String,
    pub transport: TransportConfig,
}

/// How to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// Launch `program args…` and speak MCP on its stdin/stdout.
    Stdio { program: PathBuf, args: Vec<String> },
    /// Newline-delimited JSON-RPC over TCP to `host:port`.
    Tcp { addr: String },
    /// MCP streamable HTTP at this URL (e.g. http://127.0.0.1:8082/mcp),
    /// with a bearer token from `credential`, if any, negotiating `revision`.
    Http {
        url: String,
        credential: Option<Credential>,
        revision: HttpRevision,
    },
}

/// Where a bearer token comes from. Config files name a place, never the
/// token itself; the token is read afresh at every connect (so a server
/// restarted with a new generated token is picked up on reconnect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The value of this environment variable.
    Env(String),
    /// The contents of this file (surrounding white space trimmed).
    File(PathBuf),
    /// A token held in memory: the binary's embedded mode only.
    Value(Token),
}

/// A bearer token. Its `Debug` shows no part of it, it has no `Display`,
/// and nothing in this crate logs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token held in memory (embedded mode, tests).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token, to send in a header. Never log it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// Why a credential could not be read. It names the place, never the value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("environment variable {0} is not set (or not UTF-8)")]
    EnvUnset(String),
    #[error("cannot read the token file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token from {0} is empty or not one line of printable ASCII")]
    Malformed(String),
}

impl Credential {
    /// Reads the token now.
    pub(crate) fn resolve(&self) -> Result<Token, CredentialError> {
        let (raw, place) = match self {
            Credential::Value(token) => return Ok(token.clone()),
            Credential::Env(name) => (
                std::env::var(name).map_err(|_| CredentialError::EnvUnset(name.clone()))?,
                format!("environment variable {name}"),
            ),
            Credential::File(path) => (
                std::fs::read_to_string(path).map_err(|source| CredentialError::File {
                    path: path.clone(),
                    source,
                })?,
                path.display().to_string(),
            ),
        };
        let token = raw.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CredentialError::Malformed(place));
        }
        Ok(Token::new(token))
    }
}

impl std::fmt::Display for TransportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportConfig::Stdio { program, args } => {
                write!(f, "stdio: {}", program.display())?;
                args.iter().try_for_each(|a| write!(f, " {a}"))
            }
            TransportConfig::Tcp { addr } => write!(f, "tcp://{addr}"),
            TransportConfig::Http { url, .. } => f.write_str(url),
        }
    }
}

/// A config file that cannot be used. Nothing from it was applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Config {
    /// The servers, in the order the file lists them.
    pub fn servers(&self) -> &[ServerConfig] {
        &self.servers
    }

    /// The `[policy]`, or [`Policy::DEFAULT`] without one.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The planner `[planner] kind` names: the rules (the default) or the
    /// LLM planner with the table's settings.
    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    /// The `[planner]` table's model settings, whichever kind it names, so
    /// that `ask --planner llm` can use them.
    pub fn llm(&self) -> Option<&LlmSettings> {
        self.llm.as_ref()
    }

    /// Reads and validates a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(path, &text)
    }

    /// Validates config text; `path` is only used in error messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let invalid = |offset: usize, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line: line_of(text, offset),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            invalid(offset, error.message().to_owned())
        })?;
        if raw.servers.is_empty() {
            return Err(invalid(0, "no [[servers]] listed".into()));
        }
        if raw.servers.len() > SERVERS_MAX {
            return Err(invalid(0, format!("more than {SERVERS_MAX} servers")));
        }
        let mut servers: Vec<ServerConfig> = Vec::with_capacity(raw.servers.len());
        for (index, server) in raw.servers.into_iter().enumerate() {
            let name_at = server.name.span().start;
            let name = server.name.into_inner();
            let field = |f: &str| format!("servers[{index}].{f}");
            if name.is_empty()
                || name.len() > SERVER_NAME_BYTES_MAX
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    name_at,
                    format!(
                        "{}: {name:?} must be 1 to {SERVER_NAME_BYTES_MAX} characters of a-z, A-Z, 0-9, '-', '_'",
                        field("name")
                    ),
                ));
            }
            if servers.iter().any(|s| s.name == name) {
                return Err(invalid(
                    name_at,
                    format!("{}: {name:?} is listed twice", field("name")),
                ));
            }
            if let (Some(revision), None) = (&server.revision, &server.http) {
                return Err(invalid(
                    revision.span().start,
                    format!(
                        "{}: a protocol revision is negotiated over HTTP only",
                        field("revision")
                    ),
                ));
            }
            if server.token.is_some() && server.http.is_none() {
                let at = server.token.as_ref().map_or(name_at, |t| t.span().start);
                return Err(invalid(
                    at,
                    format!(
                        "{}: a token is sent over HTTP only (stdio and TCP trust the process or loopback boundary)",
                        field("token")
                    ),
                ));
            }
            let transport = match (server.stdio, server.tcp, server.http) {
                (Some(command), None, None) => {
                    let at = command.span().start;
                    let mut command = command.into_inner().into_iter();
                    let program = command.next().filter(|p| !p.is_empty()).ok_or_else(|| {
                        invalid(at, format!("{}: the command is empty", field("stdio")))
                    })?;
                    TransportConfig::Stdio {
                        program: resolve_program(path, &program),
                        args: command.collect(),
                    }
                }
                (None, Some(addr), None) => {
                    let at = addr.span().start;
                    let addr = addr.into_inner();
                    let valid = addr.rsplit_once(':').is_some_and(|(host, port)| {
                        !host.is_empty() && port.parse::<u16>().is_ok()
                    });
                    if !valid {
                        return Err(invalid(
                            at,
                            format!("{}: {addr:?} is not host:port", field("tcp")),
                        ));
                    }
                    TransportConfig::Tcp { addr }
                }
                (None, None, Some(url)) => {
                    http_transport(path, url, server.token, server.revision, &field, &invalid)?
                }
                _ => {
                    return Err(invalid(
                        name_at,
                        format!(
                            "server {name:?}: give exactly one of stdio = [..], tcp = \"host:port\", http = \"URL\""
                        ),
                    ));
                }
            };
            servers.push(ServerConfig { name, transport });
        }
        let policy = match raw.policy {
            None => Policy::DEFAULT,
            Some(raw) => {
                let at = raw.span().start;
                raw.into_inner()
                    .into_policy()
                    .map_err(|error| invalid(at, format!("[policy]: {error}")))?
            }
        };
        let (planner, llm) = planner_of(path, raw.planner, &invalid)?;
        Ok(Config {
            servers,
            policy,
            planner,
            llm,
        })
    }
}

/// The `[planner]` table's planner and model settings (the rules, and
/// none, without one).
fn planner_of(
    path: &Path,
    raw: Option<Spanned<PlannerToml>>,
    invalid: &dyn Fn(usize, String) -> ConfigError,
) -> Result<(Planner, Option<LlmSettings>), ConfigError> {
    let Some(raw) = raw else {
        return Ok((Planner::Rules, None));
    };
    let at = raw.span().start;
    raw.into_inner()
        .into_planner(path)
        .map_err(|(offset, message)| invalid(offset.unwrap_or(at), format!("[planner]: {message}")))
}

/// `token = { env = "VAR" }` or `token = { file = "path" }` (relative to
/// the config file's directory). An inline token is refused: config files
/// get copied, committed and pasted into bug reports.
fn credential(
    config_path: &Path,
    raw: Spanned<toml::Value>,
    field: &str,
) -> Result<Credential, (usize, String)> {
    let at = raw.span().start;
    let usage = format!("write {field} = {{ env = \"VAR\" }} or {field} = {{ file = \"path\" }}");
    let table = match raw.into_inner() {
        toml::Value::Table(table) => table,
        toml::Value::String(_) => {
            return Err((
                at,
                format!("a token is never written in the config itself; {usage}"),
            ));
        }
        _ => return Err((at, usage)),
    };
    let mut entries = table.into_iter();
    match (entries.next(), entries.next()) {
        (Some((key, toml::Value::String(value))), None) if key == "env" && !value.is_empty() => {
            Ok(Credential::Env(value))
        }
        (Some((key, toml::Value::String(value))), None) if key == "file" && !value.is_empty() => {
            let file = Path::new(&value);
            let file = match config_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(dir) if file.is_relative() => dir.join(file),
                _ => file.to_owned(),
            };
            Ok(Credential::File(file))
        }
        _ => Err((at, usage)),
    }
}

/// A relative program path with a `/` in it is relative to the config
/// file's directory; a bare name is looked up on PATH by the OS.
fn resolve_program(config_path: &Path, program: &str) -> PathBuf {
    let program_path = Path::new(program);
    if program_path.is_relative()
        && program.contains('/')
        && let Some(dir) = config_path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        return dir.join(program_path);
    }
    program_path.to_owned()
}

/// The 1-based line of byte `offset` in `text`, for error messages.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    servers: Vec<RawServer>,
    policy: Option<Spanned<PolicyToml>>,
    planner: Option<Spanned<PlannerToml>>,
}

/// A `[planner]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlannerToml {
    kind: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    api_key: Option<Spanned<toml::Value>>,
    mode: Option<Spanned<String>>,
    steps_max: Option<Spanned<u32>>,
    timeout_ms: Option<Spanned<u64>>,
}

/// A problem in the `[planner]` table, at a byte offset when one is known.
type PlannerProblem = (Option<usize>, String);

impl PlannerToml {
    /// The planner the table names, and its model settings if it gives any.
    fn into_planner(self, path: &Path) -> Result<(Planner, Option<LlmSettings>), PlannerProblem> {
        let kind = match &self.kind {
            None => "rules",
            Some(kind) => kind.get_ref().as_str(),
        };
        if !matches!(kind, "rules" | "llm") {
            let at = self.kind.as_ref().map(|k| k.span().start);
            return Err((at, format!("kind: {kind:?} is not \"rules\" or \"llm\"")));
        }
        let wants_llm = kind == "llm";
        let llm = self.settings(path)?;
        match (wants_llm, llm) {
            (true, None) => Err((None, "kind = \"llm\" needs base_url and model".into())),
            (true, Some(settings)) => Ok((Planner::Llm(settings.clone()), Some(settings))),
            (false, llm) => Ok((Planner::Rules, llm)),
        }
    }

    /// The model settings, when the table gives `base_url` and `model`.
    fn settings(self, path: &Path) -> Result<Option<LlmSettings>, PlannerProblem> {
        let (base_url, model) = match (self.base_url, self.model) {
            (None, None) => return Ok(None),
            (Some(url), Some(model)) => (url, model),
            (Some(at), None) => {
                return Err((Some(at.span().start), "base_url needs a model".into()));
            }
            (None, Some(at)) => {
                return Err((Some(at.span().start), "model needs a base_url".into()));
            }
        };
        let url_at = Some(base_url.span().start);
        let base_url = base_url.into_inner();
        check_url(&base_url).map_err(|message| (url_at, format!("base_url: {message}")))?;
        let mut settings = LlmSettings::new(base_url, model.into_inner());
        if let Some(key) = self.api_key {
            let credential = credential(path, key, "api_key")
                .map_err(|(at, m)| (Some(at), format!("api_key: {m}")))?;
            settings.api_key = Some(credential);
        }
        if let Some(mode) = self.mode {
            settings.mode = LlmMode::named(mode.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = LlmMode::ALL.iter().map(|(n, _)| *n).collect();
                (
                    Some(mode.span().start),
                    format!(
                        "mode: {:?} is not one of {}",
                        mode.get_ref(),
                        known.join(", ")
                    ),
                )
            })?;
        }
        if let Some(steps) = self.steps_max {
            let n = *steps.get_ref();
            if !(1..=LlmSettings::STEPS_LIMIT).contains(&n) {
                return Err((
                    Some(steps.span().start),
                    format!("steps_max: {n} is not 1 to {}", LlmSettings::STEPS_LIMIT),
                ));
            }
            settings.steps_max = n;
        }
        if let Some(timeout) = self.timeout_ms {
            let ms = *timeout.get_ref();
            if !(1..=600_000).contains(&ms) {
                return Err((
                    Some(timeout.span().start),
                    format!("timeout_ms: {ms} is not 1 to 600000"),
                ));
            }
            settings.request_timeout = Duration::from_millis(ms);
        }
        Ok(Some(settings))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: Spanned<String>,
    stdio: Option<Spanned<Vec<String>>>,
    tcp: Option<Spanned<String>>,
    http: Option<Spanned<String>>,
    token: Option<Spanned<toml::Value>>,
    revision: Option<Spanned<String>>,
}

/// What a build without the `https` feature says to an `https://` URL.
const NO_TLS: &str = "this build has no TLS; rebuild with `--features https` \
    (cargo run --release -p orchestrator --features https -- …)";

/// Checks that `url` is `http://` or `https://`, and that this build can
/// reach it: an `https://` URL needs the `https` feature (TLS), and the
/// message says how to rebuild.
pub fn check_url(url: &str) -> Result<(), String> {
    let https = url.starts_with("https://");
    if !(https || url.starts_with("http://")) {
        return Err(format!("{url:?} must start with http:// or https://"));
    }
    if https && !cfg!(feature = "https") {
        return Err(format!("{url}: {NO_TLS}"));
    }
    Ok(())
}

/// An `http = "URL"` server: its URL, token reference and revision, checked.
fn http_transport(
    path: &Path,
    url: Spanned<String>,
    token: Option<Spanned<toml::Value>>,
    revision: Option<Spanned<String>>,
    field: &dyn Fn(&str) -> String,
    invalid: &dyn Fn(usize, String) -> ConfigError,
) -> Result<TransportConfig, ConfigError> {
    let at = url.span().start;
    let url = url.into_inner();
    check_url(&url).map_err(|message| invalid(at, format!("{}: {message}", field("http"))))?;
    let credential = match token {
        None => None,
        Some(raw) => Some(
            credential(path, raw, "token")
                .map_err(|(at, message)| invalid(at, format!("{}: {message}", field("token"))))?,
        ),
    };
    let revision = match revision {
        None => HttpRevision::default(),
        Some(name) => HttpRevision::named(name.get_ref()).ok_or_else(|| {
            let known: Vec<&str> = HttpRevision::ALL.iter().map(|(n, _)| *n).collect();
            invalid(
                name.span().start,
                format!(
                    "{}: {:?} is not one of {}",
                    field("revision"),
                    name.get_ref(),
                    known.join(", ")
                ),
            )
        })?,
    };
    Ok(TransportConfig::Http {
        url,
        credential,
        revision,
    })
}

/// A `[policy]` table as written in TOML (the orchestrator's config, or a
/// harness scenario). Every field optional: what is left out keeps
/// [`PolicySettings::DEFAULT`]'s value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyToml {
    connect_timeout_ms: Option<u64>,
    call_timeout_ms: Option<u64>,
    deadline_ms: Option<u64>,
    attempts_max: Option<u32>,
    backoff_base_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    retry_budget_ratio: Option<f64>,
    retry_budget_per_s: Option<f64>,
    retry_budget_burst: Option<u32>,
    hedge_after_ms: Option<u64>,
    breaker_failures: Option<u32>,
    breaker_open_ms: Option<u64>,
}

impl PolicyToml {
    /// The validated policy these settings describe.
    pub fn into_policy(self) -> Result<Policy, PolicyError> {
        let d = PolicySettings::DEFAULT;
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        Policy::new(PolicySettings {
            connect_timeout: ms(self.connect_timeout_ms, d.connect_timeout),
            call_timeout: ms(self.call_timeout_ms, d.call_timeout),
            deadline: ms(self.deadline_ms, d.deadline),
            attempts_max: self.attempts_max.unwrap_or(d.attempts_max),
            backoff_base: ms(self.backoff_base_ms, d.backoff_base),
            backoff_max: ms(self.backoff_max_ms, d.backoff_max),
            retry_budget_ratio: self.retry_budget_ratio.unwrap_or(d.retry_budget_ratio),
            retry_budget_per_s: self.retry_budget_per_s.unwrap_or(d.retry_budget_per_s),
            retry_budget_burst: self.retry_budget_burst.unwrap_or(d.retry_budget_burst),
            hedge_after: self
                .hedge_after_ms
                .map(Duration::from_millis)
                .or(d.hedge_after),
            breaker_failures: self.breaker_failures.unwrap_or(d.breaker_failures),
            breaker_open: ms(self.breaker_open_ms, d.breaker_open),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::from_toml(Path::new("dir/orchestrator.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_all_three_transports_and_policy_overrides() {
        let config = parse(
            r#"
            [[servers]]
            name = "user"
            stdio = ["./bin/user-server", "--data", "d.json"]
            [[servers]]
            name = "payment"
            http = "http://127.0.0.1:8083/mcp"
            [[servers]]
            name = "other"
            tcp = "localhost:9000"
            [policy]
            attempts_max = 5
            "#,
        )
        .unwrap();
        assert_eq!(
            config.servers[0].transport,
            TransportConfig::Stdio {
                program: PathBuf::from("dir/./bin/user-server"),
                args: vec!["--data".into(), "d.json".into()]
            }
        );
        assert_eq!(
            config.servers[2].transport.to_string(),
            "tcp://localhost:9000"
        );
        assert_eq!(config.policy.settings().attempts_max, 5);
        assert_eq!(
            config.policy.settings().call_timeout,
            PolicySettings::DEFAULT.call_timeout
        );
    }

    #[test]
    fn a_planner_table_names_the_model_and_is_checked() {
        let servers = "[[servers]]\nname = \"a\"\ntcp = \"h:1\"\n";
        let config = parse(&format!(
            "{servers}[planner]\nkind = \"llm\"\nbase_url = \"http://127.0.0.1:8091/v1\"\n\
             model = \"m\"\napi_key = {{ env = \"KEY\" }}\nmode = \"tools\"\nsteps_max = 4\n"
        ))
        .unwrap();
        let Planner::Llm(settings) = config.planner() else {
            panic!("kind = llm");
        };
        assert_eq!(settings.mode, LlmMode::Tools);
        assert_eq!(settings.steps_max, 4);
        assert_eq!(settings.api_key, Some(Credential::Env("KEY".into())));
        let rules = parse(&format!(
            "{servers}[planner]\nbase_url = \"http://m/v1\"\nmodel = \"m\"\n"
        ))
        .unwrap();
        assert_eq!(rules.planner(), &Planner::Rules);
        assert!(rules.llm().is_some(), "kept for ask --planner llm");
        for (table, expected) in [
            (
                "kind = \"llm\"",
                "orchestrator.toml:4: [planner]: kind = \"llm\" needs base_url and model",
            ),
            (
                "kind = \"gpt\"",
                "orchestrator.toml:5: [planner]: kind: \"gpt\" is not \"rules\" or \"llm\"",
            ),
            (
                "base_url = \"ftp://x\"\nmodel = \"m\"",
                "orchestrator.toml:5: [planner]: base_url: \"ftp://x\" must start with http:// or https://",
            ),
            (
                "base_url = \"http://x\"\nmodel = \"m\"\napi_key = \"sk-123\"",
                "orchestrator.toml:7: [planner]: api_key: a token is never written in the config itself; write api_key = { env = \"VAR\" } or api_key = { file = \"path\" }",
            ),
            (
                "base_url = \"http://x\"\nmodel = \"m\"\nsteps_max = 0",
                "orchestrator.toml:7: [planner]: steps_max: 0 is not 1 to 32",
            ),
            (
                "temperature = 1",
                "orchestrator.toml:5: unknown field `temperature`, expected one of `kind`, `base_url`, `model`, `api_key`, `mode`, `steps_max`, `timeout_ms`",
            ),
        ] {
            let error = parse(&format!("{servers}[planner]\n{table}\n")).unwrap_err();
            assert!(error.ends_with(expected), "{error}\nwanted: {expected}");
        }
    }

    #[test]
    fn an_http_server_may_name_its_revision_and_nothing_else_may() {
        let config = parse(
            "[[servers]]\nname = \"a\"\nhttp = \"http://h/mcp\"\nrevision = \"2026-07-28\"\n\
             [[servers]]\nname = \"b\"\nhttp = \"http://h/mcp\"\n",
        )
        .unwrap();
        let revisions: Vec<_> = config
            .servers
            .iter()
            .map(|s| match &s.transport {
                TransportConfig::Http { revision, .. } => Some(*revision),
                _ => None,
            })
            .collect();
        assert_eq!(
            revisions,
            [
                Some(HttpRevision::Stateless2026_07_28),
                Some(HttpRevision::Sessions2025_11_25)
            ]
        );
        let unknown = parse(
            "[[servers]]\nname = \"a\"\nhttp = \"http://h/mcp\"\nrevision = \"2024-11-05\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(unknown.contains(":4: servers[0].revision"), "{unknown}");
        assert!(unknown.contains("2025-11-25, 2026-07-28"), "{unknown}");
        let over_tcp =
            parse("[[servers]]\nname = \"a\"\ntcp = \"h:1\"\nrevision = \"2026-07-28\"\n")
                .unwrap_err()
                .to_string();
        assert!(over_tcp.contains("over HTTP only"), "{over_tcp}");
    }

    #[test]
    fn tokens_are_named_by_reference_never_inline() {
        let config = parse(
            "[[servers]]\nname = \"a\"\nhttp = \"http://h/mcp\"\ntoken = { env = \"A_TOKEN\" }\n\
             [[servers]]\nname = \"b\"\nhttp = \"http://h/mcp\"\ntoken = { file = \"b.token\" }\n",
        )
        .unwrap();
        let credentials: Vec<_> = config
            .servers
            .iter()
            .map(|s| match &s.transport {
                TransportConfig::Http { credential, .. } => credential.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(
            credentials,
            [
                Some(Credential::Env("A_TOKEN".into())),
                Some(Credential::File(PathBuf::from("dir/b.token")))
            ]
        );
        let inline =
            parse("[[servers]]\nname = \"a\"\nhttp = \"http://h/mcp\"\ntoken = \"s3cr3t-value\"\n")
                .unwrap_err();
        assert_eq!(
            inline,
            "dir/orchestrator.toml:4: servers[0].token: a token is never written in the config itself; write token = { env = \"VAR\" } or token = { file = \"path\" }"
        );
        assert!(!inline.contains("s3cr3t"));
        let stdio = parse("[[servers]]\nname = \"a\"\ntcp = \"h:1\"\ntoken = { env = \"X\" }\n")
            .unwrap_err();
        assert!(
            stdio.starts_with(
                "dir/orchestrator.toml:4: servers[0].token: a token is sent over HTTP only"
            ),
            "{stdio}"
        );
        let both = parse(
            "[[servers]]\nname = \"a\"\nhttp = \"http://h/mcp\"\ntoken = { env = \"X\", file = \"f\" }\n",
        )
        .unwrap_err();
        assert!(
            both.ends_with("write token = { env = \"VAR\" } or token = { file = \"path\" }"),
            "{both}"
        );
    }

    #[test]
    fn credentials_resolve_without_showing_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "  abcdefghijklmnop\n").unwrap();
        let token = Credential::File(path.clone()).resolve().unwrap();
        assert_eq!(token.expose(), "abcdefghijklmnop");
        assert_eq!(format!("{token:?}"), "Token(redacted)");
        std::fs::write(&path, "two words\n").unwrap();
        let error = Credential::File(path).resolve().unwrap_err().to_string();
        assert!(
            error.ends_with("is empty or not one line of printable ASCII"),
            "{error}"
        );
        assert!(!error.contains("two words"));
        let unset = Credential::Env("ORCHESTRATOR_TEST_UNSET_VARIABLE".into()).resolve();
        assert_eq!(
            unset.unwrap_err().to_string(),
            "environment variable ORCHESTRATOR_TEST_UNSET_VARIABLE is not set (or not UTF-8)"
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                "[[servers]]\nname = \"a\"\nhttp = \"x\"\n",
                "dir/orchestrator.toml:3: servers[0].http: \"x\" must start with http:// or https://",
            ),
            (
                "[[servers]]\nname = \"a\"\ntcp = \"h:1\"\n[[servers]]\nname = \"a\"\ntcp = \"h:2\"\n",
                "dir/orchestrator.toml:5: servers[1].name: \"a\" is listed twice",
            ),
            (
                "[[servers]]\nname = \"a b\"\ntcp = \"h:1\"\n",
                "dir/orchestrator.toml:2: servers[0].name: \"a b\" must be 1 to 64 characters of a-z, A-Z, 0-9, '-', '_'",
            ),
            (
                "[[servers]]\nname = \"a\"\n",
                "dir/orchestrator.toml:2: server \"a\": give exactly one of stdio = [..], tcp = \"host:port\", http = \"URL\"",
            ),
            (
                "[[servers]]\nname = \"a\"\ntcp = \"h:99999\"\n",
                "dir/orchestrator.toml:3: servers[0].tcp: \"h:99999\" is not host:port",
            ),
            ("", "dir/orchestrator.toml:1: no [[servers]] listed"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap_err(), expected, "{text}");
        }
        let unknown = parse("[[servers]]\nname = \"a\"\ntcp = \"h:1\"\nport = 3\n").unwrap_err();
        assert!(
            unknown.starts_with("dir/orchestrator.toml:4: unknown field `port`"),
            "{unknown}"
        );
        let policy =
            parse("[[servers]]\nname = \"a\"\ntcp = \"h:1\"\n\n[policy]\nattempts_max = 0\n")
                .unwrap_err();
        assert_eq!(
            policy,
            "dir/orchestrator.toml:5: [policy]: attempts_max must be between 1 and 10, got 0"
        );
    }

    #[test]
    fn https_urls_need_the_https_feature() {
        let server = parse("[[servers]]\nname = \"a\"\nhttp = \"https://h/mcp\"\n");
        let planner = parse(
            "[[servers]]\nname = \"a\"\ntcp = \"h:1\"\n[planner]\n\
             base_url = \"https://api.openai.com/v1\"\nmodel = \"m\"\n",
        );
        if cfg!(feature = "https") {
            assert!(server.is_ok() && planner.is_ok(), "{server:?} {planner:?}");
            return;
        }
        let fix = "this build has no TLS; rebuild with `--features https` \
                   (cargo run --release -p orchestrator --features https -- …)";
        assert_eq!(
            server.unwrap_err(),
            format!("dir/orchestrator.toml:3: servers[0].http: https://h/mcp: {fix}")
        );
        assert_eq!(
            planner.unwrap_err(),
            format!(
                "dir/orchestrator.toml:5: [planner]: base_url: https://api.openai.com/v1: {fix}"
            )
        );
    }
}
