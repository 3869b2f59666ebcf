//! `ioc-bench`: the indicator matcher of docs/BENCHMARKS.md (issue 6's benchmark, matcher part).
//!
//! Builds an [`IndicatorIndex`] of `--indicators` generated indicators in the mix of a large
//! threat-intel feed (60% file hashes, 20% IP addresses and CIDR ranges, 15% domains, 5% URLs),
//! then measures, on one thread:
//! 1. the build time and the memory the index holds (resident set before and after), per
//!    indicator and per indicator beyond its value's own bytes;
//! 2. matching: `--events` process and network events (hashes, remote IP, remote URL), 1% of
//!    them hitting an indicator, through `match_files`/`match_networks` in batches of 1,024 rows
//!    as ingestion calls them, beside the baseline of
//!    the same loop that only hashes each event's values into a checksum;
//! 3. the same matching over a simulated fleet's network events (`--fleet-devices`, 12 hours,
//!    rampart-simulate, seed 42), cut per device into batches as agents send them: values
//!    repeat there as on real devices (a few processes make most connections), where the
//!    generated events of 2 never repeat one;
//! 4. the time from `apply` of one new indicator to its first match.

use clap::Parser;
use rampart_core::TenantId;
use rampart_core::indicator::{IndicatorAction, IndicatorType};
use rampart_ioc::table::Key;
use rampart_ioc::{
    Change, Device, Entry, FileObservation, IndicatorIndex, NetworkObservation, Scratch, Table,
};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Indicators in the index
    #[arg(long, default_value_t = 10_000_000)]
    indicators: u64,
    /// Events to match
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Simulated devices whose network events are matched too (0: none)
    #[arg(long, default_value_t = 200)]
    fleet_devices: usize,
}

/// The matched columns of one simulated network event.
#[derive(Default)]
struct FleetRow {
    sha256: Option<String>,
    sha1: Option<String>,
    md5: Option<String>,
    ip: Option<IpAddr>,
    url: Option<String>,
}

/// Collects a simulated fleet's network events into per-device batches: a device's batch is
/// sealed after 1,000 rows of any table, as the telemetry benchmark's agents batch them, and
/// keeps the network rows among them.
#[derive(Default)]
struct FleetBatches {
    pending: std::collections::HashMap<usize, (usize, Vec<FleetRow>)>,
    sealed: Vec<Vec<FleetRow>>,
}

impl rampart_simulate::Sink for FleetBatches {
    fn row(
        &mut self,
        device: usize,
        table: &'static rampart_core::schema::Table,
        cells: &[(usize, rampart_simulate::Cell<'_>)],
    ) -> std::io::Result<()> {
        let (rows, network) = self.pending.entry(device).or_default();
        *rows += 1;
        if table.name == "DeviceNetworkEvents" {
            let mut row = FleetRow::default();
            for (i, cell) in cells {
                let rampart_simulate::Cell::Str(v) = cell else {
                    continue;
                };
                match table.columns[*i].name {
                    "InitiatingProcessSHA256" => row.sha256 = Some((*v).to_owned()),
                    "InitiatingProcessSHA1" => row.sha1 = Some((*v).to_owned()),
                    "InitiatingProcessMD5" => row.md5 = Some((*v).to_owned()),
                    "RemoteIP" => row.ip = v.parse().ok(),
                    "RemoteUrl" => row.url = Some((*v).to_owned()),
                    _ => {}
                }
            }
            network.push(row);
        }
        if *rows >= 1_000
            && let Some((_, network)) = self.pending.remove(&device)
        {
            self.sealed.push(network);
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.sealed
            .extend(self.pending.drain().map(|(_, (_, network))| network));
        Ok(())
    }
}

/// A deterministic stream of pseudo-random numbers (SplitMix64).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hex_of(seed: u64, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes * 2);
    let mut i = 0;
    while s.len() < bytes * 2 {
        s.push_str(&format!("{:016x}", mix(seed ^ (i << 56))));
        i += 1;
    }
    s.truncate(bytes * 2);
    s
}

/// Indicator `n`: its type and value, in the feed mix.
fn value(n: u64) -> (IndicatorType, String) {
    match n % 100 {
        0..=29 => (IndicatorType::FileSha256, hex_of(n, 32)),
        30..=44 => (IndicatorType::FileSha1, hex_of(n, 20)),
        45..=59 => (IndicatorType::FileMd5, hex_of(n, 16)),
        60..=74 => (
            IndicatorType::IpAddress,
            Ipv4Addr::from(mix(n) as u32 | 0x0100_0000).to_string(),
        ),
        75..=79 => {
            let base = (mix(n) as u32) & 0xffff_ff00;
            (
                IndicatorType::IpAddress,
                format!("{}/24", Ipv4Addr::from(base)),
            )
        }
        80..=94 => (
            IndicatorType::DomainName,
            format!("d{:x}.example{}.com", mix(n), n % 7),
        ),
        _ => (
            IndicatorType::Url,
            format!("http://u{:x}.example.net/path/{}", mix(n), n % 1000),
        ),
    }
}

fn entry(n: u64, kind: IndicatorType) -> Entry {
    Entry {
        id: n + 1,
        kind,
        action: IndicatorAction::Block,
        severity: rampart_core::alert::Severity::High,
        generate_alert: true,
        expires_at: i64::MAX,
        scope: None,
    }
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// The bytes a value itself takes: hashes as bytes, addresses as their octets, names as text.
fn value_bytes(kind: IndicatorType, value: &str) -> u64 {
    match kind {
        IndicatorType::FileSha256 => 32,
        IndicatorType::FileSha1 | IndicatorType::CertificateThumbprint => 20,
        IndicatorType::FileMd5 => 16,
        IndicatorType::IpAddress => 5,
        _ => value.len() as u64,
    }
}

/// Rows matched per call, as in an ingested batch.
const MATCH_BATCH: usize = 1024;

/// Seeds of values no indicator has (indicator seeds are below 2^62).
const MISS: u64 = 1 << 62;

/// Event `n`: a process event (three hashes) or a network event (IP and URL), every 100th
/// built from an indicator so that it hits.
struct Event {
    sha256: String,
    sha1: String,
    md5: String,
    ip: IpAddr,
    url: String,
}

fn event(n: u64, indicators: u64) -> Event {
    let hit = n.is_multiple_of(100);
    let (kind, v) = if hit {
        value(mix(n) % indicators)
    } else {
        (IndicatorType::Url, String::new())
    };
    let pick = |k: IndicatorType, other: String| if hit && kind == k { v.clone() } else { other };
    Event {
        sha256: pick(IndicatorType::FileSha256, hex_of(MISS | n, 32)),
        sha1: pick(IndicatorType::FileSha1, hex_of(MISS | (n << 2) | 1, 20)),
        md5: pick(IndicatorType::FileMd5, hex_of(MISS | (n << 2) | 2, 16)),
        ip: if hit && kind == IndicatorType::IpAddress {
            v.split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            IpAddr::V4(Ipv4Addr::from(mix(MISS | (n << 2) | 3) as u32))
        },
        url: if hit && matches!(kind, IndicatorType::DomainName | IndicatorType::Url) {
            format!("{v}/x")
        } else {
            format!("https://www.site{}.org/index.html", n % 50_000)
        },
    }
}

/// Matches one batch's file and network observations as ingestion does; returns the file and
/// network hits.
fn match_batch(
    snapshot: &rampart_ioc::index::Snapshot,
    files: &[FileObservation<'_>],
    nets: &[NetworkObservation<'_>],
    devices: &[Device<'_>],
    now: i64,
    scratch: &mut Scratch,
) -> (u64, u64) {
    let mut hits = Vec::new();
    snapshot.match_files(files, devices, now, &mut hits, scratch);
    let file_hits = hits.len() as u64;
    hits.clear();
    snapshot.match_networks(nets, devices, now, &mut hits, scratch);
    (file_hits, hits.len() as u64)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tenant = TenantId::new_random();
    println!(
        "ioc-bench: {} indicators, {} events, {} cores",
        args.indicators,
        args.events,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. Build.
    let before = resident_bytes();
    let started = Instant::now();
    let mut table = Table::default();
    let mut values = 0u64;
    for n in 0..args.indicators {
        let (kind, v) = value(n);
        values += value_bytes(kind, &v);
        let key = Key::parse(kind, &v).map_err(anyhow::Error::msg)?;
        table.insert(key, entry(n, kind));
    }
    let built = started.elapsed();
    let held = resident_bytes().saturating_sub(before);
    let index = Arc::new(IndicatorIndex::new());
    index.install(tenant, table);
    let n = args.indicators.max(1) as f64;
    println!(
        "build: {:.1} s ({:.0} indicators/s); resident +{:.0} MiB = {:.1} bytes/indicator, {:.1} beyond the value ({:.1} bytes of value on average)",
        built.as_secs_f64(),
        n / built.as_secs_f64(),
        held as f64 / 1048576.0,
        held as f64 / n,
        (held as f64 - values as f64) / n,
        values as f64 / n,
    );

    // 2. Matching against the baseline, on pre-built events.
    let events: Vec<Event> = (0..args.events)
        .map(|i| event(i, args.indicators))
        .collect();
    let snapshot = index.snapshot(tenant);
    let device = Device::default();
    let now = 1_796_299_200;
    let started = Instant::now();
    let (mut file_hits, mut net_hits) = (0u64, 0u64);
    // As ingestion matches: a batch of rows at a time.
    let devices = vec![device; MATCH_BATCH];
    let mut scratch = Scratch::default();
    for chunk in events.chunks(MATCH_BATCH) {
        let files: Vec<FileObservation<'_>> = chunk
            .iter()
            .map(|e| FileObservation {
                sha256: Some(&e.sha256),
                sha1: Some(&e.sha1),
                md5: Some(&e.md5),
                cert_thumbprint: None,
            })
            .collect();
        let nets: Vec<NetworkObservation<'_>> = chunk
            .iter()
            .map(|e| NetworkObservation {
                ip: Some(e.ip),
                url: Some(&e.url),
            })
            .collect();
        let (files, nets) = match_batch(&snapshot, &files, &nets, &devices, now, &mut scratch);
        file_hits += files;
        net_hits += nets;
    }
    let matched = started.elapsed();
    let hits = format!("{file_hits} file and {net_hits} network hits");
    let hasher = std::collections::hash_map::RandomState::new();
    let started = Instant::now();
    let mut checksum = 0u64;
    for e in &events {
        let mut h = hasher.build_hasher();
        h.write(e.sha256.as_bytes());
        h.write(e.sha1.as_bytes());
        h.write(e.md5.as_bytes());
        h.write(e.url.as_bytes());
        checksum ^= h.finish();
    }
    let baseline = started.elapsed();
    let per_s = |d: std::time::Duration| args.events as f64 / d.as_secs_f64();
    println!(
        "match: {:.0} events/s on one thread ({:.0} ns/event, {hits}); baseline, hashing the same values: {:.0} events/s (checksum {checksum:x})",
        per_s(matched),
        matched.as_nanos() as f64 / args.events as f64,
        per_s(baseline),
    );

    // 3. A simulated fleet's network events, batch by batch.
    if args.fleet_devices > 0 {
        let spec = rampart_simulate::FleetSpec {
            devices: args.fleet_devices,
            days: 0.5,
            seed: 42,
            start_ns: 1_790_000_000 * 1_000_000_000,
            scenarios: Vec::new(),
        };
        let mut fleet = FleetBatches::default();
        rampart_simulate::generate(&spec, &mut fleet)?;
        let rows: usize = fleet.sealed.iter().map(Vec::len).sum();
        let started = Instant::now();
        let (mut file_hits, mut net_hits) = (0u64, 0u64);
        let mut scratch = Scratch::default();
        for batch in &fleet.sealed {
            let devices = vec![device; batch.len()];
            let files: Vec<FileObservation<'_>> = batch
                .iter()
                .map(|r| FileObservation {
                    sha256: r.sha256.as_deref(),
                    sha1: r.sha1.as_deref(),
                    md5: r.md5.as_deref(),
                    cert_thumbprint: None,
                })
                .collect();
            let nets: Vec<NetworkObservation<'_>> = batch
                .iter()
                .map(|r| NetworkObservation {
                    ip: r.ip,
                    url: r.url.as_deref(),
                })
                .collect();
            let (files, nets) = match_batch(&snapshot, &files, &nets, &devices, now, &mut scratch);
            file_hits += files;
            net_hits += nets;
        }
        let matched = started.elapsed();
        println!(
            "match, simulated fleet ({} devices, 12 hours): {:.0} network events/s on one thread ({:.0} ns/event; {rows} events in {} batches, {file_hits} file and {net_hits} network hits)",
            args.fleet_devices,
            rows as f64 / matched.as_secs_f64(),
            matched.as_nanos() as f64 / rows.max(1) as f64,
            fleet.sealed.len(),
        );
    }

    // 4. One new indicator: apply → first match.
    let fresh = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut doc = serde_json::json!({
        "id": (args.indicators + 10).to_string(), "indicatorValue": fresh, "indicatorType": "FileSha256",
        "action": "Block", "application": null, "source": null, "sourceType": "AadApp", "title": "t",
        "description": "d", "recommendedActions": null, "externalID": null, "createdBy": "bench",
        "createdBySource": null, "createdByDisplayName": null,
        "creationTimeDateTimeUtc": "2026-12-01T00:00:00Z", "expirationTime": null,
        "lastUpdateTime": "2026-12-01T00:00:00Z", "lastUpdatedBy": null, "severity": "High",
        "generateAlert": true, "educateUrl": null, "rbacGroupNames": [], "rbacGroupIds": []
    });
    doc["id"] = serde_json::Value::String((args.indicators + 10).to_string());
    let indicator = serde_json::from_value(doc)?;
    let started = Instant::now();
    index.apply(tenant, &[Change::Upsert(Box::new(indicator))]);
    let file = FileObservation {
        sha256: Some(fresh),
        ..Default::default()
    };
    let seen = index
        .snapshot(tenant)
        .match_file(&file, device, now)
        .is_some();
    println!(
        "one new indicator: applied and matched in {:.1} µs (matched: {seen})",
        started.elapsed().as_secs_f64() * 1e6
    );
    Ok(())
}
