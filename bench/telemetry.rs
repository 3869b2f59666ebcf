//! `telemetry-bench`: the ingestion benchmark of docs/BENCHMARKS.md.
//!
//! Generates a simulated fleet's telemetry once (rampart-simulate, deterministic), cut into agent
//! batches of ~1,000 rows — each both as JSON and in the binary wire format (Arrow IPC) — then
//! measures:
//! 1. the in-process pipeline on one core: batch → Arrow rows → durable log → hot tail, for the
//!    binary format (what agents send) and for JSON;
//! 2. acknowledged → visible: a query for a batch's rows right after its acknowledgement;
//! 3. on-disk bytes per event after flush and compaction;
//! 4. end to end over HTTP: the real `rampart serve` binary, every simulated device enrolled,
//!    `--agents` concurrent senders posting zstd batches (binary, then JSON); and the server's
//!    peak memory — without indicators and with `--indicators` in the store, so every row is
//!    matched (the cost of matching on the ingestion path): four servers, in the order none,
//!    with, with, none, and the mean change;
//! 5. the simulator writing the same rows to NDJSON and Parquet files, and beside it the
//!    baseline: DuckDB converting those NDJSON rows to zstd Parquet.

use anyhow::{Context, bail};
use clap::Parser;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use rampart_core::TenantId;
use rampart_core::schema::{self, Table};
use rampart_simulate::{Cell, FleetSpec, Sink};
use rampart_store::SqlStore;
use rampart_store::prelude::*;
use rampart_telemetry::{EventStore, EventStoreConfig, TableBatchBuilder};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The allocator of the `rampart` binary, so the in-process pipeline allocates as the server does
/// (with glibc's, a third of the pipeline's time went to zeroing freshly mapped pages).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Simulated devices
    #[arg(long, default_value_t = 200)]
    devices: usize,
    /// Hours of fleet activity to generate
    #[arg(long, default_value_t = 2.0)]
    hours: f64,
    /// Rows per agent batch
    #[arg(long, default_value_t = 1000)]
    batch_rows: usize,
    /// Concurrent HTTP senders
    #[arg(long, default_value_t = 16)]
    agents: usize,
    /// The rampart binary (a release build)
    #[arg(long)]
    rampart: String,
    /// Work directory (wiped)
    #[arg(long, default_value = "/var/tmp/rampart-bench/telemetry")]
    dir: std::path::PathBuf,
    /// Indicators in the store of the second and third HTTP runs (the first and fourth have
    /// none), so the cost of matching every ingested row shows; 0 runs only one server, without
    #[arg(long, default_value_t = 1_000_000)]
    indicators: usize,
    /// Those indicators block without alerting (`generateAlert: false`) instead of auditing
    /// with alerts, so that matching is measured without the alerts its hits raise
    #[arg(long)]
    quiet_indicators: bool,
    /// Every device sits in a device group with automation level `NoAutomatedResponse`, so
    /// alerts start no automated investigation: their cost shows apart from the alerts'
    #[arg(long)]
    no_investigations: bool,
    /// Times each server ingests the binary batches (each time under new batch ids): one pass
    /// takes seconds, within which a background flush or compaction moves the figure by 20%
    #[arg(long, default_value_t = 3)]
    binary_passes: usize,
}

/// One agent batch: its device and its body in both formats.
struct Batch {
    device: usize,
    rows: usize,
    json: Vec<u8>,
    /// The same rows as a `rampart_telemetry::wire` body.
    arrow: Vec<u8>,
}

/// Rows of one device not yet sealed into a batch.
#[derive(Default)]
struct Pending {
    rows: usize,
    json: BTreeMap<&'static str, Vec<u8>>,
    arrow: BTreeMap<&'static str, TableBatchBuilder>,
}

/// Cuts generated rows into per-device JSON batches, as agents would send them.
struct Batcher {
    batch_rows: usize,
    pending: BTreeMap<usize, Pending>,
    out: Vec<Batch>,
    next_id: u64,
}

impl Batcher {
    fn seal(&mut self, device: usize) {
        let Some(Pending {
            rows,
            json: tables,
            arrow,
        }) = self.pending.remove(&device)
        else {
            return;
        };
        let arrow: Vec<_> = arrow.into_values().map(|mut b| b.finish()).collect();
        let arrow = rampart_telemetry::wire::encode(&arrow).expect("simulated rows encode");
        let mut json = Vec::with_capacity(tables.values().map(Vec::len).sum::<usize>() + 64);
        json.extend_from_slice(
            format!("{{\"batchId\":\"{}\",\"tables\":{{", self.next_id).as_bytes(),
        );
        self.next_id += 1;
        for (i, (name, body)) in tables.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(format!("\"{name}\":[").as_bytes());
            json.extend_from_slice(body);
            json.push(b']');
        }
        json.extend_from_slice(b"}}");
        self.out.push(Batch {
            device,
            rows,
            json,
            arrow,
        });
    }
}

impl Sink for Batcher {
    fn row(
        &mut self,
        device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> std::io::Result<()> {
        let pending = self.pending.entry(device).or_default();
        pending
            .arrow
            .entry(table.name)
            .or_insert_with(|| TableBatchBuilder::new(table))
            .push_cells(cells)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let buf = pending.json.entry(table.name).or_default();
        if !buf.is_empty() {
            buf.push(b',');
        }
        buf.push(b'{');
        for (i, (col, cell)) in cells.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(format!("\"{}\":", table.columns[*col].name).as_bytes());
            push_cell(buf, cell);
        }
        buf.push(b'}');
        pending.rows += 1;
        if pending.rows >= self.batch_rows {
            self.seal(device);
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        let devices: Vec<usize> = self.pending.keys().copied().collect();
        for d in devices {
            self.seal(d);
        }
        Ok(())
    }
}

/// A cell as JSON, as an agent would write it.
fn push_cell(out: &mut Vec<u8>, c: &Cell<'_>) {
    let v = match *c {
        Cell::Null => serde_json::Value::Null,
        Cell::Bool(b) => b.into(),
        Cell::Int(x) => x.into(),
        Cell::Long(x) => x.into(),
        Cell::Real(x) => x.into(),
        Cell::Str(s) => s.into(),
        Cell::Time(ns) => time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .into(),
    };
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// The server-side conversion of one agent batch (as `/agent/v1/telemetry` does it).
fn to_arrow(
    json: &[u8],
) -> anyhow::Result<Vec<(&'static Table, datafusion::arrow::array::RecordBatch)>> {
    let v: serde_json::Value = serde_json::from_slice(json)?;
    let mut out = Vec::new();
    for (name, rows) in v["tables"].as_object().context("tables")? {
        let table = schema::table(name).context("table")?;
        let rows = rows.as_array().context("rows")?;
        let mut b = TableBatchBuilder::with_capacity(table, rows.len());
        for r in rows {
            b.push_json(r.as_object().context("row")?)?;
        }
        out.push((table, b.finish()));
    }
    Ok(out)
}

/// Batches in flight in the one-thread binary pipeline.
const IN_FLIGHT: usize = 8;

/// CPU time (user + system) this process has used, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    process_cpu_seconds("self")
}

/// CPU seconds (user + system) the process `pid` (or `self`) has used.
fn process_cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Linux reports clock ticks of 1/100 s (USER_HZ) on every platform Rampart runs on.
    (ticks(11) + ticks(12)) / 100.0
}

/// Minor page faults of the process so far: memory it touches for the first time, or again
/// after its allocator gave it back; each one costs the kernel a page (or huge page) to zero.
fn minor_faults(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    // minflt is the 10th field, the 8th after the command name.
    after
        .split_whitespace()
        .nth(7)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds of each of the process's live threads, summed by thread name (tokio's workers
/// all share one): where a pass's server CPU went, without a profiler.
fn thread_cpu_seconds(pid: &str) -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map_or("?", |(name, _)| name);
        let tid = task.file_name().to_string_lossy().into_owned();
        // Same fields as the process's own stat line.
        let seconds = process_cpu_seconds(&format!("{pid}/task/{tid}"));
        *by_name.entry(name.to_owned()).or_insert(0.0) += seconds;
    }
    by_name
}

/// An event store that flushes only when told (the benchmark measures the log and hot tail).
async fn open_store(dir: &std::path::Path) -> anyhow::Result<EventStore> {
    let config = EventStoreConfig {
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    Ok(EventStore::open(dir, config).await?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir)?;
    let start_ns = 1_790_000_000i64 * 1_000_000_000;
    let spec = FleetSpec {
        devices: args.devices,
        days: args.hours / 24.0,
        seed: 42,
        start_ns,
        scenarios: Vec::new(),
    };

    let t = Instant::now();
    let mut batcher = Batcher {
        batch_rows: args.batch_rows,
        pending: BTreeMap::new(),
        out: Vec::new(),
        next_id: 0,
    };
    let stats = rampart_simulate::generate(&spec, &mut batcher)?;
    batcher.finish()?;
    let batches = batcher.out;
    let events: usize = batches.iter().map(|b| b.rows).sum();
    let json_bytes: usize = batches.iter().map(|b| b.json.len()).sum();
    println!(
        "generated {events} events ({} tables) in {} batches, {:.1} MB of JSON, in {:.1} s",
        stats.rows.len(),
        batches.len(),
        json_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // 1 + 2: the in-process pipeline on this thread (one core), and ack → visible.
    let tenant = TenantId::new_random();
    let store = open_store(&args.dir.join("inproc")).await?;
    // The binary format first: what agents send.
    let store_bin = open_store(&args.dir.join("inproc-binary")).await?;
    let fleet = rampart_simulate::Fleet::new(&spec);
    // One thread decodes and appends, with a few batches in flight as concurrent agents would
    // have them (the log commits them in groups); the log's writer thread does the fdatasync.
    // The rate per CPU-second counts both threads.
    let cpu0 = cpu_seconds();
    let t_bin = Instant::now();
    let one_thread = std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<()> {
                use futures::{StreamExt, TryStreamExt};
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(
                    futures::stream::iter(batches.iter().enumerate())
                        .map(|(i, b)| {
                            let (store, fleet) = (&store_bin, &fleet);
                            async move {
                                let device = &fleet.devices()[b.device].id;
                                let decoded = rampart_telemetry::wire::decode(&b.arrow, device)?;
                                if let Some(r) = decoded.rejected.first() {
                                    bail!("binary batch {i} had rejections: {r:?}");
                                }
                                store.append(tenant, &i.to_string(), decoded.tables).await?;
                                Ok(())
                            }
                        })
                        .buffer_unordered(IN_FLIGHT)
                        .try_collect::<()>(),
                )
            })
            .join()
    });
    one_thread.map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))??;
    let bin = t_bin.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let arrow_bytes: usize = batches.iter().map(|b| b.arrow.len()).sum();
    println!(
        "in-process pipeline, binary batches (1 thread, {IN_FLIGHT} in flight): {:.0} events/s; {:.0} events per CPU-second ({events} events in {:.2} s, {cpu:.2} CPU-s; {:.1} MB of Arrow IPC)",
        events as f64 / bin.as_secs_f64(),
        events as f64 / cpu,
        bin.as_secs_f64(),
        arrow_bytes as f64 / 1e6
    );
    store_bin.shutdown().await?;

    let t0 = Instant::now();
    for (i, b) in batches.iter().enumerate() {
        let tables = to_arrow(&b.json)?;
        store.append(tenant, &i.to_string(), tables).await?;
    }
    let inproc = t0.elapsed();
    println!(
        "in-process pipeline, JSON batches (1 core): {:.0} events/s ({events} events in {:.2} s)",
        events as f64 / inproc.as_secs_f64(),
        inproc.as_secs_f64()
    );
    // The same rows already in Arrow (as an Arrow-speaking agent would send them): the store alone.
    let mut arrow = Vec::with_capacity(batches.len());
    let t_convert = Instant::now();
    for b in &batches {
        arrow.push(to_arrow(&b.json)?);
    }
    let convert = t_convert.elapsed();
    let store2 = open_store(&args.dir.join("inproc-arrow")).await?;
    let t_store = Instant::now();
    for (i, tables) in arrow.into_iter().enumerate() {
        store2.append(tenant, &i.to_string(), tables).await?;
    }
    let stored = t_store.elapsed();
    println!(
        "  of which JSON -> Arrow: {:.0} events/s; log + hot tail alone (Arrow in): {:.0} events/s",
        events as f64 / convert.as_secs_f64(),
        events as f64 / stored.as_secs_f64()
    );
    store2.shutdown().await?;

    let ctx = store.session(tenant)?;
    let mut visible = Vec::new();
    for i in 0..200i64 {
        let marker = 9_000_000_000 + i;
        let mut b = TableBatchBuilder::new(schema::table("DeviceEvents").context("table")?);
        let row = serde_json::json!({"Timestamp": "2026-09-21T12:00:00Z", "DeviceId": "probe", "ReportId": marker});
        b.push_json(row.as_object().context("row")?)?;
        store
            .append(tenant, &format!("probe-{i}"), vec![(b.table(), b.finish())])
            .await?;
        let acked = Instant::now();
        let q = format!("select count(*) from \"DeviceEvents\" where \"ReportId\" = {marker}");
        let n = ctx.sql(&q).await?.collect().await?[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0);
        if n != 1 {
            bail!("probe {marker} not visible after its acknowledgement");
        }
        visible.push(acked.elapsed());
    }
    visible.sort();
    println!(
        "acknowledged -> visible (query answered): p50 {:?}, p99 {:?}",
        percentile(&visible, 0.5),
        percentile(&visible, 0.99)
    );

    // 3: bytes per event on disk.
    let t1 = Instant::now();
    store.flush().await?;
    store.compact().await?;
    let s = store.stats();
    println!(
        "flush + compact: {:.2} s; {} files, {} rows, {:.1} MB: {:.1} bytes/event",
        t1.elapsed().as_secs_f64(),
        s.files,
        s.file_rows,
        s.file_bytes as f64 / 1e6,
        s.file_bytes as f64 / s.file_rows as f64
    );
    store.shutdown().await?;

    // 4: end to end over HTTP, without indicators and with them (matching on), in the order
    // none, with, with, none: a fresh server each time, so that whatever drifts during the
    // bench (the page cache, the host's memory behind this VM's fresh pages) weighs on both.
    let order: &[usize] = match args.indicators {
        0 => &[0],
        n => &[0, n, n, 0],
    };
    let mut runs = Vec::new();
    for (round, &indicators) in order.iter().enumerate() {
        let passes = http_phase(&args, &spec, &batches, events, indicators, round).await?;
        runs.push((indicators, passes));
    }
    if args.indicators > 0 {
        summarize_matching(&runs);
    }

    // 5: DuckDB baseline over the same rows.
    duckdb_baseline(&args, &spec)?;
    Ok(())
}

/// One HTTP pass: events per second, and the server's CPU microseconds per event.
#[derive(Clone, Copy)]
struct Pass {
    binary: bool,
    events_per_s: f64,
    cpu_us_per_event: f64,
}

/// Prints each kind of pass's mean without and with indicators, and the change.
fn summarize_matching(runs: &[(usize, Vec<Pass>)]) {
    let mean = |with: bool, binary: bool, f: fn(&Pass) -> f64| {
        let xs: Vec<f64> = runs
            .iter()
            .filter(|(n, _)| (*n > 0) == with)
            .flat_map(|(_, passes)| passes.iter().filter(|p| p.binary == binary).map(f))
            .collect();
        xs.iter().sum::<f64>() / xs.len().max(1) as f64
    };
    for (binary, name) in [(true, "binary"), (false, "JSON")] {
        let (rate0, rate1) = (
            mean(false, binary, |p| p.events_per_s),
            mean(true, binary, |p| p.events_per_s),
        );
        let (cpu0, cpu1) = (
            mean(false, binary, |p| p.cpu_us_per_event),
            mean(true, binary, |p| p.cpu_us_per_event),
        );
        println!(
            "matching on vs off, {name} batches (mean of every pass of 2 servers each): {rate0:.0} -> {rate1:.0} events/s ({:+.1}%); server CPU {cpu0:.2} -> {cpu1:.2} µs/event ({:+.1}%)",
            (rate1 / rate0 - 1.0) * 100.0,
            (cpu1 / cpu0 - 1.0) * 100.0
        );
    }
}

async fn http_phase(
    args: &Args,
    spec: &FleetSpec,
    batches: &[Batch],
    events: usize,
    indicators: usize,
    round: usize,
) -> anyhow::Result<Vec<Pass>> {
    let data = args.dir.join(format!("server-{round}"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let db = format!("sqlite://{}", data.join("rampart.db").display());
    let store = SqlStore::connect(&db).await?;
    let tenant = store.ensure_default_tenant().await?.id;
    if args.no_investigations {
        let group = rampart_core::machine::MachineGroup {
            id: 0,
            name: "bench: no automation".into(),
            description: None,
            rank: 1,
            rules: vec![rampart_core::machine::GroupRule::NamePattern("*".into())],
            automation_level: rampart_core::machine::AutomationLevel::NoAutomatedResponse,
            last_update_time: None,
        };
        store
            .create_machine_group(
                &rampart_core::audit::AuditContext::system("bench"),
                tenant,
                group,
            )
            .await?;
    }
    if indicators > 0 {
        let t = Instant::now();
        seed_indicators(&store, tenant, indicators, args.quiet_indicators).await?;
        println!(
            "HTTP run with {indicators} indicators (60% hashes, 20% addresses and networks, 15% domains, 5% URLs; stored in {:.0} s); every ingested row is matched:",
            t.elapsed().as_secs_f64()
        );
    } else {
        println!("HTTP run without indicators:");
    }
    let secret = format!("rpe_bench{}", uuid::Uuid::new_v4().simple());
    let token = rampart_core::enrollment::EnrollmentToken {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant,
        name: "bench".into(),
        created_time: time::OffsetDateTime::now_utc(),
        expires_time: None,
        max_uses: None,
        uses: 0,
        revoked: false,
    };
    store
        .create_enrollment_token(
            &rampart_core::audit::AuditContext::system("bench"),
            &token,
            &rampart_api::auth::device::secret_hash(&secret),
        )
        .await?;
    drop(store);
    let mut child = Command::new(&args.rampart)
        .args(["--data-dir"])
        .arg(&data)
        .args(["--database-url", &db, "serve", "--listen", "127.0.0.1:0"])
        .env("RAMPART_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting rampart serve")?;
    let pid = child.id();
    let stdout = child.stdout.take().context("stdout")?;
    let url = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().context("server exited")??;
            if let Some(u) = line.split(" listening on ").nth(1) {
                break u.to_owned();
            }
        };
        // Keep reading, so the server's last words don't hit a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        url
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.agents)
        .build()?;
    // Every simulated device enrolls with its own id and gets its credential.
    let fleet = rampart_simulate::Fleet::new(spec);
    let mut auth = BTreeMap::new();
    for (d, device) in fleet.devices().iter().enumerate() {
        let id = device.id.clone();
        let r: serde_json::Value = http.post(format!("{url}/agent/v1/enroll")).json(&serde_json::json!({"enrollmentToken": secret, "computerDnsName": format!("dev-{d}"), "osPlatform": "Linux", "deviceId": id})).send().await?.error_for_status()?.json().await?;
        auth.insert(
            d,
            (
                id,
                format!(
                    "Device {}:{}",
                    r["deviceId"].as_str().unwrap_or_default(),
                    r["deviceSecret"].as_str().unwrap_or_default()
                ),
            ),
        );
    }
    let mut passes = Vec::new();
    for pass in 0..args.binary_passes.max(1) {
        passes.push(send_all(args, &http, &url, &auth, batches, Some(pass), events, pid).await?);
    }
    passes.push(send_all(args, &http, &url, &auth, batches, None, events, pid).await?);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data);
    Ok(passes)
}

/// Stores `n` random indicators in the mix of the indicator benchmark. Nearly every row pays
/// the common case, a miss; but the random /24 ranges cover some of the simulator's public
/// addresses, so alerting indicators raise a few dozen alerts, each starting an automated
/// investigation (`--quiet-indicators` measures the matching without them).
async fn seed_indicators(
    store: &SqlStore,
    tenant: TenantId,
    n: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    use rampart_core::indicator::{IndicatorRequest, IndicatorWriter, SourceType, Submitter};
    let writer = IndicatorWriter {
        submitter: Submitter {
            id: "bench".into(),
            name: "bench".into(),
            kind: SourceType::User,
        },
        all: true,
    };
    let ctx = rampart_core::audit::AuditContext::system("bench");
    let now = time::OffsetDateTime::now_utc();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut batch = Vec::with_capacity(500);
    for i in 0..n {
        let r = next();
        let (kind, value) = match i % 20 {
            0..12 => (
                "FileSha256",
                format!("{:016x}{:016x}{:016x}{:016x}", r, next(), next(), next()),
            ),
            12..16 => match r % 2 {
                0 => (
                    "IpAddress",
                    format!(
                        "{}.{}.{}.{}",
                        1 + r % 223,
                        (r >> 8) % 256,
                        (r >> 16) % 256,
                        (r >> 24) % 256
                    ),
                ),
                _ => (
                    "IpAddress",
                    format!(
                        "{}.{}.{}.0/24",
                        1 + r % 223,
                        (r >> 8) % 256,
                        (r >> 16) % 256
                    ),
                ),
            },
            16..19 => ("DomainName", format!("d{r:x}.example")),
            _ => (
                "Url",
                format!("https://u{:x}.example/p/{:x}", r % 100_000, next()),
            ),
        };
        let request: IndicatorRequest = serde_json::from_value(serde_json::json!({
            "indicatorValue": value, "indicatorType": kind,
            "action": if quiet { "Block" } else { "Audit" },
            "title": "bench", "description": "bench", "generateAlert": !quiet}))?;
        match request.validate(now) {
            Ok(sub) => batch.push(sub),
            Err(_) => continue, // a reserved address drawn by chance
        }
        if batch.len() == 500 {
            store
                .submit_indicators(&ctx, tenant, &writer, std::mem::take(&mut batch))
                .await?;
        }
    }
    if !batch.is_empty() {
        store
            .submit_indicators(&ctx, tenant, &writer, batch)
            .await?;
    }
    Ok(())
}

/// Posts every batch from `--agents` concurrent senders, in one format, and reports the rate.
/// `binary`: the number of a binary pass (its batches get ids of their own), or `None` for JSON.
#[allow(clippy::too_many_arguments)]
async fn send_all(
    args: &Args,
    http: &reqwest::Client,
    url: &str,
    auth: &BTreeMap<usize, (String, String)>,
    batches: &[Batch],
    binary: Option<usize>,
    events: usize,
    pid: u32,
) -> anyhow::Result<Pass> {
    // Bodies are prepared (compressed) before the clock starts, as agents compress on their own
    // machines. Each binary pass has batch ids of its own, so that every pass stores again.
    let mut bodies: Vec<Vec<(String, String, Vec<u8>)>> = vec![Vec::new(); args.agents];
    for (i, b) in batches.iter().enumerate() {
        let (_, header) = &auth[&b.device];
        let body = if binary.is_some() { &b.arrow } else { &b.json };
        bodies[i % args.agents].push((
            header.clone(),
            format!("bin-{}-{i}", binary.unwrap_or_default()),
            zstd::encode_all(&body[..], 3)?,
        ));
    }
    let binary = binary.is_some();
    let compressed: usize = bodies.iter().flatten().map(|(_, _, b)| b.len()).sum();
    // The server's CPU time per event varies far less from run to run than events per second
    // on a machine the senders share.
    let server_cpu = || process_cpu_seconds(&pid.to_string());
    let cpu_before = server_cpu();
    let faults_before = minor_faults(&pid.to_string());
    let threads_before = thread_cpu_seconds(&pid.to_string());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mine in bodies {
        let http = http.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut refused = 0u64;
            for (header, batch_id, body) in mine {
                loop {
                    let mut r = http
                        .post(format!("{url}/agent/v1/telemetry"))
                        .header("authorization", &header)
                        .header("content-encoding", "zstd");
                    if binary {
                        r = r
                            .header("content-type", rampart_telemetry::wire::CONTENT_TYPE)
                            .header("rampart-batch-id", &batch_id);
                    }
                    let r = r.body(body.clone()).send().await?;
                    match r.status().as_u16() {
                        200 => break,
                        503 => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await
                        }
                        s => anyhow::bail!(
                            "batch refused: {s} {}",
                            r.text().await.unwrap_or_default()
                        ),
                    }
                }
            }
            Ok::<u64, anyhow::Error>(refused)
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await??;
    }
    let took = started.elapsed();
    let cpu = server_cpu() - cpu_before;
    let faults = minor_faults(&pid.to_string()) - faults_before;
    let mut threads = thread_cpu_seconds(&pid.to_string());
    for (name, before) in &threads_before {
        *threads.entry(name.clone()).or_insert(0.0) -= before;
    }
    let mut threads: Vec<(String, f64)> = threads.into_iter().filter(|(_, s)| *s >= 0.01).collect();
    threads.sort_by(|a, b| b.1.total_cmp(&a.1));
    let by_thread: Vec<String> = threads
        .iter()
        .map(|(name, s)| format!("{name} {s:.2}"))
        .collect();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_owned();
    println!(
        "HTTP end to end, {} batches ({} senders, {:.1} MB zstd): {:.0} events/s ({events} events in {:.2} s; {refused} 503 retries); server CPU {:.2} s ({:.2} µs/event); server peak memory so far {}",
        if binary { "binary" } else { "JSON" },
        args.agents,
        compressed as f64 / 1e6,
        events as f64 / took.as_secs_f64(),
        took.as_secs_f64(),
        cpu,
        cpu * 1e6 / events as f64,
        hwm.trim_start_matches("VmHWM:").trim()
    );
    println!(
        "  server CPU s by thread: {}; {faults} minor page faults",
        by_thread.join(", ")
    );
    Ok(Pass {
        binary,
        events_per_s: events as f64 / took.as_secs_f64(),
        cpu_us_per_event: cpu * 1e6 / events as f64,
    })
}

fn duckdb_baseline(args: &Args, spec: &FleetSpec) -> anyhow::Result<()> {
    // The simulator writing the same rows to files (issue 4: >= 1M events/s), timed here so
    // that DuckDB's rate on the same rows stands beside it.
    let dir = args.dir.join("ndjson");
    let t = Instant::now();
    let mut sink = rampart_simulate::sinks::NdjsonSink::create(&dir)?;
    let stats = rampart_simulate::generate(spec, &mut sink)?;
    sink.finish()?;
    let ndjson = t.elapsed();
    let t = Instant::now();
    let mut sink = rampart_simulate::sinks::ParquetSink::create(args.dir.join("parquet"))?;
    rampart_simulate::generate(spec, &mut sink)?;
    sink.finish()?;
    let parquet = t.elapsed();
    let rows: u64 = stats.rows.values().sum();
    println!(
        "simulator to files: NDJSON {:.0} rows/s, Parquet {:.0} rows/s ({rows} rows)",
        rows as f64 / ndjson.as_secs_f64(),
        rows as f64 / parquet.as_secs_f64()
    );
    let script = format!(
        "import duckdb, glob, os, time\nt=time.time(); n=0; size=0\nfor f in sorted(glob.glob('{0}/*.ndjson')):\n    out=f[:-7]+'.parquet'\n    duckdb.sql(f\"COPY (SELECT properties.* FROM read_json('{{f}}', format='newline_delimited', maximum_object_size=104857600)) TO '{{out}}' (FORMAT parquet, COMPRESSION zstd)\")\n    n+=duckdb.sql(f\"select count(*) from '{{out}}'\").fetchall()[0][0]; size+=os.path.getsize(out)\nel=time.time()-t\nprint(f'DuckDB baseline: {{n}} rows NDJSON -> Parquet in {{el:.2f}} s = {{n/el:.0f}} rows/s, {{size/n:.1f}} bytes/event')\n",
        dir.display()
    );
    let out = Command::new("python3").arg("-c").arg(script).output()?;
    if !out.status.success() {
        println!(
            "DuckDB baseline skipped: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("python3 failed")
        );
    } else {
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}
