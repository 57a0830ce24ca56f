//! Response bodies with exactly the original's keys, in its order: saltant-py builds its
//! objects with `Model(**json)`, so one extra key breaks it.

use chrono::{DateTime, Utc};
use saltant_store::instances::InstanceRow;
use saltant_store::queues::{QueueRow, WhitelistRow};
use saltant_store::types::TaskTypeRow;
use saltant_store::users::User;
use serde::{Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

/// DRF's rendering: ISO 8601, microseconds only when non-zero, `Z` for UTC.
pub fn datetime<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_datetime(t))
}

pub fn format_datetime(t: &DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

pub fn opt_datetime<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => datetime(t, s),
        None => s.serialize_none(),
    }
}

#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "User")]
pub struct UserRepr {
    pub username: String,
    pub email: String,
}

impl From<User> for UserRepr {
    fn from(u: User) -> Self {
        UserRepr {
            username: u.username,
            email: u.email,
        }
    }
}

/// The keys both classes of task types have, first.
#[derive(Serialize, schemars::JsonSchema)]
pub struct TaskTypeCommon {
    id: i64,
    user: Option<String>,
    name: String,
    description: String,
    #[serde(serialize_with = "datetime")]
    datetime_created: DateTime<Utc>,
    command_to_run: String,
    /// Names of the executor's environment variables the task gets.
    #[schemars(with = "Vec<String>")]
    environment_variables: Value,
    /// Argument names every instance must have (after defaults are filled in).
    #[schemars(with = "Vec<String>")]
    required_arguments: Value,
    /// Defaults for required arguments.
    #[schemars(with = "serde_json::Map<String, Value>")]
    required_arguments_default_values: Value,
}

impl From<TaskTypeRow> for TaskTypeCommon {
    fn from(r: TaskTypeRow) -> Self {
        TaskTypeCommon {
            id: r.id,
            user: r.username,
            name: r.name,
            description: r.description,
            datetime_created: r.datetime_created,
            command_to_run: r.command_to_run,
            environment_variables: r.environment_variables.0,
            required_arguments: r.required_arguments.0,
            required_arguments_default_values: r.required_arguments_default_values.0,
        }
    }
}

/// A container task type.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "ContainerTaskType")]
pub struct ContainerTypeRepr {
    #[serde(flatten)]
    common: TaskTypeCommon,
    logs_path: Option<String>,
    results_path: Option<String>,
    container_image: Option<String>,
    container_type: Option<String>,
}

/// An executable task type.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "ExecutableTaskType")]
pub struct ExecutableTypeRepr {
    #[serde(flatten)]
    common: TaskTypeCommon,
    json_file_option: Option<String>,
}

impl From<TaskTypeRow> for ContainerTypeRepr {
    fn from(mut r: TaskTypeRow) -> Self {
        ContainerTypeRepr {
            logs_path: r.logs_path.take(),
            results_path: r.results_path.take(),
            container_image: r.container_image.take(),
            container_type: r.container_type.take(),
            common: r.into(),
        }
    }
}

impl From<TaskTypeRow> for ExecutableTypeRepr {
    fn from(mut r: TaskTypeRow) -> Self {
        ExecutableTypeRepr {
            json_file_option: r.json_file_option.take(),
            common: r.into(),
        }
    }
}

#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "TaskQueue")]
pub struct QueueRepr {
    id: i64,
    user: Option<String>,
    name: String,
    description: String,
    private: bool,
    runs_executable_tasks: bool,
    runs_docker_container_tasks: bool,
    runs_singularity_container_tasks: bool,
    active: bool,
    whitelists: Vec<i64>,
}

impl From<QueueRow> for QueueRepr {
    fn from(q: QueueRow) -> Self {
        QueueRepr {
            id: q.id,
            user: q.username,
            name: q.name,
            description: q.description,
            private: q.private,
            runs_executable_tasks: q.runs_executable_tasks,
            runs_docker_container_tasks: q.runs_docker_container_tasks,
            runs_singularity_container_tasks: q.runs_singularity_container_tasks,
            active: q.active,
            whitelists: q.whitelists,
        }
    }
}

#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "TaskWhitelist")]
pub struct WhitelistRepr {
    id: i64,
    user: Option<String>,
    name: String,
    description: String,
    whitelisted_container_task_types: Vec<i64>,
    whitelisted_executable_task_types: Vec<i64>,
}

impl From<WhitelistRow> for WhitelistRepr {
    fn from(w: WhitelistRow) -> Self {
        WhitelistRepr {
            id: w.id,
            user: w.username,
            name: w.name,
            description: w.description,
            whitelisted_container_task_types: w.whitelisted_container_task_types,
            whitelisted_executable_task_types: w.whitelisted_executable_task_types,
        }
    }
}

#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "TaskInstance")]
pub struct InstanceRepr {
    uuid: Uuid,
    user: Option<String>,
    name: String,
    /// `created`, `published`, `running`, `successful`, `failed` or `terminated`.
    state: String,
    #[serde(serialize_with = "datetime")]
    datetime_created: DateTime<Utc>,
    #[serde(serialize_with = "opt_datetime")]
    datetime_finished: Option<DateTime<Utc>>,
    /// The instance's arguments, defaults filled in.
    #[schemars(with = "serde_json::Map<String, Value>")]
    arguments: Value,
    task_queue: i64,
    task_type: i64,
}

impl From<InstanceRow> for InstanceRepr {
    fn from(i: InstanceRow) -> Self {
        InstanceRepr {
            uuid: i.uuid,
            user: i.username,
            name: i.name,
            state: i.state.to_string(),
            datetime_created: i.datetime_created,
            datetime_finished: i.datetime_finished,
            arguments: i.arguments.0,
            task_queue: i.task_queue_id,
            task_type: i.task_type_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn datetimes_render_like_drf() {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 28, 9, 38, 47)
            .single()
            .expect("valid");
        assert_eq!(format_datetime(&t), "2026-11-28T09:38:47Z");
        let t = t + chrono::Duration::microseconds(752589);
        assert_eq!(format_datetime(&t), "2026-11-28T09:38:47.752589Z");
        let t = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid")
            + chrono::Duration::milliseconds(5);
        assert_eq!(format_datetime(&t), "2026-01-01T00:00:00.005000Z");
    }
}
