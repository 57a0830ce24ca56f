//! Host executables, as the original worker ran them: argv from the command (with `$VAR`
//! expanded against the executor's environment, split without a shell) plus the arguments
//! JSON; a replaced environment; output to `<logs>/<uuid>/<uuid>-std{out,err}.txt`. The
//! process gets its own process group so that it and its children are killed together.

use crate::Shared;
use crate::output::Output;
use crate::run::Outcome;
use saltant_bus::{Dispatch, LogStream, trace};
use saltant_core::State;
use saltant_core::command::{ArgumentPassing, argument_passing, expand_vars, split_command};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn failed(reason: String) -> Outcome {
    Outcome {
        state: State::Failed,
        exit_code: None,
        reason: Some(reason),
    }
}

/// The environment a task gets: the listed variables from the executor's environment,
/// `JOB_UUID`, `PATH`, and `TRACEPARENT` for tasks that trace. A listed variable that the
/// executor lacks is an error naming it.
pub(crate) fn task_environment(
    names: &[String],
    uuid: &str,
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
    Ok(env)
}

pub(crate) async fn run(shared: &Arc<Shared>, d: &Dispatch, cancel: &CancellationToken) -> Outcome {
    let uuid = d.uuid.to_string();
    let env_lookup = |k: &str| std::env::var(k).ok();
    let mut env = match task_environment(&d.spec.environment_variables, &uuid, env_lookup) {
        Ok(env) => env,
        Err(reason) => return failed(reason),
    };
    if let Some(tp) = trace::traceparent() {
        env.push(("TRACEPARENT".into(), tp));
    }
    let command = expand_vars(&d.spec.command_to_run, env_lookup);
    let mut argv = match split_command(&command) {
        Ok(argv) => argv,
        Err(e) => return failed(e.to_string()),
    };
    let mut args_file = None;
    match argument_passing(&d.spec.arguments, d.spec.json_file_option.as_deref()) {
        ArgumentPassing::None => {}
        ArgumentPassing::Positional(json) => argv.push(json),
        ArgumentPassing::File { option, contents } => {
            let path = shared.config.temp_dir.join(format!("{uuid}_args.json"));
            if let Err(e) = tokio::fs::write(&path, contents).await {
                return failed(format!("write arguments file {}: {e}", path.display()));
            }
            argv.push(option);
            argv.push(path.display().to_string());
            args_file = Some(path);
        }
    }
    // Each instance runs in a folder of its own (made with its logs folder), removed
    // afterwards with its arguments file, in one trip to the blocking pool.
    let work = shared.config.work_dir.join(&uuid);
    let outcome = spawn_and_wait(shared, d, &uuid, argv, env, Some(&work), cancel).await;
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

/// The logs folder, both capture files and the working folder (if any), made in one trip
/// to the blocking pool: under load each trip is a thread wake-up on a busy machine. A
/// capture file that cannot be made is logged and left out (the output still goes to the
/// bus); the folders are required.
async fn prepare_files(
    logs: PathBuf,
    uuid: &str,
    cwd: Option<&std::path::Path>,
) -> Result<[Option<tokio::fs::File>; 2], String> {
    let names = [
        logs.join(format!("{uuid}-stdout.txt")),
        logs.join(format!("{uuid}-stderr.txt")),
    ];
    let cwd = cwd.map(std::path::Path::to_path_buf);
    let made = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&logs)
            .map_err(|e| format!("create logs folder {}: {e}", logs.display()))?;
        if let Some(dir) = &cwd {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("create working folder {}: {e}", dir.display()))?;
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

pub(crate) async fn spawn_and_wait(
    shared: &Arc<Shared>,
    d: &Dispatch,
    uuid: &str,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<&std::path::Path>,
    cancel: &CancellationToken,
) -> Outcome {
    let [out_file, err_file] =
        match prepare_files(shared.config.logs_dir.join(uuid), uuid, cwd).await {
            Ok(files) => files,
            Err(reason) => return failed(reason),
        };
    // The program is looked up in the task's PATH here, so that the standard library can
    // start it with posix_spawn (vfork-like) instead of fork: a fork copies the page
    // tables of this multi-threaded process and costs several times more.
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let Some(program) = resolve_program(&argv[0], path.as_deref()) else {
        return failed(format!("start {:?}: command not found in PATH", argv[0]));
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
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("start {:?}: {e}", argv[0])),
    };
    let pid = child.id();
    // Recorded so that, should this executor die without cleaning up (SIGKILL), its next
    // start on this machine kills the group.
    // (A few bytes in a local folder: written in place rather than on the blocking pool.)
    let group_file = shared.groups_dir.join(uuid);
    if let Some(pid) = pid {
        let started = process_start_time(pid).unwrap_or_default();
        if let Err(e) = std::fs::write(&group_file, format!("{pid} {started}")) {
            tracing::warn!(error = %e, "record process group");
        }
    }
    let output = Output::new(shared.clone(), d.uuid, d.attempt);
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

    let killed = |state, reason| Outcome {
        state,
        exit_code: None,
        reason: Some(reason),
    };
    let stopped = tokio::select! {
        s = child.wait() => Ok(s),
        _ = cancel.cancelled() => Err(killed(State::Terminated, "terminated by request".into())),
        _ = shared.kill_all.cancelled() => Err(killed(
            State::Failed,
            format!("killed: executor {} shut down", shared.id),
        )),
    };
    let status = match stopped {
        Ok(s) => s,
        Err(outcome) => {
            stop_group(&mut child, pid, shared.config.kill_grace_secs).await;
            let _ = std::fs::remove_file(&group_file);
            for p in pumps {
                let _ = p.await;
            }
            output.finish().await;
            return outcome;
        }
    };
    // Whatever the leader left behind in its group goes with it.
    if let Some(pid) = pid {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = std::fs::remove_file(&group_file);
    for p in pumps {
        let _ = p.await;
    }
    let lost = output.finish().await;
    if lost > 0 {
        tracing::warn!(
            lost,
            "output chunks could not be stored on the bus (kept in the logs folder)"
        );
    }
    match status {
        Ok(s) if s.success() => Outcome {
            state: State::Successful,
            exit_code: Some(0),
            reason: None,
        },
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            match (s.code(), s.signal()) {
                (Some(code), _) => Outcome {
                    state: State::Failed,
                    exit_code: Some(code),
                    reason: Some(format!("exited with code {code}")),
                },
                (None, Some(sig)) => Outcome {
                    state: State::Failed,
                    exit_code: Some(128 + sig),
                    reason: Some(format!("killed by signal {sig}")),
                },
                _ => failed("exited without a status".into()),
            }
        }
        Err(e) => failed(format!("wait for process: {e}")),
    }
}

/// `name` as `execvp` would find it in `path` (a name with a `/` is taken as it is).
pub(crate) fn resolve_program(name: &str, path: Option<&str>) -> Option<std::path::PathBuf> {
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

/// A process's start time (clock ticks since boot, /proc/<pid>/stat field 22).
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Folder (under the temp dir) of running instances' process group ids: one subfolder
/// per executor life, `<pid>-<start time>` of the executor process.
const GROUPS: &str = "groups";

/// Whether `pid` is the process that started at `started` (a pid reused later is not).
fn is_alive(pid: u32, started: &str) -> bool {
    process_start_time(pid).is_some_and(|s| s.to_string() == started)
}

/// Kills the process groups that executors which died on this machine without cleaning up
/// (SIGKILL) left running, and forgets them; executors still alive (several may share the
/// temp dir) keep theirs. Returns this life's folder for its records. Called at start-up,
/// before any work is taken.
pub(crate) fn reap_orphan_groups(temp_dir: &std::path::Path) -> std::path::PathBuf {
    let root = temp_dir.join(GROUPS);
    let me = std::process::id();
    let mine = root.join(format!(
        "{me}-{}",
        process_start_time(me).unwrap_or_default()
    ));
    // Made once here, at start-up, rather than for every instance.
    if let Err(e) = std::fs::create_dir_all(&mine) {
        tracing::warn!(path = %mine.display(), error = %e, "create the process-group folder");
    }
    let Ok(entries) = std::fs::read_dir(&root) else {
        return mine;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == mine {
            continue;
        }
        if !path.is_dir() {
            // A record of an older version (one flat folder): its executor is gone.
            kill_recorded_group(&path);
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let owner_alive = name
            .split_once('-')
            .and_then(|(pid, started)| Some((pid.parse::<u32>().ok()?, started.to_owned())))
            .is_some_and(|(pid, started)| is_alive(pid, &started));
        if owner_alive {
            continue;
        }
        if let Ok(records) = std::fs::read_dir(&path) {
            for record in records.flatten() {
                kill_recorded_group(&record.path());
            }
        }
        let _ = std::fs::remove_dir(&path);
    }
    mine
}

/// Kills the group a record names if its leader is still the process recorded, then
/// removes the record.
fn kill_recorded_group(record: &std::path::Path) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Ok(text) = std::fs::read_to_string(record)
        && let Some((pgid, started)) = text.trim().split_once(' ')
        && let Ok(pgid) = pgid.parse::<u32>()
        && pgid > 1
        && is_alive(pgid, started)
        && killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL).is_ok()
    {
        let instance = record.file_name().unwrap_or_default().to_string_lossy();
        tracing::warn!(%instance, pgid, "killed a process group left by a previous run");
    }
    let _ = std::fs::remove_file(record);
}

/// SIGTERM to the whole process group; when the leader has exited, or after `grace_secs`,
/// SIGKILL to whatever is left of the group (children that ignored SIGTERM or were
/// orphaned by the leader's exit); then the leader is reaped.
pub(crate) async fn stop_group(
    child: &mut tokio::process::Child,
    pid: Option<u32>,
    grace_secs: u64,
) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Some(pid) = pid else {
        let _ = child.kill().await;
        return;
    };
    let pgid = Pid::from_raw(pid as i32);
    let _ = killpg(pgid, Signal::SIGTERM);
    let _ = tokio::time::timeout(Duration::from_secs(grace_secs), child.wait()).await;
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn environment_is_replaced_with_listed_variables() {
        let lookup = |k: &str| match k {
            "HOME" => Some("/root".to_owned()),
            "PATH" => Some("/bin".to_owned()),
            _ => None,
        };
        let env = task_environment(&["HOME".into()], "u-1", lookup).expect("present");
        assert_eq!(
            env,
            vec![
                ("HOME".into(), "/root".into()),
                ("JOB_UUID".into(), "u-1".into()),
                ("PATH".into(), "/bin".into())
            ]
        );
        let err = task_environment(&["NOPE".into()], "u-1", lookup).expect_err("missing");
        assert_eq!(
            err,
            "Environment variable NOPE not present in the worker's environment!"
        );
    }
}
