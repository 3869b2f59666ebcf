//! Files the server keeps in the object store beside the telemetry (the data dir by default, S3
//! or the like when scaled out): investigation packages, live response results and library
//! files. This module streams them in with a size cap, signs the short-lived links analysts
//! download them through (MDE's SAS links: no bearer token needed, good for
//! [`LINK_LIFETIME`], naming one file of one tenant), streams them out, and deletes them when
//! they are older than the retention ([`expire`]).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use futures::{Stream, StreamExt};
use jsonwebtoken::{Algorithm, Header, Validation};
use rampart_core::{ErrorCode, TenantId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a download link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// What a stored URI holds when the file is in the server's object store: the marker, then the
/// object path. Links are made from it when asked for, so none is stored that could expire.
const STORED: &str = "rampart-object:";
/// The audience of link tokens: they are good for nothing else.
const LINK_AUDIENCE: &str = "rampart-download";

/// The URI stored for a file the server holds at `path`.
pub fn stored_uri(path: &ObjectPath) -> String {
    format!("{STORED}{path}")
}

/// Whether a stored URI names a file the server holds (else it is a link from elsewhere).
pub fn is_stored(uri: &str) -> bool {
    uri.starts_with(STORED)
}

/// Whether the object exists.
pub async fn exists(state: &AppState, path: &ObjectPath, what: &str) -> ApiResult<bool> {
    match state.events.objects().head(path).await {
        Ok(_) => Ok(true),
        Err(datafusion::object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(ApiError::internal(&format!("looking up {what}"), e)),
    }
}

/// Streams `body` into the object at `path`: at most `max` bytes, never empty. Nothing is left
/// at `path` when it fails.
pub async fn store_stream<E: std::fmt::Display>(
    objects: &dyn ObjectStore,
    path: &ObjectPath,
    mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
    max: u64,
    what: &str,
) -> ApiResult<u64> {
    let upload = objects
        .put_multipart(path)
        .await
        .map_err(|e| ApiError::internal(&format!("storing {what}"), e))?;
    let mut writer = WriteMultipart::new(upload);
    let mut bytes = 0u64;
    let refused = |message: String| ApiError::new(ErrorCode::BadRequest, message);
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(refused(format!("The upload of {what} broke off: {e}")));
            }
        };
        bytes += chunk.len() as u64;
        if bytes > max {
            let _ = writer.abort().await;
            return Err(refused(format!("{what} is larger than {max} bytes.")));
        }
        if let Err(e) = writer.wait_for_capacity(4).await {
            let _ = writer.abort().await;
            return Err(ApiError::internal(&format!("storing {what}"), e));
        }
        writer.put(chunk);
    }
    if bytes == 0 {
        let _ = writer.abort().await;
        return Err(refused(format!("{what} is empty.")));
    }
    writer
        .finish()
        .await
        .map_err(|e| ApiError::internal(&format!("storing {what}"), e))?;
    Ok(bytes)
}

/// The claims of a link token.
#[derive(Serialize, Deserialize)]
struct LinkClaims {
    aud: String,
    /// What the link opens: the URL path it was made for.
    sub: String,
    tid: String,
    exp: i64,
    nbf: i64,
}

/// A link to `url_path` on this server (e.g. `/packages/{id}`) that works without a bearer
/// token for [`LINK_LIFETIME`], for tenant `tenant` only.
pub async fn signed_link(
    state: &AppState,
    headers: &HeaderMap,
    tenant: TenantId,
    url_path: &str,
) -> ApiResult<String> {
    let (kid, key) = state
        .keys
        .signer(state.store.as_ref(), tenant)
        .await
        .map_err(|e| ApiError::internal("the tenant's signing key", e))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = LinkClaims {
        aud: LINK_AUDIENCE.into(),
        sub: url_path.to_owned(),
        tid: tenant.to_string(),
        exp: now + LINK_LIFETIME.as_secs() as i64,
        nbf: now - 60,
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid);
    let token = jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| ApiError::internal("signing a download link", e))?;
    Ok(format!(
        "{}{url_path}?token={token}",
        state.base_url(headers)
    ))
}

/// The tenant a link `token` for `url_path` was signed for; 401 when it is missing, forged,
/// expired or made for another path.
pub fn verify_link(state: &AppState, token: Option<&str>, url_path: &str) -> ApiResult<TenantId> {
    let refused = || {
        ApiError::new(
            ErrorCode::Unauthorized,
            "The download link is not valid or has expired; ask for a new one.",
        )
    };
    let token = token.ok_or_else(refused)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| refused())?;
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
    let claims = jsonwebtoken::decode::<LinkClaims>(token, &key, &validation)
        .map_err(|_| refused())?
        .claims;
    if claims.sub != url_path || claims.tid != tenant.to_string() {
        return Err(refused());
    }
    Ok(tenant)
}

/// The object at `path` as a download named `file_name`.
pub async fn serve(
    state: &AppState,
    path: &ObjectPath,
    content_type: &'static str,
    file_name: &str,
    what: &str,
) -> ApiResult<Response> {
    let got = state
        .events
        .objects()
        .get(path)
        .await
        .map_err(|e| match e {
            datafusion::object_store::Error::NotFound { .. } => {
                ApiError::not_found(format!("{what} is gone."))
            }
            e => ApiError::internal(&format!("reading {what}"), e),
        })?;
    let size = got.meta.size;
    let mut resp = Body::from_stream(got.into_stream()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Where the files an action leaves are kept: investigation packages and live response results.
pub const RESPONSE_FILE_PREFIXES: &[&str] = &["packages", "liveresponse"];

/// Deletes the objects under `prefixes` last written before `cutoff`; returns how many. A
/// listing or a deletion that fails is logged and skipped: the next round tries again.
pub async fn expire(
    objects: &dyn ObjectStore,
    prefixes: &[&str],
    cutoff: time::OffsetDateTime,
) -> usize {
    let cutoff_ms = (cutoff.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut deleted = 0;
    for prefix in prefixes {
        let prefix = ObjectPath::from(*prefix);
        let mut listing = objects.list(Some(&prefix));
        let mut old = Vec::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) if meta.last_modified.timestamp_millis() < cutoff_ms => {
                    old.push(meta.location)
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(%prefix, "listing response files: {e}");
                    break;
                }
            }
        }
        for path in old {
            match objects.delete(&path).await {
                Ok(()) => deleted += 1,
                Err(e) => tracing::warn!(%path, "deleting an expired response file: {e}"),
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::object_store::local::LocalFileSystem;

    #[tokio::test]
    async fn response_files_older_than_the_cutoff_are_deleted_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let objects = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        for path in [
            "packages/t/a.tar.gz",
            "liveresponse/t/x/1",
            "telemetry/t/keep.parquet",
        ] {
            objects
                .put(&ObjectPath::from(path), Bytes::from_static(b"data").into())
                .await
                .unwrap();
        }
        let now = time::OffsetDateTime::now_utc();
        let count = |objects: &LocalFileSystem| {
            let objects = objects.clone();
            async move { objects.list(None).collect::<Vec<_>>().await.len() }
        };
        // Written just now: a cutoff an hour ago keeps them.
        let none = expire(
            &objects,
            RESPONSE_FILE_PREFIXES,
            now - time::Duration::hours(1),
        )
        .await;
        assert_eq!((none, count(&objects).await), (0, 3));
        // A cutoff past them deletes the response files, never the telemetry.
        let two = expire(
            &objects,
            RESPONSE_FILE_PREFIXES,
            now + time::Duration::minutes(1),
        )
        .await;
        assert_eq!((two, count(&objects).await), (2, 1));
    }
}
