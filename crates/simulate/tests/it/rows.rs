//! Every generated row fits its table, carries documented values, and survives NDJSON.

use crate::common::{self, spec};
use rampart_core::schema;
use rampart_simulate::sinks::NdjsonSink;
use rampart_simulate::{Cell, Sink, Table};
use rampart_telemetry::TableBatchBuilder;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{self, BufRead};

/// ActionType values of the reference (section 4) that the simulator may write.
const DOCUMENTED: &[&str] = &[
    "ProcessCreated",
    "ConnectionSuccess",
    "ConnectionFailed",
    "ConnectionRequest",
    "InboundConnectionAccepted",
    "DnsConnectionInspected",
    "FileCreated",
    "FileModified",
    "FileRenamed",
    "FileDeleted",
    "RegistryValueSet",
    "LogonSuccess",
    "LogonFailed",
    "ImageLoaded",
    "PowerShellCommand",
    "AntivirusScanCompleted",
    "AntivirusDefinitionsUpdated",
    "OpenProcessApiCall",
    "ServiceInstalled",
];

/// Pushes every row into a `TableBatchBuilder`, as the Parquet sink and ingestion do.
#[derive(Default)]
struct Builders {
    builders: BTreeMap<&'static str, TableBatchBuilder>,
    rejections: Vec<String>,
    rows: u64,
}

impl Sink for Builders {
    fn row(
        &mut self,
        _device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> io::Result<()> {
        let b = self
            .builders
            .entry(table.name)
            .or_insert_with(|| TableBatchBuilder::new(table));
        if let Err(e) = b.push_cells(cells) {
            self.rejections.push(e.to_string());
        }
        self.rows += 1;
        if b.len() >= 10_000 {
            b.finish();
        }
        Ok(())
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn every_row_is_accepted_by_its_table_builder() {
    let s = spec(
        40,
        1.0,
        21,
        &["phishing", "credential-theft", "ransomware", "ssh-miner"],
    );
    let mut b = Builders::default();
    let stats = rampart_simulate::generate(&s, &mut b).unwrap();
    assert!(
        b.rejections.is_empty(),
        "{} rejections, first: {:?}",
        b.rejections.len(),
        &b.rejections[..b.rejections.len().min(5)]
    );
    assert_eq!(b.rows, stats.total());
    for t in [
        "DeviceProcessEvents",
        "DeviceNetworkEvents",
        "DeviceFileEvents",
        "DeviceRegistryEvents",
        "DeviceLogonEvents",
        "DeviceImageLoadEvents",
        "DeviceEvents",
        "DeviceInfo",
        "DeviceNetworkInfo",
    ] {
        assert!(
            stats.rows.get(t).copied().unwrap_or(0) > 20,
            "{t}: {stats:?}"
        );
    }
    // A plausible daily volume: thousands of events per device, not millions.
    let per_device = stats.total() / 40;
    assert!(
        (1_000..60_000).contains(&per_device),
        "{per_device} rows per device-day"
    );
}

#[test]
fn rows_carry_documented_values_in_time_order() {
    let keep = common::generate(&spec(25, 1.0, 2, &["phishing", "ssh-miner"]));
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    let mut report_ids: HashSet<(String, i64)> = HashSet::new();
    let mut actions = BTreeSet::new();
    let mut parents = 0;
    for r in &keep.rows {
        let t = r.ts();
        assert!(
            (common::START..common::START + common::DAY).contains(&t),
            "{} row outside the window: {:?}",
            r.table,
            r.cols
        );
        assert_eq!(t % 100, 0, "times are whole 100 ns ticks");
        let prev = last.insert(r.table, t).unwrap_or(i64::MIN);
        assert!(t >= prev, "{} goes back in time", r.table);
        assert!(is_hex(r.str("DeviceId"), 40), "{:?}", r.cols);
        for (col, len) in [
            ("SHA1", 40),
            ("SHA256", 64),
            ("MD5", 32),
            ("InitiatingProcessSHA1", 40),
            ("InitiatingProcessSHA256", 64),
            ("InitiatingProcessMD5", 32),
        ] {
            if let Some(v) = r.cols.get(col) {
                assert!(is_hex(v.as_str().unwrap(), len), "{}.{col} = {v}", r.table);
            }
        }
        if !matches!(r.table, "DeviceInfo" | "DeviceNetworkInfo") {
            let action = r.str("ActionType");
            assert!(
                DOCUMENTED.contains(&action),
                "{}: undocumented ActionType {action}",
                r.table
            );
            actions.insert(action.to_owned());
            // ReportId is a per-device counter: unique per device across event tables.
            assert!(
                report_ids.insert((r.str("DeviceId").to_owned(), r.int("ReportId"))),
                "duplicate ReportId {:?}",
                r.cols
            );
            if r.cols.contains_key("InitiatingProcessFileName") {
                assert!(r.int("InitiatingProcessId") >= 0);
                assert!(r.cols.contains_key("InitiatingProcessCreationTime"));
                parents += 1;
            }
        }
    }
    assert!(actions.len() >= 12, "{actions:?}");
    assert!(
        parents as f64
            > 0.95
                * keep
                    .rows
                    .iter()
                    .filter(|r| r.table == "DeviceProcessEvents")
                    .count() as f64
    );
    // Process trees link up: a child's initiating process is a process seen before or running since boot.
    let mut procs = HashSet::new();
    let mut linked = 0;
    let mut total = 0;
    for r in keep.table("DeviceProcessEvents") {
        let dev = r.str("DeviceId").to_owned();
        if procs.contains(&(
            dev.clone(),
            r.int("InitiatingProcessId"),
            r.str("InitiatingProcessCreationTime").to_owned(),
        )) {
            linked += 1;
        }
        total += 1;
        procs.insert((
            dev,
            r.int("ProcessId"),
            r.str("ProcessCreationTime").to_owned(),
        ));
    }
    assert!(
        linked * 3 > total,
        "{linked} of {total} process rows link to an earlier process row"
    );
}

#[test]
fn windows_process_trees_look_real() {
    let keep = common::generate(&spec(20, 1.0, 9, &[]));
    let pairs: BTreeSet<(String, String)> = keep
        .table("DeviceProcessEvents")
        .map(|r| {
            (
                r.str("InitiatingProcessFileName").to_lowercase(),
                r.str("FileName").to_lowercase(),
            )
        })
        .collect();
    for (parent, child) in [
        ("explorer.exe", "chrome.exe"),
        ("explorer.exe", "winword.exe"),
        ("winlogon.exe", "userinit.exe"),
        ("userinit.exe", "explorer.exe"),
        ("svchost.exe", "taskhostw.exe"),
        ("cmd.exe", "conhost.exe"),
        ("sshd", "bash"),
        ("launchd", "mdworker_shared"),
    ] {
        assert!(
            pairs.contains(&(parent.to_owned(), child.to_owned())),
            "no {parent} -> {child}; have {pairs:?}"
        );
    }
    let chrome = keep
        .table("DeviceNetworkEvents")
        .find(|r| r.str("InitiatingProcessFileName") == "chrome.exe")
        .unwrap();
    assert_eq!(chrome.int("RemotePort"), 443);
    assert_eq!(chrome.str("Protocol"), "Tcp");
    assert_eq!(
        chrome.str("InitiatingProcessFolderPath"),
        r"c:\program files\google\chrome\application\chrome.exe"
    );
    assert_eq!(chrome.str("InitiatingProcessIntegrityLevel"), "Medium");
    let logons: BTreeSet<&str> = keep
        .table("DeviceLogonEvents")
        .map(|r| r.str("LogonType"))
        .collect();
    for t in ["Interactive", "Network", "RemoteInteractive"] {
        assert!(logons.contains(t), "{logons:?}");
    }
    assert!(
        keep.table("DeviceLogonEvents")
            .any(|r| r.str("ActionType") == "LogonFailed")
    );
    let dns = keep
        .table("DeviceNetworkEvents")
        .find(|r| r.str("ActionType") == "DnsConnectionInspected")
        .unwrap();
    let extra: serde_json::Value = serde_json::from_str(dns.str("AdditionalFields")).unwrap();
    assert!(
        extra["query"].as_str().is_some_and(|q| q.contains('.')) && dns.int("RemotePort") == 53
    );
    assert!(
        keep.table("DeviceRegistryEvents")
            .all(|r| r.str("RegistryKey").starts_with("HKEY_"))
    );
    let smb: Vec<_> = keep
        .table("DeviceFileEvents")
        .filter(|r| r.str("RequestProtocol") == "SMB")
        .collect();
    assert!(!smb.is_empty());
    for r in smb {
        assert!(
            r.str("FolderPath")
                .contains(&format!(r"\Shares\{}\", r.str("ShareName"))),
            "{:?}",
            r.cols
        );
        assert!(
            r.str("RequestSourceIP").starts_with("10."),
            "{}",
            r.str("RequestSourceIP")
        );
    }
    // Linux rows have no Windows token columns; macOS reports its Local logons.
    for r in keep
        .rows
        .iter()
        .filter(|r| r.str("InitiatingProcessFolderPath").starts_with("/usr/"))
    {
        assert!(!r.cols.contains_key("InitiatingProcessIntegrityLevel"));
        assert_eq!(r.str("InitiatingProcessTokenElevation"), "None");
    }
}

#[test]
fn ndjson_records_round_trip_through_push_json() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(10, 0.5, 4, &["credential-theft"]);
    let mut sink = NdjsonSink::create(tmp.path()).unwrap();
    let stats = rampart_simulate::generate(&s, &mut sink).unwrap();
    let mut lines = 0u64;
    for t in schema::ALL {
        let path = NdjsonSink::path_of(tmp.path(), t);
        if !path.exists() {
            continue;
        }
        let mut b = TableBatchBuilder::new(t);
        for line in io::BufReader::new(std::fs::File::open(&path).unwrap()).lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            assert_eq!(v["category"], format!("AdvancedHunting-{}", t.name));
            assert_eq!(v["operationName"], "Publish");
            assert!(v["tenantId"].as_str().is_some_and(|s| s.len() == 36));
            let props = v["properties"].as_object().unwrap();
            b.push_json(props)
                .unwrap_or_else(|e| panic!("{e}: {props:?}"));
            lines += 1;
        }
        let batch = b.finish();
        assert_eq!(batch.num_rows() as u64, stats.rows[t.name]);
    }
    assert_eq!(lines, stats.total());
    let labels = std::fs::read_to_string(tmp.path().join("labels.jsonl")).unwrap();
    assert_eq!(labels.lines().count() as u64, stats.labels);
    assert!(stats.labels > 5);
}
