//! Route handlers, one module per resource.

pub mod agent_commands;
pub mod agent_indicators;
pub mod alert_related;
pub mod alert_write;
pub mod alerts;
pub mod audit;
pub mod correlation;
pub mod detection_rules;
pub mod docs;
pub mod enrollment;
pub mod hunting;
pub mod incidents;
pub mod indicators;
pub mod ingest;
pub mod library;
pub mod live_response;
pub mod machine_actions;
pub mod machine_telemetry;
pub mod machines;
pub mod oauth;
pub mod ops;
pub mod packages;
pub mod remediation;
pub mod schema;
pub mod yara_rules;
