//! `/api/containertaskinstances/` and `/api/executabletaskinstances/`: list, create, read,
//! and clone (201). Creating validates as the original's model `clean`, inserts one row and
//! publishes one submission; if NATS is down the row is still committed and the scheduler's
//! sweep submits it later.

use super::both;
use crate::AppState;
use crate::auth::Auth;
use crate::body::Payload;
use crate::error::{ApiError, ApiResult};
use crate::fields::{Fields, Text, invalid_pk};
use crate::query::{FilterField, Kind, Query, filters, paginate, stream_page};
use crate::repr::InstanceRepr;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use opentelemetry::trace::TraceContextExt;
use saltant_bus::{Submission, Termination, WIRE_VERSION};
use saltant_core::{Policy, QueueName, TaskKind, TaskSpec, fill_defaults};
use saltant_store::instances::{InstanceRow, NewInstance};
use saltant_store::types::TypeClass;
use serde_json::{Map, Value};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

pub(crate) const STATES: &[&str] = &[
    "created",
    "published",
    "running",
    "successful",
    "failed",
    "terminated",
];
pub(crate) const FILTERS: &[FilterField] = &[
    FilterField {
        name: "name",
        column: "i.name",
        kind: Kind::Text,
    },
    FilterField {
        name: "state",
        column: "i.state",
        kind: Kind::Choice(STATES),
    },
    FilterField {
        name: "user__username",
        column: "u.username",
        kind: Kind::Text,
    },
    FilterField {
        name: "task_type",
        column: "COALESCE(i.container_task_type_id, i.executable_task_type_id)",
        kind: Kind::Fk,
    },
    FilterField {
        name: "task_queue",
        column: "i.task_queue_id",
        kind: Kind::Fk,
    },
    FilterField {
        name: "datetime_created",
        column: "i.datetime_created",
        kind: Kind::Time,
    },
    FilterField {
        name: "datetime_finished",
        column: "i.datetime_finished",
        kind: Kind::Time,
    },
];

/// What a create or clone asks for, before the model checks.
struct Request {
    name: String,
    type_id: i64,
    queue_id: i64,
    arguments: Option<Value>,
    policy: Policy,
}

/// The original's model `clean` and save: queue rules, whitelist, flags, arguments filled
/// from defaults; then the insert and the submission.
async fn admit(s: &AppState, class: TypeClass, user: &Auth, r: Request) -> ApiResult<InstanceRow> {
    let (ty, queue, whitelisted) = s.store.admission(class, r.type_id, r.queue_id).await?;
    // The serializer only offers active queues that are public or the requester's.
    let queue = queue.filter(|q| q.active && (!q.private || q.user_id == user.0.id));
    let mut missing = Map::new();
    if ty.is_none() {
        missing.insert("task_type".into(), Value::from(vec![invalid_pk(r.type_id)]));
    }
    if queue.is_none() {
        missing.insert(
            "task_queue".into(),
            Value::from(vec![invalid_pk(r.queue_id)]),
        );
    }
    let (Some(ty), Some(queue)) = (ty, queue) else {
        return Err(ApiError::Fields(missing));
    };

    let arguments = match r.arguments {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Null) => Value::Object(Map::new()),
            Ok(v) => v,
            Err(_) => return Err(ApiError::model(&[format!("'{text}' is not valid JSON!")])),
        },
        Some(v) => v,
    };
    let Value::Object(arguments) = arguments else {
        return Err(ApiError::model(&[format!(
            "'{}' is not a valid JSON dictionary!",
            arguments
        )]));
    };
    let kind = match (class, ty.container_type.as_deref()) {
        (TypeClass::Executable, _) => TaskKind::Executable,
        (TypeClass::Container, Some("singularity")) => TaskKind::Singularity,
        (TypeClass::Container, _) => TaskKind::Docker,
    };
    if !whitelisted {
        return Err(ApiError::model(&[format!(
            "Queue {} has not whitelisted task type {}",
            queue.name, ty.name
        )]));
    }
    let (accepts, what) = match kind {
        TaskKind::Executable => (queue.runs_executable_tasks, "executable tasks"),
        TaskKind::Docker => (queue.runs_docker_container_tasks, "Docker container tasks"),
        TaskKind::Singularity => (
            queue.runs_singularity_container_tasks,
            "Singularity container tasks",
        ),
    };
    if !accepts {
        return Err(ApiError::model(&[format!(
            "Queue {} does not accept {what}",
            queue.name
        )]));
    }
    let required = ty
        .required_arguments
        .0
        .as_array()
        .cloned()
        .unwrap_or_default();
    let defaults = ty
        .required_arguments_default_values
        .0
        .as_object()
        .cloned()
        .unwrap_or_default();
    let arguments = fill_defaults(&required, &defaults, arguments)
        .map_err(|e| ApiError::model(&[e.to_string()]))?;
    let queue_name = QueueName::parse(&queue.name).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "stored queue name {:?} is invalid: {e}",
            queue.name
        ))
    })?;

    let spec = TaskSpec {
        kind,
        command_to_run: ty.command_to_run.clone(),
        environment_variables: ty
            .environment_variables
            .0
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        arguments: arguments.clone(),
        json_file_option: ty.json_file_option.clone(),
        container_image: ty.container_image.clone(),
        logs_path: ty.logs_path.clone(),
        results_path: ty.results_path.clone(),
        policy: r.policy,
    };
    let uuid = Uuid::new_v4();
    let span = tracing::Span::current();
    span.record("instance", tracing::field::display(uuid));
    let trace_id = span.context().span().span_context().trace_id();
    let trace_id =
        (trace_id != opentelemetry::trace::TraceId::INVALID).then(|| trace_id.to_string());
    let new = NewInstance {
        uuid,
        class,
        name: r.name,
        user_id: user.0.id,
        queue_id: queue.id,
        queue_name,
        type_id: ty.id,
        arguments,
        spec: spec.clone(),
        trace_id,
    };
    // Once the row is committed its submission must go out, even if the client goes away
    // meanwhile: a request's future is dropped at whatever await it was in, and a row left
    // unsubmitted would wait for the sweep. So both run on a task of their own.
    let s = s.clone();
    let admitted = async move {
        let row = s.store.insert_instance(&new).await?;
        submit(&s, &row, spec).await;
        Ok::<_, ApiError>(row)
    };
    tokio::spawn(admitted.instrument(span))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("admit instance: {e}")))?
}

/// Publishes the submission. A failure is logged, not returned: the row is committed and
/// the scheduler's sweep submits instances the bus never saw.
async fn submit(s: &AppState, row: &InstanceRow, spec: TaskSpec) {
    let sub = Submission {
        v: WIRE_VERSION,
        uuid: row.uuid,
        attempt: row.attempt as u32,
        queue: row.queue_name.clone(),
        spec,
        created_at: Some(row.datetime_created),
    };
    let result = async {
        s.bus.publish_submission(&sub).await?.await?;
        Ok::<_, anyhow::Error>(())
    };
    if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(2), result)
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r)
    {
        tracing::warn!(instance = %row.uuid, error = %format!("{e:#}"), "publish submission; the scheduler's sweep will submit it");
    }
}

async fn list(class: TypeClass, s: AppState, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    let q = Query::from_uri(&uri);
    let f = filters(&q, FILTERS)?;
    let count = s.store.count_instances(class, &f).await?;
    let p = paginate(&q, &uri, &headers, 10, count)?;
    let page = p.page;
    Ok(stream_page(
        count,
        p,
        s.store
            .list_instances(class, &f, page)
            .map(|r| r.map(InstanceRepr::from))
            .boxed(),
    ))
}

#[tracing::instrument(skip_all, fields(instance = tracing::field::Empty, class = class.kind()))]
async fn create(class: TypeClass, s: AppState, user: Auth, p: Payload) -> ApiResult<Response> {
    let mut f = Fields::new(&p, false);
    let name = f.string("name", Text::optional(200)).unwrap_or_default();
    let type_id = f.pk("task_type", true);
    let queue_id = f.pk("task_queue", true);
    let arguments = f.json("arguments");
    // Native fields (saltant-py never sends them): retries and time limits.
    let policy = Policy {
        max_attempts: f.positive_int("max_attempts", 100).map(|n| n as u32),
        run_timeout_secs: f.positive_int("run_timeout_secs", 366 * 24 * 3600),
        queue_timeout_secs: f.positive_int("queue_timeout_secs", 366 * 24 * 3600),
    };
    f.finish()?;
    let (Some(type_id), Some(queue_id)) = (type_id, queue_id) else {
        return Err(ApiError::Internal(anyhow::anyhow!("validated ids missing")));
    };
    let row = admit(
        &s,
        class,
        &user,
        Request {
            name,
            type_id,
            queue_id,
            arguments,
            policy,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(InstanceRepr::from(row))).into_response())
}

pub(crate) async fn find(s: &AppState, class: TypeClass, id: &str) -> ApiResult<InstanceRow> {
    let uuid: Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    s.store
        .instance(uuid)
        .await?
        .filter(|i| i.kind == class)
        .ok_or(ApiError::NotFound)
}

async fn detail(class: TypeClass, s: AppState, id: String) -> ApiResult<Json<InstanceRepr>> {
    Ok(Json(find(&s, class, &id).await?.into()))
}

#[tracing::instrument(skip_all, fields(instance = tracing::field::Empty, class = class.kind()))]
async fn clone(class: TypeClass, s: AppState, user: Auth, id: String) -> ApiResult<Response> {
    let original = find(&s, class, &id).await?;
    let original_policy = s
        .store
        .instance_spec(original.uuid)
        .await?
        .map(|spec| spec.policy)
        .unwrap_or_default();
    let row = admit(
        &s,
        class,
        &user,
        Request {
            name: original.name,
            type_id: original.task_type_id,
            queue_id: original.task_queue_id,
            arguments: Some(original.arguments.0),
            policy: original_policy,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(InstanceRepr::from(row))).into_response())
}

/// Only the owner or a superuser may end or re-state an instance (the original let any
/// user; §9 of the reference allows tightening it and no client depends on it).
pub(crate) fn may_change(user: &Auth, row: &InstanceRow) -> ApiResult<()> {
    if user.0.is_superuser || row.user_id == Some(user.0.id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(ApiError::detail(
            "You do not have permission to perform this action.",
        )))
    }
}

/// `POST …/{uuid}/terminate/`: 202 with the instance as it is now. The request is recorded
/// in PostgreSQL and put in the terminations bucket: the executor running the instance
/// kills it, and the scheduler ends it if it has not started. Finished instances: no-op.
#[tracing::instrument(skip_all, fields(instance = %id, class = class.kind()))]
async fn terminate(class: TypeClass, s: AppState, user: Auth, id: String) -> ApiResult<Response> {
    let row = find(&s, class, &id).await?;
    may_change(&user, &row)?;
    if row.state.is_final() {
        return Ok((StatusCode::ACCEPTED, Json(InstanceRepr::from(row))).into_response());
    }
    let row = s
        .store
        .request_termination(row.uuid)
        .await?
        .ok_or(ApiError::NotFound)?;
    let request = Termination {
        v: WIRE_VERSION,
        uuid: row.uuid,
        queue: row.queue_name.clone(),
        at: chrono::Utc::now(),
        by: Some(user.0.username.clone()),
    };
    let put = s.bus.request_termination(&request);
    if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(2), put)
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r.map_err(anyhow::Error::from))
    {
        // Recorded in PostgreSQL: the scheduler's sweep repeats the request on the bus.
        tracing::warn!(error = %format!("{e:#}"), "put termination request; the sweep will repeat it");
    }
    Ok((StatusCode::ACCEPTED, Json(InstanceRepr::from(row))).into_response())
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
        let r = both(
            r,
            concat!($path, "/{id}"),
            get(|State(s): State<AppState>, _: Auth, Path(id): Path<String>| detail($class, s, id)),
        );
        let r = both(
            r,
            concat!($path, "/{id}/clone"),
            post(
                |State(s): State<AppState>, u: Auth, Path(id): Path<String>| {
                    clone($class, s, u, id)
                },
            ),
        );
        both(
            r,
            concat!($path, "/{id}/terminate"),
            post(
                |State(s): State<AppState>, u: Auth, Path(id): Path<String>| {
                    terminate($class, s, u, id)
                },
            ),
        )
    }};
}

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = class_routes!(r, TypeClass::Container, "/api/containertaskinstances");
    class_routes!(r, TypeClass::Executable, "/api/executabletaskinstances")
}
