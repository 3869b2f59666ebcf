//! MDE streaming-API records, one file per table: each line is
//! `{"time","tenantId","operationName","category":"AdvancedHunting-<Table>","properties":{row}}`,
//! exactly what Defender's raw-data export writes, so `rampart ingest` routes lines by category.

use super::{LabelsFile, json, table_slot};
use crate::{Cell, Label, Sink, Table};
use rampart_core::schema;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Tenant id written in the envelope unless [`NdjsonSink::with_tenant`] sets another.
pub const DEFAULT_TENANT: &str = "00000000-0000-4000-8000-5e1f0000a11a";

/// How long after the event the service "received" it (the envelope's `time`).
const RECEIVE_DELAY_NS: i64 = 1_700_000_000;

pub struct NdjsonSink {
    dir: PathBuf,
    files: Vec<Option<BufWriter<File>>>,
    labels: LabelsFile,
    tenant: String,
    line: Vec<u8>,
}

impl NdjsonSink {
    /// Creates `dir` (if needed) and `labels.jsonl` in it; table files appear with their first row.
    pub fn create(dir: impl AsRef<Path>) -> io::Result<NdjsonSink> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        Ok(NdjsonSink {
            labels: LabelsFile::create(&dir)?,
            files: (0..schema::ALL.len()).map(|_| None).collect(),
            dir,
            tenant: DEFAULT_TENANT.to_owned(),
            line: Vec::with_capacity(8192),
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
}

impl Sink for NdjsonSink {
    fn row(
        &mut self,
        _device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> io::Result<()> {
        let slot = table_slot(table);
        let file = match &mut self.files[slot] {
            Some(f) => f,
            none => none.insert(BufWriter::with_capacity(
                1 << 20,
                File::create(Self::path_of(&self.dir, table))?,
            )),
        };
        let ts = cells.iter().find_map(|(i, c)| match c {
            Cell::Time(t) if *i == 0 => Some(*t),
            _ => None,
        });
        let l = &mut self.line;
        l.clear();
        l.extend_from_slice(b"{\"time\":");
        json::push_time(l, ts.unwrap_or(0) + RECEIVE_DELAY_NS);
        l.extend_from_slice(b",\"tenantId\":");
        json::push_str(l, &self.tenant);
        l.extend_from_slice(b",\"operationName\":\"Publish\",\"category\":\"AdvancedHunting-");
        l.extend_from_slice(table.name.as_bytes());
        l.extend_from_slice(b"\",\"properties\":{");
        let mut first = true;
        for (i, c) in cells {
            if matches!(c, Cell::Null) {
                continue;
            }
            let Some(col) = table.columns.get(*i) else {
                continue;
            };
            if !first {
                l.push(b',');
            }
            first = false;
            l.push(b'"');
            l.extend_from_slice(col.name.as_bytes());
            l.extend_from_slice(b"\":");
            json::push_cell(l, c);
        }
        l.extend_from_slice(b"}}\n");
        file.write_all(l)
    }

    fn label(&mut self, l: &Label) -> io::Result<()> {
        self.labels.write(l)
    }

    fn finish(&mut self) -> io::Result<()> {
        for f in self.files.iter_mut().flatten() {
            f.flush()?;
        }
        self.labels.flush()
    }
}
