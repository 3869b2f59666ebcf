//! The error body of every refusal: `{"error": {"code", "message", "target"}}`, `target` being
//! the server's correlation id.

use serde::{Deserialize, Serialize};

/// The body of a 4xx/5xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, as the server words it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// An MDE error code such as `InvalidInput` or `Unauthorized`.
    pub code: String,
    pub message: String,
    /// The correlation id of the request, to find it in the server's log.
    #[serde(default)]
    pub target: Option<String>,
}

impl std::fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(t) = &self.target {
            write!(f, " (correlation id {t})")?;
        }
        Ok(())
    }
}
