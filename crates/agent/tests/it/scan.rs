//! Antivirus scans and quarantine on real files and real processes.

use rampart_agent::process::hashes::HashCache;
use rampart_agent::process::rows::RowContext;
use rampart_agent::quarantine::Quarantine;
use rampart_agent::scan::locations::QuickLocations;
use rampart_agent::scan::{Detection, Scanner};
use rampart_proto::command::ScanType;
use rampart_proto::enforcement::{
    Enforcement, EnforcementSet, FileRule, HashAlgorithm, YaraRuleSource,
};
use rampart_proto::telemetry::Row;
use serde_json::Value;
use sha1::Digest;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const RULE: &str = r#"
rule Rampart_Test_Marker {
    strings:
        $m = "RAMPART-TEST-MALWARE-MARKER"
    condition:
        $m
}
"#;

fn sha1_of(bytes: &[u8]) -> String {
    hex(&sha1::Sha1::digest(bytes))
}

fn sha256_of(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn file_rule(algorithm: HashAlgorithm, hash: String, action: Enforcement, id: &str) -> FileRule {
    FileRule {
        algorithm,
        hash,
        action,
        indicator_id: id.into(),
        title: format!("indicator {id}"),
    }
}

fn yara(source: &str) -> YaraRuleSource {
    YaraRuleSource {
        id: "7".into(),
        name: "test rules".into(),
        source: source.into(),
    }
}

struct Rig {
    scanner: Arc<Scanner>,
    rows: mpsc::Receiver<(&'static str, Row)>,
}

fn rig(quick: Vec<PathBuf>, full: Vec<PathBuf>) -> Rig {
    let (tx, rows) = mpsc::channel(1024);
    let scanner = Arc::new(Scanner::new(
        Arc::new(HashCache::new(64 << 20, 1024)),
        QuickLocations { paths: quick },
        Some(full),
        RowContext {
            device_id: Some("ab".repeat(20)),
            device_name: "scan-host".into(),
            account_domain: "scan-host".into(),
        },
        tx,
    ));
    Rig { scanner, rows }
}

fn drain(rows: &mut mpsc::Receiver<(&'static str, Row)>) -> Vec<Row> {
    let mut out = Vec::new();
    while let Ok((table, row)) = rows.try_recv() {
        assert_eq!(table, "DeviceEvents");
        out.push(row);
    }
    out
}

fn fields(row: &Row) -> Value {
    serde_json::from_str(row["AdditionalFields"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_scan_reports_blocked_hashes_and_yara_matches_and_never_an_allowed_file() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/c");
    std::fs::create_dir_all(&nested).unwrap();
    let blocked = b"pretend this is a dropper\n".to_vec();
    std::fs::write(nested.join("dropper"), &blocked).unwrap();
    let marked = b"xx RAMPART-TEST-MALWARE-MARKER xx\n".to_vec();
    std::fs::write(dir.path().join("marked.txt"), &marked).unwrap();
    // Matches the YARA rule too, but its hash is Allowed.
    let vetted = b"RAMPART-TEST-MALWARE-MARKER in a vetted file\n".to_vec();
    std::fs::write(dir.path().join("vetted.txt"), &vetted).unwrap();
    std::fs::write(dir.path().join("clean.txt"), b"nothing to see").unwrap();

    let mut rig = rig(vec![dir.path().to_owned()], vec![]);
    let errors = rig.scanner.set_signatures(&EnforcementSet {
        version: "1".into(),
        files: vec![
            file_rule(
                HashAlgorithm::Sha1,
                sha1_of(&blocked),
                Enforcement::Block,
                "11",
            ),
            file_rule(
                HashAlgorithm::Sha256,
                sha256_of(&vetted),
                Enforcement::Allow,
                "12",
            ),
        ],
        yara_rules: vec![yara(RULE)],
        ..EnforcementSet::default()
    });
    assert!(errors.is_empty(), "{errors:?}");

    let report = rig.scanner.scan(ScanType::Quick).await.unwrap();
    let found: Vec<(String, Vec<Detection>)> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                f.detections.clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "dropper".to_string(),
                vec![Detection::Indicator {
                    id: "11".into(),
                    title: "indicator 11".into()
                }]
            ),
            (
                "marked.txt".to_string(),
                vec![Detection::Yara {
                    rule: "Rampart_Test_Marker".into(),
                    rule_set: "test rules".into()
                }]
            ),
        ]
    );
    assert!(report.files >= 4, "{report:?}");

    let rows = drain(&mut rig.rows);
    let detections: Vec<&Row> = rows
        .iter()
        .filter(|r| r["ActionType"] == "AntivirusDetection")
        .collect();
    assert_eq!(detections.len(), 2);
    let dropper = detections
        .iter()
        .find(|r| r["FileName"] == "dropper")
        .unwrap();
    assert_eq!(dropper["SHA1"], sha1_of(&blocked));
    assert_eq!(
        dropper["FolderPath"],
        nested.join("dropper").to_string_lossy().as_ref()
    );
    assert_eq!(dropper["DeviceName"], "scan-host");
    let f = fields(dropper);
    assert_eq!(f["ThreatName"], "indicator 11");
    assert_eq!(f["DetectionSource"], "Indicator");
    assert_eq!(f["WasExecutingWhileDetected"], false);
    let marked_row = detections
        .iter()
        .find(|r| r["FileName"] == "marked.txt")
        .unwrap();
    assert_eq!(fields(marked_row)["ThreatName"], "Rampart_Test_Marker");
    assert_eq!(fields(marked_row)["RuleSet"], "test rules");
    let done = rows.last().unwrap();
    assert_eq!(done["ActionType"], "AntivirusScanCompleted");
    assert_eq!(fields(done)["Detections"], 2);
    assert_eq!(fields(done)["ScanTypeIndex"], "Quick");
}

#[tokio::test]
async fn a_full_scan_walks_its_roots_without_following_links_out() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let bad = b"RAMPART-TEST-MALWARE-MARKER outside the root".to_vec();
    std::fs::write(outside.path().join("elsewhere"), &bad).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("link-out")).unwrap();
    std::fs::create_dir_all(root.path().join("deep/er")).unwrap();
    std::fs::write(
        root.path().join("deep/er/inside"),
        b"RAMPART-TEST-MALWARE-MARKER",
    )
    .unwrap();

    let rig = rig(vec![], vec![root.path().to_owned()]);
    rig.scanner.set_signatures(&EnforcementSet {
        yara_rules: vec![yara(RULE)],
        ..EnforcementSet::default()
    });
    let report = rig.scanner.scan(ScanType::Full).await.unwrap();
    let paths: Vec<&Path> = report.findings.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(paths, vec![root.path().join("deep/er/inside").as_path()]);
}

#[tokio::test]
async fn a_rule_set_that_does_not_compile_is_named_and_the_hashes_still_count() {
    let dir = tempfile::tempdir().unwrap();
    let blocked = b"blocked content".to_vec();
    std::fs::write(dir.path().join("f"), &blocked).unwrap();
    // A valid rule file on the agent's disk, which an include could otherwise pull in.
    let included = dir.path().join("rules.yar");
    std::fs::write(&included, RULE).unwrap();
    let rig = rig(vec![dir.path().to_owned()], vec![]);
    let errors = rig.scanner.set_signatures(&EnforcementSet {
        files: vec![file_rule(
            HashAlgorithm::Sha1,
            sha1_of(&blocked),
            Enforcement::Block,
            "1",
        )],
        yara_rules: vec![
            YaraRuleSource {
                id: "9".into(),
                name: "broken".into(),
                source: "rule x { condition: }".into(),
            },
            // An include must never read the agent's disk.
            YaraRuleSource {
                id: "10".into(),
                name: "includer".into(),
                source: format!("include \"{}\"", included.display()),
            },
        ],
        ..EnforcementSet::default()
    });
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("'broken'"), "{errors:?}");
    assert!(errors[1].contains("'includer'"), "{errors:?}");
    let report = rig.scanner.scan(ScanType::Quick).await.unwrap();
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].path, dir.path().join("f"));
}

/// A copy of `sleep` under `dir` with a hash of its own, started; its content's SHA-1.
fn run_copy_of_sleep(dir: &Path) -> (PathBuf, Child, String) {
    let sleep = which("sleep");
    let copy = dir.join("not-sleep");
    // Bytes of its own at the end (an ELF still runs): no other `sleep` on the machine shares
    // its hash.
    let mut bytes = std::fs::read(&sleep).unwrap();
    bytes.extend_from_slice(
        format!("rampart-scan-test-{}-{:?}", std::process::id(), dir).as_bytes(),
    );
    std::fs::write(&copy, &bytes).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o751)).unwrap();
    let child = Command::new(&copy)
        .arg("300")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let sha1 = sha1_of(&std::fs::read(&copy).unwrap());
    (copy, child, sha1)
}

fn which(name: &str) -> PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap()
}

/// Waits for `child` to end; its exit signal.
fn ended_by_signal(child: &mut Child) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.signal();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[tokio::test]
async fn a_running_blocked_image_is_found_then_stopped_quarantined_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let (copy, mut child, sha1) = run_copy_of_sleep(dir.path());
    let original = std::fs::read(&copy).unwrap();
    let mtime = std::fs::metadata(&copy).unwrap().mtime();

    // The image is running, and the Quick locations do not include its directory: only the
    // running images find it.
    let mut rig = rig(vec![], vec![]);
    rig.scanner.set_signatures(&EnforcementSet {
        files: vec![file_rule(
            HashAlgorithm::Sha1,
            sha1.clone(),
            Enforcement::Block,
            "5",
        )],
        ..EnforcementSet::default()
    });
    let report = rig.scanner.scan(ScanType::Quick).await.unwrap();
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].path, copy);
    assert_eq!(report.findings[0].running_in, vec![child.id()]);
    let rows = drain(&mut rig.rows);
    assert_eq!(rows[0]["ProcessId"], child.id());
    assert_eq!(fields(&rows[0])["WasExecutingWhileDetected"], true);

    let state = tempfile::tempdir().unwrap();
    let quarantine = Quarantine::new(state.path(), Arc::clone(&rig.scanner));
    let note = quarantine.stop_and_quarantine(&sha1).await.unwrap();
    assert!(note.contains("quarantined after killing process"), "{note}");
    assert_eq!(ended_by_signal(&mut child), Some(libc::SIGKILL));
    assert!(!copy.exists());
    let entries = quarantine.entries().unwrap();
    assert_eq!(entries.len(), 1);
    let (entry_dir, entry) = &entries[0];
    assert_eq!(entry.original_path, copy);
    assert_eq!(entry.mode, 0o751);
    assert_eq!(entry.killed_pids, vec![child.id()]);
    let kept = entry_dir.join("content");
    assert_eq!(std::fs::metadata(&kept).unwrap().mode() & 0o7777, 0);
    assert_eq!(std::fs::read(&kept).unwrap(), original);

    // Asked again, there is nothing left to find.
    let again = quarantine.stop_and_quarantine(&sha1).await.unwrap();
    assert!(again.contains("nothing to quarantine"), "{again}");

    let restored = quarantine.restore(&sha1).unwrap();
    assert!(
        restored.contains(copy.to_string_lossy().as_ref()),
        "{restored}"
    );
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o751);
    assert_eq!(meta.mtime(), mtime);
    assert_eq!(std::fs::read(&copy).unwrap(), original);
    assert!(quarantine.entries().unwrap().is_empty());
    let none = quarantine.restore(&sha1).unwrap_err().to_string();
    assert!(none.contains("no file with SHA-1"), "{none}");
}

#[tokio::test]
async fn quarantining_a_script_stops_its_interpreter_and_restore_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("loop.sh");
    let body = b"while true; do sleep 1; done\n".to_vec();
    std::fs::write(&script, &body).unwrap();
    let mut shell = Command::new(which("sh"))
        .arg(&script)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let sha1 = sha1_of(&body);
    let rig = rig(vec![dir.path().to_owned()], vec![]);
    let state = tempfile::tempdir().unwrap();
    let quarantine = Quarantine::new(state.path(), Arc::clone(&rig.scanner));
    std::thread::sleep(Duration::from_millis(200));
    let note = quarantine.stop_and_quarantine(&sha1).await.unwrap();
    assert!(
        note.contains(&format!("killing process {}", shell.id())),
        "{note}"
    );
    assert_eq!(ended_by_signal(&mut shell), Some(libc::SIGKILL));
    assert!(!script.exists());

    // Something else took the file's place: restoring must not overwrite it.
    std::fs::write(&script, b"echo new").unwrap();
    let refused = quarantine.restore(&sha1).unwrap_err().to_string();
    assert!(refused.contains("exists again"), "{refused}");
    assert_eq!(std::fs::read(&script).unwrap(), b"echo new");
    assert_eq!(quarantine.entries().unwrap().len(), 1);
    std::fs::remove_file(&script).unwrap();
    quarantine.restore(&sha1).unwrap();
    assert_eq!(std::fs::read(&script).unwrap(), body);
}
