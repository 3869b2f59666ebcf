//! The bound query: what the planner lowers onto DataFusion.
//!
//! The shapes are chosen so that lowering is one node to one node (or a short fixed
//! sequence) with no name resolution left to do:
//! - every [`Rel`] carries its output [`Schema`] (names unique, in order, with KQL types);
//! - every column reference is an index into the schema of the operator's *input*
//!   (for [`RelKind::Join`] keys: into the left and right schemas);
//! - every [`BoundExpr`] carries its KQL type; numeric promotion is explicit
//!   ([`BoundExprKind::Cast`]), so operands of arithmetic and comparisons on numbers
//!   have one type;
//! - `let`s, functions, query parameters and `as` names are gone: references were
//!   replaced by what they stand for (a `let` binds a calculation, not a value, so
//!   inlining is exact); only `materialize` stays shared ([`RelKind::Materialized`]);
//! - function names are canonical (aliases such as `iif`, `todynamic`, `makeset`,
//!   `count(p)` are resolved), and legacy argument orders are normalised.

use crate::ast::{BagExpansion, BinaryOp, JoinKind, ListOp, Literal, ScalarType, UnaryOp};
use crate::span::Span;

/// A bound query: the result of each tabular statement, in order, and the shared
/// `materialize`d inputs they refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundQuery {
    pub results: Vec<Rel>,
    /// Evaluated once each; [`RelKind::Materialized`] holds an index into this list.
    pub materialized: Vec<Rel>,
}

/// One output column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ScalarType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: ScalarType) -> Self {
        Column {
            name: name.into(),
            ty,
        }
    }
}

/// The columns an operator produces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schema {
    pub columns: Vec<Column>,
    /// More columns exist than are listed, known only at run time (`evaluate bag_unpack`
    /// or `pivot` without a declared schema). Unknown names then bind as
    /// [`BoundExprKind::LateColumn`] of type dynamic.
    pub open: bool,
}

impl Schema {
    pub fn new(columns: Vec<Column>) -> Self {
        Schema {
            columns,
            open: false,
        }
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index_of(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// `(name, type)` pairs, handy in tests and messages.
    pub fn pairs(&self) -> Vec<(&str, ScalarType)> {
        self.columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty))
            .collect()
    }
}

/// A relational operator with its output schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Rel {
    pub kind: RelKind,
    pub schema: Schema,
    /// Row order is meaningful (§4.10): window functions may run on it.
    pub serialized: bool,
    /// The catalog table these columns still are (through `where`, `extend`, ...), for
    /// messages ("not found in DeviceProcessEvents") and `union withsource=`.
    pub table: Option<String>,
    /// Longest chain of operators below and including this one; the binder caps it so
    /// that walking (or dropping) the tree cannot exhaust the stack.
    pub(crate) height: usize,
}

impl Rel {
    pub(crate) fn new(kind: RelKind, schema: Schema) -> Self {
        let height = 1 + kind.inputs().iter().map(|r| r.height).max().unwrap_or(0);
        Rel {
            kind,
            schema,
            serialized: false,
            table: None,
            height,
        }
    }

    pub(crate) fn serialized(mut self, serialized: bool) -> Self {
        self.serialized = serialized;
        self
    }

    pub(crate) fn with_table(mut self, table: Option<String>) -> Self {
        self.table = table;
        self
    }

    /// Number of nodes, used to cap how large inlining may make a query.
    pub(crate) fn weight(&self) -> usize {
        let exprs = |list: &[BoundExpr]| list.iter().map(BoundExpr::weight).sum::<usize>();
        1 + match &self.kind {
            RelKind::Scan { .. }
            | RelKind::Materialized { .. }
            | RelKind::ApplyInput
            | RelKind::ExternalData { .. } => 0,
            RelKind::Values { rows } => rows.iter().map(|r| exprs(r)).sum(),
            RelKind::Range { from, to, step } => from.weight() + to.weight() + step.weight(),
            RelKind::Filter { input, predicate } => input.weight() + predicate.weight(),
            RelKind::Project { input, exprs: list } => input.weight() + exprs(list),
            RelKind::Aggregate {
                input,
                keys,
                aggregates,
            } => {
                input.weight()
                    + exprs(keys)
                    + aggregates.iter().map(|a| exprs(&a.args)).sum::<usize>()
            }
            RelKind::Distinct { input } | RelKind::Serialize { input } => input.weight(),
            RelKind::Sort { input, keys } => {
                input.weight() + keys.iter().map(|k| k.expr.weight()).sum::<usize>()
            }
            RelKind::Limit { input, count } | RelKind::Sample { input, count } => {
                input.weight() + count.weight()
            }
            RelKind::Join { left, right, .. } => left.weight() + right.weight(),
            RelKind::Union { inputs } => inputs.iter().map(Rel::weight).sum(),
            RelKind::MvExpand { input, .. } => input.weight(),
            RelKind::MvApply {
                input, subquery, ..
            } => input.weight() + subquery.weight(),
            RelKind::Parse { input, source, .. } => input.weight() + source.weight(),
            RelKind::MakeSeries {
                input,
                keys,
                aggregates,
                ..
            } => {
                input.weight()
                    + exprs(keys)
                    + aggregates
                        .iter()
                        .map(|a| exprs(&a.call.args))
                        .sum::<usize>()
            }
            RelKind::BagUnpack { input, .. } | RelKind::Pivot { input, .. } => input.weight(),
        }
    }
}

impl RelKind {
    /// The operators this one reads (both sides of a join, every union leg, the
    /// subquery of `mv-apply`); not subqueries inside expressions.
    pub fn inputs(&self) -> Vec<&Rel> {
        match self {
            RelKind::Scan { .. }
            | RelKind::Materialized { .. }
            | RelKind::Values { .. }
            | RelKind::Range { .. }
            | RelKind::ExternalData { .. }
            | RelKind::ApplyInput => Vec::new(),
            RelKind::Filter { input, .. }
            | RelKind::Project { input, .. }
            | RelKind::Aggregate { input, .. }
            | RelKind::Distinct { input }
            | RelKind::Sort { input, .. }
            | RelKind::Limit { input, .. }
            | RelKind::Sample { input, .. }
            | RelKind::Serialize { input }
            | RelKind::MvExpand { input, .. }
            | RelKind::Parse { input, .. }
            | RelKind::MakeSeries { input, .. }
            | RelKind::BagUnpack { input, .. }
            | RelKind::Pivot { input, .. } => vec![input],
            RelKind::Join { left, right, .. } => vec![left, right],
            RelKind::Union { inputs } => inputs.iter().collect(),
            RelKind::MvApply {
                input, subquery, ..
            } => vec![input, subquery],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RelKind {
    /// All columns of a catalog table, in catalog order.
    Scan {
        table: String,
    },
    /// A `materialize`d input: [`BoundQuery::materialized`]`[id]`.
    Materialized {
        id: usize,
    },
    /// Constant rows (`datatable`, `print`, `getschema`); cells are constant expressions
    /// already converted to the column types.
    Values {
        rows: Vec<Vec<BoundExpr>>,
    },
    /// `externaldata`: the rows of every URI in turn, each column the field's text (the
    /// schema is all strings; the binder converts to the declared types in a `Project`
    /// above it, with the conversion functions).
    ExternalData {
        uris: Vec<ExternalUri>,
        format: ExternalFormat,
        /// Skip the first record of each CSV/TSV file (its header).
        ignore_first_record: bool,
        /// The declared type of each column. The text of a JSON field is its JSON form for
        /// a dynamic column and its content otherwise; a missing field is `""`, or `null`
        /// for a dynamic column (so that it converts to the dynamic null).
        declared: Vec<ScalarType>,
    },
    /// `range`: one column from `from` to `to` (inclusive when hit) by `step`.
    Range {
        from: Box<BoundExpr>,
        to: Box<BoundExpr>,
        step: Box<BoundExpr>,
    },
    /// Keeps rows whose predicate is exactly `true`.
    Filter {
        input: Box<Rel>,
        predicate: BoundExpr,
    },
    /// One expression per output column (`project`, `extend`, `project-*`, renames).
    Project {
        input: Box<Rel>,
        exprs: Vec<BoundExpr>,
    },
    /// Group by `keys`; output = keys, then every output of every aggregate, in order.
    /// Without keys: exactly one row, even on empty input (`count`/`sum`-like give 0,
    /// `make_*` give `[]`, others null).
    Aggregate {
        input: Box<Rel>,
        keys: Vec<BoundExpr>,
        aggregates: Vec<AggregateCall>,
    },
    /// Distinct rows over all columns.
    Distinct {
        input: Box<Rel>,
    },
    Sort {
        input: Box<Rel>,
        keys: Vec<SortKey>,
    },
    /// At most `count` rows (a constant integer).
    Limit {
        input: Box<Rel>,
        count: BoundExpr,
    },
    /// `count` random rows.
    Sample {
        input: Box<Rel>,
        count: BoundExpr,
    },
    /// Marks the input order as meaningful; rows pass through.
    Serialize {
        input: Box<Rel>,
    },
    /// Equality join on `keys`. Output per kind: inner/innerunique/outer kinds = left
    /// columns then right columns (right names already de-duplicated in the schema);
    /// semi/anti kinds = one side only. `InnerUnique` deduplicates the left side on the
    /// keys first.
    Join {
        left: Box<Rel>,
        right: Box<Rel>,
        kind: JoinKind,
        keys: Vec<JoinKey>,
    },
    /// Concatenation of inputs that all have exactly this schema (each leg was projected
    /// onto it, missing columns filled with null / `""`, `withsource` as a literal).
    Union {
        inputs: Vec<Rel>,
    },
    /// Expands the listed columns in parallel; their types become `to` (a cast) or stay
    /// dynamic. With an item index, the last output column is it (long, 0-based).
    MvExpand {
        input: Box<Rel>,
        columns: Vec<ExpandColumn>,
        bag_expansion: BagExpansion,
        with_item_index: bool,
        limit: Option<Box<BoundExpr>>,
    },
    /// Per input row: expand `columns` into a sub-table (schema of [`RelKind::ApplyInput`]
    /// in `subquery`: the expanded columns, then the item index if any), run `subquery`,
    /// and emit its rows with the row's other columns as listed in `outputs`.
    MvApply {
        input: Box<Rel>,
        columns: Vec<ExpandColumn>,
        with_item_index: bool,
        limit: Option<Box<BoundExpr>>,
        subquery: Box<Rel>,
        outputs: Vec<ApplyOutput>,
    },
    /// The leaf of an `mv-apply` subquery: the current row's sub-table.
    ApplyInput,
    /// Input columns, then one column per capture (in pattern order).
    Parse {
        input: Box<Rel>,
        /// A string (non-strings were wrapped in `tostring`).
        source: Box<BoundExpr>,
        kind: ParseKind,
        segments: Vec<ParseSegment>,
        /// `parse-where` drops rows that do not match; `parse` keeps them with nulls.
        drop_unmatched: bool,
    },
    /// Output = keys, one dynamic array per aggregate, then the axis (dynamic array of
    /// bin starts).
    MakeSeries {
        input: Box<Rel>,
        keys: Vec<BoundExpr>,
        aggregates: Vec<SeriesAggregate>,
        axis: Box<BoundExpr>,
        from: Option<Box<BoundExpr>>,
        to: Option<Box<BoundExpr>>,
        step: Box<BoundExpr>,
    },
    /// `evaluate bag_unpack(column)`: input minus `column`, plus one column per key.
    BagUnpack {
        input: Box<Rel>,
        column: usize,
        prefix: Option<String>,
    },
    /// `evaluate pivot(column, aggregate, group...)`.
    Pivot {
        input: Box<Rel>,
        column: usize,
        aggregate: AggregateCall,
        group: Vec<usize>,
    },
}

/// A storage URI of `externaldata`, located for the executor's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUri {
    pub text: String,
    pub span: Span,
}

/// How `externaldata` reads its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalFormat {
    /// Comma-separated, RFC 4180 quoting; fields by position.
    Csv,
    /// Tab-separated; fields by position.
    Tsv,
    /// JSON lines: one object per line; fields by name.
    Json,
    /// JSON objects (or arrays of them) one after another, across lines; fields by name.
    MultiJson,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub expr: BoundExpr,
    pub descending: bool,
    pub nulls_first: bool,
}

/// `left` indexes the left input's schema, `right` the right input's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinKey {
    pub left: usize,
    pub right: usize,
    /// The type both keys are compared as (they may be different numeric types).
    pub ty: ScalarType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandColumn {
    /// Index in the input schema (the output keeps it in place).
    pub column: usize,
    /// `to typeof(T)`: a cast; non-conforming elements become null.
    pub to: Option<ScalarType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutput {
    /// A column of the `mv-apply` input row.
    Outer(usize),
    /// A column of the subquery's output.
    Sub(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseKind {
    Simple,
    Relaxed,
    /// Constants are RE2 regexes.
    Regex {
        flags: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParseSegment {
    /// `*`: any text, non-greedy.
    Wildcard,
    /// A constant (regex text for [`ParseKind::Regex`]).
    Literal(String),
    /// A captured column: its index in the Parse node's output schema and its type
    /// (strings capture text; other types convert, failing per [`ParseKind`]).
    Capture { column: usize, ty: ScalarType },
}

/// An aggregate with its arguments over the input rows. Most produce one column;
/// `arg_max`/`arg_min` (args: the maximised expression, then the returned ones),
/// multi-argument `take_any` and `percentiles` produce several, one per entry of
/// `outputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateCall {
    pub function: &'static str,
    pub args: Vec<BoundExpr>,
    pub outputs: Vec<ScalarType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesAggregate {
    pub call: AggregateCall,
    /// Value for empty bins (0 unless `default=` was given), of the aggregate's type.
    pub default: BoundExpr,
}

/// A typed scalar expression.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundExpr {
    pub kind: BoundExprKind,
    pub ty: ScalarType,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BoundExprKind {
    Literal(Literal),
    /// A column of the operator's input: index and name in the input schema.
    Column {
        index: usize,
        name: String,
    },
    /// A column of an open schema, found by name at run time (dynamic; null if absent).
    LateColumn {
        name: String,
    },
    /// Dynamic property/element access `target.a["b"][0]`: each step is a string key
    /// or a long index. Missing or mismatched steps give null.
    Path {
        target: Box<BoundExpr>,
        steps: Vec<BoundExpr>,
    },
    /// Numeric widening of the operand to this node's type.
    Cast(Box<BoundExpr>),
    Unary {
        op: UnaryOp,
        operand: Box<BoundExpr>,
    },
    /// Arithmetic, comparison, logic, and string operators. String operators (`has`,
    /// `contains`, `=~`, ...) always get string or dynamic operands (others were wrapped
    /// in `tostring`); for dynamic, use the value's string form.
    Binary {
        op: BinaryOp,
        left: Box<BoundExpr>,
        right: Box<BoundExpr>,
    },
    /// `in`, `!in`, `in~`, `!in~`, `has_any`, `has_all`. Dynamic arrays among the items
    /// are flattened at run time; subquery items contribute their first column.
    List {
        op: ListOp,
        left: Box<BoundExpr>,
        items: Vec<ListItem>,
    },
    /// `low <= left <= high` (inclusive). When `left` is a datetime and `high` a timespan,
    /// `high` means `low + high`.
    Between {
        negated: bool,
        left: Box<BoundExpr>,
        low: Box<BoundExpr>,
        high: Box<BoundExpr>,
    },
    /// A scalar function under its canonical name.
    Call {
        function: &'static str,
        args: Vec<BoundExpr>,
    },
    /// A window function (`row_number`, `prev`, `next`, `row_cumsum`) over the input's
    /// row order; only bound on serialized input.
    Window {
        function: &'static str,
        args: Vec<BoundExpr>,
    },
    /// `toscalar(...)`: first column of the first row, null if empty.
    ScalarSubquery(Box<Rel>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ListItem {
    Scalar(BoundExpr),
    /// `in ((T | project x))` or a tabular `let` name: its first column.
    Subquery(Rel),
}

impl BoundExpr {
    pub(crate) fn new(kind: BoundExprKind, ty: ScalarType, span: Span) -> Self {
        BoundExpr { kind, ty, span }
    }

    pub(crate) fn literal(literal: Literal, span: Span) -> Self {
        let ty = super::types::literal_type(&literal);
        BoundExpr::new(BoundExprKind::Literal(literal), ty, span)
    }

    pub(crate) fn column(index: usize, column: &Column, span: Span) -> Self {
        BoundExpr::new(
            BoundExprKind::Column {
                index,
                name: column.name.clone(),
            },
            column.ty,
            span,
        )
    }

    /// Widens to `ty` if needed (a no-op when the types already agree).
    pub(crate) fn cast_to(self, ty: ScalarType) -> Self {
        if self.ty == ty {
            return self;
        }
        let span = self.span;
        BoundExpr::new(BoundExprKind::Cast(Box::new(self)), ty, span)
    }

    /// Direct sub-expressions (not those inside subqueries, which have their own inputs).
    pub(crate) fn children(&self) -> Vec<&BoundExpr> {
        match &self.kind {
            BoundExprKind::Literal(_)
            | BoundExprKind::Column { .. }
            | BoundExprKind::LateColumn { .. }
            | BoundExprKind::ScalarSubquery(_) => Vec::new(),
            BoundExprKind::Path { target, steps } => {
                let mut all = vec![target.as_ref()];
                all.extend(steps.iter());
                all
            }
            BoundExprKind::Cast(inner) => vec![inner],
            BoundExprKind::Unary { operand, .. } => vec![operand],
            BoundExprKind::Binary { left, right, .. } => vec![left, right],
            BoundExprKind::List { left, items, .. } => {
                let mut all = vec![left.as_ref()];
                all.extend(items.iter().filter_map(|item| match item {
                    ListItem::Scalar(e) => Some(e),
                    ListItem::Subquery(_) => None,
                }));
                all
            }
            BoundExprKind::Between {
                left, low, high, ..
            } => vec![left, low, high],
            BoundExprKind::Call { args, .. } | BoundExprKind::Window { args, .. } => {
                args.iter().collect()
            }
        }
    }

    /// Renames every column reference to `name(index)` (not inside subqueries).
    pub(crate) fn rename_columns(&mut self, name: &dyn Fn(usize) -> Option<String>) {
        let mut stack: Vec<&mut BoundExpr> = vec![self];
        while let Some(expr) = stack.pop() {
            match &mut expr.kind {
                BoundExprKind::Column {
                    index,
                    name: current,
                } => {
                    if let Some(new) = name(*index) {
                        *current = new;
                    }
                }
                BoundExprKind::Literal(_)
                | BoundExprKind::LateColumn { .. }
                | BoundExprKind::ScalarSubquery(_) => {}
                BoundExprKind::Path { target, steps } => {
                    stack.push(target);
                    stack.extend(steps.iter_mut());
                }
                BoundExprKind::Cast(inner) => stack.push(inner),
                BoundExprKind::Unary { operand, .. } => stack.push(operand),
                BoundExprKind::Binary { left, right, .. } => {
                    stack.push(left);
                    stack.push(right);
                }
                BoundExprKind::List { left, items, .. } => {
                    stack.push(left);
                    for item in items {
                        if let ListItem::Scalar(e) = item {
                            stack.push(e);
                        }
                    }
                }
                BoundExprKind::Between {
                    left, low, high, ..
                } => {
                    stack.push(left);
                    stack.push(low);
                    stack.push(high);
                }
                BoundExprKind::Call { args, .. } | BoundExprKind::Window { args, .. } => {
                    stack.extend(args.iter_mut());
                }
            }
        }
    }

    /// Input columns this expression reads.
    pub(crate) fn columns_used(&self, out: &mut Vec<usize>) {
        if let BoundExprKind::Column { index, .. } = &self.kind {
            out.push(*index);
        }
        for child in self.children() {
            child.columns_used(out);
        }
    }

    /// Whether it reads no column (so it can be evaluated once).
    pub(crate) fn is_constant(&self) -> bool {
        !matches!(
            self.kind,
            BoundExprKind::Column { .. }
                | BoundExprKind::LateColumn { .. }
                | BoundExprKind::Window { .. }
        ) && self.children().iter().all(|c| c.is_constant())
    }

    pub(crate) fn weight(&self) -> usize {
        let own = match &self.kind {
            BoundExprKind::ScalarSubquery(rel) => rel.weight(),
            BoundExprKind::List { items, .. } => items
                .iter()
                .map(|item| match item {
                    ListItem::Subquery(rel) => rel.weight(),
                    ListItem::Scalar(_) => 0,
                })
                .sum(),
            _ => 0,
        };
        1 + own + self.children().iter().map(|c| c.weight()).sum::<usize>()
    }
}
