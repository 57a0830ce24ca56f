//! Reading and validating request fields as DRF's serializer fields do, collecting every
//! field's errors before anything is written (a request is applied whole or not at all).

use crate::body::{Payload, python_type};
use crate::error::ApiError;
use serde_json::{Map, Value, json};

pub const REQUIRED: &str = "This field is required.";
pub const NOT_NULL: &str = "This field may not be null.";
pub const NOT_BLANK: &str = "This field may not be blank.";

/// A payload being validated. `partial` is PATCH: only present keys count.
pub struct Fields<'a> {
    p: &'a Payload,
    partial: bool,
    errors: Map<String, Value>,
}

/// Text rules of a character field.
#[derive(Clone, Copy)]
pub struct Text {
    pub max: usize,
    pub required: bool,
    pub blank: bool,
    pub null: bool,
}

impl Text {
    pub const fn required(max: usize) -> Text {
        Text {
            max,
            required: true,
            blank: false,
            null: false,
        }
    }
    pub const fn optional(max: usize) -> Text {
        Text {
            max,
            required: false,
            blank: true,
            null: false,
        }
    }
    pub const fn nullable(max: usize) -> Text {
        Text {
            max,
            required: false,
            blank: true,
            null: true,
        }
    }
}

impl<'a> Fields<'a> {
    pub fn new(p: &'a Payload, partial: bool) -> Self {
        Fields {
            p,
            partial,
            errors: Map::new(),
        }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        let entry = self
            .errors
            .entry(field.to_owned())
            .or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.push(Value::String(message.into()));
        }
    }

    pub fn has_error(&self, field: &str) -> bool {
        self.errors.contains_key(field)
    }

    /// Ends validation: the errors, if any, as a 400.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Fields(self.errors))
        }
    }

    fn missing(&mut self, field: &str, required: bool) {
        if required && !self.partial {
            self.error(field, REQUIRED);
        }
    }

    /// A character field. `None`: absent (or invalid, with the error recorded);
    /// `Some(None)`: an explicit null where allowed.
    pub fn text(&mut self, field: &str, rule: Text) -> Option<Option<String>> {
        let Some(v) = self.p.get(field) else {
            self.missing(field, rule.required);
            return None;
        };
        let s = match v {
            Value::Null if rule.null => return Some(None),
            Value::Null => {
                self.error(field, NOT_NULL);
                return None;
            }
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => {
                self.error(field, "Not a valid string.");
                return None;
            }
        };
        // DRF trims surrounding white space.
        let s = s.trim().to_owned();
        if s.contains('\0') {
            self.error(field, "Null characters are not allowed.");
            return None;
        }
        if s.is_empty() && !rule.blank {
            self.error(field, NOT_BLANK);
            return None;
        }
        if s.chars().count() > rule.max {
            self.error(
                field,
                format!(
                    "Ensure this field has no more than {} characters.",
                    rule.max
                ),
            );
            return None;
        }
        Some(Some(s))
    }

    /// A required, non-blank string kept exactly as sent (passwords, tokens: no trimming).
    pub fn raw_string(&mut self, field: &str, max: usize) -> Option<String> {
        let Some(v) = self.p.get(field) else {
            self.missing(field, true);
            return None;
        };
        match v {
            Value::Null => self.error(field, NOT_NULL),
            Value::String(s) if s.is_empty() => self.error(field, NOT_BLANK),
            Value::String(s) if s.len() > max => self.error(
                field,
                format!("Ensure this field has no more than {max} characters."),
            ),
            Value::String(s) => return Some(s),
            _ => self.error(field, "Not a valid string."),
        }
        None
    }

    /// A required choice among `choices`, DRF's message for anything else.
    pub fn choice(&mut self, field: &str, choices: &[&str]) -> Option<String> {
        let v = self.string(field, Text::required(64))?;
        if choices.contains(&v.as_str()) {
            Some(v)
        } else {
            self.error(field, format!("\"{v}\" is not a valid choice."));
            None
        }
    }

    /// An optional whole number in `1..=max` (native fields old clients never send).
    pub fn positive_int(&mut self, field: &str, max: u64) -> Option<u64> {
        let v = self.p.get(field)?;
        let n = match &v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            Value::Null => return None,
            _ => None,
        };
        match n {
            Some(n) if (1..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    field,
                    format!("Ensure this value is a whole number from 1 to {max}."),
                );
                None
            }
        }
    }

    /// A non-null character field.
    pub fn string(&mut self, field: &str, rule: Text) -> Option<String> {
        self.text(field, rule).flatten()
    }

    /// A boolean field. A form without the key means `false` (HTML checkboxes), unless
    /// partial; JSON without it means absent.
    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        let Some(v) = self.p.get(field) else {
            return (self.p.is_form() && !self.partial).then_some(false);
        };
        match parse_bool(&v) {
            Some(b) => Some(b),
            None => {
                self.error(
                    field,
                    if v.is_null() {
                        NOT_NULL
                    } else {
                        "Must be a valid boolean."
                    },
                );
                None
            }
        }
    }

    /// A JSON field: JSON text in a form, any JSON value in a JSON body (never null).
    pub fn json(&mut self, field: &str) -> Option<Value> {
        let v = self.p.get(field)?;
        match (self.p.is_form(), v) {
            (_, Value::Null) => {
                self.error(field, NOT_NULL);
                None
            }
            (true, Value::String(s)) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Null) => {
                    self.error(field, NOT_NULL);
                    None
                }
                Ok(v) => Some(v),
                Err(_) => {
                    self.error(field, "Value must be valid JSON.");
                    None
                }
            },
            (_, v) => Some(v),
        }
    }

    /// A primary key of a related object.
    pub fn pk(&mut self, field: &str, required: bool) -> Option<i64> {
        let Some(v) = self.p.get(field) else {
            self.missing(field, required);
            return None;
        };
        if v.is_null() {
            self.error(field, NOT_NULL);
            return None;
        }
        if let Value::String(s) = &v
            && s.is_empty()
        {
            self.error(field, REQUIRED);
            return None;
        }
        match pk_value(&v) {
            Ok(id) => Some(id),
            Err(m) => {
                self.error(field, m);
                None
            }
        }
    }

    /// A many-to-many list of primary keys: repeated form keys or a JSON array. A form
    /// without the key means an empty list (unless partial).
    pub fn pk_list(&mut self, field: &str) -> Option<Vec<i64>> {
        let Some(v) = self.p.get_all(field) else {
            return (self.p.is_form() && !self.partial).then(Vec::new);
        };
        let Value::Array(items) = v else {
            let m = if v.is_null() {
                NOT_NULL.to_owned()
            } else {
                format!(
                    "Expected a list of items but got type \"{}\".",
                    python_type(&v)
                )
            };
            self.error(field, m);
            return None;
        };
        let mut ids = Vec::with_capacity(items.len());
        for item in &items {
            match pk_value(item) {
                Ok(id) => ids.push(id),
                Err(m) => {
                    self.error(field, m);
                    return None;
                }
            }
        }
        Some(ids)
    }
}

/// DRF's boolean spellings (and JSON booleans).
pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => parse_bool_str(s),
        _ => None,
    }
}

pub fn parse_bool_str(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "1" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "t" | "T"
        | "y" | "Y" => {
            // DRF 3.9 accepts exactly these; "Yes" is not among them (observed).
            if s == "Yes" { None } else { Some(true) }
        }
        "false" | "False" | "FALSE" | "0" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "f"
        | "F" | "n" | "N" => {
            if s == "No" {
                None
            } else {
                Some(false)
            }
        }
        _ => None,
    }
}

/// A primary key as DRF's PrimaryKeyRelatedField reads it.
pub fn pk_value(v: &Value) -> Result<i64, String> {
    let id = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            format!(
                "Incorrect type. Expected pk value, received {}.",
                python_type(v)
            )
        })?,
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| "Incorrect type. Expected pk value, received str.".to_owned())?,
        other => {
            return Err(format!(
                "Incorrect type. Expected pk value, received {}.",
                python_type(other)
            ));
        }
    };
    Ok(id)
}

pub fn invalid_pk(id: i64) -> String {
    format!("Invalid pk \"{id}\" - object does not exist.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_drf() {
        for s in ["true", "True", "1", "yes", "on", "t", "Y"] {
            assert_eq!(parse_bool_str(s), Some(true), "{s}");
        }
        for s in ["false", "False", "0", "no", "off", "f", "N"] {
            assert_eq!(parse_bool_str(s), Some(false), "{s}");
        }
        for s in ["Yes", "No", "maybe", "", "2"] {
            assert_eq!(parse_bool_str(s), None, "{s}");
        }
    }

    #[test]
    fn form_missing_keys_follow_drf() {
        let p = Payload::parse("application/x-www-form-urlencoded", b"name=q").expect("form");
        let mut f = Fields::new(&p, false);
        assert_eq!(f.boolean("active"), Some(false));
        assert_eq!(f.pk_list("whitelists"), Some(vec![]));
        let mut partial = Fields::new(&p, true);
        assert_eq!(partial.boolean("active"), None);
        assert_eq!(partial.pk_list("whitelists"), None);
        let j = Payload::parse("application/json", br#"{"name":"q"}"#).expect("json");
        let mut f = Fields::new(&j, false);
        assert_eq!(f.boolean("active"), None);
        assert_eq!(f.pk_list("whitelists"), None);
    }

    #[test]
    fn text_rules() {
        let p = Payload::parse(
            "application/json",
            br#"{"a":"  x ","b":"","c":null,"d":"xxxx","e":true}"#,
        )
        .expect("json");
        let mut f = Fields::new(&p, false);
        assert_eq!(f.string("a", Text::required(10)), Some("x".into()));
        assert_eq!(f.string("b", Text::required(10)), None);
        assert_eq!(f.text("c", Text::nullable(10)), Some(None));
        assert_eq!(f.string("d", Text::required(3)), None);
        assert_eq!(f.string("e", Text::required(3)), None);
        assert_eq!(f.string("missing", Text::required(3)), None);
        let Err(ApiError::Fields(m)) = f.finish() else {
            panic!("errors expected")
        };
        assert_eq!(m["b"], json!([NOT_BLANK]));
        assert_eq!(
            m["d"],
            json!(["Ensure this field has no more than 3 characters."])
        );
        assert_eq!(m["e"], json!(["Not a valid string."]));
        assert_eq!(m["missing"], json!([REQUIRED]));
    }
}
