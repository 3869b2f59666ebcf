//! `hunting-bench`: the advanced-hunting query benchmark of docs/BENCHMARKS.md.
//!
//! 1. Data: a simulated fleet (rampart-simulate, seed 7, attack scenarios injected) whose
//!    `DeviceProcessEvents` and `DeviceNetworkEvents` rows (each thinned evenly to about `--rows`;
//!    the other tables are dropped) go through the event store's own path — write-ahead log, hot
//!    tail, flush to Parquet, compaction — into `--dir/store`. Generated once and reused while
//!    `--dir/data.json` matches the flags (`--regenerate` forces it).
//! 2. The store is opened the way `rampart hunt` opens it, everything is in Parquet files (no hot
//!    tail), and each of the queries of [`QUERIES`] runs through `rampart_kql::plan::run` on the
//!    tenant's session, beside DuckDB (python3 -m pip install duckdb) running a hand-written SQL
//!    equivalent over the same Parquet files, in one python process started once. Both engines:
//!    one untimed run, then `--runs` timed runs, alternating Rampart and DuckDB run by run (the
//!    machine is shared: load from others then falls on both); the median is reported (best
//!    also printed), with the load average around each query. DuckDB is timed inside python
//!    around `execute` + `fetchall`; Rampart around `plan::run` (parse, bind, plan, execute,
//!    collect the Arrow batches).
//! 3. The results are compared: row counts and a checksum over canonicalised, sorted rows
//!    (datetimes to microseconds, sets sorted, reals to 9 significant digits). A mismatch is
//!    printed with sample rows, never hidden.
//! 4. Parse, parse+bind and parse+bind+plan time of a ~2 KB hunting query (median of
//!    `--plan-iterations`).
//!
//! 5. With `--retrohunt-only`: retro-hunts of one new SHA-256 indicator over all the stored rows
//!    (`IndicatorMatcher::retrohunt`, state in a fresh SQLite file), beside DuckDB counting the
//!    rows that hold the hash.
//!
//! For profiling: `--explain` prints DataFusion's `EXPLAIN ANALYZE` of each Rampart query;
//! `--only Q05 --no-duckdb --runs 10` under `perf record` profiles one query; `--kql '...'` runs
//! ad-hoc KQL instead of the benchmark queries and `--df-sql '...'` DataFusion SQL on the same
//! session (to tell the KQL lowering's cost from DataFusion's).

use anyhow::{Context, bail};
use clap::Parser;
use datafusion::arrow::array::RecordBatch;
use rampart_core::TenantId;
use rampart_core::schema::{self, Table};
use rampart_kql::ast::ScalarType;
use rampart_kql::bind::QueryParameters;
use rampart_simulate::{Cell, FleetSpec, Sink};
use rampart_telemetry::{EventStore, EventStoreConfig, TableBatchBuilder};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The allocator of the `rampart` binary, so queries allocate as the server's do.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Work directory: the event store (`store/`) and the data description (`data.json`)
    #[arg(long, default_value = "/var/tmp/rampart-bench/hunting")]
    dir: PathBuf,
    /// Rows of DeviceProcessEvents and of DeviceNetworkEvents (each), before --scale
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    /// Multiplies --rows (e.g. 0.05 for a quick check)
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Simulated devices
    #[arg(long, default_value_t = 2000)]
    devices: usize,
    /// Timed runs per query and engine (after one untimed run); the median is reported
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Iterations of the parse/bind/plan measurement
    #[arg(long, default_value_t = 1000)]
    plan_iterations: usize,
    /// Only these queries (by name, e.g. Q05; repeatable)
    #[arg(long)]
    only: Vec<String>,
    /// Skip DuckDB (profiling Rampart alone)
    #[arg(long)]
    no_duckdb: bool,
    /// Print DataFusion's EXPLAIN ANALYZE of every Rampart query
    #[arg(long)]
    explain: bool,
    /// Run this KQL (repeatable) instead of the benchmark queries: Rampart only, for experiments
    #[arg(long)]
    kql: Vec<String>,
    /// Run this DataFusion SQL (repeatable) on the same session, for experiments: how much of a
    /// query's time is DataFusion's and how much the KQL lowering's
    #[arg(long)]
    df_sql: Vec<String>,
    /// Regenerate the data even if `--dir` holds matching data
    #[arg(long)]
    regenerate: bool,
    /// The python interpreter that has the duckdb package
    #[arg(long, default_value = "python3")]
    python: String,
    /// Only the retro-hunt measurement (step 5), not the queries
    #[arg(long)]
    retrohunt_only: bool,
}

/// The tenant every simulated row belongs to.
const TENANT: &str = "6f1c2a53-0b7e-4c1d-9a3e-5d4b8c7e2f10";
/// The simulated window starts here (a Monday, 00:00 UTC); queries use absolute times in it.
const START: &str = "2026-11-02T00:00:00Z";
const SEED: u64 = 7;
const TABLES: [&str; 2] = ["DeviceProcessEvents", "DeviceNetworkEvents"];
/// Rows per appended batch (an agent batch is ~1,000; bigger here only to generate faster).
const BATCH_ROWS: usize = 32 * 1024;
/// The hot tail is written to Parquet whenever it holds this much.
const FLUSH_BYTES: u64 = 512 << 20;

/// One benchmark query: KQL for Rampart and the hand-written DuckDB SQL that computes the same.
struct Query {
    name: &'static str,
    /// The features it exercises.
    what: &'static str,
    kql: &'static str,
    sql: &'static str,
}

/// The queries. Times are inside the simulated window (`START` plus 0..days).
const QUERIES: &[Query] = &[
    Query {
        name: "Q01",
        what: "`has` term search, summarize by file",
        kql: r#"DeviceProcessEvents
| where ProcessCommandLine has "bypass"
| summarize Events = count(), Devices = dcount(DeviceId) by FileName"#,
        sql: r#"SELECT coalesce(FileName, '') AS FileName, count(*) AS Events, count(DISTINCT DeviceId) AS Devices
FROM DeviceProcessEvents
WHERE ProcessCommandLine ILIKE '%bypass%'
  AND regexp_matches(ProcessCommandLine, '(?i)(^|[^\pL\pN])bypass($|[^\pL\pN])')
GROUP BY ALL"#,
    },
    Query {
        name: "Q02",
        what: "`in~` list, summarize by 2 keys",
        kql: r#"DeviceProcessEvents
| where FileName in~ ("powershell.exe", "pwsh.exe", "cmd.exe", "rundll32.exe", "regsvr32.exe", "mshta.exe", "wscript.exe", "cscript.exe", "certutil.exe", "bitsadmin.exe", "schtasks.exe", "wmic.exe")
| summarize Count = count() by Binary = tolower(FileName), AccountName"#,
        sql: r#"SELECT lower(FileName) AS Binary, coalesce(AccountName, '') AS AccountName, count(*) AS Count
FROM DeviceProcessEvents
WHERE lower(FileName) IN ('powershell.exe', 'pwsh.exe', 'cmd.exe', 'rundll32.exe', 'regsvr32.exe', 'mshta.exe', 'wscript.exe', 'cscript.exe', 'certutil.exe', 'bitsadmin.exe', 'schtasks.exe', 'wmic.exe')
GROUP BY ALL"#,
    },
    Query {
        name: "Q03",
        what: "time range, `summarize` by `bin(Timestamp, 1h)`",
        kql: r#"DeviceNetworkEvents
| where Timestamp between (datetime(2026-11-03) .. datetime(2026-11-06))
| summarize Connections = count() by bin(Timestamp, 1h), ActionType"#,
        sql: r#"SELECT date_trunc('hour', Timestamp) AS Timestamp, coalesce(ActionType, '') AS ActionType, count(*) AS Connections
FROM DeviceNetworkEvents
WHERE Timestamp BETWEEN TIMESTAMPTZ '2026-11-03 00:00:00+00' AND TIMESTAMPTZ '2026-11-06 00:00:00+00'
GROUP BY ALL"#,
    },
    Query {
        name: "Q04",
        what: "`dcount` per remote address, sort + take",
        kql: r#"DeviceNetworkEvents
| where RemoteIPType == "Public"
| summarize Devices = dcount(DeviceId), Connections = count() by RemoteIP
| sort by Devices desc, RemoteIP asc
| take 100"#,
        sql: r#"SELECT coalesce(RemoteIP, '') AS RemoteIP, count(DISTINCT DeviceId) AS Devices, count(*) AS Connections
FROM DeviceNetworkEvents
WHERE RemoteIPType = 'Public'
GROUP BY ALL
ORDER BY Devices DESC, RemoteIP ASC
LIMIT 100"#,
    },
    Query {
        name: "Q05",
        what: "`arg_max` per device (latest process)",
        kql: r#"DeviceProcessEvents
| summarize arg_max(Timestamp, FileName, ProcessCommandLine, AccountName) by DeviceId"#,
        sql: r#"SELECT DeviceId, Timestamp, latest.f AS FileName, latest.c AS ProcessCommandLine, latest.a AS AccountName
FROM (SELECT DeviceId, max(Timestamp) AS Timestamp,
        arg_max({'f': coalesce(FileName, ''), 'c': coalesce(ProcessCommandLine, ''), 'a': coalesce(AccountName, '')}, Timestamp) AS latest
      FROM DeviceProcessEvents
      GROUP BY DeviceId)"#,
    },
    Query {
        name: "Q06",
        what: "`make_set` per device",
        kql: r#"DeviceProcessEvents
| where InitiatingProcessFileName in~ ("explorer.exe", "services.exe", "svchost.exe", "bash", "systemd", "launchd")
| summarize Children = make_set(FileName), Count = count() by DeviceId"#,
        sql: r#"SELECT DeviceId, list(DISTINCT coalesce(FileName, '')) AS Children, count(*) AS Count
FROM DeviceProcessEvents
WHERE lower(InitiatingProcessFileName) IN ('explorer.exe', 'services.exe', 'svchost.exe', 'bash', 'systemd', 'launchd')
GROUP BY DeviceId"#,
    },
    Query {
        name: "Q07",
        what: "join of process and network events",
        kql: r#"DeviceProcessEvents
| where FileName in~ ("chrome.exe", "msedge.exe", "outlook.exe", "git.exe", "curl", "powershell.exe", "rundll32.exe")
| project DeviceId, ProcessId, ProcessCreationTime, FileName
| join kind=inner (
    DeviceNetworkEvents
    | where RemoteIPType == "Public"
    | project DeviceId, ProcessId = InitiatingProcessId, ProcessCreationTime = InitiatingProcessCreationTime, RemoteIP, RemotePort
  ) on DeviceId, ProcessId, ProcessCreationTime
| summarize Connections = count(), Destinations = dcount(RemoteIP) by FileName, RemotePort"#,
        sql: r#"SELECT coalesce(p.FileName, '') AS FileName, n.RemotePort, count(*) AS Connections, count(DISTINCT n.RemoteIP) AS Destinations
FROM (SELECT DeviceId, ProcessId, ProcessCreationTime, FileName FROM DeviceProcessEvents
      WHERE lower(FileName) IN ('chrome.exe', 'msedge.exe', 'outlook.exe', 'git.exe', 'curl', 'powershell.exe', 'rundll32.exe')) p
JOIN (SELECT DeviceId, InitiatingProcessId AS ProcessId, InitiatingProcessCreationTime AS ProcessCreationTime, RemoteIP, RemotePort
      FROM DeviceNetworkEvents WHERE RemoteIPType = 'Public') n
  ON p.DeviceId = n.DeviceId AND p.ProcessId = n.ProcessId AND p.ProcessCreationTime = n.ProcessCreationTime
GROUP BY ALL"#,
    },
    Query {
        name: "Q08",
        what: "`mv-expand` of split command lines",
        kql: r#"DeviceProcessEvents
| where FileName in~ ("powershell.exe", "cmd.exe", "bash", "python3")
| extend Args = split(ProcessCommandLine, " ")
| mv-expand Arg = Args to typeof(string)
| where Arg startswith "-"
| summarize Uses = count() by Arg
| sort by Uses desc, Arg asc
| take 50"#,
        sql: r#"SELECT Arg, count(*) AS Uses
FROM (SELECT unnest(string_split(coalesce(ProcessCommandLine, ''), ' ')) AS Arg
      FROM DeviceProcessEvents
      WHERE lower(FileName) IN ('powershell.exe', 'cmd.exe', 'bash', 'python3'))
WHERE starts_with(Arg, '-')
GROUP BY Arg
ORDER BY Uses DESC, Arg ASC
LIMIT 50"#,
    },
    Query {
        name: "Q09",
        what: "`parse_json` on AdditionalFields (DNS queries)",
        kql: r#"DeviceNetworkEvents
| where ActionType == "DnsConnectionInspected"
| extend Query = tostring(parse_json(AdditionalFields).query)
| summarize Lookups = count(), Devices = dcount(DeviceId) by Query"#,
        sql: r#"SELECT coalesce(json_extract_string(AdditionalFields, '$.query'), '') AS Query, count(*) AS Lookups, count(DISTINCT DeviceId) AS Devices
FROM DeviceNetworkEvents
WHERE ActionType = 'DnsConnectionInspected'
GROUP BY ALL"#,
    },
    Query {
        name: "Q10",
        what: "`has_any` + `contains` + `=~`, project + sort + take",
        kql: r#"DeviceProcessEvents
| where ProcessCommandLine has_any ("encodedcommand", "downloadstring", "invoke-expression", "frombase64string", "hidden")
    or (InitiatingProcessFileName =~ "winword.exe" and FileName contains "powershell")
| project Timestamp, DeviceName, FileName, ProcessCommandLine, ReportId
| sort by Timestamp desc, DeviceName asc, ReportId desc
| take 1000"#,
        sql: r#"SELECT Timestamp, coalesce(DeviceName, '') AS DeviceName, coalesce(FileName, '') AS FileName, coalesce(ProcessCommandLine, '') AS ProcessCommandLine, ReportId
FROM DeviceProcessEvents
WHERE regexp_matches(ProcessCommandLine, '(?i)(^|[^\pL\pN])(encodedcommand|downloadstring|invoke-expression|frombase64string|hidden)($|[^\pL\pN])')
   OR (lower(InitiatingProcessFileName) = 'winword.exe' AND FileName ILIKE '%powershell%')
ORDER BY Timestamp DESC, DeviceName ASC, ReportId DESC
LIMIT 1000"#,
    },
    Query {
        name: "Q11",
        what: "summarize by 2 keys, min/max, sort + take",
        kql: r#"DeviceNetworkEvents
| summarize Connections = count(), FirstSeen = min(Timestamp), LastSeen = max(Timestamp) by DeviceId, RemotePort
| sort by Connections desc, DeviceId asc, RemotePort asc
| take 100"#,
        sql: r#"SELECT DeviceId, RemotePort, count(*) AS Connections, min(Timestamp) AS FirstSeen, max(Timestamp) AS LastSeen
FROM DeviceNetworkEvents
GROUP BY ALL
ORDER BY Connections DESC, DeviceId ASC, RemotePort ASC NULLS FIRST
LIMIT 100"#,
    },
    Query {
        name: "Q12",
        what: "time window + filters, `extend` + `count`",
        kql: r#"DeviceNetworkEvents
| where Timestamp > datetime(2026-11-02 08:00) and Timestamp < datetime(2026-11-02 20:00)
| where RemotePort in (22, 445, 3389, 5985) and ActionType == "ConnectionSuccess"
| extend Hour = datetime_part("hour", Timestamp)
| summarize Connections = count() by Hour, RemotePort"#,
        sql: r#"SELECT hour(Timestamp) AS Hour, RemotePort, count(*) AS Connections
FROM DeviceNetworkEvents
WHERE Timestamp > TIMESTAMPTZ '2026-11-02 08:00:00+00' AND Timestamp < TIMESTAMPTZ '2026-11-02 20:00:00+00'
  AND RemotePort IN (22, 445, 3389, 5985) AND ActionType = 'ConnectionSuccess'
GROUP BY ALL"#,
    },
];

/// A realistic ~2 KB hunting query for the parse/bind/plan measurement.
const PLAN_QUERY: &str = r#"// Office document spawning a script host that then talks to the internet
let lookback = 7d;
let suspiciousParents = dynamic(["winword.exe", "excel.exe", "powerpnt.exe", "outlook.exe", "acrord32.exe"]);
let scriptHosts = dynamic(["powershell.exe", "pwsh.exe", "cmd.exe", "wscript.exe", "cscript.exe", "mshta.exe", "rundll32.exe", "regsvr32.exe"]);
let spawned = DeviceProcessEvents
    | where Timestamp > ago(lookback)
    | where InitiatingProcessFileName in~ (suspiciousParents)
    | where FileName in~ (scriptHosts)
    | where ProcessCommandLine has_any ("http", "downloadstring", "encodedcommand", "-enc", "frombase64string", "bypass", "hidden")
        or ProcessCommandLine matches regex @"[A-Za-z0-9+/]{40,}={0,2}"
    | extend Parent = tolower(InitiatingProcessFileName), Child = tolower(FileName)
    | project SpawnTime = Timestamp, DeviceId, DeviceName, Parent, Child, ProcessId, ProcessCreationTime,
        ProcessCommandLine, AccountDomain, AccountName, SHA256;
let connections = DeviceNetworkEvents
    | where Timestamp > ago(lookback)
    | where RemoteIPType == "Public" and ActionType in ("ConnectionSuccess", "ConnectionAttempt")
    | where RemotePort in (80, 443, 8080, 8443, 4444)
    | extend Dns = parse_json(AdditionalFields)
    | project ConnTime = Timestamp, DeviceId, ProcessId = InitiatingProcessId,
        ProcessCreationTime = InitiatingProcessCreationTime, RemoteIP, RemotePort, RemoteUrl,
        Direction = tostring(Dns.direction);
spawned
| join kind=inner connections on DeviceId, ProcessId, ProcessCreationTime
| where ConnTime between (SpawnTime .. SpawnTime + 30m)
| extend Delay = ConnTime - SpawnTime, Domain = tostring(parse_url(strcat("https://", RemoteUrl)).Host)
| summarize FirstSeen = min(SpawnTime), LastSeen = max(ConnTime), Connections = count(),
    Destinations = make_set(RemoteIP, 20), Ports = make_set(RemotePort), Domains = dcount(Domain),
    arg_max(SpawnTime, ProcessCommandLine, AccountName), AvgDelay = avg(Delay)
    by DeviceId, DeviceName, Parent, Child
| extend Severity = case(Connections > 50, "High", Connections > 10, "Medium", "Low"),
    Account = strcat(AccountName, "@", DeviceName)
| where Severity != "Low" or Domains > 3
| order by Connections desc, LastSeen desc
| take 500"#;

// ---- data --------------------------------------------------------------------------------

/// What `data.json` records about a generated data set.
fn data_description(args: &Args, target: u64) -> serde_json::Value {
    serde_json::json!({
        "version": 2,
        "seed": SEED,
        "start": START,
        "devices": args.devices,
        "rows_per_table": target,
    })
}

/// Collects the rows of the two tables into batches, thinning each to a kept fraction.
struct Collector {
    tx: tokio::sync::mpsc::Sender<(&'static Table, RecordBatch)>,
    builders: [TableBatchBuilder; 2],
    keep: [f64; 2],
    credit: [f64; 2],
}

impl Sink for Collector {
    fn row(
        &mut self,
        _device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> std::io::Result<()> {
        let Some(i) = TABLES.iter().position(|t| *t == table.name) else {
            return Ok(());
        };
        // Evenly spread thinning: keep a row whenever a whole unit of credit has built up.
        self.credit[i] += self.keep[i];
        if self.credit[i] < 1.0 {
            return Ok(());
        }
        self.credit[i] -= 1.0;
        self.builders[i]
            .push_cells(cells)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        if self.builders[i].len() >= BATCH_ROWS {
            self.send(i)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        for i in 0..2 {
            if !self.builders[i].is_empty() {
                self.send(i)?;
            }
        }
        Ok(())
    }
}

impl Collector {
    fn send(&mut self, i: usize) -> std::io::Result<()> {
        let batch = self.builders[i].finish();
        self.tx
            .blocking_send((self.builders[i].table(), batch))
            .map_err(|_| std::io::Error::other("the store writer stopped"))
    }
}

fn table(name: &str) -> anyhow::Result<&'static Table> {
    schema::table(name).with_context(|| format!("no table {name}"))
}

fn start_ns() -> anyhow::Result<i64> {
    rampart_simulate::time::parse(START).context("START is not a datetime")
}

/// Generates the data into `dir/store` unless it is already there.
async fn ensure_data(args: &Args, tenant: TenantId) -> anyhow::Result<()> {
    let target = (args.rows as f64 * args.scale).round() as u64;
    let description = data_description(args, target);
    let marker = args.dir.join("data.json");
    if !args.regenerate
        && let Ok(text) = std::fs::read_to_string(&marker)
        && let Ok(found) = serde_json::from_str::<serde_json::Value>(&text)
        && found.get("spec") == Some(&description)
    {
        println!(
            "reusing the data in {} (generated {})",
            args.dir.display(),
            found["generated"].as_str().unwrap_or("?")
        );
        return Ok(());
    }
    let store_dir = args.dir.join("store");
    let _ = std::fs::remove_dir_all(&store_dir);
    let _ = std::fs::remove_file(&marker);
    std::fs::create_dir_all(&store_dir)?;

    // Calibrate: rows per device-day of each table, from one week (weekends are quieter) of a
    // part of the fleet.
    let t = Instant::now();
    let sample_devices = args.devices.min(100);
    let mut count = rampart_simulate::sinks::Count::default();
    rampart_simulate::generate(
        &FleetSpec {
            devices: sample_devices,
            days: 7.0,
            seed: SEED,
            start_ns: start_ns()?,
            scenarios: Vec::new(),
        },
        &mut count,
    )?;
    let per_device_day: Vec<f64> = TABLES
        .iter()
        .map(|t| *count.rows.get(t).unwrap_or(&0) as f64 / (sample_devices as f64 * 7.0))
        .collect();
    if per_device_day.iter().any(|r| *r <= 0.0) {
        bail!("the simulator produced no rows of one of {TABLES:?}: {count:?}");
    }
    // Days enough for the scarcer table with 4% to spare, in quarter days; the other table is
    // thinned evenly to the same count.
    let wanted = target as f64 * 1.04;
    let scarce = per_device_day.iter().cloned().fold(f64::INFINITY, f64::min);
    let days = ((wanted / (scarce * args.devices as f64)) * 4.0).ceil() / 4.0;
    let keep: Vec<f64> = per_device_day
        .iter()
        .map(|r| (wanted / (r * args.devices as f64 * days)).min(1.0))
        .collect();
    println!(
        "calibration ({sample_devices} devices, 7 days, {:.1} s): {:.0} process and {:.0} network events per device-day; generating {} devices x {days} days, keeping {:.3} / {:.3} of the rows",
        t.elapsed().as_secs_f64(),
        per_device_day[0],
        per_device_day[1],
        args.devices,
        keep[0],
        keep[1]
    );

    let scenarios = ["phishing", "credential-theft", "ransomware", "ssh-miner"]
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<_>, _>>()?;
    let spec = FleetSpec {
        devices: args.devices,
        days,
        seed: SEED,
        start_ns: start_ns()?,
        scenarios,
    };
    let config = EventStoreConfig {
        flush_interval: Duration::from_secs(24 * 3600),
        max_hot_bytes: 4 << 30,
        compact_min_files: 2,
        ..Default::default()
    };
    let store = EventStore::open(&store_dir, config).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let mut collector = Collector {
        tx,
        builders: [
            TableBatchBuilder::with_capacity(table(TABLES[0])?, BATCH_ROWS),
            TableBatchBuilder::with_capacity(table(TABLES[1])?, BATCH_ROWS),
        ],
        keep: [keep[0], keep[1]],
        credit: [0.0; 2],
    };
    let t = Instant::now();
    let generator = std::thread::spawn(move || rampart_simulate::generate(&spec, &mut collector));
    let mut batches = 0usize;
    let mut rows = 0usize;
    while let Some((table, batch)) = rx.recv().await {
        rows += batch.num_rows();
        store
            .append(tenant, &format!("gen-{batches}"), vec![(table, batch)])
            .await?;
        batches += 1;
        if store.stats().hot_bytes > FLUSH_BYTES {
            store.flush().await?;
        }
        if batches.is_multiple_of(100) {
            print!(
                "\r  {rows} rows stored, {:.0} rows/s",
                rows as f64 / t.elapsed().as_secs_f64()
            );
            std::io::stdout().flush()?;
        }
    }
    let stats = generator
        .join()
        .map_err(|_| anyhow::anyhow!("the generator panicked"))??;
    store.flush().await?;
    println!(
        "\r  {rows} rows stored in {:.1} s; all tables generated: {:?}",
        t.elapsed().as_secs_f64(),
        stats.rows
    );
    let t = Instant::now();
    let merged = store.compact().await?;
    println!(
        "  compaction merged {merged} files in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let stored = store.files();
    for t in TABLES {
        let rows: u64 = stored.iter().filter(|f| f.table == t).map(|f| f.rows).sum();
        if rows < target {
            println!("  WARNING: {t} has {rows} rows, fewer than the {target} wanted");
        }
    }
    store.shutdown().await?;
    let generated = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%FT%TZ"])
            .output()?
            .stdout,
    )?;
    std::fs::write(
        &marker,
        serde_json::to_string_pretty(&serde_json::json!({
            "spec": description,
            "days": days,
            "keep": keep,
            "generated": generated.trim(),
        }))?,
    )?;
    Ok(())
}

// ---- DuckDB ------------------------------------------------------------------------------

/// The python side: one DuckDB connection with a view per table over the store's Parquet files;
/// reads one JSON command per line, answers one JSON line.
const DUCKDB_WORKER: &str = r#"
import duckdb, hashlib, json, statistics, sys, time, datetime, decimal

tables = json.loads(sys.argv[1])
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("SET enable_progress_bar = false")
for name, files in tables.items():
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listed}], hive_partitioning = false)")
threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
print(json.dumps({"duckdb": duckdb.__version__, "threads": threads}), flush=True)

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

def micros_of_text(s):
    # Kusto's datetime text: 2026-11-02T01:02:03[.fffffff]Z
    s = s.rstrip('Z')
    whole, _, frac = s.partition('.')
    t = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc)
    return (t - EPOCH) // datetime.timedelta(microseconds=1) + int((frac + '000000')[:6] or 0)

def canon(v, kind=None):
    if v is None:
        return None
    if kind == 'DateTime' and isinstance(v, str):
        return micros_of_text(v)
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, (float, decimal.Decimal)):
        f = float(v)
        return int(f) if f.is_integer() and abs(f) < 2**53 else float(f"{f:.9g}")
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return (v - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(v, (list, tuple)):
        # Only sets are lists here (make_set): order is unspecified.
        return sorted((canon(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True))
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    return v

def digest(rows):
    lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return lines, hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]

for line in sys.stdin:
    # {"sql", "warm": run once untimed first, "runs": timed runs, "rampart": a result file to
    #  compare the last run's rows with}
    cmd = json.loads(line)
    sql, runs = cmd["sql"], cmd["runs"]
    rows = None
    try:
        if cmd.get("warm"):
            rows = con.execute(sql).fetchall()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            rows = con.execute(sql).fetchall()
            times.append((time.perf_counter() - t) * 1000)
    except Exception as e:
        print(json.dumps({"error": str(e)}), flush=True)
        continue
    answer = {"times_ms": times}
    if rows is not None:
        ours, our_sha = digest([[canon(v) for v in r] for r in rows])
        answer["rows"] = len(rows)
        answer["sha"] = our_sha
    if cmd.get("rampart") and rows is not None:
        with open(cmd["rampart"]) as f:
            theirs = json.load(f)
        kinds = [t for _, t in theirs["columns"]]
        lines, sha = digest([[canon(v, k) for v, k in zip(r, kinds)] for r in theirs["rows"]])
        answer["rampart_rows"] = len(theirs["rows"])
        answer["rampart_sha"] = sha
        if sha != our_sha:
            a, b = set(ours), set(lines)
            answer["only_duckdb"] = sorted(a - b)[:3]
            answer["only_rampart"] = sorted(b - a)[:3]
    print(json.dumps(answer), flush=True)
"#;

struct DuckDb {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    version: String,
}

impl DuckDb {
    /// `files`: table name -> the Parquet files of the store's manifest (absolute paths).
    fn start(python: &str, files: &BTreeMap<&str, Vec<String>>) -> anyhow::Result<DuckDb> {
        let tables: serde_json::Map<String, serde_json::Value> = files
            .iter()
            .map(|(t, paths)| (t.to_string(), serde_json::json!(paths)))
            .collect();
        let mut child = Command::new(python)
            .arg("-c")
            .arg(DUCKDB_WORKER)
            .arg(serde_json::Value::Object(tables).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting python3 (the DuckDB baseline needs python3 with duckdb)")?;
        let stdin = child.stdin.take().context("stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let hello: serde_json::Value = serde_json::from_str(&line).with_context(|| {
            format!("the DuckDB worker did not start (pip install duckdb?): {line}")
        })?;
        Ok(DuckDb {
            child,
            stdin,
            stdout,
            version: format!("DuckDB {} ({} threads)", hello["duckdb"], hello["threads"]),
        })
    }

    /// Runs `sql` once untimed if `warm`, then `runs` times timed; compares the last rows with
    /// the Rampart result file `rampart`, if given.
    fn query(
        &mut self,
        sql: &str,
        warm: bool,
        runs: usize,
        rampart: Option<&Path>,
    ) -> anyhow::Result<serde_json::Value> {
        let cmd = serde_json::json!({"sql": sql, "warm": warm, "runs": runs, "rampart": rampart});
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let answer: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("the DuckDB worker answered {line:?}"))?;
        if let Some(e) = answer.get("error") {
            bail!("DuckDB failed: {e}");
        }
        Ok(answer)
    }
}

impl Drop for DuckDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- measurement -------------------------------------------------------------------------

/// Step 5: retro-hunts of one new SHA-256 over every stored row, as the server runs them when
/// an indicator is submitted: a hash the data holds a few times, and one it never holds. Beside
/// each, DuckDB counting the rows that carry the hash in any hash column of the same files.
async fn retrohunt(
    args: &Args,
    events: &EventStore,
    tenant: TenantId,
    mut duck: Option<&mut DuckDb>,
) -> anyhow::Result<()> {
    use rampart_core::indicator::{IndicatorRequest, IndicatorWriter, Submitted, Submitter};
    let ctx = events.session(tenant)?;
    let rare = ctx
        .sql(
            "SELECT \"SHA256\" AS h, count(*) AS n FROM \"DeviceProcessEvents\" \
             WHERE \"SHA256\" IS NOT NULL GROUP BY \"SHA256\" ORDER BY n ASC, h LIMIT 1",
        )
        .await?
        .collect()
        .await?;
    let rare = datafusion::arrow::util::display::array_value_to_string(rare[0].column(0), 0)?;
    let absent = "5".repeat(64);
    let dir = tempfile_dir(&args.dir.join("retrohunt-state"))?;
    let db = dir.join("state.db");
    let store: std::sync::Arc<dyn rampart_store::Store> = std::sync::Arc::new(
        rampart_store::SqlStore::connect(&format!("sqlite://{}", db.display())).await?,
    );
    // The simulated rows belong to a fixed tenant id, which the store API never hands out:
    // register it in the fresh state file directly (python3 is here for DuckDB anyway).
    let registered = Command::new(&args.python)
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute('INSERT INTO tenants (id, name, is_default, created_time) VALUES (?, ?, 0, 0)', (sys.argv[2], 'bench')); c.commit()",
        ])
        .arg(&db)
        .arg(TENANT)
        .status()?;
    if !registered.success() {
        bail!("registering the bench tenant in {} failed", db.display());
    }
    let matcher =
        rampart_detect::IndicatorMatcher::new(store.clone(), events.clone(), Duration::ZERO);
    let writer = IndicatorWriter {
        submitter: Submitter {
            id: "bench".into(),
            name: "bench".into(),
            kind: rampart_core::indicator::SourceType::User,
        },
        all: true,
    };
    let now = time::OffsetDateTime::now_utc();
    // The simulated window lies before today: look back far enough to cover all of it.
    let start = time::OffsetDateTime::parse(START, &time::format_description::well_known::Rfc3339)?;
    let lookback = Duration::from_secs(((now - start).whole_seconds().max(0) as u64) + 86_400);
    println!(
        "\nretro-hunt: lookback {} days, {} timed runs each",
        lookback.as_secs() / 86_400,
        args.runs
    );
    for (label, hash) in [
        ("a hash held by a few rows", rare.as_str()),
        ("a hash held by no row", absent.as_str()),
    ] {
        let request: IndicatorRequest = serde_json::from_value(serde_json::json!({
            "indicatorValue": hash, "indicatorType": "FileSha256", "action": "Audit",
            "title": "retro-hunt bench", "description": "bench", "generateAlert": true}))?;
        let sub = request
            .validate(now)
            .map_err(|r| anyhow::anyhow!(r.message))?;
        let ctx_audit = rampart_core::audit::AuditContext::system("bench");
        let out = store
            .submit_indicators(&ctx_audit, tenant, &writer, vec![sub])
            .await?;
        let indicator = match out.into_iter().next() {
            Some(Submitted::Created(i) | Submitted::Updated(i)) => i,
            other => bail!("indicator not stored: {other:?}"),
        };
        matcher.apply(
            tenant,
            &[rampart_detect::indicators::Change::Upsert(Box::new(
                indicator.clone(),
            ))],
        );
        let mut times = Vec::new();
        let mut report = None;
        for _ in 0..=args.runs {
            let t = Instant::now();
            report = Some(
                matcher
                    .retrohunt(tenant, std::slice::from_ref(&indicator), lookback)
                    .await?,
            );
            times.push(ms(t.elapsed()));
        }
        times.remove(0);
        let report = report.unwrap_or_else(|| unreachable!());
        let rows_in_hits = report.rows_checked;
        let mut duck_ms = None;
        if let Some(d) = duck.as_deref_mut() {
            // The same test as the prefilter: each hash column against both letter cases.
            // over both tables, as the hunt reads both.
            let test = |cols: &[&str]| {
                cols.iter()
                    .map(|c| format!("{c} IN ('{hash}', upper('{hash}'))"))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            };
            let initiating = [
                "InitiatingProcessSHA256",
                "InitiatingProcessSHA1",
                "InitiatingProcessMD5",
            ];
            let all = [
                "SHA256",
                "SHA1",
                "MD5",
                initiating[0],
                initiating[1],
                initiating[2],
            ];
            let sql = format!(
                "SELECT (SELECT count(*) FROM DeviceProcessEvents WHERE {}) + (SELECT count(*) FROM DeviceNetworkEvents WHERE {})",
                test(&all),
                test(&initiating)
            );
            let answer = d.query(&sql, true, args.runs, None)?;
            let t: Vec<f64> = answer["times_ms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_f64())
                .collect();
            duck_ms = Some(median(t));
        }
        println!(
            "retro-hunt, {label}: Rampart {:.1} ms (best {:.1}), {} rows checked, {} device hits, {} alerts; DuckDB count of the same rows {} ms",
            median(times.clone()),
            times.iter().cloned().fold(f64::INFINITY, f64::min),
            rows_in_hits,
            report.hits.len(),
            report.alert_ids.len(),
            duck_ms.map_or("-".into(), |v| format!("{v:.1}")),
        );
    }
    Ok(())
}

/// A fresh, empty directory at `path`.
fn tempfile_dir(path: &Path) -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(path);
    std::fs::create_dir_all(path)?;
    Ok(path.to_owned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Writes a result as `{"columns": [[name, .NET type]], "rows": [[cells]]}` for the comparison.
fn write_result(path: &Path, result: &rampart_kql::HuntResult) -> anyhow::Result<()> {
    let columns: Vec<(String, ScalarType)> = result
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty))
        .collect();
    let rows: Vec<serde_json::Value> = rampart_api::hunt_json::rows_json(&columns, &result.batches)
        .into_iter()
        .map(|row| {
            serde_json::Value::Array(
                columns
                    .iter()
                    .map(|(n, _)| row.get(n).cloned().unwrap_or(serde_json::Value::Null))
                    .collect(),
            )
        })
        .collect();
    let doc = serde_json::json!({
        "columns": columns.iter().map(|(n, t)| [n.as_str(), rampart_api::hunt_json::type_name(*t)]).collect::<Vec<_>>(),
        "rows": rows,
    });
    std::fs::write(path, serde_json::to_vec(&doc)?)?;
    Ok(())
}

/// Median time of `f` over `n` iterations (after a tenth as many untimed).
async fn time_median<F, Fut, T>(n: usize, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    for _ in 0..n.div_ceil(10) {
        f().await?;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(f().await?);
        times.push(ms(t.elapsed()));
    }
    Ok(median(times))
}

struct Row {
    name: &'static str,
    what: &'static str,
    rampart_ms: f64,
    rampart_best: f64,
    duck_ms: Option<f64>,
    duck_best: Option<f64>,
    rows: usize,
    check: String,
    /// The 1-minute load average before and after the query's runs.
    load: (f64, f64),
}

/// The 1-minute load average (the machine is shared; this shows when others were busy).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tenant: TenantId = TENANT.parse()?;
    std::fs::create_dir_all(&args.dir)?;
    ensure_data(&args, tenant).await?;

    // Open the store as `rampart hunt` does, and check that every row is in a Parquet file.
    let store = EventStore::open(&args.dir.join("store"), EventStoreConfig::default()).await?;
    // Alert rows of an earlier retro-hunt run may still be in the log: write them out, so the
    // queries read Parquet only, as they would on a server that flushed.
    if store.stats().hot_rows > 0 {
        store.flush().await?;
    }
    let stats = store.stats();
    if stats.hot_rows > 0 {
        bail!(
            "{} rows are still in the log / hot tail; regenerate (--regenerate)",
            stats.hot_rows
        );
    }
    let files = store.files();
    for t in TABLES {
        let mine: Vec<_> = files.iter().filter(|f| f.table == t).collect();
        let rows: u64 = mine.iter().map(|f| f.rows).sum();
        let bytes: u64 = mine.iter().map(|f| f.bytes).sum();
        let days: std::collections::BTreeSet<&str> = mine.iter().map(|f| f.day.as_str()).collect();
        println!(
            "{t}: {rows} rows in {} Parquet files, {:.0} MB ({:.1} bytes/row), {} days ({} .. {})",
            mine.len(),
            bytes as f64 / 1e6,
            bytes as f64 / rows.max(1) as f64,
            days.len(),
            days.first().unwrap_or(&""),
            days.last().unwrap_or(&"")
        );
    }
    let ctx = store.session(tenant)?;
    let params = QueryParameters::new();
    let limits = rampart_kql::plan::Limits {
        max_rows: 10_000_000,
        timeout: None,
        memory: None,
    };
    println!(
        "DataFusion target partitions: {}",
        ctx.state().config().target_partitions()
    );

    let mut duck = if args.no_duckdb {
        None
    } else {
        // Exactly the files the store's manifest lists (the object store's root is store/events).
        let root = std::fs::canonicalize(args.dir.join("store").join("events"))?;
        let mut by_table: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for t in TABLES {
            by_table.insert(
                t,
                files
                    .iter()
                    .filter(|f| f.table == t)
                    .map(|f| root.join(&f.path).to_string_lossy().into_owned())
                    .collect(),
            );
        }
        let d = DuckDb::start(&args.python, &by_table)?;
        println!("baseline: {}", d.version);
        Some(d)
    };
    let results_dir = args.dir.join("results");
    std::fs::create_dir_all(&results_dir)?;

    let policy = format!(
        "each query: 1 untimed run per engine, then {} timed runs per engine, alternating Rampart and DuckDB; the median is reported",
        args.runs
    );
    println!("{policy}");
    for (i, sql) in args.df_sql.iter().enumerate() {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..=args.runs {
            let t = Instant::now();
            let batches = ctx.sql(sql).await?.collect().await?;
            times.push(ms(t.elapsed()));
            rows = batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        }
        times.remove(0);
        println!(
            "S{:02} DataFusion SQL: {:.1} ms (median of {}), {rows} rows",
            i + 1,
            median(times),
            args.runs
        );
        if args.explain {
            let explained = ctx
                .sql(&format!("EXPLAIN ANALYZE {sql}"))
                .await?
                .collect()
                .await?;
            println!(
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&explained)?
            );
        }
    }
    let mut table = Vec::new();
    let adhoc: Vec<Query> = args
        .kql
        .iter()
        .enumerate()
        .map(|(i, k)| Query {
            name: Box::leak(format!("K{:02}", i + 1).into_boxed_str()),
            what: "ad-hoc (--kql)",
            kql: Box::leak(k.clone().into_boxed_str()),
            sql: "",
        })
        .collect();
    if !adhoc.is_empty() {
        duck = None;
    }
    let queries: &[Query] = if adhoc.is_empty() { QUERIES } else { &adhoc };
    if args.retrohunt_only {
        return retrohunt(&args, &store, tenant, duck.as_mut()).await;
    }
    for q in queries {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == q.name) {
            continue;
        }
        // Both engines warm (one untimed run each), then their timed runs alternate, so that
        // load from other processes on this shared machine falls on both alike.
        let load_before = load_average();
        let run = || async {
            rampart_kql::plan::run(&ctx, q.kql, &params, &limits)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", q.name))
        };
        let mut result = run().await?;
        if let Some(d) = duck.as_mut() {
            d.query(q.sql, true, 0, None)?;
        }
        let mut times = Vec::with_capacity(args.runs);
        let mut duck_times = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let t = Instant::now();
            result = run().await?;
            times.push(ms(t.elapsed()));
            if let Some(d) = duck.as_mut() {
                let answer = d.query(q.sql, false, 1, None)?;
                duck_times.extend(
                    answer["times_ms"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_f64()),
                );
            }
        }
        if result.truncated {
            bail!("{}: the result was truncated", q.name);
        }
        let path = results_dir.join(format!("{}.json", q.name));
        write_result(&path, &result)?;
        let rampart_best = times.iter().cloned().fold(f64::INFINITY, f64::min);
        let rampart_ms = median(times);
        let mut row = Row {
            name: q.name,
            what: q.what,
            rampart_ms,
            rampart_best,
            duck_ms: None,
            duck_best: None,
            rows: result.row_count,
            check: "not compared".into(),
            load: (load_before, load_average()),
        };
        if let Some(d) = duck.as_mut() {
            // One more (untimed) DuckDB run whose rows are compared with Rampart's.
            let answer = d.query(q.sql, true, 0, Some(&path))?;
            row.duck_best = Some(duck_times.iter().cloned().fold(f64::INFINITY, f64::min));
            row.duck_ms = Some(median(duck_times));
            let same = answer["sha"] == answer["rampart_sha"];
            row.check = format!(
                "{} (Rampart {} rows sha {}, DuckDB {} rows sha {})",
                if same { "match" } else { "MISMATCH" },
                answer["rampart_rows"],
                answer["rampart_sha"].as_str().unwrap_or("?"),
                answer["rows"],
                answer["sha"].as_str().unwrap_or("?")
            );
            if !same {
                println!(
                    "{}: results differ\n  only in DuckDB:  {}\n  only in Rampart: {}",
                    q.name, answer["only_duckdb"], answer["only_rampart"]
                );
            }
        }
        println!(
            "{} {:<52} Rampart {:>9.1} ms (best {:>9.1})  DuckDB {:>9} ms (best {:>9})  rows {:>6}  load {:.1}->{:.1}  {}",
            q.name,
            q.what,
            row.rampart_ms,
            row.rampart_best,
            row.duck_ms.map_or("-".into(), |v| format!("{v:.1}")),
            row.duck_best.map_or("-".into(), |v| format!("{v:.1}")),
            row.rows,
            row.load.0,
            row.load.1,
            row.check
        );
        if args.explain {
            let plan = rampart_kql::plan_only(&ctx, q.kql, &params)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", q.name))?;
            let df = ctx.execute_logical_plan(plan).await?;
            let explained = df.explain(false, true)?.collect().await?;
            println!(
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&explained)?
            );
        }
        table.push(row);
    }

    // Summary table (markdown, for docs/BENCHMARKS.md).
    println!(
        "\n| query | what | Rampart ms | DuckDB ms | Rampart/DuckDB | rows | results | load (1 min) |"
    );
    println!("|---|---|---:|---:|---:|---:|---|---|");
    let mut logs = Vec::new();
    for r in &table {
        let ratio = r.duck_ms.map(|d| r.rampart_ms / d);
        if let Some(x) = ratio {
            logs.push(x.ln());
        }
        println!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {:.1}-{:.1} |",
            r.name,
            r.what,
            r.rampart_ms,
            r.duck_ms.map_or("-".into(), |v| format!("{v:.1}")),
            ratio.map_or("-".into(), |x| format!("{x:.2}")),
            r.rows,
            r.check.split(' ').next().unwrap_or(""),
            r.load.0,
            r.load.1
        );
    }
    if !logs.is_empty() {
        let geo = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
        println!(
            "\ngeometric mean of Rampart/DuckDB over {} queries: {geo:.2} (target <= 1.5)",
            logs.len()
        );
        let best: Vec<f64> = table
            .iter()
            .filter_map(|r| r.duck_best.map(|d| (r.rampart_best / d).ln()))
            .collect();
        println!(
            "  (best-of-runs instead of medians: {:.2})",
            (best.iter().sum::<f64>() / best.len() as f64).exp()
        );
    }
    drop(duck);

    // Parse, bind and plan of a ~2 KB query.
    let n = args.plan_iterations;
    let parse = time_median(n, || async {
        rampart_kql::parse(PLAN_QUERY).map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await?;
    let (c, p) = (&ctx, &params);
    let bind = time_median(n, move || async move {
        let q = rampart_kql::parse(PLAN_QUERY).map_err(|e| anyhow::anyhow!("{e}"))?;
        let catalog = rampart_kql::SessionCatalog::from_context(c).await;
        rampart_kql::bind(&q, &catalog, p).map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await?;
    let plan = time_median(n, move || async move {
        rampart_kql::plan_only(c, PLAN_QUERY, p)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await?;
    println!(
        "\nparse+bind+plan of a {}-byte query (median of {n}): parse {:.3} ms, parse+bind {:.3} ms, parse+bind+plan {:.3} ms (target <= 1 ms)",
        PLAN_QUERY.len(),
        parse,
        bind,
        plan
    );
    store.shutdown().await?;
    Ok(())
}
