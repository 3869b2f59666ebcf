//! The batcher: closes a batch at `max_rows`, at `max_bytes`, after `max_age`, and on close.

use rampart_agent::batcher::{self, BatcherConfig};
use rampart_agent::spool::Spool;
use rampart_proto::telemetry::{Row, TelemetryBatch};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

fn row(i: usize, text: &str) -> Row {
    json!({"Timestamp": "2026-01-01T00:00:00Z", "ProcessId": i, "ProcessCommandLine": text})
        .as_object()
        .unwrap()
        .clone()
}

fn spooled(spool: &Spool) -> Vec<TelemetryBatch> {
    let mut out = Vec::new();
    while let Some(e) = spool.take_oldest() {
        let body = zstd::decode_all(&spool.read(&e).unwrap()[..]).unwrap();
        out.push(serde_json::from_slice(&body).unwrap());
        spool.complete(e.seq).unwrap();
    }
    out
}

async fn wait_for(spool: &Spool, batches: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while spool.summary().batches < batches {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waiting for {batches} batches"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn batches_close_on_rows_bytes_age_and_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(tmp.path(), 1 << 30).unwrap());
    let (tx, rx) = mpsc::channel(100);
    let config = BatcherConfig {
        max_rows: 3,
        max_age: Duration::from_millis(1000),
        max_bytes: 10_000,
    };
    let task = tokio::spawn(batcher::run(
        rx,
        Arc::clone(&spool),
        Arc::new(Notify::new()),
        config,
    ));

    // Seven small rows: two full batches of three at once, the seventh after max_age.
    for i in 0..7 {
        tx.send(("DeviceProcessEvents", row(i, "x"))).await.unwrap();
    }
    let started = std::time::Instant::now();
    wait_for(&spool, 2).await;
    // The seventh row waits for its batch to age.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(spool.summary().batches, 2);
    wait_for(&spool, 3).await;
    assert!(started.elapsed() >= Duration::from_millis(900));

    // One big row closes its batch by size.
    tx.send(("DeviceInfo", row(7, &"y".repeat(20_000))))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(spool.summary().batches, 4);

    // What is pending when the channel closes is spooled before the batcher returns.
    tx.send(("DeviceProcessEvents", row(8, "z"))).await.unwrap();
    drop(tx);
    task.await.unwrap();

    let batches = spooled(&spool);
    let sizes: Vec<usize> = batches.iter().map(TelemetryBatch::row_count).collect();
    assert_eq!(sizes, vec![3, 3, 1, 1, 1]);
    let pids: Vec<u64> = batches
        .iter()
        .flat_map(|b| {
            b.tables
                .values()
                .flatten()
                .map(|r| r["ProcessId"].as_u64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(pids, (0..9).collect::<Vec<u64>>());
    let mut ids: Vec<&str> = batches.iter().map(|b| b.batch_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "batch ids are unique");
    assert!(batches[3].tables.contains_key("DeviceInfo"));
}
