//! `/api/containertaskinstances/` and `/api/executabletaskinstances/`: list, create, read,
//! and clone (201). Creating validates as the original's model `clean`, inserts one row and
//! publishes one submission; if NATS is down the row is still committed and the scheduler's
//! sweep submits it later.

use super::inputs::TaskInstanceInput;
use super::types::{Class, Container, Executable};
use crate::AppState;
use crate::auth::Auth;
use crate::body::Payload;
use crate::error::{ApiError, ApiResult};
use crate::fields::{Fields, Text, invalid_pk};
use crate::io::{Accepted, Created, Input, Listed, Listing, Page, PathUuid, Status};
use crate::query::FilterField;
use crate::repr::InstanceRepr;
use crate::routes::{Methods, Routes};
use axum::Json;
use axum::extract::State;
use futures::StreamExt;
use saltant_bus::{Submission, Termination, WIRE_VERSION};
use saltant_core::{Policy, QueueName, TaskKind, TaskSpec, fill_defaults};
use saltant_store::instance_filters::instance_filters;
use saltant_store::instances::{InstanceRow, NewInstance};
use saltant_store::queues::QueueRow;
use saltant_store::types::TaskTypeRow;
use saltant_store::types::TypeClass;
use serde_json::{Map, Value};
use tracing::Instrument;
use uuid::Uuid;

/// What a create or clone asks for, before the model checks.
struct Request {
    name: String,
    type_id: i64,
    queue_id: i64,
    arguments: Option<Value>,
    policy: Policy,
}

/// The strings of a JSON array (none if it is not one).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The serializer's related fields: the type must exist, the queue must be active and
/// public or the requester's.
fn offered(
    r: &Request,
    user: &Auth,
    ty: Option<TaskTypeRow>,
    queue: Option<QueueRow>,
) -> ApiResult<(TaskTypeRow, QueueRow)> {
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
    match (ty, queue) {
        (Some(ty), Some(queue)) => Ok((ty, queue)),
        _ => Err(ApiError::Fields(missing)),
    }
}

/// The model's JSON field `arguments`: a dictionary (JSON text in forms).
fn arguments_of(arguments: Option<Value>) -> ApiResult<Map<String, Value>> {
    let arguments = match arguments {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Null) => Value::Object(Map::new()),
            Ok(v) => v,
            Err(_) => return Err(ApiError::model(&[format!("'{text}' is not valid JSON!")])),
        },
        Some(v) => v,
    };
    match arguments {
        Value::Object(arguments) => Ok(arguments),
        other => Err(ApiError::model(&[format!(
            "'{}' is not a valid JSON dictionary!",
            saltant_core::pyrepr::str_of(&other)
        )])),
    }
}

/// The model's queue rules: the queue whitelists the type and runs its kind of task.
fn accepted_kind(
    class: TypeClass,
    ty: &TaskTypeRow,
    queue: &QueueRow,
    whitelisted: bool,
) -> ApiResult<TaskKind> {
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
    Ok(kind)
}

/// The original's model `clean` and save: queue rules, whitelist, flags, arguments filled
/// from defaults; then the insert and the submission.
async fn admit(s: &AppState, class: TypeClass, user: &Auth, r: Request) -> ApiResult<InstanceRow> {
    let (ty, queue, whitelisted) = s.store.admission(class, r.type_id, r.queue_id).await?;
    let (ty, queue) = offered(&r, user, ty, queue)?;
    let arguments = arguments_of(r.arguments)?;
    let kind = accepted_kind(class, &ty, &queue, whitelisted)?;
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
        environment_variables: strings(&ty.environment_variables.0),
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
        trace_parent: saltant_bus::trace::traceparent(),
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

/// The instance list of a class.
pub(crate) struct Instances<C>(std::marker::PhantomData<C>);

impl<C: Class> Listed for Instances<C> {
    const FILTERS: &'static [FilterField] = instance_filters(C::CLASS);
    const PAGE_SIZE: i64 = 10;
}

async fn list<C: Class>(
    State(s): State<AppState>,
    user: Auth,
    l: Listing<Instances<C>>,
) -> ApiResult<Page<InstanceRepr>> {
    let turn = s.list_turns.take(user.0.id).await?;
    let class = C::CLASS;
    let f = l.filters(&s.store).await?;
    let count = s.store.count_instances(class, &f).await?;
    l.page(count, turn, |page| {
        s.store
            .list_instances(class, &f, page)
            .map(|r| r.map(InstanceRepr::from))
            .boxed()
    })
}

async fn create(
    class: TypeClass,
    s: AppState,
    user: Auth,
    p: Payload,
) -> ApiResult<Created<InstanceRepr>> {
    Ok(Status(create_row(class, &s, &user, &p).await?.into()))
}

/// Validates a new instance of `class` (the API's body or a web form), inserts and submits
/// it.
#[tracing::instrument(name = "create", skip_all, fields(instance = tracing::field::Empty, class = class.kind()))]
pub(crate) async fn create_row(
    class: TypeClass,
    s: &AppState,
    user: &Auth,
    p: &Payload,
) -> ApiResult<InstanceRow> {
    let mut f = Fields::new(p, false);
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
    admit(
        s,
        class,
        user,
        Request {
            name,
            type_id,
            queue_id,
            arguments,
            policy,
        },
    )
    .await
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

async fn clone(
    class: TypeClass,
    s: AppState,
    user: Auth,
    id: String,
) -> ApiResult<Created<InstanceRepr>> {
    Ok(Status(clone_row(class, &s, &user, &id).await?.into()))
}

/// Runs a copy of instance `id` (name, type, queue, arguments, policy) as `user`.
#[tracing::instrument(name = "clone", skip_all, fields(instance = tracing::field::Empty, class = class.kind()))]
pub(crate) async fn clone_row(
    class: TypeClass,
    s: &AppState,
    user: &Auth,
    id: &str,
) -> ApiResult<InstanceRow> {
    let original = find(s, class, id).await?;
    let original_policy = s
        .store
        .instance_spec(original.uuid)
        .await?
        .map(|spec| spec.policy)
        .unwrap_or_default();
    admit(
        s,
        class,
        user,
        Request {
            name: original.name,
            type_id: original.task_type_id,
            queue_id: original.task_queue_id,
            arguments: Some(original.arguments.0),
            policy: original_policy,
        },
    )
    .await
}

/// `POST …/{uuid}/terminate/`: 202 with the instance as it is now. The request is recorded
/// in PostgreSQL and put in the terminations bucket: the executor running the instance
/// kills it, and the scheduler ends it if it has not started. Finished instances: no-op.
async fn terminate(
    class: TypeClass,
    s: AppState,
    user: Auth,
    id: String,
) -> ApiResult<Accepted<InstanceRepr>> {
    Ok(Status(terminate_row(class, &s, &user, &id).await?.into()))
}

/// Asks for instance `id` to be terminated (owner or superuser); the instance as it is now.
#[tracing::instrument(name = "terminate", skip_all, fields(instance = %id, class = class.kind()))]
pub(crate) async fn terminate_row(
    class: TypeClass,
    s: &AppState,
    user: &Auth,
    id: &str,
) -> ApiResult<InstanceRow> {
    let row = find(s, class, id).await?;
    user.may_change(row.user_id)?;
    if row.state.is_final() {
        return Ok(row);
    }
    let row = s
        .store
        .request_termination(row.uuid)
        .await?
        .ok_or(ApiError::NotFound)?;
    // In the instance's trace, linked to this request's.
    let span =
        tracing::info_span!("request termination", instance = %row.uuid, by = %user.0.username);
    saltant_bus::trace::set_parent_traceparent(&span, row.trace_parent.as_deref());
    span.follows_from(tracing::Span::current());
    let request = Termination {
        v: WIRE_VERSION,
        uuid: row.uuid,
        queue: row.queue_name.clone(),
        at: chrono::Utc::now(),
        by: Some(user.0.username.clone()),
        trace: span.in_scope(saltant_bus::trace::traceparent),
    };
    let put = s.bus.request_termination(&request).instrument(span);
    if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(2), put)
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r.map_err(anyhow::Error::from))
    {
        // Recorded in PostgreSQL: the scheduler's sweep repeats the request on the bus.
        tracing::warn!(error = %format!("{e:#}"), "put termination request; the sweep will repeat it");
    }
    Ok(row)
}

macro_rules! class_routes {
    ($r:expr, $class:expr, $classty:ty, $path:literal) => {{
        $r.both($path, || {
            Methods::new()
                .get(list::<$classty>, |o| {
                    o.summary("List instances, newest first")
                })
                .post(
                    |State(s): State<AppState>, u: Auth, Input(p, _): Input<TaskInstanceInput>| {
                        create($class, s, u, p)
                    },
                    |o| o.summary("Create (and run) an instance"),
                )
        })
        .both(concat!($path, "/{uuid}"), || {
            Methods::new().get(
                |State(s): State<AppState>, _: Auth, PathUuid(id): PathUuid| detail($class, s, id),
                |o| o.summary("Read an instance"),
            )
        })
        .both(concat!($path, "/{uuid}/clone"), || {
            Methods::new().post(
                |State(s): State<AppState>, u: Auth, PathUuid(id): PathUuid| {
                    clone($class, s, u, id)
                },
                |o| o.summary("Run a copy as the requester"),
            )
        })
        .both(concat!($path, "/{uuid}/terminate"), || {
            Methods::new().post(
                |State(s): State<AppState>, u: Auth, PathUuid(id): PathUuid| {
                    terminate($class, s, u, id)
                },
                |o| o.summary("Terminate (owner or superuser); the instance as it is now"),
            )
        })
    }};
}

pub(crate) fn routes(r: Routes) -> Routes {
    let r = class_routes!(
        r,
        TypeClass::Container,
        Container,
        "/api/containertaskinstances"
    );
    class_routes!(
        r,
        TypeClass::Executable,
        Executable,
        "/api/executabletaskinstances"
    )
}
