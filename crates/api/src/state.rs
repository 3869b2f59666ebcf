//! What every handler shares.

use crate::auth::KeyRing;
use crate::metrics::Metrics;
use crate::ratelimit::{RateLimitConfig, RateLimiter};
use axum::http::HeaderMap;
use rampart_core::TenantId;
use rampart_store::Store;
use rampart_telemetry::EventStore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// API settings (the `[api]` part of the server configuration).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// The base URL clients use (`https://rampart.example.com`); when unset, it is taken from the
    /// request's `Host` header. It is the issuer prefix and an accepted token audience.
    pub public_url: Option<String>,
    /// Whether the server terminates TLS (decides the scheme of derived URLs).
    pub tls: bool,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    pub rate_limits: RateLimitConfig,
    /// Seconds a machine action may stay pending (or running without an update) before it
    /// times out; MDE's live response queue keeps sessions 3 days.
    pub machine_action_timeout_secs: u64,
    /// Seconds between looks for due detection rules (scheduled rules run at most this late).
    pub detection_tick_secs: u64,
    /// Days of stored telemetry searched for each new or changed alerting indicator; 0 turns
    /// these retro-hunts off (`POST /api/indicators/{id}/retrohunt` still runs).
    pub indicator_retrohunt_days: u32,
    /// Days investigation packages and live response results are kept; 0 keeps them until
    /// deleted by hand.
    pub response_file_days: u32,
    /// Seconds an automated investigation waits for a connected device to answer its live
    /// look before it goes on with telemetry alone.
    pub live_evidence_wait_secs: u64,
    /// Whether this server runs automated investigations (queued ones, waiting ones, and
    /// their remediation). Servers sharing a database may leave them to some of their number;
    /// the action center works on every server.
    pub investigations: bool,
    /// Seconds between looks a held agent poll takes at its machine's queue when no ring
    /// woke it: changes made by servers it does not hear (no cluster bus) arrive this late.
    pub poll_recheck_secs: u64,
    /// Seconds between reads of the store's indicator generations: indicator changes made by
    /// servers this one does not hear (no cluster bus) reach its matcher and agents this late.
    pub indicator_sync_secs: u64,
    /// The cluster bus (`[api.cluster]`, or `serve --nats-url`): servers sharing the state
    /// store wake each other's agent polls and indicator reloads over NATS.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Advanced-hunting limits (`[api.hunting]`).
    pub hunting: crate::routes::hunting::HuntingConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            public_url: None,
            tls: false,
            body_limit_bytes: 4 * 1024 * 1024,
            rate_limits: RateLimitConfig::default(),
            machine_action_timeout_secs: 3 * 24 * 3600,
            detection_tick_secs: 30,
            indicator_retrohunt_days: 30,
            response_file_days: 30,
            live_evidence_wait_secs: 60,
            investigations: true,
            poll_recheck_secs: 5,
            indicator_sync_secs: 1,
            cluster: None,
            hunting: Default::default(),
        }
    }
}

/// Handler state: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Telemetry: the event store that ingestion writes and hunting reads.
    pub events: EventStore,
    /// Machines kept current from telemetry.
    pub fleet: Arc<crate::fleet::FleetTracker>,
    pub keys: KeyRing,
    pub config: Arc<ApiConfig>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    pub verified: Arc<crate::auth::token::VerifiedCache>,
    pub devices: Arc<crate::auth::device::DeviceCache>,
    /// Custom detection rules; its loops run once the server calls `start` on it.
    pub detections: Arc<rampart_detect::DetectionEngine>,
    /// Indicators of compromise matched against ingested rows; loaded by `start`.
    pub indicators: Arc<rampart_detect::IndicatorMatcher>,
    /// Automated investigation and remediation; its loop runs once the server calls `start`.
    pub investigator: Arc<rampart_respond::air::Investigator>,
    /// Advanced-hunting query time used per tenant.
    pub hunting_budget: Arc<crate::routes::hunting::HuntingBudget>,
    pub default_tenant: TenantId,
    /// Set to `true` when the server starts shutting down: held agent polls answer at once
    /// instead of holding the drain up.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// The indicator sets agents enforce, as last built.
    pub enforcement: Arc<crate::routes::agent_indicators::EnforcementCache>,
}

impl AppState {
    /// Loads keys and the default tenant from the store.
    pub async fn new(
        store: Arc<dyn Store>,
        events: EventStore,
        config: ApiConfig,
    ) -> Result<AppState, crate::auth::keys::KeyError> {
        let default_tenant = store.ensure_default_tenant().await?.id;
        let keys = KeyRing::load(store.as_ref()).await?;
        let detections = rampart_detect::DetectionEngine::new(
            store.clone(),
            events.clone(),
            rampart_detect::EngineConfig {
                tick: std::time::Duration::from_secs(config.detection_tick_secs.max(1)),
                ..rampart_detect::EngineConfig::default()
            },
        );
        let indicators = Arc::new(
            rampart_detect::IndicatorMatcher::new(
                store.clone(),
                events.clone(),
                std::time::Duration::from_secs(u64::from(config.indicator_retrohunt_days) * 86_400),
            )
            .with_sync_every(std::time::Duration::from_secs(
                config.indicator_sync_secs.max(1),
            )),
        );
        let investigator = rampart_respond::air::Investigator::new(
            store.clone(),
            events.clone(),
            indicators.clone(),
            rampart_respond::air::InvestigatorConfig {
                live_evidence_wait: time::Duration::seconds(
                    i64::try_from(config.live_evidence_wait_secs).unwrap_or(i64::MAX),
                ),
                ..rampart_respond::air::InvestigatorConfig::default()
            },
        );
        Ok(AppState {
            detections,
            indicators,
            investigator,
            hunting_budget: Arc::default(),
            store,
            events,
            fleet: Arc::default(),
            keys,
            limiter: Arc::new(RateLimiter::new(config.rate_limits.clone())),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            verified: Arc::default(),
            devices: Arc::new(crate::auth::device::DeviceCache::default()),
            default_tenant,
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            enforcement: Arc::default(),
        })
    }

    /// The base URL of this server as the client sees it, without a trailing slash.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.config.public_url {
            return u.trim_end_matches('/').to_owned();
        }
        let scheme = if self.config.tls { "https" } else { "http" };
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
            })
            .unwrap_or("localhost");
        format!("{scheme}://{host}")
    }
}
