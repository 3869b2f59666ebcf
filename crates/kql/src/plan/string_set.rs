//! `make_set` of a string column with `by` keys: every group's set in one accumulator.
//!
//! The general `make_set` (`udaf::collect`) converts each row into a scalar and a JSON
//! value before looking it up, and DataFusion drives it through one accumulator per
//! group; on the hunting benchmark's `make_set` query that was 3.7–4.8x DuckDB. Strings
//! are the common case (file names, accounts, addresses), so they get this path: rows
//! are read straight from the Arrow array and kept once each, in first-seen order. The
//! state is the same JSON array text as the general accumulator's.

use super::json::{Json, write_string};
use super::udaf::{internal, kept_by};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use indexmap::IndexSet;
use std::sync::Arc;

type StringSet = IndexSet<Box<str>, foldhash::fast::FixedState>;

/// What one string costs beyond its bytes: its box, the index's entry and hash slot.
const ENTRY_BYTES: usize = 40;

/// Per group, its distinct strings (at most `max`).
pub(crate) struct GroupStringSets {
    max: usize,
    sets: Vec<StringSet>,
    /// Bytes held by the strings and their entries, for DataFusion's memory accounting.
    bytes: usize,
}

impl GroupStringSets {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            sets: Vec::new(),
            bytes: 0,
        }
    }

    fn add(&mut self, group: usize, value: &str) {
        let set = &mut self.sets[group];
        if set.len() < self.max && !set.contains(value) {
            self.bytes += value.len() + ENTRY_BYTES;
            set.insert(value.into());
        }
    }

    /// The JSON array text of each group `emit_to` takes.
    fn take(&mut self, emit_to: EmitTo) -> ArrayRef {
        let taken = emit_to.take_needed(&mut self.sets);
        let mut out = String::new();
        let texts: StringArray = taken
            .iter()
            .map(|set| {
                out.clear();
                out.push('[');
                for (i, item) in set.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.bytes = self.bytes.saturating_sub(item.len() + ENTRY_BYTES);
                    write_string(item, &mut out);
                }
                out.push(']');
                Some(out.clone())
            })
            .collect();
        Arc::new(texts)
    }
}

/// Each row of a string array (any of Arrow's three layouts), `None` for null rows and
/// rows `filter` rejects.
fn each_string(
    values: &dyn Array,
    filter: Option<&BooleanArray>,
    mut f: impl FnMut(usize, &str),
) -> DFResult<()> {
    let kept = kept_by(filter);
    let mut visit = |row: usize, value: Option<&str>| {
        if let Some(value) = value
            && kept(row)
        {
            f(row, value);
        }
    };
    match values.data_type() {
        DataType::Utf8 => values
            .as_string::<i32>()
            .iter()
            .enumerate()
            .for_each(|(r, v)| visit(r, v)),
        DataType::LargeUtf8 => values
            .as_string::<i64>()
            .iter()
            .enumerate()
            .for_each(|(r, v)| visit(r, v)),
        DataType::Utf8View => values
            .as_string_view()
            .iter()
            .enumerate()
            .for_each(|(r, v)| visit(r, v)),
        other => return Err(internal(&format!("make_set of strings over {other}"))),
    }
    Ok(())
}

impl GroupsAccumulator for GroupStringSets {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DFResult<()> {
        self.sets.resize_with(total_num_groups, StringSet::default);
        let Some(values) = values.first() else {
            return Ok(());
        };
        each_string(values, opt_filter, |row, value| {
            self.add(group_indices[row], value)
        })
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DFResult<()> {
        self.sets.resize_with(total_num_groups, StringSet::default);
        let Some(states) = values.first() else {
            return Ok(());
        };
        let mut items = Vec::new();
        each_string(states, None, |row, text| {
            if let Json::Array(state) = Json::parse_lenient(text) {
                items.push((group_indices[row], state));
            }
        })?;
        for (group, state) in items {
            for item in state {
                if let Json::Str(value) = item {
                    self.add(group, &value);
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DFResult<ArrayRef> {
        Ok(self.take(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> DFResult<Vec<ArrayRef>> {
        Ok(vec![self.take(emit_to)])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DFResult<Vec<ArrayRef>> {
        let Some(values) = values.first() else {
            return Err(internal("make_set without an argument"));
        };
        let mut texts = vec![None; values.len()];
        each_string(values, opt_filter, |row, value| {
            let mut text = String::with_capacity(value.len() + 4);
            text.push('[');
            write_string(value, &mut text);
            text.push(']');
            texts[row] = Some(text);
        })?;
        let texts: StringArray = texts
            .into_iter()
            .map(|t| Some(t.unwrap_or_else(|| "[]".to_string())))
            .collect();
        Ok(vec![Arc::new(texts)])
    }

    fn size(&self) -> usize {
        self.sets.capacity() * std::mem::size_of::<StringSet>() + self.bytes
    }
}
