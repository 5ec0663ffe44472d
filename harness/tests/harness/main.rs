//! The harness's one integration-test binary.
//!
//! - `scenarios`: every shipped scenario file meets its expectation, and a
//!   seed replays byte for byte;
//! - `properties`: generated datasets, questions and fault schedules are
//!   answered as the oracle says, in process and under the simulation, and a
//!   planted bug is found, shrunk, written out and replayed.

mod properties;
mod scenarios;
