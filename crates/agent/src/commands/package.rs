//! `CollectInvestigationPackage`: a gzip-compressed tar of what an analyst looks at first on a
//! Linux host, uploaded to the server (`PUT /agent/v1/commands/{id}/package`), which hands it
//! out through `GetPackageUri` as a short-lived signed link.
//!
//! What goes in, each part as found (a part that cannot be read is named in `manifest.json`
//! with the reason, and the rest is still collected):
//!
//! | path | what |
//! |---|---|
//! | `manifest.json` | device, time, agent version, the parts and what failed |
//! | `processes.tsv` | every process: pid, parent, uid, start (clock ticks), image, command line |
//! | `connections.tsv` | TCP and UDP sockets from sock_diag: protocol, state, addresses, uid, inode, owning pid |
//! | `network/` | adapters (JSON), routes, `hosts`, `resolv.conf`, `nsswitch.conf`, the nftables ruleset |
//! | `users/` | `passwd`, `group`, the login records (`utmp`, `wtmp`, `btmp`, `lastlog`) as they are |
//! | `persistence/…` | the persistence locations of [`crate::scan::locations`], files as they are |
//! | `packages.tsv` | installed packages (dpkg, else rpm) |
//! | `kernel/` | `modules`, `version`, `cmdline` |
//! | `logs/` | the last 4 MiB of syslog / messages / auth.log / secure / kern.log, and the journal's last 10,000 lines |
//!
//! Files are capped at 4 MiB each (the end kept for logs, the start for the rest) and the
//! whole package at [`MAX_PACKAGE_BYTES`] before compression.

use crate::backoff::Backoff;
use crate::client::{Reply, ServerClient};
use crate::error::{Error, Result, io_err};
use crate::fsutil::ensure_dir;
use crate::network::{diag, socket_owners};
use crate::process::rows::RowContext;
use crate::scan::locations;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

/// Largest part copied into a package.
const MAX_PART_BYTES: u64 = 4 << 20;
/// Largest package, uncompressed: past it, parts are left out (and named in the manifest).
pub const MAX_PACKAGE_BYTES: u64 = 256 << 20;
/// How long an outside program (dpkg-query, journalctl, nft) may take.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Logs kept, newest part.
const LOGS: &[&str] = &[
    "/var/log/syslog",
    "/var/log/messages",
    "/var/log/auth.log",
    "/var/log/secure",
    "/var/log/kern.log",
];

/// A package being written.
struct Package {
    tar: tar::Builder<GzEncoder<File>>,
    written: u64,
    parts: Vec<String>,
    problems: Vec<String>,
}

impl Package {
    /// Adds `bytes` as `name`, unless the package is full.
    fn add(&mut self, name: &str, bytes: &[u8]) {
        if self.written + bytes.len() as u64 > MAX_PACKAGE_BYTES {
            self.problems
                .push(format!("{name}: left out, the package is full"));
            return;
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(OffsetDateTime::now_utc().unix_timestamp().max(0) as u64);
        header.set_cksum();
        match self.tar.append_data(&mut header, name, bytes) {
            Ok(()) => {
                self.written += bytes.len() as u64;
                self.parts.push(name.to_owned());
            }
            Err(e) => self.problems.push(format!("{name}: {e}")),
        }
    }

    /// Adds the file at `path` as `name` (its start, or its end when `tail`), if it exists.
    fn add_file(&mut self, name: &str, path: &Path, tail: bool) {
        match read_capped(path, tail) {
            Ok(Some(bytes)) => self.add(name, &bytes),
            Ok(None) => {}
            Err(e) => self.problems.push(format!("{}: {e}", path.display())),
        }
    }

    /// Adds what `program args…` prints as `name`; a program that is not installed is skipped.
    fn add_output(&mut self, name: &str, program: &str, args: &[&str]) {
        match run_program(program, args) {
            Ok(Some(out)) => self.add(name, &out),
            Ok(None) => {}
            Err(e) => self.problems.push(format!("{name} ({program}): {e}")),
        }
    }
}

/// Reads at most [`MAX_PART_BYTES`] of `path`: its start, or its end when `tail`. `None` when
/// there is no such file.
fn read_capped(path: &Path, tail: bool) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if tail && len > MAX_PART_BYTES {
        f.seek(SeekFrom::Start(len - MAX_PART_BYTES))?;
    }
    let mut out = Vec::new();
    f.take(MAX_PART_BYTES).read_to_end(&mut out)?;
    Ok(Some(out))
}

/// Runs a program and returns what it printed (capped, and what it printed by the deadline when
/// it hangs); `None` when it is not installed.
fn run_program(program: &str, args: &[&str]) -> std::io::Result<Option<Vec<u8>>> {
    Ok(crate::program::run(program, args, PROGRAM_TIMEOUT, MAX_PART_BYTES)?.map(|o| o.stdout))
}

/// Where the package of `command_id` is written before it is uploaded.
pub fn package_path(state_dir: &Path, command_id: &str) -> PathBuf {
    let safe: String = command_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    state_dir.join("packages").join(format!("{safe}.tar.gz"))
}

/// Collects the package of `command_id` into [`package_path`]; returns its path and the number
/// of parts in it. Blocking: run it off the async threads.
pub fn collect(state_dir: &Path, ctx: &RowContext, command_id: &str) -> Result<(PathBuf, usize)> {
    let path = package_path(state_dir, command_id);
    if let Some(dir) = path.parent() {
        ensure_dir(dir, 0o700)?;
    }
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(format!("creating {}", path.display())))?;
    let mut p = Package {
        tar: tar::Builder::new(GzEncoder::new(file, Compression::default())),
        written: 0,
        parts: Vec::new(),
        problems: Vec::new(),
    };
    let started = OffsetDateTime::now_utc();

    p.add("processes.tsv", processes().as_bytes());
    match connections() {
        Ok(text) => p.add("connections.tsv", text.as_bytes()),
        Err(e) => p.problems.push(format!("connections.tsv: {e}")),
    }
    match serde_json::to_vec_pretty(&crate::netinfo::adapters()) {
        Ok(b) => p.add("network/adapters.json", &b),
        Err(e) => p.problems.push(format!("network/adapters.json: {e}")),
    }
    for (name, file) in [
        ("network/route", "/proc/net/route"),
        ("network/ipv6_route", "/proc/net/ipv6_route"),
        ("network/hosts", "/etc/hosts"),
        ("network/resolv.conf", "/etc/resolv.conf"),
        ("network/nsswitch.conf", "/etc/nsswitch.conf"),
        ("users/passwd", "/etc/passwd"),
        ("users/group", "/etc/group"),
        ("users/utmp", "/var/run/utmp"),
        ("users/wtmp", "/var/log/wtmp"),
        ("users/btmp", "/var/log/btmp"),
        ("users/lastlog", "/var/log/lastlog"),
        ("kernel/modules", "/proc/modules"),
        ("kernel/version", "/proc/version"),
        ("kernel/cmdline", "/proc/cmdline"),
    ] {
        let tail = name == "users/wtmp" || name == "users/btmp";
        p.add_file(name, Path::new(file), tail);
    }
    p.add_output("network/nftables.json", "nft", &["-j", "list", "ruleset"]);
    for file in persistence_files() {
        let name = format!("persistence{}", file.display());
        p.add_file(&name, &file, false);
    }
    if Path::new("/var/lib/dpkg/status").exists() {
        p.add_output(
            "packages.tsv",
            "dpkg-query",
            &[
                "-W",
                "-f",
                "${Package}\t${Version}\t${Architecture}\t${Status}\n",
            ],
        );
    } else {
        p.add_output(
            "packages.tsv",
            "rpm",
            &["-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n"],
        );
    }
    for log in LOGS {
        let name = format!(
            "logs/{}",
            Path::new(log)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
        );
        p.add_file(&name, Path::new(log), true);
    }
    p.add_output(
        "logs/journal.txt",
        "journalctl",
        &["--no-pager", "-o", "short-iso", "-n", "10000"],
    );

    let parts = p.parts.len() + 1;
    let manifest = json!({
        "deviceId": ctx.device_id,
        "deviceName": ctx.device_name,
        "commandId": command_id,
        "agentVersion": crate::VERSION,
        "collectionStarted": rampart_core::timefmt::format(started),
        "collectionEnded": rampart_core::timefmt::format(OffsetDateTime::now_utc()),
        "parts": p.parts,
        "problems": p.problems,
    });
    let manifest = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    p.add("manifest.json", &manifest);
    let finish = || -> std::io::Result<()> {
        let gz = p.tar.into_inner()?;
        let mut file = gz.finish()?;
        file.flush()?;
        file.sync_all()
    };
    finish().map_err(io_err(format!("writing {}", path.display())))?;
    Ok((path, parts))
}

/// Every process, one line each.
fn processes() -> String {
    let mut out = String::from("pid\tppid\tuid\tstart_ticks\texe\tcmdline\n");
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold anything.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        let ppid = rest.get(1).copied().unwrap_or("");
        let start = rest.get(19).copied().unwrap_or("");
        let uid = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|u| u.split_whitespace().next().map(str::to_owned))
            })
            .unwrap_or_default();
        let exe = fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .trim_end_matches('\0')
                    .replace('\0', " ")
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "{pid}\t{ppid}\t{uid}\t{start}\t{}\t{}\n",
            tsv(&exe),
            tsv(&cmdline)
        ));
    }
    out
}

/// A value made safe for one TSV cell.
fn tsv(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// The TCP and UDP socket table with each socket's owning process.
fn connections() -> std::io::Result<String> {
    let sockets = diag::dump()?;
    let owners = socket_owners();
    let mut out = String::from("protocol\tstate\tlocal\tremote\tuid\tinode\tpid\n");
    for s in sockets {
        let pid = owners
            .get(&s.inode)
            .map(ToString::to_string)
            .unwrap_or_default();
        out.push_str(&format!(
            "{}\t{:?}\t{}\t{}\t{}\t{}\t{pid}\n",
            s.protocol.as_str(),
            s.state,
            s.local,
            s.remote,
            s.uid,
            s.inode
        ));
    }
    Ok(out)
}

/// The regular files of the persistence locations (the Quick scan's list), at most 2,000.
fn persistence_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    locations::walk(&locations::persistence_paths(), |path, _| {
        files.push(path.to_owned());
        files.len() < 2_000
    });
    files
}

/// Collects packages and hands them to the server.
pub struct PackageCollector {
    pub state_dir: PathBuf,
    pub context: RowContext,
    pub client: ServerClient,
    /// `Device <id>:<secret>`.
    pub authorization: String,
}

/// Upload attempts before the command fails (the server may be away for a while).
const UPLOAD_ATTEMPTS: u32 = 6;

impl PackageCollector {
    /// Collects the package of `command_id` and uploads it; the local copy is removed once
    /// the server has it.
    pub async fn collect_and_upload(&self, command_id: &str) -> Result<String> {
        let (state_dir, ctx, id) = (
            self.state_dir.clone(),
            self.context.clone(),
            command_id.to_owned(),
        );
        let (path, parts) = tokio::task::spawn_blocking(move || collect(&state_dir, &ctx, &id))
            .await
            .map_err(|e| Error::Action(format!("collecting the package stopped: {e}")))??;
        let bytes = fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
        let size = bytes.len();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match self
                .client
                .upload_package(&self.authorization, command_id, bytes.clone())
                .await
            {
                Reply::Done(ack) => break Ok(ack.bytes),
                Reply::Refused { status, reason } => {
                    break Err(format!(
                        "the server refused the package (HTTP {status}): {reason}"
                    ));
                }
                Reply::Retry {
                    reason,
                    retry_after,
                    ..
                } => {
                    if attempt >= UPLOAD_ATTEMPTS {
                        break Err(format!("the package could not be uploaded: {reason}"));
                    }
                    tracing::warn!(command = command_id, "package upload: {reason}; retrying");
                    tokio::time::sleep(backoff.next_delay(retry_after)).await;
                }
            }
        };
        let _ = fs::remove_file(&path);
        let stored = outcome.map_err(Error::Action)?;
        Ok(format!(
            "investigation package uploaded: {parts} parts, {size} bytes compressed ({stored} stored)"
        ))
    }
}
