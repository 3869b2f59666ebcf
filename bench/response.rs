//! `response-bench`: issue 8's two latency targets against the real server (docs/BENCHMARKS.md).
//!
//! Starts the real `rampart serve` on a fresh data dir (SQLite), enrolls `--agents` devices over
//! HTTP and has each behave as the agent does: hold the command poll, naming the indicator
//! generation it enforces; when an answer names a newer one, fetch `GET /agent/v1/indicators`
//! (with its `ETag`) and enforce what came.
//!
//! * *Verdict → enforced*: `--verdicts` times, an external alert naming a file is imported and
//!   then classified TruePositive/Malware through the MDE API; signal sharing makes the file a
//!   blocking indicator. Measured per agent: from sending the verdict to the agent holding an
//!   indicator set that blocks the file.
//! * *External alert → investigation*: `--alerts` external alerts naming one of the devices are
//!   imported one at a time; measured: the import's answer (the alert is stored and in its
//!   incident when it returns), and until the alert's investigation has started (its
//!   `investigationState` is past `Queued`).
//!
//! Baselines in the same go, under the same held polls: a bare `GET /healthz` round trip, and
//! an agent's unchanged `GET /agent/v1/indicators` (answered 304).

mod fleet;
mod serve;

use anyhow::{Context, bail};
use clap::Parser;
use fleet::{Fleet, summary};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The rampart binary (a release build).
    #[arg(long)]
    rampart: String,
    /// Simulated agents, each holding one poll.
    #[arg(long, default_value_t = 1_000)]
    agents: usize,
    /// Verdicts to share, one after the other.
    #[arg(long, default_value_t = 10)]
    verdicts: usize,
    /// External alerts to import, one after the other.
    #[arg(long, default_value_t = 100)]
    alerts: usize,
}

/// When each agent first enforced each hash: (agent, hash) → instant.
type Enforced = Arc<Mutex<HashMap<(usize, String), Instant>>>;

/// One simulated agent: holds the poll naming its generation; on a newer one, syncs its
/// indicators and records the hashes it now blocks.
async fn agent(
    n: usize,
    http: reqwest::Client,
    url: String,
    auth: String,
    enforced: Enforced,
    connected: Arc<AtomicUsize>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut generation: Option<i64> = None;
    let mut etag: Option<String> = None;
    loop {
        let mut body = json!({ "waitSeconds": if generation.is_none() { 0 } else { 30 } });
        if let Some(g) = generation {
            body["indicatorGeneration"] = json!(g);
        }
        let poll = http
            .post(format!("{url}/agent/v1/commands/poll"))
            .header("authorization", &auth)
            .json(&body)
            .send();
        let resp = tokio::select! {
            r = poll => r,
            _ = stop.notified() => return,
        };
        let v: Value = match resp {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
            other => {
                eprintln!("poll: {:?}", other.map(|r| r.status()));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let heard = v["indicatorGeneration"].as_i64();
        if heard.is_none() || heard == generation {
            continue;
        }
        let first = generation.is_none();
        generation = heard;
        let mut req = http
            .get(format!("{url}/agent/v1/indicators"))
            .header("authorization", &auth);
        if let Some(tag) = &etag {
            req = req.header("if-none-match", tag);
        }
        let Ok(resp) = req.send().await else { continue };
        if resp.status().as_u16() == 304 {
            continue;
        }
        etag = resp
            .headers()
            .get("etag")
            .and_then(|t| t.to_str().ok())
            .map(str::to_owned);
        let set: Value = resp.json().await.unwrap_or(Value::Null);
        let now = Instant::now();
        let mut enforced = enforced.lock().unwrap();
        for f in set["files"].as_array().into_iter().flatten() {
            if let Some(h) = f["hash"].as_str() {
                enforced.entry((n, h.to_owned())).or_insert(now);
            }
        }
        drop(enforced);
        if first {
            connected.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http.post(url).bearer_auth(token).json(&body).send().await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if !status.is_success() {
        bail!("{url}: HTTP {status}: {v}");
    }
    Ok(v)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fleet = Fleet::start(
        &args.rampart,
        "response-bench",
        "Alert.ReadWrite.All,Ti.ReadWrite.All,SecurityConfiguration.ReadWrite.All",
        args.agents,
        Duration::from_secs(60),
    )
    .await?;
    let (url, http, devices, api) = (&fleet.url, &fleet.http, &fleet.devices, &fleet.token);

    let enforced: Enforced = Arc::default();
    let connected = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    for (n, (_, auth)) in devices.iter().enumerate() {
        tokio::spawn(agent(
            n,
            http.clone(),
            url.clone(),
            auth.clone(),
            Arc::clone(&enforced),
            Arc::clone(&connected),
            Arc::clone(&stop),
        ));
    }
    fleet.wait_connected(&connected).await?;
    // Let every first poll come back as a held one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("{} agents holding polls", devices.len());

    // Baselines under the same held polls.
    let (mut healthz, mut unchanged) = (Vec::new(), Vec::new());
    let probe_auth = &devices[0].1;
    let tag = http
        .get(format!("{url}/agent/v1/indicators"))
        .header("authorization", probe_auth)
        .send()
        .await?
        .headers()
        .get("etag")
        .and_then(|t| t.to_str().ok())
        .map(str::to_owned)
        .context("indicator set ETag")?;
    for _ in 0..300 {
        let t = Instant::now();
        http.get(format!("{url}/healthz"))
            .send()
            .await?
            .bytes()
            .await?;
        healthz.push(t.elapsed());
        let t = Instant::now();
        let r = http
            .get(format!("{url}/agent/v1/indicators"))
            .header("authorization", probe_auth)
            .header("if-none-match", &tag)
            .send()
            .await?;
        if r.status().as_u16() != 304 {
            bail!("the unchanged indicator set answered {}", r.status());
        }
        unchanged.push(t.elapsed());
    }

    // Verdict → enforced on every agent.
    let mut to_enforced = Vec::new();
    let mut patch_answer = Vec::new();
    let mut missing = 0;
    for k in 0..args.verdicts {
        let sha256 = format!("{:064x}", 0xbe9c_0000_u64 + k as u64);
        let v = post(
            http,
            &format!("{url}/api/alerts/import"),
            api,
            json!({"Alerts": [{"sourceProduct": "Bench EDR", "externalId": format!("verdict-{k}"),
                "title": "Suspicious file", "severity": "Medium", "category": "Malware",
                "lastEventTime": rampart_core::timefmt::format(time::OffsetDateTime::now_utc()),
                "evidence": [{"entityType": "File", "sha256": sha256}]}]}),
        )
        .await?;
        let id = v["value"][0]["id"]
            .as_str()
            .context("imported alert id")?
            .to_owned();
        let sent = Instant::now();
        let resp = http
            .patch(format!("{url}/api/alerts/{id}"))
            .bearer_auth(api)
            .json(&json!({"classification": "TruePositive", "determination": "Malware"}))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("verdict: HTTP {}", resp.status());
        }
        patch_answer.push(sent.elapsed());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got: Vec<Instant> = {
                let e = enforced.lock().unwrap();
                (0..devices.len())
                    .filter_map(|n| e.get(&(n, sha256.clone())).copied())
                    .collect()
            };
            if got.len() == devices.len() || Instant::now() > deadline {
                missing += devices.len() - got.len();
                to_enforced.extend(got.iter().map(|at| at.saturating_duration_since(sent)));
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!(
        "verdict -> indicator enforced, {} agents x {} verdicts (missing {missing}): {}",
        devices.len(),
        args.verdicts,
        summary(&mut to_enforced)
    );
    println!(
        "  the verdict's own answer (PATCH /api/alerts): {}",
        summary(&mut patch_answer)
    );

    // External alert → incident and investigation.
    let mut imported = Vec::new();
    let mut started = Vec::new();
    let mut finished = Vec::new();
    for k in 0..args.alerts {
        let device = &devices[k % devices.len()].0;
        let sent = Instant::now();
        let v = post(
            http,
            &format!("{url}/api/alerts/import"),
            api,
            json!({"Alerts": [{"sourceProduct": "Bench NDR", "externalId": format!("ndr-{k}"),
                "title": "Beaconing to a rare domain", "severity": "Medium",
                "category": "CommandAndControl",
                "lastEventTime": rampart_core::timefmt::format(time::OffsetDateTime::now_utc()),
                "evidence": [{"entityType": "Device", "machineId": device},
                             {"entityType": "Ip", "ipAddress": "203.0.113.9"}]}]}),
        )
        .await?;
        imported.push(sent.elapsed());
        let item = &v["value"][0];
        if item["incidentId"].is_null() {
            bail!("the imported alert is in no incident: {item}");
        }
        let investigation = item["id"].as_str().context("imported alert id")?.to_owned();
        let a: Value = http
            .get(format!("{url}/api/alerts/{investigation}"))
            .bearer_auth(api)
            .send()
            .await?
            .json()
            .await?;
        let inv = a["investigationId"]
            .as_i64()
            .with_context(|| format!("the alert has no investigation: {a}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut was_started = false;
        loop {
            let i: Value = http
                .get(format!("{url}/api/investigations/{inv}"))
                .bearer_auth(api)
                .send()
                .await?
                .json()
                .await?;
            let state = i["state"].as_str().unwrap_or_default();
            if !was_started && state != "Queued" {
                was_started = true;
                started.push(sent.elapsed());
            }
            if !["Queued", "Running", "PendingApproval"].contains(&state) {
                finished.push(sent.elapsed());
                break;
            }
            if Instant::now() > deadline {
                bail!("investigation {inv}: not finished within 30 s: {i}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!(
        "external alert -> stored in its incident (import answered), {} alerts: {}",
        args.alerts,
        summary(&mut imported)
    );
    println!(
        "external alert -> investigation started: {}",
        summary(&mut started)
    );
    println!(
        "external alert -> investigation finished (evidence gathered, verdicts given): {}",
        summary(&mut finished)
    );
    println!(
        "baseline under the same held polls: GET /healthz {}",
        summary(&mut healthz)
    );
    println!(
        "baseline: an agent's unchanged indicator sync (304) {}",
        summary(&mut unchanged)
    );
    stop.notify_waiters();
    Ok(())
}
