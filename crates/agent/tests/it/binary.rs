//! The `rampart-agent` binary: enroll → credential file, status, and run → a DeviceInfo row and
//! the ProcessCreated row of a process started while it runs, delivered over HTTP.

use crate::server::{Reply, Responder, TinyServer, ack};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_rampart-agent");

fn responder() -> Responder {
    Arc::new(|_, req| {
        if req.path == "/agent/v1/enroll" {
            Reply::json(
                201,
                json!({"deviceId": "cd".repeat(20), "deviceSecret": "rpd_bin", "tenantId": "t9"}),
            )
        } else {
            ack(req)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_status_and_run_through_the_binary() {
    let server = TinyServer::start(responder()).await;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let state_arg = state.to_str().unwrap();

    let out = Command::new(BIN)
        .args([
            "--state-dir",
            state_arg,
            "enroll",
            "--server",
            &server.url(),
        ])
        .env("RAMPART_ENROLLMENT_TOKEN", "rpe_tok")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let creds = state.join("credentials.json");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    assert_eq!(stored["deviceSecret"], "rpd_bin");
    assert_eq!(server.requests()[0].json()["enrollmentToken"], "rpe_tok");

    // A second enroll without --force is refused and keeps the credential.
    let again = Command::new(BIN)
        .args([
            "--state-dir",
            state_arg,
            "enroll",
            "--server",
            &server.url(),
            "--token",
            "rpe_x",
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());

    let mut agent = Command::new(BIN)
        .args(["--state-dir", state_arg, "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Once the DeviceInfo batch arrives the sensor is running; then start a marked process.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let rows = |table: &str| -> Vec<Value> {
        server
            .requests()
            .iter()
            .filter(|r| r.path == "/agent/v1/telemetry")
            .flat_map(|r| {
                r.json()["tables"][table]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    };
    while rows("DeviceInfo").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no DeviceInfo row");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let marker = format!("rampart-bin-{}", uuid::Uuid::new_v4().simple());
    let status = Command::new("/bin/sh")
        .args(["-c", &format!("sleep 0.5; true {marker}")])
        .status()
        .unwrap();
    assert!(status.success());
    let found = loop {
        let hit = rows("DeviceProcessEvents").into_iter().find(|r| {
            r["ProcessCommandLine"]
                .as_str()
                .is_some_and(|c| c.contains(&marker))
        });
        if let Some(r) = hit {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ProcessCreated row for {marker}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(found["DeviceId"], "cd".repeat(20));
    assert_eq!(found["ActionType"], "ProcessCreated");
    let info = &rows("DeviceInfo")[0];
    assert_eq!(info["OSPlatform"], "Linux");
    assert_eq!(info["ClientVersion"], env!("CARGO_PKG_VERSION"));

    // SIGTERM stops it cleanly.
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) }, 0);
    let exit = agent.wait().unwrap();
    assert!(exit.success(), "{exit:?}");

    let out = Command::new(BIN)
        .args(["--state-dir", state_arg, "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&"cd".repeat(20)), "{text}");
    assert!(text.contains("Queue:        0 batches"), "{text}");
    assert!(text.contains("Acknowledged"), "{text}");
    // The binary loads its eBPF program (it is root on a kernel with BTF here).
    assert!(text.contains("Processes:    Ebpf"), "{text}");
}
