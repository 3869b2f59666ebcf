//! `GET /agent/v1/indicators` (device credential): the indicators the device enforces itself —
//! blocked and allowed file hashes, addresses and domains (and URLs that name a whole site,
//! as their host) — filtered for it (active,
//! scoped to its device group, enforceable actions), with the tenant's YARA rule sets for its
//! antivirus scans, and versioned by the SHA-256 of the set, so
//! that an agent asking with `If-None-Match` gets 304 until something it enforces changes.
//!
//! The set is built from the store on each request that is not answered 304 from the cache:
//! the last set built per tenant and device group is kept with the tenant's indicator generation
//! (which YARA rule changes move too) and the first expiry among its entries, and is reused until either moves on.

use crate::auth::device::authenticate_device;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::TenantId;
use rampart_core::indicator::{IndicatorAction, IndicatorType};
use rampart_proto::enforcement::{
    DomainRule, Enforcement, EnforcementSet, FileRule, HashAlgorithm, NetworkRule, YaraRuleSource,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// Indicators read per store page.
const PAGE: u32 = 5_000;

/// A set built for one tenant and device group.
struct Built {
    generation: i64,
    /// Unix seconds of the first expiry among the entries (the set changes then).
    valid_until: i64,
    body: Arc<[u8]>,
    etag: String,
}

/// The sets built lately, by tenant and device group.
#[derive(Default)]
pub struct EnforcementCache {
    built: Mutex<HashMap<(TenantId, i64), Arc<Built>>>,
}

/// `GET /agent/v1/indicators`.
pub async fn enforcement(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let device = authenticate_device(&state, req.headers()).await?;
    let machine = state
        .store
        .get_machine(device.tenant, &device.device_id)
        .await?;
    let (group_id, group_name) = machine
        .map(|m| (m.rbac_group_id, m.rbac_group_name))
        .unwrap_or((0, None));
    let generation = state
        .store
        .indicator_generations()
        .await?
        .into_iter()
        .find_map(|(t, g)| (t == device.tenant).then_some(g))
        .unwrap_or(0);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let key = (device.tenant, group_id);
    let cached = state
        .enforcement
        .built
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .filter(|b| b.generation == generation && now < b.valid_until)
        .cloned();
    let built = match cached {
        Some(b) => b,
        None => {
            let b = Arc::new(
                build(
                    &state,
                    device.tenant,
                    group_id,
                    group_name.as_deref(),
                    generation,
                    now,
                )
                .await?,
            );
            state
                .enforcement
                .built
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, Arc::clone(&b));
            b
        }
    };
    let etag = HeaderValue::from_str(&built.etag)
        .map_err(|e| ApiError::internal("enforcement etag", e))?;
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == built.etag.as_bytes());
    let mut resp = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            built.body.to_vec(),
        )
            .into_response()
    };
    resp.headers_mut().insert(header::ETAG, etag);
    Ok(resp)
}

/// The host a URL indicator names, when it names a whole site (no path beyond `/`, no query,
/// no port other than the scheme's).
enum Site {
    Address(String),
    Domain(String),
}

fn whole_site(url: &str) -> Option<Site> {
    let key = rampart_ioc::url::UrlKey::parse(url)?;
    if !(key.path.is_empty() || key.path == "/") || key.host_name() != key.host {
        return None;
    }
    let host = key.host_name();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    Some(match literal.parse::<std::net::IpAddr>() {
        Ok(ip) => Site::Address(ip.to_string()),
        Err(_) => Site::Domain(host.to_owned()),
    })
}

async fn build(
    state: &AppState,
    tenant: TenantId,
    group_id: i64,
    group_name: Option<&str>,
    generation: i64,
    now: i64,
) -> ApiResult<Built> {
    let group_id = group_id.to_string();
    let mut set = EnforcementSet::default();
    let mut valid_until = i64::MAX;
    let mut after = 0;
    loop {
        let page = state.store.indicators_after(tenant, after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (_, ind) in page {
            let Ok(entry) = rampart_ioc::Entry::of(&ind) else {
                continue;
            };
            if !entry.active_at(now) || !entry.applies_to(Some(&group_id), group_name) {
                continue;
            }
            let action = match ind.action {
                IndicatorAction::Block | IndicatorAction::BlockAndRemediate => Enforcement::Block,
                IndicatorAction::Allowed => Enforcement::Allow,
                IndicatorAction::Audit | IndicatorAction::Warn => continue,
            };
            let algorithm = match ind.indicator_type {
                IndicatorType::FileSha1 => Some(HashAlgorithm::Sha1),
                IndicatorType::FileSha256 => Some(HashAlgorithm::Sha256),
                IndicatorType::FileMd5 => Some(HashAlgorithm::Md5),
                IndicatorType::IpAddress => None,
                IndicatorType::DomainName => {
                    valid_until = valid_until.min(entry.expires_at);
                    set.domains.push(DomainRule {
                        domain: ind
                            .indicator_value
                            .trim_end_matches('.')
                            .to_ascii_lowercase(),
                        action,
                        indicator_id: ind.id,
                        title: ind.title,
                    });
                    continue;
                }
                IndicatorType::Url => {
                    // The device enforces by host: it drops the addresses a host resolves to.
                    // A URL naming a whole site is enforced so; one naming a page (or a port)
                    // is not — blocking its host would block the rest of the site — and is
                    // matched in telemetry only.
                    let Some(site) = whole_site(&ind.indicator_value) else {
                        continue;
                    };
                    valid_until = valid_until.min(entry.expires_at);
                    match site {
                        Site::Address(ip) => set.networks.push(NetworkRule {
                            value: ip,
                            action,
                            indicator_id: ind.id,
                            title: ind.title,
                        }),
                        Site::Domain(domain) => set.domains.push(DomainRule {
                            domain,
                            action,
                            indicator_id: ind.id,
                            title: ind.title,
                        }),
                    }
                    continue;
                }
                _ => continue,
            };
            valid_until = valid_until.min(entry.expires_at);
            match algorithm {
                Some(algorithm) => set.files.push(FileRule {
                    algorithm,
                    hash: ind.indicator_value.to_ascii_lowercase(),
                    action,
                    indicator_id: ind.id,
                    title: ind.title,
                }),
                None => set.networks.push(NetworkRule {
                    value: ind.indicator_value,
                    action,
                    indicator_id: ind.id,
                    title: ind.title,
                }),
            }
        }
    }
    set.yara_rules = state
        .store
        .yara_rule_sets(tenant)
        .await?
        .into_iter()
        .map(|r| YaraRuleSource {
            id: r.id,
            name: r.name,
            source: r.source,
        })
        .collect();
    let digest = Sha256::digest(
        serde_json::to_vec(&(&set.files, &set.networks, &set.domains, &set.yara_rules))
            .map_err(|e| ApiError::internal("enforcement set", e))?,
    );
    let version: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    set.version = version.clone();
    let body = serde_json::to_vec(&set).map_err(|e| ApiError::internal("enforcement set", e))?;
    Ok(Built {
        generation,
        valid_until,
        body: body.into(),
        etag: format!("\"{version}\""),
    })
}
