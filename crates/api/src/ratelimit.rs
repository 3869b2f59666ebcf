//! Per-app rate limits per route family, with MDE's published defaults (reference §10).
//!
//! Each (tenant, app, family) has a per-minute and a per-hour fixed window. A call over either is
//! refused with 429 and `Retry-After` set to the seconds until that window resets.

use rampart_core::{ClientId, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A group of routes that share one budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RouteFamily {
    /// Most GET/PATCH/POST routes: 100/min, 1,500/h.
    Default,
    AlertsBatchUpdate,
    CreateAlertByReference,
    IndicatorsImport,
    IndicatorsBatchDelete,
    GetPackageUri,
    LiveResponse,
    StartInvestigation,
    AdvancedQuery,
    Incidents,
}

/// The budget of one family; `None` means unlimited in that window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
}

impl RouteFamily {
    pub const ALL: &'static [RouteFamily] = &[
        RouteFamily::Default,
        RouteFamily::AlertsBatchUpdate,
        RouteFamily::CreateAlertByReference,
        RouteFamily::IndicatorsImport,
        RouteFamily::IndicatorsBatchDelete,
        RouteFamily::GetPackageUri,
        RouteFamily::LiveResponse,
        RouteFamily::StartInvestigation,
        RouteFamily::AdvancedQuery,
        RouteFamily::Incidents,
    ];

    /// MDE's documented limit for the family.
    pub fn mde_default(self) -> Limit {
        let l = |m: Option<u32>, h: Option<u32>| Limit {
            per_minute: m,
            per_hour: h,
        };
        match self {
            RouteFamily::Default => l(Some(100), Some(1500)),
            RouteFamily::AlertsBatchUpdate => l(Some(10), Some(500)),
            RouteFamily::CreateAlertByReference => l(Some(15), None),
            RouteFamily::IndicatorsImport => l(Some(30), None),
            RouteFamily::IndicatorsBatchDelete => l(Some(30), Some(1500)),
            RouteFamily::GetPackageUri => l(Some(2), Some(120)),
            RouteFamily::LiveResponse => l(Some(10), None),
            RouteFamily::StartInvestigation => l(None, Some(50)),
            RouteFamily::AdvancedQuery => l(Some(45), Some(1500)),
            RouteFamily::Incidents => l(Some(50), Some(1500)),
        }
    }
}

/// Rate-limit settings: on by default with MDE's numbers; any family may be overridden.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub overrides: HashMap<RouteFamily, Limit>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            overrides: HashMap::new(),
        }
    }
}

impl RateLimitConfig {
    pub fn limit(&self, family: RouteFamily) -> Limit {
        self.overrides
            .get(&family)
            .copied()
            .unwrap_or_else(|| family.mde_default())
    }
}

struct Window {
    start: Instant,
    count: u32,
}

impl Window {
    /// How long until a call fits again, when the window is full; restarts an elapsed window.
    fn wait(&mut self, now: Instant, len: Duration, max: Option<u32>) -> Option<Duration> {
        let max = max?;
        if now.duration_since(self.start) >= len {
            self.start = now;
            self.count = 0;
        }
        (self.count >= max).then(|| len.saturating_sub(now.duration_since(self.start)))
    }
}

type Key = (TenantId, ClientId, RouteFamily);

/// The counters of every app.
pub struct RateLimiter {
    config: RateLimitConfig,
    windows: Mutex<HashMap<Key, (Window, Window)>>,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimiter {
            config,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a call; `Err(seconds)` to wait when over the limit. Refused calls do not count.
    pub fn check(&self, tenant: TenantId, app: ClientId, family: RouteFamily) -> Result<(), u64> {
        if !self.config.enabled {
            return Ok(());
        }
        let limit = self.config.limit(family);
        let now = Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (minute, hour) = map.entry((tenant, app, family)).or_insert_with(|| {
            (
                Window {
                    start: now,
                    count: 0,
                },
                Window {
                    start: now,
                    count: 0,
                },
            )
        });
        let secs = |d: Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
        // Both windows are checked before either counts, so a refused call costs nothing.
        let wait_minute = minute.wait(now, Duration::from_secs(60), limit.per_minute);
        let wait_hour = hour.wait(now, Duration::from_secs(3600), limit.per_hour);
        if let Some(wait) = wait_minute.max(wait_hour) {
            return Err(secs(wait));
        }
        minute.count += 1;
        hour.count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_minute_budget_with_retry_after() {
        let mut cfg = RateLimitConfig::default();
        cfg.overrides.insert(
            RouteFamily::Default,
            Limit {
                per_minute: Some(3),
                per_hour: Some(10),
            },
        );
        let rl = RateLimiter::new(cfg);
        let (t, a) = (TenantId::new_random(), ClientId::new_random());
        for _ in 0..3 {
            rl.check(t, a, RouteFamily::Default).unwrap();
        }
        let wait = rl.check(t, a, RouteFamily::Default).unwrap_err();
        assert!((1..=60).contains(&wait));
        // Another app and another family have their own budgets.
        rl.check(t, ClientId::new_random(), RouteFamily::Default)
            .unwrap();
        rl.check(t, a, RouteFamily::AlertsBatchUpdate).unwrap();
    }

    #[test]
    fn disabled_never_refuses() {
        let rl = RateLimiter::new(RateLimitConfig {
            enabled: false,
            overrides: HashMap::new(),
        });
        let (t, a) = (TenantId::new_random(), ClientId::new_random());
        for _ in 0..1000 {
            rl.check(t, a, RouteFamily::GetPackageUri).unwrap();
        }
    }
}
