//! The MDE error body `{"error":{"code","message","target"}}` and the request correlation id.
//!
//! Every request gets a correlation id (a GUID) before anything else runs; it is logged with the
//! request, returned in the `x-correlation-id` header, and put in `target` of any error body, so
//! a partner's bug report can be matched to the server log line.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rampart_core::ErrorCode;
use rampart_core::odata::ODataError;
use rampart_store::StoreError;

tokio::task_local! {
    /// The correlation id of the request the current task is serving.
    pub static CORRELATION_ID: String;
}

/// The current request's correlation id, or a fresh one outside a request.
pub fn correlation_id() -> String {
    CORRELATION_ID
        .try_with(|c| c.clone())
        .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string())
}

/// An error answered in MDE's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::ResourceNotFound, what)
    }

    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        // The detail goes to the log (with the correlation id), not to the client.
        tracing::error!(correlation_id = %correlation_id(), "{context}: {err}");
        ApiError::new(
            ErrorCode::InternalServerError,
            "An internal error occurred; quote the correlation id in target.",
        )
    }
}

impl From<ODataError> for ApiError {
    fn from(e: ODataError) -> Self {
        let msg = if e.message.contains(&e.target) {
            e.message
        } else {
            format!("{}: {}", e.target, e.message)
        };
        ApiError::new(ErrorCode::ODataError, msg)
    }
}

impl From<rampart_core::Rejection> for ApiError {
    fn from(r: rampart_core::Rejection) -> Self {
        ApiError::new(r.code, r.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(r) => r.into(),
            StoreError::OData(o) => o.into(),
            StoreError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            other => ApiError::internal("state store", other),
        }
    }
}

/// The JSON error body with the given correlation id.
pub fn error_body(code: ErrorCode, message: &str, correlation: &str) -> String {
    serde_json::json!({ "error": { "code": code.as_str(), "message": message, "target": correlation } }).to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let cid = correlation_id();
        if status.is_server_error() {
            tracing::warn!(correlation_id = %cid, code = self.code.as_str(), "{}", self.message);
        } else {
            tracing::info!(correlation_id = %cid, code = self.code.as_str(), "{}", self.message);
        }
        let mut resp = (status, error_body(self.code, &self.message, &cid)).into_response();
        resp.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
