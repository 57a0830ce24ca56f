//! Python's `repr()` of JSON values, as the original's error messages print them: the
//! original formats the parsed value with `%s` (`'{'a': 1}' is not a valid JSON array!`)
//! and DRF wraps model errors in the repr of a list of strings
//! (`["['default arguments not a subset of required arguments']"]`).

use serde_json::Value;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// `str()` of the value Python's `json.loads` would make: a string as it is, anything
/// else as its `repr()`.
pub fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// `repr()` of the value Python's `json.loads` would make.
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    print(&mut out, value, &REPR);
    out
}

/// `repr()` of a list of strings.
pub fn repr_str_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(&mut out, s.as_ref());
    }
    out.push(']');
    out
}

/// How one of Python's printers writes what is not a list or a dict; lists and dicts are
/// written alike by `repr()` and `json.dumps()` (`", "` and `": "` between items).
pub(crate) struct Printer {
    pub null: &'static str,
    /// (false, true)
    pub bools: (&'static str, &'static str),
    pub number: fn(&serde_json::Number) -> String,
    pub string: fn(&mut String, &str),
}

const REPR: Printer = Printer {
    null: "None",
    bools: ("False", "True"),
    number: number_repr,
    string: write_str,
};

/// Writes `value` with `p`.
pub(crate) fn print(out: &mut String, value: &Value, p: &Printer) {
    match value {
        Value::Null => out.push_str(p.null),
        Value::Bool(b) => out.push_str(if *b { p.bools.1 } else { p.bools.0 }),
        Value::Number(n) => out.push_str(&(p.number)(n)),
        Value::String(s) => (p.string)(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print(out, item, p);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                (p.string)(out, k);
                out.push_str(": ");
                print(out, v, p);
            }
            out.push('}');
        }
    }
}

fn number_repr(n: &serde_json::Number) -> String {
    match (n.is_f64(), n.as_f64()) {
        (true, Some(f)) => float_repr(f),
        _ => n.to_string(),
    }
}

/// A `str`'s repr: single quotes unless the text holds a single quote and no double one;
/// characters Python does not count as printable escaped.
fn write_str(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if printable(c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable()` for one character.
fn printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::SpaceSeparator
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// `repr()` of a float: the shortest digits that read back the same, fixed notation when
/// the decimal point falls within 16 digits of them, else `d.ddde±XX`.
fn float_repr(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Python's repr.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // Python's `decpt`: the value is 0.<digits> × 10^decpt.
    let decpt = exp + 1;
    let n = digits.len() as i32;
    let body = if (-4 < decpt) && (decpt <= 16) {
        if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt >= n {
            format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
        } else {
            let (int, frac) = digits.split_at(decpt as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let e = decpt - 1;
        format!(
            "{mantissa}e{}{:02}",
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        )
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_as_python_repr() {
        // Each expected text is what CPython 3 prints for repr(json.loads(<input>)).
        let table = [
            (json!({"a": 1}), "{'a': 1}"),
            (json!([1, 2]), "[1, 2]"),
            (json!([true, false, null]), "[True, False, None]"),
            (json!({"k": ["x", {"y": 1.5}]}), "{'k': ['x', {'y': 1.5}]}"),
            (json!("it's"), "\"it's\""),
            (json!("a'b\"c"), "'a\\'b\"c'"),
            (json!("tab\tnl\nback\\"), "'tab\\tnl\\nback\\\\'"),
            (json!("\u{1}\u{7f}\u{a0}é☃"), "'\\x01\\x7f\\xa0é☃'"),
            (json!("\u{200b}\u{2028}😀"), "'\\u200b\\u2028😀'"),
            (json!(1.0), "1.0"),
            (json!(-0.5), "-0.5"),
            (json!(1e16), "1e+16"),
            (json!(1e15), "1000000000000000.0"),
            (json!(1.5e300), "1.5e+300"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(123.456), "123.456"),
            (json!(12345678901234567890u64), "12345678901234567890"),
            (json!(-3), "-3"),
            (json!({}), "{}"),
            (json!([]), "[]"),
        ];
        for (value, expected) in table {
            assert_eq!(repr(&value), expected, "{value}");
        }
    }

    #[test]
    fn strings_print_as_themselves_with_str() {
        assert_eq!(str_of(&json!("abc")), "abc");
        assert_eq!(str_of(&json!({"a": "b"})), "{'a': 'b'}");
    }

    #[test]
    fn lists_of_messages_print_as_drf_wraps_them() {
        let table: [(&[&str], &str); 4] = [
            (
                &["default arguments not a subset of required arguments"],
                "['default arguments not a subset of required arguments']",
            ),
            (
                &["required argument 'word' not provided!"],
                "[\"required argument 'word' not provided!\"]",
            ),
            (&["a'b\"c"], "['a\\'b\"c']"),
            (&["x", "y"], "['x', 'y']"),
        ];
        for (items, expected) in table {
            assert_eq!(repr_str_list(items), expected);
        }
    }
}
