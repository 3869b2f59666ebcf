//! The hot tail's batches and what lets a query skip them.
//!
//! Every query reads the whole hot tail unless it can tell a batch holds nothing it wants, and
//! most queries are about one device and a time window: an automated investigation asks a dozen
//! of them per alert, an analyst hunting on a device asks the same. An agent's batch carries
//! only its own device's rows, so each hot batch keeps the one `DeviceId` of its rows (when
//! there is one) and the span of its `Timestamp`s, both found once when it is stored. A query
//! whose filters name devices or bound the time then reads a few batches instead of all of them.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::TimestampNanosecondType;
use rampart_core::schema::{self, Table};
use std::collections::HashSet;
use std::sync::Arc;

/// What a query's filters require of a row: `Timestamp` within `lo..=hi` (nanoseconds), and,
/// when `devices` is given, a `DeviceId` among them.
#[derive(Debug)]
pub(crate) struct HotFilter {
    pub lo: i64,
    pub hi: i64,
    pub devices: Option<HashSet<String>>,
}

/// What a batch's rows span, found when it is stored.
#[derive(Clone, Debug)]
pub(super) struct Bounds {
    /// The earliest and latest `Timestamp`; `None` when no row has one.
    span: Option<(i64, i64)>,
    /// The `DeviceId` of every row, when all rows have the same one.
    device: Option<Arc<str>>,
}

impl Bounds {
    pub fn of(batch: &RecordBatch) -> Bounds {
        let span = batch
            .column_by_name(schema::TIMESTAMP)
            .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
            .and_then(|ts| Some((compute::min(ts)?, compute::max(ts)?)));
        let device = batch
            .column_by_name(schema::DEVICE_ID)
            .and_then(|c| c.as_string_opt::<i32>())
            .filter(|ids| !ids.is_empty() && ids.null_count() == 0)
            .and_then(|ids| {
                let first = ids.value(0);
                ids.iter().all(|id| id == Some(first)).then(|| first.into())
            });
        Bounds { span, device }
    }
}

#[derive(Clone)]
pub(super) struct HotBatch {
    pub segment: u64,
    pub tenant: Arc<str>,
    pub table: &'static Table,
    pub batch: RecordBatch,
    pub bounds: Bounds,
}

impl HotBatch {
    /// Whether the batch may hold a row that `f` lets through.
    pub fn may_match(&self, f: &HotFilter) -> bool {
        let in_time = match self.bounds.span {
            Some((first, last)) => last >= f.lo && first <= f.hi,
            // No row has a time: only a query that bounds no time can want its rows.
            None => f.lo == i64::MIN && f.hi == i64::MAX,
        };
        let of_device = match (&f.devices, &self.bounds.device) {
            (Some(wanted), Some(device)) => wanted.contains(&**device),
            _ => true,
        };
        in_time && of_device
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{StringArray, TimestampNanosecondArray};

    /// A batch of just the two columns bounds are found from.
    fn batch(rows: &[(Option<&str>, Option<i64>)]) -> RecordBatch {
        let devices: StringArray = rows.iter().map(|r| r.0).collect();
        let times: TimestampNanosecondArray = rows.iter().map(|r| r.1).collect();
        RecordBatch::try_from_iter([
            (schema::DEVICE_ID, Arc::new(devices) as _),
            (schema::TIMESTAMP, Arc::new(times.with_timezone("UTC")) as _),
        ])
        .unwrap()
    }

    fn hot(rows: &[(Option<&str>, Option<i64>)]) -> HotBatch {
        let batch = batch(rows);
        HotBatch {
            segment: 1,
            tenant: "t".into(),
            table: schema::table("DeviceProcessEvents").unwrap(),
            bounds: Bounds::of(&batch),
            batch,
        }
    }

    fn filter(lo: i64, hi: i64, devices: &[&str]) -> HotFilter {
        HotFilter {
            lo,
            hi,
            devices: (!devices.is_empty()).then(|| devices.iter().map(|d| d.to_string()).collect()),
        }
    }

    const T0: i64 = 1_790_000_000_000_000_000;
    const S: i64 = 1_000_000_000;
    const T1: i64 = T0;
    const T2: i64 = T0 + 10 * S;

    #[test]
    fn one_device_batches_are_skipped_for_other_devices() {
        let h = hot(&[(Some("a"), Some(T1)), (Some("a"), Some(T2))]);
        assert!(h.may_match(&filter(i64::MIN, i64::MAX, &["a"])));
        assert!(h.may_match(&filter(i64::MIN, i64::MAX, &["b", "a"])));
        assert!(!h.may_match(&filter(i64::MIN, i64::MAX, &["b"])));
        assert!(
            !h.may_match(&filter(i64::MIN, i64::MAX, &["A"])),
            "DeviceId == is exact"
        );
    }

    #[test]
    fn batches_of_several_devices_or_none_are_never_skipped_by_device() {
        let mixed = hot(&[(Some("a"), Some(T1)), (Some("b"), Some(T2))]);
        let missing = hot(&[(Some("a"), Some(T1)), (None, Some(T2))]);
        for h in [mixed, missing] {
            assert!(h.may_match(&filter(i64::MIN, i64::MAX, &["a"])));
            assert!(h.may_match(&filter(i64::MIN, i64::MAX, &["b"])));
        }
    }

    #[test]
    fn time_bounds_skip_batches_wholly_outside_them() {
        let h = hot(&[(Some("a"), Some(T1)), (Some("a"), Some(T2))]);
        assert!(h.may_match(&filter(T0, T0, &[])), "the first row's instant");
        assert!(
            h.may_match(&filter(T0 + 10 * S, i64::MAX, &[])),
            "the last row's"
        );
        assert!(
            h.may_match(&filter(T0 + 5 * S, T0 + 6 * S, &[])),
            "between two rows"
        );
        assert!(!h.may_match(&filter(T0 + 10 * S + 1, i64::MAX, &[])));
        assert!(!h.may_match(&filter(i64::MIN, T0 - 1, &[])));
    }

    #[test]
    fn rows_without_a_time_are_kept_only_for_unbounded_queries() {
        let h = hot(&[(Some("a"), None)]);
        assert!(h.may_match(&filter(i64::MIN, i64::MAX, &[])));
        assert!(!h.may_match(&filter(T0, i64::MAX, &[])));
    }
}
