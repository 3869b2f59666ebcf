//! Threat-intelligence feeds into the indicator store, for `POST /api/indicators/feeds/{source}`
//! and `rampart indicators import`.
//!
//! A feed is identified by its source name: its indicators are created with that `source`, a
//! re-import updates them in place (value and type are the identity), and with `sync` the
//! feed's active indicators it no longer lists are expired — so a re-run always brings the
//! store to what the feed says, whatever an earlier run left half done.

use rampart_core::TenantId;
use rampart_core::audit::AuditContext;
use rampart_core::indicator::{
    IndicatorRequest, IndicatorSubmission, IndicatorWriter, MAX_BATCH, Submitted,
    truncate_to_micros,
};
use rampart_core::machine::MachineGroup;
use rampart_detect::IndicatorMatcher;
use rampart_detect::indicators::Change;
use rampart_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use time::OffsetDateTime;

/// Problems listed in a report; the rest are only counted.
const LISTED_PROBLEMS: usize = 1_000;
/// Indicators read per query when looking for those a synced feed dropped.
const SYNC_PAGE: u32 = 10_000;

/// Where a feed goes and who writes it.
pub struct FeedTarget<'a> {
    pub store: &'a dyn Store,
    /// The running server's matcher, told of every change; none for an offline import.
    pub matcher: Option<&'a IndicatorMatcher>,
    pub tenant: TenantId,
    pub ctx: AuditContext,
    /// The writer, whose submitter name is the feed's source.
    pub writer: IndicatorWriter,
    /// Expire the feed's indicators that this import does not list.
    pub sync: bool,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedReport {
    pub source: String,
    /// Entries the feed held (good and bad).
    pub entries: usize,
    pub created: usize,
    pub updated: usize,
    /// Entries not stored, each listed in `problems` (up to 1,000).
    pub failed: usize,
    /// Indicators of this source the feed no longer lists, expired by `sync`.
    pub expired: usize,
    pub problems: Vec<FeedProblem>,
}

/// One entry that was not stored, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedProblem {
    /// `line 12` or `object indicator--…`.
    pub origin: String,
    pub reason: String,
}

impl FeedReport {
    fn problem(&mut self, origin: String, reason: String) {
        self.failed += 1;
        if self.problems.len() < LISTED_PROBLEMS {
            self.problems.push(FeedProblem { origin, reason });
        }
    }
}

/// A parsed feed: its indicators and the entries that could not become one, each with where
/// it came from (`line 12`, `object indicator--…`, with the file when there are several).
#[derive(Default)]
pub struct FeedEntries {
    pub items: Vec<(String, IndicatorRequest)>,
    pub problems: Vec<FeedProblem>,
}

impl FeedEntries {
    /// Adds what `rampart-intel` parsed, its origins prefixed with `file` when given.
    pub fn add(&mut self, parsed: rampart_intel::Parsed, file: Option<&str>) {
        let origin = |o: &rampart_intel::Origin| match file {
            Some(f) => format!("{f}: {o}"),
            None => o.to_string(),
        };
        for i in parsed.items {
            self.items.push((origin(&i.origin), i.request));
        }
        for e in parsed.errors {
            self.problems.push(FeedProblem {
                origin: origin(&e.origin),
                reason: e.reason,
            });
        }
    }
}

/// Stores a parsed feed; `progress` hears (entries done, entries in all) after each batch.
pub async fn import(
    target: &FeedTarget<'_>,
    entries: FeedEntries,
    mut progress: impl FnMut(usize, usize),
) -> Result<FeedReport, StoreError> {
    let now = OffsetDateTime::now_utc();
    let total = entries.items.len() + entries.problems.len();
    let mut report = FeedReport {
        source: target.writer.submitter.name.clone(),
        entries: total,
        ..FeedReport::default()
    };
    for p in entries.problems {
        report.problem(p.origin, p.reason);
    }
    let mut groups: Option<Vec<MachineGroup>> = None;
    let mut listed: HashSet<String> = HashSet::new();
    let mut done = report.failed;
    for chunk in entries.items.chunks(MAX_BATCH) {
        let mut valid = Vec::with_capacity(chunk.len());
        let mut origins = Vec::with_capacity(chunk.len());
        for (origin, request) in chunk {
            // A feed says an entry is over (revoked, or valid until a time gone by): it is
            // stored expired now, which a submission could not ask for.
            let mut request = request.clone();
            let ended = request.expiration_time.is_some_and(|t| t <= now);
            if ended {
                request.expiration_time = None;
            }
            let mut checked = request.validate(now).map(|mut sub| {
                if ended {
                    sub.expiration_time = Some(truncate_to_micros(now));
                }
                sub
            });
            if let Ok(sub) = &mut checked
                && sub.names_groups()
            {
                if groups.is_none() {
                    groups = Some(target.store.list_machine_groups(target.tenant).await?);
                }
                if let Err(r) = sub.resolve_groups(groups.as_deref().unwrap_or_default()) {
                    checked = Err(r);
                }
            }
            match checked {
                Ok(sub) => {
                    valid.push(sub);
                    origins.push(origin.clone());
                }
                Err(r) => report.problem(
                    origin.clone(),
                    format!("{}: {}", r.code.as_str(), r.message),
                ),
            }
        }
        let outcomes = submit(target, valid).await?;
        for (origin, outcome) in origins.into_iter().zip(outcomes) {
            match outcome {
                Submitted::Created(i) => {
                    report.created += 1;
                    listed.insert(i.id);
                }
                Submitted::Updated(i) => {
                    report.updated += 1;
                    listed.insert(i.id);
                }
                Submitted::Refused(r) => {
                    report.problem(origin, format!("{}: {}", r.code.as_str(), r.message))
                }
            }
        }
        done += chunk.len();
        progress(done, total);
    }
    if target.sync {
        report.expired = expire_unlisted(target, &listed, now).await?;
    }
    Ok(report)
}

/// The matcher's view of what a submission stored.
pub(crate) fn changes(outcomes: &[Submitted]) -> Vec<Change> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Submitted::Created(i) | Submitted::Updated(i) => {
                Some(Change::Upsert(Box::new(i.clone())))
            }
            Submitted::Refused(_) => None,
        })
        .collect()
}

/// Submits one batch and tells the matcher.
async fn submit(
    target: &FeedTarget<'_>,
    items: Vec<IndicatorSubmission>,
) -> Result<Vec<Submitted>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes = target
        .store
        .submit_indicators(&target.ctx, target.tenant, &target.writer, items)
        .await?;
    if let Some(m) = target.matcher {
        m.apply(target.tenant, &changes(&outcomes));
    }
    Ok(outcomes)
}

/// Expires the source's active indicators (the writer may change) that are not `listed`.
async fn expire_unlisted(
    target: &FeedTarget<'_>,
    listed: &HashSet<String>,
    now: OffsetDateTime,
) -> Result<usize, StoreError> {
    let source = target.writer.submitter.name.as_str();
    let owner = target.writer.owner();
    let at = truncate_to_micros(now);
    let mut dropped = Vec::new();
    let mut after = 0;
    loop {
        let page = target
            .store
            .indicators_after(target.tenant, after, SYNC_PAGE)
            .await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        dropped.extend(page.into_iter().filter_map(|(_, i)| {
            let ours = i.source.as_deref() == Some(source)
                && owner.is_none_or(|o| i.created_by == o)
                && i.is_active(now)
                && !listed.contains(&i.id);
            ours.then(|| IndicatorSubmission {
                expiration_time: Some(at),
                ..i.resubmission()
            })
        }));
    }
    let mut expired = 0;
    for chunk in dropped.chunks(MAX_BATCH) {
        let outcomes = submit(target, chunk.to_vec()).await?;
        expired += outcomes
            .iter()
            .filter(|o| matches!(o, Submitted::Updated(_)))
            .count();
    }
    Ok(expired)
}
