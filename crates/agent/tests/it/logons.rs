//! The logon sensor: sshd lines and utmp records parsed, files followed as they grow (whole
//! lines and records only, rotation, offsets kept across restarts), and rows that fit
//! DeviceLogonEvents.

use rampart_agent::logons::{
    LogonFollower, LogonSources, UTMP_SIZE, parse_auth_line, parse_utmp, row,
};
use rampart_agent::process::rows::RowContext;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

#[test]
fn sshd_lines_become_logons() {
    let ok = parse_auth_line(
        "Dec  4 21:40:01 web-1 sshd[4242]: Accepted publickey for alice from 203.0.113.9 port 51514 ssh2: ED25519 SHA256:abc",
        2026,
    )
    .unwrap();
    assert!(ok.success);
    assert_eq!(ok.account, "alice");
    assert_eq!(ok.remote_ip, Some("203.0.113.9".parse::<IpAddr>().unwrap()));
    assert_eq!(ok.remote_port, Some(51514));
    assert_eq!(ok.method.as_deref(), Some("publickey"));
    assert_eq!(ok.logon_type, "Network");
    assert_eq!(ok.time.to_string(), "2026-12-04 21:40:01.0 +00:00:00");

    let bad = parse_auth_line(
        "2026-12-04T21:41:00.123456+00:00 web-1 sshd[4243]: Failed password for root from 2001:db8::7 port 40000 ssh2",
        2026,
    )
    .unwrap();
    assert!(!bad.success);
    assert_eq!(bad.account, "root");
    assert_eq!(bad.failure_reason, Some("InvalidUserNameOrPassword"));
    assert_eq!(bad.time.unix_timestamp() % 60, 0);

    let unknown = parse_auth_line(
        "Dec  4 21:42:00 web-1 sshd[4244]: Failed password for invalid user admin from 198.51.100.4 port 1 ssh2",
        2026,
    )
    .unwrap();
    assert_eq!(unknown.account, "admin");
    assert_eq!(unknown.failure_reason, Some("UnknownUser"));

    for other in [
        "Dec  4 21:43:00 web-1 sshd[1]: Invalid user admin from 198.51.100.4 port 1",
        "Dec  4 21:43:00 web-1 sshd[1]: Connection closed by 198.51.100.4 port 1 [preauth]",
        "Dec  4 21:43:00 web-1 CRON[9]: pam_unix(cron:session): session opened for user root",
        "",
        "garbage",
    ] {
        assert_eq!(parse_auth_line(other, 2026), None, "{other}");
    }
}

/// A utmp record as glibc writes it.
fn utmp(kind: i16, line: &str, user: &str, host: &str, secs: i32, addr: [u8; 4]) -> Vec<u8> {
    let mut r = vec![0u8; UTMP_SIZE];
    r[0..2].copy_from_slice(&kind.to_ne_bytes());
    r[4..8].copy_from_slice(&1234i32.to_ne_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r[76..76 + host.len()].copy_from_slice(host.as_bytes());
    r[340..344].copy_from_slice(&secs.to_ne_bytes());
    r[348..352].copy_from_slice(&addr);
    r
}

#[test]
fn utmp_records_become_logons() {
    let l = parse_utmp(
        &utmp(
            7,
            "pts/0",
            "bob",
            "192.0.2.44",
            1_764_884_400,
            [192, 0, 2, 44],
        ),
        false,
    )
    .unwrap();
    assert!(l.success);
    assert_eq!(l.account, "bob");
    assert_eq!(l.logon_type, "Network");
    assert_eq!(l.remote_ip, Some("192.0.2.44".parse::<IpAddr>().unwrap()));
    assert_eq!(l.time.unix_timestamp(), 1_764_884_400);
    let console = parse_utmp(&utmp(7, "tty1", "carol", "", 1_764_884_400, [0; 4]), false).unwrap();
    assert_eq!(console.logon_type, "Interactive");
    assert_eq!(console.remote_ip, None);
    let named = parse_utmp(
        &utmp(7, "pts/1", "dave", "jump.corp.example", 1, [0; 4]),
        false,
    )
    .unwrap();
    assert_eq!(named.remote_name.as_deref(), Some("jump.corp.example"));
    // A logout or a boot record is not a logon; any btmp record is a failure.
    assert_eq!(
        parse_utmp(&utmp(8, "pts/0", "bob", "", 1, [0; 4]), false),
        None
    );
    assert_eq!(
        parse_utmp(&utmp(2, "~", "reboot", "", 1, [0; 4]), false),
        None
    );
    let failed = parse_utmp(
        &utmp(6, "ssh:notty", "root", "198.51.100.9", 1, [198, 51, 100, 9]),
        true,
    )
    .unwrap();
    assert!(!failed.success);
    assert_eq!(failed.logon_type, "Network");
    assert_eq!(parse_utmp(&[0u8; 100], false), None);
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// The accounts of the logons written since the last read.
fn accounts(f: &mut LogonFollower) -> Vec<String> {
    f.read_new()
        .unwrap()
        .into_iter()
        .map(|l| l.account)
        .collect()
}

#[test]
fn the_auth_log_is_followed_line_by_line_across_restarts_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let line = |user: &str| {
        format!(
            "Dec  4 21:40:01 web-1 sshd[1]: Accepted password for {user} from 10.0.0.9 port 2222 ssh2\n"
        )
    };
    append(&log, line("old").as_bytes());
    let sources = LogonSources {
        auth_logs: vec![dir.path().join("missing.log"), log.clone()],
        wtmp: dir.path().join("wtmp"),
        btmp: dir.path().join("btmp"),
    };
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let mut f = LogonFollower::new(&state, &sources).unwrap();
    assert_eq!(f.sources(), vec![log.clone()]);
    // What was there before the first start is not news.
    assert!(f.read_new().unwrap().is_empty());
    let two = line("alice");
    append(&log, two.as_bytes());
    append(&log, &line("bob").as_bytes()[..20]);
    assert_eq!(accounts(&mut f), ["alice"], "only whole lines");
    append(&log, &line("bob").as_bytes()[20..]);
    drop(f);
    // A restart goes on where the last run stopped.
    let mut f = LogonFollower::new(&state, &sources).unwrap();
    assert_eq!(accounts(&mut f), ["bob"]);
    // Rotation: a new file is read from its start.
    std::fs::rename(&log, dir.path().join("auth.log.1")).unwrap();
    append(&log, line("carol").as_bytes());
    assert_eq!(accounts(&mut f), ["carol"]);
}

#[test]
fn without_an_auth_log_wtmp_and_btmp_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let sources = LogonSources {
        auth_logs: vec![dir.path().join("auth.log")],
        wtmp: dir.path().join("wtmp"),
        btmp: dir.path().join("btmp"),
    };
    append(&sources.wtmp, &utmp(7, "pts/0", "before", "", 1, [0; 4]));
    let mut f = LogonFollower::new(dir.path(), &sources).unwrap();
    append(
        &sources.wtmp,
        &utmp(7, "pts/0", "erin", "192.0.2.1", 5, [192, 0, 2, 1]),
    );
    append(&sources.wtmp, &utmp(8, "pts/0", "", "", 6, [0; 4]));
    // btmp did not exist at start: read from its beginning once it appears.
    append(
        &sources.btmp,
        &utmp(
            6,
            "ssh:notty",
            "mallory",
            "203.0.113.66",
            7,
            [203, 0, 113, 66],
        ),
    );
    let got: Vec<(String, bool)> = f
        .read_new()
        .unwrap()
        .into_iter()
        .map(|l| (l.account, l.success))
        .collect();
    assert_eq!(
        got,
        [("erin".to_owned(), true), ("mallory".to_owned(), false)]
    );
}

#[test]
fn rows_use_only_the_columns_of_device_logon_events() {
    let ctx = RowContext {
        device_id: Some("01".repeat(20)),
        device_name: "web-1".into(),
        account_domain: "web-1".into(),
    };
    let l = parse_auth_line(
        "Dec  4 21:42:00 web-1 sshd[4244]: Failed password for invalid user admin from 198.51.100.4 port 1 ssh2",
        2026,
    )
    .unwrap();
    let r = row(&ctx, &l);
    let table = &rampart_core::schema::DEVICE_LOGON_EVENTS;
    for column in r.keys() {
        assert!(table.columns.iter().any(|c| c.name == column), "{column}");
    }
    assert_eq!(r["ActionType"], "LogonFailed");
    assert_eq!(r["RemoteIPType"], "Reserved", "a documentation address");
    assert_eq!(r["AccountDomain"], "web-1");
}
