//! Token-signing keys: one or more ES256 keys per tenant, persisted in the store, cached here.
//!
//! A token names its key (`kid`), and a key belongs to exactly one tenant, so a token is only
//! accepted for the tenant whose key signed it — a tenant's key can never mint another's tokens.
//! The newest key of a tenant signs; older ones keep verifying until they are removed, which is
//! what makes rotation safe for tokens already handed out.

use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_store::{SigningKey, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

struct Verifier {
    tenant: TenantId,
    key: Arc<DecodingKey>,
}

struct Signer {
    kid: String,
    key: Arc<EncodingKey>,
}

#[derive(Default)]
struct Keys {
    verifiers: HashMap<String, Verifier>,
    signers: HashMap<TenantId, Signer>,
    published: HashMap<TenantId, Vec<serde_json::Value>>,
}

/// The in-memory view of every tenant's signing keys.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: Arc<RwLock<Keys>>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
    #[error("stored signing key {kid} is unusable: {reason}")]
    Unusable { kid: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KeyRing {
    /// Loads every stored key.
    pub async fn load(store: &dyn Store) -> Result<KeyRing, KeyError> {
        let ring = KeyRing::default();
        ring.reload(store).await?;
        Ok(ring)
    }

    /// Re-reads the stored keys (another server may have rotated).
    pub async fn reload(&self, store: &dyn Store) -> Result<(), KeyError> {
        let mut fresh = Keys::default();
        for k in store.signing_keys().await? {
            add(&mut fresh, &k)?;
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// The key that signs new tokens of `tenant`, creating the tenant's first key if needed.
    ///
    /// Re-reads the stored keys first: issuing a token is rare next to verifying one, and this is
    /// how a key rotated by `rampart keys rotate` or by another server starts signing here.
    pub async fn signer(
        &self,
        store: &dyn Store,
        tenant: TenantId,
    ) -> Result<(String, Arc<EncodingKey>), KeyError> {
        self.reload(store).await?;
        if !self.read().signers.contains_key(&tenant) {
            self.rotate(store, &AuditContext::system("token-service"), tenant)
                .await?;
        }
        let keys = self.read();
        let s = keys
            .signers
            .get(&tenant)
            .ok_or_else(|| KeyError::Generate("key vanished after creation".into()))?;
        Ok((s.kid.clone(), s.key.clone()))
    }

    /// The verifying key `kid` and its tenant.
    pub fn verifier(&self, kid: &str) -> Option<(TenantId, Arc<DecodingKey>)> {
        self.read()
            .verifiers
            .get(kid)
            .map(|v| (v.tenant, v.key.clone()))
    }

    /// The JWKs a tenant publishes.
    pub fn published(&self, tenant: TenantId) -> Vec<serde_json::Value> {
        self.read()
            .published
            .get(&tenant)
            .cloned()
            .unwrap_or_default()
    }

    /// Makes a new signing key for `tenant`; it signs from now on.
    pub async fn rotate(
        &self,
        store: &dyn Store,
        ctx: &AuditContext,
        tenant: TenantId,
    ) -> Result<String, KeyError> {
        let key = generate(tenant)?;
        store.insert_signing_key(ctx, &key).await?;
        add(
            &mut self.keys.write().unwrap_or_else(|p| p.into_inner()),
            &key,
        )?;
        Ok(key.kid)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }
}

fn add(keys: &mut Keys, k: &SigningKey) -> Result<(), KeyError> {
    let unusable = |reason: String| KeyError::Unusable {
        kid: k.kid.clone(),
        reason,
    };
    let enc =
        EncodingKey::from_ec_pem(k.private_pem.as_bytes()).map_err(|e| unusable(e.to_string()))?;
    let dec = DecodingKey::from_ec_components(&k.public_x, &k.public_y)
        .map_err(|e| unusable(e.to_string()))?;
    keys.verifiers.insert(
        k.kid.clone(),
        Verifier {
            tenant: k.tenant_id,
            key: Arc::new(dec),
        },
    );
    // Keys arrive oldest first, so the last one added for a tenant is its newest.
    keys.signers.insert(
        k.tenant_id,
        Signer {
            kid: k.kid.clone(),
            key: Arc::new(enc),
        },
    );
    keys.published
        .entry(k.tenant_id)
        .or_default()
        .push(serde_json::json!({
            "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256",
            "kid": k.kid, "x": k.public_x, "y": k.public_y,
        }));
    Ok(())
}

fn generate(tenant: TenantId) -> Result<SigningKey, KeyError> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    // An uncompressed P-256 point: 0x04, then 32 bytes of x and 32 of y.
    let raw = pair.public_key_raw();
    if raw.len() != 65 || raw[0] != 4 {
        return Err(KeyError::Generate(format!(
            "unexpected public key encoding ({} bytes)",
            raw.len()
        )));
    }
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    use sha2::Digest;
    let kid = b64(&sha2::Sha256::digest(raw)[..16]);
    Ok(SigningKey {
        tenant_id: tenant,
        kid,
        private_pem: pair.serialize_pem(),
        public_x: b64(&raw[1..33]),
        public_y: b64(&raw[33..65]),
        created_time: OffsetDateTime::now_utc(),
    })
}
