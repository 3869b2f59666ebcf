//! Device credentials: the secrets enrollment hands out, and the authenticator of the agent
//! routes (`Authorization: Device <device id>:<secret>`).
//!
//! Enrollment token secrets and device secrets are 30 random bytes (240 bits) each. Against a
//! secret that cannot be guessed, a slow password hash (argon2, as app secrets use) adds no
//! protection, only cost; SHA-256 is right here, and it keeps authenticating every batch an
//! agent sends cheap. It also lets the store find a token by the hash of what is presented.

use crate::error::ApiError;
use crate::state::AppState;
use axum::http::HeaderMap;
use rampart_core::{ErrorCode, TenantId};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A new secret: `prefix` and 30 random bytes in URL-safe base64 (40 characters).
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}", super::secret::generate())
}

/// A new device id: 20 random bytes as 40 lower-case hex digits, the shape of an MDE machine id.
pub fn new_device_id() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// `bytes` as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The SHA-256 of a secret, in lower-case hex: what the store keeps and looks secrets up by.
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Whether `a` and `b` are equal, in a time that depends only on their lengths, so that a
/// wrong secret's hash does not reveal how much of the right one it matches.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// An authenticated agent: the device and the tenant it was enrolled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCaller {
    pub tenant: TenantId,
    pub device_id: String,
}

/// How long a verified credential is trusted without asking the store again; it bounds how
/// long a credential removed from the store keeps working on a server that cached it.
const CACHE_TTL: Duration = Duration::from_secs(300);

/// Devices the cache holds at most; beyond that it starts over (a miss only costs a lookup).
const CACHE_CAPACITY: usize = 100_000;

struct CachedCredential {
    tenant: TenantId,
    secret_hash: String,
    verified_at: Instant,
}

/// Credentials verified recently, by device id, so that a busy agent is not looked up in the
/// store for every batch. Only hashes are kept, never secrets.
#[derive(Default)]
pub struct DeviceCache {
    entries: Mutex<HashMap<String, CachedCredential>>,
}

impl DeviceCache {
    /// The tenant of `device_id`, if a credential with `secret_hash` was verified within the TTL.
    fn get(&self, device_id: &str, secret_hash: &str, now: Instant) -> Option<TenantId> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(device_id)
            .filter(|c| now.duration_since(c.verified_at) < CACHE_TTL)
            .filter(|c| constant_time_eq(&c.secret_hash, secret_hash))
            .map(|c| c.tenant)
    }

    fn put(&self, device_id: &str, tenant: TenantId, secret_hash: &str, now: Instant) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_CAPACITY && !map.contains_key(device_id) {
            map.clear();
        }
        map.insert(
            device_id.to_owned(),
            CachedCredential {
                tenant,
                secret_hash: secret_hash.to_owned(),
                verified_at: now,
            },
        );
    }

    /// Forgets a device, e.g. after its credential was removed.
    pub fn remove(&self, device_id: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(device_id);
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// The device id (lower-cased) and secret of an `Authorization: Device <id>:<secret>` header.
fn device_credentials(headers: &HeaderMap) -> Result<(String, &str), ApiError> {
    const USAGE: &str = "Authorization: Device <device id>:<device secret> is required.";
    let value = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| unauthorized(USAGE))?;
    let (scheme, rest) = value.split_once(' ').ok_or_else(|| unauthorized(USAGE))?;
    if !scheme.eq_ignore_ascii_case("device") {
        return Err(unauthorized(USAGE));
    }
    let (id, secret) = rest
        .trim()
        .split_once(':')
        .ok_or_else(|| unauthorized(USAGE))?;
    if !rampart_core::machine::is_machine_id(id) || secret.is_empty() {
        return Err(unauthorized(USAGE));
    }
    Ok((id.to_ascii_lowercase(), secret))
}

/// Authenticates an agent by its device credentials, from the cache when it was verified
/// recently and from the store otherwise. Any failure is a 401 that does not say whether the
/// device or the secret was wrong.
pub async fn authenticate_device(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<DeviceCaller, ApiError> {
    let (device_id, secret) = device_credentials(headers)?;
    let presented = secret_hash(secret);
    let now = Instant::now();
    if let Some(tenant) = state.devices.get(&device_id, &presented, now) {
        return Ok(DeviceCaller { tenant, device_id });
    }
    // A miss, an expired entry, or a secret that differs from the cached one: the store decides
    // (a wrong secret costs one indexed lookup, as an unknown device does).
    let stored = state.store.device_credential(&device_id).await?;
    match stored {
        Some((tenant, stored_hash)) if constant_time_eq(&stored_hash, &presented) => {
            state.devices.put(&device_id, tenant, &stored_hash, now);
            Ok(DeviceCaller { tenant, device_id })
        }
        _ => Err(unauthorized("The device credentials are not valid.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_ids_have_their_shapes() {
        let s = new_secret("rpd_");
        assert_eq!(s.len(), 44);
        assert!(s.starts_with("rpd_"));
        assert!(
            s[4..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(new_secret("rpd_"), s);
        let id = new_device_id();
        assert!(rampart_core::machine::is_machine_id(&id));
        assert_eq!(id, id.to_ascii_lowercase());
        assert_ne!(new_device_id(), id);
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }

    #[test]
    fn the_header_is_parsed_strictly() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", v.parse().unwrap());
            h
        };
        let id = "AB".repeat(20);
        let headers = with(&format!("Device {id}:rpd_x"));
        let (got, secret) = device_credentials(&headers).unwrap();
        assert_eq!(got, id.to_ascii_lowercase());
        assert_eq!(secret, "rpd_x");
        assert!(device_credentials(&with(&format!("device {id}:s"))).is_ok());
        for bad in [
            format!("Bearer {id}:s"),
            format!("Device {id}"),
            format!("Device {id}:"),
            "Device short:s".to_owned(),
            "Device".to_owned(),
        ] {
            let e = device_credentials(&with(&bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Unauthorized, "{bad}");
        }
        assert!(device_credentials(&HeaderMap::new()).is_err());
    }

    #[test]
    fn the_cache_answers_only_the_verified_secret_within_its_ttl() {
        let cache = DeviceCache::default();
        let tenant = TenantId::new_random();
        let t0 = Instant::now();
        cache.put("d", tenant, "h1", t0);
        assert_eq!(cache.get("d", "h1", t0), Some(tenant));
        assert_eq!(cache.get("d", "h2", t0), None);
        assert_eq!(cache.get("e", "h1", t0), None);
        assert_eq!(cache.get("d", "h1", t0 + CACHE_TTL), None);
        cache.remove("d");
        assert_eq!(cache.get("d", "h1", t0), None);
    }
}
