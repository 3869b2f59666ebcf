//! Authentication: app secrets, token-signing keys, access tokens, and the caller extractor.

pub mod caller;
pub mod keys;
pub mod secret;
pub mod token;

pub use caller::Caller;
pub use keys::KeyRing;
