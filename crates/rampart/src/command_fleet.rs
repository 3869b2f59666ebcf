//! `rampart simulate --agents N --server URL`: simulated agents held on a running server's
//! command channel, and how fast machine actions reach them.
//!
//! Each simulated agent enrolls through the front door (an enrollment token made for the run,
//! then `POST /agent/v1/enroll`) and holds the long poll as the real agent does: poll, report
//! each command it is handed `Succeeded`, poll again. With every poll held, machine actions are
//! submitted through the MDE API (isolate, and unisolate on the next round through the fleet)
//! at a fixed rate to the devices in a shuffled order, and each one's push latency is measured:
//! from sending the submission to the agent having the command. What the server costs comes
//! from its `/metrics` (`process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `rampart_agent_polls_held`), read before the agents connect and with all of them held. The
//! baseline of the same run is a bare `GET /healthz` round trip under the same held polls.

use crate::cli::RemoteArgs;
use anyhow::{Context, bail};
use clap::Args;
use rampart_proto::command::{CommandState, CommandUpdate, PollRequest, PollResponse};
use rampart_proto::enroll::{EnrollRequest, EnrollResponse};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Enrollments in flight at once.
const ENROLL_CONCURRENCY: usize = 64;
/// Round trips of the baseline.
const BASELINE_SAMPLES: usize = 500;
/// How long to wait for every agent to connect, and for the last commands to arrive.
const SETTLE: Duration = Duration::from_secs(120);
/// File descriptors besides the agents' connections.
const SPARE_FILES: u64 = 64;

#[derive(Args, Debug, Clone)]
pub struct AgentsArgs {
    /// Instead of writing files: hold N simulated agents on --server's command channel and
    /// measure how fast machine actions reach them (needs an app with Machine.Isolate and
    /// SecurityConfiguration.ReadWrite.All)
    #[arg(long, value_name = "N", requires = "server")]
    pub agents: Option<usize>,
    /// Tenant of the app credentials (with --agents)
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Machine actions to submit while the agents are connected (with --agents)
    #[arg(long, default_value_t = 1000)]
    pub commands: usize,
    /// Submissions per second (with --agents)
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Seconds the server may hold each poll, as the agent's setting (with --agents)
    #[arg(long, default_value_t = 30)]
    pub wait: u32,
    /// Seconds to watch the idle server with every agent connected (with --agents)
    #[arg(long, default_value_t = 10)]
    pub idle_seconds: u64,
    /// Print the report as one JSON object (with --agents)
    #[arg(long)]
    pub json: bool,
}

/// What a run measured.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub agents: usize,
    pub enroll_seconds: f64,
    /// From starting the agents to every poll held on the server.
    pub connect_seconds: f64,
    pub commands_submitted: usize,
    pub submissions_failed: usize,
    /// The first refused submission's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    /// Submitted commands an agent received.
    pub delivered: usize,
    /// Submitted commands no agent received in time.
    pub missing: usize,
    /// Delivered commands the agent reported `Succeeded` and the server took.
    pub completed: usize,
    /// Submission sent → the agent has the command.
    pub push_latency_ms: Option<Quantiles>,
    /// `GET /healthz` round trips under the same held polls.
    pub baseline_ms: Option<Quantiles>,
    /// Reports of a command's end the server did not take.
    pub report_errors: usize,
    /// Polls the agents could not make (each retried after a second).
    pub poll_errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_poll_error: Option<String>,
    pub server: ServerCost,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Quantiles {
    fn of(mut samples: Vec<Duration>) -> Option<Quantiles> {
        samples.sort();
        let at = |p: f64| {
            let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
            samples[i].as_secs_f64() * 1e3
        };
        (!samples.is_empty()).then(|| Quantiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// The server's own account of itself, from `/metrics` (absent where it does not say).
#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServerCost {
    pub rss_before_bytes: Option<u64>,
    pub rss_held_bytes: Option<u64>,
    /// Resident memory added per connected agent.
    pub rss_per_agent_bytes: Option<u64>,
    /// CPU of the server while idle with every agent connected, in % of one core.
    pub idle_cpu_percent: Option<f64>,
    /// Polls held when every agent was connected (the run's and any others').
    pub polls_held: Option<u64>,
}

/// The values of the `/metrics` series this report reads.
#[derive(Clone, Copy, Debug, Default)]
struct Gauges {
    rss_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    polls_held: Option<u64>,
}

impl Gauges {
    fn parse(text: &str) -> Gauges {
        let mut g = Gauges::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.split_once(' ') else {
                continue;
            };
            match name {
                "process_resident_memory_bytes" => g.rss_bytes = value.trim().parse().ok(),
                "process_cpu_seconds_total" => g.cpu_seconds = value.trim().parse().ok(),
                "rampart_agent_polls_held" => g.polls_held = value.trim().parse().ok(),
                _ => {}
            }
        }
        g
    }
}

/// What the agents share with the run.
#[derive(Default)]
struct Tally {
    /// When each machine action reached its agent.
    arrivals: Mutex<HashMap<String, Instant>>,
    connected: AtomicUsize,
    /// Commands reported `Succeeded` and taken by the server.
    completed: AtomicUsize,
    /// Reports the server did not take.
    report_errors: AtomicUsize,
    poll_errors: AtomicUsize,
    first_poll_error: Mutex<Option<String>>,
}

impl Tally {
    fn poll_failed(&self, e: reqwest::Error) {
        self.poll_errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_poll_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // With its causes: reqwest's own message leaves out refused, reset or timed out.
        first.get_or_insert_with(|| format!("{:#}", anyhow::Error::from(e)));
    }

    /// Every command that arrived has been reported, taken or not.
    fn all_reported(&self) -> bool {
        let arrived = self
            .arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        self.completed.load(Ordering::Relaxed) + self.report_errors.load(Ordering::Relaxed)
            >= arrived
    }
}

pub async fn run(args: AgentsArgs, agents: usize, seed: u64) -> anyhow::Result<()> {
    if agents == 0 {
        bail!("--agents must be at least 1");
    }
    if args.rate == 0 {
        bail!("--rate must be at least 1 per second");
    }
    let max_wait = rampart_api::routes::agent_commands::MAX_WAIT.as_secs();
    if u64::from(args.wait) > max_wait {
        bail!(
            "--wait {}: the server holds a poll {max_wait} s at most",
            args.wait
        );
    }
    let files = crate::open_files::raise_to_hard_limit().context("reading the open-files limit")?;
    if files < agents as u64 + SPARE_FILES {
        bail!(
            "--agents {agents} needs about {} open files (one connection per agent) but the limit is {files}: raise it (ulimit -n)",
            agents as u64 + SPARE_FILES
        );
    }
    let server = args
        .remote
        .server
        .as_deref()
        .context("--agents needs --server")?;
    let (_, url, token) =
        crate::remote::login(server, args.tenant.as_deref(), &args.remote).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .timeout(Duration::from_secs(u64::from(args.wait) + 30))
        .build()?;
    let report = measure(&args, agents, seed, &http, &url, &token).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &args);
    }
    Ok(())
}

async fn measure(
    args: &AgentsArgs,
    agents: usize,
    seed: u64,
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<Report> {
    let before = gauges(http, url).await?;
    let started = Instant::now();
    let devices = enroll(http, url, token, agents).await?;
    let enroll_seconds = started.elapsed().as_secs_f64();
    eprintln!("enrolled {agents} simulated agents in {enroll_seconds:.1} s");

    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let fleet: Vec<_> = devices
        .iter()
        .map(|(_, auth)| {
            tokio::spawn(hold_polls(
                http.clone(),
                url.to_owned(),
                auth.clone(),
                args.wait,
                Arc::clone(&tally),
            ))
        })
        .collect();
    // Connected: each agent's first (immediate) poll answered, then its held one counted by
    // the server (where the server counts them).
    let held_goal = before.polls_held.map(|h| h + agents as u64);
    let mut held = before;
    loop {
        let connected = tally.connected.load(Ordering::Relaxed);
        if connected >= agents {
            held = gauges(http, url).await?;
            if held.polls_held.zip(held_goal).is_none_or(|(h, g)| h >= g) {
                break;
            }
        }
        if started.elapsed() > SETTLE {
            bail!(
                "after {} s only {connected} of {agents} agents connected ({} polls held)",
                SETTLE.as_secs(),
                held.polls_held.map_or("?".into(), |h| h.to_string())
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    eprintln!("{agents} agents holding polls after {connect_seconds:.1} s");

    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let idle = gauges(http, url).await?;
    let idle_cpu_percent = held
        .cpu_seconds
        .zip(idle.cpu_seconds)
        .map(|(a, b)| (b - a) / args.idle_seconds.max(1) as f64 * 100.0);

    let mut baseline = Vec::with_capacity(BASELINE_SAMPLES);
    for _ in 0..BASELINE_SAMPLES {
        let t = Instant::now();
        http.get(format!("{url}/healthz"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        baseline.push(t.elapsed());
    }

    let (sent, failures) = submit(args, seed, http, url, token, &devices).await;
    let submissions_failed = failures.len();
    // Wait for the last commands to arrive, and their agents to report them.
    let started = Instant::now();
    let delivered = loop {
        let delivered = {
            let arrived = tally.arrivals.lock().unwrap_or_else(|p| p.into_inner());
            sent.keys().filter(|id| arrived.contains_key(*id)).count()
        };
        if (delivered == sent.len() && tally.all_reported()) || started.elapsed() > SETTLE {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for agent in &fleet {
        agent.abort();
    }
    let latencies: Vec<Duration> = {
        let arrived = tally.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        sent.iter()
            .filter_map(|(id, at)| {
                arrived
                    .get(id)
                    .map(|got| got.saturating_duration_since(*at))
            })
            .collect()
    };
    let per_agent = held
        .rss_bytes
        .zip(before.rss_bytes)
        .map(|(h, b)| h.saturating_sub(b) / agents as u64);
    Ok(Report {
        agents,
        enroll_seconds,
        connect_seconds,
        commands_submitted: sent.len(),
        submissions_failed,
        first_failure: failures.into_iter().next(),
        delivered,
        missing: sent.len() - delivered,
        completed: tally.completed.load(Ordering::Relaxed),
        report_errors: tally.report_errors.load(Ordering::Relaxed),
        push_latency_ms: Quantiles::of(latencies),
        baseline_ms: Quantiles::of(baseline),
        poll_errors: tally.poll_errors.load(Ordering::Relaxed),
        first_poll_error: tally
            .first_poll_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(),
        server: ServerCost {
            rss_before_bytes: before.rss_bytes,
            rss_held_bytes: held.rss_bytes,
            rss_per_agent_bytes: per_agent,
            idle_cpu_percent,
            polls_held: held.polls_held,
        },
    })
}

/// The server's `/metrics` series this report reads.
async fn gauges(http: &reqwest::Client, url: &str) -> anyhow::Result<Gauges> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("reading the server's /metrics")?
        .text()
        .await?;
    Ok(Gauges::parse(&text))
}

/// Enrolls `n` devices with an enrollment token made for the run; returns each one's id and
/// `Authorization` value.
async fn enroll(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let resp = http
        .post(format!("{url}/api/enrollmentTokens"))
        .bearer_auth(token)
        .json(&json!({ "name": format!("rampart simulate --agents {n}"), "maxUses": n, "expiresInHours": 1 }))
        .send()
        .await
        .context("making an enrollment token")?;
    let created: Value = crate::remote::json_or_error(resp)
        .await
        .context("making an enrollment token")?;
    let secret = created["token"]
        .as_str()
        .context("the enrollment token answer has no token")?
        .to_owned();
    // Names unique to the run, so a second run beside the first enrolls a fleet of its own.
    let run = time::OffsetDateTime::now_utc().unix_timestamp();
    let limit = Arc::new(tokio::sync::Semaphore::new(ENROLL_CONCURRENCY));
    let mut joins = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = Arc::clone(&limit).acquire_owned().await?;
        let (http, url) = (http.clone(), url.to_owned());
        let request = EnrollRequest {
            enrollment_token: secret.clone(),
            computer_dns_name: format!("sim-{run}-{i:05}.agents.example"),
            os_platform: "Linux".into(),
            device_id: None,
        };
        joins.spawn(async move {
            let _permit = permit;
            let resp = http
                .post(format!("{url}{}", rampart_proto::ENROLL_PATH))
                .json(&request)
                .send()
                .await
                .with_context(|| format!("enrolling {}", request.computer_dns_name))?;
            let e: EnrollResponse = crate::remote::json_or_error(resp)
                .await
                .with_context(|| format!("enrolling {}", request.computer_dns_name))?;
            let auth = format!("Device {}:{}", e.device_id, e.device_secret);
            anyhow::Ok((i, e.device_id, auth))
        });
    }
    let mut devices = vec![(String::new(), String::new()); n];
    while let Some(joined) = joins.join_next().await {
        let (i, id, auth) = joined??;
        devices[i] = (id, auth);
    }
    Ok(devices)
}

/// One simulated agent: polls, reports each command `Succeeded`, polls again, until aborted.
async fn hold_polls(
    http: reqwest::Client,
    url: String,
    auth: String,
    wait: u32,
    tally: Arc<Tally>,
) {
    let mut first = true;
    loop {
        let request = PollRequest {
            // The first poll answers at once: the agent is connected when it returns.
            wait_seconds: if first { 0 } else { wait },
            running: Vec::new(),
            indicator_generation: None,
        };
        let answer = async {
            http.post(format!("{url}{}", rampart_proto::COMMANDS_POLL_PATH))
                .header("authorization", &auth)
                .json(&request)
                .send()
                .await?
                .error_for_status()?
                .json::<PollResponse>()
                .await
        };
        let answer = match answer.await {
            Ok(a) => a,
            Err(e) => {
                tally.poll_failed(e);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if first {
            tally.connected.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        let now = Instant::now();
        for c in answer.commands {
            tally
                .arrivals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(c.machine_action_id.to_ascii_lowercase(), now);
            let update = CommandUpdate {
                command_id: c.id.clone(),
                state: CommandState::Succeeded,
                detail: Some("simulated agent".into()),
                commands: Vec::new(),
                evidence: None,
            };
            let done = http
                .post(format!(
                    "{url}{}",
                    rampart_proto::command_update_path(&c.id)
                ))
                .header("authorization", &auth)
                .json(&update)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            let counter = match done {
                Ok(_) => &tally.completed,
                Err(_) => &tally.report_errors,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Submits `--commands` machine actions at `--rate` to the devices in a shuffled order:
/// isolate on even rounds through the fleet, unisolate on odd ones. Returns when each was
/// sent (by machine action id) and the refusals.
async fn submit(
    args: &AgentsArgs,
    seed: u64,
    http: &reqwest::Client,
    url: &str,
    token: &str,
    devices: &[(String, String)],
) -> (HashMap<String, Instant>, Vec<String>) {
    let order = shuffled(devices.len(), seed);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    let mut joins = Vec::with_capacity(args.commands);
    for k in 0..args.commands {
        tick.tick().await;
        let device = &devices[order[k % order.len()]].0;
        let (path, body) = if (k / order.len()).is_multiple_of(2) {
            (
                "isolate",
                json!({ "Comment": "rampart simulate --agents", "IsolationType": "Full" }),
            )
        } else {
            (
                "unisolate",
                json!({ "Comment": "rampart simulate --agents" }),
            )
        };
        let request = http
            .post(format!("{url}/api/machines/{device}/{path}"))
            .bearer_auth(token)
            .json(&body);
        joins.push(tokio::spawn(async move {
            let at = Instant::now();
            let resp = request.send().await.map_err(|e| e.to_string())?;
            let v: Value = crate::remote::json_or_error(resp)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let id = v["id"].as_str().ok_or_else(|| format!("no id in {v}"))?;
            Ok::<_, String>((id.to_ascii_lowercase(), at))
        }));
    }
    let mut sent = HashMap::with_capacity(joins.len());
    let mut failures = Vec::new();
    for j in joins {
        match j.await {
            Ok(Ok((id, at))) => {
                sent.insert(id, at);
            }
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(e.to_string()),
        }
    }
    (sent, failures)
}

/// `0..n` in an order fixed by `seed` (Fisher–Yates over an LCG: deterministic, no rand).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = seed ^ 0x2545_f491_4f6c_dd1d;
    for i in (1..n).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    order
}

fn print_report(r: &Report, args: &AgentsArgs) {
    let ms = |q: &Option<Quantiles>| match q {
        Some(q) => format!(
            "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            q.p50, q.p90, q.p99, q.max
        ),
        None => "none".into(),
    };
    let mib = |b: Option<u64>| b.map_or("?".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
    println!(
        "agents {}  enrolled in {:.1} s  all polls held after {:.1} s  poll errors {}",
        r.agents, r.enroll_seconds, r.connect_seconds, r.poll_errors
    );
    println!(
        "commands {} at {}/s  delivered {}  missing {}  completed {}  refused {}  reports refused {}",
        r.commands_submitted + r.submissions_failed,
        args.rate,
        r.delivered,
        r.missing,
        r.completed,
        r.submissions_failed,
        r.report_errors
    );
    if let Some(f) = &r.first_failure {
        println!("first refusal: {f}");
    }
    if let Some(e) = &r.first_poll_error {
        println!("first poll error: {e}");
    }
    println!(
        "push latency (submission sent -> agent has it): {}",
        ms(&r.push_latency_ms)
    );
    println!(
        "baseline, GET /healthz round trip under the same held polls: {}",
        ms(&r.baseline_ms)
    );
    let s = &r.server;
    println!(
        "server memory: {} before the agents, {} with every poll held ({} held): {} per connected agent",
        mib(s.rss_before_bytes),
        mib(s.rss_held_bytes),
        s.polls_held.map_or("?".into(), |h| h.to_string()),
        s.rss_per_agent_bytes
            .map_or("?".into(), |b| format!("{:.1} KiB", b as f64 / 1024.0))
    );
    println!(
        "server CPU while idle with every agent connected: {}",
        s.idle_cpu_percent
            .map_or("?".into(), |c| format!("{c:.1} % of one core"))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shuffle_is_a_permutation_fixed_by_the_seed() {
        let a = shuffled(1000, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, shuffled(1000, 1));
        assert_ne!(a, shuffled(1000, 2));
        assert_eq!(shuffled(1, 7), vec![0]);
        assert!(shuffled(0, 7).is_empty());
    }

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        assert!(Quantiles::of(Vec::new()).is_none());
        let q = Quantiles::of((1..=100).rev().map(Duration::from_millis).collect()).unwrap();
        assert_eq!((q.p50, q.p90, q.p99, q.max), (51.0, 90.0, 99.0, 100.0));
    }

    #[test]
    fn gauges_read_the_series_and_skip_the_rest() {
        let g = Gauges::parse(
            "# HELP process_resident_memory_bytes x\nprocess_resident_memory_bytes 1048576\n\
             process_cpu_seconds_total 12.5\nrampart_agent_polls_held 3\n\
             rampart_agent_polls_held_other 9\nprocess_open_fds nonsense\n",
        );
        assert_eq!(g.rss_bytes, Some(1_048_576));
        assert_eq!(g.cpu_seconds, Some(12.5));
        assert_eq!(g.polls_held, Some(3));
        assert_eq!(Gauges::parse("").rss_bytes, None);
    }
}
