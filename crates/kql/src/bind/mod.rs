//! The binder: name resolution and type checking of a parsed query, producing the
//! typed, resolved form of [`ir`] that the planner lowers onto DataFusion.
//!
//! Why a separate stage rather than checking while planning: KQL's rules about names
//! (summarize's `count_`/`sum_X`, `arg_max(*)`, join's `Key1`, union's `x_long`) and
//! types (no string/number coercion, datetime arithmetic, `iff` unification) are the
//! language's, not DataFusion's. Settling them here, against the KQL type system,
//! gives errors in KQL terms with line and column, lets `rampart hunt --check` validate
//! a query without an engine, and leaves the planner a mechanical translation.
//!
//! Module map:
//! - [`catalog`]: the [`Catalog`] trait (tables by name) and the advanced-hunting one;
//! - [`ir`]: the bound form ([`BoundQuery`], [`Rel`], [`BoundExpr`]);
//! - `scope`: `let`/parameter/`as` names, lexically scoped;
//! - `types`: operator typing rules (promotion, datetime arithmetic, comparisons);
//! - `functions`: the function catalog (signatures, aliases, aggregate naming);
//! - `names`: output column naming and wildcards; `suggest`: "did you mean";
//! - `expr`: scalar expressions and operators; `calls`: function calls and aggregates in
//!   expressions; `operators`: the row-wise pipeline operators;
//!   `summarize`: summarize, count, make-series; `join`: join and lookup; `union`:
//!   union and search; `expand`: mv-expand, mv-apply, parse; `sources`: tables,
//!   `datatable`, `print`, `range`, functions; `external`: `externaldata`; `plugins`:
//!   `evaluate`.

mod calls;
pub mod catalog;
mod error;
mod expand;
mod expr;
mod external;
mod functions;
pub mod ir;
mod join;
mod names;
mod operators;
mod plugins;
mod scope;
mod sources;
mod suggest;
mod summarize;
mod types;
mod union;

pub use catalog::{Catalog, HuntingCatalog, StaticCatalog};
pub use error::{BindError, CheckError};
pub use ir::*;

use crate::ast::{self, Literal, Query, ScalarType, Statement};
use crate::span::Span;
use scope::{Binding, Scope};
use std::collections::BTreeMap;

/// Values for `declare query_parameters(...)`, supplied by the caller (the hunting API
/// takes them beside the query text).
#[derive(Debug, Clone, Default)]
pub struct QueryParameters {
    values: BTreeMap<String, Literal>,
    lenient: bool,
}

impl QueryParameters {
    pub fn new() -> Self {
        QueryParameters::default()
    }

    /// Adds a value for the declared parameter `name`.
    pub fn with(mut self, name: &str, value: Literal) -> Self {
        self.values.insert(name.to_string(), value);
        self
    }

    /// For checking a query without values: a declared parameter without a value or a
    /// default binds as an empty value of its type instead of failing.
    pub fn lenient() -> Self {
        QueryParameters {
            values: BTreeMap::new(),
            lenient: true,
        }
    }
}

/// Binds a parsed query against `catalog`.
///
/// Never panics; the first problem found is returned with its location.
pub fn bind(
    query: &Query,
    catalog: &dyn Catalog,
    params: &QueryParameters,
) -> Result<BoundQuery, BindError> {
    let mut binder = Binder::new(&query.text, catalog, params);
    binder.query(query)
}

/// Parses and binds `text`, with query parameters left unvalued: what
/// `rampart hunt --check` needs to say whether a query would run.
pub fn check(text: &str, catalog: &dyn Catalog) -> Result<BoundQuery, CheckError> {
    let query = crate::parse(text)?;
    Ok(bind(&query, catalog, &QueryParameters::lenient())?)
}

/// How many IR nodes inlining (`let` references, function calls) may add. A `let` is
/// re-evaluated at each reference, so a chain of lets each using the previous twice
/// doubles per line; this keeps hostile queries from exhausting memory.
const INLINE_BUDGET: usize = 1_000_000;

/// Nesting (expressions, subqueries, function calls) accepted before giving up.
const MAX_DEPTH: usize = 200;

/// Longest chain of operators in the bound tree. The parser keeps a pipeline flat, but
/// the IR nests each operator in the next, and recursive walks (including drop) of a
/// 50,000-operator chain overflow a 2 MiB stack. Hunting queries use tens.
const MAX_HEIGHT: usize = 1000;

/// Stack bytes the binder may use below [`bind`]'s frame; see the parser's note on why a
/// depth count alone is not enough in debug builds.
const STACK_BUDGET: usize = 1024 * 1024;

fn stack_position() -> usize {
    let marker = 0u8;
    std::ptr::addr_of!(marker) as usize
}

/// The row context an expression is bound in.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'s> {
    /// Columns visible by name; `None` for constant contexts (let values, `print`).
    pub schema: Option<&'s Schema>,
    /// The catalog table the columns are, for messages.
    pub table: Option<&'s str>,
    /// Identity of the row context (see [`Binding::Scalar`]).
    pub row: Option<u64>,
    /// Window functions allowed.
    pub serialized: bool,
}

impl Ctx<'_> {
    pub const CONSTANT: Ctx<'static> = Ctx {
        schema: None,
        table: None,
        row: None,
        serialized: false,
    };
}

/// Aggregates collected while binding a summarize item list.
pub(crate) struct AggState {
    /// Number of key columns before the first aggregate output.
    pub base: usize,
    pub calls: Vec<AggregateCall>,
    /// Outputs allocated so far.
    pub outputs: usize,
    /// Binding an aggregate's arguments (row columns allowed, aggregates not).
    pub inside: bool,
}

/// Where aggregates are being refused, for the message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggBan {
    Anywhere,
    By,
}

pub(crate) struct Binder<'a> {
    text: &'a str,
    catalog: &'a dyn Catalog,
    params: &'a QueryParameters,
    scope: Scope,
    materialized: Vec<Rel>,
    inlined: usize,
    next_row: u64,
    agg: Option<AggState>,
    agg_ban: AggBan,
    depth: usize,
    /// Function calls currently being expanded (nested).
    calls: usize,
    stack_base: usize,
}

/// A function call or name that may turn out scalar or tabular.
pub(crate) enum Bound {
    Scalar(BoundExpr),
    Tabular(Rel),
}

impl<'a> Binder<'a> {
    fn new(text: &'a str, catalog: &'a dyn Catalog, params: &'a QueryParameters) -> Self {
        Binder {
            text,
            catalog,
            params,
            scope: Scope::default(),
            materialized: Vec::new(),
            inlined: 0,
            next_row: 0,
            agg: None,
            agg_ban: AggBan::Anywhere,
            depth: 0,
            calls: 0,
            stack_base: stack_position(),
        }
    }

    // ---- plumbing -------------------------------------------------------------

    pub(crate) fn error(&self, span: Span, message: impl Into<String>) -> BindError {
        BindError::new(self.text, span, message)
    }

    /// The query text of a span, shortened, for messages.
    pub(crate) fn snippet(&self, span: Span) -> String {
        let text = self.text.get(span.start..span.end).unwrap_or("?");
        let short: String = text.chars().take(40).collect();
        if short.len() < text.len() {
            format!("{short}...")
        } else {
            short
        }
    }

    pub(crate) fn enter(&mut self, span: Span) -> Result<(), BindError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH || stack_position().abs_diff(self.stack_base) > STACK_BUDGET {
            return Err(self.error(span, "query is nested too deeply"));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Accounts for IR copied by inlining.
    pub(crate) fn charge(&mut self, weight: usize, span: Span) -> Result<(), BindError> {
        self.inlined = self.inlined.saturating_add(weight);
        if self.inlined > INLINE_BUDGET {
            return Err(self.error(
                span,
                "query is too large once its let references and function calls are expanded",
            ));
        }
        Ok(())
    }

    /// A fresh row context over `rel`'s columns.
    pub(crate) fn row_ctx<'r>(&mut self, rel: &'r Rel) -> Ctx<'r> {
        self.next_row += 1;
        Ctx {
            schema: Some(&rel.schema),
            table: rel.table.as_deref(),
            row: Some(self.next_row),
            serialized: rel.serialized,
        }
    }

    // ---- statements -----------------------------------------------------------

    fn query(&mut self, query: &Query) -> Result<BoundQuery, BindError> {
        let mut results = Vec::new();
        for statement in &query.statements {
            match statement {
                Statement::Let(statement) => self.let_statement(statement, Ctx::CONSTANT)?,
                Statement::Tabular(tabular) => results.push(self.tabular(tabular)?),
                // Options such as `notruncation` or `query_now` are the executor's business.
                Statement::Set { .. } => {}
                Statement::DeclareQueryParameters(params) => self.declare(params)?,
            }
        }
        Ok(BoundQuery {
            results,
            materialized: std::mem::take(&mut self.materialized),
        })
    }

    fn declare(&mut self, params: &[ast::Param]) -> Result<(), BindError> {
        for param in params {
            let ast::ParamType::Scalar(ty) = param.ty else {
                return Err(self.error(
                    param.name.span,
                    format!(
                        "query parameter '{}' must have a scalar type",
                        param.name.text
                    ),
                ));
            };
            let span = param.name.span;
            let value = match (self.params.values.get(&param.name.text), &param.default) {
                (Some(value), _) => {
                    let supplied = BoundExpr::literal(value.clone(), span);
                    if !types::assignable(supplied.ty, ty) {
                        return Err(self.error(
                            span,
                            format!(
                                "query parameter '{}' is declared {ty} but its value is {}",
                                param.name.text,
                                supplied.ty.with_article()
                            ),
                        ));
                    }
                    supplied.cast_to(ty)
                }
                (None, Some(default)) => self.constant_of_type(default, ty, &param.name.text)?,
                (None, None) if self.params.lenient => {
                    BoundExpr::literal(types::empty_literal(ty), span)
                }
                (None, None) => {
                    return Err(self.error(
                        span,
                        format!(
                            "query parameter '{}' ({ty}) has no value and no default",
                            param.name.text
                        ),
                    ));
                }
            };
            self.scope = self.scope.with(
                &param.name.text,
                Binding::Scalar {
                    expr: value,
                    row: None,
                },
            );
        }
        Ok(())
    }

    /// A parameter default: a constant assignable to `ty`.
    fn constant_of_type(
        &mut self,
        expr: &ast::Expr,
        ty: ScalarType,
        name: &str,
    ) -> Result<BoundExpr, BindError> {
        let bound = self.expr(expr, Ctx::CONSTANT)?;
        if !types::assignable(bound.ty, ty) {
            return Err(self.error(
                expr.span,
                format!(
                    "the default of '{name}' must be {}, got {}",
                    ty.with_article(),
                    bound.ty
                ),
            ));
        }
        Ok(bound.cast_to(ty))
    }

    /// `let name = value;` in the current scope. `ctx` is the row context of the
    /// enclosing function call, if any (function parameters may read its row).
    pub(crate) fn let_statement(
        &mut self,
        statement: &ast::LetStatement,
        ctx: Ctx<'_>,
    ) -> Result<(), BindError> {
        let binding = match &statement.value {
            ast::LetValue::Scalar(expr) => match self.let_value(expr, ctx)? {
                Bound::Tabular(rel) => Binding::Tabular(rel),
                Bound::Scalar(expr) => {
                    let row = if expr.is_constant() { None } else { ctx.row };
                    Binding::Scalar { expr, row }
                }
            },
            ast::LetValue::Tabular(tabular) => Binding::Tabular(self.tabular(tabular)?),
            ast::LetValue::Function(def) => Binding::Function(std::rc::Rc::new(scope::Function {
                name: statement.name.text.clone(),
                def: def.clone(),
                scope: self.scope.clone(),
            })),
            ast::LetValue::Materialize(tabular) => {
                let rel = self.tabular(tabular)?;
                let id = self.materialized.len();
                let shared = Rel::new(RelKind::Materialized { id }, rel.schema.clone())
                    .serialized(rel.serialized)
                    .with_table(rel.table.clone());
                self.materialized.push(rel);
                Binding::Tabular(shared)
            }
        };
        self.scope = self.scope.with(&statement.name.text, binding);
        Ok(())
    }

    /// `let X = <expr>`: a bare name or call may be a table (`let P = DeviceProcessEvents;`).
    fn let_value(&mut self, expr: &ast::Expr, ctx: Ctx<'_>) -> Result<Bound, BindError> {
        match &expr.kind {
            ast::ExprKind::Name(name) => {
                if let Some(rel) = self.tabular_name(name)? {
                    return Ok(Bound::Tabular(rel));
                }
            }
            ast::ExprKind::Call(call) => {
                if let Some(Binding::Function(function)) = self.scope.lookup(&call.name.text)
                    && function.returns_table()
                {
                    let function = function.clone();
                    return self.invoke(&function, None, &call.args, call.span, ctx);
                }
            }
            _ => {}
        }
        Ok(Bound::Scalar(self.expr(expr, ctx)?))
    }

    /// A tabular expression: source, then each operator over the result so far.
    pub(crate) fn tabular(&mut self, tabular: &ast::TabularExpr) -> Result<Rel, BindError> {
        self.enter(tabular.span)?;
        // A subquery inside a summarize item is not itself aggregating.
        let outer_agg = self.agg.take();
        let outer_ban = std::mem::replace(&mut self.agg_ban, AggBan::Anywhere);
        let result = self.pipeline(tabular);
        self.agg = outer_agg;
        self.agg_ban = outer_ban;
        self.leave();
        result
    }

    fn pipeline(&mut self, tabular: &ast::TabularExpr) -> Result<Rel, BindError> {
        let mut rel = self.source(&tabular.source, tabular.span)?;
        for operator in &tabular.operators {
            rel = self.operator(rel, operator, tabular.span)?;
            self.check_height(&rel, tabular.span)?;
        }
        Ok(rel)
    }

    pub(crate) fn check_height(&self, rel: &Rel, span: Span) -> Result<(), BindError> {
        if rel.height > MAX_HEIGHT {
            return Err(self.error(
                span,
                format!("query has more than {MAX_HEIGHT} operators in a chain"),
            ));
        }
        Ok(())
    }

    /// Names visible as columns or scalars, for "did you mean".
    pub(crate) fn scalar_candidates(&self, ctx: Ctx<'_>) -> Vec<String> {
        let mut names: Vec<String> = ctx
            .schema
            .map(|s| s.columns.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        for (name, binding) in self.scope.visible() {
            if matches!(binding, Binding::Scalar { .. }) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// Names visible as tables, for "did you mean".
    pub(crate) fn table_candidates(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .scope
            .visible()
            .into_iter()
            .filter(|(_, b)| b.is_tabular())
            .map(|(n, _)| n.to_string())
            .collect();
        names.extend(self.catalog.table_names());
        names
    }

    /// "column 'X' not found in T; did you mean 'Y'?"
    pub(crate) fn column_not_found(&self, name: &ast::Name, ctx: Ctx<'_>) -> BindError {
        let candidates = self.scalar_candidates(ctx);
        let hint = suggest::hint(&name.text, candidates.iter().map(String::as_str));
        let place = match ctx.table {
            Some(table) => format!(" in {table}"),
            None => String::new(),
        };
        self.error(
            name.span,
            format!("column '{}' not found{place}{hint}", name.text),
        )
    }
}
