//! `column IN set` as one function call, for the prefilter of a retro-hunt of many indicators.
//!
//! An import of a threat-intel feed hunts for thousands of indicators at once. As an `IN` list,
//! every hunted value is a literal expression that DataFusion's optimizer clones and hashes on
//! each of its passes, per hash column: planning one hunt of 10,000 hashes kept a core busy for
//! seconds and starved the import itself (`docs/BENCHMARKS.md`, "Indicator import"). Here the
//! values sit in one shared set that the plan carries by reference, so planning costs the same
//! for any number of them; evaluating is one hash probe per row. Parquet's filter pushdown
//! evaluates it while decoding, as it would the `IN` list.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArrayType};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DFResult, ScalarValue, exec_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a string argument is one of a set of values.
#[derive(Debug)]
pub(super) struct ValueSet {
    /// Unique per set, so that two sets never pass for one expression.
    name: String,
    values: Arc<HashSet<String>>,
    /// The values are lower case, and so is what is compared with them (hashes, whose case
    /// differs between agents).
    fold_case: bool,
    signature: Signature,
}

impl ValueSet {
    /// `arg` is one of `values` (lower-cased first when `fold_case`, in which case `values`
    /// must be lower case); a null is in no set.
    pub(super) fn contains(arg: Expr, values: Arc<HashSet<String>>, fold_case: bool) -> Expr {
        static SETS: AtomicU64 = AtomicU64::new(0);
        let udf = ValueSet {
            name: format!("rampart_value_set_{}", SETS.fetch_add(1, Ordering::Relaxed)),
            values,
            fold_case,
            signature: Signature::any(1, Volatility::Immutable),
        };
        Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(ScalarUDF::new_from_impl(udf)),
            vec![arg],
        ))
    }

    fn has(&self, s: &str) -> bool {
        if self.fold_case && s.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.values.contains(&s.to_ascii_lowercase());
        }
        self.values.contains(s)
    }

    fn probe<'a, A: StringArrayType<'a>>(&self, strings: A) -> BooleanArray {
        strings
            .iter()
            .map(|v| Some(v.is_some_and(|s| self.has(s))))
            .collect()
    }
}

impl PartialEq for ValueSet {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for ValueSet {}

impl Hash for ValueSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for ValueSet {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{} takes one argument", self.name);
        };
        match arg {
            ColumnarValue::Scalar(s) => {
                let found = match s {
                    ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => {
                        v.as_deref().is_some_and(|s| self.has(s))
                    }
                    ScalarValue::Null => false,
                    other => return exec_err!("{} takes a string, not {other:?}", self.name),
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(found))))
            }
            ColumnarValue::Array(a) => {
                let out: BooleanArray = match a.data_type() {
                    DataType::Utf8 => self.probe(a.as_string::<i32>()),
                    DataType::LargeUtf8 => self.probe(a.as_string::<i64>()),
                    DataType::Utf8View => self.probe(a.as_string_view()),
                    DataType::Null => BooleanArray::from(vec![false; a.len()]),
                    other => return exec_err!("{} takes a string, not {other}", self.name),
                };
                Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
            }
        }
    }
}
