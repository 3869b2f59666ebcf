//! End-to-end tests: the real `rampart` binary, spawned on a free port, talked to over HTTP, on a
//! real SQLite file and — when `RAMPART_TEST_DATABASE_URL` is set — on real PostgreSQL.

mod harness;

mod agent;
mod agent_commands;
mod hunting;

mod indicator_feeds;
mod indicator_matching;
mod indicators;
mod library;
mod machine_actions;

mod alerts;
mod auth;
mod cli;
mod correlation;
mod detection_rules;
mod enrollment;
mod errors;
mod incidents;
mod investigations;
mod machines;
mod odata;
mod ops;
mod routes;
mod signal_sharing;
mod telemetry;
mod yara_rules;
