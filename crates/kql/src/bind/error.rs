//! Binding errors, located like the parser's so a client shows both the same way.

use crate::error::ParseError;
use crate::span::{Span, line_column};

/// A name or type error: what is wrong, and the line and column where it starts.
///
/// Displays as `line L, column C: message`, e.g.
/// `line 2, column 9: column 'ProcessCmd' not found in DeviceProcessEvents; did you mean 'ProcessCommandLine'?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct BindError {
    pub message: String,
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    pub span: Span,
}

impl BindError {
    pub fn new(text: &str, span: Span, message: impl Into<String>) -> Self {
        let (line, column) = line_column(text, span.start);
        BindError {
            message: message.into(),
            line,
            column,
            span,
        }
    }
}

/// What [`crate::check`] reports: the query either does not parse or does not bind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Bind(#[from] BindError),
}

impl CheckError {
    pub fn message(&self) -> &str {
        match self {
            CheckError::Parse(e) => &e.message,
            CheckError::Bind(e) => &e.message,
        }
    }

    pub fn line(&self) -> usize {
        match self {
            CheckError::Parse(e) => e.line,
            CheckError::Bind(e) => e.line,
        }
    }

    pub fn column(&self) -> usize {
        match self {
            CheckError::Parse(e) => e.column,
            CheckError::Bind(e) => e.column,
        }
    }
}
