//! What a machine's telemetry says about it: `GET /api/machines/{id}/logonusers` (from
//! `DeviceLogonEvents`) and `GET /api/machines/{id}/software` (from the installed-software
//! inventory, `DeviceTvmSoftwareInventory`), in MDE's User and Software shapes (reference
//! §2.2, §7.2).
//!
//! Both are advanced-hunting queries run for the caller's tenant (its lookback and limits), with
//! the machine's id bound as a query parameter: the same rows a hunter sees, not a second copy.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::hunt_json;
use crate::odata::value_response;
use crate::router::{ApiRoutes, RouteDef};
use crate::routes::hunting;
use crate::routes::machines::machine;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use rampart_core::Permission as P;
use rampart_kql::QueryParameters;
use rampart_kql::ast::Literal;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const READ_USERS: &[P] = &[P::UserRead];
const READ_SOFTWARE: &[P] = &[P::SoftwareRead];

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get(
            "/machines/{id}/logonusers",
            READ_USERS,
            "Machines",
            "Users who logged on to a machine within the hunting lookback (from DeviceLogonEvents)",
        ),
        logon_users,
    )
    .add(
        RouteDef::get(
            "/machines/{id}/software",
            READ_SOFTWARE,
            "Machines",
            "Software installed on a machine (from its latest inventory report)",
        ),
        software,
    )
}

/// Runs `query` as the tenant's hunters would (the same lookback and limits), with `device`
/// bound to the `device` parameter; the rows as JSON objects.
async fn device_rows(
    state: &AppState,
    caller: &Caller,
    device: &str,
    query: &str,
) -> ApiResult<Vec<Map<String, Value>>> {
    let ctx = hunting::session(state, caller.tenant).await?;
    let params = QueryParameters::new().with("device", Literal::String(device.to_owned()));
    let result = rampart_kql::plan::run(&ctx, query, &params, &state.config.hunting.limits())
        .await
        .map_err(|e| ApiError::internal("querying the machine's telemetry", e))?;
    Ok(
        hunt_json::rows_json(&hunt_json::columns(&result), &result.batches)
            .into_iter()
            .filter_map(|row| match row {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
    )
}

fn text(row: &Map<String, Value>, key: &str) -> String {
    row.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `GET /api/machines/{id}/logonusers`: one User per account that signed in successfully,
/// with the first and last time and the kinds of logon.
pub async fn logon_users(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let m = machine(&state, &caller, &id).await?;
    let rows = device_rows(
        &state,
        &caller,
        &m.id,
        "declare query_parameters(device:string);
         DeviceLogonEvents
         | where DeviceId == device and ActionType == 'LogonSuccess' and isnotempty(AccountName)
         | summarize firstSeen = min(Timestamp), lastSeen = max(Timestamp),
                     logonTypes = make_set(LogonType) by AccountDomain, AccountName
         | order by lastSeen desc, AccountName asc",
    )
    .await?;
    let users: Vec<Value> = rows
        .iter()
        .map(|r| {
            let (domain, name) = (text(r, "AccountDomain"), text(r, "AccountName"));
            let mut types: Vec<&str> = r
                .get("logonTypes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            types.sort_unstable(); // a set has no order of its own
            json!({
                "id": if domain.is_empty() { name.clone() } else { format!("{domain}\\{name}") },
                "accountName": name,
                "accountDomain": domain,
                "firstSeen": r.get("firstSeen"),
                "lastSeen": r.get("lastSeen"),
                "logonTypes": types.join(", "),
                // Linux accounts have no domain roles.
                "isDomainAdmin": false,
                "isOnlyNetworkUser": !types.is_empty() && types.iter().all(|t| *t == "Network"),
            })
        })
        .collect();
    Ok(value_response(&state, &headers, "Users", &users))
}

/// MDE's software id: vendor and product, lower case, spaces as underscores, joined by `-_-`
/// (e.g. `microsoft-_-edge`).
fn software_id(vendor: &str, name: &str) -> String {
    let part = |s: &str| s.trim().to_lowercase().replace(' ', "_");
    format!("{}-_-{}", part(vendor), part(name))
}

/// `GET /api/machines/{id}/software`: the products of the machine's latest inventory report,
/// each with the number of the tenant's machines that have it.
pub async fn software(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let m = machine(&state, &caller, &id).await?;
    let installed = device_rows(
        &state,
        &caller,
        &m.id,
        "declare query_parameters(device:string);
         DeviceTvmSoftwareInventory
         | where DeviceId == device
         | summarize by SoftwareVendor, SoftwareName
         | order by SoftwareVendor asc, SoftwareName asc",
    )
    .await?;
    let mut exposed: BTreeMap<(String, String), i64> = BTreeMap::new();
    if !installed.is_empty() {
        // One row per machine and product first, so that a product installed in two versions
        // on one machine counts that machine once.
        let fleet = device_rows(
            &state,
            &caller,
            &m.id,
            "DeviceTvmSoftwareInventory
             | summarize by SoftwareVendor, SoftwareName, DeviceId
             | summarize exposedMachines = count() by SoftwareVendor, SoftwareName",
        )
        .await?;
        for r in &fleet {
            let n = r
                .get("exposedMachines")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            exposed.insert((text(r, "SoftwareVendor"), text(r, "SoftwareName")), n);
        }
    }
    let value: Vec<Value> = installed
        .iter()
        .map(|r| {
            let (vendor, name) = (text(r, "SoftwareVendor"), text(r, "SoftwareName"));
            let machines = exposed
                .get(&(vendor.clone(), name.clone()))
                .copied()
                .unwrap_or(1);
            json!({
                "id": software_id(&vendor, &name),
                "name": name,
                "vendor": vendor,
                // No vulnerability data yet: nothing is known to be weak or exploited.
                "weaknesses": 0,
                "publicExploit": false,
                "activeAlert": false,
                "exposedMachines": machines,
                "impactScore": 0.0,
            })
        })
        .collect();
    Ok(value_response(&state, &headers, "Software", &value))
}
