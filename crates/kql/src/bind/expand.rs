//! `mv-expand`, `mv-apply` (§4.7) and `parse`/`parse-where` (§4.8).
//!
//! All three may add columns under names that already exist, which replaces them in
//! place (as `extend` does). The IR nodes only ever append or keep columns; where a
//! replacement is needed the binder adds a projection, so each node stays simple.

use super::names::{self, derived_name};
use super::{ApplyOutput, BoundExpr, BoundExprKind, Column, ExpandColumn, ParseKind, ParseSegment};
use super::{Binder, Rel, RelKind, Schema};
use crate::ast::{self, ScalarType};
use crate::bind::error::BindError;
use crate::span::Span;

use ScalarType as T;

/// Legacy `mvexpand` expands at most this many elements per row unless told otherwise.
const LEGACY_EXPAND_LIMIT: i64 = 128;

/// `input` with each `(name, expr)` replacing the same-named column or appended.
fn with_columns(input: Rel, additions: Vec<(String, BoundExpr)>, span: Span) -> Rel {
    if additions.is_empty() {
        return input;
    }
    let mut columns = input.schema.columns.clone();
    let mut exprs: Vec<BoundExpr> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| BoundExpr::column(i, c, span))
        .collect();
    for (name, expr) in additions {
        match columns.iter().position(|c| c.name == name) {
            Some(index) => {
                columns[index].ty = expr.ty;
                exprs[index] = expr;
            }
            None => {
                columns.push(Column::new(name, expr.ty));
                exprs.push(expr);
            }
        }
    }
    let (serialized, table, open) = (input.serialized, input.table.clone(), input.schema.open);
    Rel::new(
        RelKind::Project {
            input: Box::new(input),
            exprs,
        },
        Schema { columns, open },
    )
    .serialized(serialized)
    .with_table(table)
}

impl Binder<'_> {
    /// The columns to expand; expressions that are not plain columns are added by a
    /// projection first.
    fn expansion_columns(
        &mut self,
        input: Rel,
        items: &[ast::ExpandItem],
        operator: &str,
        span: Span,
    ) -> Result<(Rel, Vec<ExpandColumn>), BindError> {
        let ctx = self.row_ctx(&input);
        let mut planned: Vec<(String, Option<ScalarType>)> = Vec::new();
        let mut additions: Vec<(String, BoundExpr)> = Vec::new();
        for item in items {
            let bound = self.expr(&item.expr, ctx)?;
            if bound.ty != T::Dynamic {
                let hint = if bound.ty == T::String {
                    "; convert it with parse_json()"
                } else {
                    ""
                };
                return Err(self.error(
                    item.expr.span,
                    format!(
                        "{operator} needs a dynamic array or property bag, got {}{hint}",
                        bound.ty
                    ),
                ));
            }
            let bare = match &bound.kind {
                BoundExprKind::Column { index, name } => Some((*index, name.clone())),
                _ => None,
            };
            let name = match (&item.name, &bare) {
                (Some(name), _) => name.text.clone(),
                (None, Some((_, column))) => column.clone(),
                (None, None) => derived_name(&item.expr).ok_or_else(|| {
                    self.error(
                        item.expr.span,
                        format!(
                            "{operator} needs a name for '{}'; write Name = ...",
                            self.snippet(item.expr.span)
                        ),
                    )
                })?,
            };
            if planned.iter().any(|(n, _)| *n == name) {
                return Err(
                    self.error(item.expr.span, format!("column '{name}' is expanded twice"))
                );
            }
            let in_place = bare.as_ref().is_some_and(|(_, column)| *column == name);
            if !in_place {
                additions.push((name.clone(), bound));
            }
            planned.push((name, item.to_type));
        }
        let rel = with_columns(input, additions, span);
        let columns = planned
            .iter()
            .filter_map(|(name, to)| {
                rel.schema
                    .index_of(name)
                    .map(|column| ExpandColumn { column, to: *to })
            })
            .collect();
        Ok((rel, columns))
    }

    fn expansion_limit(
        &mut self,
        input: &Rel,
        limit: Option<&ast::Expr>,
        operator: &str,
    ) -> Result<Option<BoundExpr>, BindError> {
        match limit {
            Some(limit) => {
                let ctx = self.row_ctx(input);
                Ok(Some(self.row_count(limit, operator, ctx)?))
            }
            None => Ok(None),
        }
    }

    pub(crate) fn mv_expand(
        &mut self,
        input: Rel,
        expand: &ast::MvExpand,
        span: Span,
    ) -> Result<Rel, BindError> {
        let limit = self.expansion_limit(&input, expand.limit.as_ref(), "mv-expand")?;
        let limit = match (limit, expand.legacy) {
            (None, true) => Some(BoundExpr::literal(
                ast::Literal::Long(LEGACY_EXPAND_LIMIT),
                span,
            )),
            (limit, _) => limit,
        };
        let (rel, columns) = self.expansion_columns(input, &expand.items, "mv-expand", span)?;
        let mut schema = rel.schema.clone();
        for column in &columns {
            schema.columns[column.column].ty = column.to.unwrap_or(T::Dynamic);
        }
        if let Some(index) = &expand.item_index {
            if schema.contains(&index.text) {
                return Err(self.error(
                    index.span,
                    format!("with_itemindex column '{}' already exists", index.text),
                ));
            }
            schema
                .columns
                .push(Column::new(index.text.clone(), T::Long));
        }
        let table = rel.table.clone();
        Ok(Rel::new(
            RelKind::MvExpand {
                input: Box::new(rel),
                columns,
                bag_expansion: expand.bag_expansion,
                with_item_index: expand.item_index.is_some(),
                limit: limit.map(Box::new),
            },
            schema,
        )
        .with_table(table))
    }

    pub(crate) fn mv_apply(
        &mut self,
        input: Rel,
        apply: &ast::MvApply,
        span: Span,
    ) -> Result<Rel, BindError> {
        let limit = self.expansion_limit(&input, apply.limit.as_ref(), "mv-apply")?;
        let (rel, columns) = self.expansion_columns(input, &apply.items, "mv-apply", span)?;
        let mut sub_columns: Vec<Column> = columns
            .iter()
            .map(|c| {
                Column::new(
                    rel.schema.columns[c.column].name.clone(),
                    c.to.unwrap_or(T::Dynamic),
                )
            })
            .collect();
        if let Some(index) = &apply.item_index {
            if sub_columns.iter().any(|c| c.name == index.text) {
                return Err(self.error(
                    index.span,
                    format!("with_itemindex column '{}' is also expanded", index.text),
                ));
            }
            sub_columns.push(Column::new(index.text.clone(), T::Long));
        }
        let mut sub = Rel::new(RelKind::ApplyInput, Schema::new(sub_columns));
        for operator in &apply.subquery {
            sub = self.operator(sub, operator, span)?;
        }

        let expanded: Vec<usize> = columns.iter().map(|c| c.column).collect();
        let mut outputs = Vec::new();
        let mut out_columns: Vec<Column> = Vec::new();
        let mut used = vec![false; sub.schema.len()];
        for (index, column) in rel.schema.columns.iter().enumerate() {
            let in_sub = sub.schema.index_of(&column.name);
            match (expanded.contains(&index), in_sub) {
                (true, Some(j)) => {
                    outputs.push(ApplyOutput::Sub(j));
                    out_columns.push(sub.schema.columns[j].clone());
                    used[j] = true;
                }
                (true, None) => {}
                (false, _) => {
                    outputs.push(ApplyOutput::Outer(index));
                    out_columns.push(column.clone());
                }
            }
        }
        for (j, column) in sub.schema.columns.iter().enumerate() {
            if !used[j] {
                let name = names::unique(&column.name, |n| out_columns.iter().any(|c| c.name == n));
                outputs.push(ApplyOutput::Sub(j));
                out_columns.push(Column::new(name, column.ty));
            }
        }
        Ok(Rel::new(
            RelKind::MvApply {
                input: Box::new(rel),
                columns,
                with_item_index: apply.item_index.is_some(),
                limit: limit.map(Box::new),
                subquery: Box::new(sub),
                outputs,
            },
            Schema::new(out_columns),
        ))
    }

    pub(crate) fn parse(
        &mut self,
        input: Rel,
        parse: &ast::Parse,
        drop_unmatched: bool,
        span: Span,
    ) -> Result<Rel, BindError> {
        let ctx = self.row_ctx(&input);
        let source = self.expr(&parse.source, ctx)?;
        let source = if source.ty == T::String {
            source
        } else {
            let span = source.span;
            BoundExpr::new(
                BoundExprKind::Call {
                    function: "tostring",
                    args: vec![source],
                },
                T::String,
                span,
            )
        };
        let kind = match &parse.kind {
            ast::ParseKind::Simple => ParseKind::Simple,
            ast::ParseKind::Relaxed => ParseKind::Relaxed,
            ast::ParseKind::Regex { flags } => ParseKind::Regex {
                flags: flags.clone(),
            },
        };
        let width = input.schema.len();
        let mut schema = input.schema.clone();
        let mut segments = Vec::with_capacity(parse.pattern.len());
        let mut captures: Vec<&ast::Name> = Vec::new();
        let mut after_string_column: Option<&ast::Name> = None;
        for part in &parse.pattern {
            match part {
                ast::ParsePart::Wildcard => {
                    if let Some(column) = after_string_column
                        && !matches!(kind, ParseKind::Regex { .. })
                    {
                        return Err(self.error(
                            column.span,
                            format!(
                                "'*' cannot directly follow the string column '{}' in a parse pattern",
                                column.text
                            ),
                        ));
                    }
                    segments.push(ParseSegment::Wildcard);
                    after_string_column = None;
                }
                ast::ParsePart::Literal(text) => {
                    segments.push(ParseSegment::Literal(text.clone()));
                    after_string_column = None;
                }
                ast::ParsePart::Column { name, ty } => {
                    if captures.iter().any(|c| c.text == name.text) {
                        return Err(self.error(
                            name.span,
                            format!("column '{}' appears twice in the parse pattern", name.text),
                        ));
                    }
                    let ty = ty.unwrap_or(T::String);
                    let internal = names::unique(&name.text, |n| schema.contains(n));
                    segments.push(ParseSegment::Capture {
                        column: schema.len(),
                        ty,
                    });
                    schema.columns.push(Column::new(internal, ty));
                    captures.push(name);
                    after_string_column = (ty == T::String).then_some(name);
                }
            }
        }
        let (serialized, table) = (input.serialized, input.table.clone());
        let parsed = Rel::new(
            RelKind::Parse {
                input: Box::new(input),
                source: Box::new(source),
                kind,
                segments,
                drop_unmatched,
            },
            schema,
        )
        .serialized(serialized)
        .with_table(table);
        // Captures named like an input column replace it in place.
        let replacing = |k: usize| parsed.schema.columns[width + k].name != captures[k].text;
        if !(0..captures.len()).any(replacing) {
            return Ok(parsed);
        }
        let mut columns = Vec::with_capacity(parsed.schema.len());
        let mut exprs = Vec::with_capacity(parsed.schema.len());
        for (index, column) in parsed.schema.columns.iter().enumerate().take(width) {
            let source = (0..captures.len())
                .find(|k| replacing(*k) && captures[*k].text == column.name)
                .map_or(index, |k| width + k);
            let chosen = &parsed.schema.columns[source];
            columns.push(Column::new(column.name.clone(), chosen.ty));
            exprs.push(BoundExpr::column(source, chosen, span));
        }
        for k in (0..captures.len()).filter(|k| !replacing(*k)) {
            let column = &parsed.schema.columns[width + k];
            columns.push(column.clone());
            exprs.push(BoundExpr::column(width + k, column, span));
        }
        let (serialized, table) = (parsed.serialized, parsed.table.clone());
        Ok(Rel::new(
            RelKind::Project {
                input: Box::new(parsed),
                exprs,
            },
            Schema::new(columns),
        )
        .serialized(serialized)
        .with_table(table))
    }
}
