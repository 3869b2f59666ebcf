//! `RemovePersistence` and its undo, `RestorePersistence`: taking an attacker's persistence
//! entry out of the device, and putting it back when an analyst says it was not one.
//!
//! An entry is either lines of a shared file — a crontab, `authorized_keys`, a shell rc file —
//! of which only the lines holding one of the named texts go, or a file of its own (a cron.d
//! file, a systemd unit) which goes whole. What is taken out is recorded first under
//! `persistence/<id>/` in the state directory (`record.json`, and `content` for a whole file),
//! so it can be put back. A shared file is rewritten atomically with its owner and mode kept:
//! sshd ignores an `authorized_keys` that changed owner, and a half-written crontab would run
//! half the owner's jobs.

use crate::error::{Error, Result, io_err};
use crate::fsutil::{atomic_write_as, ensure_dir, read_records, sync_dir, write_json};
use rampart_core::investigation::{PersistenceShape, persistence_shape};
use rampart_proto::command::PersistenceTarget;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What one removal took out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    target: PersistenceTarget,
    /// The lines taken out of a shared file, with their line ends.
    lines: Vec<String>,
    /// Whether the whole file was taken out (into `content`).
    whole: bool,
    mode: u32,
    uid: u32,
    gid: u32,
    #[serde(with = "time::serde::rfc3339")]
    removed_at: OffsetDateTime,
}

/// The store of removed persistence entries.
pub struct PersistenceStore {
    dir: PathBuf,
}

impl PersistenceStore {
    pub fn new(state_dir: &Path) -> PersistenceStore {
        PersistenceStore {
            dir: state_dir.join("persistence"),
        }
    }

    /// Takes the entry out; says what it did. An entry already gone is no failure: the device
    /// is as asked.
    pub fn remove(&self, target: &PersistenceTarget) -> Result<String> {
        target.check().map_err(|r| Error::Action(r.message))?;
        let path = Path::new(&target.path);
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(format!("{} does not exist; nothing to remove", target.path));
            }
            Err(e) => return Err(io_err(format!("reading {}", target.path))(e)),
        };
        if !meta.is_file() {
            return Err(Error::Action(format!(
                "{} is not a regular file; left alone",
                target.path
            )));
        }
        let mut record = Record {
            target: target.clone(),
            lines: Vec::new(),
            whole: target.entries.is_empty(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            removed_at: OffsetDateTime::now_utc(),
        };
        let entry_dir = self.dir.join(uuid::Uuid::new_v4().to_string());
        if record.whole {
            // `check` allows no entries only where the file is the entry.
            debug_assert_eq!(
                persistence_shape(&target.path),
                Some(PersistenceShape::OwnFile)
            );
            ensure_dir(&entry_dir, 0o700)?;
            write_json(&entry_dir.join("record.json"), &record)?;
            let content = entry_dir.join("content");
            fs::rename(path, &content)
                .or_else(|_| fs::copy(path, &content).and_then(|_| fs::remove_file(path)))
                .map_err(|e| {
                    let _ = fs::remove_dir_all(&entry_dir);
                    io_err(format!("moving {} away", target.path))(e)
                })?;
            fs::set_permissions(&content, fs::Permissions::from_mode(0o000))
                .map_err(io_err(format!("locking {}", content.display())))?;
            if let Some(dir) = path.parent() {
                let _ = sync_dir(dir);
            }
            return Ok(format!("{} removed{}", target.path, reload_systemd(path)));
        }
        let text = fs::read_to_string(path).map_err(io_err(format!("reading {}", target.path)))?;
        let (kept, removed): (Vec<&str>, Vec<&str>) = text
            .split_inclusive('\n')
            .partition(|line| !target.entries.iter().any(|e| line.contains(e.trim())));
        if removed.is_empty() {
            return Ok(format!(
                "no line of {} holds the entries; nothing to remove",
                target.path
            ));
        }
        record.lines = removed.iter().map(|l| (*l).to_owned()).collect();
        ensure_dir(&entry_dir, 0o700)?;
        write_json(&entry_dir.join("record.json"), &record)?;
        rewrite(path, &kept.concat(), &record).inspect_err(|_| {
            let _ = fs::remove_dir_all(&entry_dir);
        })?;
        Ok(format!(
            "{} line{} removed from {}",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" },
            target.path
        ))
    }

    /// Puts back what removals of `target` took out: the lines not in the file again, or the
    /// whole file when nothing has taken its place.
    pub fn restore(&self, target: &PersistenceTarget) -> Result<String> {
        target.check().map_err(|r| Error::Action(r.message))?;
        let records = self.records_of(target)?;
        if records.is_empty() {
            return Err(Error::Action(format!(
                "nothing removed from {} is kept on this device",
                target.path
            )));
        }
        let path = Path::new(&target.path);
        let mut restored = 0;
        for (dir, record) in records {
            if record.whole {
                if fs::symlink_metadata(path).is_ok() {
                    return Err(Error::Action(format!(
                        "{} exists again; the removed file was left in the store",
                        target.path
                    )));
                }
                let content = dir.join("content");
                fs::set_permissions(&content, fs::Permissions::from_mode(record.mode))
                    .map_err(io_err(format!("unlocking {}", content.display())))?;
                fs::rename(&content, path)
                    .or_else(|_| fs::copy(&content, path).map(|_| ()))
                    .map_err(io_err(format!("putting {} back", target.path)))?;
                let _ = std::os::unix::fs::lchown(path, Some(record.uid), Some(record.gid));
                let _ = reload_systemd(path);
            } else {
                let text = match fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(e) => return Err(io_err(format!("reading {}", target.path))(e)),
                };
                let mut out = text.clone();
                for line in &record.lines {
                    if !text.split_inclusive('\n').any(|l| l == line) {
                        if !out.is_empty() && !out.ends_with('\n') {
                            out.push('\n');
                        }
                        out.push_str(line);
                    }
                }
                rewrite(path, &out, &record)?;
            }
            fs::remove_dir_all(&dir).map_err(io_err(format!("removing {}", dir.display())))?;
            restored += 1;
        }
        Ok(format!(
            "restored {restored} removal{} from {}",
            if restored == 1 { "" } else { "s" },
            target.path
        ))
    }

    /// The removals of `target` kept in the store, oldest first.
    fn records_of(&self, target: &PersistenceTarget) -> Result<Vec<(PathBuf, Record)>> {
        let mut out: Vec<(PathBuf, Record)> = read_records(&self.dir, "record.json")?;
        out.retain(|(_, r)| r.target == *target);
        out.sort_by_key(|(_, r)| r.removed_at);
        Ok(out)
    }
}

/// Replaces `path` with `text` atomically, with the owner and mode `like` recorded.
fn rewrite(path: &Path, text: &str, like: &Record) -> Result<()> {
    atomic_write_as(path, text.as_bytes(), like.mode, like.uid, like.gid)
}

/// Tells systemd a unit file changed, when `path` is one and systemd runs here; what it did,
/// as a note for the command's result.
fn reload_systemd(path: &Path) -> String {
    let is_unit = persistence_shape(&path.to_string_lossy()) == Some(PersistenceShape::OwnFile)
        && path.to_string_lossy().contains("/systemd/");
    if !is_unit || !Path::new("/run/systemd/system").exists() {
        return String::new();
    }
    match std::process::Command::new("systemctl")
        .arg("daemon-reload")
        .status()
    {
        Ok(s) if s.success() => "; systemd reloaded".into(),
        Ok(s) => format!("; systemctl daemon-reload failed ({s})"),
        Err(e) => format!("; systemctl daemon-reload could not run ({e})"),
    }
}
