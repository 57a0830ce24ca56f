//! `/api/containertasktypes/` and `/api/executabletasktypes/`: GET, POST, PUT (no PATCH, no
//! DELETE). Only the owner or a superuser may PUT; the owner stays the owner.

use super::inputs::{ContainerTaskTypeInput, ExecutableTaskTypeInput};
use super::owned::{self, check_name, owned_resource};
use crate::AppState;
use crate::body::Payload;
use crate::error::{ApiError, ApiResult};
use crate::fields::{Fields, Text};
use crate::repr::{ContainerTypeRepr, ExecutableTypeRepr};
use crate::routes::Routes;
use saltant_store::types::{TaskTypeFields, TaskTypeRow, TypeClass};
use saltant_store::{Error as StoreError, Store};
use serde_json::{Map, Value};

fn verbose(class: TypeClass) -> &'static str {
    match class {
        TypeClass::Container => "container task type",
        TypeClass::Executable => "executable task type",
    }
}

/// A JSON-typed model field after Django's `clean`: a string holding JSON is parsed.
fn clean_json(v: Value, errors: &mut Vec<String>) -> Option<Value> {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Null) => Some(Value::Null),
            Ok(parsed) => Some(parsed),
            Err(_) => {
                errors.push(format!("'{s}' is not valid JSON!"));
                None
            }
        },
        other => Some(other),
    }
}

/// The serializer's fields as the body gives them (`None`: not given).
struct Given {
    name: Option<String>,
    description: Option<String>,
    command: Option<String>,
    env: Option<Value>,
    req: Option<Value>,
    defaults: Option<Value>,
    logs: Option<Option<String>>,
    results: Option<Option<String>>,
    image: Option<String>,
    ctype: Option<String>,
    json_opt: Option<Option<String>>,
}

/// The serializer's validation: field types and lengths, choices, the unique name.
async fn read_given(
    s: &AppState,
    class: TypeClass,
    p: &Payload,
    existing: Option<&TaskTypeRow>,
) -> ApiResult<Given> {
    let mut f = Fields::new(p, false);
    let mut g = Given {
        name: f.string("name", Text::required(200)),
        description: f.string("description", Text::optional(usize::MAX)),
        command: f.string("command_to_run", Text::required(400)),
        env: f.json("environment_variables"),
        req: f.json("required_arguments"),
        defaults: f.json("required_arguments_default_values"),
        logs: None,
        results: None,
        image: None,
        ctype: None,
        json_opt: None,
    };
    match class {
        TypeClass::Container => {
            g.logs = f.text("logs_path", Text::nullable(400));
            g.results = f.text("results_path", Text::nullable(400));
            g.image = f.string("container_image", Text::required(200));
            g.ctype = f.string("container_type", Text::required(11));
            if let Some(t) = &g.ctype
                && t != "docker"
                && t != "singularity"
            {
                f.error("container_type", format!("\"{t}\" is not a valid choice."));
            }
        }
        TypeClass::Executable => g.json_opt = f.text("json_file_option", Text::nullable(50)),
    }
    check_name(
        s,
        &mut f,
        &g.name,
        (class.listing(), verbose(class)),
        existing.map(|e| e.id),
        |_| Ok(()),
    )
    .await?;
    f.finish()?;
    Ok(g)
}

/// The model's JSON fields after `clean`: given (a string holding JSON is parsed; null is
/// empty), or the existing row's, or empty.
fn json_fields(
    g: &mut Given,
    existing: Option<&TaskTypeRow>,
    errors: &mut Vec<String>,
) -> (Value, Value, Value) {
    type Json = sqlx::types::Json<Value>;
    let mut pick = |given: Option<Value>, old: Option<&Json>, empty: Value| -> Value {
        match given {
            Some(v) => match clean_json(v, errors) {
                Some(Value::Null) | None => empty,
                Some(v) => v,
            },
            None => old.map(|o| o.0.clone()).unwrap_or(empty),
        }
    };
    let env = pick(
        g.env.take(),
        existing.map(|e| &e.environment_variables),
        Value::Array(vec![]),
    );
    let req = pick(
        g.req.take(),
        existing.map(|e| &e.required_arguments),
        Value::Array(vec![]),
    );
    let defaults = pick(
        g.defaults.take(),
        existing.map(|e| &e.required_arguments_default_values),
        Value::Object(Map::new()),
    );
    (env, req, defaults)
}

/// Reads and validates a task type. `existing` is the row a PUT replaces (its values stand
/// for optional fields the request leaves out).
async fn read_fields(
    s: &AppState,
    class: TypeClass,
    p: &Payload,
    existing: Option<&TaskTypeRow>,
) -> ApiResult<TaskTypeFields> {
    let mut g = read_given(s, class, p, existing).await?;

    // Model clean: JSON fields, then the defaults ⊆ required rule.
    let mut errors = Vec::new();
    let (env, req, defaults) = json_fields(&mut g, existing, &mut errors);
    if errors.is_empty() {
        if !env.is_array() {
            errors.push(format!(
                "'{}' is not a valid JSON array!",
                saltant_core::pyrepr::str_of(&env)
            ));
        }
        if !req.is_array() {
            errors.push(format!(
                "'{}' is not a valid JSON array!",
                saltant_core::pyrepr::str_of(&req)
            ));
        }
        if !defaults.is_object() {
            errors.push(format!(
                "'{}' is not a valid JSON dictionary!",
                saltant_core::pyrepr::str_of(&defaults)
            ));
        }
    }
    if errors.is_empty() {
        let required: Vec<&str> = req
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let subset = defaults
            .as_object()
            .is_some_and(|d| d.keys().all(|k| required.contains(&k.as_str())));
        if !subset {
            errors.push("default arguments not a subset of required arguments".into());
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::model(&errors));
    }
    let keep = |given: Option<Option<String>>, old: Option<&Option<String>>| match given {
        Some(v) => v,
        None => old.cloned().flatten(),
    };
    Ok(TaskTypeFields {
        name: g.name.expect("validated"),
        description: g
            .description
            .or_else(|| existing.map(|e| e.description.clone()))
            .unwrap_or_default(),
        command_to_run: g.command.expect("validated"),
        environment_variables: env,
        required_arguments: req,
        required_arguments_default_values: defaults,
        logs_path: keep(g.logs, existing.map(|e| &e.logs_path)),
        results_path: keep(g.results, existing.map(|e| &e.results_path)),
        container_image: g.image,
        container_type: g.ctype,
        json_file_option: keep(g.json_opt, existing.map(|e| &e.json_file_option)),
    })
}

/// One class of task types.
pub(crate) trait Class: Send + Sync + 'static {
    const CLASS: TypeClass;
}

pub(crate) struct Container;
pub(crate) struct Executable;

impl Class for Container {
    const CLASS: TypeClass = TypeClass::Container;
}

impl Class for Executable {
    const CLASS: TypeClass = TypeClass::Executable;
}

/// Saves a task type of class `C`.
async fn save<C: Class>(
    s: &Store,
    id: Option<i64>,
    owner: i64,
    f: &TaskTypeFields,
) -> Result<i64, StoreError> {
    s.save_task_type(C::CLASS, id, owner, f).await
}

/// Reads a task type of class `C` (a PUT replaces every field: never partial).
async fn read<C: Class>(
    s: &AppState,
    p: &Payload,
    _partial: bool,
    existing: Option<&TaskTypeRow>,
) -> ApiResult<TaskTypeFields> {
    read_fields(s, C::CLASS, p, existing).await
}

/// Both classes, as owned resources.
macro_rules! task_types {
    ($($class:ident: $path:literal, $verbose:literal, $repr:ty, $input:ty;)*) => {$(
        owned_resource!($class {
            table: TypeClass::$class.listing(),
            path: $path,
            verbose: $verbose,
            patch: false,
            row: TaskTypeRow,
            fields: TaskTypeFields,
            repr: $repr,
            input: $input,
            owner: |r: &TaskTypeRow| r.user_id,
            save: save::<$class>,
            read: read::<$class>,
            host_code: matches!(TypeClass::$class, TypeClass::Executable),
        });
    )*};
}

task_types! {
    Container: "/api/containertasktypes", "container task type", ContainerTypeRepr,
        ContainerTaskTypeInput;
    Executable: "/api/executabletasktypes", "executable task type", ExecutableTypeRepr,
        ExecutableTaskTypeInput;
}

pub(crate) fn routes(r: Routes) -> Routes {
    owned::routes::<Executable>(owned::routes::<Container>(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::types::Json;

    /// The original's keys, in its order (spec §2.2), for both classes.
    #[test]
    fn task_types_have_the_original_keys_in_order() {
        let row = TaskTypeRow {
            id: 1,
            username: Some("u".into()),
            user_id: Some(1),
            name: "n".into(),
            description: String::new(),
            datetime_created: chrono::Utc::now(),
            command_to_run: "true".into(),
            environment_variables: Json(Value::Array(vec![])),
            required_arguments: Json(Value::Array(vec![])),
            required_arguments_default_values: Json(Value::Object(Map::new())),
            logs_path: None,
            results_path: None,
            container_image: Some("busybox".into()),
            container_type: Some("docker".into()),
            json_file_option: None,
        };
        let keys =
            |v: Value| -> Vec<String> { v.as_object().expect("object").keys().cloned().collect() };
        let common = [
            "id",
            "user",
            "name",
            "description",
            "datetime_created",
            "command_to_run",
            "environment_variables",
            "required_arguments",
            "required_arguments_default_values",
        ];
        let container = serde_json::to_value(ContainerTypeRepr::from(row.clone())).expect("json");
        let mut expected: Vec<&str> = common.to_vec();
        expected.extend([
            "logs_path",
            "results_path",
            "container_image",
            "container_type",
        ]);
        assert_eq!(keys(container), expected);
        let executable = serde_json::to_value(ExecutableTypeRepr::from(row)).expect("json");
        let mut expected: Vec<&str> = common.to_vec();
        expected.push("json_file_option");
        assert_eq!(keys(executable), expected);
    }
}
