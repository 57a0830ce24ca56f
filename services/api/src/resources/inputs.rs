//! The request bodies, as the OpenAPI document describes them (JSON, form-urlencoded or
//! multipart; forms carry JSON-typed fields as text). Handlers take them as `Input<T>` and
//! read the fields by DRF's rules (`fields.rs`), so these types name and describe what is
//! read there.

#![allow(dead_code)]

use schemars::JsonSchema;
use serde_json::{Map, Value};

/// The fields of both classes of task types.
#[derive(JsonSchema)]
pub(crate) struct TaskTypeInput {
    /// Unique, at most 50 characters.
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// Split like a shell would (no shell runs it); `$VAR` expands from the executor's
    /// environment. The instance's arguments follow as one JSON argument.
    command_to_run: String,
    #[serde(default)]
    environment_variables: Option<Vec<String>>,
    #[serde(default)]
    required_arguments: Option<Vec<String>>,
    #[serde(default)]
    required_arguments_default_values: Option<Map<String, Value>>,
}

/// An executable task type's fields.
#[derive(JsonSchema)]
pub(crate) struct ExecutableTaskTypeInput {
    #[serde(flatten)]
    common: TaskTypeInput,
    /// If set, arguments go to a JSON file passed after this option instead.
    #[serde(default)]
    json_file_option: Option<String>,
}

#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
enum ContainerType {
    Docker,
    Singularity,
}

/// A container task type's fields.
#[derive(JsonSchema)]
pub(crate) struct ContainerTaskTypeInput {
    #[serde(flatten)]
    common: TaskTypeInput,
    /// Where the container's logs folder is mounted; `""` for none.
    #[serde(default)]
    logs_path: Option<String>,
    /// Where the container's results folder is mounted; `""` for none.
    #[serde(default)]
    results_path: Option<String>,
    container_image: String,
    container_type: ContainerType,
}

#[derive(JsonSchema)]
pub(crate) struct TaskQueueInput {
    /// Letters, digits, `_ @ + -`; at most 50 characters.
    #[schemars(regex(pattern = r"^[\w@+-]+$"), length(max = 50))]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    runs_executable_tasks: Option<bool>,
    #[serde(default)]
    runs_docker_container_tasks: Option<bool>,
    #[serde(default)]
    runs_singularity_container_tasks: Option<bool>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    whitelists: Option<Vec<i64>>,
}

#[derive(JsonSchema)]
pub(crate) struct TaskWhitelistInput {
    #[schemars(length(max = 50))]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    whitelisted_container_task_types: Option<Vec<i64>>,
    #[serde(default)]
    whitelisted_executable_task_types: Option<Vec<i64>>,
}

#[derive(JsonSchema)]
pub(crate) struct TaskInstanceInput {
    #[serde(default)]
    name: Option<String>,
    task_type: i64,
    /// An active queue, public or the requester's, whose whitelist has the type.
    task_queue: i64,
    /// Missing required arguments are filled from the type's defaults.
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
}

/// One of the six states (`saltant_core::State`).
pub(crate) struct StateName;

impl JsonSchema for StateName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StateName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = saltant_core::State::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        schemars::json_schema!({"type": "string", "enum": names})
    }
}

#[derive(JsonSchema)]
pub(crate) struct StatusInput {
    /// States only move forward; a finished instance stays finished.
    state: StateName,
}

#[derive(JsonSchema, serde::Serialize)]
pub(crate) struct StatusOutput {
    pub uuid: String,
    pub state: &'static str,
}

#[derive(JsonSchema)]
pub(crate) struct TokenObtainInput {
    username: String,
    password: String,
}

#[derive(JsonSchema)]
pub(crate) struct TokenRefreshInput {
    refresh: String,
}

/// A browser session's login form.
#[derive(JsonSchema)]
pub(crate) struct LoginInput {
    username: String,
    password: String,
}
