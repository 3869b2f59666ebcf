//! Window functions (§6.9): `row_number`, `prev`, `next`, `row_cumsum`, over the hidden
//! row-order column of serialized input.
//!
//! A window call inside an expression becomes a column of a DataFusion `Window` node
//! added below the operator (see [`super::rel::Lowerer::with_windows`]); the expression
//! reads that column. A `restart` argument splits the rows into runs: a running count
//! of the restart flags (itself a window, one level down) numbers the run each row is
//! in, and the function is partitioned by it.

use super::error::PlanError;
use super::expr::{Scope, constant_value};
use super::rel::{APPLY, Lowerer, constant_long, named};
use super::types::{arrow_type, literal};
use crate::ast::{Literal, ScalarType};
use crate::bind::BoundExpr;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::functions_window::expr_fn::{lag, lead, row_number};
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, Operator, SortExpr, WindowFrame, WindowFrameBound, WindowFrameUnits,
    WindowFunctionDefinition, binary_expr, cast, lit, when,
};
use datafusion::prelude::coalesce;

/// `ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`
pub(crate) fn running_frame() -> WindowFrame {
    WindowFrame::new_bounds(
        WindowFrameUnits::Rows,
        WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
        WindowFrameBound::CurrentRow,
    )
}

fn running_sum(
    value: Expr,
    partition: Vec<Expr>,
    order_by: Vec<SortExpr>,
) -> Result<Expr, PlanError> {
    Ok(Expr::from(WindowFunction::new(
        WindowFunctionDefinition::AggregateUDF(sum_udaf()),
        vec![value],
    ))
    .partition_by(partition)
    .order_by(order_by)
    .window_frame(running_frame())
    .build()?)
}

impl Lowerer<'_> {
    /// Registers a window expression at `level`; returns the expression reading it.
    fn add_window(
        &self,
        window: Expr,
        level: usize,
        node: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let Some(windows) = scope.windows.as_deref_mut() else {
            return Err(self.error(node.span, "window functions cannot be used here"));
        };
        // The same window twice (`prev(x)` in two items) is computed once: DataFusion's
        // optimizer merges identical window expressions and would lose the second name.
        for (existing_level, existing) in windows.iter() {
            if let Expr::Alias(alias) = existing
                && *existing_level == level
                && *alias.expr == window
            {
                return Ok(named(&alias.name));
            }
        }
        let name = self.fresh("window");
        windows.push((level, window.alias(&name)));
        Ok(named(&name))
    }

    /// Lowers a window function's argument; returns it and the level a window reading it
    /// needs (one past the windows it reads).
    fn window_arg(
        &self,
        arg: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<(Expr, usize), PlanError> {
        let value = self.expr(arg, scope)?;
        let refs = value.column_refs();
        let level = scope.windows.as_deref().map_or(0, |windows| {
            windows
                .iter()
                .filter_map(|(level, window)| match window {
                    Expr::Alias(alias) if refs.iter().any(|c| c.name == alias.name) => {
                        Some(level + 1)
                    }
                    _ => None,
                })
                .max()
                .unwrap_or(0)
        });
        Ok((value, level))
    }

    /// The run number of each row given a restart flag (`None` for no restarts), with the
    /// level after which the run number is available.
    fn runs(
        &self,
        restart: Option<&BoundExpr>,
        order_by: &[SortExpr],
        node: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<(Vec<Expr>, usize), PlanError> {
        let mut partition = Vec::new();
        if self.in_apply() {
            partition.push(named(APPLY));
        }
        let Some(restart) = restart else {
            return Ok((partition, 0));
        };
        if matches!(constant_value(restart), Some(Literal::Bool(false))) {
            return Ok((partition, 0));
        }
        let (flag, level) = self.window_arg(restart, scope)?;
        let flag = when(coalesce(vec![flag, lit(false)]), lit(1i64)).otherwise(lit(0i64))?;
        let run = running_sum(flag, partition.clone(), order_by.to_vec())?;
        let run = self.add_window(run, level, node, scope)?;
        partition.push(run);
        Ok((partition, level + 1))
    }

    pub(crate) fn window_call(
        &self,
        function: &str,
        args: &[BoundExpr],
        node: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let Some(order) = scope.order.clone() else {
            return Err(self.error(
                node.span,
                format!("'{function}' needs serialized input (sort or serialize the rows first)"),
            ));
        };
        let order_by = vec![order.sort(true, false)];
        match function {
            "row_number" => {
                let start = match args.first() {
                    Some(a) => constant_long(a).ok_or_else(|| {
                        self.error(a.span, "row_number's start must be a constant")
                    })?,
                    None => 1,
                };
                let (partition, level) = self.runs(args.get(1), &order_by, node, scope)?;
                let w = row_number()
                    .partition_by(partition)
                    .order_by(order_by)
                    .build()?;
                let value = self.add_window(w, level, node, scope)?;
                Ok(binary_expr(
                    cast(value, DataType::Int64),
                    Operator::Plus,
                    lit(start - 1),
                ))
            }
            "prev" | "next" => {
                let (value, level) = self.window_arg(self.first(args, node)?, scope)?;
                let offset = match args.get(1) {
                    Some(a) => constant_long(a).ok_or_else(|| {
                        self.error(a.span, format!("{function}'s offset must be a constant"))
                    })?,
                    None => 1,
                };
                let default = match args.get(2) {
                    Some(a) => {
                        let Some(value) = constant_value(a) else {
                            return Err(self.error(
                                a.span,
                                format!("{function}'s default must be a constant"),
                            ));
                        };
                        let scalar = literal(&value, a.ty).map_err(|m| self.error(a.span, m))?;
                        Some(scalar.cast_to(&arrow_type(node.ty))?)
                    }
                    // Strings have no null: past the edge is "".
                    None if node.ty == ScalarType::String => {
                        Some(ScalarValue::Utf8(Some(String::new())))
                    }
                    None => None,
                };
                let (partition, _) = self.runs(None, &order_by, node, scope)?;
                let w = if function == "prev" {
                    lag(value, Some(offset), default)
                } else {
                    lead(value, Some(offset), default)
                };
                let w = w.partition_by(partition).order_by(order_by).build()?;
                self.add_window(w, level, node, scope)
            }
            "row_cumsum" => {
                let (value, value_level) = self.window_arg(self.first(args, node)?, scope)?;
                let value = cast(value, arrow_type(node.ty));
                let (partition, level) = self.runs(args.get(1), &order_by, node, scope)?;
                let w = running_sum(value, partition, order_by)?;
                self.add_window(w, level.max(value_level), node, scope)
            }
            other => Err(self.error(
                node.span,
                format!("window function '{other}' is not supported"),
            )),
        }
    }
}
