//! Rows as Arrow batches, per device and table: what a simulated agent posts in a binary batch
//! (`rampart_telemetry::wire`).

use super::table_slot;
use crate::{Cell, Label, Sink, Table};
use datafusion::arrow::array::RecordBatch;
use rampart_telemetry::TableBatchBuilder;
use std::io;

#[derive(Default)]
pub struct ArrowRows {
    /// Per device, one builder slot per table of `schema::ALL`.
    devices: Vec<Vec<Option<TableBatchBuilder>>>,
    labels: Vec<Label>,
    rows: usize,
}

impl ArrowRows {
    pub fn new() -> ArrowRows {
        ArrowRows::default()
    }

    /// Rows collected since the last take.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Takes the rows collected for `device`: one batch per table that has any.
    pub fn take(&mut self, device: usize) -> Vec<RecordBatch> {
        let Some(slots) = self.devices.get_mut(device) else {
            return Vec::new();
        };
        let batches: Vec<RecordBatch> = slots
            .iter_mut()
            .flatten()
            .filter(|b| !b.is_empty())
            .map(TableBatchBuilder::finish)
            .collect();
        self.rows -= batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        batches
    }

    /// Takes every device's rows: `(device index, batches)` for devices that have any.
    pub fn take_all(&mut self) -> Vec<(usize, Vec<RecordBatch>)> {
        (0..self.devices.len())
            .map(|d| (d, self.take(d)))
            .filter(|(_, b)| !b.is_empty())
            .collect()
    }

    pub fn take_labels(&mut self) -> Vec<Label> {
        std::mem::take(&mut self.labels)
    }
}

impl Sink for ArrowRows {
    fn row(
        &mut self,
        device: usize,
        table: &'static Table,
        cells: &[(usize, Cell<'_>)],
    ) -> io::Result<()> {
        if self.devices.len() <= device {
            self.devices.resize_with(device + 1, Vec::new);
        }
        let slots = &mut self.devices[device];
        let slot = table_slot(table);
        if slots.len() <= slot {
            slots.resize_with(slot + 1, || None);
        }
        let builder = slots[slot].get_or_insert_with(|| TableBatchBuilder::new(table));
        builder
            .push_cells(cells)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        self.rows += 1;
        Ok(())
    }

    fn label(&mut self, l: &Label) -> io::Result<()> {
        self.labels.push(l.clone());
        Ok(())
    }
}
