//! Pipeline sources (tables, `let` names, function calls, `datatable`, `print`,
//! `range`; `externaldata` has a module of its own) and calls of `let`-defined functions.
//!
//! Functions are inlined: each call binds the body again with the arguments in place of
//! the parameters, in the scope the function was defined in. That is what a `let`
//! means in Kusto (the calculation, not a value) and it lets a `(*)` tabular parameter
//! take whatever schema the argument has.

use super::scope::{Binding, Function};
use super::{Binder, Bound, Ctx, suggest, types};
use super::{BoundExpr, Column, Rel, RelKind, Schema};
use crate::ast::{self, ParamType, ScalarType};
use crate::bind::error::BindError;
use crate::span::Span;
use std::rc::Rc;

/// Deepest chain of function calls inside function calls.
const MAX_CALL_DEPTH: usize = 32;

impl Binder<'_> {
    pub(crate) fn source(&mut self, source: &ast::Source, span: Span) -> Result<Rel, BindError> {
        match source {
            ast::Source::Table(name) => self.table_ref(name),
            ast::Source::Call(call) => self.tabular_call(call),
            ast::Source::Union(union) => self.union(None, union, span),
            ast::Source::Datatable(table) => self.datatable(table, span),
            ast::Source::Print(items) => self.print(items),
            ast::Source::Range(range) => self.range(range),
            ast::Source::Search(search) => self.search_source(search, span),
            ast::Source::Paren(inner) => self.tabular(inner),
            ast::Source::ExternalData(external) => self.external_data(external),
        }
    }

    /// A table-valued name if there is one: a tabular `let`/`as`/parameter, a
    /// parameterless tabular function or view, or a catalog table.
    pub(crate) fn tabular_name(&mut self, name: &ast::Name) -> Result<Option<Rel>, BindError> {
        match self.scope.lookup(&name.text) {
            Some(Binding::Tabular(rel)) => {
                let rel = rel.clone();
                self.charge(rel.weight(), name.span)?;
                self.check_height(&rel, name.span)?;
                return Ok(Some(rel));
            }
            Some(Binding::Function(function))
                if function.def.params.is_empty() && function.returns_table() =>
            {
                let function = function.clone();
                return match self.invoke(&function, None, &[], name.span, Ctx::CONSTANT)? {
                    Bound::Tabular(rel) => Ok(Some(rel)),
                    Bound::Scalar(_) => Ok(None),
                };
            }
            Some(_) => return Ok(None),
            None => {}
        }
        Ok(self.catalog.table(&name.text).map(|schema| {
            Rel::new(
                RelKind::Scan {
                    table: name.text.clone(),
                },
                schema,
            )
            .with_table(Some(name.text.clone()))
        }))
    }

    /// A name in table position; unknown names get a "did you mean".
    pub(crate) fn table_ref(&mut self, name: &ast::Name) -> Result<Rel, BindError> {
        if let Some(rel) = self.tabular_name(name)? {
            return Ok(rel);
        }
        let message = match self.scope.lookup(&name.text) {
            Some(Binding::Scalar { .. }) => {
                format!("'{}' is a scalar value, not a table", name.text)
            }
            Some(Binding::Function(function)) if function.returns_table() => format!(
                "function '{}' needs arguments; call it as {}(...)",
                name.text, name.text
            ),
            Some(Binding::Function(_)) => {
                format!("'{}' is a scalar function, not a table", name.text)
            }
            _ => {
                let candidates = self.table_candidates();
                let hint = suggest::hint(&name.text, candidates.iter().map(String::as_str));
                format!("unknown table '{}'{hint}", name.text)
            }
        };
        Err(self.error(name.span, message))
    }

    /// `F(args)` as a pipeline source.
    fn tabular_call(&mut self, call: &ast::FunctionCall) -> Result<Rel, BindError> {
        match self.scope.lookup(&call.name.text) {
            Some(Binding::Function(function)) => {
                let function = function.clone();
                match self.invoke(&function, None, &call.args, call.span, Ctx::CONSTANT)? {
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
            _ => {
                let candidates: Vec<String> = self
                    .scope
                    .visible()
                    .into_iter()
                    .filter(|(_, b)| matches!(b, Binding::Function(_)))
                    .map(|(n, _)| n.to_string())
                    .collect();
                let hint = suggest::hint(&call.name.text, candidates.iter().map(String::as_str));
                Err(self.error(
                    call.name.span,
                    format!("unknown tabular function '{}'{hint}", call.name.text),
                ))
            }
        }
    }

    /// An argument that must be a table: a name, a subquery, or a tabular function call.
    pub(crate) fn tabular_arg(&mut self, expr: &ast::Expr) -> Result<Option<Rel>, BindError> {
        match &expr.kind {
            ast::ExprKind::Tabular(tabular) => Ok(Some(self.tabular(tabular)?)),
            ast::ExprKind::Name(name) => self.tabular_name(name),
            ast::ExprKind::Call(call) => match self.scope.lookup(&call.name.text) {
                Some(Binding::Function(function)) if function.returns_table() => {
                    Ok(Some(self.tabular_call(call)?))
                }
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// Calls a `let` function: `piped` is the input of `invoke`, which binds the first
    /// parameter. Scalar arguments are bound in the caller's row context `ctx`.
    pub(crate) fn invoke(
        &mut self,
        function: &Rc<Function>,
        piped: Option<Rel>,
        args: &[ast::Expr],
        span: Span,
        ctx: Ctx<'_>,
    ) -> Result<Bound, BindError> {
        let params = &function.def.params;
        let offset = usize::from(piped.is_some());
        let supplied = offset + args.len();
        let required = params
            .iter()
            .rposition(|p| p.default.is_none())
            .map_or(0, |i| i + 1);
        if supplied < required || supplied > params.len() {
            let expected = if required == params.len() {
                format!(
                    "{required} argument{}",
                    if required == 1 { "" } else { "s" }
                )
            } else {
                format!("{required} to {} arguments", params.len())
            };
            return Err(self.error(
                span,
                format!(
                    "function '{}' expects {expected}, got {supplied}",
                    function.name
                ),
            ));
        }
        if self.calls >= MAX_CALL_DEPTH {
            return Err(self.error(
                span,
                format!(
                    "function calls are nested too deeply at '{}'",
                    function.name
                ),
            ));
        }
        let mut scope = function.scope.clone();
        let mut piped = piped;
        for (index, param) in params.iter().enumerate() {
            let arg = index.checked_sub(offset).and_then(|i| args.get(i));
            let binding = match &param.ty {
                ParamType::Tabular(columns) => {
                    let rel = match (index, piped.take(), arg) {
                        (0, Some(rel), _) => rel,
                        (_, _, Some(arg)) => match self.tabular_arg(arg)? {
                            Some(rel) => rel,
                            None => {
                                return Err(self.error(
                                    arg.span,
                                    format!(
                                        "function '{}' expects a table as argument {} ('{}')",
                                        function.name,
                                        index + 1,
                                        param.name.text
                                    ),
                                ));
                            }
                        },
                        _ => {
                            return Err(self.error(
                                span,
                                format!(
                                    "function '{}' needs a table for '{}'",
                                    function.name, param.name.text
                                ),
                            ));
                        }
                    };
                    if let Some(columns) = columns {
                        self.check_declared_columns(&rel, columns, function, span)?;
                    }
                    Binding::Tabular(rel)
                }
                ParamType::Scalar(ty) => {
                    if index == 0 && piped.is_some() {
                        return Err(self.error(
                            span,
                            format!(
                                "'invoke' needs a function whose first parameter is a table; '{}' starts with '{}:{}'",
                                function.name, param.name.text, ty
                            ),
                        ));
                    }
                    let value = match (arg, &param.default) {
                        (Some(arg), _) => {
                            let value = self.expr(arg, ctx)?;
                            if !types::assignable(value.ty, *ty) {
                                return Err(self.error(
                                    arg.span,
                                    format!(
                                        "function '{}' expects {} as argument {} ('{}'), got {}",
                                        function.name,
                                        ty.with_article(),
                                        index + 1,
                                        param.name.text,
                                        value.ty
                                    ),
                                ));
                            }
                            value.cast_to(*ty)
                        }
                        (None, Some(default)) => {
                            let saved = std::mem::replace(&mut self.scope, function.scope.clone());
                            let value = self.constant_of_type(default, *ty, &param.name.text);
                            self.scope = saved;
                            value?
                        }
                        (None, None) => {
                            return Err(self.error(
                                span,
                                format!(
                                    "function '{}' needs a value for '{}'",
                                    function.name, param.name.text
                                ),
                            ));
                        }
                    };
                    let row = if value.is_constant() { None } else { ctx.row };
                    Binding::Scalar { expr: value, row }
                }
            };
            scope = scope.with(&param.name.text, binding);
        }

        self.enter(span)?;
        self.calls += 1;
        let saved = std::mem::replace(&mut self.scope, scope);
        let result = self.function_body(function, ctx);
        self.scope = saved;
        self.calls -= 1;
        self.leave();
        let bound = result?;
        let weight = match &bound {
            Bound::Scalar(expr) => expr.weight(),
            Bound::Tabular(rel) => rel.weight(),
        };
        self.charge(weight, span)?;
        Ok(bound)
    }

    fn function_body(&mut self, function: &Function, ctx: Ctx<'_>) -> Result<Bound, BindError> {
        // The body sees its parameters and outer lets, not the caller's columns.
        let body_ctx = Ctx {
            schema: None,
            table: None,
            row: ctx.row,
            serialized: ctx.serialized,
        };
        for statement in &function.def.lets {
            self.let_statement(statement, body_ctx)?;
        }
        match &function.def.body {
            ast::FunctionBody::Scalar(expr) => Ok(Bound::Scalar(self.expr(expr, body_ctx)?)),
            ast::FunctionBody::Tabular(tabular) => Ok(Bound::Tabular(self.tabular(tabular)?)),
        }
    }

    /// A `T:(A:long, B:string)` parameter: the argument must have those columns.
    fn check_declared_columns(
        &self,
        rel: &Rel,
        columns: &[ast::ColumnDecl],
        function: &Function,
        span: Span,
    ) -> Result<(), BindError> {
        for column in columns {
            match rel.schema.index_of(&column.name.text) {
                None => {
                    return Err(self.error(
                        span,
                        format!(
                            "function '{}' needs a table with a column '{}' ({})",
                            function.name, column.name.text, column.ty
                        ),
                    ));
                }
                Some(index) => {
                    let actual = rel.schema.columns[index].ty;
                    if !types::assignable(actual, column.ty) {
                        return Err(self.error(
                            span,
                            format!(
                                "function '{}' needs column '{}' to be {}, got {}",
                                function.name,
                                column.name.text,
                                column.ty.with_article(),
                                actual
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `datatable (A:long, B:string) [1, "x", ...]`
    fn datatable(&mut self, table: &ast::Datatable, span: Span) -> Result<Rel, BindError> {
        let width = table.columns.len();
        if width == 0 {
            return Err(self.error(span, "datatable needs at least one column"));
        }
        if !table.values.len().is_multiple_of(width) {
            return Err(self.error(
                span,
                format!(
                    "datatable has {} values for {width} columns; the count must be a multiple of {width}",
                    table.values.len()
                ),
            ));
        }
        let schema = self.declared_schema(&table.columns)?;
        let mut rows = Vec::new();
        for chunk in table.values.chunks(width) {
            let mut row = Vec::with_capacity(width);
            for (value, column) in chunk.iter().zip(&schema.columns) {
                let bound = self.expr(value, Ctx::CONSTANT)?;
                if !types::assignable(bound.ty, column.ty) {
                    return Err(self.error(
                        value.span,
                        format!(
                            "datatable column '{}' is {}, got {}",
                            column.name, column.ty, bound.ty
                        ),
                    ));
                }
                row.push(bound.cast_to(column.ty));
            }
            rows.push(row);
        }
        Ok(Rel::new(RelKind::Values { rows }, schema))
    }

    /// A declared column list (`datatable`, `evaluate ... : (...)`), names unique.
    pub(crate) fn declared_schema(&self, columns: &[ast::ColumnDecl]) -> Result<Schema, BindError> {
        let mut schema = Schema::default();
        for column in columns {
            if schema.contains(&column.name.text) {
                return Err(self.error(
                    column.name.span,
                    format!("duplicate column name '{}'", column.name.text),
                ));
            }
            schema
                .columns
                .push(Column::new(column.name.text.clone(), column.ty));
        }
        Ok(schema)
    }

    /// `print [Name =] e, ...`: one row; unnamed columns are `print_<position>`.
    fn print(&mut self, items: &[ast::NamedExpr]) -> Result<Rel, BindError> {
        let mut schema = Schema::default();
        let mut row = Vec::new();
        for (position, item) in items.iter().enumerate() {
            let name = match &item.name {
                Some(ast::AssignTarget::Single(name)) => {
                    if schema.contains(&name.text) {
                        return Err(self.error(
                            name.span,
                            format!("duplicate column name '{}' in 'print'", name.text),
                        ));
                    }
                    name.text.clone()
                }
                Some(ast::AssignTarget::Tuple(names)) => {
                    let span = names.first().map_or(item.expr.span, |n| n.span);
                    return Err(self.error(span, "'print' cannot assign to several names"));
                }
                None => super::names::unique(&format!("print_{position}"), |n| schema.contains(n)),
            };
            let value = self.expr(&item.expr, Ctx::CONSTANT)?;
            schema.columns.push(Column::new(name, value.ty));
            row.push(value);
        }
        Ok(Rel::new(RelKind::Values { rows: vec![row] }, schema))
    }

    /// `range X from A to B step S`
    fn range(&mut self, range: &ast::RangeSource) -> Result<Rel, BindError> {
        let from = self.expr(&range.from, Ctx::CONSTANT)?;
        let to = self.expr(&range.to, Ctx::CONSTANT)?;
        let step = self.expr(&range.step, Ctx::CONSTANT)?;
        use ScalarType as T;
        let ty = match (from.ty, to.ty) {
            (a, b) if a.is_numeric() && b.is_numeric() => types::widest(a, b).unwrap_or(T::Long),
            (T::Datetime, T::Datetime) => T::Datetime,
            (T::Timespan, T::Timespan) => T::Timespan,
            (a, b) => {
                return Err(self.error(
                    range.from.span,
                    format!("'range' needs two numbers, datetimes or timespans, got {a} and {b}"),
                ));
            }
        };
        let step_ok = if ty.is_numeric() {
            step.ty.is_numeric()
        } else {
            step.ty == T::Timespan
        };
        if !step_ok {
            let wanted = if ty.is_numeric() {
                "a number"
            } else {
                "a timespan"
            };
            return Err(self.error(
                range.step.span,
                format!(
                    "'range' over {ty} values needs {wanted} step, got {}",
                    step.ty
                ),
            ));
        }
        let step = if ty.is_numeric() {
            step.cast_to(ty)
        } else {
            step
        };
        let schema = Schema::new(vec![Column::new(range.column.text.clone(), ty)]);
        Ok(Rel::new(
            RelKind::Range {
                from: Box::new(from.cast_to(ty)),
                to: Box::new(to.cast_to(ty)),
                step: Box::new(step),
            },
            schema,
        )
        .serialized(true))
    }

    /// `getschema`: one row per input column.
    pub(crate) fn getschema(&self, input: &Rel, span: Span) -> Rel {
        let string = |text: &str| BoundExpr::literal(ast::Literal::String(text.to_string()), span);
        let rows = input
            .schema
            .columns
            .iter()
            .enumerate()
            .map(|(ordinal, column)| {
                vec![
                    string(&column.name),
                    BoundExpr::literal(
                        ast::Literal::Int(i32::try_from(ordinal).unwrap_or(i32::MAX)),
                        span,
                    ),
                    string(column.ty.clr_name()),
                    string(column.ty.name()),
                ]
            })
            .collect();
        let schema = Schema::new(vec![
            Column::new("ColumnName", ScalarType::String),
            Column::new("ColumnOrdinal", ScalarType::Int),
            Column::new("DataType", ScalarType::String),
            Column::new("ColumnType", ScalarType::String),
        ]);
        Rel::new(RelKind::Values { rows }, schema).serialized(true)
    }
}
