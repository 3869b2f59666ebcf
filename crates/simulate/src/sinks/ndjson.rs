//! MDE streaming-API records, one file per table: each line is
//! `{"time","tenantId","operationName","category":"AdvancedHunting-<Table>","properties":{row}}`,
//! exactly what Defender's raw-data export writes, so `rampart ingest` routes lines by category.
//!
//! A record is about 1.7 KB of text, so formatting is most of the work and runs on every core:
//! the caller's thread only copies each row into a compact per-table [`Chunk`]; formatter
//! threads turn full chunks into text; one writer thread puts each table's text back in order
//! and writes it. Chunks and text buffers go back to be reused. The text depends only on the
//! rows, so the files are the same from run to run.

use super::{LabelsFile, json, table_slot};
use crate::{Cell, Label, Sink, Table};
use rampart_core::schema;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Tenant id written in the envelope unless [`NdjsonSink::with_tenant`] sets another.
pub const DEFAULT_TENANT: &str = "00000000-0000-4000-8000-5e1f0000a11a";

/// How long after the event the service "received" it (the envelope's `time`).
const RECEIVE_DELAY_NS: i64 = 1_700_000_000;

/// Rows per chunk (about 1.7 MB of text).
const CHUNK_ROWS: usize = 1_024;
/// Chunks queued for the formatters, and texts for the writer (bounds memory: fresh memory is
/// costly, every new page is zeroed).
const QUEUE: usize = 2;

/// A cell whose text lives in its chunk's `text`.
#[derive(Clone, Copy)]
enum Owned {
    Bool(bool),
    Int(i32),
    Long(i64),
    Real(f64),
    Str(u32, u32),
    Time(i64),
}

/// Rows of one table, copied out of the generator's borrowed cells (nulls left out).
#[derive(Default)]
struct Chunk {
    cells: Vec<(u16, Owned)>,
    /// End (exclusive) of each row in `cells`.
    ends: Vec<u32>,
    text: String,
}

impl Chunk {
    fn push(&mut self, cells: &[(usize, Cell<'_>)]) {
        for &(i, c) in cells {
            let o = match c {
                Cell::Null => continue,
                Cell::Bool(b) => Owned::Bool(b),
                Cell::Int(x) => Owned::Int(x),
                Cell::Long(x) => Owned::Long(x),
                Cell::Real(x) => Owned::Real(x),
                Cell::Time(x) => Owned::Time(x),
                Cell::Str(s) => {
                    let start = self.text.len() as u32;
                    self.text.push_str(s);
                    Owned::Str(start, self.text.len() as u32)
                }
            };
            self.cells.push((i as u16, o));
        }
        self.ends.push(self.cells.len() as u32);
    }

    fn rows(&self) -> usize {
        self.ends.len()
    }

    fn clear(&mut self) {
        self.cells.clear();
        self.ends.clear();
        self.text.clear();
    }

    fn cell(&self, o: Owned) -> Cell<'_> {
        match o {
            Owned::Bool(b) => Cell::Bool(b),
            Owned::Int(x) => Cell::Int(x),
            Owned::Long(x) => Cell::Long(x),
            Owned::Real(x) => Cell::Real(x),
            Owned::Time(x) => Cell::Time(x),
            Owned::Str(a, z) => Cell::Str(&self.text[a as usize..z as usize]),
        }
    }
}

/// Fixed text of one table's records.
struct Shape {
    /// `,"tenantId":…,"properties":{` after the envelope's time.
    envelope: Vec<u8>,
    /// `"Column":` per column.
    keys: Vec<Vec<u8>>,
}

fn shapes(tenant: &str) -> Vec<Shape> {
    schema::ALL
        .iter()
        .map(|table| {
            let mut envelope = b",\"tenantId\":".to_vec();
            json::push_str(&mut envelope, tenant);
            envelope.extend_from_slice(
                b",\"operationName\":\"Publish\",\"category\":\"AdvancedHunting-",
            );
            envelope.extend_from_slice(table.name.as_bytes());
            envelope.extend_from_slice(b"\",\"properties\":{");
            let keys = table
                .columns
                .iter()
                .map(|c| {
                    let mut k = Vec::with_capacity(c.name.len() + 3);
                    k.push(b'"');
                    k.extend_from_slice(c.name.as_bytes());
                    k.extend_from_slice(b"\":");
                    k
                })
                .collect();
            Shape { envelope, keys }
        })
        .collect()
}

/// Appends a chunk's records to `out`.
fn format(chunk: &Chunk, shape: &Shape, out: &mut Vec<u8>, clock: &mut json::Clock) {
    let mut start = 0usize;
    for &end in &chunk.ends {
        let row = &chunk.cells[start..end as usize];
        start = end as usize;
        let ts = row.iter().find_map(|&(i, c)| match c {
            Owned::Time(t) if i == 0 => Some(t),
            _ => None,
        });
        out.extend_from_slice(b"{\"time\":");
        clock.push(out, ts.unwrap_or(0) + RECEIVE_DELAY_NS);
        out.extend_from_slice(&shape.envelope);
        let mut first = true;
        for &(i, o) in row {
            let Some(key) = shape.keys.get(usize::from(i)) else {
                continue;
            };
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(key);
            json::push_cell(out, &chunk.cell(o), clock);
        }
        out.extend_from_slice(b"}}\n");
    }
}

/// A chunk of table `slot`, the `seq`th of that table.
type Job = (usize, u64, Chunk);
/// A table's `seq`th text.
type Text = (usize, u64, Vec<u8>);

/// The running threads.
struct Pipeline {
    jobs: SyncSender<Job>,
    /// Emptied chunks coming back.
    chunks: Receiver<Chunk>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

pub struct NdjsonSink {
    dir: PathBuf,
    tenant: String,
    chunks: Vec<Chunk>,
    seqs: Vec<u64>,
    spare: Vec<Chunk>,
    pipeline: Option<Pipeline>,
    finished: bool,
    labels: LabelsFile,
}

impl NdjsonSink {
    /// Creates `dir` (if needed) and `labels.jsonl` in it; table files appear with their first row.
    pub fn create(dir: impl AsRef<Path>) -> io::Result<NdjsonSink> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let tables = schema::ALL.len();
        Ok(NdjsonSink {
            labels: LabelsFile::create(&dir)?,
            chunks: (0..tables).map(|_| Chunk::default()).collect(),
            seqs: vec![0; tables],
            spare: Vec::new(),
            dir,
            tenant: DEFAULT_TENANT.to_owned(),
            pipeline: None,
            finished: false,
        })
    }

    pub fn with_tenant(mut self, tenant: &str) -> NdjsonSink {
        self.tenant = tenant.to_owned();
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a table's records go to.
    pub fn path_of(dir: &Path, table: &Table) -> PathBuf {
        dir.join(format!("{}.ndjson", table.name))
    }

    /// Starts the formatters and the writer (on the first row, once the tenant is known).
    fn start(&self) -> io::Result<Pipeline> {
        let shapes = Arc::new(shapes(&self.tenant));
        let (jobs, job_rx) = sync_channel::<Job>(QUEUE);
        let (text_tx, text_rx) = sync_channel::<Text>(QUEUE);
        let (chunk_tx, chunks) = channel::<Chunk>();
        let (buf_tx, buf_rx) = channel::<Vec<u8>>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let buf_rx = Arc::new(Mutex::new(buf_rx));
        let formatters = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(2, 8);
        let mut threads = Vec::new();
        for k in 0..formatters {
            let (jobs, bufs) = (Arc::clone(&job_rx), Arc::clone(&buf_rx));
            let (texts, chunks, shapes) = (text_tx.clone(), chunk_tx.clone(), Arc::clone(&shapes));
            threads.push(
                std::thread::Builder::new()
                    .name(format!("ndjson-format-{k}"))
                    .spawn(move || format_chunks(&jobs, &bufs, &texts, &chunks, &shapes))?,
            );
        }
        drop(text_tx);
        let dir = self.dir.clone();
        threads.push(
            std::thread::Builder::new()
                .name("ndjson-write".into())
                .spawn(move || write_files(&dir, text_rx, &buf_tx))?,
        );
        Ok(Pipeline {
            jobs,
            chunks,
            threads,
        })
    }

    fn send(&mut self, slot: usize) -> io::Result<()> {
        // The emptied chunk of an earlier send takes this one's place.
        if let Some(p) = &self.pipeline {
            self.spare.extend(p.chunks.try_iter());
        }
        let next = self.spare.pop().unwrap_or_default();
        let chunk = std::mem::replace(&mut self.chunks[slot], next);
        let seq = self.seqs[slot];
        self.seqs[slot] += 1;
        if self.pipeline.is_none() {
            if self.finished {
                // A new pipeline would create the files anew.
                return Err(io::Error::other("ndjson sink already finished"));
            }
            self.pipeline = Some(self.start()?);
        }
        if let Some(p) = &self.pipeline
            && p.jobs.send((slot, seq, chunk)).is_ok()
        {
            return Ok(());
        }
        // A stage stopped: its error explains why.
        Err(self
            .stop()
            .err()
            .unwrap_or_else(|| io::Error::other("ndjson pipeline stopped")))
    }

    /// Closes the pipeline and waits for it, returning the first error of any stage.
    fn stop(&mut self) -> io::Result<()> {
        let Some(p) = self.pipeline.take() else {
            return Ok(());
        };
        drop(p.jobs);
        let mut result = Ok(());
        for t in p.threads {
            let r = t
                .join()
                .map_err(|_| io::Error::other("an ndjson thread panicked"))
                .and_then(|r| r);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

impl Sink for NdjsonSink {
    fn row(
        &mut self,
        _device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> io::Result<()> {
        let slot = table_slot(table);
        let chunk = &mut self.chunks[slot];
        chunk.push(cells);
        if chunk.rows() >= CHUNK_ROWS {
            self.send(slot)?;
        }
        Ok(())
    }

    fn label(&mut self, l: &Label) -> io::Result<()> {
        self.labels.write(l)
    }

    fn finish(&mut self) -> io::Result<()> {
        for slot in 0..self.chunks.len() {
            if self.chunks[slot].rows() > 0 {
                self.send(slot)?;
            }
        }
        self.finished = true;
        self.stop()?;
        self.labels.flush()
    }
}

impl Drop for NdjsonSink {
    fn drop(&mut self) {
        // Without `finish` the files are incomplete; still stop the threads.
        let _ = self.stop();
    }
}

fn format_chunks(
    jobs: &Mutex<Receiver<Job>>,
    bufs: &Mutex<Receiver<Vec<u8>>>,
    texts: &SyncSender<Text>,
    chunks: &Sender<Chunk>,
    shapes: &[Shape],
) -> io::Result<()> {
    let mut clock = json::Clock::default();
    loop {
        // Hold the lock only to take the next job, not while formatting.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return Err(io::Error::other("ndjson job queue poisoned")),
        };
        let Ok((slot, seq, mut chunk)) = job else {
            return Ok(());
        };
        let mut out = bufs
            .lock()
            .ok()
            .and_then(|rx| rx.try_recv().ok())
            .unwrap_or_default();
        out.clear();
        out.reserve(chunk.text.len() * 2 + chunk.cells.len() * 24);
        format(&chunk, &shapes[slot], &mut out, &mut clock);
        chunk.clear();
        let _ = chunks.send(chunk);
        if texts.send((slot, seq, out)).is_err() {
            return Ok(()); // the writer stopped; it reports why
        }
    }
}

/// Writes each table's texts in sequence order (formatters may finish out of order).
fn write_files(dir: &Path, texts: Receiver<Text>, bufs: &Sender<Vec<u8>>) -> io::Result<()> {
    let tables = schema::ALL.len();
    let mut files: Vec<Option<File>> = (0..tables).map(|_| None).collect();
    let mut next_seq = vec![0u64; tables];
    let mut waiting: Vec<BTreeMap<u64, Vec<u8>>> = (0..tables).map(|_| BTreeMap::new()).collect();
    for (slot, seq, text) in texts {
        waiting[slot].insert(seq, text);
        while let Some(text) = waiting[slot].remove(&next_seq[slot]) {
            next_seq[slot] += 1;
            let file = match &mut files[slot] {
                Some(f) => f,
                none => none.insert(File::create(NdjsonSink::path_of(dir, schema::ALL[slot]))?),
            };
            file.write_all(&text)?;
            let _ = bufs.send(text);
        }
    }
    Ok(())
}
