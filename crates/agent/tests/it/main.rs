//! Tests of the agent: the process sensor against the real kernel, the hash cache, the spool,
//! the credential file, the sender and enrollment over HTTP and pinned TLS, and the binary.
//!
//! The only stand-in is `server`, a tiny HTTP server that records requests and answers as
//! told: it replaces the network and the Rampart server, which cannot be built here (see
//! E2E.md for the end-to-end test against the real one).

mod batcher;
mod binary;
mod credentials;
mod hashes;
mod host;
mod process;
mod sender;
mod server;
mod spool;
mod tls;
