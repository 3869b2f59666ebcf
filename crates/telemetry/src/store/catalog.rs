//! The event store as a DataFusion catalog: one table provider per advanced-hunting table, per
//! tenant, that unions the hot tail and the Parquet files and skips files outside the query's
//! time range; the inventory tables scan each device's latest report.
//!
//! A tenant's schema only ever lists that tenant's files and hot batches: there is no query that
//! can reach another tenant's rows.

use super::{EventStore, FileEntry, HotFilter};
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::config::TableParquetOptions;
use datafusion::common::{DFSchema, ScalarValue, TableReference};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{
    BinaryExpr, Expr, LogicalPlanBuilder, Operator, TableProviderFilterPushDown, ident, lit,
};
use datafusion::physical_expr::conjunction_opt;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::SessionContext;
use rampart_core::TenantId;
use rampart_core::schema::{self, Table};
use std::collections::HashSet;
use std::sync::Arc;

/// The URL the store's object store is registered under in a query session.
pub const EVENTS_URL: &str = "rampart-events://store/";

/// One tenant's tables.
#[derive(Debug)]
pub struct EventSchema {
    store: EventStore,
    tenant: String,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl EventStore {
    /// The tables of one tenant.
    pub fn schema_provider(&self, tenant: TenantId) -> Arc<EventSchema> {
        Arc::new(EventSchema {
            store: self.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// A query session over one tenant's tables (registered under their names) with the store's
    /// object store registered.
    pub fn session(&self, tenant: TenantId) -> Result<SessionContext> {
        let ctx = SessionContext::new();
        self.register(&ctx, tenant)?;
        Ok(ctx)
    }

    /// Has `ctx`'s Parquet scans apply the filters while decoding: the filtered columns are
    /// read first and the others only for the rows that pass. For queries that keep a small
    /// share of the rows (one device's events, a handful of hashes), which then skip decoding
    /// most of every other column; a query that keeps most rows pays for the extra pass.
    pub fn filter_while_decoding(ctx: &SessionContext) {
        let state = ctx.state_ref();
        let mut state = state.write();
        let parquet = &mut state.config_mut().options_mut().execution.parquet;
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
    }

    /// A query session over one tenant's tables as seen inside event times `[from, to)`
    /// (nanoseconds; `None` leaves that side open): each table is a view that filters
    /// `Timestamp`, so the bound reaches the scan and prunes files like a filter in the query.
    /// Hunting uses it for MDE's 30-day window, detection rules for their lookback.
    pub async fn session_within(
        &self,
        tenant: TenantId,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<SessionContext> {
        let ctx = self.session(tenant)?;
        let at = |ns: i64| {
            lit(ScalarValue::TimestampNanosecond(
                Some(ns),
                Some(crate::arrow_schema::UTC.into()),
            ))
        };
        // `ident`, not `col`: `col` would fold the name to lower case.
        let ts = || ident(schema::TIMESTAMP);
        let bound = match (from, to) {
            (None, None) => return Ok(ctx),
            (Some(f), None) => ts().gt_eq(at(f)),
            (None, Some(t)) => ts().lt(at(t)),
            (Some(f), Some(t)) => ts().gt_eq(at(f)).and(ts().lt(at(t))),
        };
        for t in schema::ALL {
            let name = TableReference::bare(t.name);
            let provider = ctx.table_provider(name.clone()).await?;
            let plan = LogicalPlanBuilder::scan(name.clone(), provider_as_source(provider), None)?
                .filter(bound.clone())?
                .build()?;
            ctx.deregister_table(name.clone())?;
            ctx.register_table(name, Arc::new(ViewTable::new(plan, None)))?;
        }
        Ok(ctx)
    }

    /// Registers the object store and one tenant's tables in `ctx`.
    pub fn register(&self, ctx: &SessionContext, tenant: TenantId) -> Result<()> {
        let url =
            url::Url::parse(EVENTS_URL).map_err(|e| DataFusionError::External(Box::new(e)))?;
        ctx.register_object_store(&url, self.objects());
        for t in schema::hunting_tables() {
            // `bare` keeps the name's case; a plain &str would be parsed and lowercased.
            ctx.register_table(
                TableReference::bare(t.name),
                provider(self, &tenant.to_string(), t),
            )?;
        }
        Ok(())
    }
}

/// The table provider of one tenant's `table`.
fn provider(store: &EventStore, tenant: &str, table: &'static Table) -> Arc<dyn TableProvider> {
    Arc::new(EventTable {
        store: store.clone(),
        tenant: tenant.to_owned(),
        table,
    })
}

#[async_trait]
impl SchemaProvider for EventSchema {
    fn table_names(&self) -> Vec<String> {
        schema::hunting_tables()
            .map(|t| t.name.to_owned())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(schema::table(name).map(|t| provider(&self.store, &self.tenant, t)))
    }

    fn table_exist(&self, name: &str) -> bool {
        schema::table(name).is_some()
    }
}

/// One tenant's rows of one table: for an event table, its hot tail and files; for an
/// inventory table, each device's latest report.
#[derive(Debug)]
pub struct EventTable {
    store: EventStore,
    tenant: String,
    table: &'static Table,
}

/// The bounds a filter puts on `Timestamp` (inclusive nanoseconds), if it is such a filter.
fn time_bound(e: &Expr) -> Option<(Option<i64>, Option<i64>)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return match e {
            Expr::Between(b) if !b.negated && is_timestamp(&b.expr) => {
                Some((literal_ns(&b.low), literal_ns(&b.high)))
            }
            _ => None,
        };
    };
    let (op, lit) = if is_timestamp(left) {
        (*op, right)
    } else if is_timestamp(right) {
        (op.swap()?, left)
    } else {
        return None;
    };
    let v = literal_ns(lit)?;
    match op {
        Operator::Gt => Some((v.checked_add(1), None)),
        Operator::GtEq => Some((Some(v), None)),
        Operator::Lt => Some((None, v.checked_sub(1))),
        Operator::LtEq => Some((None, Some(v))),
        Operator::Eq => Some((Some(v), Some(v))),
        _ => None,
    }
}

/// The devices a filter limits rows to, if it is `DeviceId == '…'` or `DeviceId in ('…', …)`
/// (or several of those joined by `or`).
fn devices_named(e: &Expr) -> Option<HashSet<String>> {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            let value = match (is_device_id(left), is_device_id(right)) {
                (true, false) => text_literal(right)?,
                (false, true) => text_literal(left)?,
                _ => return None,
            };
            Some(HashSet::from([value.to_owned()]))
        }
        // A short `in` list arrives as equalities joined by `or`.
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let mut either = devices_named(left)?;
            either.extend(devices_named(right)?);
            Some(either)
        }
        Expr::InList(list) if !list.negated && is_device_id(&list.expr) => list
            .list
            .iter()
            .map(|v| text_literal(v).map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// `DeviceId`, or what KQL makes of it: a KQL string is never null, so the column is read as
/// `coalesce(DeviceId, '')`, which reaches the scan as `CASE WHEN DeviceId IS NOT NULL THEN
/// DeviceId ELSE '' END`. Either is the batch's device on every row of a batch whose rows all
/// carry that one `DeviceId`, which is all that skipping a batch relies on.
fn is_device_id(e: &Expr) -> bool {
    let column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == schema::DEVICE_ID);
    match e {
        Expr::Case(case) => {
            case.expr.is_none()
                && case.else_expr.is_some()
                && matches!(case.when_then_expr.as_slice(),
                    [(when, then)] if matches!(&**when, Expr::IsNotNull(x) if column(x)) && column(then))
        }
        e => column(e),
    }
}

fn text_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s),
        _ => None,
    }
}

fn is_timestamp(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == schema::TIMESTAMP)
}

fn literal_ns(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else { return None };
    let ns = v
        .cast_to(&DataType::Timestamp(
            TimeUnit::Nanosecond,
            Some(crate::arrow_schema::UTC.into()),
        ))
        .ok()?;
    match ns {
        ScalarValue::TimestampNanosecond(Some(t), _) => Some(t),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for EventTable {
    fn schema(&self) -> SchemaRef {
        crate::arrow_schema(self.table)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Every filter reaches the scan: time bounds skip whole files (and a `DeviceId` filter
        // other devices' inventory reports, by their statistics), and all of them prune
        // Parquet row groups and pages (and, with `pushdown_filters` on in the session, decide
        // which rows the other columns are decoded for). Time bounds and `DeviceId` filters
        // skip whole hot batches. DataFusion still applies each filter to the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.table.has_timestamp() {
            return self.scan_inventory(state, projection, filters).await;
        }
        let schema = self.schema();
        let mut hot_filter = HotFilter {
            lo: i64::MIN,
            hi: i64::MAX,
            devices: None,
        };
        for f in filters {
            if let Some((l, h)) = time_bound(f) {
                hot_filter.lo = hot_filter.lo.max(l.unwrap_or(i64::MIN));
                hot_filter.hi = hot_filter.hi.min(h.unwrap_or(i64::MAX));
            }
            if let Some(named) = devices_named(f) {
                // Several device filters together let through the devices all of them name.
                hot_filter.devices = Some(match hot_filter.devices.take() {
                    Some(before) => before.intersection(&named).cloned().collect(),
                    None => named,
                });
            }
        }
        let (lo, hi) = (hot_filter.lo, hot_filter.hi);
        let (files, hot) = self.store.snapshot(&self.tenant, self.table, &hot_filter);
        let files: Vec<&Arc<FileEntry>> = files
            .iter()
            .filter(|f| f.max_ts >= lo && f.min_ts <= hi)
            .collect();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !files.is_empty() {
            let files = files
                .iter()
                .map(|f| PartitionedFile::new(f.path.clone(), f.bytes))
                .collect();
            inputs.push(parquet_scan(state, &schema, files, projection, filters)?);
        }
        if !hot.is_empty() {
            inputs.push(MemorySourceConfig::try_new_exec(
                &[hot],
                schema.clone(),
                projection.cloned(),
            )?);
        }
        if inputs.is_empty() {
            return empty(schema, projection);
        }
        UnionExec::try_new(inputs)
    }
}

/// A scan of Parquet `files` of the store with the filters the scan can evaluate pushed into
/// it (they prune row groups and pages; the filter above the scan still applies each one).
fn parquet_scan(
    state: &dyn Session,
    schema: &SchemaRef,
    files: Vec<PartitionedFile>,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
) -> Result<Arc<dyn ExecutionPlan>> {
    // The session's Parquet options (a retro-hunt turns filter pushdown on).
    let options = TableParquetOptions {
        global: state.config_options().execution.parquet.clone(),
        ..TableParquetOptions::default()
    };
    let mut source = ParquetSource::new(schema.clone()).with_table_parquet_options(options);
    let df_schema = DFSchema::try_from(schema.clone())?;
    // A filter the scan cannot evaluate on its own is left to the filter above it.
    let usable = filters
        .iter()
        .filter_map(|f| state.create_physical_expr(f.clone(), &df_schema).ok());
    if let Some(pred) = conjunction_opt(usable) {
        source = source.with_predicate(pred);
    }
    let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(EVENTS_URL)?, Arc::new(source))
        .with_file_group(FileGroup::new(files))
        .with_projection_indices(projection.cloned())?
        .build();
    Ok(DataSourceExec::from_data_source(config))
}

fn empty(schema: SchemaRef, projection: Option<&Vec<usize>>) -> Result<Arc<dyn ExecutionPlan>> {
    let projected = match projection {
        Some(p) => Arc::new(schema.project(p)?),
        None => schema,
    };
    Ok(Arc::new(EmptyExec::new(projected)))
}

impl EventTable {
    /// An inventory table's scan: the latest report of each device, one object each.
    async fn scan_inventory(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.schema();
        let objects = self
            .store
            .inventory_objects(&self.tenant, self.table)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        if objects.is_empty() {
            return empty(schema, projection);
        }
        let files = objects.into_iter().map(PartitionedFile::from).collect();
        parquet_scan(state, &schema, files, projection, filters)
    }
}
