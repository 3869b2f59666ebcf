//! Rampart's HTTP API.
//!
//! The partner API is wire-compatible with the Microsoft Defender for Endpoint API: same paths
//! under `/api` (and `/api/v1.0`), same JSON shapes, OData options, permissions, error bodies and
//! rate limits. Beside it sit the token service (an Entra-ID-shaped OAuth2 client-credentials
//! authority per tenant), the OpenAPI document and the operator endpoints.
//!
//! Map of the crate:
//! - [`router`]: the route table; every secured route declares its permissions and rate-limit
//!   family there, and one guard enforces them.
//! - [`auth`]: secrets, signing keys, tokens, the [`auth::Caller`].
//! - [`odata`]: collection responses and paging links.
//! - [`routes`]: the handlers, a module per resource.
//! - [`fleet`]: machines created and kept current from telemetry.
//! - [`feeds`]: threat-intelligence feeds (parsed by `rampart-intel`) into indicators.
//! - Custom detection rules run in `rampart-detect`; [`AppState::detections`] is its engine, fed
//!   every ingested batch after it is durable.

pub mod auth;
pub mod body;
pub mod cluster;
pub mod error;
pub mod feeds;
pub mod fleet;
pub mod hunt_json;
pub mod metrics;
pub mod object_files;
pub mod odata;
pub mod ratelimit;
pub mod router;
pub mod routes;
pub mod state;

pub use state::{ApiConfig, AppState};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rampart_core::ErrorCode;
use router::ApiRoutes;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;

/// The secured routes under `/api`: each resource module adds its own.
fn api_routes(state: AppState) -> ApiRoutes {
    let r = ApiRoutes::new(state);
    let r = routes::alerts::add(r);
    let r = routes::machines::add(r);
    let r = routes::machine_telemetry::add(r);
    let r = routes::machine_actions::add(r);
    let r = routes::indicators::add(r);
    let r = routes::incidents::add(r);
    let r = routes::remediation::add(r);
    let r = routes::correlation::add(r);
    let r = routes::enrollment::add(r);
    let r = routes::schema::add(r);
    let r = routes::hunting::add(r);
    let r = routes::ingest::add(r);
    let r = routes::detection_rules::add(r);
    let r = routes::yara_rules::add(r);
    let r = routes::library::add(r);
    routes::audit::add(r)
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    use routes::{docs, oauth, ops};
    let (api, defs) = api_routes(state.clone()).finish();
    let doc: Arc<str> = docs::openapi_document(&defs).to_string().into();
    let limit = state.config.body_limit_bytes;
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route(
            "/api/openapi.json",
            get(move || async move { docs::openapi_response(&doc) }),
        )
        .route("/api/docs", get(docs::page))
        .route("/agent/v1/enroll", post(routes::enrollment::enroll))
        .route("/agent/v1/telemetry", post(routes::ingest::agent_batch))
        .route(
            rampart_proto::INDICATORS_PATH,
            get(routes::agent_indicators::enforcement),
        )
        .route(
            rampart_proto::COMMANDS_POLL_PATH,
            post(routes::agent_commands::poll),
        )
        .route(
            "/agent/v1/commands/{id}",
            post(routes::agent_commands::update),
        )
        .route(
            "/agent/v1/commands/{id}/package",
            put(routes::packages::upload),
        )
        .route("/packages/{id}", get(routes::packages::download))
        .route(
            "/agent/v1/commands/{id}/results/{index}",
            put(routes::live_response::upload_result),
        )
        .route(
            "/liveresponse/{id}/{index}",
            get(routes::live_response::download_result),
        )
        .route("/agent/v1/library/{sha256}", get(routes::library::content))
        .route("/{tenant}/oauth2/v2.0/token", post(oauth::token_v2))
        .route("/{tenant}/oauth2/token", post(oauth::token_v1))
        .route("/{tenant}/discovery/v2.0/keys", get(oauth::jwks))
        .route("/{tenant}/discovery/keys", get(oauth::jwks))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(oauth::openid_configuration),
        )
        .nest("/api/v1.0", api.clone())
        .nest("/api", api)
        .fallback(router::not_found)
        .method_not_allowed_fallback(router::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(mde_errors))
        .layer(middleware::map_request(host_from_authority))
        .layer(CatchPanicLayer::custom(router::panic_response))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            router::observe,
        ))
        .with_state(state)
}

/// Gives an HTTP/2 request the `Host` header HTTP/1.1 requests carry. Over TLS clients speak
/// HTTP/2, which names the host in the `:authority` pseudo-header (the URI's authority) instead;
/// the server's own URL — token audiences and issuers, `@odata.nextLink`s — is built from `Host`.
async fn host_from_authority(mut req: Request) -> Request {
    if !req.headers().contains_key(header::HOST)
        && let Some(value) = req
            .uri()
            .authority()
            .and_then(|a| header::HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(header::HOST, value);
    }
    req
}

/// Rewrites the framework's own plain-text rejections (a path segment that is not valid UTF-8,
/// a body over the limit…) into MDE error bodies, so that every error a client sees has one shape.
async fn mde_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        return resp;
    }
    let code = match status.as_u16() {
        404 => ErrorCode::ResourceNotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        429 => ErrorCode::TooManyRequests,
        s if s >= 500 => ErrorCode::InternalServerError,
        _ => ErrorCode::BadRequest,
    };
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let message = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        text.trim().to_owned()
    };
    let mut out = error::ApiError::new(code, message).into_response();
    *out.status_mut() = status;
    out
}
