//! Tests of the agent: the process sensor against the real kernel, the hash cache, the spool,
//! the credential file, the sender and enrollment over HTTP and pinned TLS, the command journal
//! and the isolation rule set, code-execution restriction (fanotify, on a tmpfs of its own), the
//! network sensor's socket table, the logon sensor's sources, antivirus scans and quarantine on real
//! files and processes, what automated investigations ask of the device (live look, kill,
//! persistence entries), the file sensor, the block log's parsing of NFLOG messages, and the
//! binary.
//!
//! The only stand-in is `server`, a tiny HTTP server that records requests and answers as
//! told, for the faults a real server does not make on demand. The end-to-end tests against
//! the real server are in crates/rampart/tests/it/agent.rs.

mod batcher;
mod binary;
mod blocklog;
mod commands;
mod credentials;
mod files;
mod hashes;
mod host;
mod investigation;
mod live_response;
mod logons;
mod network;
mod process;
mod restrict;
mod scan;
mod sender;
mod server;
mod software;
mod spool;
mod tls;
