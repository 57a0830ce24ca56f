//! Tasks that run as processes of this machine (host executables, and the Singularity CLI):
//! the capture files, the process started in a group of its own with a replaced
//! environment, its output streamed, and its exit status, termination or the executor's
//! shutdown made an outcome.

use super::groups::Group;
use super::{Outcome, Task};
use crate::output::Output;
use crate::run_as::RunAs;
use saltant_bus::LogStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tracing::Instrument;

/// Runs `argv` with exactly `env`, in `cwd` (made here) if given, until it exits or the
/// attempt is stopped; its output goes to the capture files and the bus.
pub(super) async fn run(
    task: &Task<'_>,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<&Path>,
) -> Outcome {
    let run_as = task.shared.run_as;
    let [out_file, err_file] = match prepare_files(task.logs_dir(), &task.uuid, cwd, run_as).await {
        Ok(files) => files,
        Err(reason) => return Outcome::failed(reason),
    };
    let mut child =
        match tracing::info_span!("start process").in_scope(|| spawn(&argv, env, cwd, run_as)) {
            Ok(child) => child,
            Err(outcome) => return outcome,
        };
    let group = Group::record(&task.shared.groups_dir, &task.uuid, child.id());
    let output = Output::new(task.shared.clone(), task.dispatch);
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(
            output.sink_to(LogStream::Stdout, out_file).pump(out),
        ));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(
            output.sink_to(LogStream::Stderr, err_file).pump(err),
        ));
    }
    let ended = task
        .until_stopped(child.wait())
        .instrument(tracing::info_span!("wait for exit"))
        .await;
    match ended {
        Ok(_) => group.kill(),
        Err(_) => {
            group
                .stop(&mut child, task.shared.config.kill_grace_secs)
                .await
        }
    }
    for p in pumps {
        let _ = p.await;
    }
    output.finish().await;
    match ended {
        Ok(Ok(status)) => exit_outcome(status),
        Ok(Err(e)) => Outcome::failed(format!("wait for process: {e}")),
        Err(stopped) => stopped,
    }
}

/// The logs folder, both capture files and the working folder (if any), made in one trip
/// to the blocking pool: under load each trip is a thread wake-up on a busy machine. A
/// capture file that cannot be made is logged and left out (the output still goes to the
/// bus); the folders are required. The working folder belongs to the user the task runs as.
async fn prepare_files(
    logs: PathBuf,
    uuid: &str,
    cwd: Option<&Path>,
    run_as: Option<RunAs>,
) -> Result<[Option<tokio::fs::File>; 2], String> {
    let names = [
        logs.join(format!("{uuid}-stdout.txt")),
        logs.join(format!("{uuid}-stderr.txt")),
    ];
    let cwd = cwd.map(Path::to_path_buf);
    let made = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&logs)
            .map_err(|e| format!("create logs folder {}: {e}", logs.display()))?;
        if let Some(dir) = &cwd {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("create working folder {}: {e}", dir.display()))?;
            if let Some(r) = run_as {
                // Never through a link someone planted: the folder itself, or nothing.
                let real = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_dir());
                if !real {
                    return Err(format!("working folder {} is not a folder", dir.display()));
                }
                std::os::unix::fs::lchown(dir, Some(r.uid), Some(r.gid))
                    .map_err(|e| format!("hand the working folder to the task's user: {e}"))?;
            }
        }
        Ok::<_, String>(names.map(|n| match std::fs::File::create(&n) {
            Ok(f) => Some(tokio::fs::File::from_std(f)),
            Err(e) => {
                tracing::warn!(error = %e, path = %n.display(), "create output file");
                None
            }
        }))
    })
    .await
    .map_err(|e| format!("prepare output files: {e}"))??;
    Ok(made)
}

/// Starts `argv` in a process group of its own, as `run_as` if given, output piped,
/// killed if dropped.
fn spawn(
    argv: &[String],
    env: Vec<(String, String)>,
    cwd: Option<&Path>,
    run_as: Option<RunAs>,
) -> Result<tokio::process::Child, Outcome> {
    // The program is looked up in the task's PATH here, so that the standard library can
    // start it with posix_spawn (vfork-like) instead of fork: a fork copies the page
    // tables of this multi-threaded process and costs several times more.
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let Some(program) = resolve_program(&argv[0], path.as_deref()) else {
        return Err(Outcome::failed(format!(
            "start {:?}: command not found in PATH",
            argv[0]
        )));
    };
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg0(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(r) = run_as {
        // The standard library also drops the supplementary groups when it sets the user.
        cmd.uid(r.uid).gid(r.gid);
    }
    cmd.spawn()
        .map_err(|e| Outcome::failed(format!("start {:?}: {e}", argv[0])))
}

/// `successful` for status 0; otherwise `failed` with the code (128 + the signal for a
/// process killed by one).
fn exit_outcome(status: std::process::ExitStatus) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return Outcome::successful();
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => Outcome::exited(code, format!("exited with code {code}")),
        (None, Some(sig)) => Outcome::exited(128 + sig, format!("killed by signal {sig}")),
        _ => Outcome::failed("exited without a status"),
    }
}

/// `name` as `execvp` would find it in `path` (a name with a `/` is taken as it is).
fn resolve_program(name: &str, path: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return Some(name.into());
    }
    if name.is_empty() {
        return None;
    }
    std::env::split_paths(path.unwrap_or("/usr/local/bin:/usr/bin:/bin"))
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use saltant_core::State;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn programs_are_found_in_the_tasks_path() {
        assert_eq!(resolve_program("./x", None), Some("./x".into()));
        assert_eq!(resolve_program("/bin/sh", Some("")), Some("/bin/sh".into()));
        let sh = resolve_program("sh", Some("/nonexistent:/bin:/usr/bin")).expect("sh");
        assert!(sh.ends_with("sh") && sh.is_absolute(), "{}", sh.display());
        assert_eq!(resolve_program("no-such-program-here", Some("/bin")), None);
        assert_eq!(resolve_program("", Some("/bin")), None);
    }

    #[test]
    fn exit_statuses_become_outcomes() {
        let status = std::process::ExitStatus::from_raw;
        assert_eq!(exit_outcome(status(0)), Outcome::successful());
        let code = exit_outcome(status(3 << 8));
        assert_eq!(
            (code.state, code.exit_code, code.reason.as_deref()),
            (State::Failed, Some(3), Some("exited with code 3"))
        );
        let signal = exit_outcome(status(9));
        assert_eq!(
            (signal.state, signal.exit_code, signal.reason.as_deref()),
            (State::Failed, Some(137), Some("killed by signal 9"))
        );
    }
}
