//! The inventory tables: each device's latest report replaces the one before it, in queries
//! and after a restart, tenant by tenant; reports expire with the tenant's retention.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use futures::TryStreamExt;
use rampart_core::TenantId;
use rampart_core::schema::{self, Table};
use rampart_telemetry::{Appended, EventStore, EventStoreConfig, TableBatchBuilder};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const DAY: i64 = 86_400_000_000_000;

fn software() -> &'static Table {
    schema::table("DeviceTvmSoftwareInventory").unwrap()
}

/// A report: `device` has each of `packages` (name, version).
fn report(rows: &[(&str, &str, &str)]) -> RecordBatch {
    let mut b = TableBatchBuilder::new(software());
    for (device, name, version) in rows {
        let row = json!({
            "DeviceId": device,
            "DeviceName": format!("{device}.example"),
            "OSPlatform": "Linux",
            "SoftwareVendor": "debian",
            "SoftwareName": name,
            "SoftwareVersion": version,
        });
        b.push_json(row.as_object().unwrap()).unwrap();
    }
    b.finish()
}

async fn open(dir: &Path) -> EventStore {
    let config = EventStoreConfig {
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    EventStore::open(dir, config).await.unwrap()
}

async fn rows(store: &EventStore, tenant: TenantId, filter: &str) -> i64 {
    let ctx = store.session(tenant).unwrap();
    let sql = format!("SELECT count(*) FROM \"DeviceTvmSoftwareInventory\" {filter}");
    let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

async fn append(store: &EventStore, tenant: TenantId, id: &str, batch: RecordBatch) {
    let r = store.append(tenant, id, vec![(software(), batch)]).await;
    assert!(matches!(r, Ok(Appended::Stored { .. })), "{r:?}");
}

fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

#[tokio::test]
async fn a_report_replaces_the_devices_inventory_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let (t, other) = (TenantId::new_random(), TenantId::new_random());
    append(
        &store,
        t,
        "b1",
        report(&[
            ("aa", "bash", "5.2"),
            ("aa", "curl", "8.5"),
            ("aa", "openssl", "3.0"),
            ("bb", "bash", "5.1"),
            ("bb", "nginx", "1.24"),
        ]),
    )
    .await;
    assert_eq!(rows(&store, t, "").await, 5);
    assert_eq!(rows(&store, other, "").await, 0, "another tenant's query");

    // aa upgraded curl and removed the rest: its report now has one row, bb's is unchanged.
    append(&store, t, "b2", report(&[("aa", "curl", "8.6")])).await;
    assert_eq!(rows(&store, t, "").await, 3);
    assert_eq!(rows(&store, t, "WHERE \"DeviceId\" = 'aa'").await, 1);
    assert_eq!(
        rows(
            &store,
            t,
            "WHERE \"DeviceId\" = 'aa' AND \"SoftwareVersion\" = '8.6'"
        )
        .await,
        1
    );
    assert_eq!(rows(&store, t, "WHERE \"DeviceId\" = 'bb'").await, 2);

    // A retried batch id changes nothing, and the reports outlive a restart.
    let again = store
        .append(t, "b1", vec![(software(), report(&[("aa", "x", "1")]))])
        .await
        .unwrap();
    assert_eq!(again, Appended::Duplicate);
    store.shutdown().await.unwrap();
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(rows(&store, t, "").await, 3);
    assert_eq!(
        rows(&store, t, "WHERE \"SoftwareName\" = 'curl'").await,
        1,
        "aa's first report is gone for good"
    );
}

#[tokio::test]
async fn inventory_rows_need_a_device_but_no_timestamp() {
    let mut b = TableBatchBuilder::new(software());
    let ok = json!({"DeviceId": "aa", "SoftwareName": "bash"});
    b.push_json(ok.as_object().unwrap()).unwrap();
    let no_device = json!({"SoftwareName": "bash"});
    let e = b.push_json(no_device.as_object().unwrap()).unwrap_err();
    assert!(e.to_string().contains("DeviceId"), "{e}");
    let with_time = json!({"DeviceId": "aa", "Timestamp": "2026-01-01T00:00:00Z"});
    let e = b.push_json(with_time.as_object().unwrap()).unwrap_err();
    assert!(e.to_string().contains("Timestamp"), "{e}");
    assert_eq!(b.finish().num_rows(), 1);
}

#[tokio::test]
async fn device_ids_that_are_not_plain_stay_inside_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let t = TenantId::new_random();
    let hostile = "../../events/x";
    append(
        &store,
        t,
        "b1",
        report(&[(hostile, "bash", "5.2"), ("x41", "zsh", "5.9")]),
    )
    .await;
    assert_eq!(
        rows(&store, t, &format!("WHERE \"DeviceId\" = '{hostile}'")).await,
        1
    );
    assert_eq!(rows(&store, t, "WHERE \"DeviceId\" = 'x41'").await, 1);
    let prefix = format!("inventory/{t}/DeviceTvmSoftwareInventory/");
    let objects: Vec<_> = store.objects().list(None).try_collect().await.unwrap();
    assert_eq!(objects.len(), 2);
    for o in objects {
        let path = o.location.to_string();
        assert!(path.starts_with(&prefix), "{path}");
        assert!(!path.contains('%'), "no escaped path part: {path}");
    }
}

#[tokio::test]
async fn reports_expire_with_the_tenants_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let (t, kept_longer) = (TenantId::new_random(), TenantId::new_random());
    append(&store, t, "b1", report(&[("aa", "bash", "5.2")])).await;
    append(&store, kept_longer, "b1", report(&[("aa", "bash", "5.2")])).await;
    store.set_retention(kept_longer, Some(90)).await.unwrap();
    let now = now_ns();
    assert_eq!(store.enforce_retention(now + 29 * DAY).await.unwrap(), 0);
    assert_eq!(rows(&store, t, "").await, 1);
    assert_eq!(store.enforce_retention(now + 31 * DAY).await.unwrap(), 1);
    assert_eq!(rows(&store, t, "").await, 0);
    assert_eq!(rows(&store, kept_longer, "").await, 1);
}
