//! Authentication: app secrets, token-signing keys, access tokens, the caller extractor, and
//! device credentials of enrolled agents.

pub mod caller;
pub mod device;
pub mod keys;
pub mod secret;
pub mod token;

pub use caller::Caller;
pub use keys::KeyRing;
