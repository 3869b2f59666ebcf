//! What Rampart's own machine actions of automated investigations act on — a process to kill,
//! a persistence entry to take out (or put back), the entities to look at live on the device —
//! and what the device answers to that look. MDE has no such action types; they appear beside
//! MDE's in `/api/machineactions` with these targets in Rampart's `target` field.
//!
//! The targets are checked where a request is made ([`ActionTarget::check`]) and again where
//! the agent reads its command, so neither side acts on a malformed one.

use crate::investigation::{PersistenceShape, persistence_shape};
use crate::{ErrorCode, Rejection};
use serde::{Deserialize, Serialize};

/// Longest path a target names.
pub const MAX_PATH_LEN: usize = 1024;
/// Most entries one persistence target names, and the longest each may be.
pub const MAX_ENTRIES: usize = 16;
pub const MAX_ENTRY_LEN: usize = 8192;
/// Shortest entry: a shorter text would match lines it was never meant to.
pub const MIN_ENTRY_LEN: usize = 8;
/// Most processes, and most files, one live look covers.
pub const MAX_PROBED: usize = 64;

/// A running process to stop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessTarget {
    pub pid: u32,
    /// The image the process must be running: a process id reused by another program since
    /// the evidence was gathered is left alone.
    pub image_path: String,
}

/// A persistence entry: lines of a shared file (a crontab, `authorized_keys`, a shell rc
/// file), or a file that is an entry on its own (a cron.d file, a systemd unit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersistenceTarget {
    /// The file that holds the entry.
    pub path: String,
    /// The lines to take out are those holding any of these texts (a public key, a cron
    /// line); empty when the whole file is the entry.
    #[serde(default)]
    pub entries: Vec<String>,
}

/// A file to look for, with the content it had when the evidence was gathered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileProbe {
    pub path: String,
    #[serde(default)]
    pub sha1: Option<String>,
}

/// What an investigation asks the device about: are these processes still running, are these
/// files still there (and unchanged)?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvidenceRequest {
    /// The investigation that asks: each investigation has its own look.
    pub investigation_id: String,
    #[serde(default)]
    pub processes: Vec<ProcessTarget>,
    #[serde(default)]
    pub files: Vec<FileProbe>,
}

/// What one of Rampart's own actions acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ActionTarget {
    Process(ProcessTarget),
    Persistence(PersistenceTarget),
    Evidence(EvidenceRequest),
}

/// The answer to a live look, in the order asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveEvidence {
    #[serde(default)]
    pub processes: Vec<ProcessState>,
    #[serde(default)]
    pub files: Vec<FileState>,
}

impl LiveEvidence {
    /// What the device showed, in a line.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} processes running, {} of {} files present",
            self.processes.iter().filter(|p| p.running).count(),
            self.processes.len(),
            self.files.iter().filter(|f| f.exists).count(),
            self.files.len()
        )
    }
}

/// Whether a process asked about is running, with the image it asked about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessState {
    pub pid: u32,
    /// False when no process has the id, or the one that has it runs another image.
    pub running: bool,
}

/// Whether a file asked about is there, and what it holds now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileState {
    pub path: String,
    pub exists: bool,
    /// Its SHA-1 now (when it exists and was not too large to hash).
    #[serde(default)]
    pub sha1: Option<String>,
}

fn invalid(message: String) -> Rejection {
    Rejection::new(ErrorCode::InvalidInput, message)
}

/// An absolute path without `..`, NUL or newline, of at most [`MAX_PATH_LEN`] bytes.
pub fn check_path(what: &str, path: &str) -> Result<(), Rejection> {
    let ok = path.starts_with('/')
        && path.len() <= MAX_PATH_LEN
        && !path.contains(['\0', '\n'])
        && !path.split('/').any(|c| c == "..");
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} must be an absolute path of at most {MAX_PATH_LEN} bytes, without '..'; got '{}'",
            path.chars().take(80).collect::<String>()
        )))
    }
}

/// A process id a kill may name: 0 would signal the agent's own process group and 1 is init.
pub fn check_pid(pid: u32) -> Result<(), Rejection> {
    if pid <= 1 {
        return Err(invalid(format!("pid must be greater than 1; got {pid}")));
    }
    Ok(())
}

impl ProcessTarget {
    pub fn check(&self) -> Result<(), Rejection> {
        check_pid(self.pid)?;
        check_path("imagePath", &self.image_path)
    }
}

impl PersistenceTarget {
    /// A known persistence location; entries of sensible length, and none only where the
    /// whole file is the entry (taking a whole crontab or `authorized_keys` out would take
    /// the owner's own entries with it).
    pub fn check(&self) -> Result<(), Rejection> {
        check_path("path", &self.path)?;
        let Some(shape) = persistence_shape(&self.path) else {
            return Err(invalid(format!(
                "'{}' is not a persistence location (cron, systemd unit, authorized_keys, start-up script)",
                self.path.chars().take(80).collect::<String>()
            )));
        };
        if self.entries.len() > MAX_ENTRIES {
            return Err(invalid(format!(
                "at most {MAX_ENTRIES} entries; got {}",
                self.entries.len()
            )));
        }
        if let Some(e) = self.entries.iter().find(|e| {
            let t = e.trim();
            t.len() < MIN_ENTRY_LEN || t.len() > MAX_ENTRY_LEN || t.contains(['\n', '\0'])
        }) {
            return Err(invalid(format!(
                "each entry is one line of {MIN_ENTRY_LEN} to {MAX_ENTRY_LEN} bytes; got '{}'",
                e.chars().take(80).collect::<String>()
            )));
        }
        if self.entries.is_empty() && shape == PersistenceShape::Lines {
            return Err(invalid(format!(
                "'{}' holds other entries too: name the entries to take out",
                self.path.chars().take(80).collect::<String>()
            )));
        }
        Ok(())
    }
}

impl EvidenceRequest {
    pub fn check(&self) -> Result<(), Rejection> {
        if self.investigation_id.is_empty() || self.investigation_id.len() > 64 {
            return Err(invalid("investigationId must be 1 to 64 characters".into()));
        }
        if self.processes.len() > MAX_PROBED || self.files.len() > MAX_PROBED {
            return Err(invalid(format!(
                "a live look covers at most {MAX_PROBED} processes and {MAX_PROBED} files"
            )));
        }
        if self.processes.is_empty() && self.files.is_empty() {
            return Err(invalid("a live look names a process or a file".into()));
        }
        for p in &self.processes {
            p.check()?;
        }
        for f in &self.files {
            check_path("path", &f.path)?;
            if let Some(h) = &f.sha1
                && (h.len() != 40 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(invalid(format!(
                    "sha1 must be 40 hexadecimal characters; got '{}'",
                    h.chars().take(80).collect::<String>()
                )));
            }
        }
        Ok(())
    }

    /// Whether `evidence` answers this request: one state per process and file asked about,
    /// in order.
    pub fn answered_by(&self, evidence: &LiveEvidence) -> Result<(), Rejection> {
        let processes = evidence
            .processes
            .iter()
            .map(|p| p.pid)
            .eq(self.processes.iter().map(|p| p.pid));
        let files = evidence
            .files
            .iter()
            .map(|f| f.path.as_str())
            .eq(self.files.iter().map(|f| f.path.as_str()));
        if processes && files {
            Ok(())
        } else {
            Err(invalid(
                "the live evidence must answer each process and file asked about, in order".into(),
            ))
        }
    }
}

impl ActionTarget {
    pub fn check(&self) -> Result<(), Rejection> {
        match self {
            ActionTarget::Process(p) => p.check(),
            ActionTarget::Persistence(p) => p.check(),
            ActionTarget::Evidence(e) => e.check(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked() {
        let p = |pid, image: &str| ProcessTarget {
            pid,
            image_path: image.into(),
        };
        assert!(p(4242, "/tmp/implant").check().is_ok());
        assert!(p(1, "/sbin/init").check().is_err());
        assert!(p(4242, "implant").check().is_err());
        assert!(p(4242, "/tmp/../bin/x").check().is_err());

        let t = |path: &str, entries: &[&str]| PersistenceTarget {
            path: path.into(),
            entries: entries.iter().map(|e| e.to_string()).collect(),
        };
        // A unit is an entry of its own; authorized_keys holds the owner's keys too.
        assert!(t("/etc/systemd/system/x.service", &[]).check().is_ok());
        assert!(t("/root/.ssh/authorized_keys", &[]).check().is_err());
        assert!(
            t(
                "/root/.ssh/authorized_keys",
                &["AAAAC3NzaC1lZDI1NTE5AAAAIGx"]
            )
            .check()
            .is_ok()
        );
        assert!(t("/root/.ssh/authorized_keys", &["ssh"]).check().is_err());
        assert!(
            t("/root/.ssh/authorized_keys", &["a\nbcdefghij"])
                .check()
                .is_err()
        );
        // Not a persistence location: the agent must not be told to edit any file.
        assert!(t("/etc/passwd", &["root:x:0:0"]).check().is_err());

        let mut e = EvidenceRequest {
            investigation_id: "7".into(),
            processes: vec![p(4242, "/tmp/implant")],
            files: vec![FileProbe {
                path: "/tmp/implant".into(),
                sha1: Some("a".repeat(40)),
            }],
        };
        assert!(e.check().is_ok());
        let answer = LiveEvidence {
            processes: vec![ProcessState {
                pid: 4242,
                running: true,
            }],
            files: vec![FileState {
                path: "/tmp/implant".into(),
                exists: false,
                sha1: None,
            }],
        };
        assert!(e.answered_by(&answer).is_ok());
        assert!(e.answered_by(&LiveEvidence::default()).is_err());
        e.files[0].sha1 = Some("xyz".into());
        assert!(e.check().is_err());
    }

    #[test]
    fn targets_keep_their_json_shape() {
        let t = ActionTarget::Process(ProcessTarget {
            pid: 7,
            image_path: "/tmp/x".into(),
        });
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"process": {"pid": 7, "imagePath": "/tmp/x"}})
        );
        assert_eq!(serde_json::from_value::<ActionTarget>(v).unwrap(), t);
    }
}
