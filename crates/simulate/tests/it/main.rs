//! Integration tests of the fleet simulator (one test binary, per the workspace convention).

mod common;
mod determinism;
mod fleet;
mod live;
mod rows;
mod scenarios;
mod sinks;
mod software;
