//! DeviceInfo and process rows use only columns of their tables, with the right JSON types;
//! the /proc, os-release and utmp parsers; DeviceInfo reported again when it changes.

use rampart_agent::host::{ChangeReporter, DeviceInfo, logged_on_users, parse_os_release};
use rampart_agent::process::hashes::Hashes;
use rampart_agent::process::procfs::{join_cmdline, parse_stat};
use rampart_agent::process::rows::{GrandParent, ProcInfo, RowContext, process_created};
use rampart_agent::process::users::parse_passwd;
use rampart_core::schema::{self, KqlType, Table};
use rampart_proto::telemetry::Row;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Every column exists in `table` and its value has the JSON type the server parses it from.
fn check_row(table: &Table, row: &Row) {
    for (name, value) in row {
        let (_, col) = table
            .column(name)
            .unwrap_or_else(|| panic!("{}.{name} is not a column", table.name));
        match col.kql_type {
            KqlType::Long | KqlType::Int => {
                assert!(value.is_i64() || value.is_u64(), "{name}: {value}")
            }
            KqlType::DateTime => {
                let text = value.as_str().unwrap_or_else(|| panic!("{name}: {value}"));
                OffsetDateTime::parse(text, &Rfc3339)
                    .unwrap_or_else(|e| panic!("{name}: {text}: {e}"));
            }
            KqlType::Bool => assert!(value.is_boolean(), "{name}"),
            _ => assert!(value.is_string(), "{name}: {value}"),
        }
    }
    assert!(row.contains_key(schema::TIMESTAMP));
}

fn info(pid: u32, name: &str) -> ProcInfo {
    ProcInfo {
        pid,
        ppid: Some(1),
        path: Some(format!("/usr/bin/{name}")),
        file_name: Some(name.into()),
        cmdline: Some(format!("{name} -x")),
        account_name: Some("root".into()),
        creation_time: Some(OffsetDateTime::now_utc()),
        hashes: Some(Hashes {
            sha1: "a".repeat(40),
            sha256: "b".repeat(64),
            md5: "c".repeat(32),
            size: 10,
        }),
    }
}

#[test]
fn process_rows_use_schema_columns_with_the_right_types() {
    let ctx = RowContext {
        device_id: Some("d".repeat(40)),
        device_name: "host1".into(),
        account_domain: "host1".into(),
    };
    let gp = GrandParent {
        pid: Some(1),
        file_name: Some("systemd".into()),
        creation_time: Some(OffsetDateTime::now_utc()),
    };
    let row = process_created(
        &ctx,
        OffsetDateTime::now_utc(),
        &info(20, "ls"),
        Some(&info(10, "bash")),
        &gp,
        None,
    );
    check_row(&schema::DEVICE_PROCESS_EVENTS, &row);
    assert_eq!(row["ActionType"], "ProcessCreated");
    assert_eq!(row["InitiatingProcessFileName"], "bash");
    assert_eq!(row["InitiatingProcessParentFileName"], "systemd");
    assert_eq!(row["InitiatingProcessSHA256"], "b".repeat(64));

    // A process gone before /proc was read: what is known, and why the rest is missing.
    let gone = ProcInfo {
        pid: 30,
        ppid: Some(10),
        ..Default::default()
    };
    let row = process_created(
        &ctx,
        OffsetDateTime::now_utc(),
        &gone,
        None,
        &GrandParent::default(),
        Some("exited"),
    );
    check_row(&schema::DEVICE_PROCESS_EVENTS, &row);
    assert_eq!(row["ProcessId"], 30);
    assert_eq!(row["InitiatingProcessId"], 10);
    let extra: Value = serde_json::from_str(row["AdditionalFields"].as_str().unwrap()).unwrap();
    assert_eq!(extra["Partial"], true);
}

#[test]
fn device_info_row_uses_schema_columns_and_os_release() {
    let os = parse_os_release(
        "NAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\n# comment\nPRETTY_NAME='Ubuntu 24.04 LTS'\n",
    );
    let info = DeviceInfo {
        device_id: Some("d".repeat(40)),
        device_name: "host1".into(),
        os_release: os,
        process_source: "ProcConnector".into(),
        logged_on_users: vec!["alice".into(), "root".into()],
    };
    let row = info.row(OffsetDateTime::now_utc());
    check_row(&schema::DEVICE_INFO, &row);
    assert_eq!(row["OSPlatform"], "Linux");
    assert_eq!(row["OSDistribution"], "Ubuntu");
    assert_eq!(row["OSVersion"], "24.04");
    assert_eq!(row["OSVersionInfo"], "Ubuntu 24.04 LTS");
    assert_eq!(row["ClientVersion"], rampart_agent::VERSION);
    let extra: Value = serde_json::from_str(row["AdditionalFields"].as_str().unwrap()).unwrap();
    assert_eq!(extra["ProcessSensor"], "ProcConnector");
    let users: Value = serde_json::from_str(row["LoggedOnUsers"].as_str().unwrap()).unwrap();
    assert_eq!(
        users,
        serde_json::json!([{ "UserName": "alice" }, { "UserName": "root" }])
    );
}

/// A utmp record: type, pid, line, user (glibc's `struct utmp`, 384 bytes).
fn utmp_record(kind: i16, pid: i32, line: &str, user: &str) -> Vec<u8> {
    let mut r = vec![0u8; rampart_agent::logons::UTMP_SIZE];
    r[0..2].copy_from_slice(&kind.to_ne_bytes());
    r[4..8].copy_from_slice(&pid.to_ne_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r
}

#[test]
fn device_info_is_reported_again_when_someone_logs_on_and_not_otherwise() {
    const USER_PROCESS: i16 = 7;
    const LOGIN_PROCESS: i16 = 6;
    let dir = tempfile::tempdir().unwrap();
    let utmp = dir.path().join("utmp");
    let me = std::process::id() as i32;
    // A live session, a login prompt (not a session), and a session whose process is gone.
    let mut records = utmp_record(USER_PROCESS, me, "pts/0", "alice");
    records.extend(utmp_record(LOGIN_PROCESS, me, "tty1", "LOGIN"));
    records.extend(utmp_record(USER_PROCESS, i32::MAX - 1, "pts/1", "mallory"));
    std::fs::write(&utmp, &records).unwrap();
    assert_eq!(logged_on_users(&utmp), ["alice"]);
    assert!(logged_on_users(&dir.path().join("missing")).is_empty());

    let read = || DeviceInfo::read(Some("d".repeat(40)), "Ebpf", &utmp);
    let mut reports = ChangeReporter::new(std::time::Duration::from_secs(3600));
    assert!(reports.due(&read()), "reported at start");
    assert!(!reports.due(&read()), "nothing changed");
    // Bob logs on (twice: one user, two sessions), then logs off.
    records.extend(utmp_record(USER_PROCESS, me, "pts/2", "bob"));
    records.extend(utmp_record(USER_PROCESS, me, "pts/3", "bob"));
    std::fs::write(&utmp, &records).unwrap();
    let info = read();
    assert_eq!(info.logged_on_users, ["alice", "bob"]);
    assert!(reports.due(&info), "a logon changes DeviceInfo");
    assert!(!reports.due(&read()));
    std::fs::write(&utmp, &records[..rampart_agent::logons::UTMP_SIZE * 3]).unwrap();
    assert!(reports.due(&read()), "so does a logoff");

    // And without change, once the interval has passed.
    let mut hourly = ChangeReporter::new(std::time::Duration::ZERO);
    assert!(hourly.due(&read()));
    assert!(hourly.due(&read()));
}

#[test]
fn stat_lines_with_hostile_names_parse() {
    let line = "1234 (evil) name) 5) S 77 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
    let s = parse_stat(line).unwrap();
    assert_eq!(s.comm, "evil) name) 5");
    assert_eq!(s.ppid, 77);
    assert_eq!(s.start_ticks, 987654);
    assert_eq!(parse_stat("garbage"), None);
}

#[test]
fn command_lines_are_joined_and_quoted() {
    assert_eq!(join_cmdline(b"ls\0-la\0/tmp\0"), "ls -la /tmp");
    assert_eq!(
        join_cmdline(b"sh\0-c\0echo \"hi\" there\0\0"),
        r#"sh -c "echo \"hi\" there" """#
    );
}

#[test]
fn passwd_maps_uids_to_first_names() {
    let m = parse_passwd(
        "root:x:0:0:root:/root:/bin/bash\nbroken\ntoor:x:0:0::/:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    );
    assert_eq!(m[&0], "root");
    assert_eq!(m[&1000], "alice");
    assert_eq!(m.len(), 2);
}
