//! Response across a tenant, after detection: what the platform does once something is known.
//!
//! * [`air`] — automated investigation and remediation: every alert of a device whose group
//!   allows automation is investigated (evidence from telemetry, a verdict for each entity),
//!   and its malicious entities are remediated through machine actions and shared indicators
//!   — at once, or after an analyst approves them in the action center.
//! * [`signal`] — signal sharing: an entity determined malicious (by an analyst's
//!   TruePositive/Malware verdict on an alert, a high-confidence external alert, or an
//!   investigation) becomes a tenant-wide indicator that every agent enforces with its next
//!   sync, and whose retro-hunt finds the devices that saw it before.
//!
//! The rules (verdicts, which actions need approval, which indicators are shared) are
//! `rampart_core`'s (`investigation`, `remediation`, `signal`); this crate gathers evidence,
//! stores and applies them. Correlation into incidents is the store's, by
//! `rampart_core::correlation`'s rules, in the transaction that stores each alert.

pub mod air;
pub mod signal;
