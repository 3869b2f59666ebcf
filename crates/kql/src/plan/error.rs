//! What running a query can fail with. Query errors (the text does not parse or bind, or
//! uses something the planner does not support) keep their line and column, so a client
//! shows them like the parser's; execution errors are the engine's.

use crate::bind::BindError;
use crate::error::ParseError;
use crate::span::{Span, line_column};
use std::fmt;
use std::time::Duration;

/// A query the planner cannot lower: an unsupported operator or function, or an invalid
/// constant (a `datetime(...)` outside the nanosecond range). Located when the IR node
/// has a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub message: String,
    /// 1-based line and column of the offending text, when known.
    pub location: Option<(usize, usize)>,
}

impl PlanError {
    pub fn new(message: impl Into<String>) -> Self {
        PlanError {
            message: message.into(),
            location: None,
        }
    }

    pub fn at(text: &str, span: Span, message: impl Into<String>) -> Self {
        PlanError {
            message: message.into(),
            location: Some(line_column(text, span.start)),
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(f, "line {line}, column {column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PlanError {}

impl From<datafusion::error::DataFusionError> for PlanError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        PlanError::new(format!("internal planning error: {error}"))
    }
}

/// Why a hunting query produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HuntError {
    /// The text is not KQL (line and column inside).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A name or type error (line and column inside).
    #[error(transparent)]
    Bind(#[from] BindError),
    /// Valid KQL the planner cannot run.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The query has no tabular statement, so there is nothing to return.
    #[error("the query has no tabular statement to return")]
    NoResult,
    /// The engine failed while running the query (bad regex at run time, ...).
    #[error("query failed: {0}")]
    Execution(String),
    /// The query needed more memory than its limit.
    #[error("query exceeded its memory limit: {0}")]
    MemoryLimit(String),
    /// The query ran longer than its time limit and was cancelled.
    #[error("query exceeded its time limit of {0:?}")]
    Timeout(Duration),
}

impl HuntError {
    /// Whether the error is in the query itself (the caller should fix the text) rather
    /// than in running it.
    pub fn is_query_error(&self) -> bool {
        matches!(
            self,
            HuntError::Parse(_) | HuntError::Bind(_) | HuntError::Plan(_) | HuntError::NoResult
        )
    }

    /// 1-based line and column of a query error, when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            HuntError::Parse(e) => Some((e.line, e.column)),
            HuntError::Bind(e) => Some((e.line, e.column)),
            HuntError::Plan(e) => e.location,
            _ => None,
        }
    }

    pub(crate) fn from_datafusion(error: datafusion::error::DataFusionError) -> HuntError {
        use datafusion::error::DataFusionError as E;
        match error.find_root() {
            E::ResourcesExhausted(message) => HuntError::MemoryLimit(message.clone()),
            E::Execution(message) => HuntError::Execution(message.clone()),
            other => HuntError::Execution(other.to_string()),
        }
    }
}
