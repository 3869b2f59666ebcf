//! Names visible to a query: `let`s, function parameters, query parameters, `as` names.
//!
//! The scope is a persistent linked list: adding a name makes a new head and leaves
//! the old scope untouched. A function captures the scope at its definition for free
//! (one reference count), which gives Kusto's lexical scoping: a later `let` with the
//! same name shadows for later statements but not inside functions defined before it.

use super::ir::{BoundExpr, Rel};
use crate::ast::FunctionDef;
use std::rc::Rc;

#[derive(Debug, Clone, Default)]
pub(crate) struct Scope(Option<Rc<Frame>>);

#[derive(Debug)]
struct Frame {
    name: String,
    binding: Binding,
    parent: Scope,
}

#[derive(Debug, Clone)]
pub(crate) enum Binding {
    /// A scalar: `let x = ...`, a query parameter, a scalar function parameter. `row` is
    /// the row context the expression reads columns of, if it reads any: it may only be
    /// used there (not inside a subquery, which has rows of its own).
    Scalar {
        expr: BoundExpr,
        row: Option<u64>,
    },
    /// A tabular `let`, a tabular parameter, an `as` name, a `materialize`d input.
    Tabular(Rel),
    Function(Rc<Function>),
}

/// A `let`-defined function and the scope it was defined in.
#[derive(Debug)]
pub(crate) struct Function {
    pub name: String,
    pub def: FunctionDef,
    pub scope: Scope,
}

impl Scope {
    pub fn with(&self, name: &str, binding: Binding) -> Scope {
        Scope(Some(Rc::new(Frame {
            name: name.to_string(),
            binding,
            parent: self.clone(),
        })))
    }

    /// The innermost binding of `name`.
    pub fn lookup(&self, name: &str) -> Option<&Binding> {
        let mut frame = self.0.as_deref();
        while let Some(f) = frame {
            if f.name == name {
                return Some(&f.binding);
            }
            frame = f.parent.0.as_deref();
        }
        None
    }

    /// Visible names with their bindings, innermost first, shadowed ones left out.
    pub fn visible(&self) -> Vec<(&str, &Binding)> {
        let mut out: Vec<(&str, &Binding)> = Vec::new();
        let mut frame = self.0.as_deref();
        while let Some(f) = frame {
            if !out.iter().any(|(n, _)| *n == f.name) {
                out.push((f.name.as_str(), &f.binding));
            }
            frame = f.parent.0.as_deref();
        }
        out
    }
}

impl Binding {
    pub fn is_tabular(&self) -> bool {
        match self {
            Binding::Tabular(_) => true,
            Binding::Function(f) => f.def.params.is_empty() && f.returns_table(),
            Binding::Scalar { .. } => false,
        }
    }
}

impl Function {
    pub fn returns_table(&self) -> bool {
        matches!(self.def.body, crate::ast::FunctionBody::Tabular(_))
    }
}
