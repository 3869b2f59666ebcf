//! Measures generation speed: `cargo run -p rampart-simulate --example rate -- [DEVICES] [DAYS]`.
//! Writes to a temporary directory (NDJSON and Parquet) and prints rows per second for each sink.

use rampart_simulate::sinks::{Count, NdjsonSink, ParquetSink};
use rampart_simulate::{Cell, FleetSpec, Sink, Table, generate};
use rampart_telemetry::TableBatchBuilder;
use std::collections::BTreeMap;

/// Appends rows to `TableBatchBuilder`s and drops the batches: the Parquet sink minus encoding.
#[derive(Default)]
struct Builders(BTreeMap<&'static str, TableBatchBuilder>);

impl Sink for Builders {
    fn row(
        &mut self,
        _device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> std::io::Result<()> {
        let b = self
            .0
            .entry(table.name)
            .or_insert_with(|| TableBatchBuilder::new(table));
        b.push_cells(cells).map_err(std::io::Error::other)?;
        if b.len() >= 32_768 {
            b.finish();
        }
        Ok(())
    }
}
use std::time::Instant;

fn measure(name: &str, spec: &FleetSpec, sink: &mut dyn Sink) -> std::io::Result<()> {
    let t = Instant::now();
    let stats = generate(spec, sink)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{name:<8} {:>10} rows in {secs:>7.2} s = {:>10.0} rows/s",
        stats.total(),
        stats.total() as f64 / secs
    );
    if name == "count" {
        for (t, n) in &stats.rows {
            println!("    {t:<24} {n:>10}");
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let devices = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let days = args.next().and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let spec = FleetSpec {
        devices,
        days,
        seed: 1,
        start_ns: 1_784_505_600_000_000_000,
        scenarios: vec![
            "phishing".parse().map_err(std::io::Error::other)?,
            "ssh-miner".parse().map_err(std::io::Error::other)?,
        ],
    };
    let dir = std::env::temp_dir().join(format!("rampart-simulate-rate-{}", std::process::id()));
    measure("count", &spec, &mut Count::default())?;
    if std::env::var_os("COUNT_ONLY").is_some() {
        return Ok(());
    }
    measure("builders", &spec, &mut Builders::default())?;
    measure(
        "ndjson",
        &spec,
        &mut NdjsonSink::create(dir.join("ndjson"))?,
    )?;
    measure(
        "parquet",
        &spec,
        &mut ParquetSink::create(dir.join("parquet"))?,
    )?;
    let size = |d: &std::path::Path| -> u64 {
        walk(d)
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum()
    };
    println!(
        "ndjson {} MB, parquet {} MB",
        size(&dir.join("ndjson")) >> 20,
        size(&dir.join("parquet")) >> 20
    );
    std::fs::remove_dir_all(&dir)
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}
