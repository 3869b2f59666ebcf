//! `arg_max`/`arg_min` with `by` keys over an integer-like key (long, int, datetime,
//! timespan): every group's chosen row in one accumulator.
//!
//! DataFusion drives the general pick accumulator (`udaf::pick`) one group at a time: it
//! first copies every argument column of the batch into group order, command lines and
//! all, then turns each key into a scalar. Here the keys are compared as `i64` straight
//! from the batch, and a group's row is copied out once per batch, only if it won.
//! Ties keep the row seen first, as the general accumulator does; a group whose keys are
//! all null keeps its first row.

use super::udaf::{Pick, internal, kept_by};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, StructArray, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use std::sync::Arc;

/// Whether keys of this type are compared here (as `i64`).
pub(crate) fn supports(mode: Pick, key: &DataType) -> bool {
    mode != Pick::Any
        && matches!(
            key,
            DataType::Int32 | DataType::Int64 | DataType::Timestamp(TimeUnit::Nanosecond, _)
        )
}

pub(crate) struct GroupArgExtreme {
    max: bool,
    types: Vec<DataType>,
    /// Per group: whether it has a row, the row's key, and its values (`f0` is the key).
    has: Vec<bool>,
    keys: Vec<Option<i64>>,
    rows: Vec<Option<Vec<ScalarValue>>>,
    /// Per group, the row of the current batch that won it, if any (`usize::MAX`: none).
    pending: Vec<usize>,
    touched: Vec<usize>,
    bytes: usize,
}

impl GroupArgExtreme {
    pub(crate) fn new(mode: Pick, types: Vec<DataType>) -> Self {
        Self {
            max: mode == Pick::Max,
            types,
            has: Vec::new(),
            keys: Vec::new(),
            rows: Vec::new(),
            pending: Vec::new(),
            touched: Vec::new(),
            bytes: 0,
        }
    }

    fn resize(&mut self, groups: usize) {
        self.has.resize(groups, false);
        self.keys.resize(groups, None);
        self.rows.resize(groups, None);
        self.pending.resize(groups, usize::MAX);
    }

    fn better(&self, group: usize, key: Option<i64>) -> bool {
        if !self.has[group] {
            return true;
        }
        match (key, self.keys[group]) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(k), Some(current)) => {
                if self.max {
                    k > current
                } else {
                    k < current
                }
            }
        }
    }

    /// Offers the rows `kept` admits to their groups, then copies out each group's winner.
    fn offer(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        kept: impl Fn(usize) -> bool,
    ) -> DFResult<()> {
        let Some(key) = values.first() else {
            return Err(internal("arg_max without an argument"));
        };
        let key = cast(key, &DataType::Int64)?;
        let key: &Int64Array = key.as_primitive();
        for (row, &group) in group_indices.iter().enumerate() {
            if !kept(row) {
                continue;
            }
            let k = key.is_valid(row).then(|| key.value(row));
            if self.better(group, k) {
                self.has[group] = true;
                self.keys[group] = k;
                if self.pending[group] == usize::MAX {
                    self.touched.push(group);
                }
                self.pending[group] = row;
            }
        }
        for group in std::mem::take(&mut self.touched) {
            let row = std::mem::replace(&mut self.pending[group], usize::MAX);
            let picked = values
                .iter()
                .zip(&self.types)
                .map(|(a, ty)| {
                    let value = ScalarValue::try_from_array(a, row)?;
                    if value.data_type() == *ty {
                        Ok(value)
                    } else {
                        value.cast_to(ty)
                    }
                })
                .collect::<DFResult<Vec<_>>>()?;
            let added: usize = picked.iter().map(ScalarValue::size).sum();
            let removed: usize = self.rows[group]
                .as_ref()
                .map_or(0, |r| r.iter().map(ScalarValue::size).sum());
            self.bytes = (self.bytes + added).saturating_sub(removed);
            self.rows[group] = Some(picked);
        }
        Ok(())
    }

    /// The value columns `f0..` of the groups `emit_to` takes, and whether each has a row.
    fn take(&mut self, emit_to: EmitTo) -> DFResult<(Vec<ArrayRef>, BooleanArray)> {
        let has = emit_to.take_needed(&mut self.has);
        emit_to.take_needed(&mut self.keys);
        emit_to.take_needed(&mut self.pending);
        let rows = emit_to.take_needed(&mut self.rows);
        let mut columns = Vec::with_capacity(self.types.len());
        for (i, ty) in self.types.iter().enumerate() {
            let null = ScalarValue::try_from(ty)?;
            let column = if rows.is_empty() {
                new_null_array(ty, 0)
            } else {
                ScalarValue::iter_to_array(rows.iter().map(|row| {
                    row.as_ref()
                        .and_then(|r| r.get(i).cloned())
                        .unwrap_or_else(|| null.clone())
                }))?
            };
            columns.push(column);
        }
        for row in rows.iter().flatten() {
            self.bytes = self
                .bytes
                .saturating_sub(row.iter().map(ScalarValue::size).sum());
        }
        Ok((columns, BooleanArray::from(has)))
    }
}

impl GroupsAccumulator for GroupArgExtreme {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DFResult<()> {
        self.resize(total_num_groups);
        self.offer(values, group_indices, kept_by(opt_filter))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DFResult<()> {
        self.resize(total_num_groups);
        let Some((has, values)) = values.split_last() else {
            return Err(internal("arg_max: empty state"));
        };
        let has = has.as_boolean();
        self.offer(values, group_indices, kept_by(Some(has)))
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DFResult<ArrayRef> {
        let (columns, _) = self.take(emit_to)?;
        let fields: Fields = self
            .types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("f{i}"), t.clone(), true))
            .collect();
        Ok(Arc::new(StructArray::try_new(fields, columns, None)?))
    }

    fn state(&mut self, emit_to: EmitTo) -> DFResult<Vec<ArrayRef>> {
        let (mut columns, has) = self.take(emit_to)?;
        columns.push(Arc::new(has));
        Ok(columns)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DFResult<Vec<ArrayRef>> {
        // A row alone in its group is that group's row.
        let rows = values.first().map_or(0, |a| a.len());
        let kept = kept_by(opt_filter);
        let has: BooleanArray = (0..rows).map(|r| Some(kept(r))).collect();
        let mut state = values
            .iter()
            .zip(&self.types)
            .map(|(a, ty)| {
                if a.data_type() == ty {
                    Ok(Arc::clone(a))
                } else {
                    Ok(cast(a, ty)?)
                }
            })
            .collect::<DFResult<Vec<ArrayRef>>>()?;
        state.push(Arc::new(has));
        Ok(state)
    }

    fn size(&self) -> usize {
        self.has.capacity()
            + self.keys.capacity() * std::mem::size_of::<Option<i64>>()
            + self.rows.capacity() * std::mem::size_of::<Option<Vec<ScalarValue>>>()
            + self.pending.capacity() * 8
            + self.bytes
    }
}
