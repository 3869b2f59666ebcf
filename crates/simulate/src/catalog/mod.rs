//! Static knowledge the simulator draws from: binaries with their version resources, internet
//! endpoints, and word lists. Nothing here depends on the seed.

pub mod images;
pub mod names;
pub mod net;

pub use images::{ImageInfo, Img, info};
