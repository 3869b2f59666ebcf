//! The file sensor on the real kernel: fanotify on a tmpfs of the test's own, files created,
//! written, renamed and deleted by a real process, reported once each with the right names,
//! hashes for programs only, and the process that did it.

use crate::restrict::Tmpfs;
use rampart_agent::files::{FileSensor, FileSensorConfig};
use rampart_agent::process::hashes::HashCache;
use rampart_agent::process::rows::RowContext;
use rampart_proto::telemetry::Row;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows until `done` holds them (at most 10 s).
fn rows_until(
    rx: &mut tokio::sync::mpsc::Receiver<(&'static str, Row)>,
    done: impl Fn(&[Row]) -> bool,
) -> Vec<Row> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rows = Vec::new();
    while !done(&rows) && Instant::now() < deadline {
        match rx.try_recv() {
            Ok((table, row)) => {
                assert_eq!(table, "DeviceFileEvents");
                rows.push(row);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    rows
}

#[test]
fn files_created_written_renamed_and_deleted_are_reported_once_each() {
    let fs = Tmpfs::new();
    let ignored = fs.path().join("agent-state");
    std::fs::create_dir(&ignored).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let sensor = FileSensor::start(
        FileSensorConfig {
            rows: RowContext {
                device_id: Some("cd".repeat(20)),
                device_name: "files-host".into(),
                account_domain: "files-host".into(),
            },
            mounts: vec![fs.path().to_owned()],
            ignore: vec![ignored.clone()],
        },
        Arc::new(HashCache::default()),
        tx,
    )
    .unwrap();

    // A shell does the work, so that the initiating process is not this test.
    let script = format!(
        "set -e; cd {dir}; \
         printf '#!/bin/sh\\necho hi\\n' > dropper.sh; \
         echo one > notes.txt; echo two >> notes.txt; echo three >> notes.txt; \
         mv notes.txt renamed.txt; \
         echo x > {ignored}/spool; \
         rm renamed.txt; \
         sleep 0.3",
        dir = fs.path().display(),
        ignored = ignored.display()
    );
    let shell = std::process::Command::new("sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let shell_pid = shell.id();
    assert!(shell.wait_with_output().unwrap().status.success());
    let rows = rows_until(&mut rx, |r| {
        r.iter().any(|x| x["ActionType"] == "FileDeleted")
    });
    sensor.stop();

    let find = |action: &str, name: &str| -> Vec<&Row> {
        rows.iter()
            .filter(|r| r["ActionType"] == action && r["FileName"] == name)
            .collect()
    };
    let dropper = find("FileCreated", "dropper.sh");
    assert_eq!(dropper.len(), 1, "{rows:#?}");
    let d = dropper[0];
    assert_eq!(
        d["FolderPath"],
        fs.path().join("dropper.sh").to_string_lossy().as_ref()
    );
    assert_eq!(d["DeviceName"], "files-host");
    // A script is hashed: the hashes of its content as written.
    let content = b"#!/bin/sh\necho hi\n";
    assert_eq!(d["FileSize"], content.len());
    use sha1::Digest;
    let sha1: String = sha1::Sha1::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(d["SHA1"], sha1.as_str());
    assert_eq!(d["InitiatingProcessId"], shell_pid, "{d:?}");

    // Created then appended to twice: one created row (hashless: not a program) and at most
    // one modification within the window.
    let notes = find("FileCreated", "notes.txt");
    assert_eq!(notes.len(), 1, "{rows:#?}");
    assert!(notes[0].get("SHA1").is_none());
    assert!(find("FileModified", "notes.txt").len() <= 1, "{rows:#?}");

    let renamed = find("FileRenamed", "renamed.txt");
    assert_eq!(renamed.len(), 1, "{rows:#?}");
    assert_eq!(renamed[0]["PreviousFileName"], "notes.txt");
    assert_eq!(
        renamed[0]["PreviousFolderPath"],
        fs.path().to_string_lossy().as_ref()
    );
    // `mv` did it: a child of the shell, perhaps gone before it could be read.
    let renamer = renamed[0]["InitiatingProcessId"].as_u64().unwrap();
    assert!(renamer != u64::from(shell_pid) && renamer != u64::from(std::process::id()));
    if let Some(name) = renamed[0].get("InitiatingProcessFileName") {
        assert_eq!(name, "mv");
    }
    assert_eq!(find("FileDeleted", "renamed.txt").len(), 1, "{rows:#?}");

    // Nothing under the ignored directory.
    assert!(
        !rows.iter().any(|r| r["FolderPath"]
            .as_str()
            .unwrap_or("")
            .contains("agent-state")),
        "{rows:#?}"
    );
}
