//! Incidents and automated investigations.

use crate::SqlStore;
use async_trait::async_trait;

#[async_trait]
pub trait IncidentStore: Send + Sync {}

#[async_trait]
impl IncidentStore for SqlStore {}
