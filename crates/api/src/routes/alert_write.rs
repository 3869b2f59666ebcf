//! The write side of `/api/alerts`: PATCH, batchUpdate, CreateAlertByReference, and `import`,
//! through which other security products push their alerts (scenario 1).

use super::alert_related::alert;
use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::odata::entity_response;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_core::ErrorCode;
use rampart_core::alert::{
    self, Alert, AlertChange, AlertStatus, Classification, Evidence, RelatedUser, Severity,
};
use rampart_core::machine::Machine;
use serde::Deserialize;
use time::OffsetDateTime;

/// Most alerts one batch call may name or carry (as MDE's other batch APIs).
const MAX_BATCH: usize = 500;

/// The updatable properties, as MDE spells them (camelCase).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBody {
    status: Option<AlertStatus>,
    assigned_to: Option<String>,
    classification: Option<Classification>,
    /// A string so that MDE's documented spelling variants are accepted.
    determination: Option<String>,
    comment: Option<String>,
}

impl UpdateBody {
    fn change(self) -> ApiResult<AlertChange> {
        if self.status == Some(AlertStatus::Unknown) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequestBody,
                "Field 'status' is not valid: use New, InProgress or Resolved",
            ));
        }
        let determination = self
            .determination
            .map(|d| alert::parse_determination(&d))
            .transpose()
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidRequestBody,
                    format!("Field 'determination' is not valid: {e}"),
                )
            })?;
        if let Some(c) = &self.comment
            && c.chars().count() > 10_000
        {
            return Err(ApiError::new(
                ErrorCode::InvalidRequestBody,
                "Field 'comment' is longer than 10,000 characters",
            ));
        }
        Ok(AlertChange {
            status: self.status,
            assigned_to: self.assigned_to,
            classification: self.classification,
            determination,
            comment: self.comment,
        })
    }
}

async fn apply(
    state: &AppState,
    caller: &Caller,
    id: &str,
    change: &AlertChange,
) -> ApiResult<Alert> {
    let who = caller.app_name.clone();
    let applied = change.clone();
    let updated = state
        .store
        .update_alert(
            &caller.audit(),
            caller.tenant,
            id,
            "Update",
            Box::new(move |a: &mut Alert| a.apply(&applied, &who, OffsetDateTime::now_utc())),
        )
        .await?;
    let updated = updated.ok_or_else(|| {
        ApiError::not_found(format!(
            "Alert {} was not found",
            id.chars().take(100).collect::<String>()
        ))
    })?;
    // A verdict of malware makes what the alert names known malicious, tenant-wide.
    if (change.classification.is_some() || change.determination.is_some())
        && rampart_core::signal::verdict_is_malicious(&updated)
    {
        rampart_respond::signal::share(
            state.store.as_ref(),
            &state.indicators,
            &caller.audit(),
            caller.tenant,
            &updated,
            &format!(
                "{} classified the alert a true positive (malware).",
                caller.app_name
            ),
        )
        .await?;
    }
    Ok(updated)
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Response> {
    let change = body.change()?;
    Ok(entity_response(
        StatusCode::OK,
        &apply(&state, &caller, &id, &change).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchBody {
    alert_ids: Option<Vec<String>>,
    #[serde(flatten)]
    update: UpdateBody,
}

pub async fn batch_update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<BatchBody>,
) -> ApiResult<Response> {
    let ids = body.alert_ids.ok_or_else(|| {
        ApiError::new(ErrorCode::MissingRequiredParameter, "alertIds is required")
    })?;
    if ids.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "alertIds must name at least one alert",
        ));
    }
    if ids.len() > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::MaximumBatchSizeExceeded,
            format!("Received: {}, allowed: {MAX_BATCH}", ids.len()),
        ));
    }
    let change = body.update.change()?;
    // All or nothing: every alert must exist and accept the change before any is updated.
    for id in &ids {
        let mut a = alert(&state, &caller, id).await?;
        a.apply(&change, "", OffsetDateTime::now_utc())
            .map_err(ApiError::from)?;
    }
    for id in &ids {
        apply(&state, &caller, id, &change).await?;
    }
    Ok(StatusCode::OK.into_response())
}

/// `CreateAlertByReference` (reference §1.5): every field required.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByReferenceBody {
    event_time: Option<String>,
    report_id: Option<serde_json::Value>,
    machine_id: Option<String>,
    severity: Option<String>,
    title: Option<String>,
    description: Option<String>,
    recommended_action: Option<String>,
    category: Option<String>,
}

use rampart_core::alert::ALERT_CATEGORIES as CATEGORIES;

fn canonical_category(c: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(c))
}

pub async fn create_by_reference(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<ByReferenceBody>,
) -> ApiResult<Response> {
    let missing = |f: &str| {
        ApiError::new(
            ErrorCode::MissingRequiredParameter,
            format!("{f} is required"),
        )
    };
    let event_time = body.event_time.ok_or_else(|| missing("eventTime"))?;
    let event_time = rampart_core::timefmt::parse(&event_time).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequestBody,
            "Field 'eventTime' is not an ISO 8601 UTC time",
        )
    })?;
    let report_id = body.report_id.ok_or_else(|| missing("reportId"))?;
    let machine_id = body.machine_id.ok_or_else(|| missing("machineId"))?;
    let severity = body.severity.ok_or_else(|| missing("severity"))?;
    if !["Low", "Medium", "High"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&severity))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequestBody,
            "Field 'severity' is not valid: use Low, Medium or High",
        ));
    }
    for (name, v) in [
        ("title", &body.title),
        ("description", &body.description),
        ("recommendedAction", &body.recommended_action),
    ] {
        if v.as_deref().is_none_or(str::is_empty) {
            return Err(missing(name));
        }
    }
    let category = body.category.ok_or_else(|| missing("category"))?;
    if canonical_category(&category).is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequestBody,
            format!(
                "Field 'category' is not valid: use one of {}",
                CATEGORIES.join(", ")
            ),
        ));
    }
    let machine = super::machines::machine(&state, &caller, &machine_id).await?;
    // The alert must reference a recorded event. Telemetry lands in the event store, which this
    // server does not hold yet, so no event can match: 404 as MDE answers for an unknown event.
    Err(ApiError::not_found(format!(
        "No event with reportId {report_id} at {} was found on machine {}",
        rampart_core::timefmt::format(event_time),
        machine.id
    )))
}

/// One alert from another security product.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalAlert {
    /// The product that raised it, e.g. `Contoso NDR` (becomes `detectionSource`).
    source_product: Option<String>,
    /// Its id in that product; with the product, the key that makes re-sending harmless.
    external_id: Option<String>,
    title: Option<String>,
    description: Option<String>,
    severity: Option<String>,
    category: Option<String>,
    alert_creation_time: Option<String>,
    first_event_time: Option<String>,
    last_event_time: Option<String>,
    #[serde(default)]
    mitre_techniques: Vec<String>,
    threat_name: Option<String>,
    threat_family_name: Option<String>,
    #[serde(default)]
    evidence: Vec<ExternalEvidence>,
    /// How sure the product is (Rampart's own): `Low`, `Medium` or `High`. A high-confidence
    /// alert makes its files, remote addresses and URLs known malicious: they are shared
    /// tenant-wide as blocking indicators (signal sharing).
    confidence: Option<String>,
}

/// Whether an external alert says it is sure: `confidence` High (absent: not sure).
fn high_confidence(x: &ExternalAlert) -> Result<bool, String> {
    match x.confidence.as_deref().map(str::trim) {
        None => Ok(false),
        Some(c) if c.eq_ignore_ascii_case("high") => Ok(true),
        Some(c) if c.eq_ignore_ascii_case("medium") || c.eq_ignore_ascii_case("low") => Ok(false),
        Some(c) => Err(format!(
            "confidence '{}' is not one of Low, Medium, High",
            c.chars().take(20).collect::<String>()
        )),
    }
}

/// An entity of an external alert. `entityType` is one of Device, File, Process, Ip, Url,
/// Domain, User, Registry; the other fields are those of MDE's evidence plus the device's.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ExternalEvidence {
    entity_type: Option<String>,
    machine_id: Option<String>,
    computer_dns_name: Option<String>,
    ip_address: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
    file_name: Option<String>,
    file_path: Option<String>,
    process_id: Option<i64>,
    process_command_line: Option<String>,
    url: Option<String>,
    domain: Option<String>,
    account_name: Option<String>,
    domain_name: Option<String>,
    user_sid: Option<String>,
    user_principal_name: Option<String>,
    registry_key: Option<String>,
    registry_hive: Option<String>,
    registry_value: Option<String>,
}

const ENTITY_TYPES: &[&str] = &[
    "Device", "File", "Process", "Ip", "Url", "Domain", "User", "Registry",
];

#[derive(Deserialize)]
pub struct ImportBody {
    #[serde(rename = "Alerts")]
    alerts: Option<Vec<serde_json::Value>>,
}

fn time_field(v: &Option<String>, name: &str) -> Result<Option<OffsetDateTime>, String> {
    v.as_deref()
        .map(|s| {
            rampart_core::timefmt::parse(s)
                .ok_or_else(|| format!("{name} is not an ISO 8601 UTC time"))
        })
        .transpose()
}

fn check_hash(v: &Option<String>, len: usize, name: &str) -> Result<(), String> {
    match v {
        Some(h) if h.len() != len || !h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Err(format!("{name} must be {len} hex characters"))
        }
        _ => Ok(()),
    }
}

/// Turns a parsed external alert into an alert, or says why it cannot be one.
fn to_alert(
    x: ExternalAlert,
    tenant: rampart_core::TenantId,
    now: OffsetDateTime,
) -> Result<(Alert, Vec<ExternalEvidence>), String> {
    let source = x
        .source_product
        .filter(|s| !s.trim().is_empty())
        .ok_or("sourceProduct is required")?;
    let external_id = x
        .external_id
        .filter(|s| !s.trim().is_empty())
        .ok_or("externalId is required")?;
    let title = x
        .title
        .filter(|s| !s.trim().is_empty())
        .ok_or("title is required")?;
    let severity: Severity = x
        .severity
        .as_deref()
        .ok_or("severity is required")?
        .parse()
        .map_err(|e| format!("severity: {e}"))?;
    let category = match x.category.as_deref() {
        None => "SuspiciousActivity",
        Some(c) => canonical_category(c)
            .ok_or_else(|| format!("category '{c}' is not one of {}", CATEGORIES.join(", ")))?,
    };
    let created = time_field(&x.alert_creation_time, "alertCreationTime")?;
    let first = time_field(&x.first_event_time, "firstEventTime")?;
    let last = time_field(&x.last_event_time, "lastEventTime")?;
    let mut evidence = Vec::new();
    let mut related_user = None;
    for (i, e) in x.evidence.iter().enumerate() {
        let kind = e
            .entity_type
            .as_deref()
            .ok_or_else(|| format!("evidence[{i}].entityType is required"))?;
        let kind = ENTITY_TYPES
            .iter()
            .find(|k| k.eq_ignore_ascii_case(kind))
            .ok_or_else(|| {
                format!(
                    "evidence[{i}].entityType '{kind}' is not one of {}",
                    ENTITY_TYPES.join(", ")
                )
            })?;
        check_hash(&e.sha1, 40, &format!("evidence[{i}].sha1"))?;
        check_hash(&e.sha256, 64, &format!("evidence[{i}].sha256"))?;
        if let Some(ip) = &e.ip_address {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("evidence[{i}].ipAddress '{ip}' is not an IP address"))?;
        }
        if *kind == "Device" {
            continue;
        }
        if *kind == "User" && related_user.is_none() {
            related_user = Some(RelatedUser {
                user_name: e.account_name.clone(),
                domain_name: e.domain_name.clone(),
            });
        }
        evidence.push(Evidence {
            entity_type: kind.to_string(),
            evidence_creation_time: Some(now),
            sha1: e.sha1.as_ref().map(|h| h.to_ascii_lowercase()),
            sha256: e.sha256.as_ref().map(|h| h.to_ascii_lowercase()),
            file_name: e.file_name.clone(),
            file_path: e.file_path.clone(),
            process_id: e.process_id,
            process_command_line: e.process_command_line.clone(),
            ip_address: e.ip_address.clone(),
            url: e.url.clone().or_else(|| e.domain.clone()),
            registry_key: e.registry_key.clone(),
            registry_hive: e.registry_hive.clone(),
            registry_value: e.registry_value.clone(),
            account_name: e.account_name.clone(),
            domain_name: e.domain_name.clone(),
            user_sid: e.user_sid.clone(),
            user_principal_name: e.user_principal_name.clone(),
            detection_status: Some("Detected".into()),
            ..Evidence::default()
        });
    }
    let devices = x
        .evidence
        .into_iter()
        .filter(|e| {
            e.entity_type
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("Device"))
        })
        .collect();
    let alert = Alert {
        id: alert::new_alert_id(now, rand::random()),
        incident_id: None,
        investigation_id: None,
        investigation_state: None,
        assigned_to: None,
        severity,
        status: AlertStatus::New,
        classification: None,
        determination: None,
        detection_source: source,
        detector_id: None,
        category: category.to_owned(),
        threat_family_name: x.threat_family_name,
        threat_name: x.threat_name,
        title,
        description: x.description.unwrap_or_default(),
        alert_creation_time: Some(created.unwrap_or(now)),
        first_event_time: first.or(last),
        last_event_time: last.or(first),
        last_update_time: Some(now),
        resolved_time: None,
        machine_id: None,
        computer_dns_name: None,
        rbac_group_name: None,
        aad_tenant_id: tenant.to_string(),
        mitre_techniques: x.mitre_techniques,
        related_user,
        comments: Vec::new(),
        external_id: Some(external_id),
        event_count: None,
        evidence,
    };
    Ok((alert, devices))
}

/// The machine a device entity names: by id, by DNS name, or by the address it had at `at`.
async fn resolve_device(
    state: &AppState,
    caller: &Caller,
    devices: &[ExternalEvidence],
    at: OffsetDateTime,
) -> ApiResult<Option<Machine>> {
    for d in devices {
        for key in [&d.machine_id, &d.computer_dns_name].into_iter().flatten() {
            if let Some(m) = state.store.get_machine(caller.tenant, key).await? {
                return Ok(Some(m));
            }
        }
        if let Some(ip) = &d.ip_address {
            let found = state
                .store
                .machines_by_ip(caller.tenant, ip, at, time::Duration::minutes(15))
                .await?;
            // An address two machines shared at that time names neither.
            if let [only] = found.as_slice() {
                return Ok(Some(only.clone()));
            }
        }
    }
    Ok(None)
}

pub async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<ImportBody>,
) -> ApiResult<Response> {
    let items = body
        .alerts
        .ok_or_else(|| ApiError::new(ErrorCode::MissingRequiredParameter, "Alerts is required"))?;
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::MaximumBatchSizeExceeded,
            format!("Received: {}, allowed: {MAX_BATCH}", items.len()),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let mut results = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let parsed = serde_json::from_value::<ExternalAlert>(item)
            .map_err(|e| e.to_string())
            .and_then(|x| {
                let sure = high_confidence(&x)?;
                Ok((to_alert(x, caller.tenant, now)?, sure))
            });
        let ((mut a, devices), sure) = match parsed {
            Ok(v) => v,
            Err(reason) => {
                results.push(serde_json::json!({ "index": index, "id": null, "isFailed": true, "failureReason": reason }));
                continue;
            }
        };
        let at = a.last_event_time.or(a.alert_creation_time).unwrap_or(now);
        if let Some(m) = resolve_device(&state, &caller, &devices, at).await? {
            a.machine_id = Some(m.id);
            a.computer_dns_name = Some(m.computer_dns_name);
            a.rbac_group_name = m.rbac_group_name;
        }
        let external_id = a.external_id.clone();
        let (stored, created) = state
            .store
            .import_alert(&caller.audit(), caller.tenant, a)
            .await?;
        if sure && created {
            rampart_respond::signal::share(
                state.store.as_ref(),
                &state.indicators,
                &caller.audit(),
                caller.tenant,
                &stored,
                &format!(
                    "{} reported it with high confidence.",
                    stored.detection_source
                ),
            )
            .await?;
        }
        results.push(serde_json::json!({
            "index": index, "id": stored.id, "externalId": external_id, "created": created,
            "incidentId": stored.incident_id, "machineId": stored.machine_id, "isFailed": false, "failureReason": null,
        }));
    }
    Ok(entity_response(
        StatusCode::OK,
        &serde_json::json!({ "value": results }),
    ))
}

/// For unit tests of the mapping.
#[cfg(test)]
mod tests {
    use super::*;

    fn ext(v: serde_json::Value) -> Result<(Alert, Vec<ExternalEvidence>), String> {
        to_alert(
            serde_json::from_value(v).unwrap(),
            rampart_core::TenantId::new_random(),
            OffsetDateTime::now_utc(),
        )
    }

    #[test]
    fn external_alerts_map_to_mde_alerts() {
        let (a, devices) = ext(serde_json::json!({
            "sourceProduct": "Contoso NDR", "externalId": "n-1", "title": "Beaconing", "severity": "high", "category": "commandandcontrol",
            "evidence": [{"entityType": "Device", "ipAddress": "10.0.0.5"}, {"entityType": "ip", "ipAddress": "203.0.113.9"},
                         {"entityType": "User", "accountName": "alice", "domainName": "corp"}]
        }))
        .unwrap();
        assert_eq!(
            (a.detection_source.as_str(), a.severity, a.category.as_str()),
            ("Contoso NDR", Severity::High, "CommandAndControl")
        );
        assert_eq!(a.evidence.len(), 2);
        assert_eq!(devices.len(), 1);
        assert_eq!(a.related_user.unwrap().user_name.as_deref(), Some("alice"));
        assert!(ext(serde_json::json!({"sourceProduct": "x", "externalId": "1", "title": "t", "severity": "Huge"})).unwrap_err().contains("severity"));
        assert!(
            ext(serde_json::json!({"sourceProduct": "x", "title": "t", "severity": "Low"}))
                .unwrap_err()
                .contains("externalId")
        );
        let bad_hash = serde_json::json!({"sourceProduct": "x", "externalId": "1", "title": "t", "severity": "Low", "evidence": [{"entityType": "File", "sha256": "abc"}]});
        assert!(ext(bad_hash).unwrap_err().contains("sha256"));
    }
}
