//! Machine actions: the queue of response actions and their status machine.

use crate::SqlStore;
use async_trait::async_trait;

#[async_trait]
pub trait ActionStore: Send + Sync {}

#[async_trait]
impl ActionStore for SqlStore {}
