//! Checking a rule before it is stored: its query parses and binds against the advanced-hunting
//! tables, returns the columns an alert needs, maps entities to columns that exist, and — for a
//! continuous rule — is a row-by-row filter over one table, so that evaluating it on each
//! ingested batch on its own gives exactly the rows the query would give over all of them.

use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use rampart_core::detection_rule::{DetectionRule, EntityKind, RunFrequency};
use rampart_core::schema;
use rampart_kql::ast::ScalarType;
use rampart_kql::bind::{self, HuntingCatalog, Rel, RelKind};
use rampart_kql::plan;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a rule cannot be stored, naming the field (and for the query, the line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Field '{field}' is not valid: {message}")]
pub struct RuleError {
    pub field: &'static str,
    pub message: String,
}

impl RuleError {
    fn query(message: impl Into<String>) -> RuleError {
        RuleError {
            field: "queryCondition.queryText",
            message: message.into(),
        }
    }
}

/// What running a checked rule needs to know about its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRule {
    /// The result column of each mapped entity.
    pub entities: BTreeMap<EntityKind, String>,
    /// For a continuous rule, the one table it filters.
    pub continuous_table: Option<&'static str>,
}

/// Checks `rule`'s query and entity mapping.
pub async fn compile(rule: &DetectionRule) -> Result<CompiledRule, RuleError> {
    let text = &rule.query_condition.query_text;
    let bound = bind::check(text, &HuntingCatalog).map_err(|e| RuleError::query(e.to_string()))?;
    let Some(result) = bound.results.last() else {
        return Err(RuleError::query("the query has no tabular statement"));
    };
    let columns = &result.schema;
    match columns.columns.iter().find(|c| c.name == schema::TIMESTAMP) {
        Some(c) if c.ty == ScalarType::Datetime => {}
        Some(_) => {
            return Err(RuleError::query(
                "the result's Timestamp column is not a datetime",
            ));
        }
        None => {
            return Err(RuleError::query(
                "the result must have a Timestamp column (the event time of each alert)",
            ));
        }
    }
    let mapping = &rule.detection_action.entity_mapping;
    let mut entities = BTreeMap::new();
    for kind in EntityKind::ALL {
        match mapping.explicit(kind) {
            Some(column) if columns.contains(column) => {
                entities.insert(kind, column.to_owned());
            }
            Some(column) => {
                let names: Vec<&str> = columns.columns.iter().map(|c| c.name.as_str()).collect();
                return Err(RuleError {
                    field: "detectionAction.entityMapping",
                    message: format!(
                        "{}: the query returns no column '{column}' (it returns {})",
                        kind.field(),
                        names.join(", ")
                    ),
                });
            }
            None if columns.contains(kind.default_column()) => {
                entities.insert(kind, kind.default_column().to_owned());
            }
            None => {}
        }
    }
    if !entities.contains_key(&EntityKind::DeviceId)
        && !entities.contains_key(&EntityKind::DeviceName)
    {
        return Err(RuleError {
            field: "detectionAction.entityMapping",
            message: "an alert needs its device: return DeviceId or DeviceName, or map deviceId or deviceName to a result column".into(),
        });
    }
    let continuous_table = match rule.schedule.period {
        RunFrequency::Continuous => {
            let table = filtered_table(result, !bound.materialized.is_empty()).ok_or_else(|| {
                RuleError::query(
                    "a continuous rule must filter one table row by row (where, project, extend …); run it on a schedule (5M, 1H, …) to summarize, join or sort",
                )
            })?;
            check_alone(text, table).await?;
            Some(table)
        }
        _ => None,
    };
    Ok(CompiledRule {
        entities,
        continuous_table,
    })
}

/// The table under a chain of row-by-row operators, if that is what `rel` is.
fn filtered_table(mut rel: &Rel, materialized: bool) -> Option<&'static str> {
    if materialized || rel.serialized {
        return None;
    }
    loop {
        match &rel.kind {
            RelKind::Filter { input, .. } | RelKind::Project { input, .. } => rel = input,
            RelKind::Scan { table } => return schema::table(table).map(|t| t.name),
            _ => return None,
        }
    }
}

/// Plans the query with only `table` in the session: a continuous rule sees one batch of one
/// table, so a reference to any other (a subquery in `in (…)`, `toscalar(…)`) is refused here
/// rather than failing on the first batch.
async fn check_alone(text: &str, table: &'static str) -> Result<(), RuleError> {
    let ctx = single_table_session(table, Vec::new()).map_err(RuleError::query)?;
    plan::plan_only(&ctx, text, &bind::QueryParameters::lenient())
        .await
        .map(|_| ())
        .map_err(|e| RuleError::query(format!("a continuous rule may read only {table}: {e}")))
}

/// A session whose only table is `table`, holding `batches`.
pub(crate) fn single_table_session(
    table: &'static str,
    batches: Vec<datafusion::arrow::record_batch::RecordBatch>,
) -> Result<SessionContext, String> {
    let def = schema::table(table).ok_or_else(|| format!("unknown table {table}"))?;
    let arrow = rampart_telemetry::arrow_schema(def);
    let mem = MemTable::try_new(arrow, vec![batches]).map_err(|e| e.to_string())?;
    let ctx = SessionContext::new();
    ctx.register_table(
        datafusion::common::TableReference::bare(table),
        Arc::new(mem),
    )
    .map_err(|e| e.to_string())?;
    Ok(ctx)
}
