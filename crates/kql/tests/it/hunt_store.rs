//! Hunting over the event store itself: which of its hot batches a query reads.

use datafusion::physical_plan::displayable;
use rampart_core::TenantId;
use rampart_core::schema;
use rampart_kql::{Limits, QueryParameters, plan_only, run};
use rampart_telemetry::{EventStore, EventStoreConfig, TableBatchBuilder};
use serde_json::json;

/// `n` process events of `device` from `start_s` (unix seconds), one a second.
fn events(device: &str, start_s: i64, n: usize) -> datafusion::arrow::array::RecordBatch {
    let mut b = TableBatchBuilder::new(schema::table("DeviceProcessEvents").unwrap());
    for i in 0..n {
        let ts = time::OffsetDateTime::from_unix_timestamp(start_s + i as i64).unwrap();
        let row = json!({
            "Timestamp": ts.format(&time::format_description::well_known::Rfc3339).unwrap(),
            "DeviceId": device,
            "ActionType": "ProcessCreated",
            "FileName": "cmd.exe",
        });
        b.push_json(row.as_object().unwrap()).unwrap();
    }
    b.finish()
}

const T0: i64 = 1_790_000_000; // 2026-09-21T14:13:20Z

/// The rows a query gives, and how many hot batches its plan reads.
async fn count_and_batches(
    store: &EventStore,
    tenant: TenantId,
    query: &str,
) -> ((usize, usize), String) {
    let ctx = store.session(tenant).unwrap();
    let rows = run(&ctx, query, &QueryParameters::new(), &Limits::default())
        .await
        .unwrap()
        .row_count;
    let logical = plan_only(&ctx, query, &QueryParameters::new())
        .await
        .unwrap();
    let physical = ctx.state().create_physical_plan(&logical).await.unwrap();
    let plan = displayable(physical.as_ref()).indent(true).to_string();
    // `partition_sizes=[a, b…]`: the hot batches, however the scan splits them.
    let sizes = plan
        .split("partition_sizes=[")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("no hot scan in {plan}"));
    let batches = sizes
        .split(',')
        .map(|n| n.trim().parse::<usize>().unwrap())
        .sum();
    ((rows, batches), plan)
}

#[tokio::test]
async fn device_and_time_filters_read_only_the_hot_batches_that_can_match() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(
        dir.path(),
        EventStoreConfig {
            flush_interval: std::time::Duration::from_secs(3600),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let t = TenantId::new_random();
    let table = schema::table("DeviceProcessEvents").unwrap();
    // Agents' batches: one device each; then one imported batch holding both devices.
    for (id, device, start) in [
        ("1", "dev-a", T0),
        ("2", "dev-b", T0),
        ("3", "dev-a", T0 + 3600),
    ] {
        store
            .append(t, id, vec![(table, events(device, start, 10))])
            .await
            .unwrap();
    }
    let mut mixed = TableBatchBuilder::new(table);
    for device in ["dev-a", "dev-b"] {
        let row = json!({"Timestamp": "2026-09-21T20:00:00Z", "DeviceId": device, "ActionType": "ProcessCreated"});
        mixed.push_json(row.as_object().unwrap()).unwrap();
    }
    store
        .append(t, "4", vec![(table, mixed.finish())])
        .await
        .unwrap();

    let q = |w: &str| format!("DeviceProcessEvents | where {w}");
    for (filter, rows, batches) in [
        ("DeviceId == 'dev-a'", 21, 3),
        ("DeviceId == 'dev-b'", 11, 2),
        ("DeviceId in ('dev-b', 'dev-c')", 11, 2),
        ("DeviceId == 'dev-c'", 0, 1),
        ("DeviceId =~ 'DEV-B'", 11, 4), // not exact: every batch is read
        (
            "DeviceId == 'dev-a' and Timestamp >= datetime(2026-09-21T15:00:00Z)",
            11,
            2,
        ),
        ("Timestamp < datetime(2026-09-21T14:13:25Z)", 10, 2),
        ("DeviceId != 'dev-a'", 11, 4),
    ] {
        let (read, plan) = count_and_batches(&store, t, &q(filter)).await;
        assert_eq!(
            read,
            (rows, batches),
            "{filter}: (rows, hot batches read) of\n{plan}"
        );
    }
}
