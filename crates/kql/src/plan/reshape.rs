//! `evaluate bag_unpack` and `evaluate pivot` (§4.9): operators whose output columns are
//! named after data values.
//!
//! Their input runs first (see `prepare`); the rows are reshaped here into an in-memory
//! table whose fields carry their KQL type in `kql_type` metadata, and the rest of the
//! query reads that table. Columns that only exist at run time follow the known ones and
//! pass through the operators after them (see `Lowerer::payload`).

use super::error::{HuntError, PlanError};
use super::expr::Scope;
use super::json::Json;
use super::rel::{Lowered, Lowerer, Resolved, builder, column_expr, columns, named};
use super::time;
use super::types::{KQL_TYPE, arrow_type, normalize_guid, scalar_json};
use super::udf::dynamic::{json_bool, json_long, json_real};
use crate::ast::ScalarType;
use crate::bind::{AggregateCall, Rel, RelKind, Schema as KqlSchema};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, LogicalPlan};
use std::collections::HashMap;
use std::sync::Arc;

use ScalarType as T;

fn field(name: &str, ty: ScalarType) -> Field {
    Field::new(name, arrow_type(ty), true).with_metadata(HashMap::from([(
        KQL_TYPE.to_string(),
        ty.name().to_string(),
    )]))
}

/// A column of JSON values as an array of `ty` (values that do not convert are null).
fn json_array(values: &[Json], ty: ScalarType) -> ArrayRef {
    let text = |v: &Json| match v {
        Json::Null => None,
        other => Some(other.string_form()),
    };
    match ty {
        T::Bool => Arc::new(values.iter().map(json_bool).collect::<BooleanArray>()),
        T::Int => Arc::new(
            values
                .iter()
                .map(|v| json_long(v).and_then(|l| i32::try_from(l).ok()))
                .collect::<Int32Array>(),
        ),
        T::Long => Arc::new(values.iter().map(json_long).collect::<Int64Array>()),
        T::Real | T::Decimal => Arc::new(values.iter().map(json_real).collect::<Float64Array>()),
        T::Timespan => Arc::new(
            values
                .iter()
                .map(|v| text(v).and_then(|t| time::parse_timespan(&t)))
                .collect::<Int64Array>(),
        ),
        T::Datetime => Arc::new(
            values
                .iter()
                .map(|v| text(v).and_then(|t| time::parse_datetime(&t)))
                .collect::<TimestampNanosecondArray>()
                .with_timezone(super::types::UTC),
        ),
        T::String => Arc::new(
            values
                .iter()
                .map(|v| Some(v.string_form()))
                .collect::<StringArray>(),
        ),
        T::Guid => Arc::new(
            values
                .iter()
                .map(|v| text(v).and_then(|t| normalize_guid(&t)))
                .collect::<StringArray>(),
        ),
        T::Dynamic => Arc::new(values.iter().map(Json::to_column).collect::<StringArray>()),
    }
}

/// The one type every non-null value has (numbers widen to real), else dynamic.
fn common_type(values: &[Json]) -> ScalarType {
    let mut ty: Option<ScalarType> = None;
    for value in values {
        let this = match value {
            Json::Null => continue,
            Json::Bool(_) => T::Bool,
            Json::Int(_) => T::Long,
            Json::Real(_) => T::Real,
            Json::Str(_) => T::String,
            Json::Array(_) | Json::Object(_) => T::Dynamic,
        };
        ty = Some(match ty {
            None => this,
            Some(seen) if seen == this => seen,
            Some(T::Long) if this == T::Real => T::Real,
            Some(T::Real) if this == T::Long => T::Real,
            Some(_) => T::Dynamic,
        });
    }
    ty.unwrap_or(T::Dynamic)
}

fn execution(message: String) -> HuntError {
    HuntError::Execution(message)
}

fn one_batch(schema: SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch, HuntError> {
    concat_batches(&schema, batches).map_err(|e| execution(e.to_string()))
}

/// `bag_unpack(column [, prefix])` over the input rows (`input` is the input's KQL schema;
/// `rel` the operator's, declared or open).
pub(crate) fn bag_unpack(
    rel: &Rel,
    input: &KqlSchema,
    column: usize,
    prefix: Option<&str>,
    input_schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>), HuntError> {
    let batch = one_batch(input_schema, batches)?;
    let bags: Vec<Json> = {
        let array = cast(
            batch.column(column),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .map_err(|e| execution(e.to_string()))?;
        let texts = array
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| execution("bag_unpack: the column is not text".to_string()))?
            .clone();
        (0..texts.len())
            .map(|r| {
                if texts.is_null(r) {
                    Json::Null
                } else {
                    Json::parse_lenient(texts.value(r))
                }
            })
            .collect()
    };
    let prefix = prefix.unwrap_or("");
    // Keys in order of first appearance, with every row's value for each.
    let mut keys: Vec<String> = Vec::new();
    for bag in &bags {
        if let Json::Object(entries) = bag {
            for (k, _) in entries {
                let name = format!("{prefix}{k}");
                if !keys.contains(&name) {
                    keys.push(name);
                }
            }
        }
    }
    let values_of = |name: &str| -> Vec<Json> {
        let key = name.strip_prefix(prefix).unwrap_or(name);
        bags.iter()
            .map(|b| b.get(key).cloned().unwrap_or(Json::Null))
            .collect()
    };
    let kept: Vec<usize> = (0..input.len()).filter(|i| *i != column).collect();
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    if rel.schema.open {
        for &i in &kept {
            let c = &input.columns[i];
            fields.push(field(&c.name, c.ty));
            arrays.push(batch.column(i).clone());
        }
        for key in &keys {
            if input
                .columns
                .iter()
                .enumerate()
                .any(|(i, c)| i != column && c.name == *key)
            {
                return Err(execution(format!(
                    "bag_unpack: the bag key '{key}' collides with an existing column"
                )));
            }
            let values = values_of(key);
            let ty = common_type(&values);
            fields.push(field(key, ty));
            arrays.push(json_array(&values, ty));
        }
    } else {
        for declared in &rel.schema.columns {
            let from_input = kept
                .iter()
                .find(|i| input.columns[**i].name == declared.name);
            let array = match from_input {
                Some(&i) => cast(batch.column(i), &arrow_type(declared.ty))
                    .map_err(|e| execution(e.to_string()))?,
                None => json_array(&values_of(&declared.name), declared.ty),
            };
            fields.push(field(&declared.name, declared.ty));
            arrays.push(array);
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let out = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| execution(e.to_string()))?;
    Ok((schema, vec![out]))
}

/// Aggregates whose value for an empty cell is 0 rather than null.
fn zero_when_empty(function: &str) -> bool {
    matches!(
        function,
        "count"
            | "countif"
            | "dcount"
            | "dcountif"
            | "count_distinct"
            | "count_distinctif"
            | "sum"
            | "sumif"
    )
}

/// `pivot(column, aggregate, group...)` from the grouped rows (`group` values, the pivot
/// value as text, the aggregate) of [`Lowerer::pivot_input`].
pub(crate) fn pivot(
    rel: &Rel,
    group: &[crate::bind::Column],
    aggregate: &AggregateCall,
    input_schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>), HuntError> {
    let batch = one_batch(input_schema, batches)?;
    let width = group.len();
    let value_ty = aggregate.outputs.first().copied().unwrap_or(T::Dynamic);
    let pivots = cast(
        batch.column(width),
        &datafusion::arrow::datatypes::DataType::Utf8,
    )
    .map_err(|e| execution(e.to_string()))?;
    let pivots = pivots
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| execution("pivot: the pivot column is not text".to_string()))?
        .clone();
    let mut names: Vec<String> = (0..pivots.len())
        .map(|r| {
            if pivots.is_null(r) {
                String::new()
            } else {
                pivots.value(r).to_string()
            }
        })
        .collect();
    names.sort();
    names.dedup();
    // Group tuples in order of first appearance.
    let mut groups: Vec<Vec<ScalarValue>> = Vec::new();
    let mut cells: HashMap<(usize, String), Json> = HashMap::new();
    for r in 0..batch.num_rows() {
        let key: Vec<ScalarValue> = (0..width)
            .map(|i| ScalarValue::try_from_array(batch.column(i), r))
            .collect::<Result<_, _>>()
            .map_err(|e| execution(e.to_string()))?;
        let index = match groups.iter().position(|g| *g == key) {
            Some(i) => i,
            None => {
                groups.push(key);
                groups.len() - 1
            }
        };
        let pivot = if pivots.is_null(r) {
            String::new()
        } else {
            pivots.value(r).to_string()
        };
        let value = ScalarValue::try_from_array(batch.column(width + 1), r)
            .map_err(|e| execution(e.to_string()))?;
        cells.insert((index, pivot), scalar_json(&value, value_ty));
    }
    let empty = if zero_when_empty(aggregate.function) {
        Json::Int(0)
    } else {
        Json::Null
    };
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    let group_column = |i: usize| -> Result<ArrayRef, HuntError> {
        let values: Vec<ScalarValue> = groups.iter().map(|g| g[i].clone()).collect();
        if values.is_empty() {
            return Ok(datafusion::arrow::array::new_empty_array(
                batch.column(i).data_type(),
            ));
        }
        ScalarValue::iter_to_array(values).map_err(|e| execution(e.to_string()))
    };
    let pivot_column = |name: &str, ty: ScalarType| -> ArrayRef {
        let values: Vec<Json> = (0..groups.len())
            .map(|g| {
                cells
                    .get(&(g, name.to_string()))
                    .cloned()
                    .unwrap_or_else(|| empty.clone())
            })
            .collect();
        json_array(&values, ty)
    };
    if rel.schema.open {
        for (i, c) in group.iter().enumerate() {
            fields.push(field(&c.name, c.ty));
            arrays.push(group_column(i)?);
        }
        for name in &names {
            if group.iter().any(|c| c.name == *name) {
                return Err(execution(format!(
                    "pivot: the value '{name}' collides with a grouping column"
                )));
            }
            fields.push(field(name, value_ty));
            arrays.push(pivot_column(name, value_ty));
        }
    } else {
        for declared in &rel.schema.columns {
            match group.iter().position(|c| c.name == declared.name) {
                Some(i) => arrays.push(
                    cast(&group_column(i)?, &arrow_type(declared.ty))
                        .map_err(|e| execution(e.to_string()))?,
                ),
                None => arrays.push(pivot_column(&declared.name, declared.ty)),
            }
            fields.push(field(&declared.name, declared.ty));
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let out = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| execution(e.to_string()))?;
    Ok((schema, vec![out]))
}

impl Lowerer<'_> {
    /// The plan whose rows a data-dependent operator reshapes.
    pub(crate) fn reshape_input(&self, rel: &Rel) -> Result<LogicalPlan, PlanError> {
        match &rel.kind {
            RelKind::BagUnpack { input, .. } => self.strip(self.rel(input)?, input.schema.len()),
            RelKind::Pivot {
                input,
                column,
                aggregate,
                group,
            } => self.pivot_input(input, *column, aggregate, group),
            _ => Err(PlanError::new(
                "internal planning error: not a reshaping operator",
            )),
        }
    }

    /// Group values, the pivot value as text, and the aggregate, per group and value.
    fn pivot_input(
        &self,
        input: &Rel,
        column: usize,
        aggregate: &AggregateCall,
        group: &[usize],
    ) -> Result<LogicalPlan, PlanError> {
        let lowered = self.rel(input)?;
        let cols = columns(&lowered.plan);
        let mut windows = Vec::new();
        let mut keys = Vec::new();
        let mut names = Vec::new();
        let lowered_aggregate;
        {
            let mut scope = Scope::row(&cols, &mut windows, None);
            for &g in group {
                let name = self.fresh("group");
                let c = cols
                    .get(g)
                    .ok_or_else(|| PlanError::new("internal planning error: pivot column"))?;
                keys.push(column_expr(c).alias(&name));
                names.push(name);
            }
            let pivot_column = cols
                .get(column)
                .ok_or_else(|| PlanError::new("internal planning error: pivot column"))?;
            let ty = input
                .schema
                .columns
                .get(column)
                .map_or(T::Dynamic, |c| c.ty);
            let pivot_name = self.fresh("pivot");
            keys.push(
                self.as_text(column_expr(pivot_column), ty)
                    .alias(&pivot_name),
            );
            names.push(pivot_name);
            lowered_aggregate = self.aggregate_call(aggregate, &mut scope)?;
        }
        let plan = builder(lowered.plan)
            .aggregate_resolved(keys, lowered_aggregate.aggregates)?
            .build()?;
        let mut out: Vec<Expr> = names.iter().map(|n| named(n)).collect();
        out.extend(lowered_aggregate.outputs);
        Ok(builder(plan).project_resolved(out)?.build()?)
    }

    /// A data-dependent operator: its cached table, or in plan-only mode its known
    /// columns.
    pub(crate) fn reshaped(&self, rel: &Rel) -> Result<Lowered, PlanError> {
        if let Some(plan) = self.prepared.open.get(&super::expr::rel_key(rel)) {
            return Ok(Lowered {
                plan: plan.clone(),
                ordered: false,
            });
        }
        let plan = self.reshape_input(rel)?;
        let cols = columns(&plan);
        let exprs: Vec<Expr> = rel
            .schema
            .columns
            .iter()
            .map(|c| match cols.iter().find(|p| p.name == c.name) {
                Some(p) => column_expr(p),
                None => datafusion::logical_expr::lit(super::types::null_of(c.ty)).alias(&c.name),
            })
            .collect();
        Ok(Lowered {
            plan: builder(plan).project_resolved(exprs)?.build()?,
            ordered: false,
        })
    }
}
