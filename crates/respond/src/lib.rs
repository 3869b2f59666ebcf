//! Response across a tenant, after detection: what the platform does once something is known.
//!
//! * [`signal`] — signal sharing: an entity determined malicious (today: by an analyst's
//!   TruePositive/Malware verdict on an alert) becomes a tenant-wide indicator that every agent
//!   enforces with its next sync, and whose retro-hunt finds the devices that saw it before.
//!
//! The rules (which entities, which actions, how long) are `rampart_core::signal`'s; this
//! crate stores and applies them. Correlation into incidents is the store's, by
//! `rampart_core::correlation`'s rules, in the transaction that stores each alert.

pub mod signal;
