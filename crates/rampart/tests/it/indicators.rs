//! Indicators over HTTP (written by the indicators work item).
