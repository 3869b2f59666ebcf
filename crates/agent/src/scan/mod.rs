//! Antivirus scans (`RunAntiVirusScan`): files checked against the tenant's blocked hashes and
//! its YARA rules, both delivered with the indicator set.
//!
//! A scan reads the [`locations`] of its extent, hashes each file through the shared
//! [`HashCache`] (so a second scan of unchanged files reads nothing) and runs the YARA rules
//! over files up to [`YARA_MAX_FILE_SIZE`]. A file with an `Allowed` hash is never reported,
//! whatever rule matches it: the analyst's word wins. Each finding is a DeviceEvents
//! `AntivirusDetection` row (the server raises an alert from it); the scan ends with an
//! `AntivirusScanCompleted` row. Scans only report: remediation is a separate decision
//! (`StopAndQuarantineFile`, by an analyst or an automated investigation).

pub mod locations;

use crate::batcher::TableRow;
use crate::enforcement::{HashRules, HashVerdict, hash_rules, hash_verdict};
use crate::process::hashes::{HashCache, Hashes};
use crate::process::rows::RowContext;
use locations::{QuickLocations, WalkStats};
use rampart_proto::command::ScanType;
use rampart_proto::enforcement::EnforcementSet;
use rampart_proto::telemetry::Row;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Largest file the YARA rules are run over; bigger ones are still checked by hash.
pub const YARA_MAX_FILE_SIZE: u64 = 32 << 20;

/// Why a file was reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detection {
    /// Its hash is a blocking indicator.
    Indicator { id: String, title: String },
    /// A YARA rule matched it.
    Yara { rule: String, rule_set: String },
}

impl Detection {
    /// `ThreatName`: the indicator's title, or the YARA rule's name.
    pub fn threat_name(&self) -> &str {
        match self {
            Detection::Indicator { title, .. } => title,
            Detection::Yara { rule, .. } => rule,
        }
    }
}

/// A file a scan reported.
#[derive(Clone, Debug)]
pub struct Finding {
    pub path: PathBuf,
    pub hashes: Hashes,
    pub detections: Vec<Detection>,
    /// Processes running the file when it was found.
    pub running_in: Vec<u32>,
}

/// What a scan did.
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    pub files: u64,
    pub unreadable: u64,
    pub findings: Vec<Finding>,
    pub seconds: f64,
    /// The scan ended early: the agent stopped, or the server cancelled it.
    pub interrupted: bool,
}

impl ScanReport {
    /// The command's result, in words.
    pub fn summary(&self, scan: ScanType) -> String {
        let mut s = format!(
            "{} scan: {} files in {:.1} s, {} detections",
            scan.as_str(),
            self.files,
            self.seconds,
            self.findings.len()
        );
        for f in self.findings.iter().take(10) {
            let names: Vec<&str> = f.detections.iter().map(Detection::threat_name).collect();
            s.push_str(&format!("; {} ({})", f.path.display(), names.join(", ")));
        }
        if self.unreadable > 0 {
            s.push_str(&format!("; {} unreadable", self.unreadable));
        }
        if self.interrupted {
            s.push_str("; interrupted before the end");
        }
        s
    }
}

/// The compiled form of an indicator set's file hashes and YARA rules.
#[derive(Default)]
pub struct Signatures {
    hashes: HashRules,
    yara: Option<boreal::Scanner>,
    /// Rule set id → name, to report which set a rule came from.
    rule_sets: HashMap<String, String>,
}

impl Signatures {
    /// Compiles `set`. A YARA rule set that does not compile (the server checks them, so only
    /// an agent older than the rule's features meets one) is left out and named in the errors.
    pub fn compile(set: &EnforcementSet) -> (Signatures, Vec<String>) {
        let mut sig = Signatures {
            hashes: hash_rules(set),
            ..Signatures::default()
        };
        let mut errors = Vec::new();
        if !set.yara_rules.is_empty() {
            let mut compiler = boreal::Compiler::new();
            // Rules come from the server, but an `include` must never read the agent's disk.
            compiler.set_params(boreal::compiler::CompilerParams::default().disable_includes(true));
            let mut added = 0;
            for r in &set.yara_rules {
                match compiler.add_rules_str_in_namespace(&r.source, &r.id) {
                    Ok(_) => {
                        added += 1;
                        sig.rule_sets.insert(r.id.clone(), r.name.clone());
                    }
                    Err(e) => errors.push(format!("YARA rule set '{}': {e}", r.name)),
                }
            }
            if added > 0 {
                sig.yara = Some(compiler.finalize());
            }
        }
        (sig, errors)
    }

    /// What is wrong with `file` (already hashed), if anything.
    fn check(&self, file: &mut File, hashes: &Hashes) -> Vec<Detection> {
        let mut found = Vec::new();
        match hash_verdict(&self.hashes, hashes) {
            HashVerdict::Allowed => return found,
            HashVerdict::Blocked { id, title } => found.push(Detection::Indicator {
                id: id.to_owned(),
                title: title.to_owned(),
            }),
            HashVerdict::Unknown => {}
        }
        if let Some(yara) = &self.yara
            && hashes.size <= YARA_MAX_FILE_SIZE
        {
            let mut content = Vec::with_capacity(hashes.size as usize);
            // A file that cannot be read again is still reported by hash.
            if file.read_to_end(&mut content).is_ok() {
                let matched = match yara.scan_mem(&content) {
                    Ok(r) => r.rules,
                    // A timeout keeps what matched until then.
                    Err((_, r)) => r.rules,
                };
                found.extend(matched.into_iter().map(|r| {
                    Detection::Yara {
                        rule: r.name.to_owned(),
                        rule_set: self
                            .rule_sets
                            .get(r.namespace)
                            .cloned()
                            .unwrap_or_else(|| r.namespace.to_owned()),
                    }
                }));
            }
        }
        found
    }
}

/// Runs scans; holds the current signatures.
pub struct Scanner {
    signatures: RwLock<Arc<Signatures>>,
    cache: Arc<HashCache>,
    quick: QuickLocations,
    /// The roots of a Full scan; `None`: every local filesystem.
    full_roots: Option<Vec<PathBuf>>,
    context: RowContext,
    rows: mpsc::Sender<TableRow>,
    /// One scan at a time: a second waits rather than reading the disk twice over.
    running: tokio::sync::Mutex<()>,
    /// Set when the agent stops: a scan in progress ends where it is.
    halted: AtomicBool,
    /// Set when the server cancels the scan in progress; cleared when the next one starts.
    cancelled: AtomicBool,
}

impl Scanner {
    pub fn new(
        cache: Arc<HashCache>,
        quick: QuickLocations,
        full_roots: Option<Vec<PathBuf>>,
        context: RowContext,
        rows: mpsc::Sender<TableRow>,
    ) -> Scanner {
        Scanner {
            signatures: RwLock::new(Arc::new(Signatures::default())),
            cache,
            quick,
            full_roots,
            context,
            rows,
            running: tokio::sync::Mutex::new(()),
            halted: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        }
    }

    /// Ends the scan in progress where it is (the server cancelled it).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Ends the scan in progress (its report covers what was read) and any later one at once.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::Relaxed);
    }

    fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed) || self.cancelled.load(Ordering::Relaxed)
    }

    /// Takes the hashes and rules of a new indicator set; returns the rule sets left out.
    pub fn set_signatures(&self, set: &EnforcementSet) -> Vec<String> {
        let (sig, errors) = Signatures::compile(set);
        *self.signatures.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(sig);
        errors
    }

    fn signatures(&self) -> Arc<Signatures> {
        Arc::clone(&self.signatures.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs a scan and reports its findings as rows.
    pub async fn scan(self: &Arc<Self>, scan: ScanType) -> Result<ScanReport, String> {
        let _one = self.running.lock().await;
        self.cancelled.store(false, Ordering::Relaxed);
        let this = Arc::clone(self);
        let report = tokio::task::spawn_blocking(move || this.scan_blocking(scan))
            .await
            .map_err(|e| format!("the scan stopped: {e}"))?;
        let now = OffsetDateTime::now_utc();
        let source = format!("Rampart agent {} scan", scan.as_str());
        let mut rows: Vec<Row> = report
            .findings
            .iter()
            .flat_map(|f| detection_rows(&self.context, now, f, &source))
            .collect();
        let outcome = if report.interrupted {
            "AntivirusScanCancelled"
        } else {
            "AntivirusScanCompleted"
        };
        let mut done = self.context.event(now, outcome);
        let fields = json!({
            "ScanTypeIndex": scan.as_str(),
            "FilesScanned": report.files,
            "Detections": report.findings.len(),
            "DurationSeconds": report.seconds,
        });
        done.insert("AdditionalFields".into(), Value::String(fields.to_string()));
        rows.push(done);
        for row in rows {
            self.rows
                .send((rampart_core::schema::DEVICE_EVENTS.name, row))
                .await
                .map_err(|_| "the agent is stopping; findings not reported".to_string())?;
        }
        Ok(report)
    }

    fn scan_blocking(&self, scan: ScanType) -> ScanReport {
        let sig = self.signatures();
        let roots = match scan {
            ScanType::Quick => self.quick.paths.clone(),
            ScanType::Full => self
                .full_roots
                .clone()
                .unwrap_or_else(crate::commands::restrict::local_mounts),
        };
        self.search(
            &roots,
            |file, hashes| {
                let detections = sig.check(file, hashes);
                (!detections.is_empty()).then_some(detections)
            },
            &|| self.is_halted(),
        )
    }

    /// Every file with SHA-1 `sha1` among the running images and the Quick locations, and the
    /// processes running it (for `StopAndQuarantineFile`).
    /// The hashes of the file at `path` (through the shared cache; `None` when it is too large
    /// or cannot be read).
    pub fn hash_path(&self, path: &Path) -> Option<Hashes> {
        self.cache.hash_path(path).ok().flatten()
    }

    pub fn locate(&self, sha1: &str) -> Vec<Finding> {
        self.search(
            &self.quick.paths,
            |_, hashes| (hashes.sha1 == sha1).then(Vec::new),
            &|| self.halted.load(Ordering::Relaxed),
        )
        .findings
    }

    /// Reads the running images (through /proc: a deleted one is still there to read), then
    /// every file under `roots`, each file once; `judge` says whether a hashed file is a
    /// finding, and with which detections. Ends early when `stopped` says so.
    fn search(
        &self,
        roots: &[PathBuf],
        mut judge: impl FnMut(&mut File, &Hashes) -> Option<Vec<Detection>>,
        stopped: &dyn Fn() -> bool,
    ) -> ScanReport {
        let started = Instant::now();
        let mut s = Search::default();
        for (pid, path) in locations::process_images() {
            if stopped() {
                break;
            }
            let Ok(mut file) = locations::open_image(pid) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            let key = (meta.dev(), meta.ino());
            s.consider(&self.cache, &mut judge, &mut file, &path, key, Some(pid));
        }
        let stats: WalkStats = locations::walk(roots, |path, meta| {
            let key = (meta.dev(), meta.ino());
            if !s.visited.contains(&key) {
                match File::open(path) {
                    Ok(mut file) => s.consider(&self.cache, &mut judge, &mut file, path, key, None),
                    Err(_) => s.report.unreadable += 1,
                }
            }
            !stopped()
        });
        let mut report = s.report;
        report.unreadable += stats.unreadable;
        report.interrupted = stopped();
        report.findings = s.found.into_values().collect();
        report.findings.sort_by(|a, b| a.path.cmp(&b.path));
        report.seconds = started.elapsed().as_secs_f64();
        report
    }
}

/// What a search has seen so far.
#[derive(Default)]
struct Search {
    /// Findings by (device, inode).
    found: HashMap<(u64, u64), Finding>,
    visited: HashSet<(u64, u64)>,
    report: ScanReport,
}

impl Search {
    /// Looks at one file (`pid` runs it, when it is a process image) unless it was seen.
    fn consider(
        &mut self,
        cache: &HashCache,
        judge: &mut impl FnMut(&mut File, &Hashes) -> Option<Vec<Detection>>,
        file: &mut File,
        path: &Path,
        key: (u64, u64),
        pid: Option<u32>,
    ) {
        if let Some(f) = self.found.get_mut(&key) {
            f.running_in.extend(pid);
            return;
        }
        if !self.visited.insert(key) {
            return;
        }
        self.report.files += 1;
        let Some(hashes) = cache.hash_file(file).ok().flatten() else {
            return;
        };
        if let Some(detections) = judge(file, &hashes) {
            self.found.insert(
                key,
                Finding {
                    path: path.to_owned(),
                    hashes,
                    detections,
                    running_in: pid.into_iter().collect(),
                },
            );
        }
    }
}

/// The `AntivirusDetection` rows of a finding: one per detection.
fn detection_rows(ctx: &RowContext, time: OffsetDateTime, f: &Finding, source: &str) -> Vec<Row> {
    f.detections
        .iter()
        .map(|d| {
            let mut r = ctx.event(time, "AntivirusDetection");
            let path = f.path.to_string_lossy();
            r.insert("FolderPath".into(), json!(path));
            if let Some(name) = f.path.file_name() {
                r.insert("FileName".into(), json!(name.to_string_lossy()));
            }
            r.insert("SHA1".into(), json!(f.hashes.sha1));
            r.insert("SHA256".into(), json!(f.hashes.sha256));
            r.insert("MD5".into(), json!(f.hashes.md5));
            r.insert("FileSize".into(), json!(f.hashes.size));
            if let Some(pid) = f.running_in.first() {
                r.insert("ProcessId".into(), json!(pid));
            }
            let mut fields = json!({
                "ThreatName": d.threat_name(),
                "WasRemediated": false,
                "WasExecutingWhileDetected": !f.running_in.is_empty(),
                "Action": "Detected",
                "ReportSource": source,
            });
            match d {
                Detection::Indicator { id, .. } => {
                    fields["DetectionSource"] = json!("Indicator");
                    fields["IndicatorId"] = json!(id);
                }
                Detection::Yara { rule_set, .. } => {
                    fields["DetectionSource"] = json!("Yara");
                    fields["RuleSet"] = json!(rule_set);
                }
            }
            r.insert("AdditionalFields".into(), Value::String(fields.to_string()));
            r
        })
        .collect()
}
