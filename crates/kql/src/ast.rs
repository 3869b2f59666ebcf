//! Syntax tree of a KQL query. Shapes follow the grammar closely; aliases are
//! normalised while parsing (`filter` -> [`Operator::Where`], `order by` ->
//! [`Operator::Sort`], `limit` -> [`Operator::Take`], legacy string operators ->
//! their modern [`BinaryOp`]), and defaults are made explicit (sort direction,
//! null placement, join kind) so later stages never re-derive them.

use crate::span::Span;

/// A whole query: `statement (';' statement)* [';']`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub statements: Vec<Statement>,
    /// The text the query was parsed from: spans index into it, and the binder needs it
    /// to report line and column the way the parser does.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Let(LetStatement),
    Tabular(TabularExpr),
    /// `set name [= value]`: accepted; only the executor decides what to honour.
    Set {
        name: Name,
        value: Option<Expr>,
    },
    DeclareQueryParameters(Vec<Param>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LetStatement {
    pub name: Name,
    pub value: LetValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LetValue {
    /// A scalar expression. A bare name or call without a pipe (`let X = T;`) also
    /// lands here: only name resolution can tell a table alias from a scalar.
    Scalar(Expr),
    Tabular(TabularExpr),
    Function(FunctionDef),
    Materialize(TabularExpr),
}

/// `(params) { [let ...;]* result }`, or `view (params) { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    pub is_view: bool,
    pub params: Vec<Param>,
    pub lets: Vec<LetStatement>,
    pub body: FunctionBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FunctionBody {
    Scalar(Expr),
    Tabular(TabularExpr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: Name,
    pub ty: ParamType,
    pub default: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParamType {
    Scalar(ScalarType),
    /// `T:(*)` is `Tabular(None)`; `T:(A:long, B:string)` lists the columns.
    Tabular(Option<Vec<ColumnDecl>>),
}

/// `Name:type` in a schema (`datatable`, function parameters, `evaluate ... : (...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDecl {
    pub name: Name,
    pub ty: ScalarType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    Bool,
    Int,
    Long,
    Real,
    Decimal,
    String,
    Datetime,
    Timespan,
    Guid,
    Dynamic,
}

impl ScalarType {
    /// Maps a type name or alias of §2 (`double`, `date`, `int64`, ...) to its type.
    pub fn from_name(name: &str) -> Option<ScalarType> {
        let ty = match name {
            "bool" | "boolean" => ScalarType::Bool,
            "int" | "int32" | "int8" | "int16" | "uint" | "uint8" | "uint16" | "uint32" => {
                ScalarType::Int
            }
            "long" | "int64" | "ulong" | "uint64" => ScalarType::Long,
            "real" | "double" | "float" => ScalarType::Real,
            "decimal" => ScalarType::Decimal,
            "string" => ScalarType::String,
            "datetime" | "date" => ScalarType::Datetime,
            "timespan" | "time" => ScalarType::Timespan,
            "guid" | "uuid" | "uniqueid" => ScalarType::Guid,
            "dynamic" => ScalarType::Dynamic,
            _ => return None,
        };
        Some(ty)
    }
}

/// An identifier, plain or bracketed (`['any text']`), with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// A name that may contain `*` wildcards (`Pre*`, `*Suf`, `A*B*`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    pub text: String,
    pub span: Span,
}

impl NamePattern {
    pub fn is_wildcard(&self) -> bool {
        self.text.contains('*')
    }
}

/// `Source | op | op ...`
#[derive(Debug, Clone, PartialEq)]
pub struct TabularExpr {
    pub source: Source,
    pub operators: Vec<Operator>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A table or `let`-bound tabular name.
    Table(Name),
    /// A call of a `let`-bound or stored function: `F(args)`.
    Call(FunctionCall),
    Union(Union),
    Datatable(Datatable),
    Print(Vec<NamedExpr>),
    Range(Box<RangeSource>),
    Search(Box<Search>),
    Paren(Box<TabularExpr>),
    ExternalData(Box<ExternalData>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Datatable {
    pub columns: Vec<ColumnDecl>,
    /// Row-major cell values.
    pub values: Vec<Expr>,
}

/// `externaldata (Col:type, ...) ["uri", ...] [with (name = value, ...)]`: rows read from
/// outside the query. Parsed as written; whether a URI can be read is the executor's call.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalData {
    pub columns: Vec<ColumnDecl>,
    pub uris: Vec<ExternalUri>,
    pub properties: Vec<ExternalProperty>,
    /// The `externaldata` keyword.
    pub span: Span,
}

/// One storage URI of `externaldata`, as a string literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUri {
    pub text: String,
    pub span: Span,
}

/// `name = value` in `externaldata ... with (...)`. The value is a literal (a bare word
/// such as `format=csv` is kept as a string).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalProperty {
    pub name: Name,
    pub value: Literal,
    /// The value as written.
    pub value_span: Span,
}

/// `range Column from A to B step S`
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSource {
    pub column: Name,
    pub from: Expr,
    pub to: Expr,
    pub step: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Union {
    pub kind: UnionKind,
    pub with_source: Option<Name>,
    pub is_fuzzy: bool,
    pub legs: Vec<UnionLeg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnionKind {
    #[default]
    Outer,
    Inner,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UnionLeg {
    Table(NamePattern),
    Subquery(TabularExpr),
}

/// `search [kind=case_sensitive] [in (Tables)] Predicate`
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub case_sensitive: bool,
    pub tables: Vec<NamePattern>,
    pub predicate: Expr,
}

/// A pipeline operator (§4). One variant per operator; aliases share a variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// `where` / `filter`
    Where(Expr),
    Project(Vec<NamedExpr>),
    ProjectAway(Vec<NamePattern>),
    ProjectKeep(Vec<NamePattern>),
    ProjectRename(Vec<Rename>),
    ProjectReorder(Vec<ReorderColumn>),
    Extend(Vec<NamedExpr>),
    Summarize(Summarize),
    Count,
    Distinct(DistinctColumns),
    /// `take` / `limit`
    Take(Expr),
    Top(Top),
    /// `sort by` / `order by`
    Sort(Vec<SortKey>),
    Join(Join),
    Lookup(Lookup),
    Union(Union),
    /// `mv-expand` and legacy `mvexpand`.
    MvExpand(MvExpand),
    /// `mv-apply` and legacy `mvapply`.
    MvApply(MvApply),
    Parse(Parse),
    ParseWhere(Parse),
    MakeSeries(Box<MakeSeries>),
    Evaluate(Evaluate),
    Serialize(Vec<NamedExpr>),
    As(Name),
    Invoke(FunctionCall),
    GetSchema,
    /// `render ...`: a visualization hint; only the chart kind is kept.
    Render(Name),
    Sample(Expr),
    TopNested(Vec<TopNestedLevel>),
    Search(Search),
}

/// `[Name =] expr` or `(A, B) = expr`.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedExpr {
    pub name: Option<AssignTarget>,
    pub expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AssignTarget {
    Single(Name),
    Tuple(Vec<Name>),
}

/// `project-rename New = Old`
#[derive(Debug, Clone, PartialEq)]
pub struct Rename {
    pub new: Name,
    pub old: Name,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReorderColumn {
    pub pattern: NamePattern,
    pub order: Option<ReorderOrder>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReorderOrder {
    Asc,
    Desc,
    GrannyAsc,
    GrannyDesc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summarize {
    pub aggregates: Vec<NamedExpr>,
    pub by: Vec<NamedExpr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DistinctColumns {
    All,
    Columns(Vec<NamedExpr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    pub count: Expr,
    pub by: SortKey,
}

/// A sort key with its defaults resolved: direction defaults to descending, nulls
/// to first for ascending and last for descending.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub direction: SortDirection,
    pub nulls: NullsPlacement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDirection {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullsPlacement {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub kind: JoinKind,
    pub right: TabularExpr,
    pub on: Vec<JoinCondition>,
}

/// Join flavours of §4.4 with the aliases folded (`anti`/`leftantisemi` -> LeftAnti).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinKind {
    #[default]
    InnerUnique,
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
    LeftSemi,
    LeftAnti,
    RightSemi,
    RightAnti,
}

impl JoinKind {
    pub fn from_name(name: &str) -> Option<JoinKind> {
        let kind = match name {
            "innerunique" => JoinKind::InnerUnique,
            "inner" => JoinKind::Inner,
            "leftouter" => JoinKind::LeftOuter,
            "rightouter" => JoinKind::RightOuter,
            "fullouter" => JoinKind::FullOuter,
            "leftsemi" => JoinKind::LeftSemi,
            "leftanti" | "anti" | "leftantisemi" => JoinKind::LeftAnti,
            "rightsemi" => JoinKind::RightSemi,
            "rightanti" | "rightantisemi" => JoinKind::RightAnti,
            _ => return None,
        };
        Some(kind)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum JoinCondition {
    /// `on Key`: same column name on both sides.
    Column(Name),
    /// `on $left.A == $right.B` (also written the other way round).
    LeftRight { left: Name, right: Name },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub kind: LookupKind,
    pub right: TabularExpr,
    pub on: Vec<JoinCondition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LookupKind {
    #[default]
    LeftOuter,
    Inner,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MvExpand {
    /// Written as `mvexpand` (caps at 128 rows per input row unless `limit` is given).
    pub legacy: bool,
    pub bag_expansion: BagExpansion,
    pub item_index: Option<Name>,
    pub items: Vec<ExpandItem>,
    pub limit: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BagExpansion {
    #[default]
    Bag,
    Array,
}

/// `[Name =] expr [to typeof(T)]`
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandItem {
    pub name: Option<Name>,
    pub expr: Expr,
    pub to_type: Option<ScalarType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MvApply {
    pub item_index: Option<Name>,
    pub items: Vec<ExpandItem>,
    pub limit: Option<Expr>,
    /// The operators of `on (...)`; their input is the expanded sub-table.
    pub subquery: Vec<Operator>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Parse {
    pub kind: ParseKind,
    pub source: Expr,
    pub pattern: Vec<ParsePart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ParseKind {
    #[default]
    Simple,
    Relaxed,
    Regex {
        flags: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParsePart {
    /// `*`: skip any text.
    Wildcard,
    /// A constant string (a regex for `kind=regex`).
    Literal(String),
    /// `Column[:type]`; untyped columns are strings.
    Column { name: Name, ty: Option<ScalarType> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MakeSeries {
    pub aggregates: Vec<SeriesAggregate>,
    pub on: Expr,
    pub range: SeriesRange,
    pub by: Vec<NamedExpr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesAggregate {
    pub name: Option<Name>,
    pub expr: Expr,
    pub default: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRange {
    pub from: Option<Expr>,
    pub to: Option<Expr>,
    pub step: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluate {
    pub plugin: FunctionCall,
    /// Output schema given after `:`, if any.
    pub schema: Option<Vec<ColumnDecl>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopNestedLevel {
    pub count: Option<Expr>,
    pub of: NamedExpr,
    pub others: Option<Expr>,
    pub by: NamedExpr,
    pub direction: SortDirection,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCall {
    pub name: Name,
    pub args: Vec<Expr>,
    pub span: Span,
}

/// A scalar expression with the span of its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Literal(Literal),
    /// A column, `let` name or parameter.
    Name(Name),
    /// `*` standing for "any column" (`where * has "x"`, `arg_max(T, *)`).
    Star,
    /// `target.name`
    Member {
        target: Box<Expr>,
        name: Name,
    },
    /// `target[index]`, `target['key']`
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
    },
    Call(FunctionCall),
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `in`, `!in`, `in~`, `!in~`, `has_any`, `has_all` with their list.
    List {
        op: ListOp,
        left: Box<Expr>,
        items: Vec<Expr>,
    },
    /// `between (low .. high)` / `!between`
    Between {
        negated: bool,
        left: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
    },
    /// A tabular expression in scalar position: `toscalar(T | count)`, `in ((T | project x))`.
    Tabular(Box<TabularExpr>),
    /// `Name = value` as a call argument: a named result column
    /// (`arg_max(Timestamp, Acct = AccountName)`) or a plugin option.
    NamedArgument {
        name: Name,
        value: Box<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Bool(bool),
    Int(i32),
    Long(i64),
    Real(f64),
    /// Kept as text: the executor owns decimal arithmetic.
    Decimal(String),
    String(String),
    /// Raw text of `datetime(...)`; validated and converted by the executor.
    Datetime(String),
    /// In 100 ns ticks.
    Timespan(i64),
    /// Raw text of `guid(...)`.
    Guid(String),
    Dynamic(DynamicValue),
    /// `long(null)`, `datetime(null)`, ...
    Null(ScalarType),
    /// `typeof(T)`
    Type(ScalarType),
}

/// The JSON-like value of a `dynamic(...)` literal.
#[derive(Debug, Clone, PartialEq)]
pub enum DynamicValue {
    Null,
    Bool(bool),
    Long(i64),
    Real(f64),
    String(String),
    Datetime(String),
    Timespan(i64),
    Guid(String),
    Array(Vec<DynamicValue>),
    Object(Vec<(String, DynamicValue)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Plus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    /// `=~`
    EqCi,
    /// `!~`
    NotEqCi,
    Has,
    NotHas,
    HasCs,
    NotHasCs,
    HasPrefix,
    NotHasPrefix,
    HasPrefixCs,
    NotHasPrefixCs,
    HasSuffix,
    NotHasSuffix,
    HasSuffixCs,
    NotHasSuffixCs,
    Contains,
    NotContains,
    ContainsCs,
    NotContainsCs,
    StartsWith,
    NotStartsWith,
    StartsWithCs,
    NotStartsWithCs,
    EndsWith,
    NotEndsWith,
    EndsWithCs,
    NotEndsWithCs,
    MatchesRegex,
    /// Legacy `like` / `notlike`.
    Like,
    NotLike,
    /// `Column:"term"` inside a `search` predicate.
    SearchColumn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOp {
    In,
    NotIn,
    InCi,
    NotInCi,
    HasAny,
    HasAll,
}
