//! Request bodies with Django REST Framework's rules: JSON or form-encoded (saltant-py sends
//! forms), JSON-typed fields as JSON text in forms, Python/DRF boolean spellings, repeated
//! keys for lists, and DRF's rules for keys missing from a form.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

/// How deep JSON may nest before it is refused (stack safety and sanity).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
pub enum Payload {
    Json(Map<String, Value>),
    Form(Vec<(String, String)>),
}

impl FromRequest<AppState> for Payload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(state.config.max_body_bytes)
            } else {
                ApiError::BadRequest(ApiError::detail(&format!("Cannot read request body: {e}")))
            }
        })?;
        if let Ok(boundary) = multer::parse_boundary(&content_type) {
            return parse_multipart(bytes, boundary).await;
        }
        Payload::parse(&content_type, &bytes)
    }
}

/// A `multipart/form-data` body, as DRF's MultiPartParser reads it: every part a form
/// field (file parts too, by their text), so the form rules apply.
async fn parse_multipart(bytes: Bytes, boundary: String) -> ApiResult<Payload> {
    let bad = |e: multer::Error| {
        ApiError::BadRequest(ApiError::detail(&format!(
            "Multipart form parse error - {e}"
        )))
    };
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut pairs = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_owned();
        let text = field.text().await.map_err(bad)?;
        pairs.push((name, text));
    }
    Ok(Payload::Form(pairs))
}

impl Payload {
    pub fn parse(content_type: &str, bytes: &[u8]) -> ApiResult<Payload> {
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            // DRF treats an empty body with no content type as empty form data.
            "" if bytes.is_empty() => Ok(Payload::Form(Vec::new())),
            "application/json" => {
                if bytes.is_empty() {
                    return Ok(Payload::Json(Map::new()));
                }
                if nesting_depth(bytes) > MAX_DEPTH {
                    return Err(ApiError::BadRequest(ApiError::detail(&format!(
                        "JSON parse error - nesting deeper than {MAX_DEPTH} levels"
                    ))));
                }
                let v: Value = serde_json::from_slice(bytes).map_err(|e| {
                    ApiError::BadRequest(ApiError::detail(&format!("JSON parse error - {e}")))
                })?;
                match v {
                    Value::Object(m) => Ok(Payload::Json(m)),
                    other => Err(ApiError::field(
                        "non_field_errors",
                        format!(
                            "Invalid data. Expected a dictionary, but got {}.",
                            python_type(&other)
                        ),
                    )),
                }
            }
            "application/x-www-form-urlencoded" => {
                let pairs: Vec<(String, String)> =
                    form_urlencoded::parse(bytes).into_owned().collect();
                Ok(Payload::Form(pairs))
            }
            "multipart/form-data" => Err(ApiError::BadRequest(ApiError::detail(
                "Multipart form parse error - Invalid boundary in multipart: None",
            ))),
            other => Err(ApiError::UnsupportedMediaType(other.to_owned())),
        }
    }

    pub fn is_form(&self) -> bool {
        matches!(self, Payload::Form(_))
    }

    /// The field's value: a JSON value, or a form's last value for the key as a string.
    pub fn get(&self, key: &str) -> Option<Value> {
        match self {
            Payload::Json(m) => m.get(key).cloned(),
            Payload::Form(p) => p
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Value::String(v.clone())),
        }
    }

    /// Every value of a repeated form key, or the JSON value.
    pub fn get_all(&self, key: &str) -> Option<Value> {
        match self {
            Payload::Json(m) => m.get(key).cloned(),
            Payload::Form(p) => {
                let v: Vec<Value> = p
                    .iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| Value::String(v.clone()))
                    .collect();
                (!v.is_empty()).then_some(Value::Array(v))
            }
        }
    }
}

/// The deepest nesting of `[`/`{` in a JSON text, counted without parsing.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Python's name for a JSON value's type, as DRF puts it in messages.
pub fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_json_are_read_alike() {
        let f = Payload::parse(
            "application/x-www-form-urlencoded",
            b"name=a&whitelists=1&whitelists=2&x=%7B%7D",
        )
        .expect("form");
        assert_eq!(f.get("name"), Some(Value::String("a".into())));
        assert_eq!(f.get_all("whitelists"), Some(serde_json::json!(["1", "2"])));
        assert_eq!(f.get("x"), Some(Value::String("{}".into())));
        assert_eq!(f.get("missing"), None);
        let j =
            Payload::parse("application/json; charset=utf-8", br#"{"name":"a"}"#).expect("json");
        assert_eq!(j.get("name"), Some(Value::String("a".into())));
    }

    #[test]
    fn bad_bodies_are_400_or_415() {
        assert!(matches!(
            Payload::parse("application/json", b"{bad"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            Payload::parse("application/json", b"[1]"),
            Err(ApiError::Fields(_))
        ));
        assert!(matches!(
            Payload::parse("text/plain", b"x"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(matches!(
            Payload::parse("application/json", deep.as_bytes()),
            Err(ApiError::BadRequest(_))
        ));
        let deep_in_string = format!("{{\"a\":\"{}\"}}", "[".repeat(100));
        assert!(Payload::parse("application/json", deep_in_string.as_bytes()).is_ok());
    }
}
