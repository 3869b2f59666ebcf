//! Machine actions (reference §2.4–2.5): `/api/machineactions` and the action routes of
//! `/api/machines/{id}`.
//!
//! Answers:
//! * An accepted action request is `201 Created` + the MachineAction — also when the answer is
//!   an existing action: a duplicate of an open action of the same type and scope, or a replayed
//!   `Idempotency-Key` (clients written for MDE check for 201; the response header
//!   `x-rampart-existing-action: true` tells these apart from a new action).
//! * `400`: `MissingRequiredParameter` (no `Comment` — required on every action and on cancel —,
//!   no `ScanType`, no `Sha1`, no `Commands`, a command without its parameter),
//!   `InvalidRequestBody` (malformed JSON, a wrong enum value, naming the field), `InvalidInput`,
//!   `InvalidHashValue`, `MaximumBatchSizeExceeded` (over 20 live response commands),
//!   `OsPlatformNotSupported` (see the matrix in `rampart_core::machine_action`), `BadRequest`
//!   "Action is already in progress" (a scan of the other type while one is open; cancelling a
//!   finished action), `ActiveRequestAlreadyExists` (a second live response session).
//! * `404 ResourceNotFound`: unknown machine (id or computer name) or action; a package or
//!   live response result that does not exist (yet).
//! * `409 Conflict`: an `Idempotency-Key` already used by this app for a different request
//!   (another machine, type, scope, comment, file or command list). Keys are per tenant and app,
//!   1–255 visible ASCII characters, and kept with the action they answered.
//!
//! `IsolationType` defaults to `Full` when absent. Enum values are matched case-insensitively.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::odata::{entity_response, list_collection};
use crate::ratelimit::RouteFamily;
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use rampart_core::machine::{AutomationLevel, UNGROUPED_AUTOMATION};
use rampart_core::machine_action::{
    ActionRequest, ActionStatus, ActionSubmission, ActionType, CommandInput, IdempotencyKey,
    IsolationType, MachineAction, RequestedAction, ScanType, check_comment, parse_commands,
};
use rampart_core::{ErrorCode, Permission as P};
use rampart_store::Collection;
use serde::Deserialize;
use std::str::FromStr;

const READ: &[P] = &[P::MachineRead, P::MachineReadWrite];
/// Cancel takes any of the action permissions (as MDE).
const CANCEL: &[P] = &[
    P::MachineIsolate,
    P::MachineRestrictExecution,
    P::MachineScan,
    P::MachineCollectForensics,
    P::MachineStopAndQuarantine,
    P::MachineOffboard,
    P::MachineLiveResponse,
];
const TAG: &str = "Machine actions";
/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

pub fn add(r: ApiRoutes) -> ApiRoutes {
    let post = |path, perms, summary| {
        RouteDef::new(Method::POST, path, perms, TAG, summary).returns("MachineAction")
    };
    r.add(
        RouteDef::get("/machineactions", READ, TAG, "List machine actions")
            .collection("MachineAction"),
        list,
    )
    .add(
        RouteDef::get("/machineactions/{id}", READ, TAG, "Get a machine action")
            .returns("MachineAction"),
        get,
    )
    .add(
        RouteDef::get(
            "/machineactions/{id}/GetPackageUri",
            READ,
            TAG,
            "The download link of a collected investigation package",
        )
        .family(RouteFamily::GetPackageUri),
        package_uri,
    )
    .add(
        RouteDef::get(
            "/machineactions/{id}/{function}",
            READ,
            TAG,
            "GetLiveResponseResultDownloadLink(index={n}): the download link of a live response command's result",
        ),
        function,
    )
    .add(
        post(
            "/machineactions/{id}/cancel",
            CANCEL,
            "Cancel a pending or running machine action",
        ),
        cancel,
    )
    .add(
        post(
            "/machines/{id}/isolate",
            &[P::MachineIsolate],
            "Isolate a machine (IsolationType Full or Selective)",
        ),
        isolate,
    )
    .add(
        post(
            "/machines/{id}/unisolate",
            &[P::MachineIsolate],
            "Release a machine from isolation",
        ),
        unisolate,
    )
    .add(
        post(
            "/machines/{id}/restrictCodeExecution",
            &[P::MachineRestrictExecution],
            "Restrict app execution",
        ),
        restrict,
    )
    .add(
        post(
            "/machines/{id}/unrestrictCodeExecution",
            &[P::MachineRestrictExecution],
            "Remove the app execution restriction",
        ),
        unrestrict,
    )
    .add(
        post(
            "/machines/{id}/runAntiVirusScan",
            &[P::MachineScan],
            "Run an antivirus scan (ScanType Quick or Full)",
        ),
        scan,
    )
    .add(
        post(
            "/machines/{id}/collectInvestigationPackage",
            &[P::MachineCollectForensics],
            "Collect an investigation package",
        ),
        collect,
    )
    .add(
        post(
            "/machines/{id}/StopAndQuarantineFile",
            &[P::MachineStopAndQuarantine],
            "Stop the processes of a file and quarantine it (Sha1)",
        ),
        quarantine,
    )
    .add(
        post(
            "/machines/{id}/restoreQuarantinedFile",
            &[P::MachineStopAndQuarantine],
            "Put the files quarantined under a SHA-1 back where they were (Rampart's own; \
             the undo of StopAndQuarantineFile)",
        ),
        restore_quarantined,
    )
    .add(
        post(
            "/machines/{id}/offboard",
            &[P::MachineOffboard],
            "Offboard a machine",
        ),
        offboard,
    )
    .add(
        post(
            "/machines/{id}/runliveresponse",
            &[P::MachineLiveResponse],
            "Run live response commands (PutFile, RunScript, GetFile)",
        )
        .family(RouteFamily::LiveResponse),
        live_response,
    )
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Machine action {} was not found",
        id.chars().take(100).collect::<String>()
    ))
}

/// A MachineAction with its `@odata.context`, as MDE answers for one action.
fn action_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    action: &MachineAction,
) -> ApiResult<Response> {
    let mut v = serde_json::to_value(action)
        .map_err(|e| ApiError::internal("encoding a machine action", e))?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "@odata.context".into(),
            format!(
                "{}/api/$metadata#MachineActions/$entity",
                state.base_url(headers)
            )
            .into(),
        );
    }
    Ok(entity_response(status, &v))
}

/// A primitive string result: `{"@odata.context": "…#Edm.String", "value": …}`.
fn string_response(state: &AppState, headers: &HeaderMap, value: &str) -> Response {
    entity_response(
        StatusCode::OK,
        &serde_json::json!({
            "@odata.context": format!("{}/api/$metadata#Edm.String", state.base_url(headers)),
            "value": value,
        }),
    )
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
        Collection::of::<MachineAction>(),
        None,
        |_, b| Ok(b),
    )
    .await
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let action = state
        .store
        .get_machine_action(caller.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    action_response(&state, &headers, StatusCode::OK, &action)
}

pub async fn package_uri(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (action, results) = state
        .store
        .machine_action_results(caller.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if action.action_type != ActionType::CollectInvestigationPackage {
        return Err(ApiError::not_found(format!(
            "Machine action {} is a {} action; only CollectInvestigationPackage actions have a package.",
            action.id,
            action.action_type.as_str()
        )));
    }
    match (action.status(), results.package_uri) {
        (ActionStatus::Succeeded, Some(uri)) => {
            let link =
                crate::routes::packages::link(&state, &headers, caller.tenant, &action, &uri)
                    .await?;
            Ok(string_response(&state, &headers, &link))
        }
        (status, _) => Err(ApiError::not_found(format!(
            "The investigation package of machine action {} is not available: the collection is {}.",
            action.id,
            status.as_str()
        ))),
    }
}

/// `GetLiveResponseResultDownloadLink(index=N)` → `Some(N)` (`Err` when N is not a number);
/// `None` for any other function.
fn result_link_index(function: &str) -> Option<Result<u32, ApiError>> {
    const NAME: &str = "GetLiveResponseResultDownloadLink";
    let head = function.get(..NAME.len())?;
    if !head.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let args = function[NAME.len()..]
        .trim()
        .strip_prefix('(')
        .and_then(|a| a.strip_suffix(')'))?;
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "GetLiveResponseResultDownloadLink takes index=<command index>, e.g. GetLiveResponseResultDownloadLink(index=0); got '{}'",
                args.chars().take(40).collect::<String>()
            ),
        )
    };
    Some(
        args.split_once('=')
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case("index"))
            .and_then(|(_, v)| v.trim().parse::<u32>().ok())
            .ok_or_else(bad),
    )
}

/// `GET /machineactions/{id}/{function}`: MDE's function-call URL
/// `GetLiveResponseResultDownloadLink(index=N)` (axum cannot route on part of a segment).
pub async fn function(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, function)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(index) = result_link_index(&function) else {
        return Err(ApiError::not_found(format!(
            "No resource at GET /api/machineactions/{}/{}.",
            id.chars().take(100).collect::<String>(),
            function.chars().take(100).collect::<String>()
        )));
    };
    let index = index?;
    let (action, results) = state
        .store
        .machine_action_results(caller.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if action.action_type != ActionType::LiveResponse {
        return Err(ApiError::not_found(format!(
            "Machine action {} is a {} action; only LiveResponse actions have command results.",
            action.id,
            action.action_type.as_str()
        )));
    }
    let Some(entry) = action.commands().get(index as usize) else {
        return Err(ApiError::not_found(format!(
            "Machine action {} has {} commands; there is no command index={index}.",
            action.id,
            action.commands().len()
        )));
    };
    if !entry.command.has_result() {
        return Err(ApiError::not_found(format!(
            "Command {index} ({}) has no result to download.",
            entry.command.command_type.as_str()
        )));
    }
    match results.result_links.get(index as usize).cloned().flatten() {
        Some(uri) => {
            let link = crate::routes::live_response::link(
                &state,
                &headers,
                caller.tenant,
                &action.id,
                index,
                &uri,
            )
            .await?;
            Ok(string_response(&state, &headers, &link))
        }
        None => Err(ApiError::not_found(format!(
            "The result of command {index} of machine action {} is not available: the command is {}.",
            action.id,
            entry.command_status.as_str()
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelBody {
    comment: Option<String>,
}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CancelBody>,
) -> ApiResult<Response> {
    let comment = check_comment(body.comment)?;
    let action = state
        .store
        .cancel_machine_action(
            &caller.audit(),
            caller.tenant,
            &id,
            &caller.client_id.to_string(),
            &comment,
        )
        .await?
        .ok_or_else(|| not_found(&id))?;
    action_response(&state, &headers, StatusCode::OK, &action)
}

/// The body of every action request; each route reads the keys it takes (PascalCase, as MDE).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActionBody {
    comment: Option<String>,
    isolation_type: Option<String>,
    scan_type: Option<String>,
    sha1: Option<String>,
    commands: Option<Vec<CommandInput>>,
    #[serde(rename = "ExternalID", alias = "ExternalId")]
    external_id: Option<String>,
}

/// An enum value of the body, case-insensitively; `InvalidRequestBody` naming the field.
fn enum_field<T: FromStr<Err = String>>(field: &str, value: &str) -> ApiResult<T> {
    value.trim().parse().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequestBody,
            format!("Field '{field}' is not valid: {e}"),
        )
    })
}

fn required<'a>(field: &str, value: &'a Option<String>) -> ApiResult<&'a str> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingRequiredParameter,
                format!("{field} is required (request body keys are case-sensitive)."),
            )
        })
}

fn idempotency_key(headers: &HeaderMap, caller: &Caller) -> ApiResult<Option<IdempotencyKey>> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| {
            !k.is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "The Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters."
                ),
            )
        })?;
    Ok(Some(IdempotencyKey {
        client_id: caller.client_id.to_string(),
        key: key.to_owned(),
    }))
}

/// Validates a request, resolves its machine, and submits it.
async fn submit(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    machine: &str,
    body: ActionBody,
    action: RequestedAction,
) -> ApiResult<Response> {
    let request = ActionRequest::new(action, body.comment, body.external_id)?;
    let idempotency = idempotency_key(headers, caller)?;
    let m = super::machines::machine(state, caller, machine).await?;
    let submitted = state
        .store
        .submit_machine_action(
            &caller.audit(),
            caller.tenant,
            &ActionSubmission {
                machine_id: m.id,
                request,
                requestor: caller.client_id.to_string(),
                request_source: Some(caller.app_name.clone()),
                idempotency,
            },
        )
        .await?;
    let mut resp = action_response(state, headers, StatusCode::CREATED, &submitted.action)?;
    if !submitted.created {
        resp.headers_mut().insert(
            "x-rampart-existing-action",
            HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

macro_rules! action_route {
    ($name:ident, |$body:ident| $build:expr) => {
        pub async fn $name(
            State(state): State<AppState>,
            Extension(caller): Extension<Caller>,
            Path(id): Path<String>,
            headers: HeaderMap,
            JsonBody($body): JsonBody<ActionBody>,
        ) -> ApiResult<Response> {
            let action: ApiResult<RequestedAction> = $build;
            let action = action?;
            submit(&state, &caller, &headers, &id, $body, action).await
        }
    };
}

action_route!(isolate, |body| {
    let isolation = match body.isolation_type.as_deref() {
        Some(v) => enum_field::<IsolationType>("IsolationType", v)?,
        None => IsolationType::Full,
    };
    Ok(RequestedAction::Isolate { isolation })
});
action_route!(unisolate, |body| Ok(RequestedAction::Unisolate));
action_route!(restrict, |body| Ok(RequestedAction::RestrictCodeExecution));
action_route!(unrestrict, |body| Ok(
    RequestedAction::UnrestrictCodeExecution
));
action_route!(scan, |body| {
    let scan = enum_field::<ScanType>("ScanType", required("ScanType", &body.scan_type)?)?;
    Ok(RequestedAction::RunAntiVirusScan { scan })
});
action_route!(collect, |body| Ok(
    RequestedAction::CollectInvestigationPackage
));
action_route!(quarantine, |body| Ok(
    RequestedAction::StopAndQuarantineFile {
        sha1: required("Sha1", &body.sha1)?.to_owned(),
    }
));
action_route!(restore_quarantined, |body| Ok(
    RequestedAction::RestoreQuarantinedFile {
        sha1: required("Sha1", &body.sha1)?.to_owned(),
    }
));
action_route!(offboard, |body| Ok(RequestedAction::Offboard));
/// `POST /api/machines/{id}/runliveresponse`. Beyond the checks every action gets: each
/// library file it names must exist (so a typo fails now, not on the device), and the device's
/// group must allow some automated remediation (MDE: live response needs a remediation level).
pub async fn live_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ActionBody>,
) -> ApiResult<Response> {
    let commands = body.commands.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredParameter,
            "Commands is required (request body keys are case-sensitive).",
        )
    })?;
    let commands = parse_commands(commands)?;
    for (i, c) in commands.iter().enumerate() {
        let Some(name) = c.param("FileName").or_else(|| c.param("ScriptName")) else {
            continue;
        };
        if state
            .store
            .get_library_file(caller.tenant, name)
            .await?
            .is_none()
        {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "Command {i} ({}): '{name}' is not in the live response library; upload it to /api/libraryfiles first.",
                    c.command_type.as_str()
                ),
            ));
        }
    }
    let m = super::machines::machine(&state, &caller, &id).await?;
    let level = state
        .store
        .list_machine_groups(caller.tenant)
        .await?
        .into_iter()
        .find(|g| g.id == m.rbac_group_id)
        .map_or(UNGROUPED_AUTOMATION, |g| g.automation_level);
    if level == AutomationLevel::NoAutomatedResponse {
        return Err(ApiError::new(
            ErrorCode::DisallowedOperation,
            format!(
                "Live response needs the device group '{}' to allow automated remediation; its automation level is NoAutomatedResponse.",
                m.rbac_group_name.as_deref().unwrap_or_default()
            ),
        ));
    }
    submit(
        &state,
        &caller,
        &headers,
        &m.id,
        body,
        RequestedAction::LiveResponse { commands },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::result_link_index;

    #[test]
    fn result_link_function_urls() {
        assert_eq!(
            result_link_index("GetLiveResponseResultDownloadLink(index=3)").map(|r| r.unwrap()),
            Some(3)
        );
        assert_eq!(
            result_link_index("getliveresponseresultdownloadlink( index = 0 )").map(|r| r.unwrap()),
            Some(0)
        );
        assert!(
            result_link_index("GetLiveResponseResultDownloadLink(index=x)")
                .is_some_and(|r| r.is_err())
        );
        assert!(
            result_link_index("GetLiveResponseResultDownloadLink(i=1)").is_some_and(|r| r.is_err())
        );
        assert!(result_link_index("GetPackageUri").is_none());
        assert!(result_link_index("GetLiveResponseResultDownloadLink").is_none());
    }
}
