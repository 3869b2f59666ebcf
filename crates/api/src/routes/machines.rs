//! `/api/machines` (devices, reference §2.2) and `/api/machinegroups` (Rampart's device groups).

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::odata::{entity_response, list_collection, value_response};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use rampart_core::machine::{AutomationLevel, DeviceValue, GroupRule, Machine, MachineGroup};
use rampart_core::odata::{CmpOp, Filter, Literal, StrFn};
use rampart_core::{ErrorCode, Permission as P, Rejection};
use rampart_store::Collection;
use serde::Deserialize;

const READ: &[P] = &[P::MachineRead, P::MachineReadWrite];
const WRITE: &[P] = &[P::MachineReadWrite];
const READ_ALERTS: &[P] = &[P::AlertRead, P::AlertReadWrite];
const READ_GROUPS: &[P] = &[
    P::MachineRead,
    P::MachineReadWrite,
    P::SecurityConfigurationRead,
    P::SecurityConfigurationReadWrite,
];
const WRITE_GROUPS: &[P] = &[P::SecurityConfigurationReadWrite];

/// Most machines one tag call may name (MDE: 500).
const MAX_MACHINES_PER_CALL: usize = 500;

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get("/machines", READ, "Machines", "List machines").collection("Machine"),
        list,
    )
    .add(
        RouteDef::get(
            "/machines/{id}",
            READ,
            "Machines",
            "Get a machine by id or computer name; also findbyip(ip='…',timestamp=…)",
        )
        .returns("Machine"),
        get,
    )
    .add(
        RouteDef::get(
            "/machines/findbytag",
            READ,
            "Machines",
            "Find machines by tag (tag=, useStartsWithFilter=)",
        )
        .collection("Machine"),
        find_by_tag,
    )
    .add(
        RouteDef::get(
            "/machines/{id}/alerts",
            READ_ALERTS,
            "Machines",
            "Alerts of a machine",
        )
        .collection("Alert"),
        alerts,
    )
    .add(
        RouteDef::new(
            Method::PATCH,
            "/machines/{id}",
            WRITE,
            "Machines",
            "Update tags and device value",
        )
        .returns("Machine"),
        patch,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/machines/{id}/tags",
            WRITE,
            "Machines",
            "Add or remove a tag",
        )
        .returns("Machine"),
        tag,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/machines/{id}/setDeviceValue",
            WRITE,
            "Machines",
            "Set the device value",
        )
        .returns("Machine"),
        set_device_value,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/machines/AddOrRemoveTagForMultipleMachines",
            WRITE,
            "Machines",
            "Add or remove a tag on up to 500 machines",
        )
        .collection("Machine"),
        tag_many,
    )
    .add(
        RouteDef::get(
            "/machinegroups",
            READ_GROUPS,
            "Device groups",
            "List device groups (Rampart)",
        )
        .returns("MachineGroup"),
        list_groups,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/machinegroups",
            WRITE_GROUPS,
            "Device groups",
            "Create a device group (Rampart)",
        )
        .returns("MachineGroup"),
        create_group,
    )
    .add(
        RouteDef::get(
            "/machinegroups/{id}",
            READ_GROUPS,
            "Device groups",
            "Get a device group (Rampart)",
        )
        .returns("MachineGroup"),
        get_group,
    )
    .add(
        RouteDef::new(
            Method::PATCH,
            "/machinegroups/{id}",
            WRITE_GROUPS,
            "Device groups",
            "Update a device group (Rampart)",
        )
        .returns("MachineGroup"),
        patch_group,
    )
    .add(
        RouteDef::new(
            Method::DELETE,
            "/machinegroups/{id}",
            WRITE_GROUPS,
            "Device groups",
            "Delete a device group (Rampart)",
        ),
        delete_group,
    )
}

fn not_found(id: &str) -> ApiError {
    let shown: String = id.chars().take(100).collect();
    ApiError::not_found(format!("Machine {shown} was not found"))
}

/// The machine named by a path, or 404.
pub async fn machine(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Machine> {
    state
        .store
        .get_machine(caller.tenant, id)
        .await?
        .ok_or_else(|| not_found(id))
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
        Collection::of::<Machine>(),
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
    if let Some(args) = id
        .strip_prefix("findbyip(")
        .and_then(|a| a.strip_suffix(')'))
    {
        return find_by_ip(&state, &caller, args).await;
    }
    Ok(entity_response(
        StatusCode::OK,
        &machine(&state, &caller, &id).await?,
    ))
}

/// `findbyip(ip='10.1.2.3',timestamp=2024-01-01T00:00:00Z)`: machines that used the address
/// within 15 minutes of the time, which must lie in the past 30 days (as MDE).
async fn find_by_ip(state: &AppState, caller: &Caller, args: &str) -> ApiResult<Response> {
    let bad = |m: &str| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "findbyip: {m}; expected findbyip(ip='10.1.2.3',timestamp=2024-01-31T08:00:00Z)"
            ),
        )
    };
    let mut ip = None;
    let mut at = None;
    for part in args.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad("each argument is name=value"))?;
        match k.trim() {
            "ip" => ip = Some(v.trim().trim_matches('\'').to_owned()),
            "timestamp" => {
                at = Some(
                    rampart_core::timefmt::parse(v.trim().trim_matches('\''))
                        .ok_or_else(|| bad("timestamp is not an ISO 8601 UTC time"))?,
                )
            }
            other => {
                return Err(bad(&format!(
                    "unknown argument '{}'",
                    other.chars().take(40).collect::<String>()
                )));
            }
        }
    }
    let ip = ip.ok_or_else(|| bad("ip is required"))?;
    let ip: std::net::IpAddr = ip.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidIpAddress,
            format!(
                "'{}' is not an IP address",
                ip.chars().take(60).collect::<String>()
            ),
        )
    })?;
    let at = at.ok_or_else(|| bad("timestamp is required"))?;
    let now = time::OffsetDateTime::now_utc();
    if at < now - time::Duration::days(30) || at > now + time::Duration::minutes(15) {
        return Err(bad("timestamp must be within the past 30 days"));
    }
    let found = state
        .store
        .machines_by_ip(
            caller.tenant,
            &ip.to_string(),
            at,
            time::Duration::minutes(15),
        )
        .await?;
    Ok(entity_response(
        StatusCode::OK,
        &serde_json::json!({ "value": found }),
    ))
}

pub async fn find_by_tag(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let pairs = crate::odata::query_pairs(&uri)?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let starts_with = get("useStartsWithFilter").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let tag = get("tag").filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredParameter,
            "The query parameter 'tag' is required.",
        )
    })?;
    let predicate = if starts_with {
        Filter::StrFn {
            func: StrFn::StartsWith,
            field: "t".into(),
            value: tag,
        }
    } else {
        Filter::Compare {
            field: "t".into(),
            op: CmpOp::Eq,
            value: Literal::String(tag),
        }
    };
    let scope = Filter::Any {
        field: "machineTags".into(),
        var: "t".into(),
        predicate: Box::new(predicate),
    };
    list_collection(
        &state,
        caller.tenant,
        &headers,
        &uri,
        Collection::of::<Machine>(),
        Some(&scope),
        |_, b| Ok(b),
    )
    .await
}

pub async fn alerts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let m = machine(&state, &caller, &id).await?;
    let scope = Filter::Compare {
        field: "machineId".into(),
        op: CmpOp::Eq,
        value: Literal::String(m.id),
    };
    let alerts = Collection::of::<rampart_core::alert::Alert>();
    list_collection(
        &state,
        caller.tenant,
        &headers,
        &uri,
        alerts,
        Some(&scope),
        super::alerts::expand_evidence,
    )
    .await
}

#[derive(Deserialize, Clone, Copy)]
pub enum TagAction {
    Add,
    Remove,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagBody {
    value: String,
    action: TagAction,
}

fn apply_tag(m: &mut Machine, value: &str, action: TagAction) -> Result<(), Rejection> {
    match action {
        TagAction::Add => m.add_tag(value),
        TagAction::Remove => {
            m.remove_tag(value);
            Ok(())
        }
    }
}

async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: &str,
    change: impl FnMut(&mut Machine) -> Result<(), Rejection> + Send,
) -> ApiResult<Machine> {
    let m = machine(state, caller, id).await?;
    state
        .store
        .update_machine(
            &caller.audit(),
            caller.tenant,
            &m.id,
            action,
            Box::new(change),
        )
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn tag(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TagBody>,
) -> ApiResult<Response> {
    rampart_core::machine::check_tag(&body.value).map_err(ApiError::from)?;
    let m = update(&state, &caller, &id, "Tag", |m| {
        apply_tag(m, &body.value, body.action)
    })
    .await?;
    Ok(entity_response(StatusCode::OK, &m))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagManyBody {
    value: String,
    action: TagAction,
    machine_ids: Vec<String>,
}

pub async fn tag_many(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TagManyBody>,
) -> ApiResult<Response> {
    rampart_core::machine::check_tag(&body.value).map_err(ApiError::from)?;
    if body.machine_ids.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "MachineIds must name at least one machine.",
        ));
    }
    if body.machine_ids.len() > MAX_MACHINES_PER_CALL {
        return Err(ApiError::new(
            ErrorCode::MaximumBatchSizeExceeded,
            format!(
                "Received: {}, allowed: {MAX_MACHINES_PER_CALL}",
                body.machine_ids.len()
            ),
        ));
    }
    // All or nothing: every machine must exist before any is tagged.
    let mut ids = Vec::with_capacity(body.machine_ids.len());
    for id in &body.machine_ids {
        ids.push(machine(&state, &caller, id).await?.id);
    }
    let mut updated = Vec::with_capacity(ids.len());
    for id in ids {
        updated.push(
            update(&state, &caller, &id, "Tag", |m| {
                apply_tag(m, &body.value, body.action)
            })
            .await?,
        );
    }
    Ok(value_response(&state, &headers, "Machines", &updated))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchBody {
    machine_tags: Option<Vec<String>>,
    device_value: Option<DeviceValue>,
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PatchBody>,
) -> ApiResult<Response> {
    if let Some(tags) = &body.machine_tags {
        for t in tags {
            rampart_core::machine::check_tag(t).map_err(ApiError::from)?;
        }
    }
    let m = update(&state, &caller, &id, "Update", |m| {
        // MDE: the body's tag list replaces the machine's tags.
        if let Some(tags) = &body.machine_tags {
            m.machine_tags.clear();
            for t in tags {
                m.add_tag(t)?;
            }
        }
        if let Some(v) = body.device_value {
            m.device_value = v;
        }
        Ok(())
    })
    .await?;
    Ok(entity_response(StatusCode::OK, &m))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceValueBody {
    device_value: DeviceValue,
}

pub async fn set_device_value(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DeviceValueBody>,
) -> ApiResult<Response> {
    let m = update(&state, &caller, &id, "SetDeviceValue", |m| {
        m.device_value = body.device_value;
        Ok(())
    })
    .await?;
    Ok(entity_response(StatusCode::OK, &m))
}

pub async fn list_groups(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let groups = state.store.list_machine_groups(caller.tenant).await?;
    Ok(value_response(&state, &headers, "MachineGroups", &groups))
}

fn group_id(id: &str) -> ApiResult<i64> {
    id.parse().map_err(|_| {
        ApiError::not_found(format!(
            "Device group {} was not found",
            id.chars().take(40).collect::<String>()
        ))
    })
}

pub async fn get_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let gid = group_id(&id)?;
    let groups = state.store.list_machine_groups(caller.tenant).await?;
    let g = groups
        .into_iter()
        .find(|g| g.id == gid)
        .ok_or_else(|| ApiError::not_found(format!("Device group {gid} was not found")))?;
    Ok(entity_response(StatusCode::OK, &g))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupBody {
    name: Option<String>,
    description: Option<String>,
    rank: Option<i64>,
    rules: Option<Vec<GroupRule>>,
    automation_level: Option<AutomationLevel>,
}

fn check_group(g: &MachineGroup) -> Result<(), Rejection> {
    if g.name.trim().is_empty() || g.name.chars().count() > 200 {
        return Err(Rejection::new(
            ErrorCode::InvalidInput,
            "name must be 1 to 200 characters",
        ));
    }
    if g.rules.is_empty() {
        return Err(Rejection::new(
            ErrorCode::InvalidInput,
            "rules must hold at least one rule (tag, name pattern, OS platform or domain)",
        ));
    }
    Ok(())
}

pub async fn create_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<GroupBody>,
) -> ApiResult<Response> {
    let name = body
        .name
        .ok_or_else(|| ApiError::new(ErrorCode::MissingRequiredParameter, "name is required"))?;
    let group = MachineGroup {
        id: 0,
        name,
        description: body.description,
        rank: body.rank.unwrap_or(100),
        rules: body.rules.unwrap_or_default(),
        automation_level: body
            .automation_level
            .unwrap_or(AutomationLevel::FullRemediation),
        last_update_time: None,
    };
    check_group(&group).map_err(ApiError::from)?;
    let g = state
        .store
        .create_machine_group(&caller.audit(), caller.tenant, group)
        .await?;
    Ok(entity_response(StatusCode::CREATED, &g))
}

pub async fn patch_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GroupBody>,
) -> ApiResult<Response> {
    let gid = group_id(&id)?;
    let change = move |g: &mut MachineGroup| {
        if let Some(n) = &body.name {
            g.name = n.clone();
        }
        if body.description.is_some() {
            g.description = body.description.clone();
        }
        if let Some(r) = body.rank {
            g.rank = r;
        }
        if let Some(r) = &body.rules {
            g.rules = r.clone();
        }
        if let Some(a) = body.automation_level {
            g.automation_level = a;
        }
        check_group(g)
    };
    let g = state
        .store
        .update_machine_group(&caller.audit(), caller.tenant, gid, Box::new(change))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Device group {gid} was not found")))?;
    Ok(entity_response(StatusCode::OK, &g))
}

pub async fn delete_group(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let gid = group_id(&id)?;
    if !state
        .store
        .delete_machine_group(&caller.audit(), caller.tenant, gid)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "Device group {gid} was not found"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

use axum::response::IntoResponse;
