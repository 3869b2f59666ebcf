//! Indicator-of-compromise matching.
//!
//! Every event from every endpoint is checked against the tenant's active indicators: file
//! hashes and certificate thumbprints by exact value, IP addresses by longest matching prefix
//! (single addresses and CIDR ranges), domains by suffix at label boundaries (`evil.com`
//! matches `a.b.evil.com`, never `notevil.com`), URLs by normalised host and path prefix.
//!
//! - [`entry`]: what the matcher keeps of an indicator (about 40 bytes beside its value).
//! - [`url`]: the one normalisation of URLs shared by indicators and observed events.
//! - [`table`]: an immutable set of entries with its lookup structures.
//! - [`verdict`]: which of several matching indicators decides, by MDE's precedence rules.
//! - [`index`]: [`IndicatorIndex`], the per-tenant tables behind lock-free snapshots; changes
//!   land in a small overlay at once and are folded into the large table in the background.
//! - [`scratch`]: the buffers of matching a batch, reused from one batch to the next.
//!
//! The crate does no I/O: the server feeds it from the state store and checks ingested rows;
//! the agent can hold the same index to enforce blocks on the endpoint.

pub mod entry;
pub mod index;
pub mod scratch;
pub mod table;
pub mod url;
pub mod verdict;

pub use entry::{Entry, EntryError, GroupScope};
pub use index::{Change, IndicatorIndex};
pub use scratch::Scratch;
pub use table::{Matched, Table};
pub use verdict::{Device, FileObservation, Hit, NetworkObservation, decide_file, decide_network};
