//! The harness's one integration-test binary.
//!
//! - `cli`: the `harness` binary's output (text, JSON, `--trace FILE`,
//!   `--junit FILE`), byte for byte the same on every run;
//! - `scenarios`: every shipped scenario file meets its expectation, and a
//!   seed replays byte for byte;
//! - `properties`: generated datasets, questions and fault schedules are
//!   answered as the oracle says, in process and under the simulation, and a
//!   planted bug is found, shrunk, written out and replayed.

mod cli;
mod properties;
mod scenarios;
