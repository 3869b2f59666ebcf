//! Rampart's fleet simulator: realistic, deterministic endpoint telemetry for a whole
//! organisation, in the advanced-hunting tables (`DeviceProcessEvents`, `DeviceNetworkEvents`,
//! `DeviceFileEvents`, `DeviceRegistryEvents`, `DeviceLogonEvents`, `DeviceImageLoadEvents`,
//! `DeviceEvents`, `DeviceInfo`, `DeviceNetworkInfo`).
//!
//! It exists to exercise everything downstream of the agent — ingestion, storage, KQL hunting,
//! detections and their scoring — with data that looks like a real fleet: Windows, Linux and macOS
//! devices on per-site address plans, users who sign in in the morning and open Outlook and Word,
//! services that phone home, process trees with real command lines, hashes stable per file, and
//! injected attacks (phishing, credential theft, ransomware, SSH-to-miner) whose rows come with
//! ground-truth [`Label`]s.
//!
//! The same [`FleetSpec`] always produces byte-identical output: all randomness comes from the
//! crate's own PRNG ([`rng`]) seeded by the spec, never from a dependency or the clock.
//!
//! Map of the crate:
//! - [`spec`]: what to simulate; [`fleet`]: the organisation derived from it.
//! - `catalog`: binaries, endpoints and word lists; [`rng`], [`hex`], [`time`]: primitives.
//! - `engine`: the time-ordered event queue, processes, sessions, activities, snapshots.
//! - `scenario`: the attack stories.
//! - `row`: rows as typed cells by column index, without per-row allocation.
//! - [`sinks`]: NDJSON (MDE streaming records), Parquet, JSON rows for agents, counting.
//! - [`live`]: the same fleet in real time, for a simulated agent population.
//! - [`software`]: each device's installed software (`DeviceTvmSoftwareInventory`), by OS,
//!   distribution and role.

mod catalog;
mod engine;
pub mod fleet;
pub mod hex;
pub mod live;
pub mod rng;
mod row;
mod scenario;
pub mod sinks;
pub mod software;
pub mod spec;
pub mod time;

pub use fleet::{Device, Fleet, Os, Role};
pub use rampart_core::schema::Table;
pub use rampart_telemetry::Cell;
pub use spec::{FleetSpec, ScenarioError, ScenarioKind, ScenarioSpec};

use std::collections::BTreeMap;
use std::io;

/// Ground truth for one scenario row: which story and step wrote it, and the row's key
/// (`DeviceId`, `Timestamp`, `ReportId`) in `table`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub scenario: String,
    pub step: String,
    pub device_id: String,
    pub table: &'static str,
    pub report_id: i64,
    pub timestamp_ns: i64,
}

impl Label {
    /// The label as one JSON object (a line of `labels.jsonl`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.scenario,
            "step": self.step,
            "deviceId": self.device_id,
            "table": self.table,
            "reportId": self.report_id,
            "timestamp": time::iso_string(self.timestamp_ns),
        })
    }
}

/// Where generated rows go. `device` indexes [`Fleet::devices`]; `cells` are `(column index,
/// value)` pairs of `table`, in no particular order, nulls omitted.
pub trait Sink {
    fn row(
        &mut self,
        device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> io::Result<()>;

    fn label(&mut self, _l: &Label) -> io::Result<()> {
        Ok(())
    }

    /// Flushes everything; called once after the last row.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Rows per table name.
    pub rows: BTreeMap<&'static str, u64>,
    pub labels: u64,
}

impl Stats {
    pub fn total(&self) -> u64 {
        self.rows.values().sum()
    }

    pub(crate) fn from_counts(counts: &[u64; 9], labels: u64) -> Stats {
        let rows = row::T::ALL
            .iter()
            .zip(counts)
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| (t.table().name, *n))
            .collect();
        Stats { rows, labels }
    }
}

/// Checks that every scenario of `spec` can be placed (known, suitable devices) without
/// generating anything, so a command line can refuse before creating output.
pub fn check(spec: &FleetSpec) -> Result<(), ScenarioError> {
    let fleet = Fleet::new(spec);
    for (i, s) in spec.scenarios.iter().enumerate() {
        scenario::place(&fleet, s, i, spec.seed)?;
    }
    Ok(())
}

/// Generates every row of `[start, start + days)` for every device of the fleet, with the spec's
/// scenarios injected, and calls [`Sink::finish`]. Fails before writing anything when a scenario
/// names an unknown or unsuitable device.
pub fn generate(spec: &FleetSpec, sink: &mut dyn Sink) -> io::Result<Stats> {
    let mut engine = engine::Engine::new(spec);
    let middle = engine.middle;
    for (i, s) in spec.scenarios.iter().enumerate() {
        // Several scenarios without a time are staggered ten minutes apart.
        let default_at = middle + i as i64 * 10 * time::MINUTE;
        engine
            .inject(s, i, default_at)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    }
    engine.run_until(spec.end_ns(), sink)?;
    sink.finish()?;
    Ok(Stats::from_counts(&engine.counts, engine.labels))
}
