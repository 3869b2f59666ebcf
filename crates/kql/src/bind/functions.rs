//! The function catalog (§6 scalar, §6.9 window, §7 aggregate, §8 legacy aliases): one
//! signature per canonical name, with what each argument accepts and how the result
//! type follows from the arguments.
//!
//! A table rather than code per function, so that adding a function is one line and
//! every function gets the same arity and type messages. Functions whose typing needs
//! the binder (`toscalar`, `column_ifexists`, `pack_all`, `case`'s pairing) are still
//! listed here for arity and naming, and the binder handles the rest.

use super::types;
use crate::ast::ScalarType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    Scalar,
    Aggregate,
    /// Needs serialized input (§6.9).
    Window,
}

/// What an argument position accepts. `dynamic` is accepted wherever a scalar is
/// expected (its value is checked at run time), except by [`Arg::Type`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    Any,
    Str,
    Num,
    Int,
    Bool,
    Datetime,
    Timespan,
    /// Only `dynamic` (arrays and bags).
    Dyn,
    /// Numbers, strings, datetimes, timespans (`min`, `max`, `arg_max`, `min_of`).
    Orderable,
    /// Numbers and timespans (`sum`).
    Summable,
    /// Numbers, timespans and datetimes (`avg`, `bin`, `percentile`).
    Temporal,
    /// `typeof(T)`.
    Type,
}

impl Arg {
    pub fn accepts(self, ty: ScalarType) -> bool {
        use ScalarType as T;
        if ty == T::Dynamic {
            return self != Arg::Type;
        }
        match self {
            Arg::Any => true,
            Arg::Str => ty == T::String,
            Arg::Num => ty.is_numeric(),
            Arg::Int => ty.is_integer(),
            Arg::Bool => ty == T::Bool,
            Arg::Datetime => ty == T::Datetime,
            Arg::Timespan => ty == T::Timespan,
            Arg::Dyn => false,
            Arg::Orderable => {
                ty.is_numeric() || matches!(ty, T::String | T::Datetime | T::Timespan)
            }
            Arg::Summable => ty.is_numeric() || ty == T::Timespan,
            Arg::Temporal => ty.is_numeric() || matches!(ty, T::Datetime | T::Timespan),
            Arg::Type => false,
        }
    }

    /// For "expects <this> as argument N".
    pub fn describe(self) -> &'static str {
        match self {
            Arg::Any => "a scalar",
            Arg::Str => "a string",
            Arg::Num => "a number",
            Arg::Int => "an integer",
            Arg::Bool => "a bool",
            Arg::Datetime => "a datetime",
            Arg::Timespan => "a timespan",
            Arg::Dyn => "a dynamic",
            Arg::Orderable => "a number, string, datetime or timespan",
            Arg::Summable => "a number or timespan",
            Arg::Temporal => "a number, datetime or timespan",
            Arg::Type => "a type such as typeof(long)",
        }
    }
}

/// How the result type follows from the argument types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Fixed(ScalarType),
    /// The type of argument N.
    Arg(usize),
    /// `sum`: int widens to long, others stay.
    Sum,
    /// `avg`: numbers average to real (decimal stays); datetime and timespan stay.
    Avg,
    /// One type shared by the arguments from `from` on, every `step`-th (plus the last
    /// one when `last`): `iff` (1, 1), `case` (1, 2, last), `coalesce` (0, 1).
    Unify {
        from: usize,
        step: usize,
        last: bool,
    },
    /// `bin`/`bin_at`: the type of the value, with the size checked against it.
    Bin,
    /// `extract`: the type given by `typeof(T)`, else string.
    Extract,
    /// `rand()` is real, `rand(N)` long.
    Rand,
}

/// How an aggregate's output column is named when the query does not name it (§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Not an aggregate, or named by §4.0.
    Plain,
    /// Always this name (`count_`, `countif_`).
    Fixed(&'static str),
    /// Prefix + the first argument's name (`sum_Bytes`, `set_User`).
    Prefix(&'static str),
    /// The argument's own name (`take_any`).
    OwnArg,
    /// `percentile_x_95`.
    Percentile,
    /// `arg_max`: the first column keeps the argument's name, else this (`max_`).
    ArgExtreme(&'static str),
    /// Legacy `argmax`: `max_x`, then `max_x_Col` for each returned column.
    LegacyArgExtreme(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub name: &'static str,
    pub kind: FunctionKind,
    pub params: &'static [Arg],
    /// Repeated after `params` (`strcat`: `[Any]`; `bag_pack`: `[Str, Any]`); only
    /// whole repetitions are accepted.
    pub repeat: &'static [Arg],
    pub min: usize,
    pub max: usize,
    pub ret: Ret,
    pub naming: Naming,
}

impl Signature {
    /// What argument `index` (0-based) accepts.
    pub fn arg(&self, index: usize) -> Arg {
        match self.params.get(index) {
            Some(arg) => *arg,
            None if self.repeat.is_empty() => Arg::Any,
            None => self.repeat[(index - self.params.len()) % self.repeat.len()],
        }
    }

    /// Whether `count` arguments fit (range, and whole repetitions of `repeat`).
    pub fn arity_ok(&self, count: usize) -> bool {
        if count < self.min || count > self.max {
            return false;
        }
        self.repeat.len() < 2
            || count <= self.params.len()
            || (count - self.params.len()).is_multiple_of(self.repeat.len())
    }

    /// "1 argument", "2 or 3 arguments", "1 to 64 arguments", "at least 2 arguments".
    pub fn arity_text(&self) -> String {
        let noun = |n: usize| if n == 1 { "argument" } else { "arguments" };
        if self.min == self.max {
            format!("{} {}", self.min, noun(self.min))
        } else if self.max == usize::MAX {
            format!("at least {} {}", self.min, noun(self.min))
        } else if self.max == self.min + 1 {
            format!("{} or {} arguments", self.min, self.max)
        } else {
            format!("{} to {} arguments", self.min, self.max)
        }
    }
}

use Arg::*;
use FunctionKind::{Aggregate as Agg, Scalar as Sc, Window as Win};
use ScalarType as T;

const fn s(name: &'static str, params: &'static [Arg], min: usize, ret: Ret) -> Signature {
    Signature {
        name,
        kind: Sc,
        params,
        repeat: &[],
        min,
        max: params.len(),
        ret,
        naming: Naming::Plain,
    }
}

const fn v(
    name: &'static str,
    params: &'static [Arg],
    repeat: &'static [Arg],
    min: usize,
    max: usize,
    ret: Ret,
) -> Signature {
    Signature {
        name,
        kind: Sc,
        params,
        repeat,
        min,
        max,
        ret,
        naming: Naming::Plain,
    }
}

const fn a(
    name: &'static str,
    params: &'static [Arg],
    min: usize,
    ret: Ret,
    naming: Naming,
) -> Signature {
    Signature {
        name,
        kind: Agg,
        params,
        repeat: &[],
        min,
        max: params.len(),
        ret,
        naming,
    }
}

const fn w(name: &'static str, params: &'static [Arg], min: usize, ret: Ret) -> Signature {
    Signature {
        name,
        kind: Win,
        params,
        repeat: &[],
        min,
        max: params.len(),
        ret,
        naming: Naming::Plain,
    }
}

const DT: Ret = Ret::Fixed(T::Datetime);
const TS: Ret = Ret::Fixed(T::Timespan);
const STR: Ret = Ret::Fixed(T::String);
const LONG: Ret = Ret::Fixed(T::Long);
const INT: Ret = Ret::Fixed(T::Int);
const REAL: Ret = Ret::Fixed(T::Real);
const BOOL: Ret = Ret::Fixed(T::Bool);
const DYN: Ret = Ret::Fixed(T::Dynamic);
const ARG0: Ret = Ret::Arg(0);
const MANY: usize = 64;

/// Every canonical function.
pub static FUNCTIONS: &[Signature] = &[
    // §6.1 date and time
    s("now", &[Timespan], 0, DT),
    s("ago", &[Timespan], 1, DT),
    s("datetime_add", &[Str, Int, Datetime], 3, DT),
    s("datetime_diff", &[Str, Datetime, Datetime], 3, LONG),
    s("datetime_part", &[Str, Datetime], 2, INT),
    s("startofday", &[Datetime, Int], 1, DT),
    s("startofweek", &[Datetime, Int], 1, DT),
    s("startofmonth", &[Datetime, Int], 1, DT),
    s("startofyear", &[Datetime, Int], 1, DT),
    s("endofday", &[Datetime, Int], 1, DT),
    s("endofweek", &[Datetime, Int], 1, DT),
    s("endofmonth", &[Datetime, Int], 1, DT),
    s("endofyear", &[Datetime, Int], 1, DT),
    s("bin", &[Temporal, Any], 2, Ret::Bin),
    s("bin_at", &[Temporal, Any, Any], 3, Ret::Bin),
    s("dayofweek", &[Datetime], 1, TS),
    s("dayofmonth", &[Datetime], 1, INT),
    s("dayofyear", &[Datetime], 1, INT),
    s("getmonth", &[Datetime], 1, INT),
    s("monthofyear", &[Datetime], 1, INT),
    s("getyear", &[Datetime], 1, INT),
    s("hourofday", &[Datetime], 1, INT),
    s("week_of_year", &[Datetime], 1, INT),
    s("format_datetime", &[Datetime, Str], 2, STR),
    s("format_timespan", &[Timespan, Str], 2, STR),
    s("make_datetime", &[Int, Int, Int, Int, Int, Num], 3, DT),
    s("make_timespan", &[Int, Int, Int, Num], 2, TS),
    s("unixtime_seconds_todatetime", &[Num], 1, DT),
    s("unixtime_milliseconds_todatetime", &[Num], 1, DT),
    s("unixtime_microseconds_todatetime", &[Num], 1, DT),
    s("unixtime_nanoseconds_todatetime", &[Num], 1, DT),
    // §6.2 conversion and types
    s("tostring", &[Any], 1, STR),
    s("toint", &[Any], 1, INT),
    s("tolong", &[Any], 1, LONG),
    s("toreal", &[Any], 1, REAL),
    s("todecimal", &[Any], 1, Ret::Fixed(T::Decimal)),
    s("tobool", &[Any], 1, BOOL),
    s("toguid", &[Any], 1, Ret::Fixed(T::Guid)),
    s("todatetime", &[Any], 1, DT),
    s("totimespan", &[Any], 1, TS),
    s("parse_json", &[Any], 1, DYN),
    s("gettype", &[Any], 1, STR),
    s("column_ifexists", &[Str, Any], 2, Ret::Arg(1)),
    s("toscalar", &[Any], 1, ARG0),
    // §6.3 strings
    s("strlen", &[Str], 1, LONG),
    s("tolower", &[Str], 1, STR),
    s("toupper", &[Str], 1, STR),
    s("substring", &[Any, Int, Int], 2, STR),
    v("strcat", &[], &[Any], 1, MANY, STR),
    v("strcat_delim", &[Str], &[Any], 3, MANY + 1, STR),
    s("strcat_array", &[Dyn, Str], 2, STR),
    s("split", &[Str, Str, Int], 2, DYN),
    s("replace_string", &[Str, Str, Str], 3, STR),
    s("replace_regex", &[Str, Str, Str], 3, STR),
    s("translate", &[Str, Str, Str], 3, STR),
    s("trim", &[Str, Str], 2, STR),
    s("trim_start", &[Str, Str], 2, STR),
    s("trim_end", &[Str, Str], 2, STR),
    s("indexof", &[Any, Any, Int, Int, Int], 2, LONG),
    s("countof", &[Str, Str, Str], 2, LONG),
    s("reverse", &[Any], 1, STR),
    s("strrep", &[Any, Int, Str], 2, STR),
    s("strcmp", &[Str, Str], 2, INT),
    s("extract", &[Str, Int, Any, Type], 3, Ret::Extract),
    s("extract_all", &[Str, Any, Any], 2, DYN),
    s("url_encode", &[Str], 1, STR),
    s("url_encode_component", &[Str], 1, STR),
    s("url_decode", &[Str], 1, STR),
    s("base64_encode_tostring", &[Str], 1, STR),
    s("base64_decode_tostring", &[Str], 1, STR),
    s("base64_decode_toarray", &[Str], 1, DYN),
    s("hash_sha256", &[Any], 1, STR),
    s("hash_sha1", &[Any], 1, STR),
    s("hash_md5", &[Any], 1, STR),
    s("hash", &[Any, Int], 1, LONG),
    // §6.4 URL, path, command line
    s("parse_url", &[Str], 1, DYN),
    s("parse_urlquery", &[Str], 1, DYN),
    s("parse_path", &[Str], 1, DYN),
    s("parse_command_line", &[Str, Str], 2, DYN),
    // §6.5 conditionals and nulls
    s(
        "iff",
        &[Bool, Any, Any],
        3,
        Ret::Unify {
            from: 1,
            step: 1,
            last: false,
        },
    ),
    v(
        "case",
        &[],
        &[Any],
        3,
        2 * MANY + 1,
        Ret::Unify {
            from: 1,
            step: 2,
            last: true,
        },
    ),
    v(
        "coalesce",
        &[],
        &[Any],
        2,
        MANY,
        Ret::Unify {
            from: 0,
            step: 1,
            last: false,
        },
    ),
    s("isnull", &[Any], 1, BOOL),
    s("isnotnull", &[Any], 1, BOOL),
    s("isempty", &[Any], 1, BOOL),
    s("isnotempty", &[Any], 1, BOOL),
    s("isnan", &[Num], 1, BOOL),
    s("isinf", &[Num], 1, BOOL),
    s("isfinite", &[Num], 1, BOOL),
    s("not", &[Bool], 1, BOOL),
    // §6.6 dynamic, arrays, bags, sets
    s("array_length", &[Dyn], 1, LONG),
    v("array_concat", &[], &[Dyn], 1, MANY, DYN),
    s("array_reverse", &[Dyn], 1, DYN),
    s("array_sort_asc", &[Dyn, Bool], 1, DYN),
    s("array_sort_desc", &[Dyn, Bool], 1, DYN),
    s("array_slice", &[Dyn, Int, Int], 3, DYN),
    s("array_index_of", &[Dyn, Any, Int, Int, Int], 2, LONG),
    s("array_sum", &[Dyn], 1, REAL),
    v("set_union", &[], &[Dyn], 2, MANY, DYN),
    v("set_intersect", &[], &[Dyn], 2, MANY, DYN),
    v("set_difference", &[], &[Dyn], 2, MANY, DYN),
    s("set_has_element", &[Dyn, Any], 2, BOOL),
    v("pack_array", &[], &[Any], 0, MANY, DYN),
    v("bag_pack", &[], &[Str, Any], 0, 2 * MANY, DYN),
    s("pack_all", &[Bool], 0, DYN),
    s("bag_keys", &[Dyn], 1, DYN),
    s("bag_has_key", &[Dyn, Str], 2, BOOL),
    s("bag_remove_keys", &[Dyn, Dyn], 2, DYN),
    v("bag_merge", &[], &[Dyn], 2, MANY, DYN),
    v("zip", &[], &[Dyn], 2, 16, DYN),
    s("range", &[Temporal, Temporal, Temporal], 2, DYN),
    // §6.7 IP addresses
    s("parse_ipv4", &[Str], 1, LONG),
    s("parse_ipv4_mask", &[Str, Int], 2, LONG),
    s("ipv4_is_private", &[Str], 1, BOOL),
    s("ipv4_is_in_range", &[Str, Str], 2, BOOL),
    v("ipv4_is_in_any_range", &[Str], &[Any], 2, MANY, BOOL),
    s("ipv4_compare", &[Str, Str, Int], 2, INT),
    s("ipv4_is_match", &[Str, Str, Int], 2, BOOL),
    s("ipv6_compare", &[Str, Str, Int], 2, INT),
    s("ipv6_is_match", &[Str, Str, Int], 2, BOOL),
    s("has_ipv4", &[Str, Str], 2, BOOL),
    v("has_any_ipv4", &[Str], &[Any], 2, MANY, BOOL),
    s("has_ipv4_prefix", &[Str, Str], 2, BOOL),
    v("has_any_ipv4_prefix", &[Str], &[Any], 2, MANY, BOOL),
    s("format_ipv4", &[Any, Int], 1, STR),
    // §6.8 math
    s("abs", &[Summable], 1, ARG0),
    s("round", &[Num, Int], 1, ARG0),
    s("ceiling", &[Num], 1, ARG0),
    s("sign", &[Num], 1, ARG0),
    s("log", &[Num], 1, REAL),
    s("log2", &[Num], 1, REAL),
    s("log10", &[Num], 1, REAL),
    s("exp", &[Num], 1, REAL),
    s("exp2", &[Num], 1, REAL),
    s("exp10", &[Num], 1, REAL),
    s("sqrt", &[Num], 1, REAL),
    s("pow", &[Num, Num], 2, REAL),
    s("pi", &[], 0, REAL),
    v(
        "min_of",
        &[],
        &[Orderable],
        2,
        MANY,
        Ret::Unify {
            from: 0,
            step: 1,
            last: false,
        },
    ),
    v(
        "max_of",
        &[],
        &[Orderable],
        2,
        MANY,
        Ret::Unify {
            from: 0,
            step: 1,
            last: false,
        },
    ),
    s("rand", &[Int], 0, Ret::Rand),
    s("tohex", &[Int, Int], 1, STR),
    // §6.9 window functions
    w("row_number", &[Int, Bool], 0, LONG),
    w("prev", &[Any, Int, Any], 1, ARG0),
    w("next", &[Any, Int, Any], 1, ARG0),
    w("row_cumsum", &[Summable, Bool], 1, Ret::Sum),
    // §7 aggregates
    a("count", &[], 0, LONG, Naming::Fixed("count_")),
    a("countif", &[Bool], 1, LONG, Naming::Fixed("countif_")),
    a("dcount", &[Any, Int], 1, LONG, Naming::Prefix("dcount_")),
    a(
        "dcountif",
        &[Any, Bool, Int],
        2,
        LONG,
        Naming::Prefix("dcountif_"),
    ),
    a(
        "count_distinct",
        &[Any],
        1,
        LONG,
        Naming::Prefix("count_distinct_"),
    ),
    a(
        "count_distinctif",
        &[Any, Bool],
        2,
        LONG,
        Naming::Prefix("count_distinctif_"),
    ),
    a("sum", &[Summable], 1, Ret::Sum, Naming::Prefix("sum_")),
    a(
        "sumif",
        &[Summable, Bool],
        2,
        Ret::Sum,
        Naming::Prefix("sumif_"),
    ),
    a("avg", &[Temporal], 1, Ret::Avg, Naming::Prefix("avg_")),
    a(
        "avgif",
        &[Temporal, Bool],
        2,
        Ret::Avg,
        Naming::Prefix("avgif_"),
    ),
    a("min", &[Orderable], 1, ARG0, Naming::Prefix("min_")),
    a("max", &[Orderable], 1, ARG0, Naming::Prefix("max_")),
    a(
        "minif",
        &[Orderable, Bool],
        2,
        ARG0,
        Naming::Prefix("minif_"),
    ),
    a(
        "maxif",
        &[Orderable, Bool],
        2,
        ARG0,
        Naming::Prefix("maxif_"),
    ),
    Signature {
        name: "arg_max",
        kind: Agg,
        params: &[Orderable],
        repeat: &[Any],
        min: 2,
        max: MANY,
        ret: ARG0,
        naming: Naming::ArgExtreme("max_"),
    },
    Signature {
        name: "arg_min",
        kind: Agg,
        params: &[Orderable],
        repeat: &[Any],
        min: 2,
        max: MANY,
        ret: ARG0,
        naming: Naming::ArgExtreme("min_"),
    },
    Signature {
        name: "take_any",
        kind: Agg,
        params: &[],
        repeat: &[Any],
        min: 1,
        max: MANY,
        ret: ARG0,
        naming: Naming::OwnArg,
    },
    a("take_anyif", &[Any, Bool], 2, ARG0, Naming::OwnArg),
    a("make_set", &[Any, Int], 1, DYN, Naming::Prefix("set_")),
    a(
        "make_set_if",
        &[Any, Bool, Int],
        2,
        DYN,
        Naming::Prefix("set_"),
    ),
    a("make_list", &[Any, Int], 1, DYN, Naming::Prefix("list_")),
    a(
        "make_list_if",
        &[Any, Bool, Int],
        2,
        DYN,
        Naming::Prefix("list_"),
    ),
    a(
        "make_list_with_nulls",
        &[Any],
        1,
        DYN,
        Naming::Prefix("list_"),
    ),
    a("make_bag", &[Dyn, Int], 1, DYN, Naming::Prefix("bag_")),
    a(
        "make_bag_if",
        &[Dyn, Bool, Int],
        2,
        DYN,
        Naming::Prefix("bag_"),
    ),
    a("percentile", &[Temporal, Num], 2, ARG0, Naming::Percentile),
    Signature {
        name: "percentiles",
        kind: Agg,
        params: &[Temporal],
        repeat: &[Num],
        min: 2,
        max: MANY,
        ret: ARG0,
        naming: Naming::Percentile,
    },
    Signature {
        name: "percentiles_array",
        kind: Agg,
        params: &[Temporal],
        repeat: &[Any],
        min: 2,
        max: MANY,
        ret: DYN,
        naming: Naming::Prefix("percentiles_"),
    },
    a("stdev", &[Num], 1, REAL, Naming::Prefix("stdev_")),
    a("stdevp", &[Num], 1, REAL, Naming::Prefix("stdevp_")),
    a("stdevif", &[Num, Bool], 2, REAL, Naming::Prefix("stdevif_")),
    a("variance", &[Num], 1, REAL, Naming::Prefix("variance_")),
    a("variancep", &[Num], 1, REAL, Naming::Prefix("variancep_")),
    a(
        "varianceif",
        &[Num, Bool],
        2,
        REAL,
        Naming::Prefix("varianceif_"),
    ),
];

/// A legacy or alternative spelling (§8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alias {
    pub name: &'static str,
    pub target: &'static str,
    /// Argument `i` of the canonical call is argument `reorder[i]` of the alias
    /// (`replace(re, repl, s)` -> `replace_regex(s, re, repl)`); empty = same order.
    pub reorder: &'static [usize],
    /// Naming that differs from the canonical function's.
    pub naming: Option<Naming>,
    /// A size cap the legacy spelling implies when none is given (`makeset` -> 128).
    pub default_max: Option<i64>,
}

const fn alias(name: &'static str, target: &'static str) -> Alias {
    Alias {
        name,
        target,
        reorder: &[],
        naming: None,
        default_max: None,
    }
}

pub static ALIASES: &[Alias] = &[
    Alias {
        default_max: Some(128),
        ..alias("makeset", "make_set")
    },
    Alias {
        default_max: Some(128),
        ..alias("makelist", "make_list")
    },
    Alias {
        naming: Some(Naming::Prefix("any_")),
        ..alias("any", "take_any")
    },
    Alias {
        naming: Some(Naming::Prefix("anyif_")),
        ..alias("anyif", "take_anyif")
    },
    Alias {
        naming: Some(Naming::LegacyArgExtreme("max_")),
        ..alias("argmax", "arg_max")
    },
    Alias {
        naming: Some(Naming::LegacyArgExtreme("min_")),
        ..alias("argmin", "arg_min")
    },
    alias("cnt", "count"),
    alias("make_dictionary", "make_bag"),
    alias("todynamic", "parse_json"),
    alias("parsejson", "parse_json"),
    alias("toobject", "parse_json"),
    alias("parseurl", "parse_url"),
    alias("parseurlquery", "parse_urlquery"),
    alias("base64_decodestring", "base64_decode_tostring"),
    alias("base64_encodestring", "base64_encode_tostring"),
    Alias {
        reorder: &[2, 0, 1],
        ..alias("replace", "replace_regex")
    },
    alias("extractall", "extract_all"),
    alias("datepart", "datetime_part"),
    alias("weekofyear", "week_of_year"),
    alias("notnull", "isnotnull"),
    alias("notempty", "isnotempty"),
    alias("columnifexists", "column_ifexists"),
    alias("arraylength", "array_length"),
    alias("pack", "bag_pack"),
    alias("pack_dictionary", "bag_pack"),
    alias("totime", "totimespan"),
    alias("iif", "iff"),
    alias("todouble", "toreal"),
    alias("toboolean", "tobool"),
    alias("floor", "bin"),
];

/// A function found by the name it was called with.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    pub signature: &'static Signature,
    pub alias: Option<&'static Alias>,
}

impl Resolved {
    pub fn naming(&self) -> Naming {
        self.alias
            .and_then(|a| a.naming)
            .unwrap_or(self.signature.naming)
    }
}

fn canonical(name: &str) -> Option<&'static Signature> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Looks a function up by the name used in the query. `count(p)` with an argument is
/// the legacy spelling of `countif(p)`.
pub fn lookup(name: &str, arg_count: usize) -> Option<Resolved> {
    if name == "count" && arg_count == 1 {
        return canonical("countif").map(|signature| Resolved {
            signature,
            alias: None,
        });
    }
    if let Some(signature) = canonical(name) {
        return Some(Resolved {
            signature,
            alias: None,
        });
    }
    let alias = ALIASES.iter().find(|a| a.name == name)?;
    canonical(alias.target).map(|signature| Resolved {
        signature,
        alias: Some(alias),
    })
}

/// Every callable name, for "did you mean".
pub fn all_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS
        .iter()
        .map(|f| f.name)
        .chain(ALIASES.iter().map(|a| a.name))
}

/// Why the result type could not be worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetError {
    /// Arguments that must share a type do not (the two types found).
    Mismatch(ScalarType, ScalarType),
    /// `bin` size that does not fit the value.
    BinSize(ScalarType, ScalarType),
}

/// The result type for these argument types (already checked one by one); `type_arg`
/// is the `typeof(T)` argument, if any.
pub fn result_type(
    signature: &Signature,
    args: &[ScalarType],
    type_arg: Option<ScalarType>,
) -> Result<ScalarType, RetError> {
    let arg = |i: usize| args.get(i).copied().unwrap_or(T::Dynamic);
    match signature.ret {
        Ret::Fixed(ty) => Ok(ty),
        Ret::Arg(i) => Ok(arg(i)),
        Ret::Sum => Ok(if arg(0) == T::Int { T::Long } else { arg(0) }),
        Ret::Avg => Ok(match arg(0) {
            T::Int | T::Long | T::Real => T::Real,
            other => other,
        }),
        Ret::Rand => Ok(if args.is_empty() { T::Real } else { T::Long }),
        Ret::Extract => Ok(type_arg.unwrap_or(T::String)),
        Ret::Bin => {
            let (value, size) = (arg(0), arg(1));
            let fits = match value {
                T::Datetime | T::Timespan => matches!(size, T::Timespan | T::Dynamic),
                T::Dynamic => true,
                _ => size.is_numeric() || size == T::Dynamic,
            };
            if !fits {
                return Err(RetError::BinSize(value, size));
            }
            if let Some(fixed) = args.get(2)
                && !types::assignable(*fixed, value)
            {
                return Err(RetError::Mismatch(value, *fixed));
            }
            Ok(value)
        }
        Ret::Unify { from, step, last } => {
            let mut positions: Vec<usize> = (from..args.len()).step_by(step.max(1)).collect();
            if last
                && let Some(end) = args.len().checked_sub(1)
                && !positions.contains(&end)
            {
                positions.push(end);
            }
            let mut result: Option<ScalarType> = None;
            for position in positions {
                let ty = arg(position);
                result = Some(match result {
                    None => ty,
                    Some(so_far) => {
                        types::unify(so_far, ty).ok_or(RetError::Mismatch(so_far, ty))?
                    }
                });
            }
            Ok(result.unwrap_or(T::Dynamic))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = all_names().collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        for alias in ALIASES {
            assert!(canonical(alias.target).is_some(), "{}", alias.name);
        }
    }

    #[test]
    fn legacy_count_with_predicate_is_countif() {
        assert_eq!(
            lookup("count", 1).map(|r| r.signature.name),
            Some("countif")
        );
        assert_eq!(lookup("count", 0).map(|r| r.signature.name), Some("count"));
    }

    #[test]
    fn arity_texts() {
        let strcat = lookup("strcat", 0).map(|r| r.signature.arity_text());
        assert_eq!(strcat.as_deref(), Some("1 to 64 arguments"));
        let strlen = lookup("strlen", 0).map(|r| r.signature.arity_text());
        assert_eq!(strlen.as_deref(), Some("1 argument"));
    }

    #[test]
    fn pairs_must_be_whole() {
        let bag_pack = lookup("bag_pack", 0).map(|r| r.signature);
        assert_eq!(bag_pack.map(|s| s.arity_ok(2)), Some(true));
        assert_eq!(bag_pack.map(|s| s.arity_ok(3)), Some(false));
    }
}
