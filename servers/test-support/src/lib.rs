//! Test support for whoever attacks the reference servers: the **denial
//! matrix**, one definition of the requests an authenticated HTTP endpoint
//! must refuse, with the status and the `WWW-Authenticate` challenge each
//! must get; and the test-only keys (`keys/`) that mint its tokens.
//!
//! Two consumers send it: the harness's simulated intruder
//! (`harness/src/attacker.rs`, over simulated TCP, under faults) and the
//! orchestrator's end-to-end tests (`orchestrator/tests/e2e/auth.rs`, over
//! loopback). Each describes its setting in a [`World`] (issuer, key ids,
//! clock, the servers' resource URLs, static tokens if any) and sends the
//! [`MATRIX`] cases that apply there.
//!
//! ```
//! use test_support::{MATRIX, Victim, World};
//!
//! let world = World {
//!     issuer: "https://auth.example.test",
//!     rogue_issuer: "https://evil.example.test",
//!     kid_es256: "es",
//!     kid_rs256: None,
//!     now: 1_900_000_000,
//!     lifetime_s: 600,
//!     user_resource: "http://127.0.0.1:8082/mcp".into(),
//!     payment_resource: "http://127.0.0.1:8083/mcp".into(),
//!     own_user: "intruder-0000",
//!     static_tokens: None,
//! };
//! let victim = Victim { id: "b1", email: "bob@example.com" };
//! for case in MATRIX.iter().filter(|case| world.applies(case)) {
//!     let _header = world.authorization(case);
//!     let _body = case.body(&victim);
//!     assert!(case.refusal.status() == 401 || case.refusal.status() == 403);
//! }
//! ```
//!
//! **Not for production.** The keys are in the repository; a server that
//! trusted them would trust anyone.

mod matrix;
mod mint;

pub use matrix::{Case, Credential, Flaw, MATRIX, Refusal, Server, Signer, Victim};
pub use mint::{World, jwks};
