//! Investigation packages: the agent uploads the package of a `CollectInvestigationPackage`
//! command (`PUT /agent/v1/commands/{id}/package`), the server keeps it in the object store
//! beside the telemetry (`packages/{tenant}/{action id}.tar.gz` — the data dir by default, S3 or
//! the like when scaled out), and `GetPackageUri` answers a link that works without a bearer
//! token for half an hour, like MDE's SAS links: `GET /packages/{id}?token=…`, where the token
//! is a JWT signed with the tenant's key naming that one download ([`crate::object_files`]).

use crate::auth::device::authenticate_device;
use crate::error::{ApiError, ApiResult};
use crate::object_files;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use datafusion::object_store::path::Path as ObjectPath;
use rampart_core::machine_action::{ActionStatus, ActionType, MachineAction};
use rampart_core::{ErrorCode, TenantId};
use rampart_proto::command::PackageAck;
use serde::Deserialize;

/// Largest package the server takes.
pub const MAX_PACKAGE_BYTES: u64 = 512 << 20;

/// Where the package of an action is kept.
pub fn object_path(tenant: TenantId, action_id: &str) -> ObjectPath {
    ObjectPath::from(format!("packages/{tenant}/{action_id}.tar.gz"))
}

/// The package URI stored with a completed action whose package the server holds.
pub fn stored_uri(tenant: TenantId, action_id: &str) -> String {
    object_files::stored_uri(&object_path(tenant, action_id))
}

/// Whether the package of an action has been uploaded.
pub async fn uploaded(state: &AppState, tenant: TenantId, action_id: &str) -> ApiResult<bool> {
    object_files::exists(
        state,
        &object_path(tenant, action_id),
        "an investigation package",
    )
    .await
}

/// `PUT /agent/v1/commands/{id}/package` (device credential): the package of a running
/// `CollectInvestigationPackage` command of this device, streamed into the object store.
pub async fn upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Json<PackageAck>> {
    let device = authenticate_device(&state, req.headers()).await?;
    let action = crate::routes::agent_commands::command_of_device(&state, &device, &id).await?;
    if action.action_type != ActionType::CollectInvestigationPackage
        || action.status() != ActionStatus::InProgress
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "Machine action {} is a {} action that is {}; it takes no package.",
                action.id,
                action.action_type.as_str(),
                action.status().as_str()
            ),
        ));
    }
    let bytes = object_files::store_stream(
        state.events.objects().as_ref(),
        &object_path(device.tenant, &action.id),
        req.into_body().into_data_stream(),
        MAX_PACKAGE_BYTES,
        "The investigation package",
    )
    .await?;
    tracing::info!(
        device_id = device.device_id,
        action = action.id,
        bytes,
        "investigation package stored"
    );
    Ok(Json(PackageAck {
        command_id: action.id,
        bytes,
    }))
}

/// The URL path a package is downloaded from.
fn download_path(action_id: &str) -> String {
    format!("/packages/{action_id}")
}

/// The link `GetPackageUri` answers for `action`, whose stored package URI is `uri`: a signed,
/// short-lived link when the server holds the package, else the URI as stored.
pub async fn link(
    state: &AppState,
    headers: &HeaderMap,
    tenant: TenantId,
    action: &MachineAction,
    uri: &str,
) -> ApiResult<String> {
    if !object_files::is_stored(uri) {
        return Ok(uri.to_owned());
    }
    object_files::signed_link(state, headers, tenant, &download_path(&action.id)).await
}

#[derive(Deserialize)]
pub struct LinkQuery {
    pub token: Option<String>,
}

/// `GET /packages/{id}?token=…`: the package, for whoever holds a link `GetPackageUri` gave
/// out and that has not expired.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LinkQuery>,
) -> ApiResult<Response> {
    let tenant = object_files::verify_link(&state, q.token.as_deref(), &download_path(&id))?;
    object_files::serve(
        &state,
        &object_path(tenant, &id),
        "application/gzip",
        &format!("investigation-package-{id}.tar.gz"),
        &format!("The package of machine action {id}"),
    )
    .await
}
