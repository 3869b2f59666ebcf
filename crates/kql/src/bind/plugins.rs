//! `evaluate` plugins (§4.9): `bag_unpack` and `pivot`.
//!
//! Both produce columns named after data values, so without a declared output schema
//! (`evaluate ... : (A:long, ...)`) the result schema is *open*: later operators may
//! name columns the binder cannot see, and those bind as dynamic late columns.

use super::calls::is_multi_output;
use super::functions::{self, FunctionKind};
use super::{AggState, Binder, Ctx};
use super::{AggregateCall, Rel, RelKind, Schema};
use crate::ast::{self, Literal, ScalarType};
use crate::bind::error::BindError;

impl Binder<'_> {
    pub(crate) fn evaluate(
        &mut self,
        input: Rel,
        evaluate: &ast::Evaluate,
    ) -> Result<Rel, BindError> {
        let plugin = &evaluate.plugin;
        let declared = match &evaluate.schema {
            Some(columns) => Some(self.declared_schema(columns)?),
            None => None,
        };
        match plugin.name.text.as_str() {
            "bag_unpack" => self.bag_unpack(input, plugin, declared),
            "pivot" => self.pivot(input, plugin, declared),
            other => Err(self.error(
                plugin.name.span,
                format!("unknown plugin '{other}'; supported: bag_unpack, pivot"),
            )),
        }
    }

    /// A plugin argument that must name an input column.
    fn column_arg(
        &self,
        input: &Rel,
        arg: &ast::Expr,
        plugin: &str,
        what: &str,
    ) -> Result<usize, BindError> {
        let ast::ExprKind::Name(name) = &arg.kind else {
            return Err(self.error(arg.span, format!("{plugin}() needs {what} here")));
        };
        input.schema.index_of(&name.text).ok_or_else(|| {
            let ctx = Ctx {
                schema: Some(&input.schema),
                table: input.table.as_deref(),
                row: None,
                serialized: false,
            };
            self.column_not_found(name, ctx)
        })
    }

    fn bag_unpack(
        &mut self,
        input: Rel,
        plugin: &ast::FunctionCall,
        declared: Option<Schema>,
    ) -> Result<Rel, BindError> {
        let Some(first) = plugin.args.first() else {
            return Err(self.error(
                plugin.span,
                "bag_unpack() needs the dynamic column to unpack",
            ));
        };
        if plugin.args.len() > 4 {
            return Err(self.error(
                plugin.span,
                format!(
                    "bag_unpack() expects 1 to 4 arguments, got {}",
                    plugin.args.len()
                ),
            ));
        }
        let column = self.column_arg(&input, first, "bag_unpack", "a dynamic column")?;
        let ty = input.schema.columns[column].ty;
        if ty != ScalarType::Dynamic {
            return Err(self.error(
                first.span,
                format!("bag_unpack() needs a dynamic column, got {ty}"),
            ));
        }
        let prefix = match plugin.args.get(1).map(|a| &a.kind) {
            Some(ast::ExprKind::Literal(Literal::String(prefix))) => Some(prefix.clone()),
            _ => None,
        };
        let schema = declared.unwrap_or_else(|| {
            let mut schema = input.schema.clone();
            schema.columns.remove(column);
            schema.open = true;
            schema
        });
        Ok(Rel::new(
            RelKind::BagUnpack {
                input: Box::new(input),
                column,
                prefix,
            },
            schema,
        ))
    }

    fn pivot(
        &mut self,
        input: Rel,
        plugin: &ast::FunctionCall,
        declared: Option<Schema>,
    ) -> Result<Rel, BindError> {
        let Some(first) = plugin.args.first() else {
            return Err(self.error(
                plugin.span,
                "pivot() needs the column whose values become columns",
            ));
        };
        let column = self.column_arg(&input, first, "pivot", "the pivot column")?;
        let mut rest = &plugin.args[1..];
        let ctx = self.row_ctx(&input);
        let aggregate = match rest.first().map(|a| &a.kind) {
            Some(ast::ExprKind::Call(call))
                if functions::lookup(&call.name.text, call.args.len())
                    .is_some_and(|r| r.signature.kind == FunctionKind::Aggregate) =>
            {
                let resolved = self.resolve_function(call)?;
                if is_multi_output(&resolved, call) {
                    return Err(self.error(
                        call.span,
                        format!(
                            "pivot() needs an aggregate with one result, not '{}'",
                            call.name.text
                        ),
                    ));
                }
                self.agg = Some(AggState {
                    base: 0,
                    calls: Vec::new(),
                    outputs: 0,
                    inside: false,
                });
                let args = self.aggregate_args(call, resolved, ctx);
                self.agg = None;
                let (args, ty) = args?;
                rest = &rest[1..];
                AggregateCall {
                    function: resolved.signature.name,
                    args,
                    outputs: vec![ty],
                }
            }
            _ => AggregateCall {
                function: "count",
                args: Vec::new(),
                outputs: vec![ScalarType::Long],
            },
        };
        let mut group = Vec::with_capacity(rest.len());
        for arg in rest {
            group.push(self.column_arg(&input, arg, "pivot", "a grouping column name")?);
        }
        let schema = declared.unwrap_or_else(|| {
            let mut schema = Schema::new(
                group
                    .iter()
                    .map(|i| input.schema.columns[*i].clone())
                    .collect(),
            );
            schema.open = true;
            schema
        });
        Ok(Rel::new(
            RelKind::Pivot {
                input: Box::new(input),
                column,
                aggregate,
                group,
            },
            schema,
        ))
    }
}
