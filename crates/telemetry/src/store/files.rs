//! Parquet files: rows sorted by `Timestamp`, one file per tenant / table / UTC day, compressed
//! with zstd, with page statistics so that time filters skip what they don't need.

use crate::store::StoreError;
use bytes::Bytes;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::TimestampNanosecondType;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use rampart_core::schema::Table;

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// Rows of one UTC day, sorted by time.
pub struct DayBatch {
    pub day: String,
    pub batch: RecordBatch,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn day_name(days: i64) -> String {
    let (y, m, d) = rampart_core::timefmt::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number of a timestamp.
pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(NANOS_PER_DAY)
}

/// Sorts the rows of one table by `Timestamp` and cuts them at day boundaries.
pub fn sort_by_day(
    table: &'static Table,
    batches: &[RecordBatch],
) -> Result<Vec<DayBatch>, StoreError> {
    let batches: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    // Every row's place in time order, ties in arrival order (each key is unique, so the files
    // do not depend on how the sort breaks ties). The rows are gathered from the hot batches in
    // one copy: concatenating them first and then sorting copied every column twice, into
    // memory fresh from the kernel at each flush.
    let mut order: Vec<(i64, usize, usize)> =
        Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for (b, batch) in batches.iter().enumerate() {
        // Column 0 is `Timestamp` in every table.
        let ts = batch
            .column(0)
            .as_primitive_opt::<TimestampNanosecondType>()
            .ok_or_else(|| {
                StoreError::Internal(format!("{}: the first column is not Timestamp", table.name))
            })?;
        order.extend(ts.values().iter().enumerate().map(|(r, &t)| (t, b, r)));
    }
    order.sort_unstable();
    let indices: Vec<(usize, usize)> = order.iter().map(|&(_, b, r)| (b, r)).collect();
    drop(order);
    let sorted = interleave_record_batch(&batches, &indices)
        .and_then(|b| RecordBatch::try_new(crate::arrow_schema(table), b.columns().to_vec()))
        .map_err(|e| StoreError::internal("sorting rows", e))?;
    let ts = sorted.column(0).as_primitive::<TimestampNanosecondType>();
    let mut out = Vec::new();
    let mut start = 0;
    while start < ts.len() {
        let day = day_of(ts.value(start));
        let mut end = start;
        while end < ts.len() && day_of(ts.value(end)) == day {
            end += 1;
        }
        out.push(DayBatch {
            day: day_name(day),
            batch: sorted.slice(start, end - start),
            min_ts: ts.value(start),
            max_ts: ts.value(end - 1),
        });
        start = end;
    }
    Ok(out)
}

fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .build()
}

/// One sorted batch as a Parquet file.
pub fn write_parquet(batch: &RecordBatch) -> Result<Bytes, StoreError> {
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 4);
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(properties()))
        .map_err(|e| StoreError::internal("writing Parquet", e))?;
    w.write(batch)
        .map_err(|e| StoreError::internal("writing Parquet", e))?;
    w.close()
        .map_err(|e| StoreError::internal("writing Parquet", e))?;
    Ok(Bytes::from(buf))
}

/// Every row of a Parquet file.
pub fn read_parquet(bytes: Bytes) -> Result<Vec<RecordBatch>, StoreError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| StoreError::internal("reading Parquet", e))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::internal("reading Parquet", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names() {
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(19_782), "2024-02-29");
        assert_eq!(day_name(-1), "1969-12-31");
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(NANOS_PER_DAY), 1);
    }
}
