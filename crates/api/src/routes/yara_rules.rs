//! `/api/yararules` (Rampart's own): the tenant's YARA rule sets, which every agent's antivirus
//! scans apply beside the blocked file hashes. A set is checked with the agents' YARA engine
//! before it is stored; each change reaches the agents with their next indicator sync.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::odata::{entity_response, list_collection};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rampart_core::yara_rule::YaraRuleSet;
use rampart_core::{ErrorCode, Permission as P};
use rampart_store::Collection;
use serde::Deserialize;
use time::OffsetDateTime;

const READ: &[P] = &[P::TiReadWrite, P::TiReadWriteAll, P::TiReadAll];
const WRITE: &[P] = &[P::TiReadWrite, P::TiReadWriteAll];
const TAG: &str = "YARA rules";

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get("/yararules", READ, TAG, "List YARA rule sets").collection("YaraRuleSet"),
        list,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/yararules",
            WRITE,
            TAG,
            "Create a YARA rule set (it must compile; include is refused)",
        )
        .returns("YaraRuleSet"),
        create,
    )
    .add(
        RouteDef::get("/yararules/{id}", READ, TAG, "Get a YARA rule set").returns("YaraRuleSet"),
        get,
    )
    .add(
        RouteDef::new(
            Method::PATCH,
            "/yararules/{id}",
            WRITE,
            TAG,
            "Change a YARA rule set's name, description or source",
        )
        .returns("YaraRuleSet"),
        patch,
    )
    .add(
        RouteDef::new(
            Method::DELETE,
            "/yararules/{id}",
            WRITE,
            TAG,
            "Delete a YARA rule set",
        ),
        delete,
    )
}

/// A rule set as a client sends it: name and source for a create, any field for a change.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSetBody {
    name: Option<String>,
    description: Option<String>,
    source: Option<String>,
}

fn missing(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MissingRequiredParameter,
        format!("Field '{field}' is required"),
    )
}

/// Checks a set as it would be stored and records the names of its rules.
fn checked(mut set: YaraRuleSet) -> ApiResult<YaraRuleSet> {
    set.name = set.name.trim().to_owned();
    set.check_shape()?;
    set.rule_names = rampart_detect::yara::check(&set.source).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequestBody,
            format!("source: the YARA rules do not compile: {e}"),
        )
    })?;
    Ok(set)
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<RuleSetBody>,
) -> ApiResult<Response> {
    let now = OffsetDateTime::now_utc();
    let me = caller.client_id.to_string();
    let set = checked(YaraRuleSet {
        id: String::new(),
        name: body.name.ok_or_else(|| missing("name"))?,
        description: body.description,
        source: body.source.ok_or_else(|| missing("source"))?,
        rule_names: Vec::new(),
        created_by: me.clone(),
        created_date_time: now,
        last_modified_by: me,
        last_modified_date_time: now,
    })?;
    let stored = state
        .store
        .create_yara_rule_set(&caller.audit(), caller.tenant, set)
        .await?;
    Ok(entity_response(StatusCode::CREATED, &stored))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "YARA rule set {} was not found",
        id.chars().take(40).collect::<String>()
    ))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let collection = Collection::of::<YaraRuleSet>();
    list_collection(
        &state,
        caller.tenant,
        &headers,
        &uri,
        collection,
        None,
        |_, row| Ok(row),
    )
    .await
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let set = state
        .store
        .get_yara_rule_set(caller.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(entity_response(StatusCode::OK, &set))
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RuleSetBody>,
) -> ApiResult<Response> {
    let mut wanted = state
        .store
        .get_yara_rule_set(caller.tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if let Some(v) = body.name {
        wanted.name = v;
    }
    if body.description.is_some() {
        wanted.description = body.description;
    }
    if let Some(v) = body.source {
        wanted.source = v;
    }
    wanted.last_modified_by = caller.client_id.to_string();
    wanted.last_modified_date_time = OffsetDateTime::now_utc();
    let wanted = checked(wanted)?;
    let updated = state
        .store
        .update_yara_rule_set(
            &caller.audit(),
            caller.tenant,
            &id,
            Box::new(move |r: &mut YaraRuleSet| {
                *r = wanted.clone();
                Ok(())
            }),
        )
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(entity_response(StatusCode::OK, &updated))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if !state
        .store
        .delete_yara_rule_set(&caller.audit(), caller.tenant, &id)
        .await?
    {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
