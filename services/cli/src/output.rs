//! What commands print: tables for people (`--output table`, plain text without colours,
//! not wrapped when piped), the API's JSON for scripts (`--output json`, one document
//! on stdout), and progress on stderr only when it is a terminal.

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;
use std::io::IsTerminal as _;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Columns for people.
    #[default]
    Table,
    /// The API's JSON for scripts.
    Json,
}

/// Prints a JSON document on stdout.
pub fn json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// A value as a table cell: strings bare, null empty, the rest as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            a.iter().map(cell).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if std::io::stdout().is_terminal() {
        t.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.set_content_arrangement(ContentArrangement::Disabled);
    }
    t
}

/// Rows of `items` with these columns (`(header, field)`), a header line first.
pub fn rows(items: &[Value], columns: &[(&str, &str)]) {
    let mut t = table();
    t.set_header(columns.iter().map(|(h, _)| h.to_string()));
    for item in items {
        t.add_row(columns.iter().map(|(_, f)| cell(&item[*f])));
    }
    println!("{}", trim_lines(&t.to_string()));
}

/// One object as `field  value` lines, in its order.
pub fn object(v: &Value) {
    let mut t = table();
    if let Some(o) = v.as_object() {
        for (k, val) in o {
            t.add_row(vec![k.clone(), cell(val)]);
        }
    }
    println!("{}", trim_lines(&t.to_string()));
}

/// comfy-table's borderless preset pads every line to the table's width and starts each
/// with a space: trimmed, so piped output is easy to cut and compare.
fn trim_lines(s: &str) -> String {
    s.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether progress may be drawn: stderr is a terminal.
pub fn progress_allowed() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_are_plain_text() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!("a b")), "a b");
        assert_eq!(cell(&json!([1, 2])), "1,2");
        assert_eq!(cell(&json!({"a": 1})), "{\"a\":1}");
        assert_eq!(cell(&json!(true)), "true");
    }
}
