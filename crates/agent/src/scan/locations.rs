//! Which files a scan reads.
//!
//! A *Quick* scan reads the images of running processes, the places malware is dropped into
//! (temporary directories, `/dev/shm`, users' download directories) and the places it makes
//! itself start from (cron, systemd units, init scripts, shell profiles, `ld.so.preload`,
//! authorized keys). A *Full* scan reads every local filesystem. Walks never follow symbolic
//! links and never leave the filesystem they started on, so a Full scan reads each local
//! filesystem once and no network or pseudo filesystem at all.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The directories a Quick scan reads whole, before the users' own.
const DROP_DIRS: &[&str] = &["/tmp", "/var/tmp", "/dev/shm"];

/// Persistence locations: files and directories of the whole system.
const SYSTEM_PERSISTENCE: &[&str] = &[
    "/etc/crontab",
    "/etc/cron.d",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/var/spool/cron",
    "/etc/systemd/system",
    "/run/systemd/system",
    "/etc/init.d",
    "/etc/rc.local",
    "/etc/profile",
    "/etc/profile.d",
    "/etc/bash.bashrc",
    "/etc/ld.so.preload",
    "/etc/xdg/autostart",
];

/// Persistence locations inside each home directory.
const USER_PERSISTENCE: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".config/autostart",
    ".config/systemd/user",
    ".ssh/authorized_keys",
    ".ssh/rc",
];

/// The places a Quick scan reads besides process images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuickLocations {
    pub paths: Vec<PathBuf>,
}

impl QuickLocations {
    /// The default list for this host: drop directories, downloads and persistence.
    pub fn of_host() -> QuickLocations {
        let mut paths: Vec<PathBuf> = DROP_DIRS.iter().map(PathBuf::from).collect();
        paths.extend(home_dirs().iter().map(|h| h.join("Downloads")));
        paths.extend(persistence_paths());
        QuickLocations { paths }
    }
}

/// The persistence locations of this host: the system's, then each home directory's.
pub fn persistence_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = SYSTEM_PERSISTENCE.iter().map(PathBuf::from).collect();
    for home in home_dirs() {
        paths.extend(USER_PERSISTENCE.iter().map(|p| home.join(p)));
    }
    paths
}

/// Home directories: `/root` and every directory under `/home`.
fn home_dirs() -> Vec<PathBuf> {
    let mut homes = vec![PathBuf::from("/root")];
    if let Ok(entries) = fs::read_dir("/home") {
        homes.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    homes
}

/// What a walk met besides the files it hands out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Directories or files that could not be read (gone, or not permitted).
    pub unreadable: u64,
}

/// Calls `visit` with every regular file under `roots` (a root may be a file itself), each
/// once, without following symbolic links or crossing into another filesystem. `visit`
/// returns `false` to stop the walk.
pub fn walk(roots: &[PathBuf], mut visit: impl FnMut(&Path, &fs::Metadata) -> bool) -> WalkStats {
    let mut stats = WalkStats::default();
    // (device, inode) of every directory entered, so that bind mounts and roots nested in
    // other roots are read once.
    let mut seen_dirs: HashSet<(u64, u64)> = HashSet::new();
    let mut seen_files: HashSet<(u64, u64)> = HashSet::new();
    for root in roots {
        let meta = match fs::symlink_metadata(root) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => {
                stats.unreadable += 1;
                continue;
            }
        };
        if meta.is_file() {
            if seen_files.insert((meta.dev(), meta.ino())) && !visit(root, &meta) {
                return stats;
            }
            continue;
        }
        if !meta.is_dir() {
            continue;
        }
        let device = meta.dev();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(dmeta) = fs::symlink_metadata(&dir) else {
                stats.unreadable += 1;
                continue;
            };
            if dmeta.dev() != device || !seen_dirs.insert((dmeta.dev(), dmeta.ino())) {
                continue;
            }
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(_) => {
                    stats.unreadable += 1;
                    continue;
                }
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(m) = fs::symlink_metadata(&path) else {
                    stats.unreadable += 1;
                    continue;
                };
                if m.is_dir() {
                    stack.push(path);
                } else if m.is_file() && seen_files.insert((m.dev(), m.ino())) && !visit(&path, &m)
                {
                    return stats;
                }
            }
        }
    }
    stats
}

/// The running processes' images: (pid, the image's path as the kernel names it).
///
/// A deleted image keeps its `" (deleted)"` suffix: the file is still readable through
/// `/proc/<pid>/exe`, and is what [`open_image`] opens.
pub fn process_images() -> Vec<(u32, PathBuf)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter_map(|pid| Some((pid, fs::read_link(format!("/proc/{pid}/exe")).ok()?)))
        .collect()
}

/// Opens a process's image, even one deleted from disk since it started.
pub fn open_image(pid: u32) -> std::io::Result<fs::File> {
    fs::File::open(format!("/proc/{pid}/exe"))
}
