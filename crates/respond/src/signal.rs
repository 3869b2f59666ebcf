//! Signal sharing: turns an alert known to be malicious into tenant-wide indicators, stored
//! like any other (so agents enforce them from their next indicator sync, and the store's
//! generation tells every server), applied to this server's matcher at once (which queues the
//! retro-hunt of each: devices that saw the entity get alerts of their own).

use rampart_core::TenantId;
use rampart_core::alert::Alert;
use rampart_core::audit::AuditContext;
use rampart_core::indicator::{
    Indicator, IndicatorRequest, IndicatorWriter, SourceType, Submitted, Submitter,
};
use rampart_core::signal::{SOURCE_NAME, indicator_requests};
use rampart_detect::IndicatorMatcher;
use rampart_detect::indicators::Change;
use rampart_store::{Store, StoreError};
use time::OffsetDateTime;

/// The writer shared indicators are stored by: Rampart itself, allowed to update an indicator
/// of the same value whoever made it (a verdict outranks an older opinion).
fn writer() -> IndicatorWriter {
    IndicatorWriter {
        submitter: Submitter {
            id: "rampart-signal-sharing".into(),
            name: SOURCE_NAME.into(),
            kind: SourceType::AadApp,
        },
        all: true,
    }
}

/// Shares the malicious entities of `alert` (`why` says what made them so) as the tenant's
/// sharing policy says; returns the indicators stored.
pub async fn share(
    store: &dyn Store,
    matcher: &IndicatorMatcher,
    ctx: &AuditContext,
    tenant: TenantId,
    alert: &Alert,
    why: &str,
) -> Result<Vec<Indicator>, StoreError> {
    let now = OffsetDateTime::now_utc();
    let policy = store.signal_sharing_policy(tenant).await?;
    let requests = indicator_requests(alert, why, now, &policy);
    let shared = store_requests(store, matcher, ctx, tenant, requests, now).await?;
    tracing::info!(
        %tenant,
        alert = alert.id,
        indicators = shared.len(),
        "malicious entities shared tenant-wide"
    );
    Ok(shared)
}

/// Stores shared indicator requests and applies them to this server's matcher (which queues
/// their retro-hunts); returns the indicators stored. Requests the indicator rules refuse (an
/// internal address, say) are skipped with a log line, not an error: the rest still protect
/// the tenant.
pub async fn store_requests(
    store: &dyn Store,
    matcher: &IndicatorMatcher,
    ctx: &AuditContext,
    tenant: TenantId,
    requests: Vec<IndicatorRequest>,
    now: OffsetDateTime,
) -> Result<Vec<Indicator>, StoreError> {
    let mut submissions = Vec::new();
    for request in requests {
        let value = request.indicator_value.clone().unwrap_or_default();
        match request.validate(now) {
            Ok(s) => submissions.push(s),
            Err(r) => tracing::info!(%tenant, value, "not shared: {}", r.message),
        }
    }
    if submissions.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes = store
        .submit_indicators(ctx, tenant, &writer(), submissions)
        .await?;
    let mut shared = Vec::new();
    let mut changes = Vec::new();
    for o in outcomes {
        match o {
            Submitted::Created(i) | Submitted::Updated(i) => {
                changes.push(Change::Upsert(Box::new(i.clone())));
                shared.push(i);
            }
            Submitted::Refused(r) => tracing::info!(%tenant, "not shared: {}", r.message),
        }
    }
    matcher.apply(tenant, &changes);
    Ok(shared)
}
