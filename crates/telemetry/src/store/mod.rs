//! The event store: write-ahead log → in-memory hot tail (queryable at once) → Parquet files per
//! tenant / table / UTC day, written through `object_store`, compacted and expired in the
//! background.
//!
//! Layout of the data dir: `wal/*.wal` (the log), `manifest.json` (the files and the log
//! checkpoint), `batch_ids.log` (recent batch ids, for idempotent retries). Parquet objects live
//! under `events/{tenant}/{Table}/day=YYYY-MM-DD/` in the object store (the data dir's `events/`
//! by default). The inventory tables (current state, no `Timestamp`) bypass the log: each
//! device's latest report is one object under `inventory/` (see `inventory`).
//!
//! Exactly-once: a batch is acknowledged after its log record is durable; the log is deleted only
//! after the manifest records the files holding its rows; recovery replays what the manifest's
//! checkpoint doesn't cover. Queries see the manifest's files plus the hot tail, swapped under
//! one lock, so a row is never seen twice or not at all while it moves from one to the other.

mod batch_ids;
mod catalog;
pub mod files;
mod hot;
mod inventory;
mod manifest;
mod wal;

pub use catalog::{EVENTS_URL, EventSchema};
pub use manifest::FileEntry;

use batch_ids::{BatchIds, Reservation};
use datafusion::arrow::array::RecordBatch;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::memory::InMemory;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use futures::TryStreamExt;
use hot::{Bounds, HotBatch, HotFilter};
use manifest::Manifest;
use rampart_core::TenantId;
use rampart_core::schema::{self, Table};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use wal::{Wal, WalRecord};

/// Why the store did not take or give data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Transient: disk full, object store failing, ingestion ahead of storage. Retry later.
    #[error("the event store cannot take data now: {reason}")]
    Unavailable {
        reason: String,
        retry_after: Duration,
    },
    #[error("{0}")]
    InvalidInput(String),
    #[error("event store: {0}")]
    Internal(String),
}

impl StoreError {
    pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        StoreError::Internal(format!("{what}: {e}"))
    }
    pub(crate) fn unavailable(reason: impl Into<String>, retry_after: Duration) -> Self {
        StoreError::Unavailable {
            reason: reason.into(),
            retry_after,
        }
    }
}

/// Files at least this large are not merged again by compaction.
const COMPACTED_FILE_BYTES: u64 = 64 << 20;

/// Tuning of the event store.
#[derive(Clone, Debug)]
pub struct EventStoreConfig {
    /// How often the hot tail is written to Parquet.
    pub flush_interval: Duration,
    /// Hot-tail size that triggers an early flush.
    pub flush_hot_bytes: usize,
    /// Hot-tail size at which ingestion is refused (503) until a flush catches up.
    pub max_hot_bytes: usize,
    /// Files of one tenant/table/day that trigger a compaction into one.
    pub compact_min_files: usize,
    /// How long rows are kept (MDE keeps 30 days), unless a tenant sets its own.
    pub retention_days: u32,
    /// How long a batch id is remembered for idempotent retries.
    pub dedup_window: Duration,
}

impl Default for EventStoreConfig {
    fn default() -> Self {
        EventStoreConfig {
            flush_interval: Duration::from_secs(30),
            flush_hot_bytes: 128 << 20,
            max_hot_bytes: 1 << 30,
            compact_min_files: 8,
            retention_days: 30,
            dedup_window: Duration::from_secs(6 * 3600),
        }
    }
}

/// What became of an appended batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Durable; `rows` rows were stored.
    Stored { rows: usize },
    /// This batch id was stored before; nothing was stored again.
    Duplicate,
}

/// Counts for `/metrics` and the CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub files: usize,
    pub file_rows: u64,
    pub file_bytes: u64,
    pub hot_rows: u64,
    pub hot_bytes: u64,
}

/// What queries see: the manifest's files and the hot tail.
#[derive(Default)]
struct Visible {
    files: Vec<Arc<FileEntry>>,
    hot: Vec<HotBatch>,
}

struct Inner {
    config: EventStoreConfig,
    dir: PathBuf,
    objects: Arc<dyn ObjectStore>,
    wal: Mutex<Option<Arc<Wal>>>,
    visible: RwLock<Visible>,
    /// Held for a whole flush, compaction or retention run: they all rewrite the manifest.
    manifest: tokio::sync::Mutex<Manifest>,
    batch_ids: Mutex<BatchIds>,
    hot_bytes: AtomicUsize,
    flush_wanted: tokio::sync::Notify,
    /// Holds the store's exclusive lock until [`EventStore::shutdown`] (or the last handle
    /// goes): shutdown lets go at once, although query tasks may still hold the store a moment.
    lock: Mutex<Option<std::fs::File>>,
}

/// The event store. Cheap to clone.
#[derive(Clone)]
pub struct EventStore {
    inner: Arc<Inner>,
}

/// The memory a hot batch holds. Counted by slice, not by buffer: batches replayed from the log
/// share one decoded frame between their columns, and counting the frame per column would
/// overstate the hot tail many times over.
fn hot_size(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
        .sum()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::internal(what, e)
}

/// Opens the object store an events URL names: a local path or `file://` URL, `s3://BUCKET[/PREFIX]`
/// (credentials, region and endpoint from the usual `AWS_*` variables), or `memory://` (tests).
pub fn object_store_for(url: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    object_store_with(url, std::iter::empty::<(String, String)>())
}

/// [`object_store_for`] with S3 settings given as `aws_*` keys (`aws_endpoint`,
/// `aws_access_key_id`, …) over those of the environment.
pub fn object_store_with<K: AsRef<str>, V: Into<String>>(
    url: &str,
    s3_options: impl IntoIterator<Item = (K, V)>,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    if url == "memory://" || url == "memory:///" {
        return Ok(Arc::new(InMemory::new()));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::InvalidInput(format!(
                "events URL {url}: no bucket (s3://BUCKET/PREFIX)"
            )));
        }
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in s3_options {
            let key = k
                .as_ref()
                .parse()
                .map_err(|e| StoreError::InvalidInput(format!("S3 option {}: {e}", k.as_ref())))?;
            builder = builder.with_config(key, v);
        }
        let s3 = builder
            .build()
            .map_err(|e| StoreError::InvalidInput(format!("events URL {url}: {e}")))?;
        let prefix = prefix.trim_matches('/');
        return Ok(if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        });
    }
    let path = match url.strip_prefix("file://") {
        Some(p) => PathBuf::from(p),
        None if !url.contains("://") => PathBuf::from(url),
        None => {
            return Err(StoreError::InvalidInput(format!(
                "events URL {url}: use a directory, a file:// URL or s3://BUCKET/PREFIX"
            )));
        }
    };
    std::fs::create_dir_all(&path)
        .map_err(|e| StoreError::InvalidInput(format!("events URL {url}: {e}")))?;
    let fs = LocalFileSystem::new_with_prefix(&path)
        .map_err(|e| StoreError::InvalidInput(format!("events URL {url}: {e}")))?;
    Ok(Arc::new(fs))
}

/// How long [`EventStore::open`] waits for a lock held by someone else before it answers "in use".
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Takes the store's lock, waiting up to [`LOCK_WAIT`] for it. The lock is a `flock`, which
/// belongs to the open file description: a process that has just stopped, or a child forked by
/// the previous holder and not yet exec'd (it keeps a copy of the descriptor until `exec` closes
/// it), can hold it for a moment after its owner let go. Waiting that moment out is what lets a
/// CLI started as the server stops, or a store reopened in the same process, succeed.
async fn take_lock(lock: &std::fs::File, dir: &Path) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InvalidInput(format!(
                    "the event store in {} is in use by another process; stop it first, or import through its API (POST /api/telemetry/import)",
                    dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_err("locking the store")(e));
            }
        }
    }
}

impl EventStore {
    /// Opens (or creates) the store with its log in `dir` and its files in `dir/events`.
    pub async fn open(dir: &Path, config: EventStoreConfig) -> Result<EventStore, StoreError> {
        let events = dir.join("events");
        let objects = object_store_for(&events.to_string_lossy())?;
        Self::open_with_object_store(dir, objects, config).await
    }

    /// Opens the store with its log in `dir` and its files in `objects`; replays the log.
    pub async fn open_with_object_store(
        dir: &Path,
        objects: Arc<dyn ObjectStore>,
        config: EventStoreConfig,
    ) -> Result<EventStore, StoreError> {
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(io_err("creating the log directory"))?;
        // One writer per store: two processes appending to one log would interleave frames.
        let lock =
            std::fs::File::create(dir.join("lock")).map_err(io_err("creating the lock file"))?;
        take_lock(&lock, dir).await?;
        let manifest =
            Manifest::load(&dir.join("manifest.json")).map_err(io_err("reading the manifest"))?;
        let since = unix_now() - config.dedup_window.as_secs() as i64;
        let mut ids = BatchIds::load(&dir.join("batch_ids.log"), since)
            .map_err(io_err("reading batch ids"))?;

        let checkpoint = manifest.checkpoint;
        let segments = wal::segments(&wal_dir).map_err(io_err("listing the log"))?;
        let mut hot = Vec::new();
        let mut hot_bytes = 0;
        let mut last = checkpoint.unwrap_or(0);
        for &seg in &segments {
            last = last.max(seg);
            if checkpoint.is_some_and(|c| seg <= c) {
                continue;
            }
            let read = wal::recover_segment(&wal_dir, seg).map_err(io_err("reading the log"))?;
            if read.dropped_bytes > 0 {
                tracing::warn!(
                    segment = seg,
                    bytes = read.dropped_bytes,
                    "log had a torn tail (crash during a write); recovered every acknowledged record before it"
                );
            }
            for rec in read.records {
                ids.stored(&rec.tenant, &rec.batch_id, seg, unix_now());
                let tenant: Arc<str> = rec.tenant.into();
                for (table, batch) in rec.tables {
                    hot_bytes += hot_size(&batch);
                    hot.push(HotBatch {
                        segment: seg,
                        tenant: tenant.clone(),
                        table,
                        bounds: Bounds::of(&batch),
                        batch,
                    });
                }
            }
        }
        if let Some(c) = checkpoint {
            wal::remove_segments_through(&wal_dir, c)
                .map_err(io_err("removing folded log segments"))?;
        }
        let first = if segments.is_empty() && checkpoint.is_none() {
            0
        } else {
            last + 1
        };
        let wal = Wal::start(&wal_dir, first).map_err(io_err("starting the log"))?;
        let visible = Visible {
            files: manifest.files.iter().cloned().map(Arc::new).collect(),
            hot,
        };
        let store = EventStore {
            inner: Arc::new(Inner {
                config,
                dir: dir.to_owned(),
                objects,
                wal: Mutex::new(Some(Arc::new(wal))),
                visible: RwLock::new(visible),
                manifest: tokio::sync::Mutex::new(manifest),
                batch_ids: Mutex::new(ids),
                hot_bytes: AtomicUsize::new(hot_bytes),
                flush_wanted: tokio::sync::Notify::new(),
                lock: Mutex::new(Some(lock)),
            }),
        };
        store.remove_orphans().await;
        Ok(store)
    }

    /// The object store holding the Parquet files.
    pub fn objects(&self) -> Arc<dyn ObjectStore> {
        self.inner.objects.clone()
    }

    fn wal(&self) -> Result<Arc<Wal>, StoreError> {
        self.inner
            .wal
            .lock()
            .map_err(|_| StoreError::Internal("log handle poisoned".into()))?
            .clone()
            .ok_or_else(|| {
                StoreError::unavailable("the event store is shut down", Duration::from_secs(5))
            })
    }

    /// Stores one batch of rows (any tables) durably; a batch id seen before is not stored again.
    pub async fn append(
        &self,
        tenant: TenantId,
        batch_id: &str,
        tables: Vec<(&'static Table, RecordBatch)>,
    ) -> Result<Appended, StoreError> {
        if batch_id.is_empty() || batch_id.len() > 256 || batch_id.contains(['\t', '\n', '\r']) {
            return Err(StoreError::InvalidInput(
                "batchId must be 1-256 characters without tabs or line breaks".into(),
            ));
        }
        let inner = &self.inner;
        if inner.hot_bytes.load(Ordering::Relaxed) > inner.config.max_hot_bytes {
            inner.flush_wanted.notify_one();
            return Err(StoreError::unavailable(
                "ingestion is ahead of storage",
                Duration::from_secs(5),
            ));
        }
        let tenant_s = tenant.to_string();
        let reservation = inner
            .batch_ids
            .lock()
            .map_err(|_| StoreError::Internal("batch ids poisoned".into()))?
            .reserve(&tenant_s, batch_id);
        match reservation {
            Reservation::AlreadyStored => return Ok(Appended::Duplicate),
            Reservation::InFlight => {
                return Err(StoreError::unavailable(
                    "the same batch is being stored",
                    Duration::from_secs(1),
                ));
            }
            Reservation::Reserved => {}
        }
        let (inventory, tables): (Vec<_>, Vec<_>) = tables
            .into_iter()
            .filter(|(_, b)| b.num_rows() > 0)
            .partition(|(t, _)| !t.has_timestamp());
        let rows = tables
            .iter()
            .chain(&inventory)
            .map(|(_, b)| b.num_rows())
            .sum();
        let record = WalRecord {
            tenant: tenant_s.clone(),
            batch_id: batch_id.to_owned(),
            tables,
        };
        let result = async {
            // Reports first: when one fails, the batch is not acknowledged and its retry writes
            // them again (a report replaces, so writing it twice changes nothing).
            for (table, batch) in &inventory {
                self.replace_inventory(&tenant_s, table, batch).await?;
            }
            let payload = wal::encode(&record)?;
            // Found here, not under the lock that makes the batches visible.
            let bounds: Vec<Bounds> = record.tables.iter().map(|(_, b)| Bounds::of(b)).collect();
            let wal = self.wal()?;
            let me = self.inner.clone();
            let WalRecord {
                tenant,
                batch_id,
                tables,
            } = record;
            let on_durable = Box::new(move |segment: u64| {
                let tenant: Arc<str> = tenant.into();
                let mut bytes = 0;
                let mut v = me.visible.write().unwrap_or_else(|p| p.into_inner());
                for ((table, batch), bounds) in tables.into_iter().zip(bounds) {
                    bytes += hot_size(&batch);
                    v.hot.push(HotBatch {
                        segment,
                        tenant: tenant.clone(),
                        table,
                        batch,
                        bounds,
                    });
                }
                drop(v);
                if let Ok(mut ids) = me.batch_ids.lock() {
                    ids.stored(&tenant, &batch_id, segment, unix_now());
                }
                let total = me.hot_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
                if total > me.config.flush_hot_bytes {
                    me.flush_wanted.notify_one();
                }
            });
            wal.append(payload, on_durable).await
        }
        .await;
        match result {
            Ok(_) => Ok(Appended::Stored { rows }),
            Err(e) => {
                if let Ok(mut ids) = inner.batch_ids.lock() {
                    ids.release(&tenant_s, batch_id);
                }
                // A flush starts a new log segment and frees memory: the way out of most failures.
                inner.flush_wanted.notify_one();
                Err(e)
            }
        }
    }

    /// Writes the hot tail to Parquet files and drops the log it came from.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let mut manifest = inner.manifest.lock().await;
        let segment = self.wal()?.rotate().await?;
        let taken: Vec<HotBatch> = {
            let v = inner.visible.read().unwrap_or_else(|p| p.into_inner());
            v.hot
                .iter()
                .filter(|h| h.segment <= segment)
                .cloned()
                .collect()
        };
        // (tenant, table name) -> the table and its hot batches.
        type Groups = BTreeMap<(Arc<str>, &'static str), (&'static Table, Vec<RecordBatch>)>;
        let mut groups = Groups::new();
        for h in &taken {
            groups
                .entry((h.tenant.clone(), h.table.name))
                .or_insert_with(|| (h.table, Vec::new()))
                .1
                .push(h.batch.clone());
        }
        let mut new_files = Vec::new();
        let mut next_file = manifest.next_file;
        for ((tenant, _), (table, batches)) in groups {
            let days = tokio::task::spawn_blocking(
                move || -> Result<Vec<(files::DayBatch, bytes::Bytes)>, StoreError> {
                    files::sort_by_day(table, &batches)?
                        .into_iter()
                        .map(|d| files::write_parquet(&d.batch).map(|b| (d, b)))
                        .collect()
                },
            )
            .await
            .map_err(|e| StoreError::internal("flush task", e))??;
            for (day, bytes) in days {
                let path = format!(
                    "events/{tenant}/{}/day={}/{next_file:012}.parquet",
                    table.name, day.day
                );
                next_file += 1;
                let size = bytes.len() as u64;
                self.put(&path, bytes).await?;
                new_files.push(FileEntry {
                    path,
                    tenant: tenant.to_string(),
                    table: table.name.to_owned(),
                    day: day.day,
                    rows: day.batch.num_rows() as u64,
                    bytes: size,
                    min_ts: day.min_ts,
                    max_ts: day.max_ts,
                });
            }
        }
        // Batch ids must outlive the log that holds them now.
        let since = unix_now() - inner.config.dedup_window.as_secs() as i64;
        inner
            .batch_ids
            .lock()
            .map_err(|_| StoreError::Internal("batch ids poisoned".into()))?
            .persist_through(segment, since)
            .map_err(io_err("writing batch ids"))?;
        let mut next = manifest.clone();
        next.files.extend(new_files.iter().cloned());
        next.next_file = next_file;
        next.checkpoint = Some(segment);
        self.save_manifest(&next)?;
        *manifest = next;
        let rows: usize = taken.iter().map(|h| h.batch.num_rows()).sum();
        let bytes: usize = taken.iter().map(|h| hot_size(&h.batch)).sum();
        {
            let mut v = inner.visible.write().unwrap_or_else(|p| p.into_inner());
            v.files.extend(new_files.into_iter().map(Arc::new));
            v.hot.retain(|h| h.segment > segment);
        }
        inner.hot_bytes.fetch_sub(
            bytes.min(inner.hot_bytes.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        wal::remove_segments_through(&inner.dir.join("wal"), segment)
            .map_err(io_err("removing folded log segments"))?;
        Ok(rows)
    }

    fn save_manifest(&self, m: &Manifest) -> Result<(), StoreError> {
        m.save(&self.inner.dir.join("manifest.json")).map_err(|e| {
            StoreError::unavailable(format!("writing the manifest: {e}"), Duration::from_secs(5))
        })
    }

    async fn put(&self, path: &str, bytes: bytes::Bytes) -> Result<(), StoreError> {
        self.inner
            .objects
            .put(&ObjectPath::from(path), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| {
                StoreError::unavailable(format!("writing {path}: {e}"), Duration::from_secs(10))
            })
    }

    async fn delete(&self, paths: impl IntoIterator<Item = String>) {
        for p in paths {
            if let Err(e) = self
                .inner
                .objects
                .delete(&ObjectPath::from(p.as_str()))
                .await
            {
                tracing::warn!("deleting {p}: {e}");
            }
        }
    }

    /// Deletes files a crash left behind: written but never recorded in the manifest, or
    /// replaced by a compaction whose old files were not yet deleted.
    async fn remove_orphans(&self) {
        let known: HashSet<String> = self
            .inner
            .manifest
            .lock()
            .await
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect();
        let listed: Result<Vec<_>, _> = self
            .inner
            .objects
            .list(Some(&ObjectPath::from("events")))
            .try_collect()
            .await;
        match listed {
            Ok(objects) => {
                let orphans = objects
                    .into_iter()
                    .map(|o| o.location.to_string())
                    .filter(|p| p.ends_with(".parquet") && !known.contains(p));
                self.delete(orphans).await;
            }
            Err(e) => tracing::warn!("listing event files: {e}"),
        }
    }

    /// Merges the small files of each tenant/table/day, once there are `compact_min_files` of
    /// them, into one. Files already large are left alone, so a day is not rewritten whole every
    /// time a few flushes are added to it.
    pub async fn compact(&self) -> Result<usize, StoreError> {
        let mut manifest = self.inner.manifest.lock().await;
        let mut groups: BTreeMap<(String, String, String), Vec<FileEntry>> = BTreeMap::new();
        for f in manifest
            .files
            .iter()
            .filter(|f| f.bytes < COMPACTED_FILE_BYTES)
        {
            groups
                .entry((f.tenant.clone(), f.table.clone(), f.day.clone()))
                .or_default()
                .push(f.clone());
        }
        let mut merged = 0;
        for ((tenant, table_name, day), old) in groups {
            if old.len() < self.inner.config.compact_min_files.max(2) {
                continue;
            }
            let Some(table) = schema::table(&table_name) else {
                continue;
            };
            let mut batches = Vec::new();
            for f in &old {
                let bytes = self
                    .inner
                    .objects
                    .get(&ObjectPath::from(f.path.as_str()))
                    .await
                    .map_err(|e| {
                        StoreError::unavailable(
                            format!("reading {}: {e}", f.path),
                            Duration::from_secs(10),
                        )
                    })?
                    .bytes()
                    .await
                    .map_err(|e| {
                        StoreError::unavailable(
                            format!("reading {}: {e}", f.path),
                            Duration::from_secs(10),
                        )
                    })?;
                batches.extend(files::read_parquet(bytes)?);
            }
            let out = tokio::task::spawn_blocking(
                move || -> Result<Vec<(files::DayBatch, bytes::Bytes)>, StoreError> {
                    files::sort_by_day(table, &batches)?
                        .into_iter()
                        .map(|d| files::write_parquet(&d.batch).map(|b| (d, b)))
                        .collect()
                },
            )
            .await
            .map_err(|e| StoreError::internal("compaction task", e))??;
            let mut next = manifest.clone();
            let mut added = Vec::new();
            for (d, bytes) in out {
                let path = format!(
                    "events/{tenant}/{table_name}/day={day}/{:012}.parquet",
                    next.next_file
                );
                next.next_file += 1;
                let size = bytes.len() as u64;
                self.put(&path, bytes).await?;
                added.push(FileEntry {
                    path,
                    tenant: tenant.clone(),
                    table: table_name.clone(),
                    day: d.day,
                    rows: d.batch.num_rows() as u64,
                    bytes: size,
                    min_ts: d.min_ts,
                    max_ts: d.max_ts,
                });
            }
            let old_paths: HashSet<String> = old.iter().map(|f| f.path.clone()).collect();
            next.files.retain(|f| !old_paths.contains(&f.path));
            next.files.extend(added.iter().cloned());
            self.save_manifest(&next)?;
            *manifest = next;
            {
                let mut v = self
                    .inner
                    .visible
                    .write()
                    .unwrap_or_else(|p| p.into_inner());
                v.files.retain(|f| !old_paths.contains(&f.path));
                v.files.extend(added.into_iter().map(Arc::new));
            }
            // Queries already planned may still read the old files; they are tiny in number and
            // DataFusion reports a clear error if one vanished mid-query.
            self.delete(old_paths).await;
            merged += old.len();
        }
        Ok(merged)
    }

    /// Sets a tenant's retention (None: back to the default).
    pub async fn set_retention(
        &self,
        tenant: TenantId,
        days: Option<u32>,
    ) -> Result<(), StoreError> {
        if days == Some(0) {
            return Err(StoreError::InvalidInput(
                "retention must be at least 1 day".into(),
            ));
        }
        let mut manifest = self.inner.manifest.lock().await;
        let mut next = manifest.clone();
        match days {
            Some(d) => next.retention_days.insert(tenant.to_string(), d),
            None => next.retention_days.remove(&tenant.to_string()),
        };
        self.save_manifest(&next)?;
        *manifest = next;
        Ok(())
    }

    /// A tenant's retention in days.
    pub async fn retention(&self, tenant: TenantId) -> u32 {
        let m = self.inner.manifest.lock().await;
        m.retention_days
            .get(&tenant.to_string())
            .copied()
            .unwrap_or(self.inner.config.retention_days)
    }

    /// Deletes files whose day is older than the tenant's retention, counted from `now_ns`, and
    /// the inventory reports of devices silent for longer than it.
    pub async fn enforce_retention(&self, now_ns: i64) -> Result<usize, StoreError> {
        let default = self.inner.config.retention_days;
        let days = self.inner.manifest.lock().await.retention_days.clone();
        let reports = self
            .expire_inventory(now_ns, |tenant| {
                days.get(tenant).copied().unwrap_or(default)
            })
            .await
            // The event files expire all the same; the reports are tried again next time.
            .unwrap_or_else(|e| {
                tracing::warn!("expiring inventory reports: {e}");
                0
            });
        Ok(reports + self.expire_files(now_ns).await?)
    }

    async fn expire_files(&self, now_ns: i64) -> Result<usize, StoreError> {
        let mut manifest = self.inner.manifest.lock().await;
        let today = files::day_of(now_ns);
        let default = self.inner.config.retention_days;
        let expired: HashSet<String> = manifest
            .files
            .iter()
            .filter(|f| {
                let days = manifest
                    .retention_days
                    .get(&f.tenant)
                    .copied()
                    .unwrap_or(default);
                files::day_of(f.max_ts) < today - i64::from(days) + 1
            })
            .map(|f| f.path.clone())
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let mut next = manifest.clone();
        next.files.retain(|f| !expired.contains(&f.path));
        self.save_manifest(&next)?;
        *manifest = next;
        self.inner
            .visible
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .files
            .retain(|f| !expired.contains(&f.path));
        let n = expired.len();
        self.delete(expired).await;
        Ok(n)
    }

    /// Counts of what is stored.
    pub fn stats(&self) -> StoreStats {
        let v = self.inner.visible.read().unwrap_or_else(|p| p.into_inner());
        StoreStats {
            files: v.files.len(),
            file_rows: v.files.iter().map(|f| f.rows).sum(),
            file_bytes: v.files.iter().map(|f| f.bytes).sum(),
            hot_rows: v.hot.iter().map(|h| h.batch.num_rows() as u64).sum(),
            hot_bytes: self.inner.hot_bytes.load(Ordering::Relaxed) as u64,
        }
    }

    /// The files of the store (all tenants).
    pub fn files(&self) -> Vec<FileEntry> {
        let v = self.inner.visible.read().unwrap_or_else(|p| p.into_inner());
        v.files.iter().map(|f| (**f).clone()).collect()
    }

    /// Snapshot of one tenant's table for a query: its files, and the hot batches that may
    /// hold rows `filter` lets through.
    fn snapshot(
        &self,
        tenant: &str,
        table: &'static Table,
        filter: &HotFilter,
    ) -> (Vec<Arc<FileEntry>>, Vec<RecordBatch>) {
        let v = self.inner.visible.read().unwrap_or_else(|p| p.into_inner());
        let files = v
            .files
            .iter()
            .filter(|f| f.tenant == tenant && f.table == table.name)
            .cloned()
            .collect();
        let hot = v
            .hot
            .iter()
            .filter(|h| &*h.tenant == tenant && std::ptr::eq(h.table, table))
            .filter(|h| h.may_match(filter))
            .map(|h| h.batch.clone())
            .collect();
        (files, hot)
    }

    /// Runs flushes, compaction and retention until the store is shut down.
    pub fn start_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut last_compact = tokio::time::Instant::now();
            loop {
                let wait = store.inner.config.flush_interval;
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = store.inner.flush_wanted.notified() => {}
                }
                if store.wal().is_err() {
                    return;
                }
                if let Err(e) = store.flush().await {
                    tracing::warn!("flushing events: {e}");
                }
                if last_compact.elapsed() >= Duration::from_secs(600) {
                    last_compact = tokio::time::Instant::now();
                    if let Err(e) = store.compact().await {
                        tracing::warn!("compacting events: {e}");
                    }
                    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
                    if let Err(e) = store.enforce_retention(now).await {
                        tracing::warn!("expiring events: {e}");
                    }
                }
            }
        })
    }

    /// Flushes what is in memory and stops the log writer. Appends fail afterwards.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let flushed = self.flush().await;
        let wal = self
            .inner
            .wal
            .lock()
            .map_err(|_| StoreError::Internal("log handle poisoned".into()))?
            .take();
        drop(wal);
        // Only once the log is closed: another process may then open the store.
        if let Ok(mut lock) = self.inner.lock.lock() {
            lock.take();
        }
        flushed.map(|_| ())
    }
}
