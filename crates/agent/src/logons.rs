//! The logon sensor: sign-ins and failed sign-ins → `DeviceLogonEvents`.
//!
//! Three sources, read from where the last read stopped (kept across restarts in
//! `logons.json`; a new file — rotated, its inode changed — is read from its start):
//!
//! * the authentication log (`/var/log/auth.log`, or `/var/log/secure`): sshd's `Accepted …`
//!   and `Failed …` lines, with method, user, address and port;
//! * where there is no such log, the journal (journald-only hosts): the same sshd messages,
//!   streamed by a `journalctl --follow` child ([`JournalReader`]) from the cursor last read;
//! * where there is neither, the login accounting files: `wtmp` (each `USER_PROCESS` record a
//!   successful logon) and `btmp` (each record a failed one).
//!
//! Only one source is used, so a logon is never reported twice. A host with none reports
//! nothing, and says so once in the log.

use crate::batcher::TableRow;
use crate::error::{Result, io_err};
use crate::fsutil::{read_json_or_default, write_json};
use crate::network::ip_type;
use crate::process::rows::RowContext;
use crate::worker::{Worker, pause};
use rampart_proto::telemetry::Row;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// One logon, as either source describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logon {
    pub time: OffsetDateTime,
    pub success: bool,
    pub account: String,
    /// `Network` (sshd, or a login from a remote host), else `Interactive`.
    pub logon_type: &'static str,
    pub remote_ip: Option<IpAddr>,
    pub remote_port: Option<u16>,
    /// The remote host when it was given by name.
    pub remote_name: Option<String>,
    /// `password`, `publickey`, … for sshd.
    pub method: Option<String>,
    pub failure_reason: Option<&'static str>,
}

/// An sshd line of an authentication log; `year` completes the syslog time, which has none.
pub fn parse_auth_line(line: &str, year: i32) -> Option<Logon> {
    let (_, msg) = line.split_once(" sshd[")?;
    let msg = msg.split_once("]: ")?.1;
    parse_sshd_message(msg, || {
        syslog_time(line, year).unwrap_or_else(OffsetDateTime::now_utc)
    })
}

/// sshd's message of a logon (`Accepted publickey for …`, `Failed password for …`), as logged
/// at `time`.
pub fn parse_sshd_message(msg: &str, time: impl FnOnce() -> OffsetDateTime) -> Option<Logon> {
    let (success, rest) = if let Some(r) = msg.strip_prefix("Accepted ") {
        (true, r)
    } else if let Some(r) = msg.strip_prefix("Failed ") {
        (false, r)
    } else {
        return None;
    };
    // "<method> for [invalid user ]<user> from <ip> port <port> ssh2"
    let (method, rest) = rest.split_once(" for ")?;
    let (invalid, rest) = match rest.strip_prefix("invalid user ") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (user, rest) = rest.rsplit_once(" from ")?;
    let mut words = rest.split_whitespace();
    let ip: IpAddr = words.next()?.parse().ok()?;
    let port = match (words.next(), words.next()) {
        (Some("port"), Some(p)) => p.parse().ok(),
        _ => None,
    };
    Some(Logon {
        time: time(),
        success,
        account: user.to_owned(),
        logon_type: "Network",
        remote_ip: Some(ip),
        remote_port: port,
        remote_name: None,
        method: Some(method.to_owned()),
        failure_reason: (!success).then_some(if invalid {
            "UnknownUser"
        } else {
            "InvalidUserNameOrPassword"
        }),
    })
}

/// The time of a syslog line: `Dec  4 21:40:01 host …` (local time taken as UTC, as syslog has
/// no zone) or an RFC 3339 prefix (`2026-12-04T21:40:01.123456+00:00 host …`).
fn syslog_time(line: &str, year: i32) -> Option<OffsetDateTime> {
    let first = line.split_whitespace().next()?;
    if first.len() > 10 && first.as_bytes()[4] == b'-' {
        return OffsetDateTime::parse(first, &time::format_description::well_known::Rfc3339).ok();
    }
    let mut w = line.split_whitespace();
    let month = match w.next()? {
        "Jan" => time::Month::January,
        "Feb" => time::Month::February,
        "Mar" => time::Month::March,
        "Apr" => time::Month::April,
        "May" => time::Month::May,
        "Jun" => time::Month::June,
        "Jul" => time::Month::July,
        "Aug" => time::Month::August,
        "Sep" => time::Month::September,
        "Oct" => time::Month::October,
        "Nov" => time::Month::November,
        "Dec" => time::Month::December,
        _ => return None,
    };
    let day: u8 = w.next()?.parse().ok()?;
    let mut hms = w.next()?.split(':').map(|p| p.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(date.with_hms(h, m, s).ok()?.assume_utc())
}

/// Size of one `struct utmp` record on Linux (glibc, all 64-bit and 32-bit ABIs alike).
pub const UTMP_SIZE: usize = 384;
const USER_PROCESS: i16 = 7;

/// One wtmp/btmp record; `failed` for btmp. `None` for records that are not logons.
pub fn parse_utmp(rec: &[u8], failed: bool) -> Option<Logon> {
    if rec.len() < UTMP_SIZE {
        return None;
    }
    let kind = i16::from_ne_bytes([rec[0], rec[1]]);
    // btmp records of failed logins are written with any type (login uses LOGIN_PROCESS).
    if !failed && kind != USER_PROCESS {
        return None;
    }
    let text = |at: usize, len: usize| -> String {
        let b = &rec[at..at + len];
        let end = b.iter().position(|&c| c == 0).unwrap_or(len);
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    let line = text(8, 32);
    let user = text(44, 32);
    let host = text(76, 256);
    let secs = i32::from_ne_bytes(rec[340..344].try_into().ok()?);
    let usecs = i32::from_ne_bytes(rec[344..348].try_into().ok()?);
    let addr: [u8; 16] = rec[348..364].try_into().ok()?;
    if user.is_empty() {
        return None;
    }
    let remote_ip = if addr[4..] == [0; 12] {
        let v4 = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
        (!v4.is_unspecified()).then_some(IpAddr::V4(v4))
    } else {
        Some(IpAddr::V6(Ipv6Addr::from(addr)))
    }
    .or_else(|| host.parse().ok());
    let remote = !host.is_empty() && !host.starts_with(':');
    let time = OffsetDateTime::from_unix_timestamp(i64::from(secs)).ok()?
        + Duration::from_micros(u64::try_from(usecs).unwrap_or(0));
    Some(Logon {
        time,
        success: !failed,
        account: user,
        logon_type: if remote || line.starts_with("ssh") {
            "Network"
        } else {
            "Interactive"
        },
        remote_ip,
        remote_port: None,
        remote_name: (remote && host.parse::<IpAddr>().is_err()).then_some(host),
        method: None,
        failure_reason: failed.then_some("InvalidUserNameOrPassword"),
    })
}

/// The DeviceLogonEvents row of a logon.
pub fn row(ctx: &RowContext, logon: &Logon) -> Row {
    let action = if logon.success {
        "LogonSuccess"
    } else {
        "LogonFailed"
    };
    let mut r = ctx.event(logon.time, action);
    r.insert("LogonType".into(), json!(logon.logon_type));
    r.insert("AccountName".into(), json!(logon.account));
    r.insert("AccountDomain".into(), json!(ctx.account_domain));
    if let Some(ip) = logon.remote_ip {
        r.insert("RemoteIP".into(), json!(ip.to_string()));
        r.insert("RemoteIPType".into(), json!(ip_type(ip)));
    }
    if let Some(p) = logon.remote_port {
        r.insert("RemotePort".into(), json!(p));
    }
    if let Some(n) = &logon.remote_name {
        r.insert("RemoteDeviceName".into(), json!(n));
    }
    if let Some(reason) = logon.failure_reason {
        r.insert("FailureReason".into(), json!(reason));
    }
    if let Some(m) = &logon.method {
        r.insert(
            "AdditionalFields".into(),
            Value::String(json!({ "AuthenticationMethod": m }).to_string()),
        );
    }
    r
}

/// Where each file was read up to: (inode, offset), by path; and the journal's cursor.
#[derive(Default, Serialize, Deserialize)]
struct Offsets {
    files: BTreeMap<String, (u64, u64)>,
    #[serde(default)]
    journal_cursor: Option<String>,
}

/// Which journal to read where there is no authentication log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalSource {
    /// The host's, if it keeps one (journal files under `/var/log/journal` or
    /// `/run/log/journal`).
    System,
    /// The journal files in this directory.
    Directory(PathBuf),
    /// None.
    Off,
}

/// The files to follow.
#[derive(Clone, Debug)]
pub struct LogonSources {
    pub auth_logs: Vec<PathBuf>,
    pub journal: JournalSource,
    pub wtmp: PathBuf,
    pub btmp: PathBuf,
}

impl Default for LogonSources {
    fn default() -> Self {
        LogonSources {
            auth_logs: vec!["/var/log/auth.log".into(), "/var/log/secure".into()],
            journal: JournalSource::System,
            wtmp: "/var/log/wtmp".into(),
            btmp: "/var/log/btmp".into(),
        }
    }
}

/// Whether the host keeps a journal: a journal file in one of journald's directories (an
/// empty directory, as a container may have, is not a journal).
fn system_journal_present() -> bool {
    ["/var/log/journal", "/run/log/journal"].iter().any(|dir| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|machine| {
                std::fs::read_dir(machine.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|f| f.file_name().to_string_lossy().ends_with(".journal"))
            })
    })
}

/// sshd's journal identifiers: OpenSSH 9.8 logs sessions as `sshd-session`.
const SSHD_IDENTIFIERS: [&str; 2] = ["SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session"];

/// A `journalctl --follow` child streaming sshd's journal entries as JSON, read without
/// blocking. Restarted from the last cursor read when it exits; ended with the reader.
pub struct JournalReader {
    directory: Option<PathBuf>,
    /// Where reading starts without a cursor: when the reader was made. (Not the journal's end
    /// when journalctl gets there: what is logged while it starts would be skipped.)
    since: OffsetDateTime,
    child: Option<(std::process::Child, std::process::ChildStdout)>,
    pending: Vec<u8>,
}

impl JournalReader {
    fn new(directory: Option<PathBuf>) -> JournalReader {
        JournalReader {
            directory,
            since: OffsetDateTime::now_utc(),
            child: None,
            pending: Vec::new(),
        }
    }

    /// Starts `journalctl` after `cursor`, or at [`JournalReader::since`].
    fn start(&mut self, cursor: Option<&str>) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut cmd = std::process::Command::new("journalctl");
        cmd.args(["--follow", "--output=json", "--no-pager", "--quiet"]);
        if let Some(dir) = &self.directory {
            cmd.arg("--directory").arg(dir);
        }
        match cursor {
            Some(c) => cmd.arg(format!("--after-cursor={c}")),
            None => cmd.arg(format!(
                "--since=@{}.{:06}",
                self.since.unix_timestamp(),
                self.since.microsecond()
            )),
        };
        let mut child = cmd
            .args(SSHD_IDENTIFIERS)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(std::io::Error::other("journalctl has no stdout"));
        };
        // SAFETY: fcntl on the pipe's descriptor, which `stdout` owns and keeps open; the
        // flags are read and written back with O_NONBLOCK added, nothing else changes.
        let nonblocking = unsafe {
            let fd = stdout.as_raw_fd();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        if !nonblocking {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::last_os_error());
        }
        self.pending.clear();
        self.child = Some((child, stdout));
        Ok(())
    }

    /// The logons journalctl has written since the last call; `cursor` moves past each entry
    /// read. A child that exited is started again after `cursor`.
    fn read_new(&mut self, cursor: &mut Option<String>, out: &mut Vec<Logon>) -> Result<()> {
        let exited = match &mut self.child {
            Some((child, _)) => match child.try_wait() {
                Ok(Some(status)) => {
                    tracing::warn!("journalctl exited ({status}); starting it again");
                    true
                }
                _ => false,
            },
            None => true,
        };
        if exited {
            self.stop();
            self.start(cursor.as_deref())
                .map_err(io_err("starting journalctl"))?;
        }
        let Some((_, stdout)) = &mut self.child else {
            return Ok(());
        };
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match stdout.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(io_err("reading journalctl")(e)),
            }
        }
        let end = self
            .pending
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        for line in self.pending[..end].split(|&b| b == b'\n') {
            let Ok(entry) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            if let Some(c) = entry["__CURSOR"].as_str() {
                *cursor = Some(c.to_owned());
            }
            out.extend(journal_logon(&entry));
        }
        self.pending.drain(..end);
        Ok(())
    }

    fn stop(&mut self) {
        if let Some((mut child, _)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for JournalReader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The logon of one journal entry (`journalctl --output=json`): its message, which is an
/// array of bytes when it is not UTF-8, at its `__REALTIME_TIMESTAMP` (microseconds).
pub fn journal_logon(entry: &Value) -> Option<Logon> {
    let message = match &entry["MESSAGE"] {
        Value::String(s) => s.clone(),
        Value::Array(bytes) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => return None,
    };
    let time = entry["__REALTIME_TIMESTAMP"]
        .as_str()
        .and_then(|t| t.parse::<i128>().ok())
        .and_then(|us| OffsetDateTime::from_unix_timestamp_nanos(us * 1000).ok());
    parse_sshd_message(&message, || time.unwrap_or_else(OffsetDateTime::now_utc))
}

/// What one file is read as.
#[derive(Clone, Copy)]
enum Format {
    AuthLog,
    Utmp { failed: bool },
}

/// wtmp (logons) and btmp (failed logons).
fn accounting_files(sources: &LogonSources) -> Vec<(PathBuf, Format)> {
    vec![
        (sources.wtmp.clone(), Format::Utmp { failed: false }),
        (sources.btmp.clone(), Format::Utmp { failed: true }),
    ]
}

/// Follows the sources, from where the last run stopped.
pub struct LogonFollower {
    state: PathBuf,
    offsets: Offsets,
    files: Vec<(PathBuf, Format)>,
    journal: Option<JournalReader>,
}

impl LogonFollower {
    /// The follower of `sources`; the auth log if there is one, else the journal if there is
    /// one, else wtmp and btmp. Files seen for the first time are read from their end, and a
    /// journal without a cursor from now: the past is not news.
    pub fn new(state_dir: &Path, sources: &LogonSources) -> Result<LogonFollower> {
        let state = state_dir.join("logons.json");
        let offsets: Offsets = read_json_or_default(&state)?;
        let journal = match &sources.journal {
            JournalSource::System => system_journal_present().then_some(None),
            JournalSource::Directory(dir) => Some(Some(dir.clone())),
            JournalSource::Off => None,
        };
        let (files, journal) = match sources.auth_logs.iter().find(|p| p.is_file()) {
            Some(log) => (vec![(log.clone(), Format::AuthLog)], None),
            None if journal.is_some() => (Vec::new(), journal.map(JournalReader::new)),
            None => (accounting_files(sources), None),
        };
        let mut f = LogonFollower {
            state,
            offsets,
            files,
            journal,
        };
        // Started now, so that what is logged from now on is read even if it is at the end.
        if let Some(j) = &mut f.journal
            && let Err(e) = j.start(f.offsets.journal_cursor.as_deref())
        {
            tracing::warn!("journalctl cannot be run ({e}); reading wtmp and btmp");
            f.journal = None;
            f.files = accounting_files(sources);
        }
        for (path, _) in f.files.clone() {
            let key = path.to_string_lossy().into_owned();
            if !f.offsets.files.contains_key(&key)
                && let Ok(meta) = std::fs::metadata(&path)
            {
                f.offsets.files.insert(key, (meta.ino(), meta.len()));
            }
        }
        f.save()?;
        Ok(f)
    }

    /// The files followed; the journal as `journal` or its directory.
    pub fn sources(&self) -> Vec<PathBuf> {
        let journal = self.journal.as_ref().map(|j| {
            j.directory
                .clone()
                .unwrap_or_else(|| PathBuf::from("journal"))
        });
        self.files
            .iter()
            .map(|(p, _)| p.clone())
            .chain(journal)
            .collect()
    }

    fn save(&self) -> Result<()> {
        write_json(&self.state, &self.offsets)
    }

    /// The logons written since the last read.
    pub fn read_new(&mut self) -> Result<Vec<Logon>> {
        let mut out = Vec::new();
        let year = OffsetDateTime::now_utc().year();
        for (path, format) in self.files.clone() {
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            let meta = file
                .metadata()
                .map_err(io_err(format!("reading {}", path.display())))?;
            let key = path.to_string_lossy().into_owned();
            let (inode, mut offset) = self
                .offsets
                .files
                .get(&key)
                .copied()
                .unwrap_or((meta.ino(), 0));
            // Rotated (a new file) or truncated: start over.
            if inode != meta.ino() || meta.len() < offset {
                offset = 0;
            }
            file.seek(SeekFrom::Start(offset))
                .map_err(io_err(format!("reading {}", path.display())))?;
            let mut bytes = Vec::new();
            file.take(16 << 20)
                .read_to_end(&mut bytes)
                .map_err(io_err(format!("reading {}", path.display())))?;
            // Only whole lines or records; the rest is read when it is complete.
            let used = match format {
                Format::AuthLog => {
                    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                    out.extend(
                        String::from_utf8_lossy(&bytes[..end])
                            .lines()
                            .filter_map(|l| parse_auth_line(l, year)),
                    );
                    end
                }
                Format::Utmp { failed } => {
                    let end = bytes.len() / UTMP_SIZE * UTMP_SIZE;
                    out.extend(
                        bytes[..end]
                            .chunks_exact(UTMP_SIZE)
                            .filter_map(|r| parse_utmp(r, failed)),
                    );
                    end
                }
            };
            self.offsets
                .files
                .insert(key, (meta.ino(), offset + used as u64));
        }
        if let Some(journal) = &mut self.journal {
            journal.read_new(&mut self.offsets.journal_cursor, &mut out)?;
        }
        self.save()?;
        Ok(out)
    }
}

/// The running logon sensor.
pub struct LogonSensor {
    worker: Worker,
}

impl LogonSensor {
    /// Follows the sources every `interval`; rows go to `out`.
    pub fn start(
        mut follower: LogonFollower,
        ctx: RowContext,
        interval: Duration,
        out: mpsc::Sender<TableRow>,
    ) -> Result<LogonSensor> {
        let worker = Worker::spawn("rampart-logons", move |stop: &AtomicBool| {
            while !stop.load(Ordering::Relaxed) {
                match follower.read_new() {
                    Ok(logons) => {
                        for l in &logons {
                            let r = (rampart_core::schema::DEVICE_LOGON_EVENTS.name, row(&ctx, l));
                            if out.blocking_send(r).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => tracing::warn!("reading logons: {e}"),
                }
                pause(stop, interval);
            }
        })?;
        Ok(LogonSensor { worker })
    }

    pub fn stop(self) {
        self.worker.stop();
    }
}
