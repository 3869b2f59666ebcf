//! A process start observed from an eBPF exec record ([`super::ebpf`]): the record already
//! holds the pid, parent, user, start time and arguments; what /proc is still needed for is
//! the image file (opened to be hashed later) and its full path.
//!
//! The record names the image as exec was given it (possibly a symlink or a relative path)
//! and by device and inode. The file opened for it — through `/proc/<pid>/exe` while the
//! process runs, else by that name — is used only if it is that inode: the process may have
//! exec'd again, or exited and its pid been reused, or the path been replaced, since.

use super::ebpf::ExecRecord;
use super::procfs::{self, Snapshot};
use super::recent::Recent;
use super::{Observed, rows::GrandParent};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How long a resolved image path is reused for the same device and inode.
const PATH_FRESH_FOR: Duration = Duration::from_secs(10);
/// Paths remembered at most; beyond this the memory starts over.
const MAX_PATHS: usize = 4096;

/// Full paths of recently run images by (device, inode): a program started hundreds of times
/// a second has its path resolved once.
#[derive(Default)]
pub struct Images {
    paths: HashMap<(u64, u64), (Arc<str>, Instant)>,
}

impl Images {
    fn get(&self, key: (u64, u64)) -> Option<Arc<str>> {
        self.paths
            .get(&key)
            .filter(|(_, at)| at.elapsed() < PATH_FRESH_FOR)
            .map(|(p, _)| Arc::clone(p))
    }

    fn put(&mut self, key: (u64, u64), path: &str) {
        if self.paths.len() >= MAX_PATHS {
            self.paths.clear();
        }
        self.paths.insert(key, (Arc::from(path), Instant::now()));
    }
}

/// `file` if it is the image `key` (device, inode) names.
fn if_image(file: File, key: (u64, u64)) -> Option<File> {
    let meta = file.metadata().ok()?;
    ((meta.dev(), meta.ino()) == key).then_some(file)
}

/// The image file and its full path, and whether the process still runs that image: through
/// /proc while it does, else by the name exec was given.
fn image(r: &ExecRecord, images: &mut Images) -> (Option<File>, Option<String>, bool) {
    let key = (r.st_dev(), r.ino);
    if let Some(file) = File::open(format!("/proc/{}/exe", r.pid))
        .ok()
        .and_then(|f| if_image(f, key))
    {
        let path = match images.get(key) {
            Some(p) => Some(p.to_string()),
            None => procfs::read_exe(r.pid).inspect(|p| images.put(key, p)),
        };
        return (Some(file), path, true);
    }
    let known = images.get(key);
    let given = std::ffi::OsStr::from_bytes(&r.path);
    let path = match known {
        Some(p) => Some(p.to_string()),
        None if r.path.starts_with(b"/") => std::fs::canonicalize(given)
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned))
            .inspect(|p| images.put(key, p)),
        None => None,
    };
    let file = path
        .as_deref()
        .and_then(|p| File::open(p).ok())
        .and_then(|f| if_image(f, key));
    // A path that no longer leads to the image is still the best name there is for it.
    let path = path.or_else(|| {
        r.path
            .starts_with(b"/")
            .then(|| String::from_utf8_lossy(&r.path).into_owned())
    });
    (file, path, false)
}

/// The record as a process snapshot, the image opened as [`image`] says.
pub fn snapshot(r: &ExecRecord, images: &mut Images) -> Snapshot {
    let (exe_file, exe, running) = image(r, images);
    // Arguments longer than the kernel side copies are read whole from /proc while the
    // process runs the image; once it has exec'd again or is gone, /proc would tell of
    // another program, or of another process.
    let cmdline = if r.args_cut() && running {
        procfs::read_cmdline(r.pid)
    } else {
        None
    }
    .or_else(|| (!r.args.is_empty()).then(|| procfs::join_cmdline(&r.args)));
    Snapshot {
        pid: r.pid,
        ppid: (r.ppid > 0).then_some(r.ppid),
        exe,
        exe_file,
        cmdline,
        comm: Some(r.comm.clone()),
        euid: Some(r.euid),
        start_ticks: Some(procfs::ticks_since_boot(r.start_boottime)),
    }
}

/// The watcher's observation of one exec record: the process from the record, its parent and
/// grandparent from /proc (or from `recent`).
pub(super) fn observe(
    r: &ExecRecord,
    boot: Option<OffsetDateTime>,
    recent: &mut Recent,
    images: &mut Images,
) -> Observed {
    recent.forget(r.pid);
    let child = Arc::new(snapshot(r, images));
    recent.remember(Arc::clone(&child));
    let parent = (r.ppid > 0).then(|| {
        recent.snapshot_started(r.ppid, procfs::ticks_since_boot(r.parent_start_boottime))
    });
    let gpid = parent.as_ref().and_then(|p| p.ppid).filter(|&p| p > 0);
    let grandparent = match gpid {
        Some(pid) => recent.grandparent(pid),
        None => GrandParent::default(),
    };
    let time = boot
        .and_then(|b| {
            b.checked_add(time::Duration::nanoseconds(
                i64::try_from(r.exec_boottime).ok()?,
            ))
        })
        .unwrap_or_else(OffsetDateTime::now_utc);
    Observed {
        time,
        child,
        fork_parent: None,
        fork_time: None,
        parent,
        grandparent,
    }
}
