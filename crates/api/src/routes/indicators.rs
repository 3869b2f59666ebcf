//! `/api/indicators`: list, submit (or update), import, delete, batch delete (reference §3).
//!
//! Permissions: `Ti.ReadWrite.All` reads and writes every indicator of the tenant, `Ti.ReadWrite`
//! only those its app created (others are not found for it), `Ti.Read.All` reads all.

use crate::auth::Caller;
use crate::body::{JsonBody, parse_json};
use crate::error::{ApiError, ApiResult};
use crate::odata::{collection_response, json_response, options};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rampart_core::Permission as P;
use rampart_core::indicator::{
    BatchDeleted, INDICATORS, ImportIndicatorResult, ImportIndicatorResults, Indicator,
    IndicatorRequest, IndicatorWriter, MAX_BATCH, SourceType, Submitted, Submitter, active_scope,
    mentions, owner_scope,
};
use rampart_core::odata::Filter;
use rampart_core::{ErrorCode, Rejection};
use rampart_detect::indicators::Change;
use rampart_store::Collection;
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

const READ: &[P] = &[P::TiReadWrite, P::TiReadWriteAll, P::TiReadAll];
const WRITE: &[P] = &[P::TiReadWrite, P::TiReadWriteAll];

fn rejection(r: Rejection) -> ApiError {
    ApiError::new(r.code, r.message)
}

fn writer(caller: &Caller) -> IndicatorWriter {
    IndicatorWriter {
        submitter: Submitter {
            id: caller.client_id.to_string(),
            name: caller.app_name.clone(),
            kind: SourceType::AadApp,
        },
        all: caller.roles.contains(&P::TiReadWriteAll),
    }
}

/// `createdBy eq '<me>'` for a caller that may only see its own indicators.
fn visibility(caller: &Caller) -> Option<Filter> {
    (!caller.has_any(&[P::TiReadWriteAll, P::TiReadAll]))
        .then(|| owner_scope(&caller.client_id.to_string()))
}

/// An entity with `@odata.context` first, as MDE answers single entities.
fn entity_response(state: &AppState, headers: &HeaderMap, body: &str) -> Response {
    let context = serde_json::to_string(&format!(
        "{}/api/$metadata#Indicators/$entity",
        state.base_url(headers)
    ))
    .unwrap_or_default();
    let rest = body.strip_prefix('{').unwrap_or(body);
    let sep = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    json_response(format!("{{\"@odata.context\":{context}{sep}{rest}"))
}

/// `GET /api/indicators`: the active indicators, unless `$filter` names `expirationTime`.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let (pairs, opts) = options(&uri, &INDICATORS)?;
    let explicit_expiry = opts
        .filter
        .as_ref()
        .is_some_and(|f| mentions(f, "expirationTime"));
    let scopes: Vec<Filter> = [
        visibility(&caller),
        (!explicit_expiry).then(|| active_scope(OffsetDateTime::now_utc())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let scope = scopes
        .into_iter()
        .reduce(|a, b| Filter::And(Box::new(a), Box::new(b)));
    let page = state
        .store
        .list(
            caller.tenant,
            Collection::of::<Indicator>(),
            &opts,
            scope.as_ref(),
        )
        .await?;
    let rows = page.rows.iter().map(|r| r.body.clone()).collect();
    collection_response(
        &state,
        &headers,
        &uri,
        &pairs,
        &INDICATORS,
        &opts,
        page,
        rows,
    )
}

/// `POST /api/indicators`: creates the indicator, or updates the one with the same value and
/// type; 200 with the entity either way.
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<IndicatorRequest>,
) -> ApiResult<Response> {
    let mut sub = req.validate(OffsetDateTime::now_utc()).map_err(rejection)?;
    if sub.names_groups() {
        let groups = state.store.list_machine_groups(caller.tenant).await?;
        sub.resolve_groups(&groups).map_err(rejection)?;
    }
    let mut out = state
        .store
        .submit_indicators(&caller.audit(), caller.tenant, &writer(&caller), vec![sub])
        .await?;
    state
        .indicators
        .apply(caller.tenant, &crate::feeds::changes(&out));
    match out.pop() {
        Some(Submitted::Created(i) | Submitted::Updated(i)) => {
            let body = serde_json::to_string(&i)
                .map_err(|e| ApiError::internal("encoding an indicator", e))?;
            Ok(entity_response(&state, &headers, &body))
        }
        Some(Submitted::Refused(r)) => Err(rejection(r)),
        None => Err(ApiError::internal(
            "submitting an indicator",
            "the store returned no outcome",
        )),
    }
}

#[derive(Deserialize)]
pub struct ImportBody {
    #[serde(rename = "Indicators", alias = "indicators")]
    indicators: Option<Vec<Box<RawValue>>>,
}

/// The value an item carried, for reporting a failed one.
fn sent_value(raw: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "indicatorValue")]
        value: Option<serde_json::Value>,
    }
    serde_json::from_str::<Probe>(raw.get())
        .ok()
        .and_then(|p| p.value)
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn check_batch_size(n: usize) -> ApiResult<()> {
    if n > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::MaximumBatchSizeExceeded,
            format!("Maximum batch size exceeded. Received: {n}, allowed: {MAX_BATCH}"),
        ));
    }
    Ok(())
}

/// `POST /api/indicators/import`: up to 500 indicators; every valid one is written, every other
/// one reported with its reason, in request order.
pub async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ImportBody>,
) -> ApiResult<Response> {
    let items = body.indicators.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredParameter,
            "The required parameter 'Indicators' is missing.",
        )
    })?;
    check_batch_size(items.len())?;
    if items.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "'Indicators' must list at least one indicator.",
        ));
    }
    let now = OffsetDateTime::now_utc();
    // The tenant's device groups, read once and only when some item names one.
    let mut groups: Option<Vec<rampart_core::machine::MachineGroup>> = None;
    let mut results: Vec<ImportIndicatorResult> = Vec::with_capacity(items.len());
    let mut valid = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    for (i, raw) in items.iter().enumerate() {
        let mut checked = parse_json::<IndicatorRequest>(raw.get().as_bytes())
            .and_then(|r| r.validate(now).map_err(rejection));
        if let Ok(sub) = &mut checked
            && sub.names_groups()
        {
            if groups.is_none() {
                groups = Some(state.store.list_machine_groups(caller.tenant).await?);
            }
            if let Err(r) = sub.resolve_groups(groups.as_deref().unwrap_or_default()) {
                checked = Err(rejection(r));
            }
        }
        match checked {
            Ok(sub) => {
                positions.push(i);
                valid.push(sub);
                results.push(ImportIndicatorResult {
                    id: None,
                    indicator: None,
                    is_failed: false,
                    failure_reason: None,
                });
            }
            Err(e) => results.push(ImportIndicatorResult {
                id: None,
                indicator: sent_value(raw),
                is_failed: true,
                failure_reason: Some(format!("{}: {}", e.code.as_str(), e.message)),
            }),
        }
    }
    if !valid.is_empty() {
        let outcomes = state
            .store
            .submit_indicators(&caller.audit(), caller.tenant, &writer(&caller), valid)
            .await?;
        state
            .indicators
            .apply(caller.tenant, &crate::feeds::changes(&outcomes));
        for (pos, outcome) in positions.into_iter().zip(outcomes) {
            let r = &mut results[pos];
            match outcome {
                Submitted::Created(i) | Submitted::Updated(i) => {
                    r.id = Some(i.id);
                    r.indicator = Some(i.indicator_value);
                }
                Submitted::Refused(rej) => {
                    r.indicator = sent_value(&items[pos]);
                    r.is_failed = true;
                    r.failure_reason = Some(format!("{}: {}", rej.code.as_str(), rej.message));
                }
            }
        }
    }
    let out = ImportIndicatorResults {
        context: format!(
            "{}/api/$metadata#Collection(microsoft.windowsDefenderATP.api.ImportIndicatorResult)",
            state.base_url(&headers)
        ),
        value: results,
    };
    let text = serde_json::to_string(&out)
        .map_err(|e| ApiError::internal("encoding import results", e))?;
    Ok(json_response(text))
}

/// Ids are numbers; anything else names no indicator.
fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `DELETE /api/indicators/{id}`: 204, or 404 when the caller has no such indicator.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let w = writer(&caller);
    let deleted = is_id(&id)
        && state
            .store
            .delete_indicator(&caller.audit(), caller.tenant, &id, w.owner())
            .await?;
    if deleted {
        state
            .indicators
            .apply(caller.tenant, &[Change::Remove { id: id.clone() }]);
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        let shown: String = id.chars().take(100).collect();
        Err(ApiError::not_found(format!(
            "Indicator {shown} was not found"
        )))
    }
}

#[derive(Deserialize)]
pub struct BatchDeleteBody {
    #[serde(rename = "IndicatorIds", alias = "indicatorIds")]
    indicator_ids: Option<Vec<serde_json::Value>>,
}

/// `POST /api/indicators/BatchDelete`: deletes all the ids (204) or, when any is not found
/// (404) or not valid (400), none.
pub async fn batch_delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<BatchDeleteBody>,
) -> ApiResult<Response> {
    let ids = body.indicator_ids.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredParameter,
            "The required parameter 'IndicatorIds' is missing.",
        )
    })?;
    if ids.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "'IndicatorIds' must list at least one id.",
        ));
    }
    check_batch_size(ids.len())?;
    let ids: Vec<String> = ids
        .iter()
        .map(|v| match v {
            serde_json::Value::String(s) if is_id(s) => Ok(s.clone()),
            serde_json::Value::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
            other => {
                let shown: String = other.to_string().chars().take(100).collect();
                Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("'IndicatorIds' holds {shown}, which is not an indicator id (ids are numbers such as \"995\")."),
                ))
            }
        })
        .collect::<ApiResult<_>>()?;
    let w = writer(&caller);
    match state
        .store
        .delete_indicators(&caller.audit(), caller.tenant, &ids, w.owner())
        .await?
    {
        BatchDeleted::Deleted(_) => {
            let removed: Vec<Change> = ids
                .iter()
                .map(|id| Change::Remove { id: id.clone() })
                .collect();
            state.indicators.apply(caller.tenant, &removed);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        BatchDeleted::NotFound(missing) => {
            let listed: Vec<&str> = missing.iter().take(20).map(String::as_str).collect();
            let more = if missing.len() > listed.len() {
                format!(" and {} more", missing.len() - listed.len())
            } else {
                String::new()
            };
            Err(ApiError::not_found(format!(
                "Indicators not found: {}{more}. Nothing was deleted.",
                listed.join(", ")
            )))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetroHuntBody {
    /// Days of stored telemetry to search; the tenant's retention at most. Default: the
    /// server's retro-hunt lookback (30 days).
    lookback_days: Option<u32>,
}

/// Most days a retro-hunt may search (telemetry is never kept longer than a year of days).
const MAX_LOOKBACK_DAYS: u32 = 366;

/// `POST /api/indicators/{id}/retrohunt` (Rampart's own): searches stored telemetry for the
/// indicator now and raises the alerts its matches call for, marked as retrospective.
pub async fn retrohunt(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body: RetroHuntBody = if body.iter().all(u8::is_ascii_whitespace) {
        RetroHuntBody::default()
    } else {
        parse_json(&body)?
    };
    let w = writer(&caller);
    let found = match is_id(&id) {
        true => state.store.get_indicator(caller.tenant, &id).await?,
        false => None,
    }
    .filter(|i| w.owner().is_none_or(|o| i.created_by == o));
    let Some(indicator) = found else {
        let shown: String = id.chars().take(100).collect();
        return Err(ApiError::not_found(format!(
            "Indicator {shown} was not found"
        )));
    };
    let days = match body.lookback_days {
        Some(0) => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "'lookbackDays' must be at least 1.",
            ));
        }
        Some(d) if d > MAX_LOOKBACK_DAYS => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("'lookbackDays' must be at most {MAX_LOOKBACK_DAYS}."),
            ));
        }
        Some(d) => u64::from(d),
        None => state
            .indicators
            .lookback()
            .as_secs()
            .div_ceil(86_400)
            .max(1),
    };
    let report = state
        .indicators
        .retrohunt(
            caller.tenant,
            &[indicator],
            std::time::Duration::from_secs(days * 86_400),
        )
        .await
        .map_err(|e| ApiError::internal("retro-hunt", e))?;
    Ok(axum::Json(report).into_response())
}

/// Longest feed source name.
const MAX_SOURCE_LEN: usize = 100;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    /// csv, txt, stix or misp; guessed from the content when absent.
    format: Option<String>,
    /// Expire the feed's indicators this import does not list.
    sync: Option<bool>,
}

/// `POST /api/indicators/feeds/{source}?format=…&sync=…` (Rampart's own): imports a
/// threat-intelligence feed file (MDE CSV template, plain list, STIX 2.1 bundle, MISP event) as
/// the indicators of `source`; a re-import updates them, `sync=true` expires those it no
/// longer lists. Every entry that cannot be stored is reported with its line or object id.
pub async fn import_feed(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(source): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let q: FeedQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("Query string: {e}.")))?;
    let source = source.trim().to_owned();
    if source.is_empty()
        || source.chars().count() > MAX_SOURCE_LEN
        || source.chars().any(char::is_control)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "The feed source must be 1-{MAX_SOURCE_LEN} characters without control characters."
            ),
        ));
    }
    let format = match q.format.as_deref() {
        Some(f) => f.parse::<rampart_intel::Format>().map_err(|e| {
            ApiError::new(ErrorCode::InvalidInput, format!("format: {e}"))
        })?,
        None => rampart_intel::Format::guess(std::path::Path::new(""), &body).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "The feed's format could not be told from its content; pass format=csv|txt|stix|misp.",
            )
        })?,
    };
    let parsed = tokio::task::spawn_blocking(move || {
        rampart_intel::parse(format, &body, &rampart_intel::Defaults::default())
    })
    .await
    .map_err(|e| ApiError::internal("feed parser", e))?
    .map_err(|e| ApiError::new(ErrorCode::InvalidRequestBody, e.to_string()))?;
    let mut writer = writer(&caller);
    writer.submitter.name = source;
    let target = crate::feeds::FeedTarget {
        store: state.store.as_ref(),
        matcher: Some(state.indicators.as_ref()),
        tenant: caller.tenant,
        ctx: caller.audit(),
        writer,
        sync: q.sync.unwrap_or(false),
    };
    let mut entries = crate::feeds::FeedEntries::default();
    entries.add(parsed, None);
    let report = crate::feeds::import(&target, entries, |_, _| {}).await?;
    Ok(axum::Json(report).into_response())
}

pub fn add(r: ApiRoutes) -> ApiRoutes {
    use crate::ratelimit::RouteFamily;
    r.add(
        RouteDef::get("/indicators", READ, "Indicators", "List active indicators")
            .collection("Indicator"),
        list,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/indicators",
            WRITE,
            "Indicators",
            "Submit an indicator, or update the one with the same value and type",
        )
        .returns("Indicator"),
        submit,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/indicators/import",
            WRITE,
            "Indicators",
            "Submit or update up to 500 indicators",
        )
        .returns("ImportIndicatorResults")
        .family(RouteFamily::IndicatorsImport),
        import,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/indicators/BatchDelete",
            WRITE,
            "Indicators",
            "Delete up to 500 indicators, all or none",
        )
        .family(RouteFamily::IndicatorsBatchDelete),
        batch_delete,
    )
    .add(
        RouteDef::new(
            Method::DELETE,
            "/indicators/{id}",
            WRITE,
            "Indicators",
            "Delete an indicator",
        ),
        delete,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/indicators/{id}/retrohunt",
            WRITE,
            "Indicators",
            "Search stored telemetry for the indicator now (Rampart's own); body {\"lookbackDays\": n} optional",
        )
        .returns("RetroHuntReport"),
        retrohunt,
    )
    .add(
        RouteDef::new(
            Method::POST,
            "/indicators/feeds/{source}",
            WRITE,
            "Indicators",
            "Import a threat-intelligence feed file (csv, txt, STIX 2.1, MISP) as the indicators of a source (Rampart's own); ?format=&sync=true expires what it no longer lists",
        )
        .returns("FeedReport")
        .family(RouteFamily::IndicatorsImport),
        import_feed,
    )
}
