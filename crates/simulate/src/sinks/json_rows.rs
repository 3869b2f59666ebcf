//! Rows as JSON objects, grouped per device and table: what a simulated agent posts in a batch.

use crate::{Cell, Label, Sink, Table, time};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;
use std::io;

/// Rows of one device, per table name.
pub type DeviceRows = BTreeMap<&'static str, Vec<Map<String, Value>>>;

#[derive(Debug, Default)]
pub struct JsonRows {
    devices: Vec<DeviceRows>,
    labels: Vec<Label>,
    rows: usize,
}

impl JsonRows {
    pub fn new() -> JsonRows {
        JsonRows::default()
    }

    /// Rows collected since the last take.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Takes the rows collected for `device`.
    pub fn take(&mut self, device: usize) -> DeviceRows {
        let rows = self
            .devices
            .get_mut(device)
            .map(std::mem::take)
            .unwrap_or_default();
        self.rows -= rows.values().map(Vec::len).sum::<usize>();
        rows
    }

    /// Takes every device's rows: `(device index, rows)` for devices that have any.
    pub fn take_all(&mut self) -> Vec<(usize, DeviceRows)> {
        self.rows = 0;
        self.devices
            .iter_mut()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(i, r)| (i, std::mem::take(r)))
            .collect()
    }

    pub fn take_labels(&mut self) -> Vec<Label> {
        std::mem::take(&mut self.labels)
    }
}

/// A cell as the JSON an agent sends: datetimes as ISO-8601 text.
pub fn cell_value(c: &Cell<'_>) -> Value {
    match *c {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(b),
        Cell::Int(x) => Value::from(x),
        Cell::Long(x) => Value::from(x),
        Cell::Real(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
        Cell::Str(s) => Value::String(s.to_owned()),
        Cell::Time(ns) => Value::String(time::iso_string(ns)),
    }
}

impl Sink for JsonRows {
    fn row(
        &mut self,
        device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> io::Result<()> {
        if self.devices.len() <= device {
            self.devices.resize_with(device + 1, BTreeMap::new);
        }
        let mut row = Map::new();
        for (i, c) in cells {
            if let (Some(col), false) = (table.columns.get(*i), matches!(c, Cell::Null)) {
                row.insert(col.name.to_owned(), cell_value(c));
            }
        }
        self.devices[device]
            .entry(table.name)
            .or_default()
            .push(row);
        self.rows += 1;
        Ok(())
    }

    fn label(&mut self, l: &Label) -> io::Result<()> {
        self.labels.push(l.clone());
        Ok(())
    }
}
