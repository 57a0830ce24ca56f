//! `saltant run`: create an instance of a type (by name or id) on a queue, and with
//! `--follow` show its states, stream its output and exit with its exit status.

use super::{object_file, pair};
use crate::Out;
use crate::client::Client;
use crate::error::{Result, code};
use crate::follow::{self, Progress};
use crate::output::{self, Format};
use crate::resolve::{self, Kind};
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The task type: its name or id.
    pub task_type: String,
    /// The queue: its name or id.
    #[arg(long, short)]
    pub queue: String,
    /// An argument: key=string or key:=json (repeatable; over --args-file).
    #[arg(long = "arg", short = 'a', value_name = "K=V")]
    pub args: Vec<String>,
    /// A JSON or TOML file holding the arguments object.
    #[arg(long, value_name = "FILE")]
    pub args_file: Option<PathBuf>,
    /// The instance's name.
    #[arg(long, short, default_value = "")]
    pub name: String,
    /// The type's kind, when the name or id fits both.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Follow it: states, live output; exit with its exit status.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub out: Out,
}

pub async fn run(client: &Client, a: RunArgs) -> Result<u8> {
    let mut arguments = match &a.args_file {
        Some(f) => object_file(f)?,
        None => serde_json::Map::new(),
    };
    for raw in &a.args {
        let (k, v) = pair(raw)?;
        arguments.insert(k, v);
    }
    let (kind, ty) = resolve::task_type(client, a.kind, &a.task_type).await?;
    let queue = resolve::queue(client, &a.queue).await?;
    let body = json!({
        "name": a.name,
        "task_type": ty["id"],
        "task_queue": queue["id"],
        "arguments": Value::Object(arguments),
    });
    let created = client
        .json(Method::POST, kind.instances(), Some(&body))
        .await?;
    let uuid = created["uuid"].as_str().unwrap_or_default().to_owned();
    if !a.follow {
        match a.out.format {
            Format::Json => output::json(&created),
            Format::Table => output::object(&created),
        }
        return Ok(code::OK);
    }
    follow_to_end(client, &uuid, true, a.out.format).await
}

/// Follows the instance to its end (with its output when `logs`) and returns the exit
/// status its end maps to; with JSON output the outcome is printed on stdout at the end.
pub async fn follow_to_end(client: &Client, uuid: &str, logs: bool, format: Format) -> Result<u8> {
    let progress = Progress::new(output::progress_allowed(), uuid);
    let outcome = follow::instance(client, uuid, logs, &progress).await;
    progress.finish();
    let outcome = outcome?;
    if format == Format::Json {
        output::json(&outcome.to_json(uuid));
    } else if output::progress_allowed() {
        eprintln!(
            "{uuid} {}{}",
            outcome.state,
            outcome
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    Ok(outcome.exit_status())
}
