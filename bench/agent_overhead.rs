//! `agent-overhead-bench`: what the agent costs a busy host (docs/BENCHMARKS.md).
//!
//! Starts the real `rampart serve` on a fresh data dir, enrolls the real `rampart-agent`, and
//! loads the host with `--execs` process starts per second (`/bin/true`) and `--connections`
//! TCP connections per second (to a listener of the bench's own, each opened, accepted and
//! closed). The baseline, in the same go, is the same load for the same time with the agent
//! stopped: what the load itself costs the machine. With the agent running, it reports the
//! agent's CPU time as a share of one core and its resident memory (mean and peak), and how
//! many of the generated processes the server found in DeviceProcessEvents (the sensor kept
//! up, or not).

mod serve;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use serve::token;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Parser)]
struct Args {
    /// The rampart binary (a release build).
    #[arg(long)]
    rampart: String,
    /// The rampart-agent binary (a release build).
    #[arg(long)]
    agent: String,
    /// Process starts per second.
    #[arg(long, default_value_t = 200)]
    execs: u32,
    /// TCP connections per second.
    #[arg(long, default_value_t = 1000)]
    connections: u32,
    /// Seconds of load per phase.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (resident bytes, peak resident bytes, CPU seconds) of a process.
fn usage(pid: u32) -> anyhow::Result<(u64, u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| key.to_owned())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = &stat[stat.rfind(')').context("stat")? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok((kb("VmRSS:")? * 1024, kb("VmHWM:")? * 1024, ticks / 100.0))
}

/// CPU seconds (user + system) the whole machine spent, from /proc/stat.
fn machine_cpu() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cpu = stat.lines().next().context("/proc/stat")?;
    let f: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system irq softirq steal (idle and iowait left out)
    Ok((f[0] + f[1] + f[2] + f[5] + f[6] + f.get(7).copied().unwrap_or(0.0)) / 100.0)
}

/// What one phase of load achieved.
struct Load {
    execs: u64,
    connections: u64,
    seconds: f64,
    machine_cpu: f64,
}

/// Runs the load for `seconds`: one thread starting processes, one opening connections.
fn load(args: &Args) -> anyhow::Result<Load> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    {
        let (stop, accepted) = (Arc::clone(&stop), Arc::clone(&accepted));
        listener.set_nonblocking(false)?;
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(mut c) = conn {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let mut buf = [0u8; 1];
                    let _ = c.read(&mut buf);
                }
            }
        });
    }
    let cpu_before = machine_cpu()?;
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let execs = {
        let period = Duration::from_secs_f64(1.0 / f64::from(args.execs.max(1)));
        std::thread::spawn(move || {
            let mut n = 0u64;
            let mut next = Instant::now();
            while Instant::now() < until {
                let ok = Command::new("/bin/true")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                n += u64::from(ok);
                next += period;
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
            n
        })
    };
    let connections = {
        let period = Duration::from_secs_f64(1.0 / f64::from(args.connections.max(1)));
        std::thread::spawn(move || {
            let mut n = 0u64;
            let mut next = Instant::now();
            while Instant::now() < until {
                if std::net::TcpStream::connect(addr).is_ok() {
                    n += 1;
                }
                next += period;
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
            n
        })
    };
    let execs = execs.join().map_err(|_| anyhow::anyhow!("exec thread"))?;
    let connections = connections
        .join()
        .map_err(|_| anyhow::anyhow!("connection thread"))?;
    let seconds = started.elapsed().as_secs_f64();
    let machine_cpu = machine_cpu()? - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let _ = std::net::TcpStream::connect(addr);
    Ok(Load {
        execs,
        connections,
        seconds,
        machine_cpu,
    })
}

fn report(name: &str, l: &Load) {
    println!(
        "{name}: {:.0} execs/s, {:.0} connections/s over {:.1} s; machine CPU {:.2} cores",
        l.execs as f64 / l.seconds,
        l.connections as f64 / l.seconds,
        l.seconds,
        l.machine_cpu / l.seconds
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("rampart-agent-bench-{}", std::process::id()));
    let (data, state) = (dir.join("server"), dir.join("agent"));
    std::fs::create_dir_all(&data)?;
    let app = serve::create_app(
        &args.rampart,
        &data,
        "agent-bench",
        "SecurityConfiguration.ReadWrite.All,AdvancedHunting.Read.All",
    )?;
    let server = serve::serve(&args.rampart, &data).await?;
    let url = server.url.clone();
    let http = reqwest::Client::new();
    let admin = token(&http, &url, &app).await?;
    let enrollment: Value = http
        .post(format!("{url}/api/enrollmentTokens"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "bench" }))
        .send()
        .await?
        .json()
        .await?;
    let enrolled = Command::new(&args.agent)
        .args(["--state-dir", state.to_str().unwrap_or(".")])
        .args(["enroll", "--server", &url])
        .env(
            "RAMPART_ENROLLMENT_TOKEN",
            enrollment["token"].as_str().context("enrollment token")?,
        )
        .output()?;
    if !enrolled.status.success() {
        bail!("enroll: {}", String::from_utf8_lossy(&enrolled.stderr));
    }
    let creds: Value = serde_json::from_slice(&std::fs::read(state.join("credentials.json"))?)?;
    let device = creds["deviceId"].as_str().context("deviceId")?.to_owned();

    // Baseline: the load alone.
    let base = tokio::task::spawn_blocking({
        let a = args.clone();
        move || load(&a)
    })
    .await??;
    report("baseline (no agent)", &base);

    let agent = Running(
        Command::new(&args.agent)
            .args(["--state-dir", state.to_str().unwrap_or(".")])
            .arg("run")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = agent.0.id();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss_idle, _, cpu_idle_start) = usage(pid)?;
    let from = time::OffsetDateTime::now_utc();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                if let Ok((rss, _, _)) = usage(pid) {
                    samples.push(rss);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            samples
        })
    };
    let (_, _, cpu_start) = usage(pid)?;
    let loaded = tokio::task::spawn_blocking({
        let a = args.clone();
        move || load(&a)
    })
    .await??;
    let (_, peak, cpu_end) = usage(pid)?;
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler.await?;
    let mean_rss = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64;
    report("with the agent", &loaded);
    let cpu = (cpu_end - cpu_start) / loaded.seconds;
    println!(
        "agent: CPU {:.1} % of one core under load ({:.1} % just before it); RSS {:.1} MiB idle, {:.1} MiB mean under load, {:.1} MiB peak",
        cpu * 100.0,
        (cpu_start - cpu_idle_start) / 5.0 * 100.0,
        rss_idle as f64 / 1048576.0,
        mean_rss / 1048576.0,
        peak as f64 / 1048576.0
    );
    // Let the last batches arrive, then ask the server what it saw.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let hunter = token(&http, &url, &app).await?;
    let q = format!(
        "DeviceProcessEvents | where DeviceId == '{device}' and FileName == 'true' \
         and Timestamp >= datetime({}) | count",
        rampart_core::timefmt::format(from)
    );
    let v: Value = http
        .post(format!("{url}/api/advancedhunting/run"))
        .bearer_auth(&hunter)
        .json(&json!({ "Query": q }))
        .send()
        .await?
        .json()
        .await?;
    let seen = v["Results"][0]["Count"].as_u64().unwrap_or(0);
    println!(
        "server: {seen} of {} generated process starts found in DeviceProcessEvents ({:.1} %)",
        loaded.execs,
        seen as f64 * 100.0 / loaded.execs.max(1) as f64
    );
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
