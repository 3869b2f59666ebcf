//! File sinks: Parquet parts that read back sorted, labels next to them.

use crate::common::spec;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::TimestampNanosecondType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rampart_core::schema;
use rampart_simulate::sinks::{Count, ParquetSink};

#[test]
fn parquet_parts_hold_every_row_in_time_order() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(15, 0.5, 12, &["ransomware"]);
    let mut sink = ParquetSink::create(tmp.path()).unwrap();
    let stats = rampart_simulate::generate(&s, &mut sink).unwrap();
    let mut count = Count::default();
    rampart_simulate::generate(&s, &mut count).unwrap();
    assert_eq!(count.rows, stats.rows);
    for t in schema::ALL {
        let path = ParquetSink::path_of(tmp.path(), t, 0);
        let Some(&expected) = stats.rows.get(t.name) else {
            assert!(!path.exists(), "{} has no rows but a file", t.name);
            continue;
        };
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let meta = builder.metadata().clone();
        assert_eq!(builder.schema().fields().len(), t.columns.len());
        let mut rows = 0;
        let mut last = i64::MIN;
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let ts = batch.column(0).as_primitive::<TimestampNanosecondType>();
            assert_eq!(ts.null_count(), 0);
            for v in ts.values().iter() {
                assert!(*v >= last, "{} is not sorted by Timestamp", t.name);
                last = *v;
            }
            rows += batch.num_rows() as u64;
        }
        assert_eq!(rows, expected, "{}", t.name);
        let rg = meta.row_group(0);
        assert!(
            rg.columns()
                .iter()
                .any(|c| c.compression().to_string().starts_with("ZSTD")),
            "{:?}",
            rg.column(0).compression()
        );
    }
    let labels = std::fs::read_to_string(tmp.path().join("labels.jsonl")).unwrap();
    assert_eq!(labels.lines().count() as u64, stats.labels);
    let first: serde_json::Value = serde_json::from_str(labels.lines().next().unwrap()).unwrap();
    assert_eq!(first["scenario"], "ransomware");
    assert_eq!(first["deviceId"].as_str().map(str::len), Some(40));
}
