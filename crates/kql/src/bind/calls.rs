//! Function calls: `let` functions, built-ins with their signatures, aggregates inside
//! summarize items, and the few built-ins that need the binder itself (`toscalar`,
//! `column_ifexists`, `pack_all`).
//!
//! An aggregate met inside a summarize item is recorded in the aggregate list and
//! replaced by a reference to its output, so the item's expression is left over the
//! aggregate's results; that is how `100.0 * countif(p) / count()` becomes one
//! aggregate node and one projection.

use super::functions::{self, Arg, FunctionKind, Naming, Resolved, RetError};
use super::scope::Binding;
use super::{AggBan, Binder, Bound, Ctx, suggest, types};
use super::{BoundExpr, BoundExprKind};
use crate::ast::{self, Literal, ScalarType};
use crate::bind::error::BindError;
use crate::span::Span;

use ScalarType as T;

/// Whether a call is an aggregate producing several columns, which only a whole
/// summarize item may be (`arg_max`, `take_any(a, b)`, `take_any(*)`, `percentiles`).
pub(crate) fn is_multi_output(resolved: &Resolved, call: &ast::FunctionCall) -> bool {
    match resolved.signature.name {
        "arg_max" | "arg_min" | "percentiles" => true,
        "take_any" => {
            call.args.len() != 1
                || call
                    .args
                    .iter()
                    .any(|a| matches!(a.kind, ast::ExprKind::Star))
        }
        _ => false,
    }
}

impl Binder<'_> {
    pub(crate) fn call(
        &mut self,
        call: &ast::FunctionCall,
        ctx: Ctx<'_>,
    ) -> Result<BoundExpr, BindError> {
        let name = call.name.text.as_str();
        if let Some(Binding::Function(function)) = self.scope.lookup(name) {
            let function = function.clone();
            return match self.invoke(&function, None, &call.args, call.span, ctx)? {
                Bound::Scalar(expr) => Ok(expr),
                Bound::Tabular(_) => Err(self.error(
                    call.name.span,
                    format!(
                        "function '{name}' returns a table, not a scalar value; use toscalar({name}(...)) for a single value"
                    ),
                )),
            };
        }
        match name {
            "toscalar" => return self.toscalar(call),
            "column_ifexists" | "columnifexists" => return self.column_ifexists(call, ctx),
            "pack_all" => return self.pack_all(call, ctx),
            "materialize" => {
                return Err(self.error(
                    call.name.span,
                    "materialize() is only allowed as the value of a let statement",
                ));
            }
            _ => {}
        }
        let resolved = self.resolve_function(call)?;
        match resolved.signature.kind {
            FunctionKind::Aggregate => self.aggregate_in_expr(call, resolved, ctx),
            FunctionKind::Window => {
                if !ctx.serialized {
                    return Err(self.error(
                        call.name.span,
                        format!(
                            "function '{name}' needs serialized input; add '| serialize' (or sort the rows) before this operator"
                        ),
                    ));
                }
                let (args, ty) = self.typed_args(call, resolved, ctx)?;
                Ok(BoundExpr::new(
                    BoundExprKind::Window {
                        function: resolved.signature.name,
                        args,
                    },
                    ty,
                    call.span,
                ))
            }
            FunctionKind::Scalar => {
                let (args, ty) = self.typed_args(call, resolved, ctx)?;
                Ok(BoundExpr::new(
                    BoundExprKind::Call {
                        function: resolved.signature.name,
                        args,
                    },
                    ty,
                    call.span,
                ))
            }
        }
    }

    /// Finds a built-in function and checks the argument count.
    pub(crate) fn resolve_function(&self, call: &ast::FunctionCall) -> Result<Resolved, BindError> {
        let name = call.name.text.as_str();
        let count = call.args.len();
        let Some(resolved) = functions::lookup(name, count) else {
            let mut candidates: Vec<String> = functions::all_names().map(str::to_string).collect();
            candidates.extend(
                self.scope
                    .visible()
                    .into_iter()
                    .filter(|(_, b)| matches!(b, Binding::Function(_)))
                    .map(|(n, _)| n.to_string()),
            );
            let hint = suggest::hint(name, candidates.iter().map(String::as_str));
            return Err(self.error(call.name.span, format!("unknown function '{name}'{hint}")));
        };
        let signature = resolved.signature;
        let message = if signature.name == "case" && (count < 3 || count.is_multiple_of(2)) {
            Some(format!(
                "function 'case' expects predicate/value pairs and an else value (an odd number of arguments, at least 3), got {count}"
            ))
        } else if !signature.arity_ok(count) {
            if signature.name == "bag_pack" && count <= signature.max {
                Some(format!(
                    "function '{name}' expects key/value pairs (an even number of arguments), got {count}"
                ))
            } else {
                Some(format!(
                    "function '{name}' expects {}, got {count}",
                    signature.arity_text()
                ))
            }
        } else {
            None
        };
        match message {
            Some(message) => Err(self.error(call.span, message)),
            None => Ok(resolved),
        }
    }

    /// Binds and checks the arguments of a built-in call; returns them in canonical
    /// order with the result type.
    pub(crate) fn typed_args(
        &mut self,
        call: &ast::FunctionCall,
        resolved: Resolved,
        ctx: Ctx<'_>,
    ) -> Result<(Vec<BoundExpr>, ScalarType), BindError> {
        let name = call.name.text.as_str();
        let signature = resolved.signature;
        let mut written = Vec::with_capacity(call.args.len());
        for arg in &call.args {
            written.push(match &arg.kind {
                ast::ExprKind::Literal(literal @ Literal::Type(_)) => {
                    BoundExpr::literal(literal.clone(), arg.span)
                }
                _ => self.expr(arg, ctx)?,
            });
        }
        let order: Vec<usize> = match resolved.alias {
            Some(alias) if !alias.reorder.is_empty() && alias.reorder.len() == written.len() => {
                alias.reorder.to_vec()
            }
            _ => (0..written.len()).collect(),
        };
        let mut args: Vec<BoundExpr> = order.iter().map(|&i| written[i].clone()).collect();
        let mut type_arg = None;
        for (position, arg) in args.iter().enumerate() {
            let expected = signature.arg(position);
            let number = order[position] + 1;
            let literal_type = match &arg.kind {
                BoundExprKind::Literal(Literal::Type(ty)) => Some(*ty),
                _ => None,
            };
            if expected == Arg::Type {
                if literal_type.is_none() {
                    return Err(self.error(
                        arg.span,
                        format!(
                            "function '{name}' expects {} as argument {number}",
                            expected.describe()
                        ),
                    ));
                }
                type_arg = literal_type;
                continue;
            }
            if literal_type.is_some() {
                return Err(self.error(
                    arg.span,
                    format!("function '{name}' does not take a type as argument {number}"),
                ));
            }
            if !expected.accepts(arg.ty) {
                return Err(self.error(
                    arg.span,
                    format!(
                        "function '{name}' expects {} as argument {number}, got {}",
                        expected.describe(),
                        arg.ty
                    ),
                ));
            }
        }
        if signature.name == "case" {
            for position in (0..args.len().saturating_sub(1)).step_by(2) {
                let predicate = &args[position];
                if !matches!(predicate.ty, T::Bool | T::Dynamic) {
                    return Err(self.error(
                        predicate.span,
                        format!(
                            "function 'case' expects a bool predicate as argument {}, got {}",
                            position + 1,
                            predicate.ty
                        ),
                    ));
                }
            }
        }
        let arg_types: Vec<ScalarType> = args.iter().map(|a| a.ty).collect();
        let ty = functions::result_type(signature, &arg_types, type_arg).map_err(|error| {
            let message = match (error, signature.name) {
                (RetError::Mismatch(a, b), "iff") => {
                    format!("'{name}' branches have different types: {a} and {b}")
                }
                (RetError::Mismatch(a, b), "case") => {
                    format!("'case' values have different types: {a} and {b}")
                }
                (RetError::Mismatch(a, b), "bin_at") => format!(
                    "'bin_at' needs the fixed point to be {} like the value, got {b}",
                    a.with_article()
                ),
                (RetError::Mismatch(a, b), _) => {
                    format!("function '{name}' needs arguments of one type, got {a} and {b}")
                }
                (RetError::BinSize(value, size), _) => {
                    let hint = if matches!(value, T::Datetime | T::Timespan) {
                        "; use a timespan such as 1h"
                    } else {
                        ""
                    };
                    format!(
                        "'{name}' cannot round {} to a multiple of {}{hint}",
                        value.with_article(),
                        size.with_article()
                    )
                }
            };
            self.error(call.span, message)
        })?;
        if let functions::Ret::Unify { from, step, last } = signature.ret
            && ty.is_numeric()
        {
            let end = args.len().saturating_sub(1);
            for (position, arg) in args.iter_mut().enumerate() {
                let unified = (position >= from && (position - from) % step.max(1) == 0)
                    || (last && position == end);
                if unified && arg.ty.is_numeric() {
                    *arg = arg.clone().cast_to(ty);
                }
            }
        }
        if let Some(max) = resolved.alias.and_then(|a| a.default_max)
            && args.len() < signature.params.len()
        {
            args.push(BoundExpr::literal(Literal::Long(max), call.span));
        }
        Ok((args, ty))
    }

    /// An aggregate inside a summarize item's expression: recorded in the aggregate
    /// list, replaced by a reference to its output column.
    fn aggregate_in_expr(
        &mut self,
        call: &ast::FunctionCall,
        resolved: Resolved,
        ctx: Ctx<'_>,
    ) -> Result<BoundExpr, BindError> {
        let name = call.name.text.as_str();
        match &self.agg {
            None => {
                let message = if self.agg_ban == AggBan::By {
                    format!("aggregate function '{name}' cannot be used in 'by'")
                } else {
                    format!(
                        "'{name}' is an aggregate function; it can only be used in summarize or make-series"
                    )
                };
                return Err(self.error(call.name.span, message));
            }
            Some(state) if state.inside => {
                return Err(self.error(
                    call.name.span,
                    format!(
                        "aggregate function '{name}' cannot be nested inside another aggregate"
                    ),
                ));
            }
            Some(_) => {}
        }
        if is_multi_output(&resolved, call) {
            return Err(self.error(
                call.name.span,
                format!(
                    "'{name}' returns several columns; use it as a whole summarize item, not inside an expression"
                ),
            ));
        }
        let args = self.aggregate_args(call, resolved, ctx)?;
        Ok(self.record_aggregate(resolved.signature.name, args.0, vec![args.1], call.span))
    }

    /// Binds an aggregate's arguments over the input rows.
    pub(crate) fn aggregate_args(
        &mut self,
        call: &ast::FunctionCall,
        resolved: Resolved,
        ctx: Ctx<'_>,
    ) -> Result<(Vec<BoundExpr>, ScalarType), BindError> {
        if let Some(state) = self.agg.as_mut() {
            state.inside = true;
        }
        let result = self.typed_args(call, resolved, ctx);
        if let Some(state) = self.agg.as_mut() {
            state.inside = false;
        }
        result
    }

    /// Adds an aggregate to the list; returns a reference to its first output column.
    pub(crate) fn record_aggregate(
        &mut self,
        function: &'static str,
        args: Vec<BoundExpr>,
        outputs: Vec<ScalarType>,
        span: Span,
    ) -> BoundExpr {
        let first = outputs.first().copied().unwrap_or(T::Dynamic);
        let Some(state) = self.agg.as_mut() else {
            return BoundExpr::literal(types::empty_literal(first), span);
        };
        let index = state.base + state.outputs;
        state.outputs += outputs.len();
        state.calls.push(super::AggregateCall {
            function,
            args,
            outputs,
        });
        BoundExpr::new(
            BoundExprKind::Column {
                index,
                name: format!("$agg{index}"),
            },
            first,
            span,
        )
    }

    /// `toscalar(T | ...)`
    fn toscalar(&mut self, call: &ast::FunctionCall) -> Result<BoundExpr, BindError> {
        let [arg] = call.args.as_slice() else {
            return Err(self.error(
                call.span,
                format!(
                    "function 'toscalar' expects 1 argument, got {}",
                    call.args.len()
                ),
            ));
        };
        let Some(rel) = self.tabular_arg(arg)? else {
            return Err(self.error(
                arg.span,
                "toscalar() needs a tabular expression, such as toscalar(T | summarize max(x))",
            ));
        };
        let Some(ty) = rel.schema.columns.first().map(|c| c.ty) else {
            return Err(self.error(arg.span, "toscalar(): the table has no columns"));
        };
        Ok(BoundExpr::new(
            BoundExprKind::ScalarSubquery(Box::new(rel)),
            ty,
            call.span,
        ))
    }

    /// `column_ifexists("Name", default)`: resolved now, since the schema is known.
    fn column_ifexists(
        &mut self,
        call: &ast::FunctionCall,
        ctx: Ctx<'_>,
    ) -> Result<BoundExpr, BindError> {
        let name = call.name.text.as_str();
        let [column, default] = call.args.as_slice() else {
            return Err(self.error(
                call.span,
                format!(
                    "function '{name}' expects 2 arguments, got {}",
                    call.args.len()
                ),
            ));
        };
        let ast::ExprKind::Literal(Literal::String(column_name)) = &column.kind else {
            return Err(self.error(
                column.span,
                format!("function '{name}' expects the column name as a string literal"),
            ));
        };
        let default = self.expr(default, ctx)?;
        if let Some(schema) = ctx.schema
            && let Some(index) = schema.index_of(column_name)
        {
            self.check_column_use(column_name, column.span)?;
            return Ok(BoundExpr::column(index, &schema.columns[index], call.span));
        }
        Ok(default)
    }

    /// `pack_all()`: a bag of the row's columns, spelled out as `bag_pack`.
    fn pack_all(&mut self, call: &ast::FunctionCall, ctx: Ctx<'_>) -> Result<BoundExpr, BindError> {
        if call.args.len() > 1 {
            return Err(self.error(
                call.span,
                format!(
                    "function 'pack_all' expects 0 or 1 arguments, got {}",
                    call.args.len()
                ),
            ));
        }
        let Some(schema) = ctx.schema else {
            return Err(self.error(call.span, "pack_all() needs input columns"));
        };
        self.check_column_use("*", call.span)?;
        let mut args = Vec::with_capacity(schema.len() * 2);
        for (index, column) in schema.columns.iter().enumerate() {
            args.push(BoundExpr::literal(
                Literal::String(column.name.clone()),
                call.span,
            ));
            args.push(BoundExpr::column(index, column, call.span));
        }
        Ok(BoundExpr::new(
            BoundExprKind::Call {
                function: "bag_pack",
                args,
            },
            T::Dynamic,
            call.span,
        ))
    }
}

/// The default output name of a single-output aggregate call (§7).
pub(crate) fn aggregate_name(call: &ast::FunctionCall, resolved: &Resolved) -> Option<String> {
    let arg_name = || {
        call.args
            .first()
            .and_then(super::names::derived_name)
            .unwrap_or_default()
    };
    match resolved.naming() {
        Naming::Fixed(name) => Some(name.to_string()),
        Naming::Prefix(prefix) => Some(format!("{prefix}{}", arg_name())),
        Naming::OwnArg => Some(
            call.args
                .first()
                .and_then(super::names::derived_name)
                .unwrap_or_else(|| format!("{}_", resolved.signature.name)),
        ),
        Naming::Percentile => {
            let value = call
                .args
                .get(1)
                .and_then(|a| match &a.kind {
                    ast::ExprKind::Literal(literal) => super::names::number_part(literal),
                    _ => None,
                })
                .unwrap_or_default();
            Some(format!("percentile_{}_{value}", arg_name()))
        }
        Naming::ArgExtreme(_) | Naming::LegacyArgExtreme(_) | Naming::Plain => None,
    }
}
