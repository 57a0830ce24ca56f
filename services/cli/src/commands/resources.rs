//! `saltant types|queues|whitelists list|get|create|update`: fields from flags or from a
//! JSON/TOML file (the API's field names; flags win), names resolved to ids.

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

#[derive(Args, Debug)]
pub struct TypeFields {
    /// Fields from a JSON or TOML file (the API's names); flags override them.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// The command (not run through a shell; arguments are appended).
    #[arg(long = "command")]
    pub command_to_run: Option<String>,
    /// Container image (container types).
    #[arg(long = "image")]
    pub container_image: Option<String>,
    /// docker or singularity (container types).
    #[arg(long)]
    pub container_type: Option<String>,
    #[arg(long)]
    pub logs_path: Option<String>,
    #[arg(long)]
    pub results_path: Option<String>,
    /// Option that passes the arguments as a JSON file (executable types).
    #[arg(long)]
    pub json_file_option: Option<String>,
    /// An environment variable passed to the task (repeatable; replaces the list).
    #[arg(long = "env", value_name = "NAME")]
    pub environment_variables: Vec<String>,
    /// A required argument (repeatable; replaces the list).
    #[arg(long = "required", value_name = "NAME")]
    pub required_arguments: Vec<String>,
    /// A default value: key=string or key:=json (repeatable; replaces the defaults).
    #[arg(long = "default", value_name = "K=V")]
    pub defaults: Vec<String>,
}

impl TypeFields {
    fn apply(&self, body: &mut Map<String, Value>) -> Result<()> {
        set(body, "name", self.name.clone().map(Value::from));
        set(
            body,
            "description",
            self.description.clone().map(Value::from),
        );
        set(
            body,
            "command_to_run",
            self.command_to_run.clone().map(Value::from),
        );
        set(
            body,
            "container_image",
            self.container_image.clone().map(Value::from),
        );
        set(
            body,
            "container_type",
            self.container_type.clone().map(Value::from),
        );
        set(body, "logs_path", self.logs_path.clone().map(Value::from));
        set(
            body,
            "results_path",
            self.results_path.clone().map(Value::from),
        );
        set(
            body,
            "json_file_option",
            self.json_file_option.clone().map(Value::from),
        );
        if !self.environment_variables.is_empty() {
            body.insert(
                "environment_variables".into(),
                json!(self.environment_variables),
            );
        }
        if !self.required_arguments.is_empty() {
            body.insert("required_arguments".into(), json!(self.required_arguments));
        }
        if !self.defaults.is_empty() {
            let mut d = Map::new();
            for raw in &self.defaults {
                let (k, v) = pair(raw)?;
                d.insert(k, v);
            }
            body.insert("required_arguments_default_values".into(), Value::Object(d));
        }
        Ok(())
    }
}

#[derive(Subcommand, Debug)]
pub enum Types {
    /// List task types (both kinds unless --kind).
    List {
        #[command(flatten)]
        kind: KindArg,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show a task type (name or id).
    Get {
        reference: String,
        #[command(flatten)]
        kind: KindArg,
        #[command(flatten)]
        out: Out,
    },
    /// Create a task type: container when --image or --container-type is given (or
    /// --kind container), else executable.
    Create {
        #[command(flatten)]
        kind: KindArg,
        #[command(flatten)]
        fields: TypeFields,
        #[command(flatten)]
        out: Out,
    },
    /// Change a task type (name or id): the fields given, the rest kept.
    Update {
        reference: String,
        #[command(flatten)]
        kind: KindArg,
        #[command(flatten)]
        fields: TypeFields,
        #[command(flatten)]
        out: Out,
    },
}

pub async fn types(client: &Client, t: Types) -> Result<()> {
    match t {
        Types::List { kind, list } => {
            let query = filters(&list.filters)?;
            let mut all = Vec::new();
            for k in Kind::among(kind.kind) {
                all.extend(
                    client
                        .list(k.types(), &query, None)
                        .await?
                        .into_iter()
                        .map(|v| with_kind(v, k)),
                );
            }
            match list.out.format {
                Format::Json => output::json(&Value::Array(all)),
                Format::Table => output::rows(
                    &all,
                    &[
                        ("ID", "id"),
                        ("KIND", "kind"),
                        ("NAME", "name"),
                        ("USER", "user"),
                        ("COMMAND", "command_to_run"),
                        ("IMAGE", "container_image"),
                    ],
                ),
            }
        }
        Types::Get {
            reference,
            kind,
            out,
        } => {
            let (k, v) = resolve::task_type(client, kind.kind, &reference).await?;
            show(&with_kind(v, k), out);
        }
        Types::Create { kind, fields, out } => {
            let mut body = start(&fields.file)?;
            fields.apply(&mut body)?;
            let from_file = body
                .remove("kind")
                .and_then(|k| k.as_str().map(str::to_owned));
            let k = match (kind.kind, from_file.as_deref()) {
                (Some(k), _) => k,
                (None, Some("container")) => Kind::Container,
                (None, Some("executable")) => Kind::Executable,
                (None, Some(other)) => {
                    return Err(Error::Usage(format!(
                        "kind {other:?} in the file: container or executable"
                    )));
                }
                (None, None) => {
                    if [
                        "container_image",
                        "container_type",
                        "logs_path",
                        "results_path",
                    ]
                    .iter()
                    .any(|f| body.contains_key(*f))
                    {
                        Kind::Container
                    } else {
                        Kind::Executable
                    }
                }
            };
            let v = client
                .json(Method::POST, k.types(), Some(&Value::Object(body)))
                .await?;
            show(&with_kind(v, k), out);
        }
        Types::Update {
            reference,
            kind,
            fields,
            out,
        } => {
            let (k, current) = resolve::task_type(client, kind.kind, &reference).await?;
            let mut body = current.as_object().cloned().unwrap_or_default();
            for (key, v) in start(&fields.file)? {
                if key != "kind" {
                    body.insert(key, v);
                }
            }
            fields.apply(&mut body)?;
            for read_only in ["id", "user", "datetime_created"] {
                body.remove(read_only);
            }
            let path = format!("{}{}/", k.types(), current["id"]);
            let v = client
                .json(Method::PUT, &path, Some(&Value::Object(body)))
                .await?;
            show(&with_kind(v, k), out);
        }
    }
    Ok(())
}

/// A boolean flag: `--private`, `--private true`, `--private=false` (yes/no, 1/0 too).
#[derive(Args, Debug)]
pub struct QueueFields {
    /// Fields from a JSON or TOML file (the API's names); flags override them.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Only its owner may run instances on it.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub private: Option<bool>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub runs_executable_tasks: Option<bool>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub runs_docker_container_tasks: Option<bool>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub runs_singularity_container_tasks: Option<bool>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub active: Option<bool>,
}

impl QueueFields {
    fn apply(&self, body: &mut Map<String, Value>) {
        set(body, "name", self.name.clone().map(Value::from));
        set(
            body,
            "description",
            self.description.clone().map(Value::from),
        );
        set(body, "private", self.private.map(Value::from));
        set(
            body,
            "runs_executable_tasks",
            self.runs_executable_tasks.map(Value::from),
        );
        set(
            body,
            "runs_docker_container_tasks",
            self.runs_docker_container_tasks.map(Value::from),
        );
        set(
            body,
            "runs_singularity_container_tasks",
            self.runs_singularity_container_tasks.map(Value::from),
        );
        set(body, "active", self.active.map(Value::from));
    }
}

const QUEUE_COLUMNS: [(&str, &str); 7] = [
    ("ID", "id"),
    ("NAME", "name"),
    ("USER", "user"),
    ("PRIVATE", "private"),
    ("ACTIVE", "active"),
    ("WHITELISTS", "whitelists"),
    ("DESCRIPTION", "description"),
];

#[derive(Subcommand, Debug)]
pub enum Queues {
    /// List queues.
    List(ListArgs),
    /// Show a queue (name or id).
    Get {
        reference: String,
        #[command(flatten)]
        out: Out,
    },
    /// Create a queue.
    Create {
        #[command(flatten)]
        fields: QueueFields,
        /// A whitelist it accepts types of (name or id; repeatable).
        #[arg(long = "whitelist")]
        whitelists: Vec<String>,
        #[command(flatten)]
        out: Out,
    },
    /// Change a queue (name or id): the fields given, the rest kept.
    Update {
        reference: String,
        #[command(flatten)]
        fields: QueueFields,
        /// Add a whitelist (name or id; repeatable).
        #[arg(long = "add-whitelist")]
        add: Vec<String>,
        /// Remove a whitelist (name or id; repeatable).
        #[arg(long = "remove-whitelist")]
        remove: Vec<String>,
        #[command(flatten)]
        out: Out,
    },
}

async fn whitelist_ids(client: &Client, refs: &[String]) -> Result<Vec<Value>> {
    let mut ids = Vec::new();
    for r in refs {
        ids.push(resolve::whitelist(client, r).await?["id"].clone());
    }
    Ok(ids)
}

pub async fn queues(client: &Client, q: Queues) -> Result<()> {
    match q {
        Queues::List(list) => {
            let all = client
                .list("taskqueues/", &filters(&list.filters)?, None)
                .await?;
            match list.out.format {
                Format::Json => output::json(&Value::Array(all)),
                Format::Table => output::rows(&all, &QUEUE_COLUMNS),
            }
        }
        Queues::Get { reference, out } => show(&resolve::queue(client, &reference).await?, out),
        Queues::Create {
            fields,
            whitelists,
            out,
        } => {
            let mut body = start(&fields.file)?;
            fields.apply(&mut body);
            if !whitelists.is_empty() {
                body.insert(
                    "whitelists".into(),
                    Value::Array(whitelist_ids(client, &whitelists).await?),
                );
            }
            let v = client
                .json(Method::POST, "taskqueues/", Some(&Value::Object(body)))
                .await?;
            show(&v, out);
        }
        Queues::Update {
            reference,
            fields,
            add,
            remove,
            out,
        } => {
            let current = resolve::queue(client, &reference).await?;
            let mut body = start(&fields.file)?;
            fields.apply(&mut body);
            if !add.is_empty() || !remove.is_empty() {
                let (add, remove) = (
                    whitelist_ids(client, &add).await?,
                    whitelist_ids(client, &remove).await?,
                );
                body.insert(
                    "whitelists".into(),
                    Value::Array(edit(&current["whitelists"], &add, &remove)),
                );
            }
            let path = format!("taskqueues/{}/", current["id"]);
            let v = client
                .json(Method::PATCH, &path, Some(&Value::Object(body)))
                .await?;
            show(&v, out);
        }
    }
    Ok(())
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

#[derive(Args, Debug)]
pub struct WhitelistFields {
    /// Fields from a JSON or TOML file (the API's names); flags override them.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Whitelists {
    /// List whitelists.
    List(ListArgs),
    /// Show a whitelist (name or id).
    Get {
        reference: String,
        #[command(flatten)]
        out: Out,
    },
    /// Create a whitelist.
    Create {
        #[command(flatten)]
        fields: WhitelistFields,
        /// A task type it allows: name, id, or container:NAME / executable:NAME (repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
        #[command(flatten)]
        out: Out,
    },
    /// Change a whitelist (name or id): the fields given, the rest kept.
    Update {
        reference: String,
        #[command(flatten)]
        fields: WhitelistFields,
        /// Allow a task type (as for create; repeatable).
        #[arg(long = "add-type")]
        add: Vec<String>,
        /// Disallow a task type (repeatable).
        #[arg(long = "remove-type")]
        remove: Vec<String>,
        #[command(flatten)]
        out: Out,
    },
}

/// Type references as ids per kind: (container ids, executable ids).
async fn type_ids(client: &Client, refs: &[String]) -> Result<[Vec<Value>; 2]> {
    let mut ids = [Vec::new(), Vec::new()];
    for r in refs {
        let (k, v) = resolve::task_type(client, None, r).await?;
        ids[usize::from(k == Kind::Executable)].push(v["id"].clone());
    }
    Ok(ids)
}

pub async fn whitelists(client: &Client, w: Whitelists) -> Result<()> {
    let fields_of = |f: &WhitelistFields| -> Result<Map<String, Value>> {
        let mut body = start(&f.file)?;
        set(&mut body, "name", f.name.clone().map(Value::from));
        set(
            &mut body,
            "description",
            f.description.clone().map(Value::from),
        );
        Ok(body)
    };
    match w {
        Whitelists::List(list) => {
            let all = client
                .list("taskwhitelists/", &filters(&list.filters)?, None)
                .await?;
            match list.out.format {
                Format::Json => output::json(&Value::Array(all)),
                Format::Table => output::rows(
                    &all,
                    &[
                        ("ID", "id"),
                        ("NAME", "name"),
                        ("USER", "user"),
                        ("CONTAINER TYPES", "whitelisted_container_task_types"),
                        ("EXECUTABLE TYPES", "whitelisted_executable_task_types"),
                    ],
                ),
            }
        }
        Whitelists::Get { reference, out } => {
            show(&resolve::whitelist(client, &reference).await?, out)
        }
        Whitelists::Create { fields, types, out } => {
            let mut body = fields_of(&fields)?;
            if !types.is_empty() {
                let [c, e] = type_ids(client, &types).await?;
                body.insert(Kind::Container.whitelisted().into(), Value::Array(c));
                body.insert(Kind::Executable.whitelisted().into(), Value::Array(e));
            }
            let v = client
                .json(Method::POST, "taskwhitelists/", Some(&Value::Object(body)))
                .await?;
            show(&v, out);
        }
        Whitelists::Update {
            reference,
            fields,
            add,
            remove,
            out,
        } => {
            let current = resolve::whitelist(client, &reference).await?;
            let mut body = fields_of(&fields)?;
            if !add.is_empty() || !remove.is_empty() {
                let (add, remove) = (
                    type_ids(client, &add).await?,
                    type_ids(client, &remove).await?,
                );
                for (i, k) in [Kind::Container, Kind::Executable].into_iter().enumerate() {
                    body.insert(
                        k.whitelisted().into(),
                        Value::Array(edit(&current[k.whitelisted()], &add[i], &remove[i])),
                    );
                }
            }
            let path = format!("taskwhitelists/{}/", current["id"]);
            let v = client
                .json(Method::PATCH, &path, Some(&Value::Object(body)))
                .await?;
            show(&v, out);
        }
    }
    Ok(())
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
