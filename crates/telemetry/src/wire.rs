//! The binary agent wire format: a batch of telemetry as Arrow IPC streams, one per table.
//!
//! JSON costs the server far more than storing the rows does (parsing 1.8 KB per event caps one
//! core at tens of thousands of events per second; the log and hot tail alone take over half a
//! million), so agents send the columns they already built. A body is a sequence of frames,
//! `len: u32 LE | Arrow IPC stream`, each stream holding batches of one table. The table is named
//! by the schema metadata key `table` (the schemas of [`crate::arrow_schema`] carry it).
//!
//! A stream may carry any subset of its table's columns, in any order; absent columns are null.
//! Column types must be the table's Arrow types, except that any timestamp unit or time zone is
//! converted to UTC nanoseconds, and `LargeUtf8`/`Utf8View` to `Utf8`. An unknown column or a
//! wrong type rejects that table's rows (the agent is broken, not the data); a row without a
//! Timestamp, or with another device's DeviceId, is rejected alone. A missing DeviceId becomes
//! the sender's.

use crate::arrow_schema::arrow_schema;
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::{cast, concat_batches, filter};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use rampart_core::schema::{self, Table};
use std::sync::Arc;

/// The media type of a binary agent batch.
pub const CONTENT_TYPE: &str = "application/vnd.rampart.telemetry+arrow";

/// Why a body could not be read at all (nothing of it is stored).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WireError(String);

/// Rows of one table that were not taken, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub table: String,
    /// The row's position among its table's rows in the body; `None` when a whole stream was
    /// refused.
    pub index: Option<usize>,
    pub rows: usize,
    pub reason: String,
}

/// A decoded batch: the accepted rows per table (in the table's full schema) and what was not.
#[derive(Debug, Default)]
pub struct Decoded {
    pub tables: Vec<(&'static Table, RecordBatch)>,
    pub rejected: Vec<Rejected>,
}

/// Encodes batches as a wire body. Each batch's schema must carry its table name (as
/// [`crate::arrow_schema`]'s do, or set with [`with_table`]).
pub fn encode(batches: &[RecordBatch]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    for batch in batches {
        let mut stream = Vec::new();
        let err = |e: datafusion::arrow::error::ArrowError| WireError(format!("encoding: {e}"));
        let mut w = StreamWriter::try_new(&mut stream, &batch.schema()).map_err(err)?;
        w.write(batch).map_err(err)?;
        w.finish().map_err(err)?;
        drop(w);
        let len = u32::try_from(stream.len())
            .map_err(|_| WireError("a table stream over 4 GiB".into()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&stream);
    }
    Ok(out)
}

/// `batch` with its schema naming `table`, for producers that build their own schemas.
pub fn with_table(batch: RecordBatch, table: &str) -> Result<RecordBatch, WireError> {
    let mut meta = batch.schema().metadata().clone();
    meta.insert("table".into(), table.into());
    let schema = Arc::new(batch.schema().as_ref().clone().with_metadata(meta));
    batch
        .with_schema(schema)
        .map_err(|e| WireError(e.to_string()))
}

/// Decodes a body sent by `device_id`, conforming every stream to its table's schema.
pub fn decode(body: &[u8], device_id: &str) -> Result<Decoded, WireError> {
    let mut out = Decoded::default();
    let mut rest = body;
    let mut frame = 0usize;
    // Rows seen per table so far: a rejected row's index counts across the body's frames.
    let mut seen: Vec<(&'static str, usize)> = Vec::new();
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(WireError(format!("frame {frame}: truncated length prefix")));
        };
        let len = u32::from_le_bytes(*len) as usize;
        let Some((stream, tail)) = tail.split_at_checked(len) else {
            return Err(WireError(format!(
                "frame {frame}: {len} bytes announced, {} present",
                tail.len()
            )));
        };
        rest = tail;
        let reader = StreamReader::try_new(stream, None)
            .map_err(|e| WireError(format!("frame {frame}: not an Arrow IPC stream: {e}")))?;
        let name = reader.schema().metadata().get("table").cloned();
        let Some(name) = name else {
            return Err(WireError(format!(
                "frame {frame}: the stream's schema has no 'table' metadata"
            )));
        };
        let mut batches = Vec::new();
        for b in reader {
            batches.push(b.map_err(|e| WireError(format!("frame {frame} ({name}): {e}")))?);
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        frame += 1;
        if rows == 0 {
            continue;
        }
        let Some(table) = schema::table(&name) else {
            out.rejected.push(Rejected {
                table: name.clone(),
                index: None,
                rows,
                reason: format!("unknown table {name}"),
            });
            continue;
        };
        let at = match seen.iter().position(|(t, _)| *t == table.name) {
            Some(i) => i,
            None => {
                seen.push((table.name, 0));
                seen.len() - 1
            }
        };
        let mut offset = seen[at].1;
        seen[at].1 += rows;
        for batch in batches {
            let n = batch.num_rows();
            match conform(table, &batch, device_id, offset, &mut out.rejected) {
                Ok(Some(b)) => out.tables.push((table, b)),
                Ok(None) => {}
                Err(reason) => out.rejected.push(Rejected {
                    table: table.name.to_owned(),
                    index: None,
                    rows: n,
                    reason,
                }),
            }
            offset += n;
        }
    }
    // One batch per table: the log and the hot tail keep fewer, larger pieces.
    out.tables = merge_by_table(std::mem::take(&mut out.tables))?;
    Ok(out)
}

fn merge_by_table(
    tables: Vec<(&'static Table, RecordBatch)>,
) -> Result<Vec<(&'static Table, RecordBatch)>, WireError> {
    let mut merged: Vec<(&'static Table, Vec<RecordBatch>)> = Vec::new();
    for (t, b) in tables {
        match merged.iter_mut().find(|(m, _)| m.name == t.name) {
            Some((_, v)) => v.push(b),
            None => merged.push((t, vec![b])),
        }
    }
    merged
        .into_iter()
        .map(|(t, v)| {
            if v.len() == 1 {
                return Ok((t, v.into_iter().next().expect("one batch")));
            }
            let b = concat_batches(&arrow_schema(t), &v).map_err(|e| WireError(e.to_string()))?;
            Ok((t, b))
        })
        .collect()
}

/// `batch` in `table`'s schema with its bad rows left out (and listed in `rejected`). `Err` when
/// the stream's columns don't fit the table at all; `Ok(None)` when no row is left.
fn conform(
    table: &'static Table,
    batch: &RecordBatch,
    device_id: &str,
    offset: usize,
    rejected: &mut Vec<Rejected>,
) -> Result<Option<RecordBatch>, String> {
    let target: SchemaRef = arrow_schema(table);
    let n = batch.num_rows();
    let incoming = batch.schema();
    let mut columns: Vec<Option<ArrayRef>> = vec![None; target.fields().len()];
    for (field, array) in incoming.fields().iter().zip(batch.columns()) {
        let Some(i) = target.index_of(field.name()).ok() else {
            return Err(format!("{}.{}: no such column", table.name, field.name()));
        };
        let want = target.field(i).data_type();
        let array = if array.data_type() == want {
            array.clone()
        } else if convertible(array.data_type(), want) {
            cast(array, want).map_err(|e| format!("{}.{}: {e}", table.name, field.name()))?
        } else {
            return Err(format!(
                "{}.{}: expected {want}, got {}",
                table.name,
                field.name(),
                array.data_type()
            ));
        };
        columns[i] = Some(array);
    }

    let mut keep = vec![true; n];
    let mut dropped = 0usize;
    let mut reject = |row: usize, reason: String, keep: &mut Vec<bool>| {
        if keep[row] {
            keep[row] = false;
            dropped += 1;
            rejected.push(Rejected {
                table: table.name.to_owned(),
                index: Some(offset + row),
                rows: 1,
                reason,
            });
        }
    };
    // An inventory table has no Timestamp to require.
    let ts = target.index_of(schema::TIMESTAMP).ok();
    match ts.map(|ts| &columns[ts]) {
        None => {}
        Some(None) => return Err(format!("{}.Timestamp: required", table.name)),
        Some(Some(a)) if a.null_count() > 0 => {
            for row in (0..n).filter(|r| a.is_null(*r)) {
                reject(
                    row,
                    format!("{}.Timestamp: required", table.name),
                    &mut keep,
                );
            }
        }
        Some(Some(_)) => {}
    }
    if let Ok(d) = target.index_of(schema::DEVICE_ID) {
        let filled = match &columns[d] {
            None => Arc::new(StringArray::from(vec![device_id; n])) as ArrayRef,
            Some(a) => {
                let ids = a
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| format!("{}.DeviceId: expected Utf8", table.name))?;
                for row in 0..n {
                    if ids.is_valid(row) && !ids.value(row).eq_ignore_ascii_case(device_id) {
                        reject(
                            row,
                            format!(
                                "{}.DeviceId: a device may only send its own telemetry ({device_id})",
                                table.name
                            ),
                            &mut keep,
                        );
                    }
                }
                if ids.iter().all(|v| v == Some(device_id)) {
                    a.clone()
                } else {
                    // A missing id is the sender's, and one in other letters is stored as the
                    // credential names it (one device, one DeviceId); rows of other devices
                    // were rejected above and are filtered out below.
                    Arc::new(StringArray::from(vec![device_id; n])) as ArrayRef
                }
            }
        };
        columns[d] = Some(filled);
    }

    if dropped == n {
        return Ok(None);
    }
    let mask = (dropped > 0).then(|| BooleanArray::from(keep));
    let arrays = columns
        .into_iter()
        .zip(target.fields())
        .map(|(c, f)| {
            let a = c.unwrap_or_else(|| new_null_array(f.data_type(), n));
            match &mask {
                // Filtered before the batch is built: the schema forbids the null Timestamps
                // of the rows being dropped.
                Some(m) => filter(&a, m).map_err(|e| format!("{}: {e}", table.name)),
                None => Ok(a),
            }
        })
        .collect::<Result<Vec<ArrayRef>, String>>()?;
    RecordBatch::try_new(target, arrays)
        .map(Some)
        .map_err(|e| format!("{}: {e}", table.name))
}

/// Type differences the server converts instead of refusing.
fn convertible(from: &DataType, to: &DataType) -> bool {
    matches!(
        (from, to),
        (DataType::Timestamp(_, _), DataType::Timestamp(_, _))
            | (DataType::LargeUtf8 | DataType::Utf8View, DataType::Utf8)
            | (DataType::Null, _)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{Cell, TableBatchBuilder};
    use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use std::collections::HashMap;

    const DEV: &str = "0123456789abcdef0123456789abcdef01234567";

    /// The batch without its DeviceId column when `drop` (the builder insists on one).
    fn without_device_id(batch: RecordBatch, drop: bool) -> RecordBatch {
        if !drop {
            return batch;
        }
        let keep: Vec<usize> = (0..batch.num_columns())
            .filter(|i| batch.schema().field(*i).name() != schema::DEVICE_ID)
            .collect();
        batch.project(&keep).unwrap()
    }

    fn process_rows(device: Option<&str>, n: usize) -> RecordBatch {
        let table = schema::table("DeviceProcessEvents").unwrap();
        let mut b = TableBatchBuilder::new(table);
        let ts = crate::rows::column_index(table, "Timestamp").unwrap();
        let dev = crate::rows::column_index(table, "DeviceId").unwrap();
        let file = crate::rows::column_index(table, "FileName").unwrap();
        for i in 0..n {
            let cells = [
                (ts, Cell::Time(1_700_000_000_000_000_000 + i as i64)),
                (file, Cell::Str("cmd.exe")),
                (dev, Cell::Str(device.unwrap_or(DEV))),
            ];
            b.push_cells(&cells).unwrap();
        }
        without_device_id(b.finish(), device.is_none())
    }

    #[test]
    fn inventory_rows_need_no_timestamp() {
        let table = schema::table("DeviceTvmSoftwareInventory").unwrap();
        let mut b = TableBatchBuilder::new(table);
        let dev = crate::rows::column_index(table, "DeviceId").unwrap();
        let name = crate::rows::column_index(table, "SoftwareName").unwrap();
        for package in ["bash", "curl"] {
            b.push_cells(&[(dev, Cell::Str(DEV)), (name, Cell::Str(package))])
                .unwrap();
        }
        let d = decode(
            &encode(&[without_device_id(b.finish(), true)]).unwrap(),
            DEV,
        )
        .unwrap();
        assert!(d.rejected.is_empty(), "{:?}", d.rejected);
        let (t, batch) = &d.tables[0];
        assert_eq!((t.name, batch.num_rows()), (table.name, 2));
        let ids = batch
            .column_by_name("DeviceId")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(ids.value(1), DEV, "the sender's id, as for event tables");
    }

    #[test]
    fn round_trips_full_batches() {
        let body = encode(&[process_rows(Some(DEV), 3), process_rows(Some(DEV), 2)]).unwrap();
        let d = decode(&body, DEV).unwrap();
        assert!(d.rejected.is_empty(), "{:?}", d.rejected);
        assert_eq!(d.tables.len(), 1, "merged into one batch per table");
        assert_eq!(d.tables[0].1.num_rows(), 5);
        assert_eq!(d.tables[0].1.schema(), arrow_schema(d.tables[0].0));
    }

    #[test]
    fn partial_columns_are_filled_and_device_id_defaults_to_the_sender() {
        let schema = Arc::new(Schema::new_with_metadata(
            vec![
                Field::new(
                    "Timestamp",
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                    true,
                ),
                Field::new("ProcessId", DataType::Int64, true),
            ],
            HashMap::from([("table".to_owned(), "DeviceProcessEvents".to_owned())]),
        ));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampMillisecondArray::from(vec![Some(1_000), None])),
                Arc::new(Int64Array::from(vec![7, 8])),
            ],
        )
        .unwrap();
        let d = decode(&encode(&[batch]).unwrap(), DEV).unwrap();
        assert_eq!(d.rejected.len(), 1);
        assert_eq!(d.rejected[0].index, Some(1));
        assert_eq!(
            d.rejected[0].reason,
            "DeviceProcessEvents.Timestamp: required"
        );
        let (_, b) = &d.tables[0];
        assert_eq!(b.num_rows(), 1);
        let ids = b
            .column_by_name("DeviceId")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(ids.value(0), DEV);
        let ts = b
            .column_by_name("Timestamp")
            .unwrap()
            .as_any()
            .downcast_ref::<datafusion::arrow::array::TimestampNanosecondArray>()
            .unwrap();
        assert_eq!(
            ts.value(0),
            1_000_000_000,
            "milliseconds became nanoseconds"
        );
    }

    #[test]
    fn the_senders_id_in_other_letters_is_stored_as_the_credential_names_it() {
        let upper = DEV.to_ascii_uppercase();
        let body = encode(&[process_rows(Some(&upper), 2), process_rows(Some(DEV), 1)]).unwrap();
        let d = decode(&body, DEV).unwrap();
        assert!(d.rejected.is_empty(), "{:?}", d.rejected);
        let ids = d.tables[0]
            .1
            .column_by_name("DeviceId")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        assert_eq!(ids.iter().collect::<Vec<_>>(), vec![Some(DEV); 3]);
    }

    #[test]
    fn other_devices_rows_and_bad_columns_are_rejected_not_fatal() {
        let other = "ffffffffffffffffffffffffffffffffffffffff";
        let bad = with_table(
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    "ProcessId",
                    DataType::Utf8,
                    true,
                )])),
                vec![Arc::new(StringArray::from(vec!["x"]))],
            )
            .unwrap(),
            "DeviceProcessEvents",
        )
        .unwrap();
        let body = encode(&[process_rows(Some(other), 2), bad, process_rows(None, 4)]).unwrap();
        let d = decode(&body, DEV).unwrap();
        assert_eq!(d.tables[0].1.num_rows(), 4);
        let reasons: Vec<_> = d.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].starts_with("DeviceProcessEvents.DeviceId: a device may only"));
        assert_eq!(
            reasons[2],
            "DeviceProcessEvents.ProcessId: expected Int64, got Utf8"
        );
        assert_eq!(d.rejected.iter().map(|r| r.rows).sum::<usize>(), 3);
    }

    #[test]
    fn garbage_is_an_error_naming_the_frame() {
        let e = decode(&[5, 0, 0, 0, 1, 2], DEV).unwrap_err();
        assert_eq!(e.to_string(), "frame 0: 5 bytes announced, 2 present");
        let e = decode(&[2, 0, 0, 0, 1, 2], DEV).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("frame 0: not an Arrow IPC stream")
        );
        let e = decode(&[1, 0], DEV).unwrap_err();
        assert_eq!(e.to_string(), "frame 0: truncated length prefix");
        let named = process_rows(Some(DEV), 1);
        let bare = Arc::new(
            named
                .schema()
                .as_ref()
                .clone()
                .with_metadata(HashMap::new()),
        );
        let unnamed = RecordBatch::try_new(bare, named.columns().to_vec()).unwrap();
        let e = decode(&encode(&[unnamed]).unwrap(), DEV).unwrap_err();
        assert_eq!(
            e.to_string(),
            "frame 0: the stream's schema has no 'table' metadata"
        );
    }
}
