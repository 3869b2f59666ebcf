//! `/api/alerts/{id}/files|ips|domains|machine|user`: the entities of an alert's evidence.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::odata::{entity_response, value_response};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rampart_core::alert::Alert;
use serde_json::{Value, json};

pub(crate) async fn alert(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Alert> {
    let shown: String = id.chars().take(100).collect();
    state
        .store
        .get_alert_doc(caller.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Alert {shown} was not found")))
}

fn push_unique(out: &mut Vec<Value>, v: Value) {
    if !out.contains(&v) {
        out.push(v);
    }
}

pub async fn files(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let a = alert(&state, &caller, &id).await?;
    let mut out = Vec::new();
    for e in a
        .evidence
        .iter()
        .filter(|e| e.sha1.is_some() || e.sha256.is_some())
    {
        push_unique(
            &mut out,
            json!({
                "sha1": e.sha1, "sha256": e.sha256, "md5": null, "globalPrevalence": null, "globalFirstObserved": null,
                "globalLastObserved": null, "size": null, "fileType": null, "isPeFile": null, "filePublisher": null,
                "fileProductName": null, "signer": null, "issuer": null, "signerHash": null, "isValidCertificate": null,
                "determinationType": null, "determinationValue": null,
            }),
        );
    }
    Ok(value_response(&state, &headers, "Files", &out))
}

pub async fn ips(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let a = alert(&state, &caller, &id).await?;
    let mut out = Vec::new();
    for ip in a.evidence.iter().filter_map(|e| e.ip_address.as_deref()) {
        push_unique(&mut out, json!({ "id": ip }));
    }
    Ok(value_response(&state, &headers, "Ips", &out))
}

/// The host of a URL-ish string (`https://a.b/c` → `a.b`).
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next()?.rsplit('@').next()?;
    let host = host.split(':').next()?.trim().to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

pub async fn domains(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let a = alert(&state, &caller, &id).await?;
    let mut out = Vec::new();
    for host in a
        .evidence
        .iter()
        .filter_map(|e| e.url.as_deref())
        .filter_map(host_of)
    {
        push_unique(&mut out, json!({ "host": host }));
    }
    Ok(value_response(&state, &headers, "Domains", &out))
}

pub async fn machine(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let a = alert(&state, &caller, &id).await?;
    let machine_id = a
        .machine_id
        .ok_or_else(|| ApiError::not_found(format!("Alert {id} has no machine")))?;
    let m = super::machines::machine(&state, &caller, &machine_id).await?;
    Ok(entity_response(StatusCode::OK, &m))
}

pub async fn user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let a = alert(&state, &caller, &id).await?;
    let from_evidence = a
        .evidence
        .iter()
        .find(|e| e.account_name.is_some())
        .map(|e| (e.account_name.clone(), e.domain_name.clone()));
    let from_alert = a
        .related_user
        .as_ref()
        .map(|u| (u.user_name.clone(), u.domain_name.clone()));
    let (name, domain) = from_alert
        .or(from_evidence)
        .ok_or_else(|| ApiError::not_found(format!("Alert {id} has no user")))?;
    let name = name.unwrap_or_default();
    let account_id = match &domain {
        Some(d) => format!("{d}\\{name}"),
        None => name.clone(),
    };
    Ok(entity_response(
        StatusCode::OK,
        &json!({ "id": account_id, "accountName": name, "accountDomain": domain, "firstSeen": null, "lastSeen": null,
                 "logonTypes": null, "isDomainAdmin": null, "isOnlyNetworkUser": null }),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts() {
        assert_eq!(
            super::host_of("https://User@Evil.Example:8443/a?b").as_deref(),
            Some("evil.example")
        );
        assert_eq!(
            super::host_of("evil.example/x").as_deref(),
            Some("evil.example")
        );
        assert_eq!(super::host_of("").as_deref(), None);
    }
}
