//! The planner and executor: lowers the bound IR ([`crate::bind::ir`]) onto DataFusion
//! logical plans (built with `LogicalPlanBuilder` and `Expr`, never SQL text) and runs
//! them under [`Limits`].
//!
//! Entry points: [`run`] (parse, bind against the session's tables, plan, execute, return
//! the last tabular result), [`run_with_files`] (the same with the local files that stand
//! in for `externaldata` URIs) and [`plan_only`] (the same without executing, for
//! `--check` and tests; it refuses `externaldata`).
//!
//! Representation of KQL values on Arrow ([`arrow_type`]):
//! - `timespan` is `Int64` nanoseconds (the event store's datetime precision), so
//!   datetime arithmetic is integer arithmetic on nanoseconds;
//! - `dynamic` is compact JSON text in `Utf8`; SQL null is the dynamic null; bags keep
//!   their key order; a dynamic string reads as its JSON text (`"x"`, with quotes);
//! - `string` is never null: scans, outer joins and aggregates turn missing strings into
//!   `""`, as Kusto has no null string;
//! - `decimal` is computed as `Float64`; `guid` is lowercase text.
//!
//! How KQL constructs map onto DataFusion:
//! - rows keep a meaningful order (after `sort`, `range`, `serialize`) through a hidden
//!   row-number column (`rel::ORDER`) that windows order by and the result is sorted
//!   by; DataFusion plans have no row order of their own once parallelised;
//! - uncorrelated subqueries (`toscalar`, `in ((...))`), `materialize` and the operators
//!   whose columns depend on data (`evaluate bag_unpack`, `evaluate pivot`) run first and
//!   enter the plan as literals or in-memory tables (`prepare`);
//! - Kusto functions and aggregates without a DataFusion equivalent are UDFs (`udf`,
//!   `udaf`); `percentile(s)` are exact (nearest rank), not estimates, and `dcount`
//!   counts distinct 64-bit hashes (`dcount`).
//!
//! Not supported (a [`HuntError::Plan`]): `make-series` without both `from` and `to`;
//! `join`, `union`, `mv-expand`, `make-series`, `sample` and `evaluate` inside `mv-apply`;
//! nested `mv-apply`; `bin` of a dynamic value.
//!
//! Module map: `rel` (operators), `expr` (scalar expressions), `call` (scalar functions),
//! `window` (`prev`/`next`/`row_number`/`row_cumsum`), `aggregate` (summarize) with the
//! aggregate UDFs of `udaf`, `join`, `expand` (mv-expand, mv-apply, parse), `series`
//! (make-series), `range` (the `range` source), `external` (`externaldata` from local
//! files), `reshape` (bag_unpack, pivot), `udf`
//! (Kusto functions as DataFusion UDFs), `json` (dynamic values), `time` (calendar),
//! `types` (KQL <-> Arrow), `prepare` (tables and subqueries first), `catalog` (the
//! session's tables for the binder), `error`.

mod aggregate;
mod arg_extreme;
mod call;
mod catalog;
mod dcount;
mod error;
mod expand;
mod expr;
mod external;
mod join;
mod json;
mod prepare;
mod range;
mod rel;
mod reshape;
mod series;
mod string_set;
mod time;
mod types;
mod udaf;
mod udf;
mod window;

pub use catalog::SessionCatalog;
pub use error::{HuntError, PlanError};
pub use external::ExternalFiles;
pub use types::arrow_type;

use crate::ast::{ExprKind, Literal, Statement};
use crate::bind::{Column, QueryParameters};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one query may consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Rows returned at most; more are cut off and [`HuntResult::truncated`] is set.
    /// A query's `set truncationmaxrecords = N;` may lower it, never raise it.
    pub max_rows: usize,
    /// Wall-clock limit for planning and execution together.
    pub timeout: Option<Duration>,
    /// Memory the query's operators may reserve (a pool of its own); `None` uses the
    /// session's pool.
    pub memory: Option<usize>,
}

impl Default for Limits {
    /// MDE's advanced-hunting defaults: 100,000 rows; Kusto's 4-minute timeout.
    fn default() -> Self {
        Limits {
            max_rows: 100_000,
            timeout: Some(Duration::from_secs(240)),
            memory: None,
        }
    }
}

/// The last tabular result of a query.
#[derive(Debug, Clone)]
pub struct HuntResult {
    /// Output columns with their KQL types, in order (names exactly as KQL gives them).
    pub columns: Vec<Column>,
    /// The Arrow schema of `batches` (same names; types per [`arrow_type`]).
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Rows in `batches`.
    pub row_count: usize,
    /// Whether rows past the limit were dropped.
    pub truncated: bool,
}

/// Per-query options written in the query (`set ...;`).
struct Settings {
    now: Option<i64>,
    max_records: Option<usize>,
}

fn settings(query: &crate::ast::Query) -> Settings {
    let mut settings = Settings {
        now: None,
        max_records: None,
    };
    for statement in &query.statements {
        let Statement::Set { name, value } = statement else {
            continue;
        };
        let literal = value.as_ref().and_then(|v| match &v.kind {
            ExprKind::Literal(l) => Some(l),
            _ => None,
        });
        match (name.text.as_str(), literal) {
            ("query_now", Some(Literal::Datetime(text))) => {
                settings.now = time::parse_datetime(text);
            }
            ("truncationmaxrecords", Some(Literal::Long(n))) => {
                let n = usize::try_from((*n).max(0)).unwrap_or(usize::MAX);
                settings.max_records = Some(settings.max_records.map_or(n, |m| m.min(n)));
            }
            _ => {}
        }
    }
    settings
}

fn wall_clock_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The context one query runs in: `ctx`'s tables, object stores and settings, plus a
/// memory pool of its own when `limit` is set.
///
/// DataFusion's check that an aggregate's physical input schema equals the logical one
/// also compares schema metadata, which its union merges differently in the two plans
/// (tables carry a `table` metadata key), so `union T1, T2 | summarize` would fail; the
/// check is only a consistency assertion, so it is switched off.
fn query_context(ctx: &SessionContext, limit: Option<usize>) -> SessionContext {
    let state = ctx.state();
    // The tables live in the existing default catalog: do not let the builder make a new one.
    let mut config = state
        .config()
        .clone()
        .with_create_default_catalog_and_schema(false);
    config
        .options_mut()
        .execution
        .skip_physical_aggregate_schema_check = true;
    let mut builder = SessionStateBuilder::new_from_existing(state.clone()).with_config(config);
    if let Some(limit) = limit {
        let mut runtime: RuntimeEnv = state.runtime_env().as_ref().clone();
        let top = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
        runtime.memory_pool = Arc::new(TrackConsumersPool::new(GreedyMemoryPool::new(limit), top));
        builder = builder.with_runtime_env(Arc::new(runtime));
    }
    SessionContext::new_with_state(builder.build())
}

/// A parsed and bound query, ready to plan.
struct Bound {
    text: String,
    query: crate::bind::BoundQuery,
    settings: Settings,
}

async fn bind(
    ctx: &SessionContext,
    text: &str,
    params: &QueryParameters,
) -> Result<Bound, HuntError> {
    let query = crate::parse(text)?;
    let settings = settings(&query);
    let catalog = SessionCatalog::from_context(ctx).await;
    let bound = crate::bind(&query, &catalog, params)?;
    if bound.results.is_empty() {
        return Err(HuntError::NoResult);
    }
    Ok(Bound {
        text: text.to_string(),
        query: bound,
        settings,
    })
}

/// Plans the last tabular statement of `query` without running anything: the DataFusion
/// logical plan (unoptimized) whose output is the result's columns. Subqueries appear as
/// DataFusion subqueries instead of being run first.
pub async fn plan_only(
    ctx: &SessionContext,
    query: &str,
    params: &QueryParameters,
) -> Result<LogicalPlan, HuntError> {
    let bound = bind(ctx, query, params).await?;
    let Some(result) = bound.query.results.last() else {
        return Err(HuntError::NoResult);
    };
    let now = bound.settings.now.unwrap_or_else(wall_clock_nanos);
    // No file mapping here: `externaldata` is refused, as by `run` without one.
    let prepared = prepare::prepare(
        ctx,
        &bound.query,
        result,
        &bound.text,
        now,
        false,
        &ExternalFiles::new(),
    )
    .await?;
    Ok(rel::on_large_stack(prepared.depth, || {
        rel::Lowerer::new(&bound.text, now, &bound.query.materialized, &prepared).finish(result)
    })?)
}

/// Parses, binds (against the tables registered in `ctx`), plans and runs `query`,
/// returning its last tabular result.
///
/// Dropping the returned future cancels the query: DataFusion's streams and the tasks
/// they spawned stop with it.
pub async fn run(
    ctx: &SessionContext,
    query: &str,
    params: &QueryParameters,
    limits: &Limits,
) -> Result<HuntResult, HuntError> {
    run_with_files(ctx, query, params, limits, &ExternalFiles::new()).await
}

/// [`run`], with the local files `externaldata` may read in place of its URIs (Rampart
/// runs offline: an `externaldata` URI `files` does not map is refused with its line and
/// column). `run` is this with no files.
pub async fn run_with_files(
    ctx: &SessionContext,
    query: &str,
    params: &QueryParameters,
    limits: &Limits,
    files: &ExternalFiles,
) -> Result<HuntResult, HuntError> {
    let work = execute(ctx, query, params, limits, files);
    match limits.timeout {
        Some(timeout) => tokio::time::timeout(timeout, work)
            .await
            .unwrap_or(Err(HuntError::Timeout(timeout))),
        None => work.await,
    }
}

async fn execute(
    ctx: &SessionContext,
    query: &str,
    params: &QueryParameters,
    limits: &Limits,
    files: &ExternalFiles,
) -> Result<HuntResult, HuntError> {
    let bound = bind(ctx, query, params).await?;
    let Some(result) = bound.query.results.last() else {
        return Err(HuntError::NoResult);
    };
    let ctx = query_context(ctx, limits.memory);
    let now = bound.settings.now.unwrap_or_else(wall_clock_nanos);
    let max_rows = bound
        .settings
        .max_records
        .map_or(limits.max_rows, |n| n.min(limits.max_rows));
    let prepared =
        prepare::prepare(&ctx, &bound.query, result, &bound.text, now, true, files).await?;
    let (plan, columns) = rel::on_large_stack(prepared.depth, || {
        rel::Lowerer::new(&bound.text, now, &bound.query.materialized, &prepared)
            .finish_with_columns(result)
    })?;
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let frame = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(HuntError::from_datafusion)?;
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(HuntError::from_datafusion)?;
    let mut batches = Vec::new();
    let mut row_count = 0;
    let mut truncated = false;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(HuntError::from_datafusion)?;
        if batch.num_rows() == 0 {
            continue;
        }
        if row_count == max_rows {
            truncated = true;
            break;
        }
        let keep = batch.num_rows().min(max_rows - row_count);
        row_count += keep;
        if keep < batch.num_rows() {
            batches.push(batch.slice(0, keep));
            truncated = true;
            break;
        }
        batches.push(batch);
    }
    // Stop the engine now rather than when the caller drops the result.
    drop(stream);
    Ok(HuntResult {
        columns,
        schema,
        batches,
        row_count,
        truncated,
    })
}
