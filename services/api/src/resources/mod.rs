//! Routes of the REST API. Router paths work with and without the trailing slash; methods
//! not listed get DRF's 405 body.

mod instances;
mod queues;
mod types;
mod users;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::query::absolute_url;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use serde_json::{Value, json};

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

fn with_405(r: MethodRouter<AppState>) -> MethodRouter<AppState> {
    r.fallback(method_not_allowed)
}

/// Registers `path` and `path/` with the same handlers.
fn both(router: Router<AppState>, path: &str, r: MethodRouter<AppState>) -> Router<AppState> {
    let r = with_405(r);
    router.route(path, r.clone()).route(&format!("{path}/"), r)
}

async fn api_root(_: Auth, uri: Uri, headers: HeaderMap) -> Json<Value> {
    let base = absolute_url(&uri, &headers, &[]);
    let base = base.trim_end_matches('/');
    let mut m = serde_json::Map::new();
    for name in [
        "users",
        "containertaskinstances",
        "containertasktypes",
        "executabletaskinstances",
        "executabletasktypes",
        "taskqueues",
        "taskwhitelists",
    ] {
        m.insert(name.into(), json!(format!("{base}/{name}")));
    }
    Json(Value::Object(m))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub fn routes() -> Router<AppState> {
    let mut r = Router::new().route("/api/", with_405(get(api_root)));
    r = users::routes(r);
    r = types::routes(r);
    r = queues::routes(r);
    r = instances::routes(r);
    r.fallback(not_found)
}
