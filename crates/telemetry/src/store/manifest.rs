//! The manifest: which Parquet files make up the store, and how far the log has been folded into
//! them. Rewritten whole (write, fsync, rename) after every flush, compaction and retention run,
//! so a crash leaves either the old or the new one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// One Parquet file: rows of one tenant, table and UTC day, sorted by `Timestamp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Object path, relative to the store's root.
    pub path: String,
    pub tenant: String,
    pub table: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    pub rows: u64,
    pub bytes: u64,
    /// Smallest and largest `Timestamp`, in nanoseconds since the epoch.
    pub min_ts: i64,
    pub max_ts: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The last log segment whose records are all in `files`.
    pub checkpoint: Option<u64>,
    /// Numbers new file names.
    pub next_file: u64,
    pub files: Vec<FileEntry>,
    /// Retention in days per tenant, where it differs from the default.
    pub retention_days: BTreeMap<String, u32>,
}

impl Manifest {
    pub fn load(path: &Path) -> std::io::Result<Manifest> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(self)?)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}
