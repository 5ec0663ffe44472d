//! The **orchestrator**: answers a question that spans several MCP servers
//! by chaining their tools, as a careful client should.
//!
//! ```text
//! question ──parse──▶ Question ──plan(catalog)──▶ Plan ──execute──▶ Answer
//!                                   ▲                      │
//!                    tools/list ────┘        tools/call ◀──┘ (retry policy)
//! ```
//!
//! The whole API, one path per item:
//!
//! - [`Orchestrator`] asks ([`Orchestrator::ask`]), lists the
//!   [`Catalog`], counts what it did ([`Stats`]) and traces each step
//!   ([`StepTrace`]), and tells an [`Observer`] of each [`Event`]
//!   (connections, retries, hedges, breaker transitions) as it happens
//!   ([`Orchestrator::with_observer`]); it fails with an [`AskError`],
//!   whose calls fail with a [`CallError`].
//! - [`Config`] is the TOML file: [`ServerConfig`]s, each with a
//!   [`TransportConfig`] (stdio, TCP, HTTP with a [`Credential`] naming a
//!   [`Token`]), and a [`Policy`].
//! - [`Policy`] (timeouts, attempts, full-jitter backoff, retry budget,
//!   hedging, circuit breaker) is built only valid, from
//!   [`PolicySettings`] ([`Policy::new`]) or a `[policy]` table
//!   ([`PolicyToml`]).
//! - [`Connector`] is the one seam to servers: it opens a [`Session`].
//!   [`TransportConfig::connector`] gives the real ones, HTTP dialing
//!   through [`NetDialer`] (TLS for `https://` with the `https` feature;
//!   without it [`check_url`] refuses such a URL, naming the feature);
//!   anything that is a byte stream can use [`handshake_lines`]; a
//!   connector may wrap the sessions of another.
//! - [`parse_question`] and [`plan`] are the pure planner (no LLM, no
//!   server names): a [`Question`] is understood completely (whose
//!   transactions, which [`Selection`], what [`Report`]) or refused with
//!   [`PlanError::NotUnderstood`], naming the words it could not use;
//!   [`FORMS`] and [`help`] say what it answers. [`Answer`] is what a
//!   question gets, totals per currency ([`CurrencyTotal`]).
//! - [`percentile`] is the one nearest-rank percentile of every report.
//!
//! **Determinism.** All time goes through `tokio::time` and all randomness
//! through the seeded RNG given to [`Orchestrator::new`], so under a
//! simulated network the same seed replays the same run.
//!
//! This library knows nothing of the reference servers' code: it meets
//! them only through MCP, and Cargo keeps it so (it does not depend on
//! them).

mod answer;
mod breaker;
mod catalog;
mod config;
mod connector;
mod engine;
mod error;
mod event;
mod lines;
mod llm;
mod money;
mod planner;
mod policy;
mod session;
mod stats;

pub use answer::{Answer, CurrencyTotal, ReplyError, TransactionLine};
pub use catalog::{Catalog, CatalogEntry};
pub use config::{
    Config, ConfigError, Credential, CredentialError, PolicyToml, ServerConfig, Token,
    TransportConfig, check_url, line_of,
};
pub use connector::{
    ConnectError, Connector, HttpConnector, HttpRefusal, HttpRevision, NetDialer, handshake_lines,
};
pub use engine::{Orchestrator, StepTrace};
pub use error::{AskError, CallError};
pub use event::{Event, EventKind, Observer};
pub use llm::{LlmError, LlmMode, LlmPlanner, LlmSettings, MODEL, Planner};
pub use mcp_http::dial::{Dialer, Endpoint, TcpDialer};
pub use money::MoneyError;
pub use planner::{
    AmountLimit, Ask, DateFilter, EMAILS_MAX, FORMS, Period, Pick, Plan, PlanError, Question,
    Report, Selection, help, parse_question, plan,
};
pub use policy::{Policy, PolicyError, PolicySettings};
pub use session::{Session, SessionError};
pub use stats::{Stats, percentile};
