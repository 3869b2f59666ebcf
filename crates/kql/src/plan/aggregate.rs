//! `summarize` (and `count`): one DataFusion `Aggregate` node, then a projection that
//! names the outputs, unpacks multi-column aggregates and applies Kusto's empty-input
//! values (`count`/`sum`-like give 0, `make_*` give `[]`).

use super::error::PlanError;
use super::expr::{Scope, constant_value};
use super::rel::{Lowered, Lowerer, ORDER, Resolved, builder, columns, named};
use super::types::arrow_type;
use super::udaf::{self, Collect, Pick};
use crate::ast::{Literal, ScalarType};
use crate::bind::{AggregateCall, BoundExpr, Rel};
use datafusion::arrow::datatypes::DataType;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::logical_expr::{Expr, ExprFunctionExt, cast, lit};
use datafusion::prelude::coalesce;

use ScalarType as T;

/// What one aggregate call lowers to: aggregate expressions (aliased) and the
/// expressions over their results giving each output column.
pub(crate) struct LoweredAggregate {
    pub aggregates: Vec<Expr>,
    pub outputs: Vec<Expr>,
}

/// Kusto's cap on `make_set`/`make_list` sizes when none is given.
const DEFAULT_MAX: usize = 1_048_576;

impl Lowerer<'_> {
    pub(crate) fn aggregate(
        &self,
        rel: &Rel,
        input: &Rel,
        keys: &[BoundExpr],
        calls: &[AggregateCall],
    ) -> Result<Lowered, PlanError> {
        let lowered = self.rel(input)?;
        let cols = columns(&lowered.plan);
        let mut windows = Vec::new();
        let order = lowered.ordered.then(|| named(ORDER));
        let mut group = Vec::with_capacity(keys.len());
        let mut key_names = Vec::with_capacity(keys.len());
        let mut aggregates = Vec::new();
        let mut outputs = Vec::new();
        {
            let mut scope = Scope::row(&cols, &mut windows, order).with_late_types(&lowered.plan);
            for key in keys {
                let name = self.fresh("key");
                group.push(self.expr(key, &mut scope)?.alias(&name));
                key_names.push(name);
            }
            for call in calls {
                let lowered = self.aggregate_call(call, &mut scope)?;
                aggregates.extend(lowered.aggregates);
                outputs.extend(lowered.outputs);
            }
        }
        // Inside mv-apply, each input row's sub-table is summarized on its own (its
        // carried columns are the same on all its rows, so grouping by them is free).
        let carried = self.apply_columns(&lowered.plan);
        for c in &carried {
            group.push(super::rel::column_expr(c).alias(&c.name));
        }
        let plan = self.with_windows(lowered.plan, windows)?;
        let plan = builder(plan)
            .aggregate_resolved(group, aggregates)?
            .build()?;
        let mut exprs = Vec::with_capacity(rel.schema.len());
        for (name, column) in key_names.iter().zip(&rel.schema.columns) {
            exprs.push(named(name).alias(&column.name));
        }
        for (output, column) in outputs
            .into_iter()
            .zip(rel.schema.columns.iter().skip(keys.len()))
        {
            let output = cast(output, arrow_type(column.ty));
            let output = if column.ty == T::String {
                coalesce(vec![output, lit("")])
            } else {
                output
            };
            exprs.push(output.alias(&column.name));
        }
        exprs.extend(carried.iter().map(|c| named(&c.name)));
        Ok(Lowered {
            plan: builder(plan).project_resolved(exprs)?.build()?,
            ordered: false,
        })
    }

    /// `sum`-like results are 0 rather than null when nothing was summed.
    fn zero_if_null(&self, value: Expr, ty: ScalarType) -> Expr {
        let zero = match arrow_type(ty) {
            DataType::Float64 => lit(0.0f64),
            DataType::Int32 => lit(0i32),
            _ => lit(0i64),
        };
        coalesce(vec![value, zero])
    }

    pub(crate) fn aggregate_call(
        &self,
        call: &AggregateCall,
        scope: &mut Scope<'_>,
    ) -> Result<LoweredAggregate, PlanError> {
        let args = &call.args;
        let out_ty = call.outputs.first().copied().unwrap_or(T::Dynamic);
        let arg = |i: usize, scope: &mut Scope<'_>| -> Result<Expr, PlanError> {
            let a = args
                .get(i)
                .ok_or_else(|| PlanError::new(format!("{}: missing argument", call.function)))?;
            self.expr(a, scope)
        };
        let condition = |i: usize, scope: &mut Scope<'_>| -> Result<Expr, PlanError> {
            let a = args
                .get(i)
                .ok_or_else(|| PlanError::new(format!("{}: missing predicate", call.function)))?;
            let p = self.predicate(a, scope)?;
            // Only rows where the predicate is true count.
            Ok(coalesce(vec![p, lit(false)]))
        };
        let filtered = |e: Expr, filter: Option<Expr>| -> Result<Expr, PlanError> {
            Ok(match filter {
                Some(f) => e.filter(f).build()?,
                None => e,
            })
        };
        let single = |e: Expr, post: &dyn Fn(Expr) -> Expr| -> LoweredAggregate {
            let name = self.fresh("agg");
            LoweredAggregate {
                aggregates: vec![e.alias(&name)],
                outputs: vec![post(named(&name))],
            }
        };
        let numeric_input = |e: Expr, ty: ScalarType| match ty {
            T::Datetime => cast(e, DataType::Int64),
            _ => e,
        };
        let ty0 = args.first().map_or(T::Dynamic, |a| a.ty);
        let function = call.function;
        let conditional = |plain: &str| function == plain;
        Ok(match function {
            "count" => single(agg::count(lit(1i64)), &|e| e),
            "countif" => {
                let p = condition(0, scope)?;
                single(filtered(agg::count(lit(1i64)), Some(p))?, &|e| e)
            }
            "dcount" | "dcountif" => {
                // An estimate in Kusto: counted as distinct 64-bit hashes (see `dcount`).
                let filter = if function.ends_with("if") {
                    Some(condition(1, scope)?)
                } else {
                    None
                };
                single(
                    filtered(super::dcount::dcount(arg(0, scope)?), filter)?,
                    &|e| e,
                )
            }
            "count_distinct" | "count_distinctif" => {
                // Exact in Kusto, so exact here: DataFusion's distinct count.
                let value = arg(0, scope)?;
                // A distinct count ignores nulls, so the condition nulls out the rows it
                // rejects (DataFusion's rewrite of distinct aggregates drops FILTER).
                let value = if function.ends_with("if") {
                    let p = condition(1, scope)?;
                    datafusion::logical_expr::when(p, value).end()?
                } else {
                    value
                };
                single(agg::count(value).distinct().build()?, &|e| e)
            }
            "sum" | "sumif" => {
                let value = numeric_input(arg(0, scope)?, ty0);
                let filter = if conditional("sumif") {
                    Some(condition(1, scope)?)
                } else {
                    None
                };
                let e = filtered(agg::sum(value), filter)?;
                single(e, &|e| self.zero_if_null(e, out_ty))
            }
            "avg" | "avgif" => {
                let value = arg(0, scope)?;
                let value = match ty0 {
                    T::Datetime | T::Timespan => cast(value, DataType::Int64),
                    _ => cast(value, DataType::Float64),
                };
                let filter = if conditional("avgif") {
                    Some(condition(1, scope)?)
                } else {
                    None
                };
                let e = filtered(agg::avg(value), filter)?;
                let temporal = matches!(out_ty, T::Datetime | T::Timespan);
                single(e, &move |e| {
                    if temporal {
                        cast(cast(e, DataType::Int64), arrow_type(out_ty))
                    } else {
                        e
                    }
                })
            }
            "min" | "max" | "minif" | "maxif" => {
                let value = arg(0, scope)?;
                let filter = if function.ends_with("if") {
                    Some(condition(1, scope)?)
                } else {
                    None
                };
                let e = if function.starts_with("min") {
                    agg::min(value)
                } else {
                    agg::max(value)
                };
                single(filtered(e, filter)?, &|e| e)
            }
            "stdev" | "stdevp" | "variance" | "variancep" | "stdevif" | "varianceif" => {
                let value = cast(arg(0, scope)?, DataType::Float64);
                let filter = if function.ends_with("if") {
                    Some(condition(1, scope)?)
                } else {
                    None
                };
                let e = match function {
                    "stdev" | "stdevif" => agg::stddev(value),
                    "stdevp" => agg::stddev_pop(value),
                    "variance" | "varianceif" => agg::var_sample(value),
                    _ => agg::var_pop(value),
                };
                single(filtered(e, filter)?, &|e| self.zero_if_null(e, T::Real))
            }
            "arg_max" | "arg_min" | "take_any" | "take_anyif" => {
                let mode = match function {
                    "arg_max" => Pick::Max,
                    "arg_min" => Pick::Min,
                    _ => Pick::Any,
                };
                let (values, filter) = if function == "take_anyif" {
                    (vec![arg(0, scope)?], Some(condition(1, scope)?))
                } else {
                    let mut values = Vec::with_capacity(args.len());
                    for i in 0..args.len() {
                        values.push(arg(i, scope)?);
                    }
                    (values, None)
                };
                let count = if function == "take_anyif" {
                    1
                } else {
                    args.len()
                };
                let types: Vec<DataType> =
                    args.iter().take(count).map(|a| arrow_type(a.ty)).collect();
                let e = filtered(udaf::pick(mode, values, types), filter)?;
                let name = self.fresh("agg");
                LoweredAggregate {
                    aggregates: vec![e.alias(&name)],
                    outputs: (0..count)
                        .map(|i| get_field(named(&name), format!("f{i}")))
                        .collect(),
                }
            }
            "make_set"
            | "make_set_if"
            | "make_list"
            | "make_list_if"
            | "make_list_with_nulls"
            | "make_bag"
            | "make_bag_if" => {
                let mode = match function {
                    "make_set" | "make_set_if" => Collect::Set,
                    "make_list" | "make_list_if" => Collect::List,
                    "make_list_with_nulls" => Collect::ListWithNulls,
                    _ => Collect::Bag,
                };
                let conditional = function.ends_with("_if");
                let max_position = if conditional { 2 } else { 1 };
                let max = match args.get(max_position) {
                    Some(a) => match constant_value(a) {
                        Some(Literal::Long(n)) => usize::try_from(n.max(0)).unwrap_or(DEFAULT_MAX),
                        Some(Literal::Int(n)) => usize::try_from(n.max(0)).unwrap_or(DEFAULT_MAX),
                        _ => {
                            return Err(self.error(
                                a.span,
                                format!("{function}'s maximum size must be a constant"),
                            ));
                        }
                    },
                    None => DEFAULT_MAX,
                };
                let value = arg(0, scope)?;
                let filter = if conditional {
                    Some(condition(1, scope)?)
                } else {
                    None
                };
                let e = filtered(udaf::collect(mode, ty0, max, value), filter)?;
                let empty = if mode == Collect::Bag { "{}" } else { "[]" };
                single(e, &move |e| coalesce(vec![e, lit(empty)]))
            }
            "percentile" | "percentiles" | "percentiles_array" => {
                let value = arg(0, scope)?;
                let mut points = Vec::new();
                for a in &args[1..] {
                    let mut flat = Vec::new();
                    match constant_value(a) {
                        Some(Literal::Real(p)) => flat.push(p),
                        Some(Literal::Long(p)) => flat.push(p as f64),
                        Some(Literal::Int(p)) => flat.push(f64::from(p)),
                        Some(Literal::Dynamic(d)) => {
                            if let Ok(json) = super::types::dynamic_json(&d) {
                                let mut items = Vec::new();
                                super::udf::dynamic::flatten(json, &mut items);
                                flat.extend(items.iter().filter_map(super::json::Json::as_f64));
                            }
                        }
                        _ => return Err(self.error(a.span, "percentiles must be constant numbers")),
                    }
                    points.extend(flat);
                }
                let as_array = function == "percentiles_array";
                let e = udaf::percentiles(ty0, points.clone(), as_array, value);
                let name = self.fresh("agg");
                let outputs = if as_array {
                    vec![named(&name)]
                } else {
                    (0..points.len())
                        .map(|i| get_field(named(&name), format!("f{i}")))
                        .collect()
                };
                LoweredAggregate {
                    aggregates: vec![e.alias(&name)],
                    outputs,
                }
            }
            other => {
                return Err(PlanError::new(format!(
                    "aggregate '{other}' is not supported yet"
                )));
            }
        })
    }
}
