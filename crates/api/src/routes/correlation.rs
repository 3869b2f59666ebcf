//! The tenant's response policies (Rampart's own resources):
//!
//! * `/api/correlationpolicy`: how alerts are correlated into incidents — the time window and
//!   the entity kinds that link alerts (`Device`, `File`, `Ip`, `Url`, `Domain`, `User`; none
//!   turns correlation off). Changes apply to alerts stored from then on.
//! * `/api/signalsharingpolicy`: what a malware verdict shares tenant-wide — whether at all,
//!   for how many days, and which indicator types (`FileSha256`, `FileSha1`, `IpAddress`,
//!   `Url`).

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
use rampart_core::signal::SharingPolicy;

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
    .add(
        RouteDef::get(
            "/signalsharingpolicy",
            READ,
            TAG,
            "What a malware verdict shares tenant-wide",
        )
        .returns("SharingPolicy"),
        get_sharing,
    )
    .add(
        RouteDef::new(
            Method::PUT,
            "/signalsharingpolicy",
            WRITE,
            TAG,
            "Set whether verdicts are shared, for how many days, and which indicator types",
        )
        .returns("SharingPolicy"),
        put_sharing,
    )
}

pub async fn get_sharing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Response> {
    let policy = state.store.signal_sharing_policy(caller.tenant).await?;
    Ok(entity_response(StatusCode::OK, &policy))
}

pub async fn put_sharing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(policy): JsonBody<SharingPolicy>,
) -> ApiResult<Response> {
    policy.check()?;
    state
        .store
        .set_signal_sharing_policy(&caller.audit(), caller.tenant, &policy)
        .await?;
    Ok(entity_response(StatusCode::OK, &policy))
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
