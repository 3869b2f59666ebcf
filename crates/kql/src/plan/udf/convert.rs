//! Conversions (§6.2): `tostring`, `tolong`, `toreal`, `tobool`, `toguid`, `todatetime`,
//! `totimespan` from each source type, with null (or `""`) for what does not convert.

use super::dynamic::{json_bool, json_long, json_real, parse_long_text, parse_real_text};
use super::{
    arg, bool_result, call, cells, long_result, real_result, string_result, strs, timestamp_result,
};
use crate::ast::ScalarType;
use crate::plan::json::Json;
use crate::plan::time;
use crate::plan::types::{arrow_type, normalize_guid, scalar_string};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::Expr;
use std::sync::Arc;

use ScalarType as T;

/// `tostring(x)` for a value of KQL type `from` (null gives `""`).
pub(crate) fn to_string(value: Expr, from: ScalarType) -> Expr {
    if from == T::String {
        return value;
    }
    call(
        format!("kql_tostring_{from}"),
        DataType::Utf8,
        vec![value],
        move |args, rows| {
            let c = cells(arg(args, 0, "tostring")?)?;
            let mut out = Vec::with_capacity(rows);
            for r in 0..rows {
                out.push(Some(scalar_string(&c.scalar(r)?, from)));
            }
            Ok(Arc::new(datafusion::arrow::array::StringArray::from(out)))
        },
    )
}

/// Parses text as `to` (`tolong("42")`, `todatetime("2024-01-01")`, ...).
pub(crate) fn parse_text(value: Expr, to: ScalarType) -> Expr {
    call(
        format!("kql_parse_text_{to}"),
        arrow_type(to),
        vec![value],
        move |args, rows| {
            let s = strs(arg(args, 0, "conversion")?)?;
            Ok(match to {
                T::Bool => bool_result(rows, |r| {
                    json_bool(&Json::Str(s.get(r)?.trim().to_string()))
                }),
                T::Int => super::int_result(rows, |r| {
                    parse_long_text(s.get(r)?).and_then(|v| i32::try_from(v).ok())
                }),
                T::Long => long_result(rows, |r| parse_long_text(s.get(r)?)),
                T::Real | T::Decimal => real_result(rows, |r| parse_real_text(s.get(r)?)),
                T::Datetime => timestamp_result(rows, |r| time::parse_datetime(s.get(r)?)),
                T::Timespan => long_result(rows, |r| time::parse_timespan(s.get(r)?)),
                T::Guid => string_result(rows, |r| normalize_guid(s.get(r)?)),
                T::String => string_result(rows, |r| Some(s.text(r).to_string())),
                T::Dynamic => string_result(rows, |r| Json::parse_lenient(s.get(r)?).to_column()),
            })
        },
    )
}

/// Number conversions of a dynamic value's number, bool or numeric text.
pub(crate) fn dynamic_number(value: Expr, to: ScalarType) -> Expr {
    call(
        format!("kql_dyn_number_{to}"),
        arrow_type(to),
        vec![value],
        move |args, rows| {
            let s = strs(arg(args, 0, "conversion")?)?;
            let json = |r: usize| s.get(r).map(Json::parse_lenient);
            Ok(match to {
                T::Int => super::int_result(rows, |r| {
                    json_long(&json(r)?).and_then(|v| i32::try_from(v).ok())
                }),
                T::Long => long_result(rows, |r| json_long(&json(r)?)),
                T::Bool => bool_result(rows, |r| json_bool(&json(r)?)),
                _ => real_result(rows, |r| json_real(&json(r)?)),
            })
        },
    )
}

/// `tolong(datetime)`: the datetime's ticks (100 ns) since 0001-01-01, as Kusto counts.
pub(crate) fn ticks_since_0001(value: Expr) -> Expr {
    call(
        "kql_datetime_ticks",
        DataType::Int64,
        vec![value],
        |args, rows| {
            let v = super::longs(arg(args, 0, "tolong")?)?;
            Ok(long_result(rows, |r| {
                let nanos = v.get(r)?;
                (nanos / time::NANOS_PER_TICK).checked_add(
                    time::DAYS_0001_TO_EPOCH * (time::NANOS_PER_DAY / time::NANOS_PER_TICK),
                )
            }))
        },
    )
}
