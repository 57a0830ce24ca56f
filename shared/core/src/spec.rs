//! What an executor needs to run an instance, snapshotted when the instance is created.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How an instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// A host executable (saltant's executable task types).
    Executable,
    /// A Docker container.
    Docker,
    /// A Singularity/Apptainer container.
    Singularity,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Executable => "executable",
            TaskKind::Docker => "docker",
            TaskKind::Singularity => "singularity",
        }
    }
}

/// The execution snapshot of an instance: the task type as it was when the instance was
/// created, plus the default-filled arguments. Editing the type later does not change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub kind: TaskKind,
    pub command_to_run: String,
    /// Names of executor environment variables passed to the task.
    pub environment_variables: Vec<String>,
    pub arguments: Map<String, Value>,
    /// Executable types: pass arguments as `<option> <file>` instead of one argv element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_file_option: Option<String>,
    /// Container types: image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_image: Option<String>,
    /// Container types: folder inside the container for logs (`None` or empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_path: Option<String>,
    /// Container types: folder inside the container for results (`None` or empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_path: Option<String>,
    /// Retries and time limits asked for this instance (unset: the scheduler's defaults).
    #[serde(default, skip_serializing_if = "Policy::is_unset")]
    pub policy: Policy,
}

/// Retries and time limits of an instance (beyond the original, which had none). Unset
/// fields take the scheduler's defaults (`[scheduler]` `max_attempts`, …).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Attempts in all: a failed attempt (non-zero exit, time-out, lost executor) is run
    /// again while fewer have been made. 1 means no retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Seconds an attempt may run before it is killed and fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_timeout_secs: Option<u64>,
    /// Seconds an instance may wait for an executor before it fails (without retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_timeout_secs: Option<u64>,
}

impl Policy {
    pub fn is_unset(&self) -> bool {
        *self == Policy::default()
    }
}

impl TaskSpec {
    /// The logs path to bind, treating `""` like no path (the original stores `""` sent by
    /// its clients but only `null` meant "none" to its worker).
    pub fn logs_mount(&self) -> Option<&str> {
        self.logs_path.as_deref().filter(|p| !p.is_empty())
    }

    pub fn results_mount(&self) -> Option<&str> {
        self.results_path.as_deref().filter(|p| !p.is_empty())
    }
}
