//! The **orchestrator**: answers a question that spans several MCP servers
//! by chaining their tools, as a careful client should.
//!
//! ```text
//! question ──parse──▶ Question ──plan(catalog)──▶ Plan ──execute──▶ Answer
//!                                   ▲                      │
//!                    tools/list ────┘        tools/call ◀──┘ (retry policy)
//! ```
//!
//! - [`config`]: the TOML file: servers, transports, [`Policy`];
//! - [`connector`]: the one seam to servers ([`Connector`]: stdio, TCP,
//!   HTTP, or the simulation's own);
//! - [`catalog`]: every server's tools, namespaced `server/tool`;
//! - [`planner`]: deterministic planning by tool schema; no LLM, no server names;
//! - [`policy`]: timeouts, attempts, backoff with full jitter, retry budget,
//!   circuit breaker settings;
//! - [`breaker`]: the per-server circuit breaker (closed, open, half-open);
//! - [`Orchestrator`]: connections, reconnects and the retry loop;
//! - [`answer`]: reading replies and rendering the answer.
//!
//! **Determinism.** All time goes through `tokio::time` and all randomness
//! through the seeded RNG given to [`Orchestrator::new`], so under a
//! simulated network the same seed replays the same run.
//!
//! This library knows nothing of the reference servers' code: it meets
//! them only through MCP.

pub mod answer;
pub mod breaker;
pub mod catalog;
pub mod config;
pub mod connector;
mod engine;
pub mod planner;
pub mod planted;
pub mod policy;

pub use answer::Answer;
pub use config::{Config, ConfigError, Credential, CredentialError, Token};
pub use connector::{ConnectError, Connector, HttpRefusal, McpClient};
pub use engine::{AskError, CallError, Orchestrator, Stats, StepTrace};
pub use planner::{Plan, PlanError, Question};
pub use planted::{NotBuiltIn, PlantedBug};
pub use policy::{Policy, PolicyError};
