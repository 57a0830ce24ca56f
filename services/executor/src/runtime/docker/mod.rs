//! Docker container tasks through the Engine API (bollard): the image pulled by policy
//! (`image`), a container created with an argv array (never a shell string), the listed
//! environment, the instance's logs and results folders bound at the type's paths, labels
//! naming the instance, attempt and executor, optional limits; output streamed live; the
//! exit code decides the state; the container is always removed (`run`). Containers whose
//! executor is gone: `orphans`.

mod image;
mod orphans;
mod run;

pub(crate) use orphans::reap_orphans;

use super::{Outcome, Runtime, Task};
use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::time::Duration;

/// Labels every saltant container carries.
const LABEL_INSTANCE: &str = "io.saltant.instance";
const LABEL_ATTEMPT: &str = "io.saltant.attempt";
const LABEL_EXECUTOR: &str = "io.saltant.executor";
const LABEL_PREFIX: &str = "io.saltant.prefix";

/// When to pull a task's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Pull only if the engine does not have the image (default).
    IfNotPresent,
    /// Pull before every run (the original's behaviour).
    Always,
    /// Never pull: a missing image fails the instance.
    Never,
}

/// `[executor.docker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Offer Docker when an engine answers.
    pub enabled: bool,
    pub pull: PullPolicy,
    /// Seconds a pull may take before the instance fails.
    pub pull_timeout_secs: u64,
    /// CPU limit per container (e.g. 1.5), none by default.
    pub cpus: Option<f64>,
    /// Memory limit per container in bytes.
    pub memory_bytes: Option<i64>,
    /// Process limit per container.
    pub pids_limit: Option<i64>,
    /// Network mode (`bridge`, `host`, `none`, a network name); the engine's default if unset.
    pub network: Option<String>,
    /// Seconds between sweeps for containers whose executor is gone.
    pub orphan_sweep_secs: u64,
    /// Run the engine's init (tini) as PID 1: signals reach the task (a shell or `sleep` as
    /// PID 1 ignores SIGTERM) and zombies are reaped.
    pub init: bool,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            enabled: true,
            pull: PullPolicy::IfNotPresent,
            pull_timeout_secs: 600,
            cpus: None,
            memory_bytes: None,
            pids_limit: None,
            network: None,
            orphan_sweep_secs: 20,
            init: true,
        }
    }
}

/// A connected engine.
pub(crate) struct Engine {
    pub docker: Docker,
    pub version: String,
    /// Images seen present (pull policy `if-not-present`): not inspected again. An image
    /// removed behind our back is forgotten when a create reports it missing.
    present: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Connects to the local engine (`DOCKER_HOST` or the default socket) and agrees on an
/// API version; `None` (with the reason logged) when no engine answers.
pub(crate) async fn connect(config: &DockerConfig) -> Option<Engine> {
    if !config.enabled {
        return None;
    }
    let attempt = async {
        let docker = Docker::connect_with_local_defaults()?
            .negotiate_version()
            .await?;
        let version = docker.version().await?;
        Ok::<_, bollard::errors::Error>(Engine {
            present: std::sync::Mutex::default(),
            docker,
            version: version.version.unwrap_or_default(),
        })
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(engine)) => {
            tracing::info!(version = %engine.version, "docker engine found");
            Some(engine)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "no docker engine: docker tasks will fail here");
            None
        }
        Err(_) => {
            tracing::warn!("docker engine did not answer in 5 s: docker tasks will fail here");
            None
        }
    }
}

impl Engine {
    /// Removes container `id` (and its anonymous volumes), running or not.
    pub(super) async fn remove(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        if let Err(e) = self.docker.remove_container(id, Some(options)).await {
            tracing::warn!(container = id, error = %e, "remove container");
        }
    }
}

impl Runtime for Engine {
    fn run<'a>(&'a self, task: &'a Task<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(run::run(self, task))
    }
}
