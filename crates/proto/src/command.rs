//! The command channel: what the server pushes to an agent ([`Command`]) and the progress the
//! agent reports for it ([`CommandUpdate`]), which drives the machine action's status.
//!
//! A command's `kind` is `{"type": "<Kind>", …parameters}`. A kind this agent does not know
//! (a newer server) or a known kind with bad parameters still deserialises — into
//! [`CommandKind::Unknown`] or [`CommandKind::Invalid`] — so that the agent can answer it with
//! a `Failed` update and a reason instead of dropping the whole message or crashing.

use rampart_core::action_target::check_pid;
pub use rampart_core::action_target::{
    EvidenceRequest, FileProbe, FileState, LiveEvidence, PersistenceTarget, ProcessState,
    ProcessTarget,
};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A command for one device, from one machine action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    /// Unique per command: the agent executes a command id at most once, even when it is
    /// delivered twice.
    pub id: String,
    /// The machine action (MDE `MachineAction.id`) the command carries out.
    pub machine_action_id: String,
    pub kind: CommandKind,
}

/// MDE's isolation types an agent can apply (`UnManagedDevice` is not the agent's to do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsolationType {
    /// Everything dropped except loopback and the Rampart server.
    Full,
    /// As Full, plus a configured allow-list.
    Selective,
}

impl IsolationType {
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationType::Full => "Full",
            IsolationType::Selective => "Selective",
        }
    }
}

/// MDE's antivirus scan types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScanType {
    Quick,
    Full,
}

impl ScanType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanType::Quick => "Quick",
            ScanType::Full => "Full",
        }
    }
}

/// What a command asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandKind {
    Isolate {
        isolation_type: IsolationType,
    },
    Unisolate,
    RunAntiVirusScan {
        scan_type: ScanType,
    },
    /// `sha1`: 40 hex characters, checked when deserialised.
    StopAndQuarantineFile {
        sha1: String,
    },
    /// Rampart's own: puts the files quarantined under `sha1` back where they were.
    RestoreQuarantinedFile {
        sha1: String,
    },
    CollectInvestigationPackage,
    RestrictCodeExecution,
    UnrestrictCodeExecution,
    /// Stops process `pid` — when `image_path` is given, only while the process still runs
    /// that image (a pid reused since is left alone).
    KillProcess {
        pid: u32,
        image_path: Option<String>,
    },
    /// Takes a persistence entry out: the lines of `path` holding any of `entries`, or the
    /// whole file when it is an entry on its own; what is taken out is kept to be put back.
    RemovePersistence(PersistenceTarget),
    /// Puts back what a `RemovePersistence` of the same target took out.
    RestorePersistence(PersistenceTarget),
    /// Looks at processes and files live and answers with [`CommandUpdate::evidence`].
    CollectLiveEvidence(EvidenceRequest),
    Offboard,
    /// A live response session: its commands, run in order; the first that fails ends it.
    LiveResponse {
        commands: Vec<LiveCommand>,
    },
    /// A kind this agent does not know; `kind` is the `type` it was sent as.
    Unknown {
        kind: String,
    },
    /// A known kind whose parameters are missing or wrong.
    Invalid {
        kind: String,
        reason: String,
    },
}

impl CommandKind {
    /// The wire name of the kind (`type`).
    pub fn name(&self) -> &str {
        match self {
            CommandKind::Isolate { .. } => "Isolate",
            CommandKind::Unisolate => "Unisolate",
            CommandKind::RunAntiVirusScan { .. } => "RunAntiVirusScan",
            CommandKind::StopAndQuarantineFile { .. } => "StopAndQuarantineFile",
            CommandKind::RestoreQuarantinedFile { .. } => "RestoreQuarantinedFile",
            CommandKind::CollectInvestigationPackage => "CollectInvestigationPackage",
            CommandKind::RestrictCodeExecution => "RestrictCodeExecution",
            CommandKind::UnrestrictCodeExecution => "UnrestrictCodeExecution",
            CommandKind::KillProcess { .. } => "KillProcess",
            CommandKind::RemovePersistence(_) => "RemovePersistence",
            CommandKind::RestorePersistence(_) => "RestorePersistence",
            CommandKind::CollectLiveEvidence(_) => "CollectLiveEvidence",
            CommandKind::Offboard => "Offboard",
            CommandKind::LiveResponse { .. } => "LiveResponse",
            CommandKind::Unknown { kind } | CommandKind::Invalid { kind, .. } => kind,
        }
    }

    /// Why the agent must refuse this command without trying it: `Some` for unknown kinds and
    /// bad parameters, `None` for a command it can attempt.
    pub fn rejection_reason(&self) -> Option<String> {
        match self {
            CommandKind::Unknown { kind } => Some(format!(
                "unknown command type '{}'; this agent does not support it",
                shorten(kind)
            )),
            CommandKind::Invalid { kind, reason } => Some(format!(
                "invalid parameters for command '{}': {reason}",
                shorten(kind)
            )),
            _ => None,
        }
    }
}

/// A name from the wire, cut so that a hostile one cannot bloat a reason.
fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The parameters of each known kind, as they appear next to `type`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IsolateParams {
    isolation_type: IsolationType,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScanParams {
    scan_type: ScanType,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QuarantineParams {
    sha1: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KillParams {
    pid: u32,
    #[serde(default)]
    image_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveResponseParams {
    commands: Vec<LiveCommand>,
}

/// Most commands one live response session carries (MDE's limit is 20).
pub const MAX_LIVE_COMMANDS: usize = 20;

/// One command of a live response session. Library files are named by the SHA-256 of their
/// content when the server handed the session out: the agent fetches exactly those bytes and
/// checks them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum LiveCommand {
    /// Puts a library file into the agent's live response downloads directory.
    PutFile { file_name: String, sha256: String },
    /// Runs a library script there, with `args` split as a shell would (no expansion).
    RunScript {
        script_name: String,
        sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        args: Option<String>,
    },
    /// Uploads the file at `path` (absolute).
    GetFile { path: String },
}

impl LiveCommand {
    /// Whether the command leaves a result for the server (a transcript, a file).
    pub fn has_result(&self) -> bool {
        !matches!(self, LiveCommand::PutFile { .. })
    }

    /// Why the command cannot be run as sent, if it cannot.
    fn problem(&self) -> Option<String> {
        let plain = |what: &str, name: &str| {
            (name.is_empty()
                || name.len() > 255
                || name.contains(['/', '\\', '\0'])
                || name == "."
                || name == "..")
                .then(|| format!("{what} must be a plain file name"))
        };
        let sha = |sha256: &str| {
            (sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| "sha256 must be 64 hexadecimal characters".to_owned())
        };
        match self {
            LiveCommand::PutFile { file_name, sha256 } => {
                plain("fileName", file_name).or_else(|| sha(sha256))
            }
            LiveCommand::RunScript {
                script_name,
                sha256,
                ..
            } => plain("scriptName", script_name).or_else(|| sha(sha256)),
            LiveCommand::GetFile { path } => (!path.starts_with('/') || path.contains('\0'))
                .then(|| "path must be an absolute path".to_owned()),
        }
    }
}

fn live_response_params(kind: &str, rest: Map<String, Value>) -> Result<CommandKind, CommandKind> {
    let p = params::<LiveResponseParams>(kind, rest)?;
    let invalid = |reason: String| CommandKind::Invalid {
        kind: kind.to_owned(),
        reason,
    };
    if p.commands.is_empty() || p.commands.len() > MAX_LIVE_COMMANDS {
        return Err(invalid(format!(
            "a live response session has 1 to {MAX_LIVE_COMMANDS} commands, got {}",
            p.commands.len()
        )));
    }
    for (i, c) in p.commands.iter().enumerate() {
        if let Some(problem) = c.problem() {
            return Err(invalid(format!("command {i}: {problem}")));
        }
    }
    Ok(CommandKind::LiveResponse {
        commands: p.commands,
    })
}

fn invalid(kind: &str, r: rampart_core::Rejection) -> CommandKind {
    CommandKind::Invalid {
        kind: kind.to_owned(),
        reason: r.message,
    }
}

fn params<T: for<'de> Deserialize<'de>>(
    kind: &str,
    rest: Map<String, Value>,
) -> Result<T, CommandKind> {
    serde_json::from_value(Value::Object(rest)).map_err(|e| CommandKind::Invalid {
        kind: kind.to_owned(),
        reason: e.to_string(),
    })
}

/// The SHA-1 of a quarantine command, lower-cased.
fn quarantine_params(kind: &str, rest: Map<String, Value>) -> Result<String, CommandKind> {
    let p = params::<QuarantineParams>(kind, rest)?;
    if p.sha1.len() == 40 && p.sha1.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(p.sha1.to_ascii_lowercase())
    } else {
        Err(CommandKind::Invalid {
            kind: kind.to_owned(),
            reason: "sha1 must be 40 hexadecimal characters".into(),
        })
    }
}

impl CommandKind {
    /// The kind described by a `{"type", …}` object; never fails for a well-formed object.
    fn from_object(mut obj: Map<String, Value>) -> Result<CommandKind, String> {
        let kind = match obj.remove("type") {
            Some(Value::String(s)) => s,
            Some(_) => return Err("command kind: 'type' must be a string".into()),
            None => return Err("command kind: 'type' is missing".into()),
        };
        let parsed = match kind.as_str() {
            "Isolate" => params::<IsolateParams>(&kind, obj).map(|p| CommandKind::Isolate {
                isolation_type: p.isolation_type,
            }),
            "Unisolate" => params::<NoParams>(&kind, obj).map(|_| CommandKind::Unisolate),
            "RunAntiVirusScan" => {
                params::<ScanParams>(&kind, obj).map(|p| CommandKind::RunAntiVirusScan {
                    scan_type: p.scan_type,
                })
            }
            "StopAndQuarantineFile" => quarantine_params(&kind, obj)
                .map(|sha1| CommandKind::StopAndQuarantineFile { sha1 }),
            "RestoreQuarantinedFile" => quarantine_params(&kind, obj)
                .map(|sha1| CommandKind::RestoreQuarantinedFile { sha1 }),
            "CollectInvestigationPackage" => {
                params::<NoParams>(&kind, obj).map(|_| CommandKind::CollectInvestigationPackage)
            }
            "RestrictCodeExecution" => {
                params::<NoParams>(&kind, obj).map(|_| CommandKind::RestrictCodeExecution)
            }
            "UnrestrictCodeExecution" => {
                params::<NoParams>(&kind, obj).map(|_| CommandKind::UnrestrictCodeExecution)
            }
            "KillProcess" => params::<KillParams>(&kind, obj).and_then(|p| {
                let checked = match &p.image_path {
                    Some(image_path) => ProcessTarget {
                        pid: p.pid,
                        image_path: image_path.clone(),
                    }
                    .check(),
                    None => check_pid(p.pid),
                };
                match checked {
                    Ok(()) => Ok(CommandKind::KillProcess {
                        pid: p.pid,
                        image_path: p.image_path,
                    }),
                    Err(r) => Err(invalid(&kind, r)),
                }
            }),
            "RemovePersistence" | "RestorePersistence" => params::<PersistenceTarget>(&kind, obj)
                .and_then(|t| t.check().map(|()| t).map_err(|r| invalid(&kind, r)))
                .map(|t| {
                    if kind == "RemovePersistence" {
                        CommandKind::RemovePersistence(t)
                    } else {
                        CommandKind::RestorePersistence(t)
                    }
                }),
            "CollectLiveEvidence" => params::<EvidenceRequest>(&kind, obj)
                .and_then(|e| e.check().map(|()| e).map_err(|r| invalid(&kind, r)))
                .map(CommandKind::CollectLiveEvidence),
            "Offboard" => params::<NoParams>(&kind, obj).map(|_| CommandKind::Offboard),
            "LiveResponse" => live_response_params(&kind, obj),
            _ => Ok(CommandKind::Unknown { kind }),
        };
        Ok(parsed.unwrap_or_else(|invalid| invalid))
    }

    fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.name().to_owned()));
        match self {
            CommandKind::Isolate { isolation_type } => {
                m.insert(
                    "isolationType".into(),
                    Value::String(isolation_type.as_str().into()),
                );
            }
            CommandKind::RunAntiVirusScan { scan_type } => {
                m.insert("scanType".into(), Value::String(scan_type.as_str().into()));
            }
            CommandKind::StopAndQuarantineFile { sha1 }
            | CommandKind::RestoreQuarantinedFile { sha1 } => {
                m.insert("sha1".into(), Value::String(sha1.clone()));
            }
            CommandKind::KillProcess { pid, image_path } => {
                m.insert("pid".into(), Value::from(*pid));
                if let Some(p) = image_path {
                    m.insert("imagePath".into(), Value::String(p.clone()));
                }
            }
            CommandKind::RemovePersistence(t) | CommandKind::RestorePersistence(t) => {
                if let Ok(Value::Object(o)) = serde_json::to_value(t) {
                    m.extend(o);
                }
            }
            CommandKind::CollectLiveEvidence(e) => {
                if let Ok(Value::Object(o)) = serde_json::to_value(e) {
                    m.extend(o);
                }
            }
            CommandKind::LiveResponse { commands } => {
                m.insert(
                    "commands".into(),
                    serde_json::to_value(commands).unwrap_or(Value::Null),
                );
            }
            _ => {}
        }
        m
    }
}

impl Serialize for CommandKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_object().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CommandKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(obj) => CommandKind::from_object(obj).map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "command kind: expected an object with a 'type'",
            )),
        }
    }
}

/// The state a command reached on the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandState {
    InProgress,
    Succeeded,
    Failed,
}

/// Progress of a command, sent by the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandUpdate {
    pub command_id: String,
    pub state: CommandState,
    /// What happened, in words: the reason of a failure, or a note on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Live response: how each command that ran ended, in order (those after a failed one
    /// never ran and are not listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<LiveCommandOutcome>,
    /// `CollectLiveEvidence`: what the device shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<LiveEvidence>,
}

/// How one live response command ended on the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveCommandOutcome {
    pub index: u32,
    pub completed: bool,
    /// Milliseconds since the Unix epoch.
    pub started_ms: i64,
    pub ended_ms: i64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl CommandUpdate {
    /// The `Failed` answer to a command the agent refuses (see [`CommandKind::rejection_reason`]);
    /// `None` when the command can be attempted.
    pub fn rejection(command: &Command) -> Option<CommandUpdate> {
        command.kind.rejection_reason().map(|reason| CommandUpdate {
            command_id: command.id.clone(),
            state: CommandState::Failed,
            detail: Some(reason),
            commands: Vec::new(),
            evidence: None,
        })
    }
}

/// The body of a command poll (`POST /agent/v1/commands/poll`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    /// How long the server may hold the poll open when it has nothing to send (it caps it).
    #[serde(default)]
    pub wait_seconds: u32,
    /// The commands the agent holds: running, or finished with the result not yet delivered.
    /// The server sends again each running command the agent does not list (its answer was
    /// lost), and names among these the ones it no longer waits for.
    #[serde(default)]
    pub running: Vec<String>,
    /// The tenant's indicator generation the agent last heard of (from an earlier answer).
    /// When the tenant's moves on, the server answers at once with the new one, so the agent
    /// fetches the indicators it enforces now instead of at its next sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator_generation: Option<i64>,
}

/// The answer to a poll.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    /// Commands to carry out, in the order they were accepted.
    pub commands: Vec<Command>,
    /// Ids from `running` the server no longer waits for (cancelled, timed out, or unknown):
    /// the agent stops them if it can and forgets their results.
    #[serde(default)]
    pub cancelled: Vec<String>,
    /// The tenant's indicator generation as the server knows it (absent from servers older
    /// than the field, and before the server has read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator_generation: Option<i64>,
}

impl PollResponse {
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.cancelled.is_empty()
    }
}

/// The answer to a command update: the status the machine action is in now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateAck {
    pub command_id: String,
    /// The machine action's status (`InProgress`, `Succeeded`, `Failed`, …).
    pub status: String,
}

/// The answer to a live response result upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultAck {
    pub command_id: String,
    pub index: u32,
    /// Bytes stored.
    pub bytes: u64,
}

/// The answer to an investigation package upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageAck {
    pub command_id: String,
    /// Bytes stored.
    pub bytes: u64,
}
