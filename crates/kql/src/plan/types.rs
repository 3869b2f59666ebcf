//! KQL types on Arrow, and literals as DataFusion scalars.
//!
//! | KQL | Arrow | note |
//! |---|---|---|
//! | bool | Boolean | |
//! | int | Int32 | |
//! | long | Int64 | |
//! | real | Float64 | |
//! | decimal | Float64 | computed as a double; no 128-bit decimal arithmetic |
//! | string | Utf8 | never null: a missing string is `""` |
//! | datetime | Timestamp(Nanosecond, "UTC") | what the event store holds |
//! | timespan | Int64 | nanoseconds, so arithmetic, `min`/`max`/`sum`/`avg` and comparisons are plain integer operations |
//! | guid | Utf8 | lowercase canonical text |
//! | dynamic | Utf8 | compact JSON text; SQL null is the dynamic null |

use super::json::Json;
use super::time;
use crate::ast::{DynamicValue, Literal, ScalarType};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::ScalarValue;
use std::sync::Arc;

/// Timezone of every datetime column.
pub const UTC: &str = "UTC";

/// Field metadata key naming a column's KQL type (the event store sets it).
pub const KQL_TYPE: &str = "kql_type";

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(UTC.into()))
}

/// The Arrow type a KQL type is carried as.
pub fn arrow_type(ty: ScalarType) -> DataType {
    match ty {
        ScalarType::Bool => DataType::Boolean,
        ScalarType::Int => DataType::Int32,
        ScalarType::Long | ScalarType::Timespan => DataType::Int64,
        ScalarType::Real | ScalarType::Decimal => DataType::Float64,
        ScalarType::String | ScalarType::Guid | ScalarType::Dynamic => DataType::Utf8,
        ScalarType::Datetime => timestamp_type(),
    }
}

/// The KQL type of a stored column: its `kql_type` metadata, else what its Arrow type
/// most plausibly is (`None` for types KQL has no use for).
pub fn kql_type_of(field: &Field) -> Option<ScalarType> {
    if let Some(name) = field.metadata().get(KQL_TYPE)
        && let Some(ty) = ScalarType::from_name(name)
    {
        return Some(ty);
    }
    Some(match field.data_type() {
        DataType::Boolean => ScalarType::Bool,
        DataType::Int8 | DataType::Int16 | DataType::Int32 => ScalarType::Int,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => ScalarType::Int,
        DataType::Int64 | DataType::UInt64 => ScalarType::Long,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ScalarType::Real,
        DataType::Decimal128(..) | DataType::Decimal256(..) => ScalarType::Decimal,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ScalarType::String,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => ScalarType::Datetime,
        DataType::Duration(_) => ScalarType::Timespan,
        DataType::List(_) | DataType::LargeList(_) | DataType::Struct(_) | DataType::Map(..) => {
            ScalarType::Dynamic
        }
        _ => return None,
    })
}

pub fn timestamp_scalar(nanos: Option<i64>) -> ScalarValue {
    ScalarValue::TimestampNanosecond(nanos, Some(Arc::from(UTC)))
}

/// A null of `ty`; strings have none, so theirs is `""`.
pub fn null_of(ty: ScalarType) -> ScalarValue {
    match ty {
        ScalarType::Bool => ScalarValue::Boolean(None),
        ScalarType::Int => ScalarValue::Int32(None),
        ScalarType::Long | ScalarType::Timespan => ScalarValue::Int64(None),
        ScalarType::Real | ScalarType::Decimal => ScalarValue::Float64(None),
        ScalarType::String => ScalarValue::Utf8(Some(String::new())),
        ScalarType::Guid | ScalarType::Dynamic => ScalarValue::Utf8(None),
        ScalarType::Datetime => timestamp_scalar(None),
    }
}

/// Lowercase canonical text of a GUID, or `None` if `text` is not one.
pub fn normalize_guid(text: &str) -> Option<String> {
    let hex: String = text
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Ticks (100 ns) to nanoseconds.
pub fn ticks_to_nanos(ticks: i64) -> Option<i64> {
    ticks.checked_mul(time::NANOS_PER_TICK)
}

/// A literal as a scalar of `ty`'s Arrow type. `Err` names what is wrong with it.
pub fn literal(literal: &Literal, ty: ScalarType) -> Result<ScalarValue, String> {
    Ok(match literal {
        Literal::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Literal::Int(i) => ScalarValue::Int32(Some(*i)),
        Literal::Long(l) => ScalarValue::Int64(Some(*l)),
        Literal::Real(r) => ScalarValue::Float64(Some(*r)),
        Literal::Decimal(text) => ScalarValue::Float64(Some(
            text.trim()
                .parse::<f64>()
                .map_err(|_| format!("invalid decimal literal '{text}'"))?,
        )),
        Literal::String(s) => ScalarValue::Utf8(Some(s.clone())),
        Literal::Datetime(text) => timestamp_scalar(Some(datetime_literal(text)?)),
        Literal::Timespan(ticks) => ScalarValue::Int64(Some(
            ticks_to_nanos(*ticks).ok_or_else(|| "timespan literal out of range".to_string())?,
        )),
        Literal::Guid(text) => ScalarValue::Utf8(Some(
            normalize_guid(text).ok_or_else(|| format!("invalid guid literal '{text}'"))?,
        )),
        Literal::Dynamic(value) => ScalarValue::Utf8(dynamic_json(value)?.to_column()),
        // A typed null is a null of the expression's type (`""` for strings).
        Literal::Null(_) => null_of(ty),
        Literal::Type(_) => return Err("a type such as typeof(long) is not a value".to_string()),
    })
}

/// The text of `datetime(...)`: a date, or `null`, `min`/`max` style words are refused.
pub fn datetime_literal(text: &str) -> Result<i64, String> {
    time::parse_datetime(text).ok_or_else(|| {
        format!(
            "invalid datetime literal '{text}' (or outside 1677-09-21 .. 2262-04-11, the nanosecond range)"
        )
    })
}

/// A `dynamic(...)` literal as a JSON value; datetimes, timespans and guids become the
/// strings `tostring` would give them.
pub fn dynamic_json(value: &DynamicValue) -> Result<Json, String> {
    Ok(match value {
        DynamicValue::Null => Json::Null,
        DynamicValue::Bool(b) => Json::Bool(*b),
        DynamicValue::Long(l) => Json::Int(*l),
        DynamicValue::Real(r) => Json::Real(*r),
        DynamicValue::String(s) => Json::Str(s.clone()),
        DynamicValue::Datetime(text) => Json::Str(time::format_iso(datetime_literal(text)?)),
        DynamicValue::Timespan(ticks) => Json::Str(time::format_timespan(
            ticks_to_nanos(*ticks).ok_or_else(|| "timespan out of range".to_string())?,
        )),
        DynamicValue::Guid(text) => {
            Json::Str(normalize_guid(text).ok_or_else(|| format!("invalid guid literal '{text}'"))?)
        }
        DynamicValue::Array(items) => {
            Json::Array(items.iter().map(dynamic_json).collect::<Result<_, _>>()?)
        }
        DynamicValue::Object(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), dynamic_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// A scalar of KQL type `ty` as a dynamic value.
pub fn scalar_json(value: &ScalarValue, ty: ScalarType) -> Json {
    if value.is_null() {
        return Json::Null;
    }
    match value {
        ScalarValue::Boolean(Some(b)) => Json::Bool(*b),
        ScalarValue::Int8(Some(v)) => Json::Int(i64::from(*v)),
        ScalarValue::Int16(Some(v)) => Json::Int(i64::from(*v)),
        ScalarValue::Int32(Some(v)) => Json::Int(i64::from(*v)),
        ScalarValue::Int64(Some(v)) if ty == ScalarType::Timespan => {
            Json::Str(time::format_timespan(*v))
        }
        ScalarValue::Int64(Some(v)) => Json::Int(*v),
        ScalarValue::UInt64(Some(v)) => match i64::try_from(*v) {
            Ok(i) => Json::Int(i),
            Err(_) => Json::Real(*v as f64),
        },
        ScalarValue::Float64(Some(v)) => Json::Real(*v),
        ScalarValue::Float32(Some(v)) => Json::Real(f64::from(*v)),
        ScalarValue::TimestampNanosecond(Some(v), _) => Json::Str(time::format_iso(*v)),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => {
            if ty == ScalarType::Dynamic {
                Json::parse_lenient(s)
            } else {
                Json::Str(s.clone())
            }
        }
        other => Json::Str(other.to_string()),
    }
}

/// `tostring` of a scalar of KQL type `ty`.
pub fn scalar_string(value: &ScalarValue, ty: ScalarType) -> String {
    if value.is_null() {
        return String::new();
    }
    match value {
        ScalarValue::Boolean(Some(b)) => b.to_string(),
        ScalarValue::Int64(Some(v)) if ty == ScalarType::Timespan => time::format_timespan(*v),
        ScalarValue::Float64(Some(v)) => real_string(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => time::format_iso(*v),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => {
            if ty == ScalarType::Dynamic {
                Json::parse_lenient(s).string_form()
            } else {
                s.clone()
            }
        }
        other => other.to_string(),
    }
}

/// `tostring(real)`: shortest round-trip text, integral values without `.0`.
pub fn real_string(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        value.to_string()
    }
}
