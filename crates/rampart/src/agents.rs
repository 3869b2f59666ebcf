//! Simulated agents for `rampart demo`: a fleet of devices that enroll like real agents and
//! stream live telemetry through `/agent/v1/telemetry`, with an attack scenario every few minutes.
//!
//! They go through the same front door as a real sensor (enrollment token, device credential,
//! zstd-compressed Arrow batches with batch ids, retries on 503), so the demo exercises the whole
//! ingestion path.

use anyhow::{Context, bail};
use rampart_simulate::live::Live;
use rampart_simulate::sinks::ArrowRows;
use rampart_simulate::{FleetSpec, ScenarioKind, ScenarioSpec};
use rampart_telemetry::wire;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How often each agent sends what happened since its last batch.
const SEND_EVERY: Duration = Duration::from_secs(2);
/// How often an attack starts somewhere in the fleet.
const SCENARIO_EVERY: Duration = Duration::from_secs(180);

/// A device's credential, kept in the demo dir so a restarted demo keeps its fleet.
#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Credential {
    device_id: String,
    device_secret: String,
}

fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// Enrolls every simulated device (once; credentials are kept in `creds_path`).
async fn enroll_all(
    http: &reqwest::Client,
    base: &str,
    enrollment_token: &str,
    live: &Live,
    creds_path: &Path,
) -> anyhow::Result<Vec<Credential>> {
    let mut known: BTreeMap<String, Credential> = match std::fs::read_to_string(creds_path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("reading {}", creds_path.display()))?,
        Err(_) => BTreeMap::new(),
    };
    let mut out = Vec::new();
    for d in live.fleet().devices() {
        if let Some(c) = known.get(&d.id) {
            out.push(c.clone());
            continue;
        }
        let resp = http
            .post(format!("{base}/agent/v1/enroll"))
            .json(&json!({"enrollmentToken": enrollment_token, "computerDnsName": d.name, "osPlatform": d.os.name(), "deviceId": d.id}))
            .send()
            .await
            .context("enrolling a simulated device")?;
        if !resp.status().is_success() {
            bail!(
                "enrolling {} failed: {} {}",
                d.name,
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        let v: Value = resp.json().await?;
        let c = Credential {
            device_id: v["deviceId"].as_str().unwrap_or(&d.id).to_owned(),
            device_secret: v["deviceSecret"]
                .as_str()
                .context("enrollment answer without deviceSecret")?
                .to_owned(),
        };
        known.insert(d.id.clone(), c.clone());
        out.push(c);
    }
    crate::tls::write_private(creds_path, &serde_json::to_vec_pretty(&known)?)?;
    Ok(out)
}

/// Runs the fleet until the process ends.
pub async fn run(
    base: String,
    enrollment_token: String,
    devices: usize,
    creds_path: std::path::PathBuf,
) -> anyhow::Result<()> {
    let spec = FleetSpec {
        devices,
        days: 1.0,
        seed: 7,
        start_ns: now_ns(),
        scenarios: Vec::new(),
    };
    let mut live = Live::new(&spec);
    let http = reqwest::Client::new();
    // The server may still be binding its port.
    let creds = loop {
        match enroll_all(&http, &base, &enrollment_token, &live, &creds_path).await {
            Ok(c) => break c,
            Err(e) if e.chain().any(|c| c.is::<reqwest::Error>()) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => return Err(e),
        }
    };
    tracing::info!(
        devices = creds.len(),
        "simulated agents enrolled; streaming telemetry"
    );
    // Each device's installed software, once at start as a real agent does; a report replaces
    // the last, so a restarted demo sending it again changes nothing.
    for (d, c) in live.fleet().devices().iter().zip(&creds) {
        let batch = json!({
            "batchId": format!("software-{}", now_ns()),
            "tables": { "DeviceTvmSoftwareInventory": rampart_simulate::software::rows(d) },
        });
        send(
            &http,
            &base,
            c,
            BatchBody::Json(batch.to_string().as_bytes()),
        )
        .await;
    }
    let mut rows = ArrowRows::new();
    let mut next_scenario = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut scenario = 0usize;
    let mut tick = tokio::time::interval(SEND_EVERY);
    loop {
        tick.tick().await;
        let now = now_ns();
        if tokio::time::Instant::now() >= next_scenario {
            let kind = ScenarioKind::ALL[scenario % ScenarioKind::ALL.len()];
            scenario += 1;
            live.inject(
                ScenarioSpec {
                    kind,
                    device: None,
                    at_ns: Some(now),
                },
                now,
            );
            tracing::info!(%kind, "simulated attack started");
            next_scenario += SCENARIO_EVERY;
        }
        live.due(now, &mut rows)?;
        for (device, batches) in rows.take_all() {
            let Some(c) = creds.get(device) else { continue };
            let body = wire::encode(&batches).context("encoding a simulated batch")?;
            send(&http, &base, c, BatchBody::Arrow(&format!("{now}"), &body)).await;
        }
    }
}

/// A batch body: Arrow streams with their batch id, or JSON (whose batch id is inside).
enum BatchBody<'a> {
    Arrow(&'a str, &'a [u8]),
    Json(&'a [u8]),
}

/// Posts one batch, retrying while the server asks to (503) or cannot be reached.
async fn send(http: &reqwest::Client, base: &str, c: &Credential, body: BatchBody<'_>) {
    let (content_type, batch_id, body) = match body {
        BatchBody::Arrow(id, b) => (wire::CONTENT_TYPE, Some(id), b),
        BatchBody::Json(b) => ("application/json", None, b),
    };
    let Ok(compressed) = zstd::encode_all(body, 3) else {
        return;
    };
    for attempt in 0..5u32 {
        let mut request = http
            .post(format!("{base}/agent/v1/telemetry"))
            .header(
                "authorization",
                format!("Device {}:{}", c.device_id, c.device_secret),
            )
            .header("content-encoding", "zstd")
            .header("content-type", content_type);
        if let Some(id) = batch_id {
            request = request.header("rampart-batch-id", id);
        }
        let sent = request.body(compressed.clone()).send().await;
        let wait = match sent {
            Ok(r) if r.status().is_success() => return,
            Ok(r) if r.status().as_u16() == 503 => r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs),
            Ok(r) => {
                tracing::warn!(status = %r.status(), "simulated agent batch refused");
                return;
            }
            Err(_) => Duration::from_millis(500 << attempt),
        };
        tokio::time::sleep(wait).await;
    }
}
