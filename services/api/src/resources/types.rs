//! `/api/containertasktypes/` and `/api/executabletasktypes/`: GET, POST, PUT (no PATCH, no
//! DELETE). Only the owner or a superuser may PUT; the owner stays the owner.

use super::both;
use crate::AppState;
use crate::auth::Auth;
use crate::body::Payload;
use crate::error::{ApiError, ApiResult, name_taken};
use crate::fields::{Fields, Text};
use crate::query::{FilterField, Kind, Query, filters, paginate, stream_page};
use crate::repr::TypeRepr;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use saltant_store::types::{TaskTypeFields, TaskTypeRow, TypeClass};
use serde_json::{Map, Value};

const COMMON_FILTERS: [FilterField; 5] = [
    FilterField {
        name: "name",
        column: "t.name",
        kind: Kind::Text,
    },
    FilterField {
        name: "description",
        column: "t.description",
        kind: Kind::Text,
    },
    FilterField {
        name: "user__username",
        column: "u.username",
        kind: Kind::Text,
    },
    FilterField {
        name: "command_to_run",
        column: "t.command_to_run",
        kind: Kind::Text,
    },
    FilterField {
        name: "datetime_created",
        column: "t.datetime_created",
        kind: Kind::Time,
    },
];
const CONTAINER_FILTERS: [FilterField; 7] = [
    COMMON_FILTERS[0],
    COMMON_FILTERS[1],
    COMMON_FILTERS[2],
    COMMON_FILTERS[3],
    COMMON_FILTERS[4],
    FilterField {
        name: "container_image",
        column: "t.container_image",
        kind: Kind::Text,
    },
    FilterField {
        name: "container_type",
        column: "t.container_type",
        kind: Kind::Text,
    },
];

pub(crate) fn filter_fields(class: TypeClass) -> &'static [FilterField] {
    match class {
        TypeClass::Container => &CONTAINER_FILTERS,
        TypeClass::Executable => &COMMON_FILTERS,
    }
}

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
            .task_type_name_taken(class, n, existing.map(|e| e.id))
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

async fn list(class: TypeClass, s: AppState, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    let q = Query::from_uri(&uri);
    let f = filters(&q, filter_fields(class))?;
    let count = s.store.count_task_types(class, &f).await?;
    let p = paginate(&q, &uri, &headers, 100, count)?;
    let rows = s
        .store
        .list_task_types(class, &f, p.page)
        .map(move |r| r.map(|r| TypeRepr::new(class, r)))
        .boxed();
    Ok(stream_page(count, p, rows))
}

async fn create(class: TypeClass, s: AppState, user: Auth, p: Payload) -> ApiResult<Response> {
    let fields = read_fields(&s, class, &p, None).await?;
    let row = name_taken(
        s.store.insert_task_type(class, user.0.id, &fields).await,
        verbose(class),
    )?;
    Ok((StatusCode::CREATED, Json(TypeRepr::new(class, row))).into_response())
}

fn parse_id(id: &str) -> ApiResult<i64> {
    id.parse::<i64>().map_err(|_| ApiError::NotFound)
}

async fn detail(class: TypeClass, s: AppState, id: String) -> ApiResult<Json<TypeRepr>> {
    let row = s
        .store
        .task_type(class, parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(TypeRepr::new(class, row)))
}

async fn put(
    class: TypeClass,
    s: AppState,
    user: Auth,
    id: String,
    p: Payload,
) -> ApiResult<Json<TypeRepr>> {
    let id = parse_id(&id)?;
    let existing = s
        .store
        .task_type(class, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !(user.0.is_superuser || existing.user_id == Some(user.0.id)) {
        return Err(ApiError::Forbidden(ApiError::detail(
            "You do not have permission to perform this action.",
        )));
    }
    let fields = read_fields(&s, class, &p, Some(&existing)).await?;
    name_taken(
        s.store.update_task_type(class, id, &fields).await,
        verbose(class),
    )?;
    let row = s
        .store
        .task_type(class, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(TypeRepr::new(class, row)))
}

macro_rules! class_routes {
    ($r:expr, $class:expr, $path:literal) => {{
        let r = both(
            $r,
            $path,
            get(
                |State(s): State<AppState>, _: Auth, uri: Uri, h: HeaderMap| {
                    list($class, s, uri, h)
                },
            )
            .post(|State(s): State<AppState>, u: Auth, p: Payload| create($class, s, u, p)),
        );
        both(
            r,
            concat!($path, "/{id}"),
            get(|State(s): State<AppState>, _: Auth, Path(id): Path<String>| detail($class, s, id))
                .put(
                    |State(s): State<AppState>, u: Auth, Path(id): Path<String>, p: Payload| {
                        put($class, s, u, id, p)
                    },
                ),
        )
    }};
}

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = class_routes!(r, TypeClass::Container, "/api/containertasktypes");
    class_routes!(r, TypeClass::Executable, "/api/executabletasktypes")
}
