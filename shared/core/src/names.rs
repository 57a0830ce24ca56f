//! Validated names: queue names as saltant allows them, and their bus-safe tokens.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::LazyLock;

static QUEUE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\w@+-]+$").expect("queue name pattern compiles"));

/// Longest queue name saltant accepts.
pub const QUEUE_NAME_MAX: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The original's message, literally.
    #[error(" @/+/-/_ only")]
    Pattern,
    #[error("Ensure this field has no more than {0} characters.")]
    TooLong(usize),
}

/// Any text as one NATS subject token (and KV key, consumer name): ASCII letters, digits,
/// `_` and `-` stay; every other byte becomes `=XX` (upper-case hex), so distinct texts give
/// distinct tokens. Queue names and executor ids go on the bus this way.
pub fn token(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// A task queue's name: `^[\w@+-]+$`, at most 50 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueName(String);

impl QueueName {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.chars().count() > QUEUE_NAME_MAX {
            return Err(NameError::TooLong(QUEUE_NAME_MAX));
        }
        if !QUEUE_NAME.is_match(name) {
            return Err(NameError::Pattern);
        }
        Ok(QueueName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as one NATS subject token, consumer name and KV key: ASCII letters, digits,
    /// `_` and `-` stay; every other byte becomes `=XX` (upper-case hex). Distinct names give
    /// distinct tokens, and `from_token` reverses it.
    pub fn token(&self) -> String {
        token(&self.0)
    }

    pub fn from_token(token: &str) -> Option<Self> {
        let bytes = token.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                let hex = token.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        QueueName::parse(&String::from_utf8(out).ok()?).ok()
    }
}

impl TryFrom<String> for QueueName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        QueueName::parse(&value)
    }
}

impl From<QueueName> for String {
    fn from(value: QueueName) -> Self {
        value.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_the_original_pattern() {
        let table = [
            ("default", true),
            ("gpu-queue_2", true),
            ("a@b+c", true),
            ("café", true),
            ("", false),
            ("with space", false),
            ("a.b", false),
            ("a/b", false),
            ("a*", false),
            ("a>", false),
        ];
        for (name, ok) in table {
            assert_eq!(QueueName::parse(name).is_ok(), ok, "{name:?}");
        }
        assert_eq!(QueueName::parse("a.b"), Err(NameError::Pattern));
        assert_eq!(
            QueueName::parse(&"x".repeat(51)),
            Err(NameError::TooLong(50))
        );
        assert!(QueueName::parse(&"x".repeat(50)).is_ok());
    }

    #[test]
    fn tokens_are_bus_safe_and_reversible() {
        for name in ["default", "a@b+c", "café", "x-_y", "A=B"] {
            let Ok(q) = QueueName::parse(name) else {
                continue;
            };
            let token = q.token();
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'='),
                "{token}"
            );
            assert_eq!(QueueName::from_token(&token), Some(q));
        }
        assert_eq!(QueueName::parse("a@b").expect("valid").token(), "a=40b");
    }
}
