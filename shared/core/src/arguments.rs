//! Instance arguments: required names, defaults, and the Python-style JSON rendering that
//! tasks receive (the original's `json.dumps`).

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// The original's message, literally.
    #[error("required argument '{0}' not provided!")]
    Missing(String),
}

/// Checks that every required argument is given or has a default, and returns the
/// arguments with missing ones filled from the defaults (what saltant stores and runs).
/// Extra arguments pass through. Required names that are not strings are ignored, as the
/// original does not validate array element types.
pub fn fill_defaults(
    required: &[Value],
    defaults: &Map<String, Value>,
    mut arguments: Map<String, Value>,
) -> Result<Map<String, Value>, ArgumentError> {
    for name in required.iter().filter_map(Value::as_str) {
        if arguments.contains_key(name) {
            continue;
        }
        match defaults.get(name) {
            Some(v) => {
                arguments.insert(name.to_owned(), v.clone());
            }
            None => return Err(ArgumentError::Missing(name.to_owned())),
        }
    }
    Ok(arguments)
}

/// Renders JSON as Python's `json.dumps` does by default: `", "` and `": "` separators and
/// non-ASCII characters escaped as `\uXXXX`, so tasks see the bytes the original sent.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    crate::pyrepr::print(&mut out, value, &JSON_DUMPS);
    out
}

const JSON_DUMPS: crate::pyrepr::Printer = crate::pyrepr::Printer {
    null: "null",
    bools: ("false", "true"),
    number: serde_json::Number::to_string,
    string: write_string,
};

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn defaults_fill_missing_required_arguments() {
        let required = [json!("x"), json!("y")];
        let defaults = obj(json!({"x": 5}));
        let filled = fill_defaults(&required, &defaults, obj(json!({"y": 1, "extra": true})))
            .expect("valid");
        assert_eq!(
            Value::Object(filled),
            json!({"y": 1, "extra": true, "x": 5})
        );
        // A given value wins over the default.
        let given =
            fill_defaults(&required, &defaults, obj(json!({"x": 7, "y": 1}))).expect("valid");
        assert_eq!(given["x"], json!(7));
    }

    #[test]
    fn missing_required_argument_names_it() {
        let err = fill_defaults(&[json!("word")], &Map::new(), Map::new()).expect_err("missing");
        assert_eq!(err.to_string(), "required argument 'word' not provided!");
    }

    #[test]
    fn renders_like_python_json_dumps() {
        let table = [
            (json!({"a": 1, "b": 2}), r#"{"a": 1, "b": 2}"#),
            (json!({"a": "dflt"}), r#"{"a": "dflt"}"#),
            (json!({}), "{}"),
            (json!([1, [2, 3], null, true]), "[1, [2, 3], null, true]"),
            (json!({"q": "it's \"x\"\n"}), r#"{"q": "it's \"x\"\n"}"#),
            (
                json!({"u": "café ☃ 😀"}),
                r#"{"u": "caf\u00e9 \u2603 \ud83d\ude00"}"#,
            ),
            (json!({"c": "\u{1}\u{7f}"}), r#"{"c": "\u0001\u007f"}"#),
        ];
        for (value, expected) in table {
            assert_eq!(python_json(&value), expected);
        }
    }
}
