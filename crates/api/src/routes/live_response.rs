//! Live response results: the agent uploads the result of each `RunScript` (the transcript) and
//! `GetFile` (the file) of a running session (`PUT /agent/v1/commands/{id}/results/{index}`);
//! the server keeps it in the object store (`liveresponse/{tenant}/{action}/{index}`), and
//! `GetLiveResponseResultDownloadLink(index=N)` answers a signed link to it that works for half
//! an hour without a bearer token (`GET /liveresponse/{id}/{index}?token=…`).

use crate::auth::device::authenticate_device;
use crate::error::{ApiError, ApiResult};
use crate::object_files;
use crate::routes::packages::LinkQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use datafusion::object_store::path::Path as ObjectPath;
use rampart_core::machine_action::{ActionStatus, ActionType, CommandType};
use rampart_core::{ErrorCode, TenantId};
use rampart_proto::command::ResultAck;

/// Largest result the server takes (MDE's `GetFile` limit is 3 GB).
pub const MAX_RESULT_BYTES: u64 = 3 << 30;

/// Where the result of command `index` of live response action `action_id` is kept.
pub fn object_path(tenant: TenantId, action_id: &str, index: u32) -> ObjectPath {
    ObjectPath::from(format!("liveresponse/{tenant}/{action_id}/{index}"))
}

/// Whether the result of command `index` has been uploaded.
pub async fn uploaded(
    state: &AppState,
    tenant: TenantId,
    action_id: &str,
    index: u32,
) -> ApiResult<bool> {
    object_files::exists(
        state,
        &object_path(tenant, action_id, index),
        "a live response result",
    )
    .await
}

/// The result URI stored for command `index` when the server holds its result.
pub fn stored_uri(tenant: TenantId, action_id: &str, index: u32) -> String {
    object_files::stored_uri(&object_path(tenant, action_id, index))
}

fn download_path(action_id: &str, index: u32) -> String {
    format!("/liveresponse/{action_id}/{index}")
}

/// The link `GetLiveResponseResultDownloadLink` answers for a stored result URI: signed and
/// short-lived when the server holds the result, else the URI as stored.
pub async fn link(
    state: &AppState,
    headers: &HeaderMap,
    tenant: TenantId,
    action_id: &str,
    index: u32,
    uri: &str,
) -> ApiResult<String> {
    if !object_files::is_stored(uri) {
        return Ok(uri.to_owned());
    }
    object_files::signed_link(state, headers, tenant, &download_path(action_id, index)).await
}

/// `PUT /agent/v1/commands/{id}/results/{index}` (device credential).
pub async fn upload_result(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Json<ResultAck>> {
    let device = authenticate_device(&state, req.headers()).await?;
    let action = crate::routes::agent_commands::command_of_device(&state, &device, &id).await?;
    if action.action_type != ActionType::LiveResponse || action.status() != ActionStatus::InProgress
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "Machine action {} is a {} action that is {}; it takes no live response result.",
                action.id,
                action.action_type.as_str(),
                action.status().as_str()
            ),
        ));
    }
    let command = index
        .parse::<u32>()
        .ok()
        .and_then(|i| Some((i, action.commands().get(i as usize)?)))
        .filter(|(_, c)| c.command.has_result());
    let Some((index, _)) = command else {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "Command {} of machine action {} does not exist or leaves no result.",
                index.chars().take(12).collect::<String>(),
                action.id
            ),
        ));
    };
    let bytes = object_files::store_stream(
        state.events.objects().as_ref(),
        &object_path(device.tenant, &action.id, index),
        req.into_body().into_data_stream(),
        MAX_RESULT_BYTES,
        "The live response result",
    )
    .await?;
    tracing::info!(
        device_id = device.device_id,
        action = action.id,
        index,
        bytes,
        "live response result stored"
    );
    Ok(Json(ResultAck {
        command_id: action.id,
        index,
        bytes,
    }))
}

/// `GET /liveresponse/{id}/{index}?token=…`: a result, for whoever holds a link that has not
/// expired.
pub async fn download_result(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, String)>,
    Query(q): Query<LinkQuery>,
) -> ApiResult<Response> {
    let refused = || {
        ApiError::new(
            ErrorCode::Unauthorized,
            "The download link is not valid or has expired; ask for a new one.",
        )
    };
    let index: u32 = index.parse().map_err(|_| refused())?;
    let tenant = object_files::verify_link(&state, q.token.as_deref(), &download_path(&id, index))?;
    let action = state
        .store
        .get_machine_action(tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Machine action {id} is gone.")))?;
    let (content_type, name) = match action.commands().get(index as usize) {
        Some(c) if c.command.command_type == CommandType::RunScript => (
            "application/json",
            format!(
                "{}-transcript.json",
                c.command.param("ScriptName").unwrap_or("script")
            ),
        ),
        Some(c) => (
            "application/octet-stream",
            c.command
                .param("Path")
                .and_then(|p| p.rsplit(['/', '\\']).next())
                .filter(|n| !n.is_empty())
                .unwrap_or("file")
                .to_owned(),
        ),
        None => return Err(refused()),
    };
    object_files::serve(
        &state,
        &object_path(tenant, &id, index),
        content_type,
        &name,
        &format!("The result of command {index} of machine action {id}"),
    )
    .await
}
