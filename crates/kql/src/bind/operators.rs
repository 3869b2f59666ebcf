//! Row-wise pipeline operators and the dispatch of every operator.
//!
//! `extend` is the subtle one: later items may use columns defined by earlier items of
//! the same `extend`, but a projection's expressions can only read its input. Items are
//! therefore bound against the columns "so far" and, when one reads a column the same
//! `extend` made, the projection built so far is closed and a new one started on top.

use super::names::{self, derived_name, glob_match, natural_cmp};
use super::scope::Binding;
use super::{Binder, Bound, Ctx};
use super::{BoundExpr, Column, Rel, RelKind, Schema, SortKey};
use crate::ast::{self, Operator, ReorderOrder, ScalarType, SortDirection};
use crate::bind::error::BindError;
use crate::span::Span;

/// A projection being assembled: output columns and the expression of each over `base`.
struct Stage {
    base: Rel,
    outputs: Vec<(Column, BoundExpr)>,
    /// Output columns this stage created or replaced (reading them needs a new stage).
    changed: Vec<bool>,
}

impl Stage {
    fn new(base: Rel, span: Span) -> Stage {
        let outputs: Vec<(Column, BoundExpr)> = base
            .schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), BoundExpr::column(i, c, span)))
            .collect();
        let changed = vec![false; outputs.len()];
        Stage {
            base,
            outputs,
            changed,
        }
    }

    fn schema(&self) -> Schema {
        Schema {
            columns: self.outputs.iter().map(|(c, _)| c.clone()).collect(),
            open: self.base.schema.open,
        }
    }

    fn is_identity(&self) -> bool {
        !self.changed.iter().any(|c| *c) && self.outputs.len() == self.base.schema.len()
    }

    /// The projection so far (or the input itself if nothing changed).
    fn finish(self) -> Rel {
        if self.is_identity() {
            return self.base;
        }
        let schema = self.schema();
        let serialized = self.base.serialized;
        let table = self.base.table.clone();
        let exprs = self.outputs.into_iter().map(|(_, e)| e).collect();
        Rel::new(
            RelKind::Project {
                input: Box::new(self.base),
                exprs,
            },
            schema,
        )
        .serialized(serialized)
        .with_table(table)
    }
}

/// An identity projection of `input` keeping `indices` (in that order) under `names`.
pub(crate) fn select(input: Rel, indices: &[usize], names: Option<&[String]>, span: Span) -> Rel {
    let mut columns = Vec::with_capacity(indices.len());
    let mut exprs = Vec::with_capacity(indices.len());
    for (position, &index) in indices.iter().enumerate() {
        let Some(column) = input.schema.columns.get(index) else {
            continue;
        };
        let name = names
            .and_then(|n| n.get(position).cloned())
            .unwrap_or_else(|| column.name.clone());
        exprs.push(BoundExpr::column(index, column, span));
        columns.push(Column::new(name, column.ty));
    }
    let identity = indices.len() == input.schema.len()
        && indices.iter().enumerate().all(|(i, &j)| i == j)
        && columns
            .iter()
            .zip(&input.schema.columns)
            .all(|(a, b)| a.name == b.name);
    if identity {
        return input;
    }
    let serialized = input.serialized;
    let table = input.table.clone();
    let open = input.schema.open;
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
    pub(crate) fn operator(
        &mut self,
        input: Rel,
        operator: &Operator,
        span: Span,
    ) -> Result<Rel, BindError> {
        match operator {
            Operator::Where(predicate) => self.filter(input, predicate),
            Operator::Project(items) => self.project(input, items, "project"),
            Operator::ProjectAway(patterns) => self.project_away(input, patterns, span),
            Operator::ProjectKeep(patterns) => self.project_keep(input, patterns, span),
            Operator::ProjectRename(renames) => self.project_rename(input, renames, span),
            Operator::ProjectReorder(columns) => self.project_reorder(input, columns, span),
            Operator::Extend(items) => self.extend(input, items, span, false),
            Operator::Summarize(summarize) => self.summarize(input, summarize, span),
            Operator::Count => Ok(self.count(input)),
            Operator::Distinct(columns) => self.distinct(input, columns),
            Operator::Take(count) => {
                let ctx = self.row_ctx(&input);
                let count = self.row_count(count, "take", ctx)?;
                Ok(limit(input, count))
            }
            Operator::Top(top) => self.top(input, top),
            Operator::Sort(keys) => self.sort(input, keys),
            Operator::Join(join) => self.join(input, join),
            Operator::Lookup(lookup) => self.lookup(input, lookup),
            Operator::Union(union) => self.union(Some(input), union, span),
            Operator::MvExpand(expand) => self.mv_expand(input, expand, span),
            Operator::MvApply(apply) => self.mv_apply(input, apply, span),
            Operator::Parse(parse) => self.parse(input, parse, false, span),
            Operator::ParseWhere(parse) => self.parse(input, parse, true, span),
            Operator::MakeSeries(series) => self.make_series(input, series, span),
            Operator::Evaluate(evaluate) => self.evaluate(input, evaluate),
            Operator::Serialize(items) => {
                let table = input.table.clone();
                let schema = input.schema.clone();
                let serialized = Rel::new(
                    RelKind::Serialize {
                        input: Box::new(input),
                    },
                    schema,
                )
                .serialized(true)
                .with_table(table);
                self.extend(serialized, items, span, true)
            }
            Operator::As(name) => {
                self.scope = self.scope.with(&name.text, Binding::Tabular(input.clone()));
                Ok(input)
            }
            Operator::Invoke(call) => self.invoke_operator(input, call),
            Operator::GetSchema => Ok(self.getschema(&input, span)),
            // A visualization hint: no effect on the result.
            Operator::Render(_) => Ok(input),
            Operator::Sample(count) => {
                let ctx = self.row_ctx(&input);
                let count = self.row_count(count, "sample", ctx)?;
                let schema = input.schema.clone();
                Ok(Rel::new(
                    RelKind::Sample {
                        input: Box::new(input),
                        count,
                    },
                    schema,
                ))
            }
            Operator::TopNested(_) => Err(self.error(span, "'top-nested' is not supported yet")),
            Operator::Search(search) => self.search_operator(input, search, span),
        }
    }

    fn filter(&mut self, input: Rel, predicate: &ast::Expr) -> Result<Rel, BindError> {
        let ctx = self.row_ctx(&input);
        let bound = self.expr(predicate, ctx)?;
        if !matches!(bound.ty, ScalarType::Bool | ScalarType::Dynamic) {
            return Err(self.error(
                predicate.span,
                format!("'where' needs a bool predicate, got {}", bound.ty),
            ));
        }
        let schema = input.schema.clone();
        let (serialized, table) = (input.serialized, input.table.clone());
        Ok(Rel::new(
            RelKind::Filter {
                input: Box::new(input),
                predicate: bound,
            },
            schema,
        )
        .serialized(serialized)
        .with_table(table))
    }

    /// A constant integer row count (`take`, `sample`, `top`, `limit` of mv-expand).
    pub(crate) fn row_count(
        &mut self,
        expr: &ast::Expr,
        what: &str,
        ctx: Ctx<'_>,
    ) -> Result<BoundExpr, BindError> {
        let bound = self.expr(expr, ctx)?;
        if !bound.ty.is_integer() {
            return Err(self.error(
                expr.span,
                format!("'{what}' needs an integer row count, got {}", bound.ty),
            ));
        }
        if !bound.is_constant() {
            return Err(self.error(
                expr.span,
                format!("'{what}' needs a constant row count, not one read from the rows"),
            ));
        }
        Ok(bound.cast_to(ScalarType::Long))
    }

    /// The name a `[Name =] expr` item gets: the given one, the derived one, or the
    /// first free `ColumnN`. Explicit names must be new; `suffix_derived` decides whether a
    /// derived name that is taken gets a numeric suffix (extend, summarize) or is an error
    /// (project: §4.1 makes duplicate names an error).
    pub(crate) fn item_name(
        &self,
        target: Option<&ast::AssignTarget>,
        expr: &ast::Expr,
        taken: &dyn Fn(&str) -> bool,
        operator: &str,
        suffix_derived: bool,
    ) -> Result<String, BindError> {
        match target {
            Some(ast::AssignTarget::Single(name)) => {
                if taken(&name.text) {
                    return Err(self.error(
                        name.span,
                        format!("duplicate column name '{}' in '{operator}'", name.text),
                    ));
                }
                Ok(name.text.clone())
            }
            Some(ast::AssignTarget::Tuple(names)) => {
                let span = names.first().map_or(expr.span, |n| n.span);
                Err(self.error(
                    span,
                    format!(
                        "'(A, B) = ...' needs a function returning several columns; '{operator}' items return one"
                    ),
                ))
            }
            None => match derived_name(expr) {
                Some(name) if taken(&name) && !suffix_derived => Err(self.error(
                    expr.span,
                    format!("duplicate column name '{name}' in '{operator}'"),
                )),
                Some(name) => Ok(names::unique(&name, taken)),
                None => Ok(names::next_column_name(taken)),
            },
        }
    }

    fn project(
        &mut self,
        input: Rel,
        items: &[ast::NamedExpr],
        operator: &str,
    ) -> Result<Rel, BindError> {
        let ctx = self.row_ctx(&input);
        let mut schema = Schema::default();
        let mut exprs = Vec::with_capacity(items.len());
        for item in items {
            let bound = self.expr(&item.expr, ctx)?;
            let name = self.item_name(
                item.name.as_ref(),
                &item.expr,
                &|n| schema.contains(n),
                operator,
                false,
            )?;
            schema.columns.push(Column::new(name, bound.ty));
            exprs.push(bound);
        }
        let serialized = input.serialized;
        Ok(Rel::new(
            RelKind::Project {
                input: Box::new(input),
                exprs,
            },
            schema,
        )
        .serialized(serialized))
    }

    /// Columns matching a pattern; a plain name that matches nothing is an error
    /// (unless the schema is open).
    fn matching(&self, input: &Rel, pattern: &ast::NamePattern) -> Result<Vec<usize>, BindError> {
        let matched: Vec<usize> = input
            .schema
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| glob_match(&pattern.text, &c.name))
            .map(|(i, _)| i)
            .collect();
        if matched.is_empty() && !pattern.is_wildcard() && !input.schema.open {
            let name = ast::Name {
                text: pattern.text.clone(),
                span: pattern.span,
            };
            let ctx = Ctx {
                schema: Some(&input.schema),
                table: input.table.as_deref(),
                row: None,
                serialized: false,
            };
            return Err(self.column_not_found(&name, ctx));
        }
        Ok(matched)
    }

    fn project_away(
        &mut self,
        input: Rel,
        patterns: &[ast::NamePattern],
        span: Span,
    ) -> Result<Rel, BindError> {
        let mut drop = vec![false; input.schema.len()];
        for pattern in patterns {
            for index in self.matching(&input, pattern)? {
                drop[index] = true;
            }
        }
        let keep: Vec<usize> = (0..drop.len()).filter(|i| !drop[*i]).collect();
        Ok(select(input, &keep, None, span))
    }

    fn project_keep(
        &mut self,
        input: Rel,
        patterns: &[ast::NamePattern],
        span: Span,
    ) -> Result<Rel, BindError> {
        let mut keep = vec![false; input.schema.len()];
        for pattern in patterns {
            for index in self.matching(&input, pattern)? {
                keep[index] = true;
            }
        }
        let keep: Vec<usize> = (0..keep.len()).filter(|i| keep[*i]).collect();
        let mut rel = select(input, &keep, None, span);
        rel.schema.open = false;
        Ok(rel)
    }

    fn project_rename(
        &mut self,
        input: Rel,
        renames: &[ast::Rename],
        span: Span,
    ) -> Result<Rel, BindError> {
        let mut names: Vec<String> = input
            .schema
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        for rename in renames {
            let Some(index) = names.iter().position(|n| *n == rename.old.text) else {
                let schema = Schema::new(
                    names
                        .iter()
                        .zip(&input.schema.columns)
                        .map(|(n, c)| Column::new(n.clone(), c.ty))
                        .collect(),
                );
                let ctx = Ctx {
                    schema: Some(&schema),
                    table: input.table.as_deref(),
                    row: None,
                    serialized: false,
                };
                return Err(self.column_not_found(&rename.old, ctx));
            };
            if names
                .iter()
                .enumerate()
                .any(|(i, n)| i != index && *n == rename.new.text)
            {
                return Err(self.error(
                    rename.new.span,
                    format!(
                        "cannot rename '{}' to '{}': a column named '{}' already exists",
                        rename.old.text, rename.new.text, rename.new.text
                    ),
                ));
            }
            names[index] = rename.new.text.clone();
        }
        let all: Vec<usize> = (0..names.len()).collect();
        Ok(select(input, &all, Some(&names), span))
    }

    fn project_reorder(
        &mut self,
        input: Rel,
        columns: &[ast::ReorderColumn],
        span: Span,
    ) -> Result<Rel, BindError> {
        let mut placed: Vec<usize> = Vec::new();
        for column in columns {
            let mut matched: Vec<usize> = self
                .matching(&input, &column.pattern)?
                .into_iter()
                .filter(|i| !placed.contains(i))
                .collect();
            let name = |i: &usize| input.schema.columns[*i].name.as_str();
            match column.order {
                Some(ReorderOrder::Asc) => matched.sort_by(|a, b| name(a).cmp(name(b))),
                Some(ReorderOrder::Desc) => matched.sort_by(|a, b| name(b).cmp(name(a))),
                Some(ReorderOrder::GrannyAsc) => {
                    matched.sort_by(|a, b| natural_cmp(name(a), name(b)))
                }
                Some(ReorderOrder::GrannyDesc) => {
                    matched.sort_by(|a, b| natural_cmp(name(b), name(a)))
                }
                None => {}
            }
            placed.extend(matched);
        }
        let rest: Vec<usize> = (0..input.schema.len())
            .filter(|i| !placed.contains(i))
            .collect();
        placed.extend(rest);
        Ok(select(input, &placed, None, span))
    }

    /// `extend` (and `serialize`'s assignments): add or replace columns in place.
    pub(crate) fn extend(
        &mut self,
        input: Rel,
        items: &[ast::NamedExpr],
        span: Span,
        serialized_here: bool,
    ) -> Result<Rel, BindError> {
        let mut stage = Stage::new(input, span);
        for item in items {
            let mut bound = self.extend_item(&stage, item, serialized_here)?;
            let reads_new = {
                let mut used = Vec::new();
                bound.columns_used(&mut used);
                used.iter()
                    .any(|i| stage.changed.get(*i).copied().unwrap_or(true))
            };
            if reads_new {
                let base = stage.finish();
                stage = Stage::new(base, span);
                bound = self.extend_item(&stage, item, serialized_here)?;
            }
            let explicit = match &item.name {
                Some(ast::AssignTarget::Single(name)) => Some(name),
                Some(ast::AssignTarget::Tuple(_)) => {
                    self.item_name(item.name.as_ref(), &item.expr, &|_| false, "extend", true)?;
                    None
                }
                None => None,
            };
            let existing = explicit
                .and_then(|name| stage.outputs.iter().position(|(c, _)| c.name == name.text));
            // Only an explicit `Name =` replaces a column in place (§4.0 rule 8); a derived
            // name that is taken gets a suffix, so `extend tostring(X)` never silently
            // overwrites `X` (the reference is silent here; this is the cautious reading).
            match (explicit, existing) {
                (Some(_), Some(index)) => {
                    stage.outputs[index].0.ty = bound.ty;
                    stage.outputs[index].1 = bound;
                    stage.changed[index] = true;
                }
                _ => {
                    let taken = |n: &str| stage.outputs.iter().any(|(c, _)| c.name == n);
                    let name =
                        self.item_name(item.name.as_ref(), &item.expr, &taken, "extend", true)?;
                    stage.outputs.push((Column::new(name, bound.ty), bound));
                    stage.changed.push(true);
                }
            }
        }
        Ok(stage.finish())
    }

    fn extend_item(
        &mut self,
        stage: &Stage,
        item: &ast::NamedExpr,
        serialized_here: bool,
    ) -> Result<BoundExpr, BindError> {
        let schema = stage.schema();
        self.next_row += 1;
        let ctx = Ctx {
            schema: Some(&schema),
            table: stage.base.table.as_deref(),
            row: Some(self.next_row),
            serialized: stage.base.serialized || serialized_here,
        };
        self.expr(&item.expr, ctx)
    }

    fn distinct(&mut self, input: Rel, columns: &ast::DistinctColumns) -> Result<Rel, BindError> {
        let input = match columns {
            ast::DistinctColumns::All => input,
            ast::DistinctColumns::Columns(items) => self.project(input, items, "distinct")?,
        };
        let schema = input.schema.clone();
        Ok(Rel::new(
            RelKind::Distinct {
                input: Box::new(input),
            },
            schema,
        ))
    }

    fn sort_keys(
        &mut self,
        input: &Rel,
        keys: &[&ast::SortKey],
    ) -> Result<Vec<SortKey>, BindError> {
        let ctx = self.row_ctx(input);
        let mut bound = Vec::with_capacity(keys.len());
        for key in keys {
            let expr = self.expr(&key.expr, ctx)?;
            if !(expr.ty.is_orderable() || expr.ty == ScalarType::Bool) {
                return Err(self.error(key.expr.span, format!("cannot sort by {} values", expr.ty)));
            }
            bound.push(SortKey {
                expr,
                descending: key.direction == SortDirection::Desc,
                nulls_first: key.nulls == ast::NullsPlacement::First,
            });
        }
        Ok(bound)
    }

    fn sort(&mut self, input: Rel, keys: &[ast::SortKey]) -> Result<Rel, BindError> {
        let refs: Vec<&ast::SortKey> = keys.iter().collect();
        let keys = self.sort_keys(&input, &refs)?;
        Ok(sorted(input, keys))
    }

    fn top(&mut self, input: Rel, top: &ast::Top) -> Result<Rel, BindError> {
        let ctx = self.row_ctx(&input);
        let count = self.row_count(&top.count, "top", ctx)?;
        let keys = self.sort_keys(&input, &[&top.by])?;
        Ok(limit(sorted(input, keys), count))
    }

    fn invoke_operator(&mut self, input: Rel, call: &ast::FunctionCall) -> Result<Rel, BindError> {
        let Some(Binding::Function(function)) = self.scope.lookup(&call.name.text) else {
            return Err(self.error(
                call.name.span,
                format!("unknown function '{}' after 'invoke'", call.name.text),
            ));
        };
        let function = function.clone();
        let takes_table = matches!(
            function.def.params.first().map(|p| &p.ty),
            Some(ast::ParamType::Tabular(_))
        );
        if !takes_table {
            return Err(self.error(
                call.name.span,
                format!(
                    "'invoke' needs a function whose first parameter is a table; '{}' has none",
                    call.name.text
                ),
            ));
        }
        match self.invoke(&function, Some(input), &call.args, call.span, Ctx::CONSTANT)? {
            Bound::Tabular(rel) => Ok(rel),
            Bound::Scalar(_) => Err(self.error(
                call.name.span,
                format!(
                    "function '{}' returns a scalar, not a table",
                    call.name.text
                ),
            )),
        }
    }
}

fn sorted(input: Rel, keys: Vec<SortKey>) -> Rel {
    let schema = input.schema.clone();
    let table = input.table.clone();
    Rel::new(
        RelKind::Sort {
            input: Box::new(input),
            keys,
        },
        schema,
    )
    .serialized(true)
    .with_table(table)
}

fn limit(input: Rel, count: BoundExpr) -> Rel {
    let schema = input.schema.clone();
    let (serialized, table) = (input.serialized, input.table.clone());
    Rel::new(
        RelKind::Limit {
            input: Box::new(input),
            count,
        },
        schema,
    )
    .serialized(serialized)
    .with_table(table)
}
