//! Evidence gathering: the alert's own entities, then what telemetry says around them on the
//! device — the processes behind its files and connections, their process tree up and down,
//! the files and persistence they wrote, where else they connected, who logged on — and what
//! the tenant's indicators and fleet prevalence say of each file, address and URL.
//!
//! Every step is a KQL query over the device's Device* tables, the same engine and schema an
//! analyst hunts with, so each step can be re-run by hand. Values put in query text are
//! checked first (hex hashes, parsed addresses, integers) or quoted.

use super::analysis::AnalysisRuntime;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampNanosecondType};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use rampart_core::alert::{Alert, Severity};
use rampart_core::indicator::IndicatorAction;
use rampart_core::investigation::{
    EntityType, EvidenceGraph, RelationKind, Signal, added_entries, entity, persistence_kind,
};
use rampart_ioc::{Device, FileObservation, IndicatorIndex, NetworkObservation};
use rampart_kql::plan::Limits;
use std::collections::HashMap;
use std::net::IpAddr;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// How deep the process tree is followed below the suspicious processes.
const TREE_DEPTH: usize = 3;
/// Rows read per query at most: an investigation is about one device and one story.
const MAX_ROWS: usize = 2_000;
/// How far back a file's prevalence in the fleet is counted.
pub const PREVALENCE_WINDOW: Duration = Duration::days(7);

/// The device and time range an investigation looks at.
pub struct Scope<'a> {
    pub device_id: &'a str,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub group_id: String,
    pub group_name: Option<String>,
}

/// Builds the evidence graph of an investigation.
pub struct Gatherer<'a> {
    ctx: &'a SessionContext,
    analysis: &'a AnalysisRuntime,
    scope: Scope<'a>,
    limits: Limits,
    pub graph: EvidenceGraph,
    /// Process entities by process id (ids are not reused within an investigation's window
    /// often enough to matter; a reused id joins the same entity only with the same image).
    pids: HashMap<i64, usize>,
    /// Queries that failed, with why; the investigation reports them.
    pub gaps: Vec<String>,
}

impl<'a> Gatherer<'a> {
    pub fn new(
        ctx: &'a SessionContext,
        analysis: &'a AnalysisRuntime,
        scope: Scope<'a>,
        timeout: std::time::Duration,
    ) -> Self {
        Gatherer {
            ctx,
            analysis,
            scope,
            limits: Limits {
                max_rows: MAX_ROWS,
                timeout: Some(timeout),
                memory: None,
            },
            graph: EvidenceGraph::default(),
            pids: HashMap::new(),
            gaps: Vec::new(),
        }
    }

    /// Adds the entities an alert names, with what the alert says of them.
    pub fn seed(&mut self, alert: &Alert) {
        let signal = alert_signal(alert);
        let g = &mut self.graph;
        for e in &alert.evidence {
            let is = |k: &str| e.entity_type.eq_ignore_ascii_case(k);
            if is("Process") {
                let Some(pid) = e.process_id else { continue };
                let path = e.file_path.clone().or_else(|| e.file_name.clone());
                let name = e
                    .file_name
                    .clone()
                    .or_else(|| path.clone())
                    .unwrap_or_default();
                let mut p = entity(EntityType::Process, format!("{name} (pid {pid})"));
                p.process_id = Some(pid);
                p.path = path.clone();
                p.command_line = e.process_command_line.clone();
                p.last_seen = e.process_creation_time.or(alert.last_event_time);
                let p = g.add(p);
                self.pids.insert(pid, p);
                if let Some(s) = &signal {
                    g.signal(p, s.clone());
                }
                if e.sha1.is_some() || e.sha256.is_some() {
                    let f = g.add(file_entity(path, e.sha1.clone(), e.sha256.clone()));
                    g.relate(f, p, RelationKind::ImageOf);
                }
            } else if e.sha1.is_some() || e.sha256.is_some() {
                let path = match (&e.file_path, &e.file_name) {
                    (Some(d), Some(n)) => Some(full_path(d, n)),
                    (d, n) => d.clone().or_else(|| n.clone()),
                };
                let f = g.add(file_entity(path, e.sha1.clone(), e.sha256.clone()));
                if let Some(s) = &signal {
                    g.signal(f, s.clone());
                }
            }
            if let Some(ip) = e.ip_address.as_deref().filter(|_| !e.names_device())
                && let Ok(ip) = ip.trim().parse::<IpAddr>()
            {
                let i = g.add(entity(EntityType::Ip, ip.to_string()));
                if let Some(s) = &signal {
                    g.signal(i, s.clone());
                }
            }
            if let Some(url) = e.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
                let u = g.add(entity(EntityType::Url, url));
                if let Some(s) = &signal {
                    g.signal(u, s.clone());
                }
            }
            if let Some(user) = e.account_name.as_deref().filter(|u| !u.is_empty()) {
                let name = match &e.domain_name {
                    Some(d) if !d.is_empty() => format!("{d}\\{user}"),
                    _ => user.to_owned(),
                };
                g.add(entity(EntityType::User, name));
            }
        }
    }

    /// Follows the seeds through the device's telemetry.
    pub async fn expand(&mut self) {
        self.processes_behind_destinations().await;
        self.processes_of_files().await;
        let mut frontier: Vec<i64> = self.pids.keys().copied().collect();
        for _ in 0..TREE_DEPTH {
            if frontier.is_empty() {
                break;
            }
            frontier = self.children_of(&frontier).await;
        }
        let pids: Vec<i64> = self.pids.keys().copied().collect();
        if !pids.is_empty() {
            self.files_written_by(&pids).await;
            self.destinations_of(&pids).await;
        }
        self.logons().await;
    }

    /// The processes that contacted the seed addresses and URLs.
    async fn processes_behind_destinations(&mut self) {
        let ips: Vec<String> = self
            .of_type(EntityType::Ip)
            .filter_map(|n| n.parse::<IpAddr>().ok())
            .map(|ip| kql_str(&ip.to_string()))
            .collect();
        let hosts: Vec<String> = self
            .of_type(EntityType::Url)
            .filter_map(|u| host_of(&u))
            .map(|h| format!("RemoteUrl has {}", kql_str(&h)))
            .collect();
        if ips.is_empty() && hosts.is_empty() {
            return;
        }
        let mut conditions = Vec::new();
        if !ips.is_empty() {
            conditions.push(format!("RemoteIP in ({})", ips.join(", ")));
        }
        conditions.extend(hosts);
        let q = format!(
            "DeviceNetworkEvents | where {} | where {} \
             | project Timestamp, RemoteIP, RemoteUrl, InitiatingProcessId, InitiatingProcessFileName, \
             InitiatingProcessFolderPath, InitiatingProcessSHA1, InitiatingProcessSHA256, \
             InitiatingProcessCommandLine, InitiatingProcessParentId, InitiatingProcessParentFileName",
            self.device_window(),
            conditions.join(" or ")
        );
        for row in self
            .query("connections to the alert's destinations", &q)
            .await
        {
            let Some(p) = self.initiating_process(&row) else {
                continue;
            };
            self.connect(p, &row);
        }
    }

    /// The processes that ran the seed files.
    async fn processes_of_files(&mut self) {
        let (sha1, sha256) = self.file_hashes();
        if sha1.is_empty() && sha256.is_empty() {
            return;
        }
        let q = format!(
            "DeviceProcessEvents | where {} | where SHA1 in ({}) or SHA256 in ({}) \
             | project Timestamp, ProcessId, FileName, FolderPath, SHA1, SHA256, ProcessCommandLine, \
             InitiatingProcessId, InitiatingProcessFileName, InitiatingProcessFolderPath, \
             InitiatingProcessSHA1, InitiatingProcessSHA256, InitiatingProcessCommandLine",
            self.device_window(),
            list_or_none(&sha1),
            list_or_none(&sha256)
        );
        for row in self.query("processes of the alert's files", &q).await {
            self.created_process(&row);
        }
    }

    /// The processes the given ones started; returns the new ones' ids.
    async fn children_of(&mut self, pids: &[i64]) -> Vec<i64> {
        let q = format!(
            "DeviceProcessEvents | where {} | where InitiatingProcessId in ({}) \
             | project Timestamp, ProcessId, FileName, FolderPath, SHA1, SHA256, ProcessCommandLine, \
             InitiatingProcessId, InitiatingProcessFileName, InitiatingProcessFolderPath, \
             InitiatingProcessSHA1, InitiatingProcessSHA256, InitiatingProcessCommandLine",
            self.device_window(),
            ints(pids)
        );
        let mut new = Vec::new();
        for row in self.query("child processes", &q).await {
            if let Some(pid) = row.int("ProcessId")
                && !self.pids.contains_key(&pid)
            {
                new.push(pid);
            }
            self.created_process(&row);
        }
        new
    }

    /// Files the processes created or changed: payloads, and persistence entries.
    async fn files_written_by(&mut self, pids: &[i64]) {
        let q = format!(
            "DeviceFileEvents | where {} | where InitiatingProcessId in ({}) \
             | where ActionType in (\"FileCreated\", \"FileModified\", \"FileRenamed\") \
             | project Timestamp, FileName, FolderPath, SHA1, SHA256, InitiatingProcessId, \
             InitiatingProcessCommandLine",
            self.device_window(),
            ints(pids)
        );
        for row in self.query("files written", &q).await {
            let Some(&p) = row
                .int("InitiatingProcessId")
                .and_then(|i| self.pids.get(&i))
            else {
                continue;
            };
            let path = match (row.text("FolderPath"), row.text("FileName")) {
                (Some(d), Some(n)) => Some(full_path(&d, &n)),
                (d, n) => d.or(n),
            };
            let Some(path) = path else { continue };
            let (sha1, sha256) = (row.hex("SHA1"), row.hex("SHA256"));
            if let Some(kind) = persistence_kind(&path) {
                let mut e = entity(EntityType::Persistence, format!("{kind} {path}"));
                // The writer's command line may show the entry it added (`echo key >> …`).
                let writer = row
                    .text("InitiatingProcessCommandLine")
                    .or_else(|| self.graph.entities[p].command_line.clone());
                e.entries = writer.map_or_else(Vec::new, |c| added_entries(&path, &c));
                e.path = Some(path);
                e.sha1 = sha1;
                e.sha256 = sha256;
                e.last_seen = row.time("Timestamp");
                let e = self.graph.add(e);
                self.graph.relate(p, e, RelationKind::Created);
            } else {
                let mut f = file_entity(Some(path), sha1, sha256);
                f.last_seen = row.time("Timestamp");
                let f = self.graph.add(f);
                self.graph.relate(p, f, RelationKind::Wrote);
            }
        }
    }

    /// Where the processes connected.
    async fn destinations_of(&mut self, pids: &[i64]) {
        let q = format!(
            "DeviceNetworkEvents | where {} | where InitiatingProcessId in ({}) \
             | project Timestamp, RemoteIP, RemoteUrl, InitiatingProcessId",
            self.device_window(),
            ints(pids)
        );
        for row in self.query("connections of the processes", &q).await {
            if let Some(&p) = row
                .int("InitiatingProcessId")
                .and_then(|i| self.pids.get(&i))
            {
                self.connect(p, &row);
            }
        }
    }

    /// Accounts that logged on to the device in the window.
    async fn logons(&mut self) {
        let q = format!(
            "DeviceLogonEvents | where {} | where ActionType == \"LogonSuccess\" \
             | summarize LastSeen = max(Timestamp) by AccountDomain, AccountName, RemoteIP",
            self.device_window()
        );
        for row in self.query("logons", &q).await {
            let Some(user) = row.text("AccountName") else {
                continue;
            };
            let name = match row.text("AccountDomain") {
                Some(d) => format!("{d}\\{user}"),
                None => user,
            };
            let mut u = entity(EntityType::User, name);
            u.last_seen = row.time("LastSeen");
            let u = self.graph.add(u);
            if let Some(ip) = row.text("RemoteIP").and_then(|i| i.parse::<IpAddr>().ok()) {
                let i = self.graph.add(entity(EntityType::Ip, ip.to_string()));
                self.graph.relate(u, i, RelationKind::LoggedOn);
            }
        }
    }

    /// What the tenant's indicators say of each file, address and URL.
    pub fn indicators(&mut self, index: &IndicatorIndex, tenant: rampart_core::TenantId, now: i64) {
        let snapshot = index.snapshot(tenant);
        let device = Device {
            group_id: Some(&self.scope.group_id),
            group_name: self.scope.group_name.as_deref(),
        };
        for i in 0..self.graph.entities.len() {
            let e = &self.graph.entities[i];
            let hit = match e.entity_type {
                EntityType::File | EntityType::Persistence => snapshot.match_file(
                    &FileObservation {
                        sha256: e.sha256.as_deref(),
                        sha1: e.sha1.as_deref(),
                        md5: None,
                        cert_thumbprint: None,
                    },
                    device,
                    now,
                ),
                EntityType::Ip => snapshot.match_network(
                    &NetworkObservation {
                        ip: e.name.parse().ok(),
                        url: None,
                    },
                    device,
                    now,
                ),
                EntityType::Url => snapshot.match_network(
                    &NetworkObservation {
                        ip: None,
                        url: Some(&e.name),
                    },
                    device,
                    now,
                ),
                _ => None,
            };
            let Some(hit) = hit else { continue };
            let what = format!(
                "{} indicator {} ({})",
                hit.entry.action.as_str(),
                hit.entry.id,
                hit.entry.kind.as_str()
            );
            let signal = match hit.entry.action {
                IndicatorAction::Allowed => Signal::Allowed(what),
                IndicatorAction::Block | IndicatorAction::BlockAndRemediate => {
                    self.graph.entities[i].blocked = true;
                    Signal::Malicious(what)
                }
                IndicatorAction::Audit | IndicatorAction::Warn => Signal::Suspicious(what),
            };
            self.graph.signal(i, signal);
        }
    }

    /// How many devices saw each file (by SHA-1) in the prevalence window; returns the fleet
    /// the counts are measured against: `machines`, or more when more devices reported a file
    /// (telemetry imported for devices the store does not know).
    pub async fn prevalence(&mut self, machines: u64) -> u64 {
        let (sha1, _) = self.file_hashes();
        let since = datetime(self.scope.to - PREVALENCE_WINDOW);
        let mut fleet = machines.max(1);
        if sha1.is_empty() {
            return fleet;
        }
        // Devices per file in each table; the larger count is a lower bound of the devices
        // that saw it at all (one row per file, however many devices).
        let mut seen: HashMap<String, u64> = HashMap::new();
        for table in ["DeviceProcessEvents", "DeviceFileEvents"] {
            let q = format!(
                "{table} | where Timestamp >= {since} and SHA1 in ({}) \
                 | summarize Devices = dcount(DeviceId) by SHA1",
                sha1.join(", ")
            );
            for row in self.query("file prevalence", &q).await {
                if let (Some(h), Some(n)) = (row.hex("SHA1"), row.int("Devices")) {
                    let n = u64::try_from(n).unwrap_or(0);
                    let count = seen.entry(h).or_default();
                    *count = (*count).max(n);
                }
            }
        }
        for e in &mut self.graph.entities {
            if matches!(e.entity_type, EntityType::File | EntityType::Persistence)
                && let Some(h) = &e.sha1
            {
                let n = seen.get(&h.to_ascii_lowercase()).copied().unwrap_or(0);
                e.prevalence = Some(n);
                fleet = fleet.max(n);
            }
        }
        fleet
    }

    fn of_type(&self, t: EntityType) -> impl Iterator<Item = String> + '_ {
        self.graph
            .entities
            .iter()
            .filter(move |e| e.entity_type == t)
            .map(|e| e.name.clone())
    }

    /// The checked, quoted SHA-1 and SHA-256 values of the graph's files, both letter cases
    /// (agents differ).
    fn file_hashes(&self) -> (Vec<String>, Vec<String>) {
        let mut sha1 = Vec::new();
        let mut sha256 = Vec::new();
        for e in &self.graph.entities {
            if !matches!(e.entity_type, EntityType::File | EntityType::Persistence) {
                continue;
            }
            for (h, out, len) in [(&e.sha1, &mut sha1, 40), (&e.sha256, &mut sha256, 64)] {
                if let Some(h) = h.as_deref().filter(|h| is_hex(h, len)) {
                    for v in [h.to_ascii_lowercase(), h.to_ascii_uppercase()] {
                        let v = kql_str(&v);
                        if !out.contains(&v) {
                            out.push(v);
                        }
                    }
                }
            }
        }
        (sha1, sha256)
    }

    fn device_window(&self) -> String {
        format!(
            "DeviceId == {} and Timestamp >= {} and Timestamp <= {}",
            kql_str(self.scope.device_id),
            datetime(self.scope.from),
            datetime(self.scope.to + Duration::seconds(1))
        )
    }

    /// A process from a process-creation row, its image, and its parent.
    fn created_process(&mut self, row: &Row) -> Option<usize> {
        let pid = row.int("ProcessId")?;
        let p = self.process(
            pid,
            row.text("FileName"),
            row.text("FolderPath"),
            row.hex("SHA1"),
            row.hex("SHA256"),
            row.text("ProcessCommandLine"),
            row.time("Timestamp"),
        );
        if let Some(parent) = self.initiating_process(row) {
            self.graph.relate(parent, p, RelationKind::Spawned);
        }
        Some(p)
    }

    /// The initiating process of a row, and its image.
    fn initiating_process(&mut self, row: &Row) -> Option<usize> {
        let pid = row.int("InitiatingProcessId")?;
        let p = self.process(
            pid,
            row.text("InitiatingProcessFileName"),
            row.text("InitiatingProcessFolderPath"),
            row.hex("InitiatingProcessSHA1"),
            row.hex("InitiatingProcessSHA256"),
            row.text("InitiatingProcessCommandLine"),
            row.time("Timestamp"),
        );
        if let Some(ppid) = row.int("InitiatingProcessParentId").filter(|p| *p > 0) {
            let name = row.text("InitiatingProcessParentFileName");
            let parent = self.process(ppid, name, None, None, None, None, None);
            self.graph.relate(parent, p, RelationKind::Spawned);
        }
        Some(p)
    }

    #[allow(clippy::too_many_arguments)]
    fn process(
        &mut self,
        pid: i64,
        name: Option<String>,
        folder: Option<String>,
        sha1: Option<String>,
        sha256: Option<String>,
        command_line: Option<String>,
        seen: Option<OffsetDateTime>,
    ) -> usize {
        let path = match (&folder, &name) {
            (Some(d), Some(n)) => Some(full_path(d, n)),
            (d, n) => d.clone().or_else(|| n.clone()),
        };
        let label = name
            .or_else(|| path.clone())
            .unwrap_or_else(|| "process".into());
        if let Some(&p) = self.pids.get(&pid) {
            // Known by id: fill in what this row adds.
            let e = &mut self.graph.entities[p];
            e.path = e.path.take().or(path.clone());
            e.command_line = e.command_line.take().or(command_line);
            e.last_seen = e.last_seen.max(seen);
            if sha1.is_some() || sha256.is_some() {
                let f = self.graph.add(file_entity(path, sha1, sha256));
                self.graph.relate(f, p, RelationKind::ImageOf);
            }
            return p;
        }
        let mut e = entity(EntityType::Process, format!("{label} (pid {pid})"));
        e.process_id = Some(pid);
        e.path = path.clone();
        e.command_line = command_line;
        e.last_seen = seen;
        let p = self.graph.add(e);
        self.pids.insert(pid, p);
        if sha1.is_some() || sha256.is_some() {
            let f = self.graph.add(file_entity(path, sha1, sha256));
            self.graph.relate(f, p, RelationKind::ImageOf);
        }
        p
    }

    /// `process` connected to the row's remote address or URL.
    fn connect(&mut self, process: usize, row: &Row) {
        let seen = row.time("Timestamp");
        if let Some(ip) = row.text("RemoteIP").and_then(|i| i.parse::<IpAddr>().ok()) {
            let mut e = entity(EntityType::Ip, ip.to_string());
            e.last_seen = seen;
            let i = self.graph.add(e);
            self.graph.relate(process, i, RelationKind::ConnectedTo);
        }
        if let Some(url) = row.text("RemoteUrl") {
            let mut e = entity(EntityType::Url, url);
            e.last_seen = seen;
            let u = self.graph.add(e);
            self.graph.relate(process, u, RelationKind::ConnectedTo);
        }
        let p = &mut self.graph.entities[process];
        p.last_seen = p.last_seen.max(seen);
    }

    async fn query(&mut self, what: &str, q: &str) -> Vec<Row> {
        match self.analysis.run(self.ctx, q, &self.limits).await {
            Ok(result) => rows(&result.batches),
            Err(e) => {
                tracing::warn!(query = q, "investigation query failed: {e}");
                self.gaps.push(format!("{what}: {e}"));
                Vec::new()
            }
        }
    }
}

/// What an alert says of the entities it names: an antivirus finding or a high-severity alert
/// condemns them, a medium or low one makes them suspicious, an informational one says nothing.
fn alert_signal(alert: &Alert) -> Option<Signal> {
    let source = &alert.detection_source;
    if source.eq_ignore_ascii_case("Antivirus") {
        let threat = alert.threat_name.as_deref().unwrap_or(&alert.title);
        return Some(Signal::Malicious(format!(
            "antivirus detection {threat} (alert {})",
            alert.id
        )));
    }
    let why = format!(
        "named by {}-severity alert {} from {source}: {}",
        alert.severity.as_str(),
        alert.id,
        alert.title
    );
    match alert.severity {
        Severity::High => Some(Signal::Malicious(why)),
        Severity::Medium | Severity::Low => Some(Signal::Suspicious(why)),
        Severity::Informational | Severity::UnSpecified => None,
    }
}

fn file_entity(
    path: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
) -> rampart_core::investigation::InvestigatedEntity {
    let name = path
        .clone()
        .or_else(|| sha256.clone())
        .or_else(|| sha1.clone())
        .unwrap_or_default();
    let mut f = entity(EntityType::File, name);
    f.path = path;
    f.sha1 = sha1.map(|h| h.to_ascii_lowercase());
    f.sha256 = sha256.map(|h| h.to_ascii_lowercase());
    f
}

/// A file's full path from `FolderPath` and `FileName` (agents differ on whether the folder
/// already ends with the name).
fn full_path(folder: &str, name: &str) -> String {
    let lower = folder.to_ascii_lowercase();
    if lower.ends_with(&name.to_ascii_lowercase()) {
        return folder.to_owned();
    }
    let sep = if folder.contains('\\') { '\\' } else { '/' };
    format!("{}{sep}{name}", folder.trim_end_matches(['/', '\\']))
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', ':', '?', '#']).next()?.trim();
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A KQL string literal of `s`.
fn kql_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A KQL datetime literal of `t`, to the second (rounded down).
fn datetime(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    format!(
        "datetime({})",
        t.format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
    )
}

fn ints(v: &[i64]) -> String {
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// A list for `in (…)` that is never empty (KQL needs one value): an impossible hash.
fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "\"-\"".into()
    } else {
        v.join(", ")
    }
}

/// One result row: each column as text (timestamps as nanoseconds since the epoch).
pub struct Row(HashMap<String, String>);

impl Row {
    fn text(&self, col: &str) -> Option<String> {
        self.0.get(col).filter(|v| !v.is_empty()).cloned()
    }
    fn int(&self, col: &str) -> Option<i64> {
        self.0.get(col)?.parse().ok()
    }
    fn hex(&self, col: &str) -> Option<String> {
        self.text(col)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|h| h.to_ascii_lowercase())
    }
    fn time(&self, col: &str) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.int(col)?)).ok()
    }
}

fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let options = FormatOptions::default();
    let mut out = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        // Timestamps as nanoseconds; every other column as the text Arrow displays.
        let mut times = Vec::new();
        let mut texts = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            let array = batch.column(i);
            match field.data_type() {
                DataType::Timestamp(_, _) => {
                    if let Ok(a) = cast(array, &DataType::Timestamp(TimeUnit::Nanosecond, None)) {
                        times.push((field.name(), a));
                    }
                }
                _ => {
                    if let Ok(f) = ArrayFormatter::try_new(array.as_ref(), &options) {
                        texts.push((field.name(), array, f));
                    }
                }
            }
        }
        for row in 0..batch.num_rows() {
            let mut cells = HashMap::new();
            for (name, a) in &times {
                if !a.is_null(row) {
                    let ns = a.as_primitive::<TimestampNanosecondType>().value(row);
                    cells.insert((*name).clone(), ns.to_string());
                }
            }
            for (name, a, f) in &texts {
                if !a.is_null(row) {
                    cells.insert((*name).clone(), f.value(row).to_string());
                }
            }
            out.push(Row(cells));
        }
    }
    out
}
