//! The **chaos harness**: the real user server, payment server and
//! orchestrator, unmodified, on hosts of the [turmoil] network simulator.
//! Faults come from a scenario file; every answer is checked against an
//! [`Oracle`] that reads the dataset directly.
//!
//! ```no_run
//! let scenario = harness::Scenario::from_file("scenarios/flaky.toml".as_ref()).unwrap();
//! let report = harness::run(&scenario, 7).unwrap();
//! assert!(report.as_expected, "reproduce with: harness run scenarios/flaky.toml --seed 7");
//! ```
//!
//! - [`scenario`]: the TOML format, validated with file:line errors;
//! - [`topology`]: servers as data (`[[servers]]`) and the typed hosts;
//! - [`fault`]: the one fault vocabulary, read and written by serde;
//! - [`dataset`]: what the servers serve, in their dataset-file format;
//! - [`strategies`]: proptest strategies for awkward datasets and questions,
//!   shared with the property tests;
//! - [`oracle`]: the expected answer, computed without a network;
//! - [`sim`]: one seeded run: hosts, the fault loop, the invariant checks;
//! - [`proxy`]: a seeded Toxiproxy-style proxy host for the toxics;
//! - [`duplex`]: the whole stack in one process over in-memory pipes;
//! - [`explore`]: generated datasets, questions and fault schedules, run
//!   and shrunk by proptest, a failure written out as a scenario file;
//! - [`HtmlReport`] (`report`): the HTML run report of `harness run
//!   --report`: verdicts, a table of seeds, and timelines of faults,
//!   queries, orchestrator events and wire messages;
//! - [`planted`]: deliberate bugs, planted from outside by wrapping the
//!   orchestrator's sessions, to prove that `explore` finds them.
//!
//! **Determinism.** A run reads no wall clock and no OS randomness: turmoil
//! drives time, the seed drives turmoil's RNG and the orchestrator's jitter,
//! and the workspace builds with `--cfg tokio_unstable` (`.cargo/config.toml`)
//! so that tokio's `select!` draws from turmoil's seeded RNG; every run
//! starts tokio's process-wide task numbering at the same alignment, so that
//! a crashed host's tasks shut down in the same order. The same (scenario,
//! seed, build) gives the same trace and wire log, byte for byte, in a fresh
//! process or after other runs in the same one, provided no other thread
//! spawns tokio tasks while the run is going (they share the numbering).

mod attacker;
mod dataset;
pub mod duplex;
pub mod explore;
mod fault;
mod join;
mod oracle;
mod planted;
mod proxy;
mod report;
mod scenario;
mod sim;
pub mod strategies;
mod topology;

pub use dataset::Dataset;
pub use fault::{FaultEntry, FaultKind, Stream, Target, Toxic, ToxicKind};
pub use oracle::{Dates, Expected, Limit, Meaning, Oracle, Span, Take, Tell, Wanted, What};
pub use planted::PlantedBug;
pub use report::HtmlReport;
pub use scenario::{
    DatasetSource, Fault, Invariant, LlmSetup, ModelSettings, PlannerSetup, Play, QuestionForms,
    Questions, Scenario, ScenarioError, Transport,
};
pub use sim::{
    ClientEvent, FaultSpan, Outcome, QueryRecord, RateLimited, RunError, RunReport, ServerLoad,
    Verdict, dataset_for, run,
};
pub use topology::{Host, ServerId, ServerKind, ServerSpec, Topology};
