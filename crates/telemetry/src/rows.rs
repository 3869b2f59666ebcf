//! Rows into Arrow: one [`TableBatchBuilder`] per table turns rows — JSON objects, CSV text or
//! typed cells — into a `RecordBatch` of the table's schema.
//!
//! A row is checked whole before any of it is appended, so a rejected row leaves nothing behind
//! and the good rows around it are kept. A rejection names the table, the column and the reason.

use crate::arrow_schema::{UTC, arrow_schema};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampNanosecondBuilder,
};
use rampart_core::schema::{self, KqlType, Table};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Columns that streamed or Sentinel-exported rows carry beside the documented schema. They
/// describe the export, not the event, so they are dropped instead of failing the row.
pub const IGNORED_COLUMNS: &[&str] = &[
    "MachineGroup",
    "TenantId",
    "TimeGenerated",
    "SourceSystem",
    "Type",
    "DeviceObjectId",
    "_BilledSize",
    "_IsBillable",
    "_ResourceId",
    "_ItemId",
    "_SubscriptionId",
    "_TimeReceivedBySvc",
];

/// A typed value for [`TableBatchBuilder::push_cells`], for producers that already know types
/// (the simulator): no parsing, no allocation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Real(f64),
    /// Text for `string` and `dynamic` columns.
    Str(&'a str),
    /// Nanoseconds since the Unix epoch, UTC.
    Time(i64),
}

/// Why a row was not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowRejection {
    pub table: &'static str,
    /// The offending column, when one is to blame.
    pub column: Option<String>,
    pub reason: String,
}

impl RowRejection {
    fn column(table: &Table, column: &str, reason: impl Into<String>) -> Self {
        RowRejection {
            table: table.name,
            column: Some(column.to_owned()),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RowRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{}.{c}: {}", self.table, self.reason),
            None => write!(f, "{}: {}", self.table, self.reason),
        }
    }
}

impl std::error::Error for RowRejection {}

/// The position of `column` in `table` (a hash lookup; tables have up to ~100 columns).
pub fn column_index(table: &'static Table, column: &str) -> Option<usize> {
    static INDEX: OnceLock<Vec<HashMap<&'static str, usize>>> = OnceLock::new();
    let all = INDEX.get_or_init(|| {
        schema::hunting_tables()
            .map(|t| {
                t.columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name, i))
                    .collect()
            })
            .collect()
    });
    match schema::hunting_tables().position(|t| std::ptr::eq(t, table)) {
        Some(t) => all[t].get(column).copied(),
        None => table.column(column).map(|(i, _)| i),
    }
}

/// A checked value, ready to append.
#[derive(Debug)]
enum Parsed<'a> {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Real(f64),
    Str(Cow<'a, str>),
    Time(i64),
}

enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int(Int32Builder),
    Long(Int64Builder),
    Real(Float64Builder),
    Str(StringBuilder),
    Time(TimestampNanosecondBuilder),
}

impl ColumnBuilder {
    fn new(t: KqlType, rows: usize) -> Self {
        match t {
            KqlType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            KqlType::Int => ColumnBuilder::Int(Int32Builder::with_capacity(rows)),
            KqlType::Long => ColumnBuilder::Long(Int64Builder::with_capacity(rows)),
            KqlType::Real => ColumnBuilder::Real(Float64Builder::with_capacity(rows)),
            KqlType::String | KqlType::Dynamic => {
                ColumnBuilder::Str(StringBuilder::with_capacity(rows, rows * 8))
            }
            KqlType::DateTime => ColumnBuilder::Time(
                TimestampNanosecondBuilder::with_capacity(rows).with_timezone(UTC),
            ),
        }
    }

    /// Appends a value whose variant was checked against this column's type.
    fn append(&mut self, v: &Parsed<'_>) {
        match (self, v) {
            (b, Parsed::Null) => b.append_null(),
            (ColumnBuilder::Bool(b), Parsed::Bool(x)) => b.append_value(*x),
            (ColumnBuilder::Int(b), Parsed::Int(x)) => b.append_value(*x),
            (ColumnBuilder::Long(b), Parsed::Long(x)) => b.append_value(*x),
            (ColumnBuilder::Real(b), Parsed::Real(x)) => b.append_value(*x),
            (ColumnBuilder::Str(b), Parsed::Str(x)) => b.append_value(x),
            (ColumnBuilder::Time(b), Parsed::Time(x)) => b.append_value(*x),
            // `parse_*` only produce the variant of the column's type.
            (b, _) => b.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int(b) => b.append_null(),
            ColumnBuilder::Long(b) => b.append_null(),
            ColumnBuilder::Real(b) => b.append_null(),
            ColumnBuilder::Str(b) => b.append_null(),
            ColumnBuilder::Time(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Long(b) => Arc::new(b.finish()),
            ColumnBuilder::Real(b) => Arc::new(b.finish()),
            ColumnBuilder::Str(b) => Arc::new(b.finish()),
            ColumnBuilder::Time(b) => Arc::new(b.finish()),
        }
    }
}

/// Builds one table's `RecordBatch` row by row.
pub struct TableBatchBuilder {
    table: &'static Table,
    columns: Vec<ColumnBuilder>,
    rows: usize,
    device_id: Option<usize>,
    /// For `push_cells`: `marks[c] == generation` when the current row sets column `c`, whose
    /// cell is then `slots[c]`. Reused across rows so the simulator's path allocates nothing.
    marks: Vec<u32>,
    slots: Vec<u32>,
    generation: u32,
}

impl TableBatchBuilder {
    pub fn new(table: &'static Table) -> Self {
        Self::with_capacity(table, 1024)
    }

    pub fn with_capacity(table: &'static Table, rows: usize) -> Self {
        TableBatchBuilder {
            table,
            columns: table
                .columns
                .iter()
                .map(|c| ColumnBuilder::new(c.kql_type, rows))
                .collect(),
            rows: 0,
            device_id: table
                .requires_device_id()
                .then(|| column_index(table, schema::DEVICE_ID))
                .flatten(),
            marks: vec![0; table.columns.len()],
            slots: vec![0; table.columns.len()],
            generation: 0,
        }
    }

    pub fn table(&self) -> &'static Table {
        self.table
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends a row given as a JSON object keyed by column name (NDJSON rows, the `properties`
    /// of streaming records, agent batches). Numbers and booleans may also arrive as text (as
    /// exports write them); JSON objects in text columns are kept as JSON text.
    pub fn push_json(&mut self, row: &Map<String, Value>) -> Result<(), RowRejection> {
        let mut staged = Vec::with_capacity(row.len());
        for (name, value) in row {
            let Some(i) = column_index(self.table, name) else {
                if IGNORED_COLUMNS.contains(&name.as_str()) {
                    continue;
                }
                return Err(RowRejection::column(self.table, name, "unknown column"));
            };
            let col = &self.table.columns[i];
            let parsed = parse_json(col.kql_type, value)
                .map_err(|reason| RowRejection::column(self.table, col.name, reason))?;
            staged.push((i, parsed));
        }
        self.append(staged)
    }

    /// Appends a row of text fields by column position (CSV exports): an empty field is null.
    pub fn push_text(&mut self, fields: &[(usize, &str)]) -> Result<(), RowRejection> {
        let mut staged = Vec::with_capacity(fields.len());
        for &(i, text) in fields {
            let Some(col) = self.table.columns.get(i) else {
                return Err(self.no_column(i));
            };
            let parsed = parse_text(col.kql_type, text)
                .map_err(|reason| RowRejection::column(self.table, col.name, reason))?;
            staged.push((i, parsed));
        }
        self.append(staged)
    }

    /// Appends a row of typed cells by column position; each cell must be of its column's type.
    /// The row is checked whole first, as for the other forms, but without staging it.
    pub fn push_cells(&mut self, cells: &[(usize, Cell<'_>)]) -> Result<(), RowRejection> {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Marks from 2^32 rows ago could match again; start them over.
            self.marks.fill(0);
            self.generation = 1;
        }
        let generation = self.generation;
        for (k, &(i, cell)) in cells.iter().enumerate() {
            let Some(col) = self.table.columns.get(i) else {
                return Err(self.no_column(i));
            };
            let fits = matches!(
                (col.kql_type, cell),
                (_, Cell::Null)
                    | (KqlType::Bool, Cell::Bool(_))
                    | (KqlType::Int, Cell::Int(_))
                    | (KqlType::Long, Cell::Long(_) | Cell::Int(_))
                    | (KqlType::Real, Cell::Real(_))
                    | (KqlType::String | KqlType::Dynamic, Cell::Str(_))
                    | (KqlType::DateTime, Cell::Time(_))
            );
            if !fits {
                let msg = format!("expected {}, got {cell:?}", col.kql_type.name());
                return Err(RowRejection::column(self.table, col.name, msg));
            }
            if self.marks[i] == generation {
                return Err(RowRejection::column(self.table, col.name, "given twice"));
            }
            self.marks[i] = generation;
            self.slots[i] = k as u32;
        }
        self.check_required(|c| {
            self.marks[c] == generation && !matches!(cells[self.slots[c] as usize].1, Cell::Null)
        })?;
        for (c, col) in self.columns.iter_mut().enumerate() {
            if self.marks[c] != generation {
                col.append_null();
                continue;
            }
            let parsed = match cells[self.slots[c] as usize].1 {
                Cell::Null => Parsed::Null,
                Cell::Bool(b) => Parsed::Bool(b),
                Cell::Int(x) if matches!(col, ColumnBuilder::Long(_)) => Parsed::Long(x.into()),
                Cell::Int(x) => Parsed::Int(x),
                Cell::Long(x) => Parsed::Long(x),
                Cell::Real(x) => Parsed::Real(x),
                Cell::Str(s) => Parsed::Str(Cow::Borrowed(s)),
                Cell::Time(t) => Parsed::Time(t),
            };
            col.append(&parsed);
        }
        self.rows += 1;
        Ok(())
    }

    /// Refuses a row without a Timestamp, or without the DeviceId its table requires;
    /// `present(c)` tells whether the row gives column `c` a non-null value.
    fn check_required(&self, present: impl Fn(usize) -> bool) -> Result<(), RowRejection> {
        // Timestamp is column 0 of every table that has one (checked by the schema tests).
        if self.table.has_timestamp() && !present(0) {
            return Err(RowRejection::column(
                self.table,
                schema::TIMESTAMP,
                "missing (every row needs its event time)",
            ));
        }
        match self.device_id {
            Some(d) if !present(d) => Err(RowRejection::column(
                self.table,
                schema::DEVICE_ID,
                "missing",
            )),
            _ => Ok(()),
        }
    }

    fn no_column(&self, i: usize) -> RowRejection {
        RowRejection {
            table: self.table.name,
            column: None,
            reason: format!("no column at position {i}"),
        }
    }

    fn append(&mut self, mut staged: Vec<(usize, Parsed<'_>)>) -> Result<(), RowRejection> {
        staged.sort_unstable_by_key(|(i, _)| *i);
        if let Some(w) = staged.windows(2).find(|w| w[0].0 == w[1].0) {
            let name = self.table.columns[w[0].0].name;
            return Err(RowRejection::column(self.table, name, "given twice"));
        }
        self.check_required(|i| {
            staged
                .binary_search_by_key(&i, |(j, _)| *j)
                .is_ok_and(|k| !matches!(staged[k].1, Parsed::Null))
        })?;
        let mut next = staged.iter().peekable();
        for (i, col) in self.columns.iter_mut().enumerate() {
            match next.next_if(|(j, _)| *j == i) {
                Some((_, v)) => col.append(v),
                None => col.append_null(),
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows appended so far as one batch; the builder starts empty again.
    pub fn finish(&mut self) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        self.rows = 0;
        // The builders are made from the same column list as the schema, and `append` refuses
        // rows without a Timestamp, the only non-nullable column.
        RecordBatch::try_new(arrow_schema(self.table), arrays)
            .expect("column builders match the table schema")
    }
}

fn type_error(t: KqlType, v: &Value) -> String {
    let shown: String = v.to_string().chars().take(60).collect();
    format!("expected {}, got {shown}", t.name())
}

fn parse_json(t: KqlType, v: &Value) -> Result<Parsed<'_>, String> {
    Ok(match (t, v) {
        (_, Value::Null) => Parsed::Null,
        (_, Value::String(s)) => return parse_text_cow(t, Cow::Borrowed(s)),
        (KqlType::String | KqlType::Dynamic, Value::Number(n)) => {
            Parsed::Str(Cow::Owned(n.to_string()))
        }
        (KqlType::String | KqlType::Dynamic, Value::Bool(b)) => {
            Parsed::Str(Cow::Owned(b.to_string()))
        }
        (KqlType::String | KqlType::Dynamic, Value::Array(_) | Value::Object(_)) => {
            Parsed::Str(Cow::Owned(v.to_string()))
        }
        (KqlType::Long, Value::Number(n)) => {
            Parsed::Long(json_integer(n).ok_or_else(|| type_error(t, v))?)
        }
        (KqlType::Int, Value::Number(n)) => Parsed::Int(
            json_integer(n)
                .and_then(|x| i32::try_from(x).ok())
                .ok_or_else(|| type_error(t, v))?,
        ),
        (KqlType::Real, Value::Number(n)) => {
            Parsed::Real(n.as_f64().ok_or_else(|| type_error(t, v))?)
        }
        (KqlType::Bool, Value::Bool(b)) => Parsed::Bool(*b),
        (KqlType::Bool, Value::Number(n)) => match n.as_i64() {
            Some(0) => Parsed::Bool(false),
            Some(1) => Parsed::Bool(true),
            _ => return Err(type_error(t, v)),
        },
        _ => return Err(type_error(t, v)),
    })
}

/// An integer, also from a float without a fraction (some exporters write `4.0`).
fn json_integer(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        (f.fract() == 0.0 && f >= i64::MIN as f64 && f <= i64::MAX as f64).then_some(f as i64)
    })
}

fn parse_text(t: KqlType, s: &str) -> Result<Parsed<'_>, String> {
    parse_text_cow(t, Cow::Borrowed(s))
}

fn parse_text_cow(t: KqlType, s: Cow<'_, str>) -> Result<Parsed<'_>, String> {
    if matches!(t, KqlType::String | KqlType::Dynamic) {
        return Ok(Parsed::Str(s));
    }
    let text = s.trim();
    if text.is_empty() {
        return Ok(Parsed::Null);
    }
    let bad = || {
        format!(
            "expected {}, got \"{}\"",
            t.name(),
            text.chars().take(60).collect::<String>()
        )
    };
    Ok(match t {
        KqlType::Long => Parsed::Long(text.parse().map_err(|_| bad())?),
        KqlType::Int => Parsed::Int(text.parse().map_err(|_| bad())?),
        KqlType::Real => Parsed::Real(text.parse().map_err(|_| bad())?),
        KqlType::Bool => match text {
            "true" | "True" | "TRUE" | "1" => Parsed::Bool(true),
            "false" | "False" | "FALSE" | "0" => Parsed::Bool(false),
            _ => return Err(bad()),
        },
        KqlType::DateTime => Parsed::Time(parse_datetime(text).ok_or_else(bad)?),
        KqlType::String | KqlType::Dynamic => unreachable!("handled above"),
    })
}

/// Parses an ISO-8601 UTC instant as advanced hunting writes it — `2026-07-18T12:59:31.2914446Z`
/// — into nanoseconds since the epoch. Accepts a space for `T`, 0–9 fractional digits, `Z`, a
/// `±HH:MM` offset, or no zone at all (then UTC, as in CSV exports).
pub fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match &b[i..] {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Int32Type, Int64Type, TimestampNanosecondType};
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn datetimes_keep_100ns_ticks_and_offsets() {
        let t = parse_datetime("2026-07-18T12:59:31.2914446Z").unwrap();
        assert_eq!(t % 1_000_000_000, 291_444_600);
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("1970-01-01 00:00:01"), Some(1_000_000_000));
        assert_eq!(parse_datetime("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_datetime("2024-02-29T00:00:00Z").map(|t| t / 86_400_000_000_000),
            Some(19_782)
        );
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "yesterday",
            "2026-07-18T12:59:31.Z",
            "2026-07-18T12:59:31Zjunk",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bad_row_is_rejected_whole_and_good_rows_are_kept() {
        let t = schema::table("DeviceNetworkEvents").unwrap();
        let mut b = TableBatchBuilder::new(t);
        b.push_json(&obj(json!({"Timestamp": "2026-07-18T12:59:31Z", "DeviceId": "d1", "RemotePort": 443, "ReportId": "7", "MachineGroup": "g"}))).unwrap();
        let e = b.push_json(&obj(json!({"Timestamp": "2026-07-18T12:59:31Z", "DeviceId": "d2", "RemotePort": "https"}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "DeviceNetworkEvents.RemotePort: expected int, got \"https\""
        );
        let e = b
            .push_json(&obj(
                json!({"Timestamp": "2026-07-18T12:59:31Z", "DeviceId": "d2", "Bogus": 1}),
            ))
            .unwrap_err();
        assert_eq!(e.to_string(), "DeviceNetworkEvents.Bogus: unknown column");
        let e = b.push_json(&obj(json!({"DeviceId": "d2"}))).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("Timestamp"));
        let e = b
            .push_json(&obj(json!({"Timestamp": "2026-07-18T12:59:31Z"})))
            .unwrap_err();
        assert_eq!(e.column.as_deref(), Some("DeviceId"));
        let e = b.push_json(&obj(json!({"Timestamp": "2026-07-18T12:59:31Z", "DeviceId": "d", "RemotePort": 3_000_000_000i64}))).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("RemotePort"));
        b.push_json(&obj(json!({"Timestamp": "2026-07-18T12:59:32Z", "DeviceId": "d3", "AdditionalFields": {"a": 1}}))).unwrap();
        let batch = b.finish();
        assert_eq!(batch.num_rows(), 2);
        let port = batch
            .column_by_name("RemotePort")
            .unwrap()
            .as_primitive::<Int32Type>();
        assert_eq!(port.value(0), 443);
        assert!(port.is_null(1));
        let report = batch
            .column_by_name("ReportId")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(report.value(0), 7);
        let extra = batch
            .column_by_name("AdditionalFields")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(extra.value(1), r#"{"a":1}"#);
        assert!(b.is_empty());
    }

    #[test]
    fn cells_and_text_fill_the_same_columns() {
        let t = schema::table("DeviceLogonEvents").unwrap();
        let ts = column_index(t, "Timestamp").unwrap();
        let dev = column_index(t, "DeviceId").unwrap();
        let admin = column_index(t, "IsLocalAdmin").unwrap();
        let mut b = TableBatchBuilder::new(t);
        b.push_cells(&[
            (ts, Cell::Time(5)),
            (dev, Cell::Str("d")),
            (admin, Cell::Bool(true)),
        ])
        .unwrap();
        b.push_text(&[
            (ts, "1970-01-01T00:00:00.000000005Z"),
            (dev, "d"),
            (admin, "False"),
        ])
        .unwrap();
        assert!(
            b.push_cells(&[(ts, Cell::Str("now")), (dev, Cell::Str("d"))])
                .is_err()
        );
        assert!(
            b.push_cells(&[
                (ts, Cell::Time(1)),
                (dev, Cell::Str("d")),
                (dev, Cell::Str("e"))
            ])
            .is_err()
        );
        let batch = b.finish();
        let col = batch.column(ts).as_primitive::<TimestampNanosecondType>();
        assert_eq!(col.values().to_vec(), vec![5, 5]);
        let a = batch.column(admin).as_boolean();
        assert!(a.value(0) && !a.value(1));
    }
}
