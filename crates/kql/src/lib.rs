//! `rampart-kql`: the front end of Rampart's KQL (Kusto Query Language) engine.
//!
//! It turns query text into a syntax tree and nothing more: no name resolution,
//! type checking or execution happens here. The accepted language is the tabular
//! subset described in the project's KQL reference (lexical structure, statements,
//! tabular operators and scalar operators).
//!
//! Module map:
//! - [`span`]: byte spans and their 1-based line/column translation;
//! - [`error`]: [`ParseError`], the one error type (message + line + column);
//! - [`lexer`]: `logos`-based tokenizer producing cooked [`lexer::Token`]s;
//! - [`ast`]: the syntax tree ([`Query`], statements, operators, expressions);
//! - `parser`: hand-written recursive descent for statements and operators,
//!   plus a Pratt parser for scalar expressions.
//!
//! ```
//! let query = rampart_kql::parse("T | where x > 1 | take 5").unwrap();
//! assert_eq!(query.statements.len(), 1);
//! ```

pub mod ast;
pub mod error;
pub mod lexer;
mod parser;
pub mod span;

pub use ast::Query;
pub use error::ParseError;

/// Parses a whole KQL query (one or more `;`-separated statements).
///
/// Never panics: malformed input yields a [`ParseError`] naming what was expected,
/// what was found, and where.
pub fn parse(text: &str) -> Result<Query, ParseError> {
    parser::parse_query(text)
}
