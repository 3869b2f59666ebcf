//! Route handlers, one module per resource.

pub mod alerts;
pub mod audit;
pub mod docs;
pub mod oauth;
pub mod ops;
