//! The live response library (MDE's `/api/libraryfiles`, permission `Library.Manage`): upload
//! (multipart: `file`, `Description`, `ParametersDescription`, `HasParameters`,
//! `OverrideIfExists`), list, get and delete the files live response sessions put on devices and
//! the scripts they run there; and `GET /agent/v1/library/{sha256}` (device credential), where
//! agents fetch them.
//!
//! Content is kept in the object store under its SHA-256 (`library/{tenant}/{sha256}`). A session
//! is bound to the content its files have when it is handed to the agent: a session still queued
//! (a device offline) runs a file as it is when the device comes back, and replacing a file never
//! changes what a session in flight runs. Content no file names any more is deleted.

use crate::auth::Caller;
use crate::auth::device::authenticate_device;
use crate::error::{ApiError, ApiResult};
use crate::object_files;
use crate::odata::{entity_response, list_collection};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Multipart, OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use datafusion::object_store::ObjectStoreExt;
use datafusion::object_store::path::Path as ObjectPath;
use futures::StreamExt;
use rampart_core::library::{self, LibraryFile, MAX_DESCRIPTION_LEN, MAX_FILE_BYTES};
use rampart_core::{ErrorCode, Permission as P, TenantId};
use rampart_store::{Collection, LibraryPut};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const MANAGE: &[P] = &[P::LibraryManage];
const TAG: &str = "Live response library";

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::get("/libraryfiles", MANAGE, TAG, "List the live response library")
            .collection("LibraryFile"),
        list,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/libraryfiles",
            MANAGE,
            TAG,
            "Upload a file to the live response library (multipart/form-data: file, Description, ParametersDescription, HasParameters, OverrideIfExists)",
        )
        .returns("LibraryFile")
        // The form carries the file: the library's limit, not the JSON bodies' one.
        .body_limit(MAX_FILE_BYTES as usize + (1 << 20)),
        upload,
    )
    .add(
        RouteDef::get(
            "/libraryfiles/{id}",
            MANAGE,
            TAG,
            "Get a live response library file's details",
        )
        .returns("LibraryFile"),
        get,
    )
    .add(
        RouteDef::new(
            Method::DELETE,
            "/libraryfiles/{id}",
            MANAGE,
            TAG,
            "Delete a file from the live response library",
        ),
        delete,
    )
}

/// Where content `sha256` of `tenant` is kept.
pub fn content_path(tenant: TenantId, sha256: &str) -> ObjectPath {
    ObjectPath::from(format!("library/{tenant}/{sha256}"))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "Library file {} was not found",
        name.chars().take(255).collect::<String>()
    ))
}

fn bad_form(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequestBody, message)
}

pub async fn list(
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
        Collection::of::<LibraryFile>(),
        None,
        |_, row| Ok(row),
    )
    .await
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let file = state
        .store
        .get_library_file(caller.tenant, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(entity_response(StatusCode::OK, &file))
}

/// The uploaded content, stored under its hash.
struct Content {
    file_name: String,
    sha256: String,
    size: u64,
}

/// A text field of the form, at most [`MAX_DESCRIPTION_LEN`] characters.
async fn text(field: axum::extract::multipart::Field<'_>, name: &str) -> ApiResult<String> {
    let value = field
        .text()
        .await
        .map_err(|e| bad_form(format!("Form field {name}: {e}")))?;
    if value.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(bad_form(format!(
            "Form field {name}: at most {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    Ok(value)
}

fn boolean(value: &str, name: &str) -> ApiResult<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(bad_form(format!(
            "Form field {name} must be true or false; got '{}'",
            other.chars().take(20).collect::<String>()
        ))),
    }
}

/// Streams the `file` field into the object store under its SHA-256.
async fn store_content(
    state: &AppState,
    tenant: TenantId,
    mut field: axum::extract::multipart::Field<'_>,
) -> ApiResult<Content> {
    let file_name = field
        .file_name()
        .map(str::to_owned)
        .ok_or_else(|| bad_form("Form field file has no file name (filename=…)."))?;
    library::check_file_name("file", &file_name)?;
    let objects = state.events.objects();
    let incoming = ObjectPath::from(format!(
        "library/{tenant}/incoming/{}",
        uuid::Uuid::new_v4()
    ));
    let mut hash = Sha256::new();
    let chunks = futures::stream::unfold(&mut field, |f| async move {
        f.chunk().await.transpose().map(|chunk| (chunk, f))
    })
    .inspect(|chunk| {
        if let Ok(bytes) = chunk {
            hash.update(bytes);
        }
    });
    let size = object_files::store_stream(
        objects.as_ref(),
        &incoming,
        std::pin::pin!(chunks),
        MAX_FILE_BYTES,
        "The library file",
    )
    .await?;
    let sha256 = crate::auth::device::hex(&hash.finalize());
    objects
        .rename(&incoming, &content_path(tenant, &sha256))
        .await
        .map_err(|e| ApiError::internal("storing a library file", e))?;
    Ok(Content {
        file_name,
        sha256,
        size,
    })
}

/// Deletes content `sha256` when no library file of the tenant names it any more. (An upload
/// of the same bytes racing this could lose its content; its sessions then fail with a reason,
/// and uploading it again repairs it.)
async fn collect_garbage(state: &AppState, tenant: TenantId, sha256: &str) {
    match state.store.library_content_in_use(tenant, sha256).await {
        Ok(false) => {
            if let Err(e) = state
                .events
                .objects()
                .delete(&content_path(tenant, sha256))
                .await
            {
                tracing::warn!(sha256, "deleting unused library content: {e}");
            }
        }
        Ok(true) => {}
        Err(e) => tracing::warn!(sha256, "checking library content: {e}"),
    }
}

/// `POST /api/libraryfiles`: 200 with the stored file (MDE's answer); 409 when the name exists
/// and `OverrideIfExists` is not true.
pub async fn upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    mut form: Multipart,
) -> ApiResult<Response> {
    let mut content = None;
    let mut description = None;
    let mut parameters_description = None;
    let mut has_parameters = false;
    let mut replace = false;
    let result: ApiResult<()> = async {
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| bad_form(format!("The form is not valid multipart/form-data: {e}")))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            match name.as_str() {
                "file" if content.is_none() => {
                    content = Some(store_content(&state, caller.tenant, field).await?);
                }
                "Description" => description = Some(text(field, &name).await?),
                "ParametersDescription" => {
                    parameters_description = Some(text(field, &name).await?)
                }
                "HasParameters" => has_parameters = boolean(&text(field, &name).await?, &name)?,
                "OverrideIfExists" => replace = boolean(&text(field, &name).await?, &name)?,
                "file" => return Err(bad_form("The form carries more than one file.")),
                other => {
                    return Err(bad_form(format!(
                        "Unknown form field '{}'; the fields are file, Description, ParametersDescription, HasParameters and OverrideIfExists (case-sensitive).",
                        other.chars().take(60).collect::<String>()
                    )));
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(c) = &content {
            collect_garbage(&state, caller.tenant, &c.sha256).await;
        }
        return Err(e);
    }
    let content = content.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredParameter,
            "The form must carry the file in a field named 'file'.",
        )
    })?;
    let now = OffsetDateTime::now_utc();
    let me = caller.client_id.to_string();
    let file = LibraryFile {
        file_name: content.file_name,
        sha256: content.sha256.clone(),
        description: description.filter(|d| !d.is_empty()),
        creation_time: now,
        last_updated_time: now,
        created_by: me,
        has_parameters,
        parameters_description: parameters_description.filter(|d| !d.is_empty()),
        size: content.size,
    };
    let put = state
        .store
        .put_library_file(&caller.audit(), caller.tenant, file, replace)
        .await;
    let put = match put {
        Ok(p) => p,
        Err(e) => {
            collect_garbage(&state, caller.tenant, &content.sha256).await;
            return Err(e.into());
        }
    };
    match put {
        LibraryPut::Created(file) => Ok(entity_response(StatusCode::OK, &file)),
        LibraryPut::Replaced { file, previous } => {
            if previous.sha256 != file.sha256 {
                collect_garbage(&state, caller.tenant, &previous.sha256).await;
            }
            Ok(entity_response(StatusCode::OK, &file))
        }
        LibraryPut::Exists(existing) => {
            if existing.sha256 != content.sha256 {
                collect_garbage(&state, caller.tenant, &content.sha256).await;
            }
            Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "Library file {} exists already; send OverrideIfExists=true to replace it.",
                    existing.file_name
                ),
            ))
        }
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let deleted = state
        .store
        .delete_library_file(&caller.audit(), caller.tenant, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    collect_garbage(&state, caller.tenant, &deleted.sha256).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /agent/v1/library/{sha256}` (device credential): library content by its hash, as long
/// as a library file of the device's tenant has it.
pub async fn content(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let device = authenticate_device(&state, req.headers()).await?;
    let sha256 = sha256.to_ascii_lowercase();
    let missing = || ApiError::not_found("No library file has this content.");
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(missing());
    }
    if !state
        .store
        .library_content_in_use(device.tenant, &sha256)
        .await?
    {
        return Err(missing());
    }
    object_files::serve(
        &state,
        &content_path(device.tenant, &sha256),
        "application/octet-stream",
        &sha256,
        "The library content",
    )
    .await
}
