//! The route table: every secured route declares its permissions and rate-limit family here,
//! and the guard enforces them. The same table feeds the OpenAPI document and the tests.

use crate::auth::{Caller, token};
use crate::error::{ApiError, CORRELATION_ID};
use crate::ratelimit::RouteFamily;
use crate::state::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use rampart_core::{ErrorCode, Permission};
use std::time::Instant;

/// One secured API route.
#[derive(Clone, Debug)]
pub struct RouteDef {
    pub method: Method,
    /// The path under `/api`, in axum's template syntax (`/alerts/{id}`).
    pub path: &'static str,
    /// The caller needs any one of these.
    pub permissions: &'static [Permission],
    pub family: RouteFamily,
    pub summary: &'static str,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// The response schema (a component name), if any.
    pub response: Option<&'static str>,
    /// Whether the route is an OData collection (takes `$filter`, `$top`, …).
    pub collection: bool,
    /// The body limit of this route, when it is not the server's (`--body-limit`).
    pub body_limit: Option<usize>,
}

impl RouteDef {
    /// A GET route in the default rate-limit family.
    pub fn get(
        path: &'static str,
        permissions: &'static [Permission],
        tag: &'static str,
        summary: &'static str,
    ) -> RouteDef {
        RouteDef {
            method: Method::GET,
            path,
            permissions,
            family: RouteFamily::Default,
            summary,
            tag,
            response: None,
            collection: false,
            body_limit: None,
        }
    }

    /// A route of another method in the default rate-limit family.
    pub fn new(
        method: Method,
        path: &'static str,
        permissions: &'static [Permission],
        tag: &'static str,
        summary: &'static str,
    ) -> RouteDef {
        RouteDef {
            method,
            path,
            permissions,
            family: RouteFamily::Default,
            summary,
            tag,
            response: None,
            collection: false,
            body_limit: None,
        }
    }

    /// An OData collection of `schema` items.
    pub fn collection(mut self, schema: &'static str) -> RouteDef {
        self.response = Some(schema);
        self.collection = true;
        self
    }

    /// Responds with one `schema`.
    pub fn returns(mut self, schema: &'static str) -> RouteDef {
        self.response = Some(schema);
        self
    }

    /// Takes bodies of up to `bytes` (uploads), whatever the server's limit for others.
    pub fn body_limit(mut self, bytes: usize) -> RouteDef {
        self.body_limit = Some(bytes);
        self
    }

    pub fn family(mut self, family: RouteFamily) -> RouteDef {
        self.family = family;
        self
    }
}

/// Builds the `/api` router from route definitions.
pub struct ApiRoutes {
    state: AppState,
    router: Router<AppState>,
    defs: Vec<RouteDef>,
}

fn method_filter(m: &Method) -> MethodFilter {
    match *m {
        Method::GET => MethodFilter::GET,
        Method::POST => MethodFilter::POST,
        Method::PATCH => MethodFilter::PATCH,
        Method::PUT => MethodFilter::PUT,
        Method::DELETE => MethodFilter::DELETE,
        _ => MethodFilter::GET,
    }
}

impl ApiRoutes {
    pub fn new(state: AppState) -> Self {
        ApiRoutes {
            state,
            router: Router::new(),
            defs: Vec::new(),
        }
    }

    /// Adds a route behind the guard for `def`.
    pub fn add<H, T>(mut self, def: RouteDef, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let guard = middleware::from_fn_with_state((self.state.clone(), def.clone()), guard);
        let mut route = on(method_filter(&def.method), handler).route_layer(guard);
        if let Some(bytes) = def.body_limit {
            // Inside the server-wide limit layer, so this one is what the extractors see.
            route = route.layer(axum::extract::DefaultBodyLimit::max(bytes));
        }
        self.router = self.router.route(def.path, route);
        self.defs.push(def);
        self
    }

    pub fn finish(self) -> (Router<AppState>, Vec<RouteDef>) {
        (self.router, self.defs)
    }
}

fn bearer(req: &Request) -> Option<&str> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Authenticates the caller, checks the route's permissions and rate limit, and hands the
/// [`Caller`] to the handler.
async fn guard(
    State((state, def)): State<(AppState, RouteDef)>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(raw) = bearer(&req) else {
        return ApiError::new(
            ErrorCode::Unauthorized,
            "Authorization: Bearer <access token> is required.",
        )
        .into_response();
    };
    let base = state.base_url(req.headers());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified = match state.verified.get(&base, raw, now) {
        Some(v) => Ok(v),
        None => verify_fresh(&state, raw, &base).await,
    };
    let caller = match verified {
        Ok(v) => Caller::from(v),
        Err(e) => return ApiError::new(ErrorCode::Unauthorized, e.to_string()).into_response(),
    };
    if !caller.has_any(def.permissions) {
        let names: Vec<&str> = def.permissions.iter().map(|p| p.name()).collect();
        return ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "The application lacks the permission this API requires: one of {}.",
                names.join(", ")
            ),
        )
        .into_response();
    }
    if let Err(wait) = state
        .limiter
        .check(caller.tenant, caller.client_id, def.family)
    {
        let mut resp = ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "API calls quota exceeded for {:?} routes; retry after {wait} seconds.",
                def.family
            ),
        )
        .into_response();
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(wait));
        return resp;
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Verifies a token not in the cache (reloading keys once if another server rotated them), and
/// caches the result.
async fn verify_fresh(
    state: &AppState,
    raw: &str,
    base: &str,
) -> Result<token::VerifiedToken, token::TokenError> {
    let verified = match token::verify(raw, &state.keys, base) {
        Err(token::TokenError::UnknownKey) => {
            if let Err(e) = state.keys.reload(state.store.as_ref()).await {
                tracing::warn!("reloading signing keys: {e}");
            }
            token::verify(raw, &state.keys, base)
        }
        other => other,
    }?;
    state.verified.put(base, raw, &verified);
    Ok(verified)
}

/// Gives the request its correlation id, logs it and records its metrics.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let cid = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".into());
    let mut resp = CORRELATION_ID.scope(cid.clone(), next.run(req)).await;
    let status = resp.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&cid) {
        resp.headers_mut().insert("x-correlation-id", v);
    }
    let elapsed = started.elapsed();
    state
        .metrics
        .record(method.as_str(), &route, status, elapsed);
    tracing::debug!(correlation_id = %cid, %method, route, status, micros = elapsed.as_micros() as u64, "request");
    resp
}

/// 404 for paths that are no route.
pub async fn not_found(req: Request) -> ApiError {
    let path: String = req.uri().path().chars().take(200).collect();
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("No resource at {} {path}.", req.method()),
    )
}

/// 405 for a known path with the wrong method.
pub async fn method_not_allowed(req: Request) -> ApiError {
    let path: String = req.uri().path().chars().take(200).collect();
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {path}.", req.method()),
    )
}

/// The answer to a panic in a handler: a 500 in MDE format (the panic itself is logged).
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::internal("handler panicked", detail).into_response()
}
