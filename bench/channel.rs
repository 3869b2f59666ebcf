//! `channel-bench`: many agents on the command channel of one server (docs/BENCHMARKS.md).
//!
//! Starts the real `rampart serve` on a fresh data dir (SQLite), enrolls `--agents` devices over
//! HTTP, and has each hold the long poll (`POST /agent/v1/commands/poll`) as the real agent does:
//! poll, take the commands, report them `Succeeded`, poll again. Then it submits `--commands`
//! machine actions through the MDE API at `--rate` per second to devices taken in a shuffled
//! order, and measures the push latency: from the moment the submission is sent to the moment the
//! simulated agent has the command. It reports the server's resident memory before the agents
//! connect and with all of them held, per connected agent, and the server's CPU time while idle
//! with every agent connected (what holding polls costs). The baseline, in the same go, is a
//! bare `GET /healthz` round trip to the same server under the same held polls.
//!
//! Run with a high file limit: `ulimit -n 65536` (one connection per agent on both sides).

mod fleet;
mod serve;

use anyhow::Context;
use clap::Parser;
use fleet::{Fleet, ms, percentile, summary};
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
    #[arg(long, default_value_t = 10_000)]
    agents: usize,
    /// Machine actions to submit while they are connected.
    #[arg(long, default_value_t = 2_000)]
    commands: usize,
    /// Submissions per second.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// How long a poll may be held (the agent's default is 30 s).
    #[arg(long, default_value_t = 30)]
    wait: u32,
    /// Seconds to watch the idle server with every agent connected.
    #[arg(long, default_value_t = 20)]
    idle_seconds: u64,
}

/// Resident memory and CPU time (user + system) of a process.
fn usage(pid: u32) -> anyhow::Result<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("VmRSS")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = &stat[stat.rfind(')').context("stat")? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok((rss_kb * 1024, ticks / 100.0))
}

/// What the agents saw: when each command (by id) arrived.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// One simulated agent: polls, reports each command done, polls again, until `stop`.
async fn agent(
    http: reqwest::Client,
    url: String,
    auth: String,
    wait: u32,
    arrivals: Arrivals,
    connected: Arc<AtomicUsize>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut first = true;
    loop {
        let poll = http
            .post(format!("{url}/agent/v1/commands/poll"))
            .header("authorization", &auth)
            .json(&json!({ "waitSeconds": if first { 0 } else { wait } }))
            .send();
        let resp = tokio::select! {
            r = poll => r,
            _ = stop.notified() => return,
        };
        let v: Value = match resp {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
            Ok(r) => {
                eprintln!("poll: HTTP {}", r.status());
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                eprintln!("poll: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if first {
            connected.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        let now = Instant::now();
        for c in v["commands"].as_array().into_iter().flatten() {
            let Some(id) = c["id"].as_str() else { continue };
            arrivals.lock().unwrap().insert(id.to_owned(), now);
            let done = http
                .post(format!("{url}/agent/v1/commands/{id}"))
                .header("authorization", &auth)
                .json(&json!({ "commandId": id, "state": "Succeeded" }))
                .send()
                .await;
            if let Err(e) = done {
                eprintln!("update: {e}");
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fleet = Fleet::start(
        &args.rampart,
        "channel-bench",
        "Machine.Isolate,Machine.Scan,Machine.Read.All,SecurityConfiguration.ReadWrite.All",
        args.agents,
        Duration::from_secs(u64::from(args.wait) + 30),
    )
    .await?;
    let (server, url, http, devices) = (&fleet.server, &fleet.url, &fleet.http, &fleet.devices);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_before, _) = usage(server.child.id())?;

    let arrivals: Arrivals = Arc::default();
    let connected = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut agents = Vec::with_capacity(devices.len());
    for (_, auth) in devices {
        agents.push(tokio::spawn(agent(
            http.clone(),
            url.clone(),
            auth.clone(),
            args.wait,
            Arc::clone(&arrivals),
            Arc::clone(&connected),
            Arc::clone(&stop),
        )));
    }
    let took = fleet.wait_connected(&connected).await?;
    println!(
        "{} agents polling after {:.1} s",
        devices.len(),
        took.as_secs_f64()
    );
    // Let every first (non-waiting) poll come back as a held one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_held, cpu_start) = usage(server.child.id())?;
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let (_, cpu_end) = usage(server.child.id())?;
    let idle_cpu = (cpu_end - cpu_start) / args.idle_seconds as f64;

    // The floor, in the same go: a bare HTTP round trip to the same server under the same
    // held polls.
    let mut floor = Vec::with_capacity(500);
    for _ in 0..500 {
        let t = Instant::now();
        http.get(format!("{url}/healthz"))
            .send()
            .await?
            .bytes()
            .await?;
        floor.push(t.elapsed());
    }
    floor.sort();

    // Submit, at the rate, to devices in a shuffled order (an LCG: deterministic, no rand).
    let actor = fleet.token.clone();
    let mut order: Vec<usize> = (0..devices.len()).collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in (1..order.len()).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut tick = tokio::time::interval(interval);
    let mut submits = Vec::new();
    for k in 0..args.commands {
        tick.tick().await;
        let device = devices[order[k % order.len()]].0.clone();
        let (http, url, actor, sent) =
            (http.clone(), url.clone(), actor.clone(), Arc::clone(&sent));
        submits.push(tokio::spawn(async move {
            let at = Instant::now();
            let v: Value = http
                .post(format!("{url}/api/machines/{device}/isolate"))
                .bearer_auth(&actor)
                .json(&json!({ "Comment": "bench", "IsolationType": "Full" }))
                .send()
                .await?
                .json()
                .await?;
            let id = v["id"]
                .as_str()
                .with_context(|| format!("isolate: {v}"))?
                .to_owned();
            sent.lock().unwrap().insert(id, at);
            anyhow::Ok(())
        }));
    }
    for s in submits {
        s.await??;
    }
    // Wait for the last arrivals.
    let t = Instant::now();
    loop {
        let n = {
            let sent = sent.lock().unwrap();
            let arrived = arrivals.lock().unwrap();
            sent.keys().filter(|id| arrived.contains_key(*id)).count()
        };
        if n == args.commands || t.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.notify_waiters();
    let (rss_after, _) = usage(server.child.id())?;

    let sent = sent.lock().unwrap();
    let arrived = arrivals.lock().unwrap();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, at)| {
            arrived
                .get(id)
                .map(|got| got.saturating_duration_since(*at))
        })
        .collect();
    latencies.sort();
    let missing = sent.len() - latencies.len();
    println!(
        "agents {}  commands {} at {}/s  delivered {}  missing {missing}",
        devices.len(),
        sent.len(),
        args.rate,
        latencies.len()
    );
    if !latencies.is_empty() {
        println!(
            "push latency (submission sent -> agent has it): {}",
            summary(&mut latencies)
        );
    }
    println!(
        "baseline, GET /healthz round trip under the same load: p50 {}  p99 {}",
        ms(percentile(&floor, 0.5)),
        ms(percentile(&floor, 0.99))
    );
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "server RSS: {:.1} MiB before the agents, {:.1} MiB with {} polls held ({:.1} KiB per agent), {:.1} MiB at the end",
        mib(rss_before),
        mib(rss_held),
        devices.len(),
        (rss_held.saturating_sub(rss_before)) as f64 / 1024.0 / devices.len() as f64,
        mib(rss_after)
    );
    println!(
        "server CPU while idle with every agent connected: {:.1}% of one core",
        idle_cpu * 100.0
    );
    Ok(())
}
