//! Advanced hunting: `POST /api/advancedqueries/run` (MDE) and `POST /api/advancedhunting/run`
//! (Defender XDR), both `{"Query": "…"}` → `{"Stats", "Schema", "Results"}`.
//!
//! The query runs on a DataFusion session over the caller's tenant only (the tenant filter lives
//! in the table providers, not in the query text). A query that does not parse or bind is a 400
//! naming the line and column; MDE's limits — rows, time, result size — apply as configured.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::hunt_json;
use crate::ratelimit::RouteFamily;
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::extract::{Extension, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use rampart_core::ErrorCode;
use rampart_core::Permission as P;
use rampart_kql::ast::ScalarType;
use rampart_kql::bind::QueryParameters;
use rampart_kql::plan::{HuntError, Limits};
use serde::Deserialize;
use std::time::Instant;

/// MDE's ceiling on one response body (124 MB).
const MAX_RESULT_BYTES: usize = 124 * 1024 * 1024;

#[derive(Deserialize)]
pub struct RunBody {
    #[serde(rename = "Query", alias = "query")]
    query: Option<String>,
}

pub async fn run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<RunBody>,
) -> ApiResult<Response> {
    let query = body.query.filter(|q| !q.trim().is_empty()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredParameter,
            "The required parameter 'Query' is missing.",
        )
    })?;
    let started = Instant::now();
    let ctx = state
        .events
        .session(caller.tenant)
        .map_err(|e| ApiError::internal("opening a hunting session", e))?;
    let limits = Limits::default();
    let result = rampart_kql::plan::run(&ctx, &query, &QueryParameters::new(), &limits)
        .await
        .map_err(|e| match e {
            // MDE answers every query problem — syntax, names, limits — with a 400.
            HuntError::Timeout(t) => ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "Query execution exceeded the allowed time of {} seconds.",
                    t.as_secs()
                ),
            ),
            other => ApiError::new(ErrorCode::BadRequest, other.to_string()),
        })?;
    let columns: Vec<(String, ScalarType)> = result
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty))
        .collect();
    let rows = hunt_json::rows_json(&columns, &result.batches);
    let doc = serde_json::json!({
        "Stats": {
            "ExecutionTime": started.elapsed().as_secs_f64(),
            "dataset_statistics": [{ "table_row_count": rows.len() }],
            "Truncated": result.truncated,
        },
        "Schema": hunt_json::schema_json(&columns),
        "Results": rows,
    });
    let text = serde_json::to_string(&doc)
        .map_err(|e| ApiError::internal("encoding hunting results", e))?;
    if text.len() > MAX_RESULT_BYTES {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "Query execution has exceeded the allowed result size. Optimize your query by taking fewer rows or projecting fewer columns.",
        ));
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::new(
            Method::POST,
            "/advancedqueries/run",
            &[P::AdvancedQueryRead],
            "Hunting",
            "Run an advanced-hunting KQL query (MDE API)",
        )
        .family(RouteFamily::AdvancedQuery),
        run,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/advancedhunting/run",
            &[P::AdvancedHuntingRead],
            "Hunting",
            "Run an advanced-hunting KQL query (Defender XDR API)",
        )
        .family(RouteFamily::AdvancedQuery),
        run,
    )
}
