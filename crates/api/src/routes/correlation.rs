//! `/api/correlationpolicy` (Rampart's own): how the tenant's alerts are correlated into
//! incidents — the time window and the entity kinds that link alerts (`Device`, `File`, `Ip`,
//! `Url`, `Domain`, `User`; none turns correlation off). Changes apply to alerts stored from
//! then on.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::ApiResult;
use crate::odata::entity_response;
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use rampart_core::Permission as P;
use rampart_core::correlation::CorrelationPolicy;

const READ: &[P] = &[
    P::SecurityConfigurationRead,
    P::SecurityConfigurationReadWrite,
];
const WRITE: &[P] = &[P::SecurityConfigurationReadWrite];
const TAG: &str = "Incidents";

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get(
            "/correlationpolicy",
            READ,
            TAG,
            "How alerts are correlated into incidents",
        )
        .returns("CorrelationPolicy"),
        get,
    )
    .add(
        RouteDef::new(
            Method::PUT,
            "/correlationpolicy",
            WRITE,
            TAG,
            "Set the correlation window and the entity kinds that link alerts",
        )
        .returns("CorrelationPolicy"),
        put,
    )
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Response> {
    let policy = state.store.correlation_policy(caller.tenant).await?;
    Ok(entity_response(StatusCode::OK, &policy))
}

pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(policy): JsonBody<CorrelationPolicy>,
) -> ApiResult<Response> {
    policy.check()?;
    state
        .store
        .set_correlation_policy(&caller.audit(), caller.tenant, &policy)
        .await?;
    Ok(entity_response(StatusCode::OK, &policy))
}
