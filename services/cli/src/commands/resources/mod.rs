//! `saltant types|queues|whitelists list|get|create|update`: fields from flags or from a
//! JSON/TOML file (the API's field names; flags win), names resolved to ids. One module
//! per resource; the helpers they share are here.

use super::{object_file, pair};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::output::{self, Format};
use crate::resolve::{self, Kind};
use crate::{KindArg, Out};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
mod queues;
mod types;
mod whitelists;

pub use queues::{Queues, queues};
pub use types::{Types, types};
pub use whitelists::{Whitelists, whitelists};

/// A value as a query parameter: strings bare, the rest as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn show(v: &Value, out: Out) {
    match out.format {
        Format::Json => output::json(v),
        Format::Table => output::object(v),
    }
}

fn with_kind(mut v: Value, k: Kind) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("kind".into(), k.name().into());
    }
    v
}

fn filters(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|f| pair(f).map(|(k, v)| (k, text(&v))))
        .collect()
}

fn start(file: &Option<PathBuf>) -> Result<Map<String, Value>> {
    match file {
        Some(f) => object_file(f),
        None => Ok(Map::new()),
    }
}

fn set(body: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        body.insert(key.into(), v);
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Any of the API's filters: key=value (e.g. name__startswith=ci-).
    #[arg(long = "filter", value_name = "K=V")]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub out: Out,
}

/// `list` with `add` appended (once) and `remove` taken out.
fn edit(list: &Value, add: &[Value], remove: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = list
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !remove.contains(v))
        .collect();
    for a in add {
        if !out.contains(a) && !remove.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_edits_add_once_and_remove() {
        assert_eq!(
            edit(&json!([1, 2, 3]), &[json!(4), json!(2)], &[json!(1)]),
            vec![json!(2), json!(3), json!(4)]
        );
        assert_eq!(edit(&Value::Null, &[json!(1)], &[]), vec![json!(1)]);
    }
}
