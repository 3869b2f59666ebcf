//! `dcount`/`dcountif`: distinct counts kept as sets of 64-bit value hashes.
//!
//! Kusto's `dcount` is an estimate (HyperLogLog). Rampart counts the distinct 64-bit
//! hashes of the values instead, which is exact unless two distinct values of one group
//! collide: for n values the expected number of collisions is about n²/2⁶⁵ (below 10⁻⁷ for
//! a million), far inside Kusto's own error, and small data stays exact as `kql.md` asks.
//!
//! Why not DataFusion's `count(DISTINCT x)`: it is rewritten into a second grouping over
//! (key, value) that hashes and stores every value again, and was 6–9x DuckDB on the
//! hunting benchmark's `dcount` query. Here the whole aggregation holds one hash table of
//! (group, hash) pairs, a group's state is a list of `u64`, and the partial and final
//! phases exchange hashes, never values.

use super::udaf::{Factory, GroupsFactory, aggregate_call, internal, kept_by};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, UInt64Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, UInt64Type};
use datafusion::common::hash_utils::{HLL_RANDOM_STATE, create_hashes};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{Accumulator, EmitTo, Expr, GroupsAccumulator};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// `dcount(value)` as an aggregate expression (nulls are not counted).
pub(crate) fn dcount(value: Expr) -> Expr {
    let factory: Arc<Factory> = Arc::new(|| Box::new(DistinctHashes::default()));
    let groups: Arc<GroupsFactory> = Arc::new(|| Box::new(GroupDistinctHashes::default()));
    aggregate_call(
        "kql_dcount".to_string(),
        DataType::Int64,
        vec![("hashes".to_string(), hash_list_type())],
        vec![value],
        factory,
        Some(groups),
    )
}

fn hash_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::UInt64, false)))
}

/// The hashes of `values`' rows, `None` for a null row (or one `filter` rejects).
fn row_hashes<'f>(
    values: &dyn Array,
    filter: Option<&'f BooleanArray>,
) -> DFResult<impl Iterator<Item = Option<u64>> + 'f> {
    let mut hashes = vec![0; values.len()];
    create_hashes([values], &HLL_RANDOM_STATE, &mut hashes)?;
    let nulls = values.logical_nulls();
    let kept = kept_by(filter);
    Ok((0..hashes.len()).map(move |row| {
        let null = nulls.as_ref().is_some_and(|n| n.is_null(row));
        (kept(row) && !null).then(|| hashes[row])
    }))
}

/// Hashes a (group, value hash) pair: the value hash is already uniform, so mixing
/// in the group index is enough (SipHash here would cost more than the whole update).
#[derive(Default)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, group: u32) {
        self.0 ^= u64::from(group).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 ^= hash;
    }
}

type PairSet = HashSet<(u32, u64), BuildHasherDefault<PairHasher>>;

/// All groups' distinct hashes in one table, and each group's count of them.
#[derive(Default)]
struct GroupDistinctHashes {
    pairs: PairSet,
    counts: Vec<i64>,
}

fn group_index(group: usize) -> DFResult<u32> {
    u32::try_from(group).map_err(|_| internal("more than 2^32 groups in one dcount"))
}

impl GroupDistinctHashes {
    fn add(&mut self, group: usize, hash: u64) -> DFResult<()> {
        if self.pairs.insert((group_index(group)?, hash)) {
            self.counts[group] += 1;
        }
        Ok(())
    }

    /// Removes the groups `emit_to` takes, renumbering the rest; returns their counts
    /// and, with `lists`, their hashes group by group.
    fn take(&mut self, emit_to: EmitTo, lists: bool) -> (Vec<i64>, Vec<Vec<u64>>) {
        let counts = emit_to.take_needed(&mut self.counts);
        let taken = counts.len();
        let mut hashes: Vec<Vec<u64>> = if lists {
            counts
                .iter()
                .map(|&c| Vec::with_capacity(c as usize))
                .collect()
        } else {
            Vec::new()
        };
        let all = std::mem::take(&mut self.pairs);
        if self.counts.is_empty() {
            if lists {
                for (group, hash) in all {
                    hashes[group as usize].push(hash);
                }
            }
        } else {
            // Only when the input arrives sorted by the group keys; the kept groups
            // move down by the number emitted.
            let emitted = taken as u32;
            self.pairs.reserve(all.len());
            for (group, hash) in all {
                if group < emitted {
                    if lists {
                        hashes[group as usize].push(hash);
                    }
                } else {
                    self.pairs.insert((group - emitted, hash));
                }
            }
        }
        (counts, hashes)
    }
}

fn hash_lists(lists: Vec<Vec<u64>>) -> ArrayRef {
    let offsets = OffsetBuffer::from_lengths(lists.iter().map(Vec::len));
    let values: UInt64Array = lists.into_iter().flatten().collect();
    Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::UInt64, false)),
        offsets,
        Arc::new(values),
        None,
    ))
}

/// Every row of a state column's hash lists, with the row's index.
fn each_state_hash(
    states: &[ArrayRef],
    mut f: impl FnMut(usize, u64) -> DFResult<()>,
) -> DFResult<()> {
    let Some(lists) = states.first() else {
        return Ok(());
    };
    let lists = lists.as_list::<i32>();
    let hashes = lists.values().as_primitive::<UInt64Type>().values();
    let offsets = lists.value_offsets();
    for row in 0..lists.len() {
        if lists.is_null(row) {
            continue;
        }
        for &hash in &hashes[offsets[row] as usize..offsets[row + 1] as usize] {
            f(row, hash)?;
        }
    }
    Ok(())
}

impl GroupsAccumulator for GroupDistinctHashes {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DFResult<()> {
        self.counts.resize(total_num_groups, 0);
        let Some(values) = values.first() else {
            return Ok(());
        };
        for (&group, hash) in group_indices.iter().zip(row_hashes(values, opt_filter)?) {
            if let Some(hash) = hash {
                self.add(group, hash)?;
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DFResult<()> {
        self.counts.resize(total_num_groups, 0);
        each_state_hash(values, |row, hash| self.add(group_indices[row], hash))
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DFResult<ArrayRef> {
        let (counts, _) = self.take(emit_to, false);
        Ok(Arc::new(Int64Array::from(counts)))
    }

    fn state(&mut self, emit_to: EmitTo) -> DFResult<Vec<ArrayRef>> {
        let (_, hashes) = self.take(emit_to, true);
        Ok(vec![hash_lists(hashes)])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DFResult<Vec<ArrayRef>> {
        let Some(values) = values.first() else {
            return Err(internal("dcount without an argument"));
        };
        let lists: Vec<Vec<u64>> = row_hashes(values, opt_filter)?
            .map(|hash| hash.into_iter().collect())
            .collect();
        Ok(vec![hash_lists(lists)])
    }

    fn size(&self) -> usize {
        // hashbrown: a 1-byte control word per bucket beside each 16-byte entry.
        self.pairs.capacity() * (std::mem::size_of::<(u32, u64)>() + 1) + self.counts.capacity() * 8
    }
}

/// The same for an aggregate without groups (`summarize dcount(x)` with no `by`).
#[derive(Debug, Default)]
struct DistinctHashes {
    hashes: HashSet<u64, BuildHasherDefault<PairHasher>>,
}

impl Accumulator for DistinctHashes {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        let Some(values) = values.first() else {
            return Ok(());
        };
        self.hashes.extend(row_hashes(values, None)?.flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        each_state_hash(states, |_, hash| {
            self.hashes.insert(hash);
            Ok(())
        })
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.hashes.len() as i64)))
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        let list = hash_lists(vec![self.hashes.iter().copied().collect()]);
        Ok(vec![ScalarValue::List(Arc::new(
            list.as_list::<i32>().clone(),
        ))])
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.hashes.capacity() * 9
    }
}
