//! `union` (§4.6) and `search` (§4.10), which is a filter over a union of tables.
//!
//! Every leg is projected onto the union's schema here (missing columns filled with
//! null or `""`, the `withsource` column as a constant), so the planner's union is a
//! plain concatenation of identically shaped inputs.

use super::expr::typed_binary;
use super::names::{self, glob_match};
use super::scope::Binding;
use super::{Binder, Ctx, types};
use super::{BoundExpr, Column, Rel, RelKind, Schema};
use crate::ast::{self, BinaryOp, Literal, ScalarType, UnionKind, UnionLeg};
use crate::bind::error::BindError;
use crate::span::Span;

/// The column `search` adds to name each row's table.
const SEARCH_SOURCE: &str = "$table";

impl Binder<'_> {
    pub(crate) fn union(
        &mut self,
        piped: Option<Rel>,
        union: &ast::Union,
        span: Span,
    ) -> Result<Rel, BindError> {
        let mut legs: Vec<(String, Rel)> = Vec::new();
        let mut position = 0;
        if let Some(rel) = piped {
            let label = match &rel.kind {
                RelKind::Scan { table } => table.clone(),
                _ => "union_arg0".to_string(),
            };
            legs.push((label, rel));
            position += 1;
        }
        for leg in &union.legs {
            match leg {
                UnionLeg::Table(pattern) if pattern.is_wildcard() => {
                    let matched = self.wildcard_tables(pattern)?;
                    if matched.is_empty() && !union.is_fuzzy {
                        return Err(self
                            .error(pattern.span, format!("no table matches '{}'", pattern.text)));
                    }
                    legs.extend(matched);
                }
                UnionLeg::Table(pattern) => {
                    let name = ast::Name {
                        text: pattern.text.clone(),
                        span: pattern.span,
                    };
                    match self.tabular_name(&name)? {
                        Some(rel) => legs.push((name.text.clone(), rel)),
                        None if union.is_fuzzy => {}
                        None => {
                            return Err(self.table_ref(&name).err().unwrap_or_else(|| {
                                self.error(name.span, format!("unknown table '{}'", name.text))
                            }));
                        }
                    }
                }
                UnionLeg::Subquery(tabular) => {
                    let rel = self.tabular(tabular)?;
                    legs.push((format!("union_arg{position}"), rel));
                }
            }
            position += 1;
        }
        if legs.is_empty() {
            return Err(self.error(span, "union has no tables to combine"));
        }
        self.combine(
            legs,
            union.kind,
            union
                .with_source
                .as_ref()
                .map(|n| (n.text.as_str(), n.span)),
            span,
        )
    }

    /// Catalog tables and `view`s whose names match a wildcard, in catalog order.
    fn wildcard_tables(
        &mut self,
        pattern: &ast::NamePattern,
    ) -> Result<Vec<(String, Rel)>, BindError> {
        let mut matched = Vec::new();
        for name in self.catalog.table_names() {
            if glob_match(&pattern.text, &name)
                && let Some(schema) = self.catalog.table(&name)
            {
                let rel = Rel::new(
                    RelKind::Scan {
                        table: name.clone(),
                    },
                    schema,
                )
                .with_table(Some(name.clone()));
                matched.push((name, rel));
            }
        }
        let views: Vec<String> = self
            .scope
            .visible()
            .into_iter()
            .filter(|(name, binding)| {
                matches!(binding, Binding::Function(f) if f.def.is_view && f.def.params.is_empty())
                    && glob_match(&pattern.text, name)
            })
            .map(|(name, _)| name.to_string())
            .collect();
        for view in views {
            let name = ast::Name {
                text: view.clone(),
                span: pattern.span,
            };
            if let Some(rel) = self.tabular_name(&name)? {
                matched.push((view, rel));
            }
        }
        Ok(matched)
    }

    /// The union schema and each leg projected onto it.
    fn combine(
        &self,
        legs: Vec<(String, Rel)>,
        kind: UnionKind,
        with_source: Option<(&str, Span)>,
        span: Span,
    ) -> Result<Rel, BindError> {
        let mut pairs: Vec<(String, ScalarType)> = Vec::new();
        for (_, rel) in &legs {
            for column in &rel.schema.columns {
                if !pairs
                    .iter()
                    .any(|(n, t)| *n == column.name && *t == column.ty)
                {
                    pairs.push((column.name.clone(), column.ty));
                }
            }
        }
        let selected: Vec<(String, ScalarType)> = match kind {
            UnionKind::Outer => pairs.clone(),
            UnionKind::Inner => pairs
                .iter()
                .filter(|(name, ty)| {
                    legs.iter().all(|(_, rel)| {
                        rel.schema
                            .columns
                            .iter()
                            .any(|c| c.name == *name && c.ty == *ty)
                    })
                })
                .cloned()
                .collect(),
        };
        // (output name, source name, type)
        let mut outputs: Vec<(String, String, ScalarType)> = Vec::new();
        if let Some((source, source_span)) = with_source {
            if selected.iter().any(|(n, _)| n == source) {
                return Err(self.error(
                    source_span,
                    format!("withsource column '{source}' collides with a column of the union"),
                ));
            }
            outputs.push((source.to_string(), String::new(), ScalarType::String));
        }
        for (name, ty) in &selected {
            let several_types = pairs.iter().filter(|(n, _)| n == name).count() > 1;
            let base = if several_types {
                format!("{name}_{ty}")
            } else {
                name.clone()
            };
            let output = names::unique(&base, |n| outputs.iter().any(|(o, _, _)| o == n));
            outputs.push((output, name.clone(), *ty));
        }
        let schema = Schema::new(
            outputs
                .iter()
                .map(|(name, _, ty)| Column::new(name.clone(), *ty))
                .collect(),
        );
        let inputs: Vec<Rel> = legs
            .into_iter()
            .map(|(label, rel)| {
                let exprs: Vec<BoundExpr> = outputs
                    .iter()
                    .enumerate()
                    .map(|(position, (_, source, ty))| {
                        if position == 0 && with_source.is_some() {
                            return BoundExpr::literal(Literal::String(label.clone()), span);
                        }
                        match rel
                            .schema
                            .columns
                            .iter()
                            .position(|c| c.name == *source && c.ty == *ty)
                        {
                            Some(index) => {
                                BoundExpr::column(index, &rel.schema.columns[index], span)
                            }
                            None => BoundExpr::literal(types::empty_literal(*ty), span),
                        }
                    })
                    .collect();
                Rel::new(
                    RelKind::Project {
                        input: Box::new(rel),
                        exprs,
                    },
                    schema.clone(),
                )
            })
            .collect();
        Ok(Rel::new(RelKind::Union { inputs }, schema))
    }

    /// `search [in (T, ...)] predicate` as a source: every listed (default: every)
    /// table, with a `$table` column.
    pub(crate) fn search_source(
        &mut self,
        search: &ast::Search,
        span: Span,
    ) -> Result<Rel, BindError> {
        let mut legs = Vec::new();
        if search.tables.is_empty() {
            for name in self.catalog.table_names() {
                if let Some(schema) = self.catalog.table(&name) {
                    let rel = Rel::new(
                        RelKind::Scan {
                            table: name.clone(),
                        },
                        schema,
                    )
                    .with_table(Some(name.clone()));
                    legs.push((name, rel));
                }
            }
        } else {
            for pattern in &search.tables {
                if pattern.is_wildcard() {
                    legs.extend(self.wildcard_tables(pattern)?);
                } else {
                    let name = ast::Name {
                        text: pattern.text.clone(),
                        span: pattern.span,
                    };
                    let rel = self.table_ref(&name)?;
                    legs.push((name.text, rel));
                }
            }
        }
        if legs.is_empty() {
            return Err(self.error(span, "search has no tables to look in"));
        }
        let union = self.combine(legs, UnionKind::Outer, Some((SEARCH_SOURCE, span)), span)?;
        self.search_filter(union, search)
    }

    /// `T | search predicate`
    pub(crate) fn search_operator(
        &mut self,
        input: Rel,
        search: &ast::Search,
        span: Span,
    ) -> Result<Rel, BindError> {
        if !search.tables.is_empty() {
            return Err(self.error(span, "'search in (...)' can only start a query"));
        }
        self.search_filter(input, search)
    }

    fn search_filter(&mut self, input: Rel, search: &ast::Search) -> Result<Rel, BindError> {
        let ctx = self.row_ctx(&input);
        let predicate = self.search_predicate(&search.predicate, ctx, search.case_sensitive)?;
        if !matches!(predicate.ty, ScalarType::Bool | ScalarType::Dynamic) {
            return Err(self.error(
                search.predicate.span,
                format!("'search' needs a bool predicate, got {}", predicate.ty),
            ));
        }
        let schema = input.schema.clone();
        let (serialized, table) = (input.serialized, input.table.clone());
        Ok(Rel::new(
            RelKind::Filter {
                input: Box::new(input),
                predicate,
            },
            schema,
        )
        .serialized(serialized)
        .with_table(table))
    }

    /// A search predicate: bare string terms match any column, `Col:"term"` one column,
    /// combined with `and`/`or`/`not()`; anything else is an ordinary predicate.
    fn search_predicate(
        &mut self,
        expr: &ast::Expr,
        ctx: Ctx<'_>,
        case_sensitive: bool,
    ) -> Result<BoundExpr, BindError> {
        match &expr.kind {
            ast::ExprKind::Literal(Literal::String(term)) => {
                let Some(schema) = ctx.schema else {
                    return Err(self.error(expr.span, "search needs input columns"));
                };
                let (op, value) = classify_term(term, case_sensitive);
                let value = BoundExpr::literal(Literal::String(value), expr.span);
                Ok(self.each_column(schema, op, &value, expr.span))
            }
            ast::ExprKind::Binary { op, left, right }
                if matches!(op, BinaryOp::And | BinaryOp::Or) =>
            {
                let l = self.search_predicate(left, ctx, case_sensitive)?;
                let r = self.search_predicate(right, ctx, case_sensitive)?;
                typed_binary(*op, l, r, expr.span).map_err(|(at, m)| self.error(at, m))
            }
            ast::ExprKind::Binary {
                op: BinaryOp::SearchColumn,
                left,
                right,
            } => {
                let ast::ExprKind::Literal(Literal::String(term)) = &right.kind else {
                    return Err(self.error(
                        right.span,
                        "'Column:' must be followed by a string term in a search predicate",
                    ));
                };
                let column = self.expr(left, ctx)?;
                let (op, value) = classify_term(term, case_sensitive);
                let value = BoundExpr::literal(Literal::String(value), right.span);
                typed_binary(op, column, value, expr.span).map_err(|(at, m)| self.error(at, m))
            }
            ast::ExprKind::Call(call) if call.name.text == "not" && call.args.len() == 1 => {
                let inner = self.search_predicate(&call.args[0], ctx, case_sensitive)?;
                if !matches!(inner.ty, ScalarType::Bool | ScalarType::Dynamic) {
                    return Err(self.error(
                        call.args[0].span,
                        format!(
                            "function 'not' expects a bool as argument 1, got {}",
                            inner.ty
                        ),
                    ));
                }
                Ok(BoundExpr::new(
                    super::BoundExprKind::Call {
                        function: "not",
                        args: vec![inner],
                    },
                    ScalarType::Bool,
                    expr.span,
                ))
            }
            _ => self.expr(expr, ctx),
        }
    }
}

/// `"abc"` = has, `"*abc"` = hassuffix, `"abc*"` = hasprefix, `"*abc*"` = contains,
/// `"a*c"` = regex (§4.10).
fn classify_term(term: &str, case_sensitive: bool) -> (BinaryOp, String) {
    let starts = term.starts_with('*');
    let rest = term.strip_prefix('*').unwrap_or(term);
    let ends = rest.ends_with('*');
    let core = rest.strip_suffix('*').unwrap_or(rest);
    if core.contains('*') {
        let pattern: Vec<String> = core.split('*').map(escape_regex).collect();
        let flags = if case_sensitive { "" } else { "(?i)" };
        return (
            BinaryOp::MatchesRegex,
            format!("{flags}{}", pattern.join(".*")),
        );
    }
    let op = match (starts, ends, case_sensitive) {
        (true, true, false) => BinaryOp::Contains,
        (true, true, true) => BinaryOp::ContainsCs,
        (true, false, false) => BinaryOp::HasSuffix,
        (true, false, true) => BinaryOp::HasSuffixCs,
        (false, true, false) => BinaryOp::HasPrefix,
        (false, true, true) => BinaryOp::HasPrefixCs,
        (false, false, false) => BinaryOp::Has,
        (false, false, true) => BinaryOp::HasCs,
    };
    (op, core.to_string())
}

fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if "\\.+*?()|[]{}^$".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms() {
        assert_eq!(classify_term("abc", false), (BinaryOp::Has, "abc".into()));
        assert_eq!(
            classify_term("*abc", false),
            (BinaryOp::HasSuffix, "abc".into())
        );
        assert_eq!(
            classify_term("abc*", true),
            (BinaryOp::HasPrefixCs, "abc".into())
        );
        assert_eq!(
            classify_term("*abc*", false),
            (BinaryOp::Contains, "abc".into())
        );
        assert_eq!(
            classify_term("a*c.d", false),
            (BinaryOp::MatchesRegex, "(?i)a.*c\\.d".into())
        );
        assert_eq!(classify_term("*", false), (BinaryOp::HasSuffix, "".into()));
    }
}
