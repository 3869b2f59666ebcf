//! `/api/alerts`: list and get (the write side arrives with the alerts resource work).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::odata::{collection_response, json_response, options};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rampart_core::Permission as P;
use rampart_core::alert::ALERTS;

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

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let (pairs, opts) = options(&uri, &ALERTS)?;
    let page = state
        .store
        .list(
            caller.tenant,
            Collection::of::<rampart_core::alert::Alert>(),
            &opts,
            None,
        )
        .await?;
    let expand = opts.expand.iter().any(|e| e == "evidence");
    let rows = page
        .rows
        .iter()
        .map(|r| {
            if expand {
                Ok(r.body.clone())
            } else {
                without_evidence(r.body.clone())
            }
        })
        .collect::<ApiResult<Vec<_>>>()?;
    collection_response(&state, &headers, &uri, &pairs, &ALERTS, &opts, page, rows)
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
