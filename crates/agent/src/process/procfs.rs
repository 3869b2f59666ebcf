//! What /proc says about a process: image path, command line, parent, effective user and start
//! time. Every read may fail because the process is gone; each field is then `None`.

use std::fs::File;
use std::path::Path;
use time::OffsetDateTime;

/// A process as read from /proc at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub pid: u32,
    pub ppid: Option<u32>,
    /// Full path of the image, without the kernel's ` (deleted)` mark.
    pub exe: Option<String>,
    /// The image file itself, opened through /proc/<pid>/exe while the process was alive, so
    /// that it can be hashed later even if the process exits or the path is replaced.
    pub exe_file: Option<File>,
    pub cmdline: Option<String>,
    /// The kernel's short name (`comm`), used when the image path cannot be read.
    pub comm: Option<String>,
    pub euid: Option<u32>,
    /// Start time in clock ticks since boot (field 22 of /proc/<pid>/stat).
    pub start_ticks: Option<u64>,
}

impl Snapshot {
    /// Whether anything beyond the pid was read.
    pub fn is_empty(&self) -> bool {
        self.exe.is_none() && self.cmdline.is_none() && self.start_ticks.is_none()
    }

    /// The image's file name (`bash` for `/usr/bin/bash`), else the kernel's short name.
    pub fn file_name(&self) -> Option<String> {
        self.exe
            .as_deref()
            .and_then(|p| p.rsplit('/').next())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .or_else(|| self.comm.clone())
    }
}

fn proc_path(pid: u32, item: &str) -> String {
    format!("/proc/{pid}/{item}")
}

/// Reads everything at once, the image file first (it matters most for hashes).
pub fn snapshot(pid: u32) -> Snapshot {
    let exe_file = File::open(proc_path(pid, "exe")).ok();
    let exe = read_exe(pid);
    let stat = read_stat(pid);
    Snapshot {
        pid,
        ppid: stat.as_ref().map(|s| s.ppid),
        exe,
        exe_file,
        cmdline: read_cmdline(pid),
        comm: stat.as_ref().map(|s| s.comm.clone()),
        euid: read_euid(pid),
        start_ticks: stat.map(|s| s.start_ticks),
    }
}

/// The image path of `pid`.
pub fn read_exe(pid: u32) -> Option<String> {
    let target = std::fs::read_link(proc_path(pid, "exe")).ok()?;
    let text = target.to_string_lossy();
    Some(text.strip_suffix(" (deleted)").unwrap_or(&text).to_owned())
}

/// The fields of /proc/<pid>/stat the agent uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    pub start_ticks: u64,
}

pub fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(proc_path(pid, "stat")).ok()?)
}

/// Parses a stat line. `comm` is in parentheses and may itself contain spaces and `)`, so
/// the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    // After ") ": state(3) ppid(4) … starttime(22); index 0 here is field 3.
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    Some(Stat {
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// The command line: arguments joined by spaces, an argument with spaces or quotes (or an
/// empty one) quoted, so that the line reads as a shell would take it.
pub fn read_cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(proc_path(pid, "cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(join_cmdline(&raw))
}

/// Longest command line reported, in bytes; longer ones are cut (at a character boundary).
/// Linux allows megabytes of arguments; rows that big would crowd out everything else.
pub const MAX_CMDLINE: usize = 32 * 1024;

/// NUL-separated arguments as one command line (see [`read_cmdline`]), at most
/// [`MAX_CMDLINE`] bytes.
pub fn join_cmdline(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_CMDLINE)];
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    let mut line = String::with_capacity(raw.len());
    for (i, arg) in raw.split(|&b| b == 0).enumerate() {
        if i > 0 {
            line.push(' ');
        }
        let arg = String::from_utf8_lossy(arg);
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '"') {
            line.push('"');
            for c in arg.chars() {
                if c == '"' || c == '\\' {
                    line.push('\\');
                }
                line.push(c);
            }
            line.push('"');
        } else {
            line.push_str(&arg);
        }
    }
    if line.len() > MAX_CMDLINE {
        let mut cut = MAX_CMDLINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

/// The effective uid (second number of the `Uid:` line of /proc/<pid>/status).
pub fn read_euid(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(proc_path(pid, "status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Pids of the processes (not threads) that exist now.
pub fn list_pids() -> std::io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(Path::new("/proc"))? {
        let Ok(entry) = entry else { continue };
        if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Clock ticks per second, the unit of the stat start time.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
}

fn clock_ns(clock: libc::clockid_t) -> Option<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec the call writes into; nothing else is touched.
    let rc = unsafe { libc::clock_gettime(clock, &raw mut ts) };
    (rc == 0).then(|| i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}

/// The wall-clock time at which the host booted, by the clock stat start times count from
/// (`CLOCK_BOOTTIME`, which keeps counting across suspend). Read each time: the wall clock
/// can be stepped.
pub fn boot_time() -> Option<OffsetDateTime> {
    let real = clock_ns(libc::CLOCK_REALTIME)?;
    let boot = clock_ns(libc::CLOCK_BOOTTIME)?;
    OffsetDateTime::from_unix_timestamp_nanos(real - boot).ok()
}

/// Nanoseconds since boot in stat's clock ticks, as the kernel converts a start time.
pub fn ticks_since_boot(ns: u64) -> u64 {
    let ticks = u128::from(ns) * u128::from(clock_ticks_per_second()) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// The wall-clock start time of a process from its stat start ticks.
pub fn start_time(start_ticks: u64) -> Option<OffsetDateTime> {
    let tps = clock_ticks_per_second();
    let since_boot_ns = i128::from(start_ticks) * 1_000_000_000 / i128::from(tps);
    boot_time()?.checked_add(time::Duration::nanoseconds(
        i64::try_from(since_boot_ns).ok()?,
    ))
}
