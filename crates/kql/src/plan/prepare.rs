//! What lowering needs from the engine before it starts: the table sources, the rows of
//! `externaldata` (read from local files, see `external`), and the results of
//! uncorrelated subqueries and `materialize`d inputs.
//!
//! KQL subqueries never read the outer row, so `toscalar(...)`, `x in ((T | ...))` and
//! `materialize(...)` are run first, innermost first, and their results enter the outer
//! plan as literals (or a cached in-memory table). That is how Kusto evaluates them, and
//! it avoids DataFusion's limits on subqueries inside arbitrary expressions. In plan-only
//! mode nothing runs; the subqueries appear in the plan as DataFusion subqueries.

use super::error::{HuntError, PlanError};
use super::expr::rel_key;
use super::external;
use super::rel::{EXPRESSION_FRAMES, Lowerer, on_large_stack};
use crate::bind::{BoundExpr, BoundExprKind, BoundQuery, ListItem, Rel, RelKind};
use datafusion::arrow::array::Array;
use datafusion::catalog::TableProvider;
use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, TableSource};
use datafusion::prelude::SessionContext;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Most values an `in ((subquery))` list may hold (Kusto's own limit).
pub(crate) const MAX_IN_VALUES: usize = 1_000_000;

#[derive(Default)]
pub(crate) struct Prepared {
    pub tables: HashMap<String, Arc<dyn TableSource>>,
    /// Cached `materialize` results by id (a scan of an in-memory table).
    pub materialized: HashMap<usize, LogicalPlan>,
    /// `toscalar` results by subquery address.
    pub scalars: HashMap<usize, ScalarValue>,
    /// `in ((subquery))` first-column values by subquery address.
    pub lists: HashMap<usize, Vec<ScalarValue>>,
    /// `bag_unpack`/`pivot` results by operator address (a scan of an in-memory table).
    pub open: HashMap<usize, LogicalPlan>,
    /// `externaldata` rows (text columns) by operator address (a scan of an in-memory table).
    pub external: HashMap<usize, LogicalPlan>,
    /// How deep lowering recurses (see [`on_large_stack`]): the longest chain of nested
    /// operators and expressions in the query, in operator frames.
    pub depth: usize,
}

enum Task<'q> {
    Materialized(usize),
    Scalar(&'q Rel),
    List(&'q Rel),
    /// `bag_unpack` or `pivot`: columns named after data.
    Reshape(&'q Rel),
}

/// The expressions a node evaluates itself (not those of its inputs).
fn node_exprs(rel: &Rel) -> Vec<&BoundExpr> {
    match &rel.kind {
        RelKind::Scan { .. }
        | RelKind::Materialized { .. }
        | RelKind::ApplyInput
        | RelKind::ExternalData { .. }
        | RelKind::Distinct { .. }
        | RelKind::Serialize { .. }
        | RelKind::Join { .. }
        | RelKind::Union { .. }
        | RelKind::BagUnpack { .. } => Vec::new(),
        RelKind::Values { rows } => rows.iter().flatten().collect(),
        RelKind::Range { from, to, step } => vec![from, to, step],
        RelKind::Filter { predicate, .. } => vec![predicate],
        RelKind::Project { exprs, .. } => exprs.iter().collect(),
        RelKind::Aggregate {
            keys, aggregates, ..
        } => keys
            .iter()
            .chain(aggregates.iter().flat_map(|a| a.args.iter()))
            .collect(),
        RelKind::Sort { keys, .. } => keys.iter().map(|k| &k.expr).collect(),
        RelKind::Limit { count, .. } | RelKind::Sample { count, .. } => vec![count],
        RelKind::MvExpand { limit, .. } | RelKind::MvApply { limit, .. } => {
            limit.iter().map(|l| l.as_ref()).collect()
        }
        RelKind::Parse { source, .. } => vec![source],
        RelKind::MakeSeries {
            keys,
            aggregates,
            axis,
            from,
            to,
            step,
            ..
        } => {
            let mut all: Vec<&BoundExpr> = keys.iter().collect();
            for a in aggregates {
                all.extend(a.call.args.iter());
                all.push(&a.default);
            }
            all.push(axis);
            all.extend(from.iter().map(|b| b.as_ref()));
            all.extend(to.iter().map(|b| b.as_ref()));
            all.push(step);
            all
        }
        RelKind::Pivot { aggregate, .. } => aggregate.args.iter().collect(),
    }
}

struct Walk<'q> {
    query: &'q BoundQuery,
    tables: BTreeSet<String>,
    tasks: Vec<Task<'q>>,
    /// The `materialize`d inputs walked so far, with their height (the depth they add
    /// wherever they are used: plan-only lowering inlines them at every use).
    materialized: HashMap<usize, usize>,
    external: Vec<&'q Rel>,
    /// The depth, in operator frames, of the node being walked, and the most seen.
    depth: usize,
    max_depth: usize,
}

impl<'q> Walk<'q> {
    fn rel(&mut self, rel: &'q Rel) {
        self.depth += 1;
        self.max_depth = self.max_depth.max(self.depth);
        match &rel.kind {
            RelKind::Scan { table } => {
                self.tables.insert(table.clone());
            }
            RelKind::ExternalData { .. } => self.external.push(rel),
            RelKind::Materialized { id } => {
                if let Some(height) = self.materialized.get(id) {
                    self.max_depth = self.max_depth.max(self.depth + height);
                } else if let Some(inner) = self.query.materialized.get(*id) {
                    let (above, deepest) = (self.depth, self.max_depth);
                    self.max_depth = 0;
                    self.rel(inner);
                    self.materialized.insert(*id, self.max_depth - above);
                    self.max_depth = self.max_depth.max(deepest);
                    self.tasks.push(Task::Materialized(*id));
                }
            }
            _ => {}
        }
        for input in rel.kind.inputs() {
            self.rel(input);
        }
        for expr in node_exprs(rel) {
            self.expr(expr);
        }
        if matches!(rel.kind, RelKind::BagUnpack { .. } | RelKind::Pivot { .. }) {
            self.tasks.push(Task::Reshape(rel));
        }
        self.depth -= 1;
    }

    fn expr(&mut self, expr: &'q BoundExpr) {
        self.depth += EXPRESSION_FRAMES;
        self.max_depth = self.max_depth.max(self.depth);
        match &expr.kind {
            BoundExprKind::ScalarSubquery(rel) => {
                self.rel(rel);
                self.tasks.push(Task::Scalar(rel));
            }
            BoundExprKind::List { items, .. } => {
                for item in items {
                    if let ListItem::Subquery(rel) = item {
                        self.rel(rel);
                        self.tasks.push(Task::List(rel));
                    }
                }
            }
            _ => {}
        }
        for child in expr.children() {
            self.expr(child);
        }
        self.depth -= EXPRESSION_FRAMES;
    }
}

/// Resolves tables, reads `externaldata` from the local files `external_files` maps its
/// URIs to, and, when `execute`, runs the subqueries `result` depends on.
pub(crate) async fn prepare(
    ctx: &SessionContext,
    query: &BoundQuery,
    result: &Rel,
    text: &str,
    now: i64,
    execute: bool,
    external_files: &external::ExternalFiles,
) -> Result<Prepared, HuntError> {
    let mut walk = Walk {
        query,
        tables: BTreeSet::new(),
        tasks: Vec::new(),
        materialized: HashMap::new(),
        external: Vec::new(),
        depth: 0,
        max_depth: 0,
    };
    walk.rel(result);
    let mut prepared = Prepared {
        depth: walk.max_depth,
        ..Prepared::default()
    };
    for name in &walk.tables {
        let provider: Arc<dyn TableProvider> = ctx
            .table_provider(TableReference::bare(name.as_str()))
            .await
            .map_err(|_| PlanError::new(format!("table '{name}' is not available")))?;
        prepared
            .tables
            .insert(name.clone(), provider_as_source(provider));
    }
    // Every URI is checked before any file is read, so an unmapped one is reported
    // without work.
    let mut reads = Vec::with_capacity(walk.external.len());
    for rel in &walk.external {
        reads.push((*rel, external::resolve(rel, external_files, text)?));
    }
    for (index, (rel, read)) in reads.into_iter().enumerate() {
        let schema = read.schema();
        let batches = read.read().await?;
        let table = MemTable::try_new(schema, vec![batches]).map_err(HuntError::from_datafusion)?;
        let scan = LogicalPlanBuilder::scan(
            TableReference::bare(format!("\u{1}external{index}")),
            provider_as_source(Arc::new(table)),
            None,
        )
        .map_err(PlanError::from)?
        .build()
        .map_err(PlanError::from)?;
        prepared.external.insert(rel_key(rel), scan);
    }
    if !execute {
        return Ok(prepared);
    }
    for task in walk.tasks {
        match task {
            Task::Materialized(id) => {
                let Some(rel) = query.materialized.get(id) else {
                    continue;
                };
                let plan = on_large_stack(prepared.depth, || {
                    Ok(Lowerer::new(text, now, &query.materialized, &prepared)
                        .rel(rel)?
                        .plan)
                })?;
                let schema = Arc::new(plan.schema().as_arrow().clone());
                let batches = collect(ctx, plan).await?;
                let table =
                    MemTable::try_new(schema, vec![batches]).map_err(HuntError::from_datafusion)?;
                let scan = LogicalPlanBuilder::scan(
                    TableReference::bare(format!("\u{1}materialized{id}")),
                    provider_as_source(Arc::new(table)),
                    None,
                )
                .map_err(PlanError::from)?
                .build()
                .map_err(PlanError::from)?;
                prepared.materialized.insert(id, scan);
            }
            Task::Scalar(rel) => {
                let plan = on_large_stack(prepared.depth, || {
                    Lowerer::new(text, now, &query.materialized, &prepared).finish(rel)
                })?;
                let plan = LogicalPlanBuilder::from(plan)
                    .limit(0, Some(1))
                    .map_err(PlanError::from)?
                    .build()
                    .map_err(PlanError::from)?;
                let data_type = plan
                    .schema()
                    .fields()
                    .first()
                    .map(|f| f.data_type().clone())
                    .unwrap_or(datafusion::arrow::datatypes::DataType::Null);
                let batches = collect(ctx, plan).await?;
                let mut value =
                    ScalarValue::try_from(&data_type).map_err(HuntError::from_datafusion)?;
                if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
                    value = ScalarValue::try_from_array(batch.column(0), 0)
                        .map_err(HuntError::from_datafusion)?;
                }
                prepared.scalars.insert(rel_key(rel), value);
            }
            Task::Reshape(rel) => {
                let plan = on_large_stack(prepared.depth, || {
                    Lowerer::new(text, now, &query.materialized, &prepared).reshape_input(rel)
                })?;
                let schema = Arc::new(plan.schema().as_arrow().clone());
                let batches = collect(ctx, plan).await?;
                let (schema, batches) = match &rel.kind {
                    RelKind::BagUnpack {
                        input,
                        column,
                        prefix,
                    } => super::reshape::bag_unpack(
                        rel,
                        &input.schema,
                        *column,
                        prefix.as_deref(),
                        schema,
                        &batches,
                    )?,
                    RelKind::Pivot {
                        input,
                        aggregate,
                        group,
                        ..
                    } => {
                        let columns: Vec<crate::bind::Column> = group
                            .iter()
                            .filter_map(|g| input.schema.columns.get(*g).cloned())
                            .collect();
                        super::reshape::pivot(rel, &columns, aggregate, schema, &batches)?
                    }
                    _ => continue,
                };
                let table =
                    MemTable::try_new(schema, vec![batches]).map_err(HuntError::from_datafusion)?;
                let scan = LogicalPlanBuilder::scan(
                    TableReference::bare(format!("\u{1}reshaped{}", prepared.open.len())),
                    provider_as_source(Arc::new(table)),
                    None,
                )
                .map_err(PlanError::from)?
                .build()
                .map_err(PlanError::from)?;
                prepared.open.insert(rel_key(rel), scan);
            }
            Task::List(rel) => {
                let plan = on_large_stack(prepared.depth, || {
                    Lowerer::new(text, now, &query.materialized, &prepared).finish(rel)
                })?;
                let batches = collect(ctx, plan).await?;
                let mut values = Vec::new();
                for batch in &batches {
                    let column = batch.column(0);
                    if values.len() + column.len() > MAX_IN_VALUES {
                        return Err(HuntError::Execution(format!(
                            "the table in an 'in' list has more than {MAX_IN_VALUES} rows"
                        )));
                    }
                    for row in 0..column.len() {
                        if column.is_valid(row) {
                            values.push(
                                ScalarValue::try_from_array(column, row)
                                    .map_err(HuntError::from_datafusion)?,
                            );
                        }
                    }
                }
                prepared.lists.insert(rel_key(rel), values);
            }
        }
    }
    Ok(prepared)
}

async fn collect(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> Result<Vec<datafusion::arrow::array::RecordBatch>, HuntError> {
    ctx.execute_logical_plan(plan)
        .await
        .map_err(HuntError::from_datafusion)?
        .collect()
        .await
        .map_err(HuntError::from_datafusion)
}
