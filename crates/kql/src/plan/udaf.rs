//! Kusto aggregates DataFusion has no equivalent for, as aggregate UDFs:
//! - [`pick`]: `arg_max`/`arg_min`/`take_any`, which return several columns of *one*
//!   row (a struct; DataFusion's `first_value` per column could mix rows on ties);
//! - [`collect`]: `make_set`/`make_list`/`make_list_with_nulls`/`make_bag`, producing
//!   dynamic JSON;
//! - [`percentiles`]: exact nearest-rank percentiles (Kusto estimates; on small data
//!   its estimate is the exact value, so exact is the compatible choice).
//!
//! Each is one generic [`KqlAggregate`] holding an accumulator factory; as for scalar
//! UDFs, the name identifies everything the factory captured. Where hunting queries
//! lean on one with `by` keys, it also has a groups accumulator that keeps every group
//! at once (`arg_extreme`, `string_set`, and `dcount` for the distinct count).

use crate::ast::ScalarType;
use crate::plan::json::Json;
use crate::plan::types::{arrow_type, scalar_json};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::scalar::ScalarStructBuilder;
use datafusion::common::{DataFusionError, Result as DFResult, ScalarValue};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, GroupsAccumulator, Signature, Volatility,
};
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub(crate) type Factory = dyn Fn() -> Box<dyn Accumulator> + Send + Sync;

/// Makes the accumulator of all groups at once, for aggregates where DataFusion's
/// per-group adapter (one [`Accumulator`] and one call per group and batch) dominates.
pub(crate) type GroupsFactory = dyn Fn() -> Box<dyn GroupsAccumulator> + Send + Sync;

pub(crate) struct KqlAggregate {
    name: String,
    signature: Signature,
    ret: DataType,
    /// Intermediate state columns (names are prefixed per call site by DataFusion's name).
    state: Vec<(String, DataType)>,
    factory: Arc<Factory>,
    /// Must keep the same state columns as `factory`'s accumulators.
    groups: Option<Arc<GroupsFactory>>,
}

impl fmt::Debug for KqlAggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KqlAggregate({})", self.name)
    }
}

impl PartialEq for KqlAggregate {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.ret == other.ret
    }
}

impl Eq for KqlAggregate {}

impl Hash for KqlAggregate {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.ret.hash(state);
    }
}

impl AggregateUDFImpl for KqlAggregate {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(self.ret.clone())
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> DFResult<Box<dyn Accumulator>> {
        Ok((self.factory)())
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        self.groups.is_some()
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> DFResult<Box<dyn GroupsAccumulator>> {
        match &self.groups {
            Some(groups) => Ok(groups()),
            None => Err(internal("no groups accumulator")),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DFResult<Vec<FieldRef>> {
        Ok(self
            .state
            .iter()
            .map(|(name, ty)| {
                Arc::new(Field::new(
                    format_state_name(args.name, name),
                    ty.clone(),
                    true,
                ))
            })
            .collect())
    }
}

pub(crate) fn aggregate_call(
    name: String,
    ret: DataType,
    state: Vec<(String, DataType)>,
    args: Vec<Expr>,
    factory: Arc<Factory>,
    groups: Option<Arc<GroupsFactory>>,
) -> Expr {
    let udaf = AggregateUDF::new_from_impl(KqlAggregate {
        name,
        signature: Signature::variadic_any(Volatility::Immutable),
        ret,
        state,
        factory,
        groups,
    });
    Expr::AggregateFunction(AggregateFunction::new_udf(
        Arc::new(udaf),
        args,
        false,
        None,
        vec![],
        None,
    ))
}

/// Whether a groups accumulator's row counts: DataFusion's filter (`FILTER`, or a state's
/// "has" column) admits it, or there is none.
pub(crate) fn kept_by(filter: Option<&BooleanArray>) -> impl Fn(usize) -> bool + '_ {
    move |row| filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

pub(crate) fn internal(message: &str) -> DataFusionError {
    DataFusionError::Internal(message.to_string())
}

// ---- pick: arg_max, arg_min, take_any ---------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    Max,
    Min,
    Any,
}

fn struct_type(types: &[DataType]) -> DataType {
    DataType::Struct(Fields::from(
        types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("f{i}"), t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// `arg_max(e, c...)` / `arg_min` / `take_any(c...)`: a struct `f0..` of the chosen row's
/// arguments (for `arg_*`, `f0` is `e`).
pub(crate) fn pick(mode: Pick, args: Vec<Expr>, types: Vec<DataType>) -> Expr {
    let ret = struct_type(&types);
    let mut state: Vec<(String, DataType)> = types
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("f{i}"), t.clone()))
        .collect();
    state.push(("has".to_string(), DataType::Boolean));
    let name = format!("kql_pick_{mode:?}_{}", types.len());
    let groups = types
        .first()
        .is_some_and(|key| super::arg_extreme::supports(mode, key))
        .then(|| {
            let types = types.clone();
            let groups: Arc<GroupsFactory> = Arc::new(move || {
                Box::new(super::arg_extreme::GroupArgExtreme::new(
                    mode,
                    types.clone(),
                ))
            });
            groups
        });
    let factory_types = types.clone();
    let factory: Arc<Factory> = Arc::new(move || {
        Box::new(PickAccumulator {
            mode,
            types: factory_types.clone(),
            row: None,
        })
    });
    aggregate_call(name, ret, state, args, factory, groups)
}

#[derive(Debug)]
struct PickAccumulator {
    mode: Pick,
    types: Vec<DataType>,
    row: Option<Vec<ScalarValue>>,
}

/// Single-column `take_any` prefers a value that is neither null nor empty.
fn is_blank(value: &ScalarValue) -> bool {
    value.is_null()
        || matches!(value, ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) if s.is_empty())
}

impl PickAccumulator {
    /// Whether a row whose key is `candidate` replaces the current one.
    fn better(&self, candidate: &ScalarValue) -> bool {
        let Some(current) = &self.row else {
            return true;
        };
        let Some(current_key) = current.first() else {
            return false;
        };
        match self.mode {
            Pick::Any => self.types.len() == 1 && is_blank(current_key) && !is_blank(candidate),
            Pick::Max | Pick::Min => {
                if candidate.is_null() {
                    return false;
                }
                if current_key.is_null() {
                    return true;
                }
                let wanted = if self.mode == Pick::Max {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
                candidate.partial_cmp(current_key) == Some(wanted)
            }
        }
    }

    fn offer(&mut self, arrays: &[ArrayRef], row: usize) -> DFResult<()> {
        let key = match arrays.first() {
            Some(a) => ScalarValue::try_from_array(a, row)?,
            None => return Ok(()),
        };
        if self.better(&key) {
            let mut values = Vec::with_capacity(arrays.len());
            values.push(key);
            for array in &arrays[1..] {
                values.push(ScalarValue::try_from_array(array, row)?);
            }
            self.row = Some(values);
        }
        Ok(())
    }

    fn current(&self) -> DFResult<Vec<ScalarValue>> {
        match &self.row {
            Some(row) => Ok(row.clone()),
            None => self
                .types
                .iter()
                .map(ScalarValue::try_from)
                .collect::<DFResult<Vec<_>>>(),
        }
    }
}

impl Accumulator for PickAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        let rows = values.first().map_or(0, |a| a.len());
        for row in 0..rows {
            self.offer(values, row)?;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        let mut builder = ScalarStructBuilder::new();
        for (i, (value, ty)) in self.current()?.into_iter().zip(&self.types).enumerate() {
            builder = builder.with_scalar(Field::new(format!("f{i}"), ty.clone(), true), value);
        }
        builder.build()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .row
                .as_ref()
                .map_or(0, |r| r.iter().map(ScalarValue::size).sum())
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        let mut state = self.current()?;
        state.push(ScalarValue::Boolean(Some(self.row.is_some())));
        Ok(state)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let Some((has, values)) = states.split_last() else {
            return Err(internal("pick: empty state"));
        };
        let has: &BooleanArray = has.as_boolean();
        for row in 0..has.len() {
            if has.is_valid(row) && has.value(row) {
                self.offer(values, row)?;
            }
        }
        Ok(())
    }
}

// ---- collect: make_set, make_list, make_bag ------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Collect {
    Set,
    List,
    ListWithNulls,
    Bag,
}

/// `make_set(x [, max])` and friends over a value of KQL type `ty`: dynamic JSON text.
pub(crate) fn collect(mode: Collect, ty: ScalarType, max: usize, value: Expr) -> Expr {
    let name = format!("kql_collect_{mode:?}_{ty}_{max}");
    let factory: Arc<Factory> = Arc::new(move || {
        Box::new(CollectAccumulator {
            mode,
            ty,
            max,
            items: Vec::new(),
            seen: HashSet::new(),
            bytes: 0,
        })
    });
    let groups = (mode == Collect::Set && ty == ScalarType::String).then(|| {
        let groups: Arc<GroupsFactory> =
            Arc::new(move || Box::new(super::string_set::GroupStringSets::new(max)));
        groups
    });
    aggregate_call(
        name,
        DataType::Utf8,
        vec![("items".to_string(), DataType::Utf8)],
        vec![value],
        factory,
        groups,
    )
}

#[derive(Debug)]
struct CollectAccumulator {
    mode: Collect,
    ty: ScalarType,
    max: usize,
    /// Array items, or `[key, value]` pairs for bags.
    items: Vec<Json>,
    /// Texts of set items / bag keys already present.
    seen: HashSet<String>,
    bytes: usize,
}

impl CollectAccumulator {
    fn add(&mut self, value: Json) {
        match self.mode {
            Collect::Set => match value {
                Json::Array(items) => {
                    for item in items {
                        self.add_distinct(item);
                    }
                }
                other => self.add_distinct(other),
            },
            Collect::List => {
                if !value.is_null() && self.items.len() < self.max {
                    self.push(value);
                }
            }
            Collect::ListWithNulls => {
                if self.items.len() < self.max {
                    self.push(value);
                }
            }
            Collect::Bag => {
                if let Json::Object(entries) = value {
                    for (key, v) in entries {
                        if self.items.len() >= self.max {
                            break;
                        }
                        if self.seen.insert(key.clone()) {
                            self.push(Json::Array(vec![Json::Str(key), v]));
                        }
                    }
                }
            }
        }
    }

    fn add_distinct(&mut self, value: Json) {
        if value.is_null() || self.items.len() >= self.max {
            return;
        }
        if self.seen.insert(value.to_text()) {
            self.push(value);
        }
    }

    fn push(&mut self, value: Json) {
        self.bytes += value.to_text().len() + 16;
        self.items.push(value);
    }

    fn result(&self) -> Json {
        if self.mode == Collect::Bag {
            Json::Object(
                self.items
                    .iter()
                    .filter_map(|pair| match pair {
                        Json::Array(kv) => match kv.as_slice() {
                            [Json::Str(k), v] => Some((k.clone(), v.clone())),
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect(),
            )
        } else {
            Json::Array(self.items.clone())
        }
    }
}

impl Accumulator for CollectAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        let Some(array) = values.first() else {
            return Ok(());
        };
        for row in 0..array.len() {
            let value = ScalarValue::try_from_array(array, row)?;
            self.add(scalar_json(&value, self.ty));
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        Ok(ScalarValue::Utf8(Some(self.result().to_text())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.bytes * 2
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Utf8(Some(
            Json::Array(self.items.clone()).to_text(),
        ))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let Some(array) = states.first() else {
            return Ok(());
        };
        let texts = cast(array, &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        for row in 0..texts.len() {
            if texts.is_null(row) {
                continue;
            }
            if let Json::Array(items) = Json::parse_lenient(texts.value(row)) {
                for item in items {
                    match self.mode {
                        // State items are already flattened set members or bag pairs.
                        Collect::Set => self.add_distinct(item),
                        Collect::Bag => {
                            if let Json::Array(kv) = &item
                                && let [Json::Str(k), _] = kv.as_slice()
                                && self.items.len() < self.max
                                && self.seen.insert(k.clone())
                            {
                                self.push(item);
                            }
                        }
                        Collect::List => {
                            if !item.is_null() && self.items.len() < self.max {
                                self.push(item);
                            }
                        }
                        Collect::ListWithNulls => {
                            if self.items.len() < self.max {
                                self.push(item);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

// ---- percentiles ---------------------------------------------------------------------

/// `percentile(x, p)` / `percentiles(x, p...)`: a struct `f0..` of values of `x`'s type;
/// with `as_array`, a dynamic array instead (`percentiles_array`).
pub(crate) fn percentiles(ty: ScalarType, points: Vec<f64>, as_array: bool, value: Expr) -> Expr {
    let value_type = arrow_type(ty);
    let ret = if as_array {
        DataType::Utf8
    } else {
        struct_type(&vec![value_type.clone(); points.len()])
    };
    let integral = !matches!(ty, ScalarType::Real | ScalarType::Decimal);
    let storage = if integral {
        DataType::Int64
    } else {
        DataType::Float64
    };
    let name = format!(
        "kql_percentiles_{ty}_{as_array}_{}",
        points
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("_")
    );
    let factory: Arc<Factory> = Arc::new(move || {
        Box::new(PercentileAccumulator {
            ty,
            points: points.clone(),
            as_array,
            integral,
            value_type: value_type.clone(),
            longs: Vec::new(),
            reals: Vec::new(),
        })
    });
    aggregate_call(
        name,
        ret,
        vec![(
            "values".to_string(),
            DataType::List(Arc::new(Field::new_list_field(storage, true))),
        )],
        vec![value],
        factory,
        None,
    )
}

#[derive(Debug)]
struct PercentileAccumulator {
    ty: ScalarType,
    points: Vec<f64>,
    as_array: bool,
    integral: bool,
    value_type: DataType,
    longs: Vec<i64>,
    reals: Vec<f64>,
}

/// Nearest rank: the smallest value with at least `p`% of the values at or below it.
fn rank(count: usize, p: f64) -> usize {
    let r = (p / 100.0 * count as f64).ceil() as usize;
    r.clamp(1, count) - 1
}

impl PercentileAccumulator {
    fn absorb(&mut self, array: &ArrayRef) -> DFResult<()> {
        if self.integral {
            let longs = match array.data_type() {
                DataType::Timestamp(..) | DataType::Int32 | DataType::Int64 | DataType::Boolean => {
                    cast(array, &DataType::Int64)?
                }
                _ => cast(array, &DataType::Int64)?,
            };
            let longs = longs.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            self.longs.extend(longs.iter().flatten());
        } else {
            let reals = cast(array, &DataType::Float64)?;
            let reals = reals.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            self.reals
                .extend(reals.iter().flatten().filter(|v| !v.is_nan()));
        }
        Ok(())
    }

    fn values(&mut self) -> DFResult<Vec<ScalarValue>> {
        let mut out = Vec::with_capacity(self.points.len());
        if self.integral {
            self.longs.sort_unstable();
            for p in &self.points {
                let value = if self.longs.is_empty() {
                    None
                } else {
                    Some(self.longs[rank(self.longs.len(), *p)])
                };
                out.push(ScalarValue::Int64(value).cast_to(&self.value_type)?);
            }
        } else {
            self.reals
                .sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
            for p in &self.points {
                let value = if self.reals.is_empty() {
                    None
                } else {
                    Some(self.reals[rank(self.reals.len(), *p)])
                };
                out.push(ScalarValue::Float64(value));
            }
        }
        Ok(out)
    }
}

impl Accumulator for PercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        match values.first() {
            Some(array) => self.absorb(array),
            None => Ok(()),
        }
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        let values = self.values()?;
        if self.as_array {
            let items = values.iter().map(|v| scalar_json(v, self.ty)).collect();
            return Ok(ScalarValue::Utf8(Some(Json::Array(items).to_text())));
        }
        let mut builder = ScalarStructBuilder::new();
        for (i, value) in values.into_iter().enumerate() {
            builder = builder.with_scalar(
                Field::new(format!("f{i}"), self.value_type.clone(), true),
                value,
            );
        }
        builder.build()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.longs.capacity() * 8 + self.reals.capacity() * 8
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        let list = if self.integral {
            let values: Vec<ScalarValue> = self
                .longs
                .iter()
                .map(|v| ScalarValue::Int64(Some(*v)))
                .collect();
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Int64))
        } else {
            let values: Vec<ScalarValue> = self
                .reals
                .iter()
                .map(|v| ScalarValue::Float64(Some(*v)))
                .collect();
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Float64))
        };
        Ok(vec![list])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let Some(array) = states.first() else {
            return Ok(());
        };
        let lists = array.as_list::<i32>();
        for row in 0..lists.len() {
            if lists.is_valid(row) {
                self.absorb(&lists.value(row))?;
            }
        }
        Ok(())
    }
}
