//! `/api/alerts`: list and get (the write side arrives with the alerts resource work).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::odata::{json_response, list_collection};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rampart_core::Permission as P;

use rampart_store::Collection;

/// Stored alerts end with their evidence; the list leaves it out unless `$expand=evidence`.
const EMPTY_EVIDENCE: &str = "\"evidence\":[]}";

fn without_evidence(body: String) -> ApiResult<String> {
    if body.ends_with(EMPTY_EVIDENCE) {
        return Ok(body);
    }
    let mut v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| ApiError::internal("stored alert", e))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("evidence".into(), serde_json::Value::Array(Vec::new()));
    }
    Ok(v.to_string())
}

/// Applies the list's `$expand` to one stored alert.
pub(crate) fn expand_evidence(
    opts: &rampart_core::odata::QueryOptions,
    body: String,
) -> ApiResult<String> {
    if opts.expand.iter().any(|e| e == "evidence") {
        Ok(body)
    } else {
        without_evidence(body)
    }
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let alerts = Collection::of::<rampart_core::alert::Alert>();
    list_collection(
        &state,
        caller.tenant,
        &headers,
        &uri,
        alerts,
        None,
        expand_evidence,
    )
    .await
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    match state.store.get_alert(caller.tenant, &id).await? {
        Some(body) => Ok(json_response(body)),
        None => Err(ApiError::not_found(format!("Alert {id} was not found"))),
    }
}

const READ: &[P] = &[P::AlertRead, P::AlertReadWrite];

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get("/alerts", READ, "Alerts", "List alerts").collection("Alert"),
        list,
    )
    .add(
        RouteDef::get("/alerts/{id}", READ, "Alerts", "Get an alert").returns("Alert"),
        get,
    )
}
