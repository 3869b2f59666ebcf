//! The device credential: what enrollment returned, kept in `STATE_DIR/credentials.json`,
//! mode 0600 in a 0700 directory, written atomically so that a crash never leaves a device
//! without a readable credential.

use crate::error::{Error, Result, io_err, json_err};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// File name of the credential inside the state directory.
pub const FILE_NAME: &str = "credentials.json";

/// An enrolled device's identity and secret, and how to reach its server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// Base URL of the server (`https://host:port`).
    pub server: String,
    pub device_id: String,
    pub device_secret: String,
    pub tenant_id: String,
    /// SHA-256 of the server's certificate (64 lower-case hex) when it is pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Debug without the secret, so that logging the credential cannot leak it.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("device_id", &self.device_id)
            .field("device_secret", &"<redacted>")
            .field("tenant_id", &self.tenant_id)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl Credentials {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    /// Stores the credential: the state directory made 0700, the file 0600.
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        fsutil::ensure_dir(state_dir, 0o700)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(json_err("encoding credentials"))?;
        fsutil::atomic_write(&Self::path(state_dir), &bytes, 0o600)
    }

    /// Reads the stored credential; [`Error::NotEnrolled`] when there is none.
    pub fn load(state_dir: &Path) -> Result<Credentials> {
        let path = Self::path(state_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotEnrolled(path));
            }
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the credential file is readable by other users; it should be mode 0600"
            );
        }
        serde_json::from_slice(&bytes).map_err(json_err(format!("reading {}", path.display())))
    }

    /// The `Authorization` header value for the agent routes.
    pub fn authorization(&self) -> String {
        rampart_proto::device_authorization(&self.device_id, &self.device_secret)
    }
}
