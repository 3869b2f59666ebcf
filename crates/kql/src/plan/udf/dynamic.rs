//! `dynamic` values: paths, conversions to and from the other types, arrays, bags, sets.
//!
//! Dynamic values travel as compact JSON text (see [`crate::plan::json`]); SQL null is the
//! dynamic null. Every kernel here parses its inputs, works on [`Json`] values and writes
//! JSON text back.

use super::{
    Cells, arg, bool_result, call, cells, long_result, longs, real_result, string_result, strs,
};
use crate::ast::{BinaryOp, ScalarType};
use crate::plan::json::Json;
use crate::plan::time;
use crate::plan::types::{normalize_guid, scalar_json};
use datafusion::arrow::array::{ArrayRef, Int64Builder, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::Result as DFResult;
use datafusion::logical_expr::Expr;
use std::cmp::Ordering;
use std::sync::Arc;

use ScalarType as T;

fn parse_opt(text: Option<&str>) -> Json {
    match text {
        Some(t) => Json::parse_lenient(t),
        None => Json::Null,
    }
}

/// A kernel over one dynamic argument producing dynamic text.
fn map_dyn(name: &str, value: Expr, f: impl Fn(Json) -> Json + Send + Sync + 'static) -> Expr {
    call(
        format!("kql_{name}"),
        DataType::Utf8,
        vec![value],
        move |args, rows| {
            let v = strs(arg(args, 0, "dynamic function")?)?;
            Ok(string_result(rows, |r| f(parse_opt(v.get(r))).to_column()))
        },
    )
}

/// The argument of a call of the UDF `name`, if `e` is one (for fusing calls).
fn argument_of<'e>(e: &'e Expr, name: &str) -> Option<&'e [Expr]> {
    match e {
        Expr::ScalarFunction(f) if f.func.name() == name => Some(&f.args),
        _ => None,
    }
}

/// `target.a["b"][0]`: integer steps index arrays, string steps read bag keys (or index an
/// array when they are numeric text). Missing steps give null.
pub(crate) fn path(target: Expr, steps: Vec<Expr>) -> Expr {
    // `parse_json(s).a`: the path parses its target as leniently as `parse_json` does,
    // so the text is parsed once instead of parsed, written and parsed again.
    let target = match argument_of(&target, PARSE_JSON) {
        Some([text]) => text.clone(),
        _ => target,
    };
    let mut args = vec![target];
    args.extend(steps);
    path_call(PATH, args, Json::to_column)
}

const PATH: &str = "kql_path";
const PARSE_JSON: &str = "kql_parse_json";

/// A path call whose value at the end of the path becomes a column by `finish` (`None`
/// when a step is missing).
fn path_call(name: &str, args: Vec<Expr>, finish: fn(&Json) -> Option<String>) -> Expr {
    let missing = finish(&Json::Null);
    call(name, DataType::Utf8, args, move |args, rows| {
        let target = strs(arg(args, 0, "path")?)?;
        let steps: Vec<Cells> = args[1..].iter().map(cells).collect::<DFResult<_>>()?;
        let keys: Vec<Option<super::Strs>> = args[1..]
            .iter()
            .zip(&steps)
            .map(|(a, c)| match c.array.data_type() {
                DataType::Int32 | DataType::Int64 => Ok(None),
                _ => strs(a).map(Some),
            })
            .collect::<DFResult<_>>()?;
        let indexes: Vec<Option<super::Longs>> = args[1..]
            .iter()
            .zip(&steps)
            .map(|(a, c)| match c.array.data_type() {
                DataType::Int32 | DataType::Int64 => longs(a).map(Some),
                _ => Ok(None),
            })
            .collect::<DFResult<_>>()?;
        let walk = |r: usize| -> Option<Json> {
            let mut current = Json::parse_lenient(target.get(r)?);
            for (key, index) in keys.iter().zip(&indexes) {
                let next = match (key, index) {
                    (_, Some(i)) => current.index(i.get(r)?).cloned(),
                    (Some(k), _) => {
                        let k = k.get(r)?;
                        match &current {
                            Json::Array(_) => k
                                .parse::<i64>()
                                .ok()
                                .and_then(|i| current.index(i))
                                .cloned(),
                            _ => current.get(k).cloned(),
                        }
                    }
                    (None, None) => None,
                };
                current = next?;
            }
            Some(current)
        };
        Ok(string_result(rows, |r| match walk(r) {
            Some(value) => finish(&value),
            None => missing.clone(),
        }))
    })
}

/// A value of KQL type `from` as dynamic text.
pub(crate) fn to_dynamic(value: Expr, from: ScalarType) -> Expr {
    if from == T::Dynamic {
        return value;
    }
    call(
        format!("kql_to_dynamic_{from}"),
        DataType::Utf8,
        vec![value],
        move |args, rows| {
            let c = cells(arg(args, 0, "to_dynamic")?)?;
            let mut out = Vec::with_capacity(rows);
            for r in 0..rows {
                out.push(scalar_json(&c.scalar(r)?, from).to_column());
            }
            Ok(Arc::new(datafusion::arrow::array::StringArray::from(out)))
        },
    )
}

/// The string form of a dynamic value: a string's text, `""` for null, JSON otherwise.
pub(crate) fn string_form(value: Expr) -> Expr {
    // `tostring(x.a)`: the path's end value is written as its string form directly
    // rather than as JSON text that is parsed again here.
    if let Some(args) = argument_of(&value, PATH) {
        return path_call("kql_path_string_form", args.to_vec(), |v| {
            Some(v.string_form())
        });
    }
    map_dyn_text("dyn_string_form", value, true)
}

/// Like [`string_form`] but null stays null (for comparisons, which have null rules).
pub(crate) fn string_form_nullable(value: Expr) -> Expr {
    map_dyn_text("dyn_string_form_nullable", value, false)
}

fn map_dyn_text(name: &str, value: Expr, empty_for_null: bool) -> Expr {
    call(
        format!("kql_{name}"),
        DataType::Utf8,
        vec![value],
        move |args, rows| {
            let v = strs(arg(args, 0, "string form")?)?;
            Ok(string_result(rows, |r| match v.get(r) {
                Some(text) => Some(Json::parse_lenient(text).string_form()),
                None if empty_for_null => Some(String::new()),
                None => None,
            }))
        },
    )
}

/// `parse_json(string)`: valid JSON normalised, anything else a dynamic string.
pub(crate) fn parse_json(value: Expr) -> Expr {
    call(PARSE_JSON, DataType::Utf8, vec![value], |args, rows| {
        let v = strs(arg(args, 0, "parse_json")?)?;
        Ok(string_result(rows, |r| {
            Json::parse_lenient(v.get(r)?).to_column()
        }))
    })
}

/// Converts a dynamic value to `to` (`to typeof(T)`, comparisons with typed values):
/// what does not convert is null.
pub(crate) fn from_dynamic(value: Expr, to: ScalarType) -> Expr {
    let ret = crate::plan::types::arrow_type(to);
    call(
        format!("kql_from_dynamic_{to}"),
        ret,
        vec![value],
        move |args, rows| {
            let v = strs(arg(args, 0, "from_dynamic")?)?;
            let json = |r: usize| v.get(r).map(Json::parse_lenient);
            Ok(match to {
                T::Bool => bool_result(rows, |r| json_bool(&json(r)?)),
                T::Int => super::int_result(rows, |r| {
                    json_long(&json(r)?).and_then(|l| i32::try_from(l).ok())
                }),
                T::Long => long_result(rows, |r| json_long(&json(r)?)),
                T::Real | T::Decimal => real_result(rows, |r| json_real(&json(r)?)),
                T::Datetime => super::timestamp_result(rows, |r| match json(r)? {
                    Json::Str(s) => time::parse_datetime(&s),
                    _ => None,
                }),
                T::Timespan => long_result(rows, |r| match json(r)? {
                    Json::Str(s) => time::parse_timespan(&s),
                    Json::Int(ticks) => ticks.checked_mul(time::NANOS_PER_TICK),
                    _ => None,
                }),
                T::Guid => string_result(rows, |r| match json(r)? {
                    Json::Str(s) => normalize_guid(&s),
                    _ => None,
                }),
                T::String => string_result(rows, |r| json(r).map(|j| j.string_form())),
                T::Dynamic => string_result(rows, |r| json(r)?.to_column()),
            })
        },
    )
}

pub(crate) fn json_bool(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(b) => Some(*b),
        Json::Int(i) => Some(*i != 0),
        Json::Real(r) => Some(*r != 0.0),
        Json::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Json::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

pub(crate) fn json_long(value: &Json) -> Option<i64> {
    match value {
        Json::Int(i) => Some(*i),
        Json::Real(r) if r.is_finite() && r.abs() < 9.2e18 => Some(r.trunc() as i64),
        Json::Bool(b) => Some(i64::from(*b)),
        Json::Str(s) => parse_long_text(s),
        _ => None,
    }
}

pub(crate) fn json_real(value: &Json) -> Option<f64> {
    match value {
        Json::Int(i) => Some(*i as f64),
        Json::Real(r) => Some(*r),
        Json::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Json::Str(s) => parse_real_text(s),
        _ => None,
    }
}

/// Integer text (`"42"`, `"-7"`, `"+3"`); anything else is not a long.
pub(crate) fn parse_long_text(text: &str) -> Option<i64> {
    let t = text.trim();
    t.strip_prefix('+').unwrap_or(t).parse::<i64>().ok()
}

pub(crate) fn parse_real_text(text: &str) -> Option<f64> {
    let t = text.trim();
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if t.chars().any(|c| c.is_ascii_digit()) => t.parse::<f64>().ok(),
        _ => None,
    }
}

/// `where d` / `and` on dynamic operands: true only for a JSON `true`.
pub(crate) fn to_bool(value: Expr) -> Expr {
    call(
        "kql_dyn_to_bool",
        DataType::Boolean,
        vec![value],
        |args, rows| {
            let v = strs(arg(args, 0, "dynamic bool")?)?;
            Ok(bool_result(rows, |r| {
                match Json::parse_lenient(v.get(r)?) {
                    Json::Bool(b) => Some(b),
                    _ => None,
                }
            }))
        },
    )
}

/// A comparison where both sides are dynamic: numbers by value, strings ordinally.
pub(crate) fn compare(op: BinaryOp, left: Expr, right: Expr) -> Expr {
    call(
        format!("kql_dyn_cmp_{op:?}"),
        DataType::Boolean,
        vec![left, right],
        move |args, rows| {
            let l = strs(arg(args, 0, "dynamic comparison")?)?;
            let r_ = strs(arg(args, 1, "dynamic comparison")?)?;
            Ok(bool_result(rows, |r| {
                let (a, b) = (l.get(r), r_.get(r));
                match op {
                    BinaryOp::Eq | BinaryOp::NotEq => {
                        let equal = match (a, b) {
                            (None, None) => return None,
                            (Some(a), Some(b)) => {
                                Json::parse_lenient(a).same(&Json::parse_lenient(b))
                            }
                            _ => false,
                        };
                        Some(equal == (op == BinaryOp::Eq))
                    }
                    _ => {
                        let ordering = Json::parse_lenient(a?).compare(&Json::parse_lenient(b?))?;
                        Some(match op {
                            BinaryOp::Lt => ordering == Ordering::Less,
                            BinaryOp::Le => ordering != Ordering::Greater,
                            BinaryOp::Gt => ordering == Ordering::Greater,
                            _ => ordering != Ordering::Less,
                        })
                    }
                }
            }))
        },
    )
}

/// Arithmetic on dynamic numbers; anything else gives null.
pub(crate) fn arithmetic(op: BinaryOp, left: Expr, right: Expr) -> Expr {
    call(
        format!("kql_dyn_arith_{op:?}"),
        DataType::Utf8,
        vec![left, right],
        move |args, rows| {
            let l = strs(arg(args, 0, "dynamic arithmetic")?)?;
            let r_ = strs(arg(args, 1, "dynamic arithmetic")?)?;
            Ok(string_result(rows, |r| {
                let a = Json::parse_lenient(l.get(r)?);
                let b = Json::parse_lenient(r_.get(r)?);
                let result = match (&a, &b) {
                    (Json::Int(x), Json::Int(y)) => match op {
                        BinaryOp::Add => Json::Int(x.wrapping_add(*y)),
                        BinaryOp::Sub => Json::Int(x.wrapping_sub(*y)),
                        BinaryOp::Mul => Json::Int(x.wrapping_mul(*y)),
                        BinaryOp::Div => Json::Int(x.checked_div(*y)?),
                        _ => Json::Int(x.checked_rem(*y)?),
                    },
                    _ => {
                        let (x, y) = (a.as_f64()?, b.as_f64()?);
                        Json::Real(match op {
                            BinaryOp::Add => x + y,
                            BinaryOp::Sub => x - y,
                            BinaryOp::Mul => x * y,
                            BinaryOp::Div => x / y,
                            _ => x % y,
                        })
                    }
                };
                result.to_column()
            }))
        },
    )
}

// ---- mv-expand -------------------------------------------------------------------------

pub(crate) fn list_type(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

/// The rows one value expands to (§4.7): array elements; bag entries as one-entry bags
/// (`bag`) or `[key, value]` pairs (`array`); a null as one null row; any other value as
/// itself. At most `limit` rows.
pub(crate) fn expand_list(value: Expr, bags_as_arrays: bool, limit: Option<i64>) -> Expr {
    let name = format!("kql_expand_{bags_as_arrays}_{limit:?}");
    call(
        name,
        list_type(DataType::Utf8),
        vec![value],
        move |args, rows| {
            let v = strs(arg(args, 0, "mv-expand")?)?;
            let mut builder = ListBuilder::new(StringBuilder::new());
            let cap = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(0));
            for r in 0..rows {
                let items: Vec<Json> = match v.get(r).map(Json::parse_lenient) {
                    None | Some(Json::Null) => vec![Json::Null],
                    Some(Json::Array(items)) => items,
                    Some(Json::Object(entries)) => entries
                        .into_iter()
                        .map(|(k, v)| {
                            if bags_as_arrays {
                                Json::Array(vec![Json::Str(k), v])
                            } else {
                                Json::Object(vec![(k, v)])
                            }
                        })
                        .collect(),
                    Some(other) => vec![other],
                };
                for item in items.into_iter().take(cap) {
                    builder.values().append_option(item.to_column());
                }
                builder.append(true);
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        },
    )
}

/// `0, 1, ..., n-1` where `n` is the longest of the lists (the expansion's item index).
pub(crate) fn expand_index(lists: Vec<Expr>) -> Expr {
    call(
        "kql_expand_index",
        list_type(DataType::Int64),
        lists,
        |args, rows| {
            let arrays: Vec<Cells> = args.iter().map(cells).collect::<DFResult<_>>()?;
            let mut builder = ListBuilder::new(Int64Builder::new());
            for r in 0..rows {
                let mut longest = 0;
                for c in &arrays {
                    let row = c.row(r);
                    if let Some(list) = c
                        .array
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::ListArray>()
                        && !list.is_null(row)
                    {
                        longest = longest.max(list.value_length(row) as i64);
                    }
                }
                for i in 0..longest {
                    builder.values().append_value(i);
                }
                builder.append(true);
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        },
    )
}

use datafusion::arrow::array::Array;

// ---- arrays, bags and sets ---------------------------------------------------------

fn dyn_args(args: &[datafusion::logical_expr::ColumnarValue]) -> DFResult<Vec<super::Strs>> {
    args.iter().map(strs).collect()
}

/// A kernel over several dynamic arguments producing a dynamic value.
fn map_dyns(
    name: &str,
    values: Vec<Expr>,
    f: impl Fn(Vec<Json>) -> Json + Send + Sync + 'static,
) -> Expr {
    call(
        format!("kql_{name}"),
        DataType::Utf8,
        values,
        move |args, rows| {
            let inputs = dyn_args(args)?;
            Ok(string_result(rows, |r| {
                f(inputs.iter().map(|s| parse_opt(s.get(r))).collect()).to_column()
            }))
        },
    )
}

fn items(value: Json) -> Option<Vec<Json>> {
    match value {
        Json::Array(items) => Some(items),
        _ => None,
    }
}

pub(crate) fn array_length(value: Expr) -> Expr {
    call(
        "kql_array_length",
        DataType::Int64,
        vec![value],
        |args, rows| {
            let v = strs(arg(args, 0, "array_length")?)?;
            Ok(long_result(rows, |r| {
                match Json::parse_lenient(v.get(r)?) {
                    Json::Array(items) => Some(items.len() as i64),
                    _ => None,
                }
            }))
        },
    )
}

pub(crate) fn array_sum(value: Expr) -> Expr {
    call(
        "kql_array_sum",
        DataType::Float64,
        vec![value],
        |args, rows| {
            let v = strs(arg(args, 0, "array_sum")?)?;
            Ok(real_result(rows, |r| {
                let items = items(Json::parse_lenient(v.get(r)?))?;
                items.iter().map(Json::as_f64).sum()
            }))
        },
    )
}

pub(crate) fn array_concat(values: Vec<Expr>) -> Expr {
    map_dyns("array_concat", values, |all| {
        let mut out = Vec::new();
        for value in all {
            match value {
                Json::Array(items) => out.extend(items),
                _ => return Json::Null,
            }
        }
        Json::Array(out)
    })
}

pub(crate) fn array_reverse(value: Expr) -> Expr {
    map_dyn("array_reverse", value, |v| match items(v) {
        Some(mut items) => {
            items.reverse();
            Json::Array(items)
        }
        None => Json::Null,
    })
}

/// `array_sort_asc/desc(a [, nulls_last])`
pub(crate) fn array_sort(descending: bool, values: Vec<Expr>) -> Expr {
    let name = format!("array_sort_{}", if descending { "desc" } else { "asc" });
    map_dyns(&name, values, move |mut all| {
        let nulls_last = match all.get(1) {
            Some(Json::Bool(b)) => *b,
            _ => true,
        };
        let Some(mut items) = all.drain(..).next().and_then(items) else {
            return Json::Null;
        };
        let (mut nulls, mut rest): (Vec<Json>, Vec<Json>) =
            items.drain(..).partition(Json::is_null);
        rest.sort_by(|a, b| {
            let o = a
                .compare(b)
                .unwrap_or_else(|| a.to_text().cmp(&b.to_text()));
            if descending { o.reverse() } else { o }
        });
        if nulls_last {
            rest.append(&mut nulls);
            Json::Array(rest)
        } else {
            nulls.append(&mut rest);
            Json::Array(nulls)
        }
    })
}

/// `array_slice(a, start, end)`: inclusive, negative indexes from the end.
pub(crate) fn array_slice(values: Vec<Expr>) -> Expr {
    call("kql_array_slice", DataType::Utf8, values, |args, rows| {
        let v = strs(arg(args, 0, "array_slice")?)?;
        let start = longs(arg(args, 1, "array_slice")?)?;
        let end = longs(arg(args, 2, "array_slice")?)?;
        Ok(string_result(rows, |r| {
            let items = items(Json::parse_lenient(v.get(r)?))?;
            let len = items.len() as i64;
            let fix = |i: i64| if i < 0 { len + i } else { i };
            let from = fix(start.get(r)?).max(0);
            let to = fix(end.get(r)?).min(len - 1);
            let slice = if from > to || from >= len {
                Vec::new()
            } else {
                items[from as usize..=to as usize].to_vec()
            };
            Some(Json::Array(slice).to_text())
        }))
    })
}

/// `array_index_of(a, value)` (value already dynamic): first index, or -1.
pub(crate) fn array_index_of(array: Expr, value: Expr) -> Expr {
    call(
        "kql_array_index_of",
        DataType::Int64,
        vec![array, value],
        |args, rows| {
            let a = strs(arg(args, 0, "array_index_of")?)?;
            let v = strs(arg(args, 1, "array_index_of")?)?;
            Ok(long_result(rows, |r| {
                let items = items(Json::parse_lenient(a.get(r)?))?;
                let needle = parse_opt(v.get(r));
                Some(
                    items
                        .iter()
                        .position(|i| i.same(&needle))
                        .map_or(-1, |p| p as i64),
                )
            }))
        },
    )
}

fn distinct_push(out: &mut Vec<Json>, value: Json) {
    if !out.iter().any(|o| o.same(&value)) {
        out.push(value);
    }
}

/// `set_union`, `set_intersect`, `set_difference`.
pub(crate) fn set_op(kind: &'static str, values: Vec<Expr>) -> Expr {
    map_dyns(&format!("set_{kind}"), values, move |all| {
        let mut arrays = Vec::with_capacity(all.len());
        for value in all {
            match items(value) {
                Some(items) => arrays.push(items),
                None => return Json::Null,
            }
        }
        let mut arrays = arrays.into_iter();
        let first = arrays.next().unwrap_or_default();
        let others: Vec<Vec<Json>> = arrays.collect();
        let mut out = Vec::new();
        match kind {
            "union" => {
                for value in first.into_iter().chain(others.into_iter().flatten()) {
                    distinct_push(&mut out, value);
                }
            }
            "intersect" => {
                for value in first {
                    if others.iter().all(|o| o.iter().any(|x| x.same(&value))) {
                        distinct_push(&mut out, value);
                    }
                }
            }
            _ => {
                for value in first {
                    if !others.iter().any(|o| o.iter().any(|x| x.same(&value))) {
                        distinct_push(&mut out, value);
                    }
                }
            }
        }
        Json::Array(out)
    })
}

/// `set_has_element(a, value)` (value already dynamic).
pub(crate) fn set_has_element(array: Expr, value: Expr) -> Expr {
    call(
        "kql_set_has_element",
        DataType::Boolean,
        vec![array, value],
        |args, rows| {
            let a = strs(arg(args, 0, "set_has_element")?)?;
            let v = strs(arg(args, 1, "set_has_element")?)?;
            Ok(bool_result(rows, |r| {
                let items = items(Json::parse_lenient(a.get(r)?))?;
                let needle = parse_opt(v.get(r));
                Some(items.iter().any(|i| i.same(&needle)))
            }))
        },
    )
}

/// `pack_array(v, ...)` over values already converted to dynamic.
pub(crate) fn pack_array(values: Vec<Expr>) -> Expr {
    if values.is_empty() {
        return datafusion::prelude::lit("[]");
    }
    map_dyns("pack_array", values, Json::Array)
}

/// `bag_pack(k1, v1, ...)`: keys are strings, values already dynamic.
pub(crate) fn bag_pack(values: Vec<Expr>) -> Expr {
    if values.is_empty() {
        return datafusion::prelude::lit("{}");
    }
    call("kql_bag_pack", DataType::Utf8, values, |args, rows| {
        let inputs = dyn_args(args)?;
        Ok(string_result(rows, |r| {
            let mut entries: Vec<(String, Json)> = Vec::new();
            for pair in inputs.chunks(2) {
                let (Some(key), Some(value)) = (pair.first(), pair.get(1)) else {
                    continue;
                };
                let key = key.text(r).to_string();
                let value = parse_opt(value.get(r));
                match entries.iter_mut().find(|(k, _)| *k == key) {
                    Some(entry) => entry.1 = value,
                    None => entries.push((key, value)),
                }
            }
            Some(Json::Object(entries).to_text())
        }))
    })
}

pub(crate) fn bag_keys(value: Expr) -> Expr {
    map_dyn("bag_keys", value, |v| match v {
        Json::Object(entries) => {
            Json::Array(entries.into_iter().map(|(k, _)| Json::Str(k)).collect())
        }
        _ => Json::Null,
    })
}

pub(crate) fn bag_has_key(bag: Expr, key: Expr) -> Expr {
    call(
        "kql_bag_has_key",
        DataType::Boolean,
        vec![bag, key],
        |args, rows| {
            let b = strs(arg(args, 0, "bag_has_key")?)?;
            let k = strs(arg(args, 1, "bag_has_key")?)?;
            Ok(bool_result(rows, |r| {
                match Json::parse_lenient(b.get(r)?) {
                    Json::Object(entries) => Some(entries.iter().any(|(key, _)| key == k.text(r))),
                    _ => None,
                }
            }))
        },
    )
}

pub(crate) fn bag_remove_keys(values: Vec<Expr>) -> Expr {
    map_dyns("bag_remove_keys", values, |all| {
        let mut all = all.into_iter();
        let (Some(Json::Object(entries)), Some(Json::Array(keys))) = (all.next(), all.next())
        else {
            return Json::Null;
        };
        Json::Object(
            entries
                .into_iter()
                .filter(|(k, _)| !keys.iter().any(|key| matches!(key, Json::Str(s) if s == k)))
                .collect(),
        )
    })
}

/// `bag_merge(b1, b2, ...)`: the first bag wins on duplicate keys.
pub(crate) fn bag_merge(values: Vec<Expr>) -> Expr {
    map_dyns("bag_merge", values, |all| {
        let mut out: Vec<(String, Json)> = Vec::new();
        for value in all {
            if let Json::Object(entries) = value {
                for (k, v) in entries {
                    if !out.iter().any(|(key, _)| *key == k) {
                        out.push((k, v));
                    }
                }
            }
        }
        Json::Object(out)
    })
}

pub(crate) fn zip(values: Vec<Expr>) -> Expr {
    map_dyns("zip", values, |all| {
        let mut arrays = Vec::new();
        for value in all {
            match items(value) {
                Some(items) => arrays.push(items),
                None => return Json::Null,
            }
        }
        let longest = arrays.iter().map(Vec::len).max().unwrap_or(0);
        Json::Array(
            (0..longest)
                .map(|i| {
                    Json::Array(
                        arrays
                            .iter()
                            .map(|a| a.get(i).cloned().unwrap_or(Json::Null))
                            .collect(),
                    )
                })
                .collect(),
        )
    })
}

/// Longest array `range()` may build, so one row cannot exhaust memory.
pub(crate) const MAX_RANGE: usize = 10_000_000;

/// `range(start, stop, step)` as a dynamic array: reals, or integers (longs, and the
/// nanoseconds of datetimes and timespans, which come out as their strings).
pub(crate) fn range_array(values: Vec<Expr>, ty: ScalarType) -> Expr {
    call(
        format!("kql_range_array_{ty}"),
        DataType::Utf8,
        values,
        move |args, rows| {
            if matches!(ty, T::Real | T::Decimal) {
                let start = super::reals(arg(args, 0, "range")?)?;
                let stop = super::reals(arg(args, 1, "range")?)?;
                let step = args.get(2).map(super::reals).transpose()?;
                return Ok(string_result(rows, |r| {
                    let (a, b) = (start.get(r)?, stop.get(r)?);
                    let s = match &step {
                        Some(s) => s.get(r)?,
                        None => 1.0,
                    };
                    let mut out = Vec::new();
                    let mut n = 0usize;
                    while s != 0.0 && n < MAX_RANGE {
                        let x = a + s * n as f64;
                        if (s > 0.0 && x > b) || (s < 0.0 && x < b) {
                            break;
                        }
                        out.push(Json::Real(x));
                        n += 1;
                    }
                    Some(Json::Array(out).to_text())
                }));
            }
            let start = longs(arg(args, 0, "range")?)?;
            let stop = longs(arg(args, 1, "range")?)?;
            let step = args.get(2).map(longs).transpose()?;
            Ok(string_result(rows, |r| {
                let (a, b) = (start.get(r)?, stop.get(r)?);
                let s = match &step {
                    Some(s) => s.get(r)?,
                    None if matches!(ty, T::Datetime | T::Timespan) => return None,
                    None => 1,
                };
                let mut out = Vec::new();
                let mut x = a;
                while s != 0 && out.len() < MAX_RANGE && ((s > 0 && x <= b) || (s < 0 && x >= b)) {
                    out.push(match ty {
                        T::Datetime => Json::Str(time::format_iso(x)),
                        T::Timespan => Json::Str(time::format_timespan(x)),
                        _ => Json::Int(x),
                    });
                    match x.checked_add(s) {
                        Some(next) => x = next,
                        None => break,
                    }
                }
                Some(Json::Array(out).to_text())
            }))
        },
    )
}

/// `gettype` of a dynamic value: its runtime kind.
pub(crate) fn gettype(value: Expr) -> Expr {
    call(
        "kql_dyn_gettype",
        DataType::Utf8,
        vec![value],
        |args, rows| {
            let v = strs(arg(args, 0, "gettype")?)?;
            Ok(string_result(rows, |r| {
                Some(parse_opt(v.get(r)).type_name().to_string())
            }))
        },
    )
}

/// `isempty` of a dynamic value: null or an empty string.
pub(crate) fn is_empty(value: Expr) -> Expr {
    call(
        "kql_dyn_isempty",
        DataType::Boolean,
        vec![value],
        |args, rows| {
            let v = strs(arg(args, 0, "isempty")?)?;
            Ok(bool_result(rows, |r| {
                Some(match parse_opt(v.get(r)) {
                    Json::Null => true,
                    Json::Str(s) => s.is_empty(),
                    _ => false,
                })
            }))
        },
    )
}

/// Membership of a value (as dynamic text) in a dynamic array computed per row
/// (`x in (d)` where `d` is not a constant). Nested arrays are flattened.
pub(crate) fn in_array(value: Expr, array: Expr, case_insensitive: bool) -> Expr {
    let name = format!("kql_in_array_{case_insensitive}");
    call(
        name,
        DataType::Boolean,
        vec![value, array],
        move |args, rows| {
            let v = strs(arg(args, 0, "in")?)?;
            let a = strs(arg(args, 1, "in")?)?;
            Ok(bool_result(rows, |r| {
                let needle = parse_opt(v.get(r));
                if needle.is_null() {
                    return Some(false);
                }
                let mut flat = Vec::new();
                flatten(parse_opt(a.get(r)), &mut flat);
                Some(flat.iter().any(|item| {
                    if case_insensitive {
                        item.string_form()
                            .eq_ignore_ascii_case(&needle.string_form())
                    } else {
                        item.same(&needle)
                    }
                }))
            }))
        },
    )
}

/// Array elements, recursively (a non-array is itself).
pub(crate) fn flatten(value: Json, out: &mut Vec<Json>) {
    match value {
        Json::Array(items) => {
            for item in items {
                flatten(item, out);
            }
        }
        other => out.push(other),
    }
}
