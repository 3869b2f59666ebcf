//! Lowering of scalar function calls (§6) by canonical name.
//!
//! Each function is a DataFusion built-in when its semantics match Kusto's exactly
//! (`abs`, `sqrt`, `coalesce` on non-strings, ...), and a kernel of [`super::udf`]
//! otherwise. Arguments the signature types loosely (`Any`, or dynamic standing in for a
//! scalar) are converted here to what the kernel reads.

use super::error::PlanError;
use super::expr::Scope;
use super::rel::Lowerer;
use super::time::{NANOS_PER_MICRO, NANOS_PER_MILLI, NANOS_PER_SEC, NANOS_PER_TICK};
use super::types::{arrow_type, timestamp_scalar};
use super::udf::{self, convert, datetime, dynamic, net, strings};
use crate::ast::ScalarType;
use crate::bind::BoundExpr;
use datafusion::arrow::datatypes::DataType;
use datafusion::functions::math::expr_fn as math;
use datafusion::logical_expr::{Expr, Operator, binary_expr, cast, lit, when};
use datafusion::prelude::coalesce;

use ScalarType as T;

impl Lowerer<'_> {
    /// Argument `i` lowered and converted to `ty`.
    fn arg_as(
        &self,
        args: &[BoundExpr],
        i: usize,
        ty: ScalarType,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let a = args.get(i).ok_or_else(|| {
            PlanError::new(format!(
                "internal planning error: missing argument {}",
                i + 1
            ))
        })?;
        let value = self.expr(a, scope)?;
        Ok(if a.ty == ty {
            value
        } else if ty == T::String {
            self.as_text(value, a.ty)
        } else {
            self.convert(value, a.ty, ty)
        })
    }

    /// Every argument from `from` on, converted to `ty`.
    fn args_as(
        &self,
        args: &[BoundExpr],
        from: usize,
        ty: ScalarType,
        scope: &mut Scope<'_>,
    ) -> Result<Vec<Expr>, PlanError> {
        (from..args.len())
            .map(|i| self.arg_as(args, i, ty, scope))
            .collect()
    }

    /// Arguments converted to the listed types (missing optional ones skipped).
    fn typed(
        &self,
        args: &[BoundExpr],
        types: &[ScalarType],
        scope: &mut Scope<'_>,
    ) -> Result<Vec<Expr>, PlanError> {
        (0..args.len().min(types.len()))
            .map(|i| self.arg_as(args, i, types[i], scope))
            .collect()
    }

    /// Argument `i` of a call (the binder checked the count; this only refuses to panic).
    pub(crate) fn nth<'e>(
        &self,
        args: &'e [BoundExpr],
        i: usize,
        node: &BoundExpr,
    ) -> Result<&'e BoundExpr, PlanError> {
        args.get(i).ok_or_else(|| {
            self.error(
                node.span,
                format!("internal planning error: missing argument {}", i + 1),
            )
        })
    }

    pub(crate) fn first<'e>(
        &self,
        args: &'e [BoundExpr],
        node: &BoundExpr,
    ) -> Result<&'e BoundExpr, PlanError> {
        self.nth(args, 0, node)
    }

    fn now_expr(&self) -> Expr {
        lit(timestamp_scalar(Some(self.now)))
    }

    pub(crate) fn call(
        &self,
        function: &str,
        args: &[BoundExpr],
        node: &BoundExpr,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let ty = node.ty;
        let arg_ty = |i: usize| args.get(i).map_or(T::Dynamic, |a| a.ty);
        let one = |scope: &mut Scope<'_>, t: ScalarType| self.arg_as(args, 0, t, scope);
        Ok(match function {
            // ---- §6.1 date and time
            "now" => match args.first() {
                None => self.now_expr(),
                Some(_) => {
                    let offset = one(scope, T::Timespan)?;
                    cast(
                        binary_expr(lit(self.now), Operator::Plus, offset),
                        arrow_type(T::Datetime),
                    )
                }
            },
            "ago" => {
                let offset = one(scope, T::Timespan)?;
                cast(
                    binary_expr(lit(self.now), Operator::Minus, offset),
                    arrow_type(T::Datetime),
                )
            }
            "datetime_add" => datetime::datetime_add(self.typed(
                args,
                &[T::String, T::Long, T::Datetime],
                scope,
            )?),
            "datetime_diff" => datetime::datetime_diff(self.typed(
                args,
                &[T::String, T::Datetime, T::Datetime],
                scope,
            )?),
            "datetime_part" => {
                datetime::datetime_part(self.typed(args, &[T::String, T::Datetime], scope)?)
            }
            "startofday" | "startofweek" | "startofmonth" | "startofyear" | "endofday"
            | "endofweek" | "endofmonth" | "endofyear" => {
                let period = match &function[function.len() - 3..] {
                    "day" => datetime::Period::Day,
                    "eek" => datetime::Period::Week,
                    "nth" => datetime::Period::Month,
                    _ => datetime::Period::Year,
                };
                let end = function.starts_with("end");
                datetime::start_of(
                    period,
                    end,
                    self.typed(args, &[T::Datetime, T::Long], scope)?,
                )
            }
            "bin" | "bin_at" => self.bin(args, ty, scope)?,
            "dayofweek" => datetime::dayofweek(one(scope, T::Datetime)?),
            "dayofmonth" => datetime::calendar_part("day", one(scope, T::Datetime)?),
            "dayofyear" => datetime::calendar_part("dayofyear", one(scope, T::Datetime)?),
            "getmonth" | "monthofyear" => {
                datetime::calendar_part("month", one(scope, T::Datetime)?)
            }
            "getyear" => datetime::calendar_part("year", one(scope, T::Datetime)?),
            "hourofday" => datetime::calendar_part("hour", one(scope, T::Datetime)?),
            "week_of_year" => datetime::calendar_part("week_of_year", one(scope, T::Datetime)?),
            "format_datetime" => {
                datetime::format_datetime(self.typed(args, &[T::Datetime, T::String], scope)?)
            }
            "format_timespan" => {
                datetime::format_timespan(self.typed(args, &[T::Timespan, T::String], scope)?)
            }
            "make_datetime" => datetime::make_datetime(self.typed(
                args,
                &[T::Long, T::Long, T::Long, T::Long, T::Long, T::Real],
                scope,
            )?),
            "make_timespan" => datetime::make_timespan(self.args_as(args, 0, T::Real, scope)?),
            "unixtime_seconds_todatetime" => {
                datetime::from_unix(NANOS_PER_SEC, one(scope, T::Real)?)
            }
            "unixtime_milliseconds_todatetime" => {
                datetime::from_unix(NANOS_PER_MILLI, one(scope, T::Real)?)
            }
            "unixtime_microseconds_todatetime" => {
                datetime::from_unix(NANOS_PER_MICRO, one(scope, T::Real)?)
            }
            "unixtime_nanoseconds_todatetime" => datetime::from_unix(1, one(scope, T::Real)?),

            // ---- §6.2 conversion
            "tostring" => {
                let value = self.expr(self.first(args, node)?, scope)?;
                self.as_text(value, arg_ty(0))
            }
            "toint" | "tolong" | "toreal" | "todecimal" | "tobool" => {
                self.to_number(args, ty, scope)?
            }
            "toguid" => {
                let value = self.expr(self.first(args, node)?, scope)?;
                match arg_ty(0) {
                    T::Guid => value,
                    T::String => convert::parse_text(value, T::Guid),
                    T::Dynamic => dynamic::from_dynamic(value, T::Guid),
                    _ => lit(datafusion::common::ScalarValue::Utf8(None)),
                }
            }
            "todatetime" => {
                let value = self.expr(self.first(args, node)?, scope)?;
                match arg_ty(0) {
                    T::Datetime => value,
                    T::String => convert::parse_text(value, T::Datetime),
                    T::Dynamic => dynamic::from_dynamic(value, T::Datetime),
                    _ => lit(timestamp_scalar(None)),
                }
            }
            "totimespan" => {
                let value = self.expr(self.first(args, node)?, scope)?;
                match arg_ty(0) {
                    T::Timespan => value,
                    T::String => convert::parse_text(value, T::Timespan),
                    T::Dynamic => dynamic::from_dynamic(value, T::Timespan),
                    // A number of ticks.
                    T::Int | T::Long => binary_expr(
                        cast(value, DataType::Int64),
                        Operator::Multiply,
                        lit(NANOS_PER_TICK),
                    ),
                    _ => lit(datafusion::common::ScalarValue::Int64(None)),
                }
            }
            "parse_json" => {
                let value = self.expr(self.first(args, node)?, scope)?;
                match arg_ty(0) {
                    T::String => dynamic::parse_json(value),
                    other => dynamic::to_dynamic(value, other),
                }
            }
            "gettype" => {
                let value = self.expr(self.first(args, node)?, scope)?;
                match arg_ty(0) {
                    T::Dynamic => dynamic::gettype(value),
                    other => lit(other.name()),
                }
            }

            // ---- §6.3 strings
            "strlen" => strings::strlen(one(scope, T::String)?),
            "tolower" => strings::map_str("tolower", one(scope, T::String)?, |s| {
                Some(s.to_lowercase())
            }),
            "toupper" => strings::map_str("toupper", one(scope, T::String)?, |s| {
                Some(s.to_uppercase())
            }),
            "reverse" => strings::map_str("reverse", one(scope, T::String)?, |s| {
                Some(s.chars().rev().collect())
            }),
            "substring" => {
                strings::substring(self.typed(args, &[T::String, T::Long, T::Long], scope)?)
            }
            "strcat" => {
                let parts = self.args_as(args, 0, T::String, scope)?;
                strcat(parts, None)
            }
            "strcat_delim" => {
                let delimiter = self.arg_as(args, 0, T::String, scope)?;
                let parts = self.args_as(args, 1, T::String, scope)?;
                strcat(parts, Some(delimiter))
            }
            "strcat_array" => {
                strings::strcat_array(self.typed(args, &[T::Dynamic, T::String], scope)?)
            }
            "split" => strings::split(self.typed(args, &[T::String, T::String, T::Long], scope)?),
            "replace_string" => strings::replace_string(self.args_as(args, 0, T::String, scope)?),
            "replace_regex" => strings::replace_regex(self.args_as(args, 0, T::String, scope)?),
            "translate" => strings::translate(self.args_as(args, 0, T::String, scope)?),
            "trim" => strings::trim(true, true, self.args_as(args, 0, T::String, scope)?),
            "trim_start" => strings::trim(true, false, self.args_as(args, 0, T::String, scope)?),
            "trim_end" => strings::trim(false, true, self.args_as(args, 0, T::String, scope)?),
            "indexof" => strings::indexof(self.typed(
                args,
                &[T::String, T::String, T::Long, T::Long, T::Long],
                scope,
            )?),
            "countof" => strings::countof(self.args_as(args, 0, T::String, scope)?),
            "strrep" => {
                strings::strrep(self.typed(args, &[T::String, T::Long, T::String], scope)?)
            }
            "strcmp" => {
                let a = self.arg_as(args, 0, T::String, scope)?;
                let b = self.arg_as(args, 1, T::String, scope)?;
                strings::strcmp(a, b)
            }
            "extract" => {
                let mut lowered = self.typed(args, &[T::String, T::Long, T::String], scope)?;
                lowered.truncate(3);
                let text = strings::extract(lowered);
                if ty == T::String {
                    coalesce(vec![text, lit("")])
                } else {
                    convert::parse_text(text, ty)
                }
            }
            "extract_all" => {
                let lowered = if args.len() == 3 {
                    self.typed(args, &[T::String, T::Dynamic, T::String], scope)?
                } else {
                    self.typed(args, &[T::String, T::String], scope)?
                };
                strings::extract_all(lowered)
            }
            "url_encode" => strings::url_encode(false, one(scope, T::String)?),
            "url_encode_component" => strings::url_encode(true, one(scope, T::String)?),
            "url_decode" => strings::url_decode(one(scope, T::String)?),
            "base64_encode_tostring" => strings::base64_encode(one(scope, T::String)?),
            "base64_decode_tostring" => strings::base64_decode(one(scope, T::String)?),
            "base64_decode_toarray" => strings::base64_decode_array(one(scope, T::String)?),
            "hash_sha256" => strings::hash("sha256", one(scope, T::String)?),
            "hash_sha1" => strings::hash("sha1", one(scope, T::String)?),
            "hash_md5" => strings::hash("md5", one(scope, T::String)?),
            "hash" => strings::xx_hash(self.typed(args, &[T::String, T::Long], scope)?),

            // ---- §6.4 URLs, paths, command lines
            "parse_url" => net::parse_url(one(scope, T::String)?),
            "parse_urlquery" => net::parse_urlquery(one(scope, T::String)?),
            "parse_path" => net::parse_path(one(scope, T::String)?),
            "parse_command_line" => {
                net::parse_command_line(self.args_as(args, 0, T::String, scope)?)
            }

            // ---- §6.5 conditionals and nulls
            "iff" => {
                let condition = self.predicate(self.first(args, node)?, scope)?;
                let yes = self.arg_as(args, 1, ty, scope)?;
                let no = self.arg_as(args, 2, ty, scope)?;
                when(condition, yes).otherwise(no)?
            }
            "case" => {
                let mut pairs = Vec::new();
                let last = args.len().saturating_sub(1);
                for i in (0..last).step_by(2) {
                    let condition = self.predicate(self.nth(args, i, node)?, scope)?;
                    let value = self.arg_as(args, i + 1, ty, scope)?;
                    pairs.push((condition, value));
                }
                let otherwise = self.arg_as(args, last, ty, scope)?;
                let mut pairs = pairs.into_iter();
                match pairs.next() {
                    None => otherwise,
                    Some((c, v)) => {
                        let mut case = when(c, v);
                        for (c, v) in pairs {
                            case = case.when(c, v);
                        }
                        case.otherwise(otherwise)?
                    }
                }
            }
            "coalesce" => {
                let values = self.args_as(args, 0, ty, scope)?;
                if ty == T::String {
                    // Strings are never null: the first non-empty one.
                    let mut values = values.into_iter().rev();
                    let mut result = values.next().unwrap_or_else(|| lit(""));
                    for v in values {
                        result = when(v.clone().not_eq(lit("")), v).otherwise(result)?;
                    }
                    result
                } else {
                    coalesce(values)
                }
            }
            "isnull" | "isnotnull" => {
                let negated = function == "isnotnull";
                if arg_ty(0) == T::String {
                    lit(negated)
                } else {
                    let value = self.expr(self.first(args, node)?, scope)?;
                    if negated {
                        value.is_not_null()
                    } else {
                        value.is_null()
                    }
                }
            }
            "isempty" | "isnotempty" => {
                let value = self.expr(self.first(args, node)?, scope)?;
                let empty = match arg_ty(0) {
                    T::String => value.eq(lit("")),
                    T::Dynamic => dynamic::is_empty(value),
                    _ => value.is_null(),
                };
                if function == "isnotempty" {
                    Expr::Not(Box::new(empty))
                } else {
                    empty
                }
            }
            "isnan" => real_test("isnan", one(scope, T::Real)?, f64::is_nan),
            "isinf" => real_test("isinf", one(scope, T::Real)?, f64::is_infinite),
            "isfinite" => real_test("isfinite", one(scope, T::Real)?, f64::is_finite),
            "not" => Expr::Not(Box::new(self.predicate(self.first(args, node)?, scope)?)),

            // ---- §6.6 dynamic
            "array_length" => dynamic::array_length(one(scope, T::Dynamic)?),
            "array_concat" => dynamic::array_concat(self.args_as(args, 0, T::Dynamic, scope)?),
            "array_reverse" => dynamic::array_reverse(one(scope, T::Dynamic)?),
            "array_sort_asc" => {
                dynamic::array_sort(false, self.args_as(args, 0, T::Dynamic, scope)?)
            }
            "array_sort_desc" => {
                dynamic::array_sort(true, self.args_as(args, 0, T::Dynamic, scope)?)
            }
            "array_slice" => {
                dynamic::array_slice(self.typed(args, &[T::Dynamic, T::Long, T::Long], scope)?)
            }
            "array_index_of" => {
                let array = self.arg_as(args, 0, T::Dynamic, scope)?;
                let value = self.arg_as(args, 1, T::Dynamic, scope)?;
                dynamic::array_index_of(array, value)
            }
            "array_sum" => dynamic::array_sum(one(scope, T::Dynamic)?),
            "set_union" => dynamic::set_op("union", self.args_as(args, 0, T::Dynamic, scope)?),
            "set_intersect" => {
                dynamic::set_op("intersect", self.args_as(args, 0, T::Dynamic, scope)?)
            }
            "set_difference" => {
                dynamic::set_op("difference", self.args_as(args, 0, T::Dynamic, scope)?)
            }
            "set_has_element" => {
                let array = self.arg_as(args, 0, T::Dynamic, scope)?;
                let value = self.arg_as(args, 1, T::Dynamic, scope)?;
                dynamic::set_has_element(array, value)
            }
            "pack_array" => dynamic::pack_array(self.args_as(args, 0, T::Dynamic, scope)?),
            "bag_pack" => {
                let mut values = Vec::with_capacity(args.len());
                for i in 0..args.len() {
                    let want = if i % 2 == 0 { T::String } else { T::Dynamic };
                    values.push(self.arg_as(args, i, want, scope)?);
                }
                dynamic::bag_pack(values)
            }
            "bag_keys" => dynamic::bag_keys(one(scope, T::Dynamic)?),
            "bag_has_key" => {
                let bag = self.arg_as(args, 0, T::Dynamic, scope)?;
                let key = self.arg_as(args, 1, T::String, scope)?;
                dynamic::bag_has_key(bag, key)
            }
            "bag_remove_keys" => {
                dynamic::bag_remove_keys(self.args_as(args, 0, T::Dynamic, scope)?)
            }
            "bag_merge" => dynamic::bag_merge(self.args_as(args, 0, T::Dynamic, scope)?),
            "zip" => dynamic::zip(self.args_as(args, 0, T::Dynamic, scope)?),
            "range" => {
                let kind = match arg_ty(0) {
                    T::Dynamic => T::Real,
                    other => other,
                };
                let mut values = Vec::new();
                for a in args {
                    let value = self.expr(a, scope)?;
                    values.push(match (kind, a.ty) {
                        (_, T::Dynamic) => dynamic::from_dynamic(value, T::Real),
                        (T::Real | T::Decimal, _) => cast(value, DataType::Float64),
                        _ => cast(value, DataType::Int64),
                    });
                }
                dynamic::range_array(values, kind)
            }

            // ---- §6.7 IP addresses
            "parse_ipv4" => net::parse_ipv4(one(scope, T::String)?),
            "parse_ipv4_mask" => {
                net::parse_ipv4_mask(self.typed(args, &[T::String, T::Long], scope)?)
            }
            "ipv4_is_private" => net::ipv4_is_private(one(scope, T::String)?),
            "ipv4_is_in_range" | "ipv4_is_in_any_range" => {
                net::ipv4_in_ranges(self.ranges_args(args, scope)?)
            }
            "ipv4_compare" => net::ipv4_compare(
                false,
                self.typed(args, &[T::String, T::String, T::Long], scope)?,
            ),
            "ipv4_is_match" => net::ipv4_compare(
                true,
                self.typed(args, &[T::String, T::String, T::Long], scope)?,
            ),
            "ipv6_compare" => net::ipv6_compare(
                false,
                self.typed(args, &[T::String, T::String, T::Long], scope)?,
            ),
            "ipv6_is_match" => net::ipv6_compare(
                true,
                self.typed(args, &[T::String, T::String, T::Long], scope)?,
            ),
            "has_ipv4" | "has_any_ipv4" => net::has_ipv4(false, self.ranges_args(args, scope)?),
            "has_ipv4_prefix" | "has_any_ipv4_prefix" => {
                net::has_ipv4(true, self.ranges_args(args, scope)?)
            }
            "format_ipv4" => net::format_ipv4(self.typed(args, &[T::String, T::Long], scope)?),

            // ---- §6.8 math
            "abs" => math::abs(one(scope, ty)?),
            "round" => self.round(args, ty, scope)?,
            "ceiling" => match ty {
                T::Real | T::Decimal => math::ceil(one(scope, ty)?),
                _ => one(scope, ty)?,
            },
            "sign" => cast(
                math::signum(cast(one(scope, ty)?, DataType::Float64)),
                arrow_type(ty),
            ),
            "log" => math::ln(one(scope, T::Real)?),
            "log2" => math::log2(one(scope, T::Real)?),
            "log10" => math::log10(one(scope, T::Real)?),
            "exp" => math::exp(one(scope, T::Real)?),
            "exp2" => math::power(lit(2.0f64), one(scope, T::Real)?),
            "exp10" => math::power(lit(10.0f64), one(scope, T::Real)?),
            "sqrt" => math::sqrt(one(scope, T::Real)?),
            "pow" => {
                let base = self.arg_as(args, 0, T::Real, scope)?;
                let exponent = self.arg_as(args, 1, T::Real, scope)?;
                math::power(base, exponent)
            }
            "pi" => lit(std::f64::consts::PI),
            "min_of" | "max_of" => {
                let values = self.args_as(args, 0, ty, scope)?;
                if function == "min_of" {
                    datafusion::functions::core::expr_fn::least(values)
                } else {
                    datafusion::functions::core::expr_fn::greatest(values)
                }
            }
            "rand" => match args.first() {
                None => math::random(),
                Some(_) => {
                    let n = one(scope, T::Real)?;
                    cast(
                        math::floor(binary_expr(math::random(), Operator::Multiply, n)),
                        DataType::Int64,
                    )
                }
            },
            "tohex" => self.tohex(args, scope)?,
            other => {
                return Err(self.error(
                    node.span,
                    format!("function '{other}' is not supported yet"),
                ));
            }
        })
    }

    /// The address, then every range/address argument as text (or dynamic arrays of them).
    fn ranges_args(
        &self,
        args: &[BoundExpr],
        scope: &mut Scope<'_>,
    ) -> Result<Vec<Expr>, PlanError> {
        let mut out = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            let value = self.expr(a, scope)?;
            out.push(if i > 0 && a.ty == T::Dynamic {
                value
            } else {
                self.as_text(value, a.ty)
            });
        }
        Ok(out)
    }

    fn to_number(
        &self,
        args: &[BoundExpr],
        ty: ScalarType,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let Some(arg) = args.first() else {
            return Err(PlanError::new(
                "internal planning error: conversion without argument",
            ));
        };
        let from = arg.ty;
        let value = self.expr(arg, scope)?;
        let target = arrow_type(ty);
        Ok(match from {
            T::String => convert::parse_text(value, ty),
            T::Dynamic => {
                convert::dynamic_number(value, if ty == T::Decimal { T::Real } else { ty })
            }
            T::Bool if ty == T::Bool => value,
            _ if ty == T::Bool => match from {
                T::Int | T::Long | T::Real | T::Decimal => value.not_eq(lit(0)),
                _ => lit(datafusion::common::ScalarValue::Boolean(None)),
            },
            T::Datetime => cast(convert::ticks_since_0001(value), target),
            T::Timespan => cast(
                binary_expr(value, Operator::Divide, lit(NANOS_PER_TICK)),
                target,
            ),
            T::Guid => lit(datafusion::common::ScalarValue::try_from(&target)?),
            // Reals truncate toward zero.
            T::Real | T::Decimal if ty.is_integer() => cast(math::trunc(vec![value]), target),
            _ => cast(value, target),
        })
    }

    fn bin(
        &self,
        args: &[BoundExpr],
        ty: ScalarType,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let value_ty = args.first().map_or(T::Dynamic, |a| a.ty);
        if value_ty == T::Dynamic {
            return Err(PlanError::new(
                "bin() of a dynamic value is not supported; convert it first (toreal, todatetime)",
            ));
        }
        let size_ty = args.get(1).map_or(T::Dynamic, |a| a.ty);
        let (size_want, size_is_real) = match value_ty {
            T::Datetime | T::Timespan => (T::Timespan, false),
            _ if matches!(size_ty, T::Real | T::Decimal)
                || matches!(value_ty, T::Real | T::Decimal) =>
            {
                (T::Real, true)
            }
            _ => (T::Long, false),
        };
        let mut lowered = vec![
            self.arg_as(args, 0, value_ty, scope)?,
            self.arg_as(args, 1, size_want, scope)?,
        ];
        if args.len() > 2 {
            lowered.push(self.arg_as(args, 2, value_ty, scope)?);
        }
        Ok(datetime::bin(ty, size_is_real, lowered))
    }

    fn round(
        &self,
        args: &[BoundExpr],
        ty: ScalarType,
        scope: &mut Scope<'_>,
    ) -> Result<Expr, PlanError> {
        let value = self.arg_as(args, 0, ty, scope)?;
        let digits = match args.get(1) {
            Some(_) => self.arg_as(args, 1, T::Long, scope)?,
            None => lit(0i64),
        };
        let name = format!("kql_round_{ty}");
        Ok(udf::call(
            name,
            arrow_type(ty),
            vec![value, digits],
            move |a, rows| {
                let x = udf::reals(udf::arg(a, 0, "round")?)?;
                let d = udf::longs(udf::arg(a, 1, "round")?)?;
                Ok(udf::real_result(rows, |r| {
                    let v = x.get(r)?;
                    let digits = d.get(r)?.clamp(-17, 17) as i32;
                    let scale = 10f64.powi(digits);
                    // Midpoints round away from zero.
                    Some((v * scale).round() / scale)
                }))
            },
        ))
    }

    fn tohex(&self, args: &[BoundExpr], scope: &mut Scope<'_>) -> Result<Expr, PlanError> {
        let lowered = self.typed(args, &[T::Long, T::Long], scope)?;
        Ok(udf::call(
            "kql_tohex",
            DataType::Utf8,
            lowered,
            |a, rows| {
                let n = udf::longs(udf::arg(a, 0, "tohex")?)?;
                let width = a.get(1).map(udf::longs).transpose()?;
                Ok(udf::string_result(rows, |r| {
                    let v = n.get(r)?;
                    let text = format!("{v:x}");
                    let w = match &width {
                        Some(w) => w.get(r).unwrap_or(0).clamp(0, 64) as usize,
                        None => 0,
                    };
                    Some(format!("{text:0>w$}"))
                }))
            },
        ))
    }
}

/// `strcat` / `strcat_delim` over string forms.
fn strcat(parts: Vec<Expr>, delimiter: Option<Expr>) -> Expr {
    let with_delimiter = delimiter.is_some();
    let mut args = Vec::with_capacity(parts.len() + 1);
    if let Some(d) = delimiter {
        args.push(d);
    }
    args.extend(parts);
    let name = format!("kql_strcat_{with_delimiter}");
    udf::call(name, DataType::Utf8, args, move |a, rows| {
        let inputs: Vec<udf::Strs> = a
            .iter()
            .map(udf::strs)
            .collect::<datafusion::common::Result<_>>()?;
        Ok(udf::string_result(rows, |r| {
            let (delimiter, values) = if with_delimiter {
                (
                    inputs.first().map_or("", |d| d.text(r)),
                    &inputs[1.min(inputs.len())..],
                )
            } else {
                ("", &inputs[..])
            };
            Some(
                values
                    .iter()
                    .map(|v| v.text(r))
                    .collect::<Vec<_>>()
                    .join(delimiter),
            )
        }))
    })
}

fn real_test(name: &str, value: Expr, test: fn(f64) -> bool) -> Expr {
    udf::call(
        format!("kql_{name}"),
        DataType::Boolean,
        vec![value],
        move |a, rows| {
            let x = udf::reals(udf::arg(a, 0, "real test")?)?;
            Ok(udf::bool_result(rows, |r| x.get(r).map(test)))
        },
    )
}
