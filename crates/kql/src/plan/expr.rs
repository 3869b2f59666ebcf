//! Lowering of scalar expressions ([`BoundExpr`]) onto DataFusion expressions.
//!
//! Where KQL and SQL disagree the lowering spells KQL out:
//! - `==` with one null side is `false` (`!=` is `true`), not null;
//! - string operators (`has`, `contains`, `=~`, ...) are UDFs with ASCII case folding;
//! - datetime arithmetic goes through integer nanoseconds;
//! - integer division by zero is null instead of an error;
//! - a dynamic operand is converted to the other side's type (or compared as JSON).

use super::error::PlanError;
use super::json::Json;
use super::rel::{Lowerer, column_expr};
use super::types::{arrow_type, literal, scalar_json, scalar_string, timestamp_type};
use super::udf::{convert, dynamic, strings};
use crate::ast::{BinaryOp, ListOp, Literal, ScalarType, UnaryOp};
use crate::bind::{BoundExpr, BoundExprKind, ListItem, Rel};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::expr::{InList, InSubquery};
use datafusion::logical_expr::{Between, Expr, Operator, Subquery, binary_expr, cast, lit, when};
use datafusion::prelude::{coalesce, nullif};
use std::sync::Arc;

use ScalarType as T;

/// Window expressions collected while lowering an operator's expressions, each with its
/// level: a window whose arguments read another window's result must be computed after
/// it, in a later `Window` node.
pub(crate) type Windows = Vec<(usize, Expr)>;

/// The row context of an expression: the input plan's columns (positional), where window
/// functions are collected, and the row-order column they order by.
pub(crate) struct Scope<'s> {
    pub columns: &'s [Column],
    pub windows: Option<&'s mut Windows>,
    pub order: Option<Expr>,
    /// KQL types of run-time columns (`bag_unpack`), by name.
    pub late_types: Vec<(String, ScalarType)>,
}

impl<'s> Scope<'s> {
    pub fn constant() -> Scope<'static> {
        Scope {
            columns: &[],
            windows: None,
            order: None,
            late_types: Vec::new(),
        }
    }

    /// Records the KQL types of `plan`'s columns that carry `kql_type` metadata, for
    /// columns the binder only knows by name.
    pub fn with_late_types(mut self, plan: &datafusion::logical_expr::LogicalPlan) -> Self {
        self.late_types = plan
            .schema()
            .fields()
            .iter()
            .filter(|f| f.metadata().contains_key(super::types::KQL_TYPE))
            .filter_map(|f| super::types::kql_type_of(f).map(|t| (f.name().clone(), t)))
            .collect();
        self
    }

    pub fn row(columns: &'s [Column], windows: &'s mut Windows, order: Option<Expr>) -> Self {
        Scope {
            columns,
            windows: Some(windows),
            order,
            late_types: Vec::new(),
        }
    }
}

/// Address of a subquery node: the key of its pre-computed result.
pub(crate) fn rel_key(rel: &Rel) -> usize {
    rel as *const Rel as usize
}

fn is_integer(ty: ScalarType) -> bool {
    matches!(ty, T::Int | T::Long)
}

fn zero_of(ty: ScalarType) -> Expr {
    match ty {
        T::Int => lit(0i32),
        T::Real | T::Decimal => lit(0.0f64),
        _ => lit(0i64),
    }
}

fn to_timestamp(nanos: Expr) -> Expr {
    cast(nanos, timestamp_type())
}

fn to_nanos(datetime: Expr) -> Expr {
    cast(datetime, DataType::Int64)
}

fn to_real(expr: Expr) -> Expr {
    cast(expr, DataType::Float64)
}

/// Whether an expression can be null once lowered (strings cannot, nor most literals).
fn nullable(expr: &BoundExpr) -> bool {
    match &expr.kind {
        BoundExprKind::Literal(Literal::Null(_)) => expr.ty != T::String,
        BoundExprKind::Literal(Literal::Dynamic(crate::ast::DynamicValue::Null)) => true,
        BoundExprKind::Literal(_) => false,
        _ => expr.ty != T::String,
    }
}

impl Lowerer<'_> {
    pub(crate) fn expr(&self, e: &BoundExpr, scope: &mut Scope<'_>) -> Result<Expr, PlanError> {
        match &e.kind {
            BoundExprKind::Literal(value) => {
                let scalar = literal(value, e.ty).map_err(|m| self.error(e.span, m))?;
                Ok(lit(scalar))
            }
            BoundExprKind::Column { index, name } => {
                scope.columns.get(*index).map(column_expr).ok_or_else(|| {
                    self.error(
                        e.span,
                        format!("internal planning error: column '{name}' out of range"),
                    )
                })
            }
            // A column known only at run time is dynamic to the binder.
            BoundExprKind::LateColumn { name } => {
                Ok(match scope.columns.iter().find(|c| c.name == *name) {
                    Some(c) => {
                        let ty = scope
                            .late_types
                            .iter()
                            .find(|(n, _)| n == name)
                            .map_or(T::Dynamic, |(_, t)| *t);
                        dynamic::to_dynamic(column_expr(c), ty)
                    }
                    None => lit(ScalarValue::Utf8(None)),
                })
            }
            BoundExprKind::Path { target, steps } => {
                let target = self.expr(target, scope)?;
                let mut lowered = Vec::with_capacity(steps.len());
                for step in steps {
                    let value = self.expr(step, scope)?;
                    lowered.push(match step.ty {
                        T::Int | T::Long => cast(value, DataType::Int64),
                        T::Dynamic => dynamic::string_form(value),
                        _ => value,
                    });
                }
                Ok(dynamic::path(target, lowered))
            }
            BoundExprKind::Cast(inner) => {
                let value = self.expr(inner, scope)?;
                Ok(self.convert(value, inner.ty, e.ty))
            }
            BoundExprKind::Unary { op, operand } => {
                let value = self.expr(operand, scope)?;
                Ok(match (op, operand.ty) {
                    (UnaryOp::Plus, _) => value,
                    (UnaryOp::Neg, T::Dynamic) => {
                        dynamic::arithmetic(BinaryOp::Sub, lit("0"), value)
                    }
                    (UnaryOp::Neg, _) => Expr::Negative(Box::new(value)),
                })
            }
            BoundExprKind::Binary { op, left, right } => self.binary(*op, left, right, e, scope),
            BoundExprKind::List { op, left, items } => self.list(*op, left, items, scope),
            BoundExprKind::Between {
                negated,
                left,
                low,
                high,
            } => self.between(*negated, left, low, high, scope),
            BoundExprKind::Call { function, args } => self.call(function, args, e, scope),
            BoundExprKind::Window { function, args } => self.window_call(function, args, e, scope),
            BoundExprKind::ScalarSubquery(rel) => self.scalar_subquery(rel),
        }
    }

    /// A predicate: bool, with a dynamic value true only when it is JSON `true`.
    pub(crate) fn predicate(
        &self,
        e: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let value = self.expr(e, scope)?;
        Ok(if e.ty == T::Dynamic {
            dynamic::to_bool(value)
        } else {
            value
        })
    }

    /// The string form of a value (string operators, `strcat`, hashes).
    pub(crate) fn text(&self, e: &BoundExpr, scope: &mut Scope<'_>) -> Result<Expr, PlanError> {
        let value = self.expr(e, scope)?;
        Ok(self.as_text(value, e.ty))
    }

    pub(crate) fn as_text(&self, value: Expr, ty: ScalarType) -> Expr {
        match ty {
            T::String => value,
            T::Dynamic => dynamic::string_form(value),
            other => convert::to_string(value, other),
        }
    }

    /// Converts between KQL types: numeric widening, to and from dynamic, to string.
    pub(crate) fn convert(&self, value: Expr, from: ScalarType, to: ScalarType) -> Expr {
        if from == to {
            return value;
        }
        match (from, to) {
            (_, T::Dynamic) => dynamic::to_dynamic(value, from),
            (T::Dynamic, _) => dynamic::from_dynamic(value, to),
            (_, T::String) => convert::to_string(value, from),
            _ => cast(value, arrow_type(to)),
        }
    }

    fn scalar_subquery(&self, rel: &Rel) -> Result<Expr, PlanError> {
        if let Some(value) = self.prepared.scalars.get(&rel_key(rel)) {
            return Ok(lit(value.clone()));
        }
        // Plan-only mode: show the subquery in the plan.
        let plan = self.with_apply_input(None, || self.finish(rel))?;
        Ok(Expr::ScalarSubquery(Subquery {
            subquery: Arc::new(plan),
            outer_ref_columns: vec![],
            spans: Default::default(),
        }))
    }

    fn binary(
        &self,
        op: BinaryOp,
        left: &BoundExpr,
        right: &BoundExpr,
        node: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        use BinaryOp::*;
        use strings::Match;
        let string_op = |kind: Match,
                         cs: bool,
                         negated: bool,
                         scope: &mut Scope<'_>|
         -> Result<Expr, PlanError> {
            let l = self.text(left, scope)?;
            let r = self.text(right, scope)?;
            Ok(strings::string_match(kind, cs, negated, l, r))
        };
        match op {
            And | Or => {
                // `search` and `* has` make chains of hundreds of `or`s; lowered as a
                // balanced tree they stay shallow for DataFusion's recursive passes.
                let mut operands = Vec::new();
                let mut pending = vec![right, left];
                while let Some(e) = pending.pop() {
                    match &e.kind {
                        BoundExprKind::Binary {
                            op: inner,
                            left,
                            right,
                        } if *inner == op => {
                            pending.push(right);
                            pending.push(left);
                        }
                        _ => operands.push(self.predicate(e, scope)?),
                    }
                }
                let sql_op = if op == And {
                    Operator::And
                } else {
                    Operator::Or
                };
                Ok(balanced(operands, sql_op))
            }
            Eq | NotEq => self.equality(op, left, right, scope),
            Lt | Le | Gt | Ge => self.ordering(op, left, right, scope),
            Add | Sub | Mul | Div | Mod => self.arithmetic(op, left, right, node.ty, scope),
            EqCi => string_op(Match::Equals, false, false, scope),
            NotEqCi => string_op(Match::Equals, false, true, scope),
            Has => string_op(Match::Has, false, false, scope),
            NotHas => string_op(Match::Has, false, true, scope),
            HasCs => string_op(Match::Has, true, false, scope),
            NotHasCs => string_op(Match::Has, true, true, scope),
            HasPrefix => string_op(Match::HasPrefix, false, false, scope),
            NotHasPrefix => string_op(Match::HasPrefix, false, true, scope),
            HasPrefixCs => string_op(Match::HasPrefix, true, false, scope),
            NotHasPrefixCs => string_op(Match::HasPrefix, true, true, scope),
            HasSuffix => string_op(Match::HasSuffix, false, false, scope),
            NotHasSuffix => string_op(Match::HasSuffix, false, true, scope),
            HasSuffixCs => string_op(Match::HasSuffix, true, false, scope),
            NotHasSuffixCs => string_op(Match::HasSuffix, true, true, scope),
            Contains | Like => string_op(Match::Contains, false, false, scope),
            NotContains | NotLike => string_op(Match::Contains, false, true, scope),
            ContainsCs => string_op(Match::Contains, true, false, scope),
            NotContainsCs => string_op(Match::Contains, true, true, scope),
            StartsWith => string_op(Match::StartsWith, false, false, scope),
            NotStartsWith => string_op(Match::StartsWith, false, true, scope),
            StartsWithCs => string_op(Match::StartsWith, true, false, scope),
            NotStartsWithCs => string_op(Match::StartsWith, true, true, scope),
            EndsWith => string_op(Match::EndsWith, false, false, scope),
            NotEndsWith => string_op(Match::EndsWith, false, true, scope),
            EndsWithCs => string_op(Match::EndsWith, true, false, scope),
            NotEndsWithCs => string_op(Match::EndsWith, true, true, scope),
            MatchesRegex => {
                let l = self.text(left, scope)?;
                let r = self.text(right, scope)?;
                Ok(strings::matches_regex(l, r))
            }
            SearchColumn => {
                Err(self.error(node.span, "':' is only valid inside a search predicate"))
            }
        }
    }

    /// Both sides lowered and brought to one type: a dynamic side takes the other's type;
    /// `None` type when both are dynamic.
    fn comparable(
        &self,
        left: &BoundExpr,
        right: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<(Expr, Expr, Option<ScalarType>), PlanError> {
        let l = self.expr(left, scope)?;
        let r = self.expr(right, scope)?;
        Ok(match (left.ty, right.ty) {
            (T::Dynamic, T::Dynamic) => (l, r, None),
            (T::Dynamic, other) => (self.dynamic_as(l, other), r, Some(other)),
            (other, T::Dynamic) => (l, self.dynamic_as(r, other), Some(other)),
            (other, _) => (l, r, Some(other)),
        })
    }

    /// A dynamic value as `ty` for comparing; unlike `tostring`, null stays null.
    fn dynamic_as(&self, value: Expr, ty: ScalarType) -> Expr {
        if ty == T::String {
            dynamic::string_form_nullable(value)
        } else {
            dynamic::from_dynamic(value, ty)
        }
    }

    fn equality(
        &self,
        op: BinaryOp,
        left: &BoundExpr,
        right: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let (l, r, ty) = self.comparable(left, right, scope)?;
        let Some(_) = ty else {
            return Ok(dynamic::compare(op, l, r));
        };
        let sql_op = if op == BinaryOp::Eq {
            Operator::Eq
        } else {
            Operator::NotEq
        };
        let l_null = nullable(left);
        let r_null = nullable(right);
        let compared = binary_expr(l.clone(), sql_op, r.clone());
        // KQL: null == x is false, null != x is true, null == null is null.
        Ok(match (l_null, r_null) {
            (false, false) => compared,
            (true, true) => when(
                l.is_null().and(r.is_null()),
                lit(ScalarValue::Boolean(None)),
            )
            .otherwise(coalesce(vec![compared, lit(op == BinaryOp::NotEq)]))?,
            _ => coalesce(vec![compared, lit(op == BinaryOp::NotEq)]),
        })
    }

    fn ordering(
        &self,
        op: BinaryOp,
        left: &BoundExpr,
        right: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let (l, r, ty) = self.comparable(left, right, scope)?;
        if ty.is_none() {
            return Ok(dynamic::compare(op, l, r));
        }
        let sql_op = match op {
            BinaryOp::Lt => Operator::Lt,
            BinaryOp::Le => Operator::LtEq,
            BinaryOp::Gt => Operator::Gt,
            _ => Operator::GtEq,
        };
        Ok(binary_expr(l, sql_op, r))
    }

    fn arithmetic(
        &self,
        op: BinaryOp,
        left: &BoundExpr,
        right: &BoundExpr,
        result: ScalarType,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let l = self.expr(left, scope)?;
        let r = self.expr(right, scope)?;
        let sql = |op: BinaryOp| match op {
            BinaryOp::Add => Operator::Plus,
            BinaryOp::Sub => Operator::Minus,
            BinaryOp::Mul => Operator::Multiply,
            BinaryOp::Div => Operator::Divide,
            _ => Operator::Modulo,
        };
        // Integer division by zero is null in KQL, an error in DataFusion.
        let safe_integer = |l: Expr, r: Expr, ty: ScalarType| {
            if matches!(op, BinaryOp::Div | BinaryOp::Mod) {
                binary_expr(l, sql(op), nullif(r, zero_of(ty)))
            } else {
                binary_expr(l, sql(op), r)
            }
        };
        let (lt, rt) = (left.ty, right.ty);
        if lt == T::Dynamic || rt == T::Dynamic {
            let l = dynamic::to_dynamic(l, lt);
            let r = dynamic::to_dynamic(r, rt);
            return Ok(dynamic::arithmetic(op, l, r));
        }
        Ok(match (lt, rt) {
            (a, b) if a.is_numeric() && b.is_numeric() => {
                if is_integer(a) && is_integer(b) {
                    safe_integer(l, r, result)
                } else {
                    binary_expr(l, sql(op), r)
                }
            }
            (T::Datetime, T::Datetime) => binary_expr(to_nanos(l), Operator::Minus, to_nanos(r)),
            (T::Datetime, T::Timespan) => to_timestamp(binary_expr(to_nanos(l), sql(op), r)),
            (T::Timespan, T::Datetime) => to_timestamp(binary_expr(l, sql(op), to_nanos(r))),
            (T::Timespan, T::Timespan) => match op {
                BinaryOp::Div => binary_expr(to_real(l), Operator::Divide, to_real(r)),
                _ => safe_integer(l, r, T::Long),
            },
            (T::Timespan, n) | (n, T::Timespan) if n.is_numeric() => {
                let (span, number) = if lt == T::Timespan { (l, r) } else { (r, l) };
                if is_integer(n) {
                    let number = cast(number, DataType::Int64);
                    if lt == T::Timespan {
                        safe_integer(span, number, T::Long)
                    } else {
                        binary_expr(number, sql(op), span)
                    }
                } else {
                    let value = if lt == T::Timespan {
                        binary_expr(to_real(span), sql(op), to_real(number))
                    } else {
                        binary_expr(to_real(number), sql(op), to_real(span))
                    };
                    cast(
                        datafusion::functions::math::expr_fn::trunc(vec![value]),
                        DataType::Int64,
                    )
                }
            }
            _ => {
                return Err(self.error(
                    left.span,
                    format!("cannot apply arithmetic to {lt} and {rt}"),
                ));
            }
        })
    }

    /// A list item's constant value(s), flattened when it is a dynamic array; `None` if the
    /// item is computed per row.
    fn constant_items(
        &self,
        item: &ListItem,
    ) -> Result<Option<Vec<(ScalarValue, ScalarType)>>, PlanError> {
        match item {
            ListItem::Scalar(e) => {
                let Some(value) = constant_value(e) else {
                    return Ok(None);
                };
                let scalar = literal(&value, e.ty).map_err(|m| self.error(e.span, m))?;
                if e.ty == T::Dynamic {
                    let mut flat = Vec::new();
                    dynamic::flatten(scalar_json(&scalar, T::Dynamic), &mut flat);
                    return Ok(Some(
                        flat.into_iter()
                            .map(|j| (json_scalar(j), T::Dynamic))
                            .collect(),
                    ));
                }
                Ok(Some(vec![(scalar, e.ty)]))
            }
            ListItem::Subquery(rel) => {
                let Some(values) = self.prepared.lists.get(&rel_key(rel)) else {
                    return Ok(None);
                };
                let ty = rel.schema.columns.first().map_or(T::Dynamic, |c| c.ty);
                let mut out = Vec::with_capacity(values.len());
                for v in values {
                    if ty == T::Dynamic {
                        let mut flat = Vec::new();
                        dynamic::flatten(scalar_json(v, T::Dynamic), &mut flat);
                        out.extend(flat.into_iter().map(|j| (json_scalar(j), T::Dynamic)));
                    } else {
                        out.push((v.clone(), ty));
                    }
                }
                Ok(Some(out))
            }
        }
    }

    fn list(
        &self,
        op: ListOp,
        left: &BoundExpr,
        items: &[ListItem],
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        match op {
            ListOp::In | ListOp::NotIn => self.in_list(op == ListOp::NotIn, left, items, scope),
            ListOp::InCi | ListOp::NotInCi => {
                let negated = op == ListOp::NotInCi;
                let value = self.text(left, scope)?;
                let mut constants = Vec::new();
                let mut tests = Vec::new();
                for item in items {
                    match self.constant_items(item)? {
                        Some(values) => {
                            constants.extend(values.iter().map(|(v, ty)| item_text(v, *ty)))
                        }
                        None => tests.push(self.item_test(
                            item,
                            value.clone(),
                            T::String,
                            true,
                            scope,
                        )?),
                    }
                }
                let mut any = strings::in_ci(false, value, constants);
                for test in tests {
                    any = any.or(test);
                }
                Ok(if negated {
                    Expr::Not(Box::new(any))
                } else {
                    any
                })
            }
            ListOp::HasAny | ListOp::HasAll => {
                let all = op == ListOp::HasAll;
                let value = self.text(left, scope)?;
                let mut terms = Vec::new();
                let mut tests = Vec::new();
                for item in items {
                    match self.constant_items(item)? {
                        Some(values) => {
                            terms.extend(values.iter().map(|(v, ty)| item_text(v, *ty)))
                        }
                        None => match item {
                            ListItem::Scalar(e) if e.ty != T::Dynamic => {
                                let term = self.text(e, scope)?;
                                tests.push(strings::string_match(
                                    strings::Match::Has,
                                    false,
                                    false,
                                    value.clone(),
                                    term,
                                ));
                            }
                            _ => {
                                return Err(PlanError::new(
                                    "has_any/has_all need constant terms (literals, dynamic arrays or subqueries)",
                                ));
                            }
                        },
                    }
                }
                let mut combined = strings::has_terms(all, value, terms);
                for test in tests {
                    combined = if all {
                        combined.and(test)
                    } else {
                        combined.or(test)
                    };
                }
                Ok(combined)
            }
        }
    }

    /// A per-row membership test of `value` (of type `ty`) in a non-constant item.
    fn item_test(
        &self,
        item: &ListItem,
        value: Expr,
        ty: ScalarType,
        case_insensitive: bool,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        match item {
            ListItem::Scalar(e) if e.ty == T::Dynamic => {
                let array = self.expr(e, scope)?;
                Ok(dynamic::in_array(
                    dynamic::to_dynamic(value, ty),
                    array,
                    case_insensitive,
                ))
            }
            ListItem::Scalar(e) => {
                if case_insensitive {
                    let other = self.text(e, scope)?;
                    Ok(strings::string_match(
                        strings::Match::Equals,
                        false,
                        false,
                        value,
                        other,
                    ))
                } else {
                    let other = self.expr(e, scope)?;
                    let other = self.convert(other, e.ty, ty);
                    Ok(coalesce(vec![value.eq(other), lit(false)]))
                }
            }
            ListItem::Subquery(rel) => {
                // Plan-only mode: show the subquery.
                let plan = self.with_apply_input(None, || self.finish(rel))?;
                Ok(Expr::InSubquery(InSubquery::new(
                    Box::new(value),
                    Subquery {
                        subquery: Arc::new(plan),
                        outer_ref_columns: vec![],
                        spans: Default::default(),
                    },
                    false,
                )))
            }
        }
    }

    fn in_list(
        &self,
        negated: bool,
        left: &BoundExpr,
        items: &[ListItem],
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let ty = left.ty;
        let value = self.expr(left, scope)?;
        // A dynamic left side compares by its string form against strings, else as JSON.
        let (value, ty) = if ty == T::Dynamic {
            (value, T::Dynamic)
        } else {
            (value, ty)
        };
        let mut list = Vec::new();
        let mut tests = Vec::new();
        for item in items {
            match self.constant_items(item)? {
                Some(values) => {
                    for (v, item_ty) in values {
                        if let Some(converted) = convert_constant(&v, item_ty, ty) {
                            list.push(lit(converted));
                        }
                    }
                }
                None => match item {
                    ListItem::Scalar(e) if e.ty != T::Dynamic && e.ty != ty && ty != T::Dynamic => {
                        let other = self.expr(e, scope)?;
                        list.push(self.convert(other, e.ty, ty));
                    }
                    ListItem::Scalar(e) if e.ty != T::Dynamic => {
                        let other = self.expr(e, scope)?;
                        list.push(if ty == T::Dynamic {
                            dynamic::to_dynamic(other, e.ty)
                        } else {
                            other
                        });
                    }
                    _ => tests.push(self.item_test(item, value.clone(), ty, false, scope)?),
                },
            }
        }
        let mut any = if ty == T::Dynamic {
            // JSON texts compare by value through the dynamic comparison.
            let mut found: Option<Expr> = None;
            for item in list {
                let test = dynamic::compare(BinaryOp::Eq, value.clone(), item);
                found = Some(match found {
                    Some(f) => f.or(test),
                    None => test,
                });
            }
            found.unwrap_or(lit(false))
        } else if list.is_empty() {
            lit(false)
        } else {
            Expr::InList(InList::new(Box::new(value.clone()), list, false))
        };
        for test in tests {
            any = any.or(test);
        }
        // Null on the left is in nothing.
        let any = if nullable(left) {
            coalesce(vec![any, lit(false)])
        } else {
            any
        };
        Ok(if negated {
            Expr::Not(Box::new(any))
        } else {
            any
        })
    }

    fn between(
        &self,
        negated: bool,
        left: &BoundExpr,
        low: &BoundExpr,
        high: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let value = self.expr(left, scope)?;
        let mut lo = self.expr(low, scope)?;
        let mut hi = self.expr(high, scope)?;
        let mut ty = left.ty;
        if ty == T::Dynamic {
            ty = if low.ty != T::Dynamic {
                low.ty
            } else if high.ty != T::Dynamic {
                high.ty
            } else {
                T::Real
            };
        }
        let value = if left.ty == T::Dynamic {
            dynamic::from_dynamic(value, ty)
        } else {
            value
        };
        if low.ty == T::Dynamic {
            lo = dynamic::from_dynamic(lo, ty);
        }
        if ty == T::Datetime && high.ty == T::Timespan {
            // `dt between (start .. 1h)` means up to start + 1h.
            hi = to_timestamp(binary_expr(to_nanos(lo.clone()), Operator::Plus, hi));
        } else if high.ty == T::Dynamic {
            hi = dynamic::from_dynamic(hi, ty);
        }
        Ok(Expr::Between(Between::new(
            Box::new(value),
            negated,
            Box::new(lo),
            Box::new(hi),
        )))
    }
}

/// A literal that a constant expression reduces to (literals, widening casts, `tostring`
/// of a literal, negated numbers).
pub(crate) fn constant_value(e: &BoundExpr) -> Option<Literal> {
    match &e.kind {
        BoundExprKind::Literal(l) => Some(l.clone()),
        BoundExprKind::Cast(inner) => {
            let value = constant_value(inner)?;
            let scalar = literal(&value, inner.ty).ok()?;
            let cast = scalar.cast_to(&arrow_type(e.ty)).ok()?;
            scalar_literal(&cast, e.ty)
        }
        BoundExprKind::Call {
            function: "tostring",
            args,
        } => {
            let arg = args.first()?;
            let value = constant_value(arg)?;
            let scalar = literal(&value, arg.ty).ok()?;
            Some(Literal::String(scalar_string(&scalar, arg.ty)))
        }
        _ => None,
    }
}

fn scalar_literal(value: &ScalarValue, ty: ScalarType) -> Option<Literal> {
    Some(match (value, ty) {
        (ScalarValue::Int32(Some(v)), _) => Literal::Int(*v),
        (ScalarValue::Int64(Some(v)), T::Timespan) => {
            Literal::Timespan(*v / super::time::NANOS_PER_TICK)
        }
        (ScalarValue::Int64(Some(v)), _) => Literal::Long(*v),
        (ScalarValue::Float64(Some(v)), _) => Literal::Real(*v),
        (ScalarValue::Boolean(Some(v)), _) => Literal::Bool(*v),
        (ScalarValue::Utf8(Some(v)), T::String) => Literal::String(v.clone()),
        _ => return None,
    })
}

/// A JSON value as a dynamic scalar.
fn json_scalar(value: Json) -> ScalarValue {
    ScalarValue::Utf8(value.to_column())
}

/// The text of a list item for `in~` / `has_any`.
fn item_text(value: &ScalarValue, ty: ScalarType) -> String {
    scalar_string(value, ty)
}

/// A constant list item converted to the left side's type for `in`; `None` when it cannot
/// equal any value of that type.
fn convert_constant(value: &ScalarValue, from: ScalarType, to: ScalarType) -> Option<ScalarValue> {
    if from == to {
        return Some(value.clone());
    }
    if to == T::Dynamic {
        return Some(json_scalar(scalar_json(value, from)));
    }
    if from == T::Dynamic {
        let json = scalar_json(value, T::Dynamic);
        return match (to, json) {
            (T::String | T::Guid, Json::Str(s)) => Some(ScalarValue::Utf8(Some(s))),
            (T::Long, Json::Int(i)) => Some(ScalarValue::Int64(Some(i))),
            (T::Int, Json::Int(i)) => i32::try_from(i).ok().map(|v| ScalarValue::Int32(Some(v))),
            (T::Real | T::Decimal, j) => j.as_f64().map(|v| ScalarValue::Float64(Some(v))),
            (T::Long, Json::Real(r)) if r.fract() == 0.0 => {
                Some(ScalarValue::Int64(Some(r as i64)))
            }
            (T::Bool, Json::Bool(b)) => Some(ScalarValue::Boolean(Some(b))),
            (T::Datetime, Json::Str(s)) => {
                super::time::parse_datetime(&s).map(|n| super::types::timestamp_scalar(Some(n)))
            }
            (T::Timespan, Json::Str(s)) => {
                super::time::parse_timespan(&s).map(|n| ScalarValue::Int64(Some(n)))
            }
            _ => None,
        };
    }
    value.cast_to(&arrow_type(to)).ok()
}

/// `a op b op c ...` as a balanced tree (the operands keep their order).
fn balanced(mut operands: Vec<Expr>, op: Operator) -> Expr {
    while operands.len() > 1 {
        let mut next = Vec::with_capacity(operands.len().div_ceil(2));
        let mut items = operands.into_iter();
        while let Some(a) = items.next() {
            next.push(match items.next() {
                Some(b) => binary_expr(a, op, b),
                None => a,
            });
        }
        operands = next;
    }
    operands.pop().unwrap_or_else(|| lit(op == Operator::And))
}
