//! The OpenAPI 3.1 document, generated from the route table and the entity types, and a page
//! that renders it with no asset from outside the binary.

use crate::router::RouteDef;
use axum::http::{HeaderValue, Method};
use axum::response::{Html, IntoResponse, Response};
use rampart_core::Permission;
use serde_json::{Value, json};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(components(schemas(
    rampart_core::alert::Alert,
    rampart_core::audit::AuditEntry,
    rampart_core::machine::Machine,
    rampart_core::machine::MachineGroup,
    rampart_core::machine_action::MachineAction,
    rampart_core::incident::Incident,
    rampart_core::correlation::CorrelationPolicy,
    rampart_core::correlation::CorrelationReason,
    rampart_core::signal::SharingPolicy,
    rampart_core::investigation::Investigation,
    rampart_core::investigation::InvestigatedEntity,
    rampart_core::investigation::Relation,
    rampart_core::remediation::RemediationAction,
    rampart_core::indicator::Indicator,
    rampart_core::indicator::IndicatorRequest,
    rampart_core::indicator::ImportIndicatorResults,
    rampart_core::enrollment::EnrollmentToken,
    rampart_core::detection_rule::DetectionRule,
    rampart_core::detection_rule::DetectionRun,
    rampart_core::yara_rule::YaraRuleSet,
    rampart_core::library::LibraryFile,
    rampart_detect::RetroHuntReport,
    rampart_detect::retrohunt::RetroHit,
    crate::feeds::FeedReport,
    crate::feeds::FeedProblem,
)))]
struct Schemas;

fn odata_parameters() -> Vec<Value> {
    let p = |name: &str, desc: &str, ty: &str| json!({ "name": name, "in": "query", "required": false, "description": desc, "schema": { "type": ty } });
    vec![
        p(
            "$filter",
            "OData filter: eq ne gt ge lt le and or not, startswith/endswith/contains, in (…), any(…), null",
            "string",
        ),
        p("$top", "Page size, at most 10,000 (the default)", "integer"),
        p("$skip", "Rows to skip before the first page", "integer"),
        p(
            "$orderby",
            "Comma-separated properties, each optionally asc/desc",
            "string",
        ),
        p("$select", "Comma-separated properties to return", "string"),
        p("$count", "true to add @odata.count", "boolean"),
        p("$expand", "Navigation properties to include", "string"),
        p("$skiptoken", "Opaque cursor from @odata.nextLink", "string"),
    ]
}

fn error_response(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// Builds the document. Each operation lists the permissions it accepts under `security` (as
/// OAuth2 scopes) and `x-permissions`, and its rate-limit family under `x-rate-limit-family`.
pub fn openapi_document(defs: &[RouteDef]) -> Value {
    let mut paths = serde_json::Map::new();
    for d in defs {
        let path = format!("/api{}", d.path);
        let params: Vec<Value> = d
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .chain(if d.collection { odata_parameters() } else { Vec::new() })
            .collect();
        let perms: Vec<&str> = d.permissions.iter().map(|p| p.name()).collect();
        let ok = match (d.response, d.collection) {
            (Some(s), true) => {
                json!({ "description": "One page of the collection", "content": { "application/json": { "schema": {
                "type": "object", "properties": {
                    "@odata.context": { "type": "string" }, "@odata.count": { "type": "integer" },
                    "@odata.nextLink": { "type": "string" },
                    "value": { "type": "array", "items": { "$ref": format!("#/components/schemas/{s}") } } } } } } })
            }
            (Some(s), false) => {
                json!({ "description": "OK", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{s}") } } } })
            }
            (None, _) => json!({ "description": "OK" }),
        };
        let op = json!({
            "summary": d.summary,
            "tags": [d.tag],
            "operationId": format!("{}{}", d.method.as_str().to_lowercase(), d.path.replace(['/', '{', '}'], "_")),
            "description": format!("Requires one of the application permissions: {}.", perms.join(", ")),
            "parameters": params,
            "security": [{ "oauth2": perms }],
            "x-permissions": perms,
            "x-rate-limit-family": format!("{:?}", d.family),
            "responses": {
                "200": ok,
                "400": error_response("Bad request (ODataError, InvalidRequestBody, …)"),
                "401": error_response("Missing or invalid token"),
                "403": error_response("The token lacks the permission"),
                "404": error_response("Not found"),
                "429": error_response("Rate limit exceeded; see Retry-After"),
            }
        });
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[method_key(&d.method)] = op;
    }
    add_agent_paths(&mut paths);
    let mut components = serde_json::to_value(Schemas::openapi().components).unwrap_or(Value::Null);
    if !components.is_object() {
        components = json!({});
    }
    components["schemas"]["Error"] = json!({
        "type": "object",
        "properties": { "error": { "type": "object", "properties": {
            "code": { "type": "string" }, "message": { "type": "string" },
            "target": { "type": "string", "description": "The request's correlation id" } } } }
    });
    let scopes: serde_json::Map<String, Value> = Permission::ALL
        .iter()
        .map(|p| {
            (
                p.name().to_owned(),
                Value::String(p.description().to_owned()),
            )
        })
        .collect();
    components["securitySchemes"] = json!({ "oauth2": { "type": "oauth2", "description":
        "Client credentials as Entra ID: POST /{tenant}/oauth2/v2.0/token with scope <server>/.default. The app's roles are the permissions.",
        "flows": { "clientCredentials": { "tokenUrl": "/{tenant}/oauth2/v2.0/token", "scopes": scopes } } },
        "device": { "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "Device <deviceId>:<deviceSecret>, as /agent/v1/enroll issued them." } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Rampart API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Rampart partner API, wire-compatible with the Microsoft Defender for Endpoint API. Errors are {\"error\":{\"code\",\"message\",\"target\"}} with the correlation id in target.",
        },
        "paths": paths,
        "components": components,
    })
}

/// The agent-facing routes (Rampart's own, outside `/api`): they take an enrollment token or a
/// device credential, not an app token.
fn add_agent_paths(paths: &mut serde_json::Map<String, Value>) {
    paths.insert("/agent/v1/enroll".into(), json!({ "post": {
        "summary": "Enroll a device with an enrollment token; returns its device id and secret (shown once)",
        "tags": ["Agents"],
        "operationId": "post_agent_v1_enroll",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object",
            "required": ["enrollmentToken", "computerDnsName", "osPlatform"],
            "properties": { "enrollmentToken": { "type": "string" }, "computerDnsName": { "type": "string" },
                "osPlatform": { "type": "string" }, "deviceId": { "type": "string", "description": "40 hex characters; to keep an id the agent already has" } } } } } },
        "responses": {
            "201": { "description": "Enrolled: {deviceId, deviceSecret, tenantId}" },
            "400": error_response("A field is missing or malformed"),
            "401": error_response("The enrollment token is unknown, revoked, expired or used up"),
            "409": error_response("The device id is already enrolled"),
        }
    }}));
    paths.insert("/agent/v1/telemetry".into(), json!({ "post": {
        "summary": "Send a batch of telemetry rows (any Device* tables); acknowledged once durable",
        "tags": ["Agents"],
        "operationId": "post_agent_v1_telemetry",
        "description": "Body (optionally Content-Encoding: zstd): {\"batchId\": \"…\", \"tables\": {\"DeviceProcessEvents\": [{row}, …]}}. A retried batchId is acknowledged without being stored twice. Rows are checked one by one; rejected rows are listed with their reason and the rest are kept.",
        "security": [{ "device": [] }],
        "responses": {
            "200": { "description": "{batchId, duplicate, accepted, rejected, rejections: [{table, index, reason}]}" },
            "400": error_response("The body is not a batch"),
            "401": error_response("Missing or invalid device credential"),
            "503": error_response("The event store cannot take data now; retry after Retry-After seconds"),
        }
    }}));
    paths.insert("/agent/v1/indicators".into(), json!({ "get": {
        "summary": "The indicators this device enforces itself: blocked/allowed file hashes and addresses",
        "tags": ["Agents"],
        "operationId": "get_agent_v1_indicators",
        "description": "Filtered for the device: active, scoped to its device group, Block/BlockAndRemediate (as Block) and Allowed (as Allow). Versioned by ETag; If-None-Match with the current one is answered 304.",
        "security": [{ "device": [] }],
        "responses": {
            "200": { "description": "{version, files: [{algorithm, hash, action, indicatorId, title}], networks: [{value, action, indicatorId, title}]}" },
            "304": { "description": "Unchanged since the ETag given" },
            "401": error_response("Missing or invalid device credential"),
        }
    }}));
    paths.insert("/agent/v1/commands/poll".into(), json!({ "post": {
        "summary": "Take the device's next commands (its machine actions), waiting up to waitSeconds for one",
        "tags": ["Agents"],
        "operationId": "post_agent_v1_commands_poll",
        "description": "Body: {\"waitSeconds\": 0-50, \"running\": [command ids the agent holds]}. Each command handed out marks its machine action InProgress. A running command not listed in `running` is sent again; listed ones the server no longer waits for (cancelled, timed out) come back in `cancelled`. The answer comes as soon as the device's action queue changes.",
        "security": [{ "device": [] }],
        "responses": {
            "200": { "description": "{commands: [{id, machineActionId, kind: {type, …parameters}}], cancelled: [ids]}" },
            "400": error_response("The body is not a poll"),
            "401": error_response("Missing or invalid device credential"),
        }
    }}));
    paths.insert("/agent/v1/commands/{id}".into(), json!({ "post": {
        "summary": "Report progress of a command: InProgress, Succeeded or Failed (which completes the machine action)",
        "tags": ["Agents"],
        "operationId": "post_agent_v1_command_update",
        "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
        "description": "Body: {\"commandId\": \"…\", \"state\": \"InProgress|Succeeded|Failed\", \"detail\": \"…\"}. A failure's detail becomes the action's troubleshootInfo.",
        "security": [{ "device": [] }],
        "responses": {
            "200": { "description": "{commandId, status}: the machine action's status now" },
            "400": error_response("The body is not a command update"),
            "401": error_response("Missing or invalid device credential"),
            "404": error_response("The device has no such command"),
            "409": error_response("The machine action is not running any more (cancelled, timed out or finished)"),
        }
    }}));
}

fn method_key(m: &Method) -> &'static str {
    match *m {
        Method::POST => "post",
        Method::PATCH => "patch",
        Method::PUT => "put",
        Method::DELETE => "delete",
        _ => "get",
    }
}

/// `GET /api/openapi.json`.
pub fn openapi_response(doc: &str) -> Response {
    let mut resp = doc.to_owned().into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

/// `GET /api/docs`: a self-contained page that renders `/api/openapi.json`.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
