//! Destinations for generated rows.
//!
//! - [`NdjsonSink`]: one `<Table>.ndjson` file per table of MDE streaming-API records (what
//!   `rampart ingest` reads without being told the table), plus `labels.jsonl`.
//! - [`ParquetSink`]: `<Table>/part-NNNNN.parquet` per table, zstd-compressed, rows in time order,
//!   plus `labels.jsonl`.
//! - [`JsonRows`]: rows as JSON objects per device and table, for simulated agents posting batches.
//! - [`ArrowRows`]: rows as Arrow batches per device and table, for agents posting binary batches.
//! - [`Count`]: counts only.

mod arrow_rows;
mod columns;
mod count;
mod json;
mod json_rows;
mod ndjson;
mod parquet;

pub use arrow_rows::ArrowRows;
pub use count::Count;
pub use json_rows::{DeviceRows, JsonRows, cell_value};
pub use ndjson::{DEFAULT_TENANT, NdjsonSink};
pub use parquet::{Layout, ParquetSink};

use crate::Label;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The labels file both file sinks write: one JSON object per line.
pub const LABELS_FILE: &str = "labels.jsonl";

struct LabelsFile(BufWriter<File>);

impl LabelsFile {
    fn create(dir: &Path) -> io::Result<LabelsFile> {
        Ok(LabelsFile(BufWriter::new(File::create(
            dir.join(LABELS_FILE),
        )?)))
    }

    fn write(&mut self, l: &Label) -> io::Result<()> {
        serde_json::to_writer(&mut self.0, &l.to_json())?;
        self.0.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Position of `table` in `schema::ALL` (the per-table slots of the sinks).
fn table_slot(table: &'static crate::Table) -> usize {
    let all = rampart_core::schema::ALL;
    all.iter()
        .position(|t| std::ptr::eq(*t, table))
        .or_else(|| all.iter().position(|t| t.name == table.name))
        .unwrap_or(0)
}
