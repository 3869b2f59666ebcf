use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use rampart_core::TenantId;
use rampart_core::schema::{self, Table};
use rampart_telemetry::store::files::day_of;
use rampart_telemetry::{Appended, EventStore, EventStoreConfig, StoreError, TableBatchBuilder};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const DAY: i64 = 86_400_000_000_000;

fn table(name: &str) -> &'static Table {
    schema::table(name).unwrap()
}

/// `n` process events of `device`, one second apart from `start_s` (unix seconds).
fn events(device: &str, start_s: i64, n: usize) -> RecordBatch {
    let mut b = TableBatchBuilder::new(table("DeviceProcessEvents"));
    for i in 0..n {
        let ts = time::OffsetDateTime::from_unix_timestamp(start_s + i as i64).unwrap();
        let row = json!({
            "Timestamp": ts.format(&time::format_description::well_known::Rfc3339).unwrap(),
            "DeviceId": device,
            "ActionType": "ProcessCreated",
            "FileName": "cmd.exe",
            "ReportId": i,
        });
        b.push_json(row.as_object().unwrap()).unwrap();
    }
    b.finish()
}

/// Appends a process event of device `d` at unix second `s` with `ReportId` `id`.
fn push_process_event(b: &mut TableBatchBuilder, s: i64, id: i64) {
    let ts = time::OffsetDateTime::from_unix_timestamp(s)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    b.push_json(
        json!({"Timestamp": ts, "DeviceId": "d", "ReportId": id})
            .as_object()
            .unwrap(),
    )
    .unwrap();
}

fn config() -> EventStoreConfig {
    EventStoreConfig {
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    }
}

async fn count(store: &EventStore, tenant: TenantId, sql: &str) -> i64 {
    let ctx = store.session(tenant).unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

async fn open(dir: &Path) -> EventStore {
    EventStore::open(dir, config()).await.unwrap()
}

const NOW_S: i64 = 1_790_000_000; // 2026-09-21

#[tokio::test]
async fn appended_rows_are_queryable_at_once_and_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let t = TenantId::new_random();
    let r = store
        .append(
            t,
            "b1",
            vec![(table("DeviceProcessEvents"), events("d1", NOW_S, 100))],
        )
        .await
        .unwrap();
    assert_eq!(r, Appended::Stored { rows: 100 });
    assert_eq!(
        count(&store, t, "select count(*) from \"DeviceProcessEvents\"").await,
        100
    );
    store.flush().await.unwrap();
    assert_eq!(store.stats().hot_rows, 0);
    assert_eq!(store.stats().file_rows, 100);
    store
        .append(
            t,
            "b2",
            vec![(table("DeviceProcessEvents"), events("d1", NOW_S + 100, 50))],
        )
        .await
        .unwrap();
    // Files and hot tail together, each row once.
    assert_eq!(
        count(&store, t, "select count(*) from \"DeviceProcessEvents\"").await,
        150
    );
    assert_eq!(
        count(
            &store,
            t,
            "select count(distinct \"ReportId\") from \"DeviceProcessEvents\""
        )
        .await,
        100
    );
    // Another tenant sees nothing.
    assert_eq!(
        count(
            &store,
            TenantId::new_random(),
            "select count(*) from \"DeviceProcessEvents\""
        )
        .await,
        0
    );
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_retried_batch_is_stored_once_even_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::new_random();
    {
        let store = open(dir.path()).await;
        store
            .append(
                t,
                "same",
                vec![(table("DeviceProcessEvents"), events("d1", NOW_S, 10))],
            )
            .await
            .unwrap();
        let again = store
            .append(
                t,
                "same",
                vec![(table("DeviceProcessEvents"), events("d1", NOW_S, 10))],
            )
            .await
            .unwrap();
        assert_eq!(again, Appended::Duplicate);
        // The same id in another tenant is another batch.
        let other = store
            .append(
                TenantId::new_random(),
                "same",
                vec![(table("DeviceProcessEvents"), events("d1", NOW_S, 1))],
            )
            .await
            .unwrap();
        assert_eq!(other, Appended::Stored { rows: 1 });
        store
            .append(
                t,
                "flushed",
                vec![(table("DeviceProcessEvents"), events("d1", NOW_S, 5))],
            )
            .await
            .unwrap();
        store.flush().await.unwrap();
        store
            .append(
                t,
                "in-log",
                vec![(table("DeviceProcessEvents"), events("d1", NOW_S, 7))],
            )
            .await
            .unwrap();
        // No shutdown: the process "dies" with "in-log" only in the log.
    }
    let store = open(dir.path()).await;
    for id in ["same", "flushed", "in-log"] {
        let r = store
            .append(
                t,
                id,
                vec![(table("DeviceProcessEvents"), events("d1", NOW_S, 3))],
            )
            .await
            .unwrap();
        assert_eq!(r, Appended::Duplicate, "{id}");
    }
    assert_eq!(
        count(&store, t, "select count(*) from \"DeviceProcessEvents\"").await,
        22
    );
}

#[tokio::test]
async fn a_torn_log_tail_is_cut_off_and_every_whole_record_kept() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::new_random();
    {
        let store = open(dir.path()).await;
        for i in 0..5 {
            store
                .append(
                    t,
                    &format!("b{i}"),
                    vec![(table("DeviceProcessEvents"), events("d1", NOW_S, 10))],
                )
                .await
                .unwrap();
        }
    }
    // A crash mid-write: half a frame at the end of the newest segment.
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let last = segs
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap()
        .clone();
    let mut data = std::fs::read(&last).unwrap();
    let whole = data.len();
    data.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
    std::fs::write(&last, &data).unwrap();
    let store = open(dir.path()).await;
    assert_eq!(
        count(&store, t, "select count(*) from \"DeviceProcessEvents\"").await,
        50
    );
    assert_eq!(std::fs::metadata(&last).unwrap().len() as usize, whole);
    // And a corrupted last record (bad CRC) loses only that record.
    store
        .append(
            t,
            "b5",
            vec![(table("DeviceProcessEvents"), events("d1", NOW_S, 10))],
        )
        .await
        .unwrap();
    drop(store);
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let newest = segs
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap()
        .clone();
    let mut data = std::fs::read(&newest).unwrap();
    let n = data.len();
    data[n - 1] ^= 0xff;
    std::fs::write(&newest, &data).unwrap();
    let store = open(dir.path()).await;
    assert_eq!(
        count(&store, t, "select count(*) from \"DeviceProcessEvents\"").await,
        50
    );
}

#[tokio::test]
async fn files_are_split_by_day_and_time_filters_skip_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let t = TenantId::new_random();
    let day0 = (NOW_S / 86_400) * 86_400;
    // Rows of three days in one batch, out of order.
    let mut b = TableBatchBuilder::new(table("DeviceProcessEvents"));
    for (i, s) in [
        day0 + 2 * 86_400 + 5,
        day0 + 10,
        day0 + 86_400 + 7,
        day0 + 20,
    ]
    .iter()
    .enumerate()
    {
        push_process_event(&mut b, *s, i as i64);
    }
    store
        .append(t, "b", vec![(table("DeviceProcessEvents"), b.finish())])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let files = store.files();
    assert_eq!(files.len(), 3);
    let mut days: Vec<_> = files.iter().map(|f| f.day.clone()).collect();
    days.sort();
    assert_eq!(
        days[0],
        rampart_telemetry::store::files::day_name(day0 / 86_400)
    );
    for f in &files {
        assert!(
            f.path
                .starts_with(&format!("events/{t}/DeviceProcessEvents/day={}/", f.day)),
            "{}",
            f.path
        );
        assert!(f.min_ts <= f.max_ts && day_of(f.min_ts) == day_of(f.max_ts));
    }
    let first = time::OffsetDateTime::from_unix_timestamp(day0 + 86_400)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let q =
        format!("select count(*) from \"DeviceProcessEvents\" where \"Timestamp\" >= '{first}'");
    assert_eq!(count(&store, t, &q).await, 2);
    // Sorted within the day file: the first day's rows come out in time order.
    let ctx = store.session(t).unwrap();
    let rows = ctx
        .sql("select \"ReportId\" from \"DeviceProcessEvents\" order by \"Timestamp\"")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let ids: Vec<i64> = rows
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, vec![1, 3, 2, 0]);
    // The plan reads only the files in range.
    let plan = ctx
        .sql(&format!(
            "explain {}",
            q.replace("count(*)", "\"ReportId\"")
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert_eq!(text.matches(".parquet").count(), 2, "{text}");
}

#[tokio::test]
async fn compaction_merges_small_files_and_retention_drops_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(
        dir.path(),
        EventStoreConfig {
            compact_min_files: 3,
            retention_days: 30,
            ..config()
        },
    )
    .await
    .unwrap();
    let t = TenantId::new_random();
    let u = TenantId::new_random();
    for i in 0..4 {
        store
            .append(
                t,
                &format!("b{i}"),
                vec![(
                    table("DeviceProcessEvents"),
                    events("d", NOW_S + i * 10, 10),
                )],
            )
            .await
            .unwrap();
        store.flush().await.unwrap();
    }
    assert_eq!(store.files().len(), 4);
    assert_eq!(store.compact().await.unwrap(), 4);
    assert_eq!(store.files().len(), 1);
    assert_eq!(
        count(&store, t, "select count(*) from \"DeviceProcessEvents\"").await,
        40
    );
    let on_disk = walk(&dir.path().join("events"));
    assert_eq!(on_disk, 1, "old files are deleted");

    store
        .append(
            u,
            "u",
            vec![(table("DeviceProcessEvents"), events("d", NOW_S, 10))],
        )
        .await
        .unwrap();
    store.flush().await.unwrap();
    store.set_retention(u, Some(90)).await.unwrap();
    assert!(matches!(
        store.set_retention(u, Some(0)).await,
        Err(StoreError::InvalidInput(_))
    ));
    let now = NOW_S * 1_000_000_000;
    assert_eq!(store.enforce_retention(now + 29 * DAY).await.unwrap(), 0);
    assert_eq!(
        store.enforce_retention(now + 31 * DAY).await.unwrap(),
        1,
        "t's 30 days are over, u keeps 90"
    );
    assert_eq!(
        count(&store, t, "select count(*) from \"DeviceProcessEvents\"").await,
        0
    );
    assert_eq!(
        count(&store, u, "select count(*) from \"DeviceProcessEvents\"").await,
        10
    );
    drop(store);
    // The manifest survives a restart.
    let store = open(dir.path()).await;
    assert_eq!(store.retention(u).await, 90);
    assert_eq!(
        count(&store, u, "select count(*) from \"DeviceProcessEvents\"").await,
        10
    );
}

fn walk(p: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += walk(&e.path());
        } else if e.path().extension().is_some_and(|x| x == "parquet") {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn bad_batch_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let t = TenantId::new_random();
    for id in ["", "a\tb", &"x".repeat(300)] {
        let r = store
            .append(
                t,
                id,
                vec![(table("DeviceProcessEvents"), events("d", NOW_S, 1))],
            )
            .await;
        assert!(matches!(r, Err(StoreError::InvalidInput(_))), "{id:?}");
    }
}

#[tokio::test]
async fn a_store_held_elsewhere_is_refused_and_one_let_go_of_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await;

    // Held for good: refused after the wait, with a message saying why.
    let refused = EventStore::open(dir.path(), config()).await;
    match refused {
        Err(StoreError::InvalidInput(m)) => assert!(m.contains("in use by another process"), "{m}"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a second store opened a held log"),
    }

    // Let go of while the second open waits: the second open gets it.
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        first.shutdown().await.unwrap();
    });
    let second = EventStore::open(dir.path(), config()).await.unwrap();
    holder.await.unwrap();
    second.shutdown().await.unwrap();
}

#[test]
fn rows_of_many_batches_are_sorted_by_time_and_cut_at_days() {
    use rampart_telemetry::store::files::sort_by_day;
    let day0 = (NOW_S / 86_400) * 86_400;
    // (seconds, ReportId) per batch: batches out of order with each other and inside, equal
    // times in different batches, an empty batch, and rows of two days.
    let batches: Vec<RecordBatch> = [
        vec![(day0 + 86_400 + 3, 0), (day0 + 50, 1), (day0 + 10, 2)],
        vec![],
        vec![(day0 + 10, 3), (day0 + 86_400 + 1, 4), (day0 + 5, 5)],
        vec![(day0 + 50, 6)],
    ]
    .iter()
    .map(|rows| {
        let mut b = TableBatchBuilder::new(table("DeviceProcessEvents"));
        for &(s, id) in rows {
            push_process_event(&mut b, s, id);
        }
        b.finish()
    })
    .collect();
    let days = sort_by_day(table("DeviceProcessEvents"), &batches).unwrap();
    let ids = |b: &RecordBatch| -> Vec<i64> {
        let i = b.schema().index_of("ReportId").unwrap();
        b.column(i).as_primitive::<Int64Type>().values().to_vec()
    };
    assert_eq!(days.len(), 2);
    // Time order; equal times keep the order the rows arrived in.
    assert_eq!(ids(&days[0].batch), vec![5, 2, 3, 1, 6]);
    assert_eq!(ids(&days[1].batch), vec![4, 0]);
    assert_eq!(days[0].min_ts, (day0 + 5) * 1_000_000_000);
    assert_eq!(days[0].max_ts, (day0 + 50) * 1_000_000_000);
    assert_eq!(
        days[1].day,
        rampart_telemetry::store::files::day_name(day0 / 86_400 + 1)
    );
    assert_eq!(
        days[0].batch.schema(),
        rampart_telemetry::arrow_schema(table("DeviceProcessEvents"))
    );
    assert!(
        sort_by_day(table("DeviceProcessEvents"), &batches[1..2])
            .unwrap()
            .is_empty()
    );
}
