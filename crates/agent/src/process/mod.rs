//! The process sensor: one `ProcessCreated` row of DeviceProcessEvents per program started.
//!
//! Two threads. The *watcher* learns of new processes — from the agent's eBPF program
//! ([`ebpf`]), which records each exec in the kernel, or where that cannot be loaded from the
//! kernel's proc connector ([`connector`]), or else by polling /proc ([`poll`]). With the
//! connector or polling it reads /proc for the process, its parent and grandparent at once
//! ([`procfs`]), because a process can be gone a millisecond later; with eBPF only the
//! parent's and grandparent's, the process itself having been read at exec. It also opens
//! the image file, so that it can still be hashed afterwards. The *builder* does the slow
//! part: hashes ([`hashes`], cached), user names ([`users`]), and the row ([`rows`]). It
//! remembers recent processes, so that a child whose parent has already exited still gets
//! the parent's block.

pub mod connector;
pub mod ebpf;
pub mod exec_snapshot;
pub mod hashes;
pub mod poll;
pub mod procfs;
pub mod recent;
pub mod rows;
pub mod users;

use crate::batcher::TableRow;
use crate::error::{Error, Result};
use hashes::HashCache;
use procfs::Snapshot;
use recent::Recent;
use rows::{GrandParent, ProcInfo, RowContext};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Where process starts are learnt from, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Ebpf,
    ProcConnector,
    /// Polling /proc: starts are seen up to one poll interval late, and processes that live
    /// less than that are missed.
    ProcPolling,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ebpf => "Ebpf",
            Source::ProcConnector => "ProcConnector",
            Source::ProcPolling => "ProcPolling",
        }
    }
}

#[derive(Clone, Debug)]
pub struct SensorConfig {
    pub rows: RowContext,
    /// The first source tried; where it cannot be opened, the next one (in [`Source`]'s
    /// order) is.
    pub first_source: Source,
    pub poll_interval: Duration,
    /// The passwd file user names come from.
    pub passwd: PathBuf,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            rows: RowContext::default(),
            first_source: Source::Ebpf,
            poll_interval: Duration::from_secs(1),
            passwd: PathBuf::from("/etc/passwd"),
        }
    }
}

/// A process start as the watcher saw it.
struct Observed {
    time: OffsetDateTime,
    child: Arc<Snapshot>,
    /// The parent pid the fork event gave, for a child gone before /proc was read.
    fork_parent: Option<u32>,
    fork_time: Option<OffsetDateTime>,
    parent: Option<Arc<Snapshot>>,
    grandparent: GrandParent,
}

type Observation = Box<Observed>;

/// A running sensor; stopped (threads joined) by [`ProcessSensor::stop`] or on drop.
pub struct ProcessSensor {
    source: Source,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl ProcessSensor {
    /// Starts the sensor; rows go to `out` as `("DeviceProcessEvents", row)`.
    pub fn start(
        config: SensorConfig,
        cache: Arc<HashCache>,
        out: mpsc::Sender<TableRow>,
    ) -> Result<ProcessSensor> {
        let stop = Arc::new(AtomicBool::new(false));
        let watch = open_watch(config.first_source);
        let source = watch.source();
        // Bounded: if the builder falls behind, the watcher waits rather than growing memory
        // without limit (the kernel then reports overruns, which are logged).
        let (tx, rx) = std_mpsc::sync_channel::<Observation>(4096);
        let watcher_stop = Arc::clone(&stop);
        let interval = config.poll_interval;
        let watcher = std::thread::Builder::new()
            .name("rampart-proc-watch".into())
            .spawn(move || match watch {
                Watch::Ebpf(events) => watch_ebpf(events, &tx, &watcher_stop),
                Watch::Connector(c) => watch_connector(c, &tx, &watcher_stop),
                Watch::Polling => poll::watch(&tx, &watcher_stop, interval),
            })
            .map_err(|e| Error::Config(format!("starting the process watcher: {e}")))?;
        let builder = std::thread::Builder::new()
            .name("rampart-proc-rows".into())
            .spawn(move || build_rows(config, cache, rx, out))
            .map_err(|e| Error::Config(format!("starting the process row builder: {e}")))?;
        Ok(ProcessSensor {
            source,
            stop,
            threads: vec![watcher, builder],
        })
    }

    pub fn source(&self) -> Source {
        self.source
    }

    /// Stops watching and waits for the threads (the builder finishes what it has).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for ProcessSensor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// An opened source of process starts.
enum Watch {
    Ebpf(Box<ebpf::ExecEvents>),
    Connector(connector::Connector),
    Polling,
}

impl Watch {
    fn source(&self) -> Source {
        match self {
            Watch::Ebpf(_) => Source::Ebpf,
            Watch::Connector(_) => Source::ProcConnector,
            Watch::Polling => Source::ProcPolling,
        }
    }
}

/// Opens `first`, else the next source that opens.
fn open_watch(first: Source) -> Watch {
    if first <= Source::Ebpf {
        match ebpf::ExecEvents::open() {
            Ok(events) => return Watch::Ebpf(Box::new(events)),
            Err(e) => tracing::warn!("the eBPF process sensor cannot be started ({e})"),
        }
    }
    if first <= Source::ProcConnector {
        match connector::Connector::open_starts() {
            Ok(c) => return Watch::Connector(c),
            Err(e) => tracing::warn!("the proc connector cannot be opened ({e})"),
        }
    }
    Watch::Polling
}

/// How long the eBPF watcher leaves the ring buffer alone after draining it. The 1 MiB buffer
/// holds 200 execs with 4 KiB of arguments each, thousands of typical ones: a burst of more
/// within one nap loses some (they are counted and logged).
const EBPF_NAP: Duration = Duration::from_millis(50);

fn watch_ebpf(
    mut events: Box<ebpf::ExecEvents>,
    tx: &std_mpsc::SyncSender<Observation>,
    stop: &AtomicBool,
) {
    let mut recent = Recent::default();
    let mut images = exec_snapshot::Images::default();
    let mut lost = 0;
    while !stop.load(Ordering::Relaxed) {
        let boot = procfs::boot_time();
        let mut open = true;
        events.drain(|record| {
            if open {
                let o = exec_snapshot::observe(&record, boot, &mut recent, &mut images);
                open = tx.send(Box::new(o)).is_ok();
            }
        });
        if !open {
            return;
        }
        let now_lost = events.lost();
        if now_lost != lost {
            tracing::warn!(
                lost = now_lost,
                "the eBPF process sensor dropped execs (ring buffer full)"
            );
            lost = now_lost;
        }
        std::thread::sleep(EBPF_NAP);
    }
}

/// Reads the new process `pid` and what the watcher needs of its parent and grandparent (from
/// `recent` when read moments ago). The new process is remembered too: it may start others.
fn observe(
    pid: u32,
    time: OffsetDateTime,
    fork: Option<(u32, OffsetDateTime)>,
    recent: &mut Recent,
) -> Observed {
    let child = Arc::new(procfs::snapshot(pid));
    recent.remember(Arc::clone(&child));
    let ppid = child.ppid.or(fork.map(|f| f.0));
    let parent = ppid.filter(|&p| p > 0).map(|p| recent.snapshot(p));
    let gpid = parent.as_ref().and_then(|p| p.ppid).filter(|&p| p > 0);
    let grandparent = match gpid {
        Some(pid) => recent.grandparent(pid),
        None => GrandParent::default(),
    };
    Observed {
        time,
        child,
        fork_parent: fork.map(|f| f.0),
        fork_time: fork.map(|f| f.1),
        parent,
        grandparent,
    }
}

/// Forks remembered (child → parent, time) for children that exec and exit before /proc is
/// read; beyond this many, the memory starts over.
const MAX_FORKS: usize = 65_536;

fn watch_connector(
    mut c: connector::Connector,
    tx: &std_mpsc::SyncSender<Observation>,
    stop: &AtomicBool,
) {
    use connector::ProcEvent;
    let mut forks: HashMap<u32, (u32, OffsetDateTime)> = HashMap::new();
    let mut recent = Recent::default();
    let mut overruns = 0;
    while !stop.load(Ordering::Relaxed) {
        let event = match c.recv() {
            Ok(Some(e)) => e,
            Ok(None) => {
                if c.overruns != overruns {
                    // Lost events may include execs and exits of remembered processes.
                    recent.clear();
                    tracing::warn!(
                        overruns = c.overruns,
                        "the proc connector dropped events (receive buffer full)"
                    );
                    overruns = c.overruns;
                }
                continue;
            }
            Err(e) => {
                tracing::error!("reading the proc connector: {e}");
                std::thread::sleep(connector::RECV_TIMEOUT);
                continue;
            }
        };
        let observation = match event {
            ProcEvent::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
            } => {
                // A new process, not a new thread of an existing one.
                if child_pid == child_tgid {
                    // The pid may be a dead process's, whose snapshot must not stand for it.
                    recent.forget(child_tgid);
                    if forks.len() >= MAX_FORKS {
                        forks.clear();
                    }
                    forks.insert(child_tgid, (parent_tgid, OffsetDateTime::now_utc()));
                }
                continue;
            }
            ProcEvent::Exec { tgid, .. } => {
                let now = OffsetDateTime::now_utc();
                recent.forget(tgid);
                let fork = forks.remove(&tgid);
                Box::new(observe(tgid, now, fork, &mut recent))
            }
            ProcEvent::Exit { pid, tgid, .. } => {
                if pid != tgid {
                    continue;
                }
                // Only where the kernel cannot filter them out (see `Connector::open_starts`).
                forks.remove(&tgid);
                recent.forget(tgid);
                continue;
            }
        };
        if tx.send(observation).is_err() {
            return;
        }
    }
}

/// How long the builder remembers a process at least; after that, as long as it runs (its
/// children may still be reported after it is gone). Whether it runs is looked up in /proc:
/// exit events are not subscribed to where the kernel can leave them out.
const KEPT: Duration = Duration::from_secs(30);
/// Processes remembered at most.
const MAX_KNOWN: usize = 65_536;

struct Known {
    info: ProcInfo,
    since: Instant,
}

/// How long the builder, after a burst, leaves the watcher's queue alone. Being woken for
/// each of hundreds of starts a second cost more CPU than building their rows (a context
/// switch each); rows are batched for a second anyway.
const NAP: Duration = Duration::from_millis(50);

/// The items of `rx` in bursts: what is queued, then after a `nap` what came meanwhile; only
/// an empty queue after a nap blocks (and is woken by the next item).
fn in_bursts<T>(rx: std_mpsc::Receiver<T>, nap: Duration) -> impl Iterator<Item = T> {
    let mut napped = true;
    std::iter::from_fn(move || {
        loop {
            match rx.try_recv() {
                Ok(item) => return Some(item),
                Err(std_mpsc::TryRecvError::Disconnected) => return None,
                Err(std_mpsc::TryRecvError::Empty) if !napped => {
                    std::thread::sleep(nap);
                    napped = true;
                }
                Err(std_mpsc::TryRecvError::Empty) => {
                    napped = false;
                    return rx.recv().ok();
                }
            }
        }
    })
}

fn build_rows(
    config: SensorConfig,
    cache: Arc<HashCache>,
    rx: std_mpsc::Receiver<Observation>,
    out: mpsc::Sender<TableRow>,
) {
    let mut users = users::Users::new(&config.passwd);
    let mut known: HashMap<u32, Known> = HashMap::new();
    let mut last_purge = Instant::now();
    for o in in_bursts(rx, NAP) {
        if last_purge.elapsed() > KEPT {
            known.retain(|pid, k| {
                k.since.elapsed() < KEPT || Path::new(&format!("/proc/{pid}")).exists()
            });
            last_purge = Instant::now();
        }
        // Without the image path the process was gone (or a zombie) when /proc was read.
        let partial = o.child.exe.is_none();
        let mut child = info_of(&o.child, &cache, &mut users);
        child.ppid = child.ppid.or(o.fork_parent);
        child.creation_time = child.creation_time.or(o.fork_time);
        let parent = match &o.parent {
            Some(p) if p.exe.is_some() => Some(info_of(p, &cache, &mut users)),
            // Gone too: what was learnt when it started, else whatever /proc still showed.
            other => child
                .ppid
                .and_then(|ppid| known.get(&ppid).map(|k| k.info.clone()))
                .or_else(|| {
                    other
                        .as_ref()
                        .filter(|p| !p.is_empty())
                        .map(|p| info_of(p, &cache, &mut users))
                }),
        };
        let row = rows::process_created(
            &config.rows,
            o.time,
            &child,
            parent.as_ref(),
            &o.grandparent,
            partial.then_some("the process exited before /proc could be read"),
        );
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(
            child.pid,
            Known {
                info: child,
                since: Instant::now(),
            },
        );
        if out
            .blocking_send((rampart_core::schema::DEVICE_PROCESS_EVENTS.name, row))
            .is_err()
        {
            return;
        }
    }
}

/// A snapshot with its hashes and account name.
pub(crate) fn info_of(s: &Snapshot, cache: &HashCache, users: &mut users::Users) -> ProcInfo {
    let hashes = s.exe_file.as_ref().and_then(|f| match cache.hash_file(f) {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(pid = s.pid, "hashing the image: {e}");
            None
        }
    });
    ProcInfo {
        pid: s.pid,
        ppid: s.ppid,
        path: s.exe.clone(),
        file_name: s.file_name(),
        cmdline: s.cmdline.clone(),
        // A uid without a passwd entry (a container's, a deleted user's) is still worth
        // reporting: as its number.
        account_name: s
            .euid
            .map(|u| users.name(u).unwrap_or_else(|| u.to_string())),
        creation_time: s.start_ticks.and_then(procfs::start_time),
        hashes,
    }
}
