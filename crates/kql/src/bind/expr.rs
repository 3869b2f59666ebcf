//! Scalar expressions: names, dynamic paths, operators, lists, `between`.
//!
//! Operand conversions the service does implicitly are made explicit here (numeric
//! widening as [`BoundExprKind::Cast`], string operators' `tostring`), so the planner
//! never has to rediscover the typing rules.

use super::scope::Binding;
use super::types::{self, OrderingError};
use super::{Binder, Ctx, suggest};
use super::{BoundExpr, BoundExprKind, ListItem, Rel};
use crate::ast::{self, BinaryOp, ListOp, Literal, ScalarType, UnaryOp};
use crate::bind::error::BindError;
use crate::span::Span;

use ScalarType as T;

/// A type error found while typing an operator: where, and what.
type TypeError = (Span, String);

/// Wraps a non-string operand in `tostring` (string operators work on string forms).
pub(crate) fn stringify(expr: BoundExpr) -> BoundExpr {
    if matches!(expr.ty, T::String | T::Dynamic) {
        return expr;
    }
    let span = expr.span;
    BoundExpr::new(
        BoundExprKind::Call {
            function: "tostring",
            args: vec![expr],
        },
        T::String,
        span,
    )
}

fn binary_node(
    op: BinaryOp,
    left: BoundExpr,
    right: BoundExpr,
    ty: ScalarType,
    span: Span,
) -> BoundExpr {
    BoundExpr::new(
        BoundExprKind::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        },
        ty,
        span,
    )
}

/// Types `left op right` (§2, §5), inserting conversions.
pub(crate) fn typed_binary(
    op: BinaryOp,
    left: BoundExpr,
    right: BoundExpr,
    span: Span,
) -> Result<BoundExpr, TypeError> {
    use BinaryOp::*;
    let symbol = types::operator_text(op);
    match op {
        And | Or => {
            for side in [&left, &right] {
                if !matches!(side.ty, T::Bool | T::Dynamic) {
                    return Err((
                        side.span,
                        format!("'{symbol}' needs bool operands, got {}", side.ty),
                    ));
                }
            }
            Ok(binary_node(op, left, right, T::Bool, span))
        }
        Eq | NotEq => match types::equality(left.ty, right.ty) {
            Some(typed) => Ok(converted(op, left, right, typed, span)),
            None => Err((
                span,
                format!(
                    "cannot compare {} with {} using '{symbol}'",
                    left.ty, right.ty
                ),
            )),
        },
        Lt | Le | Gt | Ge => match types::ordering(left.ty, right.ty) {
            Ok(typed) => Ok(converted(op, left, right, typed, span)),
            Err(OrderingError::Strings) => Err((
                span,
                format!("'{symbol}' cannot compare strings; use strcmp()"),
            )),
            Err(OrderingError::Incompatible) => Err((
                span,
                format!(
                    "cannot compare {} with {} using '{symbol}'",
                    left.ty, right.ty
                ),
            )),
        },
        Add | Sub | Mul | Div | Mod => match types::arithmetic(op, left.ty, right.ty) {
            Some(typed) => Ok(converted(op, left, right, typed, span)),
            None => {
                let hint = if op == Add && left.ty == T::String && right.ty == T::String {
                    "; use strcat() to join strings"
                } else {
                    ""
                };
                Err((
                    span,
                    format!(
                        "operator '{symbol}' cannot be applied to {} and {}{hint}",
                        left.ty, right.ty
                    ),
                ))
            }
        },
        SearchColumn => Err((
            span,
            "'Column:\"term\"' is only allowed in a search predicate".to_string(),
        )),
        _ => {
            if !matches!(right.ty, T::String | T::Dynamic) {
                return Err((
                    right.span,
                    format!(
                        "operator '{symbol}' expects a string on the right, got {}",
                        right.ty
                    ),
                ));
            }
            Ok(binary_node(op, stringify(left), right, T::Bool, span))
        }
    }
}

fn converted(
    op: BinaryOp,
    left: BoundExpr,
    right: BoundExpr,
    typed: types::Typed,
    span: Span,
) -> BoundExpr {
    let (left, right) = match typed.operands {
        Some(ty) => (left.cast_to(ty), right.cast_to(ty)),
        None => (left, right),
    };
    binary_node(op, left, right, typed.result, span)
}

/// The boolean `or` of several conditions (`false` for none).
pub(crate) fn any_of(conditions: Vec<BoundExpr>, span: Span) -> BoundExpr {
    conditions
        .into_iter()
        .reduce(|acc, next| binary_node(BinaryOp::Or, acc, next, T::Bool, span))
        .unwrap_or_else(|| BoundExpr::literal(Literal::Bool(false), span))
}

impl Binder<'_> {
    pub(crate) fn expr(&mut self, expr: &ast::Expr, ctx: Ctx<'_>) -> Result<BoundExpr, BindError> {
        self.enter(expr.span)?;
        let result = self.expr_inner(expr, ctx);
        self.leave();
        result
    }

    fn expr_inner(&mut self, expr: &ast::Expr, ctx: Ctx<'_>) -> Result<BoundExpr, BindError> {
        let span = expr.span;
        match &expr.kind {
            ast::ExprKind::Literal(Literal::Type(_)) => Err(self.error(
                span,
                "a type such as typeof(long) is only allowed as a function argument",
            )),
            ast::ExprKind::Literal(literal) => Ok(BoundExpr::literal(literal.clone(), span)),
            ast::ExprKind::Name(name) => self.name_expr(name, ctx),
            ast::ExprKind::Star => Err(self.error(
                span,
                "'*' stands for \"any column\" only on the left of a comparison or string operator, as in 'where * has \"x\"'",
            )),
            ast::ExprKind::Member { .. } | ast::ExprKind::Index { .. } => self.path(expr, ctx),
            ast::ExprKind::Call(call) => self.call(call, ctx),
            ast::ExprKind::Unary { op, operand } => self.unary(*op, operand, span, ctx),
            ast::ExprKind::Binary { op, left, right } => {
                if matches!(left.kind, ast::ExprKind::Star) {
                    return self.any_column(*op, right, span, ctx);
                }
                let left = self.expr(left, ctx)?;
                let right = self.expr(right, ctx)?;
                typed_binary(*op, left, right, span).map_err(|(at, m)| self.error(at, m))
            }
            ast::ExprKind::List { op, left, items } => self.list(*op, left, items, span, ctx),
            ast::ExprKind::Between {
                negated,
                left,
                low,
                high,
            } => self.between(*negated, left, low, high, span, ctx),
            ast::ExprKind::Tabular(_) => Err(self.error(
                span,
                "a tabular expression cannot be used as a scalar value; wrap it in toscalar(...)",
            )),
            ast::ExprKind::NamedArgument { name, .. } => Err(self.error(
                name.span,
                format!(
                    "'{} = ...' names a result column; only arg_max and arg_min take named arguments",
                    name.text
                ),
            )),
        }
    }

    /// A column reference is only allowed where summarize is not collecting aggregates,
    /// or inside an aggregate's arguments.
    pub(crate) fn check_column_use(&self, name: &str, span: Span) -> Result<(), BindError> {
        if let Some(state) = &self.agg
            && !state.inside
        {
            return Err(self.error(
                span,
                format!(
                    "column '{name}' must be used inside an aggregate function (such as take_any({name})) or listed after 'by'"
                ),
            ));
        }
        Ok(())
    }

    fn name_expr(&mut self, name: &ast::Name, ctx: Ctx<'_>) -> Result<BoundExpr, BindError> {
        if let Some(schema) = ctx.schema
            && let Some(index) = schema.index_of(&name.text)
        {
            self.check_column_use(&name.text, name.span)?;
            return Ok(BoundExpr::column(index, &schema.columns[index], name.span));
        }
        match self.scope.lookup(&name.text) {
            Some(Binding::Scalar { expr, row }) => {
                if row.is_some() && *row != ctx.row {
                    return Err(self.error(
                        name.span,
                        format!(
                            "'{}' reads columns of the calling row and cannot be used inside a subquery",
                            name.text
                        ),
                    ));
                }
                let expr = expr.clone();
                self.charge(expr.weight(), name.span)?;
                return Ok(expr);
            }
            Some(Binding::Tabular(_)) => {
                return Err(self.error(
                    name.span,
                    format!(
                        "'{0}' is a table, not a scalar value; use toscalar({0}) for a single value or 'in ({0})' to test membership",
                        name.text
                    ),
                ));
            }
            Some(Binding::Function(_)) => {
                return Err(self.error(
                    name.span,
                    format!("'{0}' is a function; call it as {0}(...)", name.text),
                ));
            }
            None => {}
        }
        if let Some(schema) = ctx.schema
            && schema.open
        {
            self.check_column_use(&name.text, name.span)?;
            return Ok(BoundExpr::new(
                BoundExprKind::LateColumn {
                    name: name.text.clone(),
                },
                T::Dynamic,
                name.span,
            ));
        }
        if ctx.schema.is_none() {
            if self.catalog.table(&name.text).is_some() {
                return Err(self.error(
                    name.span,
                    format!(
                        "'{0}' is a table, not a scalar value; use toscalar({0}) for a single value",
                        name.text
                    ),
                ));
            }
            // Outside a row (let values, print), a name may as well be a misspelt table.
            let mut candidates = self.scalar_candidates(ctx);
            candidates.extend(self.table_candidates());
            let hint = suggest::hint(&name.text, candidates.iter().map(String::as_str));
            return Err(self.error(name.span, format!("unknown name '{}'{hint}", name.text)));
        }
        Err(self.column_not_found(name, ctx))
    }

    /// `d.a["b"][0]`: a flat path over a dynamic root.
    fn path(&mut self, expr: &ast::Expr, ctx: Ctx<'_>) -> Result<BoundExpr, BindError> {
        enum Step<'e> {
            Key(&'e ast::Name),
            Index(&'e ast::Expr),
        }
        let mut steps = Vec::new();
        let mut node = expr;
        loop {
            match &node.kind {
                ast::ExprKind::Member { target, name } => {
                    steps.push(Step::Key(name));
                    node = target;
                }
                ast::ExprKind::Index { target, index } => {
                    steps.push(Step::Index(index));
                    node = target;
                }
                _ => break,
            }
        }
        steps.reverse();
        let root = self.expr(node, ctx)?;
        if root.ty != T::Dynamic {
            let subject = self.snippet(node.span);
            let what = match steps.first() {
                Some(Step::Key(name)) => format!("property '{}'", name.text),
                _ => "an element".to_string(),
            };
            let message = if root.ty == T::String {
                let rest = self
                    .text
                    .get(node.span.end..expr.span.end)
                    .unwrap_or_default();
                format!(
                    "cannot read {what} of '{subject}', which is a string; parse it first: parse_json({subject}){rest}"
                )
            } else {
                format!(
                    "cannot read {what} of '{subject}', which is {}; only dynamic values have properties",
                    root.ty.with_article()
                )
            };
            return Err(self.error(node.span, message));
        }
        let mut bound_steps = Vec::with_capacity(steps.len());
        for step in steps {
            match step {
                Step::Key(name) => bound_steps.push(BoundExpr::literal(
                    Literal::String(name.text.clone()),
                    name.span,
                )),
                Step::Index(index) => {
                    let bound = self.expr(index, ctx)?;
                    if !matches!(bound.ty, T::String | T::Int | T::Long | T::Dynamic) {
                        return Err(self.error(
                            index.span,
                            format!(
                                "an index must be a string key or an integer position, got {}",
                                bound.ty
                            ),
                        ));
                    }
                    bound_steps.push(bound);
                }
            }
        }
        Ok(BoundExpr::new(
            BoundExprKind::Path {
                target: Box::new(root),
                steps: bound_steps,
            },
            T::Dynamic,
            expr.span,
        ))
    }

    fn unary(
        &mut self,
        op: UnaryOp,
        operand: &ast::Expr,
        span: Span,
        ctx: Ctx<'_>,
    ) -> Result<BoundExpr, BindError> {
        let inner = self.expr(operand, ctx)?;
        if !(inner.ty.is_numeric() || matches!(inner.ty, T::Timespan | T::Dynamic)) {
            let symbol = if op == UnaryOp::Neg { "-" } else { "+" };
            return Err(self.error(
                span,
                format!(
                    "operator '{symbol}' cannot be applied to {}",
                    inner.ty.with_article()
                ),
            ));
        }
        if op == UnaryOp::Plus {
            return Ok(inner);
        }
        // Fold `-literal` so constants (datatable cells, defaults) stay literals.
        if let BoundExprKind::Literal(literal) = &inner.kind {
            let folded = match literal {
                Literal::Long(v) => v.checked_neg().map(Literal::Long),
                Literal::Int(v) => v.checked_neg().map(Literal::Int),
                Literal::Real(v) => Some(Literal::Real(-v)),
                Literal::Timespan(v) => v.checked_neg().map(Literal::Timespan),
                Literal::Decimal(text) => Some(Literal::Decimal(match text.strip_prefix('-') {
                    Some(positive) => positive.to_string(),
                    None => format!("-{text}"),
                })),
                _ => None,
            };
            if let Some(folded) = folded {
                return Ok(BoundExpr::literal(folded, span));
            }
        }
        let ty = inner.ty;
        Ok(BoundExpr::new(
            BoundExprKind::Unary {
                op,
                operand: Box::new(inner),
            },
            ty,
            span,
        ))
    }

    /// `* op right`: true if any column satisfies it. Columns whose type cannot take
    /// part (a string column in `* == 5`) are skipped.
    fn any_column(
        &mut self,
        op: BinaryOp,
        right: &ast::Expr,
        span: Span,
        ctx: Ctx<'_>,
    ) -> Result<BoundExpr, BindError> {
        let right = self.expr(right, ctx)?;
        let Some(schema) = ctx.schema else {
            return Err(self.error(span, "'*' needs input columns to stand for"));
        };
        self.check_column_use("*", span)?;
        Ok(self.each_column(schema, op, &right, span))
    }

    pub(crate) fn each_column(
        &self,
        schema: &super::Schema,
        op: BinaryOp,
        right: &BoundExpr,
        span: Span,
    ) -> BoundExpr {
        let conditions = schema
            .columns
            .iter()
            .enumerate()
            .filter_map(|(index, column)| {
                typed_binary(
                    op,
                    BoundExpr::column(index, column, span),
                    right.clone(),
                    span,
                )
                .ok()
            })
            .collect();
        any_of(conditions, span)
    }

    /// An item of an `in (...)` list that is a table: a subquery, a tabular `let`, or a
    /// tabular function call.
    fn list_subquery(&mut self, item: &ast::Expr, ctx: Ctx<'_>) -> Result<Option<Rel>, BindError> {
        match &item.kind {
            ast::ExprKind::Tabular(_) | ast::ExprKind::Call(_) => self.tabular_arg(item),
            ast::ExprKind::Name(name) => {
                if ctx.schema.is_some_and(|s| s.contains(&name.text)) {
                    return Ok(None);
                }
                match self.scope.lookup(&name.text) {
                    Some(binding) if binding.is_tabular() => self.tabular_arg(item),
                    Some(_) => Ok(None),
                    None => self.tabular_arg(item),
                }
            }
            _ => Ok(None),
        }
    }

    fn list(
        &mut self,
        op: ListOp,
        left: &ast::Expr,
        items: &[ast::Expr],
        span: Span,
        ctx: Ctx<'_>,
    ) -> Result<BoundExpr, BindError> {
        let symbol = match op {
            ListOp::In => "in",
            ListOp::NotIn => "!in",
            ListOp::InCi => "in~",
            ListOp::NotInCi => "!in~",
            ListOp::HasAny => "has_any",
            ListOp::HasAll => "has_all",
        };
        let mut left = self.expr(left, ctx)?;
        let mut bound = Vec::with_capacity(items.len());
        for (position, item) in items.iter().enumerate() {
            let (ty, bound_item) = match self.list_subquery(item, ctx)? {
                Some(rel) => match rel.schema.columns.first() {
                    Some(column) => (column.ty, ListItem::Subquery(rel)),
                    None => {
                        return Err(self
                            .error(item.span, format!("the table in '{symbol}' has no columns")));
                    }
                },
                None => {
                    let scalar = self.expr(item, ctx)?;
                    (scalar.ty, ListItem::Scalar(scalar))
                }
            };
            let exact = matches!(op, ListOp::In | ListOp::NotIn);
            if exact && types::equality(left.ty, ty).is_none() {
                return Err(self.error(
                    item.span,
                    format!(
                        "'{symbol}' list item {} is {}, but the left side is {}",
                        position + 1,
                        ty,
                        left.ty
                    ),
                ));
            }
            bound.push(bound_item);
        }
        if matches!(op, ListOp::In | ListOp::NotIn) {
            // Numbers compare after widening to the widest type present.
            if left.ty.is_numeric() {
                let wide = bound.iter().fold(left.ty, |acc, item| match item {
                    ListItem::Scalar(e) => types::widest(acc, e.ty).unwrap_or(acc),
                    ListItem::Subquery(_) => acc,
                });
                left = left.cast_to(wide);
                for item in &mut bound {
                    if let ListItem::Scalar(e) = item
                        && e.ty.is_numeric()
                    {
                        *e = e.clone().cast_to(wide);
                    }
                }
            }
        } else {
            left = stringify(left);
            for item in &mut bound {
                if let ListItem::Scalar(e) = item {
                    *e = stringify(e.clone());
                }
            }
        }
        Ok(BoundExpr::new(
            BoundExprKind::List {
                op,
                left: Box::new(left),
                items: bound,
            },
            T::Bool,
            span,
        ))
    }

    fn between(
        &mut self,
        negated: bool,
        left: &ast::Expr,
        low: &ast::Expr,
        high: &ast::Expr,
        span: Span,
        ctx: Ctx<'_>,
    ) -> Result<BoundExpr, BindError> {
        let symbol = if negated { "!between" } else { "between" };
        let mut value = self.expr(left, ctx)?;
        let mut low_b = self.expr(low, ctx)?;
        let mut high_b = self.expr(high, ctx)?;
        let fits = |bound: ScalarType, allow_timespan: bool| match value.ty {
            t if t.is_numeric() => bound.is_numeric() || bound == T::Dynamic,
            T::Datetime => {
                matches!(bound, T::Datetime | T::Dynamic)
                    || (allow_timespan && bound == T::Timespan)
            }
            T::Timespan => matches!(bound, T::Timespan | T::Dynamic),
            _ => bound != T::String,
        };
        if !(value.ty.is_numeric() || matches!(value.ty, T::Datetime | T::Timespan | T::Dynamic)) {
            return Err(self.error(
                left.span,
                format!(
                    "'{symbol}' needs a number, datetime or timespan on the left, got {}",
                    value.ty
                ),
            ));
        }
        for (bound, ast_bound, allow_timespan) in [(&low_b, low, false), (&high_b, high, true)] {
            if !fits(bound.ty, allow_timespan) {
                return Err(self.error(
                    ast_bound.span,
                    format!(
                        "'{symbol}' bound is {}, but the left side is {}",
                        bound.ty, value.ty
                    ),
                ));
            }
        }
        if value.ty.is_numeric() && low_b.ty.is_numeric() && high_b.ty.is_numeric() {
            let wide = types::widest(value.ty, low_b.ty)
                .and_then(|w| types::widest(w, high_b.ty))
                .unwrap_or(value.ty);
            value = value.cast_to(wide);
            low_b = low_b.cast_to(wide);
            high_b = high_b.cast_to(wide);
        }
        Ok(BoundExpr::new(
            BoundExprKind::Between {
                negated,
                left: Box::new(value),
                low: Box::new(low_b),
                high: Box::new(high_b),
            },
            T::Bool,
            span,
        ))
    }
}
