//! Automated investigations (reference §5.1): the resource, its state, and the evidence graph
//! an investigation builds and judges.
//!
//! The graph is built by `rampart-respond` from telemetry around the triggering alert; this
//! module holds its shape and the rules that give each entity a verdict, so the rules are
//! plain functions that tests can drive without a server.

use crate::action_target::{
    EvidenceRequest, FileProbe, LiveEvidence, MAX_PROBED, ProcessTarget, check_path,
};
use crate::alert::InvestigationState;
use crate::machine::AutomationLevel;
use crate::odata::{EntitySet, Field, FieldType};
use crate::remediation::{FolderClass, folder_class};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Investigation {
    /// A number as a string, e.g. `"63004"`.
    pub id: String,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start_time: Option<OffsetDateTime>,
    #[serde(with = "crate::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end_time: Option<OffsetDateTime>,
    pub cancelled_by: Option<String>,
    pub state: InvestigationState,
    pub status_details: Option<String>,
    pub machine_id: Option<String>,
    pub computer_dns_name: Option<String>,
    pub triggering_alert_id: Option<String>,
    /// Who asked for it and why (Rampart): `startInvestigation`'s requestor and `Comment`.
    pub requestor: Option<String>,
    pub requestor_comment: Option<String>,
    /// When an investigator took it up (Rampart): one that took it up and stopped mid-way
    /// leaves it `Running` with this time, and it is queued again.
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub claimed_time: Option<OffsetDateTime>,
    /// The device group's automation level when the investigation ran (Rampart).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub automation_level: Option<AutomationLevel>,
    /// The entities examined, each with its verdict and reasons (Rampart).
    #[serde(default)]
    pub entities: Vec<InvestigatedEntity>,
    /// How the entities relate: who spawned, ran, wrote or contacted what (Rampart).
    #[serde(default)]
    pub relations: Vec<Relation>,
    /// The evidence that could not be gathered, and why (Rampart): what the verdicts could not
    /// take into account.
    #[serde(default)]
    pub not_examined: Vec<String>,
    /// The machine action that looks at the device live for this investigation (Rampart); the
    /// investigation is `PendingResource` while it waits for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_evidence_action_id: Option<String>,
}

impl Investigation {
    /// A queued investigation of one machine, to be picked up by the investigator.
    pub fn queued(machine_id: &str, dns_name: Option<String>, now: OffsetDateTime) -> Self {
        Investigation {
            id: String::new(),
            start_time: Some(now),
            end_time: None,
            cancelled_by: None,
            state: InvestigationState::Queued,
            status_details: None,
            machine_id: Some(machine_id.to_owned()),
            computer_dns_name: dns_name,
            triggering_alert_id: None,
            requestor: None,
            requestor_comment: None,
            claimed_time: None,
            automation_level: None,
            entities: Vec::new(),
            relations: Vec::new(),
            not_examined: Vec::new(),
            live_evidence_action_id: None,
        }
    }

    /// What the evidence showed, in a line: the entities examined by verdict, and what could
    /// not be examined.
    pub fn findings(&self) -> String {
        let count = |v: Verdict| self.entities.iter().filter(|e| e.verdict == v).count();
        let mut line = format!(
            "{} entities examined: {} malicious, {} suspicious.",
            self.entities.len(),
            count(Verdict::Malicious),
            count(Verdict::Suspicious)
        );
        if !self.not_examined.is_empty() {
            line.push_str(&format!(" Not examined: {}.", self.not_examined.join("; ")));
        }
        line
    }

    /// Whether the investigation has ended (nothing will change it any more).
    pub fn is_finished(&self) -> bool {
        !matches!(
            self.state,
            InvestigationState::Queued
                | InvestigationState::Running
                | InvestigationState::PendingApproval
                | InvestigationState::PendingResource
        )
    }

    /// Moves to `state`, stamping the end time when it is a final one.
    pub fn settle(&mut self, state: InvestigationState, details: String, now: OffsetDateTime) {
        self.state = state;
        self.status_details = Some(details);
        if self.is_finished() && self.end_time.is_none() {
            self.end_time = Some(now);
        }
    }
}

pub static INVESTIGATIONS: EntitySet = EntitySet {
    name: "Investigations",
    fields: &[
        Field::new("id", FieldType::String).not_null(),
        Field::new("startTime", FieldType::DateTime),
        Field::new("state", FieldType::Enum(InvestigationState::VARIANTS)).not_null(),
        Field::new("machineId", FieldType::String),
        Field::new("triggeringAlertId", FieldType::String),
    ],
    expand: &[],
};

string_enum!(
    /// The kind of an investigated entity.
    EntityType { Process, File, Ip, Url, User, Persistence }
);
string_enum!(
    /// What an investigation concluded about an entity.
    Verdict { Malicious, Suspicious, Clean }
);
string_enum!(
    /// An entity as the device showed it live: a process `Running` or `NotRunning` (gone, or
    /// its id now taken by another program); a file `Present`, `Absent`, or `Changed` (there
    /// with other content).
    LiveState { Running, NotRunning, Present, Absent, Changed }
);
string_enum!(
    /// An edge of the evidence graph, read "from <kind> to": a process `Spawned` a process,
    /// a file is the `ImageOf` a process, a process `ConnectedTo` an address or URL, `Wrote`
    /// a file or `Created` a persistence entry, a user `LoggedOn` (to the device).
    RelationKind { Spawned, ImageOf, ConnectedTo, Wrote, Created, LoggedOn }
);

/// One entity of an investigation, with its verdict and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvestigatedEntity {
    /// Its index in the investigation's `entities`; relations refer to it.
    pub id: usize,
    #[schema(value_type = String)]
    pub entity_type: EntityType,
    /// What an analyst reads: a path, an address, a URL, `name (pid N)`, an account.
    pub name: String,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    /// The file's path; for a process, its image's; for persistence, the file that holds it.
    pub path: Option<String>,
    pub process_id: Option<i64>,
    pub command_line: Option<String>,
    #[serde(with = "crate::timefmt::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<OffsetDateTime>,
    #[schema(value_type = String)]
    pub verdict: Verdict,
    /// Every reason found, the deciding one first.
    pub reasons: Vec<String>,
    /// Devices of the tenant that saw this file (files only; `None` when not looked up).
    pub prevalence: Option<u64>,
    /// Persistence: the entries the malicious process added, when its command line shows
    /// them (the public keys it put in `authorized_keys`, the line it echoed into a crontab).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<String>,
    /// What the device said of it when the investigation looked live (`None`: not looked at,
    /// or the device did not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub live_state: Option<LiveState>,
    /// A blocking indicator covers it already: blocking it again would change nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
}

/// An edge of the evidence graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    pub from: usize,
    pub to: usize,
    #[schema(value_type = String)]
    pub kind: RelationKind,
}

/// What is known of an entity before judging, from outside the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// An `Allowed` indicator: the entity is clean whatever else says (an analyst's word).
    Allowed(String),
    /// Known bad on its own: a blocking indicator, an antivirus or YARA hit, a high-severity
    /// alert naming it.
    Malicious(String),
    /// Worth a look, not enough to act: a medium-severity alert naming it, an alerting
    /// indicator.
    Suspicious(String),
}

/// A file seen on at least this many devices, and on this share of the fleet, is too common
/// to be condemned by association (a shell a malicious script ran in, say); a direct signal
/// still condemns it.
pub const PREVALENT_MIN_DEVICES: u64 = 5;
pub const PREVALENT_FLEET_PERCENT: u64 = 10;

/// Whether a file seen on `devices` of a fleet of `fleet` is prevalent.
pub fn is_prevalent(devices: u64, fleet: u64) -> bool {
    devices >= PREVALENT_MIN_DEVICES && devices * 100 >= fleet * PREVALENT_FLEET_PERCENT
}

/// The evidence graph an investigation builds: entities (deduplicated by identity) and the
/// relations between them.
#[derive(Clone, Debug, Default)]
pub struct EvidenceGraph {
    pub entities: Vec<InvestigatedEntity>,
    pub relations: Vec<Relation>,
    signals: Vec<Vec<Signal>>,
}

impl EvidenceGraph {
    /// Adds an entity, or returns the one with the same identity (filling in what it lacked).
    pub fn add(&mut self, mut e: InvestigatedEntity) -> usize {
        if let Some(i) = self.entities.iter().position(|x| same_entity(x, &e)) {
            let x = &mut self.entities[i];
            x.sha1 = x.sha1.take().or(e.sha1);
            x.sha256 = x.sha256.take().or(e.sha256);
            x.path = x.path.take().or(e.path);
            x.command_line = x.command_line.take().or(e.command_line);
            x.last_seen = x.last_seen.max(e.last_seen);
            for entry in e.entries {
                if !x.entries.contains(&entry) {
                    x.entries.push(entry);
                }
            }
            return i;
        }
        e.id = self.entities.len();
        e.verdict = Verdict::Clean;
        self.entities.push(e);
        self.signals.push(Vec::new());
        self.entities.len() - 1
    }

    pub fn relate(&mut self, from: usize, to: usize, kind: RelationKind) {
        let r = Relation { from, to, kind };
        if from != to && !self.relations.contains(&r) {
            self.relations.push(r);
        }
    }

    pub fn signal(&mut self, entity: usize, signal: Signal) {
        if let Some(s) = self.signals.get_mut(entity)
            && !s.contains(&signal)
        {
            s.push(signal);
        }
    }

    /// Gives every entity its verdict: the direct signals first, then what follows along the
    /// relations until nothing changes —
    /// * a process is malicious when it runs a malicious file, was spawned by a malicious
    ///   process, or contacted a malicious address or URL;
    /// * a file is malicious when it is the image of a malicious process or was written by
    ///   one, and a persistence entry when a malicious process created it — unless the file
    ///   is prevalent in the fleet, or is a system file (core folder) a malicious process ran;
    /// * what a malicious process contacted is suspicious.
    ///
    /// An `Allowed` indicator decides for its entity and is never overruled. Deterministic:
    /// the same graph and signals always give the same verdicts and reasons.
    pub fn judge(&mut self, fleet: u64) {
        let n = self.entities.len();
        let mut allowed = vec![false; n];
        for (i, signals) in self.signals.iter().enumerate() {
            let e = &mut self.entities[i];
            e.reasons.clear();
            e.verdict = Verdict::Clean;
            if let Some(Signal::Allowed(why)) =
                signals.iter().find(|s| matches!(s, Signal::Allowed(_)))
            {
                allowed[i] = true;
                e.reasons.push(why.clone());
                continue;
            }
            for s in signals {
                match s {
                    Signal::Malicious(why) => raise(e, Verdict::Malicious, why.clone()),
                    Signal::Suspicious(why) => raise(e, Verdict::Suspicious, why.clone()),
                    Signal::Allowed(_) => {}
                }
            }
        }
        let prevalent: Vec<bool> = self
            .entities
            .iter()
            .map(|e| e.prevalence.is_some_and(|p| is_prevalent(p, fleet)))
            .collect();
        // A system file a malicious process ran is still everyone's shell or interpreter; one a
        // malicious process wrote into a system folder is not spared.
        let system_image: Vec<bool> = self
            .entities
            .iter()
            .map(|e| {
                e.entity_type == EntityType::File
                    && e.path.as_deref().map(folder_class) == Some(FolderClass::Core)
            })
            .collect();
        loop {
            let mut changed = false;
            for r in self.relations.clone() {
                let (from, to) = (&self.entities[r.from], &self.entities[r.to]);
                let (target, why) = match r.kind {
                    RelationKind::ImageOf if from.verdict == Verdict::Malicious => {
                        (r.to, format!("runs malicious file {}", from.name))
                    }
                    RelationKind::ImageOf if to.verdict == Verdict::Malicious => {
                        (r.from, format!("image of malicious process {}", to.name))
                    }
                    RelationKind::Spawned if from.verdict == Verdict::Malicious => {
                        (r.to, format!("spawned by malicious process {}", from.name))
                    }
                    RelationKind::ConnectedTo if to.verdict == Verdict::Malicious => {
                        (r.from, format!("connected to malicious {}", to.name))
                    }
                    RelationKind::Wrote if from.verdict == Verdict::Malicious => {
                        (r.to, format!("written by malicious process {}", from.name))
                    }
                    RelationKind::Created if from.verdict == Verdict::Malicious => {
                        (r.to, format!("created by malicious process {}", from.name))
                    }
                    RelationKind::ConnectedTo if from.verdict == Verdict::Malicious => {
                        if !allowed[r.to] && to.verdict == Verdict::Clean {
                            let why = format!("contacted by malicious process {}", from.name);
                            raise(&mut self.entities[r.to], Verdict::Suspicious, why);
                            changed = true;
                        }
                        continue;
                    }
                    _ => continue,
                };
                let e = &mut self.entities[target];
                if allowed[target] || e.verdict == Verdict::Malicious {
                    continue;
                }
                let spared = if prevalent[target] {
                    Some(format!(
                        "prevalent (seen on {} devices): not condemned by association",
                        e.prevalence.unwrap_or(0)
                    ))
                } else if r.kind == RelationKind::ImageOf && system_image[target] {
                    Some("a system file (core folder): not condemned by the process it ran".into())
                } else {
                    None
                };
                if let Some(note) = spared {
                    if !e.reasons.contains(&note) {
                        e.reasons.push(note);
                        changed = true;
                    }
                    continue;
                }
                raise(e, Verdict::Malicious, why);
                changed = true;
            }
            if !changed {
                break;
            }
        }
        for (i, e) in self.entities.iter_mut().enumerate() {
            if e.verdict == Verdict::Clean && !allowed[i] && e.reasons.is_empty() {
                e.reasons.push("no malicious signal".into());
            }
        }
    }

    /// The processes that contacted `entity` (`ConnectedTo` edges into it).
    pub fn contacted_by(&self, entity: usize) -> impl Iterator<Item = &InvestigatedEntity> {
        self.relations
            .iter()
            .filter(move |r| r.to == entity && r.kind == RelationKind::ConnectedTo)
            .map(|r| &self.entities[r.from])
    }

    /// The graph as an investigation stores it.
    pub fn into_parts(self) -> (Vec<InvestigatedEntity>, Vec<Relation>) {
        (self.entities, self.relations)
    }
}

/// Raises `e` to `verdict` (never lowers it), keeping the deciding reason first.
fn raise(e: &mut InvestigatedEntity, verdict: Verdict, why: String) {
    let rank = |v: Verdict| match v {
        Verdict::Clean => 0,
        Verdict::Suspicious => 1,
        Verdict::Malicious => 2,
    };
    if e.reasons.contains(&why) {
        return;
    }
    if rank(verdict) > rank(e.verdict) {
        e.verdict = verdict;
        e.reasons.insert(0, why);
    } else {
        e.reasons.push(why);
    }
}

/// Whether two entities are the same thing: a file by hash (or path when it has none), a
/// process by its id and image, an address, URL or account by its value.
fn same_entity(a: &InvestigatedEntity, b: &InvestigatedEntity) -> bool {
    if a.entity_type != b.entity_type {
        return false;
    }
    let eq = |x: &Option<String>, y: &Option<String>| match (x, y) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    };
    match a.entity_type {
        EntityType::File => {
            eq(&a.sha1, &b.sha1)
                || eq(&a.sha256, &b.sha256)
                || (a.sha1.is_none() && a.sha256.is_none() && eq(&a.path, &b.path))
        }
        EntityType::Process => {
            a.process_id == b.process_id
                && (a.path.is_none() || b.path.is_none() || eq(&a.path, &b.path))
        }
        EntityType::Persistence => eq(&a.path, &b.path),
        EntityType::Ip | EntityType::Url | EntityType::User => a.name.eq_ignore_ascii_case(&b.name),
    }
}

/// A blank entity of a kind, named; callers fill in the rest.
pub fn entity(entity_type: EntityType, name: impl Into<String>) -> InvestigatedEntity {
    InvestigatedEntity {
        id: 0,
        entity_type,
        name: name.into(),
        sha1: None,
        sha256: None,
        path: None,
        process_id: None,
        command_line: None,
        last_seen: None,
        verdict: Verdict::Clean,
        reasons: Vec::new(),
        prevalence: None,
        entries: Vec::new(),
        live_state: None,
        blocked: false,
    }
}

/// What an investigation asks the device to show live: whether its malicious and suspicious
/// processes still run (the image the telemetry saw), and whether its malicious and suspicious
/// files and persistence files are still there. `None` when there is nothing to ask.
pub fn live_request(
    investigation_id: &str,
    entities: &[InvestigatedEntity],
) -> Option<EvidenceRequest> {
    let of_interest = |e: &&InvestigatedEntity| e.verdict != Verdict::Clean;
    fn usable(p: &Option<String>) -> Option<&str> {
        p.as_deref().filter(|p| check_path("path", p).is_ok())
    }
    let processes: Vec<ProcessTarget> = entities
        .iter()
        .filter(of_interest)
        .filter(|e| e.entity_type == EntityType::Process)
        .filter_map(|e| {
            let pid = e
                .process_id
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 1)?;
            Some(ProcessTarget {
                pid,
                image_path: usable(&e.path)?.to_owned(),
            })
        })
        .take(MAX_PROBED)
        .collect();
    let mut files: Vec<FileProbe> = Vec::new();
    for e in entities
        .iter()
        .filter(of_interest)
        .filter(|e| matches!(e.entity_type, EntityType::File | EntityType::Persistence))
    {
        if let Some(path) = usable(&e.path)
            && files.len() < MAX_PROBED
            && !files.iter().any(|f| f.path == path)
        {
            files.push(FileProbe {
                path: path.to_owned(),
                sha1: e.sha1.clone(),
            });
        }
    }
    (!processes.is_empty() || !files.is_empty()).then(|| EvidenceRequest {
        investigation_id: investigation_id.to_owned(),
        processes,
        files,
    })
}

/// Records on the entities what the device showed live.
pub fn apply_live(
    entities: &mut [InvestigatedEntity],
    asked: &EvidenceRequest,
    seen: &LiveEvidence,
) {
    for (a, s) in asked.processes.iter().zip(&seen.processes) {
        for e in entities.iter_mut().filter(|e| {
            e.entity_type == EntityType::Process
                && e.process_id == Some(i64::from(a.pid))
                && e.path.as_deref() == Some(a.image_path.as_str())
        }) {
            e.live_state = Some(if s.running {
                LiveState::Running
            } else {
                LiveState::NotRunning
            });
        }
    }
    for s in &seen.files {
        for e in entities.iter_mut().filter(|e| {
            matches!(e.entity_type, EntityType::File | EntityType::Persistence)
                && e.path.as_deref() == Some(s.path.as_str())
        }) {
            let changed = match (&e.sha1, &s.sha1) {
                (Some(then), Some(now)) => !then.eq_ignore_ascii_case(now),
                _ => false,
            };
            e.live_state = Some(match (s.exists, changed) {
                (false, _) => LiveState::Absent,
                (true, true) => LiveState::Changed,
                (true, false) => LiveState::Present,
            });
        }
    }
}

/// How a persistence location holds its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistenceShape {
    /// The file is the entry: a cron.d file, a systemd unit, an init or profile.d script.
    /// Taking it out takes out nothing else.
    OwnFile,
    /// The entry is lines of a file with other entries: a crontab, `authorized_keys`, a shell
    /// rc file, `ld.so.preload`. Only the attacker's lines may go.
    Lines,
}

/// The shape of the persistence location at `path`; `None` when it is not one.
pub fn persistence_shape(path: &str) -> Option<PersistenceShape> {
    let kind = persistence_kind(path)?;
    let own_file = match kind {
        "systemd unit" => true,
        "cron entry" => [
            "/etc/cron.d/",
            "/etc/cron.hourly/",
            "/etc/cron.daily/",
            "/etc/cron.weekly/",
            "/etc/cron.monthly/",
        ]
        .iter()
        .any(|d| path.starts_with(d)),
        _ => path.starts_with("/etc/init.d/") || path.starts_with("/etc/profile.d/"),
    };
    Some(if own_file {
        PersistenceShape::OwnFile
    } else {
        PersistenceShape::Lines
    })
}

/// The entries `command_line` adds to the persistence file at `path`, as far as it shows
/// them: for `authorized_keys`, the public keys it names (their base64 blobs, which every
/// OpenSSH key type starts with `AAAA`); for other files it writes to with `>>`, the text it
/// echoes. Empty when the command line does not show them (the key came from a download, say).
pub fn added_entries(path: &str, command_line: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |e: &str| {
        let e = e.trim();
        if e.len() >= crate::action_target::MIN_ENTRY_LEN
            && e.len() <= crate::action_target::MAX_ENTRY_LEN
            && !out.iter().any(|x| x == e)
            && out.len() < crate::action_target::MAX_ENTRIES
        {
            out.push(e.to_owned());
        }
    };
    if persistence_kind(path) == Some("authorized key") {
        for token in command_line.split(|c: char| c.is_whitespace() || "'\"`;|&<>()".contains(c)) {
            let is_blob = token.starts_with("AAAA")
                && token.len() >= 40
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
            if is_blob {
                push(token);
            }
        }
        return out;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if !command_line.contains(">>") || name.is_empty() || !command_line.contains(name) {
        return out;
    }
    // `echo '…' >> file`, `printf "…\n" >> file`: the quoted text before the redirection.
    for part in command_line.split(">>") {
        let Some(at) = ["echo ", "printf "]
            .iter()
            .filter_map(|w| part.rfind(w))
            .max()
        else {
            continue;
        };
        let rest = part[at..].split_once(' ').map_or("", |(_, r)| r).trim();
        let text = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => rest[1..].rsplit_once(q).map_or("", |(t, _)| t),
            _ => rest,
        };
        push(text.trim_end_matches("\\n"));
    }
    out
}

/// Where a persistence entry lives on Linux: crontabs, systemd units, SSH authorized keys,
/// shell start-up and rc files. `None` for other paths.
pub fn persistence_kind(path: &str) -> Option<&'static str> {
    let p = path;
    if p.starts_with("/etc/cron")
        || p.starts_with("/var/spool/cron/")
        || p == "/etc/crontab"
        || p.starts_with("/etc/anacrontab")
    {
        Some("cron entry")
    } else if (p.starts_with("/etc/systemd/")
        || p.starts_with("/lib/systemd/system/")
        || p.starts_with("/usr/lib/systemd/system/")
        || p.contains("/.config/systemd/user/"))
        && [".service", ".timer", ".socket", ".path"]
            .iter()
            .any(|s| p.ends_with(s))
    {
        Some("systemd unit")
    } else if p.ends_with("/.ssh/authorized_keys") || p.ends_with("/.ssh/authorized_keys2") {
        Some("authorized key")
    } else if p == "/etc/rc.local"
        || p.starts_with("/etc/profile.d/")
        || p.starts_with("/etc/init.d/")
        || p.ends_with("/.bashrc")
        || p.ends_with("/.profile")
        || p.starts_with("/etc/ld.so.preload")
    {
        Some("start-up script")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(g: &mut EvidenceGraph, sha1: &str, path: &str, prevalence: u64) -> usize {
        let mut e = entity(EntityType::File, path);
        e.sha1 = Some(sha1.into());
        e.path = Some(path.into());
        e.prevalence = Some(prevalence);
        g.add(e)
    }

    fn process(g: &mut EvidenceGraph, pid: i64, path: &str) -> usize {
        let mut e = entity(EntityType::Process, format!("{path} (pid {pid})"));
        e.process_id = Some(pid);
        e.path = Some(path.into());
        g.add(e)
    }

    /// The C2 story: an alert names a remote address; the process that contacted it, its
    /// image, what it spawned and wrote are condemned, a prevalent shell is not.
    #[test]
    fn malice_flows_from_a_c2_address_through_process_and_files() {
        let mut g = EvidenceGraph::default();
        let ip = g.add(entity(EntityType::Ip, "198.51.100.7"));
        g.signal(ip, Signal::Malicious("named by High alert 1".into()));
        let implant = process(&mut g, 4242, "/tmp/.x/implant");
        let implant_file = file(&mut g, &"a".repeat(40), "/tmp/.x/implant", 1);
        let shell = process(&mut g, 4300, "/usr/bin/bash");
        let bash = file(&mut g, &"b".repeat(40), "/usr/bin/bash", 90);
        let dropped = file(&mut g, &"c".repeat(40), "/tmp/.x/payload", 1);
        let parent = process(&mut g, 1, "/usr/lib/systemd/systemd");
        let other_ip = g.add(entity(EntityType::Ip, "203.0.113.5"));
        g.relate(implant, ip, RelationKind::ConnectedTo);
        g.relate(implant_file, implant, RelationKind::ImageOf);
        g.relate(implant, shell, RelationKind::Spawned);
        g.relate(bash, shell, RelationKind::ImageOf);
        g.relate(shell, dropped, RelationKind::Wrote);
        g.relate(parent, implant, RelationKind::Spawned);
        g.relate(shell, other_ip, RelationKind::ConnectedTo);
        g.judge(100);
        let v = |i: usize| g.entities[i].verdict;
        assert_eq!(v(implant), Verdict::Malicious);
        assert_eq!(v(implant_file), Verdict::Malicious);
        assert_eq!(v(shell), Verdict::Malicious);
        assert_eq!(v(dropped), Verdict::Malicious);
        assert_eq!(v(bash), Verdict::Clean, "{:?}", g.entities[bash].reasons);
        assert!(g.entities[bash].reasons[0].starts_with("prevalent"));
        assert_eq!(
            v(parent),
            Verdict::Clean,
            "malice does not flow to the parent"
        );
        assert_eq!(v(other_ip), Verdict::Suspicious);
        assert_eq!(
            g.entities[implant].reasons[0],
            "connected to malicious 198.51.100.7"
        );
    }

    #[test]
    fn a_system_file_is_not_condemned_by_the_process_it_ran_but_one_written_there_is() {
        let mut g = EvidenceGraph::default();
        let ip = g.add(entity(EntityType::Ip, "198.51.100.7"));
        g.signal(ip, Signal::Malicious("named by High alert 1".into()));
        // A small fleet: bash is on one device only, so prevalence cannot spare it.
        let shell = process(&mut g, 4300, "/usr/bin/bash");
        let bash = file(&mut g, &"b".repeat(40), "/usr/bin/bash", 1);
        let planted = file(&mut g, &"c".repeat(40), "/usr/bin/.sshd", 1);
        g.relate(shell, ip, RelationKind::ConnectedTo);
        g.relate(bash, shell, RelationKind::ImageOf);
        g.relate(shell, planted, RelationKind::Wrote);
        g.judge(2);
        assert_eq!(g.entities[shell].verdict, Verdict::Malicious);
        assert_eq!(g.entities[bash].verdict, Verdict::Clean);
        assert!(g.entities[bash].reasons[0].starts_with("a system file"));
        assert_eq!(g.entities[planted].verdict, Verdict::Malicious);
    }

    #[test]
    fn an_allowed_indicator_is_never_overruled() {
        let mut g = EvidenceGraph::default();
        let ip = g.add(entity(EntityType::Ip, "198.51.100.7"));
        g.signal(ip, Signal::Malicious("named by alert".into()));
        let p = process(&mut g, 7, "/opt/agent/updater");
        let f = file(&mut g, &"d".repeat(40), "/opt/agent/updater", 1);
        g.signal(f, Signal::Allowed("Allowed indicator 12".into()));
        g.relate(p, ip, RelationKind::ConnectedTo);
        g.relate(f, p, RelationKind::ImageOf);
        g.judge(10);
        assert_eq!(g.entities[p].verdict, Verdict::Malicious);
        assert_eq!(g.entities[f].verdict, Verdict::Clean);
        assert_eq!(
            g.entities[f].reasons,
            vec!["Allowed indicator 12".to_string()]
        );
    }

    #[test]
    fn a_direct_signal_condemns_even_a_prevalent_file() {
        let mut g = EvidenceGraph::default();
        let f = file(&mut g, &"e".repeat(40), "/usr/bin/worm", 500);
        g.signal(f, Signal::Malicious("blocking indicator 3".into()));
        g.judge(600);
        assert_eq!(g.entities[f].verdict, Verdict::Malicious);
    }

    #[test]
    fn entities_are_deduplicated_by_identity() {
        let mut g = EvidenceGraph::default();
        let a = file(&mut g, &"A".repeat(40), "/tmp/a", 1);
        let mut b = entity(EntityType::File, "/tmp/b");
        b.sha1 = Some("a".repeat(40));
        b.sha256 = Some("f".repeat(64));
        assert_eq!(g.add(b), a);
        assert_eq!(g.entities[a].sha256.as_deref(), Some(&*"f".repeat(64)));
        assert_eq!(process(&mut g, 5, "/bin/x"), process(&mut g, 5, "/bin/x"));
        assert_ne!(process(&mut g, 5, "/bin/x"), process(&mut g, 5, "/bin/y"));
    }

    #[test]
    fn the_live_look_asks_about_what_is_not_clean_and_its_answer_is_recorded() {
        use crate::action_target::{FileState, ProcessState};
        let mut g = EvidenceGraph::default();
        let mut p = entity(EntityType::Process, "implant (pid 42)");
        p.process_id = Some(42);
        p.path = Some("/tmp/implant".into());
        let p = g.add(p);
        g.signal(p, Signal::Malicious("alert".into()));
        let f = file(&mut g, &"a".repeat(40), "/tmp/implant", 1);
        g.relate(f, p, RelationKind::ImageOf);
        let mut clean = entity(EntityType::Process, "cron (pid 7)");
        clean.process_id = Some(7);
        clean.path = Some("/usr/sbin/cron".into());
        g.add(clean);
        g.judge(10);
        let (mut entities, _) = g.into_parts();
        let asked = live_request("5", &entities).unwrap();
        assert_eq!(asked.processes.len(), 1);
        assert_eq!(asked.processes[0].pid, 42);
        assert_eq!(asked.files.len(), 1);
        assert!(asked.check().is_ok());
        apply_live(
            &mut entities,
            &asked,
            &LiveEvidence {
                processes: vec![ProcessState {
                    pid: 42,
                    running: false,
                }],
                files: vec![FileState {
                    path: "/tmp/implant".into(),
                    exists: true,
                    sha1: Some("b".repeat(40)),
                }],
            },
        );
        assert_eq!(entities[p].live_state, Some(LiveState::NotRunning));
        assert_eq!(entities[f].live_state, Some(LiveState::Changed));
        assert_eq!(entities[2].live_state, None);
        // Nothing malicious or suspicious: nothing to ask.
        assert!(live_request("5", &entities[2..]).is_none());
    }

    #[test]
    fn persistence_entries_from_the_writers_command_line() {
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAIHq8i1bWx7f1nq0wLr3bZ0s9vJ8T3yqJ4uZl5aZ0bCdE";
        let cmd =
            format!("bash -c \"echo 'ssh-ed25519 {key} evil@c2' >> /root/.ssh/authorized_keys\"");
        assert_eq!(added_entries("/root/.ssh/authorized_keys", &cmd), vec![key]);
        // A key fetched from elsewhere does not show: nothing to name.
        assert!(
            added_entries(
                "/root/.ssh/authorized_keys",
                "curl -s https://x/k >> /root/.ssh/authorized_keys"
            )
            .is_empty()
        );
        assert_eq!(
            added_entries(
                "/etc/crontab",
                "sh -c \"echo '* * * * * root /tmp/.x/run' >> /etc/crontab\""
            ),
            vec!["* * * * * root /tmp/.x/run"]
        );
        assert_eq!(
            added_entries(
                "/home/ann/.bashrc",
                "printf \"/tmp/.x/run &\\n\" >> /home/ann/.bashrc"
            ),
            vec!["/tmp/.x/run &"]
        );
        // Written some other way, or to another file: nothing is guessed.
        assert!(added_entries("/etc/crontab", "vi /etc/crontab").is_empty());
        assert!(added_entries("/etc/crontab", "echo 'aaaaaaaaaaaa' >> /tmp/log").is_empty());

        assert_eq!(
            persistence_shape("/etc/cron.d/update"),
            Some(PersistenceShape::OwnFile)
        );
        assert_eq!(
            persistence_shape("/etc/systemd/system/x.service"),
            Some(PersistenceShape::OwnFile)
        );
        assert_eq!(
            persistence_shape("/etc/crontab"),
            Some(PersistenceShape::Lines)
        );
        assert_eq!(
            persistence_shape("/root/.ssh/authorized_keys"),
            Some(PersistenceShape::Lines)
        );
        assert_eq!(persistence_shape("/tmp/x"), None);
    }

    #[test]
    fn persistence_locations() {
        assert_eq!(persistence_kind("/etc/cron.d/update"), Some("cron entry"));
        assert_eq!(
            persistence_kind("/etc/systemd/system/x.service"),
            Some("systemd unit")
        );
        assert_eq!(
            persistence_kind("/root/.ssh/authorized_keys"),
            Some("authorized key")
        );
        assert_eq!(persistence_kind("/tmp/x.service"), None);
        assert!(is_prevalent(10, 100) && !is_prevalent(4, 10) && !is_prevalent(9, 100));
    }
}
