//! `rampart simulate`: writes a deterministic simulated fleet's telemetry (with optional
//! injected attacks and their ground-truth labels) and its software inventory to NDJSON or
//! Parquet files; with `--agents`, holds simulated agents on a server's command channel
//! instead ([`crate::command_fleet`]).

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use rampart_simulate::sinks::{LABELS_FILE, NdjsonSink, ParquetSink};
use rampart_simulate::{Fleet, FleetSpec, ScenarioSpec, Sink, generate, software, time};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One `<Table>.ndjson` of MDE streaming records per table
    Ndjson,
    /// `<Table>/part-NNNNN.parquet` per table, zstd
    Parquet,
}

#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Number of devices in the fleet (about 70% Windows, 20% Linux, 10% macOS)
    #[arg(long, default_value_t = 20)]
    pub devices: usize,
    /// Length of the simulated window in days (fractions allowed)
    #[arg(long, default_value_t = 1.0)]
    pub days: f64,
    /// Seed; the same seed and flags always produce identical output
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Window start, RFC 3339 [default: now minus --days, rounded down to the hour]
    #[arg(long)]
    pub start: Option<String>,
    /// Attack to inject: phishing, credential-theft, ransomware or ssh-miner, optionally
    /// @DEVICE (repeatable)
    #[arg(long = "scenario", value_name = "NAME[@DEVICE]")]
    pub scenarios: Vec<ScenarioSpec>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Parquet)]
    pub format: Format,
    /// Output directory (created if missing)
    #[arg(long, required_unless_present = "agents", conflicts_with = "agents")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub channel: crate::command_fleet::AgentsArgs,
}

/// Writes the fleet's files to `out`.
pub fn write_files(args: SimulateArgs, out: PathBuf) -> Result<()> {
    crate::allocator::no_transparent_huge_pages();
    if args.devices == 0 {
        bail!("--devices must be at least 1");
    }
    if !(args.days.is_finite() && args.days > 0.0) {
        bail!("--days must be a positive number of days");
    }
    let start_ns = match &args.start {
        Some(s) => {
            time::parse(s).with_context(|| format!("--start '{s}' is not an RFC 3339 time"))?
        }
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .context("the clock is before 1970")?;
            let now = i64::try_from(now.as_nanos()).context("the clock is out of range")?;
            let start = now - (args.days * time::DAY as f64) as i64;
            start.div_euclid(time::HOUR) * time::HOUR
        }
    };
    let spec = FleetSpec {
        devices: args.devices,
        days: args.days,
        seed: args.seed,
        start_ns,
        scenarios: args.scenarios.clone(),
    };
    // Refuse unplaceable scenarios before creating any output.
    rampart_simulate::check(&spec)?;
    let mut sink: Box<dyn Sink> = match args.format {
        Format::Ndjson => Box::new(
            NdjsonSink::create(&out).with_context(|| format!("creating {}", out.display()))?,
        ),
        Format::Parquet => Box::new(
            ParquetSink::create(&out).with_context(|| format!("creating {}", out.display()))?,
        ),
    };
    let started = Instant::now();
    let stats =
        generate(&spec, sink.as_mut()).with_context(|| format!("writing to {}", out.display()))?;
    // The devices' installed software: current state, one report each, as of the window's end.
    let fleet = Fleet::new(&spec);
    let end_ns = start_ns + (args.days * time::DAY as f64) as i64;
    let software = match args.format {
        Format::Ndjson => software::write_ndjson(&out, &fleet, end_ns),
        Format::Parquet => software::write_parquet(&out, &fleet),
    }
    .with_context(|| format!("writing the software inventory to {}", out.display()))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "simulated {} devices, {} day(s) from {} (seed {})",
        args.devices,
        args.days,
        time::iso_string(start_ns),
        args.seed
    );
    for (table, rows) in &stats.rows {
        println!("  {table:<28} {rows:>12}");
    }
    println!("  {:<28} {software:>12}", "DeviceTvmSoftwareInventory");
    let total = stats.total() + software as u64;
    println!("  {:<28} {total:>12}", "total");
    println!(
        "{total} rows in {secs:.2} s ({:.0} rows/s) to {}",
        total as f64 / secs.max(1e-9),
        out.display()
    );
    if stats.labels > 0 {
        println!(
            "{} scenario labels in {}",
            stats.labels,
            out.join(LABELS_FILE).display()
        );
    } else {
        println!(
            "no scenarios injected (labels file {} is empty)",
            out.join(LABELS_FILE).display()
        );
    }
    Ok(())
}
