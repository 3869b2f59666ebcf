//! The Rampart Linux endpoint agent.
//!
//! `rampart-agent enroll` trades an enrollment token for a device credential ([`credentials`]),
//! over TLS pinned to the server's certificate when asked ([`tls`], [`client`]). `rampart-agent
//! run` starts the sensors — the process sensor ([`process`]: an eBPF program on exec, else
//! the netlink proc connector, or /proc polling where neither can be opened), the network sensor ([`network`]: TCP connections
//! and listeners from sock_diag), the file sensor ([`files`]: fanotify, files created, written,
//! renamed and deleted), the logon sensor ([`logons`]: sshd's log, or wtmp/btmp), the
//! DeviceInfo and DeviceNetworkInfo snapshots ([`host`], [`netinfo`]) and the installed
//! packages ([`software`]: each report whole, in one batch) — whose rows are grouped
//! into batches ([`batcher`]), kept in a bounded on-disk queue ([`spool`]) and sent in order to
//! `/agent/v1/telemetry` ([`sender`]), which retries with backoff until the server has them.
//! The indicator sync ([`enforcement`]) keeps the tenant's blocking indicators enforced on the
//! device (hashes in the exec guard, addresses and domains in the firewall: [`netblock`], whose
//! drops [`blocklog`] reports) and hands hashes and YARA rules to the antivirus [`scan`]ner.
//! Beside them, the command channel ([`commands`]) takes the device's machine actions from the
//! server and carries them out — isolation, restriction, scans, [`quarantine`], investigation
//! packages, offboarding. `rampart-agent status` reads what `run` leaves on disk ([`status`]).
//!
//! The agent depends on `rampart-core` (table and column names) and `rampart-proto` (the wire
//! types) only: no DataFusion, no database, so that it stays small on an endpoint.

pub mod backoff;
pub mod batcher;
pub mod blocklog;
pub mod bytes;
pub mod client;
pub mod commands;
pub mod credentials;
pub mod enforcement;
pub mod enroll;
pub mod error;
pub mod files;
pub mod fsutil;
pub mod hex;
pub mod host;
pub mod logons;
pub mod netblock;
pub mod netinfo;
mod netlink;
pub mod network;
pub mod nft;
pub mod process;
pub mod program;
pub mod quarantine;
pub mod run;
pub mod scan;
pub mod sender;
pub mod software;
pub mod spool;
pub mod status;
pub mod tls;
pub mod worker;

pub use error::{Error, Result};

/// The agent's version, reported as DeviceInfo's `ClientVersion`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where the agent keeps its credential, queue and status unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/rampart-agent";
