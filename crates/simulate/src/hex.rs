//! Lowercase hex text of pseudo-random digests: hashes (SHA1 40, SHA256 64, MD5 32 characters)
//! and ids, derived from a 64-bit key so that the same key always gives the same text.

use crate::rng::Rng;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` pseudo-random bytes derived from `key` as lowercase hex.
pub fn push_digest(out: &mut String, key: u64, bytes: usize) {
    let mut r = Rng::new(key);
    let mut left = bytes;
    while left > 0 {
        let v = r.next_u64().to_le_bytes();
        for &b in v.iter().take(left.min(8)) {
            out.push(DIGITS[usize::from(b >> 4)] as char);
            out.push(DIGITS[usize::from(b & 15)] as char);
        }
        left = left.saturating_sub(8);
    }
}

pub fn digest(key: u64, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes * 2);
    push_digest(&mut s, key, bytes);
    s
}

/// A GUID-shaped id (`8-4-4-4-12` lowercase hex, version 4 bits set) derived from `key`.
pub fn guid(key: u64) -> String {
    let h = digest(key, 16);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][(key & 3) as usize],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes() {
        let g = super::guid(5);
        assert_eq!(g.len(), 36);
        assert_eq!(g.as_bytes()[14], b'4');
        assert_eq!(super::digest(1, 20).len(), 40);
        assert_eq!(super::digest(1, 20), super::digest(1, 20));
    }
}
