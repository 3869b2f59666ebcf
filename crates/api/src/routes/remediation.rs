//! The action center (Rampart's own resource): the remediation actions automated
//! investigations proposed — pending approval, running, and done — at
//! `/api/remediationactions`, with `approve`, `reject` and `undo`. MDE has no public API for
//! this (its action center is the portal's); the shapes follow the machine actions'.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::odata::{entity_response, list_collection};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use rampart_core::Permission as P;
use rampart_core::machine_action::check_comment;
use rampart_core::remediation::RemediationAction;
use rampart_store::Collection;
use serde::Deserialize;

const READ: &[P] = &[P::AlertRead, P::AlertReadWrite];
const DECIDE: &[P] = &[P::AlertReadWrite];
const TAG: &str = "Investigations";

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get(
            "/remediationactions",
            READ,
            TAG,
            "List the action center's remediation actions (filter on status, investigationId, machineId, actionType, createdTime)",
        )
        .collection("RemediationAction"),
        list,
    )
    .add(
        RouteDef::get(
            "/remediationactions/{id}",
            READ,
            TAG,
            "Get a remediation action",
        )
        .returns("RemediationAction"),
        get,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/remediationactions/{id}/approve",
            DECIDE,
            TAG,
            "Approve a pending remediation action (body {\"Comment\"}); it runs at once",
        )
        .returns("RemediationAction"),
        approve,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/remediationactions/{id}/reject",
            DECIDE,
            TAG,
            "Reject a pending remediation action (body {\"Comment\"})",
        )
        .returns("RemediationAction"),
        reject,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/remediationactions/{id}/undo",
            DECIDE,
            TAG,
            "Undo a completed remediation action: restore the file, release the device, delete the indicator (body {\"Comment\"})",
        )
        .returns("RemediationAction"),
        undo,
    )
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Remediation action {} was not found",
        id.chars().take(40).collect::<String>()
    ))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    list_collection(
        &state,
        caller.tenant,
        &headers,
        &uri,
        Collection::of::<RemediationAction>(),
        None,
        |_, b| Ok(b),
    )
    .await
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let a = state
        .store
        .get_remediation_action(caller.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(entity_response(StatusCode::OK, &a))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecisionBody {
    comment: Option<String>,
}

macro_rules! decision_route {
    ($name:ident, $method:ident) => {
        pub async fn $name(
            State(state): State<AppState>,
            Extension(caller): Extension<Caller>,
            Path(id): Path<String>,
            JsonBody(body): JsonBody<DecisionBody>,
        ) -> ApiResult<Response> {
            let comment = check_comment(body.comment)?;
            let a = state
                .investigator
                .$method(
                    &caller.audit(),
                    caller.tenant,
                    &id,
                    &caller.app_name,
                    &comment,
                )
                .await?
                .ok_or_else(|| not_found(&id))?;
            Ok(entity_response(StatusCode::OK, &a))
        }
    };
}

decision_route!(approve, approve);
decision_route!(reject, reject);
decision_route!(undo, undo);
