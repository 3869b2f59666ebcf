//! Parquet files per table, `<dir>/<Table>/part-00000.parquet`, `part-00001…` once a file holds
//! [`ROWS_PER_FILE`] rows. Rows arrive in time order, so every file is sorted by `Timestamp` and
//! says so in its metadata.
//!
//! The work is a pipeline over all cores:
//! - the caller's thread generates rows and appends each straight into its table's Arrow
//!   column buffers ([`Columns`]); every [`CHUNK_ROWS`] rows of a table become a batch;
//! - [`encoders`] threads encode the batch's columns in parallel, each owning a fixed share of
//!   every table's columns (one Parquet column writer per column and row group), so one large
//!   table (network events are most rows) still spreads over every core;
//! - one file thread appends each finished row group's column chunks to the table's file.
//!
//! Emptied batches go back to the caller, whose builders reuse their buffers. Batch and row-group
//! boundaries depend only on the rows, and each column writer sees its column's values in order,
//! so the files are byte-identical from run to run whichever thread encoded what.
//!
//! Encoding is chosen per column for speed at a small size: statistics only for `Timestamp`
//! (the one column readers prune on; other columns span the whole fleet in every row group),
//! `Timestamp` delta-encoded, dictionaries for the repetitive columns but not for the nearly
//! unique ones (ReportId, local ports, remote addresses), whose interning would cost more than zstd.

use super::columns::Columns;
use super::{LabelsFile, table_slot};
use crate::{Cell, Label, Sink, Table};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::writer::SerializedFileWriter;
use datafusion::parquet::schema::types::ColumnPath;
use rampart_core::schema::{self, KqlType};
use rampart_telemetry::arrow_schema;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

/// Rows per batch handed to the encoders (divides [`ROW_GROUP_ROWS`]). Small, so that the
/// batches in flight take a few tens of MB: fresh memory is costly (every new page is zeroed),
/// and smaller batches cost no more to encode.
const CHUNK_ROWS: usize = 4_096;
/// Rows per row group (as DuckDB's 122,880): finer time pruning than 1M-row groups, smaller
/// files (dictionaries fit their rows better), and each group's encoder state is freed sooner.
const ROW_GROUP_ROWS: usize = 131_072;
/// Rows per Parquet file before a new part starts (whole row groups).
pub const ROWS_PER_FILE: usize = 32 * ROW_GROUP_ROWS;
/// Batches queued per encoder (bounds memory).
const QUEUE: usize = 2;

/// Columns that are nearly unique per row: plain-encoded, as a dictionary would only grow
/// until Parquet gives up on it (after interning every value).
const NO_DICTIONARY: &[&str] = &["ReportId", "RemoteIP", "LocalPort", "RequestSourcePort"];

/// Encoder threads: one per core, at least two so encoding overlaps generation.
fn encoders() -> usize {
    std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(2, 8)
}

/// One batch for the encoders.
struct Job {
    slot: usize,
    batch: RecordBatch,
    /// Closes the table's row group after this batch (it is full, or the table's last).
    close: bool,
    /// The encoder owning each column of the table.
    owner: Arc<[u8]>,
}

/// A row group's column chunks from one encoder: `(column index, chunk)`.
struct Done {
    slot: usize,
    row_group: usize,
    chunks: Vec<(usize, ArrowColumnChunk)>,
}

/// Batch, row-group and file sizes in rows (a row group ends after the batch that fills it, a
/// file after the row group that fills it).
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub batch_rows: usize,
    pub group_rows: usize,
    pub file_rows: usize,
}

pub struct ParquetSink {
    dir: PathBuf,
    layout: Layout,
    tables: Vec<Option<Columns>>,
    /// Rows in each table's open row group (sent to the encoders).
    group_rows: Vec<usize>,
    owners: Vec<Option<Arc<[u8]>>>,
    /// Encoded batches whose buffers the builders can reuse, per table.
    spare: Vec<Vec<RecordBatch>>,
    jobs: Vec<SyncSender<Arc<Job>>>,
    recycled: Receiver<(usize, RecordBatch)>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    labels: LabelsFile,
}

impl ParquetSink {
    /// Creates `dir` (if needed) and `labels.jsonl`; table folders appear with their first rows.
    pub fn create(dir: impl AsRef<Path>) -> io::Result<ParquetSink> {
        Self::with_layout(
            dir,
            Layout {
                batch_rows: CHUNK_ROWS,
                group_rows: ROW_GROUP_ROWS,
                file_rows: ROWS_PER_FILE,
            },
        )
    }

    /// [`ParquetSink::create`] with other batch, row-group and file sizes (tests use tiny ones to
    /// cross every boundary with few rows).
    #[doc(hidden)]
    pub fn with_layout(dir: impl AsRef<Path>, layout: Layout) -> io::Result<ParquetSink> {
        let layout = Layout {
            batch_rows: layout.batch_rows.max(1),
            group_rows: layout.group_rows.max(1),
            file_rows: layout.file_rows.max(1),
        };
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let labels = LabelsFile::create(&dir)?;
        let (done_tx, done_rx) = channel::<Done>();
        let (recycle_tx, recycled) = channel();
        let mut threads = Vec::new();
        let mut jobs = Vec::new();
        for k in 0..encoders() {
            let (tx, rx) = sync_channel::<Arc<Job>>(QUEUE);
            let (done, recycle) = (done_tx.clone(), recycle_tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("parquet-encode-{k}"))
                    .spawn(move || encode(k, &rx, &done, &recycle))?,
            );
            jobs.push(tx);
        }
        drop(done_tx);
        let root = dir.clone();
        threads.push(
            std::thread::Builder::new()
                .name("parquet-write".into())
                .spawn(move || write_files(&root, layout.file_rows, done_rx))?,
        );
        let tables = schema::ALL.len();
        Ok(ParquetSink {
            dir,
            layout,
            tables: (0..tables).map(|_| None).collect(),
            group_rows: vec![0; tables],
            owners: vec![None; tables],
            spare: (0..tables).map(|_| Vec::new()).collect(),
            jobs,
            recycled,
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

    /// Sends table `slot`'s rows to the encoders; `last` closes its row group whatever its size.
    fn send(&mut self, slot: usize, last: bool) -> io::Result<()> {
        let Some(cols) = self.tables[slot].as_mut() else {
            return Ok(());
        };
        if self.jobs.is_empty() && cols.rows() > 0 {
            return Err(io::Error::other("parquet sink already finished"));
        }
        if cols.rows() == 0 && (!last || self.group_rows[slot] == 0) {
            return Ok(());
        }
        let batch = cols.finish();
        self.group_rows[slot] += batch.num_rows();
        let close = last || self.group_rows[slot] >= self.layout.group_rows;
        if close {
            self.group_rows[slot] = 0;
        }
        let owner = self.owners[slot]
            .get_or_insert_with(|| assign(&batch, self.jobs.len()))
            .clone();
        let job = Arc::new(Job {
            slot,
            batch,
            close,
            owner,
        });
        for tx in &self.jobs {
            if tx.send(Arc::clone(&job)).is_err() {
                // A stage stopped: its error explains why.
                return Err(self
                    .stop()
                    .err()
                    .unwrap_or_else(|| io::Error::other("parquet pipeline stopped")));
            }
        }
        drop(job);
        // Give the builder the buffers of an encoded batch of its table.
        while let Ok((s, b)) = self.recycled.try_recv() {
            self.spare[s].push(b);
        }
        let spare = self.spare[slot].pop();
        if let Some(cols) = self.tables[slot].as_mut() {
            cols.recycle(spare);
        }
        Ok(())
    }

    /// Closes the pipeline and waits for it, returning the first error of any stage.
    fn stop(&mut self) -> io::Result<()> {
        self.jobs.clear();
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
        let batch_rows = self.layout.batch_rows;
        let cols = self.tables[slot].get_or_insert_with(|| Columns::new(table, batch_rows));
        cols.push(cells)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if cols.rows() >= batch_rows {
            self.send(slot, false)?;
        }
        Ok(())
    }

    fn label(&mut self, l: &Label) -> io::Result<()> {
        self.labels.write(l)
    }

    fn finish(&mut self) -> io::Result<()> {
        for slot in 0..self.tables.len() {
            self.send(slot, true)?;
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

/// Shares a table's columns among `n` encoders by an estimate of their cost in `batch`
/// (largest first, each to the least loaded encoder).
fn assign(batch: &RecordBatch, n: usize) -> Arc<[u8]> {
    let table = batch.schema();
    let mut cost: Vec<(u64, usize)> = batch
        .columns()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let values = (a.len() - a.null_count()) as u64;
            let field = table.field(i);
            let per_value = match field.data_type() {
                datafusion::arrow::datatypes::DataType::Utf8 => {
                    let bytes = a.get_buffer_memory_size() as u64 / (a.len() as u64).max(1);
                    if NO_DICTIONARY.contains(&field.name().as_str()) {
                        4 + bytes / 4
                    } else {
                        12 + bytes / 8
                    }
                }
                _ if NO_DICTIONARY.contains(&field.name().as_str()) => 2,
                _ => 6,
            };
            (1 + values * per_value, i)
        })
        .collect();
    cost.sort_by(|a, b| b.cmp(a));
    let mut load = vec![0u64; n];
    let mut owner = vec![0u8; cost.len()];
    for (c, i) in cost {
        let k = (0..n).min_by_key(|&k| load[k]).unwrap_or(0);
        load[k] += c;
        owner[i] = k as u8;
    }
    owner.into()
}

/// The writer properties of `table`'s files (built once per table).
fn properties(slot: usize) -> Arc<WriterProperties> {
    static ALL: OnceLock<Vec<Arc<WriterProperties>>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        schema::ALL
            .iter()
            .map(|t| {
                let level = ZstdLevel::try_new(1).unwrap_or_default();
                let mut b = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(level))
                    .set_statistics_enabled(EnabledStatistics::None)
                    .set_sorting_columns(Some(vec![SortingColumn {
                        column_idx: 0,
                        descending: false,
                        nulls_first: false,
                    }]));
                for c in t.columns {
                    let path = ColumnPath::from(c.name);
                    if c.name == schema::TIMESTAMP {
                        // Sorted and nearly unique: deltas are a byte or two, and readers prune
                        // on it.
                        b = b
                            .set_column_statistics_enabled(path.clone(), EnabledStatistics::Page)
                            .set_column_dictionary_enabled(path.clone(), false)
                            .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
                    } else if NO_DICTIONARY.contains(&c.name) || c.kql_type == KqlType::Real {
                        b = b.set_column_dictionary_enabled(path, false);
                    }
                }
                Arc::new(b.build())
            })
            .collect()
    });
    Arc::clone(&all[slot])
}

/// A Parquet writer over `w` for `schema`, table `slot`'s or some of its columns: the file
/// writer and the factory of its column writers. A column writer made for a subset of the
/// columns writes the same chunk as one made for the whole table (the chunk is appended by
/// column descriptor, which is the field's alone).
fn file_writer<W: io::Write + Send>(
    w: W,
    schema: SchemaRef,
    slot: usize,
) -> io::Result<(SerializedFileWriter<W>, ArrowRowGroupWriterFactory)> {
    let props = Arc::unwrap_or_clone(properties(slot));
    ArrowWriter::try_new(w, schema, Some(props))
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(io::Error::other)
}

/// Encoder `k`: writes its share of each batch's columns; at the end of a row group hands the
/// closed column chunks to the file thread, and every batch, once all encoders are done with it,
/// back to the sink.
fn encode(
    k: usize,
    jobs: &Receiver<Arc<Job>>,
    done: &Sender<Done>,
    recycle: &Sender<(usize, RecordBatch)>,
) -> io::Result<()> {
    let tables = schema::ALL.len();
    // Per table: the factory of this encoder's column writers (over its columns only) and
    // their column indexes.
    let mut factories: Vec<Option<(ArrowRowGroupWriterFactory, Vec<usize>)>> =
        (0..tables).map(|_| None).collect();
    let mut open: Vec<Option<Vec<(usize, ArrowColumnWriter)>>> =
        (0..tables).map(|_| None).collect();
    let mut groups = vec![0usize; tables];
    for job in jobs {
        let slot = job.slot;
        let schema = job.batch.schema();
        let writers = match &mut open[slot] {
            Some(w) => w,
            none => {
                let (factory, mine) = match &mut factories[slot] {
                    Some(f) => f,
                    f => {
                        let mine: Vec<usize> = (0..schema.fields().len())
                            .filter(|&c| usize::from(job.owner[c]) == k)
                            .collect();
                        let fields: Vec<_> = mine
                            .iter()
                            .map(|&c| Arc::clone(&schema.fields()[c]))
                            .collect();
                        let part = Arc::new(Schema::new(fields));
                        f.insert((file_writer(io::sink(), part, slot)?.1, mine))
                    }
                };
                let made = if mine.is_empty() {
                    Vec::new()
                } else {
                    factory
                        .create_column_writers(groups[slot])
                        .map_err(io::Error::other)?
                };
                none.insert(mine.iter().copied().zip(made).collect())
            }
        };
        for (c, w) in writers.iter_mut() {
            let leaves =
                compute_leaves(schema.field(*c), job.batch.column(*c)).map_err(io::Error::other)?;
            for leaf in &leaves {
                w.write(leaf).map_err(io::Error::other)?;
            }
        }
        if job.close {
            let chunks = open[slot]
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|(c, w)| w.close().map(|chunk| (c, chunk)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(io::Error::other)?;
            let row_group = groups[slot];
            groups[slot] += 1;
            if done
                .send(Done {
                    slot,
                    row_group,
                    chunks,
                })
                .is_err()
            {
                return Ok(()); // the file thread stopped; it reports why
            }
        }
        if let Some(job) = Arc::into_inner(job) {
            let _ = recycle.send((job.slot, job.batch));
        }
    }
    Ok(())
}

/// A table's open part file.
struct Part {
    writer: SerializedFileWriter<File>,
    rows: usize,
}

/// Appends row groups to each table's files in order, once every encoder has sent its chunks.
fn write_files(dir: &Path, file_rows: usize, done: Receiver<Done>) -> io::Result<()> {
    let tables = schema::ALL.len();
    let mut parts: Vec<Option<Part>> = (0..tables).map(|_| None).collect();
    let mut next_part = vec![0usize; tables];
    let mut next_group = vec![0usize; tables];
    let mut waiting: Vec<BTreeMap<usize, Vec<Option<ArrowColumnChunk>>>> =
        (0..tables).map(|_| BTreeMap::new()).collect();
    for d in done {
        let slot = d.slot;
        let columns = schema::ALL[slot].columns.len();
        let group = waiting[slot]
            .entry(d.row_group)
            .or_insert_with(|| (0..columns).map(|_| None).collect());
        for (c, chunk) in d.chunks {
            group[c] = Some(chunk);
        }
        loop {
            let next = next_group[slot];
            let complete = waiting[slot]
                .get(&next)
                .is_some_and(|g| g.iter().all(Option::is_some));
            if !complete {
                break;
            }
            let chunks = waiting[slot].remove(&next).unwrap_or_default();
            next_group[slot] += 1;
            let part = (&mut parts[slot], &mut next_part[slot]);
            write_group(dir, slot, file_rows, part, chunks)?;
        }
    }
    for (slot, w) in waiting.iter().enumerate() {
        if !w.is_empty() {
            return Err(io::Error::other(format!(
                "{}: a row group was never completed",
                schema::ALL[slot].name
            )));
        }
    }
    for p in parts.into_iter().flatten() {
        p.writer.close().map_err(io::Error::other)?;
    }
    Ok(())
}

fn write_group(
    dir: &Path,
    slot: usize,
    file_rows: usize,
    (part, next_part): (&mut Option<Part>, &mut usize),
    chunks: Vec<Option<ArrowColumnChunk>>,
) -> io::Result<()> {
    if part.as_ref().is_some_and(|p| p.rows >= file_rows)
        && let Some(p) = part.take()
    {
        p.writer.close().map_err(io::Error::other)?;
    }
    let p = match part {
        Some(p) => p,
        none => {
            let path = ParquetSink::path_of(dir, schema::ALL[slot], *next_part);
            *next_part += 1;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let schema = arrow_schema(schema::ALL[slot]);
            let (writer, _) = file_writer(File::create(&path)?, schema, slot)?;
            none.insert(Part { writer, rows: 0 })
        }
    };
    let rows = chunks
        .iter()
        .flatten()
        .next()
        .map_or(0, |c| c.close().rows_written as usize);
    let mut group = p.writer.next_row_group().map_err(io::Error::other)?;
    for chunk in chunks.into_iter().flatten() {
        chunk
            .append_to_row_group(&mut group)
            .map_err(io::Error::other)?;
    }
    group.close().map_err(io::Error::other)?;
    p.rows += rows;
    Ok(())
}
