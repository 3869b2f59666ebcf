//! The logon sensor: sshd lines and utmp records parsed, files followed as they grow (whole
//! lines and records only, rotation, offsets kept across restarts), the journal followed
//! through the real `journalctl` (journal files written by `systemd-journal-remote`), and rows
//! that fit DeviceLogonEvents.

use rampart_agent::logons::{
    JournalSource, LogonFollower, LogonSources, UTMP_SIZE, journal_logon, parse_auth_line,
    parse_utmp, row,
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
        journal: JournalSource::Off,
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
        journal: JournalSource::Off,
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

/// Writes journal entries of sshd (export format → `systemd-journal-remote`) as a new journal
/// file in `dir`, the way journald would add them.
fn write_journal(dir: &Path, name: &str, messages: &[&str]) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    let mut export = String::new();
    for (i, m) in messages.iter().enumerate() {
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\nSYSLOG_IDENTIFIER=sshd\n_PID=4242\n\
             MESSAGE={m}\n\n",
            now + i as i128,
            now + i as i128,
        ));
    }
    let input = dir.with_extension(format!("{name}.export"));
    std::fs::write(&input, export).unwrap();
    let status = std::process::Command::new("/lib/systemd/systemd-journal-remote")
        .arg(format!(
            "--output={}",
            dir.join(format!("{name}.journal")).display()
        ))
        .arg(&input)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("systemd-journal-remote (apt-get install systemd-journal-remote)");
    assert!(status.success());
}

/// The accounts of the logons read within `secs`, until `n` are read.
fn journal_accounts(f: &mut LogonFollower, n: usize, secs: u64) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut got = Vec::new();
    while got.len() < n && std::time::Instant::now() < deadline {
        got.extend(f.read_new().unwrap().into_iter().map(|l| l.account));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    got
}

#[test]
fn without_an_auth_log_the_journal_is_followed_from_its_cursor_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    write_journal(
        &journal,
        "old",
        &["Accepted password for before from 192.0.2.1 port 22 ssh2"],
    );
    let sources = LogonSources {
        auth_logs: vec![dir.path().join("auth.log")],
        journal: JournalSource::Directory(journal.clone()),
        wtmp: dir.path().join("wtmp"),
        btmp: dir.path().join("btmp"),
    };
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let mut f = LogonFollower::new(&state, &sources).unwrap();
    assert_eq!(f.sources(), vec![journal.clone()]);
    // What was there before the first start is not news (given journalctl time to look).
    assert!(journal_accounts(&mut f, 1, 1).is_empty());

    write_journal(
        &journal,
        "new",
        &[
            "Failed password for invalid user admin from 203.0.113.9 port 51234 ssh2",
            "Server listening on 0.0.0.0 port 22.",
            "Accepted publickey for alice from 2001:db8::7 port 40022 ssh2: ED25519 SHA256:abc",
        ],
    );
    assert_eq!(journal_accounts(&mut f, 2, 10), ["admin", "alice"]);
    drop(f);

    // A restart goes on after the last entry read, whatever was logged meanwhile.
    write_journal(
        &journal,
        "later",
        &["Accepted password for bob from 198.51.100.4 port 2200 ssh2"],
    );
    let mut f = LogonFollower::new(&state, &sources).unwrap();
    assert_eq!(journal_accounts(&mut f, 1, 10), ["bob"]);
    assert!(
        journal_accounts(&mut f, 1, 1).is_empty(),
        "nothing read twice"
    );
}

#[test]
fn journal_entries_become_logons_at_their_own_time() {
    let entry = serde_json::json!({
        "MESSAGE": "Failed password for root from 203.0.113.9 port 51234 ssh2",
        "__REALTIME_TIMESTAMP": "1796624273711904",
        "SYSLOG_IDENTIFIER": "sshd",
    });
    let l = journal_logon(&entry).unwrap();
    assert!(!l.success);
    assert_eq!(l.account, "root");
    assert_eq!(l.remote_port, Some(51234));
    assert_eq!(l.time.unix_timestamp_nanos(), 1_796_624_273_711_904_000);
    // A message that is not UTF-8 comes as an array of bytes.
    let bytes: Vec<u8> = b"Accepted password for caf\xe9 from 192.0.2.1 port 22 ssh2".to_vec();
    let entry = serde_json::json!({ "MESSAGE": bytes, "__REALTIME_TIMESTAMP": "1" });
    assert_eq!(journal_logon(&entry).unwrap().account, "caf\u{fffd}");
    let entry = serde_json::json!({ "MESSAGE": "Connection closed by 192.0.2.1 port 22" });
    assert!(journal_logon(&entry).is_none());
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
