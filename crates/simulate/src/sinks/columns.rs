//! Rows of one table appended straight into Arrow-layout column buffers: the Parquet sink's
//! builder. Cheaper than `TableBatchBuilder` for the generator's trusted cells: a cell is one
//! append to its column, columns a row leaves out are padded with nulls only when next written
//! (or at [`Columns::finish`]), and the buffers of an encoded batch come back through
//! [`Columns::recycle`] so steady state touches no fresh pages.

use crate::{Cell, Table};
use datafusion::arrow::array::{
    ArrayRef, ArrowPrimitiveType, BooleanArray, Float64Array, Int32Array, Int64Array,
    PrimitiveArray, RecordBatch, StringArray, TimestampNanosecondArray,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{
    ArrowNativeType, Float64Type, Int32Type, Int64Type, TimestampNanosecondType,
};
use rampart_core::schema::{self, KqlType};
use rampart_telemetry::{RowRejection, arrow_schema};
use std::sync::Arc;

/// A column's values in Arrow layout. Booleans are LSB-first bits.
enum Data {
    Bool(Vec<u8>),
    Int(Vec<i32>),
    Long(Vec<i64>),
    Real(Vec<f64>),
    Time(Vec<i64>),
    Str { offsets: Vec<i32>, bytes: Vec<u8> },
}

struct Col {
    data: Data,
    /// Runs of null rows `(first, count)`, in order: the validity bitmap is only made at
    /// [`Col::finish`], so appending a value costs no bit operations.
    gaps: Vec<(u32, u32)>,
    /// Rows this column covers (a row that did not set it is padded later).
    len: usize,
    nulls: usize,
}

/// Sets bit `i` of an LSB-first bitmap that holds exactly `i` bits.
#[inline]
fn push_bit(bits: &mut Vec<u8>, i: usize, v: bool) {
    if i.is_multiple_of(8) {
        bits.push(0);
    }
    if v && let Some(last) = bits.last_mut() {
        *last |= 1 << (i % 8);
    }
}

/// Keeps the first `rows` bits of a bitmap (later bits cleared, as appends only set bits).
fn truncate_bits(bits: &mut Vec<u8>, rows: usize) {
    bits.truncate(rows.div_ceil(8));
    if !rows.is_multiple_of(8)
        && let Some(last) = bits.last_mut()
    {
        *last &= (1u8 << (rows % 8)) - 1;
    }
}

/// Appends `n` zero bits to a bitmap holding `len` bits.
fn push_zeros(bits: &mut Vec<u8>, len: usize, n: usize) {
    bits.resize((len + n).div_ceil(8), 0);
}

impl Col {
    fn new(t: KqlType) -> Col {
        let data = match t {
            KqlType::Bool => Data::Bool(Vec::new()),
            KqlType::Int => Data::Int(Vec::new()),
            KqlType::Long => Data::Long(Vec::new()),
            KqlType::Real => Data::Real(Vec::new()),
            KqlType::DateTime => Data::Time(Vec::new()),
            KqlType::String | KqlType::Dynamic => Data::Str {
                offsets: vec![0],
                bytes: Vec::new(),
            },
        };
        Col {
            data,
            gaps: Vec::new(),
            len: 0,
            nulls: 0,
        }
    }

    /// Pads with nulls up to `rows`.
    #[cold]
    fn pad(&mut self, rows: usize) {
        if self.len >= rows {
            return;
        }
        let n = rows - self.len;
        match &mut self.data {
            Data::Bool(b) => push_zeros(b, self.len, n),
            Data::Int(v) => v.resize(rows, 0),
            Data::Long(v) | Data::Time(v) => v.resize(rows, 0),
            Data::Real(v) => v.resize(rows, 0.0),
            Data::Str { offsets, .. } => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.resize(rows + 1, last);
            }
        }
        self.gaps.push((self.len as u32, n as u32));
        self.nulls += n;
        self.len = rows;
    }

    /// Appends `c` as row `row` (padding before it); false when the cell's type does not fit.
    #[inline(always)]
    fn push(&mut self, row: usize, c: Cell<'_>) -> bool {
        if self.len < row {
            self.pad(row);
        }
        match (&mut self.data, c) {
            (Data::Bool(b), Cell::Bool(x)) => push_bit(b, row, x),
            (Data::Int(v), Cell::Int(x)) => v.push(x),
            (Data::Long(v), Cell::Long(x)) => v.push(x),
            (Data::Long(v), Cell::Int(x)) => v.push(i64::from(x)),
            (Data::Real(v), Cell::Real(x)) => v.push(x),
            (Data::Time(v), Cell::Time(x)) => v.push(x),
            (Data::Str { offsets, bytes }, Cell::Str(s)) => {
                bytes.extend_from_slice(s.as_bytes());
                offsets.push(bytes.len() as i32);
            }
            _ => return false,
        }
        self.len = row + 1;
        true
    }

    /// Drops rows from `rows` on (a rejected row).
    fn truncate(&mut self, rows: usize) {
        if self.len <= rows {
            return;
        }
        // Only the row being appended can be dropped: it was a value, not a gap.
        match &mut self.data {
            Data::Bool(b) => truncate_bits(b, rows),
            Data::Int(v) => v.truncate(rows),
            Data::Long(v) | Data::Time(v) => v.truncate(rows),
            Data::Real(v) => v.truncate(rows),
            Data::Str { offsets, bytes } => {
                offsets.truncate(rows + 1);
                bytes.truncate(offsets.last().copied().unwrap_or(0) as usize);
            }
        }
        self.len = rows;
    }

    /// The column as an Arrow array of `rows` rows; the buffers move into it.
    fn finish(&mut self, rows: usize) -> ArrayRef {
        self.pad(rows);
        let nulls = (self.nulls > 0).then(|| {
            let mut bits = vec![0xFFu8; rows.div_ceil(8)];
            for &(first, n) in &self.gaps {
                let (mut r, end) = (first as usize, (first + n) as usize);
                while r < end {
                    if r % 8 == 0 && r + 8 <= end {
                        bits[r / 8] = 0;
                        r += 8;
                    } else {
                        bits[r / 8] &= !(1 << (r % 8));
                        r += 1;
                    }
                }
            }
            NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(bits), 0, rows))
        });
        self.gaps.clear();
        self.len = 0;
        self.nulls = 0;
        match &mut self.data {
            Data::Bool(b) => Arc::new(BooleanArray::new(
                BooleanBuffer::new(Buffer::from_vec(std::mem::take(b)), 0, rows),
                nulls,
            )),
            Data::Int(v) => Arc::new(Int32Array::new(
                ScalarBuffer::from(std::mem::take(v)),
                nulls,
            )),
            Data::Long(v) => Arc::new(Int64Array::new(
                ScalarBuffer::from(std::mem::take(v)),
                nulls,
            )),
            Data::Real(v) => Arc::new(Float64Array::new(
                ScalarBuffer::from(std::mem::take(v)),
                nulls,
            )),
            Data::Time(v) => Arc::new(
                TimestampNanosecondArray::new(ScalarBuffer::from(std::mem::take(v)), nulls)
                    .with_timezone(rampart_telemetry::arrow_schema::UTC),
            ),
            Data::Str { offsets, bytes } => {
                let o = std::mem::take(offsets);
                offsets.push(0);
                let bytes = std::mem::take(bytes);
                // SAFETY: `o` starts at 0 and only grows, ends at `bytes.len()`, and every
                // value between two offsets was appended whole from a `&str`, so the offsets
                // are valid and each value is UTF-8 — what `try_new` would check in a second
                // pass over every byte.
                Arc::new(unsafe {
                    StringArray::new_unchecked(
                        OffsetBuffer::new_unchecked(ScalarBuffer::from(o)),
                        Buffer::from_vec(bytes),
                        nulls,
                    )
                })
            }
        }
    }

    /// Takes back the buffers of an array this column made, when no one else holds them and
    /// they are larger than what the column has now (it is empty: just finished).
    fn reclaim(&mut self, array: ArrayRef) {
        fn vec<T: ArrowNativeType>(b: Buffer) -> Vec<T> {
            let mut v = b.into_vec::<T>().unwrap_or_default();
            v.clear();
            v
        }
        fn keep<T>(cur: &mut Vec<T>, new: Vec<T>) {
            if new.capacity() > cur.capacity() && cur.is_empty() {
                *cur = new;
            }
        }
        fn values<T: ArrowPrimitiveType>(array: ArrayRef) -> Option<Vec<T::Native>> {
            let a = array.as_any().downcast_ref::<PrimitiveArray<T>>()?.clone();
            drop(array);
            Some(vec(a.into_parts().1.into_inner()))
        }
        match &mut self.data {
            Data::Bool(b) => {
                if let Some(a) = array.as_any().downcast_ref::<BooleanArray>().cloned() {
                    drop(array);
                    keep(b, vec(a.into_parts().0.into_inner()));
                }
            }
            Data::Int(v) => keep(v, values::<Int32Type>(array).unwrap_or_default()),
            Data::Long(v) => keep(v, values::<Int64Type>(array).unwrap_or_default()),
            Data::Time(v) => keep(
                v,
                values::<TimestampNanosecondType>(array).unwrap_or_default(),
            ),
            Data::Real(v) => keep(v, values::<Float64Type>(array).unwrap_or_default()),
            Data::Str { offsets, bytes } => {
                if let Some(a) = array.as_any().downcast_ref::<StringArray>().cloned() {
                    drop(array);
                    let (o, values, _) = a.into_parts();
                    let mut o: Vec<i32> = vec(o.into_inner().into_inner());
                    if o.capacity() > offsets.capacity() && offsets.len() <= 1 {
                        o.push(0);
                        *offsets = o;
                    }
                    keep(bytes, vec(values));
                }
            }
        }
    }

    /// Makes room for `rows` more rows of about `bytes` text (after a batch of that size).
    fn reserve(&mut self, rows: usize, bytes: usize) {
        match &mut self.data {
            Data::Bool(b) => b.reserve(rows.div_ceil(8)),
            Data::Int(v) => v.reserve(rows),
            Data::Long(v) | Data::Time(v) => v.reserve(rows),
            Data::Real(v) => v.reserve(rows),
            Data::Str { offsets, bytes: b } => {
                offsets.reserve(rows + 1);
                b.reserve(bytes);
            }
        }
    }

    fn text_len(&self) -> usize {
        match &self.data {
            Data::Str { bytes, .. } => bytes.len(),
            _ => 0,
        }
    }
}

/// One table's rows being appended, in Arrow layout.
pub struct Columns {
    table: &'static Table,
    cols: Vec<Col>,
    rows: usize,
    device_id: Option<usize>,
    /// Text bytes per column in the last finished batch (to size the next one).
    last_text: Vec<usize>,
    last_rows: usize,
    /// Rows a batch is expected to hold.
    expected: usize,
}

/// Rows after which a first batch's buffers are sized for [`Columns::expected`] rows.
const SAMPLE_ROWS: usize = 1024;

impl Columns {
    /// A builder for batches of about `expected` rows.
    pub fn new(table: &'static Table, expected: usize) -> Columns {
        Columns {
            table,
            cols: table.columns.iter().map(|c| Col::new(c.kql_type)).collect(),
            rows: 0,
            device_id: table
                .requires_device_id()
                .then(|| rampart_telemetry::rows::column_index(table, schema::DEVICE_ID))
                .flatten(),
            last_text: vec![0; table.columns.len()],
            last_rows: 0,
            expected,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one row of `(column index, cell)` pairs; refuses (appending nothing) a cell of the
    /// wrong type, a column given twice, or a row without its Timestamp or required DeviceId.
    pub fn push(&mut self, cells: &[(usize, Cell<'_>)]) -> Result<(), RowRejection> {
        let row = self.rows;
        // The loop only appends; the reason for a refusal is worked out off the hot path.
        let mut refused = None;
        for (k, &(i, c)) in cells.iter().enumerate() {
            if matches!(c, Cell::Null) {
                continue;
            }
            let ok = match self.cols.get_mut(i) {
                Some(col) => col.len <= row && col.push(row, c),
                None => false,
            };
            if !ok {
                refused = Some(k);
                break;
            }
        }
        if let Some(k) = refused {
            return Err(self.refuse(row, cells, k));
        }
        let present = |c: usize| self.cols[c].len > row;
        if !present(0) {
            return Err(self.reject(
                Some(schema::TIMESTAMP),
                "missing (every row needs its event time)".to_owned(),
            ));
        }
        if let Some(d) = self.device_id
            && !present(d)
        {
            return Err(self.reject(Some(schema::DEVICE_ID), "missing".to_owned()));
        }
        self.rows += 1;
        if self.rows == SAMPLE_ROWS && self.last_rows == 0 {
            // The first batch: size the buffers for a whole one from its first rows, instead of
            // doubling them (each doubling a copy into fresh pages).
            for c in &mut self.cols {
                let bytes = c.text_len() * (self.expected / SAMPLE_ROWS);
                c.reserve(self.expected, bytes + bytes / 8);
            }
        }
        Ok(())
    }

    /// Why `cells[k]` could not be appended to row `row`.
    #[cold]
    fn refuse(&mut self, row: usize, cells: &[(usize, Cell<'_>)], k: usize) -> RowRejection {
        let (i, c) = cells[k];
        let reason = match self.cols.get(i) {
            None => format!("no column at position {i}"),
            Some(col) if col.len > row => "given twice".to_owned(),
            Some(_) => format!(
                "expected {}, got {c:?}",
                self.table.columns[i].kql_type.name()
            ),
        };
        self.reject(self.table.columns.get(i).map(|c| c.name), reason)
    }

    fn reject(&mut self, column: Option<&str>, reason: String) -> RowRejection {
        for c in &mut self.cols {
            c.truncate(self.rows);
        }
        RowRejection {
            table: self.table.name,
            column: column.map(str::to_owned),
            reason,
        }
    }

    /// The rows so far as one batch; the builder starts empty again.
    pub fn finish(&mut self) -> RecordBatch {
        let rows = self.rows;
        for (c, n) in self.cols.iter().zip(&mut self.last_text) {
            *n = c.text_len();
        }
        self.last_rows = rows;
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(|c| c.finish(rows)).collect();
        self.rows = 0;
        // Column 0 (Timestamp) is the only non-nullable one and every row has it.
        RecordBatch::try_new(arrow_schema(self.table), arrays)
            .expect("columns match the table schema")
    }

    /// Reuses the buffers of a batch this builder finished (call before appending the next
    /// rows); buffers still shared elsewhere are simply dropped. Then makes room for a batch
    /// like the last one.
    pub fn recycle(&mut self, batch: Option<RecordBatch>) {
        if let Some(batch) = batch
            && self.rows == 0
        {
            let arrays: Vec<ArrayRef> = batch.columns().to_vec();
            drop(batch);
            for (c, a) in self.cols.iter_mut().zip(arrays) {
                c.reclaim(a);
            }
        }
        let rows = self.last_rows;
        for (c, &n) in self.cols.iter_mut().zip(&self.last_text) {
            c.reserve(rows, n + n / 8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;

    fn network() -> &'static Table {
        schema::table("DeviceNetworkEvents").unwrap()
    }

    fn col(name: &str) -> usize {
        rampart_telemetry::rows::column_index(network(), name).unwrap()
    }

    #[test]
    fn rows_become_the_batch_table_batch_builder_makes() {
        let t = network();
        let rows: Vec<Vec<(usize, Cell<'_>)>> = vec![
            vec![
                (col("Timestamp"), Cell::Time(10)),
                (col("DeviceId"), Cell::Str("d1")),
                (col("RemotePort"), Cell::Int(443)),
                (col("ReportId"), Cell::Int(7)),
                (col("IsInitiatingProcessRemoteSession"), Cell::Bool(true)),
            ],
            vec![
                (col("DeviceId"), Cell::Str("d2")),
                (col("Timestamp"), Cell::Time(20)),
                (col("RemoteUrl"), Cell::Str("é.example")),
                (col("ReportId"), Cell::Null),
            ],
            vec![
                (col("Timestamp"), Cell::Time(30)),
                (col("DeviceId"), Cell::Str("d3")),
                (col("IsInitiatingProcessRemoteSession"), Cell::Bool(false)),
                (col("ReportId"), Cell::Long(-5)),
            ],
        ];
        let mut ours = Columns::new(t, 4096);
        let mut theirs = rampart_telemetry::TableBatchBuilder::new(t);
        for (k, r) in rows.iter().enumerate() {
            ours.push(r).unwrap();
            theirs.push_cells(r).unwrap();
            if k == 1 {
                // Refused rows leave nothing behind.
                let twice = [
                    (col("Timestamp"), Cell::Time(1)),
                    (col("DeviceId"), Cell::Str("x")),
                    (col("RemotePort"), Cell::Int(1)),
                    (col("RemotePort"), Cell::Int(2)),
                ];
                assert_eq!(ours.push(&twice).unwrap_err().reason, "given twice");
                let no_device = [(col("Timestamp"), Cell::Time(1))];
                assert!(ours.push(&no_device).is_err());
                let bad_type = [
                    (col("Timestamp"), Cell::Time(1)),
                    (col("DeviceId"), Cell::Str("x")),
                    (col("RemotePort"), Cell::Str("443")),
                ];
                assert!(ours.push(&bad_type).is_err());
            }
        }
        assert_eq!(ours.rows(), 3);
        let a = ours.finish();
        let b = theirs.finish();
        assert_eq!(a, b);
        assert_eq!(a.column(col("ReportId")).null_count(), 1);
    }

    #[test]
    fn encoded_batches_give_their_buffers_back() {
        let t = network();
        let mut cols = Columns::new(t, 4096);
        let text = "x".repeat(100);
        for i in 0..1000 {
            cols.push(&[
                (col("Timestamp"), Cell::Time(i)),
                (col("DeviceId"), Cell::Str(&text)),
                (col("ReportId"), Cell::Long(i)),
            ])
            .unwrap();
        }
        let batch = cols.finish();
        let ids = batch
            .column(col("ReportId"))
            .as_primitive::<Int64Type>()
            .values()
            .as_ptr();
        cols.recycle(Some(batch));
        let Data::Long(v) = &cols.cols[col("ReportId")].data else {
            panic!("ReportId is a long column");
        };
        assert_eq!(v.as_ptr(), ids, "the same allocation comes back");
        let Data::Str { offsets, bytes } = &cols.cols[col("DeviceId")].data else {
            panic!("DeviceId is a string column");
        };
        assert!(bytes.capacity() >= 100_000 && offsets.capacity() >= 1001);
        assert_eq!(offsets, &[0]);
        // And the next batch is built in them, right.
        cols.push(&[
            (col("Timestamp"), Cell::Time(5)),
            (col("DeviceId"), Cell::Str("d")),
        ])
        .unwrap();
        let b = cols.finish();
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.column(col("DeviceId")).as_string::<i32>().value(0), "d");
        assert!(b.column(col("ReportId")).is_null(0));
    }
}
