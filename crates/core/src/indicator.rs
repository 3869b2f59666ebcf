//! Indicators of compromise (written by the indicators work item).
