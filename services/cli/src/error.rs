//! The client's errors and the exit code each maps to (docs/cli.md, "Exit codes").

use std::process::ExitCode;

/// Exit codes scripts can rely on. A finished task's own exit status (`run --follow`,
/// `instances wait`) is passed through unchanged, so these only tell the client's own
/// failures apart from each other, not from every task's.
pub mod code {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const AUTH: u8 = 4;
    pub const PERMISSION: u8 = 5;
    pub const NOT_FOUND: u8 = 6;
    pub const AMBIGUOUS: u8 = 7;
    pub const INVALID: u8 = 8;
    pub const SERVER: u8 = 9;
    pub const TASK_FAILED: u8 = 10;
    pub const TASK_TERMINATED: u8 = 11;
    pub const TIMEOUT: u8 = 12;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the server at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("permission denied: {0}")]
    Permission(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Ambiguous(String),
    /// A 400 answer: the fields and their messages, in the server's order.
    #[error("invalid input:{}", render_fields(.0))]
    Invalid(Vec<(String, Vec<String>)>),
    #[error("server error: {0}")]
    Server(String),
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> u8 {
        match self {
            Error::Usage(_) => code::USAGE,
            Error::Unreachable { .. } => code::UNREACHABLE,
            Error::Auth(_) => code::AUTH,
            Error::Permission(_) => code::PERMISSION,
            Error::NotFound(_) => code::NOT_FOUND,
            Error::Ambiguous(_) => code::AMBIGUOUS,
            Error::Invalid(_) => code::INVALID,
            Error::Server(_) => code::SERVER,
            Error::Timeout(_) => code::TIMEOUT,
            Error::Internal(_) => code::FAILURE,
        }
    }

    pub fn exit(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The fields of a 400 body: `{"field": ["message", …]}`, `{"detail": "…"}`, a bare
    /// string, or anything else shown as it is.
    pub fn invalid(body: &serde_json::Value) -> Error {
        use serde_json::Value;
        let fields = match body {
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| {
                    let messages = match v {
                        Value::Array(a) => a.iter().map(message).collect(),
                        other => vec![message(other)],
                    };
                    (k.clone(), messages)
                })
                .collect(),
            other => vec![(String::new(), vec![message(other)])],
        };
        Error::Invalid(fields)
    }
}

/// A message as text; the original's `non_field_errors` hold a Python list's repr
/// (`"['default arguments not a subset of required arguments']"`): shown without it.
fn message(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (open, close) in [("['", "']"), ("[\"", "\"]")] {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            return inner.to_owned();
        }
    }
    s
}

fn render_fields(fields: &[(String, Vec<String>)]) -> String {
    let mut out = String::new();
    for (field, messages) in fields {
        for m in messages {
            if field.is_empty() {
                out.push_str(&format!("\n  {m}"));
            } else {
                out.push_str(&format!("\n  {field}: {m}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_errors_are_listed_field_by_field() {
        let e = Error::invalid(&json!({
            "name": ["This field is required."],
            "non_field_errors": ["['default arguments not a subset of required arguments']"],
            "arguments": ["[\"required argument 'word' not provided!\"]"],
        }));
        assert_eq!(
            e.to_string(),
            "invalid input:\n  name: This field is required.\n  non_field_errors: default \
             arguments not a subset of required arguments\n  arguments: required argument \
             'word' not provided!"
        );
        assert_eq!(e.code(), code::INVALID);
        assert_eq!(
            Error::invalid(&json!("No task instance")).to_string(),
            "invalid input:\n  No task instance"
        );
    }
}
