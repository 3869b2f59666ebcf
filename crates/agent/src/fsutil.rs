//! Files that must never be seen half-written, and directories only the agent may read.

use crate::error::{Result, io_err, json_err};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Creates `dir` (and its parents) if needed and sets its mode to `mode`.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("setting the mode of {}", dir.display())))
}

/// Writes `bytes` to `path` atomically: into a temporary file of the same directory created
/// with `mode` (so the content is never readable with a wider mode, even briefly), flushed to
/// disk, renamed over `path`, and the directory flushed so that the rename survives a crash.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write_atomically(path, bytes, mode, None)
}

/// As [`atomic_write`], the file owned by `uid`:`gid` from the start (a file of a user's the
/// agent rewrites for them, which its owner's programs check the ownership of).
pub fn atomic_write_as(path: &Path, bytes: &[u8], mode: u32, uid: u32, gid: u32) -> Result<()> {
    write_atomically(path, bytes, mode, Some((uid, gid)))
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and call, so that two writers of the same file never share a
    // temporary file; the last rename wins whole.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        // A temporary file left by a crash may have been created with another mode.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(format!("writing {}", path.display()))(e)
    })
}

/// Flushes a directory's entries (renames, removals) to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The JSON document in `path`, or the default value when there is no such file.
pub fn read_json_or_default<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T> {
    match fs::read(path) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(json_err(format!("reading {}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
    }
}

/// The JSON records `<dir>/*/<name>`, one per subdirectory, with their subdirectories; none
/// when `dir` does not exist. A subdirectory without its record is skipped (a removal cut
/// short), a malformed record logged and skipped.
pub fn read_records<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<Vec<(std::path::PathBuf, T)>> {
    let listing = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("reading {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for sub in listing.flatten().map(|e| e.path()) {
        let record = sub.join(name);
        let Ok(bytes) = fs::read(&record) else {
            continue;
        };
        match serde_json::from_slice::<T>(&bytes) {
            Ok(r) => out.push((sub, r)),
            Err(e) => tracing::warn!("{}: {e}", record.display()),
        }
    }
    Ok(out)
}

/// Writes `value` to `path` as JSON, atomically, readable by the agent only (0600).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let bytes =
        serde_json::to_vec(value).map_err(json_err(format!("writing {}", path.display())))?;
    atomic_write(path, &bytes, 0o600)
}
