//! The token service, shaped like Entra ID's: client-credentials token endpoints (v1 and v2),
//! the tenant's signing keys (JWKS) and its OpenID configuration, so that clients built on the
//! Azure identity libraries can use Rampart as their authority.

use crate::auth::{secret, token};
use crate::body::read_bytes;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine;
use rampart_core::{ClientId, TenantId};
use std::collections::HashMap;
use time::OffsetDateTime;

/// An OAuth2 error response (RFC 6749 §5.2) with Entra's extra fields.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let cid = crate::error::correlation_id();
    let body = serde_json::json!({
        "error": error,
        "error_description": description,
        "timestamp": rampart_core::timefmt::format(OffsetDateTime::now_utc()),
        "trace_id": cid,
        "correlation_id": cid,
    });
    (status, Json(body)).into_response()
}

fn invalid_client() -> Response {
    // The same answer for an unknown client, a wrong secret and an app of another tenant: the
    // caller learns nothing about which part was wrong.
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "The client credentials are invalid.",
    )
}

/// Which token endpoint was called.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

pub async fn token_v2(state: State<AppState>, tenant: Path<String>, req: Request) -> Response {
    issue(state, tenant, req, Version::V2).await
}

pub async fn token_v1(state: State<AppState>, tenant: Path<String>, req: Request) -> Response {
    issue(state, tenant, req, Version::V1).await
}

/// Client id and secret from HTTP Basic authentication (`client_secret_basic`).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let h = headers.get("authorization")?.to_str().ok()?;
    let (scheme, b64) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (id, secret) = s.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

async fn issue(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    req: Request,
    version: Version,
) -> Response {
    let headers = req.headers().clone();
    let bytes = match read_bytes(req, &()).await {
        Ok(b) => b,
        Err(e) => {
            let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return oauth_error(status, "invalid_request", &e.message);
        }
    };
    let form: HashMap<String, String> = match serde_urlencoded::from_bytes(&bytes) {
        Ok(f) => f,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The body must be application/x-www-form-urlencoded.",
            );
        }
    };
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(other) => {
            let other: String = other.chars().take(64).collect();
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Grant type '{other}' is not supported; use client_credentials."),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request body must contain the parameter 'grant_type'.",
            );
        }
    }
    let base = state.base_url(&headers);
    let resource = match version {
        Version::V2 => {
            let Some(scope) = form.get("scope") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The request body must contain the parameter 'scope'.",
                );
            };
            match scope
                .split_whitespace()
                .find_map(|s| s.strip_suffix("/.default"))
            {
                Some(r) => r.to_owned(),
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        "The scope must be '<resource>/.default' for the client credentials flow.",
                    );
                }
            }
        }
        Version::V1 => match form.get("resource") {
            Some(r) => r.clone(),
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The request body must contain the parameter 'resource'.",
                );
            }
        },
    };
    if !token::audience_accepted(&resource, &base) {
        let shown: String = resource.chars().take(200).collect();
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            &format!(
                "Resource '{shown}' is not served here; use {base} or https://api.securitycenter.microsoft.com."
            ),
        );
    }
    let (client_id, client_secret) = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(s)) => (id.clone(), s.clone()),
        _ => match basic_credentials(&headers) {
            Some(c) => c,
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "client_id and client_secret are required.",
                );
            }
        },
    };
    let Ok(tenant) = tenant.parse::<TenantId>() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The tenant in the path must be a tenant id (GUID).",
        );
    };
    match state.store.get_tenant(tenant).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("Tenant '{tenant}' not found."),
            );
        }
        Err(e) => {
            crate::error::ApiError::internal("token endpoint", e);
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "temporarily_unavailable",
                "The token service could not read its store.",
            );
        }
    }
    let app = match client_id.parse::<ClientId>() {
        Ok(id) => match state.store.app_credentials(tenant, id).await {
            Ok(found) => found,
            Err(e) => {
                crate::error::ApiError::internal("token endpoint", e);
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "temporarily_unavailable",
                    "The token service could not read its store.",
                );
            }
        },
        Err(_) => None,
    };
    // Verify against a decoy hash when the app is unknown so timing reveals nothing.
    let hash = app
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| secret::decoy_hash().to_owned());
    let matches = tokio::task::spawn_blocking(move || secret::verify(&client_secret, &hash))
        .await
        .unwrap_or(false);
    let app = match app {
        Some((app, _)) if matches => app,
        _ => return invalid_client(),
    };

    let (kid, key) = match state.keys.signer(state.store.as_ref(), tenant).await {
        Ok(k) => k,
        Err(e) => {
            crate::error::ApiError::internal("token signing key", e);
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "temporarily_unavailable",
                "The token service has no usable signing key.",
            );
        }
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let ver = match version {
        Version::V1 => "1.0",
        Version::V2 => "2.0",
    };
    let claims = token::Claims {
        aud: resource.trim_end_matches('/').to_owned(),
        iss: token::issuer(&base, tenant),
        iat: now,
        nbf: now,
        exp: now + token::LIFETIME_SECS,
        tid: tenant.to_string(),
        appid: app.client_id.to_string(),
        azp: (version == Version::V2).then(|| app.client_id.to_string()),
        app_displayname: app.name.clone(),
        oid: app.client_id.to_string(),
        sub: app.client_id.to_string(),
        idtyp: "app".into(),
        roles: app.roles.iter().map(|r| r.name().to_owned()).collect(),
        ver: ver.into(),
    };
    match token::sign(&claims, &kid, &key) {
        Ok(jwt) => {
            let mut body = serde_json::json!({
                "token_type": "Bearer",
                "expires_in": token::LIFETIME_SECS,
                "ext_expires_in": token::LIFETIME_SECS,
                "access_token": jwt,
            });
            if version == Version::V1 {
                // The v1 endpoint also tells the times and the resource, as strings.
                body["expires_on"] = (now + token::LIFETIME_SECS).to_string().into();
                body["not_before"] = now.to_string().into();
                body["resource"] = resource.into();
            }
            let mut resp = Json(body).into_response();
            resp.headers_mut().insert(
                "cache-control",
                axum::http::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(e) => {
            crate::error::ApiError::internal("signing a token", e);
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "temporarily_unavailable",
                "The token could not be signed.",
            )
        }
    }
}

fn known_tenant(tenant: &str) -> Option<TenantId> {
    tenant.parse().ok()
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub async fn jwks(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    let Some(t) = known_tenant(&tenant) else {
        return crate::error::ApiError::not_found("No such tenant.").into_response();
    };
    if !matches!(state.store.get_tenant(t).await, Ok(Some(_))) {
        return crate::error::ApiError::not_found("No such tenant.").into_response();
    }
    // A tenant that never had a token issued gets its first key now, so the set is never empty.
    if state.keys.published(t).is_empty()
        && let Err(e) = state.keys.signer(state.store.as_ref(), t).await
    {
        return crate::error::ApiError::internal("creating a signing key", e).into_response();
    }
    Json(serde_json::json!({ "keys": state.keys.published(t) })).into_response()
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub async fn openid_configuration(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(t) = known_tenant(&tenant) else {
        return crate::error::ApiError::not_found("No such tenant.").into_response();
    };
    if !matches!(state.store.get_tenant(t).await, Ok(Some(_))) {
        return crate::error::ApiError::not_found("No such tenant.").into_response();
    }
    let base = state.base_url(&headers);
    Json(serde_json::json!({
        "issuer": token::issuer(&base, t),
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": [format!("{base}/.default"), "https://api.securitycenter.microsoft.com/.default"],
        "claims_supported": ["aud", "iss", "iat", "nbf", "exp", "tid", "appid", "azp", "roles", "ver", "oid", "sub", "idtyp"],
        "tenant_region_scope": null,
        "cloud_instance_name": base.trim_start_matches("https://").trim_start_matches("http://"),
    }))
    .into_response()
}
