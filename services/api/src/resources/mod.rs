//! Routes of the REST API. Router paths work with and without the trailing slash; methods
//! not listed get DRF's 405 body.

pub(crate) mod events;
pub(crate) mod executors;
pub(crate) mod inputs;
pub(crate) mod instances;
pub(crate) mod login;
pub(crate) mod logs;
pub(crate) mod owned;
pub(crate) mod queues;
pub(crate) mod results;
mod status;
mod trace;
pub(crate) mod types;
pub(crate) mod users;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::query::absolute_url;
use crate::routes::{Methods, Routes};
use crate::suffix::{JsonSuffix, ROUTER};
use axum::Json;
use axum::extract::Extension;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

async fn api_root(
    _: Auth,
    uri: Uri,
    headers: HeaderMap,
    suffix: Option<Extension<JsonSuffix>>,
) -> Json<Value> {
    let base = absolute_url(&uri, &headers, &[]);
    let base = base.trim_end_matches('/');
    // DRF's root reverses its links with the request's format.
    let format = if suffix.is_some() { ".json" } else { "" };
    let mut m = serde_json::Map::new();
    for name in ROUTER {
        m.insert(name.into(), json!(format!("{base}/{name}{format}")));
    }
    Json(Value::Object(m))
}

/// The uuid of an instance of either class, or the original's 404.
pub(crate) async fn existing_instance(
    s: &crate::AppState,
    id: &str,
) -> Result<uuid::Uuid, ApiError> {
    let uuid: uuid::Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    match s.store.instance(uuid).await? {
        Some(_) => Ok(uuid),
        None => Err(ApiError::NotFound),
    }
}

/// A path nothing serves: the original's 404 body under `/api/`, the web UI's page
/// elsewhere.
pub(crate) async fn not_found(uri: Uri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        ApiError::NotFound.into_response()
    } else {
        crate::ui::not_found()
    }
}

/// Django's `APPEND_SLASH`: a path outside the router without its trailing slash answers
/// 301 to the same path with it.
pub(crate) async fn append_slash(uri: Uri) -> Response {
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

pub(crate) fn routes() -> Routes {
    use crate::openapi;
    let mut r = Routes::new().exact(
        "/api/",
        Methods::new().get(api_root, |o| {
            o.summary("API root: every resource list's URL")
        }),
    );
    r = users::routes(r);
    r = types::routes(r);
    r = queues::routes(r);
    r = instances::routes(r);
    r.slashed(
        "/api/updatetaskinstancestatus/{uuid}",
        Methods::new()
            .patch(status::update, |o| {
                o.summary("Report a state (owner or superuser; forward only)")
            })
            .drf_options("Update Task Instance Status"),
    )
    .slashed(
        "/api/token",
        Methods::new()
            .post(login::obtain, |o| {
                openapi::public(o.summary("Obtain a JWT pair"))
            })
            .drf_options("Token Obtain Pair"),
    )
    .slashed(
        "/api/token/refresh",
        Methods::new()
            .post(login::refresh, |o| {
                openapi::public(o.summary("Refresh a JWT access token"))
            })
            .drf_options("Token Refresh"),
    )
    .slashed(
        "/api/auth/login",
        Methods::new()
            .get(login::login_form, |o| {
                openapi::public(o.summary("The login form's CSRF cookie (`csrftoken`)"))
            })
            .post(login::login, |o| {
                openapi::public(o.summary(
                    "Start a browser session (cookies `sessionid`, `csrftoken`); echo the \
                     form's `csrftoken` in `X-CSRFToken`",
                ))
            }),
    )
    .slashed(
        "/api/auth/logout",
        Methods::new().post(login::logout, |o| {
            openapi::public(o.summary("End the browser session"))
        }),
    )
    // Native: the files instances left in their logs and results folders.
    .both("/api/taskinstances/{uuid}/results", || {
        Methods::new().get(results::list, |o| {
            o.summary("List the files the instance's last attempt kept")
        })
    })
    .exact(
        "/api/taskinstances/{uuid}/results/{*name}",
        Methods::new().get(results::download, |o| o.summary("Download one kept file")),
    )
    // Native: where to follow the instance in the tracing UI (docs/observability.md).
    .both("/api/taskinstances/{uuid}/trace", || {
        Methods::new().get(trace::trace, |o| {
            o.summary("The instance's trace id, traceparent and tracing-UI link")
        })
    })
    // Native: the output of instances' attempts, stored by the log-collector.
    .both("/api/taskinstances/{uuid}/logs", || {
        Methods::new().get(logs::list, |o| {
            o.summary("List the instance's log files (per attempt: stdout, stderr)")
        })
    })
    .exact(
        "/api/taskinstances/{uuid}/logs/{name}",
        Methods::new().get(logs::download, |o| {
            o.summary("Download a log file's text, whole or one byte range (`Range`)")
        }),
    )
    .both("/api/taskinstances/{uuid}/logs/{name}/tail", || {
        Methods::new().get(logs::tail, |o| {
            o.summary("Follow a log file live (Server-Sent Events from any offset)")
        })
    })
    // Native: the executors alive and the queues' depth (the web UI's fleet page).
    .both("/api/executors", || {
        Methods::new().get(executors::list, |o| {
            o.summary("Executors alive now (heartbeats) and each queue's unfinished instances")
        })
    })
    // Native: status events, live and replayable (docs/events.md).
    .both("/api/events", || {
        Methods::new().get(events::all, |o| {
            o.summary("Every instance's status events (Server-Sent Events)")
        })
    })
    .both("/api/taskqueues/{id}/events", || {
        Methods::new().get(events::of_queue, |o| {
            o.summary("A queue's status events (Server-Sent Events)")
        })
    })
    .both("/api/taskinstances/{uuid}/events", || {
        Methods::new().get(events::of_instance, |o| {
            o.summary("An instance's status events until it is final (Server-Sent Events)")
        })
    })
    // API documentation: public, like the original's.
    .hidden(
        "/api/openapi.json",
        Methods::new().get(openapi::openapi_json, |o| o),
    )
    .hidden(
        "/api/swagger/.json",
        Methods::new().get(openapi::openapi_json, |o| o),
    )
    .slashed_hidden("/api/swagger", Methods::new().get(openapi::swagger, |o| o))
    .slashed_hidden(
        "/api/redoc",
        Methods::new().get(openapi::reference_page, |o| o),
    )
}
