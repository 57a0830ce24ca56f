//! `/api/containertasktypes/` and `/api/executabletasktypes/`: GET, POST, PUT (no PATCH, no
//! DELETE). Only the owner or a superuser may PUT; the owner stays the owner.

use super::inputs::{ContainerTaskTypeInput, ExecutableTaskTypeInput};
use super::owned::{self, Owned};
use crate::AppState;
use crate::body::Payload;
use crate::error::{ApiError, ApiResult};
use crate::fields::{Fields, Text};
use crate::io::Listed;
use crate::query::FilterField;
use crate::repr::{ContainerTypeRepr, ExecutableTypeRepr};
use crate::routes::Routes;
use saltant_store::owned::Table;
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

fn py(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => saltant_core::arguments::python_json(other)
            .replace("true", "True")
            .replace("false", "False")
            .replace("null", "None"),
    }
}

/// Reads and validates a task type. `existing` is the row a PUT replaces (its values stand
/// for optional fields the request leaves out).
async fn read_fields(
    s: &AppState,
    class: TypeClass,
    p: &Payload,
    existing: Option<&TaskTypeRow>,
) -> ApiResult<TaskTypeFields> {
    let mut f = Fields::new(p, false);
    let name = f.string("name", Text::required(200));
    let description = f.string("description", Text::optional(usize::MAX));
    let command = f.string("command_to_run", Text::required(400));
    let env = f.json("environment_variables");
    let req = f.json("required_arguments");
    let defaults = f.json("required_arguments_default_values");
    let (mut logs, mut results, mut image, mut ctype, mut json_opt) =
        (None, None, None, None, None);
    match class {
        TypeClass::Container => {
            logs = f.text("logs_path", Text::nullable(400));
            results = f.text("results_path", Text::nullable(400));
            image = f.string("container_image", Text::required(200));
            ctype = f.string("container_type", Text::required(11));
            if let Some(t) = &ctype
                && t != "docker"
                && t != "singularity"
            {
                f.error("container_type", format!("\"{t}\" is not a valid choice."));
            }
        }
        TypeClass::Executable => json_opt = f.text("json_file_option", Text::nullable(50)),
    }
    if let Some(n) = &name
        && !f.has_error("name")
        && s.store
            .name_taken(class.listing(), n, existing.map(|e| e.id))
            .await?
    {
        f.error(
            "name",
            format!("{} with this name already exists.", verbose(class)),
        );
    }
    f.finish()?;

    // Model clean: JSON fields, then the defaults ⊆ required rule.
    let mut errors = Vec::new();
    let pick = |given: Option<Value>,
                old: Option<&Json>,
                empty: Value,
                errors: &mut Vec<String>|
     -> Value {
        match given {
            Some(v) => match clean_json(v, errors) {
                Some(Value::Null) | None => empty,
                Some(v) => v,
            },
            None => old.map(|o| o.0.clone()).unwrap_or(empty),
        }
    };
    type Json = sqlx::types::Json<Value>;
    let env = pick(
        env,
        existing.map(|e| &e.environment_variables),
        Value::Array(vec![]),
        &mut errors,
    );
    let req = pick(
        req,
        existing.map(|e| &e.required_arguments),
        Value::Array(vec![]),
        &mut errors,
    );
    let defaults = pick(
        defaults,
        existing.map(|e| &e.required_arguments_default_values),
        Value::Object(Map::new()),
        &mut errors,
    );
    if errors.is_empty() {
        if !env.is_array() {
            errors.push(format!("'{}' is not a valid JSON array!", py(&env)));
        }
        if !req.is_array() {
            errors.push(format!("'{}' is not a valid JSON array!", py(&req)));
        }
        if !defaults.is_object() {
            errors.push(format!(
                "'{}' is not a valid JSON dictionary!",
                py(&defaults)
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
        name: name.expect("validated"),
        description: description
            .or_else(|| existing.map(|e| e.description.clone()))
            .unwrap_or_default(),
        command_to_run: command.expect("validated"),
        environment_variables: env,
        required_arguments: req,
        required_arguments_default_values: defaults,
        logs_path: keep(logs, existing.map(|e| &e.logs_path)),
        results_path: keep(results, existing.map(|e| &e.results_path)),
        container_image: image,
        container_type: ctype,
        json_file_option: keep(json_opt, existing.map(|e| &e.json_file_option)),
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

impl Listed for Container {
    const FILTERS: &'static [FilterField] = TypeClass::Container.listing().filters;
    const PAGE_SIZE: i64 = 100;
}

impl Listed for Executable {
    const FILTERS: &'static [FilterField] = TypeClass::Executable.listing().filters;
    const PAGE_SIZE: i64 = 100;
}

macro_rules! owned_class {
    ($class:ty, $path:literal, $verbose:literal, $repr:ty, $input:ty) => {
        impl Owned for $class {
            const TABLE: &'static Table = Self::CLASS.listing();
            const PATH: &'static str = $path;
            const VERBOSE: &'static str = $verbose;
            const PATCH: bool = false;
            type Row = TaskTypeRow;
            type Fields = TaskTypeFields;
            type Repr = $repr;
            type Input = $input;

            fn owner(row: &TaskTypeRow) -> Option<i64> {
                row.user_id
            }
            async fn save(
                s: &Store,
                id: Option<i64>,
                owner: i64,
                f: &TaskTypeFields,
            ) -> Result<i64, StoreError> {
                s.save_task_type(Self::CLASS, id, owner, f).await
            }
            async fn read(
                s: &AppState,
                p: &Payload,
                _partial: bool,
                existing: Option<&TaskTypeRow>,
            ) -> ApiResult<TaskTypeFields> {
                read_fields(s, Self::CLASS, p, existing).await
            }
        }
    };
}

owned_class!(
    Container,
    "/api/containertasktypes",
    "container task type",
    ContainerTypeRepr,
    ContainerTaskTypeInput
);
owned_class!(
    Executable,
    "/api/executabletasktypes",
    "executable task type",
    ExecutableTypeRepr,
    ExecutableTaskTypeInput
);

pub(crate) fn routes(r: Routes) -> Routes {
    owned::routes::<Executable>(owned::routes::<Container>(r))
}
