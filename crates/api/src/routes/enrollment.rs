//! Agent enrollment: `/api/enrollmentTokens` (administrators create, list and revoke tokens) and
//! `POST /agent/v1/enroll` (an agent trades a token for its device credentials). Rampart's own
//! resource; MDE onboards devices with packages instead.
//!
//! The token's secret (`rpe_…`) is shown once, in the answer to its creation; the device secret
//! (`rpd_…`) once, in the answer to the enrollment. The store keeps only their SHA-256 hashes
//! (see [`crate::auth::device`] for why a fast hash is the right one).

use crate::auth::Caller;
use crate::auth::device::{new_device_id, new_secret, secret_hash};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, correlation_id};
use crate::odata::{entity_response, value_response};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::audit::{Actor, ActorKind, AuditContext};
use rampart_core::enrollment::{
    DEVICE_SECRET_PREFIX, ENROLLMENT_TOKEN_PREFIX, EnrollmentToken, MAX_NAME_LEN,
};
use rampart_core::machine::{Machine, is_machine_id};
use rampart_core::timefmt::{from_micros, to_micros};
use rampart_core::{ErrorCode, Permission as P};
use serde::Deserialize;
use time::OffsetDateTime;

/// Enrollment decides which devices may send telemetry into the tenant: a security
/// configuration, as device groups are.
const READ: &[P] = &[
    P::SecurityConfigurationRead,
    P::SecurityConfigurationReadWrite,
];
const WRITE: &[P] = &[P::SecurityConfigurationReadWrite];

/// Longest lifetime a token may be given: ten years, which is "no expiry" for any deployment
/// and keeps the arithmetic far from overflow.
pub const MAX_EXPIRES_IN_HOURS: i64 = 10 * 366 * 24;

/// Longest computer name accepted (a DNS name is at most 253 characters).
const MAX_COMPUTER_NAME_LEN: usize = 255;
/// Longest OS platform name accepted.
const MAX_OS_PLATFORM_LEN: usize = 64;

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::new(
            Method::POST,
            "/enrollmentTokens",
            WRITE,
            "Enrollment",
            "Create an agent enrollment token; its secret is in the answer only (Rampart)",
        ),
        create,
    )
    .add(
        RouteDef::get(
            "/enrollmentTokens",
            READ,
            "Enrollment",
            "List the tenant's agent enrollment tokens, without secrets (Rampart)",
        ),
        list,
    )
    .add(
        RouteDef::new(
            Method::DELETE,
            "/enrollmentTokens/{id}",
            WRITE,
            "Enrollment",
            "Revoke an enrollment token; devices it enrolled stay enrolled (Rampart)",
        ),
        revoke,
    )
}

fn missing(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MissingRequiredParameter,
        format!("The required parameter '{field}' is missing."),
    )
}

fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, format!("'{field}' {rule}."))
}

/// A required text field: present, not blank, at most `max` characters, and free of control
/// characters (and of any whitespace when `no_spaces`). Returned trimmed.
fn text_field(
    field: &str,
    value: Option<String>,
    max: usize,
    no_spaces: bool,
) -> ApiResult<String> {
    let value = value.ok_or_else(|| missing(field))?;
    let value = value.trim();
    let bad_char = |c: char| c.is_control() || (no_spaces && c.is_whitespace());
    if value.is_empty() || value.chars().count() > max || value.chars().any(bad_char) {
        let spaces = if no_spaces { " or spaces" } else { "" };
        return Err(invalid(
            field,
            &format!("must be 1 to {max} characters without control characters{spaces}"),
        ));
    }
    Ok(value.to_owned())
}

/// A response that carries a secret: no cache may keep it.
fn with_secret(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenBody {
    name: Option<String>,
    /// Hours from now until the token stops enrolling; never when absent.
    expires_in_hours: Option<i64>,
    /// Devices the token may enroll; unlimited when absent.
    max_uses: Option<i64>,
}

/// `POST /api/enrollmentTokens`: 201 with the token and, this once, its secret in `token`.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreateTokenBody>,
) -> ApiResult<Response> {
    let name = text_field("name", body.name, MAX_NAME_LEN, false)?;
    if let Some(h) = body.expires_in_hours
        && !(1..=MAX_EXPIRES_IN_HOURS).contains(&h)
    {
        return Err(invalid(
            "expiresInHours",
            &format!("must be between 1 and {MAX_EXPIRES_IN_HOURS}"),
        ));
    }
    if body.max_uses.is_some_and(|m| m < 1) {
        return Err(invalid("maxUses", "must be at least 1"));
    }
    // The store keeps microseconds; the answer shows what a later list will.
    let now = from_micros(to_micros(OffsetDateTime::now_utc()));
    let token = EnrollmentToken {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: caller.tenant,
        name,
        created_time: now,
        expires_time: body
            .expires_in_hours
            .map(|h| now + time::Duration::hours(h)),
        max_uses: body.max_uses,
        uses: 0,
        revoked: false,
    };
    let secret = new_secret(ENROLLMENT_TOKEN_PREFIX);
    state
        .store
        .create_enrollment_token(&caller.audit(), &token, &secret_hash(&secret))
        .await?;
    let mut shown = serde_json::to_value(&token)
        .map_err(|e| ApiError::internal("encoding an enrollment token", e))?;
    if let Some(o) = shown.as_object_mut() {
        o.insert("token".into(), secret.into());
    }
    Ok(with_secret(entity_response(StatusCode::CREATED, &shown)))
}

/// `GET /api/enrollmentTokens`: every token of the tenant, oldest first, without secrets.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tokens = state.store.list_enrollment_tokens(caller.tenant).await?;
    Ok(value_response(
        &state,
        &headers,
        "EnrollmentTokens",
        &tokens,
    ))
}

/// `DELETE /api/enrollmentTokens/{id}`: 204; 404 when the tenant has no such token.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if !state
        .store
        .revoke_enrollment_token(&caller.audit(), caller.tenant, &id)
        .await?
    {
        let shown: String = id.chars().take(100).collect();
        return Err(ApiError::not_found(format!(
            "Enrollment token {shown} was not found"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What an agent sends to enroll. Unknown fields are ignored, so that a newer agent can still
/// enroll with an older server.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollBody {
    enrollment_token: Option<String>,
    computer_dns_name: Option<String>,
    os_platform: Option<String>,
    /// The id the agent already has (re-installed with its state kept); a new one when absent.
    device_id: Option<String>,
}

fn invalid_token() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthorized,
        "The enrollment token is not valid: unknown, revoked, expired or used up.",
    )
}

/// `POST /agent/v1/enroll`: 201 `{deviceId, deviceSecret, tenantId}` and the machine recorded;
/// 401 for a token that does not enroll, 409 for a device id enrolled already.
pub async fn enroll(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<EnrollBody>,
) -> ApiResult<Response> {
    let token = body
        .enrollment_token
        .ok_or_else(|| missing("enrollmentToken"))?;
    let computer_dns_name = text_field(
        "computerDnsName",
        body.computer_dns_name,
        MAX_COMPUTER_NAME_LEN,
        true,
    )?;
    let os_platform = text_field("osPlatform", body.os_platform, MAX_OS_PLATFORM_LEN, false)?;
    let device_id = match body.device_id {
        Some(id) if is_machine_id(&id) => id.to_ascii_lowercase(),
        Some(_) => return Err(invalid("deviceId", "must be 40 hexadecimal characters")),
        None => new_device_id(),
    };
    // Something that is not shaped like a token is refused without a store lookup.
    if !token.starts_with(ENROLLMENT_TOKEN_PREFIX) || token.len() > 100 {
        return Err(invalid_token());
    }

    let ctx = AuditContext {
        actor: Actor {
            kind: ActorKind::System,
            id: "agent-enrollment".into(),
            name: Some(computer_dns_name.clone()),
        },
        correlation_id: correlation_id(),
    };
    let secret = new_secret(DEVICE_SECRET_PREFIX);
    let now = OffsetDateTime::now_utc();
    let (tenant, _) = state
        .store
        .enroll_device(
            &ctx,
            &secret_hash(&token),
            &device_id,
            &secret_hash(&secret),
            now,
        )
        .await?
        .ok_or_else(invalid_token)?;

    let machine = Machine::new(device_id.clone(), computer_dns_name, os_platform, now);
    if let Err(e) = state.store.report_machine(&ctx, tenant, &machine).await {
        // The device is enrolled: withholding its secret now would strand the credential and
        // waste the token's use, while the machine record is re-created by the device's next
        // report. So the failure is logged, not answered.
        tracing::warn!(correlation_id = %ctx.correlation_id, device_id, "recording an enrolled machine: {e}");
    }
    let body = serde_json::json!({
        "deviceId": device_id,
        "deviceSecret": secret,
        "tenantId": tenant.to_string(),
    });
    Ok(with_secret(
        (StatusCode::CREATED, axum::Json(body)).into_response(),
    ))
}
