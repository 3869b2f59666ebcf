//! `/api/incidents` (reference §6) and `/api/investigations` with
//! `POST /api/machines/{id}/startInvestigation` (reference §5).

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::odata::{collection_response, entity_response, list_collection, options};
use crate::ratelimit::RouteFamily;
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use rampart_core::alert::{self, Alert, AlertChange, AlertComment, AlertStatus, Classification};
use rampart_core::incident::{Incident, IncidentStatus, MAX_INCIDENT_PAGE};
use rampart_core::investigation::Investigation;
use rampart_core::{ErrorCode, Permission as P};
use rampart_store::Collection;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use time::OffsetDateTime;

const READ_INCIDENTS: &[P] = &[P::IncidentRead, P::IncidentReadWrite];
const WRITE_INCIDENTS: &[P] = &[P::IncidentReadWrite];
const READ_INVESTIGATIONS: &[P] = &[P::AlertRead, P::AlertReadWrite];
const START_INVESTIGATION: &[P] = &[P::AlertReadWrite];

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get(
            "/incidents",
            READ_INCIDENTS,
            "Incidents",
            "List incidents (at most 100 a page)",
        )
        .collection("Incident")
        .family(RouteFamily::Incidents),
        list,
    )
    .add(
        RouteDef::get(
            "/incidents/{id}",
            READ_INCIDENTS,
            "Incidents",
            "Get an incident",
        )
        .returns("Incident")
        .family(RouteFamily::Incidents),
        get,
    )
    .add(
        RouteDef::new(
            Method::PATCH,
            "/incidents/{id}",
            WRITE_INCIDENTS,
            "Incidents",
            "Update an incident",
        )
        .returns("Incident")
        .family(RouteFamily::Incidents),
        patch,
    )
    .add(
        RouteDef::get(
            "/investigations",
            READ_INVESTIGATIONS,
            "Investigations",
            "List automated investigations",
        )
        .collection("Investigation"),
        list_investigations,
    )
    .add(
        RouteDef::get(
            "/investigations/{id}",
            READ_INVESTIGATIONS,
            "Investigations",
            "Get an automated investigation",
        )
        .returns("Investigation"),
        get_investigation,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/machines/{id}/startInvestigation",
            START_INVESTIGATION,
            "Investigations",
            "Start an automated investigation on a machine",
        )
        .returns("Investigation")
        .family(RouteFamily::StartInvestigation),
        start_investigation,
    )
}

/// The alert as an incident nests it (reference §6.2).
fn nested_alert(a: &Alert, machines: &HashMap<String, Value>) -> Value {
    let devices: Vec<Value> = a
        .machine_id
        .as_ref()
        .and_then(|id| machines.get(id))
        .cloned()
        .into_iter()
        .collect();
    let entities: Vec<Value> = a
        .evidence
        .iter()
        .map(|e| {
            json!({
                "entityType": e.entity_type, "sha1": e.sha1, "sha256": e.sha256, "fileName": e.file_name, "filePath": e.file_path,
                "processId": e.process_id, "processCommandLine": e.process_command_line,
                "processCreationTime": e.process_creation_time.map(rampart_core::timefmt::format),
                "parentProcessId": e.parent_process_id, "ipAddress": e.ip_address, "url": e.url, "accountName": e.account_name,
                "domainName": e.domain_name, "userSid": e.user_sid, "aadUserId": e.aad_user_id, "userPrincipalName": e.user_principal_name,
                "registryHive": e.registry_hive, "registryKey": e.registry_key, "registryValueType": e.registry_value_type,
                "registryValue": e.registry_value, "deviceId": a.machine_id,
            })
        })
        .collect();
    let t = |v: Option<OffsetDateTime>| v.map(rampart_core::timefmt::format);
    json!({
        "alertId": a.id, "incidentId": a.incident_id, "serviceSource": "Rampart",
        "creationTime": t(a.alert_creation_time), "lastUpdatedTime": t(a.last_update_time), "resolvedTime": t(a.resolved_time),
        "firstActivity": t(a.first_event_time), "lastActivity": t(a.last_event_time), "title": a.title, "description": a.description,
        "category": a.category, "status": a.status, "severity": a.severity, "investigationId": a.investigation_id,
        "investigationState": a.investigation_state, "classification": a.classification, "determination": a.determination,
        "detectionSource": a.detection_source, "assignedTo": a.assigned_to, "actorName": null, "threatFamilyName": a.threat_family_name,
        "mitreTechniques": a.mitre_techniques, "devices": devices, "entities": entities,
    })
}

/// Incidents as the API shows them: each with its alerts (and their devices) in place of the ids.
async fn expand(
    state: &AppState,
    caller: &Caller,
    incidents: Vec<Incident>,
) -> ApiResult<Vec<Value>> {
    let ids: Vec<i64> = incidents.iter().map(|i| i.incident_id).collect();
    let alerts = state.store.alerts_of_incidents(caller.tenant, &ids).await?;
    let mut machines = HashMap::new();
    for id in alerts.iter().filter_map(|a| a.machine_id.clone()) {
        if machines.contains_key(&id) {
            continue;
        }
        if let Some(m) = state.store.get_machine(caller.tenant, &id).await? {
            let device = json!({
                "deviceId": m.id, "aadDeviceId": m.aad_device_id, "deviceDnsName": m.computer_dns_name, "osPlatform": m.os_platform,
                "osBuild": m.os_build, "rbacGroupName": m.rbac_group_name, "firstSeen": m.first_seen.map(rampart_core::timefmt::format),
                "healthStatus": m.health_status, "riskScore": m.risk_score, "entities": [],
            });
            machines.insert(id, device);
        }
    }
    let mut reasons: HashMap<i64, Vec<Value>> = HashMap::new();
    for (i, r) in state.store.correlation_reasons(caller.tenant, &ids).await? {
        reasons
            .entry(i)
            .or_default()
            .push(serde_json::to_value(r).unwrap_or_default());
    }
    let mut entities: HashMap<i64, Vec<Value>> = HashMap::new();
    for (i, e) in state.store.incident_entities(caller.tenant, &ids).await? {
        entities
            .entry(i)
            .or_default()
            .push(json!({"entityType": e.kind.as_str(), "value": e.value}));
    }
    let mut by_incident: HashMap<i64, Vec<Value>> = HashMap::new();
    for a in &alerts {
        if let Some(i) = a.incident_id {
            by_incident
                .entry(i)
                .or_default()
                .push(nested_alert(a, &machines));
        }
    }
    incidents
        .into_iter()
        .map(|i| {
            let id = i.incident_id;
            let mut v = serde_json::to_value(i)
                .map_err(|e| ApiError::internal("encoding an incident", e))?;
            if let Some(o) = v.as_object_mut() {
                o.remove("alertIds");
                o.insert(
                    "alerts".into(),
                    Value::Array(by_incident.remove(&id).unwrap_or_default()),
                );
                o.insert(
                    "correlationReasons".into(),
                    Value::Array(reasons.remove(&id).unwrap_or_default()),
                );
                // Rampart's own: what the incident's alerts link by.
                o.insert(
                    "entities".into(),
                    Value::Array(entities.remove(&id).unwrap_or_default()),
                );
            }
            Ok(v)
        })
        .collect()
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let collection = Collection::of::<Incident>();
    let (pairs, mut opts) = options(&uri, collection.set)?;
    let asked_top = pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case("$top"));
    if !asked_top {
        opts.top = MAX_INCIDENT_PAGE;
    } else if opts.top > MAX_INCIDENT_PAGE {
        return Err(ApiError::new(
            ErrorCode::ODataError,
            format!("$top: incidents are paged at most {MAX_INCIDENT_PAGE} at a time"),
        ));
    }
    // Most recent first, as MDE, unless the client orders otherwise.
    if opts.orderby.is_empty()
        && let Some(f) = collection.set.field("lastUpdateTime")
    {
        opts.orderby.push(rampart_core::odata::OrderBy {
            field: f,
            descending: true,
        });
    }
    let page = state
        .store
        .list(caller.tenant, collection, &opts, None)
        .await?;
    let incidents = page
        .rows
        .iter()
        .map(|r| {
            serde_json::from_str::<Incident>(&r.body)
                .map_err(|e| ApiError::internal("stored incident", e))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let rows = expand(&state, &caller, incidents)
        .await?
        .into_iter()
        .map(|v| v.to_string())
        .collect();
    collection_response(
        &state,
        &headers,
        &uri,
        &pairs,
        collection.set,
        &opts,
        page,
        rows,
    )
}

async fn incident(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Incident> {
    let missing = || {
        ApiError::not_found(format!(
            "Incident {} was not found",
            id.chars().take(40).collect::<String>()
        ))
    };
    let n: i64 = id.parse().map_err(|_| missing())?;
    state
        .store
        .get_incident(caller.tenant, n)
        .await?
        .ok_or_else(missing)
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let i = incident(&state, &caller, &id).await?;
    let v = expand(&state, &caller, vec![i]).await?.remove(0);
    Ok(entity_response(StatusCode::OK, &v))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentPatch {
    status: Option<IncidentStatus>,
    assigned_to: Option<String>,
    classification: Option<Classification>,
    determination: Option<String>,
    tags: Option<Vec<String>>,
    comment: Option<String>,
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<IncidentPatch>,
) -> ApiResult<Response> {
    let current = incident(&state, &caller, &id).await?;
    if body.status == Some(IncidentStatus::Redirected) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequestBody,
            "Field 'status' is not valid: Redirected is set by correlation, not by a request",
        ));
    }
    let determination = body
        .determination
        .as_deref()
        .map(alert::parse_determination)
        .transpose()
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequestBody,
                format!("Field 'determination' is not valid: {e}"),
            )
        })?;
    let classification = body.classification.or(current.classification);
    if determination.is_some() && classification != Some(Classification::TruePositive) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "determination can only be set when classification is TruePositive",
        ));
    }
    if let (Some(d), Some(c)) = (determination, classification)
        && !alert::determinations_of(c).contains(&d)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "determination '{}' does not go with classification '{}'",
                d.as_str(),
                c.as_str()
            ),
        ));
    }
    let who = caller.app_name.clone();
    let resolving =
        body.status == Some(IncidentStatus::Resolved) && current.status != IncidentStatus::Resolved;
    let change = move |i: &mut Incident| {
        let now = OffsetDateTime::now_utc();
        if let Some(s) = body.status {
            i.status = s;
        }
        if let Some(a) = &body.assigned_to {
            i.assigned_to = Some(a.clone()).filter(|a| !a.is_empty());
        }
        if body.classification.is_some() {
            i.classification = body.classification;
            if i.classification != Some(Classification::TruePositive) {
                i.determination = None;
            }
        }
        if determination.is_some() {
            i.determination = determination;
        }
        if let Some(t) = &body.tags {
            i.tags = t.clone();
        }
        if let Some(c) = &body.comment {
            i.comments.push(AlertComment {
                comment: c.clone(),
                created_by: Some(who.clone()),
                created_time: Some(now),
            });
        }
        i.last_update_time = now;
        Ok(())
    };
    let updated = state
        .store
        .update_incident(
            &caller.audit(),
            caller.tenant,
            current.incident_id,
            Box::new(change),
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Incident {id} was not found")))?;
    // Resolving an incident resolves its alerts, as MDE does.
    if resolving {
        let resolve = AlertChange {
            status: Some(AlertStatus::Resolved),
            ..AlertChange::default()
        };
        let alerts = state
            .store
            .alerts_of_incidents(caller.tenant, &[updated.incident_id])
            .await?;
        for alert_id in alerts.iter().map(|a| &a.id) {
            let (who, change) = (caller.app_name.clone(), resolve.clone());
            state
                .store
                .update_alert(
                    &caller.audit(),
                    caller.tenant,
                    alert_id,
                    "Resolve",
                    Box::new(move |a: &mut Alert| {
                        a.apply(&change, &who, OffsetDateTime::now_utc())
                    }),
                )
                .await?;
        }
    }
    let fresh = incident(&state, &caller, &id).await?;
    let v = expand(&state, &caller, vec![fresh]).await?.remove(0);
    Ok(entity_response(StatusCode::OK, &v))
}

pub async fn list_investigations(
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
        Collection::of::<Investigation>(),
        None,
        |_, b| Ok(b),
    )
    .await
}

pub async fn get_investigation(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let inv = state
        .store
        .get_investigation(caller.tenant, &id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Investigation {} was not found",
                id.chars().take(40).collect::<String>()
            ))
        })?;
    Ok(entity_response(StatusCode::OK, &inv))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartBody {
    comment: Option<String>,
}

pub async fn start_investigation(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StartBody>,
) -> ApiResult<Response> {
    let comment = body
        .comment
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::MissingRequiredParameter, "Comment is required"))?;
    let m = super::machines::machine(&state, &caller, &id).await?;
    let level = state
        .store
        .automation_level(caller.tenant, &m.id)
        .await?
        .unwrap_or(rampart_core::machine::UNGROUPED_AUTOMATION);
    if level == rampart_core::machine::AutomationLevel::NoAutomatedResponse {
        return Err(ApiError::new(
            ErrorCode::DisallowedOperation,
            format!(
                "Automated investigations do not run on {}: its device group's automation level is NoAutomatedResponse.",
                m.computer_dns_name
            ),
        ));
    }
    // The investigator picks queued investigations up (see `rampart_respond::air`).
    let mut inv =
        Investigation::queued(&m.id, Some(m.computer_dns_name), OffsetDateTime::now_utc());
    inv.requestor = Some(caller.app_name.clone());
    inv.requestor_comment = Some(comment);
    let inv = state
        .store
        .create_investigation(&caller.audit(), caller.tenant, inv)
        .await?;
    Ok(entity_response(StatusCode::CREATED, &inv))
}
