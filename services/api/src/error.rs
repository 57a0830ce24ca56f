//! API errors, rendered in the original saltant's (Django REST Framework's) shapes: 4xx
//! bodies say what is wrong; 5xx bodies are opaque and the cause is logged once, here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub enum ApiError {
    /// 400 `{"field": ["message", …], …}` (including `non_field_errors`).
    Fields(Map<String, Value>),
    /// 400 with any JSON body (the status endpoint's bare string, parse errors).
    BadRequest(Value),
    /// 403 `{"detail": …}`.
    Forbidden(Value),
    /// 403 `{"detail":"You do not have permission to perform this action."}`: a write to
    /// an object the user neither owns nor may administer.
    PermissionDenied,
    /// 401 with `WWW-Authenticate: Bearer realm="api"` (JWT endpoints).
    Unauthorized(Value),
    NotFound,
    /// 404 `{"detail":"Invalid page."}`.
    InvalidPage,
    MethodNotAllowed(String),
    PayloadTooLarge(usize),
    UnsupportedMediaType(String),
    /// 503: PostgreSQL or NATS cannot be reached; try again.
    Unavailable(String),
    /// 429 with `Retry-After: <seconds>` (DRF's `Throttled`).
    Throttled(u64),
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn field(name: &str, message: impl Into<String>) -> ApiError {
        let mut m = Map::new();
        m.insert(name.to_owned(), json!([message.into()]));
        ApiError::Fields(m)
    }

    pub fn detail(message: &str) -> Value {
        json!({ "detail": message })
    }

    /// Model validation errors, as DRF wraps Django's: `non_field_errors` holding the
    /// Python repr of the list of messages.
    pub fn model(messages: &[String]) -> ApiError {
        ApiError::field("non_field_errors", python_list_repr(messages))
    }
}

/// A store result whose unique-name violation becomes DRF's field error on `name`:
/// `{"name": ["<what> with this name already exists."]}`.
pub fn name_taken<T>(r: Result<T, saltant_store::Error>, what: &str) -> ApiResult<T> {
    match r {
        Err(saltant_store::Error::Duplicate { .. }) => Err(ApiError::field(
            "name",
            format!("{what} with this name already exists."),
        )),
        other => Ok(other?),
    }
}

/// `repr()` of a Python list of strings.
pub fn python_list_repr(items: &[String]) -> String {
    saltant_core::pyrepr::repr_str_list(items)
}

impl From<saltant_store::Error> for ApiError {
    fn from(e: saltant_store::Error) -> Self {
        match e {
            saltant_store::Error::Unavailable(e) => {
                ApiError::Unavailable(format!("database unavailable: {e}"))
            }
            saltant_store::Error::TimedOut => ApiError::BadRequest(ApiError::detail(
                "The request took too long in the database and was stopped; narrow its filters.",
            )),
            saltant_store::Error::InvalidInput(m) => {
                ApiError::BadRequest(ApiError::detail(&format!("Invalid input: {m}.")))
            }
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

/// The bus failing a live stream's set-up: 503, retry.
impl From<saltant_bus::Error> for ApiError {
    fn from(e: saltant_bus::Error) -> Self {
        ApiError::Unavailable(format!("bus unavailable: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Fields(m) => (StatusCode::BAD_REQUEST, Value::Object(m)),
            ApiError::BadRequest(v) => (StatusCode::BAD_REQUEST, v),
            ApiError::Forbidden(v) => (StatusCode::FORBIDDEN, v),
            ApiError::PermissionDenied => (
                StatusCode::FORBIDDEN,
                ApiError::detail("You do not have permission to perform this action."),
            ),
            ApiError::Unauthorized(v) => {
                let mut r = (StatusCode::UNAUTHORIZED, axum::Json(v)).into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"api\""),
                );
                return r;
            }
            ApiError::NotFound => (StatusCode::NOT_FOUND, ApiError::detail("Not found.")),
            ApiError::InvalidPage => (StatusCode::NOT_FOUND, ApiError::detail("Invalid page.")),
            ApiError::MethodNotAllowed(m) => (
                StatusCode::METHOD_NOT_ALLOWED,
                ApiError::detail(&format!("Method \"{m}\" not allowed.")),
            ),
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ApiError::detail(&format!("Request body larger than {limit} bytes.")),
            ),
            ApiError::UnsupportedMediaType(t) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ApiError::detail(&format!("Unsupported media type \"{t}\" in request.")),
            ),
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "service unavailable");
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(ApiError::detail(
                        "Service temporarily unavailable, try again later.",
                    )),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return r;
            }
            ApiError::Throttled(secs) => {
                let detail =
                    format!("Request was throttled. Expected available in {secs} seconds.");
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(ApiError::detail(&detail)),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                return r;
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ApiError::detail("A server error occurred."),
                )
            }
        };
        (status, axum::Json(body)).into_response()
    }
}
