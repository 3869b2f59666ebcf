//! `/api/alerts` (reference §1): list, get, update, batch update, related entities,
//! CreateAlertByReference, and Rampart's import of alerts from other security products.

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

const WRITE: &[P] = &[P::AlertReadWrite];

pub fn add(r: ApiRoutes) -> ApiRoutes {
    use crate::ratelimit::RouteFamily;
    use axum::http::Method;
    r.add(
        RouteDef::get("/alerts", READ, "Alerts", "List alerts").collection("Alert"),
        list,
    )
    .add(
        RouteDef::get("/alerts/{id}", READ, "Alerts", "Get an alert").returns("Alert"),
        get,
    )
    .add(
        RouteDef::new(
            Method::PATCH,
            "/alerts/{id}",
            WRITE,
            "Alerts",
            "Update an alert",
        )
        .returns("Alert"),
        super::alert_write::patch,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/alerts/batchUpdate",
            WRITE,
            "Alerts",
            "Update many alerts",
        )
        .family(RouteFamily::AlertsBatchUpdate),
        super::alert_write::batch_update,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/alerts/CreateAlertByReference",
            WRITE,
            "Alerts",
            "Create an alert from an advanced-hunting event",
        )
        .returns("Alert")
        .family(RouteFamily::CreateAlertByReference),
        super::alert_write::create_by_reference,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/alerts/import",
            WRITE,
            "Alerts",
            "Import alerts from other security products (Rampart)",
        ),
        super::alert_write::import,
    )
    .add(
        RouteDef::get(
            "/alerts/{id}/files",
            &[P::FileRead],
            "Alerts",
            "Files related to an alert",
        ),
        super::alert_related::files,
    )
    .add(
        RouteDef::get(
            "/alerts/{id}/ips",
            &[P::IpRead],
            "Alerts",
            "IP addresses related to an alert",
        ),
        super::alert_related::ips,
    )
    .add(
        RouteDef::get(
            "/alerts/{id}/domains",
            &[P::UrlRead],
            "Alerts",
            "Domains related to an alert",
        ),
        super::alert_related::domains,
    )
    .add(
        RouteDef::get(
            "/alerts/{id}/machine",
            &[P::MachineRead, P::MachineReadWrite],
            "Alerts",
            "The machine of an alert",
        )
        .returns("Machine"),
        super::alert_related::machine,
    )
    .add(
        RouteDef::get(
            "/alerts/{id}/user",
            &[P::UserRead],
            "Alerts",
            "The user of an alert",
        ),
        super::alert_related::user,
    )
}
