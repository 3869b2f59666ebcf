//! The write-ahead log: CRC-framed records in numbered segment files, written by one thread that
//! commits groups of records with one `fdatasync`.
//!
//! A record is acknowledged only after its group is on disk. The writer also runs the caller's
//! `on_durable` hook (which puts the rows into the hot tail) before it acknowledges, so by the time
//! [`Wal::rotate`] returns segment `n`, every record of segments `..=n` is in the hot tail: a flush
//! that folds them into Parquet can then delete those segments without losing a straggler.
//!
//! Frame: `len: u32 LE | crc32(payload): u32 LE | payload`. Payload: `header_len: u32 LE | header
//! (JSON) | Arrow IPC streams, one per table`. A torn tail (crash mid-write) fails its length or
//! CRC check; recovery keeps every whole frame before it and truncates the rest.

use crate::store::StoreError;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use rampart_core::schema::{self, Table};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Largest frame accepted on recovery; anything bigger is a corrupt length.
const MAX_FRAME: usize = 1 << 30;
/// Most bytes committed in one group.
const MAX_GROUP_BYTES: usize = 64 << 20;

/// One acknowledged batch of rows.
#[derive(Debug)]
pub struct WalRecord {
    pub tenant: String,
    pub batch_id: String,
    pub tables: Vec<(&'static Table, RecordBatch)>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    tenant: String,
    batch_id: String,
    /// Table name and byte length of its IPC stream, in payload order.
    tables: Vec<(String, u64)>,
}

/// Encodes a record as a frame payload.
pub fn encode(rec: &WalRecord) -> Result<Vec<u8>, StoreError> {
    let mut streams = Vec::with_capacity(rec.tables.len());
    for (table, batch) in &rec.tables {
        let mut buf = Vec::new();
        let mut w = StreamWriter::try_new(&mut buf, &batch.schema())
            .map_err(|e| StoreError::internal("encoding a WAL record", e))?;
        w.write(batch)
            .map_err(|e| StoreError::internal("encoding a WAL record", e))?;
        w.finish()
            .map_err(|e| StoreError::internal("encoding a WAL record", e))?;
        drop(w);
        streams.push((table.name.to_owned(), buf));
    }
    let header = Header {
        tenant: rec.tenant.clone(),
        batch_id: rec.batch_id.clone(),
        tables: streams
            .iter()
            .map(|(n, b)| (n.clone(), b.len() as u64))
            .collect(),
    };
    let header = serde_json::to_vec(&header)
        .map_err(|e| StoreError::internal("encoding a WAL header", e))?;
    let mut out =
        Vec::with_capacity(4 + header.len() + streams.iter().map(|s| s.1.len()).sum::<usize>());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for (_, s) in streams {
        out.extend_from_slice(&s);
    }
    Ok(out)
}

/// Decodes a frame payload.
pub fn decode(payload: &[u8]) -> Result<WalRecord, String> {
    let len = u32::from_le_bytes(
        payload
            .get(..4)
            .ok_or("short payload")?
            .try_into()
            .map_err(|_| "short payload")?,
    ) as usize;
    let header: Header = serde_json::from_slice(payload.get(4..4 + len).ok_or("short header")?)
        .map_err(|e| format!("bad header: {e}"))?;
    let mut at = 4 + len;
    let mut tables = Vec::with_capacity(header.tables.len());
    for (name, size) in header.tables {
        let table = schema::table(&name).ok_or_else(|| format!("unknown table {name}"))?;
        let bytes = payload
            .get(at..at + size as usize)
            .ok_or("short table stream")?;
        at += size as usize;
        let reader = StreamReader::try_new(bytes, None).map_err(|e| format!("{name}: {e}"))?;
        for batch in reader {
            tables.push((table, batch.map_err(|e| format!("{name}: {e}"))?));
        }
    }
    Ok(WalRecord {
        tenant: header.tenant,
        batch_id: header.batch_id,
        tables,
    })
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// Segment ids present in `dir`, ascending.
pub fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// The outcome of reading one segment.
pub struct SegmentRead {
    pub records: Vec<WalRecord>,
    /// Bytes dropped after the last whole frame (a torn tail).
    pub dropped_bytes: u64,
}

/// Reads every whole frame of a segment and truncates what follows the last one.
pub fn recover_segment(dir: &Path, id: u64) -> std::io::Result<SegmentRead> {
    let path = segment_path(dir, id);
    let mut data = Vec::new();
    File::open(&path)?.read_to_end(&mut data)?;
    let mut at = 0usize;
    let mut records = Vec::new();
    while let Some(head) = data.get(at..at + 8) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_FRAME {
            break;
        }
        let Some(payload) = data.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        match decode(payload) {
            Ok(r) => records.push(r),
            Err(e) => {
                tracing::error!(segment = id, offset = at, "undecodable WAL record: {e}");
                break;
            }
        }
        at += 8 + len;
    }
    let dropped = (data.len() - at) as u64;
    if dropped > 0 {
        OpenOptions::new()
            .write(true)
            .open(&path)?
            .set_len(at as u64)?;
    }
    Ok(SegmentRead {
        records,
        dropped_bytes: dropped,
    })
}

pub fn remove_segments_through(dir: &Path, last: u64) -> std::io::Result<()> {
    for id in segments(dir)? {
        if id <= last {
            fs::remove_file(segment_path(dir, id))?;
        }
    }
    Ok(())
}

type Hook = Box<dyn FnOnce(u64) + Send>;
/// An append waiting for its group commit: payload, hook, and where to send the outcome.
type Pending = (Vec<u8>, Hook, oneshot::Sender<Result<u64, String>>);

enum Request {
    Append {
        payload: Vec<u8>,
        on_durable: Hook,
        reply: oneshot::Sender<Result<u64, String>>,
    },
    Rotate {
        reply: oneshot::Sender<Result<u64, String>>,
    },
}

/// The handle to the writer thread.
pub struct Wal {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Wal {
    /// Starts writing segment `first` (a new file) in `dir`.
    pub fn start(dir: &Path, first: u64) -> std::io::Result<Wal> {
        let writer = Writer::open(dir.to_owned(), first)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rampart-wal".into())
            .spawn(move || writer.run(rx))?;
        Ok(Wal {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Appends a payload; `on_durable(segment)` runs once it is on disk, before this returns.
    pub async fn append(&self, payload: Vec<u8>, on_durable: Hook) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Append {
            payload,
            on_durable,
            reply,
        })?;
        Self::answer(rx).await
    }

    /// Closes the current segment and starts the next; returns the closed segment's id.
    pub async fn rotate(&self) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Rotate { reply })?;
        Self::answer(rx).await
    }

    fn send(&self, r: Request) -> Result<(), StoreError> {
        self.tx
            .as_ref()
            .and_then(|tx| tx.send(r).ok())
            .ok_or_else(|| {
                StoreError::unavailable("the event store is shutting down", Duration::from_secs(5))
            })
    }

    async fn answer(rx: oneshot::Receiver<Result<u64, String>>) -> Result<u64, StoreError> {
        match rx.await {
            Ok(Ok(seg)) => Ok(seg),
            Ok(Err(e)) => Err(StoreError::unavailable(
                format!("writing the log: {e}"),
                Duration::from_secs(5),
            )),
            Err(_) => Err(StoreError::unavailable(
                "the log writer stopped",
                Duration::from_secs(5),
            )),
        }
    }

    /// Stops the writer after the requests already sent.
    pub fn stop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Writer {
    dir: PathBuf,
    id: u64,
    file: File,
    /// Length of the segment up to the last committed frame.
    good_len: u64,
}

impl Writer {
    fn open(dir: PathBuf, id: u64) -> std::io::Result<Writer> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(segment_path(&dir, id))?;
        // The new file's directory entry must be durable too, or a crash could lose the segment.
        File::open(&dir)?.sync_all()?;
        Ok(Writer {
            dir,
            id,
            file,
            good_len: 0,
        })
    }

    fn run(mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            let mut bytes = 0;
            while bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        if let Request::Append { payload, .. } = &r {
                            bytes += payload.len();
                        }
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            let mut appends = Vec::new();
            for r in group {
                match r {
                    Request::Append {
                        payload,
                        on_durable,
                        reply,
                    } => appends.push((payload, on_durable, reply)),
                    Request::Rotate { reply } => {
                        self.commit(std::mem::take(&mut appends));
                        let _ = reply.send(self.rotate().map_err(|e| e.to_string()));
                    }
                }
            }
            self.commit(appends);
        }
        let _ = self.file.sync_data();
    }

    fn commit(&mut self, appends: Vec<Pending>) {
        if appends.is_empty() {
            return;
        }
        let mut buf = Vec::with_capacity(appends.iter().map(|a| a.0.len() + 8).sum());
        for (payload, _, _) in &appends {
            buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            buf.extend_from_slice(payload);
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.good_len += buf.len() as u64;
                for (_, on_durable, reply) in appends {
                    on_durable(self.id);
                    let _ = reply.send(Ok(self.id));
                }
            }
            Err(e) => {
                // Cut the partial group off so the next commit starts at a frame boundary.
                if let Err(t) = self
                    .file
                    .set_len(self.good_len)
                    .and_then(|()| self.file.seek(SeekFrom::Start(self.good_len)).map(|_| ()))
                {
                    tracing::error!("truncating the log after a failed write: {t}");
                }
                tracing::warn!("log write failed: {e}");
                for (_, _, reply) in appends {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }

    fn rotate(&mut self) -> std::io::Result<u64> {
        self.file.sync_data()?;
        let closed = self.id;
        let next = Writer::open(self.dir.clone(), closed + 1)?;
        *self = next;
        Ok(closed)
    }
}
