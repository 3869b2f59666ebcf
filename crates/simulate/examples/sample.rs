//! Prints the first rows of each table for a small fleet as NDJSON records:
//! `cargo run -p rampart-simulate --example sample -- DIR`.

use rampart_simulate::sinks::NdjsonSink;
use rampart_simulate::{FleetSpec, generate};

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "simulate-sample".to_owned());
    let spec = FleetSpec {
        devices: 20,
        days: 1.0,
        seed: 1,
        start_ns: 1_784_505_600_000_000_000,
        scenarios: ["phishing", "credential-theft", "ransomware", "ssh-miner"]
            .iter()
            .map(|s| s.parse().map_err(std::io::Error::other))
            .collect::<Result<_, _>>()?,
    };
    let stats = generate(&spec, &mut NdjsonSink::create(&dir)?)?;
    println!("{stats:?}");
    Ok(())
}
