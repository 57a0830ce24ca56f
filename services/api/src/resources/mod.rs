//! Routes of the REST API. Router paths work with and without the trailing slash; methods
//! not listed get DRF's 405 body.

pub(crate) mod instances;
mod login;
pub(crate) mod queues;
mod results;
mod status;
pub(crate) mod types;
pub(crate) mod users;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::query::absolute_url;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, patch, post};
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

/// Django's `APPEND_SLASH`: a path outside the router without its trailing slash answers
/// 301 to the same path with it.
async fn append_slash(uri: Uri) -> Response {
    let mut to = format!("{}/", uri.path());
    if let Some(q) = uri.query() {
        to.push('?');
        to.push_str(q);
    }
    let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(&to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    // Django's HttpResponsePermanentRedirect: an empty HTML body.
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// DRF's OPTIONS answer on the views that allow it: the methods and what they accept.
fn options_for(name: &'static str, allow: &'static str) -> MethodRouter<AppState> {
    axum::routing::options(move || async move {
        let mut r = Json(serde_json::json!({
            "name": name,
            "description": "",
            "renders": ["application/json"],
            "parses": [
                "application/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data"
            ]
        }))
        .into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        r
    })
}

/// Registers a path outside the router: with the slash it is served, without it 301s.
fn slashed(router: Router<AppState>, path: &str, r: MethodRouter<AppState>) -> Router<AppState> {
    router
        .route(&format!("{path}/"), with_405(r))
        .route(path, any(append_slash))
}

pub fn routes() -> Router<AppState> {
    let mut r = Router::new().route("/api/", with_405(get(api_root)));
    r = users::routes(r);
    r = types::routes(r);
    r = queues::routes(r);
    r = instances::routes(r);
    r = slashed(
        r,
        "/api/updatetaskinstancestatus/{id}",
        patch(status::update).merge(options_for("Update Task Instance Status", "PATCH, OPTIONS")),
    );
    r = slashed(
        r,
        "/api/token",
        post(login::obtain).merge(options_for("Token Obtain Pair", "POST, OPTIONS")),
    );
    r = slashed(
        r,
        "/api/token/refresh",
        post(login::refresh).merge(options_for("Token Refresh", "POST, OPTIONS")),
    );
    // Native: the files instances left in their logs and results folders.
    r = both(r, "/api/taskinstances/{id}/results", get(results::list));
    r = r.route(
        "/api/taskinstances/{id}/results/{*name}",
        with_405(get(results::download)),
    );
    // API documentation: public, like the original's.
    r = r.route(
        "/api/openapi.json",
        with_405(get(crate::openapi::openapi_json)),
    );
    r = slashed(r, "/api/swagger", get(crate::openapi::swagger));
    r = r.route(
        "/api/swagger/.json",
        with_405(get(crate::openapi::openapi_json)),
    );
    r = slashed(r, "/api/redoc", get(crate::openapi::reference_page));
    r = slashed(r, "/api/auth/login", post(login::login));
    r = slashed(r, "/api/auth/logout", post(login::logout));
    r.fallback(not_found)
}
