//! Lowering of relational operators ([`RelKind`]) onto DataFusion logical plans.
//!
//! The invariant every lowering keeps: the plan of a [`Rel`] outputs the Rel's columns
//! first, in schema order (names may differ; expressions address columns by position),
//! followed by the hidden [`ORDER`] column when the Rel's rows are serialized. That column
//! numbers the rows in their meaningful order, because a DataFusion plan has no row order
//! of its own once the optimizer parallelises it: window functions (`prev`, `row_number`)
//! order by it, `take` after `sort` keeps the first rows by it, and the final result is
//! sorted by it before it is dropped.

use super::error::PlanError;
use super::expr::{Scope, Windows};
use super::prepare::Prepared;
use super::types::arrow_type;
use super::udf;
use crate::ast::{Literal, ScalarType};
use crate::bind::{BoundExpr, BoundExprKind, Column as ColumnDef, Rel, RelKind, SortKey};
use crate::span::Span;
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::common::datatype::FieldExt;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{
    Column, DFSchema, ExprSchema, Result as DFResult, ScalarValue, TableReference,
};
use datafusion::execution::context::ExecutionProps;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::expr::{Alias, Cast, ScalarFunction};
use datafusion::logical_expr::type_coercion::functions::fields_with_udf;
use datafusion::logical_expr::{
    Aggregate, EmptyRelation, Expr, ExprFunctionExt, ExprSchemable, Filter, LogicalPlan,
    LogicalPlanBuilder, Projection, ReturnFieldArgs, Sort, SortExpr, Window, cast, lit,
};
use datafusion::physical_expr::create_physical_expr;
use datafusion::prelude::coalesce;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// The hidden row-order column of serialized plans. The control character keeps it from
/// clashing with any name a query can write without brackets.
pub(crate) const ORDER: &str = "\u{1}order";

/// The hidden column of rows inside an `mv-apply` subquery: which input row they belong
/// to. Operators of the subquery carry it and group by it.
pub(crate) const APPLY: &str = "\u{1}apply";

/// A lowered [`Rel`]: its plan, and whether the plan carries [`ORDER`] last.
pub(crate) struct Lowered {
    pub plan: LogicalPlan,
    pub ordered: bool,
}

pub(crate) struct Lowerer<'a> {
    /// The query text, to locate errors.
    pub text: &'a str,
    /// `now()` for the whole query, nanoseconds since the epoch.
    pub now: i64,
    /// The `materialize`d inputs, lowered inline when not cached (plan-only mode).
    pub materialized: &'a [Rel],
    pub prepared: &'a Prepared,
    names: Cell<usize>,
    /// The sub-table of the `mv-apply` subquery being lowered (its `ApplyInput`).
    apply_input: RefCell<Option<LogicalPlan>>,
}

/// Stack for lowering: it recurses once per operator, and debug builds' frames are large
/// enough that a long pipeline would exhaust a 2 MiB worker stack.
const LOWERING_STACK: usize = 256 * 1024 * 1024;

/// The deepest query (in operator frames, see `Prepared::depth`) lowered on the caller's
/// stack. Starting a thread costs about a tenth of planning a 2 KB query, and most
/// queries are far shallower than this; a debug build's lowering of this depth fits in
/// half of a 2 MiB stack (the test `queries_lowered_in_place_fit_in_half_a_worker_stack`).
const INLINE_DEPTH: usize = 48;

/// The stack an expression's lowering takes, in frames of an operator's: in a debug build
/// one level of nested calls takes about 77 KiB, one operator about 16 KiB.
pub(crate) const EXPRESSION_FRAMES: usize = 5;

/// Runs a lowering of a query `depth` deep: in place when it is shallow, otherwise on a
/// thread of its own with a large stack (virtual memory, only used as deep as the query
/// goes).
pub(crate) fn on_large_stack<T: Send>(
    depth: usize,
    lower: impl FnOnce() -> Result<T, PlanError> + Send,
) -> Result<T, PlanError> {
    if depth <= INLINE_DEPTH {
        // As on the planner thread, a bug in lowering fails the query, not the caller.
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(lower))
            .map_err(|_| PlanError::new("internal planning error: the planner panicked"))?;
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("kql-planner".to_string())
            .stack_size(LOWERING_STACK)
            .spawn_scoped(scope, lower)
            .map_err(|e| PlanError::new(format!("cannot start the planner: {e}")))?
            .join()
            .map_err(|_| PlanError::new("internal planning error: the planner panicked"))?
    })
}

pub(crate) fn column_expr(column: &Column) -> Expr {
    Expr::Column(column.clone())
}

pub(crate) fn named(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

pub(crate) fn builder(plan: LogicalPlan) -> LogicalPlanBuilder {
    LogicalPlanBuilder::from(plan)
}

/// Plan nodes built for lowering. DataFusion's `LogicalPlanBuilder` resolves every
/// unqualified column of a projection, filter, sort, aggregate or window by first
/// searching the whole input plan, every expression of every node, for the columns of
/// `USING` joins: once per column, so a node over a long pipeline costs O(columns ×
/// plan). That was most of the time of planning a 2 KB query. Lowering builds no `USING`
/// join, so these methods resolve the columns against the input's schema alone and build
/// the nodes directly, with expressions DataFusion need not resolve again.
pub(crate) trait Resolved: Sized {
    fn project_resolved(self, exprs: impl IntoIterator<Item = Expr>) -> DFResult<Self>;
    fn filter_resolved(self, predicate: Expr) -> DFResult<Self>;
    /// A sort on columns of the input (no hidden sort columns are added, unlike
    /// `LogicalPlanBuilder::sort`), keeping the first `fetch` rows.
    fn sort_resolved(self, sorts: Vec<SortExpr>, fetch: Option<usize>) -> DFResult<Self>;
    fn aggregate_resolved(self, group: Vec<Expr>, aggregates: Vec<Expr>) -> DFResult<Self>;
    fn window_resolved(self, windows: Vec<Expr>) -> DFResult<Self>;
}

impl Resolved for LogicalPlanBuilder {
    /// The output schema is built here too: DataFusion's `Projection::try_new` works out
    /// each aliased expression's field twice and then prints every expression and every
    /// input column name to look for functional dependencies, which lowering's plans do
    /// not use; that printing was the largest part of planning a table scan.
    fn project_resolved(self, exprs: impl IntoIterator<Item = Expr>) -> DFResult<Self> {
        let plan = self.build()?;
        let input = plan.schema();
        let exprs = qualify_all(exprs, input)?;
        let fields = exprs
            .iter()
            .map(|e| output_field(e, input))
            .collect::<DFResult<Vec<_>>>()?;
        let schema = DFSchema::new_with_metadata(fields, DFSchema::metadata(input).clone())?;
        let projection = Projection::try_new_with_schema(exprs, Arc::new(plan), Arc::new(schema))?;
        Ok(LogicalPlanBuilder::from(LogicalPlan::Projection(
            projection,
        )))
    }

    fn filter_resolved(self, predicate: Expr) -> DFResult<Self> {
        let plan = self.build()?;
        let predicate = qualify(predicate, plan.schema())?;
        let filter = Filter::try_new(predicate, Arc::new(plan))?;
        Ok(LogicalPlanBuilder::from(LogicalPlan::Filter(filter)))
    }

    fn sort_resolved(self, sorts: Vec<SortExpr>, fetch: Option<usize>) -> DFResult<Self> {
        let plan = self.build()?;
        let expr = sorts
            .into_iter()
            .map(|s| {
                Ok(SortExpr {
                    expr: qualify(s.expr, plan.schema())?,
                    ..s
                })
            })
            .collect::<DFResult<Vec<_>>>()?;
        Ok(LogicalPlanBuilder::from(LogicalPlan::Sort(Sort {
            expr,
            input: Arc::new(plan),
            fetch,
        })))
    }

    fn aggregate_resolved(self, group: Vec<Expr>, aggregates: Vec<Expr>) -> DFResult<Self> {
        let plan = self.build()?;
        let group = qualify_all(group, plan.schema())?;
        let aggregates = qualify_all(aggregates, plan.schema())?;
        let aggregate = Aggregate::try_new(Arc::new(plan), group, aggregates)?;
        Ok(LogicalPlanBuilder::from(LogicalPlan::Aggregate(aggregate)))
    }

    fn window_resolved(self, windows: Vec<Expr>) -> DFResult<Self> {
        let plan = self.build()?;
        let windows = qualify_all(windows, plan.schema())?;
        let window = Window::try_new(windows, Arc::new(plan))?;
        Ok(LogicalPlanBuilder::from(LogicalPlan::Window(window)))
    }
}

/// The field `expr` projects from `input`, as `Expr::to_field` makes it.
fn output_field(expr: &Expr, input: &DFSchema) -> DFResult<(Option<TableReference>, FieldRef)> {
    match expr {
        Expr::Column(c) => Ok((c.relation.clone(), Arc::clone(input.field_from_column(c)?))),
        Expr::Alias(Alias {
            expr: inner,
            relation,
            name,
            metadata: None,
        }) => Ok((relation.clone(), unnamed_field(inner, input)?.renamed(name))),
        other => other.to_field(input),
    }
}

/// The field `expr` makes over `input` as `Expr::to_field` works it out, but for its
/// name, which the caller gives. `to_field` prints the name of the expression at every
/// level of nesting it visits, and lowering renames every output anyway: the kinds of
/// expression lowering projects most are worked out here, the rest by `to_field`.
fn unnamed_field(expr: &Expr, input: &DFSchema) -> DFResult<FieldRef> {
    match expr {
        Expr::Column(c) => Ok(Arc::clone(input.field_from_column(c)?)),
        Expr::Literal(value, None) => {
            Ok(Arc::new(Field::new("", value.data_type(), value.is_null())))
        }
        Expr::Cast(Cast { expr: inner, field }) if is_type_only(field) => {
            let source = unnamed_field(inner, input)?;
            if source
                .metadata()
                .keys()
                .any(|k| k.starts_with("ARROW:extension:"))
            {
                // `to_field` drops an extension type from the field; let it.
                return Ok(expr.to_field(input)?.1);
            }
            Ok(Arc::new(
                source
                    .as_ref()
                    .clone()
                    .with_data_type(field.data_type().clone()),
            ))
        }
        Expr::ScalarFunction(ScalarFunction { func, args }) => {
            let fields = args
                .iter()
                .map(|arg| unnamed_field(arg, input))
                .collect::<DFResult<Vec<_>>>()?;
            let Ok(fields) = fields_with_udf(&fields, func.as_ref()) else {
                // A call DataFusion refuses: its error, with the call's name.
                return Ok(expr.to_field(input)?.1);
            };
            let literals: Vec<Option<&ScalarValue>> = args
                .iter()
                .map(|arg| match arg {
                    Expr::Literal(value, _) => Some(value),
                    _ => None,
                })
                .collect();
            func.return_field_from_args(ReturnFieldArgs {
                arg_fields: &fields,
                scalar_arguments: &literals,
            })
        }
        other => Ok(other.to_field(input)?.1),
    }
}

/// A cast to a type alone (no name, metadata or nullability of its own), after which
/// the field keeps the source's nullability and metadata.
fn is_type_only(target: &Field) -> bool {
    target.name().is_empty() && target.is_nullable() && target.metadata().is_empty()
}

fn qualify_all(exprs: impl IntoIterator<Item = Expr>, schema: &DFSchema) -> DFResult<Vec<Expr>> {
    exprs.into_iter().map(|e| qualify(e, schema)).collect()
}

/// `expr` with its unqualified columns qualified as `schema` qualifies them. A name the
/// schema does not hold once is left for DataFusion to report.
fn qualify(expr: Expr, schema: &DFSchema) -> DFResult<Expr> {
    expr.transform(|e| {
        Ok(match e {
            Expr::Column(c) if c.relation.is_none() => {
                match schema.qualified_field_with_unqualified_name(&c.name) {
                    Ok((Some(qualifier), _)) => {
                        Transformed::yes(Expr::Column(Column::new(Some(qualifier.clone()), c.name)))
                    }
                    _ => Transformed::no(Expr::Column(c)),
                }
            }
            other => Transformed::no(other),
        })
    })
    .data()
}

/// The plan's columns, positionally.
pub(crate) fn columns(plan: &LogicalPlan) -> Vec<Column> {
    plan.schema().columns()
}

fn order_sort() -> SortExpr {
    named(ORDER).sort(true, false)
}

impl<'a> Lowerer<'a> {
    pub fn new(text: &'a str, now: i64, materialized: &'a [Rel], prepared: &'a Prepared) -> Self {
        Lowerer {
            text,
            now,
            materialized,
            prepared,
            names: Cell::new(0),
            apply_input: RefCell::new(None),
        }
    }

    /// Whether an `mv-apply` subquery is being lowered.
    pub fn in_apply(&self) -> bool {
        self.apply_input.borrow().is_some()
    }

    /// Runs `lower` with `input` as the `mv-apply` sub-table (or none).
    pub fn with_apply_input<T>(&self, input: Option<LogicalPlan>, lower: impl FnOnce() -> T) -> T {
        let outer = self.apply_input.replace(input);
        let result = lower();
        self.apply_input.replace(outer);
        result
    }

    /// The [`APPLY`] column of `plan` when lowering an `mv-apply` subquery.
    pub fn apply_column(&self, plan: &LogicalPlan) -> Option<Column> {
        if !self.in_apply() {
            return None;
        }
        columns(plan).into_iter().find(|c| c.name == APPLY)
    }

    /// Every column an `mv-apply` subquery carries for its input row: [`APPLY`] and the
    /// row's own columns (`APPLY` + `_o<i>`), in plan order.
    pub fn apply_columns(&self, plan: &LogicalPlan) -> Vec<Column> {
        if !self.in_apply() {
            return Vec::new();
        }
        columns(plan)
            .into_iter()
            .filter(|c| c.name.starts_with(APPLY))
            .collect()
    }

    fn not_in_apply(&self, what: &str) -> Result<(), PlanError> {
        if self.in_apply() {
            return Err(PlanError::new(format!(
                "'{what}' inside mv-apply is not supported yet"
            )));
        }
        Ok(())
    }

    pub fn error(&self, span: Span, message: impl Into<String>) -> PlanError {
        PlanError::at(self.text, span, message)
    }

    /// A fresh internal column name.
    pub fn fresh(&self, what: &str) -> String {
        let n = self.names.get();
        self.names.set(n + 1);
        format!("\u{1}{what}{n}")
    }

    /// The first `count` columns of a lowered plan (its Rel's columns, without [`ORDER`]).
    pub fn strip(&self, lowered: Lowered, count: usize) -> Result<LogicalPlan, PlanError> {
        if !lowered.ordered {
            return Ok(lowered.plan);
        }
        let exprs: Vec<Expr> = self
            .payload(&lowered.plan, count)
            .iter()
            .map(column_expr)
            .collect();
        Ok(builder(lowered.plan).project_resolved(exprs)?.build()?)
    }

    /// The columns a plan carries for its Rel: the first `known` (the Rel's schema), the
    /// data-dependent ones of an open schema (`bag_unpack`, `pivot`) after them, and what
    /// an mv-apply subquery carries; not [`ORDER`] nor internal temporaries.
    pub fn payload(&self, plan: &LogicalPlan, known: usize) -> Vec<Column> {
        let mut out = Vec::new();
        for (i, c) in columns(plan).into_iter().enumerate() {
            let internal = c.name.starts_with('\u{1}');
            if i < known || !internal || (self.in_apply() && c.name.starts_with(APPLY)) {
                out.push(c);
            }
        }
        out
    }

    /// The data-dependent columns of an open schema's plan (after its `known` columns).
    pub fn extras(&self, plan: &LogicalPlan, known: usize) -> Vec<Column> {
        columns(plan)
            .into_iter()
            .skip(known)
            .filter(|c| !c.name.starts_with('\u{1}'))
            .collect()
    }

    pub fn rel(&self, rel: &Rel) -> Result<Lowered, PlanError> {
        match &rel.kind {
            RelKind::Scan { table } => self.scan(table, rel),
            RelKind::Materialized { id } => self.materialized(*id),
            RelKind::Values { rows } => self.values(rows, rel),
            RelKind::Range { from, to, step } => self.range(from, to, step, rel),
            RelKind::Filter { input, predicate } => self.filter(input, predicate),
            RelKind::Project { input, exprs } => self.project(input, exprs, rel),
            RelKind::Aggregate {
                input,
                keys,
                aggregates,
            } => self.aggregate(rel, input, keys, aggregates),
            RelKind::Distinct { input } => {
                let plan = self.strip(self.rel(input)?, input.schema.len())?;
                Ok(Lowered {
                    plan: builder(plan).distinct()?.build()?,
                    ordered: false,
                })
            }
            RelKind::Sort { input, keys } => self.sort(input, keys, None),
            RelKind::Limit { input, count } => self.limit(input, count),
            RelKind::Sample { input, count } => {
                self.not_in_apply("sample")?;
                let n = self.row_count(count)?;
                let plan = self.strip(self.rel(input)?, input.schema.len())?;
                let random = datafusion::functions::math::expr_fn::random();
                Ok(Lowered {
                    plan: builder(plan)
                        .sort_resolved(vec![random.sort(true, false)], Some(n))?
                        .build()?,
                    ordered: false,
                })
            }
            RelKind::Serialize { input } => {
                let lowered = self.rel(input)?;
                if lowered.ordered {
                    return Ok(lowered);
                }
                self.number_rows(lowered.plan, vec![], input.schema.len())
            }
            RelKind::Join {
                left,
                right,
                kind,
                keys,
            } => self.join(rel, left, right, *kind, keys),
            RelKind::Union { inputs } => self.union(inputs),
            RelKind::MvExpand {
                input,
                columns,
                bag_expansion,
                with_item_index,
                limit,
            } => self.mv_expand(
                rel,
                input,
                columns,
                *bag_expansion,
                *with_item_index,
                limit.as_deref(),
            ),
            RelKind::Parse {
                input,
                source,
                kind,
                segments,
                drop_unmatched,
            } => self.parse(rel, input, source, kind, segments, *drop_unmatched),
            RelKind::MakeSeries {
                input,
                keys,
                aggregates,
                axis,
                from,
                to,
                step,
            } => self.make_series(
                rel,
                input,
                keys,
                aggregates,
                axis,
                from.as_deref(),
                to.as_deref(),
                step,
            ),
            RelKind::MvApply {
                input,
                columns,
                with_item_index,
                limit,
                subquery,
                outputs,
            } => self.mv_apply(
                rel,
                input,
                columns,
                *with_item_index,
                limit.as_deref(),
                subquery,
                outputs,
            ),
            RelKind::ApplyInput => match self.apply_input.borrow().clone() {
                Some(plan) => Ok(Lowered {
                    plan,
                    ordered: false,
                }),
                None => Err(PlanError::new(
                    "internal planning error: mv-apply input outside mv-apply",
                )),
            },
            RelKind::BagUnpack { .. } | RelKind::Pivot { .. } => {
                self.not_in_apply("evaluate")?;
                self.reshaped(rel)
            }
            RelKind::ExternalData { .. } => self.external(rel),
        }
    }

    /// The rows `prepare` read for an `externaldata` node, text columns whose missing
    /// fields become "" (KQL strings are never null), or `null` for a dynamic column so
    /// that its `parse_json` gives the dynamic null rather than an empty string.
    fn external(&self, rel: &Rel) -> Result<Lowered, PlanError> {
        let RelKind::ExternalData { declared, .. } = &rel.kind else {
            return Err(PlanError::new(
                "internal planning error: not an externaldata node",
            ));
        };
        let plan = self
            .prepared
            .external
            .get(&super::expr::rel_key(rel))
            .cloned()
            .ok_or_else(|| PlanError::new("internal planning error: externaldata was not read"))?;
        let exprs: Vec<Expr> = columns(&plan)
            .iter()
            .zip(declared)
            .map(|(c, ty)| {
                let missing = if *ty == ScalarType::Dynamic {
                    "null"
                } else {
                    ""
                };
                coalesce(vec![column_expr(c), lit(missing)]).alias(&c.name)
            })
            .collect();
        Ok(Lowered {
            plan: builder(plan).project_resolved(exprs)?.build()?,
            ordered: false,
        })
    }

    /// The result plan of a statement: rows in order, exactly the Rel's columns with its
    /// names and the Arrow types of their KQL types.
    pub fn finish(&self, rel: &Rel) -> Result<LogicalPlan, PlanError> {
        Ok(self.finish_with_columns(rel)?.0)
    }

    /// [`Self::finish`], with the result's columns (an open schema's data-dependent
    /// columns included, typed by their `kql_type` metadata).
    pub fn finish_with_columns(
        &self,
        rel: &Rel,
    ) -> Result<(LogicalPlan, Vec<ColumnDef>), PlanError> {
        let lowered = self.rel(rel)?;
        let mut b = builder(lowered.plan);
        if lowered.ordered {
            b = b.sort_resolved(vec![order_sort()], None)?;
        }
        let cols = columns(b.plan());
        let mut exprs = Vec::with_capacity(rel.schema.len());
        let mut defs = rel.schema.columns.clone();
        for (i, column) in rel.schema.columns.iter().enumerate() {
            let c = cols
                .get(i)
                .ok_or_else(|| PlanError::new("internal planning error: missing output column"))?;
            exprs.push(self.conform(b.plan(), c, column.ty)?.alias(&column.name));
        }
        if rel.schema.open {
            for extra in self.extras(b.plan(), rel.schema.len()) {
                let (_, field) = b.plan().schema().qualified_field_from_column(&extra)?;
                let ty = super::types::kql_type_of(field).unwrap_or(ScalarType::Dynamic);
                exprs.push(self.conform(b.plan(), &extra, ty)?.alias(&extra.name));
                defs.push(ColumnDef::new(extra.name.clone(), ty));
            }
        }
        Ok((b.project_resolved(exprs)?.build()?, defs))
    }

    /// A column cast to the Arrow type of `ty` when the plan has it as something else
    /// (stored files may carry `Utf8View`, DataFusion may widen).
    pub fn conform(
        &self,
        plan: &LogicalPlan,
        column: &Column,
        ty: ScalarType,
    ) -> Result<Expr, PlanError> {
        let expr = column_expr(column);
        let (field_type, _) = self.field_type(plan, column)?;
        let wanted = arrow_type(ty);
        Ok(if field_type == wanted {
            expr
        } else {
            cast(expr, wanted)
        })
    }

    pub fn field_type(
        &self,
        plan: &LogicalPlan,
        column: &Column,
    ) -> Result<(DataType, bool), PlanError> {
        let (_, field) = plan.schema().qualified_field_from_column(column)?;
        Ok((field.data_type().clone(), field.is_nullable()))
    }

    /// A constant row count (`take`, `sample`, mv-expand's `limit`), clamped at 0.
    pub fn row_count(&self, count: &BoundExpr) -> Result<usize, PlanError> {
        let value = constant_long(count)
            .ok_or_else(|| self.error(count.span, "the row count must be a constant number"))?;
        Ok(usize::try_from(value.max(0)).unwrap_or(usize::MAX))
    }

    fn scan(&self, table: &str, rel: &Rel) -> Result<Lowered, PlanError> {
        let source = self
            .prepared
            .tables
            .get(table)
            .ok_or_else(|| PlanError::new(format!("table '{table}' is not available")))?;
        let plan =
            LogicalPlanBuilder::scan(TableReference::bare(table), source.clone(), None)?.build()?;
        let available = plan.schema().columns();
        let mut exprs = Vec::with_capacity(rel.schema.len());
        for column in &rel.schema.columns {
            let found = available
                .iter()
                .find(|c| c.name == column.name)
                .ok_or_else(|| {
                    PlanError::new(format!("table '{table}' has no column '{}'", column.name))
                })?;
            let (_, nullable) = self.field_type(&plan, found)?;
            let mut expr = self.conform(&plan, found, column.ty)?;
            // KQL strings are never null: a missing one is "".
            if column.ty == ScalarType::String && nullable {
                expr = coalesce(vec![expr, lit("")]);
            }
            exprs.push(expr.alias(&column.name));
        }
        Ok(Lowered {
            plan: builder(plan).project_resolved(exprs)?.build()?,
            ordered: false,
        })
    }

    fn materialized(&self, id: usize) -> Result<Lowered, PlanError> {
        if let Some(plan) = self.prepared.materialized.get(&id) {
            let ordered = plan.schema().columns().iter().any(|c| c.name == ORDER);
            return Ok(Lowered {
                plan: plan.clone(),
                ordered,
            });
        }
        let rel = self
            .materialized
            .get(id)
            .ok_or_else(|| PlanError::new("internal planning error: unknown materialized input"))?;
        self.rel(rel)
    }

    fn values(&self, rows: &[Vec<BoundExpr>], rel: &Rel) -> Result<Lowered, PlanError> {
        let ordered = rel.serialized;
        if rows.is_empty() || rel.schema.is_empty() {
            let mut fields: Vec<Field> = rel
                .schema
                .columns
                .iter()
                .map(|c| Field::new(&c.name, arrow_type(c.ty), true))
                .collect();
            if ordered {
                fields.push(Field::new(ORDER, DataType::Int64, false));
            }
            let schema = DFSchema::try_from(Schema::new(fields))?;
            return Ok(Lowered {
                plan: LogicalPlan::EmptyRelation(EmptyRelation {
                    produce_one_row: !rows.is_empty(),
                    schema: Arc::new(schema),
                }),
                ordered,
            });
        }
        let mut values = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            let mut cells = Vec::with_capacity(row.len() + 1);
            for (cell, column) in row.iter().zip(&rel.schema.columns) {
                let mut scope = Scope::constant();
                let expr = self.expr(cell, &mut scope)?;
                let expr = self.convert(expr, cell.ty, column.ty);
                cells.push(cast(expr, arrow_type(column.ty)));
            }
            if ordered {
                cells.push(lit(index as i64));
            }
            values.push(cells);
        }
        let plan = LogicalPlanBuilder::values(values)?.build()?;
        let mut exprs: Vec<Expr> = Vec::new();
        let cols = columns(&plan);
        for (c, column) in cols.iter().zip(&rel.schema.columns) {
            exprs.push(column_expr(c).alias(&column.name));
        }
        if ordered && let Some(c) = cols.get(rel.schema.len()) {
            exprs.push(column_expr(c).alias(ORDER));
        }
        Ok(Lowered {
            plan: builder(plan).project_resolved(exprs)?.build()?,
            ordered,
        })
    }

    /// `range`: generated lazily by [`super::range::RangeTable`] from its constant bounds.
    fn range(
        &self,
        from: &BoundExpr,
        to: &BoundExpr,
        step: &BoundExpr,
        rel: &Rel,
    ) -> Result<Lowered, PlanError> {
        let Some(column) = rel.schema.columns.first() else {
            return Err(PlanError::new(
                "internal planning error: range without a column",
            ));
        };
        let ty = column.ty;
        let mut bounds = Vec::with_capacity(3);
        for bound in [from, to, step] {
            let mut scope = Scope::constant();
            let expr = self.expr(bound, &mut scope)?;
            bounds.push(self.evaluate(expr, bound.span)?);
        }
        let table = super::range::RangeTable::new(ty, &bounds[0], &bounds[1], &bounds[2])?;
        let plan = LogicalPlanBuilder::scan(
            TableReference::bare(self.fresh("range")),
            provider_as_source(Arc::new(table)),
            None,
        )?
        .build()?;
        let cols = columns(&plan);
        let (Some(value), Some(position)) = (cols.first(), cols.get(1)) else {
            return Err(PlanError::new("internal planning error: range columns"));
        };
        let plan = builder(plan)
            .project_resolved(vec![
                column_expr(value).alias(&column.name),
                column_expr(position).alias(ORDER),
            ])?
            .build()?;
        Ok(Lowered {
            plan,
            ordered: true,
        })
    }

    /// The value of a constant expression, computed now (range bounds are needed before
    /// the plan runs).
    pub fn evaluate(&self, expr: Expr, span: Span) -> Result<ScalarValue, PlanError> {
        let schema = DFSchema::empty();
        let props = ExecutionProps::new();
        let planning =
            datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default();
        let physical = create_physical_expr(&expr, &schema, &props, &planning)
            .map_err(|e| self.error(span, format!("this value must be a constant: {e}")))?;
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )
        .map_err(|e| PlanError::new(format!("internal planning error: {e}")))?;
        let value = physical
            .evaluate(&batch)
            .map_err(|e| self.error(span, format!("cannot compute this constant: {e}")))?;
        Ok(match value {
            ColumnarValue::Scalar(scalar) => scalar,
            ColumnarValue::Array(array) => ScalarValue::try_from_array(&array, 0)?,
        })
    }

    /// Appends [`ORDER`] numbering the rows by `keys` (any order when empty), keeping the
    /// first `count` columns.
    pub fn number_rows(
        &self,
        plan: LogicalPlan,
        keys: Vec<SortExpr>,
        count: usize,
    ) -> Result<Lowered, PlanError> {
        let numbered = self.fresh("row");
        // An explicit row frame: DataFusion refuses the default one without ORDER BY.
        let window = row_number()
            .order_by(keys)
            .window_frame(super::window::running_frame())
            .build()?
            .alias(&numbered);
        let keep = self.payload(&plan, count);
        let plan = builder(plan).window_resolved(vec![window])?.build()?;
        let mut exprs: Vec<Expr> = keep.iter().map(column_expr).collect();
        exprs.push(named(&numbered).alias(ORDER));
        Ok(Lowered {
            plan: builder(plan).project_resolved(exprs)?.build()?,
            ordered: true,
        })
    }

    fn filter(&self, input: &Rel, predicate: &BoundExpr) -> Result<Lowered, PlanError> {
        let lowered = self.rel(input)?;
        let cols = columns(&lowered.plan);
        let mut windows = Vec::new();
        let order = lowered.ordered.then(|| named(ORDER));
        let mut scope = Scope::row(&cols, &mut windows, order).with_late_types(&lowered.plan);
        let condition = self.predicate(predicate, &mut scope)?;
        let plan = self.with_windows(lowered.plan, windows)?;
        let filtered = builder(plan).filter_resolved(condition)?.build()?;
        // Drop the window columns again.
        let keep: Vec<Expr> = cols.iter().map(column_expr).collect();
        let plan = if columns(&filtered).len() == keep.len() {
            filtered
        } else {
            builder(filtered).project_resolved(keep)?.build()?
        };
        Ok(Lowered {
            plan,
            ordered: lowered.ordered,
        })
    }

    /// Adds the window columns collected while lowering expressions, one `Window` node
    /// per level.
    pub fn with_windows(
        &self,
        plan: LogicalPlan,
        windows: Windows,
    ) -> Result<LogicalPlan, PlanError> {
        let mut plan = plan;
        let top = windows.iter().map(|(level, _)| *level).max();
        for level in 0..=top.unwrap_or(0) {
            let exprs: Vec<Expr> = windows
                .iter()
                .filter(|(l, _)| *l == level)
                .map(|(_, e)| e.clone())
                .collect();
            if !exprs.is_empty() {
                plan = builder(plan).window_resolved(exprs)?.build()?;
                // A plain projection between levels: DataFusion's optimizer loses a
                // window column that a window directly above reads (a query then fails
                // with "No field named window1").
                let all: Vec<Expr> = columns(&plan).iter().map(column_expr).collect();
                plan = builder(plan).project_resolved(all)?.build()?;
            }
        }
        Ok(plan)
    }

    fn project(&self, input: &Rel, exprs: &[BoundExpr], rel: &Rel) -> Result<Lowered, PlanError> {
        let lowered = self.rel(input)?;
        let cols = columns(&lowered.plan);
        let mut windows = Vec::new();
        let order = lowered.ordered.then(|| named(ORDER));
        let mut lowered_exprs = Vec::with_capacity(exprs.len());
        {
            let mut scope = Scope::row(&cols, &mut windows, order).with_late_types(&lowered.plan);
            for (expr, column) in exprs.iter().zip(&rel.schema.columns) {
                let value = self.expr(expr, &mut scope)?;
                let value = self.convert(value, expr.ty, column.ty);
                // A computed string is never null either.
                let value = if column.ty == ScalarType::String
                    && !matches!(
                        expr.kind,
                        BoundExprKind::Column { .. } | BoundExprKind::Literal(_)
                    ) {
                    coalesce(vec![value, lit("")])
                } else {
                    value
                };
                lowered_exprs.push(value.alias(&column.name));
            }
        }
        if rel.schema.open {
            // Columns only known at run time pass through unless an item replaced them.
            for extra in self.extras(&lowered.plan, input.schema.len()) {
                if !rel.schema.contains(&extra.name) {
                    lowered_exprs.push(column_expr(&extra));
                }
            }
        }
        let ordered = lowered.ordered && rel.serialized;
        if ordered {
            lowered_exprs.push(named(ORDER));
        }
        lowered_exprs.extend(self.apply_columns(&lowered.plan).iter().map(column_expr));
        let plan = self.with_windows(lowered.plan, windows)?;
        Ok(Lowered {
            plan: builder(plan).project_resolved(lowered_exprs)?.build()?,
            ordered,
        })
    }

    pub fn sort(
        &self,
        input: &Rel,
        keys: &[SortKey],
        fetch: Option<usize>,
    ) -> Result<Lowered, PlanError> {
        let lowered = self.rel(input)?;
        let cols = columns(&lowered.plan);
        let mut windows = Vec::new();
        let order = lowered.ordered.then(|| named(ORDER));
        let mut sorts = Vec::with_capacity(keys.len() + 1);
        {
            let mut scope = Scope::row(&cols, &mut windows, order).with_late_types(&lowered.plan);
            for key in keys {
                let expr = self.expr(&key.expr, &mut scope)?;
                let expr = if key.expr.ty == ScalarType::Dynamic {
                    self.dynamic_sort_key(expr)
                } else {
                    expr
                };
                sorts.push(expr.sort(!key.descending, key.nulls_first));
            }
        }
        // Kusto's sort is stable: ties keep the input's order.
        if lowered.ordered {
            sorts.push(order_sort());
        }
        let plan = self.with_windows(lowered.plan, windows)?;
        let plan = builder(plan).sort_resolved(sorts.clone(), fetch)?.build()?;
        self.number_rows(plan, sorts, input.schema.len())
    }

    /// Dynamic values sort as their string form (numbers would sort as text otherwise
    /// only when mixed with strings).
    fn dynamic_sort_key(&self, expr: Expr) -> Expr {
        udf::dynamic::string_form_nullable(expr)
    }

    fn limit(&self, input: &Rel, count: &BoundExpr) -> Result<Lowered, PlanError> {
        let n = self.row_count(count)?;
        if self.in_apply() {
            return self.limit_per_apply_row(input, n);
        }
        if let RelKind::Sort { input: inner, keys } = &input.kind {
            return self.sort(inner, keys, Some(n));
        }
        let lowered = self.rel(input)?;
        let plan = if lowered.ordered {
            builder(lowered.plan)
                .sort_resolved(vec![order_sort()], Some(n))?
                .build()?
        } else {
            builder(lowered.plan).limit(0, Some(n))?.build()?
        };
        Ok(Lowered {
            plan,
            ordered: lowered.ordered,
        })
    }

    /// `take`/`top` inside mv-apply: the first `n` rows of each input row's sub-table.
    fn limit_per_apply_row(&self, input: &Rel, n: usize) -> Result<Lowered, PlanError> {
        let lowered = self.rel(input)?;
        let Some(apply) = self.apply_column(&lowered.plan) else {
            return Err(PlanError::new(
                "internal planning error: mv-apply rows without their row",
            ));
        };
        let order = if lowered.ordered {
            vec![order_sort()]
        } else {
            vec![]
        };
        let rank = self.fresh("rank");
        let window = row_number()
            .partition_by(vec![column_expr(&apply)])
            .order_by(order)
            .window_frame(super::window::running_frame())
            .build()?
            .alias(&rank);
        let width = columns(&lowered.plan).len();
        let plan = builder(lowered.plan)
            .window_resolved(vec![window])?
            .build()?;
        let keep: Vec<Expr> = columns(&plan).iter().take(width).map(column_expr).collect();
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let plan = builder(plan)
            .filter_resolved(cast(named(&rank), DataType::Int64).lt_eq(lit(limit)))?
            .project_resolved(keep)?
            .build()?;
        Ok(Lowered {
            plan,
            ordered: lowered.ordered,
        })
    }

    fn union(&self, inputs: &[Rel]) -> Result<Lowered, PlanError> {
        self.not_in_apply("union")?;
        let mut plans = Vec::with_capacity(inputs.len());
        for input in inputs {
            let width = input.schema.len();
            let plan = self.strip(self.rel(input)?, width)?;
            // Legs are projections onto the union schema; make their types identical.
            let cols = columns(&plan);
            let exprs = cols
                .iter()
                .zip(&input.schema.columns)
                .map(|(c, column)| Ok(self.conform(&plan, c, column.ty)?.alias(&column.name)))
                .collect::<Result<Vec<_>, PlanError>>()?;
            plans.push(builder(plan).project_resolved(exprs)?.build()?);
        }
        let mut plans = plans.into_iter();
        let first = plans
            .next()
            .ok_or_else(|| PlanError::new("union has no inputs"))?;
        let mut b = builder(first);
        for plan in plans {
            b = b.union(plan)?;
        }
        Ok(Lowered {
            plan: b.build()?,
            ordered: false,
        })
    }
}

/// The value of a constant integer expression (a literal, possibly widened or negated).
pub(crate) fn constant_long(expr: &BoundExpr) -> Option<i64> {
    match &expr.kind {
        BoundExprKind::Literal(Literal::Long(v)) => Some(*v),
        BoundExprKind::Literal(Literal::Int(v)) => Some(i64::from(*v)),
        BoundExprKind::Literal(Literal::Real(v)) => Some(*v as i64),
        BoundExprKind::Cast(inner) => constant_long(inner),
        BoundExprKind::Unary {
            op: crate::ast::UnaryOp::Neg,
            operand,
        } => constant_long(operand).and_then(i64::checked_neg),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::INLINE_DEPTH;
    use crate::QueryParameters;
    use crate::plan::external::ExternalFiles;
    use crate::plan::{bind, plan_only, prepare::prepare};
    use datafusion::prelude::SessionContext;
    use futures::executor::block_on;

    async fn depth(ctx: &SessionContext, query: &str) -> usize {
        let bound = bind(ctx, query, &QueryParameters::default())
            .await
            .expect("binds");
        let result = bound.query.results.last().expect("a result");
        let files = ExternalFiles::new();
        prepare(ctx, &bound.query, result, &bound.text, 0, false, &files)
            .await
            .expect("prepares")
            .depth
    }

    /// Queries up to [`INLINE_DEPTH`] deep are lowered on the caller's stack. In a debug
    /// build, whose frames are the largest, they must fit in half the 2 MiB stack of a
    /// server worker, whether the depth is in operators or in nested calls.
    #[test]
    fn queries_lowered_in_place_fit_in_half_a_worker_stack() {
        let shapes: [fn(usize) -> String; 2] = [
            |n| format!("range x from 1 to 10 step 1{}", " | where x > 0".repeat(n)),
            |n| format!("print x = {}1{}", "abs(".repeat(n), ")".repeat(n)),
        ];
        for shape in shapes {
            let ctx = SessionContext::new();
            let (query, deepest) = block_on(async {
                let mut n = 0;
                while depth(&ctx, &shape(n + 1)).await <= INLINE_DEPTH {
                    n += 1;
                }
                (shape(n), depth(&ctx, &shape(n)).await)
            });
            assert!(deepest + 10 >= INLINE_DEPTH, "{query}: only {deepest} deep");
            let planned = std::thread::Builder::new()
                .stack_size(1024 * 1024)
                .spawn(move || {
                    let ctx = SessionContext::new();
                    block_on(plan_only(&ctx, &query, &QueryParameters::default())).map(|_| ())
                })
                .expect("spawn")
                .join();
            assert!(matches!(planned, Ok(Ok(()))), "{planned:?}");
        }
    }
}
