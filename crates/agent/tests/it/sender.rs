//! The sender against a local HTTP server: zstd bodies, the device Authorization header,
//! order, retry after 503 (honouring Retry-After), 500 and network errors, and refused batches.

use crate::server::{Recorded, Reply, Responder, TinyServer, ack};
use rampart_agent::client::ServerClient;
use rampart_agent::sender::{Sender, SenderConfig};
use rampart_agent::spool::Spool;
use rampart_agent::status::AgentStatus;
use rampart_proto::telemetry::TelemetryBatch;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

fn batch(id: &str, rows: usize) -> TelemetryBatch {
    let mut b = TelemetryBatch {
        batch_id: id.into(),
        ..Default::default()
    };
    let list = (0..rows)
        .map(|i| json!({"Timestamp": "2026-01-01T00:00:00Z", "ActionType": "ProcessCreated", "ProcessId": i}).as_object().unwrap().clone())
        .collect();
    b.tables.insert("DeviceProcessEvents".into(), list);
    b
}

struct Running {
    spool: Arc<Spool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    status: Arc<Mutex<AgentStatus>>,
}

fn start_sender(dir: &std::path::Path, server: &str, spool: Arc<Spool>) -> Running {
    let (stop, stop_rx) = watch::channel(false);
    let status = Arc::new(Mutex::new(AgentStatus::default()));
    let sender = Sender {
        spool: Arc::clone(&spool),
        client: ServerClient::new(server, None).unwrap(),
        authorization: rampart_proto::device_authorization("dev1", "rpd_secret"),
        wake: Arc::new(Notify::new()),
        config: SenderConfig {
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_millis(400),
        },
        status: Some((dir.to_path_buf(), Arc::clone(&status))),
    };
    let task = tokio::spawn(sender.run(stop_rx));
    Running {
        spool,
        stop,
        task,
        status,
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn batch_ids(reqs: &[Recorded]) -> Vec<String> {
    reqs.iter()
        .map(|r| r.json()["batchId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sender_retries_503_and_500_then_delivers_in_order_with_zstd_and_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let responder: Responder = Arc::new(|n, req| match n {
        0 => Reply::json(
            503,
            json!({"error": {"code": "ServiceUnavailable", "message": "busy", "target": "x"}}),
        )
        .with_header("retry-after", "1"),
        1 => Reply::json(
            500,
            json!({"error": {"code": "InternalError", "message": "oops"}}),
        ),
        _ => ack(req),
    });
    let server = TinyServer::start(responder).await;
    let spool = Arc::new(Spool::open(&tmp.path().join("spool"), 1 << 30).unwrap());
    for id in ["b1", "b2", "b3"] {
        spool.push(&batch(id, 2)).unwrap();
    }
    let run = start_sender(tmp.path(), &server.url(), Arc::clone(&spool));
    wait_until("the queue to empty", || run.spool.is_empty()).await;

    let reqs = server.requests();
    assert_eq!(batch_ids(&reqs), vec!["b1", "b1", "b1", "b2", "b3"]);
    for r in &reqs {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/agent/v1/telemetry")
        );
        assert_eq!(r.header("authorization"), Some("Device dev1:rpd_secret"));
        assert_eq!(r.header("content-encoding"), Some("zstd"));
        // The body really is zstd: its first bytes are the zstd frame magic.
        assert_eq!(&r.body[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(
            r.json()["tables"]["DeviceProcessEvents"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
    // Retry-After: 1 was honoured although the backoff alone would have waited 50 ms.
    assert!(
        reqs[1].at - reqs[0].at >= Duration::from_millis(990),
        "{:?}",
        reqs[1].at - reqs[0].at
    );

    let status = run.status.lock().unwrap().clone();
    let last = status.last_send.unwrap();
    assert_eq!(
        (
            last.batch_id.as_str(),
            last.outcome.as_str(),
            last.http_status
        ),
        ("b3", "Acknowledged", Some(200))
    );
    assert_eq!(
        AgentStatus::load(tmp.path()).last_send.unwrap().batch_id,
        "b3"
    );
    let _ = run.stop.send(true);
    run.task.await.unwrap();
}

#[tokio::test]
async fn sender_survives_an_unreachable_server_and_delivers_when_it_comes_up() {
    let tmp = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: connections are refused until the server binds it.
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let spool = Arc::new(Spool::open(&tmp.path().join("spool"), 1 << 30).unwrap());
    spool.push(&batch("first", 1)).unwrap();
    spool.push(&batch("second", 1)).unwrap();
    let run = start_sender(tmp.path(), &format!("http://{addr}"), Arc::clone(&spool));
    wait_until("a failed attempt", || {
        run.status
            .lock()
            .unwrap()
            .last_send
            .as_ref()
            .is_some_and(|l| l.outcome == "Retrying")
    })
    .await;
    assert_eq!(spool.summary().batches, 2);

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = TinyServer::serve(listener, Arc::new(|_, req| ack(req)), None);
    wait_until("the queue to empty", || run.spool.is_empty()).await;
    assert_eq!(batch_ids(&server.requests()), vec!["first", "second"]);
    let _ = run.stop.send(true);
    run.task.await.unwrap();
}

#[tokio::test]
async fn a_batch_the_server_refuses_is_dropped_and_counted_but_auth_failures_keep_it() {
    let tmp = tempfile::tempdir().unwrap();
    let responder: Responder = Arc::new(|n, req| match n {
        0 => Reply::json(
            401,
            json!({"error": {"code": "Unauthorized", "message": "bad device"}}),
        ),
        1 => Reply::json(
            400,
            json!({"error": {"code": "InvalidRequestBody", "message": "not a batch"}}),
        ),
        _ => ack(req),
    });
    let server = TinyServer::start(responder).await;
    let spool = Arc::new(Spool::open(&tmp.path().join("spool"), 1 << 30).unwrap());
    spool.push(&batch("bad", 3)).unwrap();
    spool.push(&batch("good", 1)).unwrap();
    let run = start_sender(tmp.path(), &server.url(), Arc::clone(&spool));
    wait_until("the queue to empty", || run.spool.is_empty()).await;
    // 401: kept and retried; 400: dropped; then the next batch.
    assert_eq!(batch_ids(&server.requests()), vec!["bad", "bad", "good"]);
    let c = spool.summary().counters;
    assert_eq!(
        (c.refused_rows, c.refused_batches, c.dropped_rows),
        (3, 1, 0)
    );
    let _ = run.stop.send(true);
    run.task.await.unwrap();
}
