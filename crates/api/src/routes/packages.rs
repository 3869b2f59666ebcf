//! Investigation packages: the agent uploads the package of a `CollectInvestigationPackage`
//! command (`PUT /agent/v1/commands/{id}/package`), the server keeps it in the object store
//! beside the telemetry (`packages/{tenant}/{action id}.tar.gz` — the data dir by default, S3 or
//! the like when scaled out), and `GetPackageUri` answers a link that works without a bearer
//! token for [`LINK_LIFETIME`], like MDE's SAS links: `GET /packages/{id}?token=…`, where the
//! token is a JWT signed with the tenant's key naming that one action.

use crate::auth::device::authenticate_device;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStoreExt, WriteMultipart};
use futures::StreamExt;
use jsonwebtoken::{Algorithm, Header, Validation};
use rampart_core::machine_action::{ActionStatus, ActionType, MachineAction};
use rampart_core::{ErrorCode, TenantId};
use rampart_proto::command::PackageAck;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Largest package the server takes.
pub const MAX_PACKAGE_BYTES: u64 = 512 << 20;
/// How long a `GetPackageUri` link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// What a stored action's package URI holds when the package is in the server's object store:
/// the marker, then the object path. `GetPackageUri` turns it into a signed link.
const STORED: &str = "rampart-object:";
/// The audience of package link tokens: they are good for nothing else.
const LINK_AUDIENCE: &str = "rampart-package";

/// Where the package of an action is kept.
pub fn object_path(tenant: TenantId, action_id: &str) -> ObjectPath {
    ObjectPath::from(format!("packages/{tenant}/{action_id}.tar.gz"))
}

/// The package URI stored with a completed action whose package the server holds.
pub fn stored_uri(tenant: TenantId, action_id: &str) -> String {
    format!("{STORED}{}", object_path(tenant, action_id))
}

/// Whether the package of an action has been uploaded.
pub async fn uploaded(state: &AppState, tenant: TenantId, action_id: &str) -> ApiResult<bool> {
    match state
        .events
        .objects()
        .head(&object_path(tenant, action_id))
        .await
    {
        Ok(_) => Ok(true),
        Err(datafusion::object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(ApiError::internal("looking up an investigation package", e)),
    }
}

/// `PUT /agent/v1/commands/{id}/package` (device credential): the package of a running
/// `CollectInvestigationPackage` command of this device, streamed into the object store.
pub async fn upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Json<PackageAck>> {
    let device = authenticate_device(&state, req.headers()).await?;
    let action = crate::routes::agent_commands::command_of_device(&state, &device, &id).await?;
    if action.action_type != ActionType::CollectInvestigationPackage
        || action.status() != ActionStatus::InProgress
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "Machine action {} is a {} action that is {}; it takes no package.",
                action.id,
                action.action_type.as_str(),
                action.status().as_str()
            ),
        ));
    }
    let path = object_path(device.tenant, &action.id);
    let objects = state.events.objects();
    let upload = objects
        .put_multipart(&path)
        .await
        .map_err(|e| ApiError::internal("storing an investigation package", e))?;
    let mut writer = WriteMultipart::new(upload);
    let mut body = req.into_body().into_data_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!("The package upload broke off: {e}"),
                ));
            }
        };
        bytes += chunk.len() as u64;
        if bytes > MAX_PACKAGE_BYTES {
            let _ = writer.abort().await;
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("An investigation package is at most {MAX_PACKAGE_BYTES} bytes."),
            ));
        }
        if let Err(e) = writer.wait_for_capacity(4).await {
            let _ = writer.abort().await;
            return Err(ApiError::internal("storing an investigation package", e));
        }
        writer.put(chunk);
    }
    if bytes == 0 {
        let _ = writer.abort().await;
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "The package is empty.",
        ));
    }
    writer
        .finish()
        .await
        .map_err(|e| ApiError::internal("storing an investigation package", e))?;
    tracing::info!(
        device_id = device.device_id,
        action = action.id,
        bytes,
        "investigation package stored"
    );
    Ok(Json(PackageAck {
        command_id: action.id,
        bytes,
    }))
}

/// The claims of a package link token.
#[derive(Serialize, Deserialize)]
struct LinkClaims {
    aud: String,
    /// The machine action.
    sub: String,
    tid: String,
    exp: i64,
    nbf: i64,
}

/// The link `GetPackageUri` answers for `action`, whose stored package URI is `uri`: a signed,
/// short-lived link when the server holds the package, else the URI as stored.
pub async fn link(
    state: &AppState,
    headers: &HeaderMap,
    tenant: TenantId,
    action: &MachineAction,
    uri: &str,
) -> ApiResult<String> {
    if !uri.starts_with(STORED) {
        return Ok(uri.to_owned());
    }
    let (kid, key) = state
        .keys
        .signer(state.store.as_ref(), tenant)
        .await
        .map_err(|e| ApiError::internal("the tenant's signing key", e))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = LinkClaims {
        aud: LINK_AUDIENCE.into(),
        sub: action.id.clone(),
        tid: tenant.to_string(),
        exp: now + LINK_LIFETIME.as_secs() as i64,
        nbf: now - 60,
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid);
    let token = jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| ApiError::internal("signing a package link", e))?;
    Ok(format!(
        "{}/packages/{}?token={token}",
        state.base_url(headers),
        action.id
    ))
}

#[derive(Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// `GET /packages/{id}?token=…`: the package, for whoever holds a link `GetPackageUri` gave
/// out and that has not expired.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LinkQuery>,
) -> ApiResult<Response> {
    let refused = || {
        ApiError::new(
            ErrorCode::Unauthorized,
            "The package link is not valid or has expired; ask GetPackageUri for a new one.",
        )
    };
    let token = q.token.ok_or_else(refused)?;
    let header = jsonwebtoken::decode_header(&token).map_err(|_| refused())?;
    let (tenant, key) = header
        .kid
        .as_deref()
        .and_then(|kid| state.keys.verifier(kid))
        .ok_or_else(refused)?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[LINK_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<LinkClaims>(&token, &key, &validation)
        .map_err(|_| refused())?
        .claims;
    if claims.sub != id || claims.tid != tenant.to_string() {
        return Err(refused());
    }
    let got = state
        .events
        .objects()
        .get(&object_path(tenant, &id))
        .await
        .map_err(|e| match e {
            datafusion::object_store::Error::NotFound { .. } => {
                ApiError::not_found(format!("The package of machine action {id} is gone."))
            }
            e => ApiError::internal("reading an investigation package", e),
        })?;
    let size = got.meta.size;
    let stream = got.into_stream();
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"investigation-package-{id}.tar.gz\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
