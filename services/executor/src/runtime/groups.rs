//! Process groups of host and Singularity tasks: each task leads a group of its own, so it
//! and its children are signalled together. A running group is recorded under the temp
//! dir (one folder per executor life); an executor killed without cleaning up (SIGKILL)
//! kills the groups it left when it starts again on that machine.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Folder (under the temp dir) of running instances' process group ids: one subfolder
/// per executor life, `<pid>-<start time>` of the executor process.
const GROUPS: &str = "groups";

/// A process's start time (clock ticks since boot, /proc/<pid>/stat field 22).
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` is the process that started at `started` (a pid reused later is not).
fn is_alive(pid: u32, started: &str) -> bool {
    process_start_time(pid).is_some_and(|s| s.to_string() == started)
}

/// Kills the process groups that executors which died on this machine without cleaning up
/// (SIGKILL) left running, and forgets them; executors still alive (several may share the
/// temp dir) keep theirs. Returns this life's folder for its records. Called at start-up,
/// before any work is taken.
pub(crate) fn reap_orphan_groups(temp_dir: &Path) -> PathBuf {
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
fn kill_recorded_group(record: &Path) {
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

/// The process group a task leads, recorded in this life's folder while it runs.
pub(super) struct Group {
    /// The leader's pid (the group's id); `None` if the child had exited already.
    pid: Option<u32>,
    record: PathBuf,
}

impl Group {
    /// Records the group of `pid` as `<groups_dir>/<uuid>`: `<pid> <start time>`.
    pub fn record(groups_dir: &Path, uuid: &str, pid: Option<u32>) -> Group {
        let record = groups_dir.join(uuid);
        // (A few bytes in a local folder: written in place rather than on the blocking pool.)
        if let Some(pid) = pid {
            let started = process_start_time(pid).unwrap_or_default();
            if let Err(e) = std::fs::write(&record, format!("{pid} {started}")) {
                tracing::warn!(error = %e, "record process group");
            }
        }
        Group { pid, record }
    }

    /// After the leader exited: whatever it left behind in its group goes with it.
    pub fn kill(self) {
        if let Some(pid) = self.pid {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&self.record);
    }

    /// SIGTERM to the whole group; when the leader has exited, or after `grace_secs`,
    /// SIGKILL to whatever is left of the group (children that ignored SIGTERM or were
    /// orphaned by the leader's exit); then the leader is reaped.
    pub async fn stop(self, child: &mut tokio::process::Child, grace_secs: u64) {
        match self.pid {
            None => {
                let _ = child.kill().await;
            }
            Some(pid) => {
                let pgid = Pid::from_raw(pid as i32);
                let _ = killpg(pgid, Signal::SIGTERM);
                let _ = tokio::time::timeout(Duration::from_secs(grace_secs), child.wait()).await;
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait().await;
            }
        }
        let _ = std::fs::remove_file(&self.record);
    }
}
