//! Machines (devices) and device groups.

use crate::SqlStore;
use async_trait::async_trait;

#[async_trait]
pub trait MachineStore: Send + Sync {}

#[async_trait]
impl MachineStore for SqlStore {}
