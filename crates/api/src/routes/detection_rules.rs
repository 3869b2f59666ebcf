//! `/api/detectionrules` (Rampart's own, modelled on Defender's custom detection rules): create,
//! list, change, delete and run rules, and read their run history.
//!
//! A rule is checked before it is stored — its KQL must bind, return `Timestamp` and a device,
//! and for a continuous rule filter one table — so that a stored rule fails only for reasons
//! of data or resources, which pause it with the reason.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::odata::{entity_response, list_collection};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rampart_core::detection_rule::{
    DetectionAction, DetectionRule, QueryCondition, RuleSchedule, RunFrequency,
};
use rampart_core::{ErrorCode, Permission as P};
use rampart_store::Collection;
use serde::Deserialize;
use time::OffsetDateTime;

const READ: &[P] = &[P::CustomDetectionRead, P::CustomDetectionReadWrite];
const WRITE: &[P] = &[P::CustomDetectionReadWrite];
const TAG: &str = "Custom detection rules";

/// Most runs one history request returns.
const MAX_RUNS: usize = 100;

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get("/detectionrules", READ, TAG, "List custom detection rules")
            .collection("DetectionRule"),
        list,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/detectionrules",
            WRITE,
            TAG,
            "Create a custom detection rule (its KQL is checked first)",
        )
        .returns("DetectionRule"),
        create,
    )
    .add(
        RouteDef::get(
            "/detectionrules/{id}",
            READ,
            TAG,
            "Get a custom detection rule",
        )
        .returns("DetectionRule"),
        get,
    )
    .add(
        RouteDef::new(
            Method::PATCH,
            "/detectionrules/{id}",
            WRITE,
            TAG,
            "Change a rule; isEnabled=true resumes a paused rule",
        )
        .returns("DetectionRule"),
        patch,
    )
    .add(
        RouteDef::new(
            Method::DELETE,
            "/detectionrules/{id}",
            WRITE,
            TAG,
            "Delete a rule with its run history",
        ),
        delete,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/detectionrules/{id}/run",
            WRITE,
            TAG,
            "Run a rule now over its lookback window",
        )
        .returns("DetectionRun"),
        run,
    )
    .add(
        RouteDef::get(
            "/detectionrules/{id}/runs",
            READ,
            TAG,
            "A rule's most recent runs, newest first ($top, at most 100)",
        ),
        runs,
    )
}

/// `schedule` as a client sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleBody {
    period: RunFrequency,
}

/// A rule as a client sends it: every field for a create, any of them for a change.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleBody {
    display_name: Option<String>,
    description: Option<String>,
    is_enabled: Option<bool>,
    query_condition: Option<QueryCondition>,
    schedule: Option<ScheduleBody>,
    detection_action: Option<DetectionAction>,
}

fn missing(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MissingRequiredParameter,
        format!("Field '{field}' is required"),
    )
}

/// Checks a rule as it would be stored and sets what the server derives from its query.
async fn checked(mut rule: DetectionRule, now: OffsetDateTime) -> ApiResult<DetectionRule> {
    rule.check_shape()?;
    let compiled = rampart_detect::compile(&rule)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequestBody, e.to_string()))?;
    rule.continuous_table = compiled.continuous_table.map(str::to_owned);
    rule.settle(now);
    Ok(rule)
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<RuleBody>,
) -> ApiResult<Response> {
    let now = OffsetDateTime::now_utc();
    let mut rule = DetectionRule::new(
        body.display_name.ok_or_else(|| missing("displayName"))?,
        body.query_condition
            .ok_or_else(|| missing("queryCondition"))?
            .query_text,
        body.schedule.ok_or_else(|| missing("schedule"))?.period,
        body.detection_action
            .ok_or_else(|| missing("detectionAction"))?,
        &caller.client_id.to_string(),
        now,
    );
    rule.description = body.description;
    rule.is_enabled = body.is_enabled.unwrap_or(true);
    let rule = checked(rule, now).await?;
    let stored = state
        .store
        .create_detection_rule(&caller.audit(), caller.tenant, rule)
        .await?;
    rules_changed(&state).await;
    Ok(entity_response(StatusCode::CREATED, &stored))
}

/// Lets the continuous evaluator see a change at once (other servers see it on their next tick).
async fn rules_changed(state: &AppState) {
    if let Err(e) = state.detections.reload_continuous().await {
        tracing::warn!("reloading continuous detection rules: {e}");
    }
}

async fn rule(state: &AppState, caller: &Caller, id: &str) -> ApiResult<DetectionRule> {
    state
        .store
        .get_detection_rule(caller.tenant, id)
        .await?
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Detection rule {} was not found",
        id.chars().take(40).collect::<String>()
    ))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let collection = Collection::of::<DetectionRule>();
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
    let r = rule(&state, &caller, &id).await?;
    Ok(entity_response(StatusCode::OK, &r))
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RuleBody>,
) -> ApiResult<Response> {
    let now = OffsetDateTime::now_utc();
    let mut wanted = rule(&state, &caller, &id).await?;
    if let Some(v) = body.display_name {
        wanted.display_name = v;
    }
    if body.description.is_some() {
        wanted.description = body.description;
    }
    if let Some(v) = body.query_condition {
        wanted.query_condition = v;
    }
    if let Some(s) = body.schedule
        && s.period != wanted.schedule.period
    {
        wanted.schedule = RuleSchedule {
            period: s.period,
            next_run_date_time: None,
        };
    }
    if let Some(v) = body.detection_action {
        wanted.detection_action = v;
    }
    // Enabling (again) is how an analyst resumes a rule a failure paused.
    let resume = body.is_enabled == Some(true);
    if let Some(v) = body.is_enabled {
        wanted.is_enabled = v;
    }
    if resume {
        wanted.paused_reason = None;
    }
    wanted.last_modified_by = caller.client_id.to_string();
    wanted.last_modified_date_time = now;
    let wanted = checked(wanted, now).await?;
    let updated = state
        .store
        .update_detection_rule(
            &caller.audit(),
            caller.tenant,
            &id,
            Box::new(move |r: &mut DetectionRule| {
                // Runs may have been recorded (and the next one claimed) meanwhile: keep their
                // outcome unless resuming, and the slot unless the period changed.
                let last_run = r.last_run_details.clone();
                let paused = r.paused_reason.clone();
                let slot = (r.schedule.period == wanted.schedule.period)
                    .then_some(r.schedule.next_run_date_time)
                    .flatten();
                *r = wanted.clone();
                r.last_run_details = last_run;
                r.schedule.next_run_date_time = slot;
                if !resume {
                    r.paused_reason = paused;
                }
                r.settle(now);
                Ok(())
            }),
        )
        .await?
        .ok_or_else(|| not_found(&id))?;
    rules_changed(&state).await;
    Ok(entity_response(StatusCode::OK, &updated))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if !state
        .store
        .delete_detection_rule(&caller.audit(), caller.tenant, &id)
        .await?
    {
        return Err(not_found(&id));
    }
    rules_changed(&state).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = rule(&state, &caller, &id).await?;
    let done = state.detections.run_now(caller.tenant, &r).await?;
    if done.failure_reason.is_some() {
        rules_changed(&state).await;
    }
    Ok(entity_response(StatusCode::OK, &done))
}

#[derive(Deserialize)]
pub struct RunsQuery {
    #[serde(rename = "$top")]
    top: Option<usize>,
}

pub async fn runs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Response> {
    let top = q.top.unwrap_or(MAX_RUNS);
    if top == 0 || top > MAX_RUNS {
        return Err(ApiError::new(
            ErrorCode::ODataError,
            format!("$top: between 1 and {MAX_RUNS}"),
        ));
    }
    rule(&state, &caller, &id).await?;
    let runs = state.store.detection_runs(caller.tenant, &id, top).await?;
    Ok(entity_response(
        StatusCode::OK,
        &serde_json::json!({ "value": runs }),
    ))
}
