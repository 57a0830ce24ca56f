//! The OpenAPI 3.1 document of the REST API (`/api/openapi.json`). It is derived by aide
//! from the route registrations (`routes.rs`): each operation's parameters, body and
//! answers come from its handler's extractor and return types (`io.rs`), its summary from
//! the registration; the test below fails on any served route missing from the document
//! or documented but not served. `/api/swagger/` and `/api/redoc/` (the original's paths)
//! serve an HTML reference that renders the document with no network access.

#[cfg(test)]
use crate::routes::Served;
use aide::openapi::{Info, OpenApi, SecurityScheme};
use aide::transform::TransformOperation;
use axum::Json;
use axum::extract::{Extension, RawQuery};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// DRF's error shapes: `{"detail": …}` or `{"<field>": [messages], …}`.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub(crate) struct Error(Map<String, Value>);

/// The document, serialized once.
#[derive(Clone)]
pub(crate) struct Document(pub Arc<Value>);

/// Marks an operation as needing no credentials.
pub(crate) fn public(o: TransformOperation<'_>) -> TransformOperation<'_> {
    let mut o = o;
    o.inner_mut().security = vec![IndexMap::new()];
    o
}

/// Completes what aide derived: the API's description, its security schemes, and
/// operation ids; `{*name}` (axum's catch-all) is written `{name}` as OpenAPI wants.
pub(crate) fn document(mut api: OpenApi) -> Value {
    api.info = Info {
        title: "saltant".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: Some(
            "The saltant REST API, wire-compatible with the original saltant server.".into(),
        ),
        ..Info::default()
    };
    let components = api.components.get_or_insert_with(Default::default);
    for (name, scheme) in [
        (
            "token",
            SecurityScheme::ApiKey {
                location: aide::openapi::ApiKeyLocation::Header,
                name: "Authorization".into(),
                description: Some("`Token <40 hex>`".into()),
                extensions: IndexMap::default(),
            },
        ),
        (
            "jwt",
            SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: Some("JWT".into()),
                description: None,
                extensions: IndexMap::default(),
            },
        ),
    ] {
        components
            .security_schemes
            .insert(name.into(), aide::openapi::ReferenceOr::Item(scheme));
    }
    api.security = ["token", "jwt"]
        .into_iter()
        .map(|s| IndexMap::from_iter([(s.to_owned(), Vec::new())]))
        .collect();
    let mut doc = serde_json::to_value(&api).unwrap_or_else(|e| json!({"error": e.to_string()}));
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        let taken = std::mem::take(paths);
        for (path, mut item) in taken {
            let path = path.replace("{*", "{");
            if let Some(ops) = item.as_object_mut() {
                // Only the operations: a path item may also hold `parameters` or a summary.
                for (method, op) in ops.iter_mut() {
                    let Some(o) = op.as_object_mut().filter(|_| is_method(method)) else {
                        continue;
                    };
                    let id = format!("{method}{}", path.replace(['/', '{', '}'], "_"));
                    o.insert("operationId".into(), Value::String(id));
                    name_path_parameters(&path, op);
                }
            }
            paths.insert(path, item);
        }
    }
    doc
}

fn is_method(key: &str) -> bool {
    matches!(
        key,
        "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
    )
}

/// Every `{name}` of the path as a parameter of the operation (a handler that does not
/// read it, such as an OPTIONS answer, does not declare it).
fn name_path_parameters(path: &str, op: &mut Value) {
    let names: Vec<&str> = path
        .split('{')
        .skip(1)
        .filter_map(|p| p.split('}').next())
        .collect();
    let declared = |op: &Value, name: &str| {
        op["parameters"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["in"] == "path" && p["name"].as_str() == Some(name))
        })
    };
    for name in names {
        if !declared(op, name) {
            let param = json!({"in": "path", "name": name, "required": true,
                               "schema": {"type": "string"}});
            match op["parameters"].as_array_mut() {
                Some(ps) => ps.push(param),
                None => op["parameters"] = json!([param]),
            }
        }
    }
}

/// The table of served routes in the document's spelling, for the route test.
#[cfg(test)]
pub(crate) fn doc_path(s: &Served) -> String {
    s.path.replace("{*", "{")
}

pub async fn openapi_json(Extension(doc): Extension<Document>) -> Json<Value> {
    Json(doc.0.as_ref().clone())
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
pub async fn swagger(q: RawQuery, doc: Extension<Document>) -> Response {
    let wants_json = q.0.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "format=openapi" || kv == "format=json")
    });
    if wants_json {
        openapi_json(doc).await.into_response()
    } else {
        reference_page().await
    }
}

#[cfg(test)]
mod tests;
