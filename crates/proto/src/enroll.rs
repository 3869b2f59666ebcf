//! `POST /agent/v1/enroll`: an enrollment token traded for a device id and a device secret.

use serde::{Deserialize, Serialize};

/// What the agent sends to enroll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollRequest {
    /// The tenant's enrollment token secret (`rpe_…`).
    pub enrollment_token: String,
    /// The host name the device is known by (no spaces).
    pub computer_dns_name: String,
    /// `Linux` for this agent.
    pub os_platform: String,
    /// The id the device already has (40 lower-case hex) when it re-enrolls with its state kept;
    /// absent for a new device, which the server then names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// The server's answer to a successful enrollment (201). The secret is shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollResponse {
    pub device_id: String,
    /// The device credential (`rpd_…`).
    pub device_secret: String,
    pub tenant_id: String,
}

/// Debug without the secret, so that a logged response does not leak the credential.
impl std::fmt::Debug for EnrollResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollResponse")
            .field("device_id", &self.device_id)
            .field("device_secret", &"<redacted>")
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}
