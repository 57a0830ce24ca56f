//! `/api/taskqueues/` and `/api/taskwhitelists/`: GET, POST, PUT, PATCH (no DELETE). Only
//! the owner or a superuser may change one; the owner stays the owner.

use super::both;
use crate::AppState;
use crate::auth::Auth;
use crate::body::Payload;
use crate::error::{ApiError, ApiResult, name_taken};
use crate::fields::{Fields, Text, invalid_pk};
use crate::query::{FilterField, Kind, Query, filters, paginate, stream_page};
use crate::repr::{QueueRepr, WhitelistRepr};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use saltant_core::QueueName;
use saltant_store::queues::{IdTable, QueueFields, QueueRow, WhitelistFields, WhitelistRow};
use saltant_store::users::User;

pub(crate) const QUEUE_FILTERS: &[FilterField] = &[
    FilterField {
        name: "name",
        column: "q.name",
        kind: Kind::Text,
    },
    FilterField {
        name: "description",
        column: "q.description",
        kind: Kind::Text,
    },
    FilterField {
        name: "user__username",
        column: "u.username",
        kind: Kind::Text,
    },
    FilterField {
        name: "private",
        column: "q.private",
        kind: Kind::Bool,
    },
    FilterField {
        name: "runs_executable_tasks",
        column: "q.runs_executable_tasks",
        kind: Kind::Bool,
    },
    FilterField {
        name: "runs_docker_container_tasks",
        column: "q.runs_docker_container_tasks",
        kind: Kind::Bool,
    },
    FilterField {
        name: "runs_singularity_container_tasks",
        column: "q.runs_singularity_container_tasks",
        kind: Kind::Bool,
    },
    FilterField {
        name: "active",
        column: "q.active",
        kind: Kind::Bool,
    },
];

pub(crate) const WHITELIST_FILTERS: &[FilterField] = &[
    FilterField {
        name: "name",
        column: "l.name",
        kind: Kind::Text,
    },
    FilterField {
        name: "description",
        column: "l.description",
        kind: Kind::Text,
    },
    FilterField {
        name: "user__username",
        column: "u.username",
        kind: Kind::Text,
    },
];

fn forbidden() -> ApiError {
    ApiError::Forbidden(ApiError::detail(
        "You do not have permission to perform this action.",
    ))
}

fn parse_id(id: &str) -> ApiResult<i64> {
    id.parse::<i64>().map_err(|_| ApiError::NotFound)
}

fn may_change(user: &User, owner: i64) -> ApiResult<()> {
    if user.is_superuser || user.id == owner {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Checks a list of related ids exists; records "Invalid pk" for the first missing one.
async fn check_ids(
    s: &AppState,
    f: &mut Fields<'_>,
    field: &str,
    table: IdTable,
    ids: &Option<Vec<i64>>,
) -> ApiResult<()> {
    if let Some(ids) = ids
        && let Some(missing) = s.store.missing_ids(table, ids).await?.first()
    {
        f.error(field, invalid_pk(*missing));
    }
    Ok(())
}

// ---- queues

async fn read_queue(
    s: &AppState,
    p: &Payload,
    partial: bool,
    existing: Option<&QueueRow>,
) -> ApiResult<QueueFields> {
    let mut f = Fields::new(p, partial);
    let name = f.string("name", Text::required(50));
    if let Some(n) = &name
        && !f.has_error("name")
    {
        if let Err(e) = QueueName::parse(n) {
            f.error("name", e.to_string());
        } else if s.store.queue_name_taken(n, existing.map(|e| e.id)).await? {
            f.error("name", "task queue with this name already exists.");
        }
    }
    let description = f.string("description", Text::optional(usize::MAX));
    let private = f.boolean("private");
    let runs_exec = f.boolean("runs_executable_tasks");
    let runs_docker = f.boolean("runs_docker_container_tasks");
    let runs_sing = f.boolean("runs_singularity_container_tasks");
    let active = f.boolean("active");
    let whitelists = f.pk_list("whitelists");
    check_ids(s, &mut f, "whitelists", IdTable::Whitelists, &whitelists).await?;
    f.finish()?;
    let e = existing;
    Ok(QueueFields {
        name: name
            .or_else(|| e.map(|e| e.name.clone()))
            .unwrap_or_default(),
        description: description
            .or_else(|| e.map(|e| e.description.clone()))
            .unwrap_or_default(),
        private: private.or(e.map(|e| e.private)).unwrap_or(false),
        runs_executable_tasks: runs_exec
            .or(e.map(|e| e.runs_executable_tasks))
            .unwrap_or(true),
        runs_docker_container_tasks: runs_docker
            .or(e.map(|e| e.runs_docker_container_tasks))
            .unwrap_or(true),
        runs_singularity_container_tasks: runs_sing
            .or(e.map(|e| e.runs_singularity_container_tasks))
            .unwrap_or(true),
        active: active.or(e.map(|e| e.active)).unwrap_or(true),
        whitelists: whitelists
            .or_else(|| e.map(|e| e.whitelists.clone()))
            .unwrap_or_default(),
    })
}

async fn list_queues(
    State(s): State<AppState>,
    _: Auth,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = Query::from_uri(&uri);
    let f = filters(&q, QUEUE_FILTERS)?;
    let count = s.store.count_queues(&f).await?;
    let p = paginate(&q, &uri, &headers, 100, count)?;
    let page = p.page;
    Ok(stream_page(
        count,
        p,
        s.store
            .list_queues(&f, page)
            .map(|r| r.map(QueueRepr::from))
            .boxed(),
    ))
}

async fn create_queue(State(s): State<AppState>, user: Auth, p: Payload) -> ApiResult<Response> {
    let fields = read_queue(&s, &p, false, None).await?;
    let id = name_taken(
        s.store.save_queue(None, user.0.id, &fields).await,
        "task queue",
    )?;
    let row = s.store.queue(id).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(QueueRepr::from(row))).into_response())
}

async fn queue_detail(
    State(s): State<AppState>,
    _: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<QueueRepr>> {
    Ok(Json(
        s.store
            .queue(parse_id(&id)?)
            .await?
            .ok_or(ApiError::NotFound)?
            .into(),
    ))
}

async fn update_queue(
    s: AppState,
    user: Auth,
    id: String,
    p: Payload,
    partial: bool,
) -> ApiResult<Json<QueueRepr>> {
    let id = parse_id(&id)?;
    let existing = s.store.queue(id).await?.ok_or(ApiError::NotFound)?;
    may_change(&user.0, existing.user_id)?;
    let fields = read_queue(&s, &p, partial, Some(&existing)).await?;
    name_taken(
        s.store
            .save_queue(Some(id), existing.user_id, &fields)
            .await,
        "task queue",
    )?;
    Ok(Json(
        s.store.queue(id).await?.ok_or(ApiError::NotFound)?.into(),
    ))
}

// ---- whitelists

async fn read_whitelist(
    s: &AppState,
    p: &Payload,
    partial: bool,
    existing: Option<&WhitelistRow>,
) -> ApiResult<WhitelistFields> {
    let mut f = Fields::new(p, partial);
    let name = f.string("name", Text::required(50));
    if let Some(n) = &name
        && !f.has_error("name")
        && s.store
            .whitelist_name_taken(n, existing.map(|e| e.id))
            .await?
    {
        f.error("name", "task whitelist with this name already exists.");
    }
    let description = f.string("description", Text::optional(usize::MAX));
    let ct = f.pk_list("whitelisted_container_task_types");
    let et = f.pk_list("whitelisted_executable_task_types");
    check_ids(
        s,
        &mut f,
        "whitelisted_container_task_types",
        IdTable::ContainerTypes,
        &ct,
    )
    .await?;
    check_ids(
        s,
        &mut f,
        "whitelisted_executable_task_types",
        IdTable::ExecutableTypes,
        &et,
    )
    .await?;
    f.finish()?;
    let e = existing;
    Ok(WhitelistFields {
        name: name
            .or_else(|| e.map(|e| e.name.clone()))
            .unwrap_or_default(),
        description: description
            .or_else(|| e.map(|e| e.description.clone()))
            .unwrap_or_default(),
        container_types: ct
            .or_else(|| e.map(|e| e.whitelisted_container_task_types.clone()))
            .unwrap_or_default(),
        executable_types: et
            .or_else(|| e.map(|e| e.whitelisted_executable_task_types.clone()))
            .unwrap_or_default(),
    })
}

async fn list_whitelists(
    State(s): State<AppState>,
    _: Auth,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = Query::from_uri(&uri);
    let f = filters(&q, WHITELIST_FILTERS)?;
    let count = s.store.count_whitelists(&f).await?;
    let p = paginate(&q, &uri, &headers, 100, count)?;
    let page = p.page;
    Ok(stream_page(
        count,
        p,
        s.store
            .list_whitelists(&f, page)
            .map(|r| r.map(WhitelistRepr::from))
            .boxed(),
    ))
}

async fn create_whitelist(
    State(s): State<AppState>,
    user: Auth,
    p: Payload,
) -> ApiResult<Response> {
    let fields = read_whitelist(&s, &p, false, None).await?;
    let id = name_taken(
        s.store.save_whitelist(None, user.0.id, &fields).await,
        "task whitelist",
    )?;
    let row = s.store.whitelist(id).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(WhitelistRepr::from(row))).into_response())
}

async fn whitelist_detail(
    State(s): State<AppState>,
    _: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<WhitelistRepr>> {
    Ok(Json(
        s.store
            .whitelist(parse_id(&id)?)
            .await?
            .ok_or(ApiError::NotFound)?
            .into(),
    ))
}

async fn update_whitelist(
    s: AppState,
    user: Auth,
    id: String,
    p: Payload,
    partial: bool,
) -> ApiResult<Json<WhitelistRepr>> {
    let id = parse_id(&id)?;
    let existing = s.store.whitelist(id).await?.ok_or(ApiError::NotFound)?;
    may_change(&user.0, existing.user_id)?;
    let fields = read_whitelist(&s, &p, partial, Some(&existing)).await?;
    name_taken(
        s.store
            .save_whitelist(Some(id), existing.user_id, &fields)
            .await,
        "task whitelist",
    )?;
    Ok(Json(
        s.store
            .whitelist(id)
            .await?
            .ok_or(ApiError::NotFound)?
            .into(),
    ))
}

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both(r, "/api/taskqueues", get(list_queues).post(create_queue));
    let r = both(
        r,
        "/api/taskqueues/{id}",
        get(queue_detail)
            .put(
                |State(s): State<AppState>, u: Auth, Path(id): Path<String>, p: Payload| {
                    update_queue(s, u, id, p, false)
                },
            )
            .patch(
                |State(s): State<AppState>, u: Auth, Path(id): Path<String>, p: Payload| {
                    update_queue(s, u, id, p, true)
                },
            ),
    );
    let r = both(
        r,
        "/api/taskwhitelists",
        get(list_whitelists).post(create_whitelist),
    );
    both(
        r,
        "/api/taskwhitelists/{id}",
        get(whitelist_detail)
            .put(
                |State(s): State<AppState>, u: Auth, Path(id): Path<String>, p: Payload| {
                    update_whitelist(s, u, id, p, false)
                },
            )
            .patch(
                |State(s): State<AppState>, u: Auth, Path(id): Path<String>, p: Payload| {
                    update_whitelist(s, u, id, p, true)
                },
            ),
    )
}
