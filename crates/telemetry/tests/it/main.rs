//! Event store tests: real files in a temp dir, queried through DataFusion.

mod inventory;
mod store;
