//! Code-execution restriction (`RestrictCodeExecution` / `UnrestrictCodeExecution`): while it
//! is on, only executables the package manager installed (and the agent's own) may run.
//!
//! fanotify's exec-permission events (`FAN_OPEN_EXEC_PERM`) ask the agent before the kernel
//! maps any executable of a marked filesystem — by default every local one. The agent answers
//! from an allow-list built once when the restriction starts: every file dpkg (or rpm) lists,
//! with its directory resolved so that `/bin/sh` and `/usr/bin/sh` of a merged-/usr system are
//! one. A refusal makes `execve` fail with `EPERM` and is reported as a DeviceEvents row,
//! `AppControlExecutableBlocked`. Closing the fanotify descriptor (on unrestrict, or when the
//! agent dies) lets every pending and later exec through, so a crash cannot wedge the host;
//! as for isolation, `restriction.json` records the state first and a restart restores it.

use crate::batcher::TableRow;
use crate::enforcement::{HashRules, HashVerdict, hash_rules, hash_verdict};
use crate::error::{Error, Result, io_err};
use crate::fsutil::{read_json_or_default, write_json};
use crate::netlink::check;
use crate::process::hashes::HashCache;
use crate::process::rows::{self, RowContext};
use crate::process::{procfs, users};
use crate::worker::Worker;
use rampart_proto::enforcement::EnforcementSet;
use rampart_proto::telemetry::Row;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// The files allowed to run while execution is restricted.
#[derive(Default)]
pub struct Allowlist {
    files: HashSet<PathBuf>,
}

impl Allowlist {
    pub fn from_paths(paths: impl IntoIterator<Item = PathBuf>) -> Allowlist {
        Allowlist {
            files: paths.into_iter().collect(),
        }
    }

    /// Every file the package manager installed: dpkg's lists, else `rpm -qal`.
    pub fn from_package_manager() -> Result<Allowlist> {
        let dpkg = Path::new("/var/lib/dpkg/info");
        let listed: Vec<String> = if dpkg.is_dir() {
            dpkg_files(dpkg)?
        } else {
            let out = std::process::Command::new("rpm")
                .arg("-qal")
                .output()
                .map_err(io_err("listing the files of installed packages (rpm -qal)"))?;
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        };
        if listed.is_empty() {
            return Err(Error::Config(
                "no package manager lists any installed file; restricting execution would stop every program".into(),
            ));
        }
        Ok(Allowlist::from_paths(resolve_dirs(listed)))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn allows(&self, path: &Path) -> bool {
        self.files.contains(path)
    }
}

/// Why an execution was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Code execution is restricted and the file is not the package manager's.
    Restricted,
    /// The file's hash is a blocking indicator.
    Indicator { id: String, title: String },
}

/// What the exec guard decides with; replaced whole when the restriction or the indicators
/// change, so a decision always sees one consistent policy.
#[derive(Default)]
pub struct ExecPolicy {
    /// The package-manager allow-list while code execution is restricted.
    pub restricted: Option<Arc<Allowlist>>,
    /// The file-hash indicators.
    pub hashes: HashRules,
}

impl ExecPolicy {
    /// Whether there is nothing to enforce (the guard need not run).
    pub fn is_empty(&self) -> bool {
        self.restricted.is_none() && self.hashes.is_empty()
    }

    /// The verdict on executing `file` (at `path`): `None` lets it run. An `Allow` indicator
    /// wins over everything; then a `Block` indicator; then the restriction. Files are hashed
    /// only when there are hash indicators (through the cache: once per file version).
    pub fn decide(
        &self,
        path: Option<&Path>,
        file: &std::fs::File,
        cache: &HashCache,
        own_exe: Option<&Path>,
    ) -> Option<Refusal> {
        if !self.hashes.is_empty()
            && let Ok(Some(h)) = cache.hash_file(file)
        {
            match hash_verdict(&self.hashes, &h) {
                HashVerdict::Allowed => return None,
                HashVerdict::Blocked { id, title } => {
                    return Some(Refusal::Indicator {
                        id: id.to_owned(),
                        title: title.to_owned(),
                    });
                }
                HashVerdict::Unknown => {}
            }
        }
        match &self.restricted {
            Some(allow) => {
                let permitted = path.is_some_and(|p| allow.allows(p) || Some(p) == own_exe);
                (!permitted).then_some(Refusal::Restricted)
            }
            None => None,
        }
    }
}

/// The policy the guard reads, shared with whoever changes it.
pub type PolicyCell = Arc<RwLock<Arc<ExecPolicy>>>;

/// The paths of dpkg's `*.list` files.
fn dpkg_files(info: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(info).map_err(io_err(format!("reading {}", info.display())))? {
        let e = e.map_err(io_err(format!("reading {}", info.display())))?;
        let path = e.path();
        if path.extension().is_some_and(|x| x == "list") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.extend(
                text.lines()
                    .filter(|l| l.starts_with('/'))
                    .map(str::to_owned),
            );
        }
    }
    Ok(out)
}

/// The paths with their directory resolved (symlinked directories such as `/bin` → `/usr/bin`),
/// which is how the kernel names an executed file.
fn resolve_dirs(paths: Vec<String>) -> Vec<PathBuf> {
    let mut dirs: HashMap<PathBuf, Option<PathBuf>> = HashMap::new();
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let p = PathBuf::from(p);
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            continue;
        };
        let real = dirs
            .entry(dir.to_owned())
            .or_insert_with(|| std::fs::canonicalize(dir).ok());
        if let Some(real) = real {
            out.push(real.join(name));
        }
        out.push(p);
    }
    out
}

/// The local filesystems to watch: mount points of disk-backed and memory filesystems.
pub fn local_mounts() -> Vec<PathBuf> {
    const LOCAL: &[&str] = &[
        "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs", "vfat", "exfat", "ntfs",
        "ntfs3", "tmpfs", "overlay", "zfs", "squashfs",
    ];
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (point, kind) = (f.get(1)?, f.get(2)?);
            // Mount points escape spaces as \040.
            LOCAL
                .contains(kind)
                .then(|| PathBuf::from(point.replace("\\040", " ")))
        })
        .collect()
}

/// A running exec guard: the fanotify descriptor, owned by the thread that answers it.
pub struct ExecGuard {
    worker: Worker,
}

/// What the guard needs to report a refusal.
pub struct Reporter {
    pub rows: mpsc::Sender<TableRow>,
    pub context: RowContext,
    pub cache: Arc<HashCache>,
}

impl ExecGuard {
    /// Marks the filesystems of `mounts` and starts answering exec permission requests.
    pub fn start(mounts: &[PathBuf], policy: PolicyCell, reporter: Reporter) -> Result<ExecGuard> {
        // SAFETY: plain fanotify_init(2) with constant flags; the result is checked and owned
        // by `OwnedFd` at once, which closes it exactly once.
        let raw = check(unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK,
                (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as libc::c_uint,
            )
        })
        .map_err(io_err(
            "fanotify_init (needs CAP_SYS_ADMIN and fanotify permission events)",
        ))?;
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut marked = 0;
        for m in mounts {
            let path = CString::new(m.as_os_str().as_bytes())
                .map_err(|_| Error::Config(format!("{}: a path with a NUL byte", m.display())))?;
            // SAFETY: `path` is a NUL-terminated string alive for the call; the descriptor
            // is owned by `fd`.
            let rc = unsafe {
                libc::fanotify_mark(
                    fd.as_raw_fd(),
                    libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                    libc::FAN_OPEN_EXEC_PERM,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                )
            };
            match check(rc) {
                Ok(_) => marked += 1,
                Err(e) => tracing::warn!("not watching executions on {}: {e}", m.display()),
            }
        }
        if marked == 0 {
            return Err(Error::Config(
                "no filesystem could be watched for executions".into(),
            ));
        }
        let own_exe = std::fs::read_link("/proc/self/exe").ok();
        let worker = Worker::spawn("rampart-exec-guard", move |stop| {
            answer(fd, &policy, own_exe, reporter, stop)
        })?;
        Ok(ExecGuard { worker })
    }

    /// Stops answering; the descriptor closes and every exec is allowed again.
    pub fn stop(self) {
        self.worker.stop();
    }
}

const METADATA_LEN: usize = std::mem::size_of::<libc::fanotify_event_metadata>();

fn answer(
    fd: OwnedFd,
    policy: &PolicyCell,
    own_exe: Option<PathBuf>,
    reporter: Reporter,
    stop: &AtomicBool,
) {
    let own_pid = std::process::id() as i32;
    let mut users = users::Users::new("/etc/passwd");
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one live pollfd and its count is 1.
        let ready = unsafe { libc::poll(&raw mut pfd, 1, 200) };
        if ready <= 0 {
            continue;
        }
        // SAFETY: the pointer and length describe `buf`, which outlives the call.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            continue;
        }
        let mut at = 0;
        let n = n as usize;
        while at + METADATA_LEN <= n {
            // SAFETY: at least METADATA_LEN bytes of `buf` from `at` hold the kernel's
            // fanotify_event_metadata; read_unaligned copies it without alignment needs.
            let meta: libc::fanotify_event_metadata =
                unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
            let len = meta.event_len as usize;
            if meta.vers != libc::FANOTIFY_METADATA_VERSION || len < METADATA_LEN {
                tracing::error!("fanotify: unexpected event format; exec guard stopping");
                return;
            }
            at += len;
            if meta.fd < 0 {
                continue;
            }
            // SAFETY: the kernel opened this descriptor for us with the event; we own it and
            // close it once, after answering.
            let file_fd = unsafe { OwnedFd::from_raw_fd(meta.fd) };
            let path = std::fs::read_link(format!("/proc/self/fd/{}", meta.fd)).ok();
            let file = std::fs::File::from(file_fd);
            let current = Arc::clone(&policy.read().unwrap_or_else(|p| p.into_inner()));
            let refusal = if meta.pid == own_pid {
                None
            } else {
                current.decide(path.as_deref(), &file, &reporter.cache, own_exe.as_deref())
            };
            let allowed = refusal.is_none();
            // A refusal is described before it is answered: until then the process that asked
            // is still there to be read.
            let refused = refusal.map(|why| {
                blocked_row(
                    &reporter,
                    &mut users,
                    path.as_deref(),
                    &file,
                    meta.pid,
                    &why,
                )
            });
            let response = libc::fanotify_response {
                fd: meta.fd,
                response: if allowed {
                    libc::FAN_ALLOW
                } else {
                    libc::FAN_DENY
                },
            };
            // SAFETY: `response` is a live fanotify_response and its exact size is written.
            let written = unsafe {
                libc::write(
                    fd.as_raw_fd(),
                    (&raw const response).cast(),
                    std::mem::size_of::<libc::fanotify_response>(),
                )
            };
            if written < 0 {
                tracing::error!("fanotify: answering: {}", std::io::Error::last_os_error());
            }
            drop(file);
            if let Some(row) = refused
                && reporter
                    .rows
                    .blocking_send((rampart_core::schema::DEVICE_EVENTS.name, row))
                    .is_err()
            {
                return;
            }
        }
    }
}

/// The DeviceEvents row of a refused execution.
fn blocked_row(
    reporter: &Reporter,
    users: &mut users::Users,
    path: Option<&Path>,
    file: &std::fs::File,
    pid: i32,
    why: &Refusal,
) -> Row {
    let mut r = reporter
        .context
        .event(OffsetDateTime::now_utc(), "AppControlExecutableBlocked");
    if let Some(p) = path {
        r.insert("FolderPath".into(), json!(p.to_string_lossy()));
        if let Some(name) = p.file_name() {
            r.insert("FileName".into(), json!(name.to_string_lossy()));
        }
    }
    if let Ok(Some(h)) = reporter.cache.hash_file(file) {
        r.insert("SHA1".into(), json!(h.sha1));
        r.insert("SHA256".into(), json!(h.sha256));
        r.insert("MD5".into(), json!(h.md5));
        r.insert("FileSize".into(), json!(h.size));
    }
    // The process that asked to run it: at this point still its old image.
    if let Ok(pid) = u32::try_from(pid) {
        let snap = procfs::snapshot(pid);
        if !snap.is_empty() {
            let info = crate::process::info_of(&snap, &reporter.cache, users);
            rows::initiating_process(&mut r, &reporter.context, &info);
        }
    }
    let fields = match why {
        Refusal::Restricted => {
            json!({ "Reason": "RestrictCodeExecution", "Policy": "package-manager files only" })
        }
        Refusal::Indicator { id, title } => {
            json!({ "Reason": "Indicator", "IndicatorId": id, "IndicatorTitle": title })
        }
    };
    r.insert("AdditionalFields".into(), Value::String(fields.to_string()));
    r
}

/// The restriction state on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestrictionState {
    pub restricted: bool,
}

impl RestrictionState {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("restriction.json")
    }

    pub fn load(state_dir: &Path) -> Result<RestrictionState> {
        read_json_or_default(&RestrictionState::path(state_dir))
    }

    fn save(self, state_dir: &Path) -> Result<()> {
        write_json(&RestrictionState::path(state_dir), &self)
    }
}

/// What runs on this host: the code-execution restriction (driven by commands) and the
/// file-hash indicators (driven by the indicator sync), enforced by one exec guard that runs
/// while either has something to enforce.
pub struct ExecControl {
    state_dir: PathBuf,
    /// The filesystems to watch; `None`: every local one.
    mounts: Option<Vec<PathBuf>>,
    /// Weak, so that the row channel can close at shutdown: only a running guard holds it.
    rows: mpsc::WeakSender<TableRow>,
    context: RowContext,
    cache: Arc<HashCache>,
    policy: PolicyCell,
    guard: Mutex<Option<ExecGuard>>,
}

impl ExecControl {
    pub fn new(
        state_dir: &Path,
        mounts: Option<Vec<PathBuf>>,
        rows: &mpsc::Sender<TableRow>,
        context: RowContext,
        cache: Arc<HashCache>,
    ) -> ExecControl {
        ExecControl {
            state_dir: state_dir.to_owned(),
            mounts,
            rows: rows.downgrade(),
            context,
            cache,
            policy: PolicyCell::default(),
            guard: Mutex::new(None),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Option<ExecGuard>> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the policy with `change` applied to (a copy of) the current one, then starts
    /// or stops the guard to match.
    async fn update(&self, change: impl FnOnce(&mut ExecPolicy)) -> Result<()> {
        let next = {
            let mut cell = self.policy.write().unwrap_or_else(|p| p.into_inner());
            let mut next = ExecPolicy {
                restricted: cell.restricted.clone(),
                hashes: cell.hashes.clone(),
            };
            change(&mut next);
            *cell = Arc::new(next);
            Arc::clone(&cell)
        };
        if next.is_empty() {
            let running = self.guard().take();
            if let Some(g) = running {
                tokio::task::spawn_blocking(move || g.stop())
                    .await
                    .map_err(|e| Error::Config(format!("stopping the exec guard: {e}")))?;
            }
            return Ok(());
        }
        if self.guard().is_some() {
            return Ok(());
        }
        let mounts = self.mounts.clone().unwrap_or_else(local_mounts);
        let rows = self
            .rows
            .upgrade()
            .ok_or_else(|| Error::Config("the agent is stopping".into()))?;
        let reporter = Reporter {
            rows,
            context: self.context.clone(),
            cache: Arc::clone(&self.cache),
        };
        let policy = Arc::clone(&self.policy);
        let guard =
            tokio::task::spawn_blocking(move || ExecGuard::start(&mounts, policy, reporter))
                .await
                .map_err(|e| Error::Config(format!("starting the exec guard: {e}")))??;
        *self.guard() = Some(guard);
        Ok(())
    }

    /// Turns the restriction on: records it, builds the allow-list, enforces it.
    pub async fn restrict(&self) -> Result<String> {
        RestrictionState { restricted: true }.save(&self.state_dir)?;
        self.start_restriction().await
    }

    async fn start_restriction(&self) -> Result<String> {
        let allow = tokio::task::spawn_blocking(Allowlist::from_package_manager)
            .await
            .map_err(|e| Error::Config(format!("listing package files: {e}")))??;
        let n = allow.len();
        let allow = Arc::new(allow);
        self.update(|p| p.restricted = Some(allow)).await?;
        Ok(format!(
            "code execution restricted to {n} package-manager files"
        ))
    }

    /// Turns it off: records it, then stops enforcing it.
    pub async fn unrestrict(&self) -> Result<String> {
        RestrictionState { restricted: false }.save(&self.state_dir)?;
        self.update(|p| p.restricted = None).await?;
        Ok("code execution is no longer restricted".into())
    }

    /// Enforces the file-hash indicators of `set` from now on (replacing the ones before).
    pub async fn set_indicators(&self, set: &EnforcementSet) -> Result<usize> {
        let hashes = hash_rules(set);
        let n = hashes.len();
        self.update(|p| p.hashes = hashes).await?;
        Ok(n)
    }

    /// Stops the guard without changing the recorded state (the agent is stopping; the next
    /// start restores the restriction).
    pub fn halt(&self) {
        if let Some(g) = self.guard().take() {
            g.stop();
        }
    }

    /// Makes the guard match the recorded restriction (at start); returns whether it is on.
    pub async fn restore(&self) -> Result<bool> {
        let state = RestrictionState::load(&self.state_dir)?;
        if state.restricted {
            self.start_restriction().await?;
        }
        Ok(state.restricted)
    }
}
