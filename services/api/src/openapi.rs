//! The OpenAPI 3 document of the REST API (`/api/openapi.json`), generated from the code:
//! response schemas are derived from the representation types, filter parameters from the
//! resources' filter tables, and operations from the table below, which the route matrix
//! test checks against the router. `/api/swagger/` and `/api/redoc/` (the original's paths)
//! serve an HTML reference that renders the document with no network access.

use crate::query::FilterField;
use crate::repr::{
    ContainerTypeRepr, ExecutableTypeRepr, InstanceRepr, QueueRepr, UserRepr, WhitelistRepr,
};
use crate::resources::{instances, queues, types, users};
use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use saltant_store::types::TypeClass;
use schemars::JsonSchema;
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

// --- request bodies (JSON, form-urlencoded or multipart; forms carry JSON fields as text)

/// A task type's fields, common to both classes.
#[allow(dead_code)]
#[derive(JsonSchema)]
struct ExecutableTaskTypeInput {
    /// Unique, at most 50 characters.
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// Split like a shell would (no shell runs it); `$VAR` expands from the executor's
    /// environment. The instance's arguments follow as one JSON argument.
    command_to_run: String,
    #[serde(default)]
    environment_variables: Option<Vec<String>>,
    #[serde(default)]
    required_arguments: Option<Vec<String>>,
    #[serde(default)]
    required_arguments_default_values: Option<Map<String, Value>>,
    /// If set, arguments go to a JSON file passed after this option instead.
    #[serde(default)]
    json_file_option: Option<String>,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
enum ContainerType {
    Docker,
    Singularity,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct ContainerTaskTypeInput {
    name: String,
    #[serde(default)]
    description: Option<String>,
    command_to_run: String,
    #[serde(default)]
    environment_variables: Option<Vec<String>>,
    #[serde(default)]
    required_arguments: Option<Vec<String>>,
    #[serde(default)]
    required_arguments_default_values: Option<Map<String, Value>>,
    /// Where the container's logs folder is mounted; `""` for none.
    #[serde(default)]
    logs_path: Option<String>,
    /// Where the container's results folder is mounted; `""` for none.
    #[serde(default)]
    results_path: Option<String>,
    container_image: String,
    container_type: ContainerType,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct TaskQueueInput {
    /// Letters, digits, `_ @ + -`; at most 50 characters.
    #[schemars(regex(pattern = r"^[\w@+-]+$"), length(max = 50))]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    runs_executable_tasks: Option<bool>,
    #[serde(default)]
    runs_docker_container_tasks: Option<bool>,
    #[serde(default)]
    runs_singularity_container_tasks: Option<bool>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    whitelists: Option<Vec<i64>>,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct TaskWhitelistInput {
    #[schemars(length(max = 50))]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    whitelisted_container_task_types: Option<Vec<i64>>,
    #[serde(default)]
    whitelisted_executable_task_types: Option<Vec<i64>>,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct TaskInstanceInput {
    #[serde(default)]
    name: Option<String>,
    task_type: i64,
    /// An active queue, public or the requester's, whose whitelist has the type.
    task_queue: i64,
    /// Missing required arguments are filled from the type's defaults.
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
enum StateName {
    Created,
    Published,
    Running,
    Successful,
    Failed,
    Terminated,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct StatusInput {
    /// States only move forward; a finished instance stays finished.
    state: StateName,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct StatusOutput {
    uuid: uuid::Uuid,
    state: StateName,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct TokenObtainInput {
    username: String,
    password: String,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct TokenPair {
    refresh: String,
    access: String,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct TokenRefreshInput {
    refresh: String,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct AccessToken {
    access: String,
}

// --- operations

#[derive(Clone, Copy)]
enum Body {
    None,
    Schema(&'static str),
}

#[derive(Clone, Copy)]
enum Out {
    One(&'static str),
    Page(&'static str, &'static [FilterField], u32),
    Any,
}

struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Body,
    status: u16,
    out: Out,
    auth: bool,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Body,
    status: u16,
    out: Out,
) -> Op {
    Op {
        method,
        path,
        summary,
        body,
        status,
        out,
        auth: true,
    }
}

fn operations() -> Vec<Op> {
    use Body::{None as NoBody, Schema};
    let ct = types::filter_fields(TypeClass::Container);
    let et = types::filter_fields(TypeClass::Executable);
    let mut ops = vec![
        op(
            "get",
            "/api/",
            "API root: every resource list's URL",
            NoBody,
            200,
            Out::Any,
        ),
        op(
            "get",
            "/api/users/",
            "List users",
            NoBody,
            200,
            Out::Page("User", users::FILTERS, 100),
        ),
        op(
            "get",
            "/api/users/{username}/",
            "Read a user",
            NoBody,
            200,
            Out::One("User"),
        ),
    ];
    for (path, name, filters, input) in [
        (
            "/api/containertasktypes/",
            "ContainerTaskType",
            ct,
            "ContainerTaskTypeInput",
        ),
        (
            "/api/executabletasktypes/",
            "ExecutableTaskType",
            et,
            "ExecutableTaskTypeInput",
        ),
    ] {
        let detail: &'static str = Box::leak(format!("{path}{{id}}/").into_boxed_str());
        ops.push(op(
            "get",
            path,
            "List task types",
            NoBody,
            200,
            Out::Page(name, filters, 100),
        ));
        ops.push(op(
            "post",
            path,
            "Create a task type",
            Schema(input),
            201,
            Out::One(name),
        ));
        ops.push(op(
            "get",
            detail,
            "Read a task type",
            NoBody,
            200,
            Out::One(name),
        ));
        ops.push(op(
            "put",
            detail,
            "Update a task type (owner or superuser)",
            Schema(input),
            200,
            Out::One(name),
        ));
    }
    for (path, name, filters, input) in [
        (
            "/api/taskqueues/",
            "TaskQueue",
            queues::QUEUE_FILTERS,
            "TaskQueueInput",
        ),
        (
            "/api/taskwhitelists/",
            "TaskWhitelist",
            queues::WHITELIST_FILTERS,
            "TaskWhitelistInput",
        ),
    ] {
        let detail: &'static str = Box::leak(format!("{path}{{id}}/").into_boxed_str());
        ops.push(op(
            "get",
            path,
            "List",
            NoBody,
            200,
            Out::Page(name, filters, 100),
        ));
        ops.push(op(
            "post",
            path,
            "Create",
            Schema(input),
            201,
            Out::One(name),
        ));
        ops.push(op("get", detail, "Read", NoBody, 200, Out::One(name)));
        ops.push(op(
            "put",
            detail,
            "Update (owner or superuser)",
            Schema(input),
            200,
            Out::One(name),
        ));
        ops.push(op(
            "patch",
            detail,
            "Update the given fields (owner or superuser)",
            Schema(input),
            200,
            Out::One(name),
        ));
    }
    for path in [
        "/api/containertaskinstances/",
        "/api/executabletaskinstances/",
    ] {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        ops.push(op(
            "get",
            path,
            "List instances, newest first",
            NoBody,
            200,
            Out::Page("TaskInstance", instances::FILTERS, 10),
        ));
        ops.push(op(
            "post",
            path,
            "Create (and run) an instance",
            Schema("TaskInstanceInput"),
            201,
            Out::One("TaskInstance"),
        ));
        ops.push(op(
            "get",
            leak(format!("{path}{{uuid}}/")),
            "Read an instance",
            NoBody,
            200,
            Out::One("TaskInstance"),
        ));
        ops.push(op(
            "post",
            leak(format!("{path}{{uuid}}/clone/")),
            "Run a copy as the requester",
            NoBody,
            201,
            Out::One("TaskInstance"),
        ));
        ops.push(op(
            "post",
            leak(format!("{path}{{uuid}}/terminate/")),
            "Terminate (owner or superuser); the instance as it is now",
            NoBody,
            202,
            Out::One("TaskInstance"),
        ));
    }
    ops.push(op(
        "patch",
        "/api/updatetaskinstancestatus/{uuid}/",
        "Report a state (owner or superuser; forward only)",
        Schema("StatusInput"),
        200,
        Out::One("StatusOutput"),
    ));
    let mut obtain = op(
        "post",
        "/api/token/",
        "Obtain a JWT pair",
        Schema("TokenObtainInput"),
        200,
        Out::One("TokenPair"),
    );
    obtain.auth = false;
    ops.push(obtain);
    let mut refresh = op(
        "post",
        "/api/token/refresh/",
        "Refresh a JWT access token",
        Schema("TokenRefreshInput"),
        200,
        Out::One("AccessToken"),
    );
    refresh.auth = false;
    ops.push(refresh);
    ops
}

fn schemas() -> Map<String, Value> {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let mut named = Map::new();
    macro_rules! add {
        ($($name:literal => $t:ty),* $(,)?) => {$(
            named.insert($name.into(), generator.subschema_for::<$t>().to_value());
        )*};
    }
    add!(
        "User" => UserRepr,
        "ContainerTaskType" => ContainerTypeRepr,
        "ExecutableTaskType" => ExecutableTypeRepr,
        "TaskQueue" => QueueRepr,
        "TaskWhitelist" => WhitelistRepr,
        "TaskInstance" => InstanceRepr,
        "ContainerTaskTypeInput" => ContainerTaskTypeInput,
        "ExecutableTaskTypeInput" => ExecutableTaskTypeInput,
        "TaskQueueInput" => TaskQueueInput,
        "TaskWhitelistInput" => TaskWhitelistInput,
        "TaskInstanceInput" => TaskInstanceInput,
        "StatusInput" => StatusInput,
        "StatusOutput" => StatusOutput,
        "TokenObtainInput" => TokenObtainInput,
        "TokenPair" => TokenPair,
        "TokenRefreshInput" => TokenRefreshInput,
        "AccessToken" => AccessToken,
    );
    let mut defs = generator.take_definitions(true);
    // Our names for the documented types, whatever schemars called them.
    for (name, reference) in named {
        if let Some(target) = reference
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            && target != name
            && let Some(schema) = defs.get(target).cloned()
        {
            defs.insert(name, schema);
        }
    }
    defs.insert(
        "Error".into(),
        json!({
            "description": "DRF's error shapes: {\"detail\": …} or {\"<field>\": [messages], …}",
            "type": "object",
            "additionalProperties": true
        }),
    );
    defs
}

fn parameters(path: &str, out: Out) -> Vec<Value> {
    let mut params = Vec::new();
    for name in ["id", "uuid", "username"] {
        if path.contains(&format!("{{{name}}}")) {
            let schema = match name {
                "id" => json!({"type": "integer"}),
                "uuid" => json!({"type": "string", "format": "uuid"}),
                _ => json!({"type": "string"}),
            };
            params.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
    }
    if let Out::Page(_, filters, size) = out {
        params.push(json!({"name": "page", "in": "query", "description": "1-based page number, or `last`", "schema": {"type": "string"}}));
        params.push(json!({"name": "page_size", "in": "query", "description": format!("Items per page (default {size}, no maximum)"), "schema": {"type": "integer"}}));
        for f in filters {
            for lookup in f.kind.lookups() {
                let name = if *lookup == "exact" {
                    f.name.to_owned()
                } else {
                    format!("{}__{lookup}", f.name)
                };
                params.push(json!({"name": name, "in": "query", "schema": {"type": "string"}}));
            }
        }
    }
    params
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn document() -> Value {
    let mut paths = Map::new();
    for o in operations() {
        let response_schema = match o.out {
            Out::One(name) => reference(name),
            Out::Page(name, _, _) => json!({
                "type": "object",
                "required": ["count", "next", "previous", "results"],
                "properties": {
                    "count": {"type": "integer"},
                    "next": {"type": "string", "nullable": true},
                    "previous": {"type": "string", "nullable": true},
                    "results": {"type": "array", "items": reference(name)}
                }
            }),
            Out::Any => json!({"type": "object", "additionalProperties": {"type": "string"}}),
        };
        let mut responses = Map::new();
        responses.insert(
            o.status.to_string(),
            json!({"description": "success", "content": {"application/json": {"schema": response_schema}}}),
        );
        let error = json!({"content": {"application/json": {"schema": reference("Error")}}});
        for (code, why) in [
            ("400", "invalid input"),
            ("403", "missing or bad credentials, or not permitted"),
            ("404", "not found"),
            ("503", "database or bus unavailable; retry"),
        ] {
            let mut e = error.clone();
            e["description"] = json!(why);
            responses.insert(code.into(), e);
        }
        let mut operation = json!({
            "summary": o.summary,
            "operationId": format!("{}{}", o.method, o.path.replace(['/', '{', '}'], "_")),
            "parameters": parameters(o.path, o.out),
            "responses": responses,
        });
        if let Body::Schema(name) = o.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {
                    "application/json": {"schema": reference(name)},
                    "application/x-www-form-urlencoded": {"schema": reference(name)}
                }
            });
        }
        if !o.auth {
            operation["security"] = json!([]);
        }
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "saltant",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The saltant REST API, wire-compatible with the original saltant server."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token <40 hex>`"},
                "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
        "security": [{"token": []}, {"jwt": []}]
    })
}

static DOCUMENT: OnceLock<Value> = OnceLock::new();

pub async fn openapi_json() -> Json<Value> {
    Json(DOCUMENT.get_or_init(document).clone())
}

/// The HTML reference: a self-contained page that renders `/api/openapi.json`.
pub async fn reference_page() -> Response {
    let mut r = include_str!("reference.html").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// `/api/swagger/?format=openapi` answers the document, as the original did.
pub async fn swagger(q: axum::extract::RawQuery) -> Response {
    let wants_json = q.0.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "format=openapi" || kv == "format=json")
    });
    if wants_json {
        openapi_json().await.into_response()
    } else {
        reference_page().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_schema_it_references() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| *c != '"').collect();
            assert!(schemas.contains_key(&name), "missing schema {name}");
        }
        let instance = &schemas["TaskInstance"]["properties"];
        let keys: Vec<&String> = instance.as_object().expect("properties").keys().collect();
        assert_eq!(keys.len(), 9, "{keys:?}");
        assert!(doc["paths"]["/api/executabletaskinstances/{uuid}/terminate/"]["post"].is_object());
        let list = &doc["paths"]["/api/executabletaskinstances/"]["get"]["parameters"];
        assert!(list.to_string().contains("\"state__in\""));
    }
}
