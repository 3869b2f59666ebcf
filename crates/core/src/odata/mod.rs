//! OData v4 query options as the MDE API accepts them.
//!
//! [`QueryOptions::parse`] turns the raw query string pairs into a typed query and checks it
//! against an [`EntitySet`]: every field it names must exist and be filterable or sortable, every
//! literal must have the field's type, and enum literals are canonicalised. The store compiles the
//! checked query to parameterised SQL; nothing in a query ever becomes SQL text.

mod lexer;
mod parser;
mod validate;

pub use parser::{MAX_DEPTH, MAX_FILTER_LEN, parse_filter};
pub use validate::MAX_ORDERBY_KEYS;

use time::OffsetDateTime;

/// Page size when the client gives no `$top`, and the largest it may ask for (MDE: 10,000).
pub const MAX_TOP: u32 = 10_000;

/// A literal in a `$filter` expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Null,
    String(String),
    Int(i64),
    Bool(bool),
    /// An unquoted ISO 8601 datetime, e.g. `lastUpdateTime ge 2019-11-22T00:00:00Z`.
    DateTime(OffsetDateTime),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// The string functions of `$filter`: `startswith(field,'v')` and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrFn {
    StartsWith,
    EndsWith,
    Contains,
}

/// A `$filter` expression. Field names are as the client wrote them until validation, which
/// replaces them with the canonical [`Field::name`].
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `field op literal` (a reversed `literal op field` is normalised to this form).
    Compare {
        field: String,
        op: CmpOp,
        value: Literal,
    },
    /// `field in ('a','b')`.
    In {
        field: String,
        values: Vec<Literal>,
    },
    /// `startswith(field,'v')`, `endswith(…)`, `contains(…)`.
    StrFn {
        func: StrFn,
        field: String,
        value: String,
    },
    /// `field/any(t: <predicate>)` on a string collection; inside `predicate` the lambda variable
    /// appears as the field name `var` and stands for one element of the collection.
    Any {
        field: String,
        var: String,
        predicate: Box<Filter>,
    },
}

/// The type of an entity property, as far as OData needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    /// A string with a closed set of values; literals are matched case-insensitively and
    /// replaced by the canonical spelling.
    Enum(&'static [&'static str]),
    Int,
    Bool,
    DateTime,
    /// A collection of strings (e.g. `machineTags`); only `any(…)` applies to it.
    StringCollection,
}

/// One property of an entity set that `$filter`/`$orderby` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The OData (JSON) property name, e.g. `alertCreationTime`.
    pub name: &'static str,
    pub ty: FieldType,
    /// May appear in `$filter`.
    pub filterable: bool,
    /// May appear in `$orderby`.
    pub sortable: bool,
    /// May be null. A sort key that never is lets the store order and seek without NULL
    /// handling, which is what lets an index serve deep pages.
    pub nullable: bool,
}

impl Field {
    pub const fn new(name: &'static str, ty: FieldType) -> Self {
        Field {
            name,
            ty,
            filterable: true,
            sortable: true,
            nullable: true,
        }
    }

    /// The same field, declared never null (its column is `NOT NULL`).
    pub const fn not_null(self) -> Self {
        Field {
            nullable: false,
            ..self
        }
    }
}

/// A collection resource: its OData name (for `@odata.context`) and what its queries may use.
#[derive(Debug)]
pub struct EntitySet {
    /// e.g. `Alerts`, as in `$metadata#Alerts`.
    pub name: &'static str,
    pub fields: &'static [Field],
    /// The navigation properties `$expand` accepts (e.g. `evidence` on alerts).
    pub expand: &'static [&'static str],
}

impl EntitySet {
    /// Looks a field up by name, case-insensitively as MDE does.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// One `$orderby` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBy {
    pub field: &'static Field,
    pub descending: bool,
}

/// The checked query options of one collection request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryOptions {
    pub filter: Option<Filter>,
    /// The page size: `$top`, else [`MAX_TOP`].
    pub top: u32,
    pub skip: u64,
    pub orderby: Vec<OrderBy>,
    /// `$select`, canonical property names; `None` selects everything.
    pub select: Option<Vec<String>>,
    pub count: bool,
    /// `$expand`, canonical navigation property names.
    pub expand: Vec<String>,
    /// `$skiptoken`: Rampart's opaque keyset cursor from a previous `@odata.nextLink`.
    pub skiptoken: Option<String>,
}

/// A query option Rampart cannot honour; answered as 400 `ODataError`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ODataError {
    pub message: String,
    /// The query option or field at fault, e.g. `$filter` or `severity`.
    pub target: String,
}

impl ODataError {
    pub fn new(target: impl Into<String>, message: impl Into<String>) -> Self {
        ODataError {
            message: message.into(),
            target: target.into(),
        }
    }
}

impl QueryOptions {
    /// Parses and checks the query string pairs of a collection request against `set`.
    /// Parameters that are not `$`-options are ignored (routes read their own).
    pub fn parse(pairs: &[(String, String)], set: &EntitySet) -> Result<QueryOptions, ODataError> {
        validate::parse_options(pairs, set)
    }
}
