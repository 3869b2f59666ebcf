//! Client secrets: generated once, shown once, stored only as an argon2id hash.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use rand::RngCore;

/// A new client secret: 30 random bytes, URL-safe base64 (40 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 30];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The argon2id PHC string of a secret.
pub fn hash(secret: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(Argon2::default()
        .hash_password(secret.as_bytes(), &salt)?
        .to_string())
}

/// Whether `secret` matches the stored hash (false for a malformed hash).
pub fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash that no secret matches, verified against when the client id is unknown so that an
/// unknown client and a wrong secret take the same time to refuse.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&generate()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_and_verify() {
        let s = super::generate();
        assert_eq!(s.len(), 40);
        let h = super::hash(&s).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify(&s, &h));
        assert!(!super::verify("wrong", &h));
        assert!(!super::verify(&s, "not a hash"));
    }
}
