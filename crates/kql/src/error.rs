//! The single error type of the crate: what went wrong and where.

use crate::span::{Span, line_column};

/// A lexing or parsing failure, located at the offending token.
///
/// Displays as `line L, column C: message`, e.g.
/// `line 2, column 14: expected an expression after '==', found '|'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub message: String,
    /// 1-based line of the offending token.
    pub line: usize,
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    pub span: Span,
}

impl ParseError {
    pub fn new(text: &str, span: Span, message: impl Into<String>) -> Self {
        let (line, column) = line_column(text, span.start);
        ParseError {
            message: message.into(),
            line,
            column,
            span,
        }
    }
}
