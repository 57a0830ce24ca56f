//! `saltant instances`: list, get, wait, logs (whole or live), results (every kept file
//! into a folder), clone, terminate — of both kinds, found by uuid.

use super::pair;
use crate::client::Client;
use crate::error::{Error, Result, code};
use crate::follow::{self, Progress};
use crate::output::{self, Format};
use crate::resolve::{self, Kind};
use crate::{KindArg, Out};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;
use std::path::{Component, Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum Instances {
    /// List instances, newest first.
    List(ListArgs),
    /// Show one instance.
    Get {
        uuid: String,
        #[command(flatten)]
        out: Out,
    },
    /// Wait until the instance ends; exit with its exit status.
    Wait {
        uuid: String,
        /// Give up after this many seconds (exit code 12).
        #[arg(long)]
        timeout: Option<u64>,
        #[command(flatten)]
        out: Out,
    },
    /// Print the instance's output: stdout to stdout, stderr to stderr.
    Logs {
        uuid: String,
        /// Follow it live until the instance ends.
        #[arg(long, short)]
        follow: bool,
        /// The attempt (default: the last one that stored output; with --follow, every one).
        #[arg(long)]
        attempt: Option<u64>,
    },
    /// Download every file the instance kept (its logs and results folders).
    Results {
        uuid: String,
        /// The folder to write them into (created; default: the current folder).
        #[arg(long = "output", short = 'o', value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// How to print the list of files written.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Create a new instance like this one.
    Clone {
        uuid: String,
        #[command(flatten)]
        out: Out,
    },
    /// Ask the instance to stop.
    Terminate {
        uuid: String,
        #[command(flatten)]
        out: Out,
    },
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub kind: KindArg,
    /// Only in this state (repeatable).
    #[arg(long)]
    pub state: Vec<String>,
    /// Only on this queue (name or id).
    #[arg(long, short)]
    pub queue: Option<String>,
    /// Only of this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only with this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Any of the API's filters: key=value (e.g. name__startswith=nightly).
    #[arg(long = "filter", value_name = "K=V")]
    pub filters: Vec<String>,
    /// At most this many (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub out: Out,
}

const COLUMNS: [(&str, &str); 7] = [
    ("UUID", "uuid"),
    ("KIND", "kind"),
    ("NAME", "name"),
    ("STATE", "state"),
    ("USER", "user"),
    ("QUEUE", "task_queue"),
    ("CREATED", "datetime_created"),
];

fn show(v: &Value, out: Out) {
    match out.format {
        Format::Json => output::json(v),
        Format::Table => output::object(v),
    }
}

pub async fn instances(client: &Client, i: Instances) -> Result<u8> {
    match i {
        Instances::List(a) => list(client, a).await?,
        Instances::Get { uuid, out } => show(&resolve::instance(client, &uuid).await?.1, out),
        Instances::Wait { uuid, timeout, out } => {
            let (_, v) = resolve::instance(client, &uuid).await?;
            let uuid = v["uuid"].as_str().unwrap_or_default().to_owned();
            let wait = super::run::follow_to_end(client, &uuid, false, out.format);
            return match timeout {
                None => wait.await,
                Some(s) => tokio::time::timeout(std::time::Duration::from_secs(s), wait)
                    .await
                    .map_err(|_| Error::Timeout(format!("{uuid} did not end within {s} s")))?,
            };
        }
        Instances::Logs {
            uuid,
            follow,
            attempt,
        } => logs(client, &uuid, follow, attempt).await?,
        Instances::Results { uuid, dir, format } => results(client, &uuid, &dir, format).await?,
        Instances::Clone { uuid, out } => {
            let (kind, v) = resolve::instance(client, &uuid).await?;
            let path = format!(
                "{}{}/clone/",
                kind.instances(),
                v["uuid"].as_str().unwrap_or_default()
            );
            show(&client.json(Method::POST, &path, None).await?, out);
        }
        Instances::Terminate { uuid, out } => {
            let (kind, v) = resolve::instance(client, &uuid).await?;
            let path = format!(
                "{}{}/terminate/",
                kind.instances(),
                v["uuid"].as_str().unwrap_or_default()
            );
            show(&client.json(Method::POST, &path, None).await?, out);
        }
    }
    Ok(code::OK)
}

async fn list(client: &Client, a: ListArgs) -> Result<()> {
    let mut query: Vec<(String, String)> = Vec::new();
    match a.state.len() {
        0 => {}
        1 => query.push(("state".into(), a.state[0].clone())),
        _ => query.push(("state__in".into(), a.state.join(","))),
    }
    if let Some(q) = &a.queue {
        let q = resolve::queue(client, q).await?;
        query.push(("task_queue".into(), q["id"].to_string()));
    }
    if let Some(u) = a.user {
        query.push(("user__username".into(), u));
    }
    if let Some(n) = a.name {
        query.push(("name".into(), n));
    }
    for f in &a.filters {
        let (k, v) = pair(f)?;
        query.push((k, super::resources::text(&v)));
    }
    let mut all = Vec::new();
    for k in Kind::among(a.kind.kind) {
        for mut v in client.list(k.instances(), &query, Some(a.limit)).await? {
            if let Some(o) = v.as_object_mut() {
                o.insert("kind".into(), k.name().into());
            }
            all.push(v);
        }
    }
    all.sort_by(|x, y| {
        y["datetime_created"]
            .as_str()
            .cmp(&x["datetime_created"].as_str())
    });
    all.truncate(a.limit);
    match a.out.format {
        Format::Json => output::json(&Value::Array(all)),
        Format::Table => output::rows(&all, &COLUMNS),
    }
    Ok(())
}

async fn logs(client: &Client, uuid: &str, follow: bool, attempt: Option<u64>) -> Result<()> {
    let (_, v) = resolve::instance(client, uuid).await?;
    let uuid = v["uuid"].as_str().unwrap_or_default().to_owned();
    if follow && attempt.is_none() {
        let progress = Progress::new(false, &uuid);
        follow::instance(client, &uuid, true, &progress).await?;
        progress.finish();
        return Ok(());
    }
    let listing = client.get(&format!("taskinstances/{uuid}/logs/")).await?;
    let files = listing["files"].as_array().cloned().unwrap_or_default();
    let attempt = attempt.unwrap_or_else(|| {
        files
            .iter()
            .filter_map(|f| f["attempt"].as_u64())
            .max()
            .unwrap_or(1)
    });
    let progress = Progress::new(false, &uuid);
    if follow {
        // One attempt, both streams at once, to their ends.
        let tail = |stream: &str, err: bool| {
            let name = follow::log_name(&uuid, attempt, stream);
            follow::tail(client.clone(), uuid.clone(), name, err, progress.clone())
        };
        let (out, err) = tokio::join!(tail("stdout", false), tail("stderr", true));
        return out.and(err);
    }
    for (stream, err) in [("stdout", false), ("stderr", true)] {
        let name = follow::log_name(&uuid, attempt, stream);
        if !files.iter().any(|f| f["name"] == name.as_str()) {
            continue;
        }
        let r = client
            .send(
                Method::GET,
                &format!("taskinstances/{uuid}/logs/{name}"),
                None,
                true,
                &[],
            )
            .await?;
        let bytes = r
            .bytes()
            .await
            .map_err(|e| Error::Server(format!("download {name}: {e}")))?;
        progress.output(err, &String::from_utf8_lossy(&bytes));
    }
    Ok(())
}

/// The path under `dir` a kept file's name maps to; `None` when the name would leave it
/// (absolute, `..`, empty parts).
pub fn safe_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    if name.is_empty() || name.contains('\0') || name.contains('\\') {
        return None;
    }
    let mut out = dir.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            _ => return None,
        }
    }
    (out != dir).then_some(out)
}

async fn results(client: &Client, uuid: &str, dir: &Path, format: Format) -> Result<()> {
    let (_, v) = resolve::instance(client, uuid).await?;
    let uuid = v["uuid"].as_str().unwrap_or_default().to_owned();
    let listing = client
        .get(&format!("taskinstances/{uuid}/results/"))
        .await?;
    let files = listing["files"].as_array().cloned().unwrap_or_default();
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for f in &files {
        let name = f["name"].as_str().unwrap_or_default();
        let target = safe_path(dir, name).ok_or_else(|| {
            Error::Server(format!(
                "refusing a result file named {name:?}: it leaves {}",
                dir.display()
            ))
        })?;
        let mut r = client
            .send(
                Method::GET,
                &format!("taskinstances/{uuid}/results/{name}"),
                None,
                true,
                &[],
            )
            .await?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| anyhow::anyhow!("create {}: {e}", parent.display()))?;
        }
        let tmp = target.with_extension("saltant-part");
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| anyhow::anyhow!("create {}: {e}", tmp.display()))?;
        let mut size = 0u64;
        while let Some(chunk) = r
            .chunk()
            .await
            .map_err(|e| Error::Server(format!("download {name}: {e}")))?
        {
            size += chunk.len() as u64;
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(|e| anyhow::anyhow!("write {}: {e}", tmp.display()))?;
        }
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(|e| anyhow::anyhow!("write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &target)
            .map_err(|e| anyhow::anyhow!("rename {}: {e}", target.display()))?;
        written.push(
            serde_json::json!({"name": name, "size": size, "path": target.display().to_string()}),
        );
    }
    if let Some(why) = listing["incomplete"].as_str() {
        eprintln!("saltant: the results are incomplete: {why}");
    }
    match format {
        Format::Json => output::json(&Value::Array(written)),
        Format::Table => output::rows(
            &written,
            &[("NAME", "name"), ("SIZE", "size"), ("PATH", "path")],
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_names_stay_inside_the_folder() {
        let d = Path::new("/out");
        assert_eq!(
            safe_path(d, "results/a/b.txt"),
            Some(PathBuf::from("/out/results/a/b.txt"))
        );
        for bad in [
            "../x",
            "/etc/passwd",
            "results/../../x",
            "",
            ".",
            "a\\..\\b",
            "a\0b",
        ] {
            assert_eq!(safe_path(d, bad), None, "{bad:?}");
        }
    }
}
