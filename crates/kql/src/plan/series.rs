//! `make-series` (§4.9): bins of the axis between `from` and `to`, one array per
//! aggregate with the default for empty bins, and the array of bin starts.
//!
//! Lowered as: filter `from <= axis < to`, aggregate by keys and bin number, then a second
//! aggregate by keys that places each bin's value at its position in a JSON array.
//!
//! Without `from`, the series start at the bin (a multiple of `step`) holding the smallest
//! axis value of the input; without `to`, they end with the bin holding the largest. Those
//! two values come from an aggregate of the input joined to every row, and ride along as
//! group keys (one value for all rows) to where the bins are counted.

use super::error::PlanError;
use super::expr::Scope;
use super::json::Json;
use super::rel::{Lowered, Lowerer, ORDER, Resolved, builder, columns, named};
use super::types::{literal, scalar_json};
use super::udaf::{Factory, aggregate_call};
use super::{time, udf};
use crate::ast::ScalarType;
use crate::bind::{BoundExpr, Rel, SeriesAggregate};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast as cast_array;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::functions::math::expr_fn as math;
use datafusion::logical_expr::{Accumulator, Expr, Operator, binary_expr, cast, lit};
use std::sync::Arc;

use ScalarType as T;

/// Most bins a series may have.
const MAX_BINS: i64 = 1_000_000;

impl Lowerer<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn make_series(
        &self,
        rel: &Rel,
        input: &Rel,
        keys: &[BoundExpr],
        aggregates: &[SeriesAggregate],
        axis: &BoundExpr,
        from: Option<&BoundExpr>,
        to: Option<&BoundExpr>,
        step: &BoundExpr,
    ) -> Result<Lowered, PlanError> {
        if self.in_apply() {
            return Err(PlanError::new(
                "'make-series' inside mv-apply is not supported yet",
            ));
        }
        let integral = matches!(axis.ty, T::Datetime | T::Timespan | T::Int | T::Long);
        let numeric = |e: Expr, ty: ScalarType| -> Expr {
            match (integral, ty) {
                (true, _) => cast(e, DataType::Int64),
                (false, _) => cast(e, DataType::Float64),
            }
        };
        let lowered = self.rel(input)?;
        let cols = columns(&lowered.plan);
        let mut windows = Vec::new();
        let order = lowered.ordered.then(|| named(ORDER));
        let mut constant = Scope::constant();
        let step_e = numeric(self.expr(step, &mut constant)?, step.ty);
        let from_given = from
            .map(|f| Ok::<_, PlanError>(numeric(self.expr(f, &mut constant)?, f.ty)))
            .transpose()?;
        let to_given = to
            .map(|t| Ok::<_, PlanError>(numeric(self.expr(t, &mut constant)?, t.ty)))
            .transpose()?;
        let mut group = Vec::new();
        let mut key_names = Vec::new();
        let bin_name = self.fresh("bin");
        let mut first_aggregates = Vec::new();
        let mut first_outputs = Vec::new();
        let axis_value;
        {
            let mut scope = Scope::row(&cols, &mut windows, order).with_late_types(&lowered.plan);
            axis_value = numeric(self.expr(axis, &mut scope)?, axis.ty);
            for key in keys {
                let name = self.fresh("key");
                group.push(self.expr(key, &mut scope)?.alias(&name));
                key_names.push(name);
            }
            for series in aggregates {
                let lowered = self.aggregate_call(&series.call, &mut scope)?;
                first_aggregates.extend(lowered.aggregates);
                first_outputs.extend(lowered.outputs);
            }
        }
        let mut plan = self.with_windows(lowered.plan, windows)?;
        // The data's bounds, for the ends the query leaves open.
        let mut bound_keys = Vec::new();
        let (from_e, to_e) = match (from_given, to_given) {
            (Some(f), Some(t)) => (f, t),
            (from_given, to_given) => {
                let (lo, hi) = (self.fresh("lo"), self.fresh("hi"));
                let bounds = builder(plan.clone())
                    .aggregate_resolved(
                        Vec::new(),
                        vec![
                            datafusion::functions_aggregate::expr_fn::min(axis_value.clone())
                                .alias(&lo),
                            datafusion::functions_aggregate::expr_fn::max(axis_value.clone())
                                .alias(&hi),
                        ],
                    )?
                    .build()?;
                plan = builder(plan).cross_join(bounds)?.build()?;
                bound_keys = vec![named(&lo), named(&hi)];
                let from_e =
                    from_given.unwrap_or_else(|| floor_to_step(named(&lo), &step_e, integral));
                // The end of the bin holding the largest value, bins counted from `from`.
                let to_e = to_given.unwrap_or_else(|| {
                    let past = floor_to_step(
                        binary_expr(named(&hi), Operator::Minus, from_e.clone()),
                        &step_e,
                        integral,
                    );
                    binary_expr(
                        binary_expr(from_e.clone(), Operator::Plus, past),
                        Operator::Plus,
                        step_e.clone(),
                    )
                });
                (from_e, to_e)
            }
        };
        group.extend(bound_keys.iter().cloned());
        let offset = binary_expr(axis_value.clone(), Operator::Minus, from_e.clone());
        let bin = if integral {
            binary_expr(offset, Operator::Divide, step_e.clone())
        } else {
            cast(
                math::floor(binary_expr(offset, Operator::Divide, step_e.clone())),
                DataType::Int64,
            )
        };
        group.push(bin.alias(&bin_name));
        let in_range = axis_value
            .clone()
            .gt_eq(from_e.clone())
            .and(axis_value.lt(to_e.clone()));
        let plan = builder(plan)
            .filter_resolved(in_range)?
            .aggregate_resolved(group, first_aggregates)?
            .build()?;
        // Second stage: per key, the bins' values placed into arrays.
        let span = binary_expr(to_e.clone(), Operator::Minus, from_e.clone());
        let bins = if integral {
            // ceil(span / step) for positive integers.
            binary_expr(
                binary_expr(
                    binary_expr(span, Operator::Plus, step_e.clone()),
                    Operator::Minus,
                    lit(1i64),
                ),
                Operator::Divide,
                step_e.clone(),
            )
        } else {
            cast(
                math::ceil(binary_expr(span, Operator::Divide, step_e.clone())),
                DataType::Int64,
            )
        };
        let mut second = Vec::new();
        let mut array_names = Vec::new();
        for (series, output) in aggregates.iter().zip(first_outputs) {
            let ty = series.call.outputs.first().copied().unwrap_or(T::Dynamic);
            let default = match &series.default.kind {
                crate::bind::BoundExprKind::Literal(l) => {
                    let scalar = literal(l, series.default.ty)
                        .map_err(|m| self.error(series.default.span, m))?;
                    scalar_json(&scalar, series.default.ty)
                }
                crate::bind::BoundExprKind::Cast(inner) => match &inner.kind {
                    crate::bind::BoundExprKind::Literal(l) => {
                        let scalar = literal(l, inner.ty).map_err(|m| self.error(inner.span, m))?;
                        let scalar = scalar.cast_to(&super::types::arrow_type(ty))?;
                        scalar_json(&scalar, ty)
                    }
                    _ => {
                        return Err(self.error(
                            series.default.span,
                            "make-series defaults must be constants",
                        ));
                    }
                },
                _ => {
                    return Err(self.error(
                        series.default.span,
                        "make-series defaults must be constants",
                    ));
                }
            };
            let name = self.fresh("series");
            second.push(
                series_collect(ty, default, vec![named(&bin_name), output, bins.clone()])
                    .alias(&name),
            );
            array_names.push(name);
        }
        let mut second_keys: Vec<Expr> = key_names.iter().map(|n| named(n)).collect();
        second_keys.extend(bound_keys);
        let plan = builder(plan)
            .aggregate_resolved(second_keys, second)?
            .build()?;
        let mut out = Vec::with_capacity(rel.schema.len());
        let mut names = rel.schema.columns.iter();
        for key in &key_names {
            if let Some(column) = names.next() {
                out.push(named(key).alias(&column.name));
            }
        }
        for array in &array_names {
            if let Some(column) = names.next() {
                out.push(named(array).alias(&column.name));
            }
        }
        if let Some(column) = names.next() {
            out.push(series_axis(axis.ty, vec![from_e, step_e, bins]).alias(&column.name));
        }
        Ok(Lowered {
            plan: builder(plan).project_resolved(out)?.build()?,
            ordered: false,
        })
    }
}

/// `value` rounded down to a multiple of `step` (Kusto's `bin`).
fn floor_to_step(value: Expr, step: &Expr, integral: bool) -> Expr {
    if integral {
        // value - (value mod step), the remainder taken as non-negative: exact for
        // nanosecond timestamps, which a float would round.
        let rem = binary_expr(
            binary_expr(
                binary_expr(value.clone(), Operator::Modulo, step.clone()),
                Operator::Plus,
                step.clone(),
            ),
            Operator::Modulo,
            step.clone(),
        );
        binary_expr(value, Operator::Minus, rem)
    } else {
        let quotient = binary_expr(value, Operator::Divide, step.clone());
        binary_expr(math::floor(quotient), Operator::Multiply, step.clone())
    }
}

/// The bin starts `from + i * step` as a dynamic array.
fn series_axis(ty: ScalarType, args: Vec<Expr>) -> Expr {
    udf::call(
        format!("kql_series_axis_{ty}"),
        DataType::Utf8,
        args,
        move |a, rows| {
            let bins = udf::longs(udf::arg(a, 2, "make-series")?)?;
            if matches!(ty, T::Real | T::Decimal) {
                let from = udf::reals(udf::arg(a, 0, "make-series")?)?;
                let step = udf::reals(udf::arg(a, 1, "make-series")?)?;
                return Ok(udf::string_result(rows, |r| {
                    let n = bins.get(r)?.clamp(0, MAX_BINS);
                    let (f, s) = (from.get(r)?, step.get(r)?);
                    Some(
                        Json::Array((0..n).map(|i| Json::Real(f + s * i as f64)).collect())
                            .to_text(),
                    )
                }));
            }
            let from = udf::longs(udf::arg(a, 0, "make-series")?)?;
            let step = udf::longs(udf::arg(a, 1, "make-series")?)?;
            Ok(udf::string_result(rows, |r| {
                let n = bins.get(r)?.clamp(0, MAX_BINS);
                let (f, s) = (from.get(r)?, step.get(r)?);
                let items = (0..n).map(|i| {
                    let x = f.saturating_add(s.saturating_mul(i));
                    match ty {
                        T::Datetime => Json::Str(time::format_iso(x)),
                        T::Timespan => Json::Str(time::format_timespan(x)),
                        _ => Json::Int(x),
                    }
                });
                Some(Json::Array(items.collect()).to_text())
            }))
        },
    )
}

/// Aggregate of `(bin, value, bin count)` rows into the series array.
fn series_collect(ty: ScalarType, default: Json, args: Vec<Expr>) -> Expr {
    let name = format!("kql_series_{ty}_{}", default.to_text());
    let factory: Arc<Factory> = Arc::new(move || {
        Box::new(SeriesAccumulator {
            ty,
            default: default.clone(),
            bins: 0,
            values: Vec::new(),
        })
    });
    aggregate_call(
        name,
        DataType::Utf8,
        vec![
            ("values".to_string(), DataType::Utf8),
            ("bins".to_string(), DataType::Int64),
        ],
        args,
        factory,
        None,
    )
}

#[derive(Debug)]
struct SeriesAccumulator {
    ty: ScalarType,
    default: Json,
    bins: i64,
    /// (bin, value) pairs seen so far.
    values: Vec<(i64, Json)>,
}

impl Accumulator for SeriesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        let (Some(bins), Some(data), Some(counts)) = (values.first(), values.get(1), values.get(2))
        else {
            return Ok(());
        };
        let bins = cast_array(bins, &DataType::Int64)?;
        let bins = bins.as_primitive::<Int64Type>();
        let counts = cast_array(counts, &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        for row in 0..bins.len() {
            if counts.is_valid(row) {
                self.bins = counts.value(row).clamp(0, MAX_BINS);
            }
            if bins.is_valid(row) {
                let value = ScalarValue::try_from_array(data, row)?;
                self.values
                    .push((bins.value(row), scalar_json(&value, self.ty)));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        let n = usize::try_from(self.bins).unwrap_or(0);
        let mut series = vec![self.default.clone(); n];
        for (bin, value) in &self.values {
            if let Ok(i) = usize::try_from(*bin)
                && i < n
            {
                series[i] = if value.is_null() {
                    self.default.clone()
                } else {
                    value.clone()
                };
            }
        }
        Ok(ScalarValue::Utf8(Some(Json::Array(series).to_text())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.len() * 48
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        let pairs = self
            .values
            .iter()
            .map(|(b, v)| Json::Array(vec![Json::Int(*b), v.clone()]))
            .collect();
        Ok(vec![
            ScalarValue::Utf8(Some(Json::Array(pairs).to_text())),
            ScalarValue::Int64(Some(self.bins)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        let (Some(pairs), Some(counts)) = (states.first(), states.get(1)) else {
            return Ok(());
        };
        let pairs = cast_array(pairs, &DataType::Utf8)?;
        let pairs = pairs.as_string::<i32>();
        let counts = cast_array(counts, &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        for row in 0..pairs.len() {
            if counts.is_valid(row) {
                self.bins = self.bins.max(counts.value(row));
            }
            if pairs.is_null(row) {
                continue;
            }
            if let Json::Array(items) = Json::parse_lenient(pairs.value(row)) {
                for item in items {
                    if let Json::Array(pair) = item
                        && let [Json::Int(b), v] = pair.as_slice()
                    {
                        self.values.push((*b, v.clone()));
                    }
                }
            }
        }
        Ok(())
    }
}
