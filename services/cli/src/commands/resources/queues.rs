//! `saltant queues …`: task queues.

use super::*;

/// A queue's fields from flags (booleans: `--private`, `--private true`, `--private=false`;
/// yes/no and 1/0 too) or a file.
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
