//! Telemetry in: `POST /agent/v1/telemetry` for agents and simulators (device credential,
//! zstd-compressed batches, each with a batch id), and `POST /api/telemetry/import` for bulk
//! imports by partner apps (NDJSON rows, MDE streaming-API records, CSV exports).
//!
//! A batch is answered 200 only after the event store has it durably; a retried batch id is
//! answered 200 again without storing anything twice. Bad rows are rejected one by one with their
//! reason, and the good rows of the same batch are kept. When the store can't take data (disk
//! full, object store failing, ingestion ahead of storage) the answer is 503 with `Retry-After`.

use crate::auth::Caller;
use crate::auth::device::authenticate_device;
use crate::body::read_bytes;
use crate::error::{ApiError, ApiResult};
use crate::router::{ApiRoutes, RouteDef};
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rampart_core::schema::{self, Table};
use rampart_core::{ErrorCode, Permission as P, TenantId};
use rampart_telemetry::formats::{self, Format, ImportOptions};
use rampart_telemetry::rows::TableBatchBuilder;
use rampart_telemetry::wire;
use rampart_telemetry::{Appended, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Read;

/// Largest decompressed body: a zstd bomb must not take the server's memory.
const MAX_DECOMPRESSED: u64 = 256 << 20;
/// Rejections listed in a response (all are counted).
const MAX_LISTED: usize = 100;

/// The body of `Content-Encoding: zstd` requests, decompressed; others as they are.
fn decoded(headers: &HeaderMap, body: Bytes) -> ApiResult<Bytes> {
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    match encoding.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => Ok(body),
        "zstd" => {
            let mut out = Vec::with_capacity(body.len() * 4);
            let decoder = zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| ApiError::new(ErrorCode::InvalidRequestBody, format!("zstd: {e}")))?;
            decoder
                .take(MAX_DECOMPRESSED + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::new(
                        ErrorCode::InvalidRequestBody,
                        format!("The body is not valid zstd: {e}"),
                    )
                })?;
            if out.len() as u64 > MAX_DECOMPRESSED {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("The decompressed body exceeds {MAX_DECOMPRESSED} bytes."),
                ));
            }
            Ok(out.into())
        }
        other => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("Content-Encoding '{other}' is not supported; send zstd or identity."),
        )),
    }
}

/// The answer to a store error: 503 with `Retry-After` when it is transient.
fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Unavailable {
            reason,
            retry_after,
        } => {
            let mut resp = ApiError::new(ErrorCode::ServiceUnavailable, format!("The event store cannot take data now ({reason}); nothing of this batch was acknowledged. Retry later.")).into_response();
            let secs = retry_after.as_secs().max(1);
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
            resp
        }
        StoreError::InvalidInput(m) => ApiError::new(ErrorCode::InvalidInput, m).into_response(),
        StoreError::Internal(m) => ApiError::internal("event store", m).into_response(),
    }
}

fn count_rows(
    state: &AppState,
    tables: &[(&'static Table, datafusion::arrow::array::RecordBatch)],
    rejected: &BTreeMap<String, u64>,
) {
    for (t, b) in tables {
        state
            .metrics
            .record_rows(t.name, "accepted", b.num_rows() as u64);
    }
    for (t, n) in rejected {
        state.metrics.record_rows(t, "rejected", *n);
    }
}

/// `POST /agent/v1/telemetry`: either JSON, `{"batchId": "…", "tables": {"<Table>": [{row}, …]}}`,
/// or — with `Content-Type: application/vnd.rampart.telemetry+arrow` and the batch id in the
/// `Rampart-Batch-Id` header — Arrow IPC streams, one per table (`rampart_telemetry::wire`).
pub async fn agent_batch(State(state): State<AppState>, req: Request) -> Response {
    match agent_batch_inner(&state, req).await {
        Ok(r) | Err(r) => r,
    }
}

/// What a batch body holds once converted: its id, the rows to store, and what was refused.
struct ParsedBatch {
    batch_id: String,
    tables: Vec<(&'static Table, datafusion::arrow::array::RecordBatch)>,
    rejections: Vec<Value>,
    rejected_by_table: BTreeMap<String, u64>,
}

impl ParsedBatch {
    fn new(batch_id: String) -> Self {
        ParsedBatch {
            batch_id,
            tables: Vec::new(),
            rejections: Vec::new(),
            rejected_by_table: BTreeMap::new(),
        }
    }

    /// Counts `rows` refused rows of `table`; the first [`MAX_LISTED`] are listed.
    fn reject(&mut self, table: &str, index: Option<usize>, rows: u64, reason: String) {
        *self.rejected_by_table.entry(table.to_owned()).or_default() += rows;
        if self.rejections.len() < MAX_LISTED {
            self.rejections
                .push(json!({ "table": table, "index": index, "reason": reason }));
        }
    }
}

fn bad_body(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequestBody, message)
}

async fn agent_batch_inner(state: &AppState, req: Request) -> Result<Response, Response> {
    let headers = req.headers().clone();
    let device = authenticate_device(state, &headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let body = read_bytes(req, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let body = decoded(&headers, body).map_err(IntoResponse::into_response)?;
    let binary = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(wire::CONTENT_TYPE));
    let parsed = if binary {
        let batch_id = headers
            .get("rampart-batch-id")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                bad_body("Rampart-Batch-Id: required with an Arrow body (unique per batch; a retry sends the same one)").into_response()
            })?
            .to_owned();
        parse_arrow(&body, &device.device_id, batch_id)
    } else {
        parse_json(&body, &device.device_id)
    }
    .map_err(IntoResponse::into_response)?;
    let ParsedBatch {
        batch_id,
        tables,
        rejections,
        rejected_by_table,
    } = parsed;
    let scoped_id = format!("{}/{batch_id}", device.device_id);
    let outcome = state
        .events
        .append(device.tenant, &scoped_id, tables.clone())
        .await
        .map_err(store_error)?;
    let duplicate = outcome == Appended::Duplicate;
    let accepted: usize = tables.iter().map(|(_, b)| b.num_rows()).sum();
    let rejected: u64 = rejected_by_table.values().sum();
    if !duplicate {
        count_rows(state, &tables, &rejected_by_table);
        state.fleet.observe(state, device.tenant, &tables).await;
        state.detections.observe(device.tenant, &tables).await;
        state.indicators.observe(device.tenant, &tables).await;
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "batchId": batch_id,
            "duplicate": duplicate,
            "accepted": if duplicate { 0 } else { accepted },
            "rejected": rejected,
            "rejections": rejections,
        })),
    )
        .into_response())
}

fn parse_arrow(body: &[u8], device_id: &str, batch_id: String) -> ApiResult<ParsedBatch> {
    let decoded = wire::decode(body, device_id).map_err(|e| bad_body(e.to_string()))?;
    let mut out = ParsedBatch::new(batch_id);
    for r in decoded.rejected {
        out.reject(&r.table, r.index, r.rows as u64, r.reason);
    }
    out.tables = decoded.tables;
    Ok(out)
}

fn parse_json(body: &[u8], device_id: &str) -> ApiResult<ParsedBatch> {
    let batch: Value =
        serde_json::from_slice(body).map_err(|e| bad_body(format!("The body is not JSON: {e}")))?;
    let Some(batch_id) = batch.get("batchId").and_then(Value::as_str) else {
        return Err(bad_body(
            "batchId: required (a string, unique per batch; a retry sends the same one)",
        ));
    };
    let Some(tables) = batch.get("tables").and_then(Value::as_object) else {
        return Err(bad_body(
            "tables: required (an object of table name -> array of rows)",
        ));
    };
    let mut out = ParsedBatch::new(batch_id.to_owned());
    for (name, rows) in tables {
        let Some(table) = schema::table(name) else {
            let n = rows.as_array().map_or(1, Vec::len);
            out.reject(name, None, n as u64, format!("unknown table {name}"));
            continue;
        };
        let Some(rows) = rows.as_array() else {
            out.reject(name, None, 1, "expected an array of rows".into());
            continue;
        };
        let mut b = TableBatchBuilder::with_capacity(table, rows.len());
        let device_value = Value::String(device_id.to_owned());
        for (i, row) in rows.iter().enumerate() {
            let Some(row) = row.as_object() else {
                out.reject(name, Some(i), 1, "expected a JSON object".into());
                continue;
            };
            // A device reports for itself only; a row without DeviceId is the caller's. The id
            // is stored as the credential names it (lower case), whatever case it was sent in,
            // so that one device is one DeviceId in hunting. `restamp`: whether the row gets the
            // credential's id; `None` for another device's row.
            let restamp = match row.get(schema::DEVICE_ID) {
                Some(Value::String(d)) if d == device_id => Some(false),
                Some(Value::String(d)) => d.eq_ignore_ascii_case(device_id).then_some(true),
                None | Some(Value::Null) => Some(table.column(schema::DEVICE_ID).is_some()),
                Some(_) => None,
            };
            let result = match restamp {
                Some(false) => b.push_json(row),
                Some(true) => {
                    let mut owned: Map<String, Value> = row.clone();
                    owned.insert(schema::DEVICE_ID.into(), device_value.clone());
                    b.push_json(&owned)
                }
                None => {
                    let reason = format!(
                        "{name}.DeviceId: a device may only send its own telemetry ({device_id})"
                    );
                    out.reject(name, Some(i), 1, reason);
                    continue;
                }
            };
            if let Err(e) = result {
                out.reject(name, Some(i), 1, e.to_string());
            }
        }
        if !b.is_empty() {
            out.tables.push((table, b.finish()));
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
pub struct ImportQuery {
    table: Option<String>,
}

/// `POST /api/telemetry/import?table=…`: NDJSON rows, streaming-API records (also in
/// `{"records": […]}` documents) or, with `Content-Type: text/csv`, a CSV export.
pub async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ImportQuery>,
    req: Request,
) -> Response {
    match import_inner(&state, caller.tenant, q, req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn import_inner(
    state: &AppState,
    tenant: TenantId,
    q: ImportQuery,
    req: Request,
) -> Result<Response, Response> {
    let headers = req.headers().clone();
    let table = match q.table.as_deref() {
        Some(name) => Some(schema::table(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("table: no table named '{name}'"),
            )
            .into_response()
        })?),
        None => None,
    };
    // The same key makes a retried import store nothing twice; without one, each call is new.
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        Some(Ok(k)) if !k.is_empty() && k.len() <= 200 => k.to_owned(),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "Idempotency-Key: 1-200 visible characters",
            )
            .into_response());
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let format = Format::of_content_type(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let body = read_bytes(req, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let body = decoded(&headers, body).map_err(IntoResponse::into_response)?;
    let opts = ImportOptions {
        table,
        max_kept_rejections: MAX_LISTED,
        ..Default::default()
    };
    let parsed = tokio::task::spawn_blocking(move || {
        let mut chunks = Vec::new();
        formats::import(
            &body[..],
            format,
            &opts,
            |c| -> Result<(), std::convert::Infallible> {
                chunks.push(c);
                Ok(())
            },
        )
        .map(|()| chunks)
    })
    .await
    .map_err(|e| ApiError::internal("import task", e).into_response())?;
    let chunks = parsed
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()).into_response())?;
    let (mut accepted, mut rejected, mut duplicate_rows) = (0u64, 0u64, 0u64);
    let mut rejections = Vec::new();
    let mut per_table: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        rejected += chunk.rejected_count;
        for r in chunk.rejected {
            if rejections.len() < MAX_LISTED {
                rejections.push(json!({ "location": r.location.to_string(), "reason": r.reason }));
            }
        }
        let rows = chunk.accepted;
        let outcome = state
            .events
            .append(tenant, &format!("import/{key}/{i}"), chunk.tables.clone())
            .await
            .map_err(store_error)?;
        if outcome == Appended::Duplicate {
            duplicate_rows += rows;
            continue;
        }
        accepted += rows;
        for (t, b) in &chunk.tables {
            *per_table.entry(t.name).or_default() += b.num_rows() as u64;
        }
        count_rows(state, &chunk.tables, &BTreeMap::new());
        state.fleet.observe(state, tenant, &chunk.tables).await;
        state.detections.observe(tenant, &chunk.tables).await;
        state.indicators.observe(tenant, &chunk.tables).await;
    }
    if rejected > 0 {
        state.metrics.record_rows("(import)", "rejected", rejected);
    }
    Ok(axum::Json(json!({
        "accepted": accepted,
        "alreadyStored": duplicate_rows,
        "rejected": rejected,
        "tables": per_table,
        "rejections": rejections,
    }))
    .into_response())
}

pub fn add(r: ApiRoutes) -> ApiRoutes {
    r.add(
        RouteDef::new(
            axum::http::Method::POST,
            "/telemetry/import",
            &[P::EventWrite],
            "Telemetry",
            "Import advanced-hunting rows: NDJSON, streaming-API records or CSV (Rampart)",
        ),
        import,
    )
    .add(
        RouteDef::get(
            "/telemetry/retention",
            &[
                P::SecurityConfigurationRead,
                P::SecurityConfigurationReadWrite,
            ],
            "Telemetry",
            "How many days the tenant keeps telemetry (Rampart)",
        ),
        get_retention,
    )
    .add(
        RouteDef::new(
            axum::http::Method::PUT,
            "/telemetry/retention",
            &[P::SecurityConfigurationReadWrite],
            "Telemetry",
            "Set how many days the tenant keeps telemetry; null for the default (Rampart)",
        ),
        put_retention,
    )
}

/// `GET /api/telemetry/retention`: how many days the caller's tenant keeps telemetry.
pub async fn get_retention(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> axum::Json<Value> {
    axum::Json(json!({ "retentionDays": state.events.retention(caller.tenant).await }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionBody {
    /// Days to keep, 1–3650; null goes back to the server's default.
    retention_days: Option<u32>,
}

/// `PUT /api/telemetry/retention`: sets the tenant's retention (Rampart's own; MDE keeps 30 days).
pub async fn put_retention(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    crate::body::JsonBody(body): crate::body::JsonBody<RetentionBody>,
) -> Response {
    if body
        .retention_days
        .is_some_and(|d| !(1..=3650).contains(&d))
    {
        return ApiError::new(
            ErrorCode::InvalidInput,
            "retentionDays: between 1 and 3650, or null for the default",
        )
        .into_response();
    }
    if let Err(e) = state
        .events
        .set_retention(caller.tenant, body.retention_days)
        .await
    {
        return store_error(e);
    }
    axum::Json(json!({ "retentionDays": state.events.retention(caller.tenant).await }))
        .into_response()
}
