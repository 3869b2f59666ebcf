//! The on-disk queue: order across restarts, the byte bound with counted drops, the batch in
//! flight never dropped, one process per directory.

use rampart_agent::Error;
use rampart_agent::spool::Spool;
use rampart_proto::telemetry::TelemetryBatch;
use serde_json::json;

/// A batch of `rows` rows whose content does not compress away (so sizes are predictable).
fn batch(n: usize, rows: usize) -> TelemetryBatch {
    let mut b = TelemetryBatch {
        batch_id: format!("batch-{n:03}"),
        ..Default::default()
    };
    let list = (0..rows)
        .map(|i| {
            let noise: String = (0..64).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
            json!({"Timestamp": "2026-01-01T00:00:00Z", "ProcessId": i, "ProcessCommandLine": noise})
                .as_object()
                .unwrap()
                .clone()
        })
        .collect();
    b.tables.insert("DeviceProcessEvents".into(), list);
    b
}

fn drain(spool: &Spool) -> Vec<String> {
    let mut ids = Vec::new();
    while let Some(e) = spool.take_oldest() {
        let body = spool.read(&e).unwrap();
        let decoded: TelemetryBatch =
            serde_json::from_slice(&zstd::decode_all(&body[..]).unwrap()).unwrap();
        assert_eq!(decoded.batch_id, e.batch_id);
        assert_eq!(decoded.row_count() as u64, e.rows);
        ids.push(e.batch_id.clone());
        spool.complete(e.seq).unwrap();
    }
    ids
}

#[test]
fn spool_keeps_order_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    {
        let spool = Spool::open(&dir, 1 << 30).unwrap();
        for n in 0..12 {
            assert_eq!(spool.push(&batch(n, 3)).unwrap(), 0);
        }
        // Two delivered before the "crash".
        for _ in 0..2 {
            let e = spool.take_oldest().unwrap();
            spool.complete(e.seq).unwrap();
        }
        // A third taken but not acknowledged: it must come back first.
        spool.take_oldest().unwrap();
    }
    // A crash mid-write leaves a temporary file, which the next start removes.
    std::fs::write(dir.join(".tmp-99"), b"partial").unwrap();
    let spool = Spool::open(&dir, 1 << 30).unwrap();
    assert_eq!(spool.summary().batches, 10);
    assert_eq!(spool.summary().rows, 30);
    spool.push(&batch(12, 1)).unwrap();
    let expected: Vec<String> = (2..13).map(|n| format!("batch-{n:03}")).collect();
    assert_eq!(drain(&spool), expected);
    assert!(!dir.join(".tmp-99").exists());
    assert!(spool.is_empty());
}

#[test]
fn spool_drops_the_oldest_over_its_bound_and_counts_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    let one = Spool::encode(&batch(0, 10)).unwrap().len() as u64;
    // Room for about four batches.
    let bound = one * 4 + one / 2;
    {
        let spool = Spool::open(&dir, bound).unwrap();
        let mut dropped = 0;
        for n in 0..10 {
            dropped += spool.push(&batch(n, 10)).unwrap();
        }
        let s = spool.summary();
        assert!(s.bytes <= bound, "{} > {bound}", s.bytes);
        assert_eq!(s.batches, 4);
        assert_eq!(s.counters.dropped_batches, 6);
        assert_eq!(s.counters.dropped_rows, 60);
        assert_eq!(dropped, 60);
    }
    // The counters survive a restart; the newest batches are the ones kept, in order.
    let spool = Spool::open(&dir, bound).unwrap();
    assert_eq!(spool.summary().counters.dropped_rows, 60);
    let inspected = Spool::inspect(&dir).unwrap();
    assert_eq!(
        (inspected.batches, inspected.counters.dropped_rows),
        (4, 60)
    );
    assert_eq!(
        drain(&spool),
        vec!["batch-006", "batch-007", "batch-008", "batch-009"]
    );
}

#[test]
fn the_batch_in_flight_is_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let one = Spool::encode(&batch(0, 10)).unwrap().len() as u64;
    let spool = Spool::open(tmp.path(), one * 2 + one / 2).unwrap();
    spool.push(&batch(0, 10)).unwrap();
    let held = spool.take_oldest().unwrap();
    for n in 1..6 {
        spool.push(&batch(n, 10)).unwrap();
    }
    // The held batch is still there and can be completed; the others went oldest first.
    assert!(spool.read(&held).is_ok());
    spool.complete(held.seq).unwrap();
    assert_eq!(drain(&spool), vec!["batch-005"]);
    assert_eq!(spool.summary().counters.dropped_batches, 4);
}

#[test]
fn a_refused_batch_is_counted_separately() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = Spool::open(tmp.path(), 1 << 30).unwrap();
    spool.push(&batch(0, 5)).unwrap();
    let e = spool.take_oldest().unwrap();
    spool.refuse(e.seq).unwrap();
    let s = spool.summary();
    assert_eq!(
        (
            s.batches,
            s.counters.refused_rows,
            s.counters.refused_batches,
            s.counters.dropped_rows
        ),
        (0, 5, 1, 0)
    );
}

#[test]
fn one_process_per_spool_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let _first = Spool::open(tmp.path(), 1 << 20).unwrap();
    assert!(matches!(
        Spool::open(tmp.path(), 1 << 20),
        Err(Error::Locked(_))
    ));
}
