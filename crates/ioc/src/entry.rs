//! What the matcher keeps of one indicator.

use rampart_core::alert::Severity;
use rampart_core::indicator::{Indicator, IndicatorAction, IndicatorType};
use std::sync::Arc;
use time::OffsetDateTime;

/// The facts of an indicator that matching and alerting need. Its value is the key of the
/// table that holds it, so it is not repeated here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The indicator's id (MDE ids are numbers).
    pub id: u64,
    pub kind: IndicatorType,
    pub action: IndicatorAction,
    pub severity: Severity,
    pub generate_alert: bool,
    /// Unix seconds from which the indicator no longer applies; `i64::MAX` when it never
    /// expires. An indicator applies while `now < expires_at`, to the second.
    pub expires_at: i64,
    /// The device groups it is limited to; `None` for every device.
    pub scope: Option<Arc<GroupScope>>,
}

/// The device groups an indicator applies to, by id or by name (submissions may name either).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupScope {
    pub ids: Box<[Box<str>]>,
    pub names: Box<[Box<str>]>,
}

/// An indicator the matcher cannot hold (the store validated it, so this means a stored value
/// that no longer parses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("indicator {id}: {message}")]
pub struct EntryError {
    pub id: String,
    pub message: String,
}

impl Entry {
    /// The entry of `indicator`.
    pub fn of(indicator: &Indicator) -> Result<Entry, EntryError> {
        let id = indicator.id.parse::<u64>().map_err(|_| EntryError {
            id: indicator.id.clone(),
            message: "the id is not a number".into(),
        })?;
        let scope = (!indicator.rbac_group_ids.is_empty()
            || !indicator.rbac_group_names.is_empty())
        .then(|| {
            Arc::new(GroupScope {
                ids: indicator
                    .rbac_group_ids
                    .iter()
                    .map(|s| s.as_str().into())
                    .collect(),
                names: indicator
                    .rbac_group_names
                    .iter()
                    .map(|s| s.as_str().into())
                    .collect(),
            })
        });
        Ok(Entry {
            id,
            kind: indicator.indicator_type,
            action: indicator.action,
            severity: indicator.severity,
            generate_alert: indicator.generate_alert,
            expires_at: indicator
                .expiration_time
                .map_or(i64::MAX, OffsetDateTime::unix_timestamp),
            scope,
        })
    }

    /// Whether the indicator is in force at `now` (Unix seconds).
    pub fn active_at(&self, now: i64) -> bool {
        now < self.expires_at
    }

    /// Whether the indicator applies to a device of the given group.
    pub fn applies_to(&self, group_id: Option<&str>, group_name: Option<&str>) -> bool {
        match &self.scope {
            None => true,
            Some(scope) => {
                group_id.is_some_and(|g| scope.ids.iter().any(|i| &**i == g))
                    || group_name
                        .is_some_and(|g| scope.names.iter().any(|n| n.eq_ignore_ascii_case(g)))
            }
        }
    }

    /// Whether the indicator is limited to device groups.
    pub fn scoped(&self) -> bool {
        self.scope.is_some()
    }
}
