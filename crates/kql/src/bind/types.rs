//! The typing rules of §2 and §5: which operand types an operator accepts and what it
//! yields. Kept apart from the binder so the rules read as a table, not as control flow.
//!
//! Implicit conversions are few on purpose: numbers widen (`int -> long -> real ->
//! decimal`), `dynamic` stands in for anything (its value is only known at run time), and
//! nothing converts between strings and numbers or datetimes.

use crate::ast::{BinaryOp, Literal, ScalarType};
use rampart_core::schema::KqlType;
use std::fmt;

impl ScalarType {
    /// The KQL spelling, as `getschema` and error messages show it.
    pub const fn name(self) -> &'static str {
        match self {
            ScalarType::Bool => "bool",
            ScalarType::Int => "int",
            ScalarType::Long => "long",
            ScalarType::Real => "real",
            ScalarType::Decimal => "decimal",
            ScalarType::String => "string",
            ScalarType::Datetime => "datetime",
            ScalarType::Timespan => "timespan",
            ScalarType::Guid => "guid",
            ScalarType::Dynamic => "dynamic",
        }
    }

    /// The .NET type name (`getschema`'s `DataType`).
    pub const fn clr_name(self) -> &'static str {
        match self {
            ScalarType::Bool => "System.Boolean",
            ScalarType::Int => "System.Int32",
            ScalarType::Long => "System.Int64",
            ScalarType::Real => "System.Double",
            ScalarType::Decimal => "System.Data.SqlTypes.SqlDecimal",
            ScalarType::String => "System.String",
            ScalarType::Datetime => "System.DateTime",
            ScalarType::Timespan => "System.TimeSpan",
            ScalarType::Guid => "System.Guid",
            ScalarType::Dynamic => "System.Object",
        }
    }

    pub const fn is_numeric(self) -> bool {
        matches!(
            self,
            ScalarType::Int | ScalarType::Long | ScalarType::Real | ScalarType::Decimal
        )
    }

    pub const fn is_integer(self) -> bool {
        matches!(self, ScalarType::Int | ScalarType::Long)
    }

    /// Position on the widening ladder `int -> long -> real -> decimal`.
    const fn numeric_rank(self) -> Option<u8> {
        match self {
            ScalarType::Int => Some(0),
            ScalarType::Long => Some(1),
            ScalarType::Real => Some(2),
            ScalarType::Decimal => Some(3),
            _ => None,
        }
    }

    /// Whether `sort`, `top`, `min`/`max` and `arg_min`/`arg_max` may order by it.
    /// Strings are orderable there even though `<` refuses them (§2).
    pub const fn is_orderable(self) -> bool {
        !matches!(self, ScalarType::Bool | ScalarType::Guid)
    }

    /// A word with its article, for messages: "a string", "an int".
    pub fn with_article(self) -> String {
        let name = self.name();
        let article = if matches!(self, ScalarType::Int) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<KqlType> for ScalarType {
    fn from(ty: KqlType) -> Self {
        match ty {
            KqlType::Bool => ScalarType::Bool,
            KqlType::Int => ScalarType::Int,
            KqlType::Long => ScalarType::Long,
            KqlType::Real => ScalarType::Real,
            KqlType::String => ScalarType::String,
            KqlType::DateTime => ScalarType::Datetime,
            KqlType::Dynamic => ScalarType::Dynamic,
        }
    }
}

/// The type of a literal. `typeof(T)` is typed as `T`; only functions that take a type
/// argument (`extract`, `column_ifexists`) look at it.
pub fn literal_type(literal: &Literal) -> ScalarType {
    match literal {
        Literal::Bool(_) => ScalarType::Bool,
        Literal::Int(_) => ScalarType::Int,
        Literal::Long(_) => ScalarType::Long,
        Literal::Real(_) => ScalarType::Real,
        Literal::Decimal(_) => ScalarType::Decimal,
        Literal::String(_) => ScalarType::String,
        Literal::Datetime(_) => ScalarType::Datetime,
        Literal::Timespan(_) => ScalarType::Timespan,
        Literal::Guid(_) => ScalarType::Guid,
        Literal::Dynamic(_) => ScalarType::Dynamic,
        Literal::Null(ty) | Literal::Type(ty) => *ty,
    }
}

/// The "missing value" of a type: null, except for strings, which have none (`""`).
pub fn empty_literal(ty: ScalarType) -> Literal {
    match ty {
        ScalarType::String => Literal::String(String::new()),
        ScalarType::Dynamic => Literal::Dynamic(crate::ast::DynamicValue::Null),
        other => Literal::Null(other),
    }
}

/// The wider of two numeric types.
pub fn widest(a: ScalarType, b: ScalarType) -> Option<ScalarType> {
    let (ra, rb) = (a.numeric_rank()?, b.numeric_rank()?);
    Some(if ra >= rb { a } else { b })
}

/// Whether a value of type `from` may stand where `to` is expected without an explicit
/// conversion: the same type, numeric widening, or anything into `dynamic`.
pub fn assignable(from: ScalarType, to: ScalarType) -> bool {
    from == to
        || to == ScalarType::Dynamic
        || matches!((from.numeric_rank(), to.numeric_rank()), (Some(f), Some(t)) if f <= t)
}

/// The one type the branches of `iff`/`case`/`coalesce` (and `min_of`, union cells) share:
/// equal types, the wider number, or `dynamic` when either side is dynamic.
pub fn unify(a: ScalarType, b: ScalarType) -> Option<ScalarType> {
    if a == b {
        return Some(a);
    }
    if a == ScalarType::Dynamic || b == ScalarType::Dynamic {
        return Some(ScalarType::Dynamic);
    }
    widest(a, b)
}

/// Result of typing a binary operator: the result type, and the type both operands are
/// converted to first when they differ (numeric promotion), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typed {
    pub result: ScalarType,
    pub operands: Option<ScalarType>,
}

/// `+ - * / %` (§2): numbers widen; datetime/timespan follow their own table; dynamic
/// operands defer to run time. `None` is a type error.
pub fn arithmetic(op: BinaryOp, l: ScalarType, r: ScalarType) -> Option<Typed> {
    use BinaryOp::*;
    use ScalarType::*;
    if let Some(wide) = widest(l, r) {
        return Some(Typed {
            result: wide,
            operands: Some(wide),
        });
    }
    let plain = |result| {
        Some(Typed {
            result,
            operands: None,
        })
    };
    let time_like = |t: ScalarType| matches!(t, Datetime | Timespan);
    if l == Dynamic || r == Dynamic {
        let other = if l == Dynamic { r } else { l };
        return if other == Dynamic || other.is_numeric() || time_like(other) {
            plain(Dynamic)
        } else {
            None
        };
    }
    match (op, l, r) {
        (Sub, Datetime, Datetime) => plain(Timespan),
        (Add | Sub, Datetime, Timespan) | (Add, Timespan, Datetime) => plain(Datetime),
        (Add | Sub | Mod, Timespan, Timespan) => plain(Timespan),
        (Div, Timespan, Timespan) => plain(Real),
        (Mul, Timespan, n) | (Mul, n, Timespan) if n.is_numeric() => plain(Timespan),
        (Div, Timespan, n) if n.is_numeric() => plain(Timespan),
        _ => None,
    }
}

/// `==`/`!=`: numbers cross-compare (widened), equal types compare, dynamic compares with
/// anything. Returns the operand conversion, or `None` if the types are incomparable.
pub fn equality(l: ScalarType, r: ScalarType) -> Option<Typed> {
    if let Some(wide) = widest(l, r) {
        return Some(Typed {
            result: ScalarType::Bool,
            operands: Some(wide),
        });
    }
    if l == r || l == ScalarType::Dynamic || r == ScalarType::Dynamic {
        return Some(Typed {
            result: ScalarType::Bool,
            operands: None,
        });
    }
    None
}

/// Why `< <= > >=` refused its operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderingError {
    /// Strings are not ordered by `<` (§2: use `strcmp`).
    Strings,
    Incompatible,
}

/// `< <= > >=`: numbers, datetime, timespan, and dynamic against those.
pub fn ordering(l: ScalarType, r: ScalarType) -> Result<Typed, OrderingError> {
    use ScalarType::*;
    if l == String && r == String {
        return Err(OrderingError::Strings);
    }
    if let Some(wide) = widest(l, r) {
        return Ok(Typed {
            result: Bool,
            operands: Some(wide),
        });
    }
    let ordered = |t: ScalarType| t.is_numeric() || matches!(t, Datetime | Timespan | Dynamic);
    let fits = (l == r && matches!(l, Datetime | Timespan | Dynamic))
        || (l == Dynamic && ordered(r))
        || (r == Dynamic && ordered(l));
    if fits {
        Ok(Typed {
            result: Bool,
            operands: None,
        })
    } else {
        Err(OrderingError::Incompatible)
    }
}

/// The symbol of an operator as written, for messages.
pub fn operator_text(op: BinaryOp) -> &'static str {
    use BinaryOp::*;
    match op {
        Or => "or",
        And => "and",
        Eq => "==",
        NotEq => "!=",
        Lt => "<",
        Le => "<=",
        Gt => ">",
        Ge => ">=",
        Add => "+",
        Sub => "-",
        Mul => "*",
        Div => "/",
        Mod => "%",
        EqCi => "=~",
        NotEqCi => "!~",
        Has => "has",
        NotHas => "!has",
        HasCs => "has_cs",
        NotHasCs => "!has_cs",
        HasPrefix => "hasprefix",
        NotHasPrefix => "!hasprefix",
        HasPrefixCs => "hasprefix_cs",
        NotHasPrefixCs => "!hasprefix_cs",
        HasSuffix => "hassuffix",
        NotHasSuffix => "!hassuffix",
        HasSuffixCs => "hassuffix_cs",
        NotHasSuffixCs => "!hassuffix_cs",
        Contains => "contains",
        NotContains => "!contains",
        ContainsCs => "contains_cs",
        NotContainsCs => "!contains_cs",
        StartsWith => "startswith",
        NotStartsWith => "!startswith",
        StartsWithCs => "startswith_cs",
        NotStartsWithCs => "!startswith_cs",
        EndsWith => "endswith",
        NotEndsWith => "!endswith",
        EndsWithCs => "endswith_cs",
        NotEndsWithCs => "!endswith_cs",
        MatchesRegex => "matches regex",
        Like => "like",
        NotLike => "notlike",
        SearchColumn => ":",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ScalarType::*;

    #[test]
    fn numbers_widen_and_time_follows_its_table() {
        assert_eq!(
            arithmetic(BinaryOp::Add, Int, Real).map(|t| t.result),
            Some(Real)
        );
        assert_eq!(
            arithmetic(BinaryOp::Sub, Datetime, Datetime).map(|t| t.result),
            Some(Timespan)
        );
        assert_eq!(
            arithmetic(BinaryOp::Div, Timespan, Timespan).map(|t| t.result),
            Some(Real)
        );
        assert_eq!(
            arithmetic(BinaryOp::Mul, Long, Timespan).map(|t| t.result),
            Some(Timespan)
        );
        assert_eq!(arithmetic(BinaryOp::Add, Datetime, Datetime), None);
        assert_eq!(arithmetic(BinaryOp::Add, String, String), None);
        assert_eq!(arithmetic(BinaryOp::Div, Long, Timespan), None);
    }

    #[test]
    fn comparisons() {
        assert!(equality(Int, Real).is_some());
        assert!(equality(Long, String).is_none());
        assert_eq!(ordering(String, String), Err(OrderingError::Strings));
        assert!(ordering(Datetime, Datetime).is_ok());
        assert!(ordering(Datetime, Timespan).is_err());
        assert!(ordering(Dynamic, Long).is_ok());
    }

    #[test]
    fn assignability() {
        assert!(assignable(Int, Real));
        assert!(!assignable(Real, Long));
        assert!(assignable(String, Dynamic));
        assert!(!assignable(String, Long));
    }
}
