//! Indicators of compromise.

use crate::SqlStore;
use async_trait::async_trait;

#[async_trait]
pub trait IndicatorStore: Send + Sync {}

#[async_trait]
impl IndicatorStore for SqlStore {}
