//! The MDE error codes (reference §10) and their HTTP statuses.

use serde::Serialize;

/// An MDE error code, as it appears in `{"error":{"code": …}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ErrorCode {
    BadRequest,
    ODataError,
    InvalidInput,
    InvalidRequestBody,
    InvalidHashValue,
    InvalidDomainName,
    InvalidIpAddress,
    InvalidUrl,
    MaximumBatchSizeExceeded,
    MissingRequiredParameter,
    OsPlatformNotSupported,
    ClientVersionNotSupported,
    ActiveRequestAlreadyExists,
    Unauthorized,
    Forbidden,
    DisabledFeature,
    DisallowedOperation,
    NotFound,
    ResourceNotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    InternalServerError,
    ServiceUnavailable,
}

impl ErrorCode {
    /// The HTTP status MDE answers with for this code.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadRequest
            | ODataError
            | InvalidInput
            | InvalidRequestBody
            | InvalidHashValue
            | InvalidDomainName
            | InvalidIpAddress
            | InvalidUrl
            | MaximumBatchSizeExceeded
            | MissingRequiredParameter
            | OsPlatformNotSupported
            | ClientVersionNotSupported
            | ActiveRequestAlreadyExists => 400,
            Unauthorized => 401,
            Forbidden | DisabledFeature | DisallowedOperation => 403,
            NotFound | ResourceNotFound => 404,
            MethodNotAllowed => 405,
            Conflict => 409,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            TooManyRequests => 429,
            InternalServerError => 500,
            ServiceUnavailable => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "BadRequest",
            ODataError => "ODataError",
            InvalidInput => "InvalidInput",
            InvalidRequestBody => "InvalidRequestBody",
            InvalidHashValue => "InvalidHashValue",
            InvalidDomainName => "InvalidDomainName",
            InvalidIpAddress => "InvalidIpAddress",
            InvalidUrl => "InvalidUrl",
            MaximumBatchSizeExceeded => "MaximumBatchSizeExceeded",
            MissingRequiredParameter => "MissingRequiredParameter",
            OsPlatformNotSupported => "OsPlatformNotSupported",
            ClientVersionNotSupported => "ClientVersionNotSupported",
            ActiveRequestAlreadyExists => "ActiveRequestAlreadyExists",
            Unauthorized => "Unauthorized",
            Forbidden => "Forbidden",
            DisabledFeature => "DisabledFeature",
            DisallowedOperation => "DisallowedOperation",
            NotFound => "NotFound",
            ResourceNotFound => "ResourceNotFound",
            MethodNotAllowed => "MethodNotAllowed",
            Conflict => "Conflict",
            PayloadTooLarge => "PayloadTooLarge",
            UnsupportedMediaType => "UnsupportedMediaType",
            TooManyRequests => "TooManyRequests",
            InternalServerError => "InternalServerError",
            ServiceUnavailable => "ServiceUnavailable",
        }
    }
}

/// A change refused by a domain rule (an illegal status transition, a determination that does
/// not go with the classification…): answered with `code` and `message`, nothing written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Rejection::new(ErrorCode::BadRequest, message)
    }
}
