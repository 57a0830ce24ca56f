//! Host executables, as the original worker ran them: argv from the command (with `$VAR`
//! expanded against what the executor offers tasks of its environment, split without a shell) plus the arguments
//! JSON; a replaced environment; output to `<logs>/<uuid>/<uuid>-std{out,err}.txt`. The
//! process gets its own process group so that it and its children are killed together
//! (`process`, `groups`).

use super::{Outcome, PathFrom, Runtime, Task, process};
use futures::future::BoxFuture;
use saltant_core::command::{ArgumentPassing, argument_passing, expand_vars, split_command};
use std::path::PathBuf;

/// The host runtime: always available.
pub(super) struct Host;

impl Runtime for Host {
    fn run<'a>(&'a self, task: &'a Task<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(run(task))
    }
}

async fn run(task: &Task<'_>) -> Outcome {
    let env = match task.environment(PathFrom::Executor) {
        Ok(env) => env,
        Err(outcome) => return outcome,
    };
    let (argv, args_file) = match argv(task).await {
        Ok(argv) => argv,
        Err(outcome) => return outcome,
    };
    // Each instance runs in a folder of its own (made with its logs folder), removed
    // afterwards with its arguments file, in one trip to the blocking pool.
    let work = task.shared.config.work_dir.join(&task.uuid);
    let outcome = process::run(task, argv, env, Some(&work)).await;
    let cleaned = tokio::task::spawn_blocking(move || {
        if let Some(path) = args_file {
            let _ = std::fs::remove_file(path);
        }
        std::fs::remove_dir_all(&work).map_err(|e| (work, e))
    })
    .await;
    if let Ok(Err((work, e))) = cleaned {
        tracing::warn!(path = %work.display(), error = %e, "remove working folder");
    }
    outcome
}

/// The command, variables expanded and split, with the arguments: one JSON element, or
/// `<json_file_option> <file>` with the file written here (returned, to be removed).
async fn argv(task: &Task<'_>) -> Result<(Vec<String>, Option<PathBuf>), Outcome> {
    let spec = &task.dispatch.spec;
    // `$NAME` reads what tasks may see, never the executor's secrets.
    let command = expand_vars(&spec.command_to_run, |k| task.shared.task_env.get(k));
    let mut argv = split_command(&command).map_err(|e| Outcome::failed(e.to_string()))?;
    match argument_passing(&spec.arguments, spec.json_file_option.as_deref()) {
        ArgumentPassing::None => Ok((argv, None)),
        ArgumentPassing::Positional(json) => {
            argv.push(json);
            Ok((argv, None))
        }
        ArgumentPassing::File { option, contents } => {
            let path = (task.shared.config.temp_dir).join(format!("{}_args.json", task.uuid));
            // Readable by the task's user only.
            let run_as = task.shared.run_as;
            let written = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
                    let _ = std::fs::remove_file(&path);
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)?;
                    std::io::Write::write_all(&mut f, contents.as_bytes())?;
                    if let Some(r) = run_as {
                        std::os::unix::fs::fchown(&f, Some(r.uid), Some(r.gid))?;
                    }
                    f.set_permissions(std::fs::Permissions::from_mode(0o600))
                })
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            };
            if let Err(e) = written {
                return Err(Outcome::failed(format!(
                    "write arguments file {}: {e}",
                    path.display()
                )));
            }
            argv.push(option);
            argv.push(path.display().to_string());
            Ok((argv, Some(path)))
        }
    }
}
