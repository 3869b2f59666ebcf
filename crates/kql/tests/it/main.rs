//! Integration tests for the KQL parser, one submodule per area.

mod errors;
mod examples;
mod expressions;
mod lexer;
mod operators;
mod robustness;
mod statements;

use rampart_kql::ast::*;

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
    }
}
