//! Telemetry end to end: the schema listing, bulk imports, agents posting batches with device
//! credentials, machines from telemetry, and durability across `kill -9`.

use crate::harness::{Backend, Server, assert_mde_error, backends};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Int64Type;
use rampart_telemetry::{Cell, EventStore, EventStoreConfig, TableBatchBuilder, wire};
use serde_json::{Value, json};
use std::io::Write;

fn ts(offset_s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::hours(1)
        + time::Duration::seconds(offset_s);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Counts rows of the stopped server's event store with SQL.
async fn query_i64(backend: &Backend, tenant: &str, sql: &str) -> Vec<i64> {
    let events = EventStore::open(
        &backend.data_dir.join("telemetry"),
        EventStoreConfig::default(),
    )
    .await
    .unwrap();
    let ctx = events.session(tenant.parse().unwrap()).unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let out = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.unwrap_or(-1))
                .collect::<Vec<_>>()
        })
        .collect();
    events.shutdown().await.unwrap();
    out
}

async fn post_import(
    s: &Server,
    token: &str,
    query: &str,
    content_type: &str,
    body: String,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = s
        .http
        .post(format!("{}/api/telemetry/import{query}", s.url))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// An enrolled device: its id and the `Authorization` value it sends.
pub(crate) struct Device {
    pub id: String,
    pub auth: String,
}

pub(crate) async fn enroll(s: &Server, name: &str) -> Device {
    let admin = s.token_with("SecurityConfiguration.ReadWrite.All").await;
    let resp = s
        .http
        .post(format!("{}/api/enrollmentTokens", s.url))
        .bearer_auth(&admin)
        .json(&json!({"name": "fleet"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let token: Value = resp.json().await.unwrap();
    let resp = s
        .http
        .post(format!("{}/agent/v1/enroll", s.url))
        .json(&json!({"enrollmentToken": token["token"], "computerDnsName": name, "osPlatform": "Linux"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let d: Value = resp.json().await.unwrap();
    let id = d["deviceId"].as_str().unwrap().to_owned();
    let auth = format!("Device {id}:{}", d["deviceSecret"].as_str().unwrap());
    Device { id, auth }
}

async fn post_batch(s: &Server, device: &Device, body: &Value) -> (u16, Value, Option<String>) {
    let compressed = zstd::encode_all(body.to_string().as_bytes(), 3).unwrap();
    let resp = s
        .http
        .post(format!("{}/agent/v1/telemetry", s.url))
        .header("authorization", &device.auth)
        .header("content-encoding", "zstd")
        .header("content-type", "application/json")
        .body(compressed)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), retry)
}

#[tokio::test]
async fn schema_lists_every_table_with_kql_types() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start(b);
    let token = s.token_with("AdvancedQuery.Read.All").await;
    let (status, body) = s.get("/api/schema", Some(&token)).await;
    assert_eq!(status, 200);
    let tables = body["value"].as_array().unwrap();
    assert_eq!(tables.len(), 13);
    let software = tables
        .iter()
        .find(|t| t["name"] == "DeviceTvmSoftwareInventory")
        .unwrap();
    assert_eq!(software["kind"], "Inventory");
    assert!(
        software["columns"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ColumnName"] != "Timestamp"),
        "a current-state table has no Timestamp: {software}"
    );
    let (status, net) = s
        .get("/api/schema?table=DeviceNetworkEvents", Some(&token))
        .await;
    assert_eq!(status, 200);
    let net = &net["value"][0];
    let port = net["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ColumnName"] == "RemotePort")
        .unwrap();
    assert_eq!(port["ColumnType"], "int");
    assert_eq!(port["DataType"], "System.Int32");
    assert_eq!(net["columns"][0]["ColumnName"], "Timestamp");
    assert_eq!(net["columns"][0]["ColumnType"], "datetime");
    let (status, body) = s.get("/api/schema?table=DeviceNope", Some(&token)).await;
    assert_eq!(status, 404);
    assert!(assert_mde_error(&body, "ResourceNotFound").contains("DeviceProcessEvents"));
    let (status, _) = s
        .get("/api/schema", Some(&s.token_with("Alert.Read.All").await))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn retention_is_set_per_tenant_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start(b);
    let admin = s.token_with("SecurityConfiguration.ReadWrite.All").await;
    let (status, body) = s.get("/api/telemetry/retention", Some(&admin)).await;
    assert_eq!(
        (status, body["retentionDays"].as_u64()),
        (200, Some(30)),
        "MDE's 30 days by default"
    );
    let put = |days: Value| {
        let (http, url, admin) = (s.http.clone(), s.url.clone(), admin.clone());
        async move {
            let r = http
                .put(format!("{url}/api/telemetry/retention"))
                .bearer_auth(admin)
                .json(&json!({"retentionDays": days}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = put(json!(90)).await;
    assert_eq!((status, body["retentionDays"].as_u64()), (200, Some(90)));
    for bad in [json!(0), json!(5000), json!("ninety")] {
        let (status, body) = put(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // Another tenant keeps the default.
    let other = b.create_tenant("Other");
    let app = b.create_app(Some(&other), "SecurityConfiguration.Read.All");
    let (_, theirs) = s
        .get("/api/telemetry/retention", Some(&s.token(&app).await))
        .await;
    assert_eq!(theirs["retentionDays"], 30);
    assert!(s.terminate().success());
    let s = Server::start(b);
    let reader = s.token_with("SecurityConfiguration.Read.All").await;
    let (_, body) = s.get("/api/telemetry/retention", Some(&reader)).await;
    assert_eq!(body["retentionDays"], 90);
}

#[tokio::test]
async fn imports_keep_good_rows_reject_bad_ones_and_feed_machines() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start(&b);
        let token = s.token_with("Event.Write").await;
        let dev = "a".repeat(40);
        let ndjson = [
            json!({"Timestamp": ts(0), "DeviceId": dev, "DeviceName": "ws-1.corp.example", "ActionType": "ProcessCreated", "FileName": "cmd.exe", "ReportId": 1}).to_string(),
            "{broken".to_owned(),
            json!({"Timestamp": ts(1), "DeviceId": dev, "ProcessId": "not a number"}).to_string(),
            json!({"Timestamp": ts(2), "DeviceId": dev, "ActionType": "ProcessCreated", "ReportId": 2}).to_string(),
            json!({"DeviceId": dev}).to_string(),
        ]
        .join("\n");
        let (status, body) = post_import(
            &s,
            &token,
            "?table=DeviceProcessEvents",
            "application/x-ndjson",
            ndjson.clone(),
            Some("k1"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["accepted"], 2, "{body}");
        assert_eq!(body["rejected"], 3, "{body}");
        let reasons: Vec<String> = body["rejections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}: {}",
                    r["location"].as_str().unwrap(),
                    r["reason"].as_str().unwrap()
                )
            })
            .collect();
        assert!(reasons[0].starts_with("line 2: not JSON"), "{reasons:?}");
        assert_eq!(
            reasons[1],
            "line 3: DeviceProcessEvents.ProcessId: expected long, got \"not a number\""
        );
        assert_eq!(
            reasons[2],
            "line 5: DeviceProcessEvents.Timestamp: missing (every row needs its event time)"
        );
        // The same import again (a client retry) stores nothing twice.
        let (_, again) = post_import(
            &s,
            &token,
            "?table=DeviceProcessEvents",
            "application/x-ndjson",
            ndjson,
            Some("k1"),
        )
        .await;
        assert_eq!(
            (again["accepted"].as_u64(), again["alreadyStored"].as_u64()),
            (Some(0), Some(2)),
            "{again}"
        );

        // Streaming-API records (Event Hubs document) and a CSV export.
        let doc = json!({"records": [
            {"time": ts(0), "tenantId": "x", "category": "AdvancedHunting-DeviceInfo", "properties": {"Timestamp": ts(3), "DeviceId": dev, "DeviceName": "ws-1.corp.example", "OSPlatform": "Windows11", "OSBuild": 22631, "PublicIP": "203.0.113.9", "ClientVersion": "1.2.3", "MachineGroup": "g"}},
            {"time": ts(0), "tenantId": "x", "category": "AdvancedHunting-DeviceNetworkInfo", "properties": {"Timestamp": ts(4), "DeviceId": dev, "IPAddresses": "[{\"IPAddress\":\"10.20.30.40\",\"SubnetPrefix\":24,\"AddressType\":\"Private\"}]", "MacAddress": "00-11-22-33-44-55"}},
            {"time": ts(0), "tenantId": "x", "category": "AdvancedHunting-DeviceBogus", "properties": {}}
        ]});
        let (status, body) = post_import(
            &s,
            &token,
            "",
            "application/json",
            serde_json::to_string_pretty(&doc).unwrap(),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["accepted"].as_u64(), body["rejected"].as_u64()),
            (Some(2), Some(1)),
            "{body}"
        );
        assert_eq!(body["rejections"][0]["reason"], "unknown table DeviceBogus");
        let csv = format!(
            "Timestamp,DeviceId,RemoteIP,RemotePort,Protocol\n{},{dev},198.51.100.7,443,Tcp\n{},{dev},198.51.100.8,https,Tcp\n",
            ts(5),
            ts(6)
        );
        let (status, body) = post_import(
            &s,
            &token,
            "?table=DeviceNetworkEvents",
            "text/csv",
            csv,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["accepted"].as_u64(), body["rejected"].as_u64()),
            (Some(1), Some(1)),
            "{body}"
        );
        let (status, body) =
            post_import(&s, &token, "", "text/csv", "Timestamp\n".into(), None).await;
        assert_eq!(status, 400);
        assert!(assert_mde_error(&body, "InvalidInput").contains("table"));
        let (status, _) = post_import(
            &s,
            &s.token_with("Alert.ReadWrite.All").await,
            "",
            "application/json",
            "{}".into(),
            None,
        )
        .await;
        assert_eq!(status, 403);

        // The machine exists with the DeviceInfo facts, and its address history answers findbyip.
        let reader = s.token_with("Machine.Read.All").await;
        let (status, m) = s.get(&format!("/api/machines/{dev}"), Some(&reader)).await;
        assert_eq!(status, 200, "{m}");
        assert_eq!(m["computerDnsName"], "ws-1.corp.example");
        assert_eq!(m["osPlatform"], "Windows11");
        assert_eq!(m["lastExternalIpAddress"], "203.0.113.9");
        let at = ts(4);
        let (status, found) = s
            .get(
                &format!("/api/machines/findbyip(ip='10.20.30.40',timestamp={at})"),
                Some(&reader),
            )
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["value"][0]["id"], dev.as_str(), "{found}");

        let metrics = s.metrics().await;
        assert!(
            metrics.contains(
                "rampart_telemetry_rows_total{table=\"DeviceProcessEvents\",outcome=\"accepted\"} 2"
            ),
            "{metrics}"
        );
        let tenant = s.tenant.clone();
        assert!(s.terminate().success());
        let n = query_i64(&b, &tenant, "select count(*) from \"DeviceProcessEvents\"").await;
        assert_eq!(n, vec![2], "{}", b.name);
        let n = query_i64(
            &b,
            &tenant,
            "select count(*) from \"DeviceNetworkEvents\" where \"RemotePort\" = 443",
        )
        .await;
        assert_eq!(n, vec![1]);
    }
}

#[tokio::test]
async fn agents_post_batches_with_device_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start(b);
    let d = enroll(&s, "agent-1.corp.example").await;
    let other = "b".repeat(40);
    let batch = json!({"batchId": "1", "tables": {
        "DeviceProcessEvents": [
            {"Timestamp": ts(0), "ActionType": "ProcessCreated", "FileName": "bash", "ReportId": 1},
            {"Timestamp": ts(1), "DeviceId": d.id.to_ascii_uppercase(), "ActionType": "ProcessCreated", "FileName": "curl", "ReportId": 2},
            {"Timestamp": ts(2), "DeviceId": other, "ActionType": "ProcessCreated", "ReportId": 3},
            {"Timestamp": "yesterday", "ActionType": "ProcessCreated", "ReportId": 4}
        ],
        "DeviceWhatever": [{}]
    }});
    let (status, body, _) = post_batch(&s, &d, &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["accepted"].as_u64(),
            body["rejected"].as_u64(),
            body["duplicate"].as_bool()
        ),
        (Some(2), Some(3), Some(false)),
        "{body}"
    );
    let reasons: Vec<&str> = body["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("may only send its own telemetry")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("Timestamp: expected datetime")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"unknown table DeviceWhatever"),
        "{reasons:?}"
    );
    // A retry of the same batch is acknowledged and not stored again.
    let (status, body, _) = post_batch(&s, &d, &batch).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    // Both rows carry the device's id as its credential names it, whatever case it was sent
    // in: one device, one DeviceId for hunting.
    let hunter = s.token_with("AdvancedHunting.Read.All").await;
    let q = "DeviceProcessEvents | summarize n = count() by DeviceId";
    let (st, v) = s
        .post("/api/advancedhunting/run", &hunter, json!({ "Query": q }))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["Results"], json!([{"DeviceId": d.id, "n": 2}]), "{v}");
    // Wrong secret, unknown device, no credential: 401 in MDE's shape.
    for auth in [
        format!("Device {}:rpd_wrong", d.id),
        format!("Device {other}:x"),
        "Bearer x".to_owned(),
    ] {
        let bad = Device {
            id: d.id.clone(),
            auth,
        };
        let (status, body, _) = post_batch(&s, &bad, &batch).await;
        assert_eq!(status, 401, "{body}");
        assert_mde_error(&body, "Unauthorized");
    }
    // Not zstd, not JSON, no batch id: 400 naming what is wrong.
    let resp = s
        .http
        .post(format!("{}/agent/v1/telemetry", s.url))
        .header("authorization", &d.auth)
        .header("content-encoding", "zstd")
        .body("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (status, body, _) = post_batch(&s, &d, &json!({"tables": {}})).await;
    assert_eq!(status, 400);
    assert!(assert_mde_error(&body, "InvalidRequestBody").starts_with("batchId"));
    // Rejections are counted per table; a name the sender made up is counted as `other`, never
    // made a metric label.
    let metrics = s.metrics().await;
    for line in [
        "rampart_telemetry_rows_total{table=\"DeviceProcessEvents\",outcome=\"rejected\"} 2",
        "rampart_telemetry_rows_total{table=\"other\",outcome=\"rejected\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert!(!metrics.contains("DeviceWhatever"), "{metrics}");
    let tenant = s.tenant.clone();
    assert!(s.terminate().success());
    let rows = query_i64(
        b,
        &tenant,
        "select \"ReportId\" from \"DeviceProcessEvents\" order by \"ReportId\"",
    )
    .await;
    assert_eq!(rows, vec![1, 2]);
}

/// Posts a binary (Arrow IPC) batch; `batch_id` None leaves the header out.
async fn post_arrow(
    s: &Server,
    device: &Device,
    batch_id: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = s
        .http
        .post(format!("{}/agent/v1/telemetry", s.url))
        .header("authorization", &device.auth)
        .header("content-encoding", "zstd")
        .header("content-type", wire::CONTENT_TYPE)
        .body(zstd::encode_all(&body[..], 3).unwrap());
    if let Some(id) = batch_id {
        req = req.header("rampart-batch-id", id);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Rows of DeviceNetworkEvents as an agent builds them; without a device, the DeviceId column is
/// left out.
fn network_rows(first_report: i64, n: usize, device: Option<&str>) -> RecordBatch {
    let table = rampart_core::schema::table("DeviceNetworkEvents").unwrap();
    let mut b = TableBatchBuilder::new(table);
    let col = |c: &str| rampart_telemetry::rows::column_index(table, c).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    for i in 0..n {
        let cells = [
            (
                col("Timestamp"),
                Cell::Time(now - 3_600_000_000_000 + i as i64),
            ),
            (col("RemoteIP"), Cell::Str("203.0.113.9")),
            (col("RemotePort"), Cell::Int(443)),
            (col("ReportId"), Cell::Long(first_report + i as i64)),
            (col("DeviceId"), Cell::Str(device.unwrap_or("placeholder"))),
        ];
        b.push_cells(&cells).unwrap();
    }
    let batch = b.finish();
    if device.is_some() {
        return batch;
    }
    // The builder insists on a DeviceId; an agent may leave the column out.
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|i| batch.schema().field(*i).name() != "DeviceId")
        .collect();
    batch.project(&keep).unwrap()
}

#[tokio::test]
async fn agents_post_binary_batches() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start(b);
    let d = enroll(&s, "agent-2.corp.example").await;
    let other = "c".repeat(40);
    let body = wire::encode(&[
        network_rows(100, 3, None),
        network_rows(200, 2, Some(&other)),
        network_rows(300, 1, Some(&d.id)),
    ])
    .unwrap();
    let (status, resp) = post_arrow(&s, &d, Some("b-1"), body.clone()).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        (
            resp["accepted"].as_u64(),
            resp["rejected"].as_u64(),
            resp["duplicate"].as_bool()
        ),
        (Some(4), Some(2), Some(false)),
        "{resp}"
    );
    assert_eq!(resp["rejections"][0]["index"], 3, "{resp}");
    assert!(
        resp["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("DeviceNetworkEvents.DeviceId: a device may only send its own"),
        "{resp}"
    );
    // The same batch id again: acknowledged, not stored twice.
    let (status, resp) = post_arrow(&s, &d, Some("b-1"), body.clone()).await;
    assert_eq!((status, resp["duplicate"].as_bool()), (200, Some(true)));
    // No batch id, or a body that is not Arrow: 400 naming what is wrong, nothing stored.
    let (status, resp) = post_arrow(&s, &d, None, body).await;
    assert_eq!(status, 400);
    assert!(assert_mde_error(&resp, "InvalidRequestBody").starts_with("Rampart-Batch-Id"));
    let (status, resp) = post_arrow(&s, &d, Some("b-2"), b"{\"not\": \"arrow\"}".to_vec()).await;
    assert_eq!(status, 400);
    assert!(assert_mde_error(&resp, "InvalidRequestBody").starts_with("frame 0"));
    let tenant = s.tenant.clone();
    assert!(s.terminate().success());
    let rows = query_i64(
        b,
        &tenant,
        &format!(
            "select \"ReportId\" from \"DeviceNetworkEvents\" where \"DeviceId\" = '{}' order by \"ReportId\"",
            d.id
        ),
    )
    .await;
    assert_eq!(rows, vec![100, 101, 102, 300]);
}

#[tokio::test]
async fn acknowledged_batches_survive_kill_9_and_a_torn_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start(b);
    let tenant = s.tenant.clone();
    let d = enroll(&s, "busy.corp.example").await;
    let url = s.url.clone();
    let http = s.http.clone();
    let auth = d.auth.clone();
    // Sustained ingestion from 4 concurrent senders; each remembers what was acknowledged.
    let mut senders = Vec::new();
    for sender in 0..4i64 {
        let (url, http, auth) = (url.clone(), http.clone(), auth.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..10_000i64 {
                let base = (sender * 10_000 + n) * 100;
                let rows: Vec<Value> = (0..100).map(|i| json!({"Timestamp": ts(i), "ActionType": "ProcessCreated", "ReportId": base + i})).collect();
                let body = json!({"batchId": format!("{sender}-{n}"), "tables": {"DeviceProcessEvents": rows}});
                let sent = http.post(format!("{url}/agent/v1/telemetry")).header("authorization", &auth).header("content-encoding", "zstd").body(zstd::encode_all(body.to_string().as_bytes(), 1).unwrap()).send().await;
                match sent {
                    Ok(r) if r.status() == 200 => acked.push(base),
                    _ => break, // the server died
                }
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    drop(s); // SIGKILL mid-stream
    let mut acked = Vec::new();
    for t in senders {
        acked.extend(t.await.unwrap());
    }
    assert!(
        acked.len() > 10,
        "some batches were acknowledged before the kill: {}",
        acked.len()
    );
    // Tear the newest log segment's tail, as a crash mid-write would.
    let wal = b.data_dir.join("telemetry").join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(last)
        .unwrap()
        .write_all(&[9, 0, 0, 0, 1, 2])
        .unwrap();

    let s = Server::start(b);
    // Retrying an acknowledged batch after the restart stores nothing.
    let retry = json!({"batchId": "0-0", "tables": {"DeviceProcessEvents": [{"Timestamp": ts(0), "ActionType": "X", "ReportId": 0}]}});
    let (status, body, _) = post_batch(&s, &d, &retry).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    assert!(s.terminate().success());
    let counts = query_i64(
        b,
        &tenant,
        "select count(*) - count(distinct \"ReportId\") from \"DeviceProcessEvents\"",
    )
    .await;
    assert_eq!(counts, vec![0], "no row is stored twice");
    let firsts = query_i64(
        b,
        &tenant,
        "select \"ReportId\" from \"DeviceProcessEvents\" where \"ReportId\" % 100 = 0",
    )
    .await;
    let stored: std::collections::HashSet<i64> = firsts.into_iter().collect();
    for base in &acked {
        assert!(
            stored.contains(base),
            "acknowledged batch starting at {base} was lost"
        );
    }
    let per_batch = query_i64(b, &tenant, "select count(*) from \"DeviceProcessEvents\" group by \"ReportId\" / 100 having count(*) <> 100").await;
    assert!(
        per_batch.is_empty(),
        "batches are stored whole: {per_batch:?}"
    );
}

#[tokio::test]
async fn a_full_disk_answers_503_with_retry_after_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    // Enroll on a normal server first: the state store must have room for that.
    let s = Server::start(b);
    let tenant = s.tenant.clone();
    let d = enroll(&s, "full.corp.example").await;
    assert!(s.terminate().success());

    let s = Server::start_with_file_limit(b, 4096);
    let mut acked = Vec::new();
    let mut refused = None;
    for n in 0..2_000i64 {
        // ~40 KiB per batch of poorly compressible command lines: the 4 MiB log limit is reached soon.
        let rows: Vec<Value> = (0..100).map(|i| json!({"Timestamp": ts(i), "ActionType": "ProcessCreated", "ReportId": n * 100 + i, "ProcessCommandLine": format!("{:x}", ((n * 100 + i) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))})).collect();
        let (status, body, retry) = post_batch(
            &s,
            &d,
            &json!({"batchId": n.to_string(), "tables": {"DeviceProcessEvents": rows}}),
        )
        .await;
        match status {
            200 => acked.push(n * 100),
            503 => {
                assert_mde_error(&body, "ServiceUnavailable");
                refused = Some(retry.expect("503 carries Retry-After"));
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let retry = refused.expect("the file limit was reached");
    assert!(retry.parse::<u64>().unwrap() >= 1);
    assert!(!acked.is_empty());
    drop(s); // kill -9: nothing acknowledged may depend on a clean shutdown
    let stored: std::collections::HashSet<i64> = query_i64(
        b,
        &tenant,
        "select \"ReportId\" from \"DeviceProcessEvents\" where \"ReportId\" % 100 = 0",
    )
    .await
    .into_iter()
    .collect();
    for base in &acked {
        assert!(stored.contains(base), "acknowledged batch {base} was lost");
    }
    let dup = query_i64(
        b,
        &tenant,
        "select count(*) - count(distinct \"ReportId\") from \"DeviceProcessEvents\"",
    )
    .await;
    assert_eq!(dup, vec![0]);
}

#[tokio::test]
async fn the_ingest_command_imports_files_once_and_names_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let tenant = b.cli(&["tenants", "create", "Importer", "--json"]);
    let tenant: Value = serde_json::from_str(&tenant).unwrap();
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let dev = "c".repeat(40);
    let rows = dir.path().join("rows.ndjson");
    let lines: Vec<String> = (0..20_000)
        .map(|i| json!({"Timestamp": ts(i % 3600), "DeviceId": dev, "DeviceName": "imp-1", "ActionType": "ConnectionSuccess", "RemotePort": 443, "ReportId": i}).to_string())
        .chain(["{\"Timestamp\": \"soon\", \"DeviceId\": \"x\"}".to_owned()])
        .collect();
    std::fs::write(&rows, lines.join("\n")).unwrap();
    let csv = dir.path().join("export.csv");
    std::fs::write(
        &csv,
        format!(
            "Timestamp,DeviceId,RemoteIP,RemotePort\n{},{dev},192.0.2.10,22\n",
            ts(10)
        ),
    )
    .unwrap();
    let args = [
        "ingest",
        "--tenant",
        tenant.as_str(),
        "--table",
        "DeviceNetworkEvents",
        rows.to_str().unwrap(),
        csv.to_str().unwrap(),
    ];
    let out = b.cli(&args);
    assert!(out.contains("20001 rows stored, 1 rejected"), "{out}");
    let out = b.cli_raw(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 rows stored") && text.contains("20001 already stored before"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("line 20001: DeviceNetworkEvents.Timestamp: expected datetime, got \"soon\""),
        "{err}"
    );
    let out = b.cli_raw(&["ingest", "--table", "DeviceNetwork", rows.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--table DeviceNetwork: no such table"));
    let n = query_i64(b, &tenant, "select count(*) from \"DeviceNetworkEvents\"").await;
    assert_eq!(n, vec![20_001]);
    // The machine was created from first contact.
    let s = Server::start(b);
    let app = b.create_app(Some(&tenant), "Machine.Read.All");
    let token = s.token(&app).await;
    let (status, m) = s.get(&format!("/api/machines/{dev}"), Some(&token)).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["computerDnsName"], "imp-1");
}

#[tokio::test]
async fn simulated_fleet_files_ingest_whole() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let out = dir.path().join("sim");
    let printed = b.cli(&[
        "simulate",
        "--devices",
        "4",
        "--days",
        "0.05",
        "--seed",
        "3",
        "--scenario",
        "ransomware",
        "--format",
        "ndjson",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut files = Vec::new();
    let mut lines = 0usize;
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "ndjson") {
            lines += std::fs::read_to_string(&p).unwrap().lines().count();
            files.push(p.to_str().unwrap().to_owned());
        }
    }
    assert!(lines > 1000, "{printed}");
    assert!(
        std::fs::read_to_string(out.join("labels.jsonl"))
            .unwrap()
            .lines()
            .count()
            > 0,
        "ground truth is written"
    );
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    let stored = b.cli(&args);
    assert!(
        stored.starts_with(&format!("{lines} rows stored, 0 rejected")),
        "{stored}"
    );
    let tenant = b.cli(&["tenants", "list", "--json"]);
    let tenant: Value = serde_json::from_str(&tenant).unwrap();
    let tenant = tenant[0]["id"].as_str().unwrap().to_owned();
    let mut total = 0;
    for t in rampart_core::schema::hunting_tables() {
        total += query_i64(b, &tenant, &format!("select count(*) from \"{}\"", t.name)).await[0];
    }
    assert_eq!(total as usize, lines);
    let software = query_i64(
        b,
        &tenant,
        "select count(distinct \"DeviceId\") from \"DeviceTvmSoftwareInventory\"",
    )
    .await[0];
    assert_eq!(software, 4, "every simulated device's software is stored");
    let renames = query_i64(
        b,
        &tenant,
        "select count(*) from \"DeviceFileEvents\" where \"ActionType\" = 'FileRenamed'",
    )
    .await[0];
    assert!(
        renames > 50,
        "the ransomware scenario's mass renames are stored: {renames}"
    );
}

/// A local S3 endpoint (moto), when installed; `RAMPART_TEST_S3=1` (set by `.ci/run`) makes it
/// required, so CI cannot silently skip the S3 path.
fn local_s3() -> Option<(std::process::Child, String)> {
    let required = std::env::var_os("RAMPART_TEST_S3").is_some();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawned = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(c) => c,
        Err(e) if required => panic!("RAMPART_TEST_S3 is set but moto_server could not start: {e}"),
        Err(_) => {
            eprintln!(
                "skipping the S3 test: moto_server is not installed (pip install 'moto[s3,server]')"
            );
            return None;
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "moto_server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Some((child, format!("http://127.0.0.1:{port}")))
}

#[tokio::test]
async fn events_go_to_an_s3_bucket_unchanged() {
    let Some((mut moto, endpoint)) = local_s3() else {
        return;
    };
    let http = reqwest::Client::new();
    assert!(
        http.put(format!("{endpoint}/rampart-events"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let env = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let url = "s3://rampart-events/site-a";
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_env(b, &["--events-url", url], &env);
    let token = s.token_with("Event.Write").await;
    let rows: Vec<String> = (0..500).map(|i| json!({"Timestamp": ts(i), "DeviceId": "d".repeat(40), "ActionType": "ProcessCreated", "ReportId": i}).to_string()).collect();
    let (status, body) = post_import(
        &s,
        &token,
        "?table=DeviceProcessEvents",
        "application/x-ndjson",
        rows.join("\n"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(500)),
        "{body}"
    );
    let tenant = s.tenant.clone();
    assert!(s.terminate().success(), "shutdown flushes to the bucket");
    let listing = http
        .get(format!("{endpoint}/rampart-events?list-type=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains(&format!("site-a/events/{tenant}/DeviceProcessEvents/day=")),
        "{listing}"
    );
    assert!(listing.contains(".parquet"), "{listing}");
    // The files read back through the same URL.
    let options: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let objects = rampart_telemetry::store::object_store_with(url, options).unwrap();
    let events = EventStore::open_with_object_store(
        &b.data_dir.join("telemetry"),
        objects,
        EventStoreConfig::default(),
    )
    .await
    .unwrap();
    let ctx = events.session(tenant.parse().unwrap()).unwrap();
    let n = ctx
        .sql("select count(*) from \"DeviceProcessEvents\"")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(n[0].column(0).as_primitive::<Int64Type>().value(0), 500);
    assert_eq!(
        events.stats().hot_rows,
        0,
        "everything came from the bucket"
    );
    events.shutdown().await.unwrap();
    let _ = moto.kill();
    let _ = moto.wait();
}

/// A software report of `packages` (name, version) for the device posting it.
fn software_report(batch_id: &str, packages: &[(&str, &str)]) -> Value {
    let rows: Vec<Value> = packages
        .iter()
        .map(|(name, version)| {
            json!({"SoftwareVendor": "debian", "SoftwareName": name, "SoftwareVersion": version,
                   "OSPlatform": "Linux"})
        })
        .collect();
    json!({"batchId": batch_id, "tables": {"DeviceTvmSoftwareInventory": rows}})
}

#[tokio::test]
async fn software_reports_replace_the_inventory_and_logons_name_the_users() {
    let dir = tempfile::tempdir().unwrap();
    let b = &backends(dir.path())[0];
    let s = Server::start_with(b, &["--no-rate-limits"]);
    let (web, db) = (
        enroll(&s, "web-1.corp.example").await,
        enroll(&s, "db-1.corp.example").await,
    );
    let logon = |offset: i64, action: &str, account: &str, kind: &str| {
        json!({"Timestamp": ts(offset), "ActionType": action, "AccountDomain": "web-1",
               "AccountName": account, "LogonType": kind, "ReportId": offset})
    };
    let batch = json!({"batchId": "events", "tables": {
        "DeviceInfo": [{"Timestamp": ts(0), "DeviceName": "web-1.corp.example", "OSPlatform": "Linux"}],
        "DeviceLogonEvents": [
            logon(1, "LogonSuccess", "root", "Network"),
            logon(5, "LogonSuccess", "root", "Network"),
            logon(3, "LogonSuccess", "alice", "Interactive"),
            logon(4, "LogonSuccess", "alice", "Network"),
            logon(6, "LogonFailed", "mallory", "Network"),
        ]
    }});
    let (st, body, _) = post_batch(&s, &web, &batch).await;
    assert_eq!((st, body["accepted"].as_u64()), (200, Some(6)), "{body}");
    let report = software_report(
        "sw-1",
        &[
            ("bash", "5.2"),
            ("curl", "8.5"),
            ("curl", "8.4"),
            ("openssl", "3.0"),
        ],
    );
    let (st, body, _) = post_batch(&s, &web, &report).await;
    assert_eq!((st, body["accepted"].as_u64()), (200, Some(4)), "{body}");
    let (st, body, _) = post_batch(&s, &db, &software_report("sw-1", &[("curl", "8.5")])).await;
    assert_eq!(st, 200, "{body}");
    // A device reports its own software only.
    let foreign = json!({"batchId": "sw-x", "tables": {"DeviceTvmSoftwareInventory": [
        {"DeviceId": web.id, "SoftwareName": "rootkit"}]}});
    let (st, body, _) = post_batch(&s, &db, &foreign).await;
    assert_eq!((st, body["rejected"].as_u64()), (200, Some(1)), "{body}");

    let reader = s.token_with("Software.Read.All").await;
    let software = |device: String| {
        let (s, reader) = (&s, &reader);
        async move {
            s.get(&format!("/api/machines/{device}/software"), Some(reader))
                .await
        }
    };
    let (st, list) = software(web.id.clone()).await;
    assert_eq!(st, 200, "{list}");
    let products: Vec<(String, String, i64)> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["vendor"], "debian", "{p}");
            assert_eq!(p["publicExploit"], false, "{p}");
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
                p["exposedMachines"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("debian-_-bash", "bash", 1),
        ("debian-_-curl", "curl", 2),
        ("debian-_-openssl", "openssl", 1),
    ];
    assert_eq!(
        products,
        expected.map(|(i, n, c)| (i.to_owned(), n.to_owned(), c)),
        "two versions of curl on web-1 count one machine; db-1 has it too"
    );

    // web-1 reports again: only bash is left.
    let (st, _, _) = post_batch(&s, &web, &software_report("sw-2", &[("bash", "5.3")])).await;
    assert_eq!(st, 200);
    let (_, list) = software(web.id.clone()).await;
    let names: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bash"], "{list}");
    let hunter = s.token_with("AdvancedHunting.Read.All").await;
    let (st, hunt) = s
        .post(
            "/api/advancedhunting/run",
            &hunter,
            json!({"Query": "DeviceTvmSoftwareInventory | summarize n = count() by SoftwareName, SoftwareVersion | order by SoftwareName asc"}),
        )
        .await;
    assert_eq!(st, 200, "{hunt}");
    assert_eq!(
        hunt["Results"],
        json!([{"SoftwareName": "bash", "SoftwareVersion": "5.3", "n": 1},
               {"SoftwareName": "curl", "SoftwareVersion": "8.5", "n": 1}]),
        "web-1's old report is gone, db-1's stays"
    );

    let (st, users) = s
        .get(
            &format!("/api/machines/{}/logonusers", web.id),
            Some(&s.token_with("User.Read.All").await),
        )
        .await;
    assert_eq!(st, 200, "{users}");
    let users = users["value"].as_array().unwrap();
    assert_eq!(users.len(), 2, "the failed logon is no user: {users:?}");
    assert_eq!(users[0]["id"], "web-1\\root", "the latest logon first");
    assert_eq!(users[0]["logonTypes"], "Network");
    assert_eq!(users[0]["isOnlyNetworkUser"], true);
    assert_eq!(users[1]["accountName"], "alice");
    assert_eq!(users[1]["logonTypes"], "Interactive, Network");
    assert_eq!(users[1]["isOnlyNetworkUser"], false);
    assert!(users[1]["firstSeen"].as_str().unwrap() < users[1]["lastSeen"].as_str().unwrap());

    let (st, body) = s
        .get(
            &format!("/api/machines/{}/software", web.id),
            Some(&s.token_with("Machine.Read.All").await),
        )
        .await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = software("0".repeat(40)).await;
    assert_eq!(st, 404);
    assert_mde_error(&body, "ResourceNotFound");
}
