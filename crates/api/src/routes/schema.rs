//! `GET /api/schema[?table=Name]`: the advanced-hunting tables and their columns, as `getschema`
//! lists them (Rampart's own resource). The schema is the same for every tenant.

use crate::error::{ApiError, ApiResult};
use crate::router::{ApiRoutes, RouteDef};
use axum::Json;
use axum::extract::Query;
use rampart_core::Permission as P;
use rampart_core::schema::{self, Table};
use serde::Deserialize;
use serde_json::{Value, json};

fn describe(t: &Table) -> Value {
    let columns: Vec<Value> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "ColumnName": c.name,
                "ColumnOrdinal": i,
                "DataType": c.kql_type.clr_name(),
                "ColumnType": c.kql_type.name(),
                "Description": c.description,
            })
        })
        .collect();
    json!({ "name": t.name, "kind": t.kind, "description": t.description, "columns": columns })
}

#[derive(Deserialize)]
pub struct SchemaQuery {
    table: Option<String>,
}

pub async fn list(Query(q): Query<SchemaQuery>) -> ApiResult<Json<Value>> {
    let tables: Vec<Value> = match q.table.as_deref() {
        None => schema::hunting_tables().map(describe).collect(),
        Some(name) => {
            let t = schema::table(name).ok_or_else(|| {
                let names: Vec<&str> = schema::hunting_tables().map(|t| t.name).collect();
                ApiError::not_found(format!(
                    "No table named '{name}'; the tables are {}.",
                    names.join(", ")
                ))
            })?;
            vec![describe(t)]
        }
    };
    Ok(Json(json!({ "value": tables })))
}

/// Whoever may hunt may read the schema.
const READ: &[P] = &[P::AdvancedQueryRead, P::AdvancedHuntingRead];

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get(
            "/schema",
            READ,
            "Hunting",
            "List the advanced-hunting tables and their columns; ?table=Name for one (Rampart)",
        ),
        list,
    )
}
