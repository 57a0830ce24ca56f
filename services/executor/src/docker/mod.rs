//! Docker container tasks through the Engine API (bollard): the image pulled by policy, a
//! container created with an argv array (never a shell string), the listed environment,
//! the instance's logs and results folders bound at the type's paths, labels naming the
//! instance, attempt and executor, optional limits; output streamed live; the exit code
//! decides the state; the container is always removed. Images: `image`; containers whose
//! executor is gone: `orphans`.

mod image;
mod orphans;

pub(crate) use orphans::reap_orphans;

use crate::Shared;
use crate::host::task_environment;
use crate::output::Output;
use crate::run::Outcome;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::StreamExt;
use saltant_bus::{Dispatch, LogStream, trace};
use saltant_core::State;
use saltant_core::command::{ArgumentPassing, argument_passing, split_command};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Labels every saltant container carries.
pub(crate) const LABEL_INSTANCE: &str = "io.saltant.instance";
pub(crate) const LABEL_ATTEMPT: &str = "io.saltant.attempt";
pub(crate) const LABEL_EXECUTOR: &str = "io.saltant.executor";
pub(crate) const LABEL_PREFIX: &str = "io.saltant.prefix";

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

fn failed(reason: String) -> Outcome {
    Outcome {
        state: State::Failed,
        exit_code: None,
        reason: Some(reason),
    }
}

/// The container's argv: the command split shell-style (no variable expansion: the
/// container's environment is not the executor's) plus the arguments as one JSON element.
pub(crate) fn container_argv(
    command: &str,
    arguments: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<String>, String> {
    let mut argv = split_command(command).map_err(|e| e.to_string())?;
    if let ArgumentPassing::Positional(json) = argument_passing(arguments, None) {
        argv.push(json);
    }
    Ok(argv)
}

pub(crate) async fn run(shared: &Arc<Shared>, d: &Dispatch, cancel: &CancellationToken) -> Outcome {
    let Some(engine) = shared.docker.as_ref() else {
        return failed(format!(
            "executor {} has no Docker engine (see its log); it cannot run docker tasks",
            shared.id
        ));
    };
    let uuid = d.uuid.to_string();
    let Some(image) = d.spec.container_image.as_deref().filter(|i| !i.is_empty()) else {
        return failed("the task type has no container image".into());
    };
    let env_lookup = |k: &str| std::env::var(k).ok();
    let mut env = match task_environment(&d.spec.environment_variables, &uuid, |k| {
        // The container keeps its own PATH.
        if k == "PATH" { None } else { env_lookup(k) }
    }) {
        Ok(env) => env,
        Err(reason) => return failed(reason),
    };
    if let Some(tp) = trace::traceparent() {
        env.push(("TRACEPARENT".into(), tp));
    }
    let argv = match container_argv(&d.spec.command_to_run, &d.spec.arguments) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let logs = shared.config.logs_dir.join(&uuid);
    let results = shared.config.results_dir.join(&uuid);
    let mut binds = Vec::new();
    for (host, inside) in [
        (&logs, d.spec.logs_mount()),
        (&results, d.spec.results_mount()),
    ] {
        if let Err(e) = tokio::fs::create_dir_all(host).await {
            return failed(format!("create {}: {e}", host.display()));
        }
        if let Some(inside) = inside {
            binds.push(format!("{}:{}:rw", host.display(), inside));
        }
    }
    if let Err(reason) = image::ensure_image(engine, &shared.config.docker, image).await {
        return failed(reason);
    }

    let cfg = &shared.config.docker;
    let labels = HashMap::from([
        (LABEL_INSTANCE.to_owned(), uuid.clone()),
        (LABEL_ATTEMPT.to_owned(), d.attempt.to_string()),
        (LABEL_EXECUTOR.to_owned(), shared.id.clone()),
        (
            LABEL_PREFIX.to_owned(),
            shared.bus.names.prefix().to_owned(),
        ),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(argv),
        env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        host_config: Some(HostConfig {
            binds: Some(binds),
            nano_cpus: cfg.cpus.map(|c| (c * 1e9) as i64),
            memory: cfg.memory_bytes,
            pids_limit: cfg.pids_limit,
            network_mode: cfg.network.clone(),
            init: Some(cfg.init),
            ..Default::default()
        }),
        ..Default::default()
    };
    let create = |body| {
        engine.docker.create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
    };
    let created = match create(body.clone()).await {
        // Removed since we last saw it: look again (and pull, by policy), then retry once.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) if engine.known(image) => {
            engine.remember(image, false);
            match image::ensure_image(engine, &shared.config.docker, image).await {
                Ok(()) => create(body).await,
                Err(reason) => return failed(reason),
            }
        }
        other => other,
    };
    let id = match created {
        Ok(c) => c.id,
        Err(e) => return failed(format!("create container from {image}: {e}")),
    };
    let outcome = run_container(shared, engine, d, &id, &uuid, cancel).await;
    remove(engine, &id).await;
    outcome
}

async fn run_container(
    shared: &Arc<Shared>,
    engine: &Engine,
    d: &Dispatch,
    id: &str,
    uuid: &str,
    cancel: &CancellationToken,
) -> Outcome {
    let attach = AttachContainerOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .stream(true)
        .logs(true)
        .build();
    let mut attached = match engine.docker.attach_container(id, Some(attach)).await {
        Ok(a) => a,
        Err(e) => return failed(format!("attach to container: {e}")),
    };
    let output = Output::new(shared.clone(), d.uuid, d.attempt);
    let logs = shared.config.logs_dir.join(uuid);
    let mut out = output
        .sink(LogStream::Stdout, logs.join(format!("{uuid}-stdout.txt")))
        .await;
    let mut err = output
        .sink(LogStream::Stderr, logs.join(format!("{uuid}-stderr.txt")))
        .await;
    let pump = tokio::spawn(async move {
        while let Some(frame) = attached.output.next().await {
            match frame {
                Ok(LogOutput::StdErr { message }) => err.write(&message).await,
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    out.write(&message).await
                }
                Ok(LogOutput::StdIn { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "container output stream");
                    break;
                }
            }
        }
        out.close().await;
        err.close().await;
    });
    if let Err(e) = engine
        .docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
    {
        pump.abort();
        return failed(format!("start container: {e}"));
    }

    let mut wait = engine
        .docker
        .wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
    let grace = shared.config.kill_grace_secs.min(i32::MAX as u64) as i32;
    let stop = |why: Outcome| async move {
        let options = StopContainerOptionsBuilder::default().t(grace).build();
        if let Err(e) = engine.docker.stop_container(id, Some(options)).await {
            tracing::warn!(error = %e, "stop container");
        }
        why
    };
    let ended = tokio::select! {
        w = wait.next() => Ok(w),
        _ = cancel.cancelled() => Err(stop(Outcome {
            state: State::Terminated,
            exit_code: None,
            reason: Some("terminated by request".into()),
        }).await),
        _ = shared.kill_all.cancelled() => Err(stop(failed(format!(
            "killed: executor {} shut down",
            shared.id
        ))).await),
    };
    // Output ends when the container does.
    if tokio::time::timeout(Duration::from_secs(10), pump)
        .await
        .is_err()
    {
        tracing::warn!("container output did not end within 10 s of its exit");
    }
    let lost = output.finish().await;
    if lost > 0 {
        tracing::warn!(
            lost,
            "output chunks could not be stored on the bus (kept in the logs folder)"
        );
    }
    let code = match ended {
        Err(outcome) => return outcome,
        Ok(Some(Ok(r))) => r.status_code,
        Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => code,
        Ok(Some(Err(e))) => return failed(format!("wait for container: {e}")),
        Ok(None) => return failed("wait for container: no answer".into()),
    };
    if code == 0 {
        Outcome {
            state: State::Successful,
            exit_code: Some(0),
            reason: None,
        }
    } else {
        Outcome {
            state: State::Failed,
            exit_code: Some(code as i32),
            reason: Some(format!("container exited with code {code}")),
        }
    }
}

async fn remove(engine: &Engine, id: &str) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    if let Err(e) = engine.docker.remove_container(id, Some(options)).await {
        tracing::warn!(container = id, error = %e, "remove container");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argv_is_split_without_a_shell_and_arguments_are_one_element() {
        let args = json!({"word": "it's $(rm -rf /)", "n": 2});
        let argv =
            container_argv("/bin/echo 'a b' c", args.as_object().expect("object")).expect("argv");
        assert_eq!(
            argv,
            vec![
                "/bin/echo",
                "a b",
                "c",
                r#"{"word": "it's $(rm -rf /)", "n": 2}"#
            ]
        );
        let none = container_argv("true", &serde_json::Map::new()).expect("argv");
        assert_eq!(none, vec!["true"]);
        assert!(container_argv("echo 'unclosed", &serde_json::Map::new()).is_err());
    }
}
