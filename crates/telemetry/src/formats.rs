//! Bulk import formats, read as a stream: JSON Lines rows, MDE streaming-API records (one per
//! line, or inside an Event Hubs `{"records": […]}` document), and CSV exports of advanced-hunting
//! results (header row = column names).
//!
//! Input is read in chunks of [`ImportOptions::batch_rows`] rows so that a file of any size is
//! imported in bounded memory; each chunk goes to the caller (who stores it) before the next one
//! is read. A bad record is rejected with its location and reason; the rest are kept.

use crate::rows::{IGNORED_COLUMNS, RowRejection, TableBatchBuilder, column_index};
use datafusion::arrow::array::RecordBatch;
use rampart_core::schema::{self, Table};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};
use std::path::Path;

/// The prefix of a streaming record's `category`: `AdvancedHunting-DeviceProcessEvents`.
pub const CATEGORY_PREFIX: &str = "AdvancedHunting-";

/// How the input is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON: one value per line (rows or streaming records), or whole documents
    /// (`{"records": […]}`, arrays, pretty-printed objects). Told apart by the first line.
    Json,
    /// CSV with a header row of column names; the table must be given.
    Csv,
}

impl Format {
    /// The format of a file, from its extension (`.csv`), else JSON.
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Format::Csv,
            _ => Format::Json,
        }
    }

    /// The format of a request body with this content type.
    pub fn of_content_type(content_type: &str) -> Format {
        if content_type.to_ascii_lowercase().contains("csv") {
            Format::Csv
        } else {
            Format::Json
        }
    }
}

/// What to import and how.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The table of plain rows (NDJSON rows and CSV); streaming records name their own.
    pub table: Option<&'static Table>,
    /// Rows per chunk handed to the caller.
    pub batch_rows: usize,
    /// Rejections kept with their reasons per chunk (all are counted).
    pub max_kept_rejections: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            table: None,
            batch_rows: 8192,
            max_kept_rejections: 100,
        }
    }
}

/// Where a record was in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// 1-based line of the record, or of the document holding it, when known.
    pub line: Option<u64>,
    /// 1-based number of the document, for input of several pretty-printed documents (whose
    /// later start lines the streaming parser doesn't report).
    pub document: Option<u64>,
    /// Index inside a `records` array or top-level array.
    pub index: Option<usize>,
}

impl Location {
    pub fn line(line: u64) -> Location {
        Location {
            line: Some(line),
            document: None,
            index: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.document) {
            (Some(l), _) => write!(f, "line {l}")?,
            (None, Some(d)) => write!(f, "document {d}")?,
            (None, None) => f.write_str("input")?,
        }
        match self.index {
            Some(i) => write!(f, ", record {i}"),
            None => Ok(()),
        }
    }
}

/// One rejected record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub location: Location,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

/// A chunk of imported rows, one batch per table.
#[derive(Debug, Default)]
pub struct Chunk {
    pub tables: Vec<(&'static Table, RecordBatch)>,
    pub accepted: u64,
    pub rejected_count: u64,
    /// The first [`ImportOptions::max_kept_rejections`] rejections of the chunk.
    pub rejected: Vec<Rejection>,
}

/// Why an import stopped (record-level problems are [`Rejection`]s, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ImportError<E: std::error::Error + 'static> {
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
    /// The input as a whole is unusable (e.g. a CSV header naming an unknown column).
    #[error("{0}")]
    Invalid(String),
    /// The caller's chunk handler failed (e.g. the store refused the data).
    #[error(transparent)]
    Sink(E),
}

/// Rows being gathered into per-table builders.
pub struct Importer {
    opts: ImportOptions,
    builders: BTreeMap<&'static str, TableBatchBuilder>,
    rows: usize,
    accepted: u64,
    rejected_count: u64,
    rejected: Vec<Rejection>,
}

impl Importer {
    pub fn new(opts: ImportOptions) -> Self {
        Importer {
            opts,
            builders: BTreeMap::new(),
            rows: 0,
            accepted: 0,
            rejected_count: 0,
            rejected: Vec::new(),
        }
    }

    fn reject(&mut self, location: Location, reason: impl Into<String>) {
        self.rejected_count += 1;
        if self.rejected.len() < self.opts.max_kept_rejections {
            self.rejected.push(Rejection {
                location,
                reason: reason.into(),
            });
        }
    }

    fn builder(&mut self, table: &'static Table) -> &mut TableBatchBuilder {
        let rows = self.opts.batch_rows;
        self.builders
            .entry(table.name)
            .or_insert_with(|| TableBatchBuilder::with_capacity(table, rows.min(8192)))
    }

    fn counted(&mut self, location: Location, r: Result<(), RowRejection>) {
        match r {
            Ok(()) => {
                self.rows += 1;
                self.accepted += 1;
            }
            Err(e) => self.reject(location, e.to_string()),
        }
    }

    /// Takes one JSON value: a row, a streaming record, a `{"records": […]}` document or an
    /// array of any of these.
    pub fn push_value(&mut self, value: &Value, location: Location) {
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let loc = Location {
                        index: Some(i),
                        ..location
                    };
                    self.push_record(item, loc);
                }
            }
            Value::Object(o) => match o.get("records") {
                Some(Value::Array(records)) if !o.contains_key("Timestamp") => {
                    for (i, item) in records.iter().enumerate() {
                        let loc = Location {
                            index: Some(i),
                            ..location
                        };
                        self.push_record(item, loc);
                    }
                }
                _ => self.push_record(value, location),
            },
            other => self.reject(
                location,
                format!("expected a JSON object, got {}", kind(other)),
            ),
        }
    }

    fn push_record(&mut self, value: &Value, location: Location) {
        let Value::Object(o) = value else {
            return self.reject(
                location,
                format!("expected a JSON object, got {}", kind(value)),
            );
        };
        // A streaming-API record names its table and wraps the row in `properties`.
        if let Some(category) = o.get("category") {
            let Some(name) = category
                .as_str()
                .and_then(|c| c.strip_prefix(CATEGORY_PREFIX))
            else {
                return self.reject(
                    location,
                    format!("category {category} is not AdvancedHunting-<Table>"),
                );
            };
            let Some(table) = schema::table(name) else {
                return self.reject(location, format!("unknown table {name}"));
            };
            let Some(Value::Object(props)) = o.get("properties") else {
                return self.reject(location, "the record has no properties object");
            };
            let r = self.builder(table).push_json(props);
            return self.counted(location, r);
        }
        let Some(table) = self.opts.table else {
            return self.reject(
                location,
                "no table for this row: give the table (--table, ?table=) or send streaming-API records with a category",
            );
        };
        let r = self.builder(table).push_json(o);
        self.counted(location, r)
    }

    /// Whether a chunk's worth of rows is waiting.
    pub fn is_full(&self) -> bool {
        self.rows >= self.opts.batch_rows
    }

    /// The rows and rejections gathered since the last call.
    pub fn take(&mut self) -> Chunk {
        let tables = self
            .builders
            .values_mut()
            .filter(|b| !b.is_empty())
            .map(|b| (b.table(), b.finish()))
            .collect();
        self.rows = 0;
        Chunk {
            tables,
            accepted: std::mem::take(&mut self.accepted),
            rejected_count: std::mem::take(&mut self.rejected_count),
            rejected: std::mem::take(&mut self.rejected),
        }
    }

    fn has_pending(&self) -> bool {
        self.rows > 0 || self.rejected_count > 0
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads `input` in `format`, handing each chunk to `on_chunk` before reading on.
pub fn import<R, E>(
    input: R,
    format: Format,
    opts: &ImportOptions,
    mut on_chunk: impl FnMut(Chunk) -> Result<(), E>,
) -> Result<(), ImportError<E>>
where
    R: BufRead,
    E: std::error::Error + 'static,
{
    let mut importer = Importer::new(opts.clone());
    let mut emit = |imp: &mut Importer, force: bool| -> Result<(), ImportError<E>> {
        if imp.is_full() || (force && imp.has_pending()) {
            on_chunk(imp.take()).map_err(ImportError::Sink)?;
        }
        Ok(())
    };
    match format {
        Format::Json => import_json(input, &mut importer, &mut emit)?,
        Format::Csv => import_csv(input, opts, &mut importer, &mut emit)?,
    }
    emit(&mut importer, true)
}

type Emit<'a, E> = dyn FnMut(&mut Importer, bool) -> Result<(), ImportError<E>> + 'a;

fn import_json<R: BufRead, E: std::error::Error + 'static>(
    mut input: R,
    importer: &mut Importer,
    emit: &mut Emit<'_, E>,
) -> Result<(), ImportError<E>> {
    let mut line = String::new();
    let mut number = 0u64;
    // Lines until the first non-blank one decide: a complete JSON value means JSON Lines.
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if !line.trim().is_empty() {
            break;
        }
    }
    if serde_json::from_str::<Value>(&line).is_err() {
        return import_documents(line.as_bytes().chain(input), number, importer, emit);
    }
    loop {
        if !line.trim().is_empty() {
            let loc = Location::line(number);
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => importer.push_value(&v, loc),
                Err(e) => importer.reject(loc, format!("not JSON: {e}")),
            }
            emit(importer, false)?;
        }
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        number += 1;
    }
}

/// Whole JSON documents (pretty-printed, possibly several in a row).
fn import_documents<R: Read, E: std::error::Error + 'static>(
    input: R,
    first_line: u64,
    importer: &mut Importer,
    emit: &mut Emit<'_, E>,
) -> Result<(), ImportError<E>> {
    let mut stream = serde_json::Deserializer::from_reader(input).into_iter::<Value>();
    let mut document = 0u64;
    for item in stream.by_ref() {
        document += 1;
        let location = if document == 1 {
            Location::line(first_line)
        } else {
            Location {
                line: None,
                document: Some(document),
                index: None,
            }
        };
        match item {
            Ok(v) => importer.push_value(&v, location),
            Err(e) if e.is_io() => return Err(ImportError::Io(e.into())),
            Err(e) => {
                // A syntax error ends the stream: nothing after it can be framed reliably.
                // serde_json counts lines from where this parser started: the first line.
                let at = Location::line(first_line + e.line() as u64 - 1);
                importer.reject(
                    at,
                    format!("not JSON: {e}; the rest of the input was not read"),
                );
                break;
            }
        }
        emit(importer, false)?;
    }
    Ok(())
}

fn import_csv<R: Read, E: std::error::Error + 'static>(
    input: R,
    opts: &ImportOptions,
    importer: &mut Importer,
    emit: &mut Emit<'_, E>,
) -> Result<(), ImportError<E>> {
    let Some(table) = opts.table else {
        return Err(ImportError::Invalid(
            "CSV input needs its table (--table, ?table=): the header row names columns, not the table".into(),
        ));
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Invalid(format!("line 1: reading the CSV header: {e}")))?
        .clone();
    let mut columns = Vec::with_capacity(headers.len());
    for (i, name) in headers.iter().enumerate() {
        let name = name.trim().trim_start_matches('\u{feff}');
        match column_index(table, name) {
            Some(c) => columns.push(Some(c)),
            None if IGNORED_COLUMNS.contains(&name) => columns.push(None),
            None => {
                return Err(ImportError::Invalid(format!(
                    "line 1, field {}: {} has no column {name:?}",
                    i + 1,
                    table.name
                )));
            }
        }
    }
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let loc = Location::line(record.position().map_or(line, |p| p.line()));
                if record.len() != columns.len() {
                    importer.reject(
                        loc,
                        format!("{} fields, the header has {}", record.len(), columns.len()),
                    );
                } else {
                    let fields: Vec<(usize, &str)> = columns
                        .iter()
                        .zip(record.iter())
                        .filter_map(|(c, v)| c.map(|c| (c, v)))
                        .collect();
                    let r = importer.builder(table).push_text(&fields);
                    importer.counted(loc, r);
                }
            }
            Err(e) if e.is_io_error() => match e.into_kind() {
                csv::ErrorKind::Io(io) => return Err(ImportError::Io(io)),
                _ => unreachable!("is_io_error"),
            },
            Err(e) => {
                let at = e.position().map_or(line, |p| p.line());
                importer.reject(Location::line(at), format!("bad CSV: {e}"));
            }
        }
        emit(importer, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Never;
    impl fmt::Display for Never {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("never")
        }
    }
    impl std::error::Error for Never {}

    fn run(
        input: &str,
        format: Format,
        table: Option<&str>,
    ) -> (u64, u64, Vec<String>, BTreeMap<&'static str, usize>) {
        let opts = ImportOptions {
            table: table.and_then(schema::table),
            batch_rows: 2,
            ..Default::default()
        };
        let (mut acc, mut rej, mut reasons, mut rows) = (0, 0, vec![], BTreeMap::new());
        import(
            input.as_bytes(),
            format,
            &opts,
            |c: Chunk| -> Result<(), Never> {
                acc += c.accepted;
                rej += c.rejected_count;
                reasons.extend(c.rejected.iter().map(|r| r.to_string()));
                for (t, b) in c.tables {
                    *rows.entry(t.name).or_default() += b.num_rows();
                }
                Ok(())
            },
        )
        .unwrap();
        (acc, rej, reasons, rows)
    }

    #[test]
    fn ndjson_rows_and_streaming_records_mix() {
        let input = r#"{"Timestamp":"2026-07-18T12:59:31Z","DeviceId":"a","ActionType":"ProcessCreated"}

{"time":"x","tenantId":"t","category":"AdvancedHunting-DeviceNetworkEvents","properties":{"Timestamp":"2026-07-18T12:59:31Z","DeviceId":"a","RemotePort":443,"MachineGroup":"g"}}
{"records":[{"category":"AdvancedHunting-DeviceFileEvents","properties":{"Timestamp":"2026-07-18T12:59:31Z","DeviceId":"a"}},{"category":"AdvancedHunting-Nope","properties":{}}]}
not json
{"Timestamp":"2026-07-18T12:59:31Z"}
"#;
        let (acc, rej, reasons, rows) = run(input, Format::Json, Some("DeviceProcessEvents"));
        assert_eq!((acc, rej), (3, 3));
        assert_eq!(rows.get("DeviceProcessEvents"), Some(&1));
        assert_eq!(rows.get("DeviceNetworkEvents"), Some(&1));
        assert_eq!(rows.get("DeviceFileEvents"), Some(&1));
        assert_eq!(reasons[0], "line 4, record 1: unknown table Nope");
        assert!(reasons[1].starts_with("line 5: not JSON"), "{}", reasons[1]);
        assert_eq!(reasons[2], "line 6: DeviceProcessEvents.DeviceId: missing");
    }

    #[test]
    fn pretty_event_hubs_documents() {
        let input = "{\n  \"records\": [\n    {\"category\": \"AdvancedHunting-DeviceInfo\", \"properties\": {\"Timestamp\": \"2026-07-18T12:59:31Z\", \"DeviceId\": \"a\", \"OSPlatform\": \"Linux\"}},\n    {\"category\": \"AdvancedHunting-DeviceInfo\", \"properties\": {\"DeviceId\": \"b\"}}\n  ]\n}\n";
        let (acc, rej, reasons, _) = run(input, Format::Json, None);
        assert_eq!((acc, rej), (1, 1));
        assert_eq!(
            reasons[0],
            "line 1, record 1: DeviceInfo.Timestamp: missing (every row needs its event time)"
        );
        // Later pretty documents are named by number: the streaming parser doesn't say where
        // they start.
        let two = format!(
            "{input}{}",
            input.replace("\"DeviceId\": \"b\"", "\"DeviceId\": \"c\"")
        );
        let (acc, rej, reasons, _) = run(&two, Format::Json, None);
        assert_eq!((acc, rej), (2, 2));
        assert!(
            reasons[1].starts_with("document 2, record 1: DeviceInfo.Timestamp"),
            "{reasons:?}"
        );
        let (acc, _, reasons, _) = run(
            r#"{"Timestamp":"2026-07-18T12:59:31Z","DeviceId":"a"}"#,
            Format::Json,
            None,
        );
        assert_eq!(acc, 0);
        assert!(reasons[0].contains("no table"));
    }

    #[test]
    fn csv_exports_by_header() {
        let input = "Timestamp,DeviceId,RemotePort,TenantId\n2026-07-18T12:59:31Z,a,443,t\n2026-07-18T12:59:31Z,b,https,t\n2026-07-18T12:59:31Z,c\n";
        let (acc, rej, reasons, rows) = run(input, Format::Csv, Some("DeviceNetworkEvents"));
        assert_eq!((acc, rej), (1, 2));
        assert_eq!(rows.get("DeviceNetworkEvents"), Some(&1));
        assert_eq!(
            reasons[0],
            "line 3: DeviceNetworkEvents.RemotePort: expected int, got \"https\""
        );
        assert_eq!(reasons[1], "line 4: 2 fields, the header has 4");
        let opts = ImportOptions {
            table: schema::table("DeviceNetworkEvents"),
            ..Default::default()
        };
        let err = import(
            "Timestamp,Bogus\n".as_bytes(),
            Format::Csv,
            &opts,
            |_| -> Result<(), Never> { Ok(()) },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1, field 2: DeviceNetworkEvents has no column \"Bogus\""
        );
    }
}
