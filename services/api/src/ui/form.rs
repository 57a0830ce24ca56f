//! Form posts: the signed-in viewer and the fields, refused (403) unless the hidden CSRF
//! field holds the session's token. The fields become the API's `Payload`, so a form is
//! validated by the same code as the API's body, and its errors come back field by field.

use super::{CSRF_FIELD, UiError, Viewer, csrf_matches};
use crate::AppState;
use crate::body::Payload;
use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// The fields of a posted form, in order (a key may repeat: multiple selects).
#[derive(Debug, Clone, Default)]
pub(crate) struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The field's text, empty when absent.
    pub fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_owned()
    }

    /// Every value of a repeated field.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has(&self, key: &str, value: &str) -> bool {
        self.0.iter().any(|(k, v)| k == key && v == value)
    }

    /// The fields as the API reads a form body.
    pub fn payload(&self) -> Payload {
        Payload::Form(self.0.clone())
    }

    pub fn parse(bytes: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
}

/// A form posted by a signed-in user with the session's CSRF token.
pub(crate) struct Posted {
    pub viewer: Viewer,
    pub form: Form,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, s).await?;
        let bytes = axum::body::to_bytes(body, s.config.max_body_bytes)
            .await
            .map_err(|_| {
                UiError(ApiError::PayloadTooLarge(s.config.max_body_bytes)).into_response()
            })?;
        let mut form = Form::parse(&bytes);
        let sent = form.get(CSRF_FIELD).unwrap_or_default().to_owned();
        if !csrf_matches(&sent, &viewer) {
            return Err(UiError(ApiError::Forbidden(ApiError::detail(
                "CSRF Failed: CSRF token missing or incorrect.",
            )))
            .into_response());
        }
        form.0.retain(|(k, _)| k != CSRF_FIELD);
        Ok(Posted { viewer, form })
    }
}

/// Validation errors by field (`non_field_errors` for the form as a whole), as the API
/// reports them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Errors(pub Map<String, Value>);

impl Errors {
    /// The field errors of an API error; any other error is the page's.
    pub fn of(e: ApiError) -> Result<Errors, UiError> {
        match e {
            ApiError::Fields(m) => Ok(Errors(m)),
            other => Err(UiError(other)),
        }
    }

    pub fn one(field: &str, message: &str) -> Errors {
        let mut m = Map::new();
        m.insert(field.to_owned(), Value::from(vec![message.to_owned()]));
        Errors(m)
    }

    /// The messages of `field`: strings, or the texts within nested lists and objects.
    pub fn messages(&self, field: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(v) = self.0.get(field) {
            collect(v, &mut out);
        }
        out
    }

    /// Messages of fields the form does not show (they would be lost otherwise).
    pub fn others(&self, shown: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            if k != "non_field_errors" && !shown.contains(&k.as_str()) {
                let mut m = Vec::new();
                collect(v, &mut m);
                out.extend(m.into_iter().map(|m| format!("{k}: {m}")));
            }
        }
        out
    }
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(unwrap_model_message(s)),
        Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
        Value::Object(o) => o.values().for_each(|v| collect(v, out)),
        other => out.push(other.to_string()),
    }
}

/// Model errors come as the Python repr of a list (`['Queue q has not …']`), the original's
/// wire format; people read the message inside.
fn unwrap_model_message(s: &str) -> String {
    let single = s
        .strip_prefix("['")
        .and_then(|s| s.strip_suffix("']"))
        .filter(|s| !s.contains("', '"));
    let double = s
        .strip_prefix("[\"")
        .and_then(|s| s.strip_suffix("\"]"))
        .filter(|s| !s.contains("\", \""));
    single
        .map(|s| s.replace("\\'", "'"))
        .or(double.map(str::to_owned))
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_messages_are_shown_without_the_python_list() {
        let e = ApiError::model(&["Queue q's rule".to_owned()]);
        let errors = Errors::of(e).expect("field errors");
        assert_eq!(errors.messages("non_field_errors"), vec!["Queue q's rule"]);
        let e = ApiError::model(&["Queue q has not whitelisted task type t".to_owned()]);
        assert_eq!(
            Errors::of(e)
                .expect("field errors")
                .messages("non_field_errors"),
            vec!["Queue q has not whitelisted task type t"]
        );
    }

    #[test]
    fn repeated_fields_keep_every_value() {
        let f = Form::parse(b"whitelists=1&whitelists=2&name=a%20b&csrf=x");
        assert_eq!(f.all("whitelists"), vec!["1", "2"]);
        assert_eq!(f.text("name"), "a b");
        assert!(f.has("whitelists", "2"));
    }
}
