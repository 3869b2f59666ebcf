//! Remediation actions of automated investigations and the action center (Rampart's own
//! resource, `/api/remediationactions`): what an investigation proposes for its malicious
//! entities, which of those need an analyst's approval under the device group's automation
//! level (reference §5.3, with Linux equivalents of its core and temp folders), and each
//! action's life — pending approval for at most 7 days, running as a machine action or an
//! indicator, completed, and undone.

use crate::alert::InvestigationState;
use crate::indicator::{IndicatorType, is_internal_ip};
use crate::investigation::{
    EntityType, InvestigatedEntity, LiveState, PersistenceShape, Relation, RelationKind, Verdict,
    persistence_shape,
};
use crate::machine::{AutomationLevel, Machine};
use crate::machine_action::ActionStatus;
use crate::odata::{EntitySet, Field, FieldType};
use crate::{ErrorCode, Rejection};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// How long an action waits for approval before it expires (treated as rejected).
pub const APPROVAL_TIMEOUT: Duration = Duration::days(7);
/// A connection to a malicious destination this recent means command-and-control is active:
/// the device is isolated.
pub const ACTIVE_C2_WINDOW: Duration = Duration::hours(1);

string_enum!(
    /// What a remediation action does: `QuarantineFile` stops the processes running a file
    /// and quarantines it (machine action StopAndQuarantineFile; undone by restoring it);
    /// `KillProcess` stops one process whose image is not quarantined (a shell, an
    /// interpreter; machine action KillProcess); `RemovePersistence` takes out a persistence
    /// entry — the attacker's lines of a crontab or `authorized_keys`, or a cron.d file or
    /// systemd unit of its own (machine action RemovePersistence; undone by putting it back);
    /// `BlockIndicator` blocks a file hash, address or URL tenant-wide (an indicator; undone
    /// by deleting it); `IsolateDevice` isolates the device (machine action Isolate; undone
    /// by releasing it).
    RemediationType {
        QuarantineFile, KillProcess, RemovePersistence, BlockIndicator, IsolateDevice
    }
);
string_enum!(
    /// Where a remediation action is in its life.
    RemediationStatus { PendingApproval, Running, Completed, Failed, Rejected, Expired, Undone }
);

/// One remediation action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemediationAction {
    /// A number as a string.
    pub id: String,
    pub investigation_id: String,
    pub machine_id: String,
    pub computer_dns_name: Option<String>,
    #[schema(value_type = String)]
    pub action_type: RemediationType,
    /// The entity acted on, as the investigation names it.
    pub entity_name: String,
    /// Its index in the investigation's entities.
    pub entity_id: usize,
    pub sha1: Option<String>,
    /// The file acted on; for `KillProcess`, the process's image.
    pub file_path: Option<String>,
    /// The process a `KillProcess` action stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_id: Option<u32>,
    /// The entries a `RemovePersistence` action takes out of `filePath` (none: the whole
    /// file is the entry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<String>,
    #[schema(value_type = Option<String>)]
    pub indicator_type: Option<IndicatorType>,
    pub indicator_value: Option<String>,
    /// Why the entity is malicious.
    pub reasons: Vec<String>,
    #[schema(value_type = String)]
    pub status: RemediationStatus,
    pub status_details: Option<String>,
    /// Whether the automation level held it for an analyst.
    pub approval_required: bool,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub created_time: OffsetDateTime,
    #[serde(with = "crate::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub last_update_time: OffsetDateTime,
    /// When a pending action expires.
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expiration_time: Option<OffsetDateTime>,
    pub decided_by: Option<String>,
    pub decision_comment: Option<String>,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decision_time: Option<OffsetDateTime>,
    /// The machine action that carries it out, and the one that undid it.
    pub machine_action_id: Option<String>,
    pub undo_machine_action_id: Option<String>,
    /// The indicator a `BlockIndicator` action created.
    pub indicator_id: Option<String>,
}

pub static REMEDIATION_ACTIONS: EntitySet = EntitySet {
    name: "RemediationActions",
    fields: &[
        Field::new("id", FieldType::String).not_null(),
        Field::new("investigationId", FieldType::String).not_null(),
        Field::new("machineId", FieldType::String).not_null(),
        Field::new("actionType", FieldType::Enum(RemediationType::VARIANTS)).not_null(),
        Field::new("status", FieldType::Enum(RemediationStatus::VARIANTS)).not_null(),
        Field::new("createdTime", FieldType::DateTime).not_null(),
    ],
    expand: &[],
};

/// How an executed action turned out at once: handed to a machine action (which finishes
/// later) or done (an indicator stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Execution {
    MachineAction(String),
    Indicator(String),
}

impl RemediationAction {
    /// The action of investigation `investigation_id` for proposal `p` on `machine`:
    /// pending approval for [`APPROVAL_TIMEOUT`] when `approval` says so, else to be carried
    /// out at once.
    pub fn proposed(
        p: Proposal,
        entities: &[InvestigatedEntity],
        investigation_id: &str,
        machine: &Machine,
        approval: bool,
        now: OffsetDateTime,
    ) -> RemediationAction {
        let entity = &entities[p.entity];
        let (indicator_type, indicator_value) = p.indicator.unzip();
        RemediationAction {
            id: String::new(),
            investigation_id: investigation_id.to_owned(),
            machine_id: machine.id.clone(),
            computer_dns_name: Some(machine.computer_dns_name.clone()),
            action_type: p.kind,
            entity_name: entity.name.clone(),
            entity_id: entity.id,
            sha1: p.sha1,
            file_path: p.path,
            process_id: p.process_id,
            entries: p.entries,
            indicator_type,
            indicator_value,
            reasons: entity.reasons.clone(),
            status: if approval {
                RemediationStatus::PendingApproval
            } else {
                RemediationStatus::Running
            },
            status_details: None,
            approval_required: approval,
            created_time: now,
            last_update_time: now,
            expiration_time: approval.then_some(now + APPROVAL_TIMEOUT),
            decided_by: None,
            decision_comment: None,
            decision_time: None,
            machine_action_id: None,
            undo_machine_action_id: None,
            indicator_id: None,
        }
    }

    /// Records that carrying it out failed, and why.
    pub fn failed(&mut self, why: &str, now: OffsetDateTime) {
        self.status = RemediationStatus::Failed;
        self.status_details = Some(why.to_owned());
        self.last_update_time = now;
    }

    fn refuse(&self, what: &str) -> Rejection {
        Rejection::new(
            ErrorCode::Conflict,
            format!(
                "Remediation action {} is {}; it cannot be {what}.",
                self.id,
                self.status.as_str()
            ),
        )
    }

    /// Whether an analyst may still approve or reject it at `now`.
    pub fn check_pending(&self, now: OffsetDateTime) -> Result<(), Rejection> {
        if self.status != RemediationStatus::PendingApproval {
            return Err(self.refuse("decided"));
        }
        if self.expiration_time.is_some_and(|t| now >= t) {
            return Err(Rejection::new(
                ErrorCode::Conflict,
                format!(
                    "Remediation action {} expired waiting for approval; it cannot be decided.",
                    self.id
                ),
            ));
        }
        Ok(())
    }

    /// Records that it was carried out (automatically, or on approval by `decided_by`).
    pub fn executed(&mut self, how: Execution, now: OffsetDateTime) {
        match how {
            Execution::MachineAction(id) => {
                self.machine_action_id = Some(id);
                self.status = RemediationStatus::Running;
            }
            Execution::Indicator(id) => {
                self.indicator_id = Some(id);
                self.status = RemediationStatus::Completed;
            }
        }
        self.expiration_time = None;
        self.last_update_time = now;
    }

    pub fn decide(&mut self, by: &str, comment: &str, now: OffsetDateTime) {
        self.decided_by = Some(by.to_owned());
        self.decision_comment = Some(comment.to_owned());
        self.decision_time = Some(now);
        self.last_update_time = now;
    }

    pub fn reject(
        &mut self,
        by: &str,
        comment: &str,
        now: OffsetDateTime,
    ) -> Result<(), Rejection> {
        self.check_pending(now)?;
        self.decide(by, comment, now);
        self.status = RemediationStatus::Rejected;
        self.expiration_time = None;
        Ok(())
    }

    /// Expires it when it waited too long; returns whether it did.
    pub fn expire(&mut self, now: OffsetDateTime) -> bool {
        if self.status == RemediationStatus::PendingApproval
            && self.expiration_time.is_some_and(|t| now >= t)
        {
            self.status = RemediationStatus::Expired;
            self.status_details = Some("Not approved within 7 days.".into());
            self.last_update_time = now;
            return true;
        }
        false
    }

    /// Follows its machine action; returns whether its status changed.
    pub fn follow(&mut self, action: ActionStatus, now: OffsetDateTime) -> bool {
        if self.status != RemediationStatus::Running {
            return false;
        }
        self.status = match action {
            ActionStatus::Succeeded => RemediationStatus::Completed,
            ActionStatus::Failed | ActionStatus::TimeOut | ActionStatus::Cancelled => {
                self.status_details = Some(format!("Machine action {}.", action.as_str()));
                RemediationStatus::Failed
            }
            ActionStatus::Pending | ActionStatus::InProgress => return false,
        };
        self.last_update_time = now;
        true
    }

    /// Moves it on by itself: expires it when it waited too long for approval, or follows its
    /// machine action (`machine_action`, when running) to its end. Returns whether it moved.
    pub fn advance(&mut self, machine_action: Option<ActionStatus>, now: OffsetDateTime) -> bool {
        self.expire(now) || machine_action.is_some_and(|s| self.follow(s, now))
    }

    /// Whether it can be undone, and if not why.
    pub fn check_undoable(&self) -> Result<(), Rejection> {
        if self.status != RemediationStatus::Completed {
            return Err(self.refuse("undone"));
        }
        if self.action_type == RemediationType::KillProcess {
            return Err(Rejection::new(
                ErrorCode::Conflict,
                format!(
                    "Remediation action {} killed a process; a process cannot be brought back.",
                    self.id
                ),
            ));
        }
        Ok(())
    }

    pub fn undone(
        &mut self,
        by: &str,
        comment: &str,
        undo_action: Option<String>,
        now: OffsetDateTime,
    ) {
        self.status = RemediationStatus::Undone;
        self.undo_machine_action_id = undo_action;
        self.status_details = Some(format!("Undone by {by}: {comment}"));
        self.last_update_time = now;
    }

    pub fn is_open(&self) -> bool {
        matches!(
            self.status,
            RemediationStatus::PendingApproval | RemediationStatus::Running
        )
    }
}

/// Where a file lives, as the Semi automation levels distinguish folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderClass {
    /// The operating system's own: `/bin`, `/sbin`, `/usr`, `/lib*`, `/boot`, `/etc`;
    /// `\Windows\`.
    Core,
    /// Temporary and download folders: `/tmp`, `/var/tmp`, `/dev/shm`, `~/Downloads`;
    /// `\Users\*\AppData\Local\Temp\`, `\Windows\Temp\`, `\Users\*\Downloads\`.
    Temp,
    Other,
}

pub fn folder_class(path: &str) -> FolderClass {
    let p = path.replace('\\', "/").to_ascii_lowercase();
    // Windows paths: drop the drive letter.
    let p = match p.as_bytes() {
        [_, b':', ..] => &p[2..],
        _ => &p[..],
    };
    let in_any = |prefixes: &[&str]| prefixes.iter().any(|d| p.starts_with(d));
    let user_sub = |sub: &str| {
        ["/home/", "/users/"].iter().any(|home| {
            p.strip_prefix(home)
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(_, rest)| rest.starts_with(sub))
        }) || p.starts_with(&format!("/root/{sub}"))
    };
    if in_any(&["/tmp/", "/var/tmp/", "/dev/shm/", "/windows/temp/"])
        || user_sub("downloads/")
        || user_sub("appdata/local/temp/")
    {
        FolderClass::Temp
    } else if in_any(&[
        "/bin/",
        "/sbin/",
        "/usr/",
        "/lib/",
        "/lib32/",
        "/lib64/",
        "/libx32/",
        "/boot/",
        "/etc/",
        "/windows/",
    ]) {
        FolderClass::Core
    } else {
        FolderClass::Other
    }
}

/// Whether `level` holds an action of `kind` on a file at `path` (for a process, its image)
/// for approval; `None` when the level runs no remediation at all. Actions not on a file
/// (isolation, blocking an address) are held under every Semi level: only Full remediates
/// without asking.
pub fn needs_approval(
    level: AutomationLevel,
    kind: RemediationType,
    path: Option<&str>,
) -> Option<bool> {
    let on_file = matches!(
        kind,
        RemediationType::QuarantineFile
            | RemediationType::KillProcess
            | RemediationType::RemovePersistence
    ) || (kind == RemediationType::BlockIndicator && path.is_some());
    let folder = path.map_or(FolderClass::Other, folder_class);
    Some(match level {
        AutomationLevel::NoAutomatedResponse => return None,
        AutomationLevel::FullRemediation => false,
        _ if !on_file => true,
        AutomationLevel::SemiApprovalAllFolders => true,
        AutomationLevel::SemiApprovalCoreFolders => folder == FolderClass::Core,
        AutomationLevel::SemiApprovalNonTempFolders => folder != FolderClass::Temp,
    })
}

/// What an investigation proposes for its malicious entities: quarantine each malicious file
/// still on the device (which stops the processes running it), kill each malicious process
/// still running whose image is not quarantined, take out each malicious persistence entry
/// it can name, block malicious file hashes and public addresses and URLs tenant-wide (for
/// the indicator types `shared` allows), and isolate the device when a malicious process
/// contacted a malicious destination within [`ACTIVE_C2_WINDOW`] of `now`. What the device
/// showed live (`live_state`) spares what is gone already.
pub fn propose(
    entities: &[InvestigatedEntity],
    relations: &[Relation],
    shared: &[IndicatorType],
    now: OffsetDateTime,
) -> Vec<Proposal> {
    let mut out = Vec::new();
    let malicious = |i: usize| entities[i].verdict == Verdict::Malicious;
    // A malicious file with a hash, not known to be gone: its quarantine stops its processes.
    let quarantined = |f: &InvestigatedEntity| {
        f.entity_type == EntityType::File
            && f.verdict == Verdict::Malicious
            && f.sha1.is_some()
            && f.live_state != Some(LiveState::Absent)
    };
    let mut isolate: Option<&InvestigatedEntity> = None;
    for e in entities.iter().filter(|e| e.verdict == Verdict::Malicious) {
        let mut add = |kind, indicator: Option<(IndicatorType, String)>| {
            out.push(Proposal {
                kind,
                entity: e.id,
                path: e.path.clone(),
                sha1: e.sha1.clone(),
                process_id: None,
                entries: Vec::new(),
                indicator,
            })
        };
        match e.entity_type {
            EntityType::File => {
                if quarantined(e) {
                    add(RemediationType::QuarantineFile, None);
                }
                let hash = match (&e.sha256, &e.sha1) {
                    (Some(h), _) if shared.contains(&IndicatorType::FileSha256) => {
                        Some((IndicatorType::FileSha256, h.clone()))
                    }
                    (_, Some(h)) if shared.contains(&IndicatorType::FileSha1) => {
                        Some((IndicatorType::FileSha1, h.clone()))
                    }
                    _ => None,
                };
                if let Some(h) = hash {
                    add(RemediationType::BlockIndicator, Some(h));
                }
            }
            EntityType::Process => {
                let image_quarantined = relations.iter().any(|r| {
                    r.to == e.id
                        && r.kind == RelationKind::ImageOf
                        && quarantined(&entities[r.from])
                });
                let pid = e
                    .process_id
                    .and_then(|p| u32::try_from(p).ok())
                    .filter(|p| *p > 1);
                if let (Some(pid), Some(path)) = (pid, &e.path)
                    && !image_quarantined
                    && e.live_state != Some(LiveState::NotRunning)
                {
                    out.push(Proposal {
                        kind: RemediationType::KillProcess,
                        entity: e.id,
                        path: Some(path.clone()),
                        sha1: None,
                        process_id: Some(pid),
                        entries: Vec::new(),
                        indicator: None,
                    });
                }
            }
            EntityType::Persistence => {
                let nameable = match e.path.as_deref().and_then(persistence_shape) {
                    Some(PersistenceShape::OwnFile) => true,
                    Some(PersistenceShape::Lines) => !e.entries.is_empty(),
                    None => false,
                };
                if nameable && e.live_state != Some(LiveState::Absent) {
                    out.push(Proposal {
                        kind: RemediationType::RemovePersistence,
                        entity: e.id,
                        path: e.path.clone(),
                        sha1: None,
                        process_id: None,
                        entries: e.entries.clone(),
                        indicator: None,
                    });
                }
            }
            EntityType::Ip | EntityType::Url => {
                let public = e.entity_type == EntityType::Url
                    || e.name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| !is_internal_ip(a));
                let kind = if e.entity_type == EntityType::Ip {
                    IndicatorType::IpAddress
                } else {
                    IndicatorType::Url
                };
                if public && shared.contains(&kind) {
                    add(
                        RemediationType::BlockIndicator,
                        Some((kind, e.name.clone())),
                    );
                }
                let active = relations.iter().any(|r| {
                    r.to == e.id
                        && r.kind == RelationKind::ConnectedTo
                        && malicious(r.from)
                        && entities[r.from]
                            .last_seen
                            .is_some_and(|t| now - t <= ACTIVE_C2_WINDOW)
                });
                if public && active && isolate.is_none() {
                    isolate = Some(e);
                }
            }
            _ => {}
        }
    }
    if let Some(e) = isolate {
        out.push(Proposal {
            kind: RemediationType::IsolateDevice,
            entity: e.id,
            path: None,
            sha1: None,
            process_id: None,
            entries: Vec::new(),
            indicator: None,
        });
    }
    out
}

impl Proposal {
    /// Whether `existing` (an earlier action on the same device) already settles what this
    /// proposes: pending, running or done — proposing it again would only repeat it (another
    /// alert of the same story, a retro-hunt hit on a device being remediated) — or rejected
    /// or undone by an analyst, whose decision automation does not fight.
    pub fn is_covered_by(&self, existing: &RemediationAction) -> bool {
        !matches!(
            existing.status,
            RemediationStatus::Failed | RemediationStatus::Expired
        ) && existing.action_type == self.kind
            && existing.sha1 == self.sha1
            && existing.process_id == self.process_id
            && (self.kind != RemediationType::RemovePersistence
                || (existing.file_path == self.path && existing.entries == self.entries))
            && existing.indicator_type == self.indicator.as_ref().map(|i| i.0)
            && existing
                .indicator_value
                .as_deref()
                .map(str::to_ascii_lowercase)
                == self.indicator.as_ref().map(|i| i.1.to_ascii_lowercase())
    }
}

/// One proposed remediation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub kind: RemediationType,
    pub entity: usize,
    pub path: Option<String>,
    pub sha1: Option<String>,
    pub process_id: Option<u32>,
    pub entries: Vec<String>,
    pub indicator: Option<(IndicatorType, String)>,
}

/// The state an investigation with these actions is in, and a line saying why; `None` when
/// it has none.
pub fn investigation_state(actions: &[RemediationAction]) -> Option<(InvestigationState, String)> {
    if actions.is_empty() {
        return None;
    }
    let count =
        |f: &dyn Fn(RemediationStatus) -> bool| actions.iter().filter(|a| f(a.status)).count();
    let pending = count(&|s| s == RemediationStatus::PendingApproval);
    let running = count(&|s| s == RemediationStatus::Running);
    let done = count(&|s| matches!(s, RemediationStatus::Completed | RemediationStatus::Undone));
    let failed = count(&|s| s == RemediationStatus::Failed);
    let rejected = count(&|s| s == RemediationStatus::Rejected);
    let expired = count(&|s| s == RemediationStatus::Expired);
    let summary = format!(
        "{} remediation actions: {done} completed, {running} running, {pending} pending approval, {failed} failed, {rejected} rejected, {expired} expired.",
        actions.len()
    );
    let state = if pending > 0 {
        InvestigationState::PendingApproval
    } else if running > 0 {
        InvestigationState::Running
    } else if done == actions.len() {
        InvestigationState::SuccessfullyRemediated
    } else if done > 0 {
        InvestigationState::PartiallyRemediated
    } else if failed > 0 {
        InvestigationState::Failed
    } else if rejected > 0 {
        InvestigationState::TerminatedByUser
    } else {
        InvestigationState::TerminatedBySystem
    };
    Some((state, summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::investigation::{EvidenceGraph, Signal, entity};

    #[test]
    fn folders_as_the_semi_levels_see_them() {
        assert_eq!(folder_class("/tmp/x"), FolderClass::Temp);
        assert_eq!(folder_class("/home/ann/Downloads/x.sh"), FolderClass::Temp);
        assert_eq!(folder_class("/root/Downloads/x"), FolderClass::Temp);
        assert_eq!(folder_class("/usr/bin/x"), FolderClass::Core);
        assert_eq!(folder_class("/etc/cron.d/x"), FolderClass::Core);
        assert_eq!(folder_class("/home/ann/bin/x"), FolderClass::Other);
        assert_eq!(folder_class(r"C:\Windows\Temp\a.exe"), FolderClass::Temp);
        assert_eq!(
            folder_class(r"C:\Windows\System32\a.dll"),
            FolderClass::Core
        );
        assert_eq!(
            folder_class(r"C:\Users\ann\AppData\Local\Temp\a.exe"),
            FolderClass::Temp
        );
        assert_eq!(
            folder_class(r"C:\Users\ann\Desktop\a.exe"),
            FolderClass::Other
        );
    }

    #[test]
    fn approval_by_level_and_folder() {
        use AutomationLevel::*;
        use RemediationType::*;
        let q = |l, p| needs_approval(l, QuarantineFile, Some(p));
        assert_eq!(q(FullRemediation, "/usr/bin/x"), Some(false));
        assert_eq!(q(SemiApprovalAllFolders, "/tmp/x"), Some(true));
        assert_eq!(q(SemiApprovalCoreFolders, "/usr/bin/x"), Some(true));
        assert_eq!(q(SemiApprovalCoreFolders, "/opt/x"), Some(false));
        assert_eq!(q(SemiApprovalNonTempFolders, "/tmp/x"), Some(false));
        assert_eq!(q(SemiApprovalNonTempFolders, "/opt/x"), Some(true));
        assert_eq!(q(NoAutomatedResponse, "/tmp/x"), None);
        assert_eq!(
            needs_approval(SemiApprovalNonTempFolders, IsolateDevice, None),
            Some(true)
        );
        assert_eq!(
            needs_approval(FullRemediation, IsolateDevice, None),
            Some(false)
        );
    }

    #[test]
    fn proposals_for_an_active_c2_implant() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(100);
        let mut g = EvidenceGraph::default();
        let ip = g.add(entity(EntityType::Ip, "198.51.100.7"));
        g.signal(ip, Signal::Malicious("alert".into()));
        let lan = g.add(entity(EntityType::Ip, "10.0.0.9"));
        g.signal(lan, Signal::Malicious("alert".into()));
        let mut p = entity(EntityType::Process, "implant (pid 9)");
        p.process_id = Some(9);
        p.last_seen = Some(now - Duration::minutes(5));
        let p = g.add(p);
        let mut f = entity(EntityType::File, "/tmp/implant");
        f.sha1 = Some("a".repeat(40));
        f.sha256 = Some("b".repeat(64));
        f.path = Some("/tmp/implant".into());
        let f = g.add(f);
        g.relate(p, ip, RelationKind::ConnectedTo);
        g.relate(p, lan, RelationKind::ConnectedTo);
        g.relate(f, p, RelationKind::ImageOf);
        g.judge(10);
        let shared = [IndicatorType::FileSha256, IndicatorType::IpAddress];
        let kinds: Vec<_> = propose(&g.entities, &g.relations, &shared, now)
            .into_iter()
            .map(|p| (p.kind, p.indicator.map(|i| i.1)))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (RemediationType::BlockIndicator, Some("198.51.100.7".into())),
                (RemediationType::QuarantineFile, None),
                (RemediationType::BlockIndicator, Some("b".repeat(64))),
                (RemediationType::IsolateDevice, None),
            ]
        );
        // An hour later the channel is no longer active: no isolation.
        let later = propose(&g.entities, &g.relations, &shared, now + Duration::hours(2));
        assert!(
            later
                .iter()
                .all(|p| p.kind != RemediationType::IsolateDevice)
        );
    }

    #[test]
    fn processes_are_killed_and_entries_removed_unless_the_device_shows_them_gone() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(100);
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAIHq8i1bWx7f1nq0wLr3bZ0s9vJ8T3yqJ4uZl5aZ0bCdE";
        let mut g = EvidenceGraph::default();
        // A reverse shell: bash, spawned by a malicious dropper whose file is gone.
        let mut dropper = entity(EntityType::Process, "dropper (pid 50)");
        dropper.process_id = Some(50);
        dropper.path = Some("/tmp/dropper".into());
        let dropper = g.add(dropper);
        g.signal(dropper, Signal::Malicious("alert".into()));
        let mut dropper_file = entity(EntityType::File, "/tmp/dropper");
        dropper_file.sha1 = Some("d".repeat(40));
        dropper_file.path = Some("/tmp/dropper".into());
        dropper_file.live_state = Some(LiveState::Absent);
        let dropper_file = g.add(dropper_file);
        g.relate(dropper_file, dropper, RelationKind::ImageOf);
        let mut shell = entity(EntityType::Process, "bash (pid 51)");
        shell.process_id = Some(51);
        shell.path = Some("/usr/bin/bash".into());
        shell.live_state = Some(LiveState::Running);
        let shell = g.add(shell);
        g.relate(dropper, shell, RelationKind::Spawned);
        let mut gone = entity(EntityType::Process, "sleep (pid 52)");
        gone.process_id = Some(52);
        gone.path = Some("/usr/bin/sleep".into());
        gone.live_state = Some(LiveState::NotRunning);
        let gone = g.add(gone);
        g.relate(dropper, gone, RelationKind::Spawned);
        let mut keys = entity(
            EntityType::Persistence,
            "authorized key /root/.ssh/authorized_keys",
        );
        keys.path = Some("/root/.ssh/authorized_keys".into());
        keys.entries = vec![key.into()];
        let keys = g.add(keys);
        g.relate(shell, keys, RelationKind::Created);
        let mut rc = entity(EntityType::Persistence, "start-up script /root/.bashrc");
        rc.path = Some("/root/.bashrc".into());
        let rc = g.add(rc);
        g.relate(shell, rc, RelationKind::Created);
        let mut unit = entity(EntityType::Persistence, "systemd unit");
        unit.path = Some("/etc/systemd/system/x.service".into());
        let unit = g.add(unit);
        g.relate(shell, unit, RelationKind::Created);
        g.judge(10);
        let proposed = propose(&g.entities, &g.relations, &[], now);
        let got: Vec<_> = proposed
            .iter()
            .map(|p| (p.kind, p.entity, p.process_id, p.entries.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                // The dropper's file is gone: its process is killed instead.
                (RemediationType::KillProcess, dropper, Some(50), vec![]),
                (RemediationType::KillProcess, shell, Some(51), vec![]),
                (
                    RemediationType::RemovePersistence,
                    keys,
                    None,
                    vec![key.to_owned()]
                ),
                // The .bashrc line is not known: the file is the owner's too, so nothing.
                (RemediationType::RemovePersistence, unit, None, vec![]),
            ]
        );
        let _ = (gone, rc);
        // Killing a process is held under Semi levels by its image's folder.
        assert_eq!(
            needs_approval(
                AutomationLevel::SemiApprovalNonTempFolders,
                RemediationType::KillProcess,
                Some("/tmp/dropper")
            ),
            Some(false)
        );
        // A kill of another pid is not covered by this one.
        let mut a = action(RemediationStatus::Completed);
        a.action_type = RemediationType::KillProcess;
        a.process_id = Some(50);
        assert!(proposed[0].is_covered_by(&a));
        assert!(!proposed[1].is_covered_by(&a));
    }

    fn action(status: RemediationStatus) -> RemediationAction {
        let now = OffsetDateTime::UNIX_EPOCH;
        RemediationAction {
            id: "1".into(),
            investigation_id: "1".into(),
            machine_id: "m".into(),
            computer_dns_name: None,
            action_type: RemediationType::QuarantineFile,
            entity_name: "f".into(),
            entity_id: 0,
            sha1: None,
            file_path: None,
            process_id: None,
            entries: vec![],
            indicator_type: None,
            indicator_value: None,
            reasons: vec![],
            status,
            status_details: None,
            approval_required: true,
            created_time: now,
            last_update_time: now,
            expiration_time: Some(now + APPROVAL_TIMEOUT),
            decided_by: None,
            decision_comment: None,
            decision_time: None,
            machine_action_id: None,
            undo_machine_action_id: None,
            indicator_id: None,
        }
    }

    #[test]
    fn pending_actions_expire_after_seven_days_and_cannot_be_decided_then() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut a = action(RemediationStatus::PendingApproval);
        assert!(a.check_pending(now + Duration::days(6)).is_ok());
        assert!(a.check_pending(now + APPROVAL_TIMEOUT).is_err());
        assert!(!a.expire(now + Duration::days(6)));
        assert!(a.expire(now + APPROVAL_TIMEOUT));
        assert_eq!(a.status, RemediationStatus::Expired);
        assert!(a.reject("x", "y", now).is_err());
    }

    #[test]
    fn a_proposal_is_not_repeated_nor_made_against_an_analysts_decision() {
        use RemediationStatus::*;
        let p = Proposal {
            kind: RemediationType::QuarantineFile,
            entity: 0,
            path: None,
            sha1: Some("a".repeat(40)),
            process_id: None,
            entries: vec![],
            indicator: None,
        };
        let earlier = |status, sha1: &str| RemediationAction {
            sha1: Some(sha1.into()),
            ..action(status)
        };
        for s in [PendingApproval, Running, Completed, Rejected, Undone] {
            assert!(p.is_covered_by(&earlier(s, &"a".repeat(40))), "{s:?}");
        }
        for s in [Failed, Expired] {
            assert!(!p.is_covered_by(&earlier(s, &"a".repeat(40))), "{s:?}");
        }
        assert!(!p.is_covered_by(&earlier(Completed, &"b".repeat(40))));
    }

    #[test]
    fn investigation_state_follows_its_actions() {
        use RemediationStatus::*;
        let st = |s: &[RemediationStatus]| {
            investigation_state(&s.iter().map(|s| action(*s)).collect::<Vec<_>>()).map(|x| x.0)
        };
        assert_eq!(st(&[]), None);
        assert_eq!(
            st(&[Completed, PendingApproval]),
            Some(InvestigationState::PendingApproval)
        );
        assert_eq!(st(&[Completed, Running]), Some(InvestigationState::Running));
        assert_eq!(
            st(&[Completed, Completed]),
            Some(InvestigationState::SuccessfullyRemediated)
        );
        assert_eq!(
            st(&[Completed, Rejected]),
            Some(InvestigationState::PartiallyRemediated)
        );
        assert_eq!(st(&[Failed, Rejected]), Some(InvestigationState::Failed));
        assert_eq!(
            st(&[Rejected, Expired]),
            Some(InvestigationState::TerminatedByUser)
        );
        assert_eq!(st(&[Expired]), Some(InvestigationState::TerminatedBySystem));
    }
}
