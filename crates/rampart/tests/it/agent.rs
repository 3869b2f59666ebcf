//! The Linux agent against the real server: enrollment over TLS pinned to the server's
//! self-signed certificate, the process sensor on the real kernel, telemetry batches through
//! `/agent/v1/telemetry`, and the rows found again by KQL. The agent is the real binary, in a
//! process of its own.

use crate::harness::{Server, backends};
use rampart_agent::credentials::Credentials;
use rampart_agent::status::AgentStatus;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

async fn post(s: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    s.post(path, token, body).await
}

/// Rows of `query`, polled until `done` holds them (at most 20 s).
async fn hunt(s: &Server, token: &str, query: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (st, v) = post(
            s,
            token,
            "/api/advancedhunting/run",
            json!({ "Query": query }),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        let rows = v["Results"].as_array().cloned().unwrap_or_default();
        if done(&rows) || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap();
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn enrolled_agent_reports_processes_that_hunting_finds() {
    // The proc connector needs CAP_NET_ADMIN; the agent falls back to polling /proc without
    // it, which sees the same process (it lives half a second).
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits", "--tls-self-signed"]);
        let fingerprint = s
            .stdout()
            .iter()
            .find_map(|l| l.split("fingerprint: ").nth(1).map(str::to_owned))
            .expect("the server prints its certificate's fingerprint");
        let admin = s.token_with("SecurityConfiguration.ReadWrite.All").await;
        let (st, token) = post(
            &s,
            &admin,
            "/api/enrollmentTokens",
            json!({"name": "e2e", "maxUses": 1}),
        )
        .await;
        assert_eq!(st, 201, "{}: {token}", b.name);
        let secret = token["token"].as_str().unwrap().to_owned();

        // A wrong pin fails before the token is sent: the token stays unused.
        let state = dir.path().join(format!("agent-{}", b.name));
        let state_arg = state.to_str().unwrap();
        let mut wrong = fingerprint.replace(':', "");
        let flipped = if wrong.starts_with('0') { "1" } else { "0" };
        wrong.replace_range(0..1, flipped);
        let enroll = |pin: &str, force: bool| {
            let mut c = agent_command(state_arg);
            c.args(["enroll", "--server", &s.url, "--server-fingerprint", pin])
                .env("RAMPART_ENROLLMENT_TOKEN", &secret);
            if force {
                c.arg("--force");
            }
            c.output().unwrap()
        };
        let out = enroll(&wrong, false);
        assert!(
            !out.status.success(),
            "{}: a wrong pin must not enroll",
            b.name
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("pinned"), "{}: {err}", b.name);

        let out = enroll(&fingerprint, false);
        assert!(
            out.status.success(),
            "{}: {}",
            b.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let creds = Credentials::load(&state).unwrap();
        assert_eq!(creds.tenant_id, s.tenant, "{}", b.name);
        assert_eq!(creds.device_id.len(), 40);
        let mode = std::fs::metadata(Credentials::path(&state))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", b.name);
        // The token allowed one enrollment.
        let out = enroll(&fingerprint, true);
        assert!(!out.status.success(), "{}", b.name);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("401"), "{}: {err}", b.name);
        assert_eq!(
            Credentials::load(&state).unwrap(),
            creds,
            "{}: kept",
            b.name
        );

        let mut agent = agent_command(state_arg)
            .arg("run")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The DeviceInfo batch sent at start is acknowledged.
        let deadline = Instant::now() + Duration::from_secs(20);
        while AgentStatus::load(&state)
            .last_send
            .is_none_or(|r| r.outcome != "Acknowledged")
        {
            assert!(
                Instant::now() < deadline,
                "{}: nothing acknowledged",
                b.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A process started after the agent, with a command line nothing else has.
        let nonce = format!("{:06}", rand_digits());
        let exe = dir.path().join(format!("rampart-e2e-{}-{nonce}", b.name));
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let mut child = std::process::Command::new(&exe)
            .arg(format!("0.5{nonce}"))
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();

        let hunter = s.token_with("AdvancedHunting.Read.All").await;
        let marker = exe.file_name().unwrap().to_str().unwrap().to_owned();
        let q = format!(
            "DeviceProcessEvents | where ProcessCommandLine contains '{marker}' and ActionType == 'ProcessCreated' \
             | project DeviceId, DeviceName, FileName, FolderPath, ProcessId, SHA256, InitiatingProcessId, AccountName"
        );
        let rows = hunt(&s, &hunter, &q, |r| !r.is_empty()).await;
        assert_eq!(rows.len(), 1, "{}: {rows:?}", b.name);
        let row = &rows[0];
        assert_eq!(row["DeviceId"], creds.device_id.as_str(), "{}", b.name);
        assert_eq!(row["FileName"], marker.as_str(), "{}", b.name);
        assert_eq!(row["FolderPath"], exe.to_str().unwrap(), "{}", b.name);
        assert_eq!(row["ProcessId"], pid, "{}", b.name);
        assert_eq!(row["SHA256"], sha256_hex(&exe), "{}", b.name);
        assert_eq!(row["InitiatingProcessId"], std::process::id(), "{}", b.name);
        assert_eq!(row["AccountName"], "root", "{}", b.name);

        let q = format!(
            "DeviceInfo | where DeviceId == '{}' | project OSPlatform, ClientVersion",
            creds.device_id
        );
        let info = hunt(&s, &hunter, &q, |r| !r.is_empty()).await;
        assert_eq!(info[0]["OSPlatform"], "Linux", "{}: {info:?}", b.name);
        assert_eq!(info[0]["ClientVersion"], rampart_agent::VERSION);

        let machines = s.token_with("Machine.Read.All").await;
        let (st, m) = s
            .get(
                &format!("/api/machines/{}", creds.device_id),
                Some(&machines),
            )
            .await;
        assert_eq!(st, 200, "{}: {m}", b.name);

        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &agent.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        let exit = agent.wait().unwrap();
        assert!(exit.success(), "{}: clean exit on SIGTERM: {exit}", b.name);
        let status = AgentStatus::load(&state);
        assert_eq!(
            status.last_send.map(|r| r.outcome),
            Some("Acknowledged".to_owned()),
            "{}",
            b.name
        );
    }
}

/// The `rampart-agent` binary with `--state-dir`: built beside this test binary by `cargo test
/// --workspace` (the agent is a package of its own; `cargo build -p rampart-agent` builds it
/// alone). It runs as its own process, as on an endpoint.
fn agent_command(state_dir: &str) -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("rampart-agent"))
        .filter(|p| p.exists())
        .expect("the rampart-agent binary is built: run `cargo test --workspace`");
    let mut c = std::process::Command::new(bin);
    c.args(["--state-dir", state_dir]);
    c
}

/// Six digits that differ between runs (the clock's nanoseconds and the process id).
fn rand_digits() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (nanos ^ std::process::id().rotate_left(16)) % 1_000_000
}
