//! The command journal: which commands this agent has started and the results it still owes
//! the server, kept on disk so that a command is carried out at most once even when the server
//! sends it again — after a lost answer, or after the agent restarted.
//!
//! An entry goes `Started` (written before the command runs) → `Finished` (its result, until
//! the server has it) → `Delivered`. A command found `Started` when the journal is opened was
//! cut off by a stop of the agent: it is not run again, unless running it twice changes nothing
//! (isolation and code-execution restriction converge on a state), and its result says so.

use crate::error::{Result, io_err, json_err};
use crate::fsutil::atomic_write;
use rampart_proto::command::{Command, CommandKind, CommandState, CommandUpdate};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Delivered entries kept at most (the oldest go first): enough to recognise any command the
/// server could still send again, which it does only while the action runs.
const KEEP_DELIVERED: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum EntryState {
    Started,
    Finished,
    Delivered,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    id: String,
    kind: CommandKind,
    state: EntryState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    update: Option<CommandUpdate>,
    /// Unix seconds of the last change.
    at: i64,
}

#[derive(Default, Serialize, Deserialize)]
struct JournalFile {
    entries: Vec<Entry>,
}

/// What to do with a command the server sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    /// New (or safe to run again): run it; it is recorded as started.
    Run,
    /// Already finished: send this result (again).
    Report(CommandUpdate),
    /// Running now, or its result was delivered: nothing to do.
    Ignore,
}

/// The journal of one state directory.
pub struct Journal {
    path: PathBuf,
    file: JournalFile,
}

/// Whether running `kind` twice leaves the host as running it once does.
fn converges(kind: &CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::Isolate { .. }
            | CommandKind::Unisolate
            | CommandKind::RestrictCodeExecution
            | CommandKind::UnrestrictCodeExecution
            // A look changes nothing; a kill checks the image again; a removal finds the
            // lines gone (its record, written first, still lets it be undone).
            | CommandKind::CollectLiveEvidence(_)
            | CommandKind::KillProcess {
                image_path: Some(_),
                ..
            }
            | CommandKind::RemovePersistence(_)
    )
}

impl Journal {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("commands.json")
    }

    /// Opens the journal of `state_dir` (empty when there is none). Commands left `Started` by
    /// an earlier run are settled here: a converging one is forgotten, so that the server's
    /// resend runs it again; any other is finished as failed.
    pub fn open(state_dir: &Path) -> Result<Journal> {
        let path = Journal::path(state_dir);
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(json_err(format!("reading {}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => JournalFile::default(),
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        let mut journal = Journal { path, file };
        let now = now();
        let before = journal.file.entries.len();
        journal
            .file
            .entries
            .retain(|e| e.state != EntryState::Started || !converges(&e.kind));
        let mut changed = journal.file.entries.len() != before;
        for e in &mut journal.file.entries {
            if e.state == EntryState::Started {
                e.state = EntryState::Finished;
                e.update = Some(CommandUpdate {
                    command_id: e.id.clone(),
                    state: CommandState::Failed,
                    detail: Some(
                        "the agent stopped while running this command; it was not run again".into(),
                    ),
                    commands: Vec::new(),
                    evidence: None,
                });
                e.at = now;
                changed = true;
            }
        }
        if changed {
            journal.save()?;
        }
        Ok(journal)
    }

    fn find(&mut self, id: &str) -> Option<&mut Entry> {
        self.file.entries.iter_mut().find(|e| e.id == id)
    }

    /// Decides what to do with `command`, recording it as started when it is to run.
    pub fn begin(&mut self, command: &Command) -> Result<Begin> {
        match self.find(&command.id) {
            Some(e) => match e.state {
                EntryState::Started | EntryState::Delivered => Ok(Begin::Ignore),
                EntryState::Finished => Ok(e.update.clone().map_or(Begin::Ignore, Begin::Report)),
            },
            None => {
                self.file.entries.push(Entry {
                    id: command.id.clone(),
                    kind: command.kind.clone(),
                    state: EntryState::Started,
                    update: None,
                    at: now(),
                });
                self.save()?;
                Ok(Begin::Run)
            }
        }
    }

    /// Records the result of a started command, to be delivered.
    pub fn finish(&mut self, update: &CommandUpdate) -> Result<()> {
        let now = now();
        match self.find(&update.command_id) {
            // Only a started command finishes: a cancelled one was marked delivered already,
            // and the server wants no result for it.
            Some(e) if e.state == EntryState::Started => {
                e.state = EntryState::Finished;
                e.update = Some(update.clone());
                e.at = now;
            }
            _ => return Ok(()),
        }
        self.save()
    }

    /// Records that the server has the result of `id` (or no longer wants it).
    pub fn delivered(&mut self, id: &str) -> Result<()> {
        let now = now();
        match self.find(id) {
            Some(e) if e.state != EntryState::Delivered => {
                e.state = EntryState::Delivered;
                e.update = None;
                e.at = now;
            }
            _ => return Ok(()),
        }
        self.prune();
        self.save()
    }

    /// The commands the agent holds: running, or finished with the result not delivered.
    pub fn held(&self) -> Vec<String> {
        self.file
            .entries
            .iter()
            .filter(|e| e.state != EntryState::Delivered)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Results not delivered yet, oldest first.
    pub fn owed(&self) -> Vec<CommandUpdate> {
        self.file
            .entries
            .iter()
            .filter(|e| e.state == EntryState::Finished)
            .filter_map(|e| e.update.clone())
            .collect()
    }

    fn prune(&mut self) {
        let delivered = self
            .file
            .entries
            .iter()
            .filter(|e| e.state == EntryState::Delivered)
            .count();
        let mut extra = delivered.saturating_sub(KEEP_DELIVERED);
        self.file.entries.retain(|e| {
            if extra > 0 && e.state == EntryState::Delivered {
                extra -= 1;
                false
            } else {
                true
            }
        });
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec(&self.file)
            .map_err(json_err(format!("writing {}", self.path.display())))?;
        atomic_write(&self.path, &bytes, 0o600)
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}
