//! Advanced hunting: `POST /api/advancedqueries/run` (MDE) and `POST /api/advancedhunting/run`
//! (Defender XDR), both `{"Query": "…"}` → `{"Stats", "Schema", "Results"}`.
//!
//! The query runs on a DataFusion session over the caller's tenant only (the tenant filter lives
//! in the table providers, not in the query text), seeing the last `lookback_days` of events. A
//! query that does not parse or bind is a 400 naming the line and column. MDE's limits apply as
//! configured defaults: rows, time, result size, and each tenant's query time per 15 minutes
//! (MDE's CPU quota; beyond it, 429 until the window turns).

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::hunt_json;
use crate::ratelimit::RouteFamily;
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use datafusion::prelude::SessionContext;
use rampart_core::Permission as P;
use rampart_core::{ErrorCode, TenantId};
use rampart_kql::bind::QueryParameters;
use rampart_kql::plan::{ExternalFiles, HuntError, Limits};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Advanced-hunting limits (the `[api.hunting]` part of the configuration); the defaults are MDE's.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HuntingConfig {
    /// Rows returned at most; more are cut off and `Stats.Truncated` is set.
    pub max_rows: usize,
    /// Seconds one query may run.
    pub timeout_secs: u64,
    /// Days of events a query sees, counted back from now.
    pub lookback_days: u32,
    /// Largest response body, in bytes (MDE: 124 MB).
    pub max_result_bytes: usize,
    /// Memory one query's operators may hold, in bytes.
    pub max_memory_bytes: usize,
    /// Seconds of query time each tenant may use in a 15-minute window.
    pub tenant_seconds_per_window: u64,
    /// `externaldata` URLs this server answers from local files (URL as written in queries →
    /// path). Any other URL is refused: Rampart runs offline.
    pub external_data: BTreeMap<String, PathBuf>,
}

impl HuntingConfig {
    /// The limits each query runs under.
    pub fn limits(&self) -> Limits {
        Limits {
            max_rows: self.max_rows,
            timeout: Some(Duration::from_secs(self.timeout_secs.max(1))),
            memory: Some(self.max_memory_bytes),
        }
    }

    /// The `externaldata` mapping in the planner's form.
    pub fn external_files(&self) -> ExternalFiles {
        self.external_data
            .iter()
            .map(|(url, path)| (url.clone(), path.clone()))
            .collect()
    }
}

impl Default for HuntingConfig {
    fn default() -> Self {
        HuntingConfig {
            max_rows: 100_000,
            timeout_secs: 240,
            lookback_days: 30,
            max_result_bytes: 124 * 1024 * 1024,
            max_memory_bytes: 4 << 30,
            tenant_seconds_per_window: 600,
            external_data: BTreeMap::new(),
        }
    }
}

/// The window a tenant's query time is counted over.
const BUDGET_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Query time each tenant used in its current window.
#[derive(Default)]
pub struct HuntingBudget {
    used: Mutex<HashMap<TenantId, (Instant, Duration)>>,
}

impl HuntingBudget {
    /// `Err(seconds to wait)` when the tenant has used up its window.
    fn check(&self, tenant: TenantId, allowed: Duration, now: Instant) -> Result<(), u64> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let (start, spent) = used.entry(tenant).or_insert((now, Duration::ZERO));
        if now.duration_since(*start) >= BUDGET_WINDOW {
            *start = now;
            *spent = Duration::ZERO;
        }
        if *spent >= allowed {
            let left = BUDGET_WINDOW.saturating_sub(now.duration_since(*start));
            return Err(left.as_secs().max(1));
        }
        Ok(())
    }

    fn charge(&self, tenant: TenantId, took: Duration) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, spent)) = used.get_mut(&tenant) {
            *spent += took;
        }
    }
}

/// A query session over what a hunter of `tenant` sees: the events of the configured lookback
/// (MDE's 30 days) and the current inventory.
pub async fn session(state: &AppState, tenant: TenantId) -> ApiResult<SessionContext> {
    let now_ns =
        i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX);
    let days = i64::from(state.config.hunting.lookback_days);
    let from = now_ns.saturating_sub(days * 86_400 * 1_000_000_000);
    state
        .events
        .session_within(tenant, Some(from), None)
        .await
        .map_err(|e| ApiError::internal("opening a hunting session", e))
}

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
    let config = &state.config.hunting;
    let started = Instant::now();
    if let Err(wait) = state.hunting_budget.check(
        caller.tenant,
        Duration::from_secs(config.tenant_seconds_per_window),
        started,
    ) {
        let mut resp = ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "The tenant used its advanced-hunting resources ({} seconds of query time per 15 minutes); retry after {wait} seconds.",
                config.tenant_seconds_per_window
            ),
        )
        .into_response();
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(wait));
        return Ok(resp);
    }
    let ctx = session(&state, caller.tenant).await?;
    let result = rampart_kql::plan::run_with_files(
        &ctx,
        &query,
        &QueryParameters::new(),
        &config.limits(),
        &config.external_files(),
    )
    .await;
    state
        .hunting_budget
        .charge(caller.tenant, started.elapsed());
    let result = result.map_err(|e| match e {
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
    let columns = hunt_json::columns(&result);
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
    if text.len() > config.max_result_bytes {
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
