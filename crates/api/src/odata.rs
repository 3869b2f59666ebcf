//! OData collection responses: `@odata.context`, `@odata.count`, `value`, `@odata.nextLink`.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use rampart_core::ErrorCode;
use rampart_core::odata::{EntitySet, QueryOptions};
use rampart_store::Page;

/// The query string as ordered pairs; a malformed one is a 400.
pub fn query_pairs(uri: &Uri) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(uri.query().unwrap_or("")).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("The query string is malformed: {e}"),
        )
    })
}

/// Parses and checks the OData options of a collection request.
pub fn options(uri: &Uri, set: &EntitySet) -> ApiResult<(Vec<(String, String)>, QueryOptions)> {
    let pairs = query_pairs(uri)?;
    let opts = QueryOptions::parse(&pairs, set)?;
    Ok((pairs, opts))
}

/// Keeps only the `$select`ed properties of each row.
fn project(rows: Vec<String>, select: &[String], set: &EntitySet) -> ApiResult<Vec<String>> {
    rows.into_iter()
        .map(|row| {
            let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row)
                .map_err(|e| ApiError::internal("stored entity is not a JSON object", e))?;
            let mut out = serde_json::Map::with_capacity(select.len());
            for name in select {
                let (k, v) = obj
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::ODataError,
                            format!("$select: '{name}' is not a property of {}", set.name),
                        )
                    })?;
                out.insert(k.clone(), v.clone());
            }
            Ok(serde_json::Value::Object(out).to_string())
        })
        .collect()
}

/// Writes a collection page as MDE does, splicing the stored JSON rows in without re-encoding
/// them (unless `$select` asks for a projection).
#[allow(clippy::too_many_arguments)] // the request and the page, each part needed once
pub fn collection_response(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    pairs: &[(String, String)],
    set: &EntitySet,
    opts: &QueryOptions,
    page: Page,
    rows: Vec<String>,
) -> ApiResult<Response> {
    let base = state.base_url(headers);
    let rows = match &opts.select {
        Some(select) => project(rows, select, set)?,
        None => rows,
    };
    let mut out = String::with_capacity(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 256);
    out.push_str("{\"@odata.context\":");
    out.push_str(
        &serde_json::to_string(&format!("{base}/api/$metadata#{}", set.name)).unwrap_or_default(),
    );
    if let Some(n) = page.count {
        out.push_str(",\"@odata.count\":");
        out.push_str(&n.to_string());
    }
    out.push_str(",\"value\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push(']');
    if let Some(token) = &page.next_token {
        let mut next: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("$skip") && !k.eq_ignore_ascii_case("$skiptoken")
            })
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        next.push(("$skiptoken", token));
        // Keep `$` literal in option names, as MDE's links do (`$skiptoken=`, not `%24skiptoken=`).
        let qs = next
            .iter()
            .map(|(k, v)| {
                let pair = serde_urlencoded::to_string([(k, v)]).unwrap_or_default();
                match pair.strip_prefix("%24") {
                    Some(rest) => format!("${rest}"),
                    None => pair,
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        let link = format!("{base}{}?{qs}", uri.path());
        out.push_str(",\"@odata.nextLink\":");
        out.push_str(&serde_json::to_string(&link).unwrap_or_default());
    }
    out.push('}');
    Ok(json_response(out))
}

/// A 200 with a JSON body that is already encoded.
pub fn json_response(body: String) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; odata.metadata=minimal; charset=utf-8"),
    );
    resp
}

/// Answers a collection request for `collection`, with `scope` ANDed to the client's filter and
/// each stored row passed through `row` (e.g. to trim a navigation property).
pub async fn list_collection(
    state: &AppState,
    tenant: rampart_core::TenantId,
    headers: &HeaderMap,
    uri: &Uri,
    collection: rampart_store::Collection,
    scope: Option<&rampart_core::odata::Filter>,
    row: impl Fn(&QueryOptions, String) -> ApiResult<String>,
) -> ApiResult<Response> {
    let (pairs, opts) = options(uri, collection.set)?;
    let mut page = state.store.list(tenant, collection, &opts, scope).await?;
    let rows = std::mem::take(&mut page.rows)
        .into_iter()
        .map(|r| row(&opts, r.body))
        .collect::<ApiResult<Vec<_>>>()?;
    collection_response(
        state,
        headers,
        uri,
        &pairs,
        collection.set,
        &opts,
        page,
        rows,
    )
}

/// A whole, unpaged collection: `{"@odata.context": "…/api/$metadata#{set}", "value": […]}`,
/// as MDE answers the lists it does not page.
pub fn value_response<T: serde::Serialize>(
    state: &AppState,
    headers: &HeaderMap,
    set: &str,
    value: &T,
) -> Response {
    let base = state.base_url(headers);
    entity_response(
        axum::http::StatusCode::OK,
        &serde_json::json!({ "@odata.context": format!("{base}/api/$metadata#{set}"), "value": value }),
    )
}

/// A single entity as JSON with its `@odata.context`, as MDE answers for one entity.
pub fn entity_response<T: serde::Serialize>(status: axum::http::StatusCode, value: &T) -> Response {
    let mut resp = (status, axum::Json(value)).into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; odata.metadata=minimal; charset=utf-8"),
    );
    resp
}
