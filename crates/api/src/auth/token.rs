//! Access tokens: ES256-signed JWTs shaped like the ones Entra ID issues for app-only access.

use super::KeyRing;
use jsonwebtoken::{Algorithm, Header, Validation};
use rampart_core::{ClientId, Permission, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How long a token lives, as Entra: `expires_in` 3599.
pub const LIFETIME_SECS: i64 = 3599;

/// Resource URIs MDE clients ask tokens for; each is accepted as `aud` (with or without a
/// trailing slash), besides the server's own base URL.
pub const MDE_AUDIENCES: &[&str] = &[
    "https://api.securitycenter.microsoft.com",
    "https://api.securitycenter.windows.com",
    "https://api.security.microsoft.com",
    "https://securitycenter.onmicrosoft.com/windowsatpservice",
    "https://graph.microsoft.com",
    "fc780465-2017-40d4-a0c5-307022471b92",
    "8ee8fdad-f234-4243-8f3b-15c294843740",
];

/// The claims of a Rampart access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Tenant id.
    pub tid: String,
    /// The app's client id (v1 name; v2 tokens carry it as `azp` too).
    pub appid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    pub app_displayname: String,
    pub oid: String,
    pub sub: String,
    pub idtyp: String,
    pub roles: Vec<String>,
    /// `1.0` from the v1 endpoint, `2.0` from the v2 endpoint.
    pub ver: String,
}

/// Whether `aud` is an audience Rampart serves, given the server's base URL.
pub fn audience_accepted(aud: &str, base_url: &str) -> bool {
    let aud = aud.trim_end_matches('/');
    aud.eq_ignore_ascii_case(base_url.trim_end_matches('/'))
        || MDE_AUDIENCES.iter().any(|a| a.eq_ignore_ascii_case(aud))
}

/// The issuer of a tenant's tokens.
pub fn issuer(base_url: &str, tenant: TenantId) -> String {
    format!("{}/{tenant}/v2.0", base_url.trim_end_matches('/'))
}

/// The verified identity a token carries.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub tenant: TenantId,
    pub client_id: ClientId,
    pub app_name: String,
    pub roles: BTreeSet<Permission>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// Tokens verified recently. A client sends the same token for an hour; checking its ES256
/// signature every time would be most of the cost of a small request. Entries live until the
/// token expires; the cache forgets everything when full rather than tracking recency.
#[derive(Default)]
pub struct VerifiedCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, VerifiedToken>>,
}

fn cache_key(base_url: &str, token: &str) -> String {
    format!("{base_url} {token}")
}

/// Tokens the cache holds at most.
const CACHE_CAPACITY: usize = 10_000;

impl VerifiedCache {
    /// The cached verification of `token` presented to `base_url` (the audience check depends on
    /// it), if the token is still within its lifetime.
    pub fn get(&self, base_url: &str, token: &str, now: i64) -> Option<VerifiedToken> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&cache_key(base_url, token))
            .filter(|v| v.exp > now)
            .cloned()
    }

    pub fn put(&self, base_url: &str, token: &str, verified: &VerifiedToken) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_CAPACITY {
            map.clear();
        }
        map.insert(cache_key(base_url, token), verified.clone());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token's audience '{0}' is not this service")]
    Audience(String),
}

/// Signs `claims` with `kid`.
pub fn sign(
    claims: &Claims,
    kid: &str,
    key: &jsonwebtoken::EncodingKey,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key)
}

/// Checks signature, key tenant, times and audience.
pub fn verify(token: &str, keys: &KeyRing, base_url: &str) -> Result<VerifiedToken, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    if header.alg != Algorithm::ES256 {
        return Err(TokenError::Invalid(format!(
            "algorithm {:?} is not accepted",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| TokenError::Malformed("no kid in the header".into()))?;
    let (key_tenant, key) = keys.verifier(&kid).ok_or(TokenError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_aud = false; // checked below against the server's own audiences
    validation.validate_nbf = true;
    validation.leeway = 60;
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
    let c = data.claims;
    if !audience_accepted(&c.aud, base_url) {
        return Err(TokenError::Audience(c.aud));
    }
    let tenant: TenantId = c
        .tid
        .parse()
        .map_err(|_| TokenError::Invalid("tid is not a GUID".into()))?;
    if tenant != key_tenant || !c.iss.ends_with(&format!("/{tenant}/v2.0")) {
        return Err(TokenError::Invalid(
            "the token's tenant does not match its signing key".into(),
        ));
    }
    let client_id: ClientId = c
        .appid
        .parse()
        .map_err(|_| TokenError::Invalid("appid is not a GUID".into()))?;
    // A role this server does not know grants nothing.
    let roles = c.roles.iter().filter_map(|r| r.parse().ok()).collect();
    Ok(VerifiedToken {
        tenant,
        client_id,
        app_name: c.app_displayname,
        roles,
        exp: c.exp,
    })
}
