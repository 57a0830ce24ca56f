//! The runtimes an attempt runs in, each behind the one [`Runtime`] trait: host processes
//! (`host`), Docker containers (`docker`), Singularity/Apptainer containers
//! (`singularity`). What they share is written once: here, the [`Task`] a runtime is given
//! (with the task environment: the listed variables, `JOB_UUID`, `PATH`, `TRACEPARENT`)
//! and the [`Outcome`] it returns; in `process` and `groups`, a process in a group of its
//! own with its output (host and Singularity tasks); in `container`, image, environment,
//! argv and mounts (Docker and Singularity). Runtimes never reach into each other, and
//! know nothing of claims, events or acks (`run` does).

mod container;
pub(crate) mod docker;
mod groups;
mod host;
mod process;
pub(crate) mod singularity;

pub(crate) use groups::reap_orphan_groups;

use crate::{Config, Shared};
use futures::future::BoxFuture;
use saltant_bus::{Dispatch, trace};
use saltant_core::{State, TaskKind};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A way of running attempts: one per kind of task (`Runtimes` says which this executor
/// has).
pub(crate) trait Runtime: Send + Sync {
    /// Runs `task` to its end (or until it is terminated or the executor shuts down) and
    /// says how it ended: every problem is an outcome, never an error.
    fn run<'a>(&'a self, task: &'a Task<'a>) -> BoxFuture<'a, Outcome>;
}

/// How an attempt ended.
#[derive(Debug, PartialEq)]
pub(crate) struct Outcome {
    pub state: State,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

impl Outcome {
    /// Failed before or without an exit code.
    pub fn failed(reason: impl Into<String>) -> Outcome {
        Outcome {
            state: State::Failed,
            exit_code: None,
            reason: Some(reason.into()),
        }
    }

    /// The task exited with status 0.
    pub fn successful() -> Outcome {
        Outcome {
            state: State::Successful,
            exit_code: Some(0),
            reason: Some("exited with code 0".into()),
        }
    }

    /// The task exited with a non-zero `code`.
    pub fn exited(code: i32, reason: String) -> Outcome {
        Outcome {
            state: State::Failed,
            exit_code: Some(code),
            reason: Some(reason),
        }
    }
}

/// Where a task's `PATH` comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathFrom {
    /// The executor's (host processes): added unless the type lists it.
    Executor,
    /// The image's (containers): the executor's is never passed, even when listed.
    Image,
}

/// One attempt, as a runtime is given it.
pub(crate) struct Task<'a> {
    pub shared: &'a Arc<Shared>,
    pub dispatch: &'a Dispatch,
    /// The instance's uuid as text: the name of its folders and files.
    pub uuid: String,
    /// Cancelled when the attempt is to end: termination requested or time limit passed.
    pub cancel: &'a CancellationToken,
}

impl Task<'_> {
    /// The environment the task gets: the variables its type lists, from what the executor
    /// offers tasks of its environment (`task_env`: no secrets), then `JOB_UUID`, `PATH` (see [`PathFrom`]) and `TRACEPARENT` (the
    /// attempt's trace, for tasks that trace). A listed variable the executor lacks fails
    /// the attempt with the original's message.
    pub fn environment(&self, path: PathFrom) -> Result<Vec<(String, String)>, Outcome> {
        let lookup = |name: &str| match path {
            PathFrom::Image if name == "PATH" => None,
            _ => self.shared.task_env.get(name),
        };
        task_environment(
            &self.dispatch.spec.environment_variables,
            &self.uuid,
            trace::traceparent(),
            lookup,
        )
        .map_err(Outcome::failed)
    }

    /// `<logs_dir>/<uuid>`: the instance's output files (and a container's logs mount).
    pub fn logs_dir(&self) -> PathBuf {
        self.shared.config.logs_dir.join(&self.uuid)
    }

    /// `<results_dir>/<uuid>`: a container's results mount.
    pub fn results_dir(&self) -> PathBuf {
        self.shared.config.results_dir.join(&self.uuid)
    }

    /// Waits for `ended`, unless the attempt is cancelled (`terminated`) or the executor
    /// shuts down (`failed`) first: then the outcome to report, once the task is stopped.
    pub async fn until_stopped<T>(&self, ended: impl Future<Output = T>) -> Result<T, Outcome> {
        tokio::select! {
            value = ended => Ok(value),
            _ = self.cancel.cancelled() => Err(Outcome {
                state: State::Terminated,
                exit_code: None,
                reason: Some("terminated by request".into()),
            }),
            _ = self.shared.kill_all.cancelled() => Err(Outcome::failed(format!(
                "killed: executor {} shut down",
                self.shared.id
            ))),
        }
    }
}

/// The variables `names` (looked up with `lookup`), `JOB_UUID`, `PATH` if `lookup` has it
/// and `names` does not list it, and `TRACEPARENT` if there is one. A listed variable that
/// `lookup` lacks is an error naming it.
fn task_environment(
    names: &[String],
    uuid: &str,
    traceparent: Option<String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let mut env = Vec::with_capacity(names.len() + 3);
    for name in names {
        match lookup(name) {
            Some(v) => env.push((name.clone(), v)),
            None => {
                return Err(format!(
                    "Environment variable {name} not present in the worker's environment!"
                ));
            }
        }
    }
    env.push(("JOB_UUID".into(), uuid.into()));
    if !names.iter().any(|n| n == "PATH")
        && let Some(path) = lookup("PATH")
    {
        env.push(("PATH".into(), path));
    }
    if let Some(tp) = traceparent {
        env.push(("TRACEPARENT".into(), tp));
    }
    Ok(env)
}

/// The runtimes of this executor: host processes always, the engines found at start-up.
pub(crate) struct Runtimes {
    host: host::Host,
    /// The local Docker engine, if one answered at start-up.
    pub docker: Option<docker::Engine>,
    /// The Singularity/Apptainer CLI, if one is installed.
    singularity: Option<singularity::Cli>,
}

impl Runtimes {
    /// Looks for the engines `config` enables.
    pub async fn detect(config: &Config) -> Runtimes {
        Runtimes {
            host: host::Host,
            docker: docker::connect(&config.docker).await,
            singularity: singularity::detect(&config.singularity).await,
        }
    }

    /// What this executor can run (`executable`, `docker`, `singularity`) and the engines'
    /// versions, for heartbeats.
    pub fn capabilities(&self) -> (Vec<String>, BTreeMap<String, String>) {
        let mut capabilities = vec![TaskKind::Executable.as_str().to_owned()];
        let mut engines = BTreeMap::new();
        for (kind, version) in [
            (TaskKind::Docker, self.docker.as_ref().map(|e| &e.version)),
            (
                TaskKind::Singularity,
                self.singularity.as_ref().map(|c| &c.version),
            ),
        ] {
            if let Some(version) = version {
                capabilities.push(kind.as_str().to_owned());
                engines.insert(kind.as_str().to_owned(), version.clone());
            }
        }
        (capabilities, engines)
    }

    /// The runtime of `kind`; a kind this executor cannot run fails the attempt at once.
    fn get(&self, kind: TaskKind, executor: &str) -> Result<&dyn Runtime, Outcome> {
        match kind {
            TaskKind::Executable => Ok(&self.host),
            TaskKind::Docker => self.docker.as_ref().map(|e| e as &dyn Runtime).ok_or_else(|| {
                Outcome::failed(format!(
                    "executor {executor} has no Docker engine (see its log); it cannot run docker tasks"
                ))
            }),
            TaskKind::Singularity => {
                self.singularity.as_ref().map(|c| c as &dyn Runtime).ok_or_else(|| {
                    Outcome::failed(format!(
                        "executor {executor} cannot run singularity tasks (neither apptainer nor singularity is on its PATH)"
                    ))
                })
            }
        }
    }
}

/// Counts a failed operation of a runtime's engine (`saltant_engine_errors_total`).
pub(crate) fn engine_error(engine: &'static str, operation: &'static str) {
    saltant_telemetry::metrics::metrics()
        .engine_errors
        .get_or_create(&saltant_telemetry::metrics::EngineLabels { engine, operation })
        .inc();
}

/// Runs the attempt `d` in the runtime of its kind until it ends or `cancel` fires.
pub(crate) async fn run(shared: &Arc<Shared>, d: &Dispatch, cancel: &CancellationToken) -> Outcome {
    let task = Task {
        shared,
        dispatch: d,
        uuid: d.uuid.to_string(),
        cancel,
    };
    match shared.runtimes.get(d.spec.kind, &shared.id) {
        Ok(runtime) => runtime.run(&task).await,
        Err(outcome) => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_is_replaced_with_listed_variables() {
        let lookup = |k: &str| match k {
            "HOME" => Some("/root".to_owned()),
            "PATH" => Some("/bin".to_owned()),
            _ => None,
        };
        let env = task_environment(&["HOME".into()], "u-1", None, lookup).expect("present");
        assert_eq!(
            env,
            vec![
                ("HOME".into(), "/root".into()),
                ("JOB_UUID".into(), "u-1".into()),
                ("PATH".into(), "/bin".into())
            ]
        );
        let traced =
            task_environment(&[], "u-1", Some("00-ab-cd-01".into()), |_| None).expect("empty");
        assert_eq!(
            traced,
            vec![
                ("JOB_UUID".into(), "u-1".into()),
                ("TRACEPARENT".into(), "00-ab-cd-01".into())
            ]
        );
        let err = task_environment(&["NOPE".into()], "u-1", None, lookup).expect_err("missing");
        assert_eq!(
            err,
            "Environment variable NOPE not present in the worker's environment!"
        );
    }
}
