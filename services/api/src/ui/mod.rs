//! The web UI (docs/ui.md): server-rendered pages at `/` over the same store queries,
//! validation and permission rules as the REST API, with live updates from the API's
//! event streams. Pages are maud templates (every value escaped); the one script and one
//! style sheet are embedded in the binary, so the pages work on an offline network under a
//! strict Content-Security-Policy.

mod account;
mod fleet;
mod form;
mod home;
mod instances;
mod layout;
mod queues;
mod types;

use crate::AppState;
use crate::auth::{Auth, SESSION_COOKIE};
use crate::error::ApiError;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use subtle::ConstantTimeEq;
use tower_http::set_header::SetResponseHeaderLayer;

pub(crate) use form::Posted;
pub(crate) use layout::page;

/// The pages' Content-Security-Policy: only this origin's script, style sheet and
/// connections; no inline script or style, no plugins, no framing, forms only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The name of the hidden CSRF field of every form.
pub(crate) const CSRF_FIELD: &str = "csrf";

const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

/// The UI's routes (merged into the api's router).
pub(crate) fn routes() -> Router<AppState> {
    let r = Router::new()
        .route("/", get(home::dashboard))
        .route("/static/app.js", get(|| asset(APP_JS, "text/javascript")))
        .route("/static/app.css", get(|| asset(APP_CSS, "text/css")));
    let r = account::routes(r);
    let r = types::routes(r);
    let r = instances::routes(r);
    let r = queues::routes(r);
    let r = fleet::routes(r);
    r.layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The signed-in user of a page and the session's CSRF token (the hidden field of its
/// forms). Without a session a page answers a redirect to the sign-in page.
pub(crate) struct Viewer {
    pub auth: Auth,
    pub csrf: String,
}

impl Viewer {
    pub fn user(&self) -> &saltant_store::users::User {
        &self.auth.0
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let session = match jar.get(SESSION_COOKIE) {
            Some(c) => s
                .store
                .session(c.value())
                .await
                .map_err(|e| UiError::from(ApiError::from(e)).into_response())?,
            None => None,
        };
        match session {
            Some(session) => Ok(Viewer {
                auth: Auth(session.user),
                csrf: session.csrf_token,
            }),
            None => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
                Err(Redirect::to(&format!("/login/?next={next}")).into_response())
            }
        }
    }
}

/// Whether `sent` is the session's CSRF token (constant time).
pub(crate) fn csrf_matches(sent: &str, viewer: &Viewer) -> bool {
    !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(viewer.csrf.as_bytes()))
}

/// A page that could not be shown: the API's error, as an HTML page with its status.
#[derive(Debug)]
pub(crate) struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError(e)
    }
}

impl From<saltant_store::Error> for UiError {
    fn from(e: saltant_store::Error) -> Self {
        UiError(e.into())
    }
}

pub(crate) type UiResult<T = Response> = Result<T, UiError>;

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        // The API's answer decides the status and logs a 5xx once.
        let status = self.0.into_response().status();
        let (title, text) = match status {
            StatusCode::NOT_FOUND => ("Not found", "There is nothing here."),
            StatusCode::FORBIDDEN => (
                "Not allowed",
                "You do not have permission to do this (or the form was stale: reload it).",
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                ("Too many attempts", "Too many attempts; wait a minute.")
            }
            s if s.is_client_error() => ("Bad request", "The request could not be understood."),
            _ => (
                "Something went wrong",
                "The server could not answer; try again in a moment.",
            ),
        };
        (status, error_page(title, text)).into_response()
    }
}

fn error_page(title: &str, text: &str) -> maud::Markup {
    page(
        title,
        None,
        maud::html! {
            h1 { (title) }
            p { (text) }
            p { a href="/" { "Back to the dashboard" } }
        },
    )
}

/// The page of a path nothing serves (outside `/api/`), with the pages' CSP.
pub(crate) fn not_found() -> Response {
    let mut r = UiError(ApiError::NotFound).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    r
}

/// 303 to `to` after a successful form (POST-redirect-GET).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Rows a list page shows.
pub(crate) const PAGE_SIZE: i64 = 50;

/// Reads page `n` (from 1) of a list with `read` (one row more than shown, so as to know
/// whether another page follows, without counting): the rows and whether more follow.
pub(crate) async fn one_page<T>(
    n: i64,
    read: impl FnOnce(
        saltant_store::filter::Page,
    ) -> futures::stream::BoxStream<'static, Result<T, saltant_store::Error>>,
) -> UiResult<(Vec<T>, bool)> {
    use futures::TryStreamExt;
    let mut rows: Vec<T> = read(saltant_store::filter::Page {
        offset: (n.max(1) - 1) * PAGE_SIZE,
        limit: Some(PAGE_SIZE + 1),
    })
    .try_collect()
    .await?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    Ok((rows, more))
}
