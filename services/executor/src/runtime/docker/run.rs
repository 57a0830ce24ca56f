//! One Docker task's container: created from the prepared task (labels, mounts, limits),
//! attached before it starts (no output is missed), started, waited for or stopped, and
//! its exit code made the outcome. The caller removes it.

use super::{Engine, LABEL_ATTEMPT, LABEL_EXECUTOR, LABEL_INSTANCE, LABEL_PREFIX, image};
use crate::output::Output;
use crate::runtime::container::Container;
use crate::runtime::{Outcome, Task};
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{AttachContainerOptionsBuilder, StopContainerOptionsBuilder};
use futures::StreamExt;
use saltant_bus::LogStream;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Runs `task` in a container of its own, always removed afterwards.
pub(super) async fn run(engine: &Engine, task: &Task<'_>) -> Outcome {
    let container = match Container::prepare(task).await {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    let config = &task.shared.config.docker;
    if let Err(reason) = image::ensure_image(engine, config, container.image).await {
        engine_error("pull");
        return Outcome::failed(reason);
    }
    let id = match create(engine, task, container).await {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let outcome = run_container(engine, task, &id).await;
    engine.remove(&id).await;
    outcome
}

/// The container's definition: argv as `Cmd` (the image's entrypoint applies), the
/// environment, the mounts, the labels and the configured limits.
fn definition(task: &Task<'_>, container: Container<'_>) -> ContainerCreateBody {
    let shared = task.shared;
    let cfg = &shared.config.docker;
    let labels = HashMap::from([
        (LABEL_INSTANCE.to_owned(), task.uuid.clone()),
        (LABEL_ATTEMPT.to_owned(), task.dispatch.attempt.to_string()),
        (LABEL_EXECUTOR.to_owned(), shared.id.clone()),
        (
            LABEL_PREFIX.to_owned(),
            shared.bus.names.prefix().to_owned(),
        ),
    ]);
    let env = container.env.into_iter();
    let binds = container.mounts.into_iter();
    ContainerCreateBody {
        image: Some(container.image.to_owned()),
        cmd: Some(container.argv),
        env: Some(env.map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        host_config: Some(HostConfig {
            binds: Some(
                binds
                    .map(|(host, inside)| format!("{}:{}:rw", host.display(), inside))
                    .collect(),
            ),
            nano_cpus: cfg.cpus.map(|c| (c * 1e9) as i64),
            memory: cfg.memory_bytes,
            pids_limit: cfg.pids_limit,
            network_mode: cfg.network.clone(),
            init: Some(cfg.init),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates the container; returns its id.
#[tracing::instrument(name = "create container", skip_all)]
async fn create(
    engine: &Engine,
    task: &Task<'_>,
    container: Container<'_>,
) -> Result<String, Outcome> {
    let image = container.image;
    let body = definition(task, container);
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
            match image::ensure_image(engine, &task.shared.config.docker, image).await {
                Ok(()) => create(body).await,
                Err(reason) => return Err(Outcome::failed(reason)),
            }
        }
        other => other,
    };
    created.map(|c| c.id).map_err(|e| {
        engine_error("create");
        Outcome::failed(format!("create container from {image}: {e}"))
    })
}

/// Counts a failed Docker operation (`saltant_engine_errors_total`).
fn engine_error(operation: &'static str) {
    crate::runtime::engine_error("docker", operation);
}

async fn run_container(engine: &Engine, task: &Task<'_>, id: &str) -> Outcome {
    let (output, pump) = match attach(engine, task, id).await {
        Ok(attached) => attached,
        Err(outcome) => return outcome,
    };
    if let Err(e) = engine
        .docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .instrument(tracing::info_span!("start container"))
        .await
    {
        pump.abort();
        engine_error("start");
        return Outcome::failed(format!("start container: {e}"));
    }
    let mut wait = engine
        .docker
        .wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
    let ended = task
        .until_stopped(wait.next())
        .instrument(tracing::info_span!("wait for exit"))
        .await;
    if ended.is_err() {
        let grace = task.shared.config.kill_grace_secs.min(i32::MAX as u64) as i32;
        let options = StopContainerOptionsBuilder::default().t(grace).build();
        if let Err(e) = engine.docker.stop_container(id, Some(options)).await {
            tracing::warn!(error = %e, "stop container");
        }
    }
    // Output ends when the container does; a stream that does not is cut, so no chunk
    // goes out after the output is finished.
    let abort = pump.abort_handle();
    if tokio::time::timeout(Duration::from_secs(10), pump)
        .await
        .is_err()
    {
        abort.abort();
        tracing::warn!("container output did not end within 10 s of its exit; cut");
    }
    output.finish().await;
    let code = match ended {
        Err(outcome) => return outcome,
        Ok(Some(Ok(r))) => r.status_code,
        Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => code,
        Ok(Some(Err(e))) => {
            engine_error("wait");
            return Outcome::failed(format!("wait for container: {e}"));
        }
        Ok(None) => return Outcome::failed("wait for container: no answer"),
    };
    if code == 0 {
        Outcome::successful()
    } else {
        Outcome::exited(code as i32, format!("container exited with code {code}"))
    }
}

/// Attaches to the container's output and streams it to the capture files and the bus
/// until the container ends.
async fn attach(
    engine: &Engine,
    task: &Task<'_>,
    id: &str,
) -> Result<(Arc<Output>, JoinHandle<()>), Outcome> {
    let attach = AttachContainerOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .stream(true)
        .logs(true)
        .build();
    let mut attached = match engine.docker.attach_container(id, Some(attach)).await {
        Ok(a) => a,
        Err(e) => {
            engine_error("attach");
            return Err(Outcome::failed(format!("attach to container: {e}")));
        }
    };
    let (d, uuid) = (task.dispatch, &task.uuid);
    let output = Output::new(task.shared.clone(), d);
    let logs = task.logs_dir();
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
    Ok((output, pump))
}
