//! `join` (every kind of §4.4) and, through the binder, `lookup`.
//!
//! Both sides are first renamed to internal positional names, so that equal column names
//! on the two sides never confuse DataFusion; the output projection then gives every
//! column its name from the join's schema. `innerunique` keeps one left row per key
//! (the first in an arbitrary order, as Kusto does) before an inner join.

use super::error::PlanError;
use super::rel::{Lowered, Lowerer, Resolved, builder, column_expr, columns, named};
use super::types::arrow_type;
use super::udf::dynamic;
use crate::ast::{JoinKind, ScalarType};
use crate::bind::{JoinKey, Rel};
use datafusion::common::JoinType;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{Expr, ExprFunctionExt, LogicalPlan, cast, lit};
use datafusion::prelude::coalesce;

impl Lowerer<'_> {
    /// A side's plan with its columns renamed `<prefix><i>`.
    fn renamed(&self, rel: &Rel, prefix: &str) -> Result<(LogicalPlan, Vec<String>), PlanError> {
        let plan = self.strip(self.rel(rel)?, rel.schema.len())?;
        let names: Vec<String> = (0..rel.schema.len())
            .map(|i| format!("\u{1}{prefix}{i}"))
            .collect();
        let exprs: Vec<Expr> = columns(&plan)
            .iter()
            .zip(&names)
            .map(|(c, n)| column_expr(c).alias(n))
            .collect();
        Ok((builder(plan).project_resolved(exprs)?.build()?, names))
    }

    /// One row per distinct key (`innerunique`'s left side).
    fn first_per_key(&self, plan: LogicalPlan, keys: Vec<Expr>) -> Result<LogicalPlan, PlanError> {
        let width = columns(&plan).len();
        let rank = self.fresh("rank");
        let window = row_number()
            .partition_by(keys)
            .window_frame(super::window::running_frame())
            .build()?
            .alias(&rank);
        let plan = builder(plan).window_resolved(vec![window])?.build()?;
        let keep: Vec<Expr> = columns(&plan).iter().take(width).map(column_expr).collect();
        Ok(builder(plan)
            .filter_resolved(named(&rank).eq(lit(1u64)))?
            .project_resolved(keep)?
            .build()?)
    }

    /// A key column brought to the join key's comparison type.
    fn key_expr(&self, name: &str, ty: ScalarType, key_ty: ScalarType, dynamic_key: bool) -> Expr {
        let column = named(name);
        if dynamic_key {
            dynamic::to_dynamic(column, ty)
        } else if ty == key_ty {
            column
        } else {
            cast(column, arrow_type(key_ty))
        }
    }

    pub(crate) fn join(
        &self,
        rel: &Rel,
        left: &Rel,
        right: &Rel,
        kind: JoinKind,
        keys: &[JoinKey],
    ) -> Result<Lowered, PlanError> {
        if self.in_apply() {
            return Err(PlanError::new(
                "'join' inside mv-apply is not supported yet",
            ));
        }
        let (mut left_plan, left_names) = self.renamed(left, "l")?;
        let (right_plan, right_names) = self.renamed(right, "r")?;
        let mut left_keys = Vec::with_capacity(keys.len());
        let mut right_keys = Vec::with_capacity(keys.len());
        for key in keys {
            let (Some(l_name), Some(r_name)) =
                (left_names.get(key.left), right_names.get(key.right))
            else {
                return Err(PlanError::new(
                    "internal planning error: join key out of range",
                ));
            };
            let (Some(lt), Some(rt)) = (
                left.schema.columns.get(key.left).map(|c| c.ty),
                right.schema.columns.get(key.right).map(|c| c.ty),
            ) else {
                return Err(PlanError::new(
                    "internal planning error: join key out of range",
                ));
            };
            // A dynamic key compares as JSON text, so the other side becomes JSON too.
            let dynamic_key = lt == ScalarType::Dynamic || rt == ScalarType::Dynamic;
            left_keys.push(self.key_expr(l_name, lt, key.ty, dynamic_key));
            right_keys.push(self.key_expr(r_name, rt, key.ty, dynamic_key));
        }
        if kind == JoinKind::InnerUnique {
            left_plan = self.first_per_key(left_plan, left_keys.clone())?;
        }
        let join_type = match kind {
            JoinKind::InnerUnique | JoinKind::Inner => JoinType::Inner,
            JoinKind::LeftOuter => JoinType::Left,
            JoinKind::RightOuter => JoinType::Right,
            JoinKind::FullOuter => JoinType::Full,
            JoinKind::LeftSemi => JoinType::LeftSemi,
            JoinKind::LeftAnti => JoinType::LeftAnti,
            JoinKind::RightSemi => JoinType::RightSemi,
            JoinKind::RightAnti => JoinType::RightAnti,
        };
        let joined = builder(left_plan)
            .join_with_expr_keys(right_plan, join_type, (left_keys, right_keys), None)?
            .build()?;
        // Unmatched rows of an outer join have nulls on the other side; strings have "".
        let left_nullable = matches!(kind, JoinKind::RightOuter | JoinKind::FullOuter);
        let right_nullable = matches!(kind, JoinKind::LeftOuter | JoinKind::FullOuter);
        let output = |name: &str, ty: ScalarType, nullable_side: bool, out: &str| {
            let value = named(name);
            let value = if nullable_side && ty == ScalarType::String {
                coalesce(vec![value, lit("")])
            } else {
                value
            };
            value.alias(out)
        };
        let out = &rel.schema.columns;
        let exprs: Vec<Expr> = match kind {
            JoinKind::LeftSemi | JoinKind::LeftAnti => left_names
                .iter()
                .zip(out)
                .map(|(n, c)| output(n, c.ty, false, &c.name))
                .collect(),
            JoinKind::RightSemi | JoinKind::RightAnti => right_names
                .iter()
                .zip(out)
                .map(|(n, c)| output(n, c.ty, false, &c.name))
                .collect(),
            _ => left_names
                .iter()
                .map(|n| (n, left_nullable))
                .chain(right_names.iter().map(|n| (n, right_nullable)))
                .zip(out)
                .map(|((n, nullable), c)| output(n, c.ty, nullable, &c.name))
                .collect(),
        };
        Ok(Lowered {
            plan: builder(joined).project_resolved(exprs)?.build()?,
            ordered: false,
        })
    }
}
