//! Device* telemetry: the Arrow form of the advanced-hunting schema, row conversion, bulk import
//! formats, and the durable event store.
//!
//! Map of the crate:
//! - [`arrow_schema`]: `rampart_core::schema` tables as Arrow schemas.
//! - [`rows`]: rows (JSON, CSV text, typed cells) into `RecordBatch`es, with per-row rejections.
//! - [`formats`]: NDJSON rows, MDE streaming-API records and CSV exports, read as a stream.
//! - [`store`]: the event store — write-ahead log, hot tail, Parquet files through `object_store`,
//!   compaction, retention — and its DataFusion catalog.
//! - [`wire`]: the binary agent batch (Arrow IPC streams, one per table) and its checks.

pub mod arrow_schema;
pub mod formats;
pub mod rows;
pub mod store;
pub mod wire;

pub use arrow_schema::arrow_schema;
pub use rows::{Cell, RowRejection, TableBatchBuilder};
pub use store::{Appended, EventStore, EventStoreConfig, StoreError};
