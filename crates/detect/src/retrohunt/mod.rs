//! Retro-hunts: searching stored telemetry for indicators that were not known when it arrived.
//!
//! A hunt reads each Device* table that carries hashes, addresses or URLs inside the lookback
//! window in two steps. DataFusion first keeps only the rows that could match: the hunted hashes
//! and addresses (a hash in either letter case, as agents differ; an `IN` list for a few values, a
//! [`value_set`] probe for many), the textual prefix of an IPv4 range, the host of a domain or URL
//! as a case-insensitive substring (every row with an address or URL when there are many ranges
//! or hosts). Those few rows then go through exactly the matching that ingestion uses, against
//! the tenant's whole live index — so precedence holds as it would have (an `Allowed` indicator
//! or a SHA-256 verdict still decides), and only decisions by a hunted indicator count.
//!
//! Hits raise the same alert ingestion would have (one per indicator and device, merged with a
//! live one when it exists), marked as retrospective in its description, and files blocked with
//! remediation are quarantined where they were seen.

mod value_set;

use crate::indicators::{Found, IndicatorMatcher};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::TableReference;
use datafusion::logical_expr::{Expr, lit};
use datafusion::prelude::{SessionContext, ident};
use futures::StreamExt;
use rampart_core::TenantId;
use rampart_core::indicator::{Indicator, IndicatorAction, IndicatorType};
use rampart_core::schema::{self, Table, TableKind};
use rampart_telemetry::EventStore;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use value_set::ValueSet;

/// Columns that carry file hashes (of the file, the initiating process, a certificate signer).
const HASH_COLUMNS: [&str; 7] = [
    "SHA256",
    "SHA1",
    "MD5",
    "InitiatingProcessSHA256",
    "InitiatingProcessSHA1",
    "InitiatingProcessMD5",
    "SignerHash",
];
/// Columns that carry remote addresses, and those that carry URLs or host names.
const IP_COLUMNS: [&str; 2] = ["RemoteIP", "FileOriginIP"];
const URL_COLUMNS: [&str; 2] = ["RemoteUrl", "FileOriginUrl"];
/// Columns read besides the matched ones: what an alert's evidence and times need.
const CONTEXT_COLUMNS: [&str; 8] = [
    "Timestamp",
    "DeviceId",
    "DeviceName",
    "FileName",
    "FolderPath",
    "ProcessCommandLine",
    "AccountName",
    "AccountDomain",
];
/// Beyond this many hosts (ranges) a hunt reads every row with a URL (address) instead of one
/// `ILIKE` (`starts_with`) per host (range).
const MAX_PATTERNS: usize = 32;
/// Up to this many hashes or addresses are an `IN` list, beyond it a [`ValueSet`]: a list's
/// literals cost planning time in proportion to their number, a set does not.
const MAX_IN_LIST: usize = 16;

/// What a retro-hunt found.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetroHuntReport {
    /// The indicators hunted for.
    pub indicator_ids: Vec<String>,
    /// Start of the window searched (its end is the time of the hunt).
    #[serde(with = "rampart_core::timefmt::required")]
    #[schema(value_type = String, format = DateTime)]
    pub searched_from: OffsetDateTime,
    /// Stored rows that could match and were checked.
    pub rows_checked: u64,
    /// One per indicator and device that matched.
    pub hits: Vec<RetroHit>,
    /// Alerts raised or widened (indicators without `generateAlert` raise none).
    pub alert_ids: Vec<String>,
    pub elapsed_ms: u64,
}

/// An indicator that matched on a device in stored telemetry.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetroHit {
    pub indicator_id: String,
    pub device_id: String,
    #[serde(with = "rampart_core::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_event_time: Option<OffsetDateTime>,
    #[serde(with = "rampart_core::timefmt::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_time: Option<OffsetDateTime>,
    /// Stored rows it matched.
    pub events: u64,
}

/// Why a retro-hunt could not run.
#[derive(Debug, thiserror::Error)]
pub enum RetroHuntError {
    #[error("reading stored telemetry: {0}")]
    Events(#[from] datafusion::error::DataFusionError),
    #[error("raising an alert: {0}")]
    Store(#[from] rampart_store::StoreError),
}

/// Whether an indicator is worth a hunt when it is created or changed: one whose matches
/// alert or remediate (a plain block only acts on what has not happened yet).
pub fn hunted_on_change(i: &Indicator, now: OffsetDateTime) -> bool {
    let acts = i.generate_alert || i.action == IndicatorAction::BlockAndRemediate;
    acts && i.action != IndicatorAction::Allowed && i.is_active(now)
}

impl IndicatorMatcher {
    /// Searches the tenant's telemetry of the last `lookback` for `indicators` and raises the
    /// alerts their matches call for.
    pub async fn retrohunt(
        &self,
        tenant: TenantId,
        indicators: &[Indicator],
        lookback: Duration,
    ) -> Result<RetroHuntReport, RetroHuntError> {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        let from = now - lookback;
        let wanted: HashSet<u64> = indicators
            .iter()
            .filter_map(|i| i.id.parse::<u64>().ok())
            .collect();
        let mut report = RetroHuntReport {
            indicator_ids: indicators.iter().map(|i| i.id.clone()).collect(),
            searched_from: from,
            rows_checked: 0,
            hits: Vec::new(),
            alert_ids: Vec::new(),
            elapsed_ms: 0,
        };
        let sought = Sought::of(indicators);
        let snapshot = self.index().snapshot(tenant);
        let mut found: HashMap<(u64, String), Found> = HashMap::new();
        if !sought.is_empty() && !snapshot.is_empty() {
            let from_ns = i64::try_from(from.unix_timestamp_nanos()).unwrap_or(i64::MIN);
            let ctx = self
                .events()
                .session_within(tenant, Some(from_ns), None)
                .await?;
            // The prefilter keeps a handful of rows out of millions: decide them on the hash,
            // address and URL columns alone, and decode the rest only for the rows kept.
            EventStore::filter_while_decoding(&ctx);
            // Alert tables hold alerts' own evidence, not what devices did.
            for &table in schema::ALL.iter().filter(|t| t.kind != TableKind::Alert) {
                let Some(filter) = sought.filter(table) else {
                    continue;
                };
                for batch in candidates(&ctx, table, filter).await? {
                    report.rows_checked += batch.num_rows() as u64;
                    let mut part = HashMap::new();
                    self.find(
                        tenant,
                        &snapshot,
                        &[(table, batch)],
                        Some(&wanted),
                        &mut part,
                    )
                    .await;
                    for (key, f) in part {
                        match found.get_mut(&key) {
                            Some(known) => known.absorb(f),
                            None => {
                                found.insert(key, f);
                            }
                        }
                    }
                }
            }
        }
        let at = |ns: Option<i64>| {
            ns.and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok())
        };
        let mut findings: Vec<Found> = found.into_values().collect();
        findings
            .sort_by(|a, b| (a.indicator(), a.device_id()).cmp(&(b.indicator(), b.device_id())));
        for f in findings {
            let (first, last) = f.span();
            report.hits.push(RetroHit {
                indicator_id: f.indicator().to_string(),
                device_id: f.device_id().to_owned(),
                first_event_time: at(first),
                last_event_time: at(last),
                events: f.events(),
            });
            if let Some(id) = self.raise(f.retrospective()).await? {
                report.alert_ids.push(id);
            }
        }
        report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(report)
    }
}

/// The rows of `table` that pass `filter`, with the columns matching reads, strings as `Utf8`.
async fn candidates(
    ctx: &SessionContext,
    table: &'static Table,
    filter: Expr,
) -> Result<Vec<RecordBatch>, datafusion::error::DataFusionError> {
    let read: Vec<Expr> = table
        .columns
        .iter()
        .map(|c| c.name)
        .filter(|name| {
            CONTEXT_COLUMNS.contains(name)
                || HASH_COLUMNS.contains(name)
                || IP_COLUMNS.contains(name)
                || URL_COLUMNS.contains(name)
        })
        // `ident`, not `col`: `col` would fold the names to lower case.
        .map(ident)
        .collect();
    let frame = ctx.table(TableReference::bare(table.name)).await?;
    let mut stream = frame.filter(filter)?.select(read)?.execute_stream().await?;
    let mut out = Vec::new();
    while let Some(batch) = stream.next().await {
        out.push(utf8(batch?)?);
    }
    Ok(out)
}

/// `batch` with view strings cast to plain ones, which matching reads.
fn utf8(batch: RecordBatch) -> Result<RecordBatch, datafusion::error::DataFusionError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type() == &DataType::Utf8View)
    {
        return Ok(batch);
    }
    let fields: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => cast(c, &DataType::Utf8),
            _ => Ok(c.clone()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        columns,
    )?)
}

/// What the hunted indicators look for, as literals for the prefilter.
#[derive(Default)]
struct Sought {
    /// Hashes, lower case.
    hashes: Arc<HashSet<String>>,
    /// Single addresses, as text.
    addresses: Arc<HashSet<String>>,
    /// Text prefixes of IPv4 ranges; `None` for a range text cannot narrow (IPv6, /0-/7).
    ranges: Vec<Option<String>>,
    /// Hosts of domain and URL indicators, lower case.
    hosts: Vec<String>,
}

impl Sought {
    fn of(indicators: &[Indicator]) -> Sought {
        let mut s = Sought::default();
        let mut hashes = HashSet::new();
        let mut addresses = HashSet::new();
        for i in indicators {
            let v = i.indicator_value.trim();
            match i.indicator_type {
                IndicatorType::FileSha256
                | IndicatorType::FileSha1
                | IndicatorType::FileMd5
                | IndicatorType::CertificateThumbprint => {
                    hashes.insert(v.to_ascii_lowercase());
                }
                IndicatorType::IpAddress => match v.split_once('/') {
                    None => {
                        addresses.insert(v.to_owned());
                    }
                    Some((base, len)) => s.ranges.push(ipv4_prefix(base, len)),
                },
                IndicatorType::DomainName => s.hosts.push(v.to_ascii_lowercase()),
                IndicatorType::Url => {
                    let host = rampart_ioc::url::UrlKey::parse(v)
                        .map(|u| u.host_name().to_owned())
                        .unwrap_or_else(|| v.to_ascii_lowercase());
                    s.hosts.push(host);
                }
            }
        }
        s.hashes = Arc::new(hashes);
        s.addresses = Arc::new(addresses);
        s
    }

    fn is_empty(&self) -> bool {
        self.hashes.is_empty()
            && self.addresses.is_empty()
            && self.ranges.is_empty()
            && self.hosts.is_empty()
    }

    /// The prefilter for `table`, or `None` when nothing hunted can be in it.
    fn filter(&self, table: &Table) -> Option<Expr> {
        let has = |name: &&&str| table.column(name).is_some();
        let mut any: Vec<Expr> = Vec::new();
        let (hashes, addresses) = (&self.hashes, &self.addresses);
        if !hashes.is_empty() {
            for c in HASH_COLUMNS.iter().filter(has) {
                any.push(if hashes.len() > MAX_IN_LIST {
                    ValueSet::contains(ident(*c), Arc::clone(hashes), true)
                } else {
                    let both_cases = hashes
                        .iter()
                        .flat_map(|h| [h.clone(), h.to_ascii_uppercase()]);
                    ident(*c).in_list(literals(both_cases), false)
                });
            }
        }
        for c in IP_COLUMNS.iter().filter(has) {
            if !addresses.is_empty() {
                any.push(if addresses.len() > MAX_IN_LIST {
                    ValueSet::contains(ident(*c), Arc::clone(addresses), false)
                } else {
                    ident(*c).in_list(literals(addresses.iter().cloned()), false)
                });
            }
            if self.ranges.len() > MAX_PATTERNS {
                any.push(ident(*c).is_not_null());
                continue;
            }
            for range in &self.ranges {
                any.push(match range {
                    Some(prefix) => {
                        datafusion::functions::expr_fn::starts_with(ident(*c), lit(prefix.as_str()))
                    }
                    None => ident(*c).is_not_null(),
                });
            }
        }
        if !self.hosts.is_empty() {
            for c in URL_COLUMNS.iter().filter(has) {
                if self.hosts.len() > MAX_PATTERNS {
                    any.push(ident(*c).is_not_null());
                    continue;
                }
                for host in &self.hosts {
                    any.push(ident(*c).ilike(lit(format!("%{}%", like_escaped(host)))));
                }
            }
        }
        any.into_iter().reduce(Expr::or)
    }
}

/// The text every address of an IPv4 range starts with: its whole leading octets and a dot.
fn ipv4_prefix(base: &str, len: &str) -> Option<String> {
    let addr: std::net::Ipv4Addr = base.parse().ok()?;
    let whole = usize::from(len.parse::<u8>().ok()? / 8);
    (whole > 0).then(|| {
        let octets = addr.octets();
        let mut p: String = octets[..whole.min(4)]
            .iter()
            .map(|o| format!("{o}."))
            .collect();
        if whole >= 4 {
            p.pop(); // a /32 is the address itself
        }
        p
    })
}

fn literals(values: impl Iterator<Item = String>) -> Vec<Expr> {
    values.map(|v| lit(ScalarValue::Utf8(Some(v)))).collect()
}

/// `s` with LIKE's wildcards taken literally.
fn like_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
