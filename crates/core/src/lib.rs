//! Rampart's domain model.
//!
//! Everything the other crates agree on lives here: tenant and entity ids, the MDE permission
//! names, the MDE error codes, the entities with their MDE JSON shapes, the advanced-hunting table schema,
//! the audit record, and the OData query language (parsed and type-checked here, compiled to SQL by `rampart-store`).
//!
//! This crate performs no I/O, so every type can be used from the server, the CLI, the agent and
//! the fuzzers alike.

#[macro_use]
mod macros;

pub mod action_target;
pub mod alert;
pub mod app;
pub mod audit;
pub mod correlation;
pub mod detection_rule;
pub mod enrollment;
pub mod error;
pub mod ids;
pub mod incident;
pub mod indicator;
pub mod investigation;
pub mod library;
pub mod machine;
pub mod machine_action;
pub mod odata;
pub mod permission;
pub mod remediation;
pub mod schema;
pub mod signal;
pub mod tenant;
pub mod timefmt;
pub mod yara_rule;

pub use error::{ErrorCode, Rejection};
pub use ids::{ClientId, TenantId};
pub use permission::Permission;
