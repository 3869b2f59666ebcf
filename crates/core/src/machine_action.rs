//! Machine actions (reference §2.3–2.5): the response actions a partner asks of a device —
//! isolate, restrict code execution, scan, collect, quarantine, offboard, live response — and the
//! rules that govern them.
//!
//! # The status machine
//!
//! `Pending → InProgress → Succeeded | Failed | TimeOut | Cancelled`, and from `Pending` also
//! `Cancelled` and `TimeOut`. [`ActionStatus::after`] is the whole transition table and
//! [`MachineAction::apply`] is the only code that changes an action's status (the field is
//! private): an illegal transition is refused there with a [`Rejection`], and nothing else can
//! move a status.
//!
//! # Lanes, duplicates and supersession
//!
//! Each request belongs to a [`Lane`] of its machine. Two kinds of lanes exist:
//!
//! * **State lanes** (isolation; code-execution restriction): the device ends in the state the
//!   *last accepted* request asks for. A request equal (type and scope) to the lane's newest open
//!   action returns that action; any other request cancels the lane's still-pending action (it is
//!   superseded, so it can never run after the newer request) and is queued behind the one the
//!   agent may be running. So a lane holds at most one `Pending` action, and `isolate, isolate,
//!   unisolate` can never leave a device isolated — MDE's duplicate-action bug (reference §12).
//!   Isolate `Full` while `Selective` is pending follows the same rule: the newer scope wins.
//! * **Task lanes** (scan, investigation package, quarantine of one file, offboard, live
//!   response): at most one open (pending or running) action. A duplicate (same type, scope and
//!   file) returns the open action; a scan of the other type is refused with MDE's 400 "Action is
//!   already in progress"; a second live response session is refused with MDE's 400
//!   `ActiveRequestAlreadyExists` (one session per device).
//!
//! The store enforces "at most one" with a unique index on [`MachineAction::queue_slot`], and
//! decides with [`admit`] under a per-machine lock.
//!
//! # OS support ([`check_supported`])
//!
//! | action | Linux (Rampart agent) | Windows | macOS | other |
//! |---|---|---|---|---|
//! | Isolate `Full` / Unisolate | yes | yes | no | no |
//! | Isolate `Selective` | yes (nftables allow-list) | yes (MDE: Win10 1709+) | no | no |
//! | Isolate `UnManagedDevice` | no: Rampart's machines are all managed | no | no | no |
//! | Restrict / unrestrict code execution | yes (fanotify) | yes | no | no |
//! | Run antivirus scan | yes | yes | yes | no |
//! | Collect investigation package | yes | yes | yes | no |
//! | Stop and quarantine file | yes | yes | no | no |
//! | Offboard | yes (Rampart's agent offboards itself) | yes | no (as MDE) | no |
//! | Live response | yes | yes | yes | no |
//!
//! MDE's per-version minimums on Windows are not checked (the OS build is not always reported).
//!
//! # Comments
//!
//! `Comment` is required on every action request and on cancel (MDE marks it required on each
//! action page, and refuses offboard without it); at most [`MAX_COMMENT_LEN`] characters.

use crate::action_target::{
    ActionTarget, EvidenceRequest, LiveEvidence, PersistenceTarget, ProcessTarget,
};
use crate::odata::{EntitySet, Field, FieldType};
use crate::{ErrorCode, Rejection};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

string_enum!(
    /// What an action does.
    ActionType {
        RunAntiVirusScan, Offboard, LiveResponse, CollectInvestigationPackage, Isolate, Unisolate,
        StopAndQuarantineFile, RestrictCodeExecution, UnrestrictCodeExecution,
        RestoreQuarantinedFile, KillProcess, RemovePersistence, RestorePersistence,
        CollectLiveEvidence
    }
);
string_enum!(
    /// Where an action is in its life.
    ActionStatus { Pending, InProgress, Succeeded, Failed, TimeOut, Cancelled }
);
string_enum!(
    /// `scope` of an action: the isolation type or the scan type.
    ActionScope { Full, Selective, Quick }
);
string_enum!(
    /// `IsolationType` of an isolate request.
    IsolationType { Full, Selective, UnManagedDevice }
);
string_enum!(
    /// `ScanType` of an antivirus scan request.
    ScanType { Quick, Full }
);
string_enum!(
    /// The live response commands (reference §2.5).
    CommandType { PutFile, RunScript, GetFile }
);
string_enum!(
    /// Status of one live response command.
    CommandStatus { Created, Completed, Failed }
);
string_enum!(
    /// `fileIdentifierType` of `relatedFileInfo`.
    FileIdentifierType { Sha1, Sha256, Md5 }
);

/// Longest `Comment` accepted.
pub const MAX_COMMENT_LEN: usize = 4000;
/// Longest `ExternalID` accepted.
pub const MAX_EXTERNAL_ID_LEN: usize = 256;
/// Most commands one live response request may carry.
pub const MAX_LIVE_RESPONSE_COMMANDS: usize = 20;
/// How long an action may wait (pending) or run (in progress, since its last update) before it
/// times out, unless configured otherwise: MDE's live response queue keeps sessions 3 days.
pub const DEFAULT_TIMEOUT: time::Duration = time::Duration::days(3);
/// `errorHResult` of a failure the agent gives no code for (`E_FAIL`).
pub const E_FAIL: i32 = 0x8000_4005_u32 as i32;

/// The action transitions: the events that move an action's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The agent takes a pending action.
    Claim,
    /// The agent reports success.
    Succeed,
    /// The agent reports failure.
    Fail,
    /// The deadline passed.
    Expire,
    /// A caller cancelled it, or a newer request superseded it.
    Cancel,
}

impl Transition {
    pub const ALL: &'static [Transition] = &[
        Transition::Claim,
        Transition::Succeed,
        Transition::Fail,
        Transition::Expire,
        Transition::Cancel,
    ];
}

impl ActionStatus {
    pub const ALL: &'static [ActionStatus] = &[
        ActionStatus::Pending,
        ActionStatus::InProgress,
        ActionStatus::Succeeded,
        ActionStatus::Failed,
        ActionStatus::TimeOut,
        ActionStatus::Cancelled,
    ];

    /// The transition table: the status after `t`, or `None` when `t` is illegal here.
    pub fn after(self, t: Transition) -> Option<ActionStatus> {
        use ActionStatus::*;
        match (self, t) {
            (Pending, Transition::Claim) => Some(InProgress),
            (InProgress, Transition::Succeed) => Some(Succeeded),
            (InProgress, Transition::Fail) => Some(Failed),
            (Pending | InProgress, Transition::Expire) => Some(TimeOut),
            (Pending | InProgress, Transition::Cancel) => Some(Cancelled),
            _ => None,
        }
    }

    /// Whether the action is over (no transition leaves this status).
    pub fn is_final(self) -> bool {
        !self.is_open()
    }

    /// Pending or in progress.
    pub fn is_open(self) -> bool {
        matches!(self, ActionStatus::Pending | ActionStatus::InProgress)
    }
}

/// `relatedFileInfo` of an action about a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedFileInfo {
    pub file_identifier: String,
    pub file_identifier_type: FileIdentifierType,
}

/// One `{key, value}` parameter of a live response command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandParam {
    pub key: String,
    pub value: String,
}

/// A validated live response command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LiveResponseCommand {
    #[serde(rename = "type")]
    pub command_type: CommandType,
    pub params: Vec<CommandParam>,
}

impl LiveResponseCommand {
    /// The value of a parameter (keys are canonical after validation).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// Whether the command leaves a result to download (a script transcript, a file).
    pub fn has_result(&self) -> bool {
        matches!(
            self.command_type,
            CommandType::RunScript | CommandType::GetFile
        )
    }
}

/// One command of a live response action with its progress, as MDE lists them in `commands`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandEntry {
    pub index: u32,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start_time: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end_time: Option<OffsetDateTime>,
    pub command_status: CommandStatus,
    #[serde(default)]
    pub errors: Vec<String>,
    pub command: LiveResponseCommand,
}

/// A live response command as a request carries it, before validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInput {
    #[serde(rename = "type")]
    pub command_type: String,
    #[serde(default)]
    pub params: Vec<CommandParam>,
}

fn invalid(message: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::InvalidInput, message)
}

fn missing(message: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::MissingRequiredParameter, message)
}

/// An absolute path on the device: `/…` (Linux, macOS) or `C:\…` / `\\server\…` (Windows).
fn check_device_path(v: &str) -> Result<(), Rejection> {
    let b = v.as_bytes();
    let absolute = v.starts_with('/')
        || v.starts_with("\\\\")
        || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\');
    if !absolute || v.len() > 4096 || v.contains('\0') {
        return Err(invalid(format!(
            "Path must be an absolute path on the device (at most 4096 bytes); got '{}'",
            v.chars().take(60).collect::<String>()
        )));
    }
    Ok(())
}

/// Validates live response commands (reference §2.5): known types, the parameters each type
/// takes (keys matched case-insensitively and returned in MDE's spelling), and the order
/// `PutFile → RunScript → GetFile` — each type may repeat, but never after a later type.
pub fn parse_commands(input: &[CommandInput]) -> Result<Vec<LiveResponseCommand>, Rejection> {
    if input.is_empty() {
        return Err(missing("Commands must hold at least one command."));
    }
    if input.len() > MAX_LIVE_RESPONSE_COMMANDS {
        return Err(Rejection::new(
            ErrorCode::MaximumBatchSizeExceeded,
            format!(
                "Received: {} commands, allowed: {MAX_LIVE_RESPONSE_COMMANDS}",
                input.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut last: Option<CommandType> = None;
    for (i, c) in input.iter().enumerate() {
        let command_type: CommandType = c.command_type.parse().map_err(|e| {
            Rejection::new(
                ErrorCode::InvalidRequestBody,
                format!("Field 'Commands[{i}].type' is not valid: {e}"),
            )
        })?;
        if let Some(prev) = last
            && phase(command_type) < phase(prev)
        {
            return Err(invalid(format!(
                "Commands must be ordered PutFile, then RunScript, then GetFile: command {i} ({}) follows a {}.",
                command_type.as_str(),
                prev.as_str()
            )));
        }
        last = Some(command_type);
        let (required, optional): (&str, &[&str]) = match command_type {
            CommandType::PutFile => ("FileName", &[]),
            CommandType::RunScript => ("ScriptName", &["Args"]),
            CommandType::GetFile => ("Path", &[]),
        };
        let mut params: Vec<CommandParam> = Vec::new();
        for p in &c.params {
            let key = std::iter::once(required)
                .chain(optional.iter().copied())
                .find(|k| k.eq_ignore_ascii_case(p.key.trim()))
                .ok_or_else(|| {
                    invalid(format!(
                        "Command {i} ({}) takes no parameter '{}'; it takes {}.",
                        command_type.as_str(),
                        p.key.chars().take(40).collect::<String>(),
                        std::iter::once(required)
                            .chain(optional.iter().copied())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            if params.iter().any(|q| q.key == key) {
                return Err(invalid(format!(
                    "Command {i} ({}) names the parameter {key} twice.",
                    command_type.as_str()
                )));
            }
            if p.value.contains('\0') || p.value.len() > 4096 {
                return Err(invalid(format!(
                    "Command {i}: {key} must be at most 4096 bytes without NUL characters."
                )));
            }
            params.push(CommandParam {
                key: key.to_owned(),
                value: p.value.clone(),
            });
        }
        let value = params
            .iter()
            .find(|p| p.key == required)
            .map(|p| p.value.trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                missing(format!(
                    "Command {i} ({}) requires the parameter {required}.",
                    command_type.as_str()
                ))
            })?;
        match command_type {
            CommandType::PutFile => crate::library::check_file_name("FileName", value)?,
            CommandType::RunScript => crate::library::check_file_name("ScriptName", value)?,
            CommandType::GetFile => check_device_path(value)?,
        }
        out.push(LiveResponseCommand {
            command_type,
            params,
        });
    }
    Ok(out)
}

fn phase(t: CommandType) -> u8 {
    match t {
        CommandType::PutFile => 0,
        CommandType::RunScript => 1,
        CommandType::GetFile => 2,
    }
}

/// What a request asks of the device, with its type-specific arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RequestedAction {
    Isolate {
        isolation: IsolationType,
    },
    Unisolate,
    RestrictCodeExecution,
    UnrestrictCodeExecution,
    RunAntiVirusScan {
        scan: ScanType,
    },
    CollectInvestigationPackage,
    /// `sha1` is 40 lower-case hex characters.
    StopAndQuarantineFile {
        sha1: String,
    },
    /// Rampart's own: the undo of `StopAndQuarantineFile`. `sha1` as there.
    RestoreQuarantinedFile {
        sha1: String,
    },
    Offboard,
    LiveResponse {
        commands: Vec<LiveResponseCommand>,
    },
    /// Rampart's own, for automated investigations (see [`crate::action_target`]): stop a
    /// process (when it still runs the image it ran)…
    KillProcess(ProcessTarget),
    /// …take a persistence entry out, or put back one taken out…
    RemovePersistence(PersistenceTarget),
    RestorePersistence(PersistenceTarget),
    /// …and look at processes and files live.
    CollectLiveEvidence(EvidenceRequest),
}

impl RequestedAction {
    pub fn action_type(&self) -> ActionType {
        match self {
            RequestedAction::Isolate { .. } => ActionType::Isolate,
            RequestedAction::Unisolate => ActionType::Unisolate,
            RequestedAction::RestrictCodeExecution => ActionType::RestrictCodeExecution,
            RequestedAction::UnrestrictCodeExecution => ActionType::UnrestrictCodeExecution,
            RequestedAction::RunAntiVirusScan { .. } => ActionType::RunAntiVirusScan,
            RequestedAction::CollectInvestigationPackage => ActionType::CollectInvestigationPackage,
            RequestedAction::StopAndQuarantineFile { .. } => ActionType::StopAndQuarantineFile,
            RequestedAction::RestoreQuarantinedFile { .. } => ActionType::RestoreQuarantinedFile,
            RequestedAction::Offboard => ActionType::Offboard,
            RequestedAction::LiveResponse { .. } => ActionType::LiveResponse,
            RequestedAction::KillProcess(_) => ActionType::KillProcess,
            RequestedAction::RemovePersistence(_) => ActionType::RemovePersistence,
            RequestedAction::RestorePersistence(_) => ActionType::RestorePersistence,
            RequestedAction::CollectLiveEvidence(_) => ActionType::CollectLiveEvidence,
        }
    }

    /// What one of Rampart's own actions acts on.
    pub fn target(&self) -> Option<ActionTarget> {
        match self {
            RequestedAction::KillProcess(p) => Some(ActionTarget::Process(p.clone())),
            RequestedAction::RemovePersistence(p) | RequestedAction::RestorePersistence(p) => {
                Some(ActionTarget::Persistence(p.clone()))
            }
            RequestedAction::CollectLiveEvidence(e) => Some(ActionTarget::Evidence(e.clone())),
            _ => None,
        }
    }

    /// The `scope` the action will carry (`None` for `UnManagedDevice`, which is refused).
    pub fn scope(&self) -> Option<ActionScope> {
        match self {
            RequestedAction::Isolate {
                isolation: IsolationType::Full,
            } => Some(ActionScope::Full),
            RequestedAction::Isolate {
                isolation: IsolationType::Selective,
            } => Some(ActionScope::Selective),
            RequestedAction::RunAntiVirusScan {
                scan: ScanType::Quick,
            } => Some(ActionScope::Quick),
            RequestedAction::RunAntiVirusScan {
                scan: ScanType::Full,
            } => Some(ActionScope::Full),
            _ => None,
        }
    }

    fn sha1(&self) -> Option<&str> {
        match self {
            RequestedAction::StopAndQuarantineFile { sha1 }
            | RequestedAction::RestoreQuarantinedFile { sha1 } => Some(sha1),
            _ => None,
        }
    }
}

/// A quarantine request's `Sha1`, trimmed and lower-cased; `InvalidHashValue` unless it is
/// 40 hexadecimal characters.
fn check_sha1(sha1: &str) -> Result<String, Rejection> {
    let s = sha1.trim();
    if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Rejection::new(
            ErrorCode::InvalidHashValue,
            format!(
                "Sha1 must be 40 hexadecimal characters; got '{}'",
                s.chars().take(80).collect::<String>()
            ),
        ));
    }
    Ok(s.to_ascii_lowercase())
}

/// A request for an action on one machine, as a caller sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRequest {
    pub action: RequestedAction,
    pub comment: String,
    pub external_id: Option<String>,
}

impl ActionRequest {
    /// Checks the parts every request has: a comment (required), an external id (optional),
    /// and a well-formed file hash for quarantine. Trims the comment.
    pub fn new(
        action: RequestedAction,
        comment: Option<String>,
        external_id: Option<String>,
    ) -> Result<ActionRequest, Rejection> {
        let comment = check_comment(comment)?;
        if let Some(e) = &external_id
            && e.chars().count() > MAX_EXTERNAL_ID_LEN
        {
            return Err(invalid(format!(
                "ExternalID is at most {MAX_EXTERNAL_ID_LEN} characters."
            )));
        }
        let action = match action {
            RequestedAction::StopAndQuarantineFile { sha1 } => {
                RequestedAction::StopAndQuarantineFile {
                    sha1: check_sha1(&sha1)?,
                }
            }
            RequestedAction::RestoreQuarantinedFile { sha1 } => {
                RequestedAction::RestoreQuarantinedFile {
                    sha1: check_sha1(&sha1)?,
                }
            }
            RequestedAction::Isolate {
                isolation: IsolationType::UnManagedDevice,
            } => {
                return Err(invalid(
                    "IsolationType UnManagedDevice contains devices that are not onboarded; every Rampart machine runs the agent, so use Full or Selective.",
                ));
            }
            other => {
                if let Some(t) = other.target() {
                    t.check()?;
                }
                other
            }
        };
        Ok(ActionRequest {
            action,
            comment,
            external_id: external_id.filter(|e| !e.is_empty()),
        })
    }

    pub fn lane(&self) -> Lane {
        Lane::of(
            self.action.action_type(),
            self.action.sha1(),
            self.action.target().as_ref(),
        )
    }
}

/// Checks a required `Comment` (of a request or a cancellation) and trims it.
pub fn check_comment(comment: Option<String>) -> Result<String, Rejection> {
    let c = comment.as_deref().map(str::trim).unwrap_or("");
    if c.is_empty() {
        return Err(missing(
            "Comment is required (request body keys are case-sensitive: \"Comment\").",
        ));
    }
    if c.chars().count() > MAX_COMMENT_LEN {
        return Err(invalid(format!(
            "Comment is at most {MAX_COMMENT_LEN} characters."
        )));
    }
    Ok(c.to_owned())
}

/// The queue of a machine an action waits in; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    Isolation,
    CodeExecution,
    Scan,
    InvestigationPackage,
    /// Quarantine of the file with this SHA-1.
    Quarantine(String),
    Offboard,
    LiveResponse,
    /// Killing the process with this id.
    Process(u32),
    /// Removing or restoring entries of the persistence file at this path.
    Persistence(String),
    /// The live look of the investigation with this id.
    Evidence(String),
}

impl Lane {
    pub fn of(t: ActionType, sha1: Option<&str>, target: Option<&ActionTarget>) -> Lane {
        match t {
            ActionType::Isolate | ActionType::Unisolate => Lane::Isolation,
            ActionType::RestrictCodeExecution | ActionType::UnrestrictCodeExecution => {
                Lane::CodeExecution
            }
            ActionType::RunAntiVirusScan => Lane::Scan,
            ActionType::CollectInvestigationPackage => Lane::InvestigationPackage,
            // A restore waits for the quarantine of the same file, and the other way round.
            ActionType::StopAndQuarantineFile | ActionType::RestoreQuarantinedFile => {
                Lane::Quarantine(sha1.unwrap_or("").to_owned())
            }
            ActionType::Offboard => Lane::Offboard,
            ActionType::LiveResponse => Lane::LiveResponse,
            ActionType::KillProcess => match target {
                Some(ActionTarget::Process(p)) => Lane::Process(p.pid),
                _ => Lane::Process(0),
            },
            // A restore waits for the removal from the same file, and the other way round.
            ActionType::RemovePersistence | ActionType::RestorePersistence => match target {
                Some(ActionTarget::Persistence(p)) => Lane::Persistence(p.path.clone()),
                _ => Lane::Persistence(String::new()),
            },
            ActionType::CollectLiveEvidence => match target {
                Some(ActionTarget::Evidence(e)) => Lane::Evidence(e.investigation_id.clone()),
                _ => Lane::Evidence(String::new()),
            },
        }
    }

    /// State lanes keep one pending action and let a newer request supersede it; task lanes
    /// keep one open action.
    pub fn is_state_lane(&self) -> bool {
        matches!(self, Lane::Isolation | Lane::CodeExecution)
    }

    /// The lane's name in the store's uniqueness key.
    pub fn key(&self) -> String {
        match self {
            Lane::Isolation => "Isolation".into(),
            Lane::CodeExecution => "CodeExecution".into(),
            Lane::Scan => "Scan".into(),
            Lane::InvestigationPackage => "InvestigationPackage".into(),
            Lane::Quarantine(sha1) => format!("Quarantine:{sha1}"),
            Lane::Offboard => "Offboard".into(),
            Lane::LiveResponse => "LiveResponse".into(),
            Lane::Process(pid) => format!("Process:{pid}"),
            Lane::Persistence(path) => format!("Persistence:{path}"),
            Lane::Evidence(investigation) => format!("Evidence:{investigation}"),
        }
    }
}

/// The platform families of the OS support matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Linux,
    Windows,
    MacOs,
    Other,
}

impl Platform {
    /// Classifies a machine's `osPlatform` (`Linux`, `Ubuntu`, `Windows11`, `macOS`, …).
    pub fn of(os_platform: &str) -> Platform {
        let p = os_platform.trim().to_ascii_lowercase();
        const LINUXES: &[&str] = &[
            "linux",
            "ubuntu",
            "debian",
            "centos",
            "redhatenterpriselinux",
            "rhel",
            "fedora",
            "suselinux",
            "sles",
            "opensuse",
            "oraclelinux",
            "amazonlinux",
            "almalinux",
            "rockylinux",
        ];
        if LINUXES.contains(&p.as_str()) || p.contains("linux") {
            Platform::Linux
        } else if p.starts_with("windows") {
            Platform::Windows
        } else if p == "macos" || p == "mac os" || p == "osx" || p == "mac" {
            Platform::MacOs
        } else {
            Platform::Other
        }
    }
}

/// Whether `action` can run on a machine of `os_platform` (the matrix of the module
/// documentation); `OsPlatformNotSupported` otherwise.
pub fn check_supported(action: &RequestedAction, os_platform: &str) -> Result<(), Rejection> {
    use Platform::*;
    let platform = Platform::of(os_platform);
    let supported = match action {
        RequestedAction::Isolate { .. } | RequestedAction::Unisolate => {
            matches!(platform, Linux | Windows)
        }
        RequestedAction::RestrictCodeExecution | RequestedAction::UnrestrictCodeExecution => {
            matches!(platform, Linux | Windows)
        }
        RequestedAction::RunAntiVirusScan { .. }
        | RequestedAction::CollectInvestigationPackage
        | RequestedAction::LiveResponse { .. } => matches!(platform, Linux | Windows | MacOs),
        RequestedAction::StopAndQuarantineFile { .. }
        | RequestedAction::RestoreQuarantinedFile { .. } => matches!(platform, Linux | Windows),
        RequestedAction::Offboard => matches!(platform, Linux | Windows),
        // Rampart's own actions name Linux processes and persistence locations.
        RequestedAction::KillProcess(_)
        | RequestedAction::RemovePersistence(_)
        | RequestedAction::RestorePersistence(_)
        | RequestedAction::CollectLiveEvidence(_) => platform == Linux,
    };
    if supported {
        Ok(())
    } else {
        let what = match action.scope() {
            Some(s) => format!("{} ({})", action.action_type().as_str(), s.as_str()),
            None => action.action_type().as_str().to_owned(),
        };
        Err(Rejection::new(
            ErrorCode::OsPlatformNotSupported,
            format!(
                "{what} is not supported on OS platform '{}'.",
                os_platform.chars().take(60).collect::<String>()
            ),
        ))
    }
}

/// What the agent reports about one live response command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandOutcome {
    pub index: u32,
    /// `Completed` or `Failed`.
    pub status: CommandStatus,
    #[serde(with = "crate::timefmt::option", default)]
    pub start_time: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option", default)]
    pub end_time: Option<OffsetDateTime>,
    #[serde(default)]
    pub errors: Vec<String>,
    /// Where the command's result (script transcript, file) can be downloaded.
    #[serde(default)]
    pub result_uri: Option<String>,
}

/// How an action ended, as the agent reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionOutcome {
    Succeeded {
        /// The investigation package (required for `CollectInvestigationPackage`, refused
        /// for every other type).
        package_uri: Option<String>,
        /// What the device showed (required for `CollectLiveEvidence`, refused for every
        /// other type).
        live_evidence: Option<LiveEvidence>,
        /// Live response: one outcome per command, each `Completed`.
        commands: Vec<CommandOutcome>,
    },
    Failed {
        /// `errorHResult`; 0 is replaced by [`E_FAIL`].
        error_hresult: i32,
        /// Why, for the analyst (`troubleshootInfo`).
        message: String,
        /// Live response: the commands that ran; the first failing one aborted the rest.
        commands: Vec<CommandOutcome>,
    },
}

impl ActionOutcome {
    fn commands(&self) -> &[CommandOutcome] {
        match self {
            ActionOutcome::Succeeded { commands, .. } | ActionOutcome::Failed { commands, .. } => {
                commands
            }
        }
    }

    /// The package URI a successful collection reports.
    pub fn package_uri(&self) -> Option<&str> {
        match self {
            ActionOutcome::Succeeded { package_uri, .. } => package_uri.as_deref(),
            ActionOutcome::Failed { .. } => None,
        }
    }

    /// The download link of each command's result, by command index.
    pub fn result_links(&self, n_commands: usize) -> Vec<Option<String>> {
        let mut out = vec![None; n_commands];
        for c in self.commands() {
            if let Some(slot) = out.get_mut(c.index as usize) {
                slot.clone_from(&c.result_uri);
            }
        }
        out
    }
}

/// An event that moves an action; [`MachineAction::apply`] is the only way to apply one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionEvent {
    Claim,
    Complete(ActionOutcome),
    Expire,
    Cancel { requestor: String, comment: String },
}

impl ActionEvent {
    pub fn transition(&self) -> Transition {
        match self {
            ActionEvent::Claim => Transition::Claim,
            ActionEvent::Complete(ActionOutcome::Succeeded { .. }) => Transition::Succeed,
            ActionEvent::Complete(ActionOutcome::Failed { .. }) => Transition::Fail,
            ActionEvent::Expire => Transition::Expire,
            ActionEvent::Cancel { .. } => Transition::Cancel,
        }
    }

    /// The audit action name of the event.
    pub fn audit_name(&self) -> &'static str {
        match self.transition() {
            Transition::Claim => "Claim",
            Transition::Succeed => "Succeed",
            Transition::Fail => "Fail",
            Transition::Expire => "TimeOut",
            Transition::Cancel => "Cancel",
        }
    }
}

/// The MDE MachineAction entity (reference §2.3), field for field. The status and what moves
/// with it are private: only [`MachineAction::apply`] changes them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineAction {
    /// A GUID.
    pub id: String,
    #[serde(rename = "type")]
    pub action_type: ActionType,
    pub title: String,
    /// `Full`/`Selective` for isolation, `Quick`/`Full` for scans, else null.
    pub scope: Option<ActionScope>,
    /// The client id of the app that asked.
    pub requestor: String,
    pub requestor_comment: Option<String>,
    /// The display name of the app that asked.
    pub request_source: Option<String>,
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,
    status: ActionStatus,
    pub machine_id: String,
    pub computer_dns_name: Option<String>,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    creation_date_time_utc: OffsetDateTime,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    last_update_date_time_utc: OffsetDateTime,
    cancellation_requestor: Option<String>,
    cancellation_comment: Option<String>,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    cancellation_date_time_utc: Option<OffsetDateTime>,
    #[serde(rename = "errorHResult", default)]
    error_hresult: i32,
    /// Why a failed action failed, as the agent said (null otherwise).
    #[serde(default)]
    troubleshoot_info: Option<String>,
    pub related_file_info: Option<RelatedFileInfo>,
    /// Live response commands with their progress; empty for other types.
    #[serde(default)]
    commands: Vec<CommandEntry>,
    /// What one of Rampart's own actions acts on (Rampart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ActionTarget>,
    /// What the device showed a `CollectLiveEvidence` action (Rampart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    live_evidence: Option<LiveEvidence>,
}

impl MachineAction {
    /// A new pending action for `request` on a machine.
    pub fn new(
        request: &ActionRequest,
        machine_id: &str,
        computer_dns_name: Option<&str>,
        requestor: &str,
        request_source: Option<&str>,
        now: OffsetDateTime,
    ) -> MachineAction {
        let action_type = request.action.action_type();
        let scope = request.action.scope();
        let commands = match &request.action {
            RequestedAction::LiveResponse { commands } => commands
                .iter()
                .enumerate()
                .map(|(i, c)| CommandEntry {
                    index: i as u32,
                    start_time: None,
                    end_time: None,
                    command_status: CommandStatus::Created,
                    errors: Vec::new(),
                    command: c.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        MachineAction {
            id: uuid::Uuid::new_v4().to_string(),
            action_type,
            title: title(action_type, scope),
            scope,
            requestor: requestor.to_owned(),
            requestor_comment: Some(request.comment.clone()),
            request_source: request_source.map(str::to_owned),
            external_id: request.external_id.clone(),
            status: ActionStatus::Pending,
            machine_id: machine_id.to_owned(),
            computer_dns_name: computer_dns_name.map(str::to_owned),
            creation_date_time_utc: now,
            last_update_date_time_utc: now,
            cancellation_requestor: None,
            cancellation_comment: None,
            cancellation_date_time_utc: None,
            error_hresult: 0,
            troubleshoot_info: None,
            related_file_info: request.action.sha1().map(|s| RelatedFileInfo {
                file_identifier: s.to_owned(),
                file_identifier_type: FileIdentifierType::Sha1,
            }),
            commands,
            target: request.action.target(),
            live_evidence: None,
        }
    }

    pub fn status(&self) -> ActionStatus {
        self.status
    }
    pub fn creation_date_time_utc(&self) -> OffsetDateTime {
        self.creation_date_time_utc
    }
    pub fn last_update_date_time_utc(&self) -> OffsetDateTime {
        self.last_update_date_time_utc
    }
    pub fn cancellation_requestor(&self) -> Option<&str> {
        self.cancellation_requestor.as_deref()
    }
    pub fn cancellation_comment(&self) -> Option<&str> {
        self.cancellation_comment.as_deref()
    }
    pub fn cancellation_date_time_utc(&self) -> Option<OffsetDateTime> {
        self.cancellation_date_time_utc
    }
    pub fn error_hresult(&self) -> i32 {
        self.error_hresult
    }
    pub fn troubleshoot_info(&self) -> Option<&str> {
        self.troubleshoot_info.as_deref()
    }
    pub fn commands(&self) -> &[CommandEntry] {
        &self.commands
    }
    pub fn live_evidence(&self) -> Option<&LiveEvidence> {
        self.live_evidence.as_ref()
    }

    /// The SHA-1 of the file a quarantine is about.
    pub fn sha1(&self) -> Option<&str> {
        matches!(
            self.action_type,
            ActionType::StopAndQuarantineFile | ActionType::RestoreQuarantinedFile
        )
        .then(|| {
            self.related_file_info
                .as_ref()
                .map(|f| f.file_identifier.as_str())
        })
        .flatten()
    }

    pub fn lane(&self) -> Lane {
        Lane::of(self.action_type, self.sha1(), self.target.as_ref())
    }

    /// The key of the store's "at most one per machine" index, or `None` when this action
    /// takes no slot: a state lane's pending action, a task lane's open action.
    pub fn queue_slot(&self) -> Option<String> {
        let lane = self.lane();
        let takes = if lane.is_state_lane() {
            self.status == ActionStatus::Pending
        } else {
            self.status.is_open()
        };
        takes.then(|| lane.key())
    }

    /// Whether `request` asks for what this action does (type, scope, file).
    pub fn same_request(&self, request: &ActionRequest) -> bool {
        self.action_type == request.action.action_type()
            && self.scope == request.action.scope()
            && self.sha1() == request.action.sha1()
            && self.target == request.action.target()
            && self.action_type != ActionType::LiveResponse
    }

    /// When the action times out: pending actions `timeout` after creation, running ones
    /// `timeout` after their last update; `None` once final (or never).
    pub fn deadline(&self, timeout: time::Duration) -> Option<OffsetDateTime> {
        // A deadline beyond the representable range is none.
        match self.status {
            ActionStatus::Pending => self.creation_date_time_utc.checked_add(timeout),
            ActionStatus::InProgress => self.last_update_date_time_utc.checked_add(timeout),
            _ => None,
        }
    }

    /// Applies `event` at `now`: the one function that moves an action's status. An event the
    /// transition table does not allow from the current status, or an outcome that does not
    /// fit the action, is refused and changes nothing.
    pub fn apply(&mut self, event: ActionEvent, now: OffsetDateTime) -> Result<(), Rejection> {
        let t = event.transition();
        let Some(next) = self.status.after(t) else {
            return Err(Rejection::new(
                ErrorCode::BadRequest,
                format!(
                    "Machine action {} is {}; it cannot {}.",
                    self.id,
                    self.status.as_str(),
                    match t {
                        Transition::Claim => "be started",
                        Transition::Succeed => "succeed",
                        Transition::Fail => "fail",
                        Transition::Expire => "time out",
                        Transition::Cancel => "be cancelled",
                    }
                ),
            ));
        };
        match event {
            ActionEvent::Claim | ActionEvent::Expire => {}
            ActionEvent::Cancel { requestor, comment } => {
                self.cancellation_requestor = Some(requestor);
                self.cancellation_comment = Some(comment);
                self.cancellation_date_time_utc = Some(now);
            }
            ActionEvent::Complete(outcome) => self.record_outcome(outcome)?,
        }
        self.status = next;
        self.last_update_date_time_utc = now.max(self.last_update_date_time_utc);
        Ok(())
    }

    fn record_outcome(&mut self, outcome: ActionOutcome) -> Result<(), Rejection> {
        let bad = |m: String| Rejection::new(ErrorCode::InvalidInput, m);
        let is_lr = self.action_type == ActionType::LiveResponse;
        if !is_lr && !outcome.commands().is_empty() {
            return Err(bad(format!(
                "A {} action has no live response commands to report.",
                self.action_type.as_str()
            )));
        }
        match &outcome {
            ActionOutcome::Succeeded { live_evidence, .. } => match (&self.target, live_evidence) {
                (Some(ActionTarget::Evidence(asked)), Some(seen)) => asked.answered_by(seen)?,
                (Some(ActionTarget::Evidence(_)), None) => {
                    return Err(bad(
                        "A successful live evidence collection must give what it saw.".into(),
                    ));
                }
                (_, Some(_)) => {
                    return Err(bad(format!(
                        "A {} action has no live evidence.",
                        self.action_type.as_str()
                    )));
                }
                (_, None) => {}
            },
            ActionOutcome::Failed { .. } => {}
        }
        match &outcome {
            ActionOutcome::Succeeded { package_uri, .. } => {
                let collects = self.action_type == ActionType::CollectInvestigationPackage;
                match (collects, package_uri.as_deref().map(str::trim)) {
                    (true, None | Some("")) => {
                        return Err(bad(
                            "A successful investigation package collection must give the package URI."
                                .into(),
                        ));
                    }
                    (false, Some(_)) => {
                        return Err(bad(format!(
                            "A {} action has no investigation package.",
                            self.action_type.as_str()
                        )));
                    }
                    _ => {}
                }
            }
            ActionOutcome::Failed { .. } => {}
        }
        let mut commands = self.commands.clone();
        let mut seen = vec![false; commands.len()];
        for c in outcome.commands() {
            let i = c.index as usize;
            let entry = commands.get_mut(i).ok_or_else(|| {
                bad(format!(
                    "Command index {i} is out of range (the action has {} commands).",
                    self.commands.len()
                ))
            })?;
            if std::mem::replace(&mut seen[i], true) {
                return Err(bad(format!("Command {i} is reported twice.")));
            }
            if c.status == CommandStatus::Created {
                return Err(bad(format!(
                    "Command {i}: a reported command is Completed or Failed."
                )));
            }
            if c.result_uri.is_some()
                && (c.status != CommandStatus::Completed || !entry.command.has_result())
            {
                return Err(bad(format!(
                    "Command {i}: only a completed RunScript or GetFile has a result."
                )));
            }
            entry.command_status = c.status;
            entry.start_time = c.start_time;
            entry.end_time = c.end_time;
            entry.errors = c.errors.clone();
        }
        match outcome {
            ActionOutcome::Succeeded { live_evidence, .. } => {
                self.live_evidence = live_evidence;
                if let Some(c) = commands
                    .iter()
                    .find(|c| c.command_status != CommandStatus::Completed)
                {
                    return Err(bad(format!(
                        "A successful live response completes every command; command {} is {}.",
                        c.index,
                        c.command_status.as_str()
                    )));
                }
            }
            ActionOutcome::Failed {
                error_hresult,
                message,
                ..
            } => {
                self.error_hresult = if error_hresult == 0 {
                    E_FAIL
                } else {
                    error_hresult
                };
                let message = message.trim();
                self.troubleshoot_info =
                    (!message.is_empty()).then(|| message.chars().take(4000).collect());
            }
        }
        self.commands = commands;
        Ok(())
    }
}

/// The `title` of an action.
pub fn title(t: ActionType, scope: Option<ActionScope>) -> String {
    let base = match t {
        ActionType::RunAntiVirusScan => "Run antivirus scan",
        ActionType::Offboard => "Offboard device",
        ActionType::LiveResponse => "Live response session",
        ActionType::CollectInvestigationPackage => "Collect investigation package",
        ActionType::Isolate => "Isolate device",
        ActionType::Unisolate => "Release device from isolation",
        ActionType::StopAndQuarantineFile => "Stop and quarantine file",
        ActionType::RestoreQuarantinedFile => "Restore quarantined file",
        ActionType::RestrictCodeExecution => "Restrict app execution",
        ActionType::UnrestrictCodeExecution => "Remove app execution restriction",
        ActionType::KillProcess => "Kill process",
        ActionType::RemovePersistence => "Remove persistence entry",
        ActionType::RestorePersistence => "Restore persistence entry",
        ActionType::CollectLiveEvidence => "Collect live evidence",
    };
    match scope {
        Some(s) => format!("{base} ({})", s.as_str()),
        None => base.to_owned(),
    }
}

/// What to do with a request, given the machine's open actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The request duplicates this open action: answer with it, queue nothing.
    Existing(String),
    /// Queue a new action, after cancelling these pending actions it supersedes.
    Queue { supersede: Vec<String> },
}

/// Decides how a request enters its machine's queue (see the module documentation). `open`
/// are the machine's pending and running actions, oldest first.
pub fn admit(request: &ActionRequest, open: &[MachineAction]) -> Result<Admission, Rejection> {
    let lane = request.lane();
    let in_lane: Vec<&MachineAction> = open
        .iter()
        .filter(|a| a.status.is_open() && a.lane() == lane)
        .collect();
    let Some(newest) = in_lane.last() else {
        return Ok(Admission::Queue {
            supersede: Vec::new(),
        });
    };
    if newest.same_request(request) {
        return Ok(Admission::Existing(newest.id.clone()));
    }
    if lane.is_state_lane() {
        return Ok(Admission::Queue {
            supersede: in_lane
                .iter()
                .filter(|a| a.status == ActionStatus::Pending)
                .map(|a| a.id.clone())
                .collect(),
        });
    }
    Err(match lane {
        Lane::LiveResponse => Rejection::new(
            ErrorCode::ActiveRequestAlreadyExists,
            format!(
                "A live response session ({}) is already {} on this machine; one session runs per device at a time.",
                newest.id,
                newest.status.as_str()
            ),
        ),
        _ => Rejection::new(
            ErrorCode::BadRequest,
            format!(
                "Action is already in progress: {} ({}) is {} on this machine.",
                newest.title,
                newest.id,
                newest.status.as_str()
            ),
        ),
    })
}

// The store's interface for actions (`rampart_store::ActionStore`).

/// An `Idempotency-Key` header: unique per tenant and app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub client_id: String,
    pub key: String,
}

/// A caller's request for an action on one machine.
#[derive(Clone, Debug)]
pub struct ActionSubmission {
    /// The machine's id (not its name).
    pub machine_id: String,
    pub request: ActionRequest,
    /// `requestor` of the action: the app's client id.
    pub requestor: String,
    /// `requestSource`: the app's display name.
    pub request_source: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
}

/// The answer to a submission.
#[derive(Clone, Debug, PartialEq)]
pub struct Submitted {
    pub action: MachineAction,
    /// False when the answer is an existing action: a duplicate of an open one, or a replayed
    /// `Idempotency-Key`.
    pub created: bool,
    /// The pending actions the new one superseded (now `Cancelled`).
    pub superseded: Vec<String>,
}

/// What an action left behind for download.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionResults {
    /// The investigation package of a successful collection.
    pub package_uri: Option<String>,
    /// The result link of each live response command, by index.
    pub result_links: Vec<Option<String>>,
}

/// `/api/machineactions`: the filterable properties of reference §2.4.
pub static MACHINE_ACTIONS: EntitySet = EntitySet {
    name: "MachineActions",
    fields: &[
        Field::new("id", FieldType::String).not_null(),
        Field::new("status", FieldType::Enum(ActionStatus::VARIANTS)).not_null(),
        Field::new("machineId", FieldType::String).not_null(),
        Field::new("type", FieldType::Enum(ActionType::VARIANTS)).not_null(),
        Field::new("requestor", FieldType::String).not_null(),
        Field::new("creationDateTimeUtc", FieldType::DateTime).not_null(),
    ],
    expand: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
    }

    fn req(action: RequestedAction) -> ActionRequest {
        ActionRequest::new(action, Some("because".into()), None).unwrap()
    }

    fn action(r: &RequestedAction) -> MachineAction {
        MachineAction::new(&req(r.clone()), &"a".repeat(40), None, "app", None, now())
    }

    fn isolate(s: IsolationType) -> RequestedAction {
        RequestedAction::Isolate { isolation: s }
    }

    fn lr(types: &[&str]) -> RequestedAction {
        let input: Vec<CommandInput> = types
            .iter()
            .map(|t| CommandInput {
                command_type: t.to_string(),
                params: vec![CommandParam {
                    key: match *t {
                        "PutFile" => "FileName",
                        "RunScript" => "ScriptName",
                        _ => "Path",
                    }
                    .into(),
                    value: if *t == "GetFile" {
                        "/etc/hosts".into()
                    } else {
                        "x.sh".into()
                    },
                }],
            })
            .collect();
        RequestedAction::LiveResponse {
            commands: parse_commands(&input).unwrap(),
        }
    }

    fn status_after(path: &[Transition]) -> Result<ActionStatus, Rejection> {
        let mut a = action(&lr(&["GetFile"]));
        for t in path {
            let ev = match t {
                Transition::Claim => ActionEvent::Claim,
                Transition::Succeed => ActionEvent::Complete(ActionOutcome::Succeeded {
                    package_uri: None,
                    live_evidence: None,
                    commands: vec![CommandOutcome {
                        index: 0,
                        status: CommandStatus::Completed,
                        start_time: None,
                        end_time: None,
                        errors: vec![],
                        result_uri: Some("https://x/0".into()),
                    }],
                }),
                Transition::Fail => ActionEvent::Complete(ActionOutcome::Failed {
                    error_hresult: 0,
                    message: "boom".into(),
                    commands: vec![],
                }),
                Transition::Expire => ActionEvent::Expire,
                Transition::Cancel => ActionEvent::Cancel {
                    requestor: "me".into(),
                    comment: "stop".into(),
                },
            };
            a.apply(ev, now())?;
        }
        Ok(a.status())
    }

    /// Reaches `s` from Pending through legal transitions.
    fn path_to(s: ActionStatus) -> Vec<Transition> {
        use Transition::*;
        match s {
            ActionStatus::Pending => vec![],
            ActionStatus::InProgress => vec![Claim],
            ActionStatus::Succeeded => vec![Claim, Succeed],
            ActionStatus::Failed => vec![Claim, Fail],
            ActionStatus::TimeOut => vec![Expire],
            ActionStatus::Cancelled => vec![Cancel],
        }
    }

    #[test]
    fn the_whole_transition_table() {
        use ActionStatus::*;
        use Transition::*;
        let expected = |s: ActionStatus, t: Transition| match (s, t) {
            (Pending, Claim) => Some(InProgress),
            (Pending, Expire) => Some(TimeOut),
            (Pending, Cancel) => Some(Cancelled),
            (InProgress, Succeed) => Some(Succeeded),
            (InProgress, Fail) => Some(Failed),
            (InProgress, Expire) => Some(TimeOut),
            (InProgress, Cancel) => Some(Cancelled),
            _ => None,
        };
        let mut legal = 0;
        for &s in ActionStatus::ALL {
            for &t in Transition::ALL {
                assert_eq!(s.after(t), expected(s, t), "{s:?} --{t:?}-->");
                // `apply` follows the table exactly: legal moves land where it says, illegal
                // ones are refused and leave the status alone.
                let mut path = path_to(s);
                assert_eq!(status_after(&path).unwrap(), s);
                path.push(t);
                match expected(s, t) {
                    Some(next) => {
                        legal += 1;
                        assert_eq!(status_after(&path).unwrap(), next, "{s:?} --{t:?}-->");
                    }
                    None => {
                        let e = status_after(&path).unwrap_err();
                        assert_eq!(e.code, ErrorCode::BadRequest, "{s:?} --{t:?}-->");
                        assert!(e.message.contains(s.as_str()), "{}", e.message);
                    }
                }
            }
        }
        assert_eq!(legal, 7);
        for s in [Succeeded, Failed, TimeOut, Cancelled] {
            assert!(s.is_final());
        }
        assert!(Pending.is_open() && InProgress.is_open());
    }

    #[test]
    fn a_refused_event_changes_nothing() {
        let mut a = action(&RequestedAction::CollectInvestigationPackage);
        a.apply(ActionEvent::Claim, now()).unwrap();
        let before = a.clone();
        // A collection must give its package.
        let e = a
            .apply(
                ActionEvent::Complete(ActionOutcome::Succeeded {
                    package_uri: None,
                    live_evidence: None,
                    commands: vec![],
                }),
                now() + time::Duration::seconds(5),
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert_eq!(a, before);
        a.apply(
            ActionEvent::Complete(ActionOutcome::Succeeded {
                package_uri: Some("https://x/pkg.zip".into()),
                live_evidence: None,
                commands: vec![],
            }),
            now() + time::Duration::seconds(5),
        )
        .unwrap();
        assert_eq!(a.status(), ActionStatus::Succeeded);
        assert_eq!(
            a.last_update_date_time_utc(),
            now() + time::Duration::seconds(5)
        );
        // Only collections have packages.
        let mut b = action(&RequestedAction::Offboard);
        b.apply(ActionEvent::Claim, now()).unwrap();
        assert!(
            b.apply(
                ActionEvent::Complete(ActionOutcome::Succeeded {
                    package_uri: Some("https://x".into()),
                    live_evidence: None,
                    commands: vec![]
                }),
                now()
            )
            .is_err()
        );
    }

    #[test]
    fn cancel_and_failure_record_their_details() {
        let mut a = action(&isolate(IsolationType::Full));
        a.apply(
            ActionEvent::Cancel {
                requestor: "soar".into(),
                comment: "false alarm".into(),
            },
            now(),
        )
        .unwrap();
        assert_eq!(a.status(), ActionStatus::Cancelled);
        assert_eq!(a.cancellation_requestor(), Some("soar"));
        assert_eq!(a.cancellation_comment(), Some("false alarm"));
        assert_eq!(a.cancellation_date_time_utc(), Some(now()));

        let mut b = action(&lr(&["PutFile", "RunScript", "GetFile"]));
        b.apply(ActionEvent::Claim, now()).unwrap();
        b.apply(
            ActionEvent::Complete(ActionOutcome::Failed {
                error_hresult: 0,
                message: "script exited 2".into(),
                commands: vec![
                    CommandOutcome {
                        index: 0,
                        status: CommandStatus::Completed,
                        start_time: Some(now()),
                        end_time: Some(now()),
                        errors: vec![],
                        result_uri: None,
                    },
                    CommandOutcome {
                        index: 1,
                        status: CommandStatus::Failed,
                        start_time: Some(now()),
                        end_time: Some(now()),
                        errors: vec!["exit code 2".into()],
                        result_uri: None,
                    },
                ],
            }),
            now(),
        )
        .unwrap();
        assert_eq!(b.status(), ActionStatus::Failed);
        assert_eq!(b.error_hresult(), E_FAIL);
        assert_eq!(b.troubleshoot_info(), Some("script exited 2"));
        let st: Vec<CommandStatus> = b.commands().iter().map(|c| c.command_status).collect();
        assert_eq!(
            st,
            [
                CommandStatus::Completed,
                CommandStatus::Failed,
                CommandStatus::Created
            ]
        );
        assert_eq!(b.commands()[1].errors, ["exit code 2"]);
    }

    #[test]
    fn live_response_success_completes_every_command() {
        let mut a = action(&lr(&["RunScript", "GetFile"]));
        a.apply(ActionEvent::Claim, now()).unwrap();
        let done = |i, uri: Option<&str>| CommandOutcome {
            index: i,
            status: CommandStatus::Completed,
            start_time: None,
            end_time: None,
            errors: vec![],
            result_uri: uri.map(str::to_owned),
        };
        let partial = ActionOutcome::Succeeded {
            package_uri: None,
            live_evidence: None,
            commands: vec![done(0, Some("u0"))],
        };
        assert!(a.apply(ActionEvent::Complete(partial), now()).is_err());
        let out_of_range = ActionOutcome::Succeeded {
            package_uri: None,
            live_evidence: None,
            commands: vec![done(0, None), done(1, None), done(2, None)],
        };
        assert!(a.apply(ActionEvent::Complete(out_of_range), now()).is_err());
        let twice = ActionOutcome::Succeeded {
            package_uri: None,
            live_evidence: None,
            commands: vec![done(0, None), done(0, None)],
        };
        assert!(a.apply(ActionEvent::Complete(twice), now()).is_err());
        let ok = ActionOutcome::Succeeded {
            package_uri: None,
            live_evidence: None,
            commands: vec![done(1, Some("u1")), done(0, Some("u0"))],
        };
        assert_eq!(
            ok.result_links(2),
            [Some("u0".to_owned()), Some("u1".to_owned())]
        );
        a.apply(ActionEvent::Complete(ok), now()).unwrap();
        assert_eq!(a.status(), ActionStatus::Succeeded);
        // A PutFile has no result to link.
        let mut b = action(&lr(&["PutFile"]));
        b.apply(ActionEvent::Claim, now()).unwrap();
        assert!(
            b.apply(
                ActionEvent::Complete(ActionOutcome::Succeeded {
                    package_uri: None,
                    live_evidence: None,
                    commands: vec![done(0, Some("u"))]
                }),
                now()
            )
            .is_err()
        );
    }

    #[test]
    fn duplicates_supersession_and_in_progress_refusals() {
        let full = action(&isolate(IsolationType::Full));
        // Nothing open: queue.
        assert_eq!(
            admit(&req(isolate(IsolationType::Full)), &[]).unwrap(),
            Admission::Queue { supersede: vec![] }
        );
        // Same request pending: the existing one.
        assert_eq!(
            admit(
                &req(isolate(IsolationType::Full)),
                std::slice::from_ref(&full)
            )
            .unwrap(),
            Admission::Existing(full.id.clone())
        );
        // Unisolate while an isolate is pending: the isolate is superseded.
        assert_eq!(
            admit(
                &req(RequestedAction::Unisolate),
                std::slice::from_ref(&full)
            )
            .unwrap(),
            Admission::Queue {
                supersede: vec![full.id.clone()]
            }
        );
        // Selective while Full is pending: the newer scope wins.
        assert_eq!(
            admit(
                &req(isolate(IsolationType::Selective)),
                std::slice::from_ref(&full)
            )
            .unwrap(),
            Admission::Queue {
                supersede: vec![full.id.clone()]
            }
        );
        // Unisolate while the isolate runs: queued behind it, nothing cancelled.
        let mut running = full.clone();
        running.apply(ActionEvent::Claim, now()).unwrap();
        assert_eq!(
            admit(
                &req(RequestedAction::Unisolate),
                std::slice::from_ref(&running)
            )
            .unwrap(),
            Admission::Queue { supersede: vec![] }
        );
        // Isolate again while it runs and an unisolate waits: the unisolate goes.
        let un = action(&RequestedAction::Unisolate);
        assert_eq!(
            admit(
                &req(isolate(IsolationType::Full)),
                &[running.clone(), un.clone()]
            )
            .unwrap(),
            Admission::Queue {
                supersede: vec![un.id.clone()]
            }
        );
        // A running isolate answers a duplicate.
        assert_eq!(
            admit(
                &req(isolate(IsolationType::Full)),
                std::slice::from_ref(&running)
            )
            .unwrap(),
            Admission::Existing(running.id.clone())
        );
        // Other lanes do not interfere.
        assert_eq!(
            admit(
                &req(RequestedAction::RestrictCodeExecution),
                std::slice::from_ref(&full)
            )
            .unwrap(),
            Admission::Queue { supersede: vec![] }
        );
        let restrict = action(&RequestedAction::RestrictCodeExecution);
        assert_eq!(
            admit(
                &req(RequestedAction::UnrestrictCodeExecution),
                &[full.clone(), restrict.clone()]
            )
            .unwrap(),
            Admission::Queue {
                supersede: vec![restrict.id.clone()]
            }
        );

        // Scans: the same type is the existing one, the other is refused as MDE does.
        let quick = action(&RequestedAction::RunAntiVirusScan {
            scan: ScanType::Quick,
        });
        assert_eq!(
            admit(
                &req(RequestedAction::RunAntiVirusScan {
                    scan: ScanType::Quick
                }),
                std::slice::from_ref(&quick)
            )
            .unwrap(),
            Admission::Existing(quick.id.clone())
        );
        let e = admit(
            &req(RequestedAction::RunAntiVirusScan {
                scan: ScanType::Full,
            }),
            std::slice::from_ref(&quick),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.starts_with("Action is already in progress"));
        // Live response: one session per device.
        let session = action(&lr(&["GetFile"]));
        let e = admit(&req(lr(&["GetFile"])), std::slice::from_ref(&session)).unwrap_err();
        assert_eq!(e.code, ErrorCode::ActiveRequestAlreadyExists);
        // Quarantine: per file.
        let sha = |c: char| RequestedAction::StopAndQuarantineFile {
            sha1: c.to_string().repeat(40),
        };
        let qa = action(&sha('a'));
        assert_eq!(
            admit(&req(sha('a')), std::slice::from_ref(&qa)).unwrap(),
            Admission::Existing(qa.id.clone())
        );
        assert_eq!(
            admit(&req(sha('b')), std::slice::from_ref(&qa)).unwrap(),
            Admission::Queue { supersede: vec![] }
        );
        // Final actions are not open.
        let mut done = quick.clone();
        done.apply(ActionEvent::Expire, now()).unwrap();
        assert_eq!(
            admit(
                &req(RequestedAction::RunAntiVirusScan {
                    scan: ScanType::Full
                }),
                &[done]
            )
            .unwrap(),
            Admission::Queue { supersede: vec![] }
        );
    }

    #[test]
    fn queue_slots_follow_the_lane_kind() {
        let mut iso = action(&isolate(IsolationType::Full));
        assert_eq!(iso.queue_slot().as_deref(), Some("Isolation"));
        iso.apply(ActionEvent::Claim, now()).unwrap();
        assert_eq!(iso.queue_slot(), None);
        let mut scan = action(&RequestedAction::RunAntiVirusScan {
            scan: ScanType::Full,
        });
        assert_eq!(scan.queue_slot().as_deref(), Some("Scan"));
        scan.apply(ActionEvent::Claim, now()).unwrap();
        assert_eq!(scan.queue_slot().as_deref(), Some("Scan"));
        scan.apply(
            ActionEvent::Complete(ActionOutcome::Succeeded {
                package_uri: None,
                live_evidence: None,
                commands: vec![],
            }),
            now(),
        )
        .unwrap();
        assert_eq!(scan.queue_slot(), None);
        let q = action(&RequestedAction::StopAndQuarantineFile {
            sha1: "A".repeat(40),
        });
        assert_eq!(
            q.queue_slot(),
            Some(format!("Quarantine:{}", "a".repeat(40)))
        );
    }

    #[test]
    fn deadlines() {
        let t = time::Duration::hours(1);
        let mut a = action(&RequestedAction::Offboard);
        assert_eq!(a.deadline(t), Some(now() + t));
        a.apply(ActionEvent::Claim, now() + time::Duration::minutes(30))
            .unwrap();
        assert_eq!(a.deadline(t), Some(now() + time::Duration::minutes(90)));
        a.apply(ActionEvent::Expire, now() + t * 2).unwrap();
        assert_eq!(a.deadline(t), None);
    }

    #[test]
    fn os_support_matrix() {
        use RequestedAction as R;
        let all = [
            isolate(IsolationType::Full),
            isolate(IsolationType::Selective),
            R::Unisolate,
            R::RestrictCodeExecution,
            R::UnrestrictCodeExecution,
            R::RunAntiVirusScan {
                scan: ScanType::Quick,
            },
            R::CollectInvestigationPackage,
            R::StopAndQuarantineFile {
                sha1: "a".repeat(40),
            },
            R::Offboard,
            lr(&["GetFile"]),
        ];
        for a in &all {
            for os in [
                "Linux",
                "ubuntu",
                "RedHatEnterpriseLinux",
                "Windows11",
                "WindowsServer2019",
            ] {
                assert!(check_supported(a, os).is_ok(), "{a:?} on {os}");
            }
            let e = check_supported(a, "iOS").unwrap_err();
            assert_eq!(e.code, ErrorCode::OsPlatformNotSupported);
        }
        let mac: Vec<bool> = all
            .iter()
            .map(|a| check_supported(a, "macOS").is_ok())
            .collect();
        assert_eq!(
            mac,
            [
                false, false, false, false, false, true, true, false, false, true
            ]
        );
        let e = check_supported(&R::Offboard, "macOS").unwrap_err();
        assert_eq!(
            e.message,
            "Offboard is not supported on OS platform 'macOS'."
        );
    }

    #[test]
    fn request_checks() {
        let e = ActionRequest::new(RequestedAction::Offboard, None, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingRequiredParameter);
        let e = ActionRequest::new(RequestedAction::Offboard, Some("  ".into()), None).unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingRequiredParameter);
        let e = ActionRequest::new(
            RequestedAction::Offboard,
            Some("x".repeat(MAX_COMMENT_LEN + 1)),
            None,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        let e = ActionRequest::new(
            RequestedAction::StopAndQuarantineFile { sha1: "abc".into() },
            Some("c".into()),
            None,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidHashValue);
        let r = ActionRequest::new(
            RequestedAction::StopAndQuarantineFile {
                sha1: "AB".repeat(20),
            },
            Some(" c ".into()),
            Some("ticket-1".into()),
        )
        .unwrap();
        assert_eq!(r.comment, "c");
        assert_eq!(
            r.action,
            RequestedAction::StopAndQuarantineFile {
                sha1: "ab".repeat(20)
            }
        );
        let e = ActionRequest::new(
            isolate(IsolationType::UnManagedDevice),
            Some("c".into()),
            None,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn live_response_command_rules() {
        let cmd = |t: &str, params: &[(&str, &str)]| CommandInput {
            command_type: t.into(),
            params: params
                .iter()
                .map(|(k, v)| CommandParam {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        };
        let ok = parse_commands(&[
            cmd("putfile", &[("filename", "tool.sh")]),
            cmd("RunScript", &[("ScriptName", "tool.sh"), ("args", "-v")]),
            cmd("RunScript", &[("ScriptName", "other.sh")]),
            cmd("GetFile", &[("Path", "/var/log/syslog")]),
            cmd("GetFile", &[("Path", "C:\\Windows\\Temp\\x.log")]),
        ])
        .unwrap();
        assert_eq!(ok[0].command_type, CommandType::PutFile);
        assert_eq!(ok[0].param("FileName"), Some("tool.sh"));
        assert_eq!(ok[1].param("Args"), Some("-v"));

        let code = |cmds: &[CommandInput]| parse_commands(cmds).unwrap_err().code;
        assert_eq!(code(&[]), ErrorCode::MissingRequiredParameter);
        assert_eq!(
            code(&[cmd("Shell", &[("Path", "/")])]),
            ErrorCode::InvalidRequestBody
        );
        assert_eq!(
            code(&[cmd("GetFile", &[])]),
            ErrorCode::MissingRequiredParameter
        );
        assert_eq!(
            code(&[cmd("GetFile", &[("Path", "")])]),
            ErrorCode::MissingRequiredParameter
        );
        assert_eq!(
            code(&[cmd("GetFile", &[("Path", "relative/x")])]),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(&[cmd("GetFile", &[("Path", "/a"), ("Recurse", "1")])]),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(&[cmd("GetFile", &[("Path", "/a"), ("path", "/b")])]),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            code(&[cmd("PutFile", &[("FileName", "../etc/passwd")])]),
            ErrorCode::InvalidInput
        );
        // Order: PutFile → RunScript → GetFile.
        let e = parse_commands(&[
            cmd("RunScript", &[("ScriptName", "a.sh")]),
            cmd("PutFile", &[("FileName", "a.sh")]),
        ])
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(
            e.message
                .contains("command 1 (PutFile) follows a RunScript"),
            "{}",
            e.message
        );
        assert_eq!(
            code(&[
                cmd("GetFile", &[("Path", "/a")]),
                cmd("RunScript", &[("ScriptName", "a.sh")])
            ]),
            ErrorCode::InvalidInput
        );
        let many: Vec<CommandInput> = (0..=MAX_LIVE_RESPONSE_COMMANDS)
            .map(|_| cmd("GetFile", &[("Path", "/a")]))
            .collect();
        assert_eq!(code(&many), ErrorCode::MaximumBatchSizeExceeded);
    }

    #[test]
    fn json_has_mde_names() {
        let r = ActionRequest::new(
            RequestedAction::StopAndQuarantineFile {
                sha1: "a".repeat(40),
            },
            Some("c".into()),
            Some("ext-1".into()),
        )
        .unwrap();
        let a = MachineAction::new(
            &r,
            &"b".repeat(40),
            Some("h1"),
            "app-id",
            Some("App"),
            now(),
        );
        let v = serde_json::to_value(&a).unwrap();
        for k in [
            "id",
            "type",
            "title",
            "scope",
            "requestor",
            "requestorComment",
            "requestSource",
            "externalID",
            "status",
            "machineId",
            "computerDnsName",
            "creationDateTimeUtc",
            "lastUpdateDateTimeUtc",
            "cancellationRequestor",
            "cancellationComment",
            "cancellationDateTimeUtc",
            "errorHResult",
            "relatedFileInfo",
            "commands",
        ] {
            assert!(v.get(k).is_some(), "{k} missing from {v}");
        }
        assert_eq!(v["type"], "StopAndQuarantineFile");
        assert_eq!(v["status"], "Pending");
        assert_eq!(v["relatedFileInfo"]["fileIdentifierType"], "Sha1");
        assert_eq!(v["externalID"], "ext-1");
        let back: MachineAction = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn investigation_actions_have_lanes_of_their_own_and_live_evidence_is_recorded() {
        use crate::action_target::{FileProbe, FileState, ProcessState};
        let kill = |pid| {
            RequestedAction::KillProcess(ProcessTarget {
                pid,
                image_path: "/tmp/implant".into(),
            })
        };
        let k = action(&kill(4242));
        assert_eq!(k.lane().key(), "Process:4242");
        assert_eq!(
            admit(&req(kill(4242)), std::slice::from_ref(&k)).unwrap(),
            Admission::Existing(k.id.clone())
        );
        assert!(matches!(
            admit(&req(kill(4243)), std::slice::from_ref(&k)).unwrap(),
            Admission::Queue { .. }
        ));
        assert!(ActionRequest::new(kill(1), Some("c".into()), None).is_err());
        assert!(check_supported(&kill(4242), "Windows11").is_err());
        assert!(check_supported(&kill(4242), "Ubuntu").is_ok());

        let asked = EvidenceRequest {
            investigation_id: "9".into(),
            processes: vec![ProcessTarget {
                pid: 4242,
                image_path: "/tmp/implant".into(),
            }],
            files: vec![FileProbe {
                path: "/tmp/implant".into(),
                sha1: None,
            }],
        };
        let mut look = action(&RequestedAction::CollectLiveEvidence(asked));
        assert_eq!(look.lane().key(), "Evidence:9");
        look.apply(ActionEvent::Claim, now()).unwrap();
        let seen = LiveEvidence {
            processes: vec![ProcessState {
                pid: 4242,
                running: true,
            }],
            files: vec![FileState {
                path: "/tmp/implant".into(),
                exists: true,
                sha1: Some("a".repeat(40)),
            }],
        };
        let done = |live_evidence| {
            ActionEvent::Complete(ActionOutcome::Succeeded {
                package_uri: None,
                live_evidence,
                commands: vec![],
            })
        };
        // An answer that is not to the question, or none, is refused.
        assert!(look.clone().apply(done(None), now()).is_err());
        assert!(
            look.clone()
                .apply(done(Some(LiveEvidence::default())), now())
                .is_err()
        );
        look.apply(done(Some(seen.clone())), now()).unwrap();
        assert_eq!(look.live_evidence(), Some(&seen));
        let v = serde_json::to_value(&look).unwrap();
        assert_eq!(v["type"], "CollectLiveEvidence");
        assert_eq!(v["target"]["evidence"]["investigationId"], "9");
        assert_eq!(serde_json::from_value::<MachineAction>(v).unwrap(), look);
        // Other actions carry no live evidence.
        let mut k = k;
        k.apply(ActionEvent::Claim, now()).unwrap();
        assert!(k.apply(done(Some(seen)), now()).is_err());
    }
}
