//! Hunting results in the JSON of MDE's advanced-hunting API: the `Schema` list with .NET type
//! names, and `Results` rows keyed by column name, values written as Kusto writes them —
//! datetimes as ISO 8601 UTC with 7 fractional digits, timespans as `[-][d.]hh:mm:ss[.fffffff]`,
//! dynamic columns (JSON text in storage) as the JSON value they hold.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int8Array, Int16Array,
    Int32Array, Int64Array, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{
    DataType, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use rampart_kql::ast::ScalarType;
use rampart_kql::plan::HuntResult;
use serde_json::{Map, Number, Value};

/// The .NET type name MDE's API reports for a KQL type.
pub fn type_name(ty: ScalarType) -> &'static str {
    match ty {
        ScalarType::Bool => "Boolean",
        ScalarType::Int => "Int32",
        ScalarType::Long => "Int64",
        ScalarType::Real => "Double",
        ScalarType::Decimal => "Decimal",
        ScalarType::String => "String",
        ScalarType::Datetime => "DateTime",
        ScalarType::Timespan => "TimeSpan",
        ScalarType::Guid => "Guid",
        ScalarType::Dynamic => "Object",
    }
}

/// A result's output columns: name and KQL type.
pub fn columns(result: &HuntResult) -> Vec<(String, ScalarType)> {
    result
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty))
        .collect()
}

/// `[{"Name", "Type"}]` for the columns.
pub fn schema_json(columns: &[(String, ScalarType)]) -> Value {
    Value::Array(
        columns
            .iter()
            .map(|(name, ty)| {
                let mut m = Map::new();
                m.insert("Name".into(), Value::String(name.clone()));
                m.insert("Type".into(), Value::String(type_name(*ty).into()));
                Value::Object(m)
            })
            .collect(),
    )
}

/// The rows of `batches` as JSON objects keyed by the names in `columns` (in order; the batches'
/// own field names are not used, so that duplicate-free Kusto names survive any renaming).
pub fn rows_json(columns: &[(String, ScalarType)], batches: &[RecordBatch]) -> Vec<Value> {
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in batches {
        let arrays: Vec<&ArrayRef> = batch.columns().iter().collect();
        for row in 0..batch.num_rows() {
            let mut m = Map::with_capacity(columns.len());
            for ((name, ty), array) in columns.iter().zip(&arrays) {
                m.insert(name.clone(), value(array.as_ref(), row, *ty));
            }
            out.push(Value::Object(m));
        }
    }
    out
}

/// One cell.
pub fn value(array: &dyn Array, row: usize, ty: ScalarType) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    macro_rules! int {
        ($t:ty) => {
            Value::Number(
                array
                    .as_any()
                    .downcast_ref::<$t>()
                    .map_or(0, |a| a.value(row))
                    .into(),
            )
        };
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(
            array
                .as_any()
                .downcast_ref::<BooleanArray>()
                .is_some_and(|a| a.value(row)),
        ),
        DataType::Int8 => int!(Int8Array),
        DataType::Int16 => int!(Int16Array),
        DataType::Int32 => int!(Int32Array),
        DataType::Int64 => match ty {
            // A timespan kept as nanoseconds.
            ScalarType::Timespan => Value::String(timespan(
                array
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .map_or(0, |a| a.value(row)),
            )),
            _ => int!(Int64Array),
        },
        DataType::UInt8 => int!(UInt8Array),
        DataType::UInt16 => int!(UInt16Array),
        DataType::UInt32 => int!(UInt32Array),
        DataType::UInt64 => int!(UInt64Array),
        DataType::Float32 => float(
            array
                .as_any()
                .downcast_ref::<Float32Array>()
                .map_or(0.0, |a| f64::from(a.value(row))),
        ),
        DataType::Float64 => float(
            array
                .as_any()
                .downcast_ref::<Float64Array>()
                .map_or(0.0, |a| a.value(row)),
        ),
        DataType::Timestamp(unit, _) => {
            let n = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(row)
                    .saturating_mul(1_000_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Microsecond => array
                    .as_primitive::<TimestampMicrosecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
            };
            Value::String(datetime(n))
        }
        DataType::Duration(unit) => {
            let n = match unit {
                TimeUnit::Second => array
                    .as_primitive::<DurationSecondType>()
                    .value(row)
                    .saturating_mul(1_000_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<DurationMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Microsecond => array
                    .as_primitive::<DurationMicrosecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Nanosecond => array.as_primitive::<DurationNanosecondType>().value(row),
            };
            Value::String(timespan(n))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = match array.data_type() {
                DataType::Utf8 => array.as_string::<i32>().value(row),
                DataType::LargeUtf8 => array.as_string::<i64>().value(row),
                _ => array.as_string_view().value(row),
            };
            match ty {
                // Dynamic values are JSON text; a value that is not JSON stays a string.
                ScalarType::Dynamic => {
                    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
                }
                _ => Value::String(text.to_owned()),
            }
        }
        // Anything else (lists, structs) in Arrow's own display form.
        _ => Value::String(
            datafusion::arrow::util::display::array_value_to_string(array, row).unwrap_or_default(),
        ),
    }
}

/// JSON has no NaN or infinities; Kusto writes them as these strings.
fn float(x: f64) -> Value {
    Number::from_f64(x).map_or_else(
        || {
            Value::String(
                if x.is_nan() {
                    "NaN"
                } else if x > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .into(),
            )
        },
        Value::Number,
    )
}

/// Nanoseconds since the epoch as `2024-01-02T03:04:05.1234567Z` (Kusto's 100 ns ticks).
pub fn datetime(ns: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)) else {
        return ns.to_string();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// Nanoseconds as .NET's TimeSpan text: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn timespan(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let ticks = ns.unsigned_abs() / 100;
    let frac = ticks % 10_000_000;
    let secs = ticks / 10_000_000;
    let (days, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::from(sign);
    if days > 0 {
        out.push_str(&format!("{days}."));
    }
    out.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    if frac > 0 {
        out.push_str(&format!(".{frac:07}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{StringArray, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn kusto_text_for_times_and_spans() {
        assert_eq!(datetime(0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(
            datetime(1_704_164_645_123_456_789),
            "2024-01-02T03:04:05.1234567Z"
        );
        assert_eq!(timespan(0), "00:00:00");
        assert_eq!(timespan(90 * 60 * 1_000_000_000), "01:30:00");
        assert_eq!(
            timespan(-(2 * 86_400 + 5) * 1_000_000_000 - 500),
            "-2.00:00:05.0000005"
        );
    }

    #[test]
    fn rows_carry_kusto_values_under_the_given_names() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "a",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampNanosecondArray::from(vec![Some(0), None]).with_timezone("UTC")),
                Arc::new(StringArray::from(vec![
                    Some(r#"{"x":[1,2]}"#),
                    Some("not json"),
                ])),
                Arc::new(Float64Array::from(vec![Some(f64::NAN), Some(1.5)])),
            ],
        )
        .expect("batch");
        let cols = vec![
            ("Timestamp".to_owned(), ScalarType::Datetime),
            ("Fields".to_owned(), ScalarType::Dynamic),
            ("Score".to_owned(), ScalarType::Real),
        ];
        let rows = rows_json(&cols, &[batch]);
        assert_eq!(
            rows,
            vec![
                serde_json::json!({"Timestamp": "1970-01-01T00:00:00.0000000Z", "Fields": {"x": [1, 2]}, "Score": "NaN"}),
                serde_json::json!({"Timestamp": null, "Fields": "not json", "Score": 1.5}),
            ]
        );
        assert_eq!(
            schema_json(&cols),
            serde_json::json!([
                {"Name": "Timestamp", "Type": "DateTime"},
                {"Name": "Fields", "Type": "Object"},
                {"Name": "Score", "Type": "Double"},
            ])
        );
    }
}
