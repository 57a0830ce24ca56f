//! Names or ids to resources: task types of either kind, queues, whitelists, instances by
//! uuid. An unknown name is [`Error::NotFound`]; a name or id that fits types of both kinds
//! is [`Error::Ambiguous`] with what matched and how to choose.

use crate::client::Client;
use crate::error::{Error, Result};
use serde_json::Value;

/// The two kinds of task types and instances, each with its own endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Container,
    Executable,
}

impl Kind {
    pub const BOTH: [Kind; 2] = [Kind::Container, Kind::Executable];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Executable => "executable",
        }
    }
    pub fn types(self) -> &'static str {
        match self {
            Kind::Container => "containertasktypes/",
            Kind::Executable => "executabletasktypes/",
        }
    }
    pub fn instances(self) -> &'static str {
        match self {
            Kind::Container => "containertaskinstances/",
            Kind::Executable => "executabletaskinstances/",
        }
    }
    /// The whitelist field listing types of this kind.
    pub fn whitelisted(self) -> &'static str {
        match self {
            Kind::Container => "whitelisted_container_task_types",
            Kind::Executable => "whitelisted_executable_task_types",
        }
    }
    /// The kinds to look in: the one asked for, or both.
    pub fn among(kind: Option<Kind>) -> Vec<Kind> {
        kind.map_or(Kind::BOTH.to_vec(), |k| vec![k])
    }
}

/// A reference typed by a user: all digits is an id, anything else a name.
fn as_id(reference: &str) -> Option<i64> {
    (!reference.is_empty() && reference.bytes().all(|b| b.is_ascii_digit()))
        .then(|| reference.parse().ok())
        .flatten()
}

/// `container:NAME` / `executable:NAME` say the kind inline (whitelists' type lists).
pub fn split_kind(reference: &str) -> (Option<Kind>, &str) {
    for k in Kind::BOTH {
        if let Some(rest) = reference
            .strip_prefix(k.name())
            .and_then(|r| r.strip_prefix(':'))
        {
            return (Some(k), rest);
        }
    }
    (None, reference)
}

/// The object `reference` (id or exact name) names among `path`'s, if any.
async fn one_of(client: &Client, path: &str, reference: &str) -> Result<Option<Value>> {
    if let Some(id) = as_id(reference) {
        return match client.get(&format!("{path}{id}/")).await {
            Ok(v) => Ok(Some(v)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        };
    }
    let found = client
        .list(path, &[("name".into(), reference.into())], None)
        .await?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        n => Err(Error::Ambiguous(format!(
            "{n} objects are named {reference:?} at {path}: use an id ({})",
            ids(&found)
        ))),
    }
}

fn ids(found: &[Value]) -> String {
    found
        .iter()
        .map(|v| v["id"].to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The task type `reference` names (in `kind`, or in either); with its kind.
pub async fn task_type(
    client: &Client,
    kind: Option<Kind>,
    reference: &str,
) -> Result<(Kind, Value)> {
    let (inline, reference) = split_kind(reference);
    let kind = inline.or(kind);
    let mut found = Vec::new();
    for k in Kind::among(kind) {
        if let Some(v) = one_of(client, k.types(), reference).await? {
            found.push((k, v));
        }
    }
    match found.len() {
        0 => Err(Error::NotFound(format!(
            "no {}task type {}",
            kind.map(|k| format!("{} ", k.name())).unwrap_or_default(),
            describe(reference)
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(Error::Ambiguous(format!(
            "task type {} is ambiguous: {}; say which with --kind container|executable{}",
            describe(reference),
            found
                .iter()
                .map(|(k, v)| format!(
                    "{} type {} {:?} (owner {})",
                    k.name(),
                    v["id"],
                    v["name"].as_str().unwrap_or_default(),
                    v["user"].as_str().unwrap_or("nobody")
                ))
                .collect::<Vec<_>>()
                .join(", "),
            if as_id(reference).is_some() {
                ""
            } else {
                " or an id"
            }
        ))),
    }
}

fn describe(reference: &str) -> String {
    match as_id(reference) {
        Some(id) => format!("with id {id}"),
        None => format!("named {reference:?}"),
    }
}

/// The queue `reference` names.
pub async fn queue(client: &Client, reference: &str) -> Result<Value> {
    one_of(client, "taskqueues/", reference)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no queue {}", describe(reference))))
}

/// The whitelist `reference` names.
pub async fn whitelist(client: &Client, reference: &str) -> Result<Value> {
    one_of(client, "taskwhitelists/", reference)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no whitelist {}", describe(reference))))
}

/// The instance with this uuid, of whichever kind.
pub async fn instance(client: &Client, uuid: &str) -> Result<(Kind, Value)> {
    let parsed: uuid::Uuid = uuid
        .parse()
        .map_err(|_| Error::Usage(format!("{uuid:?} is not a task instance uuid")))?;
    for k in Kind::BOTH {
        match client.get(&format!("{}{parsed}/", k.instances())).await {
            Ok(v) => return Ok((k, v)),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::NotFound(format!("no task instance {parsed}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_ids_names_or_kinded_names() {
        assert_eq!(as_id("42"), Some(42));
        assert_eq!(as_id("4a"), None);
        assert_eq!(as_id(""), None);
        assert_eq!(as_id("99999999999999999999"), None);
        assert_eq!(split_kind("container:web"), (Some(Kind::Container), "web"));
        assert_eq!(split_kind("executable:7"), (Some(Kind::Executable), "7"));
        assert_eq!(split_kind("other:x"), (None, "other:x"));
    }
}
