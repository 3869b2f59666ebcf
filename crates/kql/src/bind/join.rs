//! `join` and `lookup` (§4.4, §4.5).
//!
//! The output names are settled here (right columns that collide get `1`, `2`, ...), so
//! the planner only aliases the right side's columns to the names in the schema.

use super::names;
use super::operators::select;
use super::{Binder, suggest, types};
use super::{Column, JoinKey, Rel, RelKind, Schema};
use crate::ast::{self, JoinCondition, JoinKind, LookupKind};
use crate::bind::error::BindError;
use crate::span::Span;

/// Left columns, then right columns renamed where they collide.
fn combined_columns(left: &Schema, right: &[&Column]) -> Vec<Column> {
    let mut columns: Vec<Column> = left.columns.clone();
    for column in right {
        let name = names::unique(&column.name, |n| columns.iter().any(|c| c.name == n));
        columns.push(Column::new(name, column.ty));
    }
    columns
}

impl Binder<'_> {
    /// Resolves `on` conditions to key pairs.
    fn join_keys(
        &self,
        left: &Rel,
        right: &Rel,
        conditions: &[JoinCondition],
    ) -> Result<Vec<JoinKey>, BindError> {
        let find = |rel: &Rel, name: &ast::Name, side: &str| -> Result<usize, BindError> {
            rel.schema.index_of(&name.text).ok_or_else(|| {
                let hint = suggest::hint(
                    &name.text,
                    rel.schema.columns.iter().map(|c| c.name.as_str()),
                );
                self.error(
                    name.span,
                    format!(
                        "join key '{}' not found in the {side} side{hint}",
                        name.text
                    ),
                )
            })
        };
        let mut keys = Vec::with_capacity(conditions.len());
        for condition in conditions {
            let (l_name, r_name) = match condition {
                JoinCondition::Column(name) => (name, name),
                JoinCondition::LeftRight { left, right } => (left, right),
            };
            let l = find(left, l_name, "left")?;
            let r = find(right, r_name, "right")?;
            let (lt, rt) = (left.schema.columns[l].ty, right.schema.columns[r].ty);
            let Some(typed) = types::equality(lt, rt) else {
                let shown = if l_name.text == r_name.text {
                    format!("'{}'", l_name.text)
                } else {
                    format!("'{}' == '{}'", l_name.text, r_name.text)
                };
                return Err(self.error(
                    l_name.span,
                    format!("join key {shown} is {lt} on the left but {rt} on the right"),
                ));
            };
            keys.push(JoinKey {
                left: l,
                right: r,
                ty: typed.operands.unwrap_or(lt),
            });
        }
        Ok(keys)
    }

    pub(crate) fn join(&mut self, left: Rel, join: &ast::Join) -> Result<Rel, BindError> {
        let right = self.tabular(&join.right)?;
        let keys = self.join_keys(&left, &right, &join.on)?;
        let columns = match join.kind {
            JoinKind::LeftSemi | JoinKind::LeftAnti => left.schema.columns.clone(),
            JoinKind::RightSemi | JoinKind::RightAnti => right.schema.columns.clone(),
            _ => {
                let right_columns: Vec<&Column> = right.schema.columns.iter().collect();
                combined_columns(&left.schema, &right_columns)
            }
        };
        Ok(Rel::new(
            RelKind::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind: join.kind,
                keys,
            },
            Schema::new(columns),
        ))
    }

    /// A join without the right key columns (the key appears once).
    pub(crate) fn lookup(&mut self, left: Rel, lookup: &ast::Lookup) -> Result<Rel, BindError> {
        let right = self.tabular(&lookup.right)?;
        let keys = self.join_keys(&left, &right, &lookup.on)?;
        let all_right: Vec<&Column> = right.schema.columns.iter().collect();
        let joined_columns = combined_columns(&left.schema, &all_right);
        let kept_right: Vec<usize> = (0..right.schema.len())
            .filter(|i| !keys.iter().any(|k| k.right == *i))
            .collect();
        let lookup_names: Vec<String> = {
            let kept: Vec<&Column> = kept_right
                .iter()
                .map(|i| &right.schema.columns[*i])
                .collect();
            combined_columns(&left.schema, &kept)
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        let left_width = left.schema.len();
        let kind = match lookup.kind {
            LookupKind::LeftOuter => JoinKind::LeftOuter,
            LookupKind::Inner => JoinKind::Inner,
        };
        let joined = Rel::new(
            RelKind::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                keys,
            },
            Schema::new(joined_columns),
        );
        let indices: Vec<usize> = (0..left_width)
            .chain(kept_right.iter().map(|i| left_width + i))
            .collect();
        Ok(select(
            joined,
            &indices,
            Some(&lookup_names),
            Span::default(),
        ))
    }
}
