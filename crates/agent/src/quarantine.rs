//! `StopAndQuarantineFile` and its undo, `RestoreQuarantinedFile`.
//!
//! Stopping kills every process running the file — as its image, or as the script an
//! interpreter was given — then moves the file into the quarantine store under the state
//! directory: `quarantine/<entry>/content` with no permissions at all, and `entry.json` with
//! where it was, its owner, mode and times, its hashes, and which processes were killed. The
//! move is a rename when the store is on the same filesystem, else a copy made durable before
//! the original is removed, so a crash in between leaves the file in one place at least.
//! Restoring puts the content back with its owner, mode and times, unless something else has
//! taken its place meanwhile (then the entry stays, and the command says why).

use crate::error::{Error, Result, io_err};
use crate::fsutil::{ensure_dir, read_records, sync_dir, write_json};
use crate::scan::{Finding, Scanner};
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;

/// A quarantined file's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub original_path: PathBuf,
    pub sha1: String,
    pub sha256: String,
    pub md5: String,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub quarantined_at: OffsetDateTime,
    pub killed_pids: Vec<u32>,
}

/// The quarantine store and the search for the files to put in it.
pub struct Quarantine {
    dir: PathBuf,
    scanner: Arc<Scanner>,
}

impl Quarantine {
    pub fn new(state_dir: &Path, scanner: Arc<Scanner>) -> Quarantine {
        Quarantine {
            dir: state_dir.join("quarantine"),
            scanner,
        }
    }

    /// Kills the processes running files with SHA-1 `sha1` and quarantines the files.
    pub async fn stop_and_quarantine(&self, sha1: &str) -> Result<String> {
        let scanner = Arc::clone(&self.scanner);
        let wanted = sha1.to_owned();
        let found = tokio::task::spawn_blocking(move || scanner.locate(&wanted))
            .await
            .map_err(|e| Error::Action(format!("the search stopped: {e}")))?;
        if found.is_empty() {
            return Ok(format!(
                "no file with SHA-1 {sha1} is running or in the scanned locations; nothing to quarantine"
            ));
        }
        ensure_dir(&self.dir, 0o700)?;
        let mut notes = Vec::new();
        let mut failures = Vec::new();
        for f in &found {
            let killed = kill_runners(f);
            if f.path.to_string_lossy().ends_with(" (deleted)") {
                notes.push(format!(
                    "killed {} running a deleted file ({})",
                    pids(&killed),
                    f.path.display()
                ));
                continue;
            }
            match self.put_away(f, &killed) {
                Ok(()) => notes.push(format!(
                    "{} quarantined{}",
                    f.path.display(),
                    if killed.is_empty() {
                        String::new()
                    } else {
                        format!(" after killing {}", pids(&killed))
                    }
                )),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(notes.join("; "))
        } else {
            Err(Error::Action(
                failures
                    .into_iter()
                    .chain(notes)
                    .collect::<Vec<_>>()
                    .join("; "),
            ))
        }
    }

    fn put_away(&self, f: &Finding, killed: &[u32]) -> Result<()> {
        let meta = fs::symlink_metadata(&f.path)
            .map_err(io_err(format!("reading {}", f.path.display())))?;
        let id = uuid::Uuid::new_v4().to_string();
        let entry_dir = self.dir.join(&id);
        ensure_dir(&entry_dir, 0o700)?;
        let entry = Entry {
            original_path: f.path.clone(),
            sha1: f.hashes.sha1.clone(),
            sha256: f.hashes.sha256.clone(),
            md5: f.hashes.md5.clone(),
            size: f.hashes.size,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            quarantined_at: OffsetDateTime::now_utc(),
            killed_pids: killed.to_vec(),
        };
        // The record first: a content without one could never be restored.
        write_json(&entry_dir.join("entry.json"), &entry)?;
        let content = entry_dir.join("content");
        move_file(&f.path, &content).inspect_err(|_| {
            let _ = fs::remove_dir_all(&entry_dir);
        })?;
        fs::set_permissions(&content, fs::Permissions::from_mode(0o000)).map_err(io_err(format!(
            "removing the permissions of {}",
            content.display()
        )))
    }

    /// The entries in the store, with their directories.
    pub fn entries(&self) -> Result<Vec<(PathBuf, Entry)>> {
        let mut out: Vec<(PathBuf, Entry)> = read_records(&self.dir, "entry.json")?;
        out.retain(|(dir, _)| dir.join("content").exists());
        out.sort_by_key(|e| e.1.quarantined_at);
        Ok(out)
    }

    /// Puts every file quarantined with SHA-1 `sha1` back where it was.
    pub fn restore(&self, sha1: &str) -> Result<String> {
        let entries: Vec<_> = self
            .entries()?
            .into_iter()
            .filter(|(_, e)| e.sha1 == sha1)
            .collect();
        if entries.is_empty() {
            return Err(Error::Action(format!(
                "no file with SHA-1 {sha1} is in quarantine on this device"
            )));
        }
        let mut restored = Vec::new();
        let mut failures = Vec::new();
        for (dir, entry) in entries {
            match restore_entry(&dir, &entry) {
                Ok(()) => restored.push(entry.original_path.display().to_string()),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(format!("restored {}", restored.join(", ")))
        } else {
            Err(Error::Action(format!(
                "{}{}",
                failures.join("; "),
                if restored.is_empty() {
                    String::new()
                } else {
                    format!("; restored {}", restored.join(", "))
                }
            )))
        }
    }
}

fn restore_entry(dir: &Path, e: &Entry) -> Result<()> {
    let target = &e.original_path;
    if fs::symlink_metadata(target).is_ok() {
        return Err(Error::Action(format!(
            "{} exists again; the quarantined file was left in place",
            target.display()
        )));
    }
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
    }
    let content = dir.join("content");
    move_file(&content, target)?;
    let restore_meta = || -> std::io::Result<()> {
        std::os::unix::fs::lchown(target, Some(e.uid), Some(e.gid))?;
        fs::set_permissions(target, fs::Permissions::from_mode(e.mode))?;
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                e.mtime.max(0) as u64,
                e.mtime_nsec.clamp(0, 999_999_999) as u32,
            );
        fs::File::options()
            .write(true)
            .open(target)?
            .set_modified(mtime)
    };
    restore_meta().map_err(io_err(format!(
        "restoring the owner, mode and time of {}",
        target.display()
    )))?;
    fs::remove_dir_all(dir).map_err(io_err(format!("removing {}", dir.display())))
}

/// Moves `from` to `to`: a rename, or a durable copy then a removal across filesystems.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    let context = || format!("moving {} to {}", from.display(), to.display());
    match fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            fs::copy(from, to).map_err(io_err(context()))?;
            fs::File::open(to)
                .and_then(|f| f.sync_all())
                .map_err(io_err(context()))?;
            fs::remove_file(from).map_err(io_err(context()))?;
        }
        Err(e) => return Err(io_err(context())(e)),
    }
    for dir in [from.parent(), to.parent()].into_iter().flatten() {
        sync_dir(dir).map_err(io_err(format!("flushing {}", dir.display())))?;
    }
    Ok(())
}

/// Kills the processes running `f`: those it is the image of, and interpreters given it as
/// an argument. Returns the pids killed.
fn kill_runners(f: &Finding) -> Vec<u32> {
    let mut targets = f.running_in.clone();
    targets.extend(interpreters_of(&f.path));
    targets.sort_unstable();
    targets.dedup();
    let own = std::process::id();
    targets
        .into_iter()
        .filter(|&pid| pid > 1 && pid != own)
        .filter(|&pid| {
            let Ok(p) = libc::pid_t::try_from(pid) else {
                return false;
            };
            // SAFETY: kill(2) takes plain integers and has no memory effects on this process;
            // pid > 1 and is not the agent, so it names one other process.
            unsafe { libc::kill(p, libc::SIGKILL) == 0 }
        })
        .collect()
}

/// Processes whose command line names `path` as an argument (a script being interpreted).
fn interpreters_of(path: &Path) -> Vec<u32> {
    let Ok(proc_dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc_dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            cmdline
                .split(|&b| b == 0)
                .skip(1)
                .filter(|a| !a.is_empty())
                .any(|arg| {
                    use std::os::unix::ffi::OsStrExt;
                    let arg = Path::new(std::ffi::OsStr::from_bytes(arg));
                    cwd.join(arg) == path
                })
        })
        .collect()
}

fn pids(p: &[u32]) -> String {
    let list: Vec<String> = p.iter().map(ToString::to_string).collect();
    format!(
        "process{} {}",
        if p.len() == 1 { "" } else { "es" },
        list.join(", ")
    )
}
