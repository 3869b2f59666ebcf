//! `mv-expand` (§4.7) and `parse` / `parse-where` (§4.8).
//!
//! mv-expand turns each expanded dynamic value into a list of JSON texts (one per output
//! row) and lets DataFusion's `Unnest` expand the lists in parallel, which pads shorter
//! lists with nulls exactly as Kusto's parallel expansion does. parse compiles the
//! pattern into one anchored regex evaluated by a kernel returning a struct of captures.

use super::error::PlanError;
use super::expr::Scope;
use super::json::Json;
use super::rel::{APPLY, Lowered, Lowerer, ORDER, Resolved, builder, column_expr, columns, named};
use super::time;
use super::types::{arrow_type, normalize_guid};
use super::udf::dynamic::{json_bool, parse_long_text, parse_real_text};
use super::udf::{self, dynamic};
use crate::ast::{BagExpansion, ScalarType};
use crate::bind::{ApplyOutput, BoundExpr, ExpandColumn, ParseKind, ParseSegment, Rel, RelKind};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray, StructArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Column, UnnestOptions};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::{Expr, LogicalPlan};
use regex::Regex;
use std::sync::Arc;

use ScalarType as T;

impl Lowerer<'_> {
    /// Expands the `expanded` columns of `plan` (whose first `width` columns are a Rel's):
    /// the result has those `width` columns (expanded ones holding one element each, as
    /// dynamic), then the item index if asked, then `plan`'s remaining columns.
    fn expand_plan(
        &self,
        plan: LogicalPlan,
        width: usize,
        expanded: &[ExpandColumn],
        bags: BagExpansion,
        with_index: bool,
        limit: Option<i64>,
    ) -> Result<LogicalPlan, PlanError> {
        let cols = columns(&plan);
        let original: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
        let names: Vec<String> = (0..cols.len()).map(|i| format!("\u{1}c{i}")).collect();
        let mut exprs = Vec::with_capacity(cols.len());
        let mut lists = Vec::new();
        for (i, c) in cols.iter().enumerate() {
            let value = column_expr(c);
            if i < width && expanded.iter().any(|e| e.column == i) {
                exprs.push(
                    dynamic::expand_list(value, bags == BagExpansion::Array, limit)
                        .alias(&names[i]),
                );
                lists.push(names[i].clone());
            } else {
                exprs.push(value.alias(&names[i]));
            }
        }
        let mut b = builder(plan).project_resolved(exprs)?;
        let index_name = self.fresh("index");
        let mut unnested: Vec<Column> = lists.iter().map(Column::new_unqualified).collect();
        if with_index {
            // The positions list is computed from the lists, so in a second projection.
            let mut all: Vec<Expr> = names.iter().map(|n| named(n)).collect();
            all.push(
                dynamic::expand_index(lists.iter().map(|n| named(n)).collect()).alias(&index_name),
            );
            b = b.project_resolved(all)?;
            unnested.push(Column::new_unqualified(&index_name));
        }
        let plan = b
            .unnest_columns_with_options(unnested, UnnestOptions::new().with_preserve_nulls(false))?
            .build()?;
        // The Rel's columns, the index, then the rest under their own names again.
        let cols = columns(&plan);
        let mut order: Vec<Expr> = cols.iter().take(width).map(column_expr).collect();
        if with_index && let Some(index) = cols.get(names.len()) {
            order.push(column_expr(index));
        }
        for (i, c) in cols.iter().enumerate().take(names.len()).skip(width) {
            order.push(column_expr(c).alias(&original[i]));
        }
        Ok(builder(plan).project_resolved(order)?.build()?)
    }

    pub(crate) fn mv_expand(
        &self,
        rel: &Rel,
        input: &Rel,
        expanded: &[ExpandColumn],
        bags: BagExpansion,
        with_index: bool,
        limit: Option<&BoundExpr>,
    ) -> Result<Lowered, PlanError> {
        if self.in_apply() {
            return Err(PlanError::new(
                "'mv-expand' inside mv-apply is not supported yet",
            ));
        }
        let limit = match limit {
            Some(l) => Some(self.row_count(l)? as i64),
            None => None,
        };
        let width = input.schema.len();
        let plan = self.strip(self.rel(input)?, width)?;
        let plan = self.expand_plan(plan, width, expanded, bags, with_index, limit)?;
        let cols = columns(&plan);
        let mut out = Vec::with_capacity(rel.schema.len());
        for (i, (c, column)) in cols.iter().zip(&rel.schema.columns).enumerate() {
            let value = column_expr(c);
            let value = match expanded.iter().find(|e| e.column == i) {
                Some(ExpandColumn { to: Some(ty), .. }) => dynamic::from_dynamic(value, *ty),
                _ => value,
            };
            out.push(value.alias(&column.name));
        }
        Ok(Lowered {
            plan: builder(plan).project_resolved(out)?.build()?,
            ordered: false,
        })
    }

    /// `mv-apply`: the input rows numbered, their arrays expanded into per-row sub-tables
    /// (rows tagged with [`APPLY`] = the row's number, and carrying the row's other
    /// columns), the subquery run over all of them at once with every operator keeping the
    /// carried columns and grouping by [`APPLY`], and the output read from its rows.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mv_apply(
        &self,
        rel: &Rel,
        input: &Rel,
        expanded: &[ExpandColumn],
        with_index: bool,
        limit: Option<&BoundExpr>,
        subquery: &Rel,
        outputs: &[ApplyOutput],
    ) -> Result<Lowered, PlanError> {
        if self.in_apply() {
            return Err(PlanError::new(
                "mv-apply inside mv-apply is not supported yet",
            ));
        }
        let limit = match limit {
            Some(l) => Some(self.row_count(l)? as i64),
            None => None,
        };
        let width = input.schema.len();
        let plan = self.strip(self.rel(input)?, width)?;
        // Number the input rows: the number tells the sub-tables apart.
        let numbered = self.number_rows(plan, vec![], width)?.plan;
        let expanded_plan = self.expand_plan(
            numbered,
            width,
            expanded,
            BagExpansion::Bag,
            with_index,
            limit,
        )?;
        let cols = columns(&expanded_plan);
        let col = |i: usize| {
            cols.get(i).map(column_expr).ok_or_else(|| {
                PlanError::new("internal planning error: mv-apply column out of range")
            })
        };
        // The sub-tables: expanded columns (typed), the item index, then what each row
        // carries for its input row: its number and its columns.
        let names = subquery_input_names(subquery);
        let mut sub = Vec::new();
        for (k, e) in expanded.iter().enumerate() {
            let value = col(e.column)?;
            let value = match e.to {
                Some(ty) => dynamic::from_dynamic(value, ty),
                None => value,
            };
            let name = names
                .get(k)
                .cloned()
                .unwrap_or_else(|| format!("\u{1}x{k}"));
            sub.push(value.alias(name));
        }
        if with_index {
            let name = names
                .get(expanded.len())
                .cloned()
                .unwrap_or_else(|| "\u{1}index".to_string());
            sub.push(col(width)?.alias(name));
        }
        sub.push(named(ORDER).alias(APPLY));
        for i in (0..width).filter(|i| !expanded.iter().any(|e| e.column == *i)) {
            sub.push(col(i)?.alias(format!("{APPLY}_o{i}")));
        }
        let sub_input = builder(expanded_plan).project_resolved(sub)?.build()?;
        let result = self.with_apply_input(Some(sub_input), || self.rel(subquery))?;
        let result_cols = columns(&result.plan);
        let mut out = Vec::with_capacity(rel.schema.len());
        for (output, column) in outputs.iter().zip(&rel.schema.columns) {
            let value = match output {
                ApplyOutput::Outer(i) => named(&format!("{APPLY}_o{i}")),
                ApplyOutput::Sub(j) => column_expr(result_cols.get(*j).ok_or_else(|| {
                    PlanError::new("internal planning error: mv-apply output out of range")
                })?),
            };
            out.push(value.alias(&column.name));
        }
        Ok(Lowered {
            plan: builder(result.plan).project_resolved(out)?.build()?,
            ordered: false,
        })
    }

    pub(crate) fn parse(
        &self,
        rel: &Rel,
        input: &Rel,
        source: &BoundExpr,
        kind: &ParseKind,
        segments: &[ParseSegment],
        drop_unmatched: bool,
    ) -> Result<Lowered, PlanError> {
        let lowered = self.rel(input)?;
        let width = input.schema.len();
        let cols = columns(&lowered.plan);
        let source_expr = {
            let mut scope = Scope {
                columns: &cols,
                windows: None,
                order: None,
                late_types: Vec::new(),
            };
            self.text(source, &mut scope)?
        };
        let (pattern, captures) = parse_pattern(kind, segments);
        let regex = Regex::new(&pattern)
            .map_err(|e| self.error(source.span, format!("invalid parse pattern: {e}")))?;
        let relaxed = *kind == ParseKind::Relaxed;
        let parsed = self.fresh("parsed");
        let mut stage: Vec<Expr> = cols.iter().map(column_expr).collect();
        stage.push(parse_call(regex, captures.clone(), relaxed, source_expr).alias(&parsed));
        let mut b = builder(lowered.plan).project_resolved(stage)?;
        if drop_unmatched {
            b = b.filter_resolved(get_field(named(&parsed), "m"))?;
        }
        let plan = b.build()?;
        let cols = columns(&plan);
        let mut out: Vec<Expr> = Vec::with_capacity(rel.schema.len() + 1);
        for (c, column) in cols.iter().zip(&rel.schema.columns).take(width) {
            out.push(column_expr(c).alias(&column.name));
        }
        for (k, column) in rel.schema.columns.iter().skip(width).enumerate() {
            out.push(get_field(named(&parsed), format!("c{k}")).alias(&column.name));
        }
        if lowered.ordered {
            out.push(named(ORDER));
        }
        out.extend(self.apply_columns(&plan).iter().map(column_expr));
        Ok(Lowered {
            plan: builder(plan).project_resolved(out)?.build()?,
            ordered: lowered.ordered,
        })
    }
}

/// The regex of a parse pattern and the type of each capture group, in order.
fn parse_pattern(kind: &ParseKind, segments: &[ParseSegment]) -> (String, Vec<ScalarType>) {
    let mut pattern = String::new();
    match kind {
        ParseKind::Regex { flags: Some(flags) } if !flags.is_empty() => {
            pattern.push_str(&format!("(?{flags})"));
        }
        ParseKind::Regex { .. } => {}
        // `*` and string captures span lines too.
        _ => pattern.push_str("(?s)"),
    }
    pattern.push('^');
    let mut captures = Vec::new();
    for segment in segments {
        match segment {
            ParseSegment::Wildcard => pattern.push_str(".*?"),
            ParseSegment::Literal(text) => match kind {
                ParseKind::Regex { .. } => pattern.push_str(&format!("(?:{text})")),
                _ => pattern.push_str(&regex::escape(text)),
            },
            ParseSegment::Capture { ty, .. } => {
                pattern.push_str("(.*?)");
                captures.push(*ty);
            }
        }
    }
    pattern.push('$');
    (pattern, captures)
}

fn capture_fields(captures: &[ScalarType]) -> Fields {
    let mut fields = vec![Field::new("m", DataType::Boolean, false)];
    for (k, ty) in captures.iter().enumerate() {
        fields.push(Field::new(format!("c{k}"), arrow_type(*ty), true));
    }
    Fields::from(fields)
}

/// A capture's text as a value of `ty` (`None` when it does not convert).
enum Value {
    Str(String),
    Bool(bool),
    Int(i32),
    Long(i64),
    Real(f64),
    Time(i64),
}

fn convert_capture(text: &str, ty: ScalarType) -> Option<Value> {
    Some(match ty {
        T::String => Value::Str(text.to_string()),
        T::Int => Value::Int(i32::try_from(parse_long_text(text)?).ok()?),
        T::Long => Value::Long(parse_long_text(text)?),
        T::Real | T::Decimal => Value::Real(parse_real_text(text)?),
        T::Bool => Value::Bool(json_bool(&Json::Str(text.trim().to_string()))?),
        T::Datetime => Value::Time(time::parse_datetime(text)?),
        T::Timespan => Value::Long(time::parse_timespan(text)?),
        T::Guid => Value::Str(normalize_guid(text)?),
        T::Dynamic => Value::Str(Json::parse_lenient(text).to_column()?),
    })
}

fn parse_call(regex: Regex, captures: Vec<ScalarType>, relaxed: bool, source: Expr) -> Expr {
    let fields = capture_fields(&captures);
    let name = format!(
        "kql_parse{}_{}_{}",
        if relaxed { "_relaxed" } else { "" },
        regex.as_str(),
        captures
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    let ret = DataType::Struct(fields.clone());
    udf::call(name, ret, vec![source], move |args, rows| {
        let text = udf::strs(udf::arg(args, 0, "parse")?)?;
        let mut matched = Vec::with_capacity(rows);
        let mut values: Vec<Vec<Option<Value>>> = (0..captures.len())
            .map(|_| Vec::with_capacity(rows))
            .collect();
        for r in 0..rows {
            let row: Option<Vec<Option<Value>>> = regex.captures(text.text(r)).and_then(|caps| {
                let converted: Vec<Option<Value>> = captures
                    .iter()
                    .enumerate()
                    .map(|(k, ty)| {
                        caps.get(k + 1)
                            .and_then(|m| convert_capture(m.as_str(), *ty))
                    })
                    .collect();
                // Strict modes: one failed conversion fails the whole match.
                if !relaxed && converted.iter().any(Option::is_none) {
                    None
                } else {
                    Some(converted)
                }
            });
            matched.push(row.is_some());
            match row {
                Some(converted) => {
                    for (k, v) in converted.into_iter().enumerate() {
                        values[k].push(v);
                    }
                }
                None => {
                    for column in values.iter_mut() {
                        column.push(None);
                    }
                }
            }
        }
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(BooleanArray::from(matched))];
        for (k, ty) in captures.iter().enumerate() {
            let column = std::mem::take(&mut values[k]);
            let array: ArrayRef = match ty {
                T::String => Arc::new(StringArray::from_iter(column.into_iter().map(
                    |v| match v {
                        Some(Value::Str(s)) => Some(s),
                        _ => Some(String::new()),
                    },
                ))),
                T::Guid | T::Dynamic => Arc::new(StringArray::from_iter(column.into_iter().map(
                    |v| match v {
                        Some(Value::Str(s)) => Some(s),
                        _ => None,
                    },
                ))),
                T::Bool => Arc::new(BooleanArray::from_iter(column.into_iter().map(
                    |v| match v {
                        Some(Value::Bool(b)) => Some(b),
                        _ => None,
                    },
                ))),
                T::Int => Arc::new(Int32Array::from_iter(column.into_iter().map(|v| match v {
                    Some(Value::Int(i)) => Some(i),
                    _ => None,
                }))),
                T::Long | T::Timespan => {
                    Arc::new(Int64Array::from_iter(column.into_iter().map(|v| match v {
                        Some(Value::Long(i)) => Some(i),
                        _ => None,
                    })))
                }
                T::Real | T::Decimal => Arc::new(Float64Array::from_iter(column.into_iter().map(
                    |v| match v {
                        Some(Value::Real(x)) => Some(x),
                        _ => None,
                    },
                ))),
                T::Datetime => Arc::new(
                    TimestampNanosecondArray::from_iter(column.into_iter().map(|v| match v {
                        Some(Value::Time(t)) => Some(t),
                        _ => None,
                    }))
                    .with_timezone(super::types::UTC),
                ),
            };
            arrays.push(array);
        }
        Ok(Arc::new(StructArray::try_new(fields.clone(), arrays, None)?) as ArrayRef)
    })
}

/// Column names of the `ApplyInput` leaf of an `mv-apply` subquery.
fn subquery_input_names(subquery: &Rel) -> Vec<String> {
    let mut node = subquery;
    loop {
        if let RelKind::ApplyInput = node.kind {
            return node.schema.columns.iter().map(|c| c.name.clone()).collect();
        }
        match node.kind.inputs().first() {
            Some(input) => node = input,
            None => return Vec::new(),
        }
    }
}
