//! Kusto functions DataFusion has no equivalent for, as scalar UDFs.
//!
//! One generic UDF type ([`KqlFunction`]) wraps a kernel closure: the planner creates one
//! per call site, so a kernel can capture what the call's constant arguments decide (a
//! compiled regex, the target type of a conversion). Its name spells out everything the
//! closure captured, because DataFusion compares and deduplicates function calls by the
//! UDF's equality, which here is the name.
//!
//! Kernels read arguments through small accessors ([`Strs`], [`Longs`], ...) that treat
//! a scalar argument as a column of one repeated value, so a constant needle is not
//! copied into every row.
//!
//! Module map: `strings` (term matching, string functions, regexes, encodings, hashes),
//! `dynamic` (JSON paths, arrays, bags, conversions to and from dynamic), `datetime`
//! (bins, calendar parts, formatting), `convert` (`tostring`, `tolong`, ...), `net`
//! (IPv4/IPv6, URLs, paths, command lines).

pub(crate) mod convert;
pub(crate) mod datetime;
pub(crate) mod dynamic;
pub(crate) mod net;
pub(crate) mod strings;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::types::UTC;

pub(crate) type Kernel = dyn Fn(&[ColumnarValue], usize) -> DFResult<ArrayRef> + Send + Sync;

/// A Kusto function implemented by a kernel closure.
pub(crate) struct KqlFunction {
    name: String,
    signature: Signature,
    ret: DataType,
    kernel: Arc<Kernel>,
}

impl fmt::Debug for KqlFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KqlFunction({})", self.name)
    }
}

impl PartialEq for KqlFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.ret == other.ret
            && self.signature.volatility == other.signature.volatility
    }
}

impl Eq for KqlFunction {}

impl Hash for KqlFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.ret.hash(state);
    }
}

impl ScalarUDFImpl for KqlFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(self.ret.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let all_scalar = !args.args.is_empty()
            && args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let mut out = (self.kernel)(&args.args, rows)?;
        if out.data_type() != &self.ret {
            out = cast(&out, &self.ret)?;
        }
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

fn make(
    name: String,
    ret: DataType,
    args: Vec<Expr>,
    volatility: Volatility,
    kernel: Arc<Kernel>,
) -> Expr {
    let signature = if args.is_empty() {
        Signature::nullary(volatility)
    } else {
        Signature::variadic_any(volatility)
    };
    let udf = ScalarUDF::new_from_impl(KqlFunction {
        name,
        signature,
        ret,
        kernel,
    });
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(udf), args))
}

/// A call of a deterministic kernel. `name` must identify everything the kernel captured.
pub(crate) fn call(
    name: impl Into<String>,
    ret: DataType,
    args: Vec<Expr>,
    kernel: impl Fn(&[ColumnarValue], usize) -> DFResult<ArrayRef> + Send + Sync + 'static,
) -> Expr {
    make(
        name.into(),
        ret,
        args,
        Volatility::Immutable,
        Arc::new(kernel),
    )
}

// ---- argument accessors -----------------------------------------------------------

fn to_array(value: &ColumnarValue) -> DFResult<(ArrayRef, bool)> {
    Ok(match value {
        ColumnarValue::Array(array) => (array.clone(), false),
        ColumnarValue::Scalar(scalar) => (scalar.to_array_of_size(1)?, true),
    })
}

/// A string argument (any Arrow string flavour).
pub(crate) struct Strs {
    array: StringArray,
    scalar: bool,
}

impl Strs {
    pub fn get(&self, row: usize) -> Option<&str> {
        let i = if self.scalar { 0 } else { row };
        if i >= self.array.len() || self.array.is_null(i) {
            None
        } else {
            Some(self.array.value(i))
        }
    }

    /// KQL strings have no null: a missing one reads as `""`.
    pub fn text(&self, row: usize) -> &str {
        self.get(row).unwrap_or("")
    }

    /// The value when the argument is a constant.
    pub fn constant(&self) -> Option<Option<&str>> {
        self.scalar.then(|| self.get(0))
    }
}

pub(crate) fn strs(value: &ColumnarValue) -> DFResult<Strs> {
    let (array, scalar) = to_array(value)?;
    let array = if array.data_type() == &DataType::Utf8 {
        array
    } else {
        cast(&array, &DataType::Utf8)?
    };
    Ok(Strs {
        array: array.as_string::<i32>().clone(),
        scalar,
    })
}

/// An integer argument (ints, longs, timespans and datetimes as `i64`).
pub(crate) struct Longs {
    array: Int64Array,
    scalar: bool,
}

impl Longs {
    pub fn get(&self, row: usize) -> Option<i64> {
        let i = if self.scalar { 0 } else { row };
        if i >= self.array.len() || self.array.is_null(i) {
            None
        } else {
            Some(self.array.value(i))
        }
    }
}

pub(crate) fn longs(value: &ColumnarValue) -> DFResult<Longs> {
    let (array, scalar) = to_array(value)?;
    // Datetimes read as their nanoseconds (the cast reinterprets Timestamp(ns)).
    let array = match array.data_type() {
        DataType::Int64 => array,
        _ => cast(&array, &DataType::Int64)?,
    };
    Ok(Longs {
        array: array.as_primitive::<Int64Type>().clone(),
        scalar,
    })
}

/// A real argument (any number, widened).
pub(crate) struct Reals {
    array: Float64Array,
    scalar: bool,
}

impl Reals {
    pub fn get(&self, row: usize) -> Option<f64> {
        let i = if self.scalar { 0 } else { row };
        if i >= self.array.len() || self.array.is_null(i) {
            None
        } else {
            Some(self.array.value(i))
        }
    }
}

pub(crate) fn reals(value: &ColumnarValue) -> DFResult<Reals> {
    let (array, scalar) = to_array(value)?;
    let array = if array.data_type() == &DataType::Float64 {
        array
    } else {
        cast(&array, &DataType::Float64)?
    };
    Ok(Reals {
        array: array.as_primitive::<Float64Type>().clone(),
        scalar,
    })
}

/// Any argument as an array plus whether it is a constant.
pub(crate) struct Cells {
    pub array: ArrayRef,
    scalar: bool,
}

impl Cells {
    pub fn row(&self, row: usize) -> usize {
        if self.scalar { 0 } else { row }
    }

    pub fn scalar(&self, row: usize) -> DFResult<ScalarValue> {
        ScalarValue::try_from_array(&self.array, self.row(row))
    }
}

pub(crate) fn cells(value: &ColumnarValue) -> DFResult<Cells> {
    let (array, scalar) = to_array(value)?;
    Ok(Cells { array, scalar })
}

/// The argument at `index`, or an internal error naming the function.
pub(crate) fn arg<'a>(
    args: &'a [ColumnarValue],
    index: usize,
    name: &str,
) -> DFResult<&'a ColumnarValue> {
    args.get(index).ok_or_else(|| {
        datafusion::common::DataFusionError::Internal(format!(
            "{name}: missing argument {}",
            index + 1
        ))
    })
}

// ---- result builders ----------------------------------------------------------------

pub(crate) fn string_result(rows: usize, f: impl FnMut(usize) -> Option<String>) -> ArrayRef {
    Arc::new((0..rows).map(f).collect::<StringArray>())
}

pub(crate) fn long_result(rows: usize, f: impl FnMut(usize) -> Option<i64>) -> ArrayRef {
    Arc::new((0..rows).map(f).collect::<Int64Array>())
}

pub(crate) fn int_result(rows: usize, f: impl FnMut(usize) -> Option<i32>) -> ArrayRef {
    Arc::new((0..rows).map(f).collect::<Int32Array>())
}

pub(crate) fn real_result(rows: usize, f: impl FnMut(usize) -> Option<f64>) -> ArrayRef {
    Arc::new((0..rows).map(f).collect::<Float64Array>())
}

pub(crate) fn bool_result(rows: usize, f: impl FnMut(usize) -> Option<bool>) -> ArrayRef {
    Arc::new((0..rows).map(f).collect::<BooleanArray>())
}

pub(crate) fn timestamp_result(rows: usize, f: impl FnMut(usize) -> Option<i64>) -> ArrayRef {
    Arc::new(
        (0..rows)
            .map(f)
            .collect::<TimestampNanosecondArray>()
            .with_timezone(UTC),
    )
}
