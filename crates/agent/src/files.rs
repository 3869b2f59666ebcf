//! The file sensor: fanotify on the local filesystems for files created, written, renamed and
//! deleted → DeviceFileEvents (`FileCreated`, `FileModified`, `FileRenamed`, `FileDeleted`).
//!
//! One notification group (`FAN_REPORT_DFID_NAME`: every event names the directory, as a file
//! handle, and the entry) marks each filesystem whole. A directory handle is turned back into a
//! path with `open_by_handle_at` on a descriptor of the filesystem it came from (matched by
//! fsid), then `/proc/self/fd`. A file that is created and then written is reported once, as
//! created, when it is closed — so its hashes are those of its content; writes to the same file
//! within [`MODIFY_WINDOW`] are reported once. Executables and scripts (an exec bit, an ELF or
//! `#!` start) are hashed, through the shared cache and its size cap; other files are not.
//! The agent's own writes (its queue, its state) are not reported. The process behind an event
//! fills the `InitiatingProcess*` block when it is still there to be read.

use crate::batcher::TableRow;
use crate::error::{Error, Result, io_err};
use crate::netlink::check;
use crate::process::hashes::HashCache;
use crate::process::rows::{self, RowContext};
use crate::process::{procfs, users};
use crate::worker::Worker;
use rampart_proto::telemetry::Row;
use serde_json::json;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Writes to one file within this window are reported once.
pub const MODIFY_WINDOW: Duration = Duration::from_secs(5);
/// A created file not closed within this time is reported (without hashes) anyway.
const CREATE_GRACE: Duration = Duration::from_secs(2);
/// Files remembered for the two rules above, at most.
const REMEMBERED: usize = 16 * 1024;

/// What the sensor watches and reports with.
pub struct FileSensorConfig {
    pub rows: RowContext,
    /// Mount points whose filesystems are watched.
    pub mounts: Vec<PathBuf>,
    /// Paths under which nothing is reported (the agent's state directory).
    pub ignore: Vec<PathBuf>,
}

/// A running file sensor.
pub struct FileSensor {
    worker: Worker,
}

/// One filesystem the group marks: its fsid and a descriptor to resolve handles against.
struct Filesystem {
    fsid: [i32; 2],
    root: OwnedFd,
}

impl FileSensor {
    /// Marks the filesystems and starts reporting; fails when none could be marked.
    pub fn start(
        config: FileSensorConfig,
        cache: Arc<HashCache>,
        out: mpsc::Sender<TableRow>,
    ) -> Result<FileSensor> {
        // SAFETY: plain fanotify_init(2) with constant flags; the result is checked and owned
        // by `OwnedFd` at once, which closes it exactly once.
        let raw = check(unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_NOTIF
                    | libc::FAN_REPORT_DFID_NAME
                    | libc::FAN_CLOEXEC
                    | libc::FAN_NONBLOCK,
                (libc::O_RDONLY | libc::O_CLOEXEC) as libc::c_uint,
            )
        })
        .map_err(io_err(
            "fanotify_init for file events (needs CAP_SYS_ADMIN)",
        ))?;
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut filesystems = Vec::new();
        for m in &config.mounts {
            match mark(&fd, m) {
                Ok(fs) => {
                    if !filesystems.iter().any(|f: &Filesystem| f.fsid == fs.fsid) {
                        filesystems.push(fs);
                    }
                }
                Err(e) => tracing::warn!("not watching file events on {}: {e}", m.display()),
            }
        }
        if filesystems.is_empty() {
            return Err(Error::Config(
                "no filesystem could be watched for file events".into(),
            ));
        }
        let worker = Worker::spawn("rampart-files", move |stop| {
            Watcher {
                fd,
                filesystems,
                config,
                cache,
                out,
                users: users::Users::new("/etc/passwd"),
                created: HashMap::new(),
                modified: HashMap::new(),
            }
            .run(stop)
        })?;
        Ok(FileSensor { worker })
    }

    pub fn stop(self) {
        self.worker.stop();
    }
}

/// Marks the filesystem of mount point `m` for the events the sensor reports.
fn mark(fd: &OwnedFd, m: &Path) -> std::io::Result<Filesystem> {
    let path = CString::new(m.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is a NUL-terminated string alive for the call; `fd` is a live fanotify
    // descriptor.
    check(unsafe {
        libc::fanotify_mark(
            fd.as_raw_fd(),
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            libc::FAN_CREATE | libc::FAN_DELETE | libc::FAN_RENAME | libc::FAN_CLOSE_WRITE,
            libc::AT_FDCWD,
            path.as_ptr(),
        )
    })?;
    let root = File::open(m)?;
    // SAFETY: `st` is written by fstatfs before it is read; the descriptor is live.
    let st = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        check(libc::fstatfs(root.as_raw_fd(), &raw mut st))?;
        st
    };
    Ok(Filesystem {
        fsid: fsid_of(&st.f_fsid),
        root: root.into(),
    })
}

/// The two integers of an fsid (libc keeps `fsid_t`'s fields private).
fn fsid_of(f: &libc::fsid_t) -> [i32; 2] {
    // SAFETY: fsid_t is `struct { int __val[2]; }`: two plain integers, no padding, any bit
    // pattern valid; read_unaligned copies it into the same layout.
    unsafe { std::ptr::read_unaligned((f as *const libc::fsid_t).cast::<[i32; 2]>()) }
}

/// An event as far as the sensor reads it.
#[derive(Debug)]
struct Event {
    mask: u64,
    pid: i32,
    /// The entry's path, or the new path of a rename.
    path: Option<PathBuf>,
    /// The old path of a rename.
    from: Option<PathBuf>,
}

struct Watcher {
    fd: OwnedFd,
    filesystems: Vec<Filesystem>,
    config: FileSensorConfig,
    cache: Arc<HashCache>,
    out: mpsc::Sender<TableRow>,
    users: users::Users,
    /// Files created and not yet closed: when, and by whom.
    created: HashMap<PathBuf, (Instant, i32)>,
    /// When each file was last reported as written.
    modified: HashMap<PathBuf, Instant>,
}

const METADATA_LEN: usize = std::mem::size_of::<libc::fanotify_event_metadata>();

impl Watcher {
    fn run(mut self, stop: &AtomicBool) {
        let own_pid = std::process::id() as i32;
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            self.flush_created(false);
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is one live pollfd and its count is 1.
            let ready = unsafe { libc::poll(&raw mut pfd, 1, 200) };
            if ready <= 0 {
                continue;
            }
            // SAFETY: the pointer and length describe `buf`, which outlives the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                continue;
            }
            let n = n as usize;
            let mut at = 0;
            while at + METADATA_LEN <= n {
                // SAFETY: at least METADATA_LEN bytes of `buf` from `at` hold the kernel's
                // fanotify_event_metadata; read_unaligned copies it without alignment needs.
                let meta: libc::fanotify_event_metadata =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let len = meta.event_len as usize;
                if meta.vers != libc::FANOTIFY_METADATA_VERSION
                    || len < METADATA_LEN
                    || at + len > n
                {
                    tracing::error!("fanotify: unexpected event format; file sensor stopping");
                    return;
                }
                if meta.mask & libc::FAN_Q_OVERFLOW != 0 {
                    tracing::warn!("file events were lost: the kernel's queue overflowed");
                } else if meta.pid != own_pid {
                    let event = self.read_event(&meta, &buf[at + METADATA_LEN..at + len]);
                    if !self.handle(event) {
                        return;
                    }
                }
                at += len;
            }
        }
        self.flush_created(true);
    }

    /// Reads the info records after an event's metadata.
    fn read_event(&self, meta: &libc::fanotify_event_metadata, mut info: &[u8]) -> Event {
        let mut event = Event {
            mask: meta.mask,
            pid: meta.pid,
            path: None,
            from: None,
        };
        const HEADER: usize = std::mem::size_of::<libc::fanotify_event_info_header>();
        const FID: usize = std::mem::size_of::<libc::fanotify_event_info_fid>();
        while info.len() >= HEADER {
            // SAFETY: at least HEADER bytes remain; read_unaligned copies the plain struct.
            let hdr: libc::fanotify_event_info_header =
                unsafe { std::ptr::read_unaligned(info.as_ptr().cast()) };
            let len = usize::from(hdr.len);
            if len < FID || len > info.len() {
                break;
            }
            let record = &info[..len];
            info = &info[len..];
            let path = match hdr.info_type {
                libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME => self.resolve(record),
                _ => continue,
            };
            match hdr.info_type {
                libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME => event.from = path,
                _ => event.path = path,
            }
        }
        event
    }

    /// The path a DFID_NAME record names: its directory's handle resolved, then the name.
    fn resolve(&self, record: &[u8]) -> Option<PathBuf> {
        const FID: usize = std::mem::size_of::<libc::fanotify_event_info_fid>();
        const HANDLE: usize = std::mem::size_of::<libc::file_handle>();
        // The fsid follows the 4-byte header.
        let fsid: [i32; 2] = [
            i32::from_ne_bytes(record.get(4..8)?.try_into().ok()?),
            i32::from_ne_bytes(record.get(8..12)?.try_into().ok()?),
        ];
        let handle = record.get(FID..)?;
        let bytes = u32::from_ne_bytes(handle.get(0..4)?.try_into().ok()?) as usize;
        let name_at = HANDLE + bytes;
        let name_bytes = handle.get(name_at..)?;
        let name_len = name_bytes.iter().position(|&b| b == 0)?;
        let name = std::ffi::OsStr::from_bytes(&name_bytes[..name_len]);
        let fs = self.filesystems.iter().find(|f| f.fsid == fsid)?;
        // The handle is copied into an aligned buffer: open_by_handle_at reads a struct.
        let mut aligned = vec![0u64; name_at.div_ceil(8)];
        // SAFETY: `aligned` holds at least `name_at` bytes; the source has them (checked by
        // `get` above); the regions do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                handle.as_ptr(),
                aligned.as_mut_ptr().cast::<u8>(),
                name_at,
            );
        }
        // SAFETY: `aligned` starts with a file_handle (handle_bytes, handle_type, then
        // handle_bytes bytes), as the kernel wrote it; the root descriptor is live. The
        // result is checked and owned at once.
        let dir = unsafe {
            let rc = libc::open_by_handle_at(
                fs.root.as_raw_fd(),
                aligned.as_mut_ptr().cast::<libc::file_handle>(),
                libc::O_PATH | libc::O_CLOEXEC,
            );
            OwnedFd::from_raw_fd(check(rc).ok()?)
        };
        let dir_path = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
        if name.is_empty() || name == "." {
            return Some(dir_path);
        }
        Some(dir_path.join(name))
    }

    fn ignored(&self, p: &Path) -> bool {
        self.config.ignore.iter().any(|i| p.starts_with(i))
    }

    /// Acts on one event; false when the row channel is closed (the agent is stopping).
    fn handle(&mut self, e: Event) -> bool {
        if e.mask & libc::FAN_ONDIR != 0 {
            return true;
        }
        let Some(path) = e.path else { return true };
        if self.ignored(&path) {
            return true;
        }
        let now = Instant::now();
        if e.mask & libc::FAN_CREATE != 0 {
            self.remember_created(path.clone(), e.pid, now);
        }
        if e.mask & libc::FAN_CLOSE_WRITE != 0 {
            if let Some((_, creator)) = self.created.remove(&path) {
                return self.send("FileCreated", &path, None, creator);
            }
            if self
                .modified
                .get(&path)
                .is_some_and(|at| now.duration_since(*at) < MODIFY_WINDOW)
            {
                return true;
            }
            if self.modified.len() >= REMEMBERED {
                self.modified
                    .retain(|_, at| now.duration_since(*at) < MODIFY_WINDOW);
            }
            self.modified.insert(path.clone(), now);
            return self.send("FileModified", &path, None, e.pid);
        }
        if e.mask & libc::FAN_RENAME != 0 {
            // A file created and renamed before it was closed is reported created under its
            // new name when it is closed.
            if let Some(from) = &e.from
                && let Some((at, creator)) = self.created.remove(from)
            {
                self.created.insert(path, (at, creator));
                return true;
            }
            return self.send("FileRenamed", &path, e.from.as_deref(), e.pid);
        }
        if e.mask & libc::FAN_DELETE != 0 {
            let never_reported = self.created.remove(&path).is_some();
            self.modified.remove(&path);
            if never_reported {
                // Created and deleted before it was closed: both are reported.
                if !self.send("FileCreated", &path, None, e.pid) {
                    return false;
                }
            }
            return self.send("FileDeleted", &path, None, e.pid);
        }
        true
    }

    fn remember_created(&mut self, path: PathBuf, pid: i32, now: Instant) {
        if self.created.len() >= REMEMBERED {
            self.flush_created(true);
        }
        self.created.insert(path, (now, pid));
    }

    /// Reports the created files not closed within the grace time (all of them when `all`).
    fn flush_created(&mut self, all: bool) {
        let now = Instant::now();
        let due: Vec<PathBuf> = self
            .created
            .iter()
            .filter(|(_, (at, _))| all || now.duration_since(*at) >= CREATE_GRACE)
            .map(|(p, _)| p.clone())
            .collect();
        for p in due {
            if let Some((_, pid)) = self.created.remove(&p) {
                self.send("FileCreated", &p, None, pid);
            }
        }
    }

    /// Sends one row; false when the channel is closed.
    fn send(&mut self, action: &str, path: &Path, from: Option<&Path>, pid: i32) -> bool {
        let row = self.row(action, path, from, pid);
        self.out
            .blocking_send((rampart_core::schema::DEVICE_FILE_EVENTS.name, row))
            .is_ok()
    }

    fn row(&mut self, action: &str, path: &Path, from: Option<&Path>, pid: i32) -> Row {
        let mut r = self.config.rows.event(OffsetDateTime::now_utc(), action);
        r.insert("FolderPath".into(), json!(path.to_string_lossy()));
        if let Some(name) = path.file_name() {
            r.insert("FileName".into(), json!(name.to_string_lossy()));
        }
        if let Some(f) = from {
            if let Some(name) = f.file_name() {
                r.insert("PreviousFileName".into(), json!(name.to_string_lossy()));
            }
            if let Some(dir) = f.parent() {
                r.insert("PreviousFolderPath".into(), json!(dir.to_string_lossy()));
            }
        }
        if action != "FileDeleted"
            && let Ok(mut file) = File::open(path)
            && let Ok(meta) = file.metadata()
            && meta.is_file()
        {
            r.insert("FileSize".into(), json!(meta.len()));
            if is_program(&mut file, &meta)
                && let Ok(Some(h)) = self.cache.hash_file(&file)
            {
                r.insert("SHA1".into(), json!(h.sha1));
                r.insert("SHA256".into(), json!(h.sha256));
                r.insert("MD5".into(), json!(h.md5));
            }
        }
        if let Ok(pid) = u32::try_from(pid) {
            let snap = procfs::snapshot(pid);
            if !snap.is_empty() {
                let info = crate::process::info_of(&snap, &self.cache, &mut self.users);
                rows::initiating_process(&mut r, &self.config.rows, &info);
            } else {
                r.insert("InitiatingProcessId".into(), json!(pid));
            }
        }
        r
    }
}

/// An executable or a script: an exec bit, or an ELF or `#!` start.
fn is_program(file: &mut File, meta: &std::fs::Metadata) -> bool {
    if meta.permissions().mode() & 0o111 != 0 {
        return true;
    }
    let mut start = [0u8; 4];
    matches!(file.read(&mut start), Ok(n) if n >= 2)
        && (start.starts_with(b"#!") || start == *b"\x7fELF")
}
