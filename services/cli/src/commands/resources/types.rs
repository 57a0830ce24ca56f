//! `saltant types …`: container and executable task types.

use super::*;

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
