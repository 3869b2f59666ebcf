//! `GET /api/audit`: the audit log of the caller's tenant (Rampart's own resource).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::odata::{collection_response, options};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rampart_core::Permission as P;
use rampart_core::audit::AUDIT;
use rampart_store::Collection;

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let (pairs, opts) = options(&uri, &AUDIT)?;
    let page = state
        .store
        .list(caller.tenant, Collection::AUDIT, &opts, None)
        .await?;
    // An entry's id is its position in the log, which the database assigns on insert.
    let rows = page
        .rows
        .iter()
        .map(|r| {
            let mut v: serde_json::Value = serde_json::from_str(&r.body)
                .map_err(|e| ApiError::internal("stored audit entry", e))?;
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), r.seq.into());
            }
            Ok(v.to_string())
        })
        .collect::<ApiResult<Vec<_>>>()?;
    collection_response(&state, &headers, &uri, &pairs, &AUDIT, &opts, page, rows)
}

/// Reading the audit log is a security-configuration read (Rampart's choice; MDE has no audit API).
const READ: &[P] = &[
    P::SecurityConfigurationRead,
    P::SecurityConfigurationReadWrite,
];

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get(
            "/audit",
            READ,
            "Audit",
            "List the tenant's audit log (Rampart)",
        )
        .collection("AuditEntry"),
        list,
    )
}
