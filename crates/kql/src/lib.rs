//! `rampart-kql`: Rampart's KQL (Kusto Query Language) engine.
//!
//! Three stages, each usable on its own:
//! - parsing turns query text into a syntax tree ([`parse`]), with no knowledge of
//!   tables or types;
//! - binding ([`bind()`], or [`check`] for text) resolves every name against a
//!   [`Catalog`] and the query's own `let`s, checks types by KQL's rules, and produces
//!   the typed, resolved IR of [`bind::ir`];
//! - planning and execution ([`run`], or [`plan_only`]) lower that IR onto DataFusion
//!   logical plans and run them against the tables of a `SessionContext`, under
//!   [`Limits`], returning a [`HuntResult`].
//!
//! The split exists because the two fail differently and are wanted separately: an
//! editor needs the syntax tree of a query that does not bind yet, and
//! `rampart hunt --check` needs binding errors (with line, column and "did you mean")
//! without running anything. The accepted language is the tabular subset described in
//! the project's KQL reference.
//!
//! Module map:
//! - [`span`]: byte spans and their 1-based line/column translation;
//! - [`error`]: [`ParseError`] (message + line + column);
//! - [`lexer`]: `logos`-based tokenizer producing cooked [`lexer::Token`]s;
//! - [`ast`]: the syntax tree ([`Query`], statements, operators, expressions);
//! - `parser`: hand-written recursive descent for statements and operators,
//!   plus a Pratt parser for scalar expressions;
//! - [`bind`](mod@bind): name resolution and type checking; its own doc maps its modules;
//! - [`plan`]: the planner and executor (KQL on Arrow and DataFusion); its own doc maps
//!   its modules and the representation of KQL values. Behind the `plan` feature (on by
//!   default): without it the crate is the front end alone, free of DataFusion.
//!
//! ```
//! let query = rampart_kql::parse("T | where x > 1 | take 5").unwrap();
//! assert_eq!(query.statements.len(), 1);
//!
//! let bound = rampart_kql::check(
//!     "DeviceProcessEvents | summarize count() by DeviceName",
//!     &rampart_kql::HuntingCatalog,
//! )
//! .unwrap();
//! let names: Vec<_> = bound.results[0].schema.columns.iter().map(|c| c.name.as_str()).collect();
//! assert_eq!(names, ["DeviceName", "count_"]);
//! ```

pub mod ast;
pub mod bind;
pub mod error;
pub mod lexer;
mod parser;
#[cfg(feature = "plan")]
pub mod plan;
pub mod span;

pub use ast::Query;
pub use bind::{
    BindError, BoundQuery, Catalog, CheckError, HuntingCatalog, QueryParameters, bind, check,
};
pub use error::ParseError;
#[cfg(feature = "plan")]
pub use plan::{
    ExternalFiles, HuntError, HuntResult, Limits, PlanError, SessionCatalog, plan_only, run,
    run_with_files,
};

/// Parses a whole KQL query (one or more `;`-separated statements).
///
/// Never panics: malformed input yields a [`ParseError`] naming what was expected,
/// what was found, and where.
pub fn parse(text: &str) -> Result<Query, ParseError> {
    parser::parse_query(text)
}
