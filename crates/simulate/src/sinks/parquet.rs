//! Parquet files per table, `<dir>/<Table>/part-00000.parquet`, `part-00001…` once a file holds
//! [`ROWS_PER_FILE`] rows. Rows arrive in time order, so every file is sorted by `Timestamp` and
//! says so in its metadata.
//!
//! Turning rows into Arrow arrays costs several times more than generating them, so the work is
//! a pipeline: the caller's thread only copies each row into a compact per-table [`Chunk`]; full
//! chunks go to [`BUILDERS`] threads that push them through `TableBatchBuilder`; one writer
//! thread puts the batches back in order and encodes them with zstd. Chunk boundaries depend only
//! on the rows, so the files are the same from run to run.

use super::{LabelsFile, table_slot};
use crate::{Cell, Label, Sink, Table};
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::WriterProperties;
use rampart_core::schema;
use rampart_telemetry::{TableBatchBuilder, arrow_schema};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Rows per chunk (and so per Arrow batch).
const CHUNK_ROWS: usize = 16_384;
/// Rows per Parquet file before a new part starts.
pub const ROWS_PER_FILE: usize = 4_000_000;
/// Rows per row group.
const ROW_GROUP_ROWS: usize = 1_048_576;
/// Threads turning chunks into Arrow batches.
const BUILDERS: usize = 2;
/// Chunks and batches in flight between the stages (bounds memory).
const QUEUE: usize = 4;

/// A cell whose text lives in its chunk's `text`.
#[derive(Clone, Copy)]
enum Owned {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Real(f64),
    Str(u32, u32),
    Time(i64),
}

/// Rows of one table, copied out of the generator's borrowed cells.
#[derive(Default)]
struct Chunk {
    cells: Vec<(u16, Owned)>,
    /// End (exclusive) of each row in `cells`.
    ends: Vec<u32>,
    text: String,
}

impl Chunk {
    fn push(&mut self, cells: &[(usize, Cell<'_>)]) {
        for (i, c) in cells {
            let o = match *c {
                Cell::Null => Owned::Null,
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
            self.cells.push((*i as u16, o));
        }
        self.ends.push(self.cells.len() as u32);
    }

    fn rows(&self) -> usize {
        self.ends.len()
    }

    /// The rows as a batch of `table`.
    fn build(&self, table: &'static Table) -> Result<RecordBatch, rampart_telemetry::RowRejection> {
        let mut b = TableBatchBuilder::with_capacity(table, self.rows());
        let mut row: Vec<(usize, Cell<'_>)> = Vec::with_capacity(128);
        let mut start = 0usize;
        for &end in &self.ends {
            row.clear();
            row.extend(self.cells[start..end as usize].iter().map(|&(i, o)| {
                let c = match o {
                    Owned::Null => Cell::Null,
                    Owned::Bool(b) => Cell::Bool(b),
                    Owned::Int(x) => Cell::Int(x),
                    Owned::Long(x) => Cell::Long(x),
                    Owned::Real(x) => Cell::Real(x),
                    Owned::Time(x) => Cell::Time(x),
                    Owned::Str(a, z) => Cell::Str(&self.text[a as usize..z as usize]),
                };
                (usize::from(i), c)
            }));
            b.push_cells(&row)?;
            start = end as usize;
        }
        Ok(b.finish())
    }
}

/// A chunk of table `slot`, the `seq`th of that table.
type Job = (usize, u64, Chunk);
/// A batch of table `slot`, the `seq`th of that table.
type Built = (usize, u64, RecordBatch);

pub struct ParquetSink {
    dir: PathBuf,
    chunks: Vec<Chunk>,
    seqs: Vec<u64>,
    jobs: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    labels: LabelsFile,
}

impl ParquetSink {
    /// Creates `dir` (if needed) and `labels.jsonl`; table folders appear with their first rows.
    pub fn create(dir: impl AsRef<Path>) -> io::Result<ParquetSink> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let labels = LabelsFile::create(&dir)?;
        let (jobs, job_rx) = sync_channel::<Job>(QUEUE);
        let (built_tx, built_rx) = sync_channel::<Built>(QUEUE);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut threads = Vec::new();
        for k in 0..BUILDERS {
            let (rx, tx) = (Arc::clone(&job_rx), built_tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("parquet-build-{k}"))
                    .spawn(move || build_chunks(&rx, &tx))?,
            );
        }
        drop(built_tx);
        let root = dir.clone();
        threads.push(
            std::thread::Builder::new()
                .name("parquet-write".into())
                .spawn(move || write_files(&root, built_rx))?,
        );
        let tables = schema::ALL.len();
        Ok(ParquetSink {
            dir,
            chunks: (0..tables).map(|_| Chunk::default()).collect(),
            seqs: vec![0; tables],
            jobs: Some(jobs),
            threads,
            labels,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of part `part` of a table.
    pub fn path_of(dir: &Path, table: &Table, part: usize) -> PathBuf {
        dir.join(table.name).join(format!("part-{part:05}.parquet"))
    }

    fn send(&mut self, slot: usize) -> io::Result<()> {
        let chunk = std::mem::take(&mut self.chunks[slot]);
        let seq = self.seqs[slot];
        self.seqs[slot] += 1;
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|j| j.send((slot, seq, chunk)).is_ok());
        if sent {
            return Ok(());
        }
        // A stage stopped: its error explains why.
        Err(self
            .stop()
            .err()
            .unwrap_or_else(|| io::Error::other("parquet pipeline stopped")))
    }

    /// Closes the pipeline and waits for it, returning the first error of any stage.
    fn stop(&mut self) -> io::Result<()> {
        self.jobs = None;
        let mut result = Ok(());
        for t in self.threads.drain(..) {
            let r = t
                .join()
                .map_err(|_| io::Error::other("a parquet thread panicked"))
                .and_then(|r| r);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

impl Sink for ParquetSink {
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
        self.stop()?;
        self.labels.flush()
    }
}

impl Drop for ParquetSink {
    fn drop(&mut self) {
        // Without `finish` the files are incomplete; still stop the threads.
        let _ = self.stop();
    }
}

fn build_chunks(jobs: &Mutex<Receiver<Job>>, built: &SyncSender<Built>) -> io::Result<()> {
    loop {
        // Hold the lock only to take the next job, not while building.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return Err(io::Error::other("parquet job queue poisoned")),
        };
        let Ok((slot, seq, chunk)) = job else {
            return Ok(());
        };
        let batch = chunk
            .build(schema::ALL[slot])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if built.send((slot, seq, batch)).is_err() {
            return Ok(()); // the writer stopped; it reports why
        }
    }
}

/// One open part file of a table.
struct Part {
    writer: ArrowWriter<File>,
    rows: usize,
}

fn properties() -> io::Result<WriterProperties> {
    let level = ZstdLevel::try_new(1).map_err(io::Error::other)?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .build())
}

/// Writes batches in each table's sequence order (builders may finish out of order).
fn write_files(dir: &Path, built: Receiver<Built>) -> io::Result<()> {
    let props = properties()?;
    let tables = schema::ALL.len();
    let mut parts: Vec<Option<Part>> = (0..tables).map(|_| None).collect();
    let mut next_part = vec![0usize; tables];
    let mut next_seq = vec![0u64; tables];
    let mut waiting: Vec<BTreeMap<u64, RecordBatch>> =
        (0..tables).map(|_| BTreeMap::new()).collect();
    for (slot, seq, batch) in built {
        waiting[slot].insert(seq, batch);
        while let Some(batch) = waiting[slot].remove(&next_seq[slot]) {
            next_seq[slot] += 1;
            write_batch(
                dir,
                &props,
                slot,
                &mut parts[slot],
                &mut next_part[slot],
                &batch,
            )?;
        }
    }
    for p in parts.into_iter().flatten() {
        p.writer.close().map_err(io::Error::other)?;
    }
    Ok(())
}

fn write_batch(
    dir: &Path,
    props: &WriterProperties,
    slot: usize,
    part: &mut Option<Part>,
    next_part: &mut usize,
    batch: &RecordBatch,
) -> io::Result<()> {
    let table = schema::ALL[slot];
    if part.as_ref().is_some_and(|p| p.rows >= ROWS_PER_FILE)
        && let Some(p) = part.take()
    {
        p.writer.close().map_err(io::Error::other)?;
    }
    let p = match part {
        Some(p) => p,
        none => {
            let path = ParquetSink::path_of(dir, table, *next_part);
            *next_part += 1;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let writer = ArrowWriter::try_new(
                File::create(&path)?,
                arrow_schema(table),
                Some(props.clone()),
            )
            .map_err(io::Error::other)?;
            none.insert(Part { writer, rows: 0 })
        }
    };
    p.writer.write(batch).map_err(io::Error::other)?;
    p.rows += batch.num_rows();
    Ok(())
}
