//! File sinks: Parquet parts that read back sorted, labels next to them.

use crate::common::spec;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::TimestampNanosecondType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rampart_core::schema;
use rampart_simulate::sinks::{Count, Layout, ParquetSink};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Every Parquet file under `dir` (table folders, then parts), with its bytes.
fn parquet_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for t in std::fs::read_dir(dir).unwrap() {
        let t = t.unwrap().path();
        if !t.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&t).unwrap() {
            let f = f.unwrap().path();
            let name = f.strip_prefix(dir).unwrap().to_path_buf();
            files.insert(name, std::fs::read(&f).unwrap());
        }
    }
    files
}

/// A table's rows from all its parts, in order, and the row count of each row group.
fn read_table(dir: &Path, table: &'static schema::Table) -> (Option<RecordBatch>, Vec<usize>) {
    let mut batches = Vec::new();
    let mut groups = Vec::new();
    for part in 0.. {
        let path = ParquetSink::path_of(dir, table, part);
        if !path.exists() {
            break;
        }
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        groups.extend(
            builder
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows() as usize),
        );
        let schema = builder.schema().clone();
        let rows: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
        batches.push(concat_batches(&schema, &rows).unwrap());
    }
    let all = batches
        .first()
        .map(|b| concat_batches(&b.schema(), &batches).unwrap());
    (all, groups)
}

#[test]
fn parquet_layout_boundaries_keep_every_row_and_repeat_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(8, 0.25, 5, &["phishing"]);
    // Tiny batches, row groups and files: every boundary is crossed many times.
    let layout = Layout {
        batch_rows: 100,
        group_rows: 300,
        file_rows: 1_000,
    };
    let run = |name: &str, layout: Option<Layout>| {
        let dir = tmp.path().join(name);
        let mut sink = match layout {
            Some(l) => ParquetSink::with_layout(&dir, l).unwrap(),
            None => ParquetSink::create(&dir).unwrap(),
        };
        let stats = rampart_simulate::generate(&s, &mut sink).unwrap();
        (dir, stats)
    };
    let (a, stats) = run("a", Some(layout));
    let (b, _) = run("b", Some(layout));
    let (whole, _) = run("whole", None);
    let (fa, fb) = (parquet_files(&a), parquet_files(&b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert!(
            bytes == &fb[name],
            "{} differs between two runs",
            name.display()
        );
    }
    let network = schema::table("DeviceNetworkEvents").unwrap();
    assert!(
        ParquetSink::path_of(&a, network, 2).exists(),
        "{:?}",
        fa.keys()
    );
    for t in schema::ALL {
        let (small, groups) = read_table(&a, t);
        let (big, _) = read_table(&whole, t);
        let Some(&expected) = stats.rows.get(t.name) else {
            assert!(small.is_none() && big.is_none(), "{} has files", t.name);
            continue;
        };
        let (small, big) = (small.unwrap(), big.unwrap());
        assert_eq!(small.num_rows() as u64, expected, "{}", t.name);
        // The same rows whatever the layout.
        assert_eq!(small, big, "{}", t.name);
        // A group ends after the batch that fills it.
        let last = groups.len() - 1;
        for (i, g) in groups.iter().enumerate() {
            assert!(*g <= 300, "{}: a row group of {g} rows", t.name);
            assert!(i == last || *g == 300, "{}: groups {groups:?}", t.name);
        }
    }
}
