//! Integration tests for the KQL parser and binder, one submodule per area.

mod bind_errors;
mod bind_ir;
mod bind_robustness;
mod bind_schemas;
mod bind_scopes;
mod differential;
mod errors;
mod examples;
mod expressions;
mod hunt_data;
mod hunt_dynamic;
mod hunt_external;
mod hunt_filters;
mod hunt_functions;
mod hunt_joins;
mod hunt_limits;
mod hunt_store;
mod hunt_summarize;
mod lexer;
mod operators;
mod robustness;
mod statements;

use rampart_kql::ast::*;
use rampart_kql::bind::{BindError, BoundQuery, HuntingCatalog, Rel};

/// Parses or fails the test with the parser's own message.
pub fn parse_ok(text: &str) -> Query {
    match rampart_kql::parse(text) {
        Ok(query) => query,
        Err(error) => panic!("failed to parse {text:?}: {error}"),
    }
}

/// The only tabular statement of a query.
pub fn pipeline(text: &str) -> TabularExpr {
    let query = parse_ok(text);
    match query.statements.into_iter().last() {
        Some(Statement::Tabular(tabular)) => tabular,
        other => panic!("expected a tabular statement, got {other:?}"),
    }
}

/// The single operator of `T | <op>`.
pub fn single_op(op_text: &str) -> Operator {
    let tabular = pipeline(&format!("T | {op_text}"));
    assert_eq!(tabular.operators.len(), 1, "{op_text}");
    tabular.operators.into_iter().next().expect("one operator")
}

/// The predicate of `T | where <expr>`.
pub fn expr(text: &str) -> Expr {
    match single_op(&format!("where {text}")) {
        Operator::Where(expr) => expr,
        other => panic!("expected where, got {other:?}"),
    }
}

/// Compact rendering of an expression tree, for precedence assertions.
pub fn sexpr(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Literal(Literal::Long(v)) => v.to_string(),
        ExprKind::Literal(Literal::String(s)) => format!("{s:?}"),
        ExprKind::Literal(other) => format!("{other:?}"),
        ExprKind::Name(name) => name.text.clone(),
        ExprKind::Star => "*".into(),
        ExprKind::Member { target, name } => format!("{}.{}", sexpr(target), name.text),
        ExprKind::Index { target, index } => format!("{}[{}]", sexpr(target), sexpr(index)),
        ExprKind::Call(call) => format!(
            "{}({})",
            call.name.text,
            call.args.iter().map(sexpr).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Unary { op, operand } => format!("({op:?} {})", sexpr(operand)),
        ExprKind::Binary { op, left, right } => {
            format!("({op:?} {} {})", sexpr(left), sexpr(right))
        }
        ExprKind::List { op, left, items } => format!(
            "({op:?} {} [{}])",
            sexpr(left),
            items.iter().map(sexpr).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Between {
            negated,
            left,
            low,
            high,
        } => format!(
            "({}between {} {} {})",
            if *negated { "!" } else { "" },
            sexpr(left),
            sexpr(low),
            sexpr(high)
        ),
        ExprKind::Tabular(_) => "<tabular>".into(),
        ExprKind::NamedArgument { name, value } => format!("{}={}", name.text, sexpr(value)),
    }
}

/// Parses and binds against the advanced-hunting tables, or fails the test.
pub fn bind_ok(text: &str) -> BoundQuery {
    match rampart_kql::check(text, &HuntingCatalog) {
        Ok(bound) => bound,
        Err(error) => panic!("failed to bind {text:?}: {error}"),
    }
}

/// The result of the last tabular statement.
pub fn bound_rel(text: &str) -> Rel {
    match bind_ok(text).results.pop() {
        Some(rel) => rel,
        None => panic!("{text:?} has no tabular statement"),
    }
}

/// `name:type` of each output column of the last statement.
pub fn columns(text: &str) -> Vec<String> {
    bound_rel(text)
        .schema
        .columns
        .iter()
        .map(|c| format!("{}:{}", c.name, c.ty))
        .collect()
}

/// Parses (must succeed) and binds (must fail) against the advanced-hunting tables.
pub fn bind_error(text: &str) -> BindError {
    let query = parse_ok(text);
    match rampart_kql::bind(
        &query,
        &HuntingCatalog,
        &rampart_kql::QueryParameters::lenient(),
    ) {
        Ok(bound) => panic!(
            "expected a bind error for {text:?}, got {:?}",
            bound.results
        ),
        Err(error) => error,
    }
}
