//! The wire types between the Rampart agent and the server: what the agent sends to enroll
//! ([`enroll`]), the telemetry batches it posts and the server's acknowledgement ([`telemetry`]),
//! the error body every refusal carries ([`error`]), and the commands the server pushes with the
//! progress the agent reports back ([`command`]), and the indicators a device enforces itself
//! ([`enforcement`]).
//!
//! Serde only, no I/O, so that the agent, the server and tests agree on one definition of the
//! JSON. The field names are the server's existing ones (camelCase); rows inside a batch use the
//! advanced-hunting column names, which are the schema's (`rampart_core::schema`), not this
//! crate's business.

pub mod command;
pub mod enforcement;
pub mod enroll;
pub mod error;
pub mod telemetry;

/// Path of the enrollment route.
pub const ENROLL_PATH: &str = "/agent/v1/enroll";
/// Path of the telemetry route.
pub const TELEMETRY_PATH: &str = "/agent/v1/telemetry";
/// Path of the indicators a device enforces.
pub const INDICATORS_PATH: &str = "/agent/v1/indicators";
/// Path of the command poll.
pub const COMMANDS_POLL_PATH: &str = "/agent/v1/commands/poll";

/// Path of the updates of one command.
pub fn command_update_path(command_id: &str) -> String {
    format!("/agent/v1/commands/{command_id}")
}

/// Path of the investigation package of a `CollectInvestigationPackage` command (`PUT`, a
/// gzip-compressed tar as the body).
pub fn package_upload_path(command_id: &str) -> String {
    format!("/agent/v1/commands/{command_id}/package")
}

/// Path of the result of command `index` of a live response command (`PUT`, the script
/// transcript or the file as the body).
pub fn live_response_result_path(command_id: &str, index: u32) -> String {
    format!("/agent/v1/commands/{command_id}/results/{index}")
}

/// Path of a live response library file, by the SHA-256 of its content (`GET`).
pub fn library_content_path(sha256: &str) -> String {
    format!("/agent/v1/library/{sha256}")
}

/// The `Authorization` header value that authenticates a device on the agent routes:
/// `Device <deviceId>:<deviceSecret>`.
pub fn device_authorization(device_id: &str, device_secret: &str) -> String {
    format!("Device {device_id}:{device_secret}")
}
