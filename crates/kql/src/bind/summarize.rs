//! `summarize`, `count` and `make-series`.
//!
//! A summarize item may combine aggregates arithmetically (`100.0 * countif(F) /
//! count()`), which DataFusion's aggregate node cannot express. The binder splits it:
//! an [`RelKind::Aggregate`] computing each aggregate once, and, only when some item is
//! more than a bare aggregate, a projection over it that computes the items. Hidden
//! aggregate outputs are named `$aggN`, a prefix only bracketed names can spell.

use super::calls::{aggregate_name, is_multi_output};
use super::functions::{self, Naming, Resolved};
use super::names::{self, derived_name};
use super::{AggBan, AggState, Binder, Ctx, types};
use super::{
    AggregateCall, BoundExpr, BoundExprKind, Column, Rel, RelKind, Schema, SeriesAggregate,
};
use crate::ast::{self, AssignTarget, Literal, ScalarType};
use crate::bind::error::BindError;
use crate::span::Span;

use ScalarType as T;

/// Output names so far, with the rules for adding one.
struct Names(Vec<String>);

impl Names {
    fn taken(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }

    /// Adds `auto` with a numeric suffix if it is taken.
    fn add_auto(&mut self, auto: &str) -> String {
        let name = names::unique(auto, |n| self.taken(n));
        self.0.push(name.clone());
        name
    }
}

impl Binder<'_> {
    fn claim(
        &self,
        names: &mut Names,
        explicit: &ast::Name,
        operator: &str,
    ) -> Result<String, BindError> {
        if names.taken(&explicit.text) {
            return Err(self.error(
                explicit.span,
                format!("duplicate column name '{}' in '{operator}'", explicit.text),
            ));
        }
        names.0.push(explicit.text.clone());
        Ok(explicit.text.clone())
    }

    /// The `by` list: bound keys, their names added to `names`. Aggregates are refused
    /// there ("cannot be used in 'by'"), even inside an enclosing summarize.
    fn group_keys(
        &mut self,
        by: &[ast::NamedExpr],
        ctx: Ctx<'_>,
        operator: &str,
        names: &mut Names,
    ) -> Result<Vec<BoundExpr>, BindError> {
        let outer_ban = std::mem::replace(&mut self.agg_ban, AggBan::By);
        let outer_agg = self.agg.take();
        let result = self.group_keys_inner(by, ctx, operator, names);
        self.agg_ban = outer_ban;
        self.agg = outer_agg;
        result
    }

    fn group_keys_inner(
        &mut self,
        by: &[ast::NamedExpr],
        ctx: Ctx<'_>,
        operator: &str,
        names: &mut Names,
    ) -> Result<Vec<BoundExpr>, BindError> {
        let mut keys = Vec::with_capacity(by.len());
        for item in by {
            keys.push(self.expr(&item.expr, ctx)?);
            match &item.name {
                Some(AssignTarget::Single(name)) => {
                    self.claim(names, name, operator)?;
                }
                Some(AssignTarget::Tuple(_)) => {
                    self.item_name(item.name.as_ref(), &item.expr, &|_| false, operator, true)?;
                }
                None => {
                    let auto = derived_name(&item.expr)
                        .unwrap_or_else(|| names::next_column_name(|n| names.taken(n)));
                    names.add_auto(&auto);
                }
            }
        }
        Ok(keys)
    }

    pub(crate) fn summarize(
        &mut self,
        input: Rel,
        summarize: &ast::Summarize,
        span: Span,
    ) -> Result<Rel, BindError> {
        let ctx = self.row_ctx(&input);
        let mut names = Names(Vec::new());
        let keys = self.group_keys(&summarize.by, ctx, "summarize", &mut names)?;
        let key_columns: Vec<usize> = keys
            .iter()
            .filter_map(|k| match &k.kind {
                BoundExprKind::Column { index, .. } => Some(*index),
                _ => None,
            })
            .collect();

        self.agg = Some(AggState {
            base: keys.len(),
            calls: Vec::new(),
            outputs: 0,
            inside: false,
        });
        let items = self.summarize_items(&summarize.aggregates, ctx, &mut names, &key_columns);
        let state = self.agg.take();
        let items = items?;
        let calls = state.map(|s| s.calls).unwrap_or_default();
        Ok(aggregate_rel(input, keys, calls, &names.0, items, span))
    }

    /// Binds the aggregate items: each yields one or more `(name, expression over the
    /// aggregate outputs)`.
    fn summarize_items(
        &mut self,
        items: &[ast::NamedExpr],
        ctx: Ctx<'_>,
        names: &mut Names,
        key_columns: &[usize],
    ) -> Result<Vec<(String, BoundExpr)>, BindError> {
        let mut out = Vec::new();
        for item in items {
            if let ast::ExprKind::Call(call) = &item.expr.kind
                && self.scope.lookup(&call.name.text).is_none()
                && let Some(resolved) = functions::lookup(&call.name.text, call.args.len())
                && is_multi_output(&resolved, call)
            {
                let columns = self.multi_aggregate(
                    call,
                    resolved,
                    item.name.as_ref(),
                    ctx,
                    names,
                    key_columns,
                )?;
                out.extend(columns);
                continue;
            }
            let before = self.agg.as_ref().map_or(0, |s| s.calls.len());
            let bound = self.expr(&item.expr, ctx)?;
            let after = self.agg.as_ref().map_or(0, |s| s.calls.len());
            if after == before {
                return Err(self.error(
                    item.expr.span,
                    format!(
                        "summarize needs an aggregate function (such as count() or sum(x)) in '{}'",
                        self.snippet(item.expr.span)
                    ),
                ));
            }
            let name = match &item.name {
                Some(AssignTarget::Single(name)) => self.claim(names, name, "summarize")?,
                Some(AssignTarget::Tuple(_)) => self.item_name(
                    item.name.as_ref(),
                    &item.expr,
                    &|_| false,
                    "summarize",
                    true,
                )?,
                None => {
                    let auto = match &item.expr.kind {
                        ast::ExprKind::Call(call) => {
                            functions::lookup(&call.name.text, call.args.len())
                                .and_then(|r| aggregate_name(call, &r))
                        }
                        _ => None,
                    };
                    let auto = auto
                        .or_else(|| derived_name(&item.expr))
                        .unwrap_or_else(|| names::next_column_name(|n| names.taken(n)));
                    names.add_auto(&auto)
                }
            };
            out.push((name, bound));
        }
        Ok(out)
    }

    /// `arg_max`/`arg_min` (and legacy `argmax`), `take_any` of several columns or `*`,
    /// `percentiles`: one aggregate, several output columns.
    fn multi_aggregate(
        &mut self,
        call: &ast::FunctionCall,
        resolved: Resolved,
        target: Option<&AssignTarget>,
        ctx: Ctx<'_>,
        names: &mut Names,
        key_columns: &[usize],
    ) -> Result<Vec<(String, BoundExpr)>, BindError> {
        let resolved = self.resolve_function(call).map(|_| resolved)?;
        let signature = resolved.signature;
        let name = call.name.text.as_str();
        if let Some(state) = self.agg.as_mut() {
            state.inside = true;
        }
        let bound = match signature.name {
            "arg_max" | "arg_min" => self.arg_extreme_args(call, resolved, ctx, names, key_columns),
            "take_any" => self.take_any_args(call, resolved, ctx, names, key_columns),
            _ => self.percentiles_args(call, ctx),
        };
        if let Some(state) = self.agg.as_mut() {
            state.inside = false;
        }
        let (args, auto) = bound?;

        let outputs: Vec<ScalarType> = match signature.name {
            "percentiles" => vec![args[0].ty; args.len() - 1],
            _ => args.iter().map(|a| a.ty).collect(),
        };
        let final_names: Vec<String> = match target {
            Some(AssignTarget::Tuple(given)) => {
                if given.len() != outputs.len() {
                    return Err(self.error(
                        call.span,
                        format!(
                            "'{name}' returns {} columns but {} names were given",
                            outputs.len(),
                            given.len()
                        ),
                    ));
                }
                let mut out = Vec::new();
                for given_name in given {
                    out.push(self.claim(names, given_name, "summarize")?);
                }
                out
            }
            Some(AssignTarget::Single(given)) => {
                let mut out = vec![self.claim(names, given, "summarize")?];
                for auto_name in auto.iter().skip(1) {
                    out.push(names.add_auto(auto_name));
                }
                out
            }
            None => auto.iter().map(|a| names.add_auto(a)).collect(),
        };
        let first = self.record_aggregate(signature.name, args, outputs.clone(), call.span);
        let BoundExprKind::Column { index: start, .. } = first.kind else {
            return Err(self.error(call.span, format!("'{name}' is only allowed in summarize")));
        };
        Ok(final_names
            .into_iter()
            .zip(outputs)
            .enumerate()
            .map(|(offset, (column_name, ty))| {
                let index = start + offset;
                (
                    column_name,
                    BoundExpr::new(
                        BoundExprKind::Column {
                            index,
                            name: format!("$agg{index}"),
                        },
                        ty,
                        call.span,
                    ),
                )
            })
            .collect())
    }

    /// `arg_max(e [, col | Name = col | *] ...)`: the arguments and their default names.
    fn arg_extreme_args(
        &mut self,
        call: &ast::FunctionCall,
        resolved: Resolved,
        ctx: Ctx<'_>,
        names: &Names,
        key_columns: &[usize],
    ) -> Result<(Vec<BoundExpr>, Vec<String>), BindError> {
        let (first_given, first) = named(&call.args[0]);
        let extreme = self.expr(first, ctx)?;
        if !functions::Arg::Orderable.accepts(extreme.ty) {
            return Err(self.error(
                first.span,
                format!(
                    "function '{}' expects {} as argument 1, got {}",
                    call.name.text,
                    functions::Arg::Orderable.describe(),
                    extreme.ty
                ),
            ));
        }
        let extreme_column = match &extreme.kind {
            BoundExprKind::Column { index, .. } => Some(*index),
            _ => None,
        };
        let legacy = matches!(resolved.naming(), Naming::LegacyArgExtreme(_));
        let first_name = match (first_given, resolved.naming()) {
            (Some(given), _) => given.text.clone(),
            (None, Naming::LegacyArgExtreme(prefix)) => {
                format!("{prefix}{}", derived_name(first).unwrap_or_default())
            }
            (None, Naming::ArgExtreme(prefix)) => {
                derived_name(first).unwrap_or_else(|| prefix.to_string())
            }
            (None, _) => derived_name(first).unwrap_or_default(),
        };
        // Legacy `argmax` names returned columns `max_<e>_<column>`.
        let returned_name = |column: &str| {
            if legacy {
                format!("{first_name}_{column}")
            } else {
                column.to_string()
            }
        };
        let schema = ctx.schema.cloned().unwrap_or_default();
        let mut args = vec![extreme];
        let mut auto = vec![first_name.clone()];
        for arg in &call.args[1..] {
            if matches!(arg.kind, ast::ExprKind::Star) {
                // Every input column not yet output and not a `by` key (§7).
                for (index, column) in schema.columns.iter().enumerate() {
                    let already = args.iter().any(
                        |a| matches!(&a.kind, BoundExprKind::Column { index: i, .. } if *i == index),
                    );
                    let skip = key_columns.contains(&index)
                        || extreme_column == Some(index)
                        || already
                        || names.taken(&column.name)
                        || auto.contains(&column.name);
                    if !skip {
                        args.push(BoundExpr::column(index, column, arg.span));
                        auto.push(returned_name(&column.name));
                    }
                }
            } else if let (Some(given), value) = named(arg) {
                args.push(self.expr(value, ctx)?);
                auto.push(given.text.clone());
            } else {
                args.push(self.expr(arg, ctx)?);
                let own = derived_name(arg).unwrap_or_else(|| {
                    names::next_column_name(|n| names.taken(n) || auto.iter().any(|a| a == n))
                });
                auto.push(returned_name(&own));
            }
        }
        Ok((args, auto))
    }

    /// `take_any(a, b, ...)` / `take_any(*)`: each argument keeps its own name.
    fn take_any_args(
        &mut self,
        call: &ast::FunctionCall,
        resolved: Resolved,
        ctx: Ctx<'_>,
        names: &Names,
        key_columns: &[usize],
    ) -> Result<(Vec<BoundExpr>, Vec<String>), BindError> {
        // Legacy `any` prefixes `any_`.
        let prefix = match resolved.naming() {
            Naming::Prefix(prefix) => prefix,
            _ => "",
        };
        let schema = ctx.schema.cloned().unwrap_or_default();
        let mut args = Vec::new();
        let mut auto: Vec<String> = Vec::new();
        for arg in &call.args {
            if matches!(arg.kind, ast::ExprKind::Star) {
                for (index, column) in schema.columns.iter().enumerate() {
                    if !key_columns.contains(&index) && !names.taken(&column.name) {
                        args.push(BoundExpr::column(index, column, arg.span));
                        auto.push(format!("{prefix}{}", column.name));
                    }
                }
            } else {
                args.push(self.expr(arg, ctx)?);
                let own = derived_name(arg).unwrap_or_else(|| {
                    names::next_column_name(|n| names.taken(n) || auto.iter().any(|a| a == n))
                });
                auto.push(format!("{prefix}{own}"));
            }
        }
        Ok((args, auto))
    }

    /// `percentiles(x, p1, p2, ...)`: one column per constant percentile.
    fn percentiles_args(
        &mut self,
        call: &ast::FunctionCall,
        ctx: Ctx<'_>,
    ) -> Result<(Vec<BoundExpr>, Vec<String>), BindError> {
        let name = call.name.text.as_str();
        let value = self.expr(&call.args[0], ctx)?;
        if !functions::Arg::Temporal.accepts(value.ty) {
            return Err(self.error(
                call.args[0].span,
                format!(
                    "function '{name}' expects {} as argument 1, got {}",
                    functions::Arg::Temporal.describe(),
                    value.ty
                ),
            ));
        }
        let value_name = derived_name(&call.args[0]).unwrap_or_default();
        let mut args = vec![value];
        let mut auto = Vec::new();
        for (position, arg) in call.args.iter().enumerate().skip(1) {
            let bound = self.expr(arg, ctx)?;
            let number = match &arg.kind {
                ast::ExprKind::Literal(literal) if bound.ty.is_numeric() => {
                    names::number_part(literal)
                }
                _ => None,
            };
            let Some(number) = number else {
                return Err(self.error(
                    arg.span,
                    format!(
                        "function '{name}' expects a constant number as argument {}",
                        position + 1
                    ),
                ));
            };
            auto.push(format!("percentile_{value_name}_{number}"));
            args.push(bound.cast_to(T::Real));
        }
        Ok((args, auto))
    }

    /// `count`: one row, one long column `Count`.
    pub(crate) fn count(&mut self, input: Rel) -> Rel {
        Rel::new(
            RelKind::Aggregate {
                input: Box::new(input),
                keys: Vec::new(),
                aggregates: vec![AggregateCall {
                    function: "count",
                    args: Vec::new(),
                    outputs: vec![T::Long],
                }],
            },
            Schema::new(vec![Column::new("Count", T::Long)]),
        )
    }

    /// `make-series Agg [default=V], ... on Axis [from A] [to B] step S [by Key, ...]`
    pub(crate) fn make_series(
        &mut self,
        input: Rel,
        series: &ast::MakeSeries,
        _span: Span,
    ) -> Result<Rel, BindError> {
        let ctx = self.row_ctx(&input);
        let mut names = Names(Vec::new());
        let keys = self.group_keys(&series.by, ctx, "make-series", &mut names)?;
        let mut columns: Vec<Column> = keys
            .iter()
            .zip(&names.0)
            .map(|(k, n)| Column::new(n.clone(), k.ty))
            .collect();

        let axis = self.expr(&series.on, ctx)?;
        let step_type = match axis.ty {
            T::Datetime | T::Timespan => T::Timespan,
            t if t.is_numeric() => t,
            other => {
                return Err(self.error(
                    series.on.span,
                    format!("make-series needs a datetime, timespan or numeric axis after 'on', got {other}"),
                ));
            }
        };
        let bound_range = |binder: &mut Self,
                           expr: &Option<ast::Expr>,
                           want: ScalarType,
                           what: &str|
         -> Result<Option<BoundExpr>, BindError> {
            let Some(expr) = expr else { return Ok(None) };
            let bound = binder.expr(expr, Ctx::CONSTANT)?;
            let fits = types::assignable(bound.ty, want) || bound.ty == T::Dynamic;
            if !fits {
                return Err(binder.error(
                    expr.span,
                    format!(
                        "make-series '{what}' must be {}, got {}",
                        want.with_article(),
                        bound.ty
                    ),
                ));
            }
            Ok(Some(if want.is_numeric() {
                bound.cast_to(want)
            } else {
                bound
            }))
        };
        let from = bound_range(self, &series.range.from, axis.ty, "from")?;
        let to = bound_range(self, &series.range.to, axis.ty, "to")?;
        let step = bound_range(self, &Some(series.range.step.clone()), step_type, "step")?
            .unwrap_or_else(|| {
                BoundExpr::literal(types::empty_literal(step_type), series.range.step.span)
            });

        let mut aggregates = Vec::with_capacity(series.aggregates.len());
        for item in &series.aggregates {
            self.agg = Some(AggState {
                base: 0,
                calls: Vec::new(),
                outputs: 0,
                inside: false,
            });
            let bound = self.expr(&item.expr, ctx);
            let state = self.agg.take();
            let bound = bound?;
            let mut calls = state.map(|s| s.calls).unwrap_or_default();
            let plain =
                calls.len() == 1 && matches!(bound.kind, BoundExprKind::Column { index: 0, .. });
            let (Some(call), true) = (calls.pop(), plain) else {
                return Err(self.error(
                    item.expr.span,
                    format!(
                        "make-series needs a plain aggregate such as count() or avg(x), got '{}'",
                        self.snippet(item.expr.span)
                    ),
                ));
            };
            let ty = call.outputs.first().copied().unwrap_or(T::Dynamic);
            let default = match &item.default {
                Some(default) => {
                    let value = self.expr(default, Ctx::CONSTANT)?;
                    if !types::assignable(value.ty, ty) {
                        return Err(self.error(
                            default.span,
                            format!(
                                "the default must be {} like the aggregate, got {}",
                                ty.with_article(),
                                value.ty
                            ),
                        ));
                    }
                    value.cast_to(ty)
                }
                None if ty.is_numeric() => {
                    BoundExpr::literal(Literal::Long(0), item.expr.span).cast_to(ty)
                }
                None => BoundExpr::literal(types::empty_literal(ty), item.expr.span),
            };
            let name = match &item.name {
                Some(name) => self.claim(&mut names, name, "make-series")?,
                None => {
                    let auto = match &item.expr.kind {
                        ast::ExprKind::Call(c) => functions::lookup(&c.name.text, c.args.len())
                            .and_then(|r| aggregate_name(c, &r)),
                        _ => None,
                    }
                    .unwrap_or_else(|| names::next_column_name(|n| names.taken(n)));
                    names.add_auto(&auto)
                }
            };
            columns.push(Column::new(name, T::Dynamic));
            aggregates.push(SeriesAggregate { call, default });
        }
        let axis_name =
            derived_name(&series.on).unwrap_or_else(|| names::next_column_name(|n| names.taken(n)));
        columns.push(Column::new(names.add_auto(&axis_name), T::Dynamic));
        Ok(Rel::new(
            RelKind::MakeSeries {
                input: Box::new(input),
                keys,
                aggregates,
                axis: Box::new(axis),
                from: from.map(Box::new),
                to: to.map(Box::new),
                step: Box::new(step),
            },
            Schema::new(columns),
        ))
    }
}

/// `Name = value` -> (the name, the value); anything else -> (none, itself).
fn named(arg: &ast::Expr) -> (Option<&ast::Name>, &ast::Expr) {
    match &arg.kind {
        ast::ExprKind::NamedArgument { name, value } => (Some(name), value),
        _ => (None, arg),
    }
}

/// The Aggregate node, plus a projection if some item is more than a bare aggregate.
fn aggregate_rel(
    input: Rel,
    keys: Vec<BoundExpr>,
    calls: Vec<AggregateCall>,
    names: &[String],
    items: Vec<(String, BoundExpr)>,
    span: Span,
) -> Rel {
    let key_count = keys.len();
    let key_columns: Vec<Column> = keys
        .iter()
        .zip(names)
        .map(|(k, n)| Column::new(n.clone(), k.ty))
        .collect();
    let output_types: Vec<ScalarType> = calls.iter().flat_map(|c| c.outputs.clone()).collect();
    let bare = items.len() == output_types.len()
        && items.iter().enumerate().all(|(i, (_, e))| {
            matches!(&e.kind, BoundExprKind::Column { index, .. } if *index == key_count + i)
        });
    let mut columns = key_columns.clone();
    if bare {
        columns.extend(
            items
                .iter()
                .zip(&output_types)
                .map(|((name, _), ty)| Column::new(name.clone(), *ty)),
        );
    } else {
        for (i, ty) in output_types.iter().enumerate() {
            let name = names::unique(&format!("$agg{}", key_count + i), |n| {
                columns.iter().any(|c| c.name == n)
            });
            columns.push(Column::new(name, *ty));
        }
    }
    let aggregate = Rel::new(
        RelKind::Aggregate {
            input: Box::new(input),
            keys,
            aggregates: calls,
        },
        Schema::new(columns),
    );
    if bare {
        return aggregate;
    }
    let intermediate = aggregate.schema.clone();
    let mut exprs: Vec<BoundExpr> = key_columns
        .iter()
        .enumerate()
        .map(|(i, c)| BoundExpr::column(i, c, span))
        .collect();
    let mut out_columns = key_columns;
    for (name, mut expr) in items {
        expr.rename_columns(&|i| intermediate.columns.get(i).map(|c| c.name.clone()));
        out_columns.push(Column::new(name, expr.ty));
        exprs.push(expr);
    }
    Rel::new(
        RelKind::Project {
            input: Box::new(aggregate),
            exprs,
        },
        Schema::new(out_columns),
    )
}
