//! `externaldata` on a server that runs offline: a URI is read only when the deployment
//! maps it to a local file ([`ExternalFiles`], given to `run_with_files`); any other URI
//! is refused with its line and column, because fetching it would need the network.
//!
//! Files are read before lowering (like `materialize`d inputs) into an in-memory table of
//! text columns; the binder's projection above [`RelKind::ExternalData`] converts them to
//! the declared types with KQL's conversions.

use super::error::{HuntError, PlanError};
use crate::ast::ScalarType;
use crate::bind::{ExternalFormat, ExternalUri, Rel, RelKind};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The local files that stand in for `externaldata` URIs, as the server's configuration
/// lists them.
///
/// A URI matches only when the query writes it exactly as mapped (no normalisation: the
/// mapping is an allow-list). The files are CSV, TSV, JSON lines or multi-line JSON as
/// the query's `format` says, and at most 512 MiB per query together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalFiles {
    files: BTreeMap<String, PathBuf>,
}

impl ExternalFiles {
    /// No files: every `externaldata` is refused.
    pub fn new() -> Self {
        ExternalFiles::default()
    }

    /// Maps `uri` to the local file `path`, replacing an earlier mapping of `uri`.
    pub fn insert(&mut self, uri: impl Into<String>, path: impl Into<PathBuf>) {
        self.files.insert(uri.into(), path.into());
    }

    /// [`Self::insert`], builder style.
    pub fn with(mut self, uri: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.insert(uri, path);
        self
    }

    /// The file mapped to `uri`, if any.
    pub fn get(&self, uri: &str) -> Option<&Path> {
        self.files.get(uri).map(PathBuf::as_path)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl<U: Into<String>, P: Into<PathBuf>> FromIterator<(U, P)> for ExternalFiles {
    fn from_iter<I: IntoIterator<Item = (U, P)>>(iter: I) -> Self {
        let mut files = ExternalFiles::new();
        for (uri, path) in iter {
            files.insert(uri, path);
        }
        files
    }
}

/// Most bytes the files of one query's `externaldata` may hold together: they are read
/// into memory whole.
pub(crate) const MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Rows per record batch.
const BATCH_ROWS: usize = 8192;

/// Why a mapped file could not be read. The local path is left out of messages: it is
/// the deployment's business, not the query author's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("cannot read the local file mapped to '{url}': {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the local files mapped to the externaldata URIs hold more than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("the local file mapped to '{url}' is not valid {format}: {source}")]
    Csv {
        url: String,
        format: &'static str,
        #[source]
        source: ArrowError,
    },
    #[error("the local file mapped to '{url}' is not valid JSON at record {record}: {source}")]
    Json {
        url: String,
        record: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("record {record} of the local file mapped to '{url}' is not a JSON object")]
    NotAnObject { url: String, record: usize },
    #[error("reading externaldata stopped unexpectedly: {0}")]
    Task(String),
    #[error("internal error building the externaldata table: {0}")]
    Batch(#[source] ArrowError),
}

impl From<ReadError> for HuntError {
    fn from(error: ReadError) -> Self {
        HuntError::Execution(error.to_string())
    }
}

/// The URI as shown in messages: without its query string, which for storage URIs
/// usually carries an access token.
fn shown(uri: &str) -> String {
    uri.split(['?', ';']).next().unwrap_or(uri).to_string()
}

/// What one `externaldata` reads: its files, in URI order, and how.
pub(crate) struct Reading {
    files: Vec<(String, PathBuf)>,
    format: ExternalFormat,
    ignore_first_record: bool,
    declared: Vec<ScalarType>,
    schema: SchemaRef,
}

/// Resolves the URIs of an `externaldata` node against the deployment's mapping, or
/// refuses the first unmapped one at its location.
pub(crate) fn resolve(rel: &Rel, files: &ExternalFiles, text: &str) -> Result<Reading, PlanError> {
    let RelKind::ExternalData {
        uris,
        format,
        ignore_first_record,
        declared,
    } = &rel.kind
    else {
        return Err(PlanError::new(
            "internal planning error: not an externaldata node",
        ));
    };
    let mut mapped = Vec::with_capacity(uris.len());
    for ExternalUri { text: uri, span } in uris {
        let Some(path) = files.get(uri) else {
            return Err(PlanError::at(
                text,
                *span,
                format!(
                    "externaldata is not available: Rampart runs offline and the URL '{}' is \
                     not mapped to a local file in the server's configuration",
                    shown(uri)
                ),
            ));
        };
        mapped.push((shown(uri), path.to_path_buf()));
    }
    // Text columns, nullable because short CSV records leave fields out; the lowering
    // fills those in ("" for strings, which are never null in KQL).
    let schema = Arc::new(Schema::new(
        rel.schema
            .columns
            .iter()
            .map(|c| Field::new(&c.name, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    Ok(Reading {
        files: mapped,
        format: *format,
        ignore_first_record: *ignore_first_record,
        declared: declared.clone(),
        schema,
    })
}

impl Reading {
    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Reads every file (blocking I/O, so on tokio's blocking pool).
    pub(crate) async fn read(self) -> Result<Vec<RecordBatch>, ReadError> {
        tokio::task::spawn_blocking(move || self.read_blocking())
            .await
            .map_err(|e| ReadError::Task(e.to_string()))?
    }

    fn read_blocking(&self) -> Result<Vec<RecordBatch>, ReadError> {
        let mut total = 0u64;
        let mut opened = Vec::with_capacity(self.files.len());
        for (url, path) in &self.files {
            let (file, size) = open(url, path)?;
            total = total.saturating_add(size);
            if total > MAX_BYTES {
                return Err(ReadError::TooLarge);
            }
            opened.push((url, file));
        }
        let mut batches = Vec::new();
        for (url, file) in opened {
            // Never more than the size checked above, even if the file grows meanwhile.
            let file = file.take(MAX_BYTES);
            match self.format {
                ExternalFormat::Csv => self.delimited(url, file, b',', "CSV", &mut batches)?,
                ExternalFormat::Tsv => self.delimited(url, file, b'\t', "TSV", &mut batches)?,
                ExternalFormat::Json => self.json_lines(url, file, &mut batches)?,
                ExternalFormat::MultiJson => self.multi_json(url, file, &mut batches)?,
            }
        }
        Ok(batches)
    }

    /// CSV/TSV: fields by position; short records get empty fields, as in Kusto.
    fn delimited(
        &self,
        url: &str,
        file: impl Read,
        delimiter: u8,
        format: &'static str,
        batches: &mut Vec<RecordBatch>,
    ) -> Result<(), ReadError> {
        let error = |source| ReadError::Csv {
            url: url.to_string(),
            format,
            source,
        };
        let reader = datafusion::arrow::csv::ReaderBuilder::new(self.schema.clone())
            .with_header(self.ignore_first_record)
            .with_delimiter(delimiter)
            .with_truncated_rows(true)
            .with_batch_size(BATCH_ROWS)
            .build(file)
            .map_err(error)?;
        for batch in reader {
            batches.push(batch.map_err(error)?);
        }
        Ok(())
    }

    /// JSON lines: one object per non-blank line.
    fn json_lines(
        &self,
        url: &str,
        file: impl Read,
        batches: &mut Vec<RecordBatch>,
    ) -> Result<(), ReadError> {
        let mut rows = Rows::new(self);
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| ReadError::Io {
                url: url.to_string(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str(&line).map_err(|source| ReadError::Json {
                url: url.to_string(),
                record: index + 1,
                source,
            })?;
            rows.push(url, index + 1, &value, batches)?;
        }
        rows.flush(batches)
    }

    /// Multi-line JSON: objects one after another, or arrays of objects.
    fn multi_json(
        &self,
        url: &str,
        file: impl Read,
        batches: &mut Vec<RecordBatch>,
    ) -> Result<(), ReadError> {
        let mut rows = Rows::new(self);
        let stream = serde_json::Deserializer::from_reader(BufReader::new(file))
            .into_iter::<serde_json::Value>();
        for (index, value) in stream.enumerate() {
            let value = value.map_err(|source| ReadError::Json {
                url: url.to_string(),
                record: index + 1,
                source,
            })?;
            match &value {
                serde_json::Value::Array(items) => {
                    for item in items {
                        rows.push(url, index + 1, item, batches)?;
                    }
                }
                other => rows.push(url, index + 1, other, batches)?,
            }
        }
        rows.flush(batches)
    }
}

fn open(url: &str, path: &Path) -> Result<(File, u64), ReadError> {
    let io = |source| ReadError::Io {
        url: url.to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    Ok((file, size))
}

/// Text columns being filled from JSON objects, fields by name.
struct Rows<'p> {
    reading: &'p Reading,
    columns: Vec<StringBuilder>,
    len: usize,
}

impl<'p> Rows<'p> {
    fn new(reading: &'p Reading) -> Self {
        Rows {
            reading,
            columns: reading
                .declared
                .iter()
                .map(|_| StringBuilder::new())
                .collect(),
            len: 0,
        }
    }

    fn push(
        &mut self,
        url: &str,
        record: usize,
        value: &serde_json::Value,
        batches: &mut Vec<RecordBatch>,
    ) -> Result<(), ReadError> {
        let serde_json::Value::Object(object) = value else {
            return Err(ReadError::NotAnObject {
                url: url.to_string(),
                record,
            });
        };
        let fields = self.reading.schema.fields();
        for ((builder, field), ty) in self
            .columns
            .iter_mut()
            .zip(fields.iter())
            .zip(&self.reading.declared)
        {
            match object.get(field.name()) {
                None | Some(serde_json::Value::Null) => builder.append_null(),
                // A dynamic column parses the field's JSON; any other converts its content.
                Some(serde_json::Value::String(text)) if *ty != ScalarType::Dynamic => {
                    builder.append_value(text)
                }
                Some(other) => builder.append_value(other.to_string()),
            }
        }
        self.len += 1;
        if self.len == BATCH_ROWS {
            self.flush(batches)?;
        }
        Ok(())
    }

    fn flush(&mut self, batches: &mut Vec<RecordBatch>) -> Result<(), ReadError> {
        if self.len == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let batch =
            RecordBatch::try_new(self.reading.schema.clone(), arrays).map_err(ReadError::Batch)?;
        batches.push(batch);
        self.len = 0;
        Ok(())
    }
}
