//! What `run` records for `status` to show: the result of the last send, and which process
//! sensor is in use. Kept in `STATE_DIR/status.json`, replaced atomically.

use crate::error::{Result, json_err};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "status.json";

/// The agent's last known state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The process sensor's source (`Ebpf`, `ProcConnector` or `ProcPolling`).
    #[serde(default)]
    pub process_source: Option<String>,
    #[serde(default)]
    pub last_send: Option<SendResult>,
    /// When a batch was last acknowledged (RFC 3339).
    #[serde(default)]
    pub last_success: Option<String>,
}

/// One send attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendResult {
    /// RFC 3339.
    pub time: String,
    pub batch_id: String,
    /// `Acknowledged`, `Retrying` or `Refused`.
    pub outcome: String,
    #[serde(default)]
    pub http_status: Option<u16>,
    #[serde(default)]
    pub detail: Option<String>,
}

impl AgentStatus {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    /// The recorded status; the default when `run` has not written one yet or it is unreadable
    /// (a status display must not fail for it).
    pub fn load(state_dir: &Path) -> AgentStatus {
        std::fs::read(Self::path(state_dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(json_err("encoding the status"))?;
        fsutil::atomic_write(&Self::path(state_dir), &bytes, 0o600)
    }
}
