//! The harness's one integration-test binary.
//!
//! - `cli`: the `harness` binary's output (text, JSON, `--trace FILE`,
//!   `--junit FILE`), byte for byte the same on every run;
//! - `scenarios`: every shipped scenario file meets its expectation, and a
//!   seed replays byte for byte;
//! - `properties`: generated datasets, questions and fault schedules are
//!   answered as the oracle says, in process and under the simulation, and a
//!   planted bug is found, shrunk, written out and replayed;
//! - `fidelity`: questions in every form, answered as meant or refused,
//!   and the figures of how many of each form the planner answers;
//! - `llm`: the LLM planner against the adversarial model host: only true
//!   answers and typed refusals, and a planted stale argument caught.

mod cli;
mod fidelity;
mod llm;
mod probe;
mod properties;
mod scenarios;
