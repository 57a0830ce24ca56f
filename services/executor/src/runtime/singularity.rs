//! Singularity/Apptainer container tasks through the CLI (whichever of `apptainer` and
//! `singularity` is on PATH): the image pulled once into a cache folder (with a timeout
//! per try and a number of tries, as the original), then `exec` with the instance's
//! folders bound, a clean environment holding only the listed variables, and the same argv
//! rules as Docker (`container`). Output and termination are those of host processes
//! (`process`, `groups`). Without either binary the executor does not claim the
//! capability, and such instances fail at once with a message naming the executor.

use super::container::Container;
use super::{Outcome, Runtime, Task, process};
use futures::future::BoxFuture;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tracing::Instrument;

/// `[executor.singularity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SingularityConfig {
    pub enabled: bool,
    /// `WORKER_SINGULARITY_IMAGES_DIRECTORY`: pulled images, reused across instances.
    pub images_dir: PathBuf,
    /// `SINGULARITY_PULL_TIMEOUT`: seconds one pull may take.
    pub pull_timeout_secs: u64,
    /// `SINGULARITY_PULL_RETRIES`: tries before the instance fails.
    pub pull_retries: u32,
}

impl Default for SingularityConfig {
    fn default() -> Self {
        SingularityConfig {
            enabled: true,
            images_dir: std::env::temp_dir().join("saltant-executor").join("images"),
            pull_timeout_secs: 300,
            pull_retries: 5,
        }
    }
}

/// The CLI found on this machine.
pub(crate) struct Cli {
    pub bin: PathBuf,
    /// `APPTAINER` or `SINGULARITY`: the prefix of variables passed into the container.
    pub env_prefix: &'static str,
    pub version: String,
    /// One pull per image at a time on this executor.
    pulls: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Finds `apptainer` (preferred) or `singularity` and asks its version.
pub(crate) async fn detect(config: &SingularityConfig) -> Option<Cli> {
    if !config.enabled {
        return None;
    }
    for (name, env_prefix) in [("apptainer", "APPTAINER"), ("singularity", "SINGULARITY")] {
        let Some(bin) = on_path(name) else { continue };
        let version = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::process::Command::new(&bin).arg("--version").output(),
        )
        .await;
        match version {
            Ok(Ok(out)) if out.status.success() => {
                let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                tracing::info!(bin = %bin.display(), %version, "singularity runtime found");
                return Some(Cli {
                    bin,
                    env_prefix,
                    version,
                    pulls: Mutex::new(HashMap::new()),
                });
            }
            other => {
                tracing::warn!(bin = %bin.display(), result = ?other.map(|r| r.map(|o| o.status)), "{name} --version failed; not offering singularity")
            }
        }
    }
    tracing::info!(
        "neither apptainer nor singularity is on PATH: singularity tasks will fail here"
    );
    None
}

/// The cache file of an image: its reference made file-safe, plus a hash so that
/// different references never share a file.
fn image_file(images_dir: &Path, image: &str) -> PathBuf {
    let safe: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let hash = hex::encode(&Sha256::digest(image.as_bytes())[..6]);
    images_dir.join(format!("{safe}-{hash}.sif"))
}

/// What to pull: a reference with a scheme (`docker://`, `library://`, `oras://`, `shub://`)
/// as given, anything else from a Docker registry.
fn pull_uri(image: &str) -> String {
    if image.contains("://") {
        image.to_owned()
    } else {
        format!("docker://{image}")
    }
}

/// `<bin> exec --cleanenv --bind host:inside … <image file> <argv…>`.
fn exec_argv(
    bin: &Path,
    binds: &[(PathBuf, String)],
    image: &Path,
    argv: Vec<String>,
) -> Vec<String> {
    let mut out = vec![
        bin.display().to_string(),
        "exec".into(),
        "--cleanenv".into(),
    ];
    for (host, inside) in binds {
        out.push("--bind".into());
        out.push(format!(
            "{}:{}",
            host.display().to_string().trim_end_matches('/'),
            inside.trim_end_matches('/')
        ));
    }
    out.push(image.display().to_string());
    out.extend(argv);
    out
}

/// Runs `pull` up to `tries` times, each within `timeout`; the original's message when
/// every try failed.
async fn pull_with_retries<F, Fut>(
    image: &str,
    timeout: Duration,
    tries: u32,
    mut pull: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let tries = tries.max(1);
    for n in 1..=tries {
        match tokio::time::timeout(timeout, pull()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => tracing::warn!(image, attempt = n, error = %e, "pull failed"),
            Err(_) => tracing::warn!(image, attempt = n, "pull timed out"),
        }
    }
    Err(format!(
        "Could not pull {image} within {} seconds after {tries} retries.",
        timeout.as_secs()
    ))
}

async fn ensure_image(
    cli: &Cli,
    config: &SingularityConfig,
    image: &str,
) -> Result<PathBuf, String> {
    let file = image_file(&config.images_dir, image);
    let lock = {
        let mut pulls = cli.pulls.lock().await;
        pulls.entry(image.to_owned()).or_default().clone()
    };
    let _one_at_a_time = lock.lock().await;
    if tokio::fs::try_exists(&file).await.unwrap_or(false) {
        return Ok(file);
    }
    tokio::fs::create_dir_all(&config.images_dir)
        .await
        .map_err(|e| format!("create {}: {e}", config.images_dir.display()))?;
    let partial = file.with_extension(format!("partial-{}", std::process::id()));
    let uri = pull_uri(image);
    pull_with_retries(
        image,
        Duration::from_secs(config.pull_timeout_secs),
        config.pull_retries,
        || async {
            let out = tokio::process::Command::new(&cli.bin)
                .args(["pull", "--force"])
                .arg(&partial)
                .arg(&uri)
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
            }
        },
    )
    .await?;
    tokio::fs::rename(&partial, &file)
        .await
        .map_err(|e| format!("keep pulled image {}: {e}", file.display()))?;
    Ok(file)
}

impl Runtime for Cli {
    fn run<'a>(&'a self, task: &'a Task<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(run(self, task))
    }
}

async fn run(cli: &Cli, task: &Task<'_>) -> Outcome {
    let container = match Container::prepare(task).await {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    let file = match ensure_image(cli, &task.shared.config.singularity, container.image)
        .instrument(tracing::info_span!("ensure image", image = %container.image))
        .await
    {
        Ok(f) => f,
        Err(reason) => {
            super::engine_error("singularity", "pull");
            return Outcome::failed(reason);
        }
    };
    // --cleanenv keeps the host's environment out; `<PREFIX>ENV_X` reaches the task as X.
    let mut process_env: Vec<(String, String)> = (container.env.into_iter())
        .map(|(k, v)| (format!("{}ENV_{k}", cli.env_prefix), v))
        .collect();
    if let Ok(path) = std::env::var("PATH") {
        process_env.push(("PATH".into(), path));
    }
    if let Ok(home) = std::env::var("HOME") {
        process_env.push(("HOME".into(), home));
    }
    let argv = exec_argv(&cli.bin, &container.mounts, &file, container.argv);
    process::run(task, argv, process_env, None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn images_map_to_distinct_safe_files_and_uris() {
        let dir = Path::new("/cache");
        let a = image_file(dir, "docker://alpine:3");
        let b = image_file(dir, "docker://alpine_3");
        assert_ne!(a, b);
        let name = a.file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            name.starts_with("docker___alpine_3-") && name.ends_with(".sif"),
            "{name}"
        );
        assert!(
            !image_file(dir, "../../etc/passwd")
                .to_string_lossy()
                .contains("/../")
        );
        assert_eq!(pull_uri("alpine:3"), "docker://alpine:3");
        assert_eq!(pull_uri("library://alpine"), "library://alpine");
    }

    #[test]
    fn exec_argv_binds_folders_and_keeps_argv_whole() {
        let argv = exec_argv(
            Path::new("/usr/bin/apptainer"),
            &[(PathBuf::from("/l/u/"), "/logs/".into())],
            Path::new("/cache/x.sif"),
            vec![
                "sh".into(),
                "-c".into(),
                "echo $0".into(),
                "{\"a\": \"b c\"}".into(),
            ],
        );
        assert_eq!(
            argv,
            [
                "/usr/bin/apptainer",
                "exec",
                "--cleanenv",
                "--bind",
                "/l/u:/logs",
                "/cache/x.sif",
                "sh",
                "-c",
                "echo $0",
                "{\"a\": \"b c\"}"
            ]
        );
    }

    #[tokio::test]
    async fn pulls_retry_and_time_out() {
        let calls = AtomicU32::new(0);
        // Fails twice, then works.
        let ok = pull_with_retries("img", Duration::from_secs(1), 5, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < 2 { Err("flaky".into()) } else { Ok(()) } }
        })
        .await;
        assert_eq!(ok, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        // Every try hangs: the original's message after the given tries.
        let calls = AtomicU32::new(0);
        let err = pull_with_retries("img", Duration::from_millis(20), 3, || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), String>>()
        })
        .await;
        assert_eq!(
            err,
            Err("Could not pull img within 0 seconds after 3 retries.".into())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
