//! Date and time functions (§6.1) over nanosecond datetimes and timespans.

use super::{
    arg, call, int_result, long_result, longs, real_result, reals, string_result, strs,
    timestamp_result,
};
use crate::ast::ScalarType;
use crate::plan::time::{self, NANOS_PER_DAY, Parts};
use crate::plan::types::arrow_type;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::Expr;

use ScalarType as T;

fn floor_div(a: i128, b: i128) -> i128 {
    a.div_euclid(b)
}

/// Rounds `value` down to a multiple of `size` counted from `origin` (all nanoseconds or
/// plain integers).
fn bin_i64(value: i64, size: i64, origin: i128) -> Option<i64> {
    if size <= 0 {
        return None;
    }
    let v = i128::from(value) - origin;
    let binned = floor_div(v, i128::from(size)) * i128::from(size) + origin;
    i64::try_from(binned).ok()
}

fn bin_f64(value: f64, size: f64, origin: f64) -> Option<f64> {
    if size <= 0.0 || size.is_nan() {
        return None;
    }
    Some(((value - origin) / size).floor() * size + origin)
}

/// Datetime bins align on 0001-01-01, which is before the epoch by more than `i64`
/// nanoseconds hold, hence the `i128` origin.
fn datetime_origin() -> i128 {
    -i128::from(time::DAYS_0001_TO_EPOCH) * i128::from(NANOS_PER_DAY)
}

/// `bin(value, size)` and `bin_at(value, size, fixed)` for a value of KQL type `ty`
/// (the size is a number, or nanoseconds for datetimes and timespans).
pub(crate) fn bin(ty: ScalarType, size_is_real: bool, args_in: Vec<Expr>) -> Expr {
    let at = args_in.len() == 3;
    let name = format!("kql_bin_{ty}_{size_is_real}_{at}");
    call(name, arrow_type(ty), args_in, move |args, rows| {
        let integral = matches!(ty, T::Int | T::Long | T::Timespan | T::Datetime) && !size_is_real;
        if integral {
            let value = longs(arg(args, 0, "bin")?)?;
            let size = longs(arg(args, 1, "bin")?)?;
            let fixed = args.get(2).map(longs).transpose()?;
            let default_origin = if ty == T::Datetime {
                datetime_origin()
            } else {
                0
            };
            let compute = |r: usize| {
                let origin = match &fixed {
                    Some(f) => i128::from(f.get(r)?),
                    None => default_origin,
                };
                bin_i64(value.get(r)?, size.get(r)?, origin)
            };
            Ok(match ty {
                T::Datetime => timestamp_result(rows, compute),
                T::Int => int_result(rows, |r| compute(r).and_then(|v| i32::try_from(v).ok())),
                _ => long_result(rows, compute),
            })
        } else {
            let value = reals(arg(args, 0, "bin")?)?;
            let size = reals(arg(args, 1, "bin")?)?;
            let fixed = args.get(2).map(reals).transpose()?;
            let compute = |r: usize| {
                let origin = match &fixed {
                    Some(f) => f.get(r)?,
                    None => 0.0,
                };
                bin_f64(value.get(r)?, size.get(r)?, origin)
            };
            Ok(match ty {
                T::Real | T::Decimal => real_result(rows, compute),
                T::Int => int_result(rows, |r| compute(r).map(|v| v as i32)),
                T::Datetime => timestamp_result(rows, |r| compute(r).map(|v| v as i64)),
                _ => long_result(rows, |r| compute(r).map(|v| v as i64)),
            })
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Period {
    Day,
    Week,
    Month,
    Year,
}

fn add_months(nanos: i64, months: i64) -> Option<i64> {
    let p = time::split(nanos);
    let total = p.year.checked_mul(12)? + i64::from(p.month) - 1 + months;
    let year = total.div_euclid(12);
    let month = (total.rem_euclid(12) + 1) as u32;
    let day = p.day.min(time::days_in_month(year, month));
    time::join(Parts {
        year,
        month,
        day,
        ..p
    })
}

/// The start of the period holding `nanos`, shifted by `k` periods.
fn period_start(period: Period, nanos: i64, k: i64) -> Option<i64> {
    let day_start = nanos.div_euclid(NANOS_PER_DAY) * NANOS_PER_DAY;
    match period {
        Period::Day => day_start.checked_add(k.checked_mul(NANOS_PER_DAY)?),
        Period::Week => {
            let sunday = day_start - time::weekday(nanos) * NANOS_PER_DAY;
            sunday.checked_add(k.checked_mul(7 * NANOS_PER_DAY)?)
        }
        Period::Month => {
            let p = time::split(nanos);
            let first = time::join(Parts {
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                nanos: 0,
                ..p
            })?;
            add_months(first, k)
        }
        Period::Year => {
            let p = time::split(nanos);
            time::join(Parts {
                year: p.year.checked_add(k)?,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                nanos: 0,
            })
        }
    }
}

/// `startofday(dt [, k])` ... and `endofday(dt [, k])` (one tick before the next start).
pub(crate) fn start_of(period: Period, end: bool, args_in: Vec<Expr>) -> Expr {
    let name = format!("kql_{}of{period:?}", if end { "end" } else { "start" });
    call(name, arrow_type(T::Datetime), args_in, move |args, rows| {
        let dt = longs(arg(args, 0, "startof")?)?;
        let offset = args.get(1).map(longs).transpose()?;
        Ok(timestamp_result(rows, |r| {
            let k = match &offset {
                Some(o) => o.get(r)?,
                None => 0,
            };
            if end {
                period_start(period, dt.get(r)?, k.checked_add(1)?)?
                    .checked_sub(time::NANOS_PER_TICK)
            } else {
                period_start(period, dt.get(r)?, k)
            }
        }))
    })
}

fn unit_nanos(part: &str) -> Option<i64> {
    Some(match part {
        "week" | "weeks" => 7 * NANOS_PER_DAY,
        "day" | "days" => NANOS_PER_DAY,
        "hour" | "hours" => time::NANOS_PER_HOUR,
        "minute" | "minutes" => time::NANOS_PER_MIN,
        "second" | "seconds" => time::NANOS_PER_SEC,
        "millisecond" | "milliseconds" => time::NANOS_PER_MILLI,
        "microsecond" | "microseconds" => time::NANOS_PER_MICRO,
        "nanosecond" | "nanoseconds" => 1,
        _ => return None,
    })
}

/// `datetime_add(part, amount, dt)`; months and years clamp to the month's end.
pub(crate) fn datetime_add(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_datetime_add",
        arrow_type(T::Datetime),
        args_in,
        |args, rows| {
            let part = strs(arg(args, 0, "datetime_add")?)?;
            let amount = longs(arg(args, 1, "datetime_add")?)?;
            let dt = longs(arg(args, 2, "datetime_add")?)?;
            Ok(timestamp_result(rows, |r| {
                let p = part.text(r).to_ascii_lowercase();
                let n = amount.get(r)?;
                let value = dt.get(r)?;
                match p.as_str() {
                    "year" | "years" => add_months(value, n.checked_mul(12)?),
                    "quarter" | "quarters" => add_months(value, n.checked_mul(3)?),
                    "month" | "months" => add_months(value, n),
                    other => value.checked_add(n.checked_mul(unit_nanos(other)?)?),
                }
            }))
        },
    )
}

/// `datetime_diff(part, dt1, dt2)`: period boundaries crossed from `dt2` to `dt1`.
pub(crate) fn datetime_diff(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_datetime_diff",
        DataType::Int64,
        args_in,
        |args, rows| {
            let part = strs(arg(args, 0, "datetime_diff")?)?;
            let a = longs(arg(args, 1, "datetime_diff")?)?;
            let b = longs(arg(args, 2, "datetime_diff")?)?;
            Ok(long_result(rows, |r| {
                let (x, y) = (a.get(r)?, b.get(r)?);
                let p = part.text(r).to_ascii_lowercase();
                let (px, py) = (time::split(x), time::split(y));
                Some(match p.as_str() {
                    "year" | "years" => px.year - py.year,
                    "quarter" | "quarters" => {
                        (px.year * 4 + i64::from(px.month - 1) / 3)
                            - (py.year * 4 + i64::from(py.month - 1) / 3)
                    }
                    "month" | "months" => {
                        (px.year * 12 + i64::from(px.month)) - (py.year * 12 + i64::from(py.month))
                    }
                    // Weeks start on Sunday; day 0 (1970-01-01) is a Thursday.
                    "week" | "weeks" => {
                        (x.div_euclid(NANOS_PER_DAY) + 4).div_euclid(7)
                            - (y.div_euclid(NANOS_PER_DAY) + 4).div_euclid(7)
                    }
                    other => {
                        let unit = unit_nanos(other)?;
                        x.div_euclid(unit) - y.div_euclid(unit)
                    }
                })
            }))
        },
    )
}

fn part_of(part: &str, nanos: i64) -> Option<i64> {
    let p = time::split(nanos);
    Some(match part {
        "year" => p.year,
        "quarter" => i64::from(p.month - 1) / 3 + 1,
        "month" => i64::from(p.month),
        "week_of_year" | "weekofyear" | "week" => time::iso_week(nanos),
        "day" => i64::from(p.day),
        "dayofyear" => time::day_of_year(nanos),
        "hour" => i64::from(p.hour),
        "minute" => i64::from(p.minute),
        "second" => i64::from(p.second),
        "millisecond" => i64::from(p.nanos / 1_000_000),
        "microsecond" => i64::from(p.nanos / 1_000),
        "nanosecond" => i64::from(p.nanos),
        _ => return None,
    })
}

/// `datetime_part(part, dt)` (an int).
pub(crate) fn datetime_part(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_datetime_part",
        DataType::Int32,
        args_in,
        |args, rows| {
            let part = strs(arg(args, 0, "datetime_part")?)?;
            let dt = longs(arg(args, 1, "datetime_part")?)?;
            Ok(int_result(rows, |r| {
                let p = part.text(r).to_ascii_lowercase();
                part_of(&p, dt.get(r)?).and_then(|v| i32::try_from(v).ok())
            }))
        },
    )
}

/// `dayofmonth`, `getyear`, `hourofday`, ... : one calendar field as an int.
pub(crate) fn calendar_part(part: &'static str, value: Expr) -> Expr {
    call(
        format!("kql_part_{part}"),
        DataType::Int32,
        vec![value],
        move |args, rows| {
            let dt = longs(arg(args, 0, part)?)?;
            Ok(int_result(rows, |r| {
                part_of(part, dt.get(r)?).and_then(|v| i32::try_from(v).ok())
            }))
        },
    )
}

/// `dayofweek(dt)`: days since Sunday, as a timespan.
pub(crate) fn dayofweek(value: Expr) -> Expr {
    call(
        "kql_dayofweek",
        DataType::Int64,
        vec![value],
        |args, rows| {
            let dt = longs(arg(args, 0, "dayofweek")?)?;
            Ok(long_result(rows, |r| {
                Some(time::weekday(dt.get(r)?) * NANOS_PER_DAY)
            }))
        },
    )
}

pub(crate) fn format_datetime(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_format_datetime",
        DataType::Utf8,
        args_in,
        |args, rows| {
            let dt = longs(arg(args, 0, "format_datetime")?)?;
            let f = strs(arg(args, 1, "format_datetime")?)?;
            Ok(string_result(rows, |r| {
                Some(match dt.get(r) {
                    Some(v) => time::format_datetime_pattern(v, f.text(r)).unwrap_or_default(),
                    None => String::new(),
                })
            }))
        },
    )
}

pub(crate) fn format_timespan(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_format_timespan",
        DataType::Utf8,
        args_in,
        |args, rows| {
            let ts = longs(arg(args, 0, "format_timespan")?)?;
            let f = strs(arg(args, 1, "format_timespan")?)?;
            Ok(string_result(rows, |r| {
                Some(match ts.get(r) {
                    Some(v) => time::format_timespan_pattern(v, f.text(r)).unwrap_or_default(),
                    None => String::new(),
                })
            }))
        },
    )
}

/// `make_datetime(year, month, day [, hour, minute, second])`
pub(crate) fn make_datetime(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_make_datetime",
        arrow_type(T::Datetime),
        args_in,
        |args, rows| {
            let ints: Vec<super::Longs> = args
                .iter()
                .take(5)
                .map(longs)
                .collect::<datafusion::common::Result<_>>()?;
            let seconds = args.get(5).map(reals).transpose()?;
            Ok(timestamp_result(rows, |r| {
                let field = |i: usize| -> Option<i64> {
                    match ints.get(i) {
                        Some(v) => v.get(r),
                        None => Some(0),
                    }
                };
                let secs = match &seconds {
                    Some(s) => s.get(r)?,
                    None => 0.0,
                };
                if !(0.0..60.0).contains(&secs) {
                    return None;
                }
                let whole = secs.trunc();
                time::join(Parts {
                    year: field(0)?,
                    month: u32::try_from(field(1)?).ok()?,
                    day: u32::try_from(field(2)?).ok()?,
                    hour: u32::try_from(field(3)?).ok()?,
                    minute: u32::try_from(field(4)?).ok()?,
                    second: whole as u32,
                    nanos: ((secs - whole) * 1e9).round() as u32,
                })
            }))
        },
    )
}

/// `make_timespan(hour, minute)`, `(hour, minute, second)` or `(day, hour, minute, second)`.
pub(crate) fn make_timespan(args_in: Vec<Expr>) -> Expr {
    call(
        "kql_make_timespan",
        DataType::Int64,
        args_in,
        |args, rows| {
            let values: Vec<super::Reals> = args
                .iter()
                .map(reals)
                .collect::<datafusion::common::Result<_>>()?;
            Ok(long_result(rows, |r| {
                let v: Vec<f64> = values.iter().map(|x| x.get(r)).collect::<Option<_>>()?;
                let (d, h, m, s) = match v.as_slice() {
                    [h, m] => (0.0, *h, *m, 0.0),
                    [h, m, s] => (0.0, *h, *m, *s),
                    [d, h, m, s] => (*d, *h, *m, *s),
                    _ => return None,
                };
                let nanos = ((d * 24.0 + h) * 60.0 + m) * 60e9 + s * 1e9;
                (nanos.abs() < 9.2e18).then(|| nanos.round() as i64)
            }))
        },
    )
}

/// `unixtime_*_todatetime(n)`: `n` units of `scale` nanoseconds since the epoch.
pub(crate) fn from_unix(scale: i64, value: Expr) -> Expr {
    call(
        format!("kql_unixtime_{scale}"),
        arrow_type(T::Datetime),
        vec![value],
        move |args, rows| {
            let n = reals(arg(args, 0, "unixtime")?)?;
            Ok(timestamp_result(rows, |r| {
                let nanos = n.get(r)? * scale as f64;
                (nanos.is_finite() && nanos.abs() < 9.2e18).then(|| nanos.round() as i64)
            }))
        },
    )
}
