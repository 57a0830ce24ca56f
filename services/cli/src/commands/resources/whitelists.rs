//! `saltant whitelists …`: task whitelists.

use super::*;

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
