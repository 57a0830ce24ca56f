//! The user host tasks run as (docs/security.md). An executor running as root never runs
//! them as root unless told to: `executor.run_as` names the user (`name` or
//! `name:group`), and when it is unset a root executor uses `nobody`. The task's working
//! folder and arguments file are handed to that user; it cannot read the executor's
//! environment (`/proc/<pid>/environ` is its owner's) or its files.

use nix::unistd::{Gid, Group, Uid, User};

/// Whom tasks run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// The user of `executor.run_as` (or `nobody` for a root executor when unset); `None`:
/// tasks run as the executor's own user (it is not root, and no other user was asked for).
pub(crate) fn resolve(setting: Option<&str>) -> anyhow::Result<Option<RunAs>> {
    let root = Uid::effective().is_root();
    let wanted = match setting.map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ if root => "nobody",
        _ => return Ok(None),
    };
    let (user, group) = match wanted.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (wanted, None),
    };
    let found = User::from_name(user)?
        .ok_or_else(|| anyhow::anyhow!("executor.run_as: no user {user:?} on this machine"))?;
    let gid = match group {
        None => found.gid,
        Some(g) => {
            Group::from_name(g)?
                .ok_or_else(|| anyhow::anyhow!("executor.run_as: no group {g:?} on this machine"))?
                .gid
        }
    };
    let me = Uid::effective();
    if !root && (found.uid != me || gid != Gid::effective()) {
        anyhow::bail!(
            "executor.run_as is {wanted:?}, but the executor is not root and cannot run tasks as another user"
        );
    }
    if found.uid.is_root() {
        tracing::warn!(
            "executor.run_as is root: tasks can read the executor's environment and files"
        );
    }
    Ok(Some(RunAs {
        uid: found.uid.as_raw(),
        gid: gid.as_raw(),
    }))
}
