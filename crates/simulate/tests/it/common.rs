//! Shared helpers: fixed specs and sinks that keep what they see.

use rampart_simulate::sinks::cell_value;
use rampart_simulate::{Cell, FleetSpec, Label, ScenarioSpec, Sink, Table};
use serde_json::{Map, Value};
use std::io;

/// Monday 2026-07-20T00:00:00Z: a fixed window start so tests never depend on the clock.
pub const START: i64 = 1_784_505_600_000_000_000;
pub const HOUR: i64 = 3_600_000_000_000;
pub const DAY: i64 = 24 * HOUR;

pub fn spec(devices: usize, days: f64, seed: u64, scenarios: &[&str]) -> FleetSpec {
    FleetSpec {
        devices,
        days,
        seed,
        start_ns: START,
        scenarios: scenarios
            .iter()
            .map(|s| s.parse::<ScenarioSpec>().expect("valid scenario"))
            .collect(),
    }
}

/// One row as the tests see it.
#[derive(Clone, Debug)]
pub struct Row {
    pub device: usize,
    pub table: &'static str,
    pub cols: Map<String, Value>,
}

impl Row {
    pub fn str(&self, col: &str) -> &str {
        self.cols.get(col).and_then(Value::as_str).unwrap_or("")
    }

    pub fn int(&self, col: &str) -> i64 {
        self.cols
            .get(col)
            .and_then(Value::as_i64)
            .unwrap_or(i64::MIN)
    }

    /// The Timestamp in nanoseconds.
    pub fn ts(&self) -> i64 {
        rampart_telemetry::rows::parse_datetime(self.str("Timestamp"))
            .expect("every row has a Timestamp")
    }

    /// The row's key, which labels point at.
    pub fn key(&self) -> (String, &'static str, i64, i64) {
        (
            self.str("DeviceId").to_owned(),
            self.table,
            self.int("ReportId"),
            self.ts(),
        )
    }
}

/// Keeps every row (as JSON) and label.
#[derive(Default)]
pub struct Keep {
    pub rows: Vec<Row>,
    pub labels: Vec<Label>,
}

impl Sink for Keep {
    fn row(
        &mut self,
        device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> io::Result<()> {
        let mut cols = Map::new();
        for (i, c) in cells {
            let name = table.columns[*i].name.to_owned();
            assert!(
                cols.insert(name.clone(), cell_value(c)).is_none(),
                "{}.{name} written twice",
                table.name
            );
        }
        self.rows.push(Row {
            device,
            table: table.name,
            cols,
        });
        Ok(())
    }

    fn label(&mut self, l: &Label) -> io::Result<()> {
        self.labels.push(l.clone());
        Ok(())
    }
}

impl Keep {
    pub fn table<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a Row> + 'a {
        self.rows.iter().filter(move |r| r.table == table)
    }

    /// Rows labelled with `scenario`/`step`, found by their key, in label order.
    pub fn labelled(&self, scenario: &str, step: &str) -> Vec<&Row> {
        let wanted: Vec<_> = self
            .labels
            .iter()
            .filter(|l| l.scenario == scenario && l.step == step)
            .collect();
        let devices: std::collections::HashSet<&str> =
            wanted.iter().map(|l| l.device_id.as_str()).collect();
        let index: std::collections::HashMap<_, &Row> = self
            .rows
            .iter()
            .filter(|r| devices.contains(r.str("DeviceId")))
            .map(|r| (r.key(), r))
            .collect();
        wanted
            .iter()
            .map(|l| {
                let key = (l.device_id.clone(), l.table, l.report_id, l.timestamp_ns);
                *index
                    .get(&key)
                    .unwrap_or_else(|| panic!("no row for label {l:?}"))
            })
            .collect()
    }
}

pub fn generate(spec: &FleetSpec) -> Keep {
    let mut keep = Keep::default();
    let stats = rampart_simulate::generate(spec, &mut keep).expect("generation succeeds");
    assert_eq!(stats.total(), keep.rows.len() as u64);
    assert_eq!(stats.labels, keep.labels.len() as u64);
    keep
}
