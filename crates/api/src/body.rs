//! Reading request bodies: size limit, JSON with the failing field named, MDE errors throughout.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use rampart_core::ErrorCode;
use serde::de::DeserializeOwned;

/// A JSON body; a bad one is answered 400 `InvalidRequestBody` naming the field at fault, a too
/// large one 413 (the limit is the router's `DefaultBodyLimit`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.is_empty() && !ct.to_ascii_lowercase().contains("json") {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("Content-Type '{ct}' is not JSON"),
            ));
        }
        let bytes = read_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads the whole body under the router's size limit.
pub async fn read_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rej| {
        if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "The request body is larger than this server accepts.",
            )
        } else {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("The request body could not be read: {rej}"),
            )
        }
    })
}

/// Parses JSON, naming the path of the first field that does not fit (`status: unknown variant…`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequestBody,
            "The request body is empty; a JSON object is expected.",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if path.is_empty() || path == "." {
            format!("The request body is not valid: {inner}")
        } else {
            format!("Field '{path}' is not valid: {inner}")
        };
        ApiError::new(ErrorCode::InvalidRequestBody, msg)
    })
}

#[cfg(test)]
mod tests {
    use super::parse_json;
    use rampart_core::ErrorCode;
    use rampart_core::alert::AlertStatus;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Update {
        status: Option<AlertStatus>,
        comment: Option<String>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<Update>(br#"{"status":"Closed"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequestBody);
        assert!(
            e.message.contains("'status'") && e.message.contains("Closed"),
            "{}",
            e.message
        );
        let e = parse_json::<Update>(br#"{"comment": 5}"#).unwrap_err();
        assert!(e.message.contains("'comment'"), "{}", e.message);
        let e = parse_json::<Update>(b"{oops").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequestBody);
        assert!(
            parse_json::<Update>(b"")
                .unwrap_err()
                .message
                .contains("empty")
        );
        assert!(parse_json::<Update>(br#"{"status":"Resolved"}"#).is_ok());
    }
}
