//! A sink that only counts, for measuring the generator itself.

use crate::{Cell, Label, Sink, Table};
use std::collections::BTreeMap;
use std::io;

#[derive(Debug, Default, Clone)]
pub struct Count {
    pub rows: BTreeMap<&'static str, u64>,
    pub labels: u64,
}

impl Count {
    pub fn total(&self) -> u64 {
        self.rows.values().sum()
    }
}

impl Sink for Count {
    fn row(
        &mut self,
        _device: usize,
        table: &'static Table,
        _cells: &[(usize, Cell<'_>)],
    ) -> io::Result<()> {
        *self.rows.entry(table.name).or_default() += 1;
        Ok(())
    }

    fn label(&mut self, _l: &Label) -> io::Result<()> {
        self.labels += 1;
        Ok(())
    }
}
