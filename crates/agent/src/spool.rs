//! The bounded on-disk queue of telemetry batches.
//!
//! One file per batch, `{seq:020}-{rows}-{batchId}.zst`: the batch's JSON body compressed with
//! zstd, exactly the bytes that are posted, so that a retry sends what was first sent (same
//! batch id: the server stores it once). Files are written to a temporary name, flushed and
//! renamed, so a crash leaves whole batches only; the sequence number in the name keeps the
//! order across restarts, and the row count in the name lets the queue count what it drops
//! without reading it.
//!
//! The queue is bounded in bytes. When a new batch takes it over the bound, the oldest batches
//! are deleted and their rows counted in `counters.json`, which survives restarts and is shown
//! by `rampart-agent status`. Nothing within the bound is ever dropped. The batch being sent is
//! never dropped under the sender, so a row is either delivered or counted, not both.

use crate::error::{Error, Result, io_err, json_err};
use crate::fsutil;
use rampart_proto::telemetry::TelemetryBatch;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Default bound: 1 GiB of compressed batches.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
const COUNTERS_FILE: &str = "counters.json";
const LOCK_FILE: &str = ".lock";
const SUFFIX: &str = ".zst";
/// zstd level: fast enough for an endpoint, and JSON rows shrink by about ten.
const ZSTD_LEVEL: i32 = 3;

/// A batch waiting in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub rows: u64,
    pub bytes: u64,
    pub batch_id: String,
}

impl Entry {
    fn file_name(&self) -> String {
        format!("{:020}-{}-{}{SUFFIX}", self.seq, self.rows, self.batch_id)
    }

    /// The entry a file name describes; `None` for any other file.
    fn parse(name: &str, bytes: u64) -> Option<Entry> {
        let stem = name.strip_suffix(SUFFIX)?;
        let mut parts = stem.splitn(3, '-');
        let seq = parts.next()?.parse().ok()?;
        let rows = parts.next()?.parse().ok()?;
        let batch_id = parts.next()?.to_owned();
        Some(Entry {
            seq,
            rows,
            bytes,
            batch_id,
        })
    }
}

/// What the queue lost, over its whole life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Rows of batches deleted because the queue was over its bound.
    pub dropped_rows: u64,
    pub dropped_batches: u64,
    /// Rows of batches the server refused outright (4xx other than auth), deleted unsent.
    pub refused_rows: u64,
    pub refused_batches: u64,
}

/// The queue at a glance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub batches: u64,
    pub rows: u64,
    pub bytes: u64,
    pub counters: Counters,
}

struct State {
    entries: VecDeque<Entry>,
    bytes: u64,
    next_seq: u64,
    counters: Counters,
    /// The batch the sender holds: never dropped under it.
    in_flight: Option<u64>,
}

/// The queue of one state directory; one process at a time (a lock file says so).
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    /// Held open for the `flock` on it.
    _lock: File,
}

/// Takes the exclusive lock of the queue directory, or says who has it.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    // SAFETY: `flock` takes a file descriptor and flags and touches no memory of ours; the
    // descriptor is valid for the call because `file` owns it and outlives it.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(dir.to_path_buf())
        } else {
            io_err(format!("locking {}", path.display()))(e)
        });
    }
    Ok(file)
}

/// The batches in `dir`, oldest first, and temporary files a crash left behind.
fn scan(dir: &Path) -> Result<(Vec<Entry>, Vec<PathBuf>)> {
    let mut entries = Vec::new();
    let mut leftovers = Vec::new();
    for item in fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))? {
        let item = item.map_err(io_err(format!("listing {}", dir.display())))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            leftovers.push(item.path());
            continue;
        }
        let Ok(meta) = item.metadata() else { continue };
        if let Some(e) = Entry::parse(&name, meta.len()) {
            entries.push(e);
        }
    }
    entries.sort_by_key(|e| e.seq);
    Ok((entries, leftovers))
}

fn read_counters(dir: &Path) -> Counters {
    fs::read(dir.join(COUNTERS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

impl Spool {
    /// Opens (creating) the queue in `dir`, bounded to `max_bytes`, and takes its lock.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool> {
        fsutil::ensure_dir(dir, 0o700)?;
        let lock = lock(dir)?;
        let (entries, leftovers) = scan(dir)?;
        for path in leftovers {
            // A batch that was never renamed into place was never acknowledged to anyone:
            // the rows it held are still in the sensor's memory of a crashed process, i.e.
            // gone, and the partial file is useless.
            let _ = fs::remove_file(path);
        }
        let bytes = entries.iter().map(|e| e.bytes).sum();
        let next_seq = entries.last().map_or(1, |e| e.seq + 1);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Mutex::new(State {
                entries: entries.into(),
                bytes,
                next_seq,
                counters: read_counters(dir),
                in_flight: None,
            }),
            _lock: lock,
        })
    }

    /// The queue of `dir` as it is on disk, without taking it: for `status` while `run` has it.
    pub fn inspect(dir: &Path) -> Result<Summary> {
        if !dir.exists() {
            return Ok(Summary::default());
        }
        let (entries, _) = scan(dir)?;
        Ok(Summary {
            batches: entries.len() as u64,
            rows: entries.iter().map(|e| e.rows).sum(),
            bytes: entries.iter().map(|e| e.bytes).sum(),
            counters: read_counters(dir),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every change is a single
        // assignment after the file operation), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bytes a batch is spooled and posted as.
    pub fn encode(batch: &TelemetryBatch) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(batch).map_err(json_err("encoding a batch"))?;
        zstd::bulk::compress(&json, ZSTD_LEVEL).map_err(io_err("compressing a batch"))
    }

    /// Appends a batch; returns the rows dropped to stay within the bound (0 almost always).
    pub fn push(&self, batch: &TelemetryBatch) -> Result<u64> {
        let body = Self::encode(batch)?;
        let mut st = self.state();
        let entry = Entry {
            seq: st.next_seq,
            rows: batch.row_count() as u64,
            bytes: body.len() as u64,
            batch_id: batch.batch_id.clone(),
        };
        let tmp = self.dir.join(format!(".tmp-{}", entry.seq));
        let path = self.dir.join(entry.file_name());
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &body)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fsutil::sync_dir(&self.dir)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(format!("spooling batch {}", entry.batch_id))(e));
        }
        st.next_seq += 1;
        st.bytes += entry.bytes;
        let new_seq = entry.seq;
        st.entries.push_back(entry);
        self.enforce_bound(&mut st, new_seq)
    }

    /// Drops the oldest batches (not the one in flight, not the newest) while over the bound.
    fn enforce_bound(&self, st: &mut State, newest: u64) -> Result<u64> {
        let mut dropped_rows = 0;
        let mut dropped_batches = 0;
        while st.bytes > self.max_bytes {
            let in_flight = st.in_flight;
            let Some(pos) = st
                .entries
                .iter()
                .position(|e| Some(e.seq) != in_flight && e.seq != newest)
            else {
                break;
            };
            let Some(victim) = st.entries.remove(pos) else {
                break;
            };
            match fs::remove_file(self.dir.join(victim.file_name())) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    st.entries.insert(pos, victim);
                    return Err(io_err("dropping the oldest spooled batch")(e));
                }
            }
            st.bytes -= victim.bytes;
            dropped_rows += victim.rows;
            dropped_batches += 1;
        }
        if dropped_batches > 0 {
            st.counters.dropped_rows += dropped_rows;
            st.counters.dropped_batches += dropped_batches;
            tracing::warn!(
                dropped_rows,
                dropped_batches,
                max_bytes = self.max_bytes,
                "telemetry queue full: oldest batches dropped"
            );
            self.save_counters(st.counters)?;
        }
        Ok(dropped_rows)
    }

    fn save_counters(&self, counters: Counters) -> Result<()> {
        let bytes = serde_json::to_vec(&counters).map_err(json_err("encoding counters"))?;
        fsutil::atomic_write(&self.dir.join(COUNTERS_FILE), &bytes, 0o600)
    }

    /// The oldest batch, now held by the caller (it will not be dropped) until
    /// [`Spool::complete`], [`Spool::refuse`] or [`Spool::release`].
    pub fn take_oldest(&self) -> Option<Entry> {
        let mut st = self.state();
        let e = st.entries.front().cloned()?;
        st.in_flight = Some(e.seq);
        Some(e)
    }

    /// The spooled bytes of `entry`.
    pub fn read(&self, entry: &Entry) -> Result<Vec<u8>> {
        let path = self.dir.join(entry.file_name());
        fs::read(&path).map_err(io_err(format!("reading {}", path.display())))
    }

    /// Removes a delivered batch.
    pub fn complete(&self, seq: u64) -> Result<()> {
        self.remove(seq, false)
    }

    /// Removes a batch the server refused (or that cannot be read), counting its rows.
    pub fn refuse(&self, seq: u64) -> Result<()> {
        self.remove(seq, true)
    }

    /// The held batch goes back to the queue unchanged (its send is to be retried).
    pub fn release(&self) {
        self.state().in_flight = None;
    }

    fn remove(&self, seq: u64, refused: bool) -> Result<()> {
        let mut st = self.state();
        if st.in_flight == Some(seq) {
            st.in_flight = None;
        }
        let Some(pos) = st.entries.iter().position(|e| e.seq == seq) else {
            return Ok(());
        };
        let Some(entry) = st.entries.remove(pos) else {
            return Ok(());
        };
        match fs::remove_file(self.dir.join(entry.file_name())) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                st.entries.insert(pos, entry);
                return Err(io_err("removing a spooled batch")(e));
            }
        }
        st.bytes -= entry.bytes;
        if refused {
            st.counters.refused_rows += entry.rows;
            st.counters.refused_batches += 1;
            self.save_counters(st.counters)?;
        }
        Ok(())
    }

    pub fn summary(&self) -> Summary {
        let st = self.state();
        Summary {
            batches: st.entries.len() as u64,
            rows: st.entries.iter().map(|e| e.rows).sum(),
            bytes: st.bytes,
            counters: st.counters,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.state().entries.is_empty()
    }
}
